r"""
---
title: Sampling from a checkpoint or a model directory
summary: Rebuild a trained model from its files alone (class, constructor arguments, vocabulary, weights), without running anything they contain, and continue a prompt with it.
---

# Sampling from a checkpoint or a model directory

```bash
python -m labml_nn.experiments.sample --checkpoint checkpoints/xl --prompt "ROMEO:" --length 200
python -m labml_nn.experiments.sample --checkpoint my-model --prompt "ROMEO:"   # from save_pretrained / --export
```

`--checkpoint` names a run's directory (its newest readable checkpoint is used), one checkpoint
directory, or a [model directory](../transformers/hub.html) written by `save_pretrained` or the
trainer's `--export`. Each holds a `config.json` that names the model's class, the arguments of its
constructor and the vocabulary, and the weights as safetensors. That is all we need to build the
same model again and generate; this script imports no experiment. The class name is looked up in
the package's fixed table of models, so a file can name one of the three models and nothing else,
and nothing is unpickled: loading a file someone sent you cannot run their code.

Every option is checked first: a `--prompt` with characters (or words) outside the model's vocabulary, a
`--temperature` that is not positive, a negative `--length`, a `--seed` outside $[0, 2^{32})$ or a
`--device` this torch cannot use is one line, `error: ...`, and exit code 2; so is a model directory
that does not hold what it says (see [model files](../transformers/hub.html)), checked before the model is
built. A `--temperature` below $10^{-6}$ is greedy decoding: at such a temperature sampling is the
argmax, and dividing the logits by it would overflow them.
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from labml_nn.experiments.checkpoint import CheckpointError, newest_readable
from labml_nn.experiments.config import UsageError, above, at_least, between, check_option, device_check
from labml_nn.experiments.data import DataError, Vocabulary
from labml_nn.transformers.hub import CONFIG_FILE, ModelFileError, load_pretrained, read_config


def model_directory(path: str, report=print) -> Path:
    """The directory to load: `path` itself when it holds a `config.json`, else its newest readable checkpoint."""
    directory = Path(path)
    if (directory / CONFIG_FILE).exists():  # (not only a regular file: a FIFO is refused when it is read)
        return directory
    if directory.is_file():
        raise DataError(f"{directory} is a file: pass a run directory, a checkpoint directory or a model directory "
                        f"(config.json + model.safetensors)")
    if not directory.is_dir():
        raise DataError(f"No checkpoint or model directory at {directory}.")
    try:
        return newest_readable(directory, report).path
    except CheckpointError as error:
        raise DataError(str(error)) from None


def load_model(path: str, device: str = "cpu") -> Tuple[nn.Module, Vocabulary]:
    """The model (in evaluation mode) and its vocabulary, from a run, checkpoint or model directory."""
    directory = model_directory(path, lambda line: print(line, file=sys.stderr))
    try:
        config = read_config(directory)
        if "vocab" not in config:
            raise DataError(f"{directory / CONFIG_FILE} has no vocabulary: sampling text needs a model trained by an "
                            f"experiment, or saved with save_pretrained(directory, vocab=...)")
        # The model file's checks include its vocabulary's: one distinct token per id, `num_tokens` of them.
        model = load_pretrained(directory, device)
        vocab = Vocabulary.from_config(config)
    except (ModelFileError, TypeError, ValueError) as error:
        raise DataError(str(error)) from None
    return model, vocab


def prompt_ids(vocab: Vocabulary, prompt: str) -> torch.Tensor:
    """The ids of `prompt`, `[n]`, never empty: a model needs at least one token to continue."""
    ids = vocab.encode(prompt)
    if len(ids) == 0:
        ids = vocab.encode("\n") if "\n" in vocab.stoi else torch.zeros(1, dtype=torch.long)
    return ids


# Below this temperature sampling is the argmax (the Gumbel noise cannot change which logit is largest but for
# ties), and dividing the logits by it can overflow them to infinities and NaN (at 1e-300, float32's 0).
GREEDY_BELOW = 1e-6


@torch.no_grad()
def sample(model: nn.Module, vocab: Vocabulary, prompt: str, length: int,
           temperature: float = 1.0, top_k: Optional[int] = None) -> str:
    """The prompt followed by `length` sampled tokens (an empty prompt: a character model starts from a new
    line, a word model from its first token). A temperature below `GREEDY_BELOW` is greedy decoding."""
    if temperature < GREEDY_BELOW:
        temperature, top_k = 1.0, 1
    ids = prompt_ids(vocab, prompt)[None, :].to(next(model.parameters()).device)
    out = model.generate(ids, length, temperature=temperature, top_k=top_k)
    return vocab.decode(out[0].tolist())


def add_checkpoint_option(parser: argparse.ArgumentParser) -> None:
    """`--checkpoint`, the model a command reads, as `sample` and `evaluate` take it."""
    parser.add_argument("--checkpoint", required=True,
                        help="a run directory (its newest readable checkpoint), a checkpoint directory, or a model "
                             "directory from save_pretrained / --export")


def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = argparse.ArgumentParser(description="Generate text from a checkpoint or a model directory.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_checkpoint_option(parser)
    parser.add_argument("--prompt", default="ROMEO:", help="the text to continue")
    parser.add_argument("--length", type=int, default=200, help="tokens (characters, for a character model) to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=0, help="sample only among the k likeliest tokens (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0 to 2**32 - 1)")
    parser.add_argument("--device", default="cpu", help="device to run on: cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    try:
        check_option("length", args.length, at_least(0))
        check_option("temperature", args.temperature, above(0.0))
        check_option("top_k", args.top_k, at_least(0))
        check_option("seed", args.seed, between(0, 2 ** 32 - 1))
        check_option("device", args.device, lambda d: "expected cpu, cuda or cuda:N" if d == "auto" else device_check(d))
        torch.manual_seed(args.seed)
        model, vocab = load_model(args.checkpoint, args.device)
        unknown = vocab.unknown(args.prompt)
        if unknown:
            raise UsageError(f"--prompt {args.prompt!r}: the {vocab.unit}s {unknown!r} are not in the model's "
                             f"vocabulary")
        text = sample(model, vocab, args.prompt, args.length, args.temperature, args.top_k or None)
    except (DataError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
    print(text)
    return text


if __name__ == "__main__":
    main()
