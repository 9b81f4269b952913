r"""
---
title: Character-level data in contiguous streams
summary: Tiny Shakespeare, a character vocabulary, and a batcher that cuts the text into contiguous streams so that a memory transformer's memory belongs to the text it is reading.
---

# Character-level data in contiguous streams

Every experiment in this project trains a character-level language model on
[Tiny Shakespeare](https://github.com/karpathy/char-rnn), about 1.1 million characters of plays.
Characters keep the vocabulary tiny (65 symbols) so that a model small enough for a laptop CPU
learns something visible within minutes, and bits per character is a measure that any reader
can compare across models.

This page has three parts:

1. **Finding the text.** A file named on the command line (`--data PATH`), else the environment
   variable `TINY_SHAKESPEARE_PATH`, else a cached download. Every way this can go wrong ends in
   one `DataError` whose message says what to do; the entry points print it without a traceback.
2. **The vocabulary.** The sorted set of characters in the text. It is saved in every checkpoint,
   because a model's output row $i$ means nothing without the character it stands for.
3. **Stream batching.** The part that matters for memory transformers, explained below.

## Why contiguous streams

A memory transformer such as [Transformer-XL](../transformers/xl/index.html) reads a segment of
`seq_len` characters while attending to the hidden states of the segments it read before. That
memory only helps if those earlier segments are *the text that precedes the current one*.

The usual way to batch a language model, picking `batch_size` random crops of the text, breaks this
silently: row $b$ of batch $t+1$ is an unrelated place in the text, so the memory carried over from
batch $t$ describes some other scene. The model still trains, the loss still goes down, and the
memory is worth nothing; the comparison with a no-memory baseline then measures noise.

Instead we cut the text into `batch_size` equal, contiguous streams, one per row,

$$\text{stream}_b = \text{text}[b L : (b+1) L + 1], \qquad L = \lfloor (N - 1) / B \rfloor,$$

and batch $t$ is the window $[tT, (t+1)T)$ of every stream, where $T$ is `seq_len`. Row $b$ of batch
$t+1$ starts exactly where row $b$ of batch $t$ ended, so the memory in row $b$ is always the recent
past of the same stream. With several processes, each process takes its own block of streams.
When a stream runs out the batcher starts again at the beginning and says so, and the trainer
clears the memory, because the end of the text does not precede its beginning.
"""

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

import torch

# The usual public copy of Tiny Shakespeare, from Andrej Karpathy's char-rnn repository.
TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
# The environment variable that points at a local copy (CI and the tests set it).
DATA_PATH_ENV = "TINY_SHAKESPEARE_PATH"


class DataError(Exception):
    """A problem with the training text that a person must fix: the message says how.

    Entry points catch it and print the message alone, without a traceback.
    """


def cache_dir() -> Path:
    """Where downloads are kept: `$XDG_CACHE_HOME/labml_nn`, by default `~/.cache/labml_nn`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "labml_nn"


def download(url: str, target: Path, what: str = "Tiny Shakespeare",
             local: str = f"--data PATH, or set the environment variable {DATA_PATH_ENV}=PATH") -> None:
    """Download `url` to `target`, atomically.

    The file is written under a temporary name and renamed into place, so an interrupted download
    never leaves a truncated file that a later run would take for the whole text. Offline, one
    `DataError` names the URL and the ways around it (`local`).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        # One message that names the URL, the reason and both ways around it.
        raise DataError(
            f"Could not download {what} from {url} ({getattr(error, 'reason', error)}).\n"
            f"Download it yourself and pass it with {local}.") from None
    os.replace(partial, target)


def read_text(path: Path) -> str:
    """Read a UTF-8 text file, refusing files that cannot be training text.

    We check for the three mistakes that would otherwise show up much later as a strange vocabulary
    or a crash inside the batcher: an empty file, a binary file (it holds NUL bytes, which text
    never does) and bytes that are not UTF-8.
    """
    if not path.exists():
        raise DataError(f"No data file at {path}. Pass an existing text file with --data PATH "
                        f"or fix the environment variable {DATA_PATH_ENV}.")
    if not path.is_file():
        raise DataError(f"{path} is not a file. Pass a text file with --data PATH.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"The data file {path} is empty.")
    if b"\x00" in raw:
        raise DataError(f"The data file {path} looks binary (it contains NUL bytes); "
                        f"expected UTF-8 text.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"The data file {path} is not UTF-8 text: byte {error.start} "
                        f"({raw[error.start:error.start + 1]!r}) cannot be decoded.") from None


def load_text(path: Optional[str] = None, url: str = TINY_SHAKESPEARE_URL,
              cache: Optional[Path] = None) -> str:
    """Find and read the training text.

    The order is: an explicit `path`, then `$TINY_SHAKESPEARE_PATH`, then the cached download in
    `cache` (by default `~/.cache/labml_nn`), downloading it from `url` the first time.
    A path that was asked for and does not exist is an error; we never fall back to a download
    behind the user's back, since they would then train on text they did not choose.
    """
    if not path:
        path = os.environ.get(DATA_PATH_ENV) or None
    if path:
        return read_text(Path(path).expanduser())
    cached = (cache or cache_dir()) / "tiny_shakespeare.txt"
    if not cached.exists():
        download(url, cached)
    return read_text(cached)


class Vocabulary:
    """The characters of the text, each given an index: `itos[i]` is the character for id `i`.

    The ids are the sorted characters, so that the same text always gives the same vocabulary. A
    `byte_level` vocabulary ([enwik8](corpora.html)) holds bytes, each as the character of that code
    point: text is turned into UTF-8 bytes before it is encoded, and decoded ids are read as UTF-8.
    """

    def __init__(self, chars: str, byte_level: bool = False):
        if len(set(chars)) != len(chars):
            raise ValueError("a vocabulary lists each character once")
        if byte_level and any(ord(c) > 255 for c in chars):
            raise ValueError("a byte-level vocabulary holds the characters of code points 0 to 255")
        self.itos: str = chars
        self.byte_level = byte_level
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.itos)

    def symbols(self, text: str) -> str:
        """The vocabulary's symbols that spell `text`: its characters, or for bytes its UTF-8 bytes."""
        return text.encode("utf-8").decode("latin-1") if self.byte_level else text

    def unknown(self, text: str) -> str:
        """The symbols of `text` that are not in the vocabulary (empty when it can be encoded)."""
        return "".join(sorted(set(self.symbols(text)) - set(self.stoi)))

    def encode(self, text: str) -> torch.Tensor:
        """Text to a `LongTensor` of ids, `[n]`."""
        unknown = self.unknown(text)
        if unknown:
            raise DataError(f"Characters not in the vocabulary: {unknown!r}")
        return torch.tensor([self.stoi[c] for c in self.symbols(text)], dtype=torch.long)

    def decode(self, ids) -> str:
        """Ids (any iterable of ints or a 1-D tensor) back to text."""
        text = "".join(self.itos[int(i)] for i in ids)
        return text.encode("latin-1").decode("utf-8", errors="replace") if self.byte_level else text

    def to_state(self) -> str:
        """What the checkpoint stores: the characters themselves (and, apart, `byte_level`)."""
        return self.itos

    @classmethod
    def from_state(cls, state: str, byte_level: bool = False) -> "Vocabulary":
        return cls(state, byte_level)


@dataclass
class TextData:
    """The text split into a training part, a validation part and (where the corpus has one) a test
    part, as token ids `[n]` each, and its vocabulary."""
    vocab: Vocabulary
    train: torch.Tensor
    valid: torch.Tensor
    test: Optional[torch.Tensor] = None


def prepare(text: str, valid_fraction: float = 0.1, vocab: Optional[Vocabulary] = None) -> TextData:
    """Encode the text and split off the last `valid_fraction` for validation.

    The vocabulary is built from the whole text unless one is given: a resumed run passes the one in
    its checkpoint, so that id $i$ keeps meaning the character the model learned it as.
    The split is a single cut, not a random sample of characters, so that the validation text is
    itself contiguous and the memory can be carried across it just as in training.
    """
    vocab = vocab or Vocabulary.from_text(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * (1 - valid_fraction))
    return TextData(vocab=vocab, train=ids[:cut], valid=ids[cut:])


class StreamBatcher:
    r"""Cuts token ids into contiguous streams and hands out consecutive windows of them.

    * `ids` is the whole text, `[N]`.
    * `batch_size` is the number of streams this process reads, $B$.
    * `rank`, `world_size`: with $W$ processes there are $BW$ streams and process $r$ reads
      streams $rB \dots (r+1)B - 1$, so no two processes ever read the same text.

    The batcher's whole state is `position`, the offset into every stream of the next window;
    a checkpoint stores it and resuming restores it.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, rank: int = 0, world_size: int = 1):
        total_streams = batch_size * world_size
        # Each stream holds $L + 1$ ids: inputs are the first $L$, targets the last $L$.
        self.stream_len = (len(ids) - 1) // total_streams
        if self.stream_len < 2:
            raise DataError(f"The text ({len(ids)} characters) is too short for "
                            f"{total_streams} streams.")
        # `[B*W, L + 1]`, row $b$ starting at $bL$: a strided view of the ids, not a copy (the ids of a
        # memory-mapped corpus stay on disk until read). Consecutive rows overlap by one id (the last
        # target of row $b$ is the first input of row $b + 1$), which costs nothing.
        ids = ids.contiguous()
        all_streams = ids.as_strided((total_streams, self.stream_len + 1), (self.stream_len, 1))
        # `[B, L + 1]`: this process's block of streams.
        self.streams = all_streams[rank * batch_size:(rank + 1) * batch_size]
        self.position = 0

    def next(self, seq_len: int) -> Tuple[torch.Tensor, torch.Tensor, bool]:
        """The next window: inputs `[B, seq_len]`, targets `[B, seq_len]`, and whether the
        streams wrapped around to their start (the caller must then clear its memory)."""
        if seq_len > self.stream_len:
            raise DataError(f"seq_len {seq_len} is longer than each stream ({self.stream_len}); "
                            f"use a shorter seq_len or a smaller batch_size.")
        wrapped = False
        if self.position + seq_len > self.stream_len:
            self.position, wrapped = 0, True
        p = self.position
        x = self.streams[:, p:p + seq_len]
        # Targets are the inputs shifted one character ahead.
        y = self.streams[:, p + 1:p + seq_len + 1]
        self.position += seq_len
        return x, y, wrapped

    def windows(self, seq_len: int, tail: bool = False) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Every full window of the streams once, from the start: what validation reads. With `tail`,
        also the shorter window left at the end, so that every position of every stream is predicted once
        (what an evaluation of a whole split reads)."""
        for p in range(0, self.stream_len - seq_len + 1, seq_len):
            yield self.streams[:, p:p + seq_len], self.streams[:, p + 1:p + seq_len + 1]
        rest = self.stream_len % seq_len
        if tail and rest:
            p = self.stream_len - rest
            yield self.streams[:, p:self.stream_len], self.streams[:, p + 1:self.stream_len + 1]

    def num_windows(self, seq_len: int, tail: bool = False) -> int:
        return self.stream_len // seq_len + (1 if tail and self.stream_len % seq_len else 0)

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])

