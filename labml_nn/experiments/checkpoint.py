r"""
---
title: Checkpoints that load safely and never lose work
summary: Checkpoints as directories of safetensors weights, JSON and plain tensors, written atomically, loaded without running code, with a fall-back to the newest readable one and a lock per run.
---

# Checkpoints that load safely and never lose work

A checkpoint must survive three things: a process killed while it is written, a file that is
damaged later, and a file that is hostile. It must also keep two runs from mixing.

## What a checkpoint is

A directory, `checkpoint-00001500/`, holding

* `config.json` and `model.safetensors`: the [model file](../transformers/hub.html) (constructor
  arguments, class name, vocabulary; weights), so a checkpoint is also a model directory that
  `from_pretrained` and [`sample`](sample.html) read directly;
* `trainer.pt`: everything else the next step depends on (optimiser moments, the step, the stream
  position, the memory, the random-number states, the loss curve; see [the run](run.html#resuming-exactly))
  as tensors and plain Python data: lists, dictionaries, numbers and strings.

**Why not one pickle.** The simplest checkpoint is one `torch.save` of a dictionary, read back with
`torch.load(..., weights_only=False)`, which unpickles anything: a file whose pickle holds an object
with `__reduce__` returning `(os.system, ("...",))` runs that command as soon as `--resume` or `sample`
opens it. So nothing in a checkpoint is trusted to name code: the weights are safetensors (bytes and
shapes), `trainer.pt` is read with `weights_only=True`, which refuses every type but tensors and plain
data, and the model's class is looked up by name in the [fixed table](../transformers/hub.html) of
the package's models.

## Written atomically

1. write the three files into a temporary directory beside the final one (same file system);
2. `fsync` each file and the directory, so the bytes are on disk and not only in the page cache;
3. rename the directory onto its final name. A rename is atomic: a reader sees no checkpoint or a
   whole one. (Saving a step that already has a checkpoint moves the old one aside first, then
   deletes it.)

Leftover temporary directories of a killed process never count as checkpoints, and the next save
removes them. After a save all but the newest `keep` checkpoints are deleted.

## Damaged files, and two runs in one directory

A checkpoint can still be damaged after it was written (a full disk, a copy cut short). Loading
tries the newest checkpoint and, if any of its files cannot be read, says so in one line and tries
the one before: a run resumes from the newest checkpoint that is whole. A `trainer.pt` that reads as
plain data but is not a trainer's state (a key missing, a random state of the wrong size) is skipped
the same way: [the run](run.html) checks its form before it uses it.

A run directory belongs to one run at a time. A run holds an exclusive lock on its `.lock`
file while it runs (an `flock`, which the operating system releases if the process dies), so a second
run started in the same directory stops at once with a message instead of deleting the first run's
files. And a new run (without `--resume`) in a directory that already holds checkpoints stops
too, unless it is told `--overwrite`: otherwise the two runs' checkpoints would interleave and
prune each other.
"""

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import safetensors.torch
import torch
from torch import nn

try:
    import fcntl  # the run lock; not on every operating system
except ImportError:
    fcntl = None

from labml_nn.experiments.data import Vocabulary
from labml_nn.transformers.hub import WEIGHTS_FILE, ModelFileError, model_class, read_config, shareable

TRAINER_FILE = "trainer.pt"
# Zero-padded step numbers keep the names in step order when listed.
_NAME = re.compile(r"^checkpoint-(\d+)$")
_TEMPORARY = ".checkpoint-"


class CheckpointError(Exception):
    """A checkpoint that cannot be used, or a run directory that cannot be used: the message says why."""


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"checkpoint-{step:08d}"


def list_checkpoints(directory: Path) -> List[Path]:
    """Checkpoint directories in `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: Path) -> Optional[Path]:
    """The newest checkpoint directory (readable or not), or `None`."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


# ## Saving

def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory
    finally:
        os.close(fd)


def save_checkpoint(directory: Path, step: int, model: nn.Module, trainer_state: Dict[str, Any],
                    vocab: Optional[Vocabulary] = None, keep: int = 3) -> Path:
    r"""
    Write the checkpoint of `step`, atomically: the model file (`model.save_pretrained`, with the
    vocabulary) and `trainer_state`, which must be tensors and plain data (`torch.load` with
    `weights_only=True` reads it back). Keeps the newest `keep` checkpoints.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, step)
    # The temporary directory's name never matches `_NAME`.
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TEMPORARY}{step:08d}-", suffix=".tmp", dir=directory))
    try:
        model.save_pretrained(tmp, **(vocab.to_config() if vocab is not None else {}))
        with open(tmp / TRAINER_FILE, "wb") as f:
            torch.save(trainer_state, f)
        # A checkpoint is also a model directory to share: not the 0700 of a temporary directory.
        shareable(tmp)
        for file in tmp.iterdir():
            _fsync(file)
        _fsync(tmp)
        if final.exists():
            # The same step saved again (at the end of a run): move the old one aside, then replace it.
            old = final.with_name(f"{_TEMPORARY}{step:08d}-replaced.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        # Also on KeyboardInterrupt: leave no temporary directory behind.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Make the rename itself durable.
    _fsync(directory)
    _prune(directory, keep)
    return final


def _prune(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints, and temporary directories of killed saves. Only
    the process that holds the run's lock saves, so these are never another process's files."""
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for leftover in directory.glob(f"{_TEMPORARY}*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


# ## Loading

@dataclass
class Checkpoint:
    """A checkpoint read into memory: the model's `config.json`, its weights, and the trainer's state."""
    path: Path
    config: Dict[str, Any]
    weights: Dict[str, torch.Tensor]
    trainer: Dict[str, Any]


def load_checkpoint(path: Path, map_location: Any = "cpu") -> Checkpoint:
    r"""
    Read a checkpoint directory without running anything it contains: JSON, safetensors, and
    `torch.load(..., weights_only=True)`. Any problem is a `CheckpointError` naming the file.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint directory")
    try:
        config = read_config(path)
        model_class(config.get("model_class"))
    except ModelFileError as error:
        raise CheckpointError(str(error)) from None
    try:
        weights = safetensors.torch.load_file(str(path / WEIGHTS_FILE), device=str(map_location))
    except Exception as error:
        raise CheckpointError(f"{path / WEIGHTS_FILE} is not readable ({type(error).__name__}: {error})") from None
    try:
        trainer = torch.load(path / TRAINER_FILE, map_location=map_location, weights_only=True)
    except Exception as error:
        # `weights_only=True` refuses any pickle that is more than tensors and plain data.
        raise CheckpointError(f"{path / TRAINER_FILE} is not readable as plain data "
                              f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
    if not isinstance(trainer, dict):
        raise CheckpointError(f"{path / TRAINER_FILE} must hold a dictionary, got {type(trainer).__name__}")
    return Checkpoint(path, config, weights, trainer)


def newest_readable(directory: Path, report: Callable[[str], None], map_location: Any = "cpu",
                    check: Optional[Callable[[Checkpoint], None]] = None) -> Checkpoint:
    r"""
    The newest checkpoint in `directory` that reads whole (and passes `check`, which raises a `CheckpointError`
    for one that reads but is not what the caller needs). Each one skipped is reported in one line
    (`report`), and so is the one used instead. Raises a `CheckpointError` when there is none.
    """
    found = list_checkpoints(directory)
    if not found:
        raise CheckpointError(f"there is no checkpoint in {directory}")
    skipped: List[Tuple[Path, str]] = []
    for path in reversed(found):
        try:
            checkpoint = load_checkpoint(path, map_location)
            if check is not None:
                check(checkpoint)
        except CheckpointError as error:
            skipped.append((path, str(error)))
            report(f"warning: {path.name} is unreadable: {error}")
            continue
        if skipped:
            report(f"warning: using {path.name}, the newest readable checkpoint in {directory}")
        return checkpoint
    raise CheckpointError(f"no checkpoint in {directory} is readable: "
                          + "; ".join(f"{p.name}: {why}" for p, why in skipped))


# ## One run per directory

class RunLock:
    r"""
    An exclusive lock on `directory/.lock` for as long as a run uses the directory. `flock` locks
    belong to the open file: the operating system drops them when the process ends, however it ends,
    so a killed run never leaves a stale lock. (On systems without `fcntl` there is no lock.)
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        if fcntl is None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise CheckpointError(f"another run (process {owner}) is using {self.directory} right now; wait for it "
                                  f"to end, or choose another --name") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file releases the lock
            self.fd = None


def clear_run(directory: Path) -> List[Path]:
    """Delete the checkpoints in `directory`, for `--overwrite`; returns what was deleted."""
    gone = list_checkpoints(directory)
    for path in gone:
        shutil.rmtree(path)
    return gone


def describe(paths: List[Path]) -> str:
    names = [p.name for p in paths]
    return ", ".join(names if len(names) <= 3 else names[:1] + ["...", names[-1]])

