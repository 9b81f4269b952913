"""The built site in a real browser (Chromium through Playwright), offline: every request that is
not file:// is aborted and recorded, and a page that tried one fails its test."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest_site import CHROMIUM, CHROMIUM_ARGS, REPO, need_chromium, need_katex
from utils.build import build

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
    for name in PAPER_PAGES:
        if (site / name).is_file() and "katex-display" in (site / name).read_text():
            return site / name
    for path in sorted(site.rglob("*.html")):
        text = path.read_text()
        if "katex-display" in text and 'class="line"' in text:
            return path
    pytest.skip("no page with display math and code yet")


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

    def open_(path: Path, width: int = 1400, height: int = 900, scheme: str = "light", fragment: str = ""):
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
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
    html = paper.read_text()
    classes = re.findall(r'<section class="sec[^"]*" id="([A-Za-z_][A-Za-z0-9_]*)"', html)
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
    numbers = [int(n) for n in re.findall(r'id="L(\d+)"', paper.read_text())]
    target = numbers[len(numbers) * 3 // 4]
    page = open_page(paper, fragment=f"#L{target}")
    box = page.evaluate(f"""(() => {{
        const r = document.getElementById('L{target}').getBoundingClientRect();
        return {{top: r.top, height: innerHeight, scrolled: scrollY,
                 bg: getComputedStyle(document.getElementById('L{target}')).backgroundColor}};
    }})()""")
    assert box["scrolled"] > 0 and 0 <= box["top"] < box["height"] / 2, box
    assert box["bg"] not in ("rgba(0, 0, 0, 0)", "transparent")  # :target highlights the line
