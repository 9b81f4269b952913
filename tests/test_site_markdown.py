"""Prose: what counts as math, where a formula is written, and how it is typeset."""
from __future__ import annotations

import pytest

from conftest_site import need_katex, parse_html
from utils.errors import SiteError
from utils.katex import Typesetting
from utils.markdown import Markdown, slugify


def formulas(text: str, first_line: int = 1):
    parsed = Markdown().parse(text, "p.py", first_line, set())
    return [(f.tex, f.display) for f in parsed.formulas], parsed


def render(text: str) -> str:
    need_katex()
    md = Markdown()
    parsed = md.parse(text, "p.py", 1, set())
    md.math_html = Typesetting(parsed.formulas).result()
    return md.render(parsed)


def test_currency_is_not_math():
    assert formulas("It costs $5 and $10 a month.")[0] == []
    assert formulas("Between $5 and $6.50, or $100.")[0] == []


def test_escaped_dollar_is_not_math():
    found, _ = formulas(r"Pay \$x$ now, and $y$ later.")
    assert found == [("y", False)]


def test_code_spans_keep_their_dollars():
    found, _ = formulas("Run `echo $HOME $PATH` and `a $x$ b`, then $z$.")
    assert found == [("z", False)]


def test_emphasis_and_subscripts_inside_math_are_math():
    found, _ = formulas("The product $a*b*c$ and $x_i + y_i$ and $x_{i,j}$.")
    assert found == [("a*b*c", False), ("x_i + y_i", False), ("x_{i,j}", False)]


def test_display_math_inline_and_as_a_block():
    found, _ = formulas("Inline display $$\\sum_i x_i$$ here.\n\n$$\n\\begin{aligned}a &= b\\\\c &= d\\end{aligned}\n$$\n")
    assert found == [("\\sum_i x_i", True), ("\\begin{aligned}a &= b\\\\c &= d\\end{aligned}", True)]


def test_math_in_tables_and_headings():
    found, parsed = formulas("## The score $\\mathbf{A}$\n\n| symbol | code |\n|---|---|\n| $q_i$ | `q` |\n")
    assert ("q_i", False) in found and ("\\mathbf{A}", False) in found
    assert parsed.headings[0].anchor == "the-score-mathbfa"


def test_formula_lines_point_at_the_source():
    text = "First line.\nSecond line with\n$x$ on the third.\n\n$$\ny\n$$\n"
    parsed = Markdown().parse(text, "p.py", 40, set())
    assert [(f.tex, f.line) for f in parsed.formulas] == [("x", 42), ("y", 45)]


def test_heading_anchors_are_unique_per_page():
    anchors = {"shapes"}
    parsed = Markdown().parse("# Shapes\n\n## Shapes\n", "p.py", 1, anchors)
    assert [h.anchor for h in parsed.headings] == ["shapes-2", "shapes-3"]
    assert slugify("Relative multi-head attention!") == "relative-multi-head-attention"


def test_links_go_through_the_resolver():
    seen = []
    parsed = Markdown().parse("See [x](a.md)\nand ![img](p.png).", "p.md", 3,
                              set(), lambda href, line: seen.append((href, line)) or href.upper())
    assert seen == [("a.md", 3), ("p.png", 4)]
    html = parse_html(Markdown().render(parsed))
    assert html.one("a").attrs["href"] == "A.MD" and html.one("img").attrs["src"] == "P.PNG"


def test_a_prose_edit_runs_before_math_and_links_are_read():
    def edit(tokens):
        for tok in tokens:
            for child in tok.children or []:
                if child.type == "text":
                    child.content = child.content.replace("X", "Y")
    parsed = Markdown().parse("A $x$ and X.", "p.md", 1, set(), edit=edit)
    assert parsed.plain == "A x and Y." and [f.tex for f in parsed.formulas] == ["x"]


def test_katex_renders_backslashes_and_environments():
    html = parse_html(render(r"$\mathbf{A}^{rel}_{i,j}$ and $$\underbrace{q^\top k}_{(a)} + \operatorname{softmax}(x)$$"))
    assert len(html.all("span", "katex")) == 2 and html.all(cls="katex-display") and html.all(cls="math-display")
    shown = "".join(k.text() for k in html.all("span", "katex-html"))
    assert "\\" not in shown and "softmax" in shown  # typeset, not left as source


def test_rendered_currency_and_code_are_left_alone():
    html = parse_html(render("Costs $5 and $10; `a $x$ b`; \\$y$."))
    assert not html.all(cls="katex") and html.one("code").text() == "a $x$ b"
    assert html.one("p").text() == "Costs $5 and $10; a $x$ b; $y$."


def test_rejected_formula_fails_with_file_and_line():
    need_katex()
    parsed = Markdown().parse("Fine $x$.\n\nBroken $\\frac{a$ here.\n", "labml_nn/m.py", 10, set())
    with pytest.raises(SiteError) as e:
        Typesetting(parsed.formulas).result()
    assert (e.value.path, e.value.line) == ("labml_nn/m.py", 12)
    assert "labml_nn/m.py:12:" in str(e.value)
