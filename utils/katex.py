"""Typeset every formula of a build with KaTeX in one Node process (utils/katex_render.js)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .errors import SiteError
from .markdown import Formula

UTILS = Path(__file__).resolve().parent
SCRIPT = UTILS / "katex_render.js"
KATEX_DIST = UTILS / "node_modules" / "katex" / "dist"


def check_installed() -> None:
    if shutil.which("node") is None:
        raise SiteError(str(SCRIPT), 1, "Node.js is needed to typeset math: install node (20 or later)")
    if not (KATEX_DIST / "katex.min.css").exists():
        raise SiteError(str(UTILS / "package.json"), 1,
                        "KaTeX is not installed: run `cd utils && npm ci` (or `make site`)")


class Typesetting:
    """One KaTeX process for a whole build, started early so the build can highlight code while
    it runs; `result()` waits for it."""

    def __init__(self, formulas: list[Formula]):
        check_installed()
        self.formulas = formulas
        original = {(f.tex, f.display): f.original for f in formulas if f.original}
        self.unique = list(dict.fromkeys((f.tex, f.display) for f in formulas))
        self.proc = None
        if self.unique:
            payload = json.dumps([{"tex": tex, "display": display, "original": original.get((tex, display))}
                                  for tex, display in self.unique])
            self.proc = subprocess.Popen(["node", str(SCRIPT)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         cwd=UTILS, text=True, encoding="utf-8")
            self.proc.stdin.write(payload)  # node reads all of stdin before it writes anything
            self.proc.stdin.close()

    def result(self) -> dict[tuple[str, bool], str]:
        """HTML for each distinct (tex, display) pair; a formula KaTeX rejects fails the build,
        naming every file and line where a rejected formula is written."""
        if self.proc is None:
            return {}
        stdout = self.proc.stdout.read()
        stderr = self.proc.stderr.read()
        if self.proc.wait() != 0:
            raise SiteError(str(SCRIPT), 1, f"KaTeX failed: {stderr.strip()}")
        results = json.loads(stdout)
        html: dict[tuple[str, bool], str] = {}
        failed: dict[tuple[str, bool], str] = {}
        for key, result in zip(self.unique, results):
            if "error" in result:
                failed[key] = result["error"]
            else:
                html[key] = result["html"]
        if failed:
            where = [f for f in self.formulas if (f.tex, f.display) in failed]
            lines = [f"{f.path}:{f.line}: KaTeX cannot typeset {f.original or f.tex!r}: "
                     f"{failed[(f.tex, f.display)]}" for f in where]
            raise SiteError(where[0].path, where[0].line, "math error\n" + "\n".join(lines))
        return html

