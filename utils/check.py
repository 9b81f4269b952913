"""The build's self-check: every internal link and anchor resolves, nothing loads from elsewhere.

Every page and stylesheet under the output folder is read back. A resource a page loads (script,
stylesheet, image, font, frame...) must be a file of the site; an `<a href>` may leave the site
(arXiv, GitHub, Colab) but one that stays must reach an existing file and, with a `#fragment`, an
element with that id. Problems are reported with the page's file and line and, for links written
in prose, the source file and line they came from.
"""
from __future__ import annotations

import posixpath
import re
from html import unescape
from pathlib import Path
from urllib.parse import unquote

from .errors import SiteError

EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)
# (tag, attribute) pairs through which a page loads something.
LOADS = {("script", "src"), ("link", "href"), ("img", "src"), ("img", "srcset"), ("source", "src"),
         ("source", "srcset"), ("iframe", "src"), ("video", "src"), ("video", "poster"),
         ("audio", "src"), ("embed", "src"), ("object", "data"), ("input", "src"), ("track", "src"),
         ("use", "href"), ("image", "href"), ("frame", "src")}
REF_TAGS = {tag for tag, _ in LOADS} | {"a"}
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)\b([^>]*)>")
ATTR = re.compile(r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""")


class _PageReader:
    """The ids of a page and the addresses it refers to, with their lines.

    A small scanner over start tags rather than html.parser: the pages are generated (quoted
    attributes, no comments holding tags), and KaTeX's markup makes them large."""

    def __init__(self, text: str):
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str, int]] = []  # (tag, attribute, value, line)
        for m in TAG.finditer(text):
            tag = m.group(1).lower()
            attrs = m.group(2)
            if tag not in REF_TAGS and "id=" not in attrs and "name=" not in attrs and "url(" not in attrs:
                continue  # most tags (KaTeX's spans) neither refer nor can be referred to
            line = None
            for a in ATTR.finditer(attrs):
                name = a.group(1).lower()
                value = unescape(next(v for v in a.groups()[1:] if v is not None))
                if name == "id" or (tag == "a" and name == "name"):
                    self.ids.add(value)
                    continue
                loads = (tag, name) in LOADS or (tag == "a" and name == "href")
                styled = name == "style" and "url(" in value
                if not (loads or styled):
                    continue
                if line is None:
                    line = text.count("\n", 0, m.start()) + 1
                if loads:
                    self.refs.append((tag, name, value, line))
                else:
                    self.refs.extend((tag, "style", url, line) for url in CSS_URL.findall(value))


def check_site(out: Path, origins: dict | None = None) -> None:
    """Raise SiteError listing every broken link, missing anchor or remote resource under `out`."""
    origins = origins or {}
    pages: dict[str, _PageReader] = {}
    for path in sorted(out.rglob("*.html")):
        reader = _PageReader(path.read_text(encoding="utf-8"))
        pages[path.relative_to(out).as_posix()] = reader
    problems: list[tuple[str, int, str]] = []

    def report(page: str, line: int, value: str, message: str) -> None:
        where = origins.get((page, value))
        if where:
            for src, src_line in where:
                problems.append((src, src_line, f"{message} (in {page}:{line})"))
        else:
            problems.append((page, line, message))

    for page, reader in pages.items():
        for tag, attr, value, line in reader.refs:
            urls = [part.strip().split(" ")[0] for part in value.split(",")] if attr == "srcset" else [value]
            for url in urls:
                if tag == "a" and attr == "href":
                    if EXTERNAL.match(url):
                        continue
                elif REMOTE.match(url) or EXTERNAL.match(url) and not url.startswith("data:"):
                    report(page, line, value, f"<{tag} {attr}=\"{url}\"> loads from another host; "
                                              "copy the file into utils/static/ instead")
                    continue
                problem = _resolve(out, pages, page, url)
                if problem:
                    report(page, line, value, f"<{tag} {attr}=\"{url}\">: {problem}")
    for css in sorted(out.rglob("*.css")):
        rel = css.relative_to(out).as_posix()
        for number, text in enumerate(css.read_text(encoding="utf-8").splitlines(), 1):
            for url in CSS_URL.findall(text):
                if url.startswith("data:") or url.startswith("#"):
                    continue
                if EXTERNAL.match(url):
                    problems.append((rel, number, f"url({url}) loads from another host"))
                elif not (css.parent / unquote(url.split("?")[0].split("#")[0])).exists():
                    problems.append((rel, number, f"url({url}) is missing"))
    if problems:
        src, line, message = problems[0]
        rest = "".join(f"\n{p}:{n}: {m}" for p, n, m in problems[1:])
        raise SiteError(src, line, message + rest)


def _resolve(out: Path, pages: dict, page: str, url: str) -> str | None:
    path, _, fragment = url.partition("#")
    path = unquote(path.split("?")[0])
    if path:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
        if target.startswith("../") or target == "..":
            return "points outside the site: link to a page by its source (.md/.py) or to a file that exists in the repository"
        file = out / target
        if file.is_dir():
            target = posixpath.join(target, "index.html")
            file = out / target
        if not file.is_file():
            return f"no such file {target}"
    else:
        target = page
    if fragment and target in pages and unquote(fragment) not in pages[target].ids:
        return f"no element with id \"{unquote(fragment)}\" in {target}"
    return None
