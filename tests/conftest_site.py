"""Helpers shared by the site tests (tests/test_site_*.py): a small fixture repository, the checks
that decide whether KaTeX and Chromium are there, and a reader of built pages (`html.parser`, never
regular expressions over HTML). The site tests import it; no test module imports another."""
from __future__ import annotations

import json
import os
import shutil
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KATEX_CSS = REPO / "utils" / "node_modules" / "katex" / "dist" / "katex.min.css"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def in_ci() -> bool:
    """Whether the environment variable CI holds a true value (`CI=true`, `1`, `yes`, `on`)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; in CI a missing prerequisite is a failure, never a skip."""
    if in_ci():
        pytest.fail(f"{reason} (a failure, not a skip, because CI is set)")
    pytest.skip(reason)


def need_katex() -> None:
    """KaTeX comes from `cd utils && npm ci` (make test does it); without it, fail in CI, else skip."""
    if KATEX_CSS.exists() and shutil.which("node"):
        return
    skip_or_fail("KaTeX is not installed: run `cd utils && npm ci` (make test does)")


def need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    skip_or_fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (.ci/run does)")


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


# A small repository with everything the generator handles: a home readme linking to sources,
# a package docstring, a paper folder with __init__, readme, a module with math and classes,
# a folder without __init__.py, and links between pages.
FIXTURE = {
    "readme.md": """
        ---
        title: Fixture home
        summary: The fixture's home page.
        ---
        # Fixture home

        Read [the paper folder](labml_nn/paper/readme.md), its [attention](labml_nn/paper/attention.py)
        and [the package](labml_nn/__init__.py). Costs $5 and $10, and $\\alpha + \\beta$.
        """,
    "labml_nn/__init__.py": '''
        r"""
        ---
        title: Fixture package
        summary: A package for the site tests.
        ---

        # Fixture package

        See [the paper](paper/index.html) and [its attention](paper/attention.html#Attention.forward).
        """
        ''',
    "labml_nn/paper/__init__.py": '''
        r"""
        ---
        title: A paper
        summary: The paper folder's summary.
        ---

        # A paper

        The model in one equation: $y = \\operatorname{softmax}(x)$.
        """
        ''',
    "labml_nn/paper/readme.md": """
        # The paper's readme

        Go to [attention](attention.py) or [the index](index.html).

        ![A picture](pictures/plot.png)
        """,
    "labml_nn/paper/pictures/plot.png": "not really a png",
    "labml_nn/paper/attention.py": '''
        r"""
        ---
        title: Fixture attention
        summary: Attention with $\\mathbf{A}^{rel}_{i,j}$ in its summary.
        ---

        # Fixture attention

        $$\\mathbf{A}^{rel}_{i,j} = \\underbrace{q_i^\\top k_j}_{(a)} + \\underbrace{u^\\top k_j}_{(c)}$$

        | symbol | meaning | code |
        |---|---|---|
        | $q_i$ | query | `q` |

        ## Shapes

        Everything is `[batch_size, seq_len, d_model]`.
        """

        import math


        def helper(x):
            r"""Scale by $\\frac{1}{\\sqrt{d}}$."""
            return x / math.sqrt(2)


        # Attention: the class that carries the scores.
        class Attention:
            r"""
            Computes $\\operatorname{softmax}\\big(\\frac{q k^\\top}{\\sqrt{d}}\\big)$.
            """

            def __init__(self, d: int):
                # $d$, the width of a head
                self.d = d

            def forward(self, q, k):
                """Scores of queries against keys (see [the readme](readme.md))."""
                scores = q @ k  # the scores
                return scores
        ''',
    "labml_nn/loose/thing.py": '''
        r"""
        ---
        title: A loose module
        summary: It lives in a folder without `__init__.py`.
        ---
        """
        VALUE = 1
        ''',
}


def fixture_repo(root: Path, extra: dict[str, str] | None = None) -> Path:
    return write(root, {**FIXTURE, **(extra or {})})


def built_fixture_site(tmp_path_factory, extra: dict[str, str]) -> Path:
    """The fixture repository with `extra` files, built (without test results) into a fresh folder."""
    from utils.build import build
    need_katex()
    root = fixture_repo(tmp_path_factory.mktemp("repo"), extra)
    out = tmp_path_factory.mktemp("site") / "docs"
    build(root, out, results=False)
    return out


# A module with a notation table and prose that uses every kind of occurrence, a test file that
# declares pages in every supported way, for the notation, "checked by" and browser tests.
NOTATION = {
    "labml_nn/paper/notation.py": '''
        r"""
        ---
        title: Fixture notation
        summary: Symbols that link to code.
        ---

        # Fixture notation

        The score is $$s = q_i^\\top k_j + \\hat{x} + x'$$ and the output $o = W_o\\,x$.

        | symbol | meaning | code | shape |
        |---|---|---|---|
        | $q_i$ | query | `q` | `[batch_size, dim]` |
        | $k_j$, $W_o$ | key, output projection | `k`, `self.w_o` | |
        | $x$, $x'$ | input and output | `x`, `out` | |
        | $\\hat{x}$ | the normalised input | `x_hat` | |
        | | the memory | `memory.mem[0]` | |

        Inline `q` and `x` in the prose are the same names; `qq` is not.

        ```python
        example = q + k
        print(example)
        ```
        """


        # The scores $q_i^\\top k_j$ of one query.
        def scores(q, k):
            return q @ k


        class Layer:
            """A layer that maps $x$ to $x'$."""

            def __init__(self):
                self.w_o = 1
                self.mem = []

            def forward(self, x, memory):
                r"""Normalise: $\\hat{x}$ from $x$, then $x' = W_o \\hat{x}$ (plus $x$)."""
                x_hat = x / 2
                out = x_hat * self.w_o + len(memory.mem) + x
                return out
        ''',
    "tests/test_paper.py": '''
        """Tests of the fixture's pages."""
        import pytest

        pytestmark = [pytest.mark.checks("labml_nn/paper/notation.py"), pytest.mark.filterwarnings("ignore")]


        def test_scores_are_dot_products():
            pass


        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_layer_maps_x_to_x_prime(n):
            pass


        @pytest.mark.checks("labml_nn/paper/attention.py")
        class TestAttentionScores:
            def test_match_the_paper(self):
                pass

            def test_are_causal(self):
                pass


        @pytest.mark.checks("labml_nn/paper/readme.md", "readme.md")
        def test_readme_links_resolve():
            pass
        ''',
}

# Outcomes of a run of tests/test_paper.py (test_readme_links_resolve did not run).
OUTCOMES = {
    "tests/test_paper.py::test_scores_are_dot_products": "passed",
    "tests/test_paper.py::test_layer_maps_x_to_x_prime[1]": "passed",
    "tests/test_paper.py::test_layer_maps_x_to_x_prime[2]": "passed",
    "tests/test_paper.py::test_layer_maps_x_to_x_prime[3]": "failed",
    "tests/test_paper.py::TestAttentionScores::test_match_the_paper": "passed",
    "tests/test_paper.py::TestAttentionScores::test_are_causal": "skipped",
}


def write_results(path: Path, commit: str | None = "0123456789abcdef0123456789abcdef01234567",
                  outcomes: dict[str, str] | None = None, dirty: bool = False,
                  date: str = "2026-11-30 12:00 UTC") -> Path:
    """A results file as tests/conftest.py writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "date": date, "commit": commit, "dirty": dirty,
                                "tests": OUTCOMES if outcomes is None else outcomes}), encoding="utf-8")
    return path


# -- reading built pages -----------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    """An element of a parsed page: its tag, attributes, children (nodes and strings) and line."""

    def __init__(self, tag: str, attrs: dict[str, str], line: int, parent: "Node | None" = None):
        self.tag, self.attrs, self.line, self.parent = tag, attrs, line, parent
        self.children: list = []

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def text(self) -> str:
        """The text content, as a browser's `textContent` gives it."""
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str | bool) -> list["Node"]:
        """Descendants by tag, class and attributes (`data_var="q"` is `data-var="q"`; True: present)."""
        found = []
        for n in self.iter():
            if (tag is None or n.tag == tag) and (cls is None or cls in n.classes) and all(
                    (name.replace("_", "-") in n.attrs) if want is True else n.attrs.get(name.replace("_", "-")) == want
                    for name, want in attrs.items()):
                found.append(n)
        return found

    def one(self, tag: str | None = None, cls: str | None = None, **attrs) -> "Node":
        found = self.all(tag, cls, **attrs)
        assert len(found) == 1, f"{len(found)} elements match {tag} .{cls} {attrs}"
        return found[0]

    def ancestor(self, tag: str | None = None, cls: str | None = None) -> "Node | None":
        node = self.parent
        while node is not None and not ((tag is None or node.tag == tag) and (cls is None or cls in node.classes)):
            node = node.parent
        return node


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.open = Node("#document", {}, 1)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.getpos()[0], self.open)
        self.open.children.append(node)
        if tag not in VOID:
            self.open = node

    def handle_startendtag(self, tag, attrs):
        self.open.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.getpos()[0], self.open))

    def handle_endtag(self, tag):
        node = self.open
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:  # an end tag with no open element is ignored
            self.open = node.parent

    def handle_data(self, data):
        self.open.children.append(data)


def parse_html(text: str) -> Node:
    builder = _Builder()
    builder.feed(text)
    builder.close()
    return builder.root


def read_page(site: Path, name: str) -> Node:
    """A built page of `site`, parsed."""
    return parse_html((site / name).read_text(encoding="utf-8"))


def build_fails(tmp_path, extra: dict[str, str]):
    """The `SiteError` a build of the fixture repository with `extra` files raises."""
    from utils.build import build
    from utils.errors import SiteError
    need_katex()
    root = fixture_repo(tmp_path / "repo", extra)
    with pytest.raises(SiteError) as e:
        build(root, tmp_path / "out")
    return e.value
