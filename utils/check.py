"""The check pass: every internal link and anchor resolves, and nothing loads from another host.

Every page under the output folder is read back with the standard library's `html.parser` (an
HTML tokenizer that follows the HTML5 rules for tags, attributes, entities and comments; the pages
need nothing more than their start tags, so no library is added for this). A resource a page loads
(script, stylesheet, image, font, frame...) must be a file of the site; an `<a href>` may leave the
site (arXiv, GitHub, Colab), but one that stays must reach an existing file and, with a
`#fragment`, an element with that id. Stylesheets are read for their `url(...)`s. Problems are
reported with the page's file and line and, for links written in prose, the source file and line
they came from.
"""
from __future__ import annotations

import posixpath
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from .errors import SiteError, fail

EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)
# (tag, attribute) pairs through which a page loads something.
LOADS = {("script", "src"), ("link", "href"), ("img", "src"), ("img", "srcset"), ("source", "src"),
         ("source", "srcset"), ("iframe", "src"), ("video", "src"), ("video", "poster"),
         ("audio", "src"), ("embed", "src"), ("object", "data"), ("input", "src"), ("track", "src"),
         ("use", "href"), ("image", "href"), ("frame", "src")}
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")  # CSS, not HTML: a regex is the parser


class PageReader(HTMLParser):
    """The ids of a page and the addresses it refers to: (tag, attribute, value, line)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str, int]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        line = self.getpos()[0]
        for name, value in attrs:
            value = value or ""
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif (tag, name) in LOADS or (tag == "a" and name == "href"):
                self.refs.append((tag, name, value, line))
            elif name == "style":
                self.refs.extend((tag, "style", url, line) for url in CSS_URL.findall(value))

    handle_startendtag = handle_starttag


def check_site(out: Path, origins: dict | None = None) -> None:
    """Raise SiteError listing every broken link, missing anchor or remote resource under `out`.

    `origins` maps (page, href as written on the page) to the (source file, line)s it came from."""
    origins = origins or {}
    pages = {path.relative_to(out).as_posix(): PageReader(path.read_text(encoding="utf-8"))
             for path in sorted(out.rglob("*.html"))}
    problems: list[tuple[str, int, str]] = []

    def report(page: str, line: int, value: str, message: str) -> None:
        for src, src_line in origins.get((page, value)) or [(page, line)]:
            problems.append((src, src_line, message if src == page else f"{message} (in {page}:{line})"))

    for page, reader in pages.items():
        for tag, attr, value, line in reader.refs:
            urls = [part.strip().split(" ")[0] for part in value.split(",")] if attr == "srcset" else [value]
            for url in urls:
                if tag == "a" and attr == "href":
                    if EXTERNAL.match(url):
                        continue
                elif REMOTE.match(url) or (EXTERNAL.match(url) and not url.startswith("data:")):
                    report(page, line, value, f"<{tag} {attr}=\"{url}\"> loads from another host; "
                                              "copy the file into utils/static/ instead")
                    continue
                elif url.startswith("data:"):
                    continue
                problem = _resolve(out, pages, page, url)
                if problem:
                    report(page, line, value, f"<{tag} {attr}=\"{url}\">: {problem}")
    for css in sorted(out.rglob("*.css")):
        rel = css.relative_to(out).as_posix()
        for number, text in enumerate(css.read_text(encoding="utf-8").splitlines(), 1):
            for url in CSS_URL.findall(text):
                if url.startswith(("data:", "#")):
                    continue
                if EXTERNAL.match(url):
                    problems.append((rel, number, f"url({url}) loads from another host"))
                elif not (css.parent / unquote(url.split("?")[0].split("#")[0])).exists():
                    problems.append((rel, number, f"url({url}) is missing"))
    fail(problems)


def _resolve(out: Path, pages: dict, page: str, url: str) -> str | None:
    """What is wrong with the site-relative `url` written on `page`, or None."""
    path, _, fragment = url.partition("#")
    path = unquote(path.split("?")[0])
    target = page
    if path:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
        if target == ".." or target.startswith("../"):
            return ("points outside the site: link to a page by its source (.md/.py) or to a file "
                    "that exists in the repository")
        if (out / target).is_dir():
            target = posixpath.join(target, "index.html")
        if not (out / target).is_file():
            return f"no such file {target}"
    if fragment and target in pages and unquote(fragment) not in pages[target].ids:
        return f"no element with id \"{unquote(fragment)}\" in {target}"
    return None
