"""Copy buttons and repository links: what a copy button copies is exactly the source, and each
section of code links to the same lines in the repository."""
from __future__ import annotations

import re
import textwrap
from html import unescape
from pathlib import Path

import pytest

from conftest_site import NOTATION, built_fixture_site
from utils import config
from utils.highlight import highlight_block, highlight_lines
from utils.split import split_source

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "labml_nn").rglob("*.py")) + sorted((REPO / "tests").glob("*.py"))


def text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_highlighted_lines_are_exactly_the_source(path):
    """The text of each highlighted line (what a copy button reads, line numbers being CSS) is
    the source line, character for character."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    shown = highlight_lines(source)
    assert [text(h) for h in shown[:len(lines)]] == lines


def test_a_highlighted_code_block_is_its_text():
    code = 'x = "<b>&amp;</b>"\n\tif x:  # tab\n        pass\n'
    assert text(highlight_block(code, "python")) == code.rstrip("\n")
    assert text(highlight_block("$ make test\n", "bash")) == "$ make test"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return built_fixture_site(tmp_path_factory, NOTATION)


def test_each_section_links_to_its_lines_and_copies_them(site):
    source = textwrap.dedent(NOTATION["labml_nn/paper/notation.py"]).lstrip("\n")
    lines = source.splitlines(keepends=True)
    html = (site / "paper/notation.html").read_text(encoding="utf-8")
    module = split_source(source)
    sections = re.findall(r'<section class="sec[^"]*"[^>]*>([\s\S]*?)</section>', html)
    with_code = [s for s in module.sections if s.code and not (s.intro and not s.code)]
    assert len(sections) == len(with_code)
    base = config.source_url("labml_nn/paper/notation.py")
    for section, shown in zip(with_code, sections):
        rows = [n for n, t in section.code if t.strip()]
        if not rows:
            continue
        first, last = rows[0], rows[-1]
        anchor = f"#L{first}" if first == last else f"#L{first}-L{last}"
        assert f'href="{base}{anchor}"' in shown
        assert 'class="copy"' in shown
        # The lines a copy button copies: the code lines the section shows, blank edges aside
        # (a docstring in the middle is prose, on the left, and is not copied).
        copied = "".join(text(m) for m in re.findall(r'<span class="line" id="L\d+">([\s\S]*?)</span>(?=<span class="line|</code>)', shown))
        assert copied == "".join(lines[n - 1] for n, _ in section.code if first <= n <= last)


def test_code_blocks_of_the_prose_have_a_copy_button_and_their_language(site):
    html = (site / "paper/notation.html").read_text(encoding="utf-8")
    block = re.search(r'<div class="codeblock">([\s\S]*?)</div>\n', html).group(1)
    assert '<span class="codeblock-lang">python</span>' in block and 'class="copy"' in block
    assert text(block.split("<pre", 1)[1].split(">", 1)[1]) == "example = q + k\nprint(example)"


def test_test_pages_copy_and_link_the_whole_file(site):
    html = (site / "tests/test_paper.html").read_text(encoding="utf-8")
    assert f'href="{config.source_url("tests/test_paper.py")}"' in html
    assert html.count('class="copy"') == 1
