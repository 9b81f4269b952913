r"""
---
title: One typed configuration, every field an option
summary: A plain dataclass holds every setting of a training run; argparse options are generated from its fields, so `--help` always lists every option with its default.
---

# One typed configuration, every field an option

A training run is described by one plain [dataclass](https://docs.python.org/3/library/dataclasses.html):
its fields are the settings, their types say what a setting is, and their defaults are the values
that train something sensible on a 2-core CPU. There is no registry, no string-keyed magic and no
second place where a setting is declared: each experiment subclasses `TrainConfig`, adds the
fields of its model, and `parse_config` turns every field into a command-line option.

```python
@dataclass
class Config(TrainConfig):
    mem_len: int = option(32, "tokens of memory per layer")
```

becomes `--mem-len 32`, and a `bool` field `resume` becomes the pair `--resume` / `--no-resume`.
The configuration is stored in each checkpoint as a plain dictionary, so a checkpoint says
exactly how it was trained.

## Every option is checked before anything runs

A mistake in an option should cost a second, not a run. An option that is out of range
(`--seq-len 0`), not a number (`--lr nan`), or names something that does not exist (`--device foo`)
would otherwise surface as a traceback from deep inside the code, or, worse, after an hour of
training, when the first sample is drawn with `--temperature 0`. So each field may carry a `check`,
and `parse_config` runs them all before it returns: the first failure is one line,

```
error: --temperature 0.0: expected a finite number > 0
```

and exit code 2. Every float must be finite, whatever its check. The paths the run will write to
(`--checkpoint-dir`, `--summary`, `--export`) are checked too: a directory where a file goes, a file
where a directory goes, or a parent that cannot be written is found now, not after training. What
depends on the data (the prompt's characters against the vocabulary) is checked by [the run](run.html)
as soon as the data is read, still before the first step.
"""

import argparse
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Type, TypeVar

import torch

from labml_nn.experiments.corpora import DATASETS

# A check takes the option's value and returns what was expected, or `None` when the value is fine.
Check = Callable[[Any], Optional[str]]

# The precisions of `--dtype`.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class UsageError(Exception):
    """A mistake in how a run was started (a bad option, `--resume` with nothing to resume): the
    message says what to do, and the entry points print it without a traceback."""


def option(default: Any, help: str, check: Optional[Check] = None, aliases: Sequence[str] = ()) -> Any:
    """A dataclass field with a default, the help text its command-line option shows, a check, and
    other (older) spellings of the option that are still accepted."""
    return field(default=default, metadata={"help": help, "check": check, "aliases": tuple(aliases)})


def at_least(low: float) -> Check:
    """A number `>= low`."""
    return lambda value: None if value >= low else f"expected a number >= {low}"


def above(low: float) -> Check:
    """A number `> low`."""
    return lambda value: None if value > low else f"expected a finite number > {low}"


def between(low: float, high: float, high_open: bool = False) -> Check:
    """A number in `[low, high]`, or `[low, high)`."""
    def check(value):
        inside = low <= value < high if high_open else low <= value <= high
        return None if inside else f"expected a number in [{low}, {high}{')' if high_open else ']'}"
    return check


def strictly_between(low: float, high: float) -> Check:
    """A number in `(low, high)`."""
    return lambda value: None if low < value < high else f"expected a number in ({low}, {high})"


# A probability that may be 0 but not 1 (dropout of 1 zeroes everything).
probability = between(0.0, 1.0, high_open=True)


def device_check(value: str) -> Optional[str]:
    """`auto`, `cpu`, or `cuda`/`cuda:N` where this torch can reach that GPU."""
    if value in ("auto", "cpu"):
        return None
    match = re.fullmatch(r"cuda(?::(\d+))?", value)
    if not match:
        return "expected auto, cpu, cuda or cuda:N"
    if not torch.cuda.is_available():
        built = "this torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        return f"{built} (torch {torch.__version__}); use --device cpu"
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        return f"there are {torch.cuda.device_count()} visible GPUs, numbered from 0"
    return None


def run_name_check(value: str) -> Optional[str]:
    """A run's name is one directory: letters, digits, `_`, `-` and `.`, not starting with a dot."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", value):
        return None
    return "expected a name of letters, digits, '_', '-' and '.' (one directory, not starting with '.')"


def threads_check(value: int) -> Optional[str]:
    """0 (torch's default) up to the number of CPUs: more threads than CPUs only wait for each other (and
    a hundred thousand of them crash the process)."""
    cpus = os.cpu_count() or 1
    return None if 0 <= value <= cpus else f"expected a number in [0, {cpus}] (this machine has {cpus} CPUs)"


def check_output_path(name: str, value: str, kind: str) -> None:
    r"""
    `--name PATH`, where the run will write a file (`kind="file"`) or a directory (`"directory"`): a
    `UsageError` now, before any training, if it cannot: a directory where a file goes or the other way
    round, a parent that is a file, or one this process cannot write into. (Empty: nothing is written.)
    """
    if not value:
        return
    option = f"--{name.replace('_', '-')} {value}"
    path = Path(value).expanduser()
    if kind == "file" and path.is_dir():
        raise UsageError(f"{option}: is a directory; expected the path of a file to write")
    if kind == "directory" and path.exists() and not path.is_dir():
        raise UsageError(f"{option}: is a file; expected a directory")
    # The nearest part of the path that exists must be a directory this process may create files in.
    parent = path if path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: {parent} is not writable")


def check_option(name: str, value: Any, check: Optional[Check]) -> None:
    """Raise a `UsageError` naming `--name`, the value and what is allowed, unless the value passes."""
    problem = None
    if isinstance(value, float) and not math.isfinite(value):
        problem = "expected a finite number"
    elif check is not None:
        problem = check(value)
    if problem:
        raise UsageError(f"--{name.replace('_', '-')} {value!r}: {problem}")


def validate_config(config: "TrainConfig") -> None:
    """Run every field's check; the first failure is a `UsageError`. An experiment that gives a shared
    field a new default without a check keeps the shared field's check."""
    shared = {f.name: f.metadata.get("check") for f in dataclasses.fields(TrainConfig)}
    for f in dataclasses.fields(config):
        check_option(f.name, getattr(config, f.name), f.metadata.get("check") or shared.get(f.name))
    # Where the run writes: checked now, not after the training.
    check_output_path("checkpoint_dir", config.checkpoint_dir, "directory")
    check_output_path("summary", config.summary, "file")
    check_output_path("export", config.export, "directory")


@dataclass
class TrainConfig:
    """Settings shared by every experiment: data, optimisation, evaluation and checkpoints."""

    # ### Run
    name: str = option("run", "name of the run; checkpoints go to CHECKPOINT_DIR/NAME", run_name_check)
    seed: int = option(0, "seed for torch, numpy and random; the same seed gives the same run",
                       between(0, 2 ** 32 - 1))
    device: str = option("auto", "'cpu', 'cuda', 'cuda:N', or 'auto' (the GPU when there is one)", device_check)
    threads: int = option(0, "CPU threads per process for torch (0: torch's default), at most the machine's CPUs",
                          threads_check)
    labml: bool = option(True, "report through labml's tracker and monitor (writes ./logs)")
    compile: bool = option(False, "train the model compiled by torch.compile (inductor): the first steps compile, "
                                  "the later ones run faster")
    dtype: str = option("float32", "the precision of the forward pass, through torch.autocast: float32, bfloat16 or "
                                   "float16 (with a gradient scaler); weights and optimiser state stay float32",
                        lambda value: None if value in DTYPES else f"expected one of {', '.join(DTYPES)}")
    peak_tflops: float = option(0.0, "the device's peak TFLOP/s in --dtype, to report model FLOP utilisation (0: not "
                                     "reported)", at_least(0.0))
    compile_shapes: str = option("auto", "how --compile treats shapes that change (the memory filling, a curriculum): "
                                         "'auto' (torch's default: a second shape recompiles for all shapes), "
                                         "'static' (one graph per shape)",
                                 lambda value: None if value in ("auto", "static") else "expected auto or static")

    preset: str = option("", "a paper's configuration (see the experiment's --help, or presets.html); the other "
                             "options still override it")

    # ### Data
    dataset: str = option("tiny_shakespeare", f"what to train on: {', '.join(DATASETS)}",
                          lambda value: None if value in DATASETS else f"expected one of {', '.join(DATASETS)}")
    data: str = option("", "path to a local copy of the dataset (a text file; for enwik8/text8 the zip archive or the "
                           "extracted file); default: its environment variable, else download")
    data_url: str = option("", "where to download the dataset when there is no local copy (default: its usual address)")
    valid_fraction: float = option(0.1, "Tiny Shakespeare: the last fraction of the text, held out for validation "
                                        "(enwik8 and text8 have the papers' fixed 90/5/5 split)",
                                   strictly_between(0.0, 1.0))

    # ### Batches
    batch_size: int = option(16, "streams per process and micro-batch (the batch is contiguous streams, not random "
                                 "crops)", at_least(1))
    grad_accum: int = option(1, "micro-batches of --batch-size streams per optimiser step, each with its own memory",
                             at_least(1))
    seq_len: int = option(64, "characters per segment", at_least(1))

    # ### Optimisation
    steps: int = option(1500, "training steps (the learning-rate schedule spans them)", at_least(1))
    time_budget: float = option(0.0, "stop training after this many seconds of training (0: no limit)",
                                at_least(0.0))
    lr: float = option(1e-3, "peak learning rate of AdamW", above(0.0))
    min_lr_ratio: float = option(0.1, "the cosine decay ends at lr * min_lr_ratio", between(0.0, 1.0))
    warmup_steps: int = option(100, "steps of linear warm-up from 0 to lr", at_least(0))
    weight_decay: float = option(0.01, "AdamW's decoupled weight decay", at_least(0.0))
    adam_beta2: float = option(0.99, "AdamW's beta2, the decay rate of its second-moment estimate (PyTorch's and the "
                                     "papers' default: 0.999)", strictly_between(0.0, 1.0))
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: no clipping)", at_least(0.0))

    # ### Evaluation and samples
    valid_interval: int = option(250, "validate every this many steps (0: only at the end)", at_least(0))
    eval_seq_len: int = option(0, "segment length of `evaluate` (0: the training seq_len)", at_least(0))
    eval_mem_len: int = option(0, "memory length of `evaluate` (0: the model's); Transformer-XL evaluates with a longer "
                                  "memory than it trains with", at_least(0))
    clamp_len: int = option(0, "evaluate with distances beyond this one encoded as this one (0: no clamp), as "
                               "Transformer-XL does with a long evaluation memory", at_least(0))
    valid_windows: int = option(0, "segments per stream to validate on (0: the whole validation text)",
                                at_least(0))
    sample_interval: int = option(500, "print a sample every this many steps (0: only at the end)", at_least(0))
    prompt: str = option("ROMEO:", "the prompt samples start from")
    sample_length: int = option(200, "characters to sample", at_least(0))
    temperature: float = option(0.8, "sampling temperature", above(0.0))

    # ### Checkpoints
    checkpoint_dir: str = option("checkpoints", "directory for checkpoints")
    checkpoint_interval: int = option(500, "save a checkpoint every this many steps (and at the end)",
                                      at_least(0))
    keep_checkpoints: int = option(3, "how many recent checkpoints to keep", at_least(1))
    resume: bool = option(False, "continue from the latest checkpoint of this run")
    overwrite: bool = option(False, "start a new run in a directory that holds another run's checkpoints, "
                                    "deleting them (without it, such a run stops with an error)")
    stop_at: int = option(0, "stop (with a checkpoint) after this step, as a preemption would; "
                             "the schedule still spans --steps (0: run to the end)", at_least(0))
    summary: str = option("", "write the final metrics as JSON to this path")
    export: str = option("", "save the final model to this directory (config.json + model.safetensors, "
                             "with the vocabulary), for from_pretrained and sample")

    # ### Several processes
    ddp_timeout: float = option(300.0, "seconds a process waits for the others in a collective before the run "
                                       "stops with an error (a hung or stopped peer)", above(0.0))


@dataclass
class SpanConfig(TrainConfig):
    """The settings shared by every experiment, and the [adaptive span](../transformers/adaptive_span.html)'s, for
    a model that offers one (Transformer-XL, the Feedback Transformer)."""

    # ### Adaptive span
    span_ramp: float = option(0.0, "adaptive attention span: the length of the mask's ramp, in keys (0: no adaptive "
                                   "span; the Feedback Transformer authors' enwik8 model: 32)", at_least(0.0))
    span_loss: float = option(0.0, "adaptive span: the coefficient of the span loss added to the training loss (the "
                                   "Feedback Transformer authors': 5e-7)", at_least(0.0))
    span_trim_step: int = option(64, "adaptive span: the keys each layer keeps are a multiple of this", at_least(1))
    span_init: float = option(0.0, "adaptive span: the span ratio z every head starts from, in [0, 1]",
                              between(0.0, 1.0))


Config = TypeVar("Config", bound=TrainConfig)


def build_parser(config_class: Type[TrainConfig], description: Optional[str] = None) -> argparse.ArgumentParser:
    """An `ArgumentParser` with one option per field of `config_class`."""
    parser = argparse.ArgumentParser(description=description or config_class.__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(config_class):
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
        help_text = f.metadata.get("help", "")
        if f.type is bool:
            # `--resume` sets it, `--no-resume` clears it; both are listed by `--help`.
            parser.add_argument(*flags, dest=f.name, default=f.default, help=help_text,
                                action=argparse.BooleanOptionalAction)
        else:
            parser.add_argument(*flags, dest=f.name, default=f.default, help=help_text,
                                type=f.type, metavar=f.type.__name__.upper())
    return parser


def parse_config(config_class: Type[Config], argv: Optional[Sequence[str]] = None,
                 description: Optional[str] = None, presets: Optional[dict] = None) -> Config:
    """Parse `argv` (by default `sys.argv[1:]`) into an instance of `config_class`, and check every
    option (a `UsageError` for the first that fails). `--preset NAME` names one of `presets` (a
    [paper configuration](presets.html)): its values become the defaults, which the other options
    override."""
    parser = build_parser(config_class, description)
    preset_name = parser.parse_known_args(argv)[0].preset
    if preset_name:
        presets = presets or {}
        if preset_name not in presets:
            known = ", ".join(presets) or "none"
            raise UsageError(f"--preset {preset_name!r}: expected one of this experiment's presets ({known})")
        fields = {f.name for f in dataclasses.fields(config_class)}
        unknown = sorted(set(presets[preset_name].options) - fields)
        if unknown:
            raise UsageError(f"--preset {preset_name}: this experiment has no options {unknown}")
        parser.set_defaults(**presets[preset_name].options)
    args = parser.parse_args(argv)
    config = config_class(**vars(args))
    validate_config(config)
    if config.resume and config.overwrite:
        raise UsageError("--resume and --overwrite: choose one (continue the run, or delete it and start over)")
    return config


def config_to_dict(config: TrainConfig) -> dict:
    """The plain dictionary a checkpoint stores."""
    return dataclasses.asdict(config)

