"""The whole build on a fixture repository and on this one: pages, links, anchors, self-checks."""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from conftest_site import FIXTURE, REAL_SITE_NOTATION, REPO, fixture_repo, need_katex
from utils.build import build
from utils.check import check_site
from utils.errors import SiteError
from utils.split import split_source


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_katex()
    root = fixture_repo(tmp_path_factory.mktemp("repo"))
    out = tmp_path_factory.mktemp("site") / "docs"
    build(root, out)
    return out


def fixture_repo_text(name: str) -> str:
    return textwrap.dedent(FIXTURE[name]).lstrip("\n")


def page(site: Path, name: str) -> str:
    return (site / name).read_text(encoding="utf-8")


def test_pages_follow_the_url_scheme(site):
    for name in ["index.html", "labml_nn.html", "paper/index.html", "paper/readme.html",
                 "paper/attention.html", "loose/index.html", "loose/thing.html", "search_index.js",
                 "static/site.css", "static/pygments.css", "static/katex/katex.min.css"]:
        assert (site / name).is_file(), name
    assert list((site / "static/katex/fonts").glob("KaTeX_Main-Regular.woff2"))


def test_source_links_are_rewritten_to_pages(site):
    home = page(site, "index.html")
    assert 'href="paper/readme.html"' in home and 'href="paper/attention.html"' in home
    assert 'href="labml_nn.html"' in home
    assert 'href="attention.html"' in page(site, "paper/readme.html")
    assert 'src="pictures/plot.png"' in page(site, "paper/readme.html")
    assert (site / "paper/pictures/plot.png").is_file()
    assert 'href="readme.html"' in page(site, "paper/attention.html")


def test_anchors_from_qualified_names_headings_and_lines(site):
    html = page(site, "paper/attention.html")
    for anchor in ["Attention", "Attention.forward", "Attention.__init__", "helper", "shapes"]:
        assert f'id="{anchor}"' in html, anchor
    # every code line carries its real number
    source = fixture_repo_text("labml_nn/paper/attention.py")
    row = source.splitlines().index("        scores = q @ k  # the scores") + 1
    assert re.search(rf'id="L{row}".*scores', html)
    assert "section-" not in html


def test_every_code_line_is_shown_once_with_its_number(site):
    module = split_source(fixture_repo_text("labml_nn/paper/attention.py"))
    code_rows = [n for s in module.sections for n, _ in s.code]
    shown = [int(n) for n in re.findall(r'<span class="line[^"]*" id="L(\d+)"', page(site, "paper/attention.html"))]
    assert shown == code_rows and len(set(shown)) == len(shown)


def test_folder_listing_shows_titles_and_summaries(site):
    index = page(site, "paper/index.html")
    assert "Fixture attention" in index and "Attention with" in index
    loose = page(site, "loose/index.html")
    assert "A loose module" in loose and "It lives in a folder without <code>__init__.py</code>." in loose
    home = page(site, "index.html")
    assert "A paper" in home and re.search(r"The paper folder(&#39;|')s summary.", home)


def test_summaries_in_listings_render_their_math(site):
    index = page(site, "paper/index.html")
    listing = index[index.index('id="site-pages"'):]
    assert "Attention with <span" in listing and 'class="katex"' in listing and "$\\mathbf" not in listing


def test_colab_link_when_the_paper_has_a_notebook(tmp_path):
    need_katex()
    from utils import config
    folder, name = next(iter(config.NOTEBOOKS.items()))
    root = fixture_repo(tmp_path / "repo", {
        f"{folder}/__init__.py": 'r"""\n---\ntitle: P\n---\n"""\n',
        f"{folder}/model.py": "x = 1\n",
        f"notebooks/{name}.ipynb": "{}",
    })
    build(root, tmp_path / "out")
    site_folder = folder.removeprefix(config.PACKAGE + "/")
    html = (tmp_path / "out" / site_folder / "model.html").read_text()
    assert "https://colab.research.google.com/github/" in html and f"/notebooks/{name}.ipynb" in html
    assert "colab.research.google.com" not in (tmp_path / "out/paper/attention.html").read_text()


def test_math_is_typeset_and_currency_is_not(site):
    home = page(site, "index.html")
    assert "Costs $5 and $10" in home and 'class="katex"' in home
    assert "katex-display" in page(site, "paper/attention.html")


def test_navigation_breadcrumbs_prev_next_and_source_link(site):
    html = page(site, "paper/attention.html")
    assert 'rel="prev"' in html and 'href="readme.html" rel="prev"' in html
    assert 'aria-label="Breadcrumbs"' in html and 'href="index.html">paper<' in html
    assert "https://github.com/" in html and "/blob/main/labml_nn/paper/attention.py" in html


def test_search_index_is_a_script_with_identifiers(site):
    text = page(site, "search_index.js")
    assert text.splitlines()[2].startswith("window.SEARCH_INDEX = ")
    entries = json.loads(text.split("=", 1)[1].strip().rstrip(";"))
    assert any("Attention.forward" == e["h"] for e in entries)
    assert any("scores" in e["i"].split() for e in entries)


@pytest.mark.checks("readme.md")
def test_no_page_loads_from_another_host(site):
    for path in site.rglob("*.html"):
        for m in re.finditer(r'<(script|link|img)\b[^>]*\b(src|href)="([^"]*)"', path.read_text()):
            assert not re.match(r"(https?:)?//", m.group(3)), (path, m.group(0))


def build_fails(tmp_path, extra: dict[str, str]) -> SiteError:
    need_katex()
    root = fixture_repo(tmp_path / "repo", extra)
    with pytest.raises(SiteError) as e:
        build(root, tmp_path / "out")
    return e.value


def test_broken_link_fails_with_source_file_and_line(tmp_path):
    error = build_fails(tmp_path, {"labml_nn/paper/readme.md": "# Readme\n\nA\n[missing](nowhere.md).\n"})
    assert (error.path, error.line) == ("labml_nn/paper/readme.md", 4)
    assert "nowhere.md" in str(error)


def test_broken_anchor_fails_with_file_and_line(tmp_path):
    error = build_fails(tmp_path, {"labml_nn/paper/readme.md": "# Readme\n\n[x](attention.html#Attention.backward)\n"})
    assert (error.path, error.line) == ("labml_nn/paper/readme.md", 3)
    assert 'no element with id "Attention.backward"' in str(error)


def test_non_raw_docstring_fails_the_build(tmp_path):
    error = build_fails(tmp_path, {"labml_nn/paper/bad.py": 'def f():\n    """$\\alpha$"""\n'})
    assert (error.path, error.line) == ("labml_nn/paper/bad.py", 2)


def test_rejected_formula_fails_the_build(tmp_path):
    error = build_fails(tmp_path, {"labml_nn/paper/bad.py": '# Fine.\n# Broken: $\\frac{1$\nx = 1\n'})
    assert (error.path, error.line) == ("labml_nn/paper/bad.py", 2)


def test_checker_rejects_remote_resources_and_missing_anchors(tmp_path):
    (tmp_path / "a.html").write_text(
        '<html><body>\n<a href="https://arxiv.org/abs/1901.02860">ok</a>\n'
        '<script src="https://cdn.example.com/x.js"></script>\n'
        '<a href="#here" id="here">ok</a>\n<a href="#gone">bad</a>\n'
        '<link rel="stylesheet" href="//fonts.example.com/f.css">\n</body></html>\n')
    with pytest.raises(SiteError) as e:
        check_site(tmp_path)
    text = str(e.value)
    assert "a.html:3:" in text and "cdn.example.com" in text
    assert "a.html:5:" in text and '"gone"' in text
    assert "a.html:6:" in text and "arxiv" not in text


def test_real_site_builds_and_its_prose_has_no_raw_tex(tmp_path):
    """`make site` on this repository builds every page, and no formula of the prose is left as
    TeX source (a `$` pair the math parser did not take, such as `$\\delta = $`). Code panes, inline
    code and KaTeX's own TeX annotations are left out of the search. (How long the build takes is
    printed by `make site`; timing goals live in benchmarks, not in tests.)"""
    need_katex()
    stats = build(REPO, tmp_path / "docs", check=False, notation=REAL_SITE_NOTATION)
    assert stats["pages"] >= 10 and (tmp_path / "docs/index.html").is_file()
    raw_tex = re.compile(r"\$[^$<>\n]{0,80}\\[a-zA-Z]+[^$<>\n]{0,80}\$")
    skip = re.compile(r"<(pre|code|script|annotation)\b[\s\S]*?</\1>")
    found = []
    for page in (tmp_path / "docs").rglob("*.html"):
        prose = skip.sub("", page.read_text(encoding="utf-8"))
        found += [f"{page.relative_to(tmp_path / 'docs')}: {m.group(0)}" for m in raw_tex.finditer(prose)]
    assert not found, "unrendered TeX in the prose:\n" + "\n".join(found)


def test_real_site_links_and_anchors_resolve(tmp_path):
    """Every link written in this repository's readmes and docstrings reaches its page and anchor
    (the message names each broken one with its source file and line)."""
    need_katex()
    build(REPO, tmp_path / "docs", notation=REAL_SITE_NOTATION)


def test_a_missing_tool_skips_locally_but_fails_in_ci(monkeypatch):
    """Every skip of the site tests goes through skip_or_fail: with CI set to a true value a
    missing KaTeX or Chromium is a failure, so CI can never pass by skipping."""
    import conftest_site
    for value, ci in [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("", False)]:
        monkeypatch.setenv("CI", value)
        assert conftest_site.in_ci() is ci, value
        expected = pytest.fail.Exception if ci else pytest.skip.Exception
        with pytest.raises(expected):
            conftest_site.skip_or_fail("a tool is missing")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(conftest_site, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(pytest.fail.Exception):
        conftest_site.need_chromium()
