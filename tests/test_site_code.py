"""Copy buttons and repository links: what a copy button copies is exactly the source, and each
section of code links to the same lines in the repository."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest_site import NOTATION, built_fixture_site, parse_html, read_page
from utils import config
from utils.highlight import highlight_block, highlight_lines
from utils.split import split_source

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "labml_nn").rglob("*.py")) + sorted((REPO / "tests").glob("*.py"))


def text(html: str) -> str:
    return parse_html(html).text()


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
    module = split_source(source)
    sections = read_page(site, "paper/notation.html").all("section", "sec")
    with_code = [s for s in module.sections if s.code]
    assert len(sections) == len(with_code) >= 3
    base = config.source_url("labml_nn/paper/notation.py")
    for section, shown in zip(with_code, sections):
        rows = [n for n, t in section.code if t.strip()]
        if not rows:
            continue
        first, last = rows[0], rows[-1]
        anchor = f"#L{first}" if first == last else f"#L{first}-L{last}"
        assert [a.attrs["href"] for a in shown.all("a", "code-repo")] == [base + anchor]
        assert len(shown.all("button", "copy")) == 1
        # The lines a copy button copies (site.js: the `.line`s that are not `.edge`, line numbers
        # being CSS): the code lines the section shows, blank edges aside (a docstring in the middle
        # is prose, on the left, and is not copied).
        copied = "".join(line.text() for line in shown.all("span", "line") if "edge" not in line.classes)
        assert copied == "".join(lines[n - 1] for n, _ in section.code if first <= n <= last)


def test_code_blocks_of_the_prose_have_a_copy_button_and_their_language(site):
    block = read_page(site, "paper/notation.html").one("div", "codeblock")
    assert block.one(cls="codeblock-lang").text() == "python" and len(block.all("button", "copy")) == 1
    assert block.one("pre").text() == "example = q + k\nprint(example)"


def test_test_pages_copy_and_link_the_whole_file(site):
    page = read_page(site, "tests/test_paper.html")
    assert [a.attrs["href"] for a in page.all("a", "code-repo")] == [config.source_url("tests/test_paper.py")]
    assert len(page.all("button", "copy")) == 1
