"""One notation for the site: each page's notation table agrees with the site's table of symbols (the
"Notation" section of labml_nn/transformers/__init__.py); a conflict is a warning of the build."""
from __future__ import annotations

import textwrap

import pytest

from conftest_site import fixture_repo, need_katex
from utils.build import build
from utils.markdown import Markdown
from utils.notation import table_rows
from utils.site_notation import SITE_TITLES, ambiguities, compare, conflicts

SITE = r'''r"""
# Transformers

## Notation

| symbol | meaning | in code |
|---|---|---|
| $L$ | memory length | `mem_len` |
| $N$ | number of layers | `depth` |
| $H$ | attention heads | `heads` |
| $h^l$ | hidden states of layer $l$ | `h` |
| $q_i$, $k_j$ | a query and a key ($Q$, $K$: stacked) | `q`, `k` |
| $\mathbf{u}$ | the global content bias | `u` |
| $\tau$ | a segment | |
"""
'''


def page(rows: str, code: str = "") -> str:
    return ('r"""\n# A page\n\n| symbol | meaning | code | shape |\n|---|---|---|---|\n'
            + textwrap.dedent(rows).strip() + '\n"""\n' + code)


def rows_of(text: str, titles=("code",)) -> list:
    return table_rows(Markdown().md.parse(text), 1, titles)


def check(rows: str) -> list[str]:
    """The messages of comparing a page's rows with the site table above."""
    site_doc = SITE.split('r"""', 1)[1].rsplit('"""', 1)[0]
    return [m for _, _, m in compare(rows_of(site_doc, SITE_TITLES), rows_of(page(rows)), "p.py")]


def test_a_page_that_agrees_passes():
    assert check(r"""
        | $L$ | memory length | `mem_len` | |
        | $h^{l-1}_{\tau+1}$ | the input of layer $l$ | `h` | `[batch_size, seq_len, dim]` |
        | $Q$, $K$ | stacked queries and keys | `q`, `k` | |
        | $q_i$ | the query of position $i$ | `self.q` | |
        | $\tau$ | a segment | `segment` | |
        | $c$ | compression rate | `compression_rate` | |
        | $L$ ($n_m$ in the paper) | memory length | `mem_len` | |
        | $N$ | layers (no code given) | | |
    """) == []


def test_a_page_that_redefines_L_fails():
    assert check(r"| $L$ | number of layers | `depth` | |") == [
        "notation: $L$ is `depth` here, but the site's $L$ is memory length (`mem_len`)"]


def test_a_page_that_writes_a_site_meaning_with_another_symbol_fails():
    assert check(r"| $m$ | memory length | `mem_len` | |") == [
        "notation: `mem_len` is $m$ here, but the site writes it $L$ (memory length (`mem_len`))"]
    assert check(r"| $u$ | the content bias | `u` | |") == [
        "notation: `u` is $u$ here, but the site writes it $\\mathbf{u}$ (the global content bias (`u`))"]


def test_a_bare_letter_the_site_indexes_keeps_its_meaning():
    assert check(r"| $h$ | heads | `heads` | |") == [
        "notation: $h$ is `heads` here, but the site writes $h^l$ for hidden states of layer $l$ (`h`)"]


def test_the_site_table_gives_one_code_name_one_letter():
    rows = rows_of("| symbol | meaning | in code |\n|---|---|---|\n| $v_j$ | a value | `v` |\n"
                   "| $\\mathbf{v}$ | a bias | `v` |\n| $\\gamma$, $\\beta$ | gain, shift | `weight`, `bias` |\n",
                   SITE_TITLES)
    assert ambiguities(rows, "s.py") == [("s.py", 4, "notation: the site's table gives `v` to $v_j$ and to $\\mathbf{v}$")]
    # An attribute written with its owner is another name than a bare variable, as in the code.
    rows = rows_of("| symbol | meaning | in code |\n|---|---|---|\n| $v_j$ | a value | `v` |\n"
                   "| $\\mathbf{v}$ | a bias | `attn.v` |\n", SITE_TITLES)
    assert ambiguities(rows, "s.py") == []


def test_the_build_warns_and_the_function_finds_the_same(tmp_path):
    """The build shows the conflicts as warnings and still writes the site; `conflicts(root)` finds
    the same without building."""
    need_katex()
    root = fixture_repo(tmp_path / "repo", {
        "labml_nn/transformers/__init__.py": SITE,
        "labml_nn/transformers/good.py": page("| $L$ | memory length | `mem_len` | |", "mem_len = 1\n"),
        "labml_nn/transformers/bad.py": page("| $q$ | a query | `q` | |\n| $L$ | depth | `depth` | |", "q = depth = 1\n"),
    })
    stats = build(root, tmp_path / "out", results=False)
    assert (tmp_path / "out/transformers/bad.html").is_file()
    expected = [("labml_nn/transformers/bad.py", 7,
                 "notation: $L$ is `depth` here, but the site's $L$ is memory length (`mem_len`)")]
    assert [w for w in stats["warnings"] if w[2].startswith("notation:")] == expected
    assert conflicts(root) == expected
