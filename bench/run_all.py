"""
`make bench`: every side-by-side benchmark, one after another, each in a fresh process, then one
summary file (`bench/reports/summary.md`), which the site's home page includes where readme.md says
`<!-- report: summary.md -->`. Nothing here edits readme.md.

`python -m bench.run_all --only xl feedback` runs a subset.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.common import RESULTS_DIR, machine

# Module name and the report it writes, in the order they run.
BENCHMARKS = [
    ("xl", "xl.md"),
    ("compressive", "compressive.md"),
    ("feedback", "feedback.md"),
    ("long_memory", "long_memory.md"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, help="names of benchmarks to run (default: all)")
    parser.add_argument("--summary-only", action="store_true", help="run nothing: rewrite summary.md from the reports")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    failed = []
    for name, _ in BENCHMARKS:
        if args.summary_only or (args.only and name not in args.only):
            continue
        print(f"=== bench.{name}", flush=True)
        start = time.time()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=root)
        print(f"=== bench.{name}: exit {code} after {time.time() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    parts = [f"Benchmarks run with `make bench` on {machine()}.", ""]
    for name, report in BENCHMARKS:
        path = RESULTS_DIR / report
        if path.exists():
            parts += [path.read_text().strip(), ""]
    (RESULTS_DIR / "summary.md").write_text("\n".join(parts))
    print(f"summary: {RESULTS_DIR / 'summary.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
