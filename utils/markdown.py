r"""Prose as Markdown with math, in two passes so that all math of a build is typeset at once.

`parse` reads one block of prose (a docstring, a comment block, a readme) and collects its
formulas, headings, links and plain text; `render` turns it into HTML once `math_html` holds the
typeset formulas. Math is `$...$` inline and `$$...$$` for display (markdown-it-py's dollar-math
plugin); a `$` is only math when it hugs its formula (`$x$`, not `$ 5`), is not next to a digit on
its outer side (`$5 and $10` is money), and is not escaped (`\$`). Code spans keep their dollars.

Two build-time additions, both made on the parsed tokens before anything is rendered or typeset:

* `{report:NAME.KEY}` in the text of prose is replaced by a figure of a benchmark report (the
  `figure` callback of `parse`, see `utils/reports.py`), parsed as inline Markdown; code spans and
  code blocks keep the placeholder as written, and one inside math fails the build.
* a code block (fenced or indented) gets a bar with its language and a copy button
  (`utils/static/site.js` copies the block's text).
"""
from __future__ import annotations

import re
import unicodedata
from html import escape
from dataclasses import dataclass, field
from typing import Callable, Optional

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from .errors import SiteError
from .highlight import highlight_block

PUNCTUATION = re.compile(r"[.,;:!?)\]'’”]*")
MATH_TYPES = {"math_inline": False, "math_inline_double": True, "math_block": True, "math_block_label": True}
PLACEHOLDER = re.compile(r"\{report:([A-Za-z0-9_-]+)\.([A-Za-z0-9_.-]+)\}")
PLACEHOLDER_START = "{report:"
ANNOTATION = re.compile(r'(<annotation encoding="application/x-tex">)[\s\S]*?(</annotation>)')
COPY_ICON = ('<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path fill="currentColor" '
             'd="M5 1.5A1.5 1.5 0 0 1 6.5 0h7A1.5 1.5 0 0 1 15 1.5v9a1.5 1.5 0 0 1-1.5 1.5h-7A1.5 1.5 0 0 1 '
             '5 10.5zm1.5 0v9h7v-9zM2.5 4H4v1.5H2.5v9h7V13H11v1.5A1.5 1.5 0 0 1 9.5 16h-7A1.5 1.5 0 0 1 1 '
             '14.5v-9A1.5 1.5 0 0 1 2.5 4z"/></svg>')
# A figure lookup: (report name, key, source line) -> the figure's text.
Figure = Callable[[str, str, int], str]


def copy_button(label: str) -> str:
    """The copy button of a block of code (shown by site.js, which does the copying)."""
    return (f'<button type="button" class="copy" aria-label="{escape(label)}" title="{escape(label)}" hidden>'
            f'{COPY_ICON}<span class="copy-label">Copy</span></button>')


def code_block_html(body: str, lang: str) -> str:
    """A code block of the prose: a bar with its language and a copy button, then the code."""
    lang_html = f'<span class="codeblock-lang">{escape(lang)}</span>' if lang else '<span class="codeblock-lang"></span>'
    return (f'<div class="codeblock"><div class="codeblock-bar">{lang_html}'
            f'{copy_button("Copy the code")}</div>{body}</div>\n')


@dataclass
class Formula:
    tex: str
    display: bool
    path: str
    line: int
    token: object = field(default=None, repr=False, compare=False)  # the markdown-it token
    original: Optional[str] = None  # the TeX as written, when the build rewrote `tex`


@dataclass
class Heading:
    level: int
    text: str
    anchor: str


@dataclass
class Parsed:
    tokens: list
    path: str
    formulas: list[Formula] = field(default_factory=list)
    headings: list[Heading] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)  # (href as rendered, source line)
    plain: str = ""


def slugify(text: str) -> str:
    """A readable, stable anchor from heading text: lowercase words joined by hyphens."""
    text = unicodedata.normalize("NFKD", text)
    text = re.sub(r"[^\w\s-]", "", text.lower(), flags=re.UNICODE)
    return re.sub(r"[\s_-]+", "-", text).strip("-") or "section"


def _plain(children) -> str:
    out = []
    for tok in children or []:
        if tok.type in ("text", "code_inline") or tok.type in MATH_TYPES:
            out.append(tok.content)
        elif tok.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif tok.children:
            out.append(_plain(tok.children))
    return "".join(out)


class Markdown:
    """One configured parser/renderer; `math_html` maps (tex, display) to KaTeX's HTML."""

    def __init__(self):
        self.md = (
            MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                      "highlight": lambda code, lang, attrs: highlight_block(code, lang)})
            .use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True,
                 allow_labels=True)
            .enable("table")
            .enable("strikethrough")
        )
        self.math_html: dict[tuple[str, bool], str] = {}
        for name, display in MATH_TYPES.items():
            self.md.add_render_rule(name, self._math_rule(display))
        self.md.add_render_rule("fence", self._fence_rule)
        self.md.add_render_rule("code_block", self._fence_rule)

    @staticmethod
    def _fence_rule(renderer, tokens, idx, options, env):
        token = tokens[idx]
        lang = token.info.strip().split()[0] if token.type == "fence" and token.info.strip() else ""
        return code_block_html(highlight_block(token.content, lang), lang)

    def _math_rule(self, display: bool):
        def rule(renderer, tokens, idx, options, env):
            html = self.math_html[(tokens[idx].content.strip(), display)]
            original = tokens[idx].meta.get("tex") if tokens[idx].meta else None
            if original is not None:  # the annotation shows the TeX as written, not as rewritten
                html = ANNOTATION.sub(lambda m: m.group(1) + escape(original, quote=False) + m.group(2), html, count=1)
            if tokens[idx].type in ("math_block", "math_block_label"):
                return f'<div class="math-display">{html}</div>\n'
            if display:
                return f'<span class="math-display">{html}</span>'
            # Keep punctuation right after inline math on the formula's line.
            after = tokens[idx + 1] if idx + 1 < len(tokens) else None
            if after is not None and after.type == "text":
                punct = PUNCTUATION.match(after.content).group(0)
                if punct:
                    after.content = after.content[len(punct):]
                    return f'<span class="nowrap">{html}{escape(punct)}</span>'
            return html
        return rule

    def parse(self, text: str, path: str, first_line: int, anchors: set[str],
              resolve_link: Callable[[str, int], str] | None = None,
              figure: Figure | None = None) -> Parsed:
        """Parse prose whose first line is line `first_line` of `path`.

        Headings get ids unique within `anchors` (the page's set, updated here); every link and
        image address goes through `resolve_link(href, line)`; every `{report:NAME.KEY}` of the
        text is replaced by `figure(NAME, KEY, line)` (without `figure`, placeholders fail)."""
        tokens = self.md.parse(text)
        self._substitute(tokens, path, first_line, figure)
        parsed = Parsed(tokens=tokens, path=path)
        plain = []
        for i, tok in enumerate(tokens):
            line = first_line + (tok.map[0] if tok.map else 0)
            if tok.type in MATH_TYPES:
                parsed.formulas.append(Formula(tok.content.strip(), True, path, line + 1, tok))
                plain.append(tok.content)
            if tok.type == "heading_open":
                title = _plain(tokens[i + 1].children)
                anchor = base = slugify(title)
                n = 1
                while anchor in anchors:
                    n += 1
                    anchor = f"{base}-{n}"
                anchors.add(anchor)
                tok.attrSet("id", anchor)
                parsed.headings.append(Heading(int(tok.tag[1]), title, anchor))
            if tok.type == "fence" or tok.type == "code_block":
                plain.append(tok.content)
            if tok.type != "inline":
                continue
            plain.append(_plain(tok.children))
            offset = 0
            for child in self._walk(tok.children):
                if child.type in ("softbreak", "hardbreak"):
                    offset += 1
                elif child.type in MATH_TYPES:
                    parsed.formulas.append(Formula(child.content.strip(), MATH_TYPES[child.type], path,
                                                   line + offset, child))
                    offset += child.content.count("\n")
                elif child.type in ("link_open", "image") and resolve_link is not None:
                    attr = "href" if child.type == "link_open" else "src"
                    href = resolve_link(child.attrGet(attr) or "", line + offset)
                    child.attrSet(attr, href)
                    parsed.links.append((href, line + offset))
                elif child.type == "text":
                    offset += child.content.count("\n")
        parsed.plain = " ".join(p.strip() for p in plain if p.strip())
        return parsed

    def _substitute(self, tokens, path: str, first_line: int, figure: Figure | None) -> None:
        """Replace the report placeholders of the text by their figures, as inline Markdown."""
        def fail(line: int, message: str):
            raise SiteError(path, line, message)

        for tok in tokens:
            line = first_line + (tok.map[0] if tok.map else 0)
            if tok.type in MATH_TYPES and PLACEHOLDER_START in tok.content:
                fail(line + 1, "a {report:...} placeholder inside math is not replaced: put it in the "
                               "text next to the formula")
            if tok.type != "inline" or PLACEHOLDER_START not in tok.content:
                continue
            children, offset = [], 0
            for child in tok.children or []:
                if child.type in MATH_TYPES and PLACEHOLDER_START in child.content:
                    fail(line + offset, "a {report:...} placeholder inside math is not replaced: put it "
                                        "in the text next to the formula")
                if child.type != "text" or PLACEHOLDER_START not in child.content:
                    children.append(child)
                    offset += child.content.count("\n") if child.type != "code_inline" else 0
                    offset += child.type in ("softbreak", "hardbreak")
                    continue
                text, at = child.content, 0
                while True:
                    start = text.find(PLACEHOLDER_START, at)
                    if start < 0:
                        break
                    m = PLACEHOLDER.match(text, start)
                    here = line + offset + text.count("\n", 0, start)
                    if m is None:
                        bad = text[start:text.find("}", start) + 1 or len(text)]
                        fail(here, f"malformed report placeholder {bad!r}: write {{report:NAME.KEY}} with "
                                   "NAME a file of bench/reports/ (without .json, no dots) and KEY a "
                                   "key of its \"figures\" (letters, digits, '_', '-', '.')")
                    if figure is None:
                        fail(here, f"{m.group(0)}: report figures are not available here")
                    value = figure(m.group(1), m.group(2), here)
                    if start > at:
                        children.append(self._text(child, text[at:start]))
                    children.extend(self.md.parseInline(value)[0].children or [])
                    at = m.end()
                if at < len(text):
                    children.append(self._text(child, text[at:]))
                offset += text.count("\n")
            tok.children = children

    @staticmethod
    def _text(like, content: str):
        token = like.copy()
        token.content = content
        return token

    @staticmethod
    def _walk(children):
        for child in children or []:
            yield child
            if child.children and child.type != "image":
                yield from Markdown._walk(child.children)

    def render(self, parsed: Parsed) -> str:
        return self.md.renderer.render(parsed.tokens, self.md.options, {})
