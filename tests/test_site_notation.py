"""Notation that links to code: the table's symbols are marked in every formula and its names in the
code and the prose; a table naming what the code does not use is a warning of the build."""
from __future__ import annotations

import io
import re
import textwrap
import tokenize

import pytest

from conftest_site import NOTATION, REPO, built_fixture_site, fixture_repo, need_katex, parse_html, read_page
from utils.build import build, main
from utils.katex import Typesetting
from utils.markdown import Formula, Markdown
from utils.notation import Table, code_names, lint, mark_symbols, name_of, read_table, split_symbols
from utils.split import split_source

MARK = re.compile(r"\\htmlData\{sym=(\d+)(?:, vars=[^}]*)?\}\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")  # over TeX


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return built_fixture_site(tmp_path_factory, NOTATION)


def table(rows: str) -> Table:
    text = "| symbol | meaning | code |\n|---|---|---|\n" + textwrap.dedent(rows).strip() + "\n"
    return read_table(Markdown().md.parse(text), "p.py", 1)


# -- reading the table --------------------------------------------------------------------------

def test_symbols_pair_with_names_in_order_or_map_to_all():
    n = table(r"""
        | $K, V$ | keys and values | `k`, `v` |
        | $x$, $x'$ | in and out | `x`, `out` |
        | $c$ | rate | `compression_rate` (`cmem_ratio` in the arguments) |
        | $W_{k,R}$ | projection | `self.to_r` |
    """)
    assert {s.tex: s.vars for s in n.symbols} == {
        "K": ["k"], "V": ["v"], "x": ["x"], "x'": ["out"], "c": ["compression_rate", "cmem_ratio"],
        "W_{k,R}": ["to_r"]}
    assert split_symbols(r"W_{k,R}, \mathbf{m}_t") == [r"W_{k,R}", r"\mathbf{m}_t"]


def test_a_name_is_its_last_attribute_or_its_base_name():
    assert name_of("memory.mem[l]").key == "mem"
    assert name_of("layer.compress").key == "compress"
    assert name_of("memory[l]").key == "memory"
    assert name_of("self.f(x)").key == "f"
    assert name_of("d_…").key is None  # not Python


# -- the lint: a warning, never a failure -----------------------------------------------------------

def module(table_rows: str, code: str) -> str:
    return ('r"""\n# M\n\n| symbol | meaning | code | shape |\n|---|---|---|---|\n'
            + textwrap.dedent(table_rows).strip() + '\n"""\n' + textwrap.dedent(code))


def warnings_of(tmp_path, extra) -> list[tuple[str, int, str]]:
    """The notation warnings of a fixture build, which must succeed."""
    need_katex()
    root = fixture_repo(tmp_path / "repo", extra)
    stats = build(root, tmp_path / "out", results=False)
    assert (tmp_path / "out/paper/index.html").is_file()
    return [w for w in stats["warnings"] if "notation table" in w[2]]


def test_a_table_name_the_code_never_uses_is_a_warning_with_page_symbol_and_name(tmp_path):
    found = warnings_of(tmp_path, {"labml_nn/paper/m.py": module(r"""
        | $q$ | query | `q` | |
        | $m$ | memory length | `mem_len` | |
    """, "def f(q):\n    return q\n")})
    assert [(p, n) for p, n, _ in found] == [("labml_nn/paper/m.py", 7)]
    assert "$m$" in found[0][2] and "`mem_len`" in found[0][2]


def test_the_lint_lists_every_problem_of_every_page(tmp_path):
    found = warnings_of(tmp_path, {
        "labml_nn/paper/a.py": module(r"""
            | $K, V$ | keys, values | `k`, `v` | |
            | $\delta_\cdot$ | gradients | `d_…` | |
        """, "k = 1\n"),
        "labml_nn/paper/b.py": module(r"""
            | $f_c$ | compression | `layer.compress` | |
            | | memory | `memory.mem[l]` | |
        """, "layer = memory = l = None\n"),
    })
    assert sorted((p, n, m) for p, n, m in found) == [
        ("labml_nn/paper/a.py", 6, "notation table: $V$ -> `v`: the code never uses the name `v`"),
        ("labml_nn/paper/a.py", 7, "notation table: $\\delta_\\cdot$ -> `d_…`: `d_…` is not a Python name or expression"),
        ("labml_nn/paper/b.py", 6, "notation table: $f_c$ -> `layer.compress`: the code never uses the name `compress`"),
        ("labml_nn/paper/b.py", 7, "notation table: (no symbol) -> `memory.mem[l]`: the code never uses the name `mem`"),
    ]


def test_names_in_comments_strings_or_prose_do_not_count():
    source = module(r"| $L$ | memory length | `mem_len` | |", "# mem_len is the memory length\nx = 'mem_len'\n")
    doc = next(p for s in split_source(source).sections for p in s.prose if p.kind == "module")
    n = read_table(Markdown().md.parse(doc.text), "m.py", doc.text_line)
    assert [m for _, _, m in lint(n, code_names(source))] == [
        "notation table: $L$ -> `mem_len`: the code never uses the name `mem_len`"]
    assert lint(n, code_names(source + "mem_len = 1\n")) == []


def test_the_build_command_shows_the_warnings(tmp_path, capsys):
    need_katex()
    root = fixture_repo(tmp_path / "repo", {"labml_nn/paper/m.py": module("| $L$ | memory length | `mem_len` | |",
                                                                         "x = 1\n")})
    assert main(["--root", str(root), "--out", str(tmp_path / "out"), "--no-test-results"]) == 0
    err = capsys.readouterr().err
    assert "labml_nn/paper/m.py:6: notation table: $L$ -> `mem_len`: the code never uses the name `mem_len`" in err


# -- marking symbols in formulas -----------------------------------------------------------------

def test_occurrences_are_matched_as_atoms():
    n = table(r"""
        | $q_i$ | query | `q` |
        | $x$, $x'$ | in, out | `x`, `out` |
        | $\mathbf{m}_t$ | memory | `m` |
        | $W_{k,R}$ | projection | `w` |
    """)
    marked = mark_symbols(r"q_i^\top k_j + x' + \hat{x} + x^2 + \mathbf{m}_{t} + \mathbf{m}_{t-1} + W_{k, R} R", n)
    assert MARK.findall(marked) == [("0", r"q_i^\top"), ("2", "x'"), ("3", r"\mathbf{m}_{t}"), ("4", "W_{k, R}")]
    assert len(MARK.findall(mark_symbols(r"\frac{x}{\sqrt{q_i}} e^{-x}", n))) == 3
    assert mark_symbols(r"\text{x and } x_i", n) == r"\text{x and } x_i"
    # A script that is a label is no occurrence of a plain symbol; an expression or a distinctive
    # symbol is.
    assert mark_symbols(r"\gamma_x + n_{xq} + e^{x}", n) == r"\gamma_x + n_{xq} + e^{x}"
    assert len(MARK.findall(mark_symbols(r"\delta_{x'} + \mathbf{m}_{t - x} + y_{q_i}", n))) == 3
    # A single-token argument gets braces of its own, so the formula still means the same.
    assert mark_symbols(r"\sqrt x", n) == r"\sqrt {\htmlData{sym=1, vars=x}{x}}"


def glyphs(html: str) -> str:
    """What a typeset formula shows: the text of KaTeX's HTML (its MathML copy left out)."""
    return parse_html(html).one("span", "katex-html").text()


def test_marking_never_changes_what_a_formula_shows():
    """The marked formulas typeset to the same glyphs, in the same order, as the formulas as
    written (KaTeX only adds the marking span), and copying one gives the TeX as written."""
    need_katex()
    n = table(r"""
        | $q_i$ | query | `q` |
        | $k_j$ | key | `k` |
        | $x$, $x'$ | in, out | `x`, `out` |
        | $h^{l-1}_{\tau+1}$ | input | `h` |
    """)
    texes = [r"\mathbf{A}^{rel}_{i,j} = \underbrace{q_i^\top k_j}_{(a)} + \underbrace{q_i^\top W_{k,R} R_{i-j}}_{(b)}",
             r"\tilde{h}^{l-1}_{\tau+1} = [\operatorname{SG}(h^{l-1}_\tau) \circ h^{l-1}_{\tau+1}]",
             r"\begin{aligned} x' &= x + f(x) \\ y &= x'^2 \end{aligned}", r"\sqrt x + \frac12 x"]
    formulas = []
    for tex in texes:
        marked = Formula(tex, True, "p.py", 1)
        marked.rewrite(mark_symbols(tex, n))
        formulas += [Formula(tex, True, "p.py", 1), marked]
    assert all(m.original for m in formulas[1::2]) and all("htmlData" in m.tex for m in formulas[1:6:2])
    html = Typesetting(formulas).result()
    for plain, marked in zip(formulas[::2], formulas[1::2]):
        assert glyphs(html[(plain.tex, True)]) == glyphs(html[(marked.tex, True)]), plain.tex
        annotation = parse_html(html[(marked.tex, True)]).one("annotation")
        assert annotation.text() == plain.tex and len(parse_html(html[(marked.tex, True)]).all(data_sym=True)) > 0


def test_marking_never_changes_what_the_real_pages_formulas_show():
    """Over every formula of every module of this repository that has a notation table: the
    marked formula typesets to the same glyphs as the formula as written."""
    need_katex()
    md = Markdown()
    pairs, pages = [], 0
    for path in sorted((REPO / "labml_nn").rglob("*.py")):
        module = split_source(path.read_text(encoding="utf-8"), str(path))
        prose = [p for s in module.sections for p in s.prose]
        parsed = [md.parse(p.text, str(path), p.text_line, set()) for p in prose]
        notation = next((read_table(x.tokens, str(path), p.text_line) for x, p in zip(parsed, prose)
                         if p.kind == "module"), None)
        if notation is None:
            continue
        pages += 1
        pairs += [(f.tex, f.display, mark_symbols(f.tex, notation)) for x in parsed for f in x.formulas]
    assert pages >= 3 and sum(t != m for t, _, m in pairs) >= 50
    html = Typesetting([Formula(t, d, "p.py", 1) for t, d, m in pairs] + [Formula(m, d, "p.py", 1) for t, d, m in pairs]).result()
    changed = [t for t, d, m in pairs if glyphs(html[(t, d)]) != glyphs(html[(m, d)])]
    assert not changed, changed[:5]


# -- the built page --------------------------------------------------------------------------------

def test_symbols_in_prose_equations_and_table_are_marked(site):
    page = read_page(site, "paper/notation.html")
    intro = page.one("div", "intro")
    marks = {}
    for el in intro.all(data_sym=True):
        marks.setdefault(el.attrs["data-sym"], set()).add(el.attrs["data-vars"] if "data-vars" in el.attrs else None)
    # q_i (0), k_j (1), W_o (2), x (3), x' (4), \hat{x} (5): in the equations and in the table
    assert marks == {"0": {"q"}, "1": {"k"}, "2": {"w_o"}, "3": {"x"}, "4": {"out"}, "5": {"x_hat"}}
    table = intro.one("table")
    assert {el.attrs["data-sym"] for el in table.all(data_sym=True)} == set(marks)
    # copying a formula gives the TeX as written, not the marked TeX
    assert "s = q_i^\\top k_j + \\hat{x} + x'" in [a.text() for a in page.all("annotation")]
    assert not any("htmlData" in a.text() for a in page.all("annotation"))


def test_names_in_the_code_column_are_marked_and_only_them(site):
    page = read_page(site, "paper/notation.html")
    source = textwrap.dedent(NOTATION["labml_nn/paper/notation.py"]).lstrip("\n")
    tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.NAME]
    code = [el for pre in page.one("div", "sections").all("pre") for el in pre.all(cls="nvar")]
    marked = [(el.attrs["data-var"], el.attrs["data-syms"]) for el in code]
    for name, syms in [("q", "0"), ("k", "1"), ("x", "3"), ("out", "4"), ("x_hat", "5"), ("w_o", "2"), ("mem", "")]:
        assert (name, syms) in marked, name
        assert sum(1 for n, _ in marked if n == name) == tokens.count(name), name
    assert {n for n, _ in marked} == {"q", "k", "x", "out", "x_hat", "w_o", "mem"}
    assert all(el.text() == el.attrs["data-var"] for el in code)


def test_inline_code_of_the_prose_that_is_a_name_is_marked(site):
    page = read_page(site, "paper/notation.html")
    spans = {el.text(): el for el in page.one("div", "intro").all("code") if not el.ancestor("pre")}
    assert spans["q"].attrs.get("data-var") == "q" and spans["q"].attrs["data-syms"] == "0"
    assert "data-var" not in spans["qq"].attrs
    cell = [el for el in page.one("table").all("code") if el.text() == "memory.mem[0]"]
    assert cell and cell[0].attrs["data-var"] == "mem" and cell[0].attrs["data-syms"] == ""
