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
same [data](../../experiments/algorithmic.html), loss and training loop:

* **`feedback`**: the [Feedback Transformer](index.html), the exact token-by-token model
  (`window` $n_w = 1$), with a memory of $L$ = `mem_len` memory vectors. As in the authors' script,
  each layer projects the memory with its own $W^l_K, W^l_V$ (`shared_kv=False`).
* **`xl`**: the Transformer. The authors' baseline is a pre-norm transformer that keeps the last 100
  inputs of each layer from the blocks before and attends to the 100 positions before each query,
  with the memory carried from step to step: in this project, [Transformer-XL](../xl/index.html) with
  a memory of $L$ = `mem_len` = 100 hidden states per layer.

The loss is the cross-entropy of the printed values only (the targets are $-100$ elsewhere) and the
measure is their [accuracy](../../experiments/algorithmic.html#accuracy), both with the memory
carried across the segments of each stream.

## At the authors' sizes

The two [presets](../../experiments/presets.html) are the authors' runs
(`experiments/feedback/algorithmic_3var.sh` of
[facebookresearch/transformer-sequential](https://github.com/facebookresearch/transformer-sequential)):
`feedback-algorithmic` and `xl-algorithmic`. Where this code differs from theirs:

| | the authors | here |
|---|---|---|
| the Transformer's keys | exactly the 100 positions before the query | Transformer-XL with `mem_len` 100: the memory and the block up to the query, itself included (101 to 164 positions): the baseline sees more |
| positions | one learned key per distance, shared by the layers | [relative attention](../xl/relative_mha.html): sinusoids projected by $W_{k,R}$ in each layer, with Transformer-XL's $\mathbf{u}$, $\mathbf{v}$ |
| feed-forward activation | ReLU | GELU |
| initialisation | output projections scaled by $1 / \sqrt{2N}$ | PyTorch's defaults |
| the Feedback memory's keys | the layer's own pre-norm | a norm of the memory projection's own ([`MemoryKV`](index.html#MemoryKV)) |
| the first block | a memory of 100 zero vectors | an empty memory |
| the end of the training streams | the next pass starts at a random offset below 64 | at offset 0 |
| batch | 512 streams over 2 GPUs | `batch_size` is per process: 512 on one |

The optimiser is the authors': Adam (AdamW without weight decay), lr $10^{-4}$ after 1,000 steps of
linear warm-up, then constant (`min_lr_ratio` 1), the gradient norm clipped at 0.1, 50,000 steps.
"""

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from torch import nn

from labml_nn.experiments.algorithmic import PAPER_PROGRAMS, VARIABLE_NAMES, AlgorithmicData, load_algorithmic
from labml_nn.experiments.config import TrainConfig, at_least, between, option, probability
from labml_nn.transformers.feedback import STEPS, FeedbackTransformer
from labml_nn.transformers.xl import TransformerXL

# The models this experiment compares, by the name `--model` takes.
MODELS = {"feedback": FeedbackTransformer, "xl": TransformerXL}


@dataclass
class Config(TrainConfig):
    """Train the Feedback Transformer, or the Transformer-XL baseline, to predict what small programs print."""
    name: str = option("algorithmic", "name of the run; checkpoints go to CHECKPOINT_DIR/NAME")
    model: str = option("feedback", "'feedback' (the Feedback Transformer) or 'xl' (the Transformer baseline: "
                                    "Transformer-XL)",
                        lambda value: None if value in MODELS else f"expected one of {', '.join(MODELS)}")

    # ### The task
    statements: int = option(100, "statements per program (the paper: 100)", at_least(1))
    variables: int = option(3, "variables of the programs (the paper: 3 or 5)", between(1, len(VARIABLE_NAMES)))
    train_programs: int = option(PAPER_PROGRAMS["train"], "training programs", at_least(1))
    valid_programs: int = option(PAPER_PROGRAMS["valid"], "validation programs", at_least(1))
    test_programs: int = option(PAPER_PROGRAMS["test"], "test programs", at_least(1))
    task_seed: int = option(0, "seed of the programs (the run's --seed does not change them)", at_least(0))

    # ### The models
    dim: int = option(256, "model width", at_least(1))
    depth: int = option(4, "number of layers", at_least(1))
    heads: int = option(4, "attention heads", at_least(1))
    dim_head: int = option(64, "width of each head", at_least(1))
    ff_mult: int = option(4, "the feed-forward network's hidden width, as a multiple of dim", at_least(1))
    mem_len: int = option(100, "memory: past memory vectors (feedback) or hidden states per layer (xl)", at_least(1))
    attn_dropout: float = option(0.2, "dropout on the attention weights", probability)
    ff_dropout: float = option(0.2, "dropout in the feed-forward blocks", probability)
    shared_kv: bool = option(False, "feedback: one key/value projection of the memory for all layers")
    window: int = option(1, "feedback: tokens computed in parallel (1: the paper's exact model)", at_least(1))
    step: str = option("hand-written", "feedback: how the exact model's steps run: 'hand-written' or 'autograd'",
                       lambda value: None if value in STEPS else f"expected one of {', '.join(STEPS)}")


def model_class_and_kwargs(c: Config, num_tokens: int) -> Tuple[type, Dict[str, Any]]:
    """The class of `--model` and its constructor arguments (the checkpoint stores them)."""
    common = dict(num_tokens=num_tokens, dim=c.dim, depth=c.depth, heads=c.heads, dim_head=c.dim_head,
                  ff_mult=c.ff_mult, mem_len=c.mem_len, attn_dropout=c.attn_dropout, ff_dropout=c.ff_dropout)
    if c.model == "feedback":
        return FeedbackTransformer, dict(common, seq_len=c.window, shared_kv=c.shared_kv, step=c.step)
    return TransformerXL, common


def build_model(c: Config, num_tokens: int) -> nn.Module:
    """The model of `--model`, built from `model_class_and_kwargs`."""
    model_class, kwargs = model_class_and_kwargs(c, num_tokens)
    return model_class(**kwargs)


def task_data(c: Config) -> AlgorithmicData:
    """The vocabulary and the three splits of the task `c` describes, as streams of tokens and targets."""
    return load_algorithmic(seed=c.task_seed, statements=c.statements, variables=c.variables,
                            train_programs=c.train_programs, valid_programs=c.valid_programs,
                            test_programs=c.test_programs)
