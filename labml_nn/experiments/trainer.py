r"""
---
title: The training loop
summary: The whole training procedure of every memory transformer in this project as one function (batch, forward with the carried memory, loss over the counted targets, backward, clipping, the optimiser's step, the schedule, validation, checkpoints) and the hooks through which an experiment trains differently.
---

# The training loop

[`train`](#train), at the bottom of this page, is the whole training procedure of every experiment in
the project, one function to read from top to bottom. Around it, [the run](run.html) builds what it
works on (the model, its optimisers, the streams, the state a checkpoint carries) and does everything
that is not training: processes, the run directory, resuming, reporting.

The part of training a memory transformer that a framework would hide is the one that matters here:
**the memory is state that outlives a step**. At step $s$ the model reads segment $X_s$
`[batch_size, seq_len]` together with the memory $m_{s-1}$ it returned at step $s - 1$, and returns
logits and a new memory:

$$\text{logits}_s, m_s = f_\theta(X_s, m_{s-1}).$$

The gradient stops at $m_{s-1}$ (the models return it detached), so a step costs the same however long
the run; but the memory must be carried from step to step, over the validation text as well, across a
`--resume`, and it must belong to the same text as $X_s$, which is why the batches come from
[contiguous streams](data.html).

## A step

1. **The batch**: the next window of every stream, inputs $X_s$ and targets $Y_s$; the memory is
   cleared if the streams started over.
2. **The schedule** sets the learning rate $\eta_s$.
3. **Forward and backward**: the loss of $X_s$ read with $m_{s-1}$, back-propagated.
4. **Clip and step**: the gradient norm is clipped, AdamW steps, and the experiment's `after_step` hook
   runs (the [adaptive span](../transformers/adaptive_span.html) clamps its span ratios there).
5. Every so often, **validate**, sample, and **save a checkpoint**.

## The loss, over the counted targets

Each position $i$ of stream $b$ has a target $y_{b,i}$: the next token for a language model, or, for
a task that asks only some questions, a target at some positions and `IGNORE` at the others
([data](data.html#targets)). Let $C$ be the positions with a target. The loss is the mean
cross-entropy over them,

$$\mathcal{L} = -\frac{1}{|C|} \sum_{(b, i) \in C} \log p_\theta(y_{b,i} \mid x_{b, \le i}, m).$$

With $M$ = `--grad-accum` micro-batches, micro-batch $k$ computes the mean $\mathcal{L}_k$ over its
own positions $C_k$ and counts with the weight $|C_k| / |C|$, so that
$\sum_k \frac{|C_k|}{|C|} \mathcal{L}_k = \mathcal{L}$: the gradients are those of one batch $M$ times
as large. (When every position has a target the weights are all $1 / M$.)

Validation reports three numbers over the counted targets of the held-out streams, read with the
memory carried from window to window as in training: the loss, the **bits per token**,
$\mathcal{L}_\text{valid} / \ln 2$, which for characters is the papers' **bits per character** (the bits
an ideal coder driven by the model would spend per character: a model that knows nothing spends
$\log_2 65 \approx 6$ on Tiny Shakespeare's 65 characters), and the **accuracy**, the share
of targets that are the model's most likely token.

## The schedule

A linear warm-up over $s_w$ = `warmup_steps` steps, then a cosine decay from the peak $\eta$ = `lr`
to $\eta_\text{min}$ = `min_lr_ratio` $\cdot\, \eta$:

$$\eta_s = \begin{cases} \eta\, (s + 1) / s_w & s < s_w \\
\eta_\text{min} + (\eta - \eta_\text{min})\,\frac{1}{2}\left(1 + \cos \pi\, p_s\right) & s \ge s_w \end{cases}$$

where $p_s \in [0, 1]$ is the progress through the run after the warm-up. The progress is counted in
steps, or, when a time budget is set, in whichever of steps and seconds runs out first: that way a
model trained for "ten minutes" also finishes its decay, which is what a fair wall-clock comparison
needs.

## Mixed precision and accumulation

`--dtype bfloat16` (or `float16`) runs the forward pass under `torch.autocast`: matrix products in
the lower precision, reductions and the residual stream in float32, the weights and the optimiser's
moments in float32 throughout. float16's narrow exponent lets small gradients underflow, so its loss
is scaled up before the backward pass and the gradients scaled back before clipping
(`torch.amp.GradScaler`, which does nothing for the other precisions). Each of the $M$ micro-batches
of `--batch-size` streams keeps its own memory. With $G$ processes, each reads its own streams and
`DistributedDataParallel` averages the gradients at the last micro-batch (the ones before skip the
all-reduce), so every process holds the same weights after every step; see [the run](run.html).

## A diverged run stops

A learning rate too high, or a float16 forward pass that overflows, can turn the loss into NaN; from
then on every weight a step touches is NaN, and a run that trains on would end "finished" with a model
that computes nothing. So the loop checks every step and **stops** with a clear message: in float32
and bfloat16 when the gradient norm (measured for clipping anyway, one reduction more with
`--grad-clip 0`, and the same in every process once `DistributedDataParallel` has averaged the
gradients) is NaN or infinite, before the optimiser takes that step; in float16, where an overflowing
gradient is the scaler's ordinary business (it skips the step and halves its scale), when the scale has
fallen below 1, where even the unscaled gradients overflow. The run saves no checkpoint of that state
and exports no model: its last checkpoint, the last good one, stays the newest, and the message names
it. (A float16 checkpoint also waits for a step the scaler did not skip, so that the skipped steps of
a diverging run leave none.) The summary says `"finished": false` and at which step it `"diverged"`,
and, like every summary, it is valid JSON (a loss that is not a number is written as `null`). The exit
code is 1.

## How an experiment plugs in

An experiment is an [`Experiment`](#Experiment): its configuration, its model and the model's
constructor arguments, and six hooks, each with the default that trains a character language model:

| hook | default | changed by |
|---|---|---|
| `data(config, vocab)` | the `--dataset` (Tiny Shakespeare, enwik8, text8), [read here](corpora.html) | a task with its own tokens and targets |
| `param_groups(model, config)` | one group, at `--lr` | the [Compressive Transformer](../transformers/compressive/experiment.html): the compression network apart |
| `loss(model, x, y, memory, config)` | [`token_loss`](#token_loss) of the logits | the Compressive Transformer: plus the attention-reconstruction loss; Transformer-XL and the Feedback Transformer with an adaptive span: plus `--span-loss` times its span loss ([`span_language_model_loss`](#span_language_model_loss)) |
| `seq_len_at(step, config)` | `--seq-len` | the [Feedback Transformer](../transformers/feedback/experiment.html): a curriculum |
| `after_step(model, config)` | nothing | a model with an adaptive span: its span ratios clamped back into $[0, 1]$ ([`clamp_spans_after_step`](#clamp_spans_after_step)) |
| `find_unused_parameters` | `False` | a model whose parameters may get no gradient in a step (DDP must know) |

The `data` hook returns a [`TokenData`](data.html#TokenData): a vocabulary and the token ids of each
split, with targets where the task gives them (`IGNORE` where a position has none). `vocab` is the
vocabulary of the checkpoint a run resumes from (`None` for a new run): the data must keep its ids. A
task of words, where only some positions are asked:

```python
def program_data(config, vocab):
    vocab = vocab or Vocabulary(["x", "y", "=", ";", "print", *map(str, range(1, 11))], separator=" ")
    ids = vocab.encode("x = 7 ; print x ;")          # [x, =, 7, ;, print, x, ;]
    targets = torch.full_like(ids, IGNORE)
    targets[6] = vocab.stoi["7"]                     # at the `;` that ends the print: its value
    return TokenData(vocab, train=ids, valid=ids, train_targets=targets, valid_targets=targets)

EXPERIMENT = Experiment(Config, FeedbackTransformer, model_kwargs, data=program_data)
```

The loss, the bits per token and the accuracy then count the printed values only, and the run's
summary and history carry the validation accuracy.
"""

import contextlib
import math
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from labml_nn.experiments.config import SpanConfig, TrainConfig, parse_config
from labml_nn.experiments.corpora import load_dataset
from labml_nn.experiments.data import IGNORE, DataError, StreamBatcher, TokenData, Vocabulary
from labml_nn.experiments.checkpoint import checkpoint_path, latest_checkpoint
from labml_nn.experiments.run import Diverged, Run, Stopped, one_line_errors


# ## The hooks and their defaults

@dataclass
class ParamGroup:
    """Parameters stepped by one optimiser, with their own peak learning rate (and their own clipping)."""
    name: str
    params: List[nn.Parameter]
    lr: float


def dataset(config: TrainConfig, vocab: Optional[Vocabulary]) -> TokenData:
    """The `--dataset` (from `--data`, or its environment variable, or a download), with `vocab`'s ids
    when a run resumes."""
    return load_dataset(config.dataset, config.data or None, config.data_url or None, config.valid_fraction,
                        vocab=vocab)


def one_group(model: nn.Module, config: TrainConfig) -> List[ParamGroup]:
    """Every parameter in one optimiser, at `--lr`."""
    return [ParamGroup("model", list(model.parameters()), config.lr)]


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""
    $\mathcal{L}$: the mean cross-entropy of `logits` `[batch_size, seq_len, num_tokens]` over the counted
    `targets` `[batch_size, seq_len]` (those that are not `IGNORE`); 0 when none is counted.
    """
    nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum")
    return nll / (targets != IGNORE).sum().clamp(min=1)


def language_model_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, memory: Any,
                        config: TrainConfig) -> Tuple[torch.Tensor, Any, Dict[str, float]]:
    """The loss to back-propagate for inputs `x` and targets `y`, both `[batch_size, seq_len]`, read with
    `memory`: the loss, the new memory, and the numbers to report (`loss.train` is the one the history
    and the summary keep)."""
    logits, memory = model(x, memory=memory, return_memory=True)
    loss = token_loss(logits, y)
    return loss, memory, {"loss.train": loss.item()}


def span_language_model_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, memory: Any,
                             config: SpanConfig) -> Tuple[torch.Tensor, Any, Dict[str, float]]:
    r"""
    The `loss` hook of a model with an [adaptive span](../transformers/adaptive_span.html) (a
    [`SpanConfig`](config.html#SpanConfig) experiment): the language model's loss, plus, when `--span-ramp` turns
    the span on, `--span-loss` times the model's span loss $\mathcal{L}^{span}$ (its `span_loss()`), which
    validation does not count; `loss.span` reports it.
    """
    loss, memory, numbers = language_model_loss(model, x, y, memory, config)
    if not config.span_ramp:
        return loss, memory, numbers
    # The model itself: under several processes `model` is its `DistributedDataParallel` wrapper.
    span = getattr(model, "module", model).span_loss()
    return loss + config.span_loss * span, memory, {**numbers, "loss.span": span.item()}


def clamp_spans_after_step(model: nn.Module, config: SpanConfig) -> None:
    """The `after_step` hook of a model with an adaptive span: its span ratios back into $[0, 1]$."""
    if config.span_ramp:
        model.clamp_spans_()


def constant_seq_len(step: int, config: TrainConfig) -> int:
    """The segment length of every step: `--seq-len`."""
    return config.seq_len


def nothing_after_step(model: nn.Module, config: TrainConfig) -> None:
    """What runs after every optimiser step, on the model itself (not its wrappers): by default, nothing."""


# Builds the keyword arguments of the model's constructor from the configuration and the vocabulary
# size. Checkpoints store them, so `sample` can rebuild the model without the experiment.
ModelKwargs = Callable[[Any, int], Dict[str, Any]]


@dataclass(frozen=True)
class Experiment:
    """An experiment: its configuration class, its model, and where it trains differently (the table above)."""
    config_class: Type[TrainConfig]
    model_class: type
    model_kwargs: ModelKwargs
    data: Callable[[TrainConfig, Optional[Vocabulary]], TokenData] = dataset
    param_groups: Callable[[nn.Module, TrainConfig], List[ParamGroup]] = one_group
    loss: Callable[..., Tuple[torch.Tensor, Any, Dict[str, float]]] = language_model_loss
    seq_len_at: Callable[[int, TrainConfig], int] = constant_seq_len
    after_step: Callable[[nn.Module, TrainConfig], None] = nothing_after_step
    find_unused_parameters: bool = False
    # The [paper configurations](presets.html) `--preset` may name, and the text `--help` starts with.
    presets: Dict[str, Any] = field(default_factory=dict)
    description: Optional[str] = None

    def optimisers(self, model: nn.Module, config: TrainConfig) -> List[Tuple[ParamGroup, torch.optim.Optimizer]]:
        """An AdamW for each parameter group. Biases and normalisation gains (1-D parameters) are not
        decayed: shrinking them towards zero is not regularisation, it is just a different model."""
        return [(g, torch.optim.AdamW([{"params": [p for p in g.params if p.dim() >= 2], "weight_decay": config.weight_decay},
                                       {"params": [p for p in g.params if p.dim() < 2], "weight_decay": 0.0}],
                                      lr=g.lr, betas=(0.9, config.adam_beta2)))
                for g in self.param_groups(model, config)]

    def help(self) -> str:
        """What `--help` says before the options: the description, and the presets with the papers' results."""
        text = (self.description or self.config_class.__doc__ or "").strip()
        if self.presets:
            text += "\n\nPresets (--preset NAME): " + "; ".join(
                f"{name}: {preset.paper_bpc} bpc in the paper"
                + (f", {preset.paper_parameters / 1e6:.2f}M parameters" if preset.paper_parameters else "")
                for name, preset in self.presets.items())
        return text


# ## The schedule

def progress(config: TrainConfig, step: int, train_time: float) -> float:
    """The fraction of the run done: by steps, or by seconds when that runs out first."""
    done = step / max(config.steps, 1)
    if config.time_budget > 0:
        done = max(done, train_time / config.time_budget)
    return min(done, 1.0)


def out_of_time(config: TrainConfig, train_time: float) -> bool:
    return config.time_budget > 0 and train_time >= config.time_budget


def learning_rate(config: TrainConfig, peak: float, step: int, progress: float) -> float:
    r"""$\eta_s$ from the equation above; `progress` is the fraction of the run done, in $[0, 1]$."""
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    # Progress after the warm-up, so that the cosine starts at its peak.
    warm = min(config.warmup_steps / max(config.steps, 1), 0.99)
    p = min(max((progress - warm) / (1 - warm), 0.0), 1.0)
    floor = config.min_lr_ratio * peak
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * p))


# ## Validation

@dataclass
class Metrics:
    """What a model scores over the counted targets of some streams."""
    loss: float      # $\mathcal{L}$, nats per counted target
    accuracy: float  # the share of counted targets that are the model's most likely token
    targets: int     # how many targets were counted

    @property
    def bits(self) -> float:
        """Bits per token: for characters, bits per character."""
        return self.loss / math.log(2)


@torch.no_grad()
def evaluate_streams(model: nn.Module, batches: StreamBatcher, seq_len: int, windows: int, device: torch.device,
                     autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                     all_reduce: bool = False, tail: bool = False) -> Metrics:
    r"""
    The metrics of `model` over the first `windows` windows of `seq_len` of every stream of `batches`, the
    memory carried from window to window (with `tail`, the shorter last window too). With `all_reduce`,
    the sums of all processes are added.
    """
    was_training = model.training
    model.eval()
    memory = None
    # The sums over counted targets: negative log-likelihood, correct predictions, targets.
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for i, (x, y) in enumerate(batches.windows(seq_len, tail)):
        if i >= windows:
            break
        with autocast():
            logits, memory = model(x.to(device).long(), memory=memory, return_memory=True)
        # `[batch_size, seq_len, num_tokens]`, in float32 whatever the precision of the forward pass.
        logits, y = logits.float(), y.to(device).long()
        counted = y != IGNORE
        sums[0] += F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum").double()
        sums[1] += ((logits.argmax(dim=-1) == y) & counted).sum()
        sums[2] += counted.sum()
    if all_reduce:
        dist.all_reduce(sums)
    model.train(was_training)
    nll, correct, count = sums.tolist()
    if count == 0:
        raise DataError(f"the {windows} windows of {seq_len} evaluated hold no target (every one is IGNORE)")
    return Metrics(loss=nll / count, accuracy=correct / count, targets=int(count))


def validate(run: Run) -> Metrics:
    """The metrics on the validation streams (`--valid-windows` windows of each, or all), recorded in the
    run's history. Each process reads its own streams; the sums are added across processes. Inside
    `fork_rng`, so that how often we look at the model never changes how it trains."""
    c, s = run.config, run.state
    windows = run.valid_batches.num_windows(c.seq_len)
    if c.valid_windows > 0:
        windows = min(windows, c.valid_windows)
    with run.fork_rng():
        metrics = evaluate_streams(run.module, run.valid_batches, c.seq_len, windows, run.device, run.autocast,
                                   all_reduce=run.dist.world_size > 1)
    s.history["valid"].append({"step": s.step, "bpc": metrics.bits, "accuracy": metrics.accuracy})
    run.report_validation(metrics)
    return metrics


# ## The loop

def train(run: Run) -> dict:
    r"""
    Train `run`'s model from `run.state.step` to `--steps` (or until the time budget or `--stop-at`), then
    validate, sample and save; returns the run's summary (which `--summary` also writes as JSON).
    """
    c, experiment, s = run.config, run.experiment, run.state
    M = c.grad_accum
    last = min(c.steps, c.stop_at) if c.stop_at > 0 else c.steps
    save_due = False
    for _ in run.loop(range(s.step, last)):
        if out_of_time(c, s.train_time):
            break
        started = time.perf_counter()

        # **The batch.** Inputs and targets, `[M * batch_size, seq_len]`: the next window of this process's
        # streams. When the streams start over, the memory holds the end of the text, which does not
        # precede its beginning: it is cleared.
        seq_len = experiment.seq_len_at(s.step, c)
        x, y, wrapped = run.train_batches.next(seq_len)
        if wrapped:
            s.memory = [None] * M
        x, y = x.to(run.device).long(), y.to(run.device).long()

        # **The schedule.** Each optimiser's learning rate for this step.
        for group, optimiser in run.optimisers:
            for param_group in optimiser.param_groups:
                param_group["lr"] = learning_rate(c, group.lr, s.step, progress(c, s.step, s.train_time))
            optimiser.zero_grad(set_to_none=True)

        # **Forward and backward**, one micro-batch of `batch_size` streams at a time, each with its own
        # memory; micro-batch $k$'s loss weighs $|C_k| / |C|$. With several processes the gradients are
        # averaged across them at the last micro-batch (`no_sync` before it).
        counted = (y != IGNORE).reshape(M, -1).sum(dim=1).tolist()  # $|C_k|$
        losses: Dict[str, float] = {}
        for k, (x_k, y_k) in enumerate(zip(x.chunk(M), y.chunk(M))):
            weight = counted[k] / sum(counted) if sum(counted) > 0 else 1 / M
            with run.no_sync(k < M - 1):
                with run.autocast():
                    loss, s.memory[k], parts = experiment.loss(run.model, x_k, y_k, s.memory[k], c)
                run.scaler.scale(loss * weight).backward()
            for name, value in parts.items():
                losses[name] = losses.get(name, 0.0) + value * weight

        # **Clip and step**, each parameter group on its own. Clipping needs the true gradients: float16's
        # scaled ones are unscaled first (the scaler then skips a step whose gradients overflowed). The norm
        # is measured even without clipping, for the check below.
        norms: Dict[str, float] = {}
        for group, optimiser in run.optimisers:
            run.scaler.unscale_(optimiser)
            grads = [p.grad for p in group.params if p.grad is not None]
            norm = (torch.nn.utils.clip_grad_norm_(group.params, c.grad_clip) if c.grad_clip > 0
                    else torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(()))
            norms[f"grad_norm.{group.name}"] = norm.item()
        # **A diverged run stops** before its weights take a step that is not a number: see above.
        scale = run.scaler.get_scale() if run.scaler.is_enabled() else 1.0
        diverged = diverged_because(c, norms, scale)
        if diverged:
            run.diverged = f"step {s.step}: {diverged}"
            break
        for _, optimiser in run.optimisers:
            run.scaler.step(optimiser)
        run.scaler.update()
        experiment.after_step(run.module, c)
        # (Whether float16's scaler skipped this step: it lowers its scale when it does.)
        skipped = run.scaler.is_enabled() and run.scaler.get_scale() < scale
        if c.grad_clip <= 0:
            norms = {}

        # **Count** the step, every process's tokens and the seconds, and keep the losses for the curve.
        s.step += 1
        s.tokens += x.numel() * run.dist.world_size
        seconds = run.seconds_since(started)
        s.train_time += seconds
        for name, value in losses.items():
            s.history["train"].setdefault(name, []).append(value)
        run.report_step({**losses, **norms}, tokens=x.numel(), seq_len=seq_len, seconds=seconds)

        # **Look at the model, and save it.**
        if c.valid_interval > 0 and s.step % c.valid_interval == 0 and s.step < c.steps:
            validate(run)
        if c.sample_interval > 0 and s.step % c.sample_interval == 0 and s.step < c.steps:
            run.sample(f"sample at step {s.step}")
        # A checkpoint waits for a step the scaler did not skip: in a float16 run that diverges, every step
        # from then on is skipped, and the checkpoints stay the good ones before it.
        save_due = save_due or (c.checkpoint_interval > 0 and s.step % c.checkpoint_interval == 0)
        if save_due and not skipped:
            run.save()
            save_due = False
        # **A signal** (a scheduler's SIGTERM, a Ctrl-C) stops the run here, with a checkpoint.
        if run.stop_requested():
            break

    if run.diverged:
        # The weights are those before the step that was not a number, but the memory is not: no checkpoint
        # of this state, and no model to export. The last checkpoint is the last good one.
        run.summary(finished=False)
        last = latest_checkpoint(run.run_dir)
        raise Diverged(f"the run diverged at {run.diverged}; it stopped without a checkpoint of this state. "
                       + (f"The last good checkpoint is {last}: resume from it with a lower --lr or a smaller "
                          f"--grad-clip." if last else "No checkpoint was saved before it."))
    # A finished run validates and samples once more; one stopped by `--stop-at` or a signal saves where it
    # is and leaves the rest to `--resume`.
    finished = s.step >= c.steps or out_of_time(c, s.train_time)
    if finished:
        validate(run)
        run.sample("sample")
    run.save()
    if finished and c.export:
        run.export(c.export)
    summary = run.summary(finished)
    if run.signal is not None and not finished:
        raise Stopped(f"{signal.Signals(run.signal).name} at step {s.step}: saved "
                      f"{checkpoint_path(run.run_dir, s.step)}; continue with --resume", run.signal)
    return summary


def diverged_because(config: TrainConfig, norms: Dict[str, float], scale: float) -> Optional[str]:
    r"""
    Why this step, with the gradient `norms` of its parameter groups and float16's loss `scale` (1 in the
    other precisions), shows the run has diverged; `None` when it does not. The answer must be the same in
    every process, or one would stop and the others wait for it: the gradients after `backward` are
    averaged across processes, so they are the same everywhere, and a loss that is not a number makes them
    not numbers too. In float32 and bfloat16, then, a gradient norm that is NaN or infinite means
    divergence. In float16 it is the scaler's usual overflow, which skips the step and halves the scale;
    the run has diverged when the scale has fallen below 1, where even unscaled gradients overflow.
    """
    if config.dtype == "float16":
        return f"the gradient scaler's scale fell to {scale:g}: the gradients overflow unscaled" if scale < 1 else None
    bad = [f"the gradient norm of {name.removeprefix('grad_norm.')} is {value}" for name, value in norms.items()
           if not math.isfinite(value)]
    return ", ".join(bad) or None


# ## The command line

def run_experiment(experiment: Experiment, argv: Optional[Sequence[str]] = None,
                   init_method: Optional[str] = None) -> dict:
    """Parse and check the options (`--help` lists them), build the run and train it. A mistake a person must
    fix ends as one line, `error: ...`, with exit code 2; a process of the run that stopped answering, or a
    run that diverged, with exit code 1; a run stopped by a signal, with 128 plus its number. `init_method`
    is how the processes of a run find each other (`torchrun`'s environment variables by default; see
    [the run](run.html#processes))."""
    with one_line_errors():
        config = parse_config(experiment.config_class, argv, experiment.help(), experiment.presets)
        with Run(config, experiment, init_method) as run:
            return train(run)
