r"""The one-notation pass: every page's notation table agrees with the site's table of symbols.

The site's table is the table headed `| symbol | meaning | in code |` in the module docstring of
`labml_nn/transformers/__init__.py` (`config.SITE_NOTATION`, its "Notation" section). A page's own
table (`| symbol | meaning | code | ... |`, see `utils/notation.py`) adds the symbols of its paper,
and agrees with the site's where they meet:

* **one meaning per symbol**: a symbol the site defines, given code names by both tables, names the
  same code on the page (`$L$` is `mem_len` everywhere; a page whose `$L$` is `depth` conflicts);
* **one symbol per meaning**: code the site gives a symbol is not written with another one (a page
  whose `$m$` is `mem_len` conflicts with the site's `$L$`). An indexed form of the site's symbol is
  the same symbol (`$h^{l-1}_{\tau+1}$` for `$h^l$`: the same base), and a row that also writes the
  site's symbol is an alias the page explains (the paper's `$n_m$` beside `$L$`);
* **one code name per letter** in the site's table itself: two symbols of different letters never name
  the same code. An attribute written with its owner (`attn.v`, the Transformer-XL bias $\mathbf{v}$) is
  another name than a bare variable (`v`, a value $v_j$), as it is in the code.

Symbols are compared as TeX atoms (`q_{i}` is `q_i`), names by the identifier the code uses
(`memory[l]` is `memory`). Conflicts are warnings, shown by the build (`make site`);
`conflicts(root)` returns them for a repository without building it, for tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import config
from .markdown import Markdown
from .notation import Row, name_of, symbol_atoms, table_rows
from .pages import Pass, Site
from .paths import read_text
from .split import split_source

SITE_TITLES = ("in code",)  # the code column of the site's table


@dataclass
class Entry:
    """One symbol of a table, with the identifiers of the code it stands for."""
    tex: str
    key: str  # its atoms, as compared
    base: str  # the base of its first atom: `h` for `h^{l-1}_{\tau+1}`
    names: set[str]
    qualified: set[str]  # the names as the code writes them: `attn.v` for an attribute, `v` for a variable
    row: Row


def entries(rows: list[Row]) -> list[Entry]:
    found = []
    for row in rows:
        for tex, exprs in row.pairs():
            atoms = symbol_atoms(tex)
            names = {n.key for n in map(name_of, exprs) if n.key}
            qualified = {e.strip().split("[")[0] for e in exprs if name_of(e).key}
            if atoms:
                found.append(Entry(tex, " ".join(a.key for a in atoms), atoms[0].base, names, qualified, row))
    return found


def compare(site_rows: list[Row], page_rows: list[Row], path: str) -> list[tuple[str, int, str]]:
    """Where a page's table (at `path`) disagrees with the site's table."""
    site = entries(site_rows)
    by_key = {e.key: e for e in site}
    problems = []
    for e in entries(page_rows):
        row_keys = {" ".join(a.key for a in symbol_atoms(t)) for t in e.row.symbols}
        if not e.names or any(s.key in row_keys and s.names & e.names for s in site):
            continue  # no code to compare, or the row also writes the site's symbol: an alias
        names = "`, `".join(sorted(e.names))
        same = by_key.get(e.key)
        letter = [s for s in site if s.base == e.key != s.key and s.names]  # h, where the site has h^l
        sharing = [s for s in site if s.names & e.names]
        if same is not None:
            if same.names and not same.names & e.names:
                problems.append((path, e.row.line, f"notation: ${e.tex}$ is `{names}` here, but the site's "
                                                   f"${same.tex}$ is {describe(same)}"))
        elif letter and not any(s.names & e.names for s in letter):
            problems.append((path, e.row.line, f"notation: ${e.tex}$ is `{names}` here, but the site writes "
                                               f"${letter[0].tex}$ for {describe(letter[0])}"))
        elif sharing and not any(s.base.lower() == e.base.lower() for s in sharing):  # Q: stacked q_i
            shared = sorted(sharing[0].names & e.names)[0]
            problems.append((path, e.row.line, f"notation: `{shared}` is ${e.tex}$ here, but the site writes "
                                               f"it ${sharing[0].tex}$ ({describe(sharing[0])})"))
    return problems


def describe(e: Entry) -> str:
    return f"{e.row.meaning} (`{'`, `'.join(sorted(e.names))}`)" if e.names else e.row.meaning


def ambiguities(site_rows: list[Row], path: str) -> list[tuple[str, int, str]]:
    """Code names the site's table itself gives to symbols of different letters."""
    problems, site = [], entries(site_rows)
    for i, e in enumerate(site):
        for other in site[:i]:
            shared = sorted(e.qualified & other.qualified)
            if shared and e.base != other.base and e.row is not other.row:
                problems.append((path, e.row.line, f"notation: the site's table gives `{shared[0]}` to "
                                                   f"${other.tex}$ and to ${e.tex}$"))
    return problems


def site_rows(tokens: list, first_line: int) -> list[Row]:
    return table_rows(tokens, first_line, SITE_TITLES) or []


class SiteNotation(Pass):
    """Compares the tables the notation pass read with the site's table (warnings)."""

    def read(self, site: Site) -> None:
        home = site.by_src.get(config.SITE_NOTATION)
        rows = site_rows(home.doc.tokens, home.doc.line) if home is not None and home.doc else []
        self.warnings += ambiguities(rows, config.SITE_NOTATION)
        for page in site.pages:
            if rows and page.notation is not None and page is not home:
                self.warnings += compare(rows, page.notation.rows, page.src)


def conflicts(root: Path) -> list[tuple[str, int, str]]:
    """Every conflict of the repository at `root` (no build: its modules' docstrings are read)."""
    markdown, tables = Markdown(), {}
    for path in [p.src for p in Site(root).discover().pages if p.kind == "module"]:
        module = split_source(read_text(root, path), path)
        doc = next((p for s in module.sections for p in s.prose if p.kind == "module"), None)
        if doc is not None:
            tables[path] = markdown.parse(doc.text, path, doc.text_line, set())
    home = tables.pop(config.SITE_NOTATION, None)
    rows = site_rows(home.tokens, home.line) if home is not None else []
    return ambiguities(rows, config.SITE_NOTATION) + [problem for path, parsed in tables.items()
            for problem in compare(rows, table_rows(parsed.tokens, parsed.line) or [], path)]
