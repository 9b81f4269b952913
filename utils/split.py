r"""Cut a Python module into sections of prose and code, reading it as text.

A section is what a reader sees side by side: prose on the left, the code it explains on the
right. Prose comes from three places, found with `tokenize` and `ast` (never by importing):

* the module docstring: the page's intro (its front matter, `---\ntitle: ...\n---`, is metadata);
* a class or function docstring: prose beside its `def`/`class` line;
* a block of consecutive own-line `#` comments outside any brackets: prose beside the code that
  follows it. A block directly above a `def`/`class` (or its decorators) joins its section.

The invariant, checked by the tests over every real source: each line of the file belongs to
exactly one section, as a code line (`Section.code`) or as a line moved to prose
(`Section.moved`), with its real 1-based number; `reconstruct` gives the file back byte for byte.
A docstring is moved to prose only when its lines hold nothing else; otherwise it stays code.
"""
from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field

from .errors import SiteError

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


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
    """Split `---\nkey: value\n---` off the start of `text`; its lines become empty lines, so that
    line `i` of the returned text is still line `i` of the input."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    if first == len(lines) or lines[first].strip() != "---":
        return {}, text
    close = next((i for i in range(first + 1, len(lines)) if lines[i].strip() == "---"), None)
    if close is None:
        return {}, text  # no closing line: not front matter
    meta = {k.strip(): v.strip() for k, sep, v in (line.partition(":") for line in lines[first + 1:close]) if sep}
    return meta, "\n".join([""] * (close + 1) + lines[close + 1:])


def _docstring(node: ast.AST, kind: str, lines: list[str], strings: dict, path: str) -> Prose | None:
    """The docstring of `node` as prose, if it is one string literal standing alone on its lines."""
    body = getattr(node, "body", None)
    expr = body[0] if body and isinstance(body[0], ast.Expr) else None
    if expr is None or not (isinstance(expr.value, ast.Constant) and isinstance(expr.value.value, str)):
        return None
    first, last = expr.lineno, expr.end_lineno
    before = lines[first - 1].encode("utf-8")[:expr.col_offset].decode("utf-8")
    upto = lines[last - 1].encode("utf-8")[:expr.end_col_offset].decode("utf-8")
    token = strings.get((first, len(before)))
    if before.strip() or lines[last - 1][len(upto):].strip() or token is None or token.end != (last, len(upto)):
        return None  # shares its lines with code, or several literals: code
    literal = token.string
    prefix = literal[:len(literal) - len(literal.lstrip("rRuU"))]
    quote = 3 if literal[len(prefix):len(prefix) + 3] in ('"""', "'''") else 1
    raw = literal[len(prefix) + quote:len(literal) - quote]
    if "r" not in prefix.lower() and "\\" in raw:
        raise SiteError(path, first + raw[:raw.index("\\")].count("\n"),
                        "docstring holds a backslash but is not a raw string: write it as r\"\"\"...\"\"\" "
                        "so that the text (and its math) is read as written")
    rest = [line for line in raw.split("\n")[1:] if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in rest), default=0)
    text = "\n".join([raw.split("\n")[0].strip()] + [line[indent:] if line.strip() else ""
                                                     for line in raw.split("\n")[1:]])
    return Prose(kind, first, last, text, first)


def _definitions(tree: ast.AST) -> list[tuple[int, str, str, ast.AST]]:
    """(first line, decorators included, qualified name, kind, node) of every def and class."""
    out = []

    def visit(node: ast.AST, prefix: str, in_class: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, DEFINITIONS):
                kind = "class" if isinstance(child, ast.ClassDef) else "method" if in_class else "function"
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                out.append((start, prefix + child.name, kind, child))
                visit(child, prefix + child.name + ".", kind == "class")
            else:
                visit(child, prefix, in_class)

    visit(tree, "", False)
    return sorted(out, key=lambda d: d[0])


def _comment_rows(tokens: list, defs: list) -> list[int]:
    """The lines of own-line comments outside brackets and outside def/class headers (from the
    first decorator to the `:` that ends the header: those stay code), a shebang aside."""
    depth, colons, comments = 0, [], []
    for tok in tokens:
        if tok.type == tokenize.OP:
            depth += (tok.string in "([{") - (tok.string in ")]}")
            if tok.string == ":" and depth == 0:
                colons.append(tok.start)
        elif tok.type == tokenize.COMMENT and depth == 0 and not tok.line[:tok.start[1]].strip():
            if not (tok.start[0] == 1 and tok.string.startswith("#!")):
                comments.append(tok.start[0])
    headers = set()
    for start, _, _, node in defs:
        end = next((row for row, col in colons if (row, col) > (node.lineno, node.col_offset)), node.lineno)
        headers.update(range(start, end + 1))
    return [row for row in comments if row not in headers]


def split_source(source: str, path: str = "<string>") -> Module:
    """Split one module's text into sections (see the module docstring for the invariant)."""
    lines = source.splitlines(keepends=True)
    try:
        tree = ast.parse(source, filename=path)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, tokenize.TokenError) as e:
        raise SiteError(path, getattr(e, "lineno", None) or 1, f"cannot parse: {e}") from e
    strings = {tok.start: tok for tok in tokens if tok.type == tokenize.STRING}
    defs = _definitions(tree)

    prose, front_matter = [], {}
    module_doc = _docstring(tree, "module", lines, strings, path)
    if module_doc is not None:
        front_matter, module_doc.text = parse_front_matter(module_doc.text)
        prose.append(module_doc)
    prose += [d for _, _, _, node in defs if (d := _docstring(node, "docstring", lines, strings, path))]
    blocks: list[list[int]] = []  # consecutive own-line comments form a block
    for row in _comment_rows(tokens, defs):
        if blocks and blocks[-1][-1] == row - 1:
            blocks[-1].append(row)
        else:
            blocks.append([row])
    for rows in blocks:
        text = "\n".join(lines[r - 1].strip()[1:].removeprefix(" ") for r in rows)
        prose.append(Prose("comment", rows[0], rows[-1], text, rows[0]))

    # Where sections begin, and what each one defines.
    starts: dict[int, tuple[str, str] | None] = {1: None}
    def_at = {start: (name, kind) for start, name, kind, _ in reversed(defs)}  # the outermost wins
    functions = {name for _, name, kind, _ in defs if kind != "class"}
    body_first = {start: node.body[0].lineno for start, _, _, node in defs}
    for p in prose:
        if p.kind == "comment":
            starts[p.start] = def_at.get(p.end + 1)  # a comment above a definition joins it
        elif p.kind == "module":
            starts[p.start] = None
            if p.end < len(lines):
                starts.setdefault(p.end + 1, None)
    for start, (name, kind) in def_at.items():
        attached = any(p.kind == "comment" and p.end + 1 == start for p in prose)
        # A function nested in a function is part of its parent's reading unless it has prose of
        # its own (its name is still found by search).
        nested = kind == "function" and name.rpartition(".")[0] in functions
        if not attached and (not nested or any(p.start == body_first[start] for p in prose)):
            starts[start] = (name, kind)

    boundaries = sorted(b for b in starts if b <= max(len(lines), 1))
    prose_at = {p.start: p for p in prose}
    moved = {row for p in prose for row in range(p.start, p.end + 1)}
    used: dict[str, int] = {}
    sections = []
    for begin, end in zip(boundaries, [b - 1 for b in boundaries[1:]] + [len(lines)]):
        section = Section()
        if starts[begin] is not None:
            name, section.kind = starts[begin]
            used[name] = used.get(name, 0) + 1
            section.anchor = name if used[name] == 1 else f"{name}-{used[name]}"
        for row in range(begin, end + 1):
            if row in prose_at:
                section.prose.append(prose_at[row])
                section.intro = section.intro or prose_at[row].kind == "module"
            (section.moved if row in moved else section.code).append((row, lines[row - 1]))
        section.names = [name for start, name, _, _ in defs if begin <= start <= end]
        if section.code or section.moved:
            sections.append(section)
    return Module(path, lines, front_matter, sections)


def reconstruct(module: Module) -> str:
    """Join every code line and every moved line of every section in line order."""
    return "".join(text for _, text in sorted(item for s in module.sections for item in s.code + s.moved))
