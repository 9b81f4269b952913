r"""
---
title: Results: bits per character of the memory transformers on Tiny Shakespeare
summary: Trains Transformer-XL, the Compressive and the Feedback Transformer, a no-memory baseline of the same size and labml-nn 0.5.1's Transformer-XL with one loop, one data pipeline and one budget, and tabulates validation bits per character.
---

# Results

```bash
make results                                          # = python -m bench.results
python -m bench.results --steps 800 --time-budget 60  # the defaults, about 15 minutes on 2 cores
python -m bench.results --models xl baseline          # a subset
```

Every row is one run of the project's own training loop (`labml_nn/experiments/trainer.py`) on the
same contiguous streams (`labml_nn/experiments/data.py`) of Tiny Shakespeare, with the same width,
depth, heads, batch, segment length, optimiser and schedule; only the model differs. Each model is
trained twice:

* **equal tokens**: `--steps` steps of `batch_size` $\times$ `seq_len` characters, the comparison of
  what each architecture makes of the same data;
* **equal wall-clock**: `--time-budget` seconds of training on this CPU, the comparison of what each
  makes of the same compute. The learning-rate schedule follows the clock in this mode, so every run
  finishes its decay.

Validation is bits per character over the same held-out windows, carrying memory across them. The
no-memory baseline is Transformer-XL with `mem_len` $= 0$: the same parameters, attending only within
its segment. The reference row is [labml-nn](https://pypi.org/project/labml-nn/) 0.5.1's
Transformer-XL layers behind a thin wrapper that follows this project's model contract, trained by the
same loop; `make bench` installs that release into `.venv-bench/peers`.

Each row lists the command that reproduces it. The machine is shared, so wall-clock rows move by
a few percent between runs; the equal-token rows are deterministic for a given seed and thread count.
"""

import argparse
import json
import shlex
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
    from labml_nn.experiments.trainer import run_experiment
    from labml_nn.transformers.xl.experiment import Config
    return run_experiment(Config, ReferenceXL, reference_kwargs, argv)


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


def shared_options(args: argparse.Namespace) -> List[str]:
    """The options every row shares: size, data shape, evaluation, and no periodic extras."""
    return ["--no-labml", "--seed", str(args.seed), "--threads", str(args.threads),
            "--dim", "128", "--depth", "4", "--heads", "4", "--dim-head", "32",
            "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
            "--valid-interval", "0", "--sample-interval", "0", "--checkpoint-interval", "0",
            "--valid-windows", str(args.valid_windows), "--sample-length", "100"]


def run_row(row: Row, regime: str, args: argparse.Namespace, scratch: Path) -> dict:
    """Train one row in a fresh process and return its summary and the command that reproduces it."""
    budget = (["--steps", str(args.steps)] if regime == "tokens"
              else ["--steps", "1000000", "--time-budget", str(args.time_budget)])
    name = f"bench-{row.key}-{regime}"
    command = [*row.module, *shared_options(args), *row.options, *budget,
               "--name", name, "--checkpoint-dir", "checkpoints"]
    shown = "python " + " ".join(shlex.quote(c) for c in command)
    if row.key == "reference" and not reference_installed():
        return dict(row=row.key, regime=regime, error=f"labml-nn 0.5.1 is not installed in {release_dir()} "
                                                      "(`make bench` installs it)", command=shown)
    summary_path = scratch / f"{name}.json"
    shutil.rmtree(scratch / "checkpoints" / name, ignore_errors=True)
    started = time.time()
    # The checkpoints go to a scratch directory; where they go does not change the numbers.
    result = subprocess.run([sys.executable, *command[:-1], str(scratch / "checkpoints"),
                             "--summary", str(summary_path)],
                            cwd=REPO, capture_output=True, text=True)
    print(f"  {row.label:<40} {regime:<6} {time.time() - started:6.0f} s", flush=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return dict(row=row.key, regime=regime, error=" / ".join(tail), command=shown)
    summary = json.loads(summary_path.read_text())
    return dict(row=row.key, regime=regime, command=shown, **summary)


# ## The report

def table(results: List[dict], regime: str, labels: Dict[str, Row]) -> List[str]:
    lines = ["| model | memory | parameters | steps | characters | training s | valid bpc | command |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in (r for r in results if r["regime"] == regime):
        row = labels[r["row"]]
        if "error" in r:
            lines.append(f"| {row.label} | {row.memory} | | | | | not run: {r['error']} | `{r['command']}` |")
        else:
            lines.append(f"| {row.label} | {row.memory} | {r['parameters']:,} | {r['step']:,} | {r['tokens']:,} | "
                         f"{r['train_seconds']:.0f} | **{r['valid_bpc']:.3f}** | `{r['command']}` |")
    return lines


def floors(results: List[dict]) -> List[str]:
    """The claims the results must support, each checked against the numbers."""
    bpc = {(r["row"], r["regime"]): r["valid_bpc"] for r in results if "error" not in r}
    checks = []
    for model in ["xl", "compressive", "feedback"]:
        if (model, "tokens") in bpc and ("baseline", "tokens") in bpc:
            checks.append((f"{model} beats the no-memory baseline at equal tokens",
                           bpc[(model, "tokens")] < bpc[("baseline", "tokens")]))
    if ("reference", "tokens") in bpc and ("xl", "tokens") in bpc:
        checks.append(("our Transformer-XL is no worse than labml-nn 0.5.1's at equal tokens",
                       bpc[("xl", "tokens")] <= bpc[("reference", "tokens")] + 0.01))
    if ("reference", "clock") in bpc and ("xl", "clock") in bpc:
        checks.append(("our Transformer-XL beats labml-nn 0.5.1's at equal wall-clock",
                       bpc[("xl", "clock")] < bpc[("reference", "clock")]))
    return [f"- {'✅' if ok else '❌'} {claim}" for claim, ok in checks]


def write_report(results: List[dict], args: argparse.Namespace, out_dir: Path) -> Path:
    from bench.common import machine
    labels = {r.key: r for r in rows(args.seq_len)}
    meta = dict(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                steps=args.steps, time_budget=args.time_budget, batch_size=args.batch_size,
                seq_len=args.seq_len, valid_windows=args.valid_windows, seed=args.seed)
    lines = ["# Validation bits per character on Tiny Shakespeare", "",
             f"Measured {meta['date']} on {meta['machine']}; each run uses {args.threads} torch thread(s) "
             f"in its own process. Wall-clock rows depend on what else the machine is running. "
             f"Width 128, 4 layers, 4 heads of 32, "
             f"batch {args.batch_size} × {args.seq_len} characters, AdamW with warm-up and cosine decay; "
             f"validation over {args.valid_windows} segments per stream "
             f"({args.valid_windows * args.batch_size * args.seq_len:,} characters). Lower is better.", "",
             f"## Equal tokens ({args.steps} steps)", "", *table(results, "tokens", labels), "",
             f"## Equal wall-clock ({args.time_budget:.0f} s of training each)", "",
             *table(results, "clock", labels), "",
             "labml-nn 0.5.1's relative attention learns an embedding for each of 2 × 4,096 distances in "
             "every layer; those make up most of its parameter count, and a segment uses only the "
             "distances it spans; its feed-forward is given GELU, like ours (its default is ReLU). The no-memory "
             "baseline is Transformer-XL with `--mem-len 0`.", "",
             "## Checks", "", *floors(results), "",
             "Reproduce everything with `make results` (`python -m bench.results --steps "
             f"{args.steps} --time-budget {args.time_budget:g}`).", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text("\n".join(lines))
    (out_dir / "results.json").write_text(json.dumps(dict(meta=meta, results=results), indent=2))
    return out_dir / "results.md"


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--reference"]:
        train_reference(argv[1:])
        return
    parser = argparse.ArgumentParser(description="Train every model under the same budgets and tabulate "
                                                 "validation bits per character.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=800, help="steps of the equal-tokens runs")
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds of training of the equal-wall-clock runs")
    parser.add_argument("--models", nargs="+", default=["xl", "baseline", "compressive", "feedback", "reference"],
                        choices=["xl", "baseline", "compressive", "feedback", "reference"], help="rows to run")
    parser.add_argument("--regimes", nargs="+", default=["tokens", "clock"], choices=["tokens", "clock"],
                        help="budgets to run")
    parser.add_argument("--batch-size", type=int, default=8, help="streams per batch")
    parser.add_argument("--seq-len", type=int, default=32, help="characters per segment")
    parser.add_argument("--valid-windows", type=int, default=100, help="validation segments per stream")
    # One thread: on a shared 2-core machine, a process with two threads that contends with other work
    # waits on its own threads far longer than it gains from them (we measured 0.1 s against 8 s a step).
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of every run")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run")
    parser.add_argument("--out", default=str(OUT_DIR), help="directory for results.md and results.json")
    args = parser.parse_args(argv)

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
    print(f"Training {len(selected)} models × {len(args.regimes)} budgets "
          f"({args.steps} steps; {args.time_budget:g} s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="labml_nn_results_") as scratch:
        for regime in args.regimes:
            for row in selected:
                results.append(run_row(row, regime, args, Path(scratch)))
    if not any("error" not in r for r in results):
        sys.exit("bench.results: no run finished; the reports were left as they were")
    path = write_report(results, args, Path(args.out))
    print(path.read_text())


if __name__ == "__main__":
    main()
