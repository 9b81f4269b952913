"""The "Checked by" pass: which tests check which page, and how they did in the latest recorded run.

**Declarations.** A test declares the pages whose claims it checks with a pytest marker, on a test
function, a test class or a method, or for a whole file with a module-level `pytestmark`:

```python
pytestmark = pytest.mark.checks("labml_nn/transformers/xl/readme.md")   # or a list of marks

@pytest.mark.checks("labml_nn/transformers/xl/relative_mha.py", "labml_nn/transformers/mha.py")
def test_relative_scores_match_the_paper(): ...
```

Each argument is a repository-relative source that is a page (a `.py` module or a `.md` file).
The tests are read as text with `ast`, never imported: `tests/*.py`, the functions named `test*`
and the classes named `Test*`, as pytest collects them. A declaration that names no page, or that
is not a call with string arguments, fails the build with the test file, its line and the path.

**Results.** `tests/conftest.py` writes `.test-results/results.json` at the end of every pytest
run (`make test` names the file explicitly): the date (UTC), `git rev-parse HEAD` with a flag if
the tree had uncommitted changes, and the outcome of every node id (`passed`, `failed`,
`skipped` or `error`). The build reads it when it is there. Parametrized cases and the methods of a
class are counted together: a declaring test passed only if every case passed. A test absent from
the file is shown as not run; without a file, the pages list the tests with no status at all; a
file from another commit than the one being built says so.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SiteError
from .pages import Page, Pass, Site, rel_url

OUTCOMES = ("passed", "failed", "error", "skipped")
DEFAULT_RESULTS = ".test-results/results.json"  # written by tests/conftest.py


@dataclass
class TestDef:
    """One function, class or method that pytest would collect from a test file."""
    file: str  # repository path, `tests/test_xl.py`
    qualname: str  # `test_x`, `TestY` or `TestY.test_z`
    line: int  # first line, decorators included
    kind: str  # "function", "class" or "method"
    pages: list[tuple[str, int]] = field(default_factory=list)  # (declared page, line of the mark)

    @property
    def node_id(self) -> str:
        return self.file + "::" + self.qualname.replace(".", "::")

    @property
    def anchor(self) -> str:
        return self.qualname


def sentence(qualname: str) -> str:
    """A test's name read as a sentence: `test_memory_equals_full_context` -> "memory equals full
    context", `TestRelativeShift.test_is_a_pad_and_a_view` -> "relative shift: is a pad and a view"."""
    parts = []
    for part in qualname.split("."):
        if part.startswith("Test") and part[4:5].isupper():
            part = part[4:]
            words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|_|$)|[A-Z]?[a-z]+|\d+|[A-Z]+", part)
            part = " ".join(w.lower() if w[:1].isupper() and w[1:].islower() or len(w) == 1 else w
                            for w in words)
        else:
            part = re.sub(r"^test_?", "", part)
        parts.append(re.sub(r"_+", " ", part).strip() or qualname)
    return ": ".join(parts)


def _is_checks(node: ast.AST) -> bool:
    """`pytest.mark.checks` or `mark.checks`, called or not."""
    func = node.func if isinstance(node, ast.Call) else node
    if not (isinstance(func, ast.Attribute) and func.attr == "checks"):
        return False
    base = func.value
    if isinstance(base, ast.Name):
        return base.id == "mark"
    return isinstance(base, ast.Attribute) and base.attr == "mark" and \
        isinstance(base.value, ast.Name) and base.value.id == "pytest"


def _marks(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, (ast.List, ast.Tuple)):
        return [m for element in node.elts for m in _marks(element)]
    return [node] if _is_checks(node) else []


class Declarations:
    """Every test of `tests/*.py` and the pages each declares; problems are collected."""

    def __init__(self):
        self.tests: dict[str, list[TestDef]] = {}  # test file -> its tests, in file order
        self.problems: list[tuple[str, int, str]] = []

    def read(self, repo_path: str, text: str) -> None:
        try:
            tree = ast.parse(text, filename=repo_path)
        except SyntaxError as e:
            raise SiteError(repo_path, e.lineno or 1, f"cannot parse the test file: {e.msg}") from e
        tests: list[TestDef] = []
        module_pages: list[tuple[str, int]] = []
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                    for t in node.targets):
                module_pages += self._pages(repo_path, _marks(node.value))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                tests.append(self._test(repo_path, node, node.name, "function"))
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                cls = self._test(repo_path, node, node.name, "class")
                for item in node.body:
                    if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                            for t in item.targets):
                        cls.pages += self._pages(repo_path, _marks(item.value))
                tests.append(cls)
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                        tests.append(self._test(repo_path, item, f"{node.name}.{item.name}", "method"))
        for test in tests:
            if test.kind != "method":
                test.pages = module_pages + test.pages
        self.tests[repo_path] = tests

    def _test(self, repo_path: str, node, qualname: str, kind: str) -> TestDef:
        line = min([node.lineno] + [d.lineno for d in node.decorator_list])
        pages = self._pages(repo_path, [d for d in node.decorator_list if _is_checks(d)])
        return TestDef(repo_path, qualname, line, kind, pages)

    def _pages(self, repo_path: str, marks: list[ast.AST]) -> list[tuple[str, int]]:
        pages = []
        for mark in marks:
            args = mark.args if isinstance(mark, ast.Call) else []
            if not args or (isinstance(mark, ast.Call) and mark.keywords):
                self.problems.append((repo_path, mark.lineno, "pytest.mark.checks(...) takes the "
                                      "repository paths of the pages it checks, as strings"))
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    pages.append((arg.value, arg.lineno))
                else:
                    self.problems.append((repo_path, arg.lineno, "pytest.mark.checks(...) takes string "
                                          "paths (written out, so that the site can read them)"))
        return pages

    def by_page(self, pages: set[str]) -> dict[str, list[TestDef]]:
        """Page source -> the tests that declare it (a method only when its class does not)."""
        found: dict[str, list[TestDef]] = {}
        for tests in self.tests.values():
            classes = {t.qualname: t for t in tests if t.kind == "class"}
            for test in tests:
                for page, line in test.pages:
                    if page not in pages:
                        self.problems.append((test.file, line, f"pytest.mark.checks names {page!r}, which "
                                              "is not a page of the site: give the repository-relative "
                                              "path of a module (.py) or a readme (.md) that exists"))
                        continue
                    owner = classes.get(test.qualname.split(".")[0]) if test.kind == "method" else None
                    if owner is not None and any(p == page for p, _ in owner.pages):
                        continue
                    bucket = found.setdefault(page, [])
                    if test not in bucket:
                        bucket.append(test)
        return found


# -- results ----------------------------------------------------------------------------------------

@dataclass
class Results:
    path: str
    date: str
    commit: str | None
    dirty: bool
    outcomes: dict[str, str]
    current_commit: str | None = None  # the commit being built, when known
    args: list[str] = field(default_factory=list)  # the pytest command line of the run

    @property
    def short(self) -> str:
        return (self.commit or "unknown")[:7]

    @property
    def same_commit(self) -> bool | None:
        if self.commit is None or self.current_commit is None:
            return None
        return self.commit == self.current_commit

    def describe(self) -> str:
        """One line on where the statuses come from."""
        text = f"Latest recorded run: {self.date}, commit {self.short}"
        if self.dirty:
            text += " with uncommitted changes"
        if self.same_commit is False:
            text += (f", another commit than this build's ({self.current_commit[:7]}): the code and "
                     "the tests may have changed since")
        return text + "."

    def status(self, test: TestDef) -> dict:
        """{"state", "label"}: the aggregate outcome of the test's node ids in this run."""
        prefix = test.node_id
        if self.outcomes.get(test.file) == "error":
            return {"state": "error", "label": "error: the test file failed to load"}
        if test.kind == "class":
            ids = [n for n in self.outcomes if n.startswith(prefix + "::")]
        else:
            ids = [n for n in self.outcomes if n == prefix or n.startswith(prefix + "[")]
        counts = {o: 0 for o in OUTCOMES}
        for n in ids:
            counts[self.outcomes[n] if self.outcomes[n] in counts else "error"] += 1
        total = len(ids)
        if not total:
            return {"state": "not-run", "label": "not run"}
        if counts["failed"] or counts["error"]:
            state = "failed" if counts["failed"] else "error"
            bad = counts["failed"] + counts["error"]
            label = state if total == 1 else f"{state}: {bad} of {total} cases"
        elif counts["passed"] == total:
            state = "passed"
            label = "passed" if total == 1 else f"passed: all {total} cases"
        elif counts["skipped"] == total:
            state = "skipped"
            label = "skipped" if total == 1 else f"skipped: all {total} cases"
        else:
            state = "partial"
            label = f"{counts['passed']} passed, {counts['skipped']} skipped"
        return {"state": state, "label": label}


def git_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def load_results(path: Path, shown_as: str, root: Path) -> Results | None:
    """The results file at `path`, or None when there is none; a malformed file fails the build."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        outcomes = data["tests"]
        ok = isinstance(outcomes, dict) and all(isinstance(k, str) and v in OUTCOMES for k, v in outcomes.items())
        if not ok or not isinstance(data.get("date"), str):
            raise ValueError("expected {\"date\": ..., \"commit\": ..., \"tests\": {node id: outcome}}")
    except (ValueError, KeyError, TypeError) as e:
        raise SiteError(shown_as, 1, f"the test results file cannot be read ({e}); run `make test` again "
                                     "to rewrite it, or delete it") from e
    args = data.get("args") if isinstance(data.get("args"), list) else []
    return Results(path=shown_as, date=data["date"], commit=data.get("commit") or None,
                   dirty=bool(data.get("dirty")), outcomes=outcomes, current_commit=git_commit(root),
                   args=[str(a) for a in args])


class CheckedBy(Pass):
    """Each page ends with the tests that declare it; each test file is a page with an anchor per test.

    `results` is the test results file: None reads `.test-results/results.json` of the repository
    when it exists, False reads none."""

    def __init__(self, root: Path, results: Path | None | bool = None):
        super().__init__()
        path = root / DEFAULT_RESULTS if results is None else results
        self.results = None
        if path:
            path = Path(path)
            try:
                shown = path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                shown = str(path)
            self.results = load_results(path, shown, root)
        self.declarations = Declarations()
        self.by_page: dict[str, list[TestDef]] = {}

    def read(self, site: Site) -> None:
        for page in site.pages:
            if page.kind == "test":
                self.declarations.read(page.src, "".join(page.module.lines))
                page.tests = self.declarations.tests[page.src]
                page.line_ids = {t.line: t.anchor for t in page.tests}
                page.anchors.update(page.line_ids.values())
        self.by_page = self.declarations.by_page({p.src for p in site.pages if p.checkable})
        self.problems += sorted(set(self.declarations.problems))

    def context(self, page: Page, site: Site) -> dict:
        if page.kind == "test":
            declared = dict.fromkeys(path for t in page.tests for path, _ in t.pages if path in site.by_src)
            return {"toc": [{"depth": 3 if t.kind == "method" else 2, "text": t.qualname.rpartition(".")[2],
                             "anchor": t.anchor, "code": True} for t in page.tests],
                    "test_checks": [{"title": site.by_src[path].title, "name": path,
                                     "url": rel_url(site.by_src[path].out, page)} for path in declared]}
        if not page.checkable:
            return {}
        entries = []
        for test in self.by_page.get(page.src, []):
            test_page = site.by_src.get(test.file)
            entries.append({"sentence": sentence(test.qualname), "name": test.qualname, "file": test.file,
                            "url": rel_url(f"{test_page.out}#{test.anchor}", page) if test_page else None,
                            "status": self.results.status(test) if self.results else None})
        run = None
        if self.results is not None and entries:
            r = self.results
            run = {"text": r.describe(), "other": r.same_commit is False, "title": f"{r.date}, commit {r.short}",
                   "command": " ".join(["pytest"] + r.args) if r.args else None}
        return {"checked_by": {"entries": entries, "run": run, "results": self.results is not None}}

    def unchecked(self, site: Site) -> list[str]:
        """The pages no test declares."""
        return sorted(p.src for p in site.pages if p.checkable and not self.by_page.get(p.src))
