r"""Cut a Python module into sections of prose and code, reading it as text.

A section is the unit a reader sees side by side: prose on the left, the code it explains on the
right. Prose comes from three places, all found with `tokenize` and `ast` (never by regex, never
by importing the module):

* the module docstring: the page's intro (its front matter, `---\ntitle: ...\n---`, is metadata);
* a class or function docstring: prose beside its `def`/`class` line;
* a block of consecutive own-line `#` comments outside any brackets: prose beside the code that
  follows it. A block directly above a `def`/`class` (or its decorators) joins that definition's
  section.

The invariant, checked by the tests over every real source: each physical line of the file
belongs to exactly one section, either as a code line (`Section.code`) or as a line moved to
prose (`Section.moved`), each with its real 1-based line number. Sorting the union of both by
line number and joining the texts (line endings kept) gives back the file byte for byte
(`reconstruct`). A docstring is moved to prose only when its lines hold nothing else; otherwise it
stays code.
"""
from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field

from .errors import SiteError


@dataclass
class Prose:
    """One block of prose: Markdown `text` whose first line is source line `text_line`."""
    kind: str  # "module", "docstring" or "comment"
    start: int  # first source line of the block
    end: int  # last source line of the block
    text: str
    text_line: int


@dataclass
class Section:
    """Prose and the code it sits beside; `anchor` is the qualified name it defines, if any."""
    prose: list[Prose] = field(default_factory=list)
    code: list[tuple[int, str]] = field(default_factory=list)  # (line number, text with its ending)
    moved: list[tuple[int, str]] = field(default_factory=list)  # lines moved to prose
    anchor: str | None = None
    kind: str | None = None  # "class", "function", "method" when the section starts a definition
    intro: bool = False  # the module docstring's section
    names: list[str] = field(default_factory=list)  # qualified names defined in this section


@dataclass
class Module:
    path: str
    lines: list[str]
    front_matter: dict[str, str]
    sections: list[Section]


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split `---\nkey: value\n---` off the start of `text`.

    The front matter lines become empty lines, so that line `i` of the returned text is still line
    `i` of the input (error messages keep pointing at the right source line).
    """
    lines = text.split("\n")
    first = 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    if first >= len(lines) or lines[first].strip() != "---":
        return {}, text
    meta: dict[str, str] = {}
    for close in range(first + 1, len(lines)):
        if lines[close].strip() == "---":
            break
        key, sep, value = lines[close].partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    else:
        return {}, text  # no closing line: not front matter
    for i in range(first, close + 1):
        lines[i] = ""
    return meta, "\n".join(lines)


def _dedent_docstring(body: str) -> str:
    """Remove the common indentation of all lines but the first, keeping every line."""
    lines = body.split("\n")
    rest = [line for line in lines[1:] if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in rest), default=0)
    out = [lines[0].strip()] + [line[indent:] if line.strip() else "" for line in lines[1:]]
    return "\n".join(out)


def _comment_text(line: str) -> str:
    text = line.strip()[1:]
    return text[1:] if text.startswith(" ") else text


class _Splitter:
    def __init__(self, source: str, path: str):
        self.source = source
        self.path = path
        self.lines = source.splitlines(keepends=True)
        try:
            self.tree = ast.parse(source, filename=path)
            self.tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        except (SyntaxError, tokenize.TokenError) as e:
            raise SiteError(path, getattr(e, "lineno", None) or 1, f"cannot parse: {e}") from e
        self.strings = {tok.start: tok for tok in self.tokens if tok.type == tokenize.STRING}

    def _line_bytes(self, lineno: int) -> bytes:
        return self.lines[lineno - 1].encode("utf-8")

    # -- docstrings ---------------------------------------------------------------------------

    def docstring(self, node: ast.AST, kind: str) -> Prose | None:
        """The docstring of `node` as prose, if it stands alone on its lines."""
        body = getattr(node, "body", None)
        if not body or not isinstance(body[0], ast.Expr):
            return None
        expr = body[0]
        if not (isinstance(expr.value, ast.Constant) and isinstance(expr.value.value, str)):
            return None
        first, last = expr.lineno, expr.end_lineno
        before = self._line_bytes(first)[: expr.col_offset]
        after = self._line_bytes(last)[expr.end_col_offset:]
        if before.strip() or after.strip():
            return None  # shares its line with code: leave it as code
        col = len(before.decode("utf-8"))
        token = self.strings.get((first, col))
        end_col = len(self._line_bytes(last)[: expr.end_col_offset].decode("utf-8"))
        if token is None or token.end != (last, end_col):
            return None  # implicit concatenation of several literals: leave it as code
        literal = token.string
        prefix_len = len(literal) - len(literal.lstrip("rRuU"))
        prefix = literal[:prefix_len]
        quote = literal[prefix_len: prefix_len + 3] if literal[prefix_len: prefix_len + 3] in ('"""', "'''") else literal[prefix_len]
        raw_body = literal[prefix_len + len(quote): len(literal) - len(quote)]
        if "r" not in prefix.lower() and "\\" in raw_body:
            offset = raw_body[: raw_body.index("\\")].count("\n")
            raise SiteError(
                self.path, first + offset,
                "docstring holds a backslash but is not a raw string: write it as r\"\"\"...\"\"\" "
                "so that the text (and its math) is read as written")
        return Prose(kind=kind, start=first, end=last, text=_dedent_docstring(raw_body), text_line=first)

    # -- comments -----------------------------------------------------------------------------

    def comment_lines(self, header_lines: set[int]) -> list[int]:
        """Line numbers of own-line comments outside brackets and outside def/class headers."""
        depth = 0
        found = []
        for tok in self.tokens:
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            elif tok.type == tokenize.COMMENT and depth == 0:
                row, col = tok.start
                if tok.line[:col].strip() or row in header_lines:
                    continue
                if row == 1 and tok.string.startswith("#!"):
                    continue  # a shebang is code
                found.append(row)
        return found

    def header_colons(self) -> list[tuple[int, int]]:
        """Positions of the `:` tokens outside brackets (those that end def/class headers)."""
        depth = 0
        found = []
        for tok in self.tokens:
            if tok.type == tokenize.OP:
                if tok.string in "([{":
                    depth += 1
                elif tok.string in ")]}":
                    depth -= 1
                elif tok.string == ":" and depth == 0:
                    found.append(tok.start)
        return found

    # -- definitions --------------------------------------------------------------------------

    def definitions(self) -> list[tuple[int, str, str, ast.AST]]:
        """(first line including decorators, qualified name, kind, node) of every def/class."""
        out = []

        def visit(node: ast.AST, prefix: str, in_class: bool):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = f"{prefix}{child.name}"
                    start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                    if isinstance(child, ast.ClassDef):
                        kind = "class"
                    else:
                        kind = "method" if in_class else "function"
                    out.append((start, name, kind, child))
                    visit(child, name + ".", isinstance(child, ast.ClassDef))
                else:
                    visit(child, prefix, in_class)

        visit(self.tree, "", False)
        return sorted(out, key=lambda d: d[0])

    # -- sections -----------------------------------------------------------------------------

    def split(self) -> Module:
        n = len(self.lines)
        defs = self.definitions()
        self.function_names = {name for _, name, kind, _ in defs if kind != "class"}
        self.body_first = {start: node.body[0].lineno for start, _, _, node in defs}
        # Comments between a decorator and the end of its def/class line stay code.
        colons = self.header_colons()
        header_lines: set[int] = set()
        for start, _, _, node in defs:
            colon_line = next((row for row, col in colons if (row, col) > (node.lineno, node.col_offset)),
                              node.lineno)
            header_lines.update(range(start, colon_line + 1))

        prose: list[Prose] = []
        front_matter: dict[str, str] = {}
        module_doc = self.docstring(self.tree, "module")
        if module_doc is not None:
            front_matter, module_doc.text = parse_front_matter(module_doc.text)
            prose.append(module_doc)
        for _, _, _, node in defs:
            doc = self.docstring(node, "docstring")
            if doc is not None:
                prose.append(doc)

        # Consecutive own-line comment lines form a block.
        blocks: list[list[int]] = []
        for row in self.comment_lines(header_lines):
            if blocks and blocks[-1][-1] == row - 1:
                blocks[-1].append(row)
            else:
                blocks.append([row])
        for rows in blocks:
            text = "\n".join(_comment_text(self.lines[r - 1]) for r in rows)
            prose.append(Prose(kind="comment", start=rows[0], end=rows[-1], text=text, text_line=rows[0]))

        # Where sections begin, and what each one defines.
        starts: dict[int, tuple[str, str] | None] = {1: None}
        def_at = {start: (name, kind) for start, name, kind, _ in reversed(defs)}  # outermost wins
        attached: set[int] = set()
        for p in prose:
            if p.kind == "comment":
                target = def_at.get(p.end + 1)
                starts[p.start] = target
                if target is not None:
                    attached.add(p.end + 1)
            elif p.kind == "module":
                starts[p.start] = None
                if p.end + 1 <= n:
                    starts.setdefault(p.end + 1, None)
        for start, (name, kind) in def_at.items():
            if start in attached:
                continue
            # A function nested in a function is part of its parent's reading unless it has
            # prose of its own; its name is still found by search.
            if kind == "function" and "." in name and name.rpartition(".")[0] in self.function_names:
                has_docstring = any(p.start == self.body_first[start] for p in prose)
                if not has_docstring:
                    continue
            starts[start] = (name, kind)

        boundaries = sorted(b for b in starts if b <= max(n, 1))
        prose_at = {p.start: p for p in prose}
        moved_lines = {row for p in prose for row in range(p.start, p.end + 1)}
        used_anchors: dict[str, int] = {}
        sections: list[Section] = []
        for i, begin in enumerate(boundaries):
            end = boundaries[i + 1] - 1 if i + 1 < len(boundaries) else n
            section = Section()
            target = starts[begin]
            if target is not None:
                name, section.kind = target
                count = used_anchors.get(name, 0) + 1
                used_anchors[name] = count
                section.anchor = name if count == 1 else f"{name}-{count}"
            for row in range(begin, end + 1):
                line = self.lines[row - 1]
                if row in prose_at:
                    section.prose.append(prose_at[row])
                    section.intro = section.intro or prose_at[row].kind == "module"
                (section.moved if row in moved_lines else section.code).append((row, line))
            section.names = [name for start, name, _, _ in defs if begin <= start <= end]
            if section.code or section.moved:
                sections.append(section)
        return Module(path=self.path, lines=self.lines, front_matter=front_matter, sections=sections)


def split_source(source: str, path: str = "<string>") -> Module:
    """Split one module's text into sections (see the module docstring for the invariant)."""
    return _Splitter(source, path).split()


def reconstruct(module: Module) -> str:
    """Join every code line and every moved line of every section in line order."""
    rows = [item for s in module.sections for item in s.code + s.moved]
    rows.sort(key=lambda item: item[0])
    return "".join(text for _, text in rows)
