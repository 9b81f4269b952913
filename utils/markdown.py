r"""Prose as Markdown with math, in two passes so that all math of a build is typeset at once.

`parse` reads one block of prose (a docstring, a comment block, a readme) and collects its
formulas, headings, links and plain text; `render` turns it into HTML once `math_html` holds the
typeset formulas. Math is `$...$` inline and `$$...$$` for display (markdown-it-py's dollar-math
plugin); a `$` is only math when it hugs its formula (`$x$`, not `$ 5`), is not next to a digit on
its outer side (`$5 and $10` is money), and is not escaped (`\$`). Code spans keep their dollars.
A code block (fenced or indented) gets a bar with its language and a copy button
(`utils/static/site.js` copies the block's text). The passes edit the tokens of a block (`edit`)
before its formulas and links are collected.
"""
from __future__ import annotations

import re
import unicodedata
from collections import namedtuple
from html import escape
from dataclasses import dataclass, field
from typing import Callable, Optional

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from .highlight import highlight_block

PUNCTUATION = re.compile(r"[.,;:!?)\]'’”]*")
MATH_TYPES = {"math_inline": False, "math_inline_double": True, "math_block": True, "math_block_label": True}
COPY_ICON = ('<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path fill="currentColor" '
             'd="M5 1.5A1.5 1.5 0 0 1 6.5 0h7A1.5 1.5 0 0 1 15 1.5v9a1.5 1.5 0 0 1-1.5 1.5h-7A1.5 1.5 0 0 1 '
             '5 10.5zm1.5 0v9h7v-9zM2.5 4H4v1.5H2.5v9h7V13H11v1.5A1.5 1.5 0 0 1 9.5 16h-7A1.5 1.5 0 0 1 1 '
             '14.5v-9A1.5 1.5 0 0 1 2.5 4z"/></svg>')


def copy_button(label: str) -> str:
    """The copy button of a block of code (shown by site.js, which does the copying)."""
    return (f'<button type="button" class="copy" aria-label="{escape(label)}" title="{escape(label)}" hidden>'
            f'{COPY_ICON}<span class="copy-label">Copy</span></button>')


def code_block_html(body: str, lang: str) -> str:
    """A code block of the prose: a bar with its language and a copy button, then the code."""
    return (f'<div class="codeblock"><div class="codeblock-bar"><span class="codeblock-lang">{escape(lang)}</span>'
            f'{copy_button("Copy the code")}</div>{body}</div>\n')


@dataclass
class Formula:
    tex: str
    display: bool
    path: str
    line: int
    token: object = field(default=None, repr=False, compare=False)  # the markdown-it token
    original: Optional[str] = None  # the TeX as written, when a pass rewrote `tex`

    def rewrite(self, tex: str) -> None:
        """Typeset `tex` instead (KaTeX's annotation, which copying reads, keeps the TeX as written)."""
        if tex != self.tex:
            self.original = self.original or self.tex
            self.tex = tex
            if self.token is not None:
                self.token.content = tex


Heading = namedtuple("Heading", "level text anchor")


@dataclass
class Parsed:
    tokens: list
    path: str
    line: int  # the source line of the text's first line
    formulas: list[Formula] = field(default_factory=list)
    headings: list[Heading] = field(default_factory=list)
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
            MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
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
              edit: Callable[[list], None] | None = None) -> Parsed:
        """Parse prose whose first line is line `first_line` of `path`.

        `edit(tokens)` may change the tokens first; then headings get ids unique within `anchors`
        (the page's set, updated here) and every link and image address goes through
        `resolve_link(href, line)`."""
        tokens = self.md.parse(text)
        if edit is not None:
            edit(tokens)
        parsed = Parsed(tokens=tokens, path=path, line=first_line)
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
                    child.attrSet(attr, resolve_link(child.attrGet(attr) or "", line + offset))
                elif child.type == "text":
                    offset += child.content.count("\n")
        parsed.plain = " ".join(p.strip() for p in plain if p.strip())
        return parsed

    @staticmethod
    def _walk(children):
        for child in children or []:
            yield child
            if child.children and child.type != "image":
                yield from Markdown._walk(child.children)

    def render(self, parsed: Parsed) -> str:
        return self.md.renderer.render(parsed.tokens, self.md.options, {})
