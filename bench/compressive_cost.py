r"""
---
title: Compressed memory against a longer memory, at the same attention cost
summary: The Compressive Transformer with 32 memories and 16 compressed slots against Transformer-XL with 48 memories, the same size and the same training steps, over seeds.
---

# At the same attention cost

```bash
python -m bench.compressive_cost                 # 2 seeds of each model, about an hour and a half on 2 cores
python -m bench.compressive_cost --seeds 0 --steps 2000   # a quick look
python -m bench.compressive_cost --analyse-only  # the attention analysis again, from the kept checkpoints
```

The Compressive Transformer's headline comparison (Rae et al., section 5) is at equal attention cost: a
layer that attends over $L$ memories and $L_c$ compressed slots pays for $L + L_c$ keys, as a
Transformer-XL layer with a memory of $L + L_c$ does, but it reaches $L + c L_c$ positions back. Here:

* **Transformer-XL, memory 48**: 48 attended memories per layer, reaching 48 positions;
* **the Compressive Transformer, memory 32 + 16 compressed slots at rate 4**: 48 attended, reaching
  $32 + 4 \cdot 16 = 96$ positions.

Both have width 128, 4 layers of 4 heads of 32, segments of 32 characters and the batch and schedule
of every row of `bench.results`, and both train for the same number of **steps**, as the paper
compares models trained for the same number of updates (so both read the same characters; the
compressive model's step costs a little more, which the report states). Steps rather than seconds also
make the comparison independent of the machine's load. The claim is decided on the means over seeds,
against twice the standard error of the difference ("not resolved" otherwise), as everywhere in the
results.

**Where the attention goes.** The paper's figure of attention by memory region (its Figure 3: the average
attention weight on the compressed memory, the memory and the sequence) is drawn from the first seed's
trained model: it reads 8 segments of every one of 8 validation streams (enough to fill both memories),
and the attention of the next segment is averaged over streams, queries, heads and layers, key position by
key position, and summed by region for every layer.
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
KEEP = REPO / "checkpoints" / "compressive-cost"
PICTURES = REPO / "labml_nn" / "transformers" / "compressive" / "pictures"

ROWS = [
    Row("xl48", "Transformer-XL, memory 48", ["-m", "labml_nn.transformers.xl.experiment"], ["--mem-len", "48"],
        "48 memories: 48 attended, 48 reached"),
    Row("compressive", "Compressive Transformer, memory 32 + 16 compressed (×4)",
        ["-m", "labml_nn.transformers.compressive.experiment"],
        ["--mem-len", "32", "--cmem-len", "16", "--compression-rate", "4"],
        "32 memories + 16 slots: 48 attended, 96 reached"),
]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="The Compressive Transformer against Transformer-XL at the same "
                                                 "attention cost.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=15000, help="training steps of every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--valid-windows", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(OUT_DIR))
    parser.add_argument("--analyse-only", action="store_true",
                        help="keep the runs of the last report; compute only the attention analysis again")
    args = parser.parse_args(argv)
    # The fields `bench.results.run_row` reads.
    args.time_budget, args.long_budget = 0.0, 0.0
    from bench.common import machine
    from labml_nn.experiments.data import DataError, load_text
    try:
        load_text()
    except DataError as error:
        sys.exit(f"bench.compressive_cost: {error}")
    out = Path(args.out)
    previous = {}
    if args.analyse_only:
        # The runs as the last report recorded them; only the attention analysis is computed again.
        previous = json.loads((out / "compressive_cost.json").read_text())
        results, args.seeds, args.steps = previous["results"], previous["meta"]["seeds"], previous["meta"]["steps"]
    else:
        results = []
        with tempfile.TemporaryDirectory(prefix="labml_nn_cost_") as scratch:
            for row in ROWS:
                for seed in args.seeds:
                    results.append(run_row(row, "tokens", seed, args, Path(scratch), keep=KEEP))
    failed = [r for r in results if "error" in r]
    if failed:
        sys.exit(f"bench.compressive_cost: runs failed, the report was left as it was: {failed}")
    s = spreads(results)
    xl, compressive = s[("xl48", "tokens")], s[("compressive", "tokens")]
    verdict, difference, se = compare(compressive, xl)
    figures = {"xl48_bpc": xl.shown().replace("**", ""), "compressive_bpc": compressive.shown().replace("**", ""),
               "check": verdict, "difference": f"{difference:+.3f} ± {se:.3f}", "steps": f"{args.steps:,}",
               "seeds": str(len(args.seeds)),
               "seconds_ratio": f"{statistics.fmean(compressive.seconds) / statistics.fmean(xl.seconds):.2f}×"}
    meta = dict(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), steps=args.steps,
                seeds=args.seeds, batch_size=args.batch_size, seq_len=args.seq_len, valid_windows=args.valid_windows,
                threads=args.threads)
    if args.analyse_only:  # the runs were measured when the last report was written
        meta = dict(previous["meta"], analysed=meta["date"])
    lines = ["### At the same attention cost: compressed memory against a longer memory", "",
             f"Measured {meta['date']} on {meta['machine']}; each run {args.steps:,} steps of {args.batch_size} × "
             f"{args.seq_len} characters with {args.threads} torch thread(s), in its own process, one at a time; "
             f"validation bits per character over {args.valid_windows} segments per stream, lower is better. Width "
             f"128, 4 layers, 4 heads of 32, AdamW with warm-up and cosine decay; seeds "
             f"{', '.join(map(str, args.seeds))}.", "",
             "| model | valid bpc (mean ± sd) | memory | parameters | seeds | training s | load | command (seed 0) |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for row in ROWS:
        runs = [r for r in results if r["row"] == row.key]
        spread = s[(row.key, "tokens")]
        lines.append(f"| {row.label} | {spread.shown()} | {row.memory} | {runs[0]['parameters']:,} | {len(runs)} | "
                     f"{statistics.fmean(spread.seconds):.0f} | {statistics.fmean(spread.loads):.1f} | "
                     f"`{runs[0]['command']}` |")
    mark = {"holds": "✅", "fails": "❌", "not resolved": "➖"}[verdict]
    lines += ["", "#### Check", "",
              f"- {mark} The Compressive Transformer beats Transformer-XL with memory 48 at the same attention cost: "
              f"{verdict} (difference {difference:+.3f} bpc, standard error {se:.3f})", "",
              f"The compressive model's training took {figures['seconds_ratio']} the seconds of Transformer-XL's for "
              f"the same steps (compression and its reconstruction loss). Reproduce with "
              f"`python -m bench.compressive_cost --steps {args.steps} --seeds {' '.join(map(str, args.seeds))}`.", ""]
    from labml_nn.experiments.sample import load_model, model_directory
    run = KEEP / f"bench-compressive-tokens-{args.seeds[0]}"
    model, vocab = load_model(str(model_directory(str(run))))
    mass = dict(attention_by_region(model, validation_rows(vocab), args.seq_len), run=str(run.relative_to(REPO)))
    figures.update({f"layer_{l}_cmem_share": f"{share[0]:.0%}" for l, share in enumerate(mass["layers"])})
    figures["cmem_share"] = f"{mass['regions'][0]:.0%}"
    figures["mem_share"] = f"{mass['regions'][1]:.0%}"
    figures["segment_share"] = f"{mass['regions'][2]:.0%}"
    # Per key: a compressed slot stands for `c` positions, a memory for one.
    c, m = mass["cmem_len"], mass["mem_len"]
    figures["cmem_per_slot"] = f"{statistics.fmean(mass['by_position'][:c]):.4f}"
    figures["mem_per_position"] = f"{statistics.fmean(mass['by_position'][c:c + m]):.4f}"
    figures["oldest_mem_per_position"] = f"{statistics.fmean(mass['by_position'][c:c + c]):.4f}"
    more = statistics.fmean(mass['by_position'][:c]) > statistics.fmean(mass['by_position'][c:c + c])
    figures["cmem_vs_oldest"] = "more than" if more else "no more than"
    top = max(range(len(mass["layers"])), key=lambda l: mass["layers"][l][0])
    figures["cmem_top_layer"] = str(top)
    figures["cmem_top_layer_share"] = f"{mass['layers'][top][0]:.0%}"
    lines += ["#### Where the trained model attends", "",
              f"The first seed's model, averaged over 8 validation streams, every query, head and layer: "
              f"{figures['cmem_share']} of the attention goes to the 16 compressed slots, {figures['mem_share']} to "
              f"the 32 memories and {figures['segment_share']} to the segment. Key by key, a compressed slot gets "
              f"{figures['cmem_per_slot']} of a query's attention on average, a memory {figures['mem_per_position']} "
              f"(the oldest 16 memories {figures['oldest_mem_per_position']}).", "",
              "| layer | compressed memory | memory | segment |", "|---:|---:|---:|---:|"]
    lines += [f"| {l} | {a:.0%} | {b:.0%} | {c:.0%} |" for l, (a, b, c) in enumerate(mass["layers"])]
    lines.append("")
    out.mkdir(parents=True, exist_ok=True)
    (out / "compressive_cost.md").write_text("\n".join(lines))
    (out / "compressive_cost.json").write_text(json.dumps(dict(meta=meta, results=results, figures=figures,
                                                               attention=mass), indent=2))
    draw(mass)
    print("\n".join(lines))



def attention_by_region(model, rows, seq_len: int = 32, segments: int = 9) -> dict:
    """The attention of `model` (a Compressive Transformer) by key position (mean over streams, queries, heads
    and layers) and each layer's share on the compressed memory, the memory and the segment, for the last of
    `segments` segments of `rows` (`[streams, length]` token ids) read one after the other with the memory
    carried."""
    import torch
    from labml_nn.experiments.pictures import segment_attention
    with torch.no_grad():
        attn, _ = segment_attention(model, [rows[:, i * seq_len:(i + 1) * seq_len] for i in range(segments)])
    # `[layers, key_len]`: the mean over streams, heads and queries of every layer.
    by_layer = torch.stack([a.mean(dim=(0, 1, 2)) for a in attn])
    c, m = model.cmem_len, model.mem_len
    if by_layer.shape[-1] != c + m + seq_len:
        raise ValueError(f"the memories are not full after {segments - 1} segment(s) of {seq_len}: the last one "
                         f"read {by_layer.shape[-1] - seq_len} memories, not {m} + {c} compressed; read more segments")
    layers = [[row[:c].sum().item(), row[c:c + m].sum().item(), row[c + m:].sum().item()] for row in by_layer]
    mean = by_layer.mean(dim=0)
    return dict(cmem_len=c, mem_len=m, seq_len=seq_len, by_position=mean.tolist(), layers=layers,
                regions=[sum(layer[k] for layer in layers) / len(layers) for k in range(3)])


def validation_rows(vocab, streams: int = 8):
    """The validation text as the runs held it out (the last 10%), cut into `streams` rows of token ids."""
    from labml_nn.experiments.data import load_text
    ids = vocab.encode(load_text())
    valid = ids[int(len(ids) * 0.9):]
    length = len(valid) // streams
    return valid[:length * streams].view(streams, length)


def draw(mass: dict) -> None:
    """The paper's figure of attention by memory region: the mean weight on every key position, coloured by
    region (oldest left), and every layer's share of each region."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    c, m, n = mass["cmem_len"], mass["mem_len"], mass["seq_len"]
    colours = ["#74c476", "#6baed6", "#fd8d3c"]
    names = [f"compressed memory ({c} slots)", f"memory ({m})", f"segment ({n})"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw=dict(width_ratios=[2.2, 1]))
    position = mass["by_position"]
    for k, (start, stop) in enumerate([(0, c), (c, c + m), (c + m, c + m + n)]):
        left.bar(range(start, stop), position[start:stop], color=colours[k], label=names[k], width=0.9)
    left.set_xlabel("key position (oldest left)")
    left.set_ylabel("mean attention weight")
    left.legend(fontsize=8)
    bottom = [0.0] * len(mass["layers"])
    for k in range(3):
        values = [layer[k] for layer in mass["layers"]]
        right.bar(range(len(values)), values, bottom=bottom, color=colours[k])
        bottom = [b + v for b, v in zip(bottom, values)]
    right.set_xticks(range(len(mass["layers"])))
    right.set_xlabel("layer")
    right.set_ylabel("share of attention")
    right.set_ylim(0, 1)
    fig.tight_layout()
    PICTURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(PICTURES / "attention_by_region.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
