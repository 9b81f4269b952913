"""Helpers shared by the site tests (tests/test_site_*.py): a small fixture repository and the
checks that decide whether KaTeX and Chromium are there. Imported by the tests, not a conftest."""
from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KATEX_CSS = REPO / "utils" / "node_modules" / "katex" / "dist" / "katex.min.css"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def need_katex() -> None:
    """KaTeX comes from `cd utils && npm ci` (make test does it); without it, fail in CI, else skip."""
    if KATEX_CSS.exists() and shutil.which("node"):
        return
    reason = "KaTeX is not installed: run `cd utils && npm ci` (make test does)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    reason = f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


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
