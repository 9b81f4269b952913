"""Numbers on pages come from the benchmark reports, never from prose typed by hand.

Two forms, both resolved at build time against `bench/reports/` of the repository:

* `{report:NAME.KEY}` anywhere in the text of prose (module, class and function docstrings, `#`
  comment prose, readmes) becomes `figures[KEY]` of `bench/reports/NAME.json`, a JSON object
  `{"figures": {"train_vs_peer": "1.27×", ...}}` whose values are strings formatted by the
  benchmark. NAME has no dots; KEY is everything after the first dot. The string is inserted as
  inline Markdown. Code spans and code blocks keep the placeholder as written (so the syntax can
  be shown); a placeholder inside math fails the build.
* a line `<!-- report: FILE.md -->` (alone on its line, at the start of the line, outside code
  blocks) in a readme is replaced on the site by the Markdown of `bench/reports/FILE.md`, whose
  links and images are read relative to that file. On GitHub the comment stays invisible.

A missing file, a file that is not such JSON, a missing `figures` object, a missing key or a value
that is not a string fails the build with the page, its line, the placeholder and what is missing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import SiteError
from .paths import check_segments, inside

REPORTS = "bench/reports"
INCLUDE = re.compile(r"<!--\s*report:\s*(\S*?)\s*-->\s*")


class Reports:
    """The figures of `bench/reports/*.json`, each file read once per build.

    A figure that cannot be found is recorded in `problems` (and its placeholder left in the
    text), so that one build lists every missing figure; the build then fails with all of them
    (`Site.parse`)."""

    def __init__(self, root: Path):
        self.root = root
        self.loaded: dict[str, dict] = {}
        self.problems: list[tuple[str, int, str]] = []

    def figure(self, name: str, key: str, page: str, line: int) -> str:
        try:
            return self._figure(name, key, page, line)
        except SiteError as e:
            self.problems.append((e.path, e.line, e.message))
            return f"`{{report:{name}.{key}}}`"

    def _figure(self, name: str, key: str, page: str, line: int) -> str:
        placeholder = f"{{report:{name}.{key}}}"
        figures = self._figures(name, placeholder, page, line)
        if key not in figures:
            known = ", ".join(sorted(figures)) or "none"
            raise SiteError(page, line, f"{placeholder}: {REPORTS}/{name}.json has no figure {key!r} "
                                        f"(its figures: {known})")
        value = figures[key]
        if not isinstance(value, str):
            raise SiteError(page, line, f"{placeholder}: the figure {key!r} of {REPORTS}/{name}.json is "
                                        f"{json.dumps(value)}, not a string: the report writes figures "
                                        "already formatted, as they appear on the page")
        return value

    def _figures(self, name: str, placeholder: str, page: str, line: int) -> dict:
        if name in self.loaded:
            return self.loaded[name]
        repo_path = f"{REPORTS}/{name}.json"
        path = self.root / repo_path
        if not path.is_file():
            raise SiteError(page, line, f"{placeholder}: there is no report {repo_path}")
        inside(self.root, repo_path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise SiteError(page, line, f"{placeholder}: {repo_path} is not valid JSON ({e})") from e
        figures = data.get("figures") if isinstance(data, dict) else None
        if not isinstance(figures, dict):
            raise SiteError(page, line, f"{placeholder}: {repo_path} has no top-level \"figures\" object")
        self.loaded[name] = figures
        return figures

    def include(self, file: str, page: str, line: int) -> tuple[str, str]:
        """(repository path, text) of the report `file` that a readme includes."""
        repo_path = f"{REPORTS}/{file}"
        if not file.endswith(".md") or file.startswith("/") or ".." in file.split("/"):
            raise SiteError(page, line, f"<!-- report: {file} --> must name a .md file inside {REPORTS}/")
        check_segments(repo_path, "report")
        if not (self.root / repo_path).is_file():
            raise SiteError(page, line, f"<!-- report: {file} -->: there is no report {repo_path}")
        return repo_path, inside(self.root, repo_path).read_text(encoding="utf-8")


def split_includes(text: str, code_lines: set[int]) -> list[tuple[int, str | None, str]]:
    """Cut a readme at its include lines: (first line, included file or None, text) chunks, the
    text chunks keeping their line numbers. `code_lines` (0-based) are lines of code blocks."""
    lines = text.split("\n")
    chunks: list[tuple[int, str | None, str]] = []
    start = 0
    for i, line in enumerate(lines):
        m = INCLUDE.fullmatch(line)
        if m is None or i in code_lines:
            continue
        chunks.append((start + 1, None, "\n".join(lines[start:i])))
        chunks.append((i + 1, m.group(1), ""))
        start = i + 1
    chunks.append((start + 1, None, "\n".join(lines[start:])))
    return chunks
