"""
How much of each paper page's code is the paper: code lines (not blank, not a docstring, not a comment),
split into the paper's and the machinery's, by the rules below, for the working tree or a git revision.

    python scripts/paper_lines.py              # the working tree
    python scripts/paper_lines.py --rev main   # a revision, read with `git show`

A statement is **machinery** when it is

* an import, or a module-level assignment (constants, type aliases);
* input validation: a `raise`, an `if` whose body only raises, a call of a `check_*` function, of
  `head_size` or of `warnings.warn`, anything touching the hub mixin's private state;
* in a model class (the language model of the page): a call of `super().__init__`, a class attribute, or a
  statement that uses the shell's embedding and read-out (`token_emb`, `to_logits`, `self.norm`);
* inside a function or method whose name is in `MACHINERY` (memory checks and serialisation, FLOP counting,
  generation and its caches, dispatch and reshapes that are not an equation of the paper).

Everything else is the paper. The rules are the same for every revision, so before/after numbers compare.
"""
import argparse
import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Dict, Iterable, Optional, Set, Tuple

REPO = Path(__file__).resolve().parents[1]

PAGES = ["labml_nn/transformers/xl/__init__.py", "labml_nn/transformers/compressive/__init__.py",
         "labml_nn/transformers/feedback/__init__.py", "labml_nn/transformers/xl/relative_mha.py",
         "labml_nn/transformers/mha.py"]
MODEL_CLASSES = {"TransformerXL", "CompressiveTransformer", "FeedbackTransformer"}
MACHINERY = {
    # memory checks, the trainer's serialisation, evaluation lengths
    "check_memory", "memory_state", "load_memory_state", "memory_lengths", "set_memory_lengths",
    # the FLOP count and what it reads
    "flops_per_token", "weight_uses_per_token", "keys_per_query",
    # generation and its caches, dispatch between implementations, reshapes of the caches
    "generate", "start_histories", "exact_steps", "window_kv", "projection_of", "steps_for",
}
SHELL_NAMES = {"token_emb", "to_logits", "generation_page"}


def code_lines(source: str) -> Set[int]:
    """Lines with a token that is neither a comment nor part of a docstring."""
    tree = ast.parse(source)
    docstrings: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in skip:
            continue
        for line in range(token.start[0], token.end[0] + 1):
            if line not in docstrings:
                lines.add(line)
    return lines


def span(node: ast.AST) -> Iterable[int]:
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return range(start, node.end_lineno + 1)


def is_validation(node: ast.stmt) -> bool:
    if isinstance(node, ast.Raise):
        return True
    if isinstance(node, ast.If) and all(isinstance(s, ast.Raise) for s in node.body) and not node.orelse:
        return True
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(sub.func, "id", "")
            if name.startswith("check_") or name in ("head_size", "warn"):
                return True
        if isinstance(sub, ast.Attribute) and sub.attr.startswith("_hub_mixin"):
            return True
    return False


def uses_shell(node: ast.stmt) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            if sub.attr in SHELL_NAMES:
                return True
            if sub.attr == "norm" and isinstance(sub.value, ast.Name) and sub.value.id in ("self", "model"):
                return True
            if (sub.attr == "__init__" and isinstance(sub.value, ast.Call)
                    and getattr(sub.value.func, "id", "") == "super"):
                return True
    return False


def machinery_lines(source: str) -> Set[int]:
    tree = ast.parse(source)
    marked: Set[int] = set()

    def visit(body, in_model: bool, in_machinery: bool, at_module: bool, in_class: bool):
        for node in body:
            if in_machinery:
                marked.update(span(node))
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                marked.update(span(node))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name in MACHINERY:
                    marked.update(span(node))
                else:
                    visit(node.body, in_model, False, False, False)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, node.name in MODEL_CLASSES, False, False, True)
            elif at_module and isinstance(node, (ast.Assign, ast.AnnAssign)):
                marked.update(span(node))
            elif in_model and in_class and isinstance(node, (ast.Assign, ast.AnnAssign)):
                marked.update(span(node))
            elif is_validation(node) or (in_model and uses_shell(node)):
                marked.update(span(node))
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if inner:
                        visit(inner, in_model, False, False, False)

    visit(tree.body, False, False, True, False)
    return marked


def count(source: str) -> Tuple[int, int]:
    """(code lines, machinery lines) of a source."""
    lines = code_lines(source)
    return len(lines), len(lines & machinery_lines(source))


def read(path: str, rev: Optional[str]) -> Optional[str]:
    if rev is None:
        file = REPO / path
        return file.read_text() if file.is_file() else None
    done = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def table(rev: Optional[str]) -> Dict[str, Tuple[int, int]]:
    return {path: count(source) for path in PAGES if (source := read(path, rev)) is not None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default=None, help="a git revision (default: the working tree)")
    args = parser.parse_args(argv)
    print("| page | code lines | paper | machinery | paper share |")
    print("|---|---|---|---|---|")
    for path, (total, machinery) in table(args.rev).items():
        print(f"| {path.removeprefix('labml_nn/transformers/')} | {total} | {total - machinery} | {machinery} "
              f"| {(total - machinery) / total:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
