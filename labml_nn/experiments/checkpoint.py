r"""
---
title: Atomic checkpoints
summary: Checkpoints that a killed process can never leave half-written, keeping the last few, found again by step number.
---

# Atomic checkpoints

A run on a shared machine gets killed: out of time, out of memory, a user's Ctrl-C. If that happens
while `torch.save` is writing, a naive checkpoint file is left truncated, and if it is also the newest
file, `--resume` fails on it or, worse, loads garbage. We avoid this with the usual three steps:

1. write the checkpoint to a temporary file in the same directory;
2. `fsync` it, so its bytes are on disk and not only in the page cache;
3. `os.replace` it onto its final name. A rename within one file system is atomic: a reader sees
   either no file or the whole file, never a part of one.

Only files with a final name (`checkpoint-00001500.pt`) count as checkpoints; leftover temporary
files from a killed process are ignored and cleaned up by the next save. After a save we delete all
but the newest `keep` checkpoints.

A checkpoint is a plain dictionary (see the [trainer](trainer.html) for its keys), readable with
`torch.load` without this code.
"""

import os
import re
import tempfile
from pathlib import Path
from typing import Any, List, Optional

import torch

# Zero-padded step numbers keep the names in step order when listed.
_NAME = re.compile(r"^checkpoint-(\d+)\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"checkpoint-{step:08d}.pt"


def list_checkpoints(directory: Path) -> List[Path]:
    """Complete checkpoints in `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: Path) -> Optional[Path]:
    """The newest complete checkpoint, or `None`."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_checkpoint(state: Any, directory: Path, step: int, keep: int = 3) -> Path:
    """Write `state` as the checkpoint of `step`, atomically, and keep only the newest `keep`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, step)
    # The temporary file lives in the same directory, hence the same file system, so that the
    # rename below is atomic. Its name never matches `_NAME`.
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        # Also on KeyboardInterrupt: leave no temporary file behind.
        Path(tmp).unlink(missing_ok=True)
        raise
    # Make the rename itself durable: fsync the directory entry (not possible on every OS).
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    _prune(directory, keep)
    return final


def _prune(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints, and temporary files of killed saves."""
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    for leftover in directory.glob(".checkpoint-*.tmp"):
        leftover.unlink(missing_ok=True)


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict:
    """Read a checkpoint. `weights_only=False` because it also holds the model's memory, whose type
    is the model's business; like any pickle, that can run code, so load only checkpoints you trust."""
    return torch.load(path, map_location=map_location, weights_only=False)
