"""The whole build on a fixture repository and on this one: the URL scheme, links to sources, anchors
and line numbers, math, and this repository's own site."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from conftest_site import FIXTURE, REPO, build_fails, fixture_repo, need_katex, parse_html, read_page
from utils.build import build
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


def hrefs(site: Path, name: str) -> set[str]:
    return {a.attrs["href"] for a in read_page(site, name).all("a", href=True)}


def test_pages_follow_the_url_scheme(site):
    for name in ["index.html", "labml_nn.html", "paper/index.html", "paper/readme.html",
                 "paper/attention.html", "loose/index.html", "loose/thing.html", "search_index.js",
                 "static/site.css", "static/pygments.css", "static/katex/katex.min.css"]:
        assert (site / name).is_file(), name
    assert list((site / "static/katex/fonts").glob("KaTeX_Main-Regular.woff2"))


def test_source_links_are_rewritten_to_pages(site):
    assert {"paper/readme.html", "paper/attention.html", "labml_nn.html"} <= hrefs(site, "index.html")
    assert "attention.html" in hrefs(site, "paper/readme.html")
    assert [img.attrs["src"] for img in read_page(site, "paper/readme.html").all("img")] == ["pictures/plot.png"]
    assert (site / "paper/pictures/plot.png").is_file()
    assert "readme.html" in hrefs(site, "paper/attention.html")


def test_anchors_from_qualified_names_headings_and_lines(site):
    html = read_page(site, "paper/attention.html")
    ids = [el.attrs["id"] for el in html.all(id=True)]
    for anchor in ["Attention", "Attention.forward", "Attention.__init__", "helper", "shapes"]:
        assert ids.count(anchor) == 1, anchor
    # every code line carries its real number
    source = fixture_repo_text("labml_nn/paper/attention.py")
    row = source.splitlines().index("        scores = q @ k  # the scores") + 1
    assert html.one(id=f"L{row}").text().strip() == "scores = q @ k  # the scores"
    assert not [i for i in ids if i.startswith("section-")]


def test_every_code_line_is_shown_once_with_its_number(site):
    module = split_source(fixture_repo_text("labml_nn/paper/attention.py"))
    code_rows = [n for s in module.sections for n, _ in s.code]
    shown = [int(el.attrs["id"][1:]) for el in read_page(site, "paper/attention.html").all("span", "line")]
    assert shown == code_rows and len(set(shown)) == len(shown)


def listing(site: Path, name: str) -> dict[str, tuple[str, "object"]]:
    """Title -> (summary text, summary element) of each entry of a page's listing."""
    found = {}
    for li in read_page(site, name).one("nav", "listing").all("li"):
        summary = li.all("p")
        found[li.one(cls="listing-title").text()] = (summary[0].text() if summary else "", summary[0] if summary else None)
    return found


def test_folder_listing_shows_titles_and_summaries(site):
    assert listing(site, "paper/index.html")["Fixture attention"][0].startswith("Attention with")
    text, element = listing(site, "loose/index.html")["A loose module"]
    assert text == "It lives in a folder without __init__.py." and element.one("code").text() == "__init__.py"
    assert listing(site, "index.html")["A paper"][0] == "The paper folder's summary."


def test_summaries_in_listings_render_their_math(site):
    text, element = listing(site, "paper/index.html")["Fixture attention"]
    assert element.all("span", "katex") and "$" not in text and "\\mathbf" not in element.one("span", "katex-html").text()


def test_math_is_typeset_and_currency_is_not(site):
    home = read_page(site, "index.html")
    assert "Costs $5 and $10" in home.one("div", "intro").text()
    assert [k.one("annotation").text() for k in home.all("span", "katex")] == ["\\alpha + \\beta"]
    assert read_page(site, "paper/attention.html").all("span", "katex-display")


@pytest.mark.checks("readme.md")
def test_no_page_loads_from_another_host(site):
    loads = [(path.name, el.attrs.get("src") or el.attrs.get("href"))
             for path in site.rglob("*.html") for el in parse_html(path.read_text()).iter()
             if el.tag in ("script", "link", "img") and (el.attrs.get("src") or el.attrs.get("href"))]
    assert len(loads) > 20 and not [x for x in loads if re.match(r"(https?:)?//", x[1])]


def test_non_raw_docstring_fails_the_build(tmp_path):
    error = build_fails(tmp_path, {"labml_nn/paper/bad.py": 'def f():\n    """$\\alpha$"""\n'})
    assert (error.path, error.line) == ("labml_nn/paper/bad.py", 2)


def test_rejected_formula_fails_the_build(tmp_path):
    error = build_fails(tmp_path, {"labml_nn/paper/bad.py": '# Fine.\n# Broken: $\\frac{1$\nx = 1\n'})
    assert (error.path, error.line) == ("labml_nn/paper/bad.py", 2)


def test_real_site_builds_and_its_prose_has_no_raw_tex(tmp_path):
    """`make site` on this repository builds every page, and no formula of the prose is left as
    TeX source (a `$` pair the math parser did not take, such as `$\\delta = $`). Code panes, inline
    code and KaTeX's own TeX annotations are left out of the search. (How long the build takes is
    printed by `make site`; timing goals live in benchmarks, not in tests.)"""
    need_katex()
    stats = build(REPO, tmp_path / "docs", check=False)
    assert stats["pages"] >= 10 and (tmp_path / "docs/index.html").is_file()
    raw_tex = re.compile(r"\$[^$\n]{0,80}\\[a-zA-Z]+[^$\n]{0,80}\$")  # over text, not markup
    found = []
    for page in (tmp_path / "docs").rglob("*.html"):
        prose = "\n".join(prose_text(parse_html(page.read_text(encoding="utf-8"))))
        found += [f"{page.relative_to(tmp_path / 'docs')}: {m.group(0)}" for m in raw_tex.finditer(prose)]
    assert not found, "unrendered TeX in the prose:\n" + "\n".join(found)
    assert raw_tex.search("\n".join(prose_text(parse_html("<p>where $\\delta = $ is</p><code>$\\x$</code>"))))


def prose_text(node) -> list[str]:
    """The text of a page outside code, scripts and KaTeX's TeX annotations."""
    found = []
    for child in node.children:
        if isinstance(child, str):
            found.append(child)
        elif child.tag not in ("pre", "code", "script", "annotation"):
            found += prose_text(child)
    return found


def test_real_site_links_and_anchors_resolve(tmp_path):
    """Every link written in this repository's readmes and docstrings reaches its page and anchor
    (the message names each broken one with its source file and line)."""
    need_katex()
    build(REPO, tmp_path / "docs")


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
