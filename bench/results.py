r"""
---
title: Results: bits per character of the memory transformers on Tiny Shakespeare
summary: Trains Transformer-XL, the Compressive and the Feedback Transformer, a no-memory baseline of the same size and labml-nn 0.5.1's Transformer-XL with one loop, one data pipeline and one budget, over several seeds, and tabulates validation bits per character with their spread.
---

# Results

```bash
make results                                          # = python -m bench.results: the quick budget, 3 seeds
python -m bench.results --budget long                 # 15 minutes of training per model (about an hour)
python -m bench.results --models xl baseline --seeds 0  # a subset
```

Every row is runs of the project's own training loop (`labml_nn/experiments/trainer.py`) on the
same contiguous streams (`labml_nn/experiments/data.py`) of Tiny Shakespeare, with the same width,
depth, heads, batch, segment length, optimiser and schedule; only the model and the seed differ, and
each run has its own process, one at a time. Two budgets:

* **quick**: each model trained for `--steps` steps of `batch_size` $\times$ `seq_len` characters
  (**equal tokens**: what each architecture makes of the same data) and for `--time-budget` seconds
  (**equal wall-clock**: what each makes of the same compute; the schedule follows the clock, so every
  run finishes its decay), each over `--seeds`. Small enough for a check after every change.
* **long**: `--long-budget` seconds of training per model (15 minutes by default), where the models
  have learned; its checkpoints are kept in `checkpoints/results-long/` for the pictures.

Every row reports the mean and the standard deviation over its seeds (each seed's value is in the
JSON), the seconds and steps measured and the machine's load during its runs. A claim in the
"Checks" list is decided on the means: it holds, or fails, only when the difference is larger than
twice its standard error ($\sqrt{s_a^2 / n_a + s_b^2 / n_b}$); a smaller difference is reported as
**not resolved**. Validation is bits per character over the same held-out windows, carrying memory
across them. The no-memory baseline is Transformer-XL with `mem_len` $= 0$: the same parameters,
attending only within its segment. The reference row is [labml-nn](https://pypi.org/project/labml-nn/)
0.5.1's Transformer-XL layers behind a thin wrapper that follows this project's model contract,
trained by the same loop; `make bench` installs that release into `.venv-bench/peers`.

Each row lists the command that reproduces one of its runs (the others differ in `--seed`). The
equal-token rows are deterministic for a given seed and thread count; the wall-clock rows move with
the machine's load, which the report records.
"""

import argparse
import json
import math
import os
import shlex
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import nn

from labml_nn.transformers.hub import Pretrained

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "reports"


# ## The reference: labml-nn 0.5.1's Transformer-XL behind our model contract

class ReferenceXL(nn.Module, Pretrained):
    """labml-nn 0.5.1's `TransformerXL` layers with an embedding and an output layer, taking
    `[batch_size, seq_len]` token ids and returning `[batch_size, seq_len, num_tokens]` logits, like
    every model in this project.

    The release is sequence-first (`[seq_len, batch_size, dim]`) and leaves the memory to its caller:
    it returns each layer's input, which we append to the old memory and cut to the newest `mem_len`
    positions, as its own experiment does. Its heads have width `dim / heads`. (`Pretrained` gives it the
    trainer's checkpoint format; it is not one of the package's models, so nothing loads it by name.)
    """

    def __init__(self, *, num_tokens: int, dim: int, depth: int, heads: int, dim_head: int, mem_len: int,
                 attn_dropout: float = 0.0, ff_dropout: float = 0.0, ff_mult: int = 4):
        super().__init__()
        from bench.common import import_labml_nn_release
        release_dir()
        if heads * dim_head != dim:
            raise ValueError(f"labml-nn 0.5.1 uses heads of width dim / heads: need heads * dim_head == dim, "
                             f"got {heads} * {dim_head} != {dim}")
        mods = import_labml_nn_release("labml_nn.transformers.xl", "labml_nn.transformers.feed_forward",
                                       "labml_nn.transformers.xl.relative_mha", "labml_nn.transformers.utils")
        xl, ff = mods["labml_nn.transformers.xl"], mods["labml_nn.transformers.feed_forward"]
        relative = mods["labml_nn.transformers.xl.relative_mha"]
        self.subsequent_mask = mods["labml_nn.transformers.utils"].subsequent_mask
        layer = xl.TransformerXLLayer(d_model=dim, self_attn=relative.RelativeMultiHeadAttention(heads, dim, attn_dropout),
                                      # GELU, like ours (the release's default is ReLU)
                                      feed_forward=ff.FeedForward(dim, ff_mult * dim, ff_dropout, activation=nn.GELU()),
                                      dropout_prob=ff_dropout)
        self.mem_len = mem_len
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.transformer = xl.TransformerXL(layer, depth)
        self.to_logits = nn.Linear(dim, num_tokens)

    def forward(self, x: torch.Tensor, memory: Optional[List[torch.Tensor]] = None, return_memory: bool = False):
        # `[seq_len, batch_size, dim]`, the release's layout.
        h = self.token_emb(x.t())
        memory = memory or []
        seq_len, past = x.shape[1], (memory[0].shape[0] if memory else 0)
        # `mask[i, j]` is true where position i may attend to j: all of the memory, and the segment up to i.
        mask = self.subsequent_mask(seq_len).to(x.device)
        if past:
            mask = torch.cat([mask.new_ones(seq_len, past, 1), mask], dim=1)
        out, layer_inputs = self.transformer(h, memory, mask)
        logits = self.to_logits(out).transpose(0, 1)
        if not return_memory:
            return logits
        if memory:
            layer_inputs = [torch.cat([m, n], dim=0) for m, n in zip(memory, layer_inputs)]
        new_memory = [n[-self.mem_len:].detach() for n in layer_inputs] if self.mem_len > 0 else []
        return logits, new_memory

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, length: int, temperature: float = 1.0, top_k: Optional[int] = None):
        """Run the prompt, then one token at a time with the memory (the release has no cache)."""
        out, tokens, memory = [prompt], prompt, None
        for _ in range(length):
            logits, memory = self(tokens, memory=memory, return_memory=True)
            logits = logits[:, -1] / temperature
            if top_k:
                logits = logits.masked_fill(logits < logits.topk(top_k).values[:, -1:], float("-inf"))
            tokens = torch.multinomial(torch.softmax(logits, dim=-1), 1)
            out.append(tokens)
        return torch.cat(out, dim=1)


def reference_kwargs(c, num_tokens: int) -> dict:
    return dict(num_tokens=num_tokens, dim=c.dim, depth=c.depth, heads=c.heads, dim_head=c.dim_head,
                mem_len=c.mem_len, attn_dropout=c.attn_dropout, ff_dropout=c.ff_dropout)


def release_dir() -> Path:
    """Where labml-nn 0.5.1 is installed (`bench.common.LABML_NN_RELEASE_DIR`: `make bench` puts it in
    `.venv-bench/peers`; the environment variable `LABML_NN_RELEASE_DIR` points elsewhere)."""
    import bench.common
    return bench.common.LABML_NN_RELEASE_DIR


def reference_installed() -> bool:
    return (release_dir() / "labml_nn").is_dir()


def train_reference(argv: List[str]) -> dict:
    """`python -m bench.results --reference [options of the Transformer-XL experiment]`."""
    from labml_nn.experiments.trainer import Experiment, run_experiment
    from labml_nn.transformers.xl.experiment import Config
    return run_experiment(Experiment(Config, ReferenceXL, reference_kwargs), argv)


# ## The rows

@dataclass
class Row:
    """One model: the module that trains it and the options that make it this model."""
    key: str
    label: str
    module: List[str]
    options: List[str]
    memory: str


def rows(seq_len: int) -> List[Row]:
    xl = ["-m", "labml_nn.transformers.xl.experiment"]
    return [
        Row("xl", "Transformer-XL (ours)", xl, ["--mem-len", "32"], "32 states / layer"),
        Row("baseline", "No memory (Transformer-XL, mem_len 0)", xl, ["--mem-len", "0"], "none"),
        Row("compressive", "Compressive Transformer (ours)", ["-m", "labml_nn.transformers.compressive.experiment"],
            ["--mem-len", "32", "--cmem-len", "16", "--compression-rate", "4"], "32 states + 16 compressed (×4) / layer"),
        Row("feedback", "Feedback Transformer (ours)", ["-m", "labml_nn.transformers.feedback.experiment"],
            ["--mem-len", "32", "--curriculum-steps", "0"], "32 shared states"),
        Row("reference", "labml-nn 0.5.1 Transformer-XL", ["-m", "bench.results", "--reference"],
            ["--mem-len", "32"], "32 states / layer"),
    ]


def shared_options(args: argparse.Namespace, seed: int) -> List[str]:
    """The options every row shares: size, data shape, evaluation, and no periodic extras."""
    return ["--no-labml", "--seed", str(seed), "--threads", str(args.threads),
            "--dim", "128", "--depth", "4", "--heads", "4", "--dim-head", "32",
            "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
            "--valid-interval", "0", "--sample-interval", "0", "--checkpoint-interval", "0",
            "--valid-windows", str(args.valid_windows), "--sample-length", "100"]


def budget_options(regime: str, args: argparse.Namespace) -> List[str]:
    if regime == "tokens":
        return ["--steps", str(args.steps)]
    seconds = args.time_budget if regime == "clock" else args.long_budget
    return ["--steps", "1000000", "--time-budget", str(seconds)]


def run_row(row: Row, regime: str, seed: int, args: argparse.Namespace, scratch: Path,
            extra: Optional[List[str]] = None, keep: Optional[Path] = None) -> dict:
    """Train one row with one seed in a fresh process; return its summary, the machine's load while it
    ran, and the command that reproduces it. `extra` options are passed on but not shown (an export path)."""
    name = f"bench-{row.key}-{regime}-{seed}"
    command = [*row.module, *shared_options(args, seed), *row.options, *budget_options(regime, args),
               "--name", name, "--checkpoint-dir", "checkpoints"]
    shown = "python " + " ".join(shlex.quote(c) for c in command)
    if row.key == "reference" and not reference_installed():
        return dict(row=row.key, regime=regime, seed=seed, error=f"labml-nn 0.5.1 is not installed in "
                                                                 f"{release_dir()} (`make bench` installs it)",
                    command=shown)
    # The long runs keep their checkpoints, for the pictures (as do runs given a `keep` directory); the others'
    # go to a scratch directory (where they go does not change the numbers).
    checkpoints = keep or ((REPO / "checkpoints" / "results-long") if regime == "long" else (scratch / "checkpoints"))
    summary_path = scratch / f"{name}.json"
    shutil.rmtree(checkpoints / name, ignore_errors=True)
    started, load_before = time.time(), os.getloadavg()[0]
    result = subprocess.run([sys.executable, *command[:-1], str(checkpoints), "--summary", str(summary_path),
                             *(extra or [])], cwd=REPO, capture_output=True, text=True)
    load = (load_before + os.getloadavg()[0]) / 2
    print(f"  {row.label:<40} {regime:<6} seed {seed}  {time.time() - started:6.0f} s  load {load:.1f}", flush=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return dict(row=row.key, regime=regime, seed=seed, error=" / ".join(tail), command=shown)
    summary = json.loads(summary_path.read_text())
    return dict(row=row.key, regime=regime, seed=seed, command=shown, load=round(load, 2), **summary)


# ## Aggregating over seeds

@dataclass
class Spread:
    """The runs of one row and regime: their values of bits per character, and what they measured."""
    values: List[float]
    steps: List[int]
    seconds: List[float]
    loads: List[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def shown(self) -> str:
        return f"**{self.mean:.3f}** ± {self.std:.3f}" if len(self.values) > 1 else f"**{self.mean:.3f}**"


def spreads(results: List[dict]) -> Dict[tuple, Spread]:
    """`(row, regime)` → the spread of its finished runs."""
    out: Dict[tuple, Spread] = {}
    for r in results:
        if "error" in r:
            continue
        s = out.setdefault((r["row"], r["regime"]), Spread([], [], [], []))
        s.values.append(r["valid_bpc"])
        s.steps.append(r["step"])
        s.seconds.append(r["train_seconds"])
        s.loads.append(r.get("load", float("nan")))
    return out


def compare(a: Spread, b: Spread, margin: float = 0.0) -> tuple:
    r"""
    Is `a` lower than `b` (plus `margin`)? `("holds" | "fails" | "not resolved", difference, its standard
    error)`: decided only when the difference of the means exceeds twice its standard error, and never
    on one seed each.
    """
    difference = b.mean + margin - a.mean
    se = math.sqrt(a.std ** 2 / len(a.values) + b.std ** 2 / len(b.values))
    if len(a.values) < 2 or len(b.values) < 2 or abs(difference) <= 2 * se:
        return "not resolved", difference, se
    return ("holds" if difference > 0 else "fails"), difference, se


# ## The report

def table(results: List[dict], regime: str, labels: Dict[str, Row]) -> List[str]:
    lines = ["| model | valid bpc (mean ± sd) | memory | parameters | seeds | steps | characters | training s | load | "
             "command (seed 0) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    by_row: Dict[str, List[dict]] = {}
    for r in (r for r in results if r["regime"] == regime):
        by_row.setdefault(r["row"], []).append(r)
    for key, runs in by_row.items():
        row, done = labels[key], [r for r in runs if "error" not in r]
        if not done:
            lines.append(f"| {row.label} | not run: {runs[0]['error']} | {row.memory} | | | | | | | `{runs[0]['command']}` |")
            continue
        s = spreads(done)[(key, regime)]
        steps = f"{min(s.steps):,}" if min(s.steps) == max(s.steps) else f"{min(s.steps):,}–{max(s.steps):,}"
        characters = [r["tokens"] for r in done]
        chars = f"{min(characters):,}" if min(characters) == max(characters) else f"{min(characters):,}–{max(characters):,}"
        lines.append(f"| {row.label} | {s.shown()} | {row.memory} | {done[0]['parameters']:,} | {len(done)} | {steps} | "
                     f"{chars} | {statistics.fmean(s.seconds):.0f} | {statistics.fmean(s.loads):.1f} | "
                     f"`{done[0]['command']}` |")
    return lines


NAMES = {"xl": "Transformer-XL", "compressive": "the Compressive Transformer", "feedback": "the Feedback Transformer",
         "baseline": "the no-memory baseline", "reference": "labml-nn 0.5.1's Transformer-XL"}


def capital(text: str) -> str:
    return text[0].upper() + text[1:]


def decided_checks(results: List[dict], regimes: List[str]) -> List[tuple]:
    """The claims the results are read for, `(key, claim, verdict, difference, standard error)`, each
    decided on the means (`compare`)."""
    s = spreads(results)
    claims = []
    for regime in regimes:
        what = {"tokens": "at equal tokens", "clock": "at equal wall-clock", "long": "in the long budget"}[regime]
        for model in ["xl", "compressive", "feedback"]:
            if (model, regime) in s and ("baseline", regime) in s:
                claims.append((f"{model}_vs_baseline_{regime}", f"{capital(NAMES[model])} beats the no-memory baseline {what}",
                               s[(model, regime)], s[("baseline", regime)]))
        if ("reference", regime) in s and ("xl", regime) in s:
            claims.append((f"xl_vs_reference_{regime}", f"Our Transformer-XL beats labml-nn 0.5.1's {what}",
                           s[("xl", regime)], s[("reference", regime)]))
    return [(key, claim, *compare(a, b)) for key, claim, a, b in claims]


def checks(results: List[dict], regimes: List[str]) -> List[str]:
    """The "Checks" list of the report: each claim with its verdict, difference and standard error."""
    lines = []
    for _, claim, verdict, difference, se in decided_checks(results, regimes):
        mark = {"holds": "✅", "fails": "❌", "not resolved": "➖"}[verdict]
        spread = f"standard error {se:.3f}" if se > 0 else "one seed of each: no spread to compare it with"
        lines.append(f"- {mark} {claim}: {verdict} (difference {difference:+.3f} bpc, {spread})")
    return lines


def orderings(results: List[dict]) -> List[str]:
    """Where the equal-wall-clock ordering of two models differs from the equal-token one, why: step cost."""
    s = spreads(results)
    notes = []
    keys = sorted({k for k, regime in s if regime == "tokens" and (k, "clock") in s})
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            tokens_order = s[(a, "tokens")].mean < s[(b, "tokens")].mean
            clock_order = s[(a, "clock")].mean < s[(b, "clock")].mean
            if tokens_order != clock_order:
                rate = {k: statistics.fmean(x / y for x, y in zip(s[(k, "clock")].steps, s[(k, "clock")].seconds))
                        for k in (a, b)}
                better, worse = (a, b) if tokens_order else (b, a)
                notes.append(f"- {capital(NAMES[better])} is better than {NAMES[worse]} at equal tokens but not at "
                             f"equal wall-clock: it trains {rate[better]:.1f} steps per second against "
                             f"{rate[worse]:.1f}, so in "
                             f"the same seconds it sees {rate[worse] / rate[better]:.2f}× fewer tokens.")
    return notes or ["- The equal-wall-clock ordering is the equal-token ordering."]


def write_report(results: List[dict], args: argparse.Namespace, out_dir: Path,
                 measured: Optional[dict] = None) -> Path:
    """Write `results.md`/`results-long.md` and its JSON; `measured` (a report's meta) keeps the machine and
    date of runs written again (`--rewrite`)."""
    from bench.common import machine
    labels = {r.key: r for r in rows(args.seq_len)}
    long = args.budget == "long"
    measured = measured or dict(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    meta = dict(machine=measured["machine"], date=measured["date"], budget=args.budget,
                steps=args.steps, time_budget=args.time_budget, long_budget=args.long_budget,
                batch_size=args.batch_size, seq_len=args.seq_len, valid_windows=args.valid_windows, seeds=args.seeds)
    s = spreads(results)
    figures = {f"{row}_{regime}_bpc": (f"{spread.mean:.3f} ± {spread.std:.3f}" if len(spread.values) > 1
                                       else f"{spread.mean:.3f}") for (row, regime), spread in s.items()}
    # Each check's verdict ("holds", "fails", "not resolved") and its difference, for the pages' prose.
    for key, _, verdict, difference, se in decided_checks(results, ["long"] if long else ["tokens", "clock"]):
        figures[f"check_{key}"] = verdict
        figures[f"check_{key}_difference"] = (f"{difference:+.3f} ± {se:.3f}" if se > 0 else
                                              f"{difference:+.3f}, one seed of each")
    figures["seeds"] = str(len(args.seeds))
    # Rows may have different numbers of seeds (a second seed added to some rows with --add).
    figures.update({f"{row}_{regime}_seeds": str(len(spread.values)) for (row, regime), spread in s.items()})
    head = (f"Measured {meta['date']} on {meta['machine']}; each run uses {args.threads} torch thread(s) in its own "
            f"process, one run at a time; 'load' is the machine's 1-minute load average during a row's runs (a 2-core "
            f"machine: above 1, other work shares the cores and slows the wall-clock rows). Width 128, 4 layers, 4 heads "
            f"of 32, batch {args.batch_size} × {args.seq_len} characters, AdamW with warm-up and cosine decay; "
            f"validation over {args.valid_windows} segments per stream "
            f"({args.valid_windows * args.batch_size * args.seq_len:,} characters). Seeds: "
            f"{', '.join(map(str, args.seeds))}. Lower is better.")
    if long:
        lines = ["### Validation bits per character on Tiny Shakespeare: the long budget", "", head, "",
                 f"#### {args.long_budget / 60:.0f} minutes of training each", "", *table(results, "long", labels), "",
                 "#### Checks", "", *checks(results, ["long"]), "",
                 "With one seed a difference cannot be told from seed noise: such checks read 'not resolved'. "
                 f"Reproduce with `python -m bench.results --budget long --seeds {' '.join(map(str, args.seeds))}`.", ""]
        name = "results-long"
    else:
        lines = ["### Validation bits per character on Tiny Shakespeare: the quick budget", "", head, "",
                 f"#### Equal tokens ({args.steps} steps)", "", *table(results, "tokens", labels), "",
                 f"#### Equal wall-clock ({args.time_budget:.0f} s of training each)", "",
                 *table(results, "clock", labels), "",
                 "labml-nn 0.5.1's relative attention learns an embedding for each of 2 × 4,096 distances in "
                 "every layer; those make up most of its parameter count, and a segment uses only the "
                 "distances it spans; its feed-forward is given GELU, like ours (its default is ReLU). The no-memory "
                 "baseline is Transformer-XL with `--mem-len 0`.", "",
                 "#### Checks", "", *checks(results, ["tokens", "clock"]), "",
                 "#### Equal tokens against equal wall-clock", "", *orderings(results), "",
                 "Reproduce everything with `make results` (`python -m bench.results --steps "
                 f"{args.steps} --time-budget {args.time_budget:g} --seeds {' '.join(map(str, args.seeds))}`).", ""]
        name = "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.md").write_text("\n".join(lines))
    (out_dir / f"{name}.json").write_text(json.dumps(dict(meta=meta, results=results, figures=figures), indent=2))
    return out_dir / f"{name}.md"


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--reference"]:
        train_reference(argv[1:])
        return
    parser = argparse.ArgumentParser(description="Train every model under the same budgets and tabulate "
                                                 "validation bits per character over seeds.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--budget", default="quick", choices=["quick", "long"],
                        help="quick: equal tokens and equal wall-clock, several seeds; long: --long-budget seconds each")
    parser.add_argument("--steps", type=int, default=800, help="steps of the equal-tokens runs")
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds of training of the equal-wall-clock runs")
    parser.add_argument("--long-budget", type=float, default=900.0, help="seconds of training of each long run")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds of every row (default: 0 1 2 for the quick budget, 0 for the long one)")
    parser.add_argument("--models", nargs="+", default=None,
                        choices=["xl", "baseline", "compressive", "feedback", "reference"],
                        help="rows to run (default: all; the long budget leaves out the reference)")
    parser.add_argument("--regimes", nargs="+", default=["tokens", "clock"], choices=["tokens", "clock"],
                        help="the quick budget's regimes to run")
    parser.add_argument("--batch-size", type=int, default=8, help="streams per batch")
    parser.add_argument("--seq-len", type=int, default=32, help="characters per segment")
    parser.add_argument("--valid-windows", type=int, default=100, help="validation segments per stream")
    # One thread: on a shared 2-core machine, a process with two threads that contends with other work
    # waits on its own threads far longer than it gains from them (we measured 0.1 s against 8 s a step).
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of every run")
    parser.add_argument("--out", default=str(OUT_DIR), help="directory for the reports")
    parser.add_argument("--add", action="store_true",
                        help="keep the runs of the existing report of this budget and add (or replace) these "
                             "seeds' runs, e.g. a second seed of the long budget run later")
    parser.add_argument("--rewrite", action="store_true",
                        help="train nothing: write the report of this budget again from its JSON (a new report format)")
    args = parser.parse_args(argv)
    long = args.budget == "long"
    args.seeds = args.seeds or ([0] if long else [0, 1, 2])
    args.models = args.models or (["xl", "baseline", "compressive", "feedback"] if long else
                                  ["xl", "baseline", "compressive", "feedback", "reference"])
    regimes = ["long"] if long else args.regimes
    report_json = Path(args.out) / ("results-long.json" if long else "results.json")
    if args.rewrite or args.add:
        if not report_json.is_file():
            sys.exit(f"bench.results: --{'rewrite' if args.rewrite else 'add'} needs the report {report_json}, "
                     f"which does not exist")
        report = json.loads(report_json.read_text())
        previous, settings = report["results"], ("steps", "time_budget", "long_budget", "batch_size", "seq_len",
                                                 "valid_windows")
        for key in settings:
            if args.rewrite:
                setattr(args, key, report["meta"].get(key, getattr(args, key)))
            elif key in report["meta"] and report["meta"][key] != getattr(args, key):
                sys.exit(f"bench.results: --add needs the options of {report_json}: it has --{key.replace('_', '-')} "
                         f"{report['meta'][key]}, this run {getattr(args, key)}")
        if args.rewrite:
            args.seeds = sorted({r["seed"] for r in previous})
            path = write_report(previous, args, Path(args.out), measured=report["meta"])
            print(path.read_text())
            return

    # The parent only reports; this makes the thread count it reports the one every run uses.
    torch.set_num_threads(args.threads)
    # Every run needs the data: find it (or download it) once, here, so that a missing file stops the
    # benchmark before it replaces a report with rows that did not run.
    from labml_nn.experiments.data import DataError, load_text
    try:
        load_text()
    except DataError as error:
        sys.exit(f"bench.results: {error}")
    selected = [r for r in rows(args.seq_len) if r.key in args.models]
    if "reference" in args.models and not reference_installed():
        print(f"labml-nn 0.5.1 is not installed in {release_dir()}: its row is left out "
              f"(`make bench` installs it).", flush=True)
    results = []
    print(f"Training {len(selected)} models × {len(regimes)} budgets × {len(args.seeds)} seeds", flush=True)
    with tempfile.TemporaryDirectory(prefix="labml_nn_results_") as scratch:
        for regime in regimes:
            for row in selected:
                for seed in args.seeds:
                    results.append(run_row(row, regime, seed, args, Path(scratch)))
    if not any("error" not in r for r in results):
        sys.exit("bench.results: no run finished; the reports were left as they were")
    if args.add:
        done = {(r["row"], r["regime"], r["seed"]) for r in results}
        results = [r for r in previous if (r["row"], r["regime"], r["seed"]) not in done] + results
        args.seeds = sorted({r["seed"] for r in results})
    path = write_report(results, args, Path(args.out))
    print(path.read_text())


if __name__ == "__main__":
    main()
