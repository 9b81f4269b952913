"""Build the annotated site: `python -m utils.build --out docs [--root REPO]`.

Discover pages (see `utils/__init__.py` for the URL scheme; every path must be a safe URL segment
and stay inside the repository, `utils/paths.py`), split modules into sections, parse all prose
(report figures filled in, `utils/reports.py`; notation tables read and checked,
`utils/notation.py`), read the tests' `checks` declarations and the latest results
(`utils/checked_by.py`), typeset all math in one KaTeX process, render the templates, write the
search index and static files, then check every link. Any failure exits non-zero with
`file:line: message`.
"""
from __future__ import annotations

import argparse
import ast
import io
import json
import keyword
import os
import posixpath
import re
import shutil
import sys
import time
import tokenize
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from . import config
from .check import check_site
from .checked_by import Declarations, Results, TestDef, load_results, sentence
from .errors import SiteError
from .highlight import highlight_lines, pygments_css
from .katex import KATEX_DIST, Typesetting
from .markdown import Markdown, Parsed, copy_button
from .notation import (Notation, check as check_notation, code_names, code_tab_stops, mark_prose,
                       mark_symbols, read_tables, symbol_attributes)
from .paths import check_segments, inside
from .reports import REPORTS, Reports, split_includes
from .split import Module, Section, parse_front_matter, split_source

UTILS = Path(__file__).resolve().parent
# Ids the template uses; headings and names never take them.
TEMPLATE_IDS = {"site-content", "site-search", "site-search-results", "site-theme", "site-pages",
                "checked-by"}
MARKER = ".site-build"  # marks an output folder as ours, so a rebuild may empty it
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
ASSET_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
TESTS = "tests"  # test sources: each becomes a plain source page, tests/<name>.html
DEFAULT_RESULTS = ".test-results/results.json"  # written by tests/conftest.py
GITHUB_ICON = ('<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path fill="currentColor" '
               'd="M8 0a8 8 0 0 0-2.53 15.59c.4.07.55-.17.55-.38v-1.33c-2.23.48-2.7-1.07-2.7-1.07-.36-.92-.89-1.17'
               '-.89-1.17-.73-.5.06-.49.06-.49.8.06 1.23.83 1.23.83.72 1.22 1.87.87 2.33.66.07-.52.28-.87.5-1.07'
               '-1.78-.2-3.65-.89-3.65-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82a7.6 7.6 '
               '0 0 1 4 0c1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75'
               '-3.65 3.95.29.25.54.73.54 1.48v2.2c0 .21.15.46.55.38A8 8 0 0 0 8 0z"/></svg>')


@dataclass
class Page:
    out: str  # path of the page relative to the site root, posix
    kind: str  # "module", "markdown" or "folder"
    folder: str  # repository folder the page belongs to, posix ("" for the repository root)
    src: str | None = None  # repository path of the source file
    title: str = ""
    summary: str = ""
    module: Module | None = None
    intro: list[Parsed] = field(default_factory=list)
    sections: list[tuple[Section, list[Parsed]]] = field(default_factory=list)
    listing_of: str | None = None  # the repository folder whose contents this page lists
    anchors: set[str] = field(default_factory=lambda: set(TEMPLATE_IDS))
    summary_md: Parsed | None = None  # the summary as Markdown: it may hold math
    notation: Notation | None = None  # the module's notation table, if it has one
    tests: list[TestDef] = field(default_factory=list)  # a test page's tests

    @property
    def checkable(self) -> bool:
        """A page a test may declare (`pytest.mark.checks`): a module or a markdown page."""
        return self.src is not None and self.kind in ("module", "markdown")

    @property
    def url_dir(self) -> str:
        return posixpath.dirname(self.out)


def site_dir(repo_dir: str) -> str | None:
    """Site folder of a repository folder: the package folder is the site root; the tests keep
    their folder name."""
    if repo_dir in ("", config.PACKAGE):
        return ""
    if repo_dir.startswith(config.PACKAGE + "/"):
        return repo_dir[len(config.PACKAGE) + 1:]
    if repo_dir == TESTS:
        return TESTS
    return None


def line_range(first: int, last: int) -> str:
    """`line 7` or `lines 7–12`, for labels."""
    return f"line {first}" if first == last else f"lines {first}\u2013{last}"


def ast_docstring(source: str) -> str | None:
    """The module docstring of a source, or None (also when it does not parse)."""
    try:
        return ast.get_docstring(ast.parse(source))
    except SyntaxError:
        return None


def rel_url(target: str, page: Page) -> str:
    """URL of site path `target` relative to `page`."""
    anchor = ""
    if "#" in target:
        target, anchor = target.split("#", 1)
        anchor = "#" + anchor
    return posixpath.relpath(target, page.url_dir or ".") + anchor


class Site:
    def __init__(self, root: Path, results: Results | None = None, notation: str = "fail"):
        self.root = root
        self.pages: list[Page] = []
        self.by_src: dict[str, Page] = {}
        self.folder_pages: dict[str, Page] = {}  # repository folder -> its index page
        self.assets: dict[str, str] = {}  # repository path -> site path of copied images
        self.markdown = Markdown()
        self.link_origins: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self.reports = Reports(root)
        self.results = results
        self.notation_mode = notation  # "fail", or "report" (print the problems, build anyway)
        self.notation_problems: list[tuple[str, int, str]] = []
        self.declarations = Declarations()
        self.checked_by: dict[str, list[TestDef]] = {}

    # -- discovery --------------------------------------------------------------------------------

    def discover(self) -> None:
        package = self.root / config.PACKAGE
        readme = self._readme(self.root)
        if readme:
            inside(self.root, readme)
        home = Page(out="index.html", kind="markdown" if readme else "folder", folder="",
                    src=readme, listing_of=config.PACKAGE)
        self._add(home)
        self.folder_pages[""] = home
        if package.is_dir() or package.is_symlink():
            self._discover_package()
        self._discover_tests()

    def _walk(self, top: str):
        """(folder, subfolders, files) under the repository folder `top`, parents first, names
        sorted; a linked folder is followed while it stays inside the repository (but not into a
        folder above it, so a link loop ends), hidden and `_`-folders are left out."""
        def visit(folder: str, above: tuple[Path, ...]):
            real = inside(self.root, folder)
            if real in above:
                return  # a link back to a folder above: walked once already
            check_segments(folder, "folder")
            entries = sorted(os.scandir(self.root / folder), key=lambda e: e.name)
            dirs = [e.name for e in entries if not e.name.startswith((".", "_")) and e.is_dir()
                    and (self.root / folder / e.name).resolve() not in above + (real,)]
            files = [e.name for e in entries if e.is_file() or (e.is_symlink() and not e.is_dir())]
            yield folder, dirs, files
            for d in dirs:
                yield from visit(f"{folder}/{d}", above + (real,))

        return list(visit(top, ()))

    def _source(self, path: str, what: str = "source") -> None:
        """A file that becomes a page or a copied file: a safe name, inside the repository."""
        check_segments(path, what)
        inside(self.root, path)

    def _discover_package(self) -> None:
        tree = self._walk(config.PACKAGE)
        has_pages: dict[str, bool] = {}
        for folder, dirs, files in reversed(tree):  # children before parents
            has_pages[folder] = (any(f.endswith(".py") or f.lower() == "readme.md" for f in files)
                                 or any(has_pages.get(f"{folder}/{d}", False) for d in dirs))
        for folder, dirnames, names in tree:
            base = site_dir(folder)
            if not has_pages[folder]:
                # No page here (e.g. a `pictures/` folder), but its images may be shown by pages.
                for name in names:
                    if Path(name).suffix.lower() in ASSET_EXTENSIONS:
                        self._source(f"{folder}/{name}", "image")
                        self.assets[f"{folder}/{name}"] = posixpath.join(base, name)
                continue
            if folder == config.PACKAGE:
                self.folder_pages[folder] = self.folder_pages[""]
            elif "__init__.py" not in names:
                page = Page(out=posixpath.join(base, "index.html"), kind="folder", folder=folder,
                            listing_of=folder)
                self._add(page)
                self.folder_pages[folder] = page
            for name in names:
                path = f"{folder}/{name}"
                is_page = name.endswith(".py") or name.lower() == "readme.md"
                if is_page or Path(name).suffix.lower() in ASSET_EXTENSIONS:
                    self._source(path, "source" if is_page else "image")
                if name.endswith(".py"):
                    if name == "__init__.py":
                        if folder == config.PACKAGE:
                            out = f"{config.PACKAGE}.html"
                            page = Page(out=out, kind="module", folder=folder, src=path)
                        else:
                            page = Page(out=posixpath.join(base, "index.html"), kind="module",
                                        folder=folder, src=path, listing_of=folder)
                            self.folder_pages[folder] = page
                    else:
                        page = Page(out=posixpath.join(base, name[:-3] + ".html"), kind="module",
                                    folder=folder, src=path)
                    self._add(page)
                elif name.lower() == "readme.md":
                    self._add(Page(out=posixpath.join(base, "readme.html"), kind="markdown",
                                   folder=folder, src=path))
                elif Path(name).suffix.lower() in ASSET_EXTENSIONS:
                    self.assets[path] = posixpath.join(base, name)

    def _discover_tests(self) -> None:
        """Each `tests/*.py` becomes a plain source page, linked from the pages it checks."""
        folder = self.root / TESTS
        if not folder.is_dir():
            return
        inside(self.root, TESTS)
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".py")
                       and (e.is_file() or e.is_symlink()))
        if not names:
            return
        index = Page(out=f"{TESTS}/index.html", kind="folder", folder=TESTS, listing_of=TESTS,
                     title="Tests", summary="The tests that check the pages' claims, as source.")
        self._add(index)
        self.folder_pages[TESTS] = index
        for name in names:
            path = f"{TESTS}/{name}"
            self._source(path, "test file")
            self._add(Page(out=f"{TESTS}/{name[:-3]}.html", kind="test", folder=TESTS, src=path,
                           title=name))

    def _readme(self, folder: Path) -> str | None:
        for name in ("readme.md", "README.md", "Readme.md"):
            if (folder / name).is_file() or (folder / name).is_symlink():
                return (folder / name).relative_to(self.root).as_posix()
        return None

    def _add(self, page: Page) -> None:
        clash = next((p for p in self.pages if p.out == page.out), None)
        if clash is not None:
            raise SiteError(page.src or page.folder, 1,
                            f"two sources map to the page {page.out}: {clash.src} and {page.src}")
        self.pages.append(page)
        if page.src:
            self.by_src[page.src] = page

    # -- links ------------------------------------------------------------------------------------

    def resolver(self, page: Page):
        return self._resolver_at(page, posixpath.dirname(page.src) if page.src else page.folder)

    def _resolver_at(self, page: Page, src_dir: str, origin: str | None = None):
        """Links written in a file of the repository folder `src_dir` (the file `origin`, the
        page's source by default), shown on `page`."""

        def resolve(href: str, line: int) -> str:
            if not href or href.startswith("#") or EXTERNAL.match(href):
                result = href
            else:
                result = self._resolve_relative(href, src_dir, page)
            self.link_origins.setdefault((page.out, result), []).append((origin or page.src or page.out, line))
            return result

        return resolve

    def _resolve_relative(self, href: str, src_dir: str, page: Page) -> str:
        path, hash_, fragment = href.partition("#")
        suffix = hash_ + fragment
        target = posixpath.normpath(posixpath.join(src_dir, path)) if path else page.src or ""
        if target in self.by_src:
            return rel_url(self.by_src[target].out, page) + suffix
        if target in self.folder_pages and (path.endswith("/") or (self.root / target).is_dir()):
            return rel_url(self.folder_pages[target].out, page) + suffix
        if target in self.assets:
            return rel_url(self.assets[target], page) + suffix
        if (target.startswith(REPORTS + "/") and posixpath.splitext(target)[1].lower() in ASSET_EXTENSIONS
                and (self.root / target).is_file()):
            # An image of an included report: copied into the site's static folder.
            self._source(target, "image")
            self.assets[target] = "static/reports/" + target[len(REPORTS) + 1:]
            return rel_url(self.assets[target], page) + suffix
        if path.endswith(".html") or path.endswith("/"):
            return href  # already a site URL, relative to this page; the checker verifies it
        if (self.root / target).exists() and not target.startswith(".."):
            return config.source_url(target) + suffix
        return href  # left for the checker to report with its file and line

    # -- parsing ----------------------------------------------------------------------------------

    def figure_for(self, path: str):
        """The `figure` callback of Markdown.parse for prose written in `path`."""
        return lambda name, key, line: self.reports.figure(name, key, path, line)

    def parse(self) -> None:
        for page in self.pages:
            resolve = self.resolver(page)
            if page.kind == "module":
                self._parse_module(page, resolve)
            elif page.kind == "markdown":
                self._parse_markdown(page, resolve)
            elif page.kind == "test":
                source = inside(self.root, page.src).read_text(encoding="utf-8")
                page.module = Module(page.src, source.splitlines(keepends=True), {}, [])
                self.declarations.read(page.src, source)
                page.tests = self.declarations.tests[page.src]
                doc = ast_docstring(source)
                page.summary = " ".join(doc.strip().split("\n\n")[0].split()) if doc else ""
                page.anchors.update(t.anchor for t in page.tests)
            if not page.title:
                first = next((h.text for p in page.intro for h in p.headings if h.level == 1), "")
                page.title = first or self._default_title(page)
        for folder, page in self.folder_pages.items():
            if page.kind == "folder" and page.folder:
                readme = self.by_src.get(self._readme(self.root / folder) or "")
                if readme is not None:
                    page.title = readme.title
                    page.summary = page.summary or readme.summary
        for page in self.pages:
            if page.summary:
                where = page.src or page.folder
                # A test file's docstring is source, not prose: its placeholders stay as written.
                figure = (self.figure_for(where) if page.kind != "test"
                          else lambda name, key, line: f"`{{report:{name}.{key}}}`")
                page.summary_md = self.markdown.parse(page.summary, where, 1, set(),
                                                      self.resolver(page), figure)
        # Every problem of the sources is reported at once: missing report figures, declarations
        # naming no page, and notation tables that name what the code does not use.
        problems = list(self.reports.problems) + self._read_declarations()
        if self.notation_problems:
            if self.notation_mode == "fail":
                problems += self.notation_problems
            else:
                print(f"notation check, reporting only ({len(self.notation_problems)} problems):"
                      + "".join(f"\n{p}:{n}: {m}" for p, n, m in self.notation_problems), file=sys.stderr)
        if problems:
            (path, line, message), rest = problems[0], problems[1:]
            hint = ("\n(every notation table name must be used by the page's code: mend the table or "
                    "the code)" if self.notation_mode == "fail" and self.notation_problems else "")
            raise SiteError(path, line, message + "".join(f"\n{p}:{n}: {m}" for p, n, m in rest) + hint)

    def _parse_module(self, page: Page, resolve) -> None:
        source = inside(self.root, page.src).read_text(encoding="utf-8")
        module = split_source(source, page.src)
        page.module = module
        page.title = module.front_matter.get("title", "")
        page.summary = module.front_matter.get("summary", "")
        for section in module.sections:
            if section.anchor:
                page.anchors.add(section.anchor)
        figure = self.figure_for(page.src)
        blocks: list[Parsed] = []
        for section in module.sections:
            parsed = [self.markdown.parse(p.text, page.src, p.text_line, page.anchors, resolve, figure)
                      for p in section.prose]
            blocks.extend(parsed)
            for p, prose in zip(parsed, section.prose):
                if prose.kind == "module" and page.notation is None:
                    page.notation = read_tables(p.tokens, page.src, prose.text_line)
            if section.intro and not section.code:
                page.intro.extend(parsed)
            else:
                page.sections.append((section, parsed))
        if page.notation is not None:
            self._link_notation(page, blocks, source)

    def _link_notation(self, page: Page, blocks: list[Parsed], source: str) -> None:
        """Check the table against the code, and mark the symbols in every formula of the page."""
        notation = page.notation
        self.notation_problems += check_notation(notation, code_names(source))
        for parsed in blocks:
            mark_prose(parsed.tokens, notation)
            for formula in parsed.formulas:
                table = bool(formula.token is not None and formula.token.meta.get("nsym_table"))
                marked = mark_symbols(formula.tex, notation, table)
                if marked != formula.tex:
                    formula.token.meta["tex"] = formula.token.content.strip()
                    formula.token.content = marked
                    formula.original, formula.tex = formula.tex, marked

    def _parse_markdown(self, page: Page, resolve) -> None:
        text = inside(self.root, page.src).read_text(encoding="utf-8")
        meta, text = parse_front_matter(text)
        page.title = meta.get("title", "")
        page.summary = meta.get("summary", "")
        code_lines = {n for tok in self.markdown.md.parse(text) if tok.type in ("fence", "code_block")
                      and tok.map for n in range(tok.map[0], tok.map[1])}
        for first, included, chunk in split_includes(text, code_lines):
            if included is None:
                if chunk.strip():
                    # Earlier lines stay as blank lines, so that line numbers stay right.
                    padded = "\n" * (first - 1) + chunk
                    page.intro.append(self.markdown.parse(padded, page.src, 1, page.anchors, resolve,
                                                          self.figure_for(page.src)))
                continue
            path, report = self.reports.include(included, page.src, first)
            report_resolve = self._resolver_at(page, posixpath.dirname(path), origin=path)
            page.intro.append(self.markdown.parse(report, path, 1, page.anchors, report_resolve,
                                                  self.figure_for(path)))

    def _read_declarations(self) -> list[tuple[str, int, str]]:
        """Which tests check which page; the problems of the declarations, sorted."""
        pages = {p.src for p in self.pages if p.checkable}
        self.checked_by = self.declarations.by_page(pages)
        return sorted(set(self.declarations.problems))

    def formulas(self) -> list:
        parsed = [p for page in self.pages
                  for p in page.intro + [q for _, ps in page.sections for q in ps]
                  + ([page.summary_md] if page.summary_md else [])]
        return [f for p in parsed for f in p.formulas]

    def summary_html(self, page: Page) -> Markup:
        """The summary rendered inline (no paragraph), for folder listings."""
        if page.summary_md is None:
            return Markup("")
        html = self.markdown.render(page.summary_md).strip()
        if html.startswith("<p>") and html.endswith("</p>"):
            html = html[3:-4]
        return Markup(html)

    def _default_title(self, page: Page) -> str:
        if page.src:
            name = posixpath.basename(page.src)
            return posixpath.basename(posixpath.dirname(page.src)) if name == "__init__.py" else name
        return posixpath.basename(page.folder) or config.SITE_TITLE

    def highlight(self) -> None:
        self.highlighted = {}
        for page in self.pages:
            if page.module is None:
                continue
            names = ({k: " ".join(map(str, ids)) for k, ids in page.notation.var_keys().items()}
                     if page.notation else None)
            self.highlighted[page.out] = highlight_lines("".join(page.module.lines), names=names)

    # -- rendering --------------------------------------------------------------------------------

    def folder_sequence(self, folder: str) -> list[Page]:
        """The pages of one folder in reading order: index, readme, then modules by name."""
        pages = [p for p in self.pages if p.folder == folder and p is not self.folder_pages.get("")]
        order = {"index.html": 0, "readme.html": 1}
        return sorted(pages, key=lambda p: (order.get(posixpath.basename(p.out), 2), p.out))

    def listing(self, page: Page) -> list[dict]:
        folder = page.listing_of
        entries = [p for p in self.folder_sequence(folder) if p is not page]
        subfolders = sorted(f for f in self.folder_pages
                            if f and posixpath.dirname(f) == folder and f != folder)
        items = [{"title": p.title, "summary": self.summary_html(p), "url": rel_url(p.out, page),
                  "name": posixpath.basename(p.src or p.out), "kind": "page"} for p in entries]
        for f in subfolders:
            sub = self.folder_pages[f]
            items.append({"title": sub.title, "summary": self.summary_html(sub), "url": rel_url(sub.out, page),
                          "name": posixpath.basename(f) + "/", "kind": "folder"})
        if page.out == "index.html" and TESTS in self.folder_pages:
            tests = self.folder_pages[TESTS]
            items.append({"title": tests.title, "summary": self.summary_html(tests),
                          "url": rel_url(tests.out, page), "name": TESTS + "/", "kind": "folder"})
        return items

    def breadcrumbs(self, page: Page) -> list[dict]:
        crumbs = [{"title": "Home", "url": rel_url("index.html", page)}]
        folder = page.folder
        parts = site_dir(folder).split("/") if site_dir(folder) else []
        repo_parts = folder.split("/")
        for i, name in enumerate(parts):
            repo_folder = "/".join(repo_parts[: len(repo_parts) - len(parts) + i + 1])
            target = self.folder_pages.get(repo_folder)
            if target is not None and target is not page:
                crumbs.append({"title": name, "url": rel_url(target.out, page)})
        if page.out != "index.html":
            is_index = posixpath.basename(page.out) == "index.html"
            name = posixpath.basename(folder) if is_index or not page.src else posixpath.basename(page.src)
            crumbs.append({"title": name, "url": None})
        return crumbs

    def render(self, out: Path) -> list[dict]:
        env = Environment(loader=FileSystemLoader(UTILS / "templates"),
                          autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        template = env.get_template("page.html")
        search: list[dict] = []
        for page in self.pages:
            root = "../" * (page.url_dir.count("/") + 1) if page.url_dir else ""
            intro_html = Markup("".join(self.markdown.render(p) for p in page.intro))
            has_h1 = any(h.level == 1 for p in page.intro for h in p.headings)
            toc = [{"depth": h.level, "text": h.text, "anchor": h.anchor, "code": False}
                   for p in page.intro for h in p.headings if h.level > 1]
            if page.notation is not None:
                intro_html = Markup(symbol_attributes(intro_html, page.notation))
            sections = []
            code_lines = self.highlighted.get(page.out, [])
            identifiers = self._identifiers(page.module) if page.module else {}
            names_seen: set[str] = set()  # the names of the notation already a tab stop
            for section, parsed in page.sections:
                if section.anchor:
                    depth = 2 + section.anchor.count(".")
                    label = section.anchor.split("-")[0].rpartition(".")[2]  # indentation shows the owner
                    toc.append({"depth": depth, "text": label, "anchor": section.anchor, "code": True,
                                "kind": section.kind})
                for p in parsed:
                    toc.extend({"depth": h.level, "text": h.text, "anchor": h.anchor, "code": False}
                               for h in p.headings)
                code = code_tab_stops(self._code_html(section, code_lines), names_seen)
                prose_html = "".join(self.markdown.render(p) for p in parsed)
                if page.notation is not None:
                    prose_html = symbol_attributes(prose_html, page.notation)
                sections.append({"anchor": section.anchor, "prose": Markup(prose_html),
                                 "code": Markup(code) if section.code else None,
                                 "tools": self._code_tools(page, section) if section.code else None,
                                 "kind": section.kind})
                self._index_section(search, page, section, parsed, identifiers)
            source = None
            if page.kind == "test":
                source = self._source_html(page, code_lines)
                toc = [{"depth": 2 if t.kind != "method" else 3, "text": t.qualname.rpartition(".")[2],
                        "anchor": t.anchor, "code": True} for t in page.tests]
            checked_by = self._checked_by(page) if page.checkable else None
            if checked_by is not None:
                toc.append({"depth": 2, "text": "Checked by", "anchor": "checked-by", "code": False})
            seq = self.folder_sequence(page.folder) if page.out != "index.html" else []
            idx = seq.index(page) if page in seq else -1
            prev_page = seq[idx - 1] if idx > 0 else None
            next_page = seq[idx + 1] if 0 <= idx < len(seq) - 1 else None
            notebook = config.notebook_for(page.folder)
            if notebook and not (self.root / "notebooks" / f"{notebook}.ipynb").is_file():
                notebook = None
            html = template.render(
                site_title=config.SITE_TITLE, root=root, page=page, title=page.title,
                summary=page.summary, summary_html=self.summary_html(page), has_h1=has_h1, intro=intro_html, sections=sections, toc=toc,
                listing=self.listing(page) if page.listing_of is not None else None,
                crumbs=self.breadcrumbs(page),
                prev={"title": prev_page.title, "url": rel_url(prev_page.out, page)} if prev_page else None,
                next={"title": next_page.title, "url": rel_url(next_page.out, page)} if next_page else None,
                source_url=config.source_url(page.src) if page.src else None,
                colab_url=config.colab_url(notebook) if notebook else None,
                source=source, checked_by=checked_by,
            )
            target = out / page.out
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(html, encoding="utf-8")
            search.append({"u": page.out, "t": page.title, "h": "", "x": page.summary, "i": "", "k": "page"})
            for p in page.intro:
                self._index_prose(search, page, p)
            for t in page.tests:
                search.append({"u": f"{page.out}#{t.anchor}", "t": page.title, "h": t.qualname,
                               "x": sentence(t.qualname), "i": t.qualname.rpartition(".")[2], "k": t.kind})
        return search

    def _code_tools(self, page: Page, section: Section) -> dict | None:
        """The copy button and the repository link of one section's code (its non-blank span)."""
        rows = [n for n, text in section.code if text.strip()]
        if not rows:
            return None
        first, last = rows[0], rows[-1]
        anchor = f"#L{first}" if first == last else f"#L{first}-L{last}"
        lines = line_range(first, last)
        return {"copy_button": Markup(copy_button(f"Copy {lines}")),
                "url": config.source_url(page.src) + anchor, "label": f"See {lines} on GitHub",
                "icon": Markup(GITHUB_ICON)}

    def _source_html(self, page: Page, code_lines: list[str]) -> dict:
        """A test file as one block of highlighted source, with an anchor at each test."""
        at = {t.line: t.anchor for t in page.tests}
        rows = []
        for n in range(1, len(page.module.lines) + 1):
            html = code_lines[n - 1] if n - 1 < len(code_lines) else ""
            mark = f'<span class="test-anchor" id="{escape(at[n])}"></span>' if n in at else ""
            rows.append(f'<span class="line" id="L{n}">{mark}<a class="ln" href="#L{n}" data-n="{n}" '
                        f'aria-hidden="true" tabindex="-1"></a>{html}\n</span>')
        count = len(page.module.lines)
        declared = dict.fromkeys(path for t in page.tests for path, _ in t.pages if path in self.by_src)
        checks = [{"title": self.by_src[path].title, "name": path, "url": rel_url(self.by_src[path].out, page)}
                  for path in declared]
        return {"code": Markup("".join(rows)), "checks": checks,
                "tools": {"copy_button": Markup(copy_button("Copy the file")),
                          "url": config.source_url(page.src), "label": "The file on GitHub",
                          "icon": Markup(GITHUB_ICON)} if count else None}

    def _checked_by(self, page: Page) -> dict:
        """The tests that declare `page`, each with its latest recorded outcome."""
        entries = []
        for test in self.checked_by.get(page.src, []):
            test_page = self.by_src.get(test.file)
            entry = {"sentence": sentence(test.qualname), "name": test.qualname, "file": test.file,
                     "url": rel_url(f"{test_page.out}#{test.anchor}", page) if test_page else None,
                     "status": self.results.status(test) if self.results else None}
            entries.append(entry)
        run = None
        if self.results is not None and entries:
            run = {"text": self.results.describe(), "other": self.results.same_commit is False,
                   "title": f"{self.results.date}, commit {self.results.short}",
                   "command": " ".join(["pytest"] + self.results.args) if self.results.args else None}
        return {"entries": entries, "run": run, "results": self.results is not None}

    @staticmethod
    def _code_html(section: Section, code_lines: list[str]) -> str:
        """One block span per real line, `id="L<n>"`; blank lines at the edges of a section are
        kept (and linkable) but drawn short, so that prose and code stay close together."""
        blank = [not text.strip() for _, text in section.code]
        first = next((i for i, b in enumerate(blank) if not b), len(blank))
        last = max((i for i, b in enumerate(blank) if not b), default=-1)
        out = []
        for i, (n, _) in enumerate(section.code):
            cls = "line edge" if blank[i] and (i < first or i > last) else "line"
            html = code_lines[n - 1] if n - 1 < len(code_lines) else ""
            out.append(f'<span class="{cls}" id="L{n}"><a class="ln" href="#L{n}" data-n="{n}" '
                       f'aria-hidden="true" tabindex="-1"></a>{html}\n</span>')
        return "".join(out)

    @staticmethod
    def _identifiers(module: Module) -> dict[int, set[str]]:
        names: dict[int, set[str]] = {}
        try:
            for tok in tokenize.generate_tokens(io.StringIO("".join(module.lines)).readline):
                if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string) and len(tok.string) > 2:
                    names.setdefault(tok.start[0], set()).add(tok.string)
        except tokenize.TokenError:
            pass
        return names

    def _index_section(self, search, page, section, parsed, identifiers) -> None:
        names = set(section.names)
        for n, _ in section.code:
            names |= identifiers.get(n, set())
        headings = [h for p in parsed for h in p.headings]
        anchor = section.anchor or (headings[0].anchor if headings else
                                    (f"L{section.code[0][0]}" if section.code else ""))
        label = section.anchor or (headings[0].text if headings else "")
        text = " ".join(p.plain for p in parsed)
        if not (text or names):
            return
        search.append({"u": f"{page.out}#{anchor}" if anchor else page.out, "t": page.title,
                       "h": label.split("-")[0] if section.anchor else label,
                       "x": text[:600], "i": " ".join(sorted(names)), "k": section.kind or "section"})

    def _index_prose(self, search, page, parsed) -> None:
        for h in parsed.headings:
            search.append({"u": f"{page.out}#{h.anchor}", "t": page.title, "h": h.text, "x": "",
                           "i": "", "k": "heading"})
        if parsed.plain:
            search.append({"u": page.out, "t": page.title, "h": "", "x": parsed.plain[:1500],
                           "i": "", "k": "prose"})

    # -- static files -----------------------------------------------------------------------------

    def write_static(self, out: Path, search: list[dict]) -> None:
        static = out / "static"
        shutil.copytree(UTILS / "static", static, dirs_exist_ok=True)
        (static / "pygments.css").write_text(pygments_css(), encoding="utf-8")
        katex = static / "katex"
        katex.mkdir(parents=True, exist_ok=True)
        shutil.copy2(KATEX_DIST / "katex.min.css", katex / "katex.min.css")
        shutil.copytree(KATEX_DIST / "fonts", katex / "fonts", dirs_exist_ok=True)
        payload = json.dumps(search, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
        (out / "search_index.js").write_text(
            "// Generated by utils/build.py: the site's search index, loaded by a <script> tag so that\n"
            "// search works from file:// as well as from a server.\n"
            f"window.SEARCH_INDEX = {payload};\n", encoding="utf-8")
        for repo_path, site_path in self.assets.items():
            (out / site_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.root / repo_path, out / site_path)
        (out / ".nojekyll").write_text("", encoding="utf-8")


def prepare_out(out: Path) -> None:
    """Empty `out` for a fresh build, but only if it is empty or an earlier build of ours."""
    if out.exists():
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise SiteError(str(out), 1, "the output folder is not empty and was not built by "
                                         "utils/build.py; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("Built by utils/build.py; a rebuild empties this folder.\n", encoding="utf-8")


def build(root: Path, out: Path, check: bool = True, results: Path | None | bool = None,
          notation: str = "fail") -> dict:
    """Build the site of the repository at `root` into `out`; returns a few numbers.

    `results` is the test results file (`tests/conftest.py` writes it): None reads
    `.test-results/results.json` of the repository when it exists, False reads none. `notation`
    is "fail" (a notation table naming what the code does not use fails the build) or "report"
    (the problems are printed and the build goes on; a stopgap while tables are mended)."""
    started = time.perf_counter()
    if notation not in ("fail", "report"):
        raise ValueError(f"notation must be 'fail' or 'report', not {notation!r}")
    if results is None:
        results = root / DEFAULT_RESULTS
    loaded = None
    if results:
        results = Path(results)
        try:
            shown = results.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            shown = str(results)
        loaded = load_results(results, shown, root)
    site = Site(root, loaded, notation)
    site.discover()
    site.parse()
    formulas = site.formulas()
    typesetting = Typesetting(formulas)
    site.highlight()  # while KaTeX runs
    site.markdown.math_html = typesetting.result()
    prepare_out(out)
    search = site.render(out)
    site.write_static(out, search)
    if check:
        check_site(out, site.link_origins)
    return {"pages": len(site.pages), "formulas": len(formulas),
            "seconds": round(time.perf_counter() - started, 2),
            "unchecked": sorted(p.src for p in site.pages if p.checkable and not site.checked_by.get(p.src)),
            "notation_problems": site.notation_problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", type=Path, help="output folder (default: docs)")
    parser.add_argument("--root", default=UTILS.parent, type=Path, help="repository root")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the link check (for drafts only: `make site` always checks)")
    parser.add_argument("--test-results", type=Path, default=None, metavar="PATH",
                        help=f"test results to show under 'Checked by' (default: {DEFAULT_RESULTS} of "
                             "the repository, when it exists)")
    parser.add_argument("--no-test-results", action="store_true", help="show the tests without results")
    parser.add_argument("--notation-check", choices=["fail", "report"], default="fail",
                        help="'fail' (default): a notation table that names what the code does not use "
                             "fails the build; 'report': print the problems and build anyway (temporary)")
    args = parser.parse_args(argv)
    results = False if args.no_test_results else args.test_results
    try:
        stats = build(args.root.resolve(), args.out.resolve(), check=not args.no_check,
                      results=results, notation=args.notation_check)
    except SiteError as e:
        print(f"site build failed: {e}", file=sys.stderr)
        return 1
    print(f"built {stats['pages']} pages, {stats['formulas']} formulas, into {args.out} "
          f"in {stats['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
