r"""
---
title: Transformer-XL reads further at evaluation than it trained to
summary: The long-budget Transformer-XL, trained with a memory of 32, evaluated with memories of 0 to 512 (with and without clamped distances) beside the no-memory baseline, and its loss by position in the segment at each evaluation memory.
---

# Reading further at evaluation

```bash
python -m bench.eval_memory --train              # trains the two models (about 20 minutes on 2 cores), then evaluates
python -m bench.eval_memory                      # evaluates the models trained before (about 6 minutes)
python -m bench.eval_memory --xl DIR --baseline DIR
```

Transformer-XL evaluates with a much longer memory than it trains with: the paper's enwik8 model trains
with $L = 512$ and evaluates with 2,100 (its section 4 and the authors' scripts), encoding every distance
beyond 820 as 820. Nothing in the model ties it to the training length: the memory is only more of the
same hidden states, and relative attention scores a key by its distance. The claim this measures: **a
model trained with a short memory lowers its loss when it is given a longer one at evaluation, up to some
length**.

The model is a Transformer-XL of the size of every row of `bench.results` (width 128, 4 layers of 4 heads
of 32, segments of $n = 32$, batches of 8, seed 0) trained for 15,000 steps with $L = 32$, so it never saw a
distance beyond $L + n - 1 = 63$; the baseline is the same model trained as long with $L = 0$. Both are
trained by `--train`, for a number of steps rather than minutes, so that the machine's load does not
change them. It is evaluated on the
whole validation text, cut into `--streams` contiguous streams read segment by segment with the memory
carried, at evaluation memories $L \in \{0, 32, 64, 128, 256, 512\}$, each once with every distance encoded as
itself and once with distances beyond 63 encoded as 63 (`clamp_len`, the paper's remedy for distances the
model never saw). The no-memory baseline of the same size is evaluated on the same streams.

**How a difference is decided.** Each evaluation gives one bits-per-character value per stream, and every
setting reads the same streams, so two settings are compared stream by stream: the mean of the per-stream
differences against twice its standard error ($s / \sqrt{B}$ over the $B$ streams). A longer memory
"helps" when it lowers the bits per character by more than that; the first length whose next doubling
does not is where it stops helping.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from labml_nn.experiments.data import load_text
from labml_nn.experiments.sample import load_model, model_directory

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "reports"
PICTURES = REPO / "labml_nn" / "transformers" / "xl" / "pictures"
MEMORIES = [0, 32, 64, 128, 256, 512]


def run_directory(key: str, seed: int = 0) -> Path:
    """The checkpoint directory of a long-budget run (`bench.results` keeps them)."""
    return REPO / "checkpoints" / "eval-memory" / key


def train(steps: int, threads: int) -> None:
    """Train the model with memory 32 and the no-memory baseline, one after the other, each in its own
    process, keeping their checkpoints and summaries in `checkpoints/eval-memory`."""
    import subprocess
    for key, mem_len in (("xl-mem32", 32), ("baseline", 0)):
        command = [sys.executable, "-m", "labml_nn.transformers.xl.experiment", "--no-labml", "--seed", "0",
                   "--threads", str(threads), "--dim", "128", "--depth", "4", "--heads", "4", "--dim-head", "32",
                   "--batch-size", "8", "--seq-len", "32", "--mem-len", str(mem_len), "--steps", str(steps),
                   "--valid-interval", "0", "--sample-interval", "0", "--checkpoint-interval", "5000",
                   "--valid-windows", "100", "--name", key, "--checkpoint-dir", str(run_directory(key).parent),
                   "--summary", str(run_directory(key).with_suffix(".json"))]
        print(" ".join(command[1:]), flush=True)
        subprocess.run(command, cwd=REPO, check=True)


@torch.no_grad()
def loss_by_stream_and_position(model, streams: torch.Tensor, seq_len: int, mem_len: int,
                                clamp_len: Optional[int]) -> torch.Tensor:
    r"""
    The mean loss in nats of every stream at every position of the segment, `[B, seq_len]`, over every full
    segment of `streams`, `[B, T + 1]` (inputs are the first $T$ ids, targets the last $T$), with the memory
    carried from segment to segment and the model's memory length and clamp set for the evaluation.
    """
    with model.evaluation_memory(mem_len=mem_len, clamp_len=clamp_len):
        model.eval()
        sums = torch.zeros(streams.shape[0], seq_len, dtype=torch.float64)
        memory, windows = None, 0
        for p in range(0, streams.shape[1] - 1 - seq_len + 1, seq_len):
            x, y = streams[:, p:p + seq_len], streams[:, p + 1:p + seq_len + 1]
            logits, memory = model(x, memory=memory, return_memory=True)
            # `[B, seq_len]`: the loss of every prediction.
            sums += F.cross_entropy(logits.transpose(1, 2), y, reduction="none").double()
            windows += 1
    return sums / windows


def shown(path: str) -> str:
    """A path as the report shows it: relative to the repository when it is inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def training(*directories: str) -> List[Dict]:
    """What each evaluated model's run recorded: steps, seconds, seed (from the summary beside the run's
    checkpoints, when there is one)."""
    found = []
    for directory in directories:
        summary = Path(directory).with_suffix(".json")
        data = json.loads(summary.read_text()) if summary.is_file() else {}
        found.append(dict(run=Path(directory).name, step=data.get("step"), seconds=data.get("train_seconds"),
                          valid_bpc_in_training=data.get("valid_bpc")))
    return found


def training_line(runs: List[Dict]) -> str:
    return "; ".join(f"`{r['run']}` trained {r['step']:,} steps in {r['seconds']:.0f} s" if r["step"] else
                     f"`{r['run']}`" for r in runs)


def paired(a: List[float], b: List[float]) -> tuple:
    """The mean of the per-stream differences `b - a` and its standard error."""
    differences = [y - x for x, y in zip(a, b)]
    return statistics.fmean(differences), statistics.stdev(differences) / math.sqrt(len(differences))


def verdict(difference: float, se: float) -> str:
    return "not resolved" if abs(difference) <= 2 * se else ("holds" if difference > 0 else "fails")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("---")[1].strip().splitlines()[1],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--train", action="store_true", help="train the two models first")
    parser.add_argument("--steps", type=int, default=15000, help="training steps of each model (with --train)")
    parser.add_argument("--xl", default=str(run_directory("xl-mem32")),
                        help="the Transformer-XL run (or model directory)")
    parser.add_argument("--baseline", default=str(run_directory("baseline")), help="the no-memory run")
    parser.add_argument("--streams", type=int, default=16, help="streams the validation text is cut into")
    parser.add_argument("--clamp-len", type=int, default=63, help="the clamp of the clamped evaluations")
    parser.add_argument("--memories", type=int, nargs="+", default=MEMORIES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(OUT_DIR))
    parser.add_argument("--redraw", action="store_true", help="only draw the picture again, from the last report")
    args = parser.parse_args(argv)
    if args.redraw:
        report = json.loads((Path(args.out) / "eval_memory.json").read_text())
        draw(report["rows"], args.memories, report["meta"]["clamp_len"], report["meta"]["seq_len"])
        return
    torch.set_num_threads(args.threads)
    from bench.common import machine
    if args.train:
        train(args.steps, args.threads)

    xl, vocab = load_model(str(model_directory(args.xl)))
    baseline, _ = load_model(str(model_directory(args.baseline)))
    run = json.loads((model_directory(args.xl) / "config.json").read_text())
    # The validation text exactly as the runs held it out: the last 10% of Tiny Shakespeare.
    ids = vocab.encode(load_text())
    valid = ids[int(len(ids) * 0.9):]
    length = (len(valid) - 1) // args.streams
    streams = valid[:length * args.streams + 1].as_strided((args.streams, length + 1), (length, 1))
    seq_len, trained_mem = 32, xl.mem_len
    started, load_before = time.time(), os.getloadavg()[0]

    def bpc(model, mem_len, clamp_len) -> Dict:
        loss = loss_by_stream_and_position(model, streams, seq_len, mem_len, clamp_len)
        return dict(mem_len=mem_len, clamp_len=clamp_len,
                    per_stream=(loss.mean(dim=1) / math.log(2)).tolist(),
                    per_position=(loss.mean(dim=0) / math.log(2)).tolist())

    rows = {"baseline": bpc(baseline, 0, None)}
    for clamp in (None, args.clamp_len):
        for mem_len in args.memories:
            key = f"xl_{mem_len}" + ("_clamped" if clamp else "")
            rows[key] = bpc(xl, mem_len, clamp)
            print(f"{key:<20} {statistics.fmean(rows[key]['per_stream']):.4f}", flush=True)
    for row in rows.values():
        row["bpc"] = statistics.fmean(row["per_stream"])

    # Each doubling of the memory against the length before it, clamped and not.
    checks, figures = [], {}
    for clamp in ("", "_clamped"):
        for shorter, longer in zip(args.memories, args.memories[1:]):
            d, se = paired(rows[f"xl_{longer}{clamp}"]["per_stream"], rows[f"xl_{shorter}{clamp}"]["per_stream"])
            key = f"mem_{longer}_vs_{shorter}{clamp}"
            checks.append((key, f"Memory {longer} beats memory {shorter}"
                                + (f" (distances clamped at {args.clamp_len})" if clamp else ""),
                           verdict(d, se), d, se))
    for key, row in rows.items():
        figures[f"{key}_bpc"] = f"{row['bpc']:.3f}"
    for key, _, v, d, se in checks:
        figures[f"check_{key}"] = v
        figures[f"check_{key}_difference"] = f"{d:+.4f} ± {se:.4f}"
    # Where it stops helping: the first length whose doubling is not a resolved gain.
    for clamp in ("", "_clamped"):
        best = args.memories[0]
        for shorter, longer in zip(args.memories, args.memories[1:]):
            if figures[f"check_mem_{longer}_vs_{shorter}{clamp}"] != "holds":
                break
            best = longer
        figures[f"helps_up_to{clamp}"] = str(best)
    clamped_best = min((k for k in rows if k.endswith("_clamped")), key=lambda k: rows[k]["bpc"])
    figures["best_clamped"] = f"{rows[clamped_best]['bpc']:.3f} (memory {rows[clamped_best]['mem_len']})"
    d, se = paired(rows[f"xl_{trained_mem}"]["per_stream"], rows["baseline"]["per_stream"])
    checks.insert(0, ("xl_vs_baseline", f"At its training memory ({trained_mem}), Transformer-XL beats the no-memory "
                                        f"baseline", verdict(d, se), d, se))
    figures["check_xl_vs_baseline"] = verdict(d, se)

    meta = dict(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                seconds=round(time.time() - started), load=round((load_before + os.getloadavg()[0]) / 2, 1),
                training=training(args.xl, args.baseline), streams=args.streams, seq_len=seq_len,
                trained_mem_len=trained_mem, clamp_len=args.clamp_len, characters=length * args.streams,
                xl=shown(args.xl), baseline=shown(args.baseline), labml_nn_version=run.get("labml_nn_version"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_memory.json").write_text(json.dumps(dict(meta=meta, rows=rows, figures=figures), indent=2))
    lines = ["### Transformer-XL trained with memory 32, evaluated with longer memories", "",
             f"Measured {meta['date']} on {meta['machine']} (load {meta['load']}): {training_line(meta['training'])}; "
             f"evaluated on the whole validation text "
             f"({meta['characters']:,} characters) in {args.streams} streams, segments of {seq_len}, the memory "
             f"carried. Bits per character, lower is better; 'clamped' encodes every distance beyond "
             f"{args.clamp_len} (the longest the model trained on) as {args.clamp_len}.", "",
             "| evaluation memory | " + " | ".join(str(m) for m in args.memories) + " |",
             "|---|" + "---:|" * len(args.memories),
             "| distances as they are | " + " | ".join(f"{rows[f'xl_{m}']['bpc']:.3f}" for m in args.memories) + " |",
             f"| clamped at {args.clamp_len} | " + " | ".join(f"{rows[f'xl_{m}_clamped']['bpc']:.3f}"
                                                          for m in args.memories) + " |", "",
             f"The no-memory baseline (the same size, trained for the same steps): **{rows['baseline']['bpc']:.3f}**.",
             "", "#### Checks (per-stream paired differences against twice their standard error)", ""]
    for _, claim, v, d, se in checks:
        mark = {"holds": "✅", "fails": "❌", "not resolved": "➖"}[v]
        lines.append(f"- {mark} {claim}: {v} (difference {d:+.4f} bpc, standard error {se:.4f})")
    lines += ["", f"A longer memory keeps helping up to {figures['helps_up_to']} with distances as they are and up to "
                  f"{figures['helps_up_to_clamped']} with distances clamped. Reproduce with `python -m bench.eval_memory`.",
              ""]
    (out / "eval_memory.md").write_text("\n".join(lines))
    draw(rows, args.memories, args.clamp_len, seq_len)
    print("\n".join(lines))


def draw(rows: Dict, memories: List[int], clamp_len: int, seq_len: int) -> None:
    """Left: bits per character against the evaluation memory (from the training memory on; memory 0 and
    the no-memory model, far above, are written in the title). Right: the change of the loss at every
    position of the segment against the training memory, for each longer memory (clamped)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    trained = min(m for m in memories if m > 0)
    longer = [m for m in memories if m >= trained]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for clamp, style in (("", "o-"), ("_clamped", "s--")):
        left.plot(longer, [rows[f"xl_{m}{clamp}"]["bpc"] for m in longer], style,
                  label="distances as they are" if not clamp else f"distances clamped at {clamp_len}")
    left.set_xscale("log", base=2)
    left.set_xticks(longer, [str(m) for m in longer])
    left.set_xlabel(f"memory at evaluation (trained with {trained})")
    left.set_ylabel("validation bits per character")
    left.set_title(f"memory 0: {rows['xl_0']['bpc']:.3f}; the model trained without memory: "
                   f"{rows['baseline']['bpc']:.3f}", fontsize=9)
    left.legend(fontsize=8)
    base = rows[f"xl_{trained}_clamped"]["per_position"]
    for m in longer[1:]:
        right.plot(range(seq_len), [a - b for a, b in zip(rows[f"xl_{m}_clamped"]["per_position"], base)],
                   label=f"memory {m}")
    right.axhline(0, color="grey", linewidth=0.8)
    right.set_xlabel("position in the segment")
    right.set_ylabel(f"bits per character − memory {trained}'s")
    right.set_title("below 0: the longer memory helps (distances clamped)", fontsize=9)
    right.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    PICTURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(PICTURES / "eval_memory.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
