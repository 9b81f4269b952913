"""
Draw the pictures of the paper pages into `labml_nn/transformers/<paper>/pictures/` (`make pictures`),
with the drawing functions of the package (`labml_nn.experiments.pictures`) and small models trained by
the experiments' code.

```
python -m scripts.pictures                     # every paper, a few minutes on 2 cores
python -m scripts.pictures --papers xl         # only Transformer-XL
python -m scripts.pictures --steps 600         # train the small models longer
python -m scripts.pictures --long              # draw the long-budget models of bench.results (make pictures)
python -m scripts.pictures --xl-checkpoint checkpoints/xl   # draw a model trained by its experiment
python -m scripts.pictures --papers xl --xl-losses checkpoints/eval-memory/xl-mem32   # only its loss curve
python -m scripts.pictures --spans             # only the adaptive span's picture (trains its model once)
python -m scripts.pictures --spans --papers xl # both
```

The attention maps and layer weights on the pages come from the models of the long budget of
`bench.results` (`--long`: 15 minutes of training each; their checkpoints stay on the machine that
trained them, in `checkpoints/results-long/`), and each title and caption names the validation bits per
character of the model drawn. The loss curves are those runs' own, from the history every checkpoint
keeps (a small model's, trained here, for a run that kept none); `--xl-losses DIR` draws only the loss
curve, from any run.

`--spans` draws the spans each head learned on the adaptive span page
(`labml_nn/transformers/adaptive_span.py`, into its `pictures/`), from the seed-0 run of the row `span` of
`bench.feedback_options` (a Feedback Transformer, width 128, 4 layers, 800 steps). That bench keeps no
checkpoints, but its runs are deterministic for a seed and one thread: the first `--spans` trains the run
again with the command its report stores (into `checkpoints/feedback-options/`, about three minutes on one
core), stops with an error unless its validation bits per character are the report's, and later ones draw from
its checkpoint.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from labml_nn.experiments.pictures import (DPI, compressive_diagram, feedback_diagram, feedback_layer_weights,  # noqa: E402
                                           feedback_timing, learned_spans, memory_timeline,
                                           plot_attention_distance, plot_attention_heads, plot_layer_weights,
                                           plot_losses, plot_memory_attention_mass, plot_memory_timeline,
                                           plot_spans, plot_timing, segment_attention, text_segments,
                                           train_small, xl_diagram)

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    import platform
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def pictures_dir(paper: str) -> Path:
    """`labml_nn/transformers/<paper>/pictures`, created if missing."""
    path = ROOT / "labml_nn" / "transformers" / paper / "pictures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(fig: plt.Figure, paper: str, name: str) -> Path:
    path = pictures_dir(paper) / f"{name}.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.0f} KB)")
    return path


# ## The models the pictures show

def long_runs(report: Path) -> Dict[str, Tuple[str, float]]:
    """
    `paper` → (run directory, validation bits per character) of the first seed of each row of the long
    budget of `bench.results` (`python -m bench.results --budget long` trains them and keeps their
    checkpoints in `checkpoints/results-long/`; they are not committed).
    """
    if not report.is_file():
        raise SystemExit(f"error: {report} does not exist: run `python -m bench.results --budget long` first, or "
                         f"draw without --long")
    runs: Dict[str, Tuple[str, float]] = {}
    for r in json.loads(report.read_text())["results"]:
        if r["row"] in ("xl", "compressive", "feedback") and "error" not in r and r["row"] not in runs:
            run_dir = Path(r["checkpoint"]).parent
            if not run_dir.is_dir():
                raise SystemExit(f"error: the long run of {r['row']} is not at {run_dir} (its checkpoints are not "
                                 f"committed): run `python -m bench.results --budget long` on this machine first")
            runs[r["row"]] = (str(run_dir), r["valid_bpc"])
    return runs


def trained(paper: str, steps: int, checkpoint: Optional[str], bpc: Optional[float], n_segments: int,
            **small: object) -> Tuple[torch.nn.Module, List[torch.Tensor], int, str]:
    """
    The model a paper's pictures show, `n_segments` consecutive validation segments `[8, seq_len]`, the
    segment length, and the words the titles and captions use for it ("... 1.85 bits per character").
    From `checkpoint` (a run directory; `bpc` is its measured validation bpc) when given, else a small
    model trained for `steps` steps now, whose loss curves are drawn too.
    """
    if checkpoint:
        from labml_nn.experiments.corpora import load_dataset
        from labml_nn.experiments.data import StreamBatcher
        from labml_nn.experiments.sample import load_model, model_directory
        from labml_nn.experiments.checkpoint import load_checkpoint
        model, vocab = load_model(checkpoint)
        seq_len = load_checkpoint(model_directory(checkpoint)).trainer["config"]["seq_len"]
        data = load_dataset("tiny_shakespeare", os.environ.get("TINY_SHAKESPEARE_PATH") or None, vocab=vocab)
        windows = StreamBatcher(data.valid, 8).windows(seq_len)
        segments = [next(windows)[0].long() for _ in range(n_segments)]
        words = f"{bpc:.2f} validation bits per character" if bpc is not None else "a trained model"
        return model, segments, seq_len, words
    run = losses_picture(paper, steps, **small)
    final = [v["bpc"] for v in run.state.history["valid"]]
    words = f"{final[-1]:.2f} validation bits per character" if final else "a small model"
    return run.module, text_segments(run, n_segments), run.config.seq_len, words


NAMES = {"xl": "Transformer-XL", "compressive": "Compressive Transformer", "feedback": "Feedback Transformer"}


def losses_picture(paper: str, steps: int, **small: object):
    """Train a small model for `steps` steps and draw its training and validation curves; return its run."""
    run = train_small(paper, steps=steps, **small)
    save(plot_losses(run.state.history, f"{NAMES[paper]}, small model (width 64, 2 layers) on Tiny Shakespeare"),
         paper, "losses")
    write_figures(**{f"{paper}_losses_from": f"a small model (width 64, 2 layers) trained {steps:,} steps for the "
                                             f"picture"})
    return run


def losses_from_run(paper: str, run_dir: str) -> bool:
    """Draw the training curve a run kept in its newest checkpoint (every step's loss); False when the
    checkpoint holds no loss history (runs of older versions)."""
    from labml_nn.experiments.checkpoint import load_checkpoint
    from labml_nn.experiments.run import read_history
    from labml_nn.experiments.sample import model_directory
    saved = load_checkpoint(model_directory(run_dir)).trainer
    history = read_history(saved.get("history"))
    if not history["train"].get("loss.train"):
        return False
    config = saved["config"]
    words = (f"the run `{Path(run_dir).name}` itself (width {config['dim']}, {config['depth']} layers, "
             f"{saved['step']:,} steps), from its checkpoint")
    save(plot_losses(history, f"{NAMES[paper]}: {saved['step']:,} steps, the run's own history"), paper, "losses")
    write_figures(**{f"{paper}_losses_from": words})
    return True


# ## The pictures of each paper

# The small models' settings beyond `labml_nn.experiments.pictures.small_config`.
SMALL = {"xl": dict(mem_len=32), "compressive": dict(mem_len=16, cmem_len=8, compression_rate=4),
         "feedback": dict(seq_len=32, mem_len=32, curriculum_steps=0)}


def xl_pictures(steps: int, checkpoint: Optional[str] = None, bpc: Optional[float] = None) -> None:
    save(xl_diagram(), "xl", "memory_diagram")
    model, segments, seq_len, words = trained("xl", steps, checkpoint, bpc, 3, **SMALL["xl"])
    attn, _ = segment_attention(model, segments)
    mem_len = attn[0].shape[-1] - attn[0].shape[-2]
    save(plot_attention_heads(attn, f"Transformer-XL attention (√ scale), {words}: "
                              f"{mem_len} memory positions, then the segment", front=[(mem_len, "memory")]),
         "xl", "attention_heads")
    save(plot_attention_distance(attn, seq_len, f"How far back Transformer-XL attends ({words})"), "xl",
         "attention_distance")
    # The share of each layer's attention on memory, for the captions.
    on_memory = [a[..., :mem_len].sum(-1).mean().item() for a in attn]
    write_figures(xl_model=words, xl_memory_share=f"{min(on_memory):.0%}–{max(on_memory):.0%}")


def compressive_pictures(steps: int, checkpoint: Optional[str] = None, bpc: Optional[float] = None) -> None:
    save(compressive_diagram(), "compressive", "memory_diagram")
    seq_len, mem_len, cmem_len, c = 16, 16, 8, 4
    save(plot_memory_timeline(memory_timeline(seq_len, mem_len, cmem_len, c, 8), seq_len,
                              f"Where each position is after each segment (n={seq_len}, L={mem_len}, "
                              f"L_c={cmem_len}, c={c})"), "compressive", "memory_timeline")
    # Enough segments before the drawn one to fill both memories.
    model, segments, seq_len, words = trained("compressive", steps, checkpoint, bpc, 8, **SMALL["compressive"])
    attn, _ = segment_attention(model, segments)
    save(plot_memory_attention_mass(attn, model.cmem_len, model.mem_len,
                                    f"Where each head attends ({words})"), "compressive", "attention_mass")
    shares = [a.mean(dim=(0, 2)) for a in attn]  # `[heads, key_len]` per layer
    on_cmem = [s[:, :model.cmem_len].sum(-1) for s in shares]
    on_mem = [s[:, model.cmem_len:model.cmem_len + model.mem_len].sum(-1) for s in shares]
    write_figures(compressive_model=words,
                  compressive_cmem_share=f"{torch.cat(on_cmem).mean().item():.0%}",
                  compressive_cmem_share_max=f"{torch.cat(on_cmem).max().item():.0%}",
                  compressive_mem_share=f"{torch.cat(on_mem).mean().item():.0%}")


def feedback_pictures(steps: int, checkpoint: Optional[str] = None, bpc: Optional[float] = None) -> None:
    save(feedback_diagram(), "feedback", "memory_diagram")
    model, _, _, words = trained("feedback", steps, checkpoint, bpc, 1, **SMALL["feedback"])
    weights = feedback_layer_weights(model)
    save(plot_layer_weights(weights, f"Learned share of each layer in the feedback memory\n({words})"),
         "feedback", "layer_weights")
    names = ["the embedding"] + [f"layer {l}" for l in range(1, len(weights))]
    write_figures(feedback_model=words, feedback_top_layer=names[int(weights.argmax())],
                  feedback_top_weight=f"{weights.max():.2f}", feedback_uniform_weight=f"{1 / len(weights):.2f}")
    timing = feedback_timing([16, 32, 64, 128])
    save(plot_timing(timing, "Feedback Transformer against Transformer-XL of the same size (dim 64, depth 2, batch 4)"),
         "feedback", "timing")
    # The caption quotes the ranges of the ratios, from this report rather than typed into the page.
    train = [f / x for f, x in zip(timing["feedback_train"], timing["xl_train"])]
    generate = [f / x for f, x in zip(timing["feedback_generate"], timing["xl_generate"])]
    write_figures(feedback_train_slowdown=f"{min(train):.0f}–{max(train):.0f}×",
                  feedback_generate_ratio=f"{min(generate):.1f}–{max(generate):.1f}×")


# ## The spans an adaptive span learns

SPAN_REPORT = ROOT / "bench" / "reports" / "feedback_options.json"
SPAN_CHECKPOINTS = "checkpoints/feedback-options"


def span_run(report: Path = SPAN_REPORT) -> dict:
    """The result of the seed-0 run of the row `span` in the report of `bench.feedback_options`: its command,
    name, step and validation bits per character."""
    if not report.is_file():
        raise SystemExit(f"error: {report} does not exist: run `python -m bench.feedback_options` first")
    for r in json.loads(report.read_text())["results"]:
        if r.get("row") == "span" and r.get("seed") == 0 and "error" not in r:
            return r
    raise SystemExit(f"error: {report} has no finished seed-0 run of the row `span`")


def span_command(command: str, summary: str) -> List[str]:
    """The report's command with this Python, the checkpoints in `checkpoints/feedback-options/` instead of
    the bench's temporary `checkpoints/`, and the final metrics written to `summary`."""
    args = shlex.split(command)
    if args[:2] != ["python", "-m"] or "--checkpoint-dir" not in args:
        raise SystemExit(f"error: the report's command is not `python -m ... --checkpoint-dir DIR`: {command}")
    at = args.index("--checkpoint-dir") + 1
    args[at] = SPAN_CHECKPOINTS
    return [sys.executable] + args[1:] + ["--summary", summary]


def span_model(report: Path = SPAN_REPORT) -> Tuple[torch.nn.Module, float, dict]:
    """
    The model of the seed-0 run of the row `span`, its validation bits per character, and the report's result.
    Trained now with the report's command when `checkpoints/feedback-options/<name>` holds no checkpoint; either
    way its validation bpc must be the report's (to 1e-6), or the run did not reproduce the report.
    """
    from labml_nn.experiments.checkpoint import latest_checkpoint, load_checkpoint
    from labml_nn.experiments.run import read_history
    from labml_nn.experiments.sample import load_model, model_directory
    result = span_run(report)
    run_dir = ROOT / SPAN_CHECKPOINTS / result["name"]
    if latest_checkpoint(run_dir) is None:
        with tempfile.TemporaryDirectory(prefix="labml_nn_spans_") as tmp:
            summary = Path(tmp) / "summary.json"
            command = span_command(result["command"], str(summary))
            print("training the seed-0 run of the row `span` of bench.feedback_options again:\n  "
                  + " ".join(shlex.quote(a) for a in command), flush=True)
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                                              if p))
            done = subprocess.run(command, cwd=ROOT, env=env)
            if done.returncode != 0:
                raise SystemExit(f"error: the run failed (exit status {done.returncode}); its command is above")
            final = json.loads(summary.read_text())
        step, bpc = final["step"], final["valid_bpc"]
    else:
        saved = load_checkpoint(model_directory(str(run_dir))).trainer
        valid = read_history(saved.get("history"))["valid"]
        step, bpc = saved["step"], (valid[-1]["bpc"] if valid else None)
    if step != result["step"] or bpc is None or abs(bpc - result["valid_bpc"]) > 1e-6:
        raise SystemExit(f"error: the run in {run_dir} did not reproduce the report: step {step}, validation bpc "
                         f"{bpc}, where {report.name} has step {result['step']}, validation bpc "
                         f"{result['valid_bpc']:.9f} (a different machine, torch or thread count; delete the "
                         f"directory to train it again)")
    model, _ = load_model(str(run_dir))
    return model, bpc, result


def spans_pictures(report: Path = SPAN_REPORT) -> None:
    """The spans each head of the seed-0 run of the row `span` learned, and the numbers its caption quotes."""
    model, bpc, result = span_model(report)
    span = model.layers[0].attn.span
    spans = learned_spans(model)
    words = f"the seed-0 run of the span row, {bpc:.2f} validation bits per character"
    path = ROOT / "labml_nn" / "transformers" / "pictures" / "adaptive_spans.png"
    fig = plot_spans(spans, span.mem_len, span.span_ramp,
                     f"The span $zL$ of each head of a Feedback Transformer after {result['step']} steps "
                     f"({bpc:.2f} bits per character)")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.0f} KB)")
    print("spans zL (keys), a row per layer:\n" + "\n".join("  " + " ".join(f"{s:6.2f}" for s in row)
                                                         for row in spans))
    # A head with $zL < 1$ keeps full weight on the nearest key only, as at $z = 0$: the same mask moved by
    # less than a key. The clamp holds some exactly at $z = 0$.
    write_figures(adaptive_span_model=words, adaptive_span_mean=f"{spans.mean():.2f}",
                  adaptive_span_max=f"{spans.max():.2f}", adaptive_span_heads=f"{spans.size}",
                  adaptive_span_short=f"{int((spans < 1).sum())}", adaptive_span_zero=f"{int((spans == 0).sum())}")


def write_figures(**figures: str) -> None:
    """Add `figures` to `bench/reports/pictures.json`, which the pages' captions quote."""
    path = ROOT / "bench" / "reports" / "pictures.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    report.setdefault("figures", {}).update(figures)
    report["meta"] = dict(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    path.write_text(json.dumps(report, indent=2) + "\n")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Draw the pictures of the paper pages.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--papers", nargs="+", default=None, choices=["xl", "compressive", "feedback"],
                        help="the papers whose pictures to draw (default: all three, or none with --spans)")
    parser.add_argument("--spans", action="store_true",
                        help="draw the spans each head learned on the adaptive span page, from the seed-0 run of "
                             "the row `span` of bench/reports/feedback_options.json (trained again if its "
                             "checkpoint is not in checkpoints/feedback-options/)")
    parser.add_argument("--long", action="store_true",
                        help="draw the models of the long budget of bench.results (their run directories and "
                             "validation bpc from bench/reports/results-long.json)")
    parser.add_argument("--steps", type=int, default=200, help="training steps of each small model (without --long)")
    for paper in ("xl", "compressive", "feedback"):
        parser.add_argument(f"--{paper}-checkpoint", default="", help=f"draw this {paper} run directory")
        parser.add_argument(f"--{paper}-losses", default="",
                            help=f"draw only the loss curve of {paper}, from this run directory's own history")
    args = parser.parse_args(argv)
    if args.papers is None:
        args.papers = [] if args.spans else ["xl", "compressive", "feedback"]
    torch.set_num_threads(2)
    if args.spans:
        spans_pictures()
    runs: Dict[str, Tuple[str, Optional[float]]] = {}
    if args.long:
        runs.update(long_runs(ROOT / "bench" / "reports" / "results-long.json"))
    for paper in ("xl", "compressive", "feedback"):
        if getattr(args, f"{paper}_checkpoint"):
            runs[paper] = (getattr(args, f"{paper}_checkpoint"), None)
    draw = {"xl": xl_pictures, "compressive": compressive_pictures, "feedback": feedback_pictures}
    for paper in args.papers:
        if getattr(args, f"{paper}_losses"):
            if not losses_from_run(paper, getattr(args, f"{paper}_losses")):
                parser.error(f"--{paper}-losses: the run's checkpoint keeps no loss history")
            continue
        checkpoint, bpc = runs.get(paper, (None, None))
        draw[paper](args.steps, checkpoint, bpc)
        # The curves of the drawn run itself, from its checkpoint; a small model's when it kept none.
        if checkpoint and not losses_from_run(paper, checkpoint):
            losses_picture(paper, args.steps, **SMALL[paper])


if __name__ == "__main__":
    main()
