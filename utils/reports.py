"""The report pass: numbers on pages come from the benchmark reports, never from prose typed by hand.

Two forms, both resolved at build time against `bench/reports/` of the repository:

* `{report:NAME.KEY}` anywhere in the text of prose (module, class and function docstrings, `#`
  comment prose, readmes, front-matter summaries) becomes `figures[KEY]` of
  `bench/reports/NAME.json`, a JSON object `{"figures": {"train_vs_peer": "1.27×", ...}}` whose
  values are strings formatted by the benchmark. NAME has no dots; KEY is everything after the
  first dot. The string is inserted as inline Markdown. Code spans and code blocks keep the
  placeholder as written (so the syntax can be shown); a placeholder inside math fails the build.
* a line `<!-- report: FILE.md -->` (alone on its line, at the start of the line, outside code
  blocks) in a readme is replaced on the site by the Markdown of `bench/reports/FILE.md`, whose
  links and images are read relative to that file. On GitHub the comment stays invisible.

A missing file, a file that is not such JSON, a missing `figures` object, a missing key or a value
that is not a string fails the build with the page, its line, the placeholder and what is missing;
one build lists every missing figure.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import SiteError
from .markdown import MATH_TYPES, Markdown
from .pages import REPORTS, Page, Pass
from .paths import check_segments, inside, read_text

PLACEHOLDER = re.compile(r"\{report:([A-Za-z0-9_-]+)\.([A-Za-z0-9_.-]+)\}")
START = "{report:"
INCLUDE = re.compile(r"<!--\s*report:\s*(\S*?)\s*-->\s*")
INSIDE_MATH = "a {report:...} placeholder inside math is not replaced: put it in the text next to the formula"


class Reports(Pass):
    def __init__(self, root: Path, markdown: Markdown):
        super().__init__()
        self.root, self.markdown = root, markdown  # a figure is inline Markdown, math included
        self.loaded: dict[str, dict] = {}

    # -- {report:NAME.KEY} -------------------------------------------------------------------------

    def prose(self, tokens: list, path: str, first_line: int, page: Page) -> None:
        """Replace the placeholders in the text of `tokens` by their figures, as inline Markdown."""
        for tok in tokens:
            line = first_line + (tok.map[0] if tok.map else 0)
            if tok.type in MATH_TYPES and START in tok.content:
                raise SiteError(path, line + 1, INSIDE_MATH)
            if tok.type == "inline" and START in tok.content:
                tok.children = self._fill(tok.children or [], path, line, page)

    def _fill(self, children: list, path: str, line: int, page: Page) -> list:
        out = []
        for child in children:
            if child.type in MATH_TYPES and START in child.content:
                raise SiteError(path, line, INSIDE_MATH)
            if child.type != "text" or START not in child.content:
                out.append(child)
            else:
                text, at = child.content, 0
                while (start := text.find(START, at)) >= 0:
                    here = line + text.count("\n", 0, start)
                    m = PLACEHOLDER.match(text, start)
                    if m is None:
                        bad = text[start:text.find("}", start) + 1 or len(text)]
                        raise SiteError(path, here, f"malformed report placeholder {bad!r}: write "
                                        "{report:NAME.KEY} with NAME a file of bench/reports/ (without "
                                        ".json, no dots) and KEY a key of its \"figures\" (letters, "
                                        "digits, '_', '-', '.')")
                    out += [self._text(child, text[at:start])] if start > at else []
                    figure = self.figure(m.group(1), m.group(2), path, here)
                    out += self.markdown.md.parseInline(figure)[0].children or []
                    at = m.end()
                out += [self._text(child, text[at:])] if at < len(text) else []
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            elif child.type != "code_inline":
                line += child.content.count("\n")
        return out

    @staticmethod
    def _text(like, content: str):
        token = like.copy()
        token.content = content
        return token

    def figure(self, name: str, key: str, path: str, line: int) -> str:
        """The figure's text; a missing one is recorded in `problems` and its placeholder shown as code."""
        placeholder = f"{{report:{name}.{key}}}"
        try:
            figures = self._figures(name, placeholder, path, line)
            if key not in figures:
                known = ", ".join(sorted(figures)) or "none"
                raise SiteError(path, line, f"{placeholder}: {REPORTS}/{name}.json has no figure {key!r} "
                                            f"(its figures: {known})")
            if not isinstance(figures[key], str):
                raise SiteError(path, line, f"{placeholder}: the figure {key!r} of {REPORTS}/{name}.json "
                                            f"is {json.dumps(figures[key])}, not a string: the report writes "
                                            "figures already formatted, as they appear on the page")
            return figures[key]
        except SiteError as e:
            self.problems.append((e.path, e.line, e.message))
            return f"`{placeholder}`"

    def _figures(self, name: str, placeholder: str, path: str, line: int) -> dict:
        if name not in self.loaded:
            repo_path = f"{REPORTS}/{name}.json"
            if not (self.root / repo_path).is_file():
                raise SiteError(path, line, f"{placeholder}: there is no report {repo_path}")
            try:
                data = json.loads(read_text(self.root, repo_path))
            except (ValueError, UnicodeDecodeError) as e:
                raise SiteError(path, line, f"{placeholder}: {repo_path} is not valid JSON ({e})") from e
            figures = data.get("figures") if isinstance(data, dict) else None
            if not isinstance(figures, dict):
                raise SiteError(path, line, f"{placeholder}: {repo_path} has no top-level \"figures\" object")
            self.loaded[name] = figures
        return self.loaded[name]

    # -- <!-- report: FILE.md --> --------------------------------------------------------------------

    def include(self, page: Page, text: str, code_lines: set[int]) -> list[tuple[str, int, str]]:
        """The readme cut at its include lines: (source path, first line, text) blocks, the
        included reports' text in place. `code_lines` (0-based) are the lines of code blocks."""
        lines = text.split("\n")
        blocks, start = [], 0
        for i, line in enumerate(lines):
            m = INCLUDE.fullmatch(line)
            if m is None or i in code_lines:
                continue
            blocks.append((page.src, start + 1, "\n".join(lines[start:i])))
            blocks.append(self._report(m.group(1), page.src, i + 1))
            start = i + 1
        return blocks + [(page.src, start + 1, "\n".join(lines[start:]))]

    def _report(self, file: str, path: str, line: int) -> tuple[str, int, str]:
        repo_path = f"{REPORTS}/{file}"
        if not file.endswith(".md") or file.startswith("/") or ".." in file.split("/"):
            raise SiteError(path, line, f"<!-- report: {file} --> must name a .md file inside {REPORTS}/")
        check_segments(repo_path, "report")
        if not (self.root / repo_path).is_file():
            raise SiteError(path, line, f"<!-- report: {file} -->: there is no report {repo_path}")
        return repo_path, 1, read_text(self.root, repo_path)

