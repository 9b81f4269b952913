r"""
---
title: The Feedback Transformer with its authors' options, at the quick budget
summary: Learned position keys against the sinusoid form, and an adaptive span against none, each over three seeds at equal tokens.
---

# The authors' options, measured small

```bash
python -m bench.feedback_options                 # 3 seeds of each of the three rows, about 15 minutes on 2 cores
```

The authors' Feedback Transformer differs from this project's default in two options that change what
the model can learn (the [page](../labml_nn/transformers/feedback/index.html) lists them with their
parameter costs): **learned position keys** (`--position-keys learned`: one key per distance, shared by
every layer and head, in place of Transformer-XL's sinusoids through a projection in every layer) and an
**adaptive span** (`--span-ramp`, `--span-loss`: each head learns how far back it reads). Each is trained
here beside the default at the quick budget of `bench.results` (width 128, 4 layers, memory 32, 800 steps
of 8 × 32 characters, the same seeds), and compared on the means over seeds against twice the standard
error of the difference ("not resolved" otherwise).

The span's ramp is 8 keys and its loss coefficient $4 \cdot 10^{-4}$: the authors' $5 \cdot 10^{-7}$ at an
attention limit of 8,192 over 12 layers puts a pressure of about $0.05$ on a layer's mean span ratio
$z$, and $4 \cdot 10^{-4} \cdot 32 \cdot 4 \approx 0.05$ is the same pressure at memory 32 over 4 layers.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from bench.results import REPO, Row, compare, run_row, spreads

OUT_DIR = REPO / "bench" / "reports"
FEEDBACK = ["-m", "labml_nn.transformers.feedback.experiment"]
BASE = ["--mem-len", "32", "--curriculum-steps", "0"]  # the Feedback row of `bench.results`
ROWS = [
    Row("sinusoid", "sinusoid position keys (the default)", FEEDBACK, BASE, "32"),
    Row("learned", "learned position keys (the authors')", FEEDBACK, [*BASE, "--position-keys", "learned"], "32"),
    Row("span", "sinusoid keys, adaptive span (ramp 8, loss 4e-4)", FEEDBACK,
        [*BASE, "--span-ramp", "8", "--span-loss", "4e-4"], "32, spans learned"),
]
CLAIMS = [("learned_beats_sinusoid", "learned position keys beat the sinusoid form", "learned", "sinusoid"),
          ("span_beats_none", "an adaptive span beats none", "span", "sinusoid")]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="The Feedback Transformer's options at the quick budget.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=800, help="training steps of every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--valid-windows", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    args.time_budget, args.long_budget = 0.0, 0.0  # the fields `bench.results.run_row` reads
    from bench.common import machine
    results = []
    with tempfile.TemporaryDirectory(prefix="labml_nn_fbopts_") as scratch:
        for seed in args.seeds:  # seed by seed, so that a stopped run still has whole seeds of every row
            for row in ROWS:
                results.append(run_row(row, "tokens", seed, args, Path(scratch)))
    failed = [r for r in results if "error" in r]
    if failed:
        sys.exit(f"bench.feedback_options: runs failed, the report was left as it was: {failed}")
    s = {key: spread for (key, _), spread in spreads(results).items()}
    figures = {f"{key}_bpc": spread.shown().replace("**", "") for key, spread in s.items()}
    figures.update(steps=f"{args.steps:,}", seeds=str(len(args.seeds)))
    checks = []
    for key, claim, lower, other in CLAIMS:
        verdict, difference, se = compare(s[lower], s[other])
        figures[key], figures[f"{key}_difference"] = verdict, f"{difference:+.3f} ± {se:.3f}"
        checks.append((claim, verdict, difference, se))
    meta = dict(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), steps=args.steps,
                seeds=args.seeds, batch_size=args.batch_size, seq_len=args.seq_len, valid_windows=args.valid_windows,
                threads=args.threads)
    lines = ["### The Feedback Transformer's options at the quick budget", "",
             f"Measured {meta['date']} on {meta['machine']}; each run {args.steps:,} steps of {args.batch_size} × "
             f"{args.seq_len} characters with {args.threads} torch thread(s), in its own process, one at a time; "
             f"validation bits per character over {args.valid_windows} segments per stream, lower is better. Width "
             f"128, 4 layers, 4 heads of 32, memory 32; seeds {', '.join(map(str, args.seeds))}.", "",
             "| variant | valid bpc (mean ± sd) | parameters | seeds | training s | load | command (first seed) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for row in ROWS:
        runs = [r for r in results if r["row"] == row.key]
        spread = s[row.key]
        lines.append(f"| {row.label} | {spread.shown()} | {runs[0]['parameters']:,} | {len(runs)} | "
                     f"{statistics.fmean(spread.seconds):.0f} | {statistics.fmean(spread.loads):.1f} | "
                     f"`{runs[0]['command']}` |")
    lines += ["", "#### Checks", ""]
    for claim, verdict, difference, se in checks:
        mark = {"holds": "✅", "fails": "❌", "not resolved": "➖"}[verdict]
        lines.append(f"- {mark} {claim}: {verdict} (difference {difference:+.3f} bpc, standard error {se:.3f})")
    lines += ["", "Reproduce with `python -m bench.feedback_options`.", ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback_options.md").write_text("\n".join(lines))
    (out / "feedback_options.json").write_text(json.dumps(dict(meta=meta, results=results, figures=figures),
                                                          indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
