r"""The notation pass: a page's notation table links each symbol of its math to the code's names.

A notation table is a Markdown table in a module docstring whose header has a `symbol` column and
a `code` column (`| symbol | meaning | code | shape |`). In each row the symbol cell holds one or
more formulas (`$K, V$` or `$x$, $x'$`: formulas and top-level commas inside them separate the
symbols) and the code cell one or more backticked Python names or expressions (`` `k`, `v` ``,
`` `memory.mem[l]` ``). With as many symbols as names they pair up in order; otherwise each symbol
maps to every name of the row. A name is matched on one identifier: the last attribute of
`memory.mem[l]` (`mem`), the base name of `memory[l]` (`memory`).

* **The links.** Every formula of the page is read as TeX atoms (`TexReader`: a base with its sub-
  and superscripts) and each occurrence of a symbol is wrapped in `\htmlData{sym=ID, vars=NAMES}`,
  so that KaTeX itself writes the span with its data attributes. The code column's tokens of the
  mapped names get `data-var` and `data-syms` (`utils/highlight.py`), as do inline code spans that
  are exactly a mapped name. `utils/static/site.js` lights the other side up on hover and focus,
  and makes the tab stops: every symbol and name of the table, the first occurrence of each symbol
  in each block of prose, and the first of each name in the page's code.
* **The lint** (a warning the build shows): a name the page's code never uses (as a NAME token),
  or one that is not Python. It tells the author; it never changes a table or fails a build.

An occurrence matches a symbol when its base, its subscript and its superscript are the symbol's
(`q_i` matches `q_{i}`; `\mathbf{m}_t` matches `\mathbf{m}_{t}` but not `\mathbf{m}_{t-1}`), or
when it only adds a transpose or a star to a symbol written without a superscript (`q_i^\top`).
Where several symbols match, the longest and most exact wins (`x'` is not an occurrence of `x`).
Text, font and accent commands are one atom (`\hat{x}` is not an occurrence of `x`); the arguments
of `\frac`, `\sqrt`, `\underbrace` and the like, groups and scripts are searched. A script that is
a plain label (`n_{cm}`, `\gamma_a`: no operator in it) is searched only for symbols that cannot
be a label (with scripts, an accent, or several atoms: `\delta_{x'}`).

KaTeX's own parser is not used for this: its parse tree gives no source positions for scripts,
fonts and accents, which is where the wrapping goes.
"""
from __future__ import annotations

import ast
import io
import keyword
import re
import tokenize
from dataclasses import dataclass, field

from .pages import Pass, Site

ONE_ARG = set(r"""\text \textrm \textit \textbf \texttt \textsf \textnormal \mbox \operatorname
    \mathrm \mathbf \mathit \mathsf \mathtt \mathcal \mathbb \mathfrak \mathscr \boldsymbol \bm \pmb
    \hat \widehat \tilde \widetilde \bar \overline \underline \vec \dot \ddot \check \breve \acute
    \grave \mathring \overrightarrow \overleftarrow""".split())  # one atom with its argument
# Commands whose arguments are searched ("s") or read as plain text ("o": a colour, a label).
SEARCHED = {**dict.fromkeys(r"\frac \dfrac \tfrac \cfrac \binom \dbinom \tbinom \underset \overset "
                            r"\stackrel".split(), "ss"),
            **dict.fromkeys(r"\sqrt \underbrace \overbrace \boxed \cancel \bcancel \xcancel".split(), "s"),
            **dict.fromkeys(r"\phantom \color \tag \label".split(), "o"),
            **dict.fromkeys(r"\textcolor \colorbox \htmlClass \htmlId \htmlStyle \htmlData".split(), "os")}
DELIMITED = set(r"\left \right \middle \big \Big \bigg \Bigg \bigl \bigr \Bigl \Bigr \biggl \biggr "
                r"\Biggl \Biggr \bigm \Bigm".split())
COLUMN_SPEC = {"array", "darray", "subarray", "tabular"}  # environments with a column specification
SEPARATORS = {"&", "\\\\", "\\,", "\\;", "\\:", "\\!", "\\ ", "\\quad", "\\qquad", "~", "\\cr", "\\newline"}
DECORATIONS = {"\\top", "\\intercal", "T", "\\mathsf{T}", "\\ast", "*", "\\star", "\\dagger"}
OPERATORS = {"+", "-", "=", "<", ">", "/", "\\pm", "\\mp", "\\cdot", "\\times", "\\le", "\\ge", "\\leq",
             "\\geq", "\\neq"}
TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|\s+|.", re.DOTALL)
CODE_TITLES = ("code", "variable", "name", "names")  # the code column of a page's table


# -- reading TeX as atoms -------------------------------------------------------------------------

class TexError(ValueError):
    pass


@dataclass
class Atom:
    """A base with its scripts, at `text[start:end]` of the formula."""
    base: str
    start: int
    end: int
    sub: str | None = None
    sup: str | None = None
    kind: str = "ord"  # "ord", "sep" (spacing, alignment) or "delim"
    inner: list["Seq"] = field(default_factory=list)  # searched when the atom itself is no symbol
    scripts: list["Seq"] = field(default_factory=list)  # its sub- and superscripts, searched too

    @property
    def key(self) -> str:
        return (self.base + (f"_{{{self.sub}}}" if self.sub is not None else "")
                + (f"^{{{self.sup}}}" if self.sup is not None else ""))


@dataclass
class Seq:
    atoms: list[Atom]
    braced: bool  # written in braces: a match inside needs no braces of its own

    @property
    def key(self) -> str:
        return " ".join(a.key for a in self.atoms if a.kind != "sep")


class TexReader:
    """Reads TeX into atoms, enough to find symbols; what it cannot read raises TexError (the
    formula is then shown as written, unmarked)."""

    def __init__(self, text: str):
        self.tokens = [(m.group(0), m.start(), m.end()) for m in TOKEN.finditer(text)]
        self.i = 0

    def peek(self):
        while self.i < len(self.tokens) and self.tokens[self.i][0].isspace():
            self.i += 1
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        if tok is None:
            raise TexError("unexpected end")
        self.i += 1
        return tok

    def end(self) -> int:
        return self.tokens[self.i - 1][2]

    def sequence(self, until: str | None = None) -> Seq:
        atoms = []
        while (tok := self.peek()) is not None and tok[0] != "}" and not (until == "]" and tok[0] == "]"):
            atoms.append(self.atom())
        if (tok is None) != (until is None):
            raise TexError("unbalanced braces")
        if tok is not None:
            self.i += 1
        return Seq(atoms, True)

    def argument(self) -> Seq:
        """A braced group, or a single token (with its own argument if it takes one)."""
        tok = self.peek()
        if tok is None or tok[0] in ("}", "_", "^"):
            raise TexError("missing argument")
        if tok[0] == "{":
            self.i += 1
            return self.sequence("}")
        return Seq([self.base_atom()], False)

    def opaque(self) -> str:
        """A braced argument read as plain text (a colour, an environment name)."""
        if (tok := self.take())[0] != "{":
            return tok[0]
        depth, parts = 1, []
        while depth:
            if self.i >= len(self.tokens):
                raise TexError("unbalanced braces")
            text = self.tokens[self.i][0]
            self.i += 1
            depth += {"{": 1, "}": -1}.get(text, 0)
            parts += [text] if depth else []
        return "".join(parts).strip()

    def base_atom(self) -> Atom:
        text, start, end = self.take()
        name = text.rstrip("*") if text[1:2].isalpha() else text
        if text == "{":
            seq = self.sequence("}")
            base = seq.atoms[0].key if len(seq.atoms) == 1 else "{" + seq.key + "}"
            return Atom(base, start, self.end(), inner=[seq])
        if text in ("_", "^", "'"):  # a script with no base
            self.i -= 1
            return Atom("", start, start)
        if text in SEPARATORS:
            return Atom(text, start, end, kind="sep")
        if name in DELIMITED:
            return Atom(name + self.take()[0], start, self.end(), kind="delim")
        if name in ("\\begin", "\\end"):
            env = self.opaque()
            if name == "\\begin" and env in COLUMN_SPEC:
                self.opaque()
            return Atom(f"{name}{{{env}}}", start, self.end(), kind="sep")
        if name in ONE_ARG:
            return Atom(f"{text}{{{self.argument().key}}}", start, self.end())
        if name in SEARCHED:
            inner, keys = [], []
            if name == "\\sqrt" and (tok := self.peek()) is not None and tok[0] == "[":
                self.i += 1
                inner.append(self.sequence("]"))
            for kind in SEARCHED[name]:
                if kind == "s":
                    inner.append(self.argument())
                keys.append(inner[-1].key if kind == "s" else self.opaque())
            return Atom(name + "".join(f"{{{k}}}" for k in keys), start, self.end(), inner=inner)
        return Atom(text, start, end)

    def atom(self) -> Atom:
        atom = self.base_atom()
        primes = 0
        while atom.kind == "ord" and (tok := self.peek()) is not None and tok[0] in ("_", "^", "'"):
            self.i += 1
            if tok[0] == "'":
                primes += 1
            else:
                seq = self.argument()
                atom.scripts.append(seq)
                if tok[0] == "_":
                    atom.sub = seq.key
                else:
                    atom.sup = seq.key if atom.sup is None else atom.sup + " " + seq.key
            atom.end = self.end()
        if primes:
            mark = " ".join(["\\prime"] * primes)
            atom.sup = mark if atom.sup is None else mark + " " + atom.sup
        return atom


def symbol_atoms(tex: str) -> list[Atom]:
    """The atoms of one symbol as written in a table (none when it cannot be read)."""
    try:
        return [a for a in TexReader(tex).sequence().atoms if a.kind != "sep"]
    except TexError:
        return []


def split_symbols(tex: str) -> list[str]:
    """The symbols of one formula of a symbol cell: `K, V` is two, `W_{k,R}` one."""
    parts, depth, current = [], 0, []
    for tok, _, _ in TexReader(tex).tokens:
        depth += {"{": 1, "}": -1}.get(tok, 0)
        if tok == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(tok)
    return [p.strip() for p in parts + ["".join(current)] if p.strip()]


# -- reading tables ---------------------------------------------------------------------------------

@dataclass
class Row:
    line: int
    symbols: list[str]  # TeX of each symbol
    names: list[str]  # code expressions, as written
    meaning: str = ""

    def pairs(self) -> list[tuple[str, list[str]]]:
        """Each symbol with the names it stands for: pairwise when the counts agree, else all."""
        if len(self.symbols) == len(self.names):
            return [(s, [n]) for s, n in zip(self.symbols, self.names)]
        return [(s, self.names) for s in self.symbols]


def table_rows(tokens: list, first_line: int, code_titles=CODE_TITLES) -> list[Row] | None:
    """The rows of the notation tables among a docstring's Markdown tokens (a table whose header
    has a `symbol` column and a code column named in `code_titles`), or None without one."""
    rows, found, i = [], False, 0
    while i < len(tokens):
        if tokens[i].type != "table_open":
            i += 1
            continue
        table = []
        while tokens[i].type != "table_close":
            if tokens[i].type == "tr_open":
                table.append((first_line + (tokens[i].map[0] if tokens[i].map else 0), []))
            elif tokens[i].type == "inline":
                table[-1][1].append(tokens[i])
            i += 1
        titles = [c.content.strip().lower() for c in table[0][1]]
        sym_col = next((c for c, t in enumerate(titles) if t in ("symbol", "symbols")), None)
        code_col = next((c for c, t in enumerate(titles) if t in code_titles), None)
        meaning_col = next((c for c, t in enumerate(titles) if t == "meaning"), None)
        if sym_col is None or code_col is None:
            continue
        found = True
        for line, cells in table[1:]:
            if max(sym_col, code_col) >= len(cells):
                continue
            maths = [c.content.strip() for c in cells[sym_col].children or [] if c.type.startswith("math_inline")]
            names = [c.content for c in cells[code_col].children or [] if c.type == "code_inline"]
            meaning = cells[meaning_col].content.strip() if meaning_col is not None and meaning_col < len(cells) else ""
            rows.append(Row(line, [s for m in maths for s in split_symbols(m)], names, meaning))
    return rows if found else None


@dataclass
class Name:
    expr: str  # as written in the table
    key: str | None  # the identifier the code's tokens are matched on (None: not an expression)
    identifiers: list[str]  # what the lint looks for
    symbols: list[int] = field(default_factory=list)


def name_of(expr: str) -> Name:
    """What `expr` (a code cell entry) names: its identifier, or None if it is not Python."""
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        return Name(expr, None, [])
    head = node
    while isinstance(head, (ast.Subscript, ast.Call)):
        head = head.value if isinstance(head, ast.Subscript) else head.func
    if isinstance(head, ast.Attribute):
        return Name(expr, head.attr, [head.attr])
    if isinstance(head, ast.Name):
        return Name(expr, head.id, [head.id])
    identifiers = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    return Name(expr, "", identifiers + [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)])


@dataclass
class Symbol:
    id: int
    tex: str
    atoms: list[Atom]
    vars: list[str] = field(default_factory=list)  # keys of the names it stands for


@dataclass
class Table:
    """A page's notation: its rows, its symbols (numbered) and its names (by expression)."""
    path: str
    rows: list[Row]
    symbols: list[Symbol] = field(default_factory=list)
    names: dict[str, Name] = field(default_factory=dict)

    def __post_init__(self):
        by_key: dict[str, Symbol] = {}
        for row in self.rows:
            for expr in row.names:
                self.names.setdefault(expr, name_of(expr))
            for tex, exprs in row.pairs():
                atoms = symbol_atoms(tex)
                if not atoms:
                    continue
                key = " ".join(a.key for a in atoms)
                if key not in by_key:
                    by_key[key] = Symbol(len(self.symbols), tex, atoms)
                    self.symbols.append(by_key[key])
                symbol = by_key[key]
                for name in (self.names[e] for e in exprs):
                    name.symbols += [] if symbol.id in name.symbols else [symbol.id]
                    symbol.vars += [name.key] if name.key and name.key not in symbol.vars else []

    def var_keys(self) -> dict[str, list[int]]:
        """Identifier -> ids of the symbols it stands for (every named identifier, with or without)."""
        keys: dict[str, list[int]] = {}
        for name in self.names.values():
            if name.key:
                bucket = keys.setdefault(name.key, [])
                bucket.extend(s for s in name.symbols if s not in bucket)
        return keys


def read_table(tokens: list, path: str, first_line: int) -> Table | None:
    rows = table_rows(tokens, first_line)
    return None if rows is None else Table(path, [r for r in rows if r.names])


# -- the lint --------------------------------------------------------------------------------------

def code_names(source: str) -> set[str]:
    """The NAME tokens (keywords aside) of a module: the identifiers its code column uses."""
    names = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
                names.add(tok.string)
    except tokenize.TokenError:
        pass
    return names


def lint(table: Table, names: set[str]) -> list[tuple[str, int, str]]:
    """Every (path, line, message) where the table names something the code does not use."""
    problems = []
    for row in table.rows:
        for expr in row.names:
            name = table.names[expr]
            shown = row.symbols[row.names.index(expr)] if len(row.symbols) == len(row.names) else ", ".join(row.symbols)
            label = f"notation table: {f'${shown}$' if shown else '(no symbol)'} -> `{expr}`"
            if name.key is None:
                problems.append((table.path, row.line, f"{label}: `{expr}` is not a Python name or expression"))
                continue
            missing = [n for n in name.identifiers if n not in names]
            if missing or not name.identifiers:
                problems.append((table.path, row.line, f"{label}: the code never uses the name "
                                                       f"`{missing[0] if missing else expr}`"))
    return problems


# -- finding symbols in formulas -------------------------------------------------------------------

def _matches(symbol: Symbol, atoms: list[Atom], at: int) -> int:
    """0: no match at `atoms[at]`; 2: exact; 1: the last atom adds a decoration."""
    k = len(symbol.atoms)
    if at + k > len(atoms):
        return 0
    for s, a in zip(symbol.atoms[:-1], atoms[at:at + k - 1]):
        if (s.base, s.sub, s.sup) != (a.base, a.sub, a.sup):
            return 0
    s, a = symbol.atoms[-1], atoms[at + k - 1]
    if (s.base, s.sub) != (a.base, a.sub):
        return 0
    return 2 if s.sup == a.sup else 1 if s.sup is None and a.sup in DECORATIONS else 0


def _distinctive(symbol: Symbol) -> bool:
    """A symbol that cannot be mistaken for a label: several atoms, scripts, or an accent/font."""
    return len(symbol.atoms) > 1 or any(a.sub is not None or a.sup is not None or "{" in a.base
                                        for a in symbol.atoms)


def _find(seq: Seq, symbols: list[Symbol], edits: list, script: bool = False) -> None:
    """Collect the (start, end, symbol, needs braces) of the occurrences in `seq`."""
    atoms = [a for a in seq.atoms if a.kind != "sep"]
    if script and not any(a.base in OPERATORS for a in atoms):  # a label: only distinctive symbols
        symbols = [s for s in symbols if _distinctive(s)]
    i = 0
    while i < len(atoms):
        found = [(len(s.atoms), q, s) for s in symbols if (q := _matches(s, atoms, i))]
        if found:
            symbol = max(found, key=lambda f: f[:2])[2]
            last = atoms[i + len(symbol.atoms) - 1]
            edits.append((atoms[i].start, last.end, symbol, not seq.braced and len(seq.atoms) == 1))
            i += len(symbol.atoms)
            continue
        for inner in atoms[i].inner:
            _find(inner, symbols, edits, script)
        for inner in atoms[i].scripts:
            _find(inner, symbols, edits, True)
        i += 1


def mark_symbols(tex: str, table: Table) -> str:
    """`tex` with every occurrence of a symbol of `table` wrapped for KaTeX to mark."""
    if not table.symbols or "\\htmlData" in tex:
        return tex
    try:
        seq = TexReader(tex).sequence()
    except TexError:
        return tex
    edits: list = []
    _find(seq, table.symbols, edits)
    for start, end, symbol, brace in sorted(edits, key=lambda e: e[0], reverse=True):
        data = f"sym={symbol.id}" + (f", vars={' '.join(symbol.vars)}" if symbol.vars else "")
        wrapped = f"\\htmlData{{{data}}}{{{tex[start:end]}}}"
        tex = tex[:start] + ("{" + wrapped + "}" if brace else wrapped) + tex[end:]
    return tex


def mark_code_spans(tokens: list, table: Table, keys: dict[str, list[int]]) -> None:
    """Mark the inline code spans that are exactly a name of the table (its own cells included)."""
    for token in tokens:
        for child in token.children or []:
            name = table.names.get(child.content) if child.type == "code_inline" else None
            if name is not None and name.key:
                child.attrSet("class", "nvar")
                child.attrSet("data-var", name.key)
                child.attrSet("data-syms", " ".join(map(str, keys.get(name.key, []))))


class Notation(Pass):
    def read(self, site: Site) -> None:
        for page in site.pages:
            table = read_table(page.doc.tokens, page.src, page.doc.line) if page.doc else None
            if table is None:
                continue
            page.notation = table
            self.warnings += lint(table, code_names("".join(page.module.lines)))
            keys = table.var_keys()
            page.names = {k: " ".join(map(str, ids)) for k, ids in keys.items()}
            for parsed in page.blocks():
                mark_code_spans(parsed.tokens, table, keys)
                for formula in parsed.formulas:
                    formula.rewrite(mark_symbols(formula.tex, table))
