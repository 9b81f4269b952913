r"""
---
title: Running a program, token by token, with the Feedback Transformer
summary: The Feedback paper's code-execution task, where the printed values of a program depend on every update before them: a Transformer with more layers fails, the Feedback Transformer does not. The two models, their options at the authors' sizes, and what differs from the authors' runs.
---

# Running a program, token by token

A transformer's layer $l$ at step $t$ reads layer $l - 1$ of the steps before it. Whatever the top
layer of step $t - 1$ concluded is out of reach of every layer of step $t$: the conclusion has to be
recomputed, from lower layers, at every step. For a quantity that changes at each step and depends
on its last value, a *state*, each update needs a layer more, and a stack of $N$ layers can only
follow $N$ of them. The [Feedback Transformer](index.html) builds the memory of each step from all
its layers, so the bottom layer of step $t$ reads what the top layer of step $t - 1$ concluded: a
state can be carried from step to step, however many updates it goes through.

The paper tests it with [small programs](../../experiments/algorithmic.html) whose printed values a
model predicts, word by word:

```
x = 7 ; y = 3 ; x ++ ; print x ; if x > y : y -- ; z = 10 ; print y ; ...
```

The value printed is the result of every update of the variable since its assignment, each
condition decided by the values of its moment. With programs of 100 statements over 3 variables, the
authors report test accuracy 99.1% for a 4-layer Feedback Transformer and 33.7% for an 8-layer
Transformer, twice as deep, at the same width (256), the same attention limit (100 tokens), the same
blocks (64 tokens per step) and the same training.

## The two models

This experiment trains either model on the task (`--model feedback` or `--model xl`), with the
same [data](../../experiments/algorithmic.html), loss and [training loop](../../experiments/trainer.html):

* **`feedback`**: the [Feedback Transformer](index.html), the exact token-by-token model
  (`window` $n_w = 1$), with a memory of $L$ = `mem_len` memory vectors. As in the authors' script,
  each layer projects the memory with its own $W^l_K, W^l_V$ (`shared_kv=False`).
* **`xl`**: the Transformer. The authors' baseline is a pre-norm transformer that keeps the last 100
  inputs of each layer from the blocks before and attends to the 100 positions before each query,
  with the memory carried from step to step: in this project, [Transformer-XL](../xl/index.html) with
  a memory of $L$ = `mem_len` hidden states per layer.

```bash
python -m labml_nn.transformers.feedback.algorithmic --model feedback --depth 4   # the Feedback Transformer
python -m labml_nn.transformers.feedback.algorithmic --model xl --depth 8         # the Transformer, twice as deep
python -m labml_nn.transformers.feedback.algorithmic --help                       # every option with its default
python -m labml_nn.experiments.sample --checkpoint checkpoints/algorithmic --prompt "x = 7 ; x -- ; print x ;" --length 1
```

The loss is the cross-entropy of the printed values only (the targets are $-100$ elsewhere), and the
measure is their [accuracy](../../experiments/algorithmic.html#accuracy), both with the memory
carried across the segments of each stream. Every `--valid-interval` steps the trainer reports the
accuracy on the validation programs (the run's summary keeps it by step, in its `history`, and the
last one as `valid_accuracy`); a finished run then reads the test programs once, from its last
checkpoint, in streams with the memory carried, and adds `test_accuracy` to the summary: the number
the paper reports. A sample is the prompt, a program, followed by the model's next word: when the
prompt ends with the `;` of a `print`, that word is the model's answer.

The defaults are a small configuration for a CPU: programs of 10 statements, width 64, segments and
memory of 32 tokens. The [Feedback Transformer's page](readme.html) measures both models on programs
a little longer, over several seeds (`make results-algorithmic`), and gives the command that runs both
at the paper's size on a GPU.

## At the authors' sizes

The two [presets](../../experiments/presets.html) are the authors' runs
(`experiments/feedback/algorithmic_3var.sh` of
[facebookresearch/transformer-sequential](https://github.com/facebookresearch/transformer-sequential)):
`feedback-algorithmic` and `xl-algorithmic`, on one GPU:

```bash
python -m labml_nn.transformers.feedback.algorithmic --preset feedback-algorithmic --device cuda --step autograd --compile
python -m labml_nn.transformers.feedback.algorithmic --preset xl-algorithmic --device cuda --compile
```

Where this code differs from theirs:

| | the authors | here |
|---|---|---|
| the Transformer's keys | exactly the 100 positions before the query | Transformer-XL with `mem_len` 100: the memory and the block up to the query, itself included (101 to 164 positions): the baseline sees more |
| positions | one learned key per distance, shared by the layers | [relative attention](../xl/relative_mha.html): sinusoids projected by $W_{k,R}$ in each layer, with Transformer-XL's $\mathbf{u}$, $\mathbf{v}$ |
| feed-forward activation | ReLU | GELU |
| the attention's output projection | no bias | a bias |
| initialisation | output projections scaled by $1 / \sqrt{2N}$ | PyTorch's defaults |
| the Feedback memory's keys | the layer's own pre-norm | a norm of the memory projection's own ([`MemoryKV`](index.html#MemoryKV)) |
| the first block | a memory of 100 zero vectors | an empty memory |
| the end of the training streams | the next pass starts at a random offset below 64 | at offset 0 |
| batch | 512 streams over 2 GPUs | `batch_size` is per process: 512 on one |

The optimiser is the authors': Adam (AdamW without weight decay), lr $10^{-4}$ after 1,000 steps of
linear warm-up, then constant (`min_lr_ratio` 1), the gradient norm clipped at 0.1, 50,000 steps.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from labml_nn.experiments.algorithmic import PAPER_PROGRAMS, VARIABLE_NAMES, load_algorithmic
from labml_nn.experiments.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from labml_nn.experiments.config import (DTYPES, TrainConfig, UsageError, at_least, between, option, parse_config,
                                         probability)
from labml_nn.experiments.data import DataError, TokenData, Vocabulary
from labml_nn.experiments.presets import presets_of
from labml_nn.experiments.run import finite_or_none, one_line_errors, resolve_device
from labml_nn.experiments.sample import load_model
from labml_nn.experiments.trainer import Experiment, Metrics, evaluate_streams, run_experiment
from labml_nn.transformers.feedback import STEPS, FeedbackTransformer
from labml_nn.transformers.xl import TransformerXL

# The models this experiment compares, by the name `--model` takes.
MODELS = {"feedback": FeedbackTransformer, "xl": TransformerXL}


@dataclass
class Config(TrainConfig):
    """Train the Feedback Transformer, or the Transformer baseline, to predict what small programs print."""
    name: str = option("algorithmic", "name of the run; checkpoints go to CHECKPOINT_DIR/NAME")
    model: str = option("feedback", "'feedback' (the Feedback Transformer) or 'xl' (the Transformer baseline: "
                                    "Transformer-XL)",
                        lambda value: None if value in MODELS else f"expected one of {', '.join(MODELS)}")

    # ### The task
    statements: int = option(10, "statements per program (the paper: 100)", at_least(1))
    variables: int = option(3, "variables of the programs (the paper: 3 or 5)", between(1, len(VARIABLE_NAMES)))
    train_programs: int = option(PAPER_PROGRAMS["train"], "training programs", at_least(1))
    valid_programs: int = option(300, "validation programs (the paper: 1,000)", at_least(1))
    test_programs: int = option(PAPER_PROGRAMS["test"], "test programs", at_least(1))
    task_seed: int = option(0, "seed of the programs (the run's --seed does not change them)", at_least(0))

    # ### The models
    dim: int = option(64, "model width", at_least(1))
    depth: int = option(4, "number of layers (the paper: 4 for feedback, 8 for xl)", at_least(1))
    heads: int = option(4, "attention heads", at_least(1))
    dim_head: int = option(16, "width of each head", at_least(1))
    ff_mult: int = option(4, "the feed-forward network's hidden width, as a multiple of dim", at_least(1))
    mem_len: int = option(32, "memory: past memory vectors (feedback) or hidden states per layer (xl)", at_least(1))
    attn_dropout: float = option(0.0, "dropout on the attention weights", probability)
    ff_dropout: float = option(0.0, "dropout in the feed-forward blocks", probability)
    shared_kv: bool = option(False, "feedback: one key/value projection of the memory for all layers")
    window: int = option(1, "feedback: tokens computed in parallel (1: the paper's exact model)", at_least(1))
    step: str = option("hand-written", "feedback: how the exact model's steps run: 'hand-written' or 'autograd'",
                       lambda value: None if value in STEPS else f"expected one of {', '.join(STEPS)}")

    # ### Training: the trainer's options, with this task's defaults
    seq_len: int = option(32, "tokens per segment", at_least(1))
    batch_size: int = option(32, "streams per process and micro-batch", at_least(1))
    steps: int = option(2000, "training steps", at_least(1))
    weight_decay: float = option(0.0, "AdamW's decoupled weight decay (the authors: Adam, none)", at_least(0.0))
    valid_interval: int = option(250, "validate every this many steps (0: only at the end)", at_least(0))
    sample_interval: int = option(0, "print a sample every this many steps (0: only at the end)", at_least(0))
    # A sample is the prompt followed by the model's next word: after the `;` of a `print`, its answer.
    prompt: str = option("x = 3 ; y = 5 ; x ++ ; if x < y : y -- ; print y ;",
                         "a program the samples continue (its words must be the task's)")
    sample_length: int = option(1, "words to sample: 1 is the model's answer to a prompt that ends with a print",
                                at_least(0))


# ## The data and the models

def task_data(c: Config, vocab: Optional[Vocabulary] = None) -> TokenData:
    r"""
    The trainer's `data` hook: the three splits of the task `c` describes, each the programs one after the
    other with their targets ($-100$ but at the `;` of each `print`). `vocab` is a resumed run's: it must be
    the task's, which is fixed for a number of variables.
    """
    data = load_algorithmic(seed=c.task_seed, statements=c.statements, variables=c.variables,
                            train_programs=c.train_programs, valid_programs=c.valid_programs,
                            test_programs=c.test_programs)
    if vocab is not None and (vocab.itos != data.vocab.itos or vocab.separator != data.vocab.separator):
        raise DataError(f"the checkpoint's vocabulary ({len(vocab)} tokens) is not this task's "
                        f"({len(data.vocab)} words for --variables {c.variables}): resume with the options it was "
                        f"trained with")
    return data


def feedback_kwargs(c: Config, num_tokens: int) -> Dict[str, Any]:
    """The constructor arguments of `FeedbackTransformer` (the checkpoint stores them)."""
    return dict(num_tokens=num_tokens, dim=c.dim, depth=c.depth, heads=c.heads, dim_head=c.dim_head,
                ff_mult=c.ff_mult, mem_len=c.mem_len, attn_dropout=c.attn_dropout, ff_dropout=c.ff_dropout,
                window=c.window, shared_kv=c.shared_kv, step=c.step)


def xl_kwargs(c: Config, num_tokens: int) -> Dict[str, Any]:
    """The constructor arguments of `TransformerXL` (the checkpoint stores them)."""
    return dict(num_tokens=num_tokens, dim=c.dim, depth=c.depth, heads=c.heads, dim_head=c.dim_head,
                ff_mult=c.ff_mult, mem_len=c.mem_len, attn_dropout=c.attn_dropout, ff_dropout=c.ff_dropout)


class AccuracyExperiment(Experiment):
    """An experiment whose presets carry the paper's accuracy, which `--help` lists."""

    def help(self) -> str:
        return ((self.description or self.config_class.__doc__ or "").strip() + "\n\nPresets (--preset NAME): "
                + "; ".join(f"{name}: {preset.paper_accuracy:.1%} test accuracy in the paper"
                            for name, preset in self.presets.items()))


# One experiment per model: a checkpoint names its model's class, which is what `--model` chooses. Both
# train on the task's data with the trainer's loss, which counts only the positions with a target.
EXPERIMENTS = {
    "feedback": AccuracyExperiment(Config, FeedbackTransformer, feedback_kwargs, data=task_data,
                                   presets=presets_of("algorithmic")),
    "xl": AccuracyExperiment(Config, TransformerXL, xl_kwargs, data=task_data, presets=presets_of("algorithmic")),
}


# ## The test split
#
# The trainer validates on the `valid` programs; the accuracy the paper reports is on the `test` ones.
# A finished run reads them once from its last checkpoint, as the validation does: in streams, with the
# memory carried from window to window, the last shorter window included.

def test_metrics(c: Config, checkpoint: str) -> Metrics:
    """The loss and the accuracy of the model saved in `checkpoint` on the test programs of the task `c` describes."""
    device = resolve_device(c.device, 0)
    model, vocab = load_model(checkpoint, str(device))
    batches = task_data(c, vocab).streams("test", c.batch_size)
    autocast = lambda: torch.autocast(device.type, dtype=DTYPES[c.dtype], enabled=c.dtype != "float32")
    return evaluate_streams(model, batches, c.seq_len, batches.num_windows(c.seq_len, tail=True), device, autocast,
                            tail=True)


# The options that make the task: a run resumed with others would read other programs.
TASK_OPTIONS = ("statements", "variables", "train_programs", "valid_programs", "test_programs", "task_seed")


def check_same_task(c: Config) -> None:
    """`--resume` with other task options is refused, naming the old and the new value."""
    last = latest_checkpoint(Path(c.checkpoint_dir) / c.name) if c.resume else None
    if last is None:
        return  # nothing to compare with: the run says what is missing
    try:
        saved = load_checkpoint(last).trainer.get("config", {})
    except CheckpointError:
        return  # the run reads the newest readable checkpoint, and says why it skips this one
    for name in TASK_OPTIONS:
        if name in saved and saved[name] != getattr(c, name):
            option_name = "--" + name.replace("_", "-")
            raise UsageError(f"--resume: {last} was trained on the task with {option_name} {saved[name]!r}, this run "
                             f"has {option_name} {getattr(c, name)!r}. Resume with the task it was trained on, or "
                             f"start a new run.")


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Train `--model` on the task; then, for a finished run, the accuracy on the test programs (added to the
    summary: `test_accuracy`, `test_bits`, `test_targets`)."""
    with one_line_errors():
        c = parse_config(Config, argv, EXPERIMENTS["feedback"].help(), presets_of("algorithmic"))
        check_same_task(c)
    summary = run_experiment(EXPERIMENTS[c.model], argv)
    # Every process of a multi-process run has the same weights: the first one reads the test programs.
    if not summary["finished"] or int(os.environ.get("RANK", "0")) != 0:
        return summary
    with one_line_errors():
        test = test_metrics(c, summary["checkpoint"])
    summary.update(test_accuracy=test.accuracy, test_bits=test.bits, test_targets=test.targets)
    print(f"test: accuracy {test.accuracy:.4f} over {test.targets:,} printed values, {test.bits:.4f} bits per target")
    if c.summary:
        Path(c.summary).write_text(json.dumps(finite_or_none(summary), indent=2, allow_nan=False))
    return summary


if __name__ == "__main__":
    main()
