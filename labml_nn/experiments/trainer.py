r"""
---
title: The training loop, written out
summary: One explicit training loop for every memory transformer in this project: contiguous streams, memory carried across steps, AdamW with warm-up and cosine decay, validation in bits per character, samples, atomic checkpoints, exact resume and DistributedDataParallel.
---

# The training loop, written out

This page is the whole training procedure of every experiment in the project. It is written as one
loop you can read from top to bottom (`Trainer.run`) rather than a framework of callbacks, because the
interesting part of training a memory transformer is precisely the part a framework hides: **the
memory is state that outlives a step**.

At step $t$ the model reads segment $x_t$ `[batch_size, seq_len]` together with the memory $m_{t-1}$
it returned at step $t - 1$, and returns logits and a new memory $m_t$:

$$\text{logits}_t, m_t = f_\theta(x_t, m_{t-1}).$$

The gradient stops at $m_{t-1}$ (the models return it detached), so a step costs the same however long
the run; but the memory must be carried from step to step, over the validation text as well, across a
`--resume`, and it must belong to the same text as $x_t$, which is why the batches come from
[contiguous streams](data.html).

## What a step does

1. take the next window of every stream, clearing the memory if the streams started over;
2. compute the cross-entropy loss $\mathcal{L} = -\frac{1}{BT}\sum \log p_\theta(y \mid x, m)$;
3. set the learning rate from the schedule, back-propagate, clip the gradient norm, step AdamW.

Validation reports **bits per character**, $\text{bpc} = \mathcal{L}_\text{valid} / \ln 2$, the
number of bits an ideal coder driven by the model would spend per character of held-out text.
A model that knows nothing spends $\log_2 65 \approx 6$; a good small model about $1.5$.

## The schedule

A linear warm-up over $w$ steps, then a cosine decay to $\rho \cdot \eta$:

$$\eta_t = \begin{cases} \eta\, (t + 1) / w & t < w \\
\rho\eta + (1 - \rho)\,\eta\,\frac{1}{2}\left(1 + \cos \pi\, p_t\right) & t \ge w \end{cases}$$

where $p_t \in [0, 1]$ is the progress through the run after the warm-up. The progress is counted in
steps, or, when a time budget is set, in whichever of steps and seconds runs out first: that way a
model trained for "ten minutes" also finishes its decay, which is what a fair wall-clock comparison
needs.

## Mixed precision, accumulation, throughput

`--dtype bfloat16` (or `float16`) runs the forward pass under `torch.autocast`: matrix products in
the lower precision, reductions and the residual stream in float32, the weights and the optimiser's
moments in float32 throughout. float16's narrow exponent lets small gradients underflow, so its loss
is scaled up before the backward pass and the gradients scaled back before clipping
(`torch.amp.GradScaler`). `--grad-accum` $A$ runs $A$ micro-batches of `--batch-size` streams, each
with its own memory, before one optimiser step: the gradients are those of one batch $A$ times as
large. Every step reports its training tokens per second, and with `--peak-tflops` (the device's
peak in that precision) the model FLOP utilisation: the model's training FLOPs per token, counted on
its page (`flops_per_token`), times tokens per second, over the peak.

## Resuming exactly

A [checkpoint](checkpoint.html) holds everything the next step depends on: weights, optimiser
moments, the step (the schedule is a pure function of it), the stream position, the memory and the
random-number states of `random`, `numpy` and `torch`. Resuming a killed run therefore ends on the
same weights as a run that was never interrupted; the tests check this to the bit. Validation and
sampling run inside `torch.random.fork_rng`, so how often we look at the model never changes how it
trains. All of it is stored as tensors and plain data (numpy's random state as a list of numbers,
a model's memory as the plain lists of tensors its `memory_state` gives), so that the checkpoint loads with
`weights_only=True` and nothing in it can run code.

## Nothing is lost

Every option is [checked](config.html) before the data is read, and what depends on the data (the
prompt's characters) before the first step, so a bad option costs a second, not the run. A run
takes a lock on its directory, refuses a directory that holds another run's checkpoints (unless
`--overwrite`), and resumes from the newest checkpoint that reads whole.

## Several processes

Started by `torchrun --nproc_per_node=N` (and, across machines, `--nnodes M` with a rendezvous,
`--rdzv-backend c10d --rdzv-endpoint HOST:PORT`: `torchrun` sets the environment variables this code
reads), each process reads its own block of streams, keeps its own memory, and
`DistributedDataParallel` averages the gradients, so all processes hold the same weights after every
step. The batch size is per process and micro-batch: with $N$ processes and `--grad-accum` $A$, a step
reads $N A$ times `--batch-size` streams. Micro-batches before the last skip the all-reduce
(`no_sync`), so accumulation costs no communication.
A process that stops answering (hung, or stopped with `SIGSTOP`) would block the others in their
next collective forever; every collective has a timeout instead (`--ddp-timeout`, 300 s by default),
after which the run ends with a message that says so.
"""

import contextlib
import datetime
import json
import math
import os
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from labml_nn.experiments.checkpoint import (Checkpoint, CheckpointError, RunLock, clear_run, describe,
                                             latest_checkpoint, legacy_checkpoints, list_checkpoints,
                                             newest_readable, save_checkpoint)
from labml_nn.experiments.config import DTYPES, TrainConfig, UsageError, config_to_dict, parse_config
from labml_nn.experiments.corpora import load_dataset
from labml_nn.experiments.data import DataError, StreamBatcher, Vocabulary


# ## Small helpers

def seed_everything(seed: int) -> None:
    """Seed every generator that training draws from."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """The state of every random-number generator, for the checkpoint, as tensors and plain data:
    numpy's state holds an array, stored as a list of ints."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """`value` (tensors in lists and dictionaries, or plain data) with `fn` applied to every tensor.

    A model's memory reaches the checkpoint through the model's own `memory_state` (and comes back
    through `load_memory_state`), which turns it into such plain structures: the trainer needs to know
    nothing about any model's memory.
    """
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [map_tensors(v, fn) for v in value]
    return value


def downsample(values: List[float], points: int = 500) -> List[float]:
    """At most `points` means of consecutive runs of `values`, for the summary's loss curve."""
    if len(values) <= points:
        return list(values)
    size = math.ceil(len(values) / points)
    return [statistics.fmean(values[i:i + size]) for i in range(0, len(values), size)]


def learning_rate(config: TrainConfig, peak: float, step: int, progress: float) -> float:
    r"""$\eta_t$ from the equation above; `progress` is the fraction of the run done, in $[0, 1]$."""
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    # Progress after the warm-up, so that the cosine starts at its peak.
    warm = min(config.warmup_steps / max(config.steps, 1), 0.99)
    p = min(max((progress - warm) / (1 - warm), 0.0), 1.0)
    floor = config.min_lr_ratio * peak
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * p))


@dataclass
class Distributed:
    """Where this process sits among the processes `torchrun` started (one process: rank 0 of 1)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str, timeout: float) -> Distributed:
    """Join the process group if `torchrun` (or a test) set `WORLD_SIZE` above 1.

    `torchrun` sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT`. NCCL is the
    backend for GPUs, gloo the one for CPUs. Every collective gives up after `timeout` seconds.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=timeout))
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        # One GPU per process, chosen by the process's rank on its machine. NCCL needs it set as the
        # current device before the process group starts.
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(name)


# Builds the keyword arguments of the model's constructor from the configuration and the vocabulary
# size. The checkpoint's `config.json` stores them, so `sample` can rebuild the model without the experiment.
ModelKwargs = Callable[[Any, int], Dict[str, Any]]


@dataclass
class ParamGroup:
    """Parameters stepped by one optimiser, with their own peak learning rate."""
    name: str
    params: List[nn.Parameter]
    lr: float


@torch.no_grad()
def bits_per_character(model: nn.Module, batches: StreamBatcher, seq_len: int, windows: int, device: torch.device,
                       autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                       all_reduce: bool = False, tail: bool = False) -> float:
    r"""
    $\mathcal{L} / \ln 2$ over the first `windows` windows of `seq_len` of every stream of `batches`, the memory
    carried from window to window (with `tail`, the shorter last window too). With `all_reduce`, the sums
    of all processes are added.
    """
    was_training = model.training
    model.eval()
    memory = None
    nll = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    for i, (x, y) in enumerate(batches.windows(seq_len, tail)):
        if i >= windows:
            break
        with autocast():
            logits, memory = model(x.to(device).long(), memory=memory, return_memory=True)
        nll += F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).long().flatten(), reduction="sum").double()
        count += y.numel()
    if all_reduce:
        dist.all_reduce(nll)
        dist.all_reduce(count)
    model.train(was_training)
    # Nats to bits.
    return (nll / count).item() / math.log(2)


# ## The trainer

class Trainer:
    """Trains `model_class(**model_kwargs(config, len(vocab)))` on the text, as described above.

    Experiments that train differently override one of three small methods:

    * `param_groups`: which parameters each optimiser takes (the compressive model has two);
    * `training_loss`: the loss to back-propagate (the compressive model adds its reconstruction loss);
    * `seq_len_at`: the segment length at a step (the feedback model's curriculum).
    """

    def __init__(self, config: TrainConfig, model_class: type, model_kwargs: ModelKwargs):
        self.config = config
        self.model_class = model_class
        self.lock: Optional[RunLock] = None
        self.dist = Distributed()
        # Thread counts are global to the process; `close()` puts back the one we found.
        self.threads_before = torch.get_num_threads()
        try:
            self._setup(model_kwargs)
        except BaseException:
            # A run that cannot start releases what it took: its lock, the process group, the threads.
            self.close()
            raise

    def _setup(self, model_kwargs: ModelKwargs) -> None:
        c = self.config
        model_class = self.model_class
        if c.threads > 0:
            torch.set_num_threads(c.threads)
        self.device = resolve_device(c.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.dist = init_distributed(self.device.type, c.ddp_timeout)
        if self.dist.world_size > 1 and self.device.type == "cpu" and c.threads <= 0:
            # Processes on one CPU share its cores; without this each would start a thread per core.
            local = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
        self.run_dir = Path(c.checkpoint_dir) / c.name
        if self.dist.is_main:
            self.claim_run_dir()

        # The checkpoint we continue from, if any. Its vocabulary wins over the text's, so that a
        # resumed model's outputs keep their meaning.
        self.resume_from: Optional[Checkpoint] = None
        if c.resume:
            try:
                self.resume_from = newest_readable(self.run_dir, self.log, map_location=self.device)
            except CheckpointError as error:
                raise UsageError(f"--resume: {error}. Start without --resume, or pass the --name and "
                                 f"--checkpoint-dir of the run to continue.") from None
            self.resume_path = self.resume_from.path

        # ### Data
        saved_vocab = None
        if self.resume_from:
            saved = self.resume_from.config
            saved_vocab = Vocabulary.from_state(saved["vocab"], saved.get("vocab_bytes", False))
        data = load_dataset(c.dataset, c.data or None, c.data_url or None, c.valid_fraction, vocab=saved_vocab)
        self.vocab = data.vocab
        unknown = self.vocab.unknown(c.prompt)
        if unknown:
            raise UsageError(f"--prompt {c.prompt!r}: the characters {unknown!r} are not in the vocabulary of the "
                             f"text")
        # Each process reads `grad_accum` micro-batches of `batch_size` streams per step.
        self.train_batches = StreamBatcher(data.train, c.batch_size * c.grad_accum, self.dist.rank,
                                           self.dist.world_size)
        self.valid_batches = StreamBatcher(data.valid, c.batch_size, self.dist.rank, self.dist.world_size)
        for batches, part in [(self.train_batches, "training"), (self.valid_batches, "validation")]:
            if batches.num_windows(c.seq_len) == 0:
                raise DataError(f"The {part} text is too short for {c.batch_size * self.dist.world_size} "
                                f"streams of {c.seq_len} characters; use a smaller --batch-size or --seq-len"
                                + (", or a larger --valid-fraction." if part == "validation" else "."))

        # ### Model
        # Every process seeds the same generator before building the model, so all start from the
        # same weights (`DistributedDataParallel` would copy rank 0's anyway).
        seed_everything(c.seed)
        self.model_kwargs = model_kwargs(c, len(self.vocab))
        try:
            self.module: nn.Module = model_class(**self.model_kwargs).to(self.device)
        except ValueError as error:
            # The model's own checks of its arguments, for a combination of options.
            raise UsageError(f"the model options do not fit together: {error}") from None
        if self.resume_from is not None:
            self._check_same_model(self.resume_from)
            self.module.load_state_dict(self.resume_from.weights)
        # `self.model` is what we call to train: the module itself, or its DDP wrapper that averages
        # gradients across processes during `backward()`.
        self.model: nn.Module = self.module
        if self.dist.world_size > 1:
            self.model = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.find_unused_parameters)
        if c.compile:
            # The readable model, compiled: the same numbers within float tolerance (the tests check it).
            # Validation and sampling keep the eager module. Shapes change while the memories fill (and
            # with a curriculum); which treatment of them is faster depends on the model (see the
            # benchmarks), so it is an option.
            self.model = torch.compile(self.model, dynamic=False if c.compile_shapes == "static" else None)

        # ### Optimisers
        # Biases and normalisation gains (1-D parameters) are not decayed: shrinking them towards
        # zero is not regularisation, it is just a different model.
        self.groups = self.param_groups()
        self.optimisers = [
            torch.optim.AdamW([{"params": [p for p in g.params if p.dim() >= 2], "weight_decay": c.weight_decay},
                               {"params": [p for p in g.params if p.dim() < 2], "weight_decay": 0.0}],
                              lr=g.lr, betas=(0.9, 0.99))
            for g in self.groups]

        # Mixed precision: autocast for the forward pass; float16 also needs its gradients scaled, so that
        # small ones do not underflow (`GradScaler`, which does nothing when it is not enabled).
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=c.dtype == "float16")

        # ### State that a checkpoint carries
        self.step = 0
        self.tokens = 0
        self.train_time = 0.0
        # One memory per micro-batch.
        self.memory: List[Any] = [None] * c.grad_accum
        self.valid_bpc: Optional[float] = None
        # The loss curve: the training loss of every step, and each validation with its step.
        self.curve: Dict[str, list] = {"train_loss": [], "valid": []}
        self.compile_seconds = 0.0
        if self.resume_from is not None:
            self._restore(self.resume_from.trainer)
            self.resume_from = None

    def claim_run_dir(self) -> None:
        """Lock the run directory, and refuse (or with `--overwrite`, clear) another run's checkpoints."""
        c = self.config
        try:
            self.lock = RunLock(self.run_dir).acquire()
        except CheckpointError as error:
            raise UsageError(str(error)) from None
        if c.resume:
            return
        existing = list_checkpoints(self.run_dir) + legacy_checkpoints(self.run_dir)
        if existing and not c.overwrite:
            raise UsageError(f"{self.run_dir} already holds the checkpoints of another run ({describe(existing)}). "
                             f"Continue it with --resume, choose another --name or --checkpoint-dir, or pass "
                             f"--overwrite to delete them and start over.")
        if existing:
            clear_run(self.run_dir)
            self.log(f"--overwrite: deleted {len(existing)} checkpoint(s) of the earlier run in {self.run_dir}")

    # `DistributedDataParallel` must be told when some parameters may get no gradient in a step.
    find_unused_parameters = False

    def _check_same_model(self, checkpoint: Checkpoint) -> None:
        trainer = checkpoint.trainer
        if trainer["config"]["batch_size"] != self.config.batch_size:
            raise UsageError(f"--resume: {self.resume_path} was trained with --batch-size "
                             f"{trainer['config']['batch_size']}; its memory and stream positions "
                             f"only fit that batch size.")
        name = checkpoint.config.get("model_class")
        if name != self.model_class.__name__ or trainer["model_kwargs"] != self.model_kwargs:
            raise UsageError(f"--resume: {self.resume_path} holds a {name} with {trainer['model_kwargs']}, "
                             f"but this run builds a {self.model_class.__name__} with {self.model_kwargs}. "
                             f"Use the same model options as the run you resume.")

    # ### The three methods experiments override

    def param_groups(self) -> List[ParamGroup]:
        """One optimiser for all parameters."""
        return [ParamGroup("model", list(self.module.parameters()), self.config.lr)]

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, memory: Any) -> Tuple[torch.Tensor, Any, Dict[str, float]]:
        """The loss to back-propagate for inputs `x` and targets `y`, both `[batch_size, seq_len]`.

        Returns the loss, the new memory and the numbers to report.
        """
        logits, memory = self.model(x, memory=memory, return_memory=True)
        # `[batch_size, seq_len, num_tokens]` against `[batch_size, seq_len]`, averaged over all.
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return loss, memory, {"loss.train": loss.item()}

    def seq_len_at(self, step: int) -> int:
        """The segment length at `step`: constant here."""
        return self.config.seq_len

    # ### Evaluation

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision of `--dtype` for a forward pass (no-op for float32)."""
        c = self.config
        return torch.autocast(self.device.type, dtype=DTYPES[c.dtype], enabled=c.dtype != "float32")

    def validate(self) -> float:
        """Bits per character on the validation streams, carrying the memory across them just as
        training does. Each process reads its own streams; the sums are added across processes."""
        c = self.config
        windows = self.valid_batches.num_windows(c.seq_len)
        if c.valid_windows > 0:
            windows = min(windows, c.valid_windows)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            return bits_per_character(self.module, self.valid_batches, c.seq_len, windows, self.device,
                                      self.autocast, self.dist.world_size > 1)

    @torch.no_grad()
    def sample(self) -> str:
        """Continue the prompt with `sample_length` sampled characters."""
        c = self.config
        self.module.eval()
        prompt = self.vocab.encode(c.prompt or "\n")[None, :].to(self.device)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            out = self.module.generate(prompt, c.sample_length, temperature=c.temperature)
        self.module.train()
        return self.vocab.decode(out[0].tolist())

    # ### Checkpoints

    def state_dict(self) -> dict:
        """Everything beside the weights that `--resume` needs, as tensors and plain data.

        The memory and the random states differ between processes, so they are gathered from every
        process into `per_process`; the weights and optimiser moments are the same everywhere.
        """
        own = {"memory": [map_tensors(self.module.memory_state(m), lambda t: t.detach().cpu()) for m in self.memory],
               "rng": rng_state(), "data": self.train_batches.state_dict()}
        per_process = [own]
        if self.dist.world_size > 1:
            per_process = [None] * self.dist.world_size
            dist.all_gather_object(per_process, own)
        return {
            "model_kwargs": self.model_kwargs,
            "config": config_to_dict(self.config),
            "optimisers": [o.state_dict() for o in self.optimisers],
            "step": self.step,
            "tokens": self.tokens,
            "train_time": self.train_time,
            "valid_bpc": self.valid_bpc,
            "history": self.curve,
            "world_size": self.dist.world_size,
            "per_process": per_process,
        }

    def _restore(self, state: dict) -> None:
        for optimiser, saved in zip(self.optimisers, state["optimisers"]):
            optimiser.load_state_dict(saved)
        self.step, self.tokens, self.train_time = state["step"], state["tokens"], state["train_time"]
        self.valid_bpc = state.get("valid_bpc")
        self.curve = state.get("history", {"train_loss": [], "valid": []})
        if state["world_size"] == self.dist.world_size:
            own = state["per_process"][self.dist.rank]
            self.train_batches.load_state_dict(own["data"])
            self.memory = [self.module.load_memory_state(map_tensors(m, lambda t: t.to(self.device)))
                           for m in own["memory"]]
            set_rng_state(own["rng"])
        else:
            # The streams are cut differently with a different number of processes, so neither the
            # positions nor the memories fit; we restart the streams and say so.
            self.log(f"resuming with {self.dist.world_size} processes from a run with "
                     f"{state['world_size']}: the data streams start over with an empty memory")

    def save(self) -> None:
        # Every process takes part in gathering the state; only the first writes it.
        state = self.state_dict()
        if self.dist.is_main:
            save_checkpoint(self.run_dir, self.step, self.module, state, vocab=self.vocab.to_state(),
                            vocab_bytes=self.vocab.byte_level, keep=self.config.keep_checkpoints)

    # ### Reporting

    def log(self, message: str) -> None:
        if self.dist.is_main:
            if self.config.labml:
                from labml import logger
                logger.log(message)
            else:
                print(message, flush=True)

    def report(self, values: Dict[str, float]) -> None:
        """Send numbers to labml's tracker (which draws them beside the progress bar)."""
        if self.dist.is_main and self.config.labml:
            from labml import tracker
            tracker.save(self.step, values)

    # ### The loop

    def run(self) -> dict:
        """Train until `steps` (or the time budget, or `stop_at`), then validate, sample and save.

        Returns the final metrics, which `--summary` also writes as JSON.
        """
        c = self.config
        if self.dist.is_main and c.labml:
            from labml import experiment, monit, tracker
            # The log directory is `./logs` under the current directory, not beside this file.
            experiment.create(name=c.name, python_file=os.getcwd(), writers={"screen", "file"})
            experiment.configs(config_to_dict(c))
            tracker.set_scalar("loss.*", True)
            tracker.set_scalar("bpc.*", True)
            tracker.set_scalar("lr", False)
            tracker.set_scalar("tokens_per_s", True)
            tracker.set_scalar("mfu", True)
            with experiment.start():
                return self._run(lambda steps: monit.loop(steps))
        return self._run(lambda steps: steps)

    def _run(self, loop: Callable[[range], Any]) -> dict:
        c = self.config
        n_params = sum(p.numel() for p in self.module.parameters())
        self.log(f"{c.name}: {self.model_class.__name__} with {n_params:,} parameters, "
                 f"{self.dist.world_size} process(es), {len(self.vocab)} characters, "
                 f"starting at step {self.step} of {c.steps}")
        last = min(c.steps, c.stop_at) if c.stop_at > 0 else c.steps
        for _ in loop(range(self.step, last)):
            if self.out_of_time():
                break
            self.train_step()
            if c.valid_interval > 0 and self.step % c.valid_interval == 0 and self.step < c.steps:
                self.valid_bpc = self.validate()
                self.curve["valid"].append([self.step, self.valid_bpc])
                self.report({"bpc.valid": self.valid_bpc})
                if not c.labml:
                    rate = self.tokens / self.dist.world_size / max(self.train_time, 1e-9)
                    self.log(f"step {self.step}: validation {self.valid_bpc:.4f} bits per character, "
                             f"{rate:,.0f} training tokens/s per process")
                if self.dist.is_main and c.labml:
                    from labml import tracker
                    tracker.new_line()
            if (c.sample_interval > 0 and self.step % c.sample_interval == 0 and self.step < c.steps
                    and self.dist.is_main):
                self.log(f"--- sample at step {self.step} ---\n{self.sample()}\n---")
            if c.checkpoint_interval > 0 and self.step % c.checkpoint_interval == 0:
                self.save()

        # A run stopped by `--stop-at` saves where it is and leaves the rest for `--resume`.
        finished = self.step >= c.steps or self.out_of_time()
        if finished:
            self.valid_bpc = self.validate()
            self.curve["valid"].append([self.step, self.valid_bpc])
            self.log(f"step {self.step}: validation {self.valid_bpc:.4f} bits per character")
            if self.dist.is_main:
                self.log(f"--- sample ---\n{self.sample()}\n---")
        self.save()
        if finished and c.export and self.dist.is_main:
            self.module.save_pretrained(c.export, vocab=self.vocab.to_state(), vocab_bytes=self.vocab.byte_level)
            self.log(f"exported the model to {c.export}")
        summary = {"name": c.name, "model": self.model_class.__name__, "parameters": n_params,
                   "step": self.step, "tokens": self.tokens, "train_seconds": round(self.train_time, 2),
                   "valid_bpc": self.valid_bpc, "finished": finished,
                   "checkpoint": str(latest_checkpoint(self.run_dir)),
                   # The loss curve in at most 500 points (bits per character, each the mean of a run of steps),
                   # and every validation: enough to draw the run's curve without its checkpoint.
                   "history": {"steps_per_point": math.ceil(len(self.curve["train_loss"]) / 500) or 1,
                               "train_bpc": [v / math.log(2) for v in downsample(self.curve["train_loss"])],
                               "valid": self.curve["valid"]}}
        if self.train_time > 0:
            # Each process's rate, so that the utilisation is per device.
            rate = self.tokens / self.dist.world_size / self.train_time
            summary["tokens_per_s"] = round(rate, 1)
            if c.peak_tflops > 0:
                summary["mfu"] = self.module.flops_per_token(c.seq_len) * rate / (c.peak_tflops * 1e12)
        if c.compile:
            summary["compile_seconds"] = round(self.compile_seconds, 2)
        if c.summary and self.dist.is_main:
            Path(c.summary).parent.mkdir(parents=True, exist_ok=True)
            Path(c.summary).write_text(json.dumps(summary, indent=2))
        return summary

    def out_of_time(self) -> bool:
        return self.config.time_budget > 0 and self.train_time >= self.config.time_budget

    def progress(self) -> float:
        """The fraction of the run done: by steps, or by seconds when that runs out first."""
        c = self.config
        done = self.step / max(c.steps, 1)
        if c.time_budget > 0:
            done = max(done, self.train_time / c.time_budget)
        return min(done, 1.0)

    def train_step(self) -> None:
        c = self.config
        started = time.perf_counter()
        seq_len = self.seq_len_at(self.step)
        x, y, wrapped = self.train_batches.next(seq_len)
        if wrapped:
            # The streams started again from the beginning of the text: the memory describes the
            # end of the text, which does not precede its beginning.
            self.memory = [None] * c.grad_accum
        # `[grad_accum * batch_size, seq_len]`, as `LongTensor`s on the device (a corpus's ids are bytes).
        x, y = x.to(self.device).long(), y.to(self.device).long()

        for group, optimiser in zip(self.groups, self.optimisers):
            lr = learning_rate(c, group.lr, self.step, self.progress())
            for param_group in optimiser.param_groups:
                param_group["lr"] = lr

        for optimiser in self.optimisers:
            optimiser.zero_grad(set_to_none=True)
        # Gradient accumulation: micro-batch $i$ is streams $i b \dots (i + 1) b - 1$, with its own memory; the
        # mean of the micro-batches' mean losses is the mean loss of the whole batch, so the gradients are
        # those of one batch of `grad_accum * batch_size` streams. With several processes, gradients are
        # averaged across them once, at the last micro-batch (`no_sync` before).
        metrics: Dict[str, float] = {}
        for i, (x_i, y_i) in enumerate(zip(x.chunk(c.grad_accum), y.chunk(c.grad_accum))):
            last = i == c.grad_accum - 1
            sync = contextlib.nullcontext() if last or self.dist.world_size == 1 else self.model.no_sync()
            with sync:
                with self.autocast():
                    loss, self.memory[i], parts = self.training_loss(x_i, y_i, self.memory[i])
                self.scaler.scale(loss / c.grad_accum).backward()
            for name, value in parts.items():
                metrics[name] = metrics.get(name, 0.0) + value / c.grad_accum
        for group, optimiser in zip(self.groups, self.optimisers):
            # Clipping needs the true gradients: float16's scaled ones are unscaled first.
            self.scaler.unscale_(optimiser)
            if c.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(group.params, c.grad_clip)
                metrics[f"grad_norm.{group.name}"] = norm.item()
            self.scaler.step(optimiser)
        self.scaler.update()

        self.step += 1
        self.tokens += x.numel() * self.dist.world_size
        if self.config.compile and not self.compile_seconds:
            # The first step of a compiled model is mostly compilation: reported apart.
            self.compile_seconds = time.perf_counter() - started
            self.log(f"the first compiled step took {self.compile_seconds:.1f} s (compiling)")
        # In a multi-process run every process must agree on when the time budget runs out, or
        # one would wait forever for the others' gradients: we use the slowest process's clock.
        elapsed = torch.tensor(time.perf_counter() - started)
        if self.dist.world_size > 1 and c.time_budget > 0:
            dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        self.train_time += elapsed.item()
        self.curve["train_loss"].append(metrics["loss.train"])
        metrics["lr"] = self.optimisers[0].param_groups[0]["lr"]
        metrics.update(self.throughput(x.numel(), seq_len, elapsed.item()))
        self.report(metrics)

    def throughput(self, tokens: int, seq_len: int, seconds: float) -> Dict[str, float]:
        r"""
        This process's training tokens per second, and, with `--peak-tflops`, the model FLOP utilisation:
        the model's training FLOPs per token (counted on its page, `flops_per_token`) times tokens per second,
        over the device's peak.
        """
        rate = tokens / max(seconds, 1e-9)
        out = {"tokens_per_s": rate}
        if self.config.peak_tflops > 0:
            out["mfu"] = self.module.flops_per_token(seq_len) * rate / (self.config.peak_tflops * 1e12)
        return out

    def close(self) -> None:
        if self.dist.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
        if self.lock is not None:
            self.lock.release()
        torch.set_num_threads(self.threads_before)


# ## The command line

# What a collective says when a peer is gone: gloo's and NCCL's timeouts, and a closed connection.
_PEER_LOST = re.compile(r"timed out|timeout|connection (closed|reset)|broken pipe|ECONNRESET", re.IGNORECASE)

def run_experiment(config_class: Type[TrainConfig], model_class: type, model_kwargs: ModelKwargs,
                   argv: Optional[Sequence[str]] = None, trainer_class: Type[Trainer] = Trainer,
                   description: Optional[str] = None, presets: Optional[dict] = None) -> dict:
    """Parse and check the options (with the experiment's `presets`), train, and turn the errors a person
    must fix into one line (`error: ...`, exit code 2)."""
    if presets:
        description = ((description or config_class.__doc__ or "").strip() + "\n\nPresets (--preset NAME): "
                       + "; ".join(f"{name}: {preset.paper_bpc} bpc in the paper" for name, preset in presets.items()))
    trainer = None
    try:
        config = parse_config(config_class, argv, description, presets)
        trainer = trainer_class(config, model_class, model_kwargs)
        return trainer.run()
    except (DataError, UsageError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
    except (dist.DistError, RuntimeError) as error:
        # A collective gave up (gloo raises a plain `RuntimeError`): another process of the run stopped
        # answering within the timeout, or died. Anything else is a bug, and keeps its traceback.
        if trainer is None or trainer.dist.world_size == 1 or not _PEER_LOST.search(str(error)):
            raise
        first = str(error).strip().splitlines()[0]
        print(f"error: another process of this run did not answer within --ddp-timeout {trainer.config.ddp_timeout} s, "
              f"or it ended ({first})", file=sys.stderr)
        raise SystemExit(1)
    finally:
        if trainer is not None:
            trainer.close()
