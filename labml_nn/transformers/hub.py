r"""
---
title: Model files anyone can load safely
summary: save_pretrained / from_pretrained for the three models: the constructor arguments as JSON and the weights as safetensors, so loading a model file can never run code.
---

# Model files anyone can load safely

A trained model is shared as a directory of two files:

* `config.json`: the arguments of the model's constructor, the model's class name, the version of
  this package that wrote it, and (for the models the experiments train) the vocabulary;
* `model.safetensors`: the weights, in the [safetensors](https://github.com/huggingface/safetensors)
  format: a JSON header that names each tensor's dtype, shape and byte range, then the raw bytes.

```python
from labml_nn.transformers.xl import TransformerXL

model.save_pretrained("my-xl")                  # config.json + model.safetensors (+ a model card)
model = TransformerXL.from_pretrained("my-xl")  # the same weights, in evaluation mode
model = TransformerXL.from_pretrained("user/my-xl")   # from the Hugging Face Hub, with a network
model.push_to_hub("user/my-xl")
```

The interface is that of the Hugging Face Hub client's `PyTorchModelHubMixin` (`huggingface_hub`),
which every model here inherits through [`Pretrained`](#Pretrained): it records the constructor's
arguments when the model is made and writes them to `config.json`, and it fetches a directory from
the Hub when `from_pretrained` is given a repository name instead of a local path. What this page
adds is the class check, strict loading (a missing or unexpected weight is an error, not a warning),
the checks below, and the extra fields of `config.json`. Offline, `from_pretrained("user/repo")` takes the
repository from the client's cache or says at once that the Hub cannot be reached, instead of the
client's half a minute of retries.

## Loading a file must not run it

A model file comes from someone else, so reading it must not be running their program. Two ways a
format can fail this:

* **A pickle.** `torch.save` writes a pickle, and unpickling runs whatever the file says: an object's
  `__reduce__` may name any function, `os.system` included, with any argument, and
  `torch.load(..., weights_only=False)` calls it.
* **Plain data trusted to name code.** A file that says `"model_class": "os:system"` and
  `"model_kwargs": {"command": ...}` runs a command the moment a loader imports the class it names and
  calls it with the file's arguments, though every byte of the file is plain data.

So:

1. the weights are tensors in safetensors, which has no code path at all, only bytes and shapes;
2. the configuration is JSON, read as data;
3. the class comes from a fixed table of this package's models, `MODELS`, looked up by
   name; a name that is not in it is an error, never an import.

## The vocabulary

A model's token ids mean nothing without the tokens they stand for, so a model trained by the
[experiments](../experiments/index.html) carries its vocabulary in `config.json`:

| field | what it holds |
|---|---|
| `vocab` | the tokens, id $i$ the $i$-th: a string of characters (`"\n !&',-.:;?ABC..."`) or a list of words (`["x", "=", ";", "print", ...]`) |
| `vocab_separator` | what decoding puts between tokens: absent (`""`) for characters, `" "` for words |
| `vocab_bytes` | `true` when each character stands for one byte (enwik8, text8): text is UTF-8 encoded first |

## A file is checked before it is trusted with memory

`config.json` says how large a model is; a careless or hostile one says `"dim": 200000` (640 GB of
weights) or `"depth": 1000000` (minutes of building, then out of memory) in 350 bytes. Nothing is
allocated on its word alone. Before the model is built:

1. `config.json` must be a regular file of at most 64 MB holding a JSON object; every constructor
   argument in it must have its annotated type (an `int` size is a non-negative integer, a `float` a
   finite number), and the vocabulary must be one distinct token per id, `num_tokens` of them;
2. `model.safetensors`'s header (each tensor's name, dtype and shape, read without reading the tensors)
   must describe a regular file;
3. the model is built on PyTorch's `meta` device, which records shapes and allocates nothing, while a
   hook counts every parameter registered: a model that grows past twice the tensors and numbers the
   file holds is stopped there, so even `"depth": 1000000` costs a few layers;
4. the meta model's weights must be the file's: the same names and the same shapes.

Only then is the model built for real and loaded. Each failure is a `ModelFileError` that names the
file and the field (`... check depth is 1000000`). Weights of another floating-point dtype are
cast to the model's with a warning that says so; weights of a non-floating dtype are refused.

## Saving over a model directory

`save_pretrained` writes `model.safetensors`, the model card and `config.json` into a temporary
directory beside the target, then renames each into place, `config.json` last (the Hub client's own
`save_pretrained` deletes the old `config.json` before it writes the weights). A crash leaves the old
files, or the new ones, or, for the instant between the last two renames, the new weights beside the
old `config.json`, which the checks above refuse when their sizes differ; never a directory without a
`config.json`. Files and directories get the usual permissions of the user's umask
(0644 and 0755 for most): a model directory is meant to be shared.
"""

import contextlib
import importlib
import inspect
import json
import math
import os
import shutil
import socket
import tempfile
import typing
import urllib.parse
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

import safetensors
import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

import labml_nn

# The file names of a model directory, the ones the Hub client uses.
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"

# A `config.json` larger than this is not a configuration (a vocabulary of 50,000 words is under 1 MB).
MAX_CONFIG_BYTES = 64 << 20

# The models a model file may name: class name → the module that defines it. The names in a file are
# looked up here and nowhere else.
MODELS: Dict[str, str] = {
    "TransformerXL": "labml_nn.transformers.xl",
    "CompressiveTransformer": "labml_nn.transformers.compressive",
    "FeedbackTransformer": "labml_nn.transformers.feedback",
}


class ModelFileError(ValueError):
    """A model directory or checkpoint that cannot be used: the message says which file and why."""


def model_class(name: Any) -> Type["Pretrained"]:
    """The class called `name` in `MODELS`; anything else is a `ModelFileError`."""
    if not isinstance(name, str) or name not in MODELS:
        raise ModelFileError(f"unknown model class {name!r}: a model file may name one of {', '.join(MODELS)}")
    return getattr(importlib.import_module(MODELS[name]), name)


# ## Reading the two files

def regular_file(path: Path, what: str) -> Path:
    """`path`, which must be a regular file (not missing, not a directory, not a FIFO that would block a read)."""
    if not path.exists():
        raise ModelFileError(f"{path} is missing: a model directory holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a regular file: {what}")
    return path


def read_config(directory: Union[str, Path]) -> Dict[str, Any]:
    """`config.json` of a model directory, as a dictionary."""
    path = regular_file(Path(directory) / CONFIG_FILE, "expected the model's configuration as JSON")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{path} is {path.stat().st_size:,} bytes, more than a configuration's "
                             f"{MAX_CONFIG_BYTES:,}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ModelFileError(f"{path} is not readable JSON (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} is not readable JSON ({error})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def read_header(path: Union[str, Path]) -> Dict[str, Tuple[str, List[int]]]:
    r"""
    The tensors `model.safetensors` holds, name → (dtype, shape), read from its header alone: no tensor is
    read. safetensors checks that the header's byte ranges fit the file.
    """
    path = regular_file(Path(path), "expected the weights in the safetensors format")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            return {name: (f.get_slice(name).get_dtype(), list(f.get_slice(name).get_shape())) for name in f.keys()}
    except Exception as error:  # a truncated or foreign file: safetensors' own error, in one line
        first = str(error).splitlines()[0] if str(error) else ""
        raise ModelFileError(f"{path} is not a readable safetensors file ({type(error).__name__}: {first})") from None


# safetensors' dtype names for the floating-point dtypes a model's weights may be stored in.
FLOAT_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


# ## Checking config.json against the constructor

def constructor_arguments(cls: type, config: Dict[str, Any]) -> Dict[str, Any]:
    """The entries of `config` that are parameters of `cls`'s constructor."""
    parameters = cls._hub_mixin_init_parameters
    return {key: value for key, value in config.items() if key in parameters and key != "self"}


def _allowed_types(annotation: Any) -> Optional[Tuple[type, ...]]:
    """The plain types an annotation allows (`Optional[int]`: int and None), or `None` when it is not one
    of the plain JSON types."""
    if annotation in (int, float, bool, str):
        return (annotation,)
    if typing.get_origin(annotation) is Union:
        parts = typing.get_args(annotation)
        if all(a in (int, float, bool, str, type(None)) for a in parts):
            return parts
    return None


def check_arguments(cls: type, arguments: Dict[str, Any], path: Path) -> None:
    r"""
    Each constructor argument of `cls` in `arguments` (as read from `path`) has its annotated type: an
    integer is a non-negative `int` (not `true`), a float a finite number; and every required argument is
    there. A `ModelFileError` names the field.
    """
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:
        hints = {}
    parameters = {name: p for name, p in inspect.signature(cls.__init__).parameters.items() if name != "self"}
    missing = [name for name, p in parameters.items() if p.default is inspect.Parameter.empty
               and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in arguments]
    if missing:
        raise ModelFileError(f"{path} lacks the fields {', '.join(missing)} that a {cls.__name__} needs")
    for name, value in arguments.items():
        allowed = _allowed_types(hints.get(name))
        if allowed is None:
            continue
        if value is None and type(None) in allowed:
            continue
        if int in allowed and isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ModelFileError(f"{path}: {name} is {value}, expected a non-negative integer")
            continue
        if float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ModelFileError(f"{path}: {name} is {value}, expected a finite number")
            continue
        if (bool in allowed and isinstance(value, bool)) or (str in allowed and isinstance(value, str)):
            continue
        expected = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise ModelFileError(f"{path}: {name} is {json.dumps(value)[:50]}, expected {expected}")


def check_vocabulary(config: Dict[str, Any], path: Path) -> None:
    """The vocabulary fields of `config` (if any): one distinct token per id, as many as `num_tokens`."""
    if "vocab" not in config:
        return
    try:
        vocabulary_fields(config["vocab"], config.get("vocab_separator", ""), config.get("vocab_bytes", False),
                          config.get("num_tokens"))
    except ValueError as error:
        raise ModelFileError(f"{path}: vocab: {error}") from None


# ## Building within the file's sizes

class _TooLarge(Exception):
    """Raised by the registration hook when the model being built outgrows its budget."""

    def __init__(self, shape: List[int]):
        self.shape = shape


@contextlib.contextmanager
def _at_most(tensors: int, numbers: int) -> Iterator[None]:
    """Inside the block, registering more than `tensors` distinct parameters or buffers, or more than
    `numbers` numbers in all, raises `_TooLarge` from inside the constructor that registers them."""
    seen, count = set(), [0, 0]

    def on_register(module: nn.Module, name: str, tensor: Optional[torch.Tensor]) -> None:
        # A parameter shared between modules (tied weights) is registered once per module: count it once.
        if tensor is None or id(tensor) in seen:
            return
        seen.add(id(tensor))
        count[0] += 1
        count[1] += tensor.numel()
        if count[0] > tensors or count[1] > numbers:
            raise _TooLarge(list(tensor.shape))

    hooks = [nn.modules.module.register_module_parameter_registration_hook(on_register),
             nn.modules.module.register_module_buffer_registration_hook(on_register)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _suspects(arguments: Dict[str, Any], ours: List[int], theirs: Optional[List[int]] = None,
              known: Sequence[int] = ()) -> str:
    r"""
    The integer fields of `config.json` that explain a mismatch, as `name is value`: with the file's shape
    `theirs` of a tensor the model gives the shape `ours`, those whose value is a dimension of `ours` where the
    two differ; without it, those whose value is in `ours` but nowhere among the file's numbers `known`, or else
    those larger than all of them.
    """
    ints = {k: v for k, v in arguments.items() if isinstance(v, int) and not isinstance(v, bool)}
    if theirs is not None:
        differ = {a for a, b in zip(ours, theirs) if a != b} if len(ours) == len(theirs) else set(ours)
        names = [k for k, v in ints.items() if v in differ]
    else:
        names = ([k for k, v in ints.items() if v in ours and v not in known]
                 or [k for k, v in ints.items() if v not in known and v > max(known, default=0)])
    return ", ".join(f"{k} is {ints[k]}" for k in names)


def _layer_counts(names: Sequence[str]) -> Dict[str, int]:
    """For each list of modules (`layers.0.…`, `layers.1.…`), how many there are: prefix → count."""
    counts: Dict[str, int] = {}
    for name in names:
        parts = name.split(".")
        for i, part in enumerate(parts[:-1]):
            if part.isdigit():
                prefix = ".".join(parts[:i])
                counts[prefix] = max(counts.get(prefix, 0), int(part) + 1)
    return counts


def _meta_model(cls: type, arguments: Dict[str, Any], header: Dict[str, Tuple[str, List[int]]],
                config_path: Path, weights_path: Path) -> nn.Module:
    """`cls(**arguments)` on the meta device, stopped once it outgrows twice what `header` describes."""
    tensors = len(header)
    numbers = sum(math.prod(shape) for _, shape in header.values())
    known = sorted({d for _, shape in header.values() for d in shape} | {tensors}
                   | set(_layer_counts(list(header)).values()))
    try:
        with torch.device("meta"), _at_most(2 * tensors + 16, 2 * numbers + (1 << 16)):
            return cls(**arguments)
    except _TooLarge as too_large:
        fields = _suspects(arguments, too_large.shape, known=known)
        raise ModelFileError(
            f"{config_path} describes a {cls.__name__} larger than the weights in {weights_path} ({tensors} tensors, "
            f"{numbers:,} numbers): weights are missing from the file"
            + (f"; check {fields}" if fields else "")) from None
    except Exception as error:  # the constructor's own checks of its arguments (a ValueError), or torch's
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFileError(f"{config_path} does not describe a valid {cls.__name__}: {first}") from None


def check_weights(model: nn.Module, header: Dict[str, Tuple[str, List[int]]], arguments: Dict[str, Any],
                  config_path: Path, weights_path: Path) -> None:
    r"""
    The weights `model` (built on the meta device) expects are those `header` describes: the same names and
    shapes, in floating-point dtypes. A tensor the model shares between two names needs to be in the file
    under one of them (safetensors stores it once).
    """
    expected = model.state_dict(keep_vars=True)
    names_of: Dict[int, List[str]] = {}
    for name, tensor in expected.items():
        names_of.setdefault(id(tensor), []).append(name)
    missing = [name for name, tensor in expected.items() if not any(n in header for n in names_of[id(tensor)])]
    unexpected = [name for name in header if name not in expected]
    if missing or unexpected:
        ours, theirs = _layer_counts(list(expected)), _layer_counts(list(header))
        why = [f"{p}: {ours[p]} in the model, {theirs.get(p, 0)} in the file"
               for p in ours if ours[p] != theirs.get(p, 0)]
        fields = ", ".join(f for p in ours if (f := _suspects(arguments, [ours[p]], [theirs.get(p, 0)])))
        raise ModelFileError(f"{weights_path} does not fit a {type(model).__name__} built from its config.json: "
                             f"missing {sorted(missing)[:8]}, unexpected {sorted(unexpected)[:8]}"
                             + (f" ({'; '.join(why)})" if why else "") + (f"; check {fields}" if fields else ""))
    cast = set()
    for name, (dtype, shape) in header.items():
        tensor = expected[name]
        if shape != list(tensor.shape):
            fields = _suspects(arguments, list(tensor.shape), shape)
            raise ModelFileError(f"{weights_path} holds {name} of shape {shape}, but {config_path} gives it "
                                 f"{list(tensor.shape)}" + (f": check {fields}" if fields else ""))
        if dtype not in FLOAT_DTYPES:
            raise ModelFileError(f"{weights_path} holds {name} as {dtype}; a weight is a floating-point tensor")
        if FLOAT_DTYPES[dtype] != tensor.dtype:
            cast.add((dtype, str(tensor.dtype).removeprefix("torch.")))
    if cast:
        casts = ", ".join(f"{a} are cast to {b}" for a, b in sorted(cast))
        warnings.warn(f"{weights_path}: weights stored as {casts}", stacklevel=3)


def build_checked(cls: type, arguments: Dict[str, Any], directory: Path, config: Dict[str, Any],
                  device: Any = "cpu") -> "Pretrained":
    r"""
    `cls(**arguments)` with the weights of `directory`, checked first (see the top of the page): the
    arguments' types and the vocabulary of `config` (its `config.json`), the header of `model.safetensors`,
    and the model built on the meta device against it. Returns the model in evaluation mode.
    """
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    check_arguments(cls, arguments, config_path)
    check_vocabulary(dict(config, num_tokens=arguments.get("num_tokens")), config_path)
    header = read_header(weights_path)
    check_weights(_meta_model(cls, arguments, header, config_path, weights_path), header, arguments, config_path,
                  weights_path)
    model = cls(**arguments)
    load_weights(model, weights_path, device)
    return model.to(device).eval()


def load_weights(model: nn.Module, path: Union[str, Path], device: Any = "cpu") -> None:
    """Load `model.safetensors` into `model`, strictly: every weight present, none extra."""
    path = regular_file(Path(path), "expected the weights in the safetensors format")
    try:
        missing, unexpected = safetensors.torch.load_model(model, str(path), strict=False, device=str(device))
    except Exception as error:  # a truncated or foreign file: safetensors' own error, in one line
        raise ModelFileError(f"{path} is not a readable safetensors file ({type(error).__name__}: {error})") from None
    if missing or unexpected:
        raise ModelFileError(f"{path} does not fit a {type(model).__name__} built from its config.json: "
                             f"missing {sorted(missing)}, unexpected {sorted(unexpected)}")


def vocabulary_fields(vocab: Union[str, Sequence[str]], separator: str = "", byte_level: bool = False,
                      num_tokens: Optional[int] = None) -> Dict[str, Any]:
    """The vocabulary's fields of `config.json`, checked: one distinct, non-empty string per token id."""
    if isinstance(vocab, str):
        tokens = list(vocab)
    elif isinstance(vocab, (list, tuple)) and all(isinstance(t, str) and t for t in vocab):
        tokens = list(vocab)
    else:
        raise ValueError("a vocabulary is a string of characters or a list of non-empty strings")
    if len(set(tokens)) != len(tokens):
        repeated = sorted({t for t in tokens if tokens.count(t) > 1})[:5] if len(tokens) < 100_000 else []
        raise ValueError(f"a vocabulary lists each token once; repeated: {repeated}")
    if num_tokens is not None and len(tokens) != num_tokens:
        raise ValueError(f"the vocabulary has {len(tokens)} tokens, the model {num_tokens}")
    if not isinstance(separator, str) or (not separator and not all(len(t) == 1 for t in tokens)):
        raise ValueError("a vocabulary of tokens longer than one character needs a separator (a string)")
    if not isinstance(byte_level, bool) or (byte_level and (separator or any(ord(t) > 255 for t in tokens))):
        raise ValueError("vocab_bytes is true for the characters of code points 0 to 255, without a separator")
    fields: Dict[str, Any] = {"vocab": vocab if isinstance(vocab, str) else tokens}
    if separator:
        fields["vocab_separator"] = separator
    if byte_level:
        fields["vocab_bytes"] = True
    return fields


# ## Saving

def _umask() -> int:
    """The process's file-creation mask (reading it means setting it: set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shareable(path: Path) -> None:
    """Give `path` (and, for a directory, what it holds) the permissions of a file the user creates: a temporary
    directory is made 0700 and safetensors writes 0600, which would keep a shared model from everyone else."""
    mask = _umask()
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)


def _is_repo_id(name: str) -> bool:
    """`user/repo` or `repo`: a name on the Hub, not a path."""
    parts = name.split("/")
    return (1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "~"))
            and all(c.isalnum() or c in "-_." for part in parts for c in part))


def _hub_reachable(timeout: float = 3.0) -> Optional[str]:
    """`None` when a connection to the Hub's endpoint opens within `timeout` seconds, else why not."""
    from huggingface_hub import constants
    url = urllib.parse.urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return None
    except OSError as error:
        return f"the Hub ({constants.ENDPOINT}) cannot be reached: {error.strerror or error}"


class Pretrained(PyTorchModelHubMixin, library_name="labml_nn",
                 repo_url="https://github.com/labml-memory/labml_nn", license="mit"):
    r"""
    `save_pretrained(directory, vocab=None)` and `from_pretrained(directory_or_repo)` for a model of
    this package. The constructor's arguments are recorded by the mixin when the model is made.
    """

    def save_pretrained(self, save_directory: Union[str, Path], *, vocab: Optional[Union[str, Sequence[str]]] = None,
                        vocab_separator: str = "", vocab_bytes: bool = False, push_to_hub: bool = False,
                        repo_id: Optional[str] = None, **kwargs: Any) -> Optional[str]:
        r"""
        Write `config.json` and `model.safetensors` into `save_directory`. `vocab` holds the tokens whose
        $i$-th is token id $i$: a string of characters, or a list of tokens joined by `vocab_separator`
        when decoded (`vocab_bytes`: characters that stand for bytes); it is stored as given (see the table
        above), so that the directory alone is enough to [sample](../experiments/sample.html) from.
        """
        kwargs.pop("config", None)  # (what the mixin's `push_to_hub` passes: ours is made here)
        config = dict(self._hub_mixin_config or {})
        config.update(model_class=type(self).__name__, labml_nn_version=labml_nn.__version__)
        if vocab is not None:
            config.update(vocabulary_fields(vocab, vocab_separator, vocab_bytes, getattr(self, "num_tokens", None)))
        target = Path(save_directory)
        if target.exists() and not target.is_dir():
            raise ModelFileError(f"{target} is a file: save_pretrained writes a directory")
        target.mkdir(parents=True, exist_ok=True)
        # Everything is written beside the target first (the same file system, so that a rename is atomic).
        staging = Path(tempfile.mkdtemp(prefix=".save-", dir=target))
        try:
            super().save_pretrained(staging, config=config, model_card_kwargs=kwargs.pop("model_card_kwargs", None))
            shareable(staging)
            for name in (WEIGHTS_FILE, CARD_FILE, CONFIG_FILE):
                if name == CARD_FILE and (target / name).exists():
                    continue  # a model card someone edited is theirs
                os.replace(staging / name, target / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if push_to_hub:
            return self.push_to_hub(repo_id=repo_id or target.name, config=config, **kwargs)
        return None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, Path], *, force_download: bool = False,
                        token: Any = None, cache_dir: Any = None, local_files_only: bool = False,
                        revision: Optional[str] = None, **model_kwargs: Any) -> "Pretrained":
        r"""
        The model in a local directory, or in a repository of the Hugging Face Hub (`user/repo`, fetched
        into the Hub client's cache). Offline, a repository comes from the cache or is one `ModelFileError`
        at once, instead of the client's retries. Every problem with the files is a `ModelFileError`.
        """
        name = str(pretrained_model_name_or_path)
        if Path(name).is_dir():
            # The mixin reads config.json itself: it must be a JSON object first.
            read_config(name)
            return super().from_pretrained(name, **model_kwargs)
        if not _is_repo_id(name):
            raise ModelFileError(f"no model directory at {name}")
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
        offline = None if local_files_only else _hub_reachable()
        try:
            files = [hf_hub_download(repo_id=name, filename=file, revision=revision, cache_dir=cache_dir,
                                     force_download=force_download, token=token,
                                     local_files_only=local_files_only or offline is not None)
                     for file in (CONFIG_FILE, WEIGHTS_FILE)]
        except (HfHubHTTPError, EntryNotFoundError, LocalEntryNotFoundError, OSError) as error:
            why = f"{offline}, and it is not in the cache" if offline else f"the Hub could not give it ({error})"
            raise ModelFileError(f"{name} is not a local directory; {why}") from None
        # Both files of one revision lie in one snapshot directory of the cache.
        return cls.from_pretrained(Path(files[0]).parent, **model_kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: Optional[str], cache_dir: Any, force_download: bool,
                         local_files_only: bool, token: Any, map_location: str = "cpu",
                         config: Optional[dict] = None, **model_kwargs: Any) -> "Pretrained":
        # `from_pretrained` has read `config.json` of the local directory `model_id` and filled `model_kwargs`
        # from it; here the file must also say it holds this class, and the weights must fit.
        name = (config or {}).get("model_class")
        if name is not None and name != cls.__name__:
            raise ModelFileError(f"{model_id} holds a {name}, not a {cls.__name__}: "
                                 f"use {name}.from_pretrained, or labml_nn.transformers.hub.load_pretrained")
        return build_checked(cls, model_kwargs, Path(model_id), config or {}, map_location)


def load_pretrained(directory: Union[str, Path], device: Any = "cpu") -> "Pretrained":
    r"""
    Any model of this package from a local model directory: the class is the one `config.json` names,
    looked up in `MODELS`. Returns the model in evaluation mode.
    """
    directory = Path(directory)
    config = read_config(directory)
    cls = model_class(config.get("model_class"))
    return build_checked(cls, constructor_arguments(cls, config), directory, config, device)
