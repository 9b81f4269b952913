r"""
---
title: The run around the loop
summary: Everything a training run needs besides the loop itself: the processes of DistributedDataParallel, one run per directory, the state a checkpoint carries and an exact resume, labml or plain printing in one place, and one-line errors.
---

# The run around the loop

[The training loop](trainer.html) is the procedure. A `Run` is what it works on and everything around
it, built in this order before the first step, so that a mistake costs a second, not the run:

1. **the processes**: this process's place among the ones `torchrun` started, its device and threads;
2. **the run directory**: locked, and refused if it holds another run's checkpoints;
3. **the checkpoint to resume from**, with `--resume`: the newest one that reads whole and holds a
   trainer's state, trained with the same data options;
4. **the data**, through the experiment's `data` hook (with the checkpoint's vocabulary when resuming),
   cut into this process's streams, and checked: the `--prompt` against the vocabulary, the streams
   against the segment length;
5. **the model** (the same weights in every process), its `DistributedDataParallel` wrapper and its
   compiled form, the optimisers and the float16 gradient scaler;
6. **the state** the loop carries and a checkpoint saves, restored when resuming.

Every option was [checked](config.html) before this, and the run ends in `summary`, which
`--summary` writes as JSON.

## Processes

Started by `torchrun --nproc_per_node=N` (and, across machines, `--nnodes M` with a rendezvous,
`--rdzv-backend c10d --rdzv-endpoint HOST:PORT`: `torchrun` sets the environment variables this code
reads), each process reads its own block of streams, keeps its own memory, and
`DistributedDataParallel` averages the gradients, so all processes hold the same weights after every
step. The batch size is per process and micro-batch: with $G$ processes and $M$ = `--grad-accum`, a
step reads $G M$ times `--batch-size` streams. Processes started some other way (`torch.multiprocessing`)
give the `init_method` by which they find each other, such as a file they all can reach
(`file:///path`).

A process that stops answering (hung, or stopped with `SIGSTOP`) would block the others in their
next collective forever; every collective has a timeout instead (`--ddp-timeout`, 300 s by default),
after which the run ends with a message that says so.

## One run per directory

A run takes a lock on its directory (see [checkpoints](checkpoint.html)), so that a second run started
there stops at once, and refuses a directory that holds another run's checkpoints unless it is told
`--overwrite` (or continues them with `--resume`).

## Resuming exactly

A checkpoint holds everything the next step depends on: the weights, the optimisers' moments, the
gradient scaler's state, the step (the schedule is a pure function of it and the training time), the
position in the streams, the memory, the random-number states of `random`, `numpy` and `torch`, and
the loss curve. Resuming a killed run therefore ends on the same weights as a run that was never
interrupted; the tests check this to the bit. Validation and sampling run inside
`torch.random.fork_rng`, so how often we look at the model never changes how it trains.

All of it is stored as tensors and plain data (numpy's random state as a list of numbers; a model's
memory as the plain lists of tensors its `memory_state` gives, or the memory itself where it is one),
so that the checkpoint loads with `weights_only=True` and nothing in it can run code. The memory and
the random states differ between processes, so each process's are gathered into `per_process`; a run
resumed with another number of processes starts the streams over with an empty memory, and says so.

A checkpoint is resumed only with the options that decide which text the streams hold and how they
are cut: `--batch-size`, `--grad-accum` (each micro-batch has its own memory and its own block of
streams), `--dataset`, `--data` and `--valid-fraction`. A run resumed with another value of one of them
stops at once and names the old and the new value; the model's own options are compared the same way.
And a `trainer.pt` must have the form `state_dict` gives it (every key, one `per_process` entry per
process, random states the generators accept): one that does not is skipped for the checkpoint
before it, like an unreadable one.

The **history** is the loss curve: every step's training losses (`loss.train`, and any other loss an
experiment reports) and every validation's step, bits per token and accuracy. The summary carries it
in at most 500 points.

## Stopping on a signal

A scheduler that preempts a job sends it `SIGTERM` (and a person at the keyboard `SIGINT`, Ctrl-C).
Either one asks the run to stop after the step it is in: it saves a checkpoint there, writes its
summary (`"stopped_by": "SIGTERM"`, `"finished": false`), says where it saved, and exits with
128 plus the signal's number (143 for `SIGTERM`), as a process killed by the signal would; `--resume`
continues it exactly. A second Ctrl-C interrupts at once. The processes of a multi-process run must
stop after the same step, even when only one of them got the signal: each step starts a non-blocking
reduction of their requests and reads the one started the step before
([`stop_requested`](#Run.stop_requested)), so that no step waits for it.

## Reporting

With labml (the default), progress, the numbers of every step and the validations go to labml's
tracker and monitor (which also write `./logs`); with `--no-labml`, messages are printed and the
numbers are kept for the summary. Only the first process reports. Both are written in one place,
`Reporter` and `LabmlReporter`.
"""

import contextlib
import datetime
import json
import math
import os
import random
import re
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Iterable, List, Optional

import numpy as np
import torch
import torch.distributed as dist
from labml import experiment as labml_experiment
from labml import logger, monit, tracker
from torch import nn

from labml_nn.experiments.checkpoint import (TRAINER_FILE, Checkpoint, CheckpointError, RunLock, clear_run, describe,
                                             latest_checkpoint, list_checkpoints, newest_readable, save_checkpoint)
from labml_nn.experiments.config import DTYPES, TrainConfig, UsageError, config_to_dict
from labml_nn.experiments.corpora import CORPORA
from labml_nn.experiments.data import DATA_PATH_ENV, IGNORE, DataError, Vocabulary
from labml_nn.experiments.sample import sample
from labml_nn.transformers.hub import ModelFileError


# ## Random states, memories, curves

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
    """`value` (tensors in lists and dictionaries, or plain data) with `fn` applied to every tensor."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [map_tensors(v, fn) for v in value]
    return value


def memory_state(model: nn.Module, memory: Any) -> Any:
    """The memory as plain lists of tensors: the model's own `memory_state`, or the memory itself for a model
    whose memory already is one (and which has none)."""
    return model.memory_state(memory) if hasattr(model, "memory_state") else memory


def load_memory_state(model: nn.Module, state: Any) -> Any:
    """The memory `memory_state` gave."""
    return model.load_memory_state(state) if hasattr(model, "load_memory_state") else state


def downsample(values: List[float], points: int = 500) -> List[float]:
    """At most `points` means of consecutive runs of `values`, for the summary's loss curve."""
    if len(values) <= points:
        return list(values)
    size = math.ceil(len(values) / points)
    return [statistics.fmean(values[i:i + size]) for i in range(0, len(values), size)]


def thin(entries: List[Any], points: int = 500) -> List[Any]:
    """At most `points` of `entries`, evenly spaced, the last included."""
    if len(entries) <= points:
        return list(entries)
    return [entries[round(i * (len(entries) - 1) / (points - 1))] for i in range(points)]


def new_history() -> Dict[str, Any]:
    """An empty loss curve: `train` maps each reported loss to its value at every step, `valid` lists the
    validations (`step`, `bpc`, `accuracy`)."""
    return {"train": {}, "valid": []}


def read_history(saved: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The history a checkpoint holds. Checkpoints that kept only the training loss (`train_loss`) and
    each validation as `[step, bpc]` read as such a history without accuracies."""
    if not saved:
        return new_history()
    if "train_loss" in saved:
        return {"train": {"loss.train": list(saved["train_loss"])},
                "valid": [{"step": step, "bpc": bpc, "accuracy": None} for step, bpc in saved.get("valid", [])]}
    return {"train": {k: list(v) for k, v in saved["train"].items()}, "valid": list(saved["valid"])}


def finite_or_none(value: Any) -> Any:
    """`value` with every float that is not finite replaced by `None`, so that it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


# ## A trainer state that is the trainer's

def check_trainer_state(checkpoint: Checkpoint) -> None:
    r"""
    Raise a `CheckpointError` unless `checkpoint.trainer` has the form `Run.state_dict` gives it: every key,
    of its type, one entry of `per_process` per process, and random states that the generators accept. A
    file that is plain data but not this (a key missing, a random state of the wrong size, an empty
    `per_process`) is then skipped for the checkpoint before it, as an unreadable one is.
    """
    saved, path = checkpoint.trainer, checkpoint.path / TRAINER_FILE

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise CheckpointError(f"{path} is not a trainer state of this package: {what}")

    kinds = {"model_kwargs": dict, "config": dict, "optimisers": list, "step": int, "tokens": int,
             "train_time": (int, float), "world_size": int, "per_process": list}
    for key, kind in kinds.items():
        need(key in saved, f"it has no {key!r}")
        need(isinstance(saved[key], kind) and not isinstance(saved[key], bool),
             f"{key!r} is a {type(saved[key]).__name__}")
    need(saved["step"] >= 0 and saved["tokens"] >= 0 and saved["train_time"] >= 0, "a negative step, count or time")
    need(saved["world_size"] >= 1 and len(saved["per_process"]) == saved["world_size"],
         f"'per_process' holds {len(saved['per_process'])} entries for {saved['world_size']} process(es)")
    need(isinstance(saved["config"].get("batch_size"), int), "its 'config' has no batch_size")
    need(all(isinstance(o, dict) and isinstance(o.get("state"), dict) and isinstance(o.get("param_groups"), list)
             for o in saved["optimisers"]), "an optimiser's state is not an optimiser's")
    need(isinstance(saved.get("scaler") or {}, dict), "'scaler' is not a gradient scaler's state")
    for own in saved["per_process"]:
        need(isinstance(own, dict) and isinstance(own.get("memory"), list) and isinstance(own.get("rng"), dict)
             and isinstance(own.get("data"), dict), "an entry of 'per_process' lacks its memory, rng or data")
        position = own["data"].get("position")
        need(isinstance(position, int) and position >= 0, "a stream position is not a non-negative integer")
        # The random states, given to generators of their own: the ones training uses are left alone.
        try:
            version, internal, gauss = own["rng"]["python"]
            random.Random().setstate((version, tuple(internal), gauss))
            kind, keys, pos, has_gauss, cached = own["rng"]["numpy"]
            np.random.RandomState().set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
            torch.Generator().set_state(own["rng"]["torch"])
        except Exception as error:
            need(False, f"a random state is not one ({type(error).__name__}: {error})")
    try:
        read_history(saved.get("history"))
    except Exception as error:
        need(False, f"its history is not one ({type(error).__name__}: {error})")


# ## Processes

@dataclass
class Distributed:
    """Where this process sits among the processes of the run (one process: rank 0 of 1)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str, timeout: float, init_method: Optional[str] = None) -> Distributed:
    """Join the process group if `WORLD_SIZE` is above 1.

    `torchrun` sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT`, which
    `init_method=None` reads. NCCL is the backend for GPUs, gloo the one for CPUs. Every collective gives
    up after `timeout` seconds.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo", init_method=init_method,
                                rank=int(os.environ["RANK"]) if init_method else -1,
                                world_size=world_size if init_method else -1,
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


# What a collective says when a peer is gone: gloo's and NCCL's timeouts, and a closed connection.
_PEER_LOST = re.compile(r"timed out|timeout|connection (closed|reset)|broken pipe|ECONNRESET", re.IGNORECASE)


class PeerLost(Exception):
    """Another process of the run stopped answering within `--ddp-timeout`, or ended."""


class Diverged(Exception):
    """The loss stopped being a number: the run stopped, its last checkpoint kept."""


class Stopped(Exception):
    """A SIGTERM or SIGINT stopped the run after it saved a checkpoint; `signal` is which."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal = signal_number


# ## Reporting

class Reporter:
    """Reporting without labml: messages printed by the first process, numbers left to the summary."""

    def __init__(self, is_main: bool):
        self.is_main = is_main

    def running(self) -> ContextManager:
        """The block the whole run is reported in."""
        return contextlib.nullcontext()

    def loop(self, steps: range) -> Iterable[int]:
        return steps

    def log(self, message: str) -> None:
        if self.is_main:
            print(message, flush=True)

    def report(self, step: int, values: Dict[str, float]) -> None:
        pass

    def end_line(self) -> None:
        pass


class LabmlReporter(Reporter):
    """labml's tracker and monitor: a progress bar, the numbers of every step beside it, `./logs`."""

    def __init__(self, config: TrainConfig):
        super().__init__(is_main=True)
        self.config = config

    def running(self) -> ContextManager:
        # The log directory is `./logs` under the current directory, not beside this file.
        labml_experiment.create(name=self.config.name, python_file=os.getcwd(), writers={"screen", "file"})
        labml_experiment.configs(config_to_dict(self.config))
        for pattern, printed in [("loss.*", True), ("bpc.*", True), ("accuracy.*", True), ("lr", False),
                                 ("tokens_per_s", True), ("mfu", True)]:
            tracker.set_scalar(pattern, printed)
        return labml_experiment.start()

    def loop(self, steps: range) -> Iterable[int]:
        return monit.loop(steps)

    def log(self, message: str) -> None:
        logger.log(message)

    def report(self, step: int, values: Dict[str, float]) -> None:
        tracker.save(step, values)

    def end_line(self) -> None:
        tracker.new_line()


# ## The state a checkpoint carries

@dataclass
class TrainState:
    """What the loop changes from step to step, besides the weights and the optimisers."""
    step: int = 0
    tokens: int = 0
    train_time: float = 0.0
    # One memory per micro-batch.
    memory: List[Any] = field(default_factory=list)
    history: Dict[str, Any] = field(default_factory=new_history)


# ## The run

class Run:
    r"""
    The model, optimisers, streams and state that [`train`](trainer.html#train) works on, built from
    `config` by `experiment` (an [`Experiment`](trainer.html#Experiment)) in the order described above.
    Use it in a `with` block: the reporting starts when the block starts, and the lock, the process group
    and the thread count are given back when it ends.
    """

    def __init__(self, config: TrainConfig, experiment: Any, init_method: Optional[str] = None):
        self.config = config
        self.experiment = experiment
        self.lock: Optional[RunLock] = None
        self.dist = Distributed()
        self.out = Reporter(is_main=True)
        # Thread counts are global to the process; `close()` puts back the one we found.
        self.threads_before = torch.get_num_threads()
        self.compile_seconds = 0.0
        self._running = contextlib.ExitStack()
        # The signal that asked the run to stop (`None`: none), the handlers it replaced, and the pending vote
        # of the processes on stopping (see `stop_requested`).
        self.signal: Optional[int] = None
        self._handlers: Dict[int, Any] = {}
        self._stop_vote: Optional[Any] = None
        self.diverged: Optional[str] = None
        try:
            self._start_processes(init_method)
            self.run_dir = Path(config.checkpoint_dir) / config.name
            if self.dist.is_main:
                self._claim_directory()
            resume_from = self._checkpoint_to_resume()
            if resume_from is not None:
                self._check_same_options(resume_from)
            self._read_data(resume_from)
            self._build_model(resume_from)
            self.state = TrainState(memory=[None] * config.grad_accum)
            if resume_from is not None:
                self._restore(resume_from)
        except BaseException:
            # A run that cannot start releases what it took: its lock, the process group, the threads.
            self.close()
            raise

    # ### Building the run

    def _start_processes(self, init_method: Optional[str]) -> None:
        c = self.config
        if c.threads > 0:
            torch.set_num_threads(c.threads)
        self.device = resolve_device(c.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.dist = init_distributed(self.device.type, c.ddp_timeout, init_method)
        if self.dist.world_size > 1 and self.device.type == "cpu" and c.threads <= 0:
            # Processes on one CPU share its cores; without this each would start a thread per core.
            local = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
        self.out = (LabmlReporter(c) if c.labml and self.dist.is_main else Reporter(self.dist.is_main))

    def _claim_directory(self) -> None:
        """Lock the run directory, and refuse (or with `--overwrite`, clear) another run's checkpoints."""
        c = self.config
        try:
            self.lock = RunLock(self.run_dir).acquire()
        except CheckpointError as error:
            raise UsageError(str(error)) from None
        existing = list_checkpoints(self.run_dir)
        if c.resume or not existing:
            return
        if not c.overwrite:
            raise UsageError(f"{self.run_dir} already holds the checkpoints of another run ({describe(existing)}). "
                             f"Continue it with --resume, choose another --name or --checkpoint-dir, or pass "
                             f"--overwrite to delete them and start over.")
        clear_run(self.run_dir)
        self.log(f"--overwrite: deleted {len(existing)} checkpoint(s) of the earlier run in {self.run_dir}")

    def _checkpoint_to_resume(self) -> Optional[Checkpoint]:
        if not self.config.resume:
            return None
        try:
            return newest_readable(self.run_dir, self.log, map_location=self.device, check=check_trainer_state)
        except CheckpointError as error:
            raise UsageError(f"--resume: {error}. Start without --resume, or pass the --name and "
                             f"--checkpoint-dir of the run to continue.") from None

    def _read_data(self, resume_from: Optional[Checkpoint]) -> None:
        c = self.config
        # A resumed run keeps the checkpoint's vocabulary, so that the model's outputs keep their meaning.
        vocab = None
        if resume_from is not None:
            try:
                vocab = Vocabulary.from_config(resume_from.config)
            except (KeyError, TypeError, ValueError) as error:
                raise CheckpointError(f"{resume_from.path}: the vocabulary is not usable ({error})") from None
        data = self.experiment.data(c, vocab)
        self.vocab: Vocabulary = data.vocab
        unknown = self.vocab.unknown(c.prompt)
        if unknown:
            raise UsageError(f"--prompt {c.prompt!r}: the {self.vocab.unit}s {unknown!r} are not in the vocabulary "
                             f"of the data")
        # Each process reads `grad_accum` micro-batches of `batch_size` streams per step.
        rank, world = self.dist.rank, self.dist.world_size
        for part, name, streams in [("train", "training", c.batch_size * c.grad_accum),
                                    ("valid", "validation", c.batch_size)]:
            try:
                batches = data.streams(part, streams, rank, world)
            except DataError:
                if len(getattr(data, part)) > 2 * streams * world:
                    raise  # not a matter of length
                batches = None
            if batches is None or batches.num_windows(c.seq_len) == 0:
                tokens = len(getattr(data, part))
                raise DataError(f"{self.data_source()}: its {name} part ({tokens:,} {self.vocab.unit}s) is too short "
                                f"for {streams * world} streams of {c.seq_len}; use a smaller --batch-size or --seq-len"
                                + (", or a larger --valid-fraction." if part == "valid" else ", or more text."))
            setattr(self, f"{part}_batches", batches)
        windows = self.valid_batches.num_windows(c.seq_len)
        if c.valid_windows > 0:
            windows = min(windows, c.valid_windows)
        # (Targets of a byte corpus are bytes, unsigned: all of them count.)
        targets = self.valid_batches.targets[:, :windows * c.seq_len]
        if targets.dtype.is_signed and not (targets != IGNORE).any():
            raise DataError(f"the {windows} validation windows of {c.seq_len} tokens hold no target (every one is "
                            f"IGNORE); validate on more windows (--valid-windows)")

    def data_source(self) -> str:
        """Where the data comes from, for messages: `--data PATH`, an environment variable, or the dataset."""
        c = self.config
        if self.experiment.data.__name__ != "dataset":
            return f"the data of {self.experiment.model_class.__name__}'s experiment ({self.experiment.data.__name__})"
        if c.data:
            return f"--data {c.data}"
        env = CORPORA[c.dataset].env if c.dataset in CORPORA else DATA_PATH_ENV
        return f"{env}={os.environ[env]}" if os.environ.get(env) else f"the downloaded {c.dataset}"

    def _build_model(self, resume_from: Optional[Checkpoint]) -> None:
        c = self.config
        # Every process seeds the same generator before building the model, so all start from the
        # same weights (`DistributedDataParallel` would copy rank 0's anyway).
        seed_everything(c.seed)
        self.model_kwargs = self.experiment.model_kwargs(c, len(self.vocab))
        try:
            self.module: nn.Module = self.experiment.model_class(**self.model_kwargs).to(self.device)
        except ValueError as error:
            # The model's own checks of its arguments, for a combination of options.
            raise UsageError(f"the model options do not fit together: {error}") from None
        if resume_from is not None:
            self._check_same_model(resume_from)
            self.module.load_state_dict(resume_from.weights)
        # `model` is what the loop calls to train: the module itself, or its DDP wrapper that averages
        # gradients across processes during `backward()`.
        self.model: nn.Module = self.module
        if self.dist.world_size > 1:
            self.model = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.experiment.find_unused_parameters)
        if c.compile:
            # The readable model, compiled: the same numbers within float tolerance (the tests check it).
            # Validation and sampling keep the eager module. Shapes change while the memories fill (and
            # with a curriculum); which treatment of them is faster depends on the model (see the
            # benchmarks), so it is an option.
            self.model = torch.compile(self.model, dynamic=False if c.compile_shapes == "static" else None)
        self.optimisers = self.experiment.optimisers(self.module, c)
        # Mixed precision: float16 also needs its gradients scaled, so that small ones do not underflow
        # (`GradScaler` does nothing when it is not enabled).
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=c.dtype == "float16")

    # The options a resumed run must share with the run it continues: they cut the streams (the memory and
    # the stream positions only fit the same cut) or choose the text.
    SAME_ON_RESUME = ("batch_size", "grad_accum", "dataset", "data", "valid_fraction")

    def _check_same_options(self, checkpoint: Checkpoint) -> None:
        """`--resume` with other options that decide the data and its streams is refused, naming the old and
        the new value (paths compared as absolute paths)."""
        saved = checkpoint.trainer["config"]
        defaults = TrainConfig()
        for name in self.SAME_ON_RESUME:
            old, new = saved.get(name, getattr(defaults, name)), getattr(self.config, name)
            if name == "data":
                old, new = (os.path.abspath(os.path.expanduser(v)) if v else "" for v in (old, new))
            if old != new:
                option = "--" + name.replace("_", "-")
                raise UsageError(f"--resume: {checkpoint.path} was trained with {option} {old!r}, this run has "
                                 f"{option} {new!r}; the memory and the stream positions only fit the same data cut "
                                 f"the same way. Resume with {option} {old!r}, or start a new run.")

    def _check_same_model(self, checkpoint: Checkpoint) -> None:
        saved, path = checkpoint.trainer, checkpoint.path
        name = checkpoint.config.get("model_class")
        if name != self.experiment.model_class.__name__ or saved["model_kwargs"] != self.model_kwargs:
            raise UsageError(f"--resume: {path} holds a {name} with {saved['model_kwargs']}, but this run builds a "
                             f"{self.experiment.model_class.__name__} with {self.model_kwargs}. Use the same model "
                             f"options as the run you resume.")

    # ### Checkpoints

    def state_dict(self) -> dict:
        """Everything beside the weights that `--resume` needs, as tensors and plain data. Every process
        takes part: each one's memory, random states and stream position are gathered into `per_process`."""
        s = self.state
        own = {"memory": [map_tensors(memory_state(self.module, m), lambda t: t.detach().cpu()) for m in s.memory],
               "rng": rng_state(), "data": self.train_batches.state_dict()}
        per_process = [own]
        if self.dist.world_size > 1:
            per_process = [None] * self.dist.world_size
            dist.all_gather_object(per_process, own)
        return {
            "model_kwargs": self.model_kwargs,
            "config": config_to_dict(self.config),
            "optimisers": [optimiser.state_dict() for _, optimiser in self.optimisers],
            "scaler": self.scaler.state_dict(),
            "step": s.step,
            "tokens": s.tokens,
            "train_time": s.train_time,
            "history": s.history,
            "world_size": self.dist.world_size,
            "per_process": per_process,
        }

    def _restore(self, checkpoint: Checkpoint) -> None:
        try:
            self._restore_state(checkpoint)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            # What `check_trainer_state` cannot see without the model (an optimiser's state of another shape).
            first = str(error).splitlines()[0] if str(error) else ""
            raise CheckpointError(f"--resume: {checkpoint.path / TRAINER_FILE} does not fit this run "
                                  f"({type(error).__name__}: {first})") from None

    def _restore_state(self, checkpoint: Checkpoint) -> None:
        saved, s = checkpoint.trainer, self.state
        for (_, optimiser), optimiser_state in zip(self.optimisers, saved["optimisers"]):
            optimiser.load_state_dict(optimiser_state)
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        s.step, s.tokens, s.train_time = saved["step"], saved["tokens"], saved["train_time"]
        s.history = read_history(saved.get("history"))
        if saved["world_size"] == self.dist.world_size:
            own = saved["per_process"][self.dist.rank]
            self.train_batches.load_state_dict(own["data"])
            s.memory = [load_memory_state(self.module, map_tensors(m, lambda t: t.to(self.device)))
                        for m in own["memory"]]
            set_rng_state(own["rng"])
        else:
            # The streams are cut differently with a different number of processes, so neither the
            # positions nor the memories fit; we restart the streams and say so.
            self.log(f"resuming with {self.dist.world_size} processes from a run with {saved['world_size']}: the "
                     f"data streams start over with an empty memory")

    def save(self) -> None:
        """A checkpoint of the current step (every process takes part in gathering the state; the first writes it)."""
        state = self.state_dict()
        if self.dist.is_main:
            save_checkpoint(self.run_dir, self.state.step, self.module, state, vocab=self.vocab,
                            keep=self.config.keep_checkpoints)

    def export(self, directory: str) -> None:
        """The model file (`config.json` with the vocabulary, `model.safetensors`) in `directory`."""
        if self.dist.is_main:
            self.module.save_pretrained(directory, **self.vocab.to_config())
            self.log(f"exported the model to {directory}")

    # ### What the loop calls

    def autocast(self) -> ContextManager:
        """The precision of `--dtype` for a forward pass (no-op for float32)."""
        c = self.config
        return torch.autocast(self.device.type, dtype=DTYPES[c.dtype], enabled=c.dtype != "float32")

    def no_sync(self, skip: bool) -> ContextManager:
        """With `skip`, a backward pass that leaves the gradients in this process (`DistributedDataParallel`
        averages them at the next one without it)."""
        return self.model.no_sync() if skip and self.dist.world_size > 1 else contextlib.nullcontext()

    def fork_rng(self) -> ContextManager:
        """A block whose random draws leave the training's random states as they were."""
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def loop(self, steps: range) -> Iterable[int]:
        return self.out.loop(steps)

    def stop_requested(self) -> bool:
        r"""
        Whether a SIGTERM or SIGINT asked the run to stop; the loop asks after every step. The processes of a
        run must all stop after the same step, or the others would wait for the stopped one's gradients. So
        each step starts a non-blocking reduction of the processes' requests (the largest signal number, 0
        for none) and reads the one started the step before, which has long arrived: all processes read the
        same answer, and no step waits for it.
        """
        if self.dist.world_size == 1:
            return self.signal is not None
        stop = False
        if self._stop_vote is not None:
            work, votes = self._stop_vote
            work.wait()
            # The processes that got no signal stop for the one another got.
            number = int(votes.item())
            if number:
                self.signal, stop = self.signal or number, True
        votes = torch.tensor([self.signal or 0], device=self.device)
        self._stop_vote = (dist.all_reduce(votes, op=dist.ReduceOp.MAX, async_op=True), votes)
        return stop

    def _on_signal(self, number: int, frame: Any) -> None:
        """The first SIGTERM or SIGINT asks the loop to save and stop after this step; a second SIGINT (a
        person pressing Ctrl-C again) interrupts at once."""
        if self.signal is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = number

    def _catch_signals(self) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            try:
                self._handlers[number] = signal.signal(number, self._on_signal)
            except ValueError:
                return  # not the main thread: signals are the main thread's to handle

    def _release_signals(self) -> None:
        for number, handler in self._handlers.items():
            signal.signal(number, handler)
        self._handlers = {}

    def seconds_since(self, started: float) -> float:
        """Seconds since `started`. In a multi-process run every process must agree on when the time
        budget runs out, or one would wait forever for the others' gradients: the slowest process's clock."""
        elapsed = torch.tensor(time.perf_counter() - started)
        if self.dist.world_size > 1 and self.config.time_budget > 0:
            dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        return elapsed.item()

    def sample(self, title: str) -> None:
        """Print `--prompt` continued by `--sample-length` sampled tokens (first process only)."""
        if not self.dist.is_main:
            return
        c = self.config
        self.module.eval()
        with self.fork_rng():
            text = sample(self.module, self.vocab, c.prompt, c.sample_length, temperature=c.temperature)
        self.module.train()
        self.log(f"--- {title} ---\n{text}\n---")

    # ### Reporting

    def log(self, message: str) -> None:
        self.out.log(message)

    def report_step(self, values: Dict[str, float], tokens: int, seq_len: int, seconds: float) -> None:
        r"""
        A step's numbers, with the learning rate, this process's training tokens per second and, with
        `--peak-tflops`, the model FLOP utilisation: the model's training FLOPs per token (counted on its
        page, `flops_per_token`) times tokens per second, over the device's peak.
        """
        if self.config.compile and not self.compile_seconds:
            # The first step of a compiled model is mostly compilation: reported apart.
            self.compile_seconds = seconds
            self.log(f"the first compiled step took {seconds:.1f} s (compiling)")
        values = dict(values, lr=self.optimisers[0][1].param_groups[0]["lr"])
        values["tokens_per_s"] = tokens / max(seconds, 1e-9)
        if self.config.peak_tflops > 0:
            values["mfu"] = self.mfu(values["tokens_per_s"], seq_len)
        self.out.report(self.state.step, values)

    def mfu(self, tokens_per_s: float, seq_len: int) -> float:
        return self.module.flops_per_token(seq_len) * tokens_per_s / (self.config.peak_tflops * 1e12)

    def report_validation(self, metrics: Any) -> None:
        s = self.state
        self.out.report(s.step, {"bpc.valid": metrics.bits, "accuracy.valid": metrics.accuracy})
        rate = s.tokens / self.dist.world_size / max(s.train_time, 1e-9)
        self.log(f"step {s.step}: validation {metrics.bits:.4f} bits per {self.vocab.unit}, accuracy "
                 f"{metrics.accuracy:.4f}, {rate:,.0f} training tokens/s per process")
        self.out.end_line()

    def summary(self, finished: bool) -> dict:
        """The run's final numbers and its loss curve in at most 500 points (bits per token, each point the
        mean of a run of steps); written as JSON to `--summary`."""
        c, s = self.config, self.state
        valid = s.history["valid"][-1] if s.history["valid"] else {}
        train_loss = s.history["train"].get("loss.train", [])
        summary = {"name": c.name, "model": type(self.module).__name__,
                   "parameters": sum(p.numel() for p in self.module.parameters()),
                   "step": s.step, "tokens": s.tokens, "train_seconds": round(s.train_time, 2),
                   "valid_bpc": valid.get("bpc"), "valid_accuracy": valid.get("accuracy"), "finished": finished,
                   "checkpoint": str(latest_checkpoint(self.run_dir)),
                   "history": {"steps_per_point": math.ceil(len(train_loss) / 500) or 1,
                               "train_bpc": [v / math.log(2) for v in downsample(train_loss)],
                               "valid": thin(s.history["valid"])}}
        if s.train_time > 0:
            # Each process's rate, so that the utilisation is per device.
            summary["tokens_per_s"] = round(s.tokens / self.dist.world_size / s.train_time, 1)
            if c.peak_tflops > 0:
                summary["mfu"] = self.mfu(s.tokens / self.dist.world_size / s.train_time, c.seq_len)
        if c.compile:
            summary["compile_seconds"] = round(self.compile_seconds, 2)
        if self.diverged:
            summary["diverged"] = self.diverged
        if self.signal is not None:
            summary["stopped_by"] = signal.Signals(self.signal).name
        if c.summary and self.dist.is_main:
            Path(c.summary).parent.mkdir(parents=True, exist_ok=True)
            Path(c.summary).write_text(json.dumps(finite_or_none(summary), indent=2, allow_nan=False))
        return summary

    # ### Starting and ending

    def __enter__(self) -> "Run":
        self._running.enter_context(self.out.running())
        # Before the first message: a scheduler that reads it may signal from then on.
        self._catch_signals()
        self.log(f"{self.config.name}: {type(self.module).__name__} with "
                 f"{sum(p.numel() for p in self.module.parameters()):,} parameters, {self.dist.world_size} "
                 f"process(es), {len(self.vocab)} {self.vocab.unit}s, starting at step {self.state.step} of "
                 f"{self.config.steps}")
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        try:
            self._running.__exit__(kind, error, traceback)
        finally:
            self.close()
        if (self.dist.world_size > 1 and isinstance(error, (dist.DistError, RuntimeError))
                and _PEER_LOST.search(str(error))):
            # A collective gave up (gloo raises a plain `RuntimeError`): another process of this run stopped
            # answering within the timeout, or died. Anything else is a bug, and keeps its traceback.
            first = str(error).strip().splitlines()[0]
            raise PeerLost(f"another process of this run did not answer within --ddp-timeout "
                           f"{self.config.ddp_timeout} s, or it ended ({first})") from None
        return False

    def close(self) -> None:
        self._release_signals()
        if self._stop_vote is not None:
            self._stop_vote[0].wait()
            self._stop_vote = None
        if self.dist.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        torch.set_num_threads(self.threads_before)


# ## Errors a person must fix

@contextlib.contextmanager
def one_line_errors():
    """Inside the block, a mistake a person must fix (a bad option, bad data, an unusable checkpoint or model
    file) ends the program with one line, `error: ...`, and exit code 2; a lost peer or a diverged run with
    exit code 1; a run stopped by a signal says where it saved, and exits with 128 plus the signal's number,
    as a process killed by it would."""
    try:
        yield
    except (DataError, UsageError, CheckpointError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
    except (PeerLost, Diverged) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1)
    except Stopped as stopped:
        print(f"stopped: {stopped}", file=sys.stderr)
        raise SystemExit(128 + stopped.signal)
