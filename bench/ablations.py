r"""
The papers' ablations at small scale (`python -m bench.ablations`, part of `make results`): each study
trains variants of one model with the project's experiment code at the quick budget of `bench.results`
(equal tokens, several seeds) and writes one table (`bench/reports/ablation-<paper>.md`, included by the
paper's page) and one picture (`labml_nn/transformers/<paper>/pictures/ablation_*.png`).

* **Transformer-XL, positions**: relative positions against absolute ones (`--positions absolute`:
  positions encoded within each segment, the case the paper says breaks with memory, because the memory's
  positions collide with the segment's), each with and without memory.
* **Transformer-XL, memory by position**: the validation loss at each position of a segment for memories
  of 0, $n/2$, $n$ and $2n$: the effect of memory should be largest at the start of a segment, where the
  segment itself holds the least context.
* **Compressive Transformer**: compression rates $c$ = 2, 4, 8 at the same attention length (memory 32 and
  16 compressed slots, which stand for $16c$ older positions), and the attention-reconstruction loss
  against none ($f_c$ then keeps its initial weights).
* **Feedback Transformer**: the exact model against windows of 4 and 16 tokens at equal tokens, and the
  updated paper's shared keys and values against per-layer ones.

Every claim is decided as in `bench.results`: on the means over seeds, and "not resolved" when the
difference is within twice its standard error.

```bash
python -m bench.ablations                         # every study, 2 seeds (about half an hour on 2 cores)
python -m bench.ablations --studies xl-positions --seeds 0
```
"""

import argparse
import json
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

from bench.common import machine
from bench.results import OUT_DIR, REPO, Row, Spread, compare, run_row, spreads

XL = ["-m", "labml_nn.transformers.xl.experiment"]
COMPRESSIVE = ["-m", "labml_nn.transformers.compressive.experiment"]
FEEDBACK = ["-m", "labml_nn.transformers.feedback.experiment"]


def study_rows(study: str, seq_len: int) -> List[Row]:
    n = seq_len
    if study == "xl-positions":
        return [Row("relative-memory", "relative positions, memory 32", XL, ["--mem-len", "32"], "32"),
                Row("relative-none", "relative positions, no memory", XL, ["--mem-len", "0"], "none"),
                Row("absolute-memory", "absolute positions, memory 32", XL, ["--mem-len", "32", "--positions", "absolute"], "32"),
                Row("absolute-none", "absolute positions, no memory", XL, ["--mem-len", "0", "--positions", "absolute"], "none")]
    if study == "xl-memory":
        return [Row(f"memory-{m}", f"memory {m}", XL, ["--mem-len", str(m)], str(m)) for m in (0, n // 2, n, 2 * n)]
    if study == "compressive":
        common = ["--mem-len", "32", "--cmem-len", "16"]
        return [Row(f"rate-{c}", f"c = {c}, reconstruction loss", COMPRESSIVE, [*common, "--compression-rate", str(c)],
                    f"32 + 16 × {c}") for c in (2, 4, 8)] + [
                Row("rate-4-no-loss", "c = 4, no reconstruction loss", COMPRESSIVE,
                    [*common, "--compression-rate", "4", "--no-reconstruction-loss"], "32 + 16 × 4")]
    if study == "feedback":
        common = ["--mem-len", "32", "--curriculum-steps", "0"]
        return [Row("exact", "exact (window 1), shared keys and values", FEEDBACK, common, "32"),
                Row("window-4", "window 4", FEEDBACK, [*common, "--window", "4"], "32"),
                Row("window-16", "window 16", FEEDBACK, [*common, "--window", "16"], "32"),
                Row("per-layer", "exact, per-layer keys and values", FEEDBACK, [*common, "--no-shared-kv"], "32")]
    raise ValueError(f"unknown study {study!r}")


STUDIES = {"xl-positions": "xl", "xl-memory": "xl", "compressive": "compressive", "feedback": "feedback"}
TITLES = {"xl-positions": "Transformer-XL: relative against absolute positions, with and without memory",
          "xl-memory": "Transformer-XL: memory length", "compressive": "Compressive Transformer: compression rate and loss",
          "feedback": "Feedback Transformer: window and shared keys and values"}


@torch.no_grad()
def loss_by_position(model_dir: Path, seq_len: int, windows: int, batch_size: int) -> List[float]:
    """Validation bits per character at each position of a segment, the memory carried across segments."""
    from labml_nn.experiments.corpora import load_dataset
    from labml_nn.experiments.data import StreamBatcher, Vocabulary
    from labml_nn.transformers.hub import load_pretrained, read_config
    model = load_pretrained(model_dir)
    vocab = Vocabulary.from_config(read_config(model_dir))
    batches = StreamBatcher(load_dataset("tiny_shakespeare", vocab=vocab).valid, batch_size)
    total, memory = torch.zeros(seq_len, dtype=torch.float64), None
    for i, (x, y) in enumerate(batches.windows(seq_len)):
        if i >= windows:
            break
        logits, memory = model(x.long(), memory=memory, return_memory=True)
        loss = F.cross_entropy(logits.transpose(1, 2), y.long(), reduction="none")  # `[batch_size, seq_len]`
        total += loss.double().sum(0)
    return (total / (min(windows, batches.num_windows(seq_len)) * batch_size) / torch.log(torch.tensor(2.0))).tolist()


def claims(study: str, s: Dict[str, Spread], positions: Optional[Dict[str, List[List[float]]]]) -> List[tuple]:
    """(key, claim, spread of the side the claim says is lower, spread of the other side) of each study."""
    if study == "xl-positions":
        return [("relative_memory_helps", "with relative positions, memory helps", s["relative-memory"], s["relative-none"]),
                ("absolute_memory_helps", "with absolute positions, memory helps", s["absolute-memory"], s["absolute-none"]),
                ("relative_beats_absolute", "with memory, relative positions beat absolute ones", s["relative-memory"],
                 s["absolute-memory"])]
    if study == "xl-memory":
        out = [(f"{b.replace('-', '_')}_beats_{a.split('-')[1]}", f"memory {b.split('-')[1]} beats memory {a.split('-')[1]}",
                s[b], s[a])
               for a, b in (("memory-0", "memory-16"), ("memory-16", "memory-32"), ("memory-32", "memory-64"))]
        if positions:
            # The gain of the longest memory over none at the segment's first 4 positions against its last 4.
            def gain(where: slice) -> Spread:
                values = [statistics.fmean(p0[where]) - statistics.fmean(p1[where])
                          for p0, p1 in zip(positions["memory-0"], positions["memory-64"])]
                return Spread(values, [], [], [])
            first, last = gain(slice(0, 4)), gain(slice(-4, None))
            # "first gains more than last": the lower-is-better side is the negated gain.
            out.append(("start_gains_most", "memory helps most at the start of a segment (the gain of memory 64 over "
                        "none at positions 0-3 above that at 28-31)",
                        Spread([-v for v in first.values], [], [], []), Spread([-v for v in last.values], [], [], [])))
        return out
    if study == "compressive":
        return [("rate_2_beats_4", "c = 2 beats c = 4", s["rate-2"], s["rate-4"]),
                ("rate_4_beats_8", "c = 4 beats c = 8", s["rate-4"], s["rate-8"]),
                ("loss_beats_none", "the reconstruction loss beats none (c = 4)", s["rate-4"], s["rate-4-no-loss"])]
    if study == "feedback":
        return [("exact_beats_window_4", "the exact model beats windows of 4", s["exact"], s["window-4"]),
                ("window_4_beats_16", "windows of 4 beat windows of 16", s["window-4"], s["window-16"]),
                ("shared_beats_per_layer", "shared keys and values beat per-layer ones", s["exact"], s["per-layer"])]
    return []


def picture(study: str, rows: List[Row], s: Dict[str, Spread], positions, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.0, 3.2), dpi=100)
    if study == "xl-memory" and positions:
        for row in rows:
            curves = positions[row.key]
            mean = [statistics.fmean(v) for v in zip(*curves)]
            ax.plot(range(len(mean)), mean, marker=".", label=row.label)
        ax.set_xlabel("position in the segment")
        ax.set_ylabel("validation bits per character")
        ax.set_title("Loss at each position of a segment, by memory length (mean over seeds)", fontsize=9)
    else:
        labels = [row.label for row in rows if row.key in s]
        means = [s[row.key].mean for row in rows if row.key in s]
        stds = [s[row.key].std for row in rows if row.key in s]
        ax.barh(range(len(labels)), means, xerr=stds, color="#6baed6", capsize=3)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        low = min(m - e for m, e in zip(means, stds))
        high = max(m + e for m, e in zip(means, stds))
        ax.set_xlim(low - 0.25 * (high - low + 1e-3), high + 0.25 * (high - low + 1e-3))
        ax.set_xlabel("validation bits per character (mean ± sd over seeds; lower is better)", fontsize=9)
        ax.set_title(textwrap.fill(TITLES[study], 60), fontsize=9)
    if study == "xl-memory" and positions:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def redraw(out: Path, pictures: str) -> None:
    """Draw every study's picture again from the reports in `out`, training nothing."""
    for report in sorted(out.glob("ablation-*.json")):
        data = json.loads(report.read_text())
        for st in data["studies"]:
            rows = study_rows(st["study"], data["meta"].get("seq_len", 32))
            s = {key: spread for (key, _), spread in spreads(st["results"]).items()}
            where = Path(pictures) if pictures else REPO / "labml_nn" / "transformers" / st["paper"] / "pictures"
            path = where / f"ablation_{st['study'].replace('-', '_')}.png"
            picture(st["study"], rows, s, st["positions"] or None, path)
            print(f"wrote {path}")


def run_study(study: str, args: argparse.Namespace, log: Callable[[str], None] = print) -> dict:
    rows = study_rows(study, args.seq_len)
    results, positions = [], {}
    with tempfile.TemporaryDirectory(prefix="labml_nn_ablations_") as scratch:
        for row in rows:
            for seed in args.seeds:
                export = Path(scratch) / f"{row.key}-{seed}"
                extra = ["--export", str(export)] if study == "xl-memory" else []
                result = run_row(row, "tokens", seed, args, Path(scratch), extra)
                results.append(result)
                if study == "xl-memory" and "error" not in result:
                    positions.setdefault(row.key, []).append(
                        loss_by_position(export, args.seq_len, args.valid_windows, args.batch_size))
    s = {key: spread for (key, _), spread in spreads(results).items()}
    paper = STUDIES[study]
    decided = [(key, claim, *compare(a, b)) for key, claim, a, b in claims(study, s, positions or None)]
    lines = [f"#### {TITLES[study]}", "", "| variant | memory | seeds | valid bpc (mean ± sd) | command (seed 0) |",
             "|---|---|---:|---:|---|"]
    for row in rows:
        runs = [r for r in results if r["row"] == row.key]
        if row.key in s:
            lines.append(f"| {row.label} | {row.memory} | {len(s[row.key].values)} | {s[row.key].shown()} | "
                         f"`{runs[0]['command']}` |")
        else:
            lines.append(f"| {row.label} | {row.memory} | | not run: {runs[0].get('error')} | |")
    lines += [""] + [f"- {({'holds': '✅', 'fails': '❌', 'not resolved': '➖'})[v]} {claim}: {v} "
                     f"(difference {d:+.3f}, standard error {se:.3f})" for _, claim, v, d, se in decided]
    pictures = Path(args.pictures) if args.pictures else REPO / "labml_nn" / "transformers" / paper / "pictures"
    picture_path = pictures / f"ablation_{study.replace('-', '_')}.png"
    picture(study, rows, s, positions or None, picture_path)
    log(f"wrote {picture_path}")
    figures = {f"{study}_{key}": spread.shown().replace("**", "") for key, spread in s.items()}
    # Each claim's verdict and difference ± standard error, for the pages' prose.
    for key, _, verdict, d, se in decided:
        figures[f"{study}_{key}"] = verdict
        figures[f"{study}_{key}_difference"] = f"{d:+.3f} ± {se:.3f}"
    if positions:
        for where, part in (("first", slice(0, 4)), ("last", slice(-4, None))):
            gains = [statistics.fmean(p0[part]) - statistics.fmean(p1[part])
                     for p0, p1 in zip(positions["memory-0"], positions["memory-64"])]
            figures[f"{study}_gain_{where}"] = f"{statistics.fmean(gains):.3f}"
    return dict(study=study, paper=paper, lines=lines, results=results, positions=positions, figures=figures,
                claims=[dict(key=k, claim=c, verdict=v, difference=d, standard_error=se) for k, c, v, d, se in decided])


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--studies", nargs="+", default=list(STUDIES), choices=list(STUDIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=800, help="steps of every run (equal tokens)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--valid-windows", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(OUT_DIR), help="directory for the reports")
    parser.add_argument("--pictures", default="", help="directory for the pictures (default: each paper's pictures/)")
    parser.add_argument("--redraw", action="store_true",
                        help="train nothing: draw the pictures again from the reports in --out")
    args = parser.parse_args(argv)
    if args.redraw:
        return redraw(Path(args.out), args.pictures)
    # `bench.results.run_row` reads these.
    args.time_budget = args.long_budget = 0.0
    torch.set_num_threads(args.threads)
    by_paper: Dict[str, List[dict]] = {}
    for study in args.studies:
        print(f"=== {study}", flush=True)
        by_paper.setdefault(STUDIES[study], []).append(run_study(study, args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for paper, studies in by_paper.items():
        head = (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}: each variant trained "
                f"for {args.steps} steps of {args.batch_size} × {args.seq_len} characters of Tiny Shakespeare (width "
                f"128, 4 layers) with seeds {', '.join(map(str, args.seeds))}, one run at a time; validation over "
                f"{args.valid_windows} segments per stream. A claim holds or fails only when its difference exceeds "
                f"twice its standard error; otherwise it is not resolved at this scale.")
        lines = [head, ""] + [line for st in studies for line in st["lines"] + [""]]
        (out / f"ablation-{paper}.md").write_text("\n".join(lines))
        (out / f"ablation-{paper}.json").write_text(json.dumps(
            dict(meta=dict(machine=machine(), steps=args.steps, seeds=args.seeds, seq_len=args.seq_len),
                 studies=[{k: v for k, v in st.items() if k != "lines"} for st in studies],
                 figures={k: v for st in studies for k, v in st["figures"].items()}), indent=2))
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
