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
adds is the class check, strict loading (a missing or unexpected weight is an error, not a warning)
and the extra fields of `config.json`.

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
"""

import importlib
import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Type, Union

import safetensors.torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

import labml_nn

# The file names of a model directory, the ones the Hub client uses.
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

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


def read_config(directory: Union[str, Path]) -> Dict[str, Any]:
    """`config.json` of a model directory, as a dictionary."""
    path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path} is missing: a model directory holds {CONFIG_FILE} and {WEIGHTS_FILE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} is not readable JSON ({error})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def constructor_arguments(cls: type, config: Dict[str, Any]) -> Dict[str, Any]:
    """The entries of `config` that are parameters of `cls`'s constructor."""
    parameters = cls._hub_mixin_init_parameters
    return {key: value for key, value in config.items() if key in parameters and key != "self"}


def load_weights(model: nn.Module, path: Union[str, Path], device: Any = "cpu") -> None:
    """Load `model.safetensors` into `model`, strictly: every weight present, none extra."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} is missing")
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
        raise ValueError("a vocabulary lists each token once")
    if num_tokens is not None and len(tokens) != num_tokens:
        raise ValueError(f"the vocabulary has {len(tokens)} tokens, the model {num_tokens}")
    if not isinstance(separator, str) or (not separator and not all(len(t) == 1 for t in tokens)):
        raise ValueError("a vocabulary of tokens longer than one character needs a separator (a string)")
    fields: Dict[str, Any] = {"vocab": vocab if isinstance(vocab, str) else tokens}
    if separator:
        fields["vocab_separator"] = separator
    if byte_level:
        fields["vocab_bytes"] = True
    return fields


class Pretrained(PyTorchModelHubMixin, library_name="labml_nn",
                 repo_url="https://github.com/labml-memory/labml_nn", license="mit"):
    r"""
    `save_pretrained(directory, vocab=None)` and `from_pretrained(directory_or_repo)` for a model of
    this package. The constructor's arguments are recorded by the mixin when the model is made.
    """

    def save_pretrained(self, save_directory: Union[str, Path], *, vocab: Optional[Union[str, Sequence[str]]] = None,
                        vocab_separator: str = "", vocab_bytes: bool = False, **kwargs: Any) -> Optional[str]:
        r"""
        Write `config.json` and `model.safetensors` into `save_directory`. `vocab` holds the tokens whose
        $i$-th is token id $i$: a string of characters, or a list of tokens joined by `vocab_separator`
        when decoded (`vocab_bytes`: characters that stand for bytes); it is stored as given (see the table
        above), so that the directory alone is enough to [sample](../experiments/sample.html) from.
        """
        config = dict(self._hub_mixin_config or {})
        config.update(model_class=type(self).__name__, labml_nn_version=labml_nn.__version__)
        if vocab is not None:
            config.update(vocabulary_fields(vocab, vocab_separator, vocab_bytes, getattr(self, "num_tokens", None)))
        return super().save_pretrained(save_directory, config=config, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: Optional[str], cache_dir: Any, force_download: bool,
                         local_files_only: bool, token: Any, map_location: str = "cpu",
                         config: Optional[dict] = None, **model_kwargs: Any) -> "Pretrained":
        # `from_pretrained` has read `config.json` (locally or from the Hub) and filled `model_kwargs`
        # from it; here the file must also say it holds this class.
        name = (config or {}).get("model_class")
        if name is not None and name != cls.__name__:
            raise ModelFileError(f"{model_id} holds a {name}, not a {cls.__name__}: "
                                 f"use {name}.from_pretrained, or labml_nn.transformers.hub.load_pretrained")
        model = cls(**model_kwargs)
        if Path(model_id).is_dir():
            weights = Path(model_id) / WEIGHTS_FILE
        else:
            from huggingface_hub import hf_hub_download
            weights = hf_hub_download(repo_id=model_id, filename=WEIGHTS_FILE, revision=revision, cache_dir=cache_dir,
                                      force_download=force_download, token=token, local_files_only=local_files_only)
        load_weights(model, weights, map_location)
        return model.eval()


def load_pretrained(directory: Union[str, Path], device: Any = "cpu") -> "Pretrained":
    r"""
    Any model of this package from a local model directory: the class is the one `config.json` names,
    looked up in `MODELS`. Returns the model in evaluation mode.
    """
    config = read_config(directory)
    cls = model_class(config.get("model_class"))
    try:
        model = cls(**constructor_arguments(cls, config))
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{Path(directory) / CONFIG_FILE} does not describe a valid {cls.__name__}: {error}") from None
    load_weights(model, Path(directory) / WEIGHTS_FILE, device)
    return model.eval()
