"""Build the annotated site: `python -m utils.build --out docs [--root REPO]`.

The pipeline: find the pages (`pages.py`), read them (`read.py`: split modules into sections,
parse their prose), typeset every formula in one KaTeX process while the code is highlighted,
write the pages and static files (`write.py`), then check every link (`check.py`). The features
are passes (`pages.Pass`) run at fixed points of it: report figures and includes (`reports.py`),
notation linked to code (`notation.py`), one notation for the site (`site_notation.py`), "Checked
by" (`checked_by.py`), breadcrumbs, listings and the pager (`navigation.py`), search
(`search.py`). A problem of the sources fails the build with `file:line: message`; warnings are
printed and the build goes on.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .check import check_site
from .checked_by import DEFAULT_RESULTS, CheckedBy
from .errors import SiteError, fail
from .katex import Typesetting
from .markdown import Markdown
from .navigation import Navigation
from .notation import Notation
from .pages import Site
from .read import Reader
from .reports import Reports
from .search import Search
from .site_notation import SiteNotation
from .write import Writer, highlight, prepare_out


def build(root: Path, out: Path, check: bool = True, results: Path | None | bool = None) -> dict:
    """Build the site of the repository at `root` into `out`; returns a few numbers and the warnings.

    `results` is the test results file (`tests/conftest.py` writes it): None reads
    `.test-results/results.json` of the repository when it exists, False reads none."""
    started = time.perf_counter()
    markdown = Markdown()
    checked_by = CheckedBy(root, results)
    passes = [Reports(root, markdown), Notation(), SiteNotation(), checked_by, Navigation(), Search()]
    site = Site(root).discover()
    Reader(site, markdown, passes).read()
    for p in passes:
        p.read(site)
    fail([problem for p in passes for problem in p.problems])
    formulas = [f for page in site.pages for p in page.blocks() + [page.summary_md] if p for f in p.formulas]
    typesetting = Typesetting(formulas)
    code = highlight(site)  # while KaTeX runs
    markdown.math_html = typesetting.result()
    prepare_out(out)
    Writer(site, markdown, code, passes).write(out)
    for p in passes:
        p.write(site, out)
    if check:
        check_site(out, site.link_origins)
    return {"pages": len(site.pages), "formulas": len(formulas), "seconds": round(time.perf_counter() - started, 2),
            "unchecked": checked_by.unchecked(site), "warnings": [w for p in passes for w in p.warnings]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", type=Path, help="output folder (default: docs)")
    parser.add_argument("--root", default=Path(__file__).resolve().parents[1], type=Path, help="repository root")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the link check (for drafts only: `make site` always checks)")
    parser.add_argument("--test-results", type=Path, default=None, metavar="PATH",
                        help=f"test results to show under 'Checked by' (default: {DEFAULT_RESULTS} of "
                             "the repository, when it exists)")
    parser.add_argument("--no-test-results", action="store_true", help="show the tests without results")
    args = parser.parse_args(argv)
    try:
        stats = build(args.root.resolve(), args.out.resolve(), check=not args.no_check,
                      results=False if args.no_test_results else args.test_results)
    except SiteError as e:
        print(f"site build failed: {e}", file=sys.stderr)
        return 1
    warnings = sorted(set(stats["warnings"]))
    if warnings:
        print(f"{len(warnings)} warnings:" + "".join(f"\n{p}:{n}: {m}" for p, n, m in warnings), file=sys.stderr)
    print(f"built {stats['pages']} pages, {stats['formulas']} formulas, into {args.out} in {stats['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
