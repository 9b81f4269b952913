r"""
---
title: Results: the code-execution task, the Feedback Transformer against a Transformer twice as deep
summary: Trains the Feedback Transformer and the Transformer baseline on the Feedback paper's code-execution task with the same data, steps and training over several seeds, and tabulates their test accuracy with its spread, the accuracy of strategies that do not execute the programs, and a picture of validation accuracy against training steps.
---

# Results: the code-execution task

```bash
make results-algorithmic                        # = python -m bench.algorithmic: both models, 3 seeds
python -m bench.algorithmic --seeds 0 --steps 200   # a quick look
python -m bench.algorithmic --rewrite           # train nothing: the report and the picture again from the JSON
python -m bench.algorithmic --paper --device cuda --parallel 1 --seeds 0 1 2   # the authors' size, on a GPU
```

The Feedback paper's claim on its [code-execution task](../labml_nn/experiments/algorithmic.py): a 4-layer
Feedback Transformer predicts what the programs print, and an 8-layer Transformer, twice as deep, does not.
Each run trains one model with [the experiment](../labml_nn/transformers/feedback/algorithmic.py) in a
process of its own, two runs at a time (`--parallel`), one torch thread each; the two models get the same programs,
width, segments, memory length, optimiser, schedule and **number of steps** (the paper's protocol: the same
training), only the depth differs (4 and 8, the paper's). The budget is in steps, not seconds: the machine
is shared, and a wall-clock budget would give each run what the other work left it. The report records,
for each run, the command, the steps, the seconds of training, the CPU seconds of its process and the
machine's load while it ran, and each seed's accuracies (in the JSON).

The claim, "the Feedback Transformer's test accuracy beats the Transformer's", is decided as every claim
of the results is ([`bench.results`](results.py)): on the means over seeds, and only when the difference
is larger than twice its standard error; otherwise it is **not resolved**.

Two strategies that do not execute the program give the accuracies to read the models against: *the
last assignment* (print the value of the variable's last assignment outside a condition, ignoring every
update) and *the last
assignment and every unconditional update* (add the `++` and `--` outside conditions, ignoring the
conditions). A model above the second has learned to evaluate conditions.

The default configuration is small enough for 3 seeds of both models on a shared 2-core CPU (the
report has the seconds): programs of 30 statements (about 130 words, so that a memory of 32 reaches
about a quarter of a program, as the paper's attention limit of 100 reaches a quarter of its programs of
100 statements, about 430 words), width 64, batch 32, lr $10^{-3}$ (at $3 \cdot 10^{-3}$ neither model
trains), 1,200 steps; 100 validation programs at 6 points of the curve and 300 test programs, to keep
the evaluation, which reads the programs token by token for the Feedback Transformer, a small part of
the runs. The paper's gap needs its size and training: `--paper` runs the two presets
`feedback-algorithmic` and `xl-algorithmic` (programs of 100 statements, width 256, 4 heads, attention
limit 100, 64 tokens per step, batch 512, 50,000 steps), on the device `--device` names.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from bench.common import machine
from bench.results import OUT_DIR, REPO, Spread, compare

PICTURE = REPO / "labml_nn" / "transformers" / "feedback" / "pictures" / "algorithmic_accuracy.png"
EXPERIMENT = ["-m", "labml_nn.transformers.feedback.algorithmic"]


# ## The runs

@dataclass
class Model:
    key: str
    label: str
    depth: int


MODELS = [Model("feedback", "Feedback Transformer", 4), Model("xl", "Transformer (Transformer-XL)", 8)]
NAMES = {m.key: m for m in MODELS}


def task_options(args: argparse.Namespace) -> List[str]:
    """The configuration both models share: the task, the width, the segments and memory, the training."""
    return ["--statements", str(args.statements), "--train-programs", str(args.train_programs),
            "--valid-programs", str(args.valid_programs), "--test-programs", str(args.test_programs),
            "--dim", str(args.dim), "--heads", str(args.heads), "--dim-head", str(args.dim // args.heads),
            "--mem-len", str(args.mem_len), "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size),
            "--lr", f"{args.lr:g}", "--warmup-steps", str(args.warmup_steps), "--steps", str(args.steps),
            "--valid-interval", str(max(args.steps // args.points, 1))]


class LoadSampler:
    """The machine's 1-minute load average, sampled every `interval` seconds in a thread while runs go on;
    `mean(start, end)` is its mean over a run's interval."""

    def __init__(self, interval: float = 20.0):
        self.samples: List[tuple] = [(time.time(), os.getloadavg()[0])]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self.thread.start()

    def _sample(self, interval: float) -> None:
        while not self.stopped.wait(interval):
            self.samples.append((time.time(), os.getloadavg()[0]))

    def mean(self, start: float, end: float) -> float:
        inside = [load for at, load in self.samples if start <= at <= end] or [os.getloadavg()[0]]
        return statistics.fmean(inside)

    def stop(self) -> None:
        self.stopped.set()


# The paper's size: the authors' runs, as the experiment's presets hold them (`--paper`).
PAPER_PRESETS = {"feedback": "feedback-algorithmic", "xl": "xl-algorithmic"}
GPU_COMMAND = "python -m bench.algorithmic --paper --device cuda --parallel 1 --seeds 0 1 2"


def paper_options(args: argparse.Namespace) -> Dict[str, object]:
    """The shared options of the paper's runs (the two presets differ only in the model and its depth), with
    `--steps` where it is given."""
    from labml_nn.experiments.presets import PRESETS
    options = dict(PRESETS[PAPER_PRESETS["feedback"]].options)
    if args.steps is not None:
        options["steps"] = args.steps
    return options


def model_options(model: Model, args: argparse.Namespace) -> List[str]:
    """The experiment's options for `model`: this report's small configuration, or with `--paper` the
    authors' (the preset, and the steps and the device where given)."""
    if not args.paper:
        return ["--model", model.key, "--depth", str(model.depth), *task_options(args), "--threads", str(args.threads)]
    options = ["--preset", PAPER_PRESETS[model.key], "--device", args.device]
    if args.steps is not None:
        options += ["--steps", str(args.steps), "--valid-interval", str(max(args.steps // args.points, 1))]
    return options


def run_one(model: Model, seed: int, args: argparse.Namespace, scratch: Path, load: LoadSampler) -> dict:
    """Train one model with one seed in a fresh process; its summary, the load while it ran, its CPU seconds
    (its own, from `wait4`, whatever runs beside it), and the command that reproduces it."""
    name = f"bench-algorithmic-{model.key}-{seed}"
    command = [*EXPERIMENT, *model_options(model, args), "--seed", str(seed), "--no-labml",
               "--checkpoint-interval", "0", "--name", name]
    shown = "python " + " ".join(shlex.quote(c) for c in command)
    summary_path = scratch / f"{name}.json"
    log_path = scratch / f"{name}.log"
    started = time.time()
    with open(log_path, "w") as log:
        child = subprocess.Popen([sys.executable, *command, "--checkpoint-dir", str(scratch / "checkpoints"),
                                  "--summary", str(summary_path)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - started
    cpu = usage.ru_utime + usage.ru_stime
    mean_load = load.mean(started, time.time())
    print(f"  {model.label:<30} seed {seed}  {wall:6.0f} s  cpu {cpu:6.0f} s  load {mean_load:.1f}", flush=True)
    if returncode != 0:
        tail = log_path.read_text().strip().splitlines()[-3:]
        return dict(row=model.key, seed=seed, error=" / ".join(tail), command=shown)
    summary = json.loads(summary_path.read_text())
    return dict(row=model.key, seed=seed, command=shown, load=round(mean_load, 2), cpu_seconds=round(cpu, 1),
                wall_seconds=round(wall, 1), **summary)


def run_all(args: argparse.Namespace, scratch: Path) -> List[dict]:
    """Every (model, seed), `args.parallel` at a time, the slower model's runs first (so that the last
    ones to start are the short ones); the results in (seed, model) order."""
    jobs = [(NAMES[key], seed) for key in sorted(args.models, key=lambda k: k != "feedback") for seed in args.seeds]
    load = LoadSampler()
    try:
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            done = list(pool.map(lambda job: run_one(job[0], job[1], args, scratch, load), jobs))
    finally:
        load.stop()
    return sorted(done, key=lambda r: (r["seed"], [m.key for m in MODELS].index(r["row"])))


# ## Strategies that do not execute the program

def reference_accuracies(split: str, count: int, statements: int, seed: int = 0) -> Dict[str, float]:
    """The accuracy of the two strategies that do not execute the programs (see above), over the printed
    values of `count` programs of `split`."""
    from labml_nn.experiments.algorithmic import generate_programs
    right = {"last_assignment": 0, "unconditional_updates": 0}
    prints = 0
    for program in generate_programs(count, split, seed, statements):
        assigned: Dict[str, int] = {}
        updated: Dict[str, int] = {}
        statement: List[str] = []
        for word, target in zip(program.words, program.targets):
            statement.append(word)
            if word != ";":
                continue
            if statement[0] == "print":
                prints += 1
                right["last_assignment"] += assigned.get(statement[1]) == int(target)
                right["unconditional_updates"] += updated.get(statement[1]) == int(target)
            elif statement[0] != "if":
                var, op = statement[0], statement[1]
                if op == "=":
                    assigned[var] = updated[var] = int(statement[2])
                elif var in updated:
                    updated[var] += 1 if op == "++" else -1
            statement = []
    return {key: value / prints for key, value in right.items()}


def level(accuracy: float, references: Dict[str, float]) -> str:
    """Where a test accuracy stands against the two strategies that do not execute the programs."""
    if accuracy < references["last_assignment"]:
        return "below the last assignment"
    if accuracy < references["unconditional_updates"]:
        return "between the last assignment and the unconditional updates"
    return "above the unconditional updates: it evaluates conditions"


# ## Aggregating over seeds

def spread_of(runs: List[dict], key: str) -> Spread:
    """The finished runs' values of `key` (an accuracy), with their steps, seconds and loads."""
    done = [r for r in runs if "error" not in r]
    return Spread([r[key] for r in done], [r["step"] for r in done], [r["train_seconds"] for r in done],
                  [r.get("load", float("nan")) for r in done])


def percent(spread: Spread) -> str:
    """`41.2% ± 1.3%` (mean ± standard deviation over the seeds), or `41.2%` for one seed."""
    return (f"{100 * spread.mean:.1f}% ± {100 * spread.std:.1f}%" if len(spread.values) > 1
            else f"{100 * spread.mean:.1f}%")


def decide(results: List[dict]) -> tuple:
    """"The Feedback Transformer's test accuracy beats the Transformer's": `(verdict, difference, standard
    error)`, the difference in accuracy (feedback minus xl), decided as in `bench.results.compare`."""
    by = {m.key: spread_of([r for r in results if r["row"] == m.key], "test_accuracy") for m in MODELS}
    if not by["feedback"].values or not by["xl"].values:
        return "not resolved", float("nan"), float("nan")
    # `compare(a, b)` asks whether a is lower than b: the Transformer's accuracy lower than the Feedback's.
    return compare(by["xl"], by["feedback"])


def curves(results: List[dict], model: str) -> Dict[int, List[float]]:
    """Validation accuracy by step, `{step: [one value per seed]}`, for the finished runs of `model`."""
    by_step: Dict[int, List[float]] = {}
    for r in results:
        if r["row"] == model and "error" not in r:
            for point in r["history"]["valid"]:
                by_step.setdefault(point["step"], []).append(point["accuracy"])
    return dict(sorted(by_step.items()))


# ## The picture

def picture(results: List[dict], references: Dict[str, float], path: Path, meta: dict) -> None:
    """Validation accuracy against training steps: each model's mean over seeds, the band between its lowest
    and highest seed, and the two strategies that do not execute the programs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9.0, 3.4), dpi=100)
    for model, color in zip(MODELS, ("#d62728", "#1f77b4")):
        by_step = curves(results, model.key)
        if not by_step:
            continue
        steps = list(by_step)
        ax.plot(steps, [statistics.fmean(v) for v in by_step.values()], color=color, marker=".",
                label=f"{model.label}, {model.depth} layers (mean of {len(next(iter(by_step.values())))} seeds)")
        ax.fill_between(steps, [min(v) for v in by_step.values()], [max(v) for v in by_step.values()],
                        color=color, alpha=0.2, linewidth=0)
    for key, label, style in (("last_assignment", "the last assignment", ":"),
                              ("unconditional_updates", "the last assignment + unconditional updates", "--")):
        ax.axhline(references[key], color="0.4", linestyle=style, linewidth=1, label=label)
    ax.set_xlabel("training steps")
    ax.set_ylabel("validation accuracy of the printed values")
    ax.set_ylim(0, 1)
    ax.set_title(f"Programs of {meta['statements']} statements, width {meta['dim']}: accuracy by step "
                 f"(band: lowest to highest seed)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# ## The report

def write_report(results: List[dict], meta: dict, out_dir: Path, picture_path: Path) -> Path:
    """`algorithmic.md` and `algorithmic.json` in `out_dir` (the figures the page quotes), and the picture."""
    test_refs = reference_accuracies("test", meta["test_programs"], meta["statements"])
    valid_refs = reference_accuracies("valid", meta["valid_programs"], meta["statements"])
    verdict, difference, se = decide(results)
    figures = {"statements": str(meta["statements"]), "dim": str(meta["dim"]), "steps": f"{meta['steps']:,}",
               "mem_len": str(meta["mem_len"]), "seq_len": str(meta["seq_len"]), "batch_size": str(meta["batch_size"]),
               "train_programs": f"{meta['train_programs']:,}", "test_programs": f"{meta['test_programs']:,}",
               "seeds": str(len(meta["seeds"])), "check_feedback_beats_xl": verdict,
               "check_feedback_beats_xl_difference": (f"{100 * difference:+.1f} ± {100 * se:.1f} points"
                                                      if se == se else "no finished runs"),
               "last_assignment": f"{100 * test_refs['last_assignment']:.1f}%",
               "unconditional_updates": f"{100 * test_refs['unconditional_updates']:.1f}%"}
    lines = ["| model | layers | test accuracy (mean ± sd) | valid accuracy | parameters | seeds | steps | "
             "training s | CPU s | load | command (first seed) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for model in MODELS:
        runs = [r for r in results if r["row"] == model.key]
        done = [r for r in runs if "error" not in r]
        if not done:
            if runs:
                lines.append(f"| {model.label} | {model.depth} | not run: {runs[0]['error']} | | | | | | | | "
                             f"`{runs[0]['command']}` |")
            continue
        test, valid = spread_of(done, "test_accuracy"), spread_of(done, "valid_accuracy")
        figures[f"{model.key}_test_accuracy"] = percent(test)
        figures[f"{model.key}_level"] = level(test.mean, test_refs)
        figures[f"{model.key}_valid_accuracy"] = percent(valid)
        figures[f"{model.key}_parameters"] = f"{done[0]['parameters']:,}"
        figures[f"{model.key}_cpu_minutes"] = f"{statistics.fmean(r['cpu_seconds'] for r in done) / 60:.0f}"
        lines.append(f"| {model.label} | {model.depth} | **{percent(test)}** | {percent(valid)} | "
                     f"{done[0]['parameters']:,} | {len(done)} | {done[0]['step']:,} | "
                     f"{statistics.fmean(r['train_seconds'] for r in done):.0f} | "
                     f"{statistics.fmean(r['cpu_seconds'] for r in done):.0f} | "
                     f"{statistics.fmean(r['load'] for r in done):.1f} | `{done[0]['command']}` |")
    lines += ["| the last assignment (no execution) | | "
              f"{100 * test_refs['last_assignment']:.1f}% | {100 * valid_refs['last_assignment']:.1f}% | | | | | | | |",
              "| the last assignment + unconditional updates (no conditions) | | "
              f"{100 * test_refs['unconditional_updates']:.1f}% | {100 * valid_refs['unconditional_updates']:.1f}% "
              "| | | | | | | |"]
    mark = {"holds": "✅", "fails": "❌", "not resolved": "➖"}[verdict]
    spread = (f"difference {100 * difference:+.1f} points, standard error {100 * se:.1f}" if se == se
              else "no finished runs")
    head = (f"Measured {meta['date']} on {meta['machine']}; each run in its own process with {meta['threads']} torch "
            f"thread(s), {meta['parallel']} run(s) at a time; 'CPU s' is a run's own CPU time, 'load' the machine's "
            f"1-minute load average while a row's runs went on (2 cores: above 2, other work shares them and the "
            f"seconds grow; the steps do not). Programs of "
            f"{meta['statements']} statements over 3 variables ({meta['train_programs']:,} training, "
            f"{meta['valid_programs']:,} validation and {meta['test_programs']:,} test programs); width {meta['dim']}, "
            f"{meta['heads']} heads, memory {meta['mem_len']}, segments of {meta['seq_len']} tokens, batch "
            f"{meta['batch_size']}, AdamW at lr {meta['lr']:g} ({meta['warmup_steps']} warm-up steps, "
            f"{'then constant, as the authors' if meta.get('paper') else 'cosine decay to 0.1 × lr'}), "
            f"{meta['steps']:,} steps for both models. Seeds: {', '.join(map(str, meta['seeds']))}. "
            f"Accuracy over the printed values; test: every test program, read once with the memory carried.")
    text = ["### The code-execution task: test accuracy", "", head, "", *lines, "", "#### Check", "",
            f"- {mark} The Feedback Transformer's test accuracy beats the Transformer's: {verdict} ({spread}).", "",
            f"Reproduce with `make results-algorithmic` (`python -m bench.algorithmic --steps {meta['steps']} "
            f"--seeds {' '.join(map(str, meta['seeds']))}`); each seed's values are in `algorithmic.json`.", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "algorithmic.md").write_text("\n".join(text))
    (out_dir / "algorithmic.json").write_text(json.dumps(
        dict(meta=meta, results=results, references=dict(test=test_refs, valid=valid_refs),
             check=dict(verdict=verdict, difference=difference, standard_error=se), figures=figures), indent=2))
    picture(results, valid_refs, picture_path, meta)
    return out_dir / "algorithmic.md"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Train the Feedback Transformer and the Transformer on the "
                                                 "code-execution task over seeds; tabulate their test accuracy.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of every run (both models); default 1,200, or the paper's 50,000 with --paper")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every model")
    parser.add_argument("--models", nargs="+", default=[m.key for m in MODELS], choices=[m.key for m in MODELS])
    parser.add_argument("--statements", type=int, default=30, help="statements per program")
    parser.add_argument("--train-programs", type=int, default=10_000)
    parser.add_argument("--valid-programs", type=int, default=100)
    parser.add_argument("--test-programs", type=int, default=300)
    parser.add_argument("--dim", type=int, default=64, help="model width")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--mem-len", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--points", type=int, default=6, help="validations per run (the picture's points)")
    # One thread: on a shared 2-core machine a second thread waits on the other work more than it helps.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (each its own process)")
    parser.add_argument("--paper", action="store_true",
                        help="the authors' size and training (the presets feedback-algorithmic and xl-algorithmic): "
                             "for a GPU; the other task and model options are ignored")
    parser.add_argument("--device", default="cuda", help="with --paper: the experiment's --device")
    parser.add_argument("--out", default=str(OUT_DIR), help="directory for the report")
    parser.add_argument("--picture", default=str(PICTURE), help="where the picture goes")
    parser.add_argument("--rewrite", action="store_true",
                        help="train nothing: write the report and the picture again from the report's JSON")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.rewrite:
        report = json.loads((out / "algorithmic.json").read_text())
        print(write_report(report["results"], report["meta"], out, Path(args.picture)).read_text())
        return
    keys = ("steps", "statements", "train_programs", "valid_programs", "test_programs", "dim", "heads", "mem_len",
            "seq_len", "batch_size", "lr", "warmup_steps")
    if args.paper:
        meta = {key: paper_options(args)[key] for key in keys}
    else:
        args.steps = 1200 if args.steps is None else args.steps
        meta = {key: getattr(args, key) for key in keys}
    meta.update(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), seeds=args.seeds,
                threads=args.threads, parallel=args.parallel, paper=args.paper)
    print(f"Training {len(args.models)} models × {len(args.seeds)} seeds, {meta['steps']} steps each", flush=True)
    with tempfile.TemporaryDirectory(prefix="labml_nn_algorithmic_") as scratch:
        results = run_all(args, Path(scratch))
    if not any("error" not in r for r in results):
        sys.exit("bench.algorithmic: no run finished; the report was left as it was")
    print(write_report(results, meta, out, Path(args.picture)).read_text())
    if not args.paper:
        print(f"At the paper's size (programs of 100 statements, width 256, 4 heads, attention limit 100, 64 tokens "
              f"per step, the authors' training), on a GPU:\n  {GPU_COMMAND}")


if __name__ == "__main__":
    main()
