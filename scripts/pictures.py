"""
Draw the pictures of the paper pages into `labml_nn/transformers/<paper>/pictures/` (`make pictures`),
with the drawing functions of the package (`labml_nn.experiments.pictures`) and small models trained by
the experiments' code.

```
python -m scripts.pictures                     # every paper, a few minutes on 2 cores
python -m scripts.pictures --papers xl         # only Transformer-XL
python -m scripts.pictures --steps 600         # train the small models longer
python -m scripts.pictures --xl-checkpoint checkpoints/xl   # draw a model trained by its experiment
```
"""

import argparse
import json
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from labml_nn.experiments.pictures import (DPI, compressive_diagram, feedback_diagram, feedback_layer_weights,  # noqa: E402
                                           feedback_timing, memory_timeline, plot_attention_distance,
                                           plot_attention_heads, plot_layer_weights, plot_losses,
                                           plot_memory_attention_mass, plot_memory_timeline, plot_timing,
                                           segment_attention, text_segments, train_small, xl_diagram)

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


def xl_pictures(steps: int, checkpoint: Optional[str] = None) -> None:
    save(xl_diagram(), "xl", "memory_diagram")
    if checkpoint:
        from labml_nn.experiments.checkpoint import load_checkpoint
        from labml_nn.experiments.data import StreamBatcher, load_text, prepare
        from labml_nn.experiments.sample import load_model, model_directory
        model, vocab = load_model(checkpoint)
        seq_len = load_checkpoint(model_directory(checkpoint)).trainer["config"]["seq_len"]
        data = prepare(load_text(os.environ.get("TINY_SHAKESPEARE_PATH") or None))
        windows = StreamBatcher(data.valid, 8).windows(seq_len)
        segments = [next(windows)[0] for _ in range(3)]
    else:
        trainer = train_small("xl", steps=steps, mem_len=32)
        model, seq_len = trainer.module, trainer.config.seq_len
        segments = text_segments(trainer, 3)
        save(plot_losses(trainer.history, "Transformer-XL, small model on Tiny Shakespeare"), "xl", "losses")
    attn, _ = segment_attention(model, segments)
    mem_len = attn[0].shape[-1] - attn[0].shape[-2]
    save(plot_attention_heads(attn, "Transformer-XL attention (√ scale) of a trained model: "
                              f"{mem_len} memory positions, then the segment", front=[(mem_len, "memory")]),
         "xl", "attention_heads")
    save(plot_attention_distance(attn, seq_len, "How far back Transformer-XL attends"), "xl",
         "attention_distance")


def compressive_pictures(steps: int) -> None:
    save(compressive_diagram(), "compressive", "memory_diagram")
    seq_len, mem_len, cmem_len, c = 16, 16, 8, 4
    save(plot_memory_timeline(memory_timeline(seq_len, mem_len, cmem_len, c, 8), seq_len,
                              f"Where each position is after each segment (n={seq_len}, L={mem_len}, "
                              f"L_c={cmem_len}, c={c})"), "compressive", "memory_timeline")
    trainer = train_small("compressive", steps=steps, mem_len=16, cmem_len=8, compression_rate=4)
    save(plot_losses(trainer.history, "Compressive Transformer, small model on Tiny Shakespeare"),
         "compressive", "losses")
    model = trainer.module
    attn, _ = segment_attention(model, text_segments(trainer, 6))
    save(plot_memory_attention_mass(attn, model.cmem_len, model.mem_len,
                                    "Where each head of a trained model attends"), "compressive",
         "attention_mass")


def feedback_pictures(steps: int) -> None:
    save(feedback_diagram(), "feedback", "memory_diagram")
    # Variant 1 of the paper: every layer projects the memory with its own keys and values.
    trainer = train_small("feedback", steps=steps, seq_len=32, mem_len=32, curriculum_steps=0, shared_kv=False)
    save(plot_losses(trainer.history, "Feedback Transformer, small model on Tiny Shakespeare"),
         "feedback", "losses")
    save(plot_layer_weights(feedback_layer_weights(trainer.module),
                            "Learned share of each layer in the feedback memory (variant 1)"), "feedback", "layer_weights")
    timing = feedback_timing([16, 32, 64, 128])
    save(plot_timing(timing, "Feedback Transformer against Transformer-XL of the same size (dim 64, depth 2, batch 4)"),
         "feedback", "timing")
    # The caption quotes the ranges of the ratios, from this report rather than typed into the page.
    train = [f / x for f, x in zip(timing["feedback_train"], timing["xl_train"])]
    generate = [f / x for f, x in zip(timing["feedback_generate"], timing["xl_generate"])]
    write_figures(feedback_train_slowdown=f"{min(train):.0f}–{max(train):.0f}×",
                  feedback_generate_ratio=f"{min(generate):.1f}–{max(generate):.1f}×")


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
    parser.add_argument("--papers", nargs="+", default=["xl", "compressive", "feedback"])
    parser.add_argument("--steps", type=int, default=200, help="training steps of each small model")
    parser.add_argument("--xl-checkpoint", default="", help="draw this Transformer-XL checkpoint instead of training")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    for paper in args.papers:
        {"xl": lambda: xl_pictures(args.steps, args.xl_checkpoint or None),
         "compressive": lambda: compressive_pictures(args.steps),
         "feedback": lambda: feedback_pictures(args.steps)}[paper]()


if __name__ == "__main__":
    main()
