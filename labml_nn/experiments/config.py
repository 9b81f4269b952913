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
"""

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Type, TypeVar

from labml_nn.experiments.data import TINY_SHAKESPEARE_URL


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and the help text its command-line option shows."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Settings shared by every experiment: data, optimisation, evaluation and checkpoints."""

    # ### Run
    name: str = option("run", "name of the run; checkpoints go to CHECKPOINT_DIR/NAME")
    seed: int = option(0, "seed for torch, numpy and random; the same seed gives the same run")
    device: str = option("auto", "'cpu', 'cuda', or 'auto' (the GPU when there is one)")
    threads: int = option(0, "CPU threads per process for torch (0: torch's default)")
    labml: bool = option(True, "report through labml's tracker and monitor (writes ./logs)")

    # ### Data
    data: str = option("", "path to a local text file; default: $TINY_SHAKESPEARE_PATH, else download")
    data_url: str = option(TINY_SHAKESPEARE_URL, "where to download Tiny Shakespeare when there is no local copy")
    valid_fraction: float = option(0.1, "the last fraction of the text, held out for validation")

    # ### Batches
    batch_size: int = option(16, "streams per process (the batch is contiguous streams, not random crops)")
    seq_len: int = option(64, "characters per segment")

    # ### Optimisation
    steps: int = option(1500, "training steps (the learning-rate schedule spans them)")
    time_budget: float = option(0.0, "stop training after this many seconds of training (0: no limit)")
    lr: float = option(1e-3, "peak learning rate of AdamW")
    min_lr_ratio: float = option(0.1, "the cosine decay ends at lr * min_lr_ratio")
    warmup_steps: int = option(100, "steps of linear warm-up from 0 to lr")
    weight_decay: float = option(0.01, "AdamW's decoupled weight decay")
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: no clipping)")

    # ### Evaluation and samples
    valid_interval: int = option(250, "validate every this many steps (0: only at the end)")
    valid_windows: int = option(0, "segments per stream to validate on (0: the whole validation text)")
    sample_interval: int = option(500, "print a sample every this many steps (0: only at the end)")
    prompt: str = option("ROMEO:", "the prompt samples start from")
    sample_length: int = option(200, "characters to sample")
    temperature: float = option(0.8, "sampling temperature")

    # ### Checkpoints
    checkpoint_dir: str = option("checkpoints", "directory for checkpoints")
    checkpoint_interval: int = option(500, "save a checkpoint every this many steps (and at the end)")
    keep_checkpoints: int = option(3, "how many recent checkpoints to keep")
    resume: bool = option(False, "continue from the latest checkpoint of this run")
    stop_at: int = option(0, "stop (with a checkpoint) after this step, as a preemption would; "
                             "the schedule still spans --steps (0: run to the end)")
    summary: str = option("", "write the final metrics as JSON to this path")


Config = TypeVar("Config", bound=TrainConfig)


def build_parser(config_class: Type[TrainConfig], description: Optional[str] = None) -> argparse.ArgumentParser:
    """An `ArgumentParser` with one option per field of `config_class`."""
    parser = argparse.ArgumentParser(description=description or config_class.__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(config_class):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if f.type is bool:
            # `--resume` sets it, `--no-resume` clears it; both are listed by `--help`.
            parser.add_argument(flag, dest=f.name, default=f.default, help=help_text,
                                action=argparse.BooleanOptionalAction)
        else:
            parser.add_argument(flag, dest=f.name, default=f.default, help=help_text,
                                type=f.type, metavar=f.type.__name__.upper())
    return parser


def parse_config(config_class: Type[Config], argv: Optional[Sequence[str]] = None,
                 description: Optional[str] = None) -> Config:
    """Parse `argv` (by default `sys.argv[1:]`) into an instance of `config_class`."""
    args = build_parser(config_class, description).parse_args(argv)
    return config_class(**vars(args))


def config_to_dict(config: TrainConfig) -> dict:
    """The plain dictionary a checkpoint stores."""
    return dataclasses.asdict(config)

