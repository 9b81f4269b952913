"""Numbers on pages come from the benchmark reports: `{report:NAME.KEY}` placeholders in prose and
`<!-- report: FILE.md -->` block includes in readmes, filled in at build time."""
from __future__ import annotations

import json

import pytest

from conftest_site import built_fixture_site, fixture_repo, need_katex, read_page
from utils.build import build
from utils.errors import SiteError

FIGURES = {"figures": {"train_vs_peer": "1.27×", "bold": "**36.6× faster**", "cached.ms": "1.24 ms",
                       "math": "$3 \\times$ less"},
           "rows": [{"model": "ours"}]}

REPORT_MD = """### Throughput

| model | tokens/s |
|---|---|
| ours | 8,268 |

Faster by {report:x.train_vs_peer}. ![plot](plot.png)
"""

PAGES = {
    "bench/reports/x.json": json.dumps(FIGURES),
    "bench/reports/x.md": REPORT_MD,
    "bench/reports/plot.png": "png bytes",
    "readme.md": """
        # Home

        Training is {report:x.train_vs_peer} the peer's speed; the cache is {report:x.bold}.
        Written as code, `{report:x.train_vs_peer}` stays a placeholder.

        <!-- report: x.md -->

        Back on the home page, [attention](labml_nn/paper/attention.py).
        """,
    "labml_nn/paper/measured.py": '''
        r"""
        ---
        title: Measured
        summary: One step takes {report:x.cached.ms}.
        ---

        # Measured

        A step takes {report:x.cached.ms}; it needs {report:x.math}.

        ```python
        speed = "{report:x.train_vs_peer}"
        ```
        """

        # In comments too: {report:x.train_vs_peer}.
        LABEL = "{report:x.bold}"


        def f():
            """The docstring of a function: {report:x.train_vs_peer}."""
            return 1
        ''',
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return built_fixture_site(tmp_path_factory, PAGES)


def paragraphs(site, name: str) -> list:
    return read_page(site, name).all("p")


def test_placeholders_in_readme_docstrings_and_comments_become_figures(site):
    home = {p.text() for p in paragraphs(site, "index.html")}
    assert any(t.startswith("Training is 1.27× the peer's speed; the cache is 36.6× faster.") for t in home)
    bold = [s.text() for p in paragraphs(site, "index.html") for s in p.all("strong")]
    assert bold == ["36.6× faster"]  # inserted as Markdown
    page = {p.text() for p in paragraphs(site, "paper/measured.html")}
    assert any(t.startswith("A step takes 1.24 ms; it needs") for t in page)  # a key with a dot
    assert "In comments too: 1.27×." in page and "The docstring of a function: 1.27×." in page
    needs = next(p for p in paragraphs(site, "paper/measured.html") if p.text().startswith("A step takes"))
    assert needs.one("span", "katex").one("annotation").text() == "3 \\times"  # a figure's math is typeset
    listing = read_page(site, "paper/index.html").one("nav", "listing").text()
    assert "One step takes 1.24 ms." in listing  # front-matter summaries are prose too


def test_code_keeps_its_placeholders(site):
    assert "{report:x.train_vs_peer}" in [c.text() for c in read_page(site, "index.html").all("code")]
    page = read_page(site, "paper/measured.html")
    assert 'speed = "{report:x.train_vs_peer}"' in page.one("div", "codeblock").text()  # a fenced block
    assert 'LABEL = "{report:x.bold}"' in page.one("div", "sections").text()  # the code column


def test_a_block_include_shows_the_report_on_the_site(site):
    home = read_page(site, "index.html")
    intro = home.one("div", "intro")
    assert "report: x.md" not in (site / "index.html").read_text(encoding="utf-8")
    blocks = [(el.tag, el.text().strip()) for el in intro.children if not isinstance(el, str)]
    assert [b for b in blocks if b[0] == "h3"] == [("h3", "Throughput")]
    assert "8,268" in [td.text() for td in intro.all("td")]
    assert "Faster by 1.27×." in intro.text()  # placeholders inside the report are filled in too
    assert [img.attrs["src"] for img in intro.all("img")] == ["static/reports/plot.png"]
    assert (site / "static/reports/plot.png").is_file()
    order = [b[1][:20] for b in blocks]
    assert order.index("Throughput") < next(i for i, t in enumerate(order) if t.startswith("Back on the home"))


def build_error(tmp_path, extra) -> SiteError:
    need_katex()
    root = fixture_repo(tmp_path / "repo", {"bench/reports/x.json": json.dumps(FIGURES), **extra})
    with pytest.raises(SiteError) as e:
        build(root, tmp_path / "out", results=False)
    return e.value


@pytest.mark.parametrize("placeholder,missing", [
    ("{report:nope.speed}", "there is no report bench/reports/nope.json"),
    ("{report:x.speed}", "bench/reports/x.json has no figure 'speed'"),
    ("{report:rows.model}", "bench/reports/rows.json has no top-level \"figures\" object"),
    ("{report:number.k}", "is 1.5, not a string"),
    ("{report:x}", "malformed report placeholder '{report:x}'"),
])
def test_a_missing_figure_fails_with_page_line_placeholder_and_what_is_missing(tmp_path, placeholder, missing):
    error = build_error(tmp_path, {
        "bench/reports/rows.json": json.dumps({"rows": []}),
        "bench/reports/number.json": json.dumps({"figures": {"k": 1.5}}),
        "labml_nn/paper/readme.md": f"# Readme\n\nFirst line.\nIt is {placeholder} fast.\n",
    })
    assert (error.path, error.line) == ("labml_nn/paper/readme.md", 4)
    assert missing in str(error) and (placeholder in str(error) or "malformed" in missing)


def test_a_placeholder_in_a_comment_reports_its_own_line(tmp_path):
    error = build_error(tmp_path, {"labml_nn/paper/m.py": "x = 1\n# One.\n# Two {report:x.gone}.\ny = 2\n"})
    assert (error.path, error.line) == ("labml_nn/paper/m.py", 3)


def test_a_placeholder_inside_math_fails(tmp_path):
    error = build_error(tmp_path, {"labml_nn/paper/readme.md": "# R\n\n$x = {report:x.train_vs_peer}$\n"})
    assert (error.path, error.line) == ("labml_nn/paper/readme.md", 3) and "inside math" in str(error)


def test_a_missing_included_report_fails(tmp_path):
    error = build_error(tmp_path, {"labml_nn/paper/readme.md": "# R\n\n<!-- report: gone.md -->\n"})
    assert (error.path, error.line) == ("labml_nn/paper/readme.md", 3)
    assert "bench/reports/gone.md" in str(error)


def test_an_include_inside_a_code_block_stays_code_and_lines_stay_right(tmp_path):
    """An include line in a fenced block is shown as written; after an include, a broken link is
    reported at its own line of the readme."""
    error = build_error(tmp_path, {
        "bench/reports/x.md": "one\n\ntwo\n\nthree\n",
        "labml_nn/paper/readme.md": "# R\n\n```\n<!-- report: gone.md -->\n```\n\n"
                                    "<!-- report: x.md -->\n\n[broken](nowhere.md)\n",
    })
    assert (error.path, error.line) == ("labml_nn/paper/readme.md", 9) and "nowhere.md" in str(error)


def test_a_report_linked_from_outside_the_repository_is_refused(tmp_path):
    need_katex()
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"figures": {"speed": "secret"}}))
    root = fixture_repo(tmp_path / "repo", {"labml_nn/paper/readme.md": "# R\n\nIt is {report:y.speed}.\n"})
    (root / "bench/reports").mkdir(parents=True)
    (root / "bench/reports/y.json").symlink_to(outside)
    with pytest.raises(SiteError) as e:
        build(root, tmp_path / "out", results=False)
    assert "bench/reports/y.json" in str(e.value) and "outside the repository" in str(e.value)
