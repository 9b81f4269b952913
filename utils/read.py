"""Read every page: a module is split into sections of prose and code, prose is parsed as Markdown
(the passes may edit each block's tokens first), and every page gets its title and summary."""
from __future__ import annotations

import ast
import posixpath

from . import config
from .markdown import Markdown, Parsed
from .pages import Page, Pass, Site
from .paths import read_text
from .split import Module, parse_front_matter, split_source


class Reader:
    def __init__(self, site: Site, markdown: Markdown, passes: list[Pass]):
        self.site, self.markdown, self.passes = site, markdown, passes

    def read(self) -> None:
        for page in self.site.pages:
            if page.kind == "module":
                self.module(page)
            elif page.kind == "markdown":
                self.readme(page)
            elif page.kind == "test":
                self.test(page)
            first_h1 = next((h.text for p in page.intro for h in p.headings if h.level == 1), "")
            page.title = page.title or first_h1 or default_title(page)
        for page in self.site.pages:  # a generated folder index takes its readme's title
            readme = self.site.by_src.get(self.site.readme(page.folder) or "") if page.folder else None
            if page.kind == "folder" and readme is not None:
                page.title, page.summary = readme.title, page.summary or readme.summary
        for page in self.site.pages:
            if page.summary:
                page.summary_md = self.parse(page, page.summary, page.src or page.folder, 1)

    def parse(self, page: Page, text: str, path: str, line: int, origin: str | None = None) -> Parsed:
        """One block of prose written at `path:line` (in the file `origin`, if not the page's)."""
        def edit(tokens):
            for p in self.passes:
                p.prose(tokens, path, line, page)

        return self.markdown.parse(text, path, line, page.anchors, self.site.resolver(page, origin),
                                   None if page.kind == "test" else edit)  # a test's docstring is source

    def module(self, page: Page) -> None:
        module = page.module = split_source(read_text(self.site.root, page.src), page.src)
        page.title = module.front_matter.get("title", "")
        page.summary = module.front_matter.get("summary", "")
        page.anchors.update(s.anchor for s in module.sections if s.anchor)
        for section in module.sections:
            parsed = [self.parse(page, p.text, page.src, p.text_line) for p in section.prose]
            page.doc = page.doc or next((x for x, p in zip(parsed, section.prose) if p.kind == "module"), None)
            if section.intro and not section.code:
                page.intro.extend(parsed)
            else:
                page.sections.append((section, parsed))

    def readme(self, page: Page) -> None:
        meta, text = parse_front_matter(read_text(self.site.root, page.src))
        page.title, page.summary = meta.get("title", ""), meta.get("summary", "")
        code_lines = {n for tok in self.markdown.md.parse(text) if tok.type in ("fence", "code_block")
                      and tok.map for n in range(tok.map[0], tok.map[1])}
        blocks = next((b for p in self.passes if (b := p.include(page, text, code_lines)) is not None),
                      [(page.src, 1, text)])
        for path, line, chunk in blocks:
            if chunk.strip():
                page.intro.append(self.parse(page, chunk, path, line, None if path == page.src else path))

    def test(self, page: Page) -> None:
        source = read_text(self.site.root, page.src)
        page.module = Module(page.src, source.splitlines(keepends=True), {}, [])
        try:
            doc = ast.get_docstring(ast.parse(source))
        except SyntaxError:
            doc = None
        page.summary = " ".join(doc.strip().split("\n\n")[0].split()) if doc else ""


def default_title(page: Page) -> str:
    if page.src:
        name = posixpath.basename(page.src)
        return posixpath.basename(posixpath.dirname(page.src)) if name == "__init__.py" else name
    return posixpath.basename(page.folder) or config.SITE_TITLE
