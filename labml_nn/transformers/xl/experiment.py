r"""
---
title: Training Transformer-XL on Tiny Shakespeare
summary: A character-level Transformer-XL trained on Tiny Shakespeare with contiguous streams, so that its segment-level memory holds the text it just read.
---

# Training Transformer-XL on Tiny Shakespeare

```bash
python -m labml_nn.transformers.xl.experiment                  # about 5 minutes on a 2-core CPU
python -m labml_nn.transformers.xl.experiment --mem-len 0      # the same model without memory
python -m labml_nn.transformers.xl.experiment --help           # every option with its default
torchrun --nproc_per_node=2 -m labml_nn.transformers.xl.experiment   # DistributedDataParallel
python -m labml_nn.experiments.sample --checkpoint checkpoints/xl --prompt "ROMEO:" --length 200
```

This page only chooses a [Transformer-XL](index.html) and its size; everything else, the
[contiguous streams](../../experiments/data.html) that make the memory useful and the
[training loop](../../experiments/trainer.html) that carries the memory from step to step, is shared
by the three memory transformers of this project.

With `seq_len` $n = 64$ and `mem_len` $L = 64$, each of the `depth` $= 4$ layers attends to up to
$n + L = 128$ positions, and because each layer's memory holds the previous segment's hidden states
of the layer below, the longest path back through the memory reaches about
$\text{depth} \times L = 256$ characters: four times what the model sees in one segment, at the
cost of one segment. Setting `--mem-len 0` gives the same model with no memory, the baseline that
the [results table](../../../readme.md#results) compares against (`make results` reproduces it).

## At the paper's scale

The paper's enwik8 models are [presets](../../experiments/presets.html), trained on the
[byte corpus](../../experiments/corpora.html) in mixed precision, compiled, on one GPU or many:

```bash
python -m labml_nn.transformers.xl.experiment --preset xl-enwik8-base --data enwik8.zip --dtype bfloat16 --compile
torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \
    -m labml_nn.transformers.xl.experiment --preset xl-enwik8-base --batch-size 2 --dtype bfloat16 --compile
python -m labml_nn.experiments.evaluate --checkpoint checkpoints/xl --split test   # memory 2100, clamp 820
```

One GPU, as the GPU benchmark (`make bench-gpu`) measures it, bfloat16, the better of eager and compiled:

| preset | training tokens/s | hours to the paper's steps |
|---|---|---|
| `xl-enwik8-base` (400,000 steps of 22 × 512 tokens) | {report:gpu.xl-enwik8-base_tokens_per_s} | {report:gpu.xl-enwik8-base_hours} |

(`xl-enwik8-large` is not in the GPU benchmark, to keep it within its eight minutes.)
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from labml_nn.experiments.config import SpanConfig, at_least, option, probability
from labml_nn.experiments.presets import presets_of
from labml_nn.experiments.trainer import Experiment, clamp_spans_after_step, run_experiment, span_language_model_loss
from labml_nn.transformers.xl import TransformerXL


@dataclass
class Config(SpanConfig):
    """Train a character-level Transformer-XL on Tiny Shakespeare."""
    name: str = option("xl", "name of the run; checkpoints go to CHECKPOINT_DIR/NAME")
    dim: int = option(128, "model width", at_least(1))
    depth: int = option(4, "number of layers", at_least(1))
    heads: int = option(4, "attention heads", at_least(1))
    dim_head: int = option(32, "width of each head", at_least(1))
    ff_mult: int = option(4, "the feed-forward network's hidden width, as a multiple of dim", at_least(1))
    mem_len: int = option(64, "hidden states kept per layer (0: no memory)", at_least(0))
    positions: str = option("relative", "'relative' (the paper's) or 'absolute', the ablation the paper argues against: "
                                        "positions encoded within each segment, plain attention",
                            lambda value: None if value in ("relative", "absolute") else "expected relative or absolute")
    attn_dropout: float = option(0.0, "dropout on the attention weights", probability)
    ff_dropout: float = option(0.0, "dropout in the feed-forward blocks", probability)
    activation: str = option("gelu", "the feed-forward network's activation: 'gelu', or 'relu' (the authors' code)",
                             lambda value: None if value in ("gelu", "relu") else "expected gelu or relu")


def model_kwargs(c: Config, num_tokens: int) -> Dict[str, Any]:
    """The constructor arguments of `TransformerXL`; the checkpoint stores them."""
    return dict(num_tokens=num_tokens, dim=c.dim, depth=c.depth, heads=c.heads, dim_head=c.dim_head, ff_mult=c.ff_mult,
                mem_len=c.mem_len, attn_dropout=c.attn_dropout, ff_dropout=c.ff_dropout,
                positions=c.positions, **activation_kwargs(c.activation), **span_kwargs(c))


def activation_kwargs(activation: str) -> Dict[str, str]:
    """
    `activation` as a constructor argument, left out when it is the default, GELU: a checkpoint saved before
    the option existed stores no activation, and `--resume` compares the stored arguments with these.
    """
    return {} if activation == "gelu" else {"activation": activation}


def span_kwargs(c: Config) -> Dict[str, Any]:
    """The [adaptive span](../adaptive_span.html)'s constructor arguments, left out without one (`--span-ramp 0`),
    for the same reason."""
    return dict(span_ramp=c.span_ramp, span_trim_step=c.span_trim_step, span_init=c.span_init) if c.span_ramp else {}


# Transformer-XL trains as every language model here; with an adaptive span, the span loss joins the training
# loss and the span ratios are clamped after each step.
EXPERIMENT = Experiment(Config, TransformerXL, model_kwargs, loss=span_language_model_loss,
                        after_step=clamp_spans_after_step, presets=presets_of("xl"))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    return run_experiment(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
