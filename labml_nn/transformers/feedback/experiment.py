r"""
---
title: Training the Feedback Transformer on Tiny Shakespeare
summary: A character-level Feedback Transformer trained with a short-to-long segment curriculum, so that the slow token-by-token recurrence is cheap while the model learns the basics.
---

# Training the Feedback Transformer on Tiny Shakespeare

```bash
python -m labml_nn.transformers.feedback.experiment          # a few minutes on a 2-core CPU
python -m labml_nn.transformers.feedback.experiment --help   # every option with its default
python -m labml_nn.experiments.sample --checkpoint checkpoints/feedback --prompt "ROMEO:"
```

The [Feedback Transformer](index.html) lets every layer attend to a single memory built from *all*
layers of the past steps, so even the lowest layer sees the highest-level representations of what
came before. The price is recurrence: token $t$ cannot be computed before token $t - 1$ has gone
through every layer, so a segment of $T$ tokens costs $T$ sequential steps instead of one parallel
pass. On a CPU that makes this model several times slower per character than
[Transformer-XL](../xl/experiment.html), which is why its defaults are smaller.

Two lengths are easy to confuse here. The experiment's `seq_len` is how many characters one training
segment holds; the model's `window`, set by `--window`, is how many of them it processes in
parallel. The default window of 1 trains the paper's exact token-by-token model; a larger one trains
the faster [windowed approximation](index.html). `--step autograd` trains the exact model with the
recurrence written on the [model's page](index.html#FeedbackTransformer.step) instead of the
[hand-written step](step.html); `--step autograd --compile` compiles it.

## A short-to-long curriculum

Since the cost of a step grows with its segment length, we begin with short segments, whose steps
are cheap, and lengthen them as training goes on. The curriculum is our choice for a small CPU
budget, made for speed; see the [Feedback Transformer paper](https://arxiv.org/abs/2002.09402) for
the authors' own training setup. Over the first `curriculum_steps` steps the segment length doubles from `curriculum_start_len` up to
`seq_len`, in equal stages:

$$T_t = \min\Big(T,\; T_0 \cdot 2^{\lfloor t / s \rfloor}\Big), \qquad
s = \frac{\text{curriculum\_steps}}{\lceil \log_2 (T / T_0) \rceil + 1}.$$

The memory makes this painless: it is carried from segment to segment whatever their lengths, and
the [streams](../../experiments/data.html) advance by exactly the characters read, so no text is
skipped or read twice. Validation always uses the full `seq_len`. `--curriculum-steps 0` turns the
curriculum off.

## At the paper's scale

```bash
python -m labml_nn.transformers.feedback.experiment --preset feedback-enwik8 --data enwik8.zip --dtype bfloat16
```

The [preset](../../experiments/presets.html) is the authors' released enwik8 model as their
`enwik8.sh` trains it: per-layer keys and values, ReLU, their learned position keys and an
[adaptive span](../adaptive_span.html) over an attention limit of 8,192 (`--span-ramp 32 --span-loss 5e-7`),
with Adam as theirs (`--weight-decay 0 --adam-beta2 0.999 --min-lr-ratio 1`). Its
[differences](index.html#differences) from their code are on the model's page. With the span, each layer
reads only the memory entries its heads reach, so the cost of a token follows the learned spans rather
than the attention limit. One GPU, as the GPU benchmark (`make bench-gpu`) measures the preset's size
with the model's defaults (sinusoid keys, GELU, no span), at the benchmark's memory of 512: {report:gpu.feedback-enwik8_tokens_per_s} training
tokens per second; hours to the preset's steps: {report:gpu.feedback-enwik8_hours}.
"""

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from labml_nn.experiments.config import SpanConfig, at_least, option, probability
from labml_nn.experiments.presets import presets_of
from labml_nn.experiments.trainer import Experiment, clamp_spans_after_step, run_experiment, span_language_model_loss
from labml_nn.transformers.feedback import POSITION_KEYS, STEPS, FeedbackTransformer


@dataclass
class Config(SpanConfig):
    """Train a character-level Feedback Transformer on Tiny Shakespeare."""
    name: str = option("feedback", "name of the run; checkpoints go to CHECKPOINT_DIR/NAME")
    seq_len: int = option(32, "characters per segment (the longest, once the curriculum is over)", at_least(1))
    dim: int = option(128, "model width", at_least(1))
    depth: int = option(4, "number of layers", at_least(1))
    heads: int = option(4, "attention heads", at_least(1))
    dim_head: int = option(32, "width of each head", at_least(1))
    ff_mult: int = option(4, "the feed-forward network's hidden width, as a multiple of dim", at_least(1))
    mem_len: int = option(64, "past steps of the shared feedback memory", at_least(1))
    shared_kv: bool = option(True, "compute keys and values of the memory once, shared by all layers")
    attn_dropout: float = option(0.0, "dropout on the attention weights", probability)
    ff_dropout: float = option(0.0, "dropout in the feed-forward blocks", probability)
    window: int = option(1, "tokens the model processes in parallel, its window (1: the paper's exact "
                            "token-by-token model; larger trades exactness for speed)", at_least(1))
    step: str = option("hand-written", "how the exact model's steps run: 'hand-written' (its gradient written out, "
                                       "feedback/step.py) or 'autograd' (the model page's recurrence through autograd)",
                       lambda value: None if value in STEPS else f"expected one of {', '.join(STEPS)}")
    activation: str = option("gelu", "the feed-forward activation: 'gelu' or 'relu' (the authors')",
                             lambda value: None if value in ("gelu", "relu") else "expected gelu or relu")
    position_keys: str = option("sinusoid", "the position keys: 'sinusoid' (Transformer-XL's, through a projection in "
                                            "every layer) or 'learned' (the authors': one learned key per distance, "
                                            "shared by all layers and heads)",
                                lambda value: None if value in POSITION_KEYS else
                                f"expected one of {', '.join(POSITION_KEYS)}")
    curriculum_steps: int = option(300, "steps over which segments grow to seq_len (0: no curriculum)", at_least(0))
    curriculum_start_len: int = option(8, "segment length at the start of the curriculum", at_least(1))


def model_kwargs(c: Config, num_tokens: int) -> Dict[str, Any]:
    """The constructor arguments of `FeedbackTransformer`; the checkpoint stores them."""
    return dict(num_tokens=num_tokens, dim=c.dim, depth=c.depth, window=c.window, mem_len=c.mem_len,
                dim_head=c.dim_head, ff_mult=c.ff_mult, heads=c.heads, attn_dropout=c.attn_dropout, ff_dropout=c.ff_dropout,
                shared_kv=c.shared_kv, activation=c.activation, position_keys=c.position_keys,
                span_ramp=c.span_ramp or None, span_trim_step=c.span_trim_step, span_init=c.span_init, step=c.step)


def curriculum_seq_len(step: int, seq_len: int, start_len: int, curriculum_steps: int) -> int:
    r"""$T_t$ from the equation above."""
    if curriculum_steps <= 0 or start_len >= seq_len:
        return seq_len
    stages = math.ceil(math.log2(seq_len / start_len)) + 1
    stage = step * stages // curriculum_steps
    return min(seq_len, start_len * 2 ** stage)


def seq_len_at(step: int, c: Config) -> int:
    """The training loop's `seq_len_at` hook: the curriculum's segment length at `step`."""
    return curriculum_seq_len(step, c.seq_len, c.curriculum_start_len, c.curriculum_steps)


# With an adaptive span, the span loss joins the training loss and the span ratios are clamped after each step.
EXPERIMENT = Experiment(Config, FeedbackTransformer, model_kwargs, loss=span_language_model_loss,
                        seq_len_at=seq_len_at, after_step=clamp_spans_after_step, presets=presets_of("feedback"))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    return run_experiment(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
