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


def typeset(formulas: list[Formula]) -> dict[tuple[str, bool], str]:
    """HTML for each distinct (tex, display) pair; a formula KaTeX rejects fails the build,
    naming every file and line where a rejected formula is written."""
    check_installed()
    unique = list(dict.fromkeys((f.tex, f.display) for f in formulas))
    if not unique:
        return {}
    payload = json.dumps([{"tex": tex, "display": display} for tex, display in unique])
    proc = subprocess.run(["node", str(SCRIPT)], input=payload, capture_output=True,
                          text=True, encoding="utf-8", cwd=UTILS)
    if proc.returncode != 0:
        raise SiteError(str(SCRIPT), 1, f"KaTeX failed: {proc.stderr.strip()}")
    results = json.loads(proc.stdout)
    html: dict[tuple[str, bool], str] = {}
    errors = []
    for key, result in zip(unique, results):
        if "error" in result:
            errors.append((key, result["error"]))
        else:
            html[key] = result["html"]
    if errors:
        failed = {key: message for key, message in errors}
        where = [f for f in formulas if (f.tex, f.display) in failed]
        first = where[0]
        lines = [f"{f.path}:{f.line}: KaTeX cannot typeset ${f.tex}$: {failed[(f.tex, f.display)]}"
                 for f in where]
        raise SiteError(first.path, first.line, "math error\n" + "\n".join(lines))
    return html
