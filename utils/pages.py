"""Which pages the site has, where each one goes (the URL scheme is in `utils/__init__.py`), where
a link written in a source lands, and the hooks of the passes."""
from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .errors import SiteError
from .markdown import Parsed
from .paths import check_segments, inside
from .split import Module, Section

# Ids the template uses; headings and names never take them.
TEMPLATE_IDS = {"site-content", "site-search", "site-search-results", "site-theme", "site-pages",
                "checked-by"}
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
TESTS = "tests"  # test sources: each becomes a plain source page, tests/<name>.html
REPORTS = "bench/reports"  # the images of included reports are copied to static/reports/


@dataclass
class Page:
    out: str  # path of the page relative to the site root, posix
    kind: str  # "module", "markdown", "test" or "folder"
    folder: str  # repository folder the page belongs to, posix ("" for the repository root)
    src: str | None = None  # repository path of the source file
    title: str = ""
    summary: str = ""
    listing_of: str | None = None  # the repository folder whose contents this page lists
    module: Module | None = None  # a module or a test file, split
    doc: Parsed | None = None  # a module's docstring
    intro: list[Parsed] = field(default_factory=list)  # prose above the sections
    sections: list[tuple[Section, list[Parsed]]] = field(default_factory=list)
    summary_md: Parsed | None = None  # the summary as Markdown: it may hold math
    summary_html: str = ""  # the summary rendered inline, for listings
    anchors: set[str] = field(default_factory=lambda: set(TEMPLATE_IDS))
    notation: object = None  # filled by the passes: notation (this and `names`), "Checked by" (the rest)
    names: dict[str, str] = field(default_factory=dict)
    line_ids: dict[int, str] = field(default_factory=dict)
    tests: list = field(default_factory=list)

    @property
    def checkable(self) -> bool:
        """A page a test may declare (`pytest.mark.checks`): a module or a markdown page."""
        return self.src is not None and self.kind in ("module", "markdown")

    @property
    def url_dir(self) -> str:
        return posixpath.dirname(self.out)

    def blocks(self) -> list[Parsed]:
        """Every block of prose of the page, in reading order."""
        return self.intro + [p for _, parsed in self.sections for p in parsed]


def rel_url(target: str, page: Page) -> str:
    """URL of site path `target` (with an optional #fragment) relative to `page`."""
    target, hash_, anchor = target.partition("#")
    return posixpath.relpath(target, page.url_dir or ".") + hash_ + anchor


def site_dir(repo_dir: str) -> str | None:
    """Site folder of a repository folder: the package is the root, the tests keep their name."""
    if repo_dir in ("", config.PACKAGE):
        return ""
    if repo_dir.startswith(config.PACKAGE + "/"):
        return repo_dir[len(config.PACKAGE) + 1:]
    return TESTS if repo_dir == TESTS else None


class Site:
    """The pages of the repository at `root`, found by `discover()`, and the links between them."""

    def __init__(self, root: Path):
        self.root = root
        self.pages: list[Page] = []
        self.by_src: dict[str, Page] = {}
        self.folder_pages: dict[str, Page] = {}  # repository folder -> its index page
        self.assets: dict[str, str] = {}  # repository path -> site path of copied images
        # (page, href as written on it) -> the (source, line)s it came from, for the check's messages
        self.link_origins: dict[tuple[str, str], list[tuple[str, int]]] = {}

    def discover(self) -> "Site":
        readme = self.readme("")
        if readme:
            inside(self.root, readme)
        home = Page("index.html", "markdown" if readme else "folder", "", readme, listing_of=config.PACKAGE)
        self._add(home)
        self.folder_pages[""] = self.folder_pages[config.PACKAGE] = home
        if (self.root / config.PACKAGE).is_dir() or (self.root / config.PACKAGE).is_symlink():
            self._discover_package()
        self._discover_tests()
        return self

    def _walk(self, top: str):
        """(folder, subfolders, files) under the repository folder `top`, parents first, names
        sorted; a linked folder is followed while it stays inside the repository (but not into a
        folder above it, so a link loop ends); hidden and `_`-folders are left out."""
        def visit(folder: str, above: tuple[Path, ...]):
            real = inside(self.root, folder)
            check_segments(folder, "folder")
            entries = sorted(os.scandir(self.root / folder), key=lambda e: e.name)
            dirs = [e.name for e in entries if not e.name.startswith((".", "_")) and e.is_dir()
                    and (self.root / folder / e.name).resolve() not in above + (real,)]
            files = [e.name for e in entries if e.is_file() or (e.is_symlink() and not e.is_dir())]
            yield folder, dirs, files
            for d in dirs:
                yield from visit(f"{folder}/{d}", above + (real,))

        return list(visit(top, ()))

    def _source(self, path: str, what: str) -> None:
        """A file that becomes a page or a copied file: a safe name, inside the repository."""
        check_segments(path, what)
        inside(self.root, path)

    def _discover_package(self) -> None:
        tree = self._walk(config.PACKAGE)
        has_pages: dict[str, bool] = {}
        for folder, dirs, files in reversed(tree):  # children before parents
            has_pages[folder] = (any(f.endswith(".py") or f.lower() == "readme.md" for f in files)
                                 or any(has_pages[f"{folder}/{d}"] for d in dirs))
        for folder, _, names in tree:
            base = site_dir(folder)
            if has_pages[folder] and folder != config.PACKAGE and "__init__.py" not in names:
                self.folder_pages[folder] = self._add(Page(posixpath.join(base, "index.html"), "folder",
                                                           folder, listing_of=folder))
            for name in names:
                path, suffix = f"{folder}/{name}", Path(name).suffix.lower()
                is_page = suffix == ".py" or name.lower() == "readme.md"
                if suffix in IMAGES:  # also in a folder without pages (`pictures/`): pages show them
                    self._source(path, "image")
                    self.assets[path] = posixpath.join(base, name)
                if not is_page:
                    continue
                self._source(path, "source")
                if name == "__init__.py" and folder == config.PACKAGE:
                    self._add(Page(f"{config.PACKAGE}.html", "module", folder, path))
                elif name == "__init__.py":
                    self.folder_pages[folder] = self._add(Page(posixpath.join(base, "index.html"), "module",
                                                               folder, path, listing_of=folder))
                elif suffix == ".py":
                    self._add(Page(posixpath.join(base, name[:-3] + ".html"), "module", folder, path))
                else:
                    self._add(Page(posixpath.join(base, "readme.html"), "markdown", folder, path))

    def _discover_tests(self) -> None:
        """Each `tests/*.py` becomes a plain source page."""
        if not (self.root / TESTS).is_dir():
            return
        inside(self.root, TESTS)
        names = sorted(e.name for e in os.scandir(self.root / TESTS) if e.name.endswith(".py")
                       and (e.is_file() or e.is_symlink()))
        if not names:
            return
        self.folder_pages[TESTS] = self._add(Page(f"{TESTS}/index.html", "folder", TESTS, listing_of=TESTS,
                                                  title="Tests",
                                                  summary="The tests that check the pages' claims, as source."))
        for name in names:
            self._source(f"{TESTS}/{name}", "test file")
            self._add(Page(f"{TESTS}/{name[:-3]}.html", "test", TESTS, f"{TESTS}/{name}", title=name))

    def readme(self, folder: str) -> str | None:
        """The repository path of the readme of a repository folder, if it has one."""
        for name in ("readme.md", "README.md", "Readme.md"):
            path = posixpath.join(folder, name)
            if (self.root / path).is_file() or (self.root / path).is_symlink():
                return path
        return None

    def _add(self, page: Page) -> Page:
        clash = next((p for p in self.pages if p.out == page.out), None)
        if clash is not None:
            raise SiteError(page.src or page.folder, 1,
                            f"two sources map to the page {page.out}: {clash.src} and {page.src}")
        self.pages.append(page)
        if page.src:
            self.by_src[page.src] = page
        return page

    def resolver(self, page: Page, origin: str | None = None):
        """`resolve(href, line)` for links written in the file `origin` (the page's source by
        default), shown on `page`: a link to a source becomes a link to its page."""
        origin = origin or page.src or page.out
        src_dir = posixpath.dirname(origin) if origin != page.out else page.folder

        def resolve(href: str, line: int) -> str:
            result = href
            if href and not href.startswith("#") and not EXTERNAL.match(href):
                result = self._resolve(href, src_dir, page)
            self.link_origins.setdefault((page.out, result), []).append((origin, line))
            return result

        return resolve

    def _resolve(self, href: str, src_dir: str, page: Page) -> str:
        path, hash_, fragment = href.partition("#")
        suffix = hash_ + fragment
        target = posixpath.normpath(posixpath.join(src_dir, path)) if path else page.src or ""
        if target in self.by_src:
            return rel_url(self.by_src[target].out, page) + suffix
        if target in self.folder_pages and (path.endswith("/") or (self.root / target).is_dir()):
            return rel_url(self.folder_pages[target].out, page) + suffix
        if (target not in self.assets and target.startswith(REPORTS + "/")
                and posixpath.splitext(target)[1].lower() in IMAGES and (self.root / target).is_file()):
            self._source(target, "image")  # an image of an included report
            self.assets[target] = "static/reports/" + target[len(REPORTS) + 1:]
        if target in self.assets:
            return rel_url(self.assets[target], page) + suffix
        if path.endswith((".html", "/")):
            return href  # already a site URL, relative to this page; the check verifies it
        if (self.root / target).exists() and not target.startswith(".."):
            return config.source_url(target) + suffix
        return href  # left for the check to report with its file and line


class Pass:
    """A feature of the site (report figures, notation, "Checked by", navigation, search), run by the
    build at fixed points; a hook does nothing unless the pass overrides it. `problems` fail the
    build once every page is read; `warnings` are shown.

    * `include`: a readme's text cut into (source path, first line, text) blocks, or None;
    * `prose`: edit the Markdown tokens of a block of prose before its math and links are read;
    * `read`: look at every page once all are read (the math is not typeset yet);
    * `context`: template variables of a page;
    * `write`: the pass's own files."""

    def __init__(self):
        self.problems: list[tuple[str, int, str]] = []
        self.warnings: list[tuple[str, int, str]] = []

    def include(self, page: Page, text: str, code_lines: set[int]) -> list[tuple[str, int, str]] | None:
        return None

    def prose(self, tokens: list, path: str, first_line: int, page: Page) -> None:
        pass

    def read(self, site: Site) -> None:
        pass

    def context(self, page: Page, site: Site) -> dict:
        return {}

    def write(self, site: Site, out: Path) -> None:
        pass
