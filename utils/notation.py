r"""Notation that links to code: a page's notation table maps its symbols to the code's names.

A notation table is a Markdown table in a module docstring whose header has a `symbol` column and
a `code` column (`| symbol | meaning | code | shape |`). In each row the symbol cell holds one or
more formulas (`$K, V$` or `$x$, $x'$`: formulas and top-level commas inside them separate the
symbols) and the code cell one or more backticked Python names or expressions (`` `k`, `v` ``,
`` `memory.mem[l]` ``). With as many symbols as names they pair up in order; otherwise each symbol
maps to every name of the row. A row may leave the symbol cell empty (a name with no symbol).

What the build does with a table:

* **The check.** Each name must be used by the page's code: the identifier that names it (the
  last attribute of `memory.mem[l]`, `mem`; the base name of `memory[l]`, `memory`; every
  identifier of any other expression) must be a NAME token of the module. A name that is not a
  Python expression, or that the code never uses, fails the build with the page, the table's line,
  the symbol and the name: this keeps the tables honest while the code changes.
* **The links.** Every formula of the page is read as TeX (`_Tex` below, a small reader of atoms:
  a base with its sub- and superscripts) and each occurrence of a symbol is wrapped in
  `\htmlClass{nsym nsym-<id>}{...}`, so that KaTeX itself marks the rendered subtree; the build
  then gives each marked span `data-sym` and `data-vars`. The code column's tokens of the mapped
  names get `data-var` and `data-syms` (see `utils/highlight.py`), as do inline code spans of the
  prose that are exactly a mapped name. `utils/static/site.js` highlights the other side on hover
  and on keyboard focus. Tab stops: every symbol and name of the table, the first occurrence of
  each symbol in each section of prose, and the first occurrence of each name in the page's code
  (the others are found by pointer; focusing one lights all of them up).

An occurrence matches a symbol when its base, its subscript and its superscript are the symbol's
(`q_i` matches `q_{i}`; `\mathbf{m}_t` matches `\mathbf{m}_{t}` but not `\mathbf{m}_{t-1}`), with
one allowance: a symbol written without a superscript also matches an occurrence that adds a
transpose or a star (`q_i^\top`, `W^*`). Where several symbols match, the longest and most exact
wins (`x'` is not an occurrence of `x` when `x'` is in the table too). Text, font and accent
commands are read as one atom (`\hat{x}` is not an occurrence of `x`); the arguments of `\frac`,
`\sqrt`, `\underbrace` and the like, groups and scripts are searched inside. A script that is a
plain label (`n_{cm}`, `\gamma_a`, no operator in it) is searched only for symbols that cannot be
a label (with scripts of their own, an accent, or several atoms: `\delta_{x'}`); one that is an
expression (`\mathbf{m}_{t-L}`) for every symbol.
"""
from __future__ import annotations

import ast
import io
import keyword
import re
import tokenize
from dataclasses import dataclass, field

# Commands that, with their one argument, make a single atom (the argument is not searched).
ONE_ARG_ATOMS = {
    "\\text", "\\textrm", "\\textit", "\\textbf", "\\texttt", "\\textsf", "\\textnormal", "\\mbox",
    "\\operatorname", "\\mathrm", "\\mathbf", "\\mathit", "\\mathsf", "\\mathtt", "\\mathcal",
    "\\mathbb", "\\mathfrak", "\\mathscr", "\\boldsymbol", "\\bm", "\\pmb", "\\hat", "\\widehat",
    "\\tilde", "\\widetilde", "\\bar", "\\overline", "\\underline", "\\vec", "\\dot", "\\ddot",
    "\\check", "\\breve", "\\acute", "\\grave", "\\mathring", "\\overrightarrow", "\\overleftarrow",
}
# Commands whose arguments are searched: name -> for each argument, whether it is searched.
STRUCTURAL = {
    "\\frac": (True, True), "\\dfrac": (True, True), "\\tfrac": (True, True), "\\cfrac": (True, True),
    "\\binom": (True, True), "\\dbinom": (True, True), "\\tbinom": (True, True),
    "\\sqrt": (True,), "\\underbrace": (True,), "\\overbrace": (True,), "\\boxed": (True,),
    "\\underset": (True, True), "\\overset": (True, True), "\\stackrel": (True, True),
    "\\cancel": (True,), "\\bcancel": (True,), "\\xcancel": (True,), "\\phantom": (False,),
    "\\color": (False,), "\\textcolor": (False, True), "\\colorbox": (False, True),
    "\\htmlClass": (False, True), "\\htmlId": (False, True), "\\htmlStyle": (False, True),
    "\\htmlData": (False, True), "\\tag": (False,), "\\label": (False,),
}
DELIMITED = {"\\left", "\\right", "\\middle", "\\big", "\\Big", "\\bigg", "\\Bigg", "\\bigl",
             "\\bigr", "\\Bigl", "\\Bigr", "\\biggl", "\\biggr", "\\Biggl", "\\Biggr", "\\bigm",
             "\\Bigm"}
# Environments with a column specification after their name.
COLUMN_SPEC = {"array", "darray", "subarray", "tabular"}
SEPARATORS = {"&", "\\\\", "\\,", "\\;", "\\:", "\\!", "\\ ", "\\quad", "\\qquad", "~", "\\cr",
              "\\newline"}
# Superscripts an occurrence may add to a symbol written without one.
DECORATIONS = {"\\top", "\\intercal", "T", "\\mathsf{T}", "\\ast", "*", "\\star", "\\dagger"}

TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|\s+|.", re.DOTALL)


@dataclass
class Atom:
    """A base with its scripts, at `text[start:end]` of the formula."""
    base: str
    start: int
    end: int
    sub: str | None = None
    sup: str | None = None
    kind: str = "ord"  # "ord", "sep" (spacing, alignment) or "delim"
    inner: list["Seq"] = field(default_factory=list)  # searched when the atom itself is no match
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


class TexError(ValueError):
    pass


class _Tex:
    """A reader of TeX atoms, enough to find symbols; anything it cannot read raises TexError
    (the formula is then left as written)."""

    def __init__(self, text: str):
        self.text = text
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

    def sequence(self, braced: bool, until: str | None = None) -> Seq:
        atoms: list[Atom] = []
        while True:
            tok = self.peek()
            if tok is None:
                if until is not None:
                    raise TexError("unbalanced braces")
                return Seq(atoms, braced)
            if tok[0] == "}" or (until == "]" and tok[0] == "]"):
                if until is None:
                    raise TexError("unbalanced braces")
                self.i += 1
                return Seq(atoms, braced)
            atoms.append(self.atom())

    def group_or_token(self) -> tuple[Seq, int, int]:
        """One argument: a braced group, or a single token (with its own argument if it takes one)."""
        tok = self.peek()
        if tok is None:
            raise TexError("missing argument")
        if tok[0] == "{":
            self.i += 1
            seq = self.sequence(True, "}")
            return seq, tok[1], self.tokens[self.i - 1][2]
        if tok[0] in ("}", "_", "^"):
            raise TexError("missing argument")
        atom = self.base_atom()
        return Seq([atom], False), atom.start, atom.end

    def opaque(self) -> str:
        """A braced argument read as plain text (a colour, an environment name)."""
        tok = self.take()
        if tok[0] != "{":
            return tok[0]
        depth, parts = 1, []
        while depth:
            t = self.tokens[self.i] if self.i < len(self.tokens) else None
            if t is None:
                raise TexError("unbalanced braces")
            self.i += 1
            depth += {"{": 1, "}": -1}.get(t[0], 0)
            if depth:
                parts.append(t[0])
        return "".join(parts).strip()

    def base_atom(self) -> Atom:
        text, start, end = self.take()
        if text == "{":
            seq = self.sequence(True, "}")
            end = self.tokens[self.i - 1][2]
            only = seq.atoms[0] if len(seq.atoms) == 1 else None
            base = only.key if only is not None else "{" + seq.key + "}"
            return Atom(base, start, end, inner=[seq])
        if text in ("_", "^", "'"):
            self.i -= 1
            return Atom("", start, start)
        if text in SEPARATORS:
            return Atom(text, start, end, kind="sep")
        name = text.rstrip("*") if text.startswith("\\") and text[1:2].isalpha() else text
        if name in DELIMITED:
            delim = self.take()
            return Atom(name + delim[0], start, delim[2], kind="delim")
        if name in ("\\begin", "\\end"):
            env = self.opaque()
            if name == "\\begin" and env in COLUMN_SPEC:
                self.opaque()
            return Atom(f"{name}{{{env}}}", start, self.tokens[self.i - 1][2], kind="sep")
        if name in ONE_ARG_ATOMS:
            seq, _, arg_end = self.group_or_token()
            return Atom(f"{text}{{{seq.key}}}", start, arg_end)
        if name in STRUCTURAL:
            inner = []
            keys = []
            if name == "\\sqrt" and self.peek() is not None and self.peek()[0] == "[":
                self.i += 1
                inner.append(self.sequence(True, "]"))
            for searched in STRUCTURAL[name]:
                if searched:
                    seq, _, end = self.group_or_token()
                    inner.append(seq)
                    keys.append(seq.key)
                else:
                    keys.append(self.opaque())
                    end = self.tokens[self.i - 1][2]
            return Atom(name + "".join(f"{{{k}}}" for k in keys), start, end, inner=inner)
        return Atom(text, start, end)

    def atom(self) -> Atom:
        atom = self.base_atom()
        if atom.kind != "ord":
            return atom
        primes = 0
        while True:
            tok = self.peek()
            if tok is None or tok[0] not in ("_", "^", "'"):
                break
            self.i += 1
            if tok[0] == "'":
                primes += 1
                atom.end = tok[2]
                continue
            seq, _, end = self.group_or_token()
            atom.scripts.append(seq)
            atom.end = end
            if tok[0] == "_":
                atom.sub = seq.key
            else:
                atom.sup = seq.key if atom.sup is None else atom.sup + " " + seq.key
        if primes:
            mark = " ".join(["\\prime"] * primes)
            atom.sup = mark if atom.sup is None else mark + " " + atom.sup
        return atom


def parse_tex(text: str) -> Seq:
    return _Tex(text).sequence(True)


def split_symbols(tex: str) -> list[str]:
    """The symbols of one formula of a symbol cell: `K, V` is two, `W_{k,R}` one."""
    parts, depth, current = [], 0, []
    for tok, _, _ in _Tex(tex).tokens:
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
        if tok == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(tok)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


@dataclass
class Symbol:
    id: int
    tex: str
    atoms: list[Atom]
    vars: list[str] = field(default_factory=list)  # keys of the names it maps to


@dataclass
class Name:
    expr: str  # as written in the table
    key: str | None  # the identifier the code's tokens are matched on (None: not an expression)
    identifiers: list[str]  # what the check looks for
    symbols: list[int] = field(default_factory=list)


@dataclass
class Row:
    line: int
    symbols: list[str]  # TeX of each symbol ("" for none)
    names: list[str]


@dataclass
class Notation:
    path: str
    rows: list[Row] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    names: dict[str, Name] = field(default_factory=dict)  # by expression

    def vars_of(self, symbol: Symbol) -> str:
        return " ".join(symbol.vars)

    def var_keys(self) -> dict[str, list[int]]:
        """Identifier -> ids of the symbols it stands for (every named identifier, with or without)."""
        keys: dict[str, list[int]] = {}
        for name in self.names.values():
            if name.key:
                bucket = keys.setdefault(name.key, [])
                bucket.extend(s for s in name.symbols if s not in bucket)
        return keys


def name_of(expr: str) -> Name:
    """What `expr` (a code cell entry) names: its identifier, or None if it is not Python."""
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        return Name(expr, None, [])
    identifiers = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)] + \
                  [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)]
    head = node
    while isinstance(head, (ast.Subscript, ast.Call)):
        head = head.value if isinstance(head, ast.Subscript) else head.func
    if isinstance(head, ast.Attribute):
        return Name(expr, head.attr, [head.attr])
    if isinstance(head, ast.Name):
        return Name(expr, head.id, [head.id])
    return Name(expr, "", identifiers)  # another expression: every identifier must be used


def _cells(tokens: list, i: int) -> tuple[list, int]:
    """The inline tokens of the cells of the row starting at tokens[i] (a tr_open)."""
    cells = []
    while tokens[i].type != "tr_close":
        if tokens[i].type == "inline":
            cells.append(tokens[i])
        i += 1
    return cells, i


def read_tables(tokens: list, path: str, first_line: int) -> Notation | None:
    """The notation of a module docstring's tokens (markdown-it), or None if it has no table.

    The code cells' inline code tokens are marked for the page (`data-var`, tab stops)."""
    notation = Notation(path)
    by_tex: dict[str, Symbol] = {}
    i = 0
    found = False
    while i < len(tokens):
        if tokens[i].type != "table_open":
            i += 1
            continue
        header, i = _cells(tokens, next(j for j in range(i, len(tokens)) if tokens[j].type == "tr_open"))
        titles = [h.content.strip().lower() for h in header]
        sym_col = next((c for c, t in enumerate(titles) if t in ("symbol", "symbols")), None)
        code_col = next((c for c, t in enumerate(titles) if t in ("code", "variable", "name", "names")), None)
        if sym_col is None or code_col is None:
            continue
        found = True
        while tokens[i].type != "table_close":
            if tokens[i].type != "tr_open":
                i += 1
                continue
            line = first_line + (tokens[i].map[0] if tokens[i].map else 0)
            cells, i = _cells(tokens, i)
            if max(sym_col, code_col) >= len(cells):
                continue
            sym_cell, code_cell = cells[sym_col], cells[code_col]
            maths = [c for c in sym_cell.children or [] if c.type.startswith("math_inline")]
            for math in maths:
                math.meta["nsym_table"] = True  # every occurrence in the table is a tab stop
            texes = [s for c in maths for s in split_symbols(c.content.strip())]
            codes = [c for c in code_cell.children or [] if c.type == "code_inline"]
            if not codes:
                continue
            notation.rows.append(Row(line, texes, [c.content for c in codes]))
            symbols = []
            for tex in texes:
                try:
                    atoms = [a for a in parse_tex(tex).atoms if a.kind != "sep"]
                except TexError:
                    atoms = []
                if not atoms:
                    continue
                key = " ".join(a.key for a in atoms)
                if key not in by_tex:
                    by_tex[key] = Symbol(len(notation.symbols), tex, atoms)
                    notation.symbols.append(by_tex[key])
                symbols.append(by_tex[key])
            names = [notation.names.setdefault(c.content, name_of(c.content)) for c in codes]
            pairs = (list(zip(symbols, [[n] for n in names])) if len(symbols) == len(names)
                     else [(s, names) for s in symbols])
            for symbol, mapped in pairs:
                for name in mapped:
                    if symbol.id not in name.symbols:
                        name.symbols.append(symbol.id)
                    if name.key and name.key not in symbol.vars:
                        symbol.vars.append(name.key)
            for token in codes:
                name = notation.names[token.content]
                if name.key:
                    token.attrSet("class", "nvar")
                    token.attrSet("data-var", name.key)
                    token.attrSet("tabindex", "0")
        i += 1
    return notation if found else None


def mark_prose(tokens: list, notation: Notation) -> None:
    """Mark the inline code spans of prose that are exactly a name of the table (hover only:
    they are not tab stops), and tell every marked span which symbols its name stands for."""
    keys = notation.var_keys()
    for token in tokens:
        for child in token.children or []:
            if child.type != "code_inline":
                continue
            if child.attrGet("data-var") is None:
                name = notation.names.get(child.content)
                if name is None or not name.key:
                    continue
                child.attrSet("class", "nvar")
                child.attrSet("data-var", name.key)
            child.attrSet("data-syms", " ".join(str(s) for s in keys.get(child.attrGet("data-var"), [])))


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


def check(notation: Notation, names: set[str]) -> list[tuple[str, int, str]]:
    """Every (path, line, message) where the table names something the code does not use."""
    problems = []
    for row in notation.rows:
        symbols = row.symbols or [""]
        for expr in row.names:
            name = notation.names[expr]
            if len(row.symbols) == len(row.names):
                shown = row.symbols[row.names.index(expr)]
            else:
                shown = ", ".join(symbols)
            label = f"${shown}$" if shown else "(no symbol)"
            if name.key is None:
                problems.append((notation.path, row.line,
                                 f"notation table: {label} -> `{expr}`: `{expr}` is not a Python name "
                                 "or expression"))
                continue
            missing = [n for n in name.identifiers if n not in names]
            if missing or not name.identifiers:
                problems.append((notation.path, row.line,
                                 f"notation table: {label} -> `{expr}`: the code never uses the name "
                                 f"`{missing[0] if missing else expr}`"))
    return problems


# -- finding symbols in formulas -------------------------------------------------------------------

def _same(a: Atom, b: Atom) -> bool:
    return a.base == b.base and a.sub == b.sub and a.sup == b.sup


def _matches(symbol: Symbol, atoms: list[Atom], at: int) -> int:
    """0: no match at `atoms[at]`; 2: exact; 1: the last atom adds a decoration."""
    k = len(symbol.atoms)
    if at + k > len(atoms):
        return 0
    for s, a in zip(symbol.atoms[:-1], atoms[at:at + k - 1]):
        if not _same(s, a):
            return 0
    s, a = symbol.atoms[-1], atoms[at + k - 1]
    if s.base != a.base or s.sub != a.sub:
        return 0
    if s.sup == a.sup:
        return 2
    if s.sup is None and a.sup in DECORATIONS:
        return 1
    return 0


OPERATORS = {"+", "-", "=", "<", ">", "/", "\\pm", "\\mp", "\\cdot", "\\times", "\\le", "\\ge",
             "\\leq", "\\geq", "\\neq"}


def _distinctive(symbol: Symbol) -> bool:
    """A symbol that cannot be mistaken for a label: several atoms, scripts, or an accent/font."""
    return len(symbol.atoms) > 1 or any(a.sub is not None or a.sup is not None or "{" in a.base
                                        for a in symbol.atoms)


def _find(seq: Seq, symbols: list[Symbol], edits: list, script: bool = False) -> None:
    """Collect the (start, end, symbol id, needs braces) of the occurrences in `seq`.

    In a sub- or superscript that is a plain label (`n_{cm}`, `\\gamma_a`: no operator in it) only
    distinctive symbols are looked for; in an expression (`\\mathbf{m}_{t-L}`) every symbol is."""
    atoms = [a for a in seq.atoms if a.kind != "sep"]
    if script and not any(a.base in OPERATORS for a in atoms):
        symbols = [s for s in symbols if _distinctive(s)]
    i = 0
    while i < len(atoms):
        best = None
        for symbol in symbols:
            quality = _matches(symbol, atoms, i)
            if quality and (best is None or (len(symbol.atoms), quality) > (len(best[0].atoms), best[1])):
                best = (symbol, quality)
        if best is not None:
            symbol = best[0]
            last = atoms[i + len(symbol.atoms) - 1]
            edits.append((atoms[i].start, last.end, symbol.id, not seq.braced and len(seq.atoms) == 1))
            i += len(symbol.atoms)
            continue
        for inner in atoms[i].inner:
            _find(inner, symbols, edits, script)
        for inner in atoms[i].scripts:
            _find(inner, symbols, edits, True)
        i += 1


def mark_symbols(tex: str, notation: Notation, table: bool = False) -> str:
    """`tex` with every occurrence of a symbol of `notation` wrapped for KaTeX to mark."""
    if not notation.symbols or "\\htmlClass" in tex:
        return tex
    try:
        seq = parse_tex(tex)
    except TexError:
        return tex
    edits: list = []
    _find(seq, notation.symbols, edits)
    extra = " nsym-t" if table else ""
    for start, end, sid, brace in sorted(edits, reverse=True):
        wrapped = f"\\htmlClass{{nsym nsym-{sid}{extra}}}{{{tex[start:end]}}}"
        if brace:
            wrapped = "{" + wrapped + "}"
        tex = tex[:start] + wrapped + tex[end:]
    return tex


SYMBOL_SPAN = re.compile(r'<span class="enclosing nsym nsym-(\d+)( nsym-t)?">')


def symbol_attributes(html: str, notation: Notation) -> str:
    """Give KaTeX's marked spans their data attributes; the first occurrence of each symbol in
    `html` (one section) and every occurrence in the table is a tab stop."""
    seen: set[int] = set()

    def attrs(m: re.Match) -> str:
        sid = int(m.group(1))
        if sid >= len(notation.symbols):
            return m.group(0)  # written by hand in the prose, not by the build: left alone
        symbol = notation.symbols[sid]
        first = m.group(2) is not None or sid not in seen
        seen.add(sid)
        return (f'<span class="enclosing nsym" data-sym="{sid}" data-vars="{" ".join(symbol.vars)}"'
                f' tabindex="{0 if first else -1}">')

    return SYMBOL_SPAN.sub(attrs, html)


VAR_SPAN = re.compile(r'(<span class="[^"]*\bnvar\b[^"]*" data-var="([^"]+)" data-syms="[^"]*")>')


def code_tab_stops(html: str, seen: set[str]) -> str:
    """The first occurrence of each mapped name in the page's code is a tab stop (`seen`, shared
    by the page's sections, holds the names already met); focusing it lights up all the others."""

    def stop(m: re.Match) -> str:
        first = m.group(2) not in seen
        seen.add(m.group(2))
        return f'{m.group(1)} tabindex="{0 if first else -1}">'

    return VAR_SPAN.sub(stop, html)
