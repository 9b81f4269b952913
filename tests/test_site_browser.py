"""The built site in a real browser (Chromium through Playwright), offline: every request that is
not file:// is aborted and recorded, and a page that tried one fails its test.

The README's claims that the site needs no network and opens straight from disk are what these
tests check. Screenshots go to $SITE_SHOTS when it is set (e.g. /tmp/site-shots), for a person to
look at."""
from __future__ import annotations

import io
import os
import re
import textwrap
import tokenize
from pathlib import Path

import pytest

from conftest_site import (CHROMIUM, CHROMIUM_ARGS, NOTATION, REPO, fixture_repo, need_chromium, need_katex,
                           read_page, write_results)
from utils.build import build

pytestmark = pytest.mark.checks("readme.md")

PAPER_PAGES = ["transformers/xl/relative_mha.html", "transformers/xl/index.html",
               "transformers/mha.html"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """This repository's site, built for the tests (links are checked by test_site_build)."""
    need_katex()
    need_chromium()
    out = tmp_path_factory.mktemp("browser") / "docs"
    build(REPO, out, check=False)
    return out


@pytest.fixture(scope="module")
def paper(site) -> Path:
    """A page with display math and code: the Transformer-XL attention page when it exists."""
    def has_math_and_code(path: Path) -> bool:
        page = read_page(path.parent, path.name)
        return bool(page.all(cls="katex-display") and page.all("span", "line"))

    for path in [site / name for name in PAPER_PAGES] + sorted(site.rglob("*.html")):
        if path.is_file() and has_math_and_code(path):
            return path
    pytest.fail("no page with display math and code: the Transformer-XL attention page always has both")


@pytest.fixture(scope="module")
def browser():
    need_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def open_page(browser):
    contexts = []
    remote: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            remote.append(r.request.url)
            r.abort()

    def open_(path: Path, width: int = 1400, height: int = 900, scheme: str = "light", fragment: str = "",
              clipboard: bool = False):
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
        if clipboard:
            context.grant_permissions(["clipboard-read", "clipboard-write"])
        context.route("**/*", route)
        contexts.append(context)
        page = context.new_page()
        page.goto(path.as_uri() + fragment)
        page.evaluate("document.fonts.ready.then(() => true)")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not remote, f"pages tried to load from the network: {remote}"


def test_katex_is_styled_and_its_fonts_load(paper, open_page):
    page = open_page(paper)
    page.wait_for_function("document.fonts.status === 'loaded'")
    loaded = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
    assert any("KaTeX_Main" in family for family in loaded), loaded
    assert any("KaTeX_Math" in family for family in loaded), loaded
    style = page.evaluate("""() => {
        const k = document.querySelector('.katex');
        const m = document.querySelector('.katex-mathml');
        return {font: getComputedStyle(k).fontFamily, mathml: getComputedStyle(m).position,
                clip: getComputedStyle(m).clip};
    }""")
    assert "KaTeX_Main" in style["font"]
    assert style["mathml"] == "absolute"  # the MathML copy is for screen readers only


def test_nothing_overflows_the_page_at_phone_tablet_and_desktop_widths(site, paper, open_page):
    page = open_page(paper, width=390)
    for path in [paper, site / "index.html", site / "labml_nn.html"]:
        page.goto(path.as_uri())
        for width in [390, 768, 1400]:
            page.set_viewport_size({"width": width, "height": 900})
            sizes = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert sizes[0] <= sizes[1], f"{path.name} at {width}px is {sizes[0]}px wide"


def test_dark_mode_toggle_persists_across_reload(paper, open_page):
    page = open_page(paper, scheme="light")
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    page.click("#site-theme")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    dark = page.evaluate(background)
    assert dark != light
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate(background) == dark
    page.click("#site-theme")
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"


def test_dark_mode_follows_the_system(paper, open_page):
    light = open_page(paper, scheme="light").evaluate("getComputedStyle(document.body).backgroundColor")
    dark = open_page(paper, scheme="dark").evaluate("getComputedStyle(document.body).backgroundColor")
    assert light != dark


def test_search_finds_an_identifier_and_goes_there(paper, open_page):
    classes = [s.attrs["id"] for s in read_page(paper.parent, paper.name).all("section", "sec", id=True)
               if "." not in s.attrs["id"] and "-" not in s.attrs["id"]]
    assert classes, "the paper page defines no top-level name"
    name = classes[-1]
    page = open_page(paper)
    page.fill("#site-search", name)
    results = page.locator("#site-search-results a")
    results.first.wait_for()
    assert name in results.first.inner_text()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(f"#{name}") + "$"))
    # The section is scrolled to the top, or as far as it goes when it sits at the end of the page.
    top, at_bottom = page.evaluate(f"""(() => [document.getElementById({name!r}).getBoundingClientRect().top,
        scrollY + innerHeight >= document.documentElement.scrollHeight - 2])()""")
    assert top < 300 or (at_bottom and top < page.viewport_size["height"]), (top, at_bottom)


def test_line_anchor_scrolls_to_that_line(paper, open_page):
    numbers = [int(line.attrs["id"][1:]) for line in read_page(paper.parent, paper.name).all("span", "line")]
    target = numbers[len(numbers) * 3 // 4]
    page = open_page(paper, fragment=f"#L{target}")
    box = page.evaluate(f"""(() => {{
        const r = document.getElementById('L{target}').getBoundingClientRect();
        return {{top: r.top, height: innerHeight, scrolled: scrollY,
                 bg: getComputedStyle(document.getElementById('L{target}')).backgroundColor}};
    }})()""")
    assert box["scrolled"] > 0 and 0 <= box["top"] < box["height"] / 2, box
    assert box["bg"] not in ("rgba(0, 0, 0, 0)", "transparent")  # :target highlights the line


# -- the fixture site: notation links, copy buttons and "checked by", in both themes and on a phone --

VIEWS = [("light", 1400), ("dark", 1400), ("light", 390), ("dark", 390)]
NOTATION_SOURCE = textwrap.dedent(NOTATION["labml_nn/paper/notation.py"]).lstrip("\n")


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory) -> Path:
    need_katex()
    need_chromium()
    base = tmp_path_factory.mktemp("fixture-browser")
    root = fixture_repo(base / "repo", NOTATION)
    build(root, base / "docs", results=write_results(base / "results.json"))
    return base / "docs"


def shot(page, name: str) -> None:
    folder = os.environ.get("SITE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def contrast(page, selector: str) -> float:
    """The contrast ratio of an element's text colour against its own background colour."""
    return page.evaluate("""(selector) => {
        const el = document.querySelector(selector);
        const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
        const lum = (c) => { const [r, g, b] = rgb(c).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const s = getComputedStyle(el);
        const fg = lum(s.color), bg = lum(s.backgroundColor);
        return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    }""", selector)


def highlighted(page) -> dict:
    return page.evaluate("""() => {
        const lit = [...document.querySelectorAll('.n-hl')];
        return {
            code: lit.filter(e => e.closest('.sec > .code')).map(e => e.dataset.var || ('sym:' + e.dataset.sym)),
            syms: lit.filter(e => e.dataset.sym !== undefined).map(e => e.dataset.sym),
            vars: lit.filter(e => e.dataset.var !== undefined && !e.closest('.sec > .code')).map(e => e.dataset.var),
        };
    }""")


def code_count(name: str) -> int:
    """How often `name` is a NAME token of the fixture module's code."""
    return sum(1 for t in tokenize.generate_tokens(io.StringIO(NOTATION_SOURCE).readline)
               if t.type == tokenize.NAME and t.string == name)


@pytest.mark.parametrize("scheme,width", VIEWS)
def test_hovering_a_symbol_highlights_its_code_tokens_and_only_those(fixture_site, open_page, scheme, width):
    page = open_page(fixture_site / "paper/notation.html", width=width, scheme=scheme)
    symbol = page.locator('.math-display [data-sym="0"]').first  # q_i in the display equation
    symbol.hover()
    lit = highlighted(page)
    assert lit["code"] == ["q"] * code_count("q")
    assert set(lit["syms"]) == {"0"} and len(lit["syms"]) == page.locator('[data-sym="0"]').count()
    assert set(lit["vars"]) == {"q"}  # the table's and the prose's `q`
    assert contrast(page, '.sec > .code .nvar.n-hl') >= 4.5  # the highlighted token stays legible
    shot(page, f"hover-symbol-{scheme}-{width}")
    page.mouse.move(1, 1)
    assert page.locator(".n-hl").count() == 0


@pytest.mark.parametrize("scheme,width", VIEWS[:2])
def test_hovering_a_code_name_highlights_its_symbol(fixture_site, open_page, scheme, width):
    page = open_page(fixture_site / "paper/notation.html", width=width, scheme=scheme)
    page.locator('.sec > .code [data-var="x_hat"]').first.hover()
    lit = highlighted(page)
    assert set(lit["syms"]) == {"5"} and len(lit["syms"]) == page.locator('[data-sym="5"]').count()
    assert set(lit["code"]) == {"x_hat"} and len(lit["code"]) == code_count("x_hat")
    assert contrast(page, '[data-sym].n-hl > :not(.mspace)') >= 3
    shot(page, f"hover-code-{scheme}-{width}")


@pytest.mark.parametrize("scheme,width", VIEWS)
def test_the_keyboard_reaches_symbols_and_names_with_a_visible_focus(fixture_site, open_page, scheme, width):
    page = open_page(fixture_site / "paper/notation.html", width=width, scheme=scheme)
    page.locator("#site-search").focus()
    reached = {}
    for _ in range(80):
        page.keyboard.press("Tab")
        state = page.evaluate("""() => {
            const el = document.activeElement;
            const s = getComputedStyle(el);
            return {sym: el.dataset.sym, var: el.dataset.var, inCode: !!el.closest('.sec > .code'),
                    outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
                    lit: document.querySelectorAll('.n-hl').length, src: el.classList.contains('n-src')};
        }""")
        if state["sym"] is not None and "sym" not in reached:
            reached["sym"] = state
            lit = highlighted(page)
            assert set(lit["code"]) == set(page.evaluate(
                "document.activeElement.dataset.vars.split(' ')")) and lit["code"]
            shot(page, f"focus-symbol-{scheme}-{width}")
        if state["var"] is not None and state["inCode"] and "var" not in reached:
            reached["var"] = state
        if len(reached) == 2:
            break
    assert set(reached) == {"sym", "var"}, reached
    for state in reached.values():
        assert state["outline"] and state["src"] and state["lit"] > 1, state


def record_copies(page) -> None:
    """From now on, every text the page writes to the clipboard goes into `window.copies`, and every
    copy button that says "Copied" into `window.feedback`: both only grow, so a test waits on them
    with no clock to race."""
    page.evaluate("""() => {
        window.copies = [];
        window.feedback = [];
        const write = navigator.clipboard.writeText.bind(navigator.clipboard);
        navigator.clipboard.writeText = (text) => { window.copies.push(text); return write(text); };
        new MutationObserver((changes) => changes.forEach((c) => {
            if (c.target.classList.contains('copied')) window.feedback.push(c.target.getAttribute('aria-label'));
        })).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['class']});
    }""")


@pytest.mark.parametrize("scheme,width", VIEWS)
def test_copy_buttons_copy_the_code_without_line_numbers(fixture_site, open_page, scheme, width):
    page = open_page(fixture_site / "paper/notation.html", width=width, scheme=scheme, clipboard=True)
    record_copies(page)
    section = page.locator('section#scores')
    section.hover()
    button = section.locator("button.copy")
    assert button.is_visible()
    button.click()
    page.wait_for_function("window.copies.length === 1 && window.feedback.length === 1")
    lines = NOTATION_SOURCE.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("def scores"))
    assert page.evaluate("window.copies[0]") == "".join(lines[start:start + 2])
    assert page.evaluate("window.feedback[0]") == "Copied"
    # The prose's code block copies its text.
    block = page.locator(".codeblock button.copy").first
    block.scroll_into_view_if_needed()
    block.click()
    page.wait_for_function("window.copies.length === 2")
    assert page.evaluate("window.copies[1]") == "example = q + k\nprint(example)\n"
    # The tools never cover code: their box and the code's lines do not overlap.
    overlaps = page.evaluate("""() => {
        const hit = [];
        for (const tools of document.querySelectorAll('.code-tools')) {
            const t = tools.getBoundingClientRect();
            const pre = tools.parentElement.querySelector('pre');
            for (const line of pre.querySelectorAll('.line')) {
                for (const r of line.getClientRects()) {
                    const text = line.textContent.trim();
                    if (!text) continue;
                    if (r.left < t.right && t.left < r.right && r.top < t.bottom && t.top < r.bottom
                        && r.left + line.textContent.length * 4 > t.left) hit.push(text.slice(0, 30));
                }
            }
        }
        return hit;
    }""")
    assert not overlaps, overlaps
    sizes = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], sizes
    shot(page, f"copy-{scheme}-{width}")


@pytest.mark.parametrize("scheme,width", VIEWS)
def test_checked_by_lists_the_tests_with_their_statuses(fixture_site, open_page, scheme, width):
    page = open_page(fixture_site / "paper/notation.html", width=width, scheme=scheme, fragment="#checked-by")
    section = page.locator("#checked-by")
    assert section.is_visible()
    statuses = section.locator(".test-status").all_inner_texts()
    assert statuses == ["passed", "failed: 1 of 3 cases", "1 passed, 1 skipped", "not run"]
    assert "Latest recorded run: 2026-11-30 12:00 UTC, commit 0123456" in section.inner_text()
    for state in ["passed", "failed", "partial"]:
        assert contrast(page, f"#checked-by .status-{state}") >= 4.5, state
    sizes = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], sizes
    shot(page, f"checked-by-{scheme}-{width}")
    section.locator("a.test-link").nth(1).click()
    page.wait_for_url(re.compile(r"tests/test_paper\.html#test_layer_maps_x_to_x_prime$"))
    top = page.evaluate("document.getElementById('test_layer_maps_x_to_x_prime').getBoundingClientRect().top")
    assert 0 <= top < page.viewport_size["height"] / 2
    shot(page, f"test-page-{scheme}-{width}")


def test_the_real_attention_page_links_its_symbols_to_its_code(paper, open_page):
    """On this repository's paper page, hovering a symbol of the notation table lights exactly the
    code tokens of the names it maps to."""
    page = open_page(paper)
    symbols = page.locator("table [data-sym][data-vars]:not([data-vars=''])")
    checked = 0
    for i in range(symbols.count()):
        symbol = symbols.nth(i)
        names = set(symbol.get_attribute("data-vars").split())
        expected = page.evaluate("(names) => names.map(n => document.querySelectorAll("
                                 "`.sec > .code [data-var='${n}']`).length).reduce((a, b) => a + b, 0)",
                                 sorted(names))
        if not expected:
            continue  # a name the code does not use: the build's notation check reports it
        symbol.scroll_into_view_if_needed()
        symbol.hover()
        lit = highlighted(page)
        assert set(lit["code"]) <= names and len(lit["code"]) == expected
        checked += 1
    assert checked >= 3


def test_tab_stops_are_the_first_occurrences(fixture_site, open_page):
    """Tab reaches every symbol and name of the table, the first occurrence of each symbol in each
    block of prose, and the first occurrence of each name in the page's code; no other."""
    page = open_page(fixture_site / "paper/notation.html")
    stops = page.evaluate("""() => [...document.querySelectorAll('[data-sym], [data-var]')].map(el => ({
        sym: el.dataset.sym, name: el.dataset.var, tab: el.tabIndex, focusable: el.hasAttribute('tabindex'),
        table: !!el.closest('table'), code: !!el.closest('.code'),
        block: [...document.querySelectorAll('.prose')].indexOf(el.closest('.prose'))}))""")
    seen, expected = set(), []
    for el in stops:
        if el["sym"] is not None:
            key = ("sym", el["block"], el["sym"])
            expected.append(0 if el["table"] or key not in seen else -1)
        elif el["code"]:
            key = ("code", el["name"])
            expected.append(0 if key not in seen else -1)
        else:  # a name in the prose: a tab stop in the table only, else reached by pointer
            key = None
            expected.append(0 if el["table"] else None)
        seen.add(key)
    assert [el["tab"] if el["focusable"] else None for el in stops] == expected
    assert expected.count(0) >= 10 and expected.count(-1) >= 5
    forward = page.evaluate("""() => [...document.getElementById('Layer.forward').querySelectorAll('[data-sym="3"]')]
        .map(el => el.tabIndex)""")
    assert forward == [0, -1]  # x twice in one docstring: the first is a stop


def test_print_is_one_light_column_without_chrome(paper, open_page):
    page = open_page(paper, scheme="light")
    page.click("#site-theme")  # the reader chose the dark theme: the print is light all the same
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.emulate_media(media="print")
    state = page.evaluate("""() => ({
        topbar: getComputedStyle(document.querySelector('.topbar')).display,
        tools: [...document.querySelectorAll('.code-tools')].every(t => getComputedStyle(t).display === 'none'),
        columns: getComputedStyle(document.querySelector('.sec')).display,
        background: getComputedStyle(document.body).backgroundColor,
        wraps: getComputedStyle(document.querySelector('pre.hl')).whiteSpace})""")
    assert state == {"topbar": "none", "tools": True, "columns": "block", "background": "rgb(255, 255, 255)",
                     "wraps": "pre-wrap"}
