r"""
---
title: Tokens in contiguous streams
summary: Tiny Shakespeare, vocabularies of characters or words, targets given explicitly where a task has them, and a batcher that cuts the tokens into contiguous streams so that a memory transformer's memory belongs to the text it is reading.
---

# Tokens in contiguous streams

Every experiment in this project trains by default a character-level language model on
[Tiny Shakespeare](https://github.com/karpathy/char-rnn), about 1.1 million characters of plays.
Characters keep the vocabulary tiny (65 symbols) so that a model small enough for a laptop CPU
learns something visible within minutes, and bits per character is a measure that any reader
can compare across models.

This page has four parts:

1. **Finding the text.** A file named on the command line (`--data PATH`), else the environment
   variable `TINY_SHAKESPEARE_PATH`, else a cached download. Every way this can go wrong ends in
   one `DataError` whose message says what to do; the entry points print it without a traceback.
2. **The vocabulary.** A list of tokens, id $i$ standing for the $i$-th: the sorted characters of the
   text, or the words of a task that an experiment brings. It is saved in every checkpoint and model
   file, because a model's output row $i$ means nothing without the token it stands for.
3. **Stream batching.** The part that matters for memory transformers, explained below.
4. **Targets.** What the model must predict at each position: the next token for a language model,
   or, for a task, only some positions' answers.

## Why contiguous streams

A memory transformer such as [Transformer-XL](../transformers/xl/index.html) reads a segment of
$n$ = `seq_len` tokens while attending to the hidden states of the segments it read before. That
memory only helps if those earlier segments are *the text that precedes the current one*.

The usual way to batch a language model, picking `batch_size` random crops of the text, breaks this
silently: row $b$ of batch $\tau+1$ is an unrelated place in the text, so the memory carried over from
batch $\tau$ describes some other scene. The model still trains, the loss still goes down, and the
memory is worth nothing; the comparison with a no-memory baseline then measures noise.

Instead we cut the $|X|$ input positions into $B$ = `batch_size` equal, contiguous streams, one per row,

$$\text{stream}_b = X[b S : (b+1) S], \qquad S = \lfloor |X| / B \rfloor,$$

and batch $\tau$ is the window $[\tau n, (\tau+1) n)$ of every stream. Row $b$ of batch
$\tau+1$ starts exactly where row $b$ of batch $\tau$ ended, so the memory in row $b$ is always the recent
past of the same stream. With $G$ processes there are $BG$ streams and each process takes its own block.
When a stream runs out the batcher starts again at the beginning and says so, and the training loop
clears the memory, because the end of the text does not precede its beginning.

## Targets

Each input position has a target, cut into the same streams: $Y[b S : (b+1) S]$. For a language model
the target of a position is the next token, so the inputs are the ids without the last and the
targets the ids without the first ($X = \text{ids}[:-1]$, $Y = \text{ids}[1:]$), which is what the
batcher does when it is given no targets. A task can give its own, aligned with its ids, and mark the
positions where the model is not asked anything with `IGNORE` ($-100$): the training loss, the bits
per token and the accuracy of the [training loop](trainer.html) count only the other positions. In a
program such as `x = 7 ; print x ;`, only the printed value is an answer: the target of the `;` that
ends the `print` is `7`, and every other position's target is `IGNORE`.

An experiment brings its own data through the loop's `data` hook (see [the training loop](trainer.html)),
which returns a `TokenData`: the vocabulary and, for each split, the ids and (optionally) the targets.
"""

import contextlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch

try:
    import fcntl  # the lock of the cache; not on every operating system
except ImportError:
    fcntl = None

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


@contextlib.contextmanager
def cache_lock(target: Path) -> Iterator[None]:
    r"""
    An exclusive lock on `target.lock` for the block. Several processes that need the same file of the
    cache at once (the processes of one `torchrun`, or two runs) then write it one at a time: the first
    downloads or extracts it, the others wait and find it there. (An `flock`, released by the operating
    system if the process dies; without `fcntl`, no lock, and each process writes its own temporary file.)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(target.with_name(target.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


@contextlib.contextmanager
def written_atomically(target: Path) -> Iterator[Path]:
    r"""
    A temporary file of this process's own beside `target`, for the block to write; renamed onto `target`
    when the block ends without an error, deleted when it raises. No other process ever writes the same
    temporary file, and a file cut short never gets the final name.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        os.chmod(partial, 0o644)  # (mkstemp makes it 0600)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def download(url: str, target: Path, what: str = "Tiny Shakespeare",
             local: str = f"--data PATH, or set the environment variable {DATA_PATH_ENV}=PATH") -> None:
    """Download `url` to `target`, atomically, unless another process has just done it.

    The file is written under a temporary name of this process's own and renamed into place, so an
    interrupted download never leaves a truncated file that a later run would take for the whole text,
    and one whose length is not the `Content-Length` the server announced is refused. The processes that
    start at once take turns (`cache_lock`): the first downloads, the others find the file. Offline, one
    `DataError` names the URL and the ways around it (`local`).
    """
    with cache_lock(target):
        if target.is_file():
            return
        try:
            with written_atomically(target) as partial:
                with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
                    expected = response.headers.get("Content-Length")
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                    if expected is not None and out.tell() != int(expected):
                        raise OSError(f"the download stopped after {out.tell():,} of {int(expected):,} bytes")
        except (urllib.error.URLError, OSError, ValueError) as error:
            # One message that names the URL, the reason and both ways around it.
            raise DataError(
                f"Could not download {what} from {url} ({getattr(error, 'reason', error)}).\n"
                f"Download it yourself and pass it with {local}.") from None


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
    # The usual way to get here with a binary file: a byte corpus's archive without its --dataset.
    corpus = "; a byte corpus is read with --dataset enwik8 or --dataset text8"
    if zipfile.is_zipfile(path):
        raise DataError(f"The data file {path} is a zip archive, not text{corpus}.")
    if b"\x00" in raw:
        raise DataError(f"The data file {path} looks binary (it contains NUL bytes); expected UTF-8 text{corpus}.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"The data file {path} is not UTF-8 text: byte {error.start} "
                        f"({raw[error.start:error.start + 1]!r}) cannot be decoded{corpus}.") from None


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
    r"""
    The tokens, each given an index: `itos[i]` is the token of id `i`; decoding joins tokens with the
    `separator`.

    * **Characters** (`separator=""`, the default): each token is one character and text is split into
      its characters. Built from a text, the tokens are its sorted characters, so that the same text
      always gives the same vocabulary. A `byte_level` vocabulary ([enwik8](corpora.html)) holds bytes,
      each as the character of that code point: text is turned into UTF-8 bytes before it is encoded, and
      decoded ids are read as UTF-8.
    * **Words** (`separator=" "`, or any other non-empty string): a token is any non-empty string without
      the separator, text is split at the separator, and decoding puts the separator back between
      tokens. A task whose inputs are words (`x = 7 ; print x ;`) gives its own list of tokens.
    """

    def __init__(self, tokens: Union[str, Sequence[str]], separator: str = "", byte_level: bool = False):
        # A string of characters is the list of its characters.
        tokens = list(tokens)
        if not all(isinstance(t, str) and t for t in tokens):
            raise ValueError("a vocabulary's tokens are non-empty strings")
        if len(set(tokens)) != len(tokens):
            repeated = sorted({t for t in tokens if tokens.count(t) > 1})[:5]
            raise ValueError(f"a vocabulary lists each token once; repeated: {repeated}")
        if not isinstance(separator, str):
            raise ValueError(f"a vocabulary's separator is a string, got {separator!r}")
        if separator and any(separator in t for t in tokens):
            raise ValueError(f"the tokens of a vocabulary with the separator {separator!r} cannot contain it")
        if not separator and any(len(t) != 1 for t in tokens):
            raise ValueError("without a separator, every token of a vocabulary is one character")
        if byte_level and (separator or any(ord(t) > 255 for t in tokens)):
            raise ValueError("a byte-level vocabulary holds the characters of code points 0 to 255, without a "
                             "separator")
        self.itos: List[str] = tokens
        self.separator = separator
        self.byte_level = byte_level
        self.stoi = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        """The sorted characters of `text`."""
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def unit(self) -> str:
        """What one token is, for messages: `character` or `token`."""
        return "token" if self.separator else "character"

    def split(self, text: str) -> List[str]:
        """The tokens that spell `text`: its characters (for bytes, its UTF-8 bytes), or its words."""
        if self.separator:
            return [t for t in text.split(self.separator) if t]
        return list(text.encode("utf-8").decode("latin-1") if self.byte_level else text)

    def unknown(self, text: str) -> str:
        """The tokens of `text` that are not in the vocabulary, sorted and joined by the separator (empty when
        `text` can be encoded)."""
        return self.separator.join(sorted(set(self.split(text)) - set(self.stoi)))

    def encode(self, text: str) -> torch.Tensor:
        """Text to a `LongTensor` of ids, `[n]`."""
        unknown = self.unknown(text)
        if unknown:
            raise DataError(f"{self.unit.capitalize()}s not in the vocabulary: {unknown!r}")
        return torch.tensor([self.stoi[t] for t in self.split(text)], dtype=torch.long)

    def decode(self, ids) -> str:
        """Ids (any iterable of ints or a 1-D tensor) back to text."""
        text = self.separator.join(self.itos[int(i)] for i in ids)
        return text.encode("latin-1").decode("utf-8", errors="replace") if self.byte_level else text

    def to_config(self) -> Dict[str, Any]:
        r"""
        The fields of a model file's `config.json` that hold the vocabulary, which are the vocabulary
        arguments of [`save_pretrained`](../transformers/hub.html#Pretrained.save_pretrained): `vocab`
        (a string of characters, or a list of words), `vocab_separator` and `vocab_bytes`.
        """
        tokens: Union[str, List[str]] = list(self.itos) if self.separator else "".join(self.itos)
        return {"vocab": tokens, "vocab_separator": self.separator, "vocab_bytes": self.byte_level}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Vocabulary":
        """The vocabulary of a model file's `config.json` (files of character models that hold only `vocab`
        and `vocab_bytes` read the same). A `ValueError` says what is wrong with it."""
        return cls(config["vocab"], config.get("vocab_separator", ""), config.get("vocab_bytes", False))


# The target of a position that has none: the training loss and the validation metrics skip it. It is
# PyTorch's default `ignore_index` of `cross_entropy`.
IGNORE = -100


class StreamBatcher:
    r"""Cuts token ids into contiguous streams and hands out consecutive windows of them.

    * `ids` is the whole text, `[N]`.
    * `targets`, `[N]`, is what the model must predict at each position, `IGNORE` where it predicts
      nothing. By default (`None`) every position's target is the next id: the inputs are then
      `ids[:-1]` and the targets `ids[1:]`, which is language modelling.
    * `batch_size` is the number of streams this process reads, $B$.
    * `rank`, `world_size`: with $W$ processes there are $BW$ streams and process $r$ reads
      streams $rB \dots (r+1)B - 1$, so no two processes ever read the same text.

    Each stream holds $S = \lfloor N' / BW \rfloor$ positions, where $N'$ is the number of inputs. The
    batcher's whole state is `position`, the offset into every stream of the next window; a checkpoint
    stores it and resuming restores it.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, rank: int = 0, world_size: int = 1,
                 targets: Optional[torch.Tensor] = None):
        if ids.dim() != 1:
            raise DataError(f"token ids are one sequence, [n]; got the shape {list(ids.shape)}")
        n = len(ids)
        if targets is None:
            # Language modelling: the target of each position is the next id. Both are views of `ids`.
            ids, targets = ids[:-1], ids[1:]
        elif targets.shape != ids.shape:
            raise DataError(f"the targets, {list(targets.shape)}, must be aligned with the ids, {list(ids.shape)}")
        elif targets.dtype.is_floating_point or not targets.dtype.is_signed:
            raise DataError(f"targets are a signed integer tensor (IGNORE is {IGNORE}), got {targets.dtype}")
        total_streams = batch_size * world_size
        self.stream_len = len(ids) // total_streams
        if self.stream_len < 2:
            raise DataError(f"The text ({n} tokens) is too short for {total_streams} streams.")
        # `[B*W, S]`, row $b$ holding positions $bS \dots (b+1)S - 1$: views of the ids, not copies (the ids
        # of a memory-mapped corpus stay on disk until read).
        used = total_streams * self.stream_len
        inputs = ids.contiguous()[:used].view(total_streams, self.stream_len)
        targets = targets.contiguous()[:used].view(total_streams, self.stream_len)
        # `[B, S]` each: this process's block of streams.
        self.inputs = inputs[rank * batch_size:(rank + 1) * batch_size]
        self.targets = targets[rank * batch_size:(rank + 1) * batch_size]
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
        self.position += seq_len
        return self.inputs[:, p:p + seq_len], self.targets[:, p:p + seq_len], wrapped

    def windows(self, seq_len: int, tail: bool = False) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Every full window of the streams once, from the start: what validation reads. With `tail`,
        also the shorter window left at the end, so that every position of every stream is predicted once
        (what an evaluation of a whole split reads)."""
        for start in range(0, self.stream_len - seq_len + 1, seq_len):
            yield self.inputs[:, start:start + seq_len], self.targets[:, start:start + seq_len]
        rest = self.stream_len % seq_len
        if tail and rest:
            start = self.stream_len - rest
            yield self.inputs[:, start:], self.targets[:, start:]

    def num_windows(self, seq_len: int, tail: bool = False) -> int:
        return self.stream_len // seq_len + (1 if tail and self.stream_len % seq_len else 0)

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])


@dataclass
class TokenData:
    r"""
    A dataset as the training loop reads it: the vocabulary, and the token ids `[n]` of a training part, a
    validation part and (where there is one) a test part. Each part may have targets aligned with its
    ids, `[n]`, with `IGNORE` where a position has no target; without them (`None`), the target of every
    position is the next token. The parts are cut into streams by `streams`.
    """
    vocab: Vocabulary
    train: torch.Tensor
    valid: torch.Tensor
    test: Optional[torch.Tensor] = None
    train_targets: Optional[torch.Tensor] = None
    valid_targets: Optional[torch.Tensor] = None
    test_targets: Optional[torch.Tensor] = None

    def __post_init__(self):
        for part in ("train", "valid", "test"):
            ids, targets = getattr(self, part), getattr(self, f"{part}_targets")
            if targets is None:
                continue
            if ids is None or targets.shape != ids.shape:
                raise DataError(f"{part}_targets must be aligned with {part}: got the shapes "
                                f"{list(targets.shape)} and {None if ids is None else list(ids.shape)}")
            counted = targets[targets != IGNORE]
            if len(counted) and (counted.min() < 0 or counted.max() >= len(self.vocab)):
                raise DataError(f"{part}_targets hold ids outside the vocabulary of {len(self.vocab)} tokens "
                                f"(and {IGNORE} for no target)")

    def streams(self, part: str, batch_size: int, rank: int = 0, world_size: int = 1) -> StreamBatcher:
        """The part called `part` (`train`, `valid` or `test`) cut into streams, with its targets."""
        return StreamBatcher(getattr(self, part), batch_size, rank, world_size, getattr(self, f"{part}_targets"))


def prepare(text: str, valid_fraction: float = 0.1, vocab: Optional[Vocabulary] = None) -> TokenData:
    """Encode the text and split off the last `valid_fraction` for validation.

    The vocabulary is built from the whole text unless one is given: a resumed run passes the one in
    its checkpoint, so that id $i$ keeps meaning the character the model learned it as.
    The split is a single cut, not a random sample of characters, so that the validation text is
    itself contiguous and the memory can be carried across it just as in training.
    """
    vocab = vocab or Vocabulary.from_text(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * (1 - valid_fraction))
    return TokenData(vocab=vocab, train=ids[:cut], valid=ids[cut:])
