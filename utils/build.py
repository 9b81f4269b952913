"""Build the annotated site: `python -m utils.build --out docs [--root REPO]`.

Discover pages (see `utils/__init__.py` for the URL scheme), split modules into sections, parse
all prose, typeset all math in one KaTeX process, render the templates, write the search index and
static files, then check every link. Any failure exits non-zero with `file:line: message`.
"""
from __future__ import annotations

import argparse
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
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from . import config
from .check import check_site
from .errors import SiteError
from .highlight import highlight_lines, pygments_css
from .katex import KATEX_DIST, Typesetting
from .markdown import Markdown, Parsed
from .split import Module, Section, parse_front_matter, split_source

UTILS = Path(__file__).resolve().parent
# Ids the template uses; headings and names never take them.
TEMPLATE_IDS = {"site-content", "site-search", "site-search-results", "site-theme", "site-pages"}
MARKER = ".site-build"  # marks an output folder as ours, so a rebuild may empty it
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
ASSET_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


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

    @property
    def url_dir(self) -> str:
        return posixpath.dirname(self.out)


def site_dir(repo_dir: str) -> str | None:
    """Site folder of a repository folder: the package folder is the site root."""
    if repo_dir in ("", config.PACKAGE):
        return ""
    if repo_dir.startswith(config.PACKAGE + "/"):
        return repo_dir[len(config.PACKAGE) + 1:]
    return None


def rel_url(target: str, page: Page) -> str:
    """URL of site path `target` relative to `page`."""
    anchor = ""
    if "#" in target:
        target, anchor = target.split("#", 1)
        anchor = "#" + anchor
    return posixpath.relpath(target, page.url_dir or ".") + anchor


class Site:
    def __init__(self, root: Path):
        self.root = root
        self.pages: list[Page] = []
        self.by_src: dict[str, Page] = {}
        self.folder_pages: dict[str, Page] = {}  # repository folder -> its index page
        self.assets: dict[str, str] = {}  # repository path -> site path of copied images
        self.markdown = Markdown()
        self.link_origins: dict[tuple[str, str], list[tuple[str, int]]] = {}

    # -- discovery --------------------------------------------------------------------------------

    def discover(self) -> None:
        package = self.root / config.PACKAGE
        readme = self._readme(self.root)
        home = Page(out="index.html", kind="markdown" if readme else "folder", folder="",
                    src=readme, listing_of=config.PACKAGE)
        self._add(home)
        self.folder_pages[""] = home
        if not package.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(package):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
            folder = Path(dirpath).relative_to(self.root).as_posix()
            base = site_dir(folder)
            names = sorted(filenames)
            if not self._has_pages(Path(dirpath)):
                # No page here (e.g. a `pictures/` folder), but its images may be shown by pages.
                for name in names:
                    if Path(name).suffix.lower() in ASSET_EXTENSIONS:
                        self.assets[f"{folder}/{name}"] = posixpath.join(base, name)
                continue
            if folder == config.PACKAGE:
                self.folder_pages[folder] = home
            elif "__init__.py" not in names:
                page = Page(out=posixpath.join(base, "index.html"), kind="folder", folder=folder,
                            listing_of=folder)
                self._add(page)
                self.folder_pages[folder] = page
            for name in names:
                path = f"{folder}/{name}"
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

    def _readme(self, folder: Path) -> str | None:
        for name in ("readme.md", "README.md", "Readme.md"):
            if (folder / name).is_file():
                return (folder / name).relative_to(self.root).as_posix()
        return None

    @staticmethod
    def _has_pages(folder: Path) -> bool:
        return any(p.suffix == ".py" or p.name.lower() == "readme.md" for p in folder.rglob("*")
                   if "__pycache__" not in p.parts)

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
        src_dir = posixpath.dirname(page.src) if page.src else page.folder

        def resolve(href: str, line: int) -> str:
            if not href or href.startswith("#") or EXTERNAL.match(href):
                result = href
            else:
                result = self._resolve_relative(href, src_dir, page)
            self.link_origins.setdefault((page.out, result), []).append((page.src or page.out, line))
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
        if path.endswith(".html") or path.endswith("/"):
            return href  # already a site URL, relative to this page; the checker verifies it
        if (self.root / target).exists() and not target.startswith(".."):
            return config.source_url(target) + suffix
        return href  # left for the checker to report with its file and line

    # -- parsing ----------------------------------------------------------------------------------

    def parse(self) -> None:
        for page in self.pages:
            resolve = self.resolver(page)
            if page.kind == "module":
                source = (self.root / page.src).read_text(encoding="utf-8")
                module = split_source(source, page.src)
                page.module = module
                page.title = module.front_matter.get("title", "")
                page.summary = module.front_matter.get("summary", "")
                for section in module.sections:
                    if section.anchor:
                        page.anchors.add(section.anchor)
                for section in module.sections:
                    parsed = [self.markdown.parse(p.text, page.src, p.text_line, page.anchors, resolve)
                              for p in section.prose]
                    if section.intro and not section.code:
                        page.intro.extend(parsed)
                    else:
                        page.sections.append((section, parsed))
            elif page.kind == "markdown":
                text = (self.root / page.src).read_text(encoding="utf-8")
                meta, text = parse_front_matter(text)
                page.title = meta.get("title", "")
                page.summary = meta.get("summary", "")
                page.intro.append(self.markdown.parse(text, page.src, 1, page.anchors, resolve))
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
                page.summary_md = self.markdown.parse(page.summary, page.src or page.folder, 1, set(),
                                                      self.resolver(page))

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
        self.highlighted = {page.out: highlight_lines("".join(page.module.lines))
                            for page in self.pages if page.module is not None}

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
            sections = []
            code_lines = self.highlighted.get(page.out, [])
            identifiers = self._identifiers(page.module) if page.module else {}
            for section, parsed in page.sections:
                if section.anchor:
                    depth = 2 + section.anchor.count(".")
                    label = section.anchor.split("-")[0].rpartition(".")[2]  # indentation shows the owner
                    toc.append({"depth": depth, "text": label, "anchor": section.anchor, "code": True,
                                "kind": section.kind})
                for p in parsed:
                    toc.extend({"depth": h.level, "text": h.text, "anchor": h.anchor, "code": False}
                               for h in p.headings)
                code = Markup(self._code_html(section, code_lines))
                prose_html = Markup("".join(self.markdown.render(p) for p in parsed))
                sections.append({"anchor": section.anchor, "prose": prose_html, "code": code if section.code else None,
                                 "kind": section.kind})
                self._index_section(search, page, section, parsed, identifiers)
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
            )
            target = out / page.out
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(html, encoding="utf-8")
            search.append({"u": page.out, "t": page.title, "h": "", "x": page.summary, "i": "", "k": "page"})
            for p in page.intro:
                self._index_prose(search, page, p)
        return search

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


def build(root: Path, out: Path, check: bool = True) -> dict:
    """Build the site of the repository at `root` into `out`; returns a few numbers."""
    started = time.perf_counter()
    site = Site(root)
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
            "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", type=Path, help="output folder (default: docs)")
    parser.add_argument("--root", default=UTILS.parent, type=Path, help="repository root")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the link check (for drafts only: `make site` always checks)")
    args = parser.parse_args(argv)
    try:
        stats = build(args.root.resolve(), args.out.resolve(), check=not args.no_check)
    except SiteError as e:
        print(f"site build failed: {e}", file=sys.stderr)
        return 1
    print(f"built {stats['pages']} pages, {stats['formulas']} formulas, into {args.out} "
          f"in {stats['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
