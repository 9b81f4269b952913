"""Notation that links to code: the table is checked against the code, and every occurrence of a
symbol and of a name is marked for the page's highlighting."""
from __future__ import annotations

import io
import re
import textwrap
import tokenize

import pytest

from conftest_site import NOTATION, built_fixture_site, fixture_repo, need_katex
from utils.build import build
from utils.errors import SiteError
from utils.katex import typeset
from utils.markdown import Formula
from utils.notation import Notation, mark_symbols, name_of, read_tables, split_symbols
from utils.markdown import Markdown


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return built_fixture_site(tmp_path_factory, NOTATION)


def notation_page(site) -> str:
    return (site / "paper/notation.html").read_text(encoding="utf-8")


def table(rows: str) -> Notation:
    text = "| symbol | meaning | code |\n|---|---|---|\n" + textwrap.dedent(rows).strip() + "\n"
    return read_tables(Markdown().md.parse(text), "p.py", 1)


def sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="sec[^"]*" id="([^"]+)">([\s\S]*?)</section>', html))


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


# -- the check ---------------------------------------------------------------------------------

def build_error(tmp_path, extra) -> SiteError:
    need_katex()
    root = fixture_repo(tmp_path / "repo", extra)
    with pytest.raises(SiteError) as e:
        build(root, tmp_path / "out", results=False)
    return e.value


def module(table_rows: str, code: str) -> str:
    return ('r"""\n# M\n\n| symbol | meaning | code | shape |\n|---|---|---|---|\n'
            + textwrap.dedent(table_rows).strip() + '\n"""\n' + textwrap.dedent(code))


def test_a_table_name_the_code_never_uses_fails_the_build_with_page_symbol_and_name(tmp_path):
    error = build_error(tmp_path, {"labml_nn/paper/m.py": module(r"""
        | $q$ | query | `q` | |
        | $m$ | memory length | `mem_len` | |
    """, "def f(q):\n    return q\n")})
    assert (error.path, error.line) == ("labml_nn/paper/m.py", 7)
    assert "$m$" in str(error) and "`mem_len`" in str(error) and "$q$" not in str(error)


def test_the_check_lists_every_failure_of_every_page(tmp_path):
    error = build_error(tmp_path, {
        "labml_nn/paper/a.py": module(r"""
            | $K, V$ | keys, values | `k`, `v` | |
            | $\delta_\cdot$ | gradients | `d_…` | |
        """, "k = 1\n"),
        "labml_nn/paper/b.py": module(r"""
            | $f_c$ | compression | `layer.compress` | |
            | | memory | `memory.mem[l]` | |
        """, "layer = memory = l = None\n"),
    })
    text = str(error)
    assert "labml_nn/paper/a.py:6: notation table: $V$ -> `v`: the code never uses the name `v`" in text
    assert "labml_nn/paper/a.py:7:" in text and "`d_…` is not a Python name or expression" in text
    assert "labml_nn/paper/b.py:6:" in text and "`compress`" in text
    assert "labml_nn/paper/b.py:7: notation table: (no symbol) -> `memory.mem[l]`" in text
    assert "`k`" not in text.replace("`k`, `v`", "")  # k is used


def test_names_in_comments_strings_or_prose_do_not_count(tmp_path):
    error = build_error(tmp_path, {"labml_nn/paper/m.py": module(r"""
        | $L$ | memory length | `mem_len` | |
    """, "# mem_len is the memory length\nx = 'mem_len'\n")})
    assert "`mem_len`" in str(error)


def test_report_mode_builds_and_returns_every_problem(tmp_path, capsys):
    need_katex()
    root = fixture_repo(tmp_path / "repo", {"labml_nn/paper/m.py": module(r"""
        | $L$ | memory length | `mem_len` | |
    """, "x = 1\n")})
    stats = build(root, tmp_path / "out", results=False, notation="report")
    assert [(p, n) for p, n, _ in stats["notation_problems"]] == [("labml_nn/paper/m.py", 6)]
    assert "mem_len" in capsys.readouterr().err


# -- marking symbols in formulas -----------------------------------------------------------------

def test_occurrences_are_matched_as_atoms():
    n = table(r"""
        | $q_i$ | query | `q` |
        | $x$, $x'$ | in, out | `x`, `out` |
        | $\mathbf{m}_t$ | memory | `m` |
        | $W_{k,R}$ | projection | `w` |
    """)
    marked = mark_symbols(r"q_i^\top k_j + x' + \hat{x} + x^2 + \mathbf{m}_{t} + \mathbf{m}_{t-1} + W_{k, R} R", n)
    found = re.findall(r"\\htmlClass\{nsym nsym-(\d+)\}\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", marked)
    assert found == [("0", r"q_i^\top"), ("2", "x'"), ("3", r"\mathbf{m}_{t}"), ("4", "W_{k, R}")]
    assert mark_symbols(r"\frac{x}{\sqrt{q_i}} e^{-x}", n).count("nsym-") == 3
    assert mark_symbols(r"\text{x and } x_i", n).count("nsym-") == 0
    # A script that is a label is no occurrence of a plain symbol; an expression or a distinctive
    # symbol is.
    assert mark_symbols(r"\gamma_x + n_{xq} + e^{x}", n).count("nsym-") == 0
    assert mark_symbols(r"\delta_{x'} + \mathbf{m}_{t - x} + y_{q_i}", n).count("nsym-") == 3


def test_marking_never_changes_what_a_formula_shows():
    """The marked formulas typeset to the same glyphs, in the same order, as the formulas as
    written (KaTeX only adds the wrapping span)."""
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
    pairs = [(t, mark_symbols(t, n)) for t in texes]
    assert all(m != t for t, m in pairs[:3])
    html = typeset([Formula(t, True, "p.py", 1) for pair in pairs for t in pair])

    def glyphs(tex):
        visible = html[(tex, True)].split('<span class="katex-html"', 1)[1]
        return re.sub(r"<[^>]+>", "", visible)

    for tex, marked in pairs:
        assert glyphs(tex) == glyphs(marked), tex


# -- the built page --------------------------------------------------------------------------------

def test_symbols_in_prose_equations_and_table_are_marked(site):
    html = notation_page(site)
    intro = html.split('<div class="prose intro">', 1)[1].split("</div>\n", 1)[0]
    syms = re.findall(r'<span class="enclosing nsym" data-sym="(\d+)" data-vars="([^"]*)" tabindex="(-?\d)"', intro)
    by_id = {}
    for sid, vars_, tab in syms:
        by_id.setdefault(sid, []).append((vars_, tab))
    # q_i (0), k_j (1), W_o (2), x (3), x' (4), \hat{x} (5): in the equations and in the table
    assert set(by_id) == {"0", "1", "2", "3", "4", "5"}
    assert by_id["0"][0] == ("q", "0") and by_id["2"][0][0] == "w_o" and by_id["4"][0][0] == "out"
    # the first occurrence in a section and every occurrence in the table are tab stops
    assert all(tab == "0" for _, tab in by_id["0"][:2])
    # the annotation (what screen readers and TeX copy see) is the TeX as written
    assert '<annotation encoding="application/x-tex">s = q_i^\\top k_j + \\hat{x} + x\'</annotation>' in html
    assert "htmlClass" not in html


def test_names_in_the_code_column_are_marked_and_only_them(site):
    html = notation_page(site)
    source = textwrap.dedent(NOTATION["labml_nn/paper/notation.py"]).lstrip("\n")
    tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.NAME]
    code = "".join(re.findall(r'<pre class="hl"><code>([\s\S]*?)</code></pre>', html.split('<div class="sections">')[1]))
    marked = re.findall(r'class="[^"]*\bnvar\b[^"]*" data-var="([^"]+)" data-syms="([^"]*)"', code)
    for name, syms in [("q", "0"), ("k", "1"), ("x", "3"), ("out", "4"), ("x_hat", "5"), ("w_o", "2"), ("mem", "")]:
        assert (name, syms) in marked, name
        assert sum(1 for n, _ in marked if n == name) == tokens.count(name), name
    assert {n for n, _ in marked} == {"q", "k", "x", "out", "x_hat", "w_o", "mem"}


def test_inline_code_of_the_prose_that_is_a_name_is_marked(site):
    html = notation_page(site)
    assert '<code class="nvar" data-var="q" data-syms="0">q</code>' in html
    assert "<code>qq</code>" in html
    assert re.search(r'<code class="nvar" data-var="q" tabindex="0" data-syms="0">q</code>', html)


def test_tab_stops_are_the_first_occurrences(site):
    """In the code, the first occurrence of each name on the page; in the prose, the first of each
    symbol in each section."""
    html = notation_page(site)
    code = html.split('<div class="sections">')[1]
    for name in ["q", "x", "x_hat", "w_o"]:
        stops = re.findall(rf'data-var="{name}" data-syms="[^"]*" tabindex="(-?\d)"', code)
        assert stops[0] == "0" and set(stops[1:]) == {"-1"} and len(stops) >= 2, name
    fwd = sections(html)["Layer.forward"]
    stops = re.findall(r'data-sym="3" data-vars="x" tabindex="(-?\d)"', fwd)
    assert stops == ["0", "-1"]


def test_marking_never_changes_what_the_real_pages_formulas_show():
    """Over every formula of every module of this repository that has a notation table: the
    marked formula typesets to the same glyphs as the formula as written."""
    need_katex()
    from pathlib import Path
    from utils.split import split_source
    repo = Path(__file__).resolve().parents[1]
    md = Markdown()
    pairs, pages = [], 0
    for path in sorted((repo / "labml_nn").rglob("*.py")):
        module = split_source(path.read_text(encoding="utf-8"), str(path))
        prose = [p for s in module.sections for p in s.prose]
        parsed = [md.parse(p.text, str(path), p.text_line, set(), None, lambda n, k, line: "1")
                  for p in prose]
        notation = next((read_tables(x.tokens, str(path), p.text_line) for x, p in zip(parsed, prose)
                         if p.kind == "module"), None)
        if notation is None:
            continue
        pages += 1
        for x in parsed:
            for f in x.formulas:
                pairs.append((f.tex, f.display, mark_symbols(f.tex, notation)))
    assert pages >= 3 and sum(t != m for t, _, m in pairs) >= 50
    html = typeset([Formula(t, d, "p.py", 1) for t, d, m in pairs] + [Formula(m, d, "p.py", 1) for t, d, m in pairs])

    def glyphs(tex, display):
        return re.sub(r"<[^>]+>", "", html[(tex, display)].split('<span class="katex-html"', 1)[1])

    changed = [t for t, d, m in pairs if glyphs(t, d) != glyphs(m, d)]
    assert not changed, changed[:5]
