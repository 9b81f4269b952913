"""Write the site: each page through the one template (`utils/templates/page.html`), with what the
passes add to it, then the static files (the site's CSS and script, KaTeX's CSS and fonts, the
Pygments colours) and the images the pages show."""
from __future__ import annotations

import shutil
from html import escape
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from . import config
from .errors import SiteError
from .highlight import highlight_lines, pygments_css
from .katex import KATEX_DIST
from .markdown import Markdown, copy_button
from .pages import Page, Pass, Site
from .split import Section

UTILS = Path(__file__).resolve().parent
MARKER = ".site-build"  # marks an output folder as ours, so a rebuild may empty it


def prepare_out(out: Path) -> None:
    """Empty `out` for a fresh build, but only if it is empty or an earlier build of ours."""
    if out.exists():
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise SiteError(str(out), 1, "the output folder is not empty and was not built by "
                                         "utils/build.py; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("Built by utils/build.py; a rebuild empties this folder.\n", encoding="utf-8")


def highlight(site: Site) -> dict[str, list[str]]:
    """Each page's source, highlighted: one HTML fragment per line, with the notation's names marked."""
    return {page.out: highlight_lines("".join(page.module.lines), names=page.names)
            for page in site.pages if page.module is not None}


class Writer:
    def __init__(self, site: Site, markdown: Markdown, code: dict[str, list[str]], passes: list[Pass]):
        self.site, self.markdown, self.code, self.passes = site, markdown, code, passes
        env = Environment(loader=FileSystemLoader(UTILS / "templates"), autoescape=select_autoescape(["html"]),
                          trim_blocks=True, lstrip_blocks=True)
        self.template = env.get_template("page.html")

    def write(self, out: Path) -> None:
        for page in self.site.pages:  # listings show other pages' summaries: render them all first
            html = self.markdown.render(page.summary_md).strip() if page.summary_md else ""
            page.summary_html = Markup(html[3:-4] if html.startswith("<p>") and html.endswith("</p>") else html)
        for page in self.site.pages:
            context = self.context(page)
            for p in self.passes:
                context.update(p.context(page, self.site))
            target = out / page.out
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.template.render(**context), encoding="utf-8")
        self.static(out)

    def context(self, page: Page) -> dict:
        """What the template shows of a page before any pass adds to it."""
        toc = [{"depth": h.level, "text": h.text, "anchor": h.anchor}
               for p in page.intro for h in p.headings if h.level > 1]
        sections = []
        for section, parsed in page.sections:
            if section.anchor:  # a definition: indentation shows its owner
                toc.append({"depth": 2 + section.anchor.count("."), "code": True,
                            "text": section.anchor.split("-")[0].rpartition(".")[2], "anchor": section.anchor})
            toc.extend({"depth": h.level, "text": h.text, "anchor": h.anchor} for p in parsed for h in p.headings)
            sections.append({"anchor": section.anchor, "kind": section.kind,
                             "prose": Markup("".join(self.markdown.render(p) for p in parsed)),
                             "code": Markup(self.section_code(page, section)) if section.code else None,
                             "tools": self.tools(page, section) if section.code else None})
        return {
            "site_title": config.SITE_TITLE, "page": page, "title": page.title, "summary": page.summary,
            "root": "../" * (page.url_dir.count("/") + 1) if page.url_dir else "",
            "intro": Markup("".join(self.markdown.render(p) for p in page.intro)),
            "has_h1": any(h.level == 1 for p in page.intro for h in p.headings),
            "sections": sections, "toc": toc, "source": self.source(page) if page.kind == "test" else None,
            "source_url": config.source_url(page.src) if page.src else None,
        }

    def rows(self, page: Page, numbered: list[tuple[int, bool]]) -> str:
        """One block span per source line, `id="L<n>"`, with its number as a link (drawn by CSS, so
        that copying the code never copies the numbers); `edge` lines are drawn short."""
        code = self.code.get(page.out, [])
        out = []
        for n, edge in numbered:
            mark = f'<span class="test-anchor" id="{escape(page.line_ids[n])}"></span>' if n in page.line_ids else ""
            out.append(f'<span class="line{" edge" if edge else ""}" id="L{n}">{mark}<a class="ln" href="#L{n}" '
                       f'data-n="{n}" aria-hidden="true" tabindex="-1"></a>{code[n - 1] if n <= len(code) else ""}\n</span>')
        return "".join(out)

    def section_code(self, page: Page, section: Section) -> str:
        """A section's code; blank lines at its edges are kept (and linkable) but drawn short, so
        that prose and code stay close together."""
        filled = [i for i, (_, text) in enumerate(section.code) if text.strip()]
        first, last = (filled[0], filled[-1]) if filled else (len(section.code), -1)
        return self.rows(page, [(n, not text.strip() and not first <= i <= last)
                                for i, (n, text) in enumerate(section.code)])

    @staticmethod
    def tools(page: Page, section: Section | None = None) -> dict | None:
        """The copy button and the repository link of a section's code (its non-blank span), or of
        the whole file."""
        rows = [n for n, text in section.code if text.strip()] if section else [1, len(page.module.lines)]
        if not rows or not rows[-1]:
            return None
        first, last = rows[0], rows[-1]
        lines = f"line {first}" if first == last else f"lines {first}\u2013{last}"
        anchor = "" if section is None else f"#L{first}" if first == last else f"#L{first}-L{last}"
        return {"copy_button": Markup(copy_button(f"Copy {lines}" if section else "Copy the file")),
                "url": config.source_url(page.src) + anchor,
                "label": f"See {lines} on GitHub" if section else "The file on GitHub"}

    def source(self, page: Page) -> dict:
        """A test file as one block of highlighted source."""
        rows = [(n, False) for n in range(1, len(page.module.lines) + 1)]
        return {"code": Markup(self.rows(page, rows)), "tools": self.tools(page)}

    def static(self, out: Path) -> None:
        static = out / "static"
        shutil.copytree(UTILS / "static", static, dirs_exist_ok=True)
        (static / "pygments.css").write_text(pygments_css(), encoding="utf-8")
        (static / "katex").mkdir(parents=True, exist_ok=True)
        shutil.copy2(KATEX_DIST / "katex.min.css", static / "katex" / "katex.min.css")
        shutil.copytree(KATEX_DIST / "fonts", static / "katex" / "fonts", dirs_exist_ok=True)
        for repo_path, site_path in self.site.assets.items():
            (out / site_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.site.root / repo_path, out / site_path)
        (out / ".nojekyll").write_text("", encoding="utf-8")
