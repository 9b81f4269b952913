r"""
---
title: Sampling from a checkpoint
summary: Rebuild a trained model from a checkpoint alone (class, constructor arguments, vocabulary, weights) and continue a prompt with it.
---

# Sampling from a checkpoint

```bash
python -m labml_nn.experiments.sample --checkpoint checkpoints/xl/checkpoint-00001500.pt --prompt "ROMEO:" --length 200
```

A checkpoint written by the [trainer](trainer.html) names the model's class (`module:Class`), the
keyword arguments its constructor was called with, and the vocabulary. That is all we need to build
the same model again, load its weights and generate: this script imports no experiment, so it
keeps working for any model that follows the project's contract (token ids in, logits out, a
`generate` method). `--checkpoint` may also name a run's directory, in which case the newest
checkpoint in it is used.
"""

import argparse
import importlib
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from labml_nn.experiments.checkpoint import latest_checkpoint, load_checkpoint
from labml_nn.experiments.data import DataError, Vocabulary


def load_model(path: str, device: str = "cpu") -> Tuple[nn.Module, Vocabulary, dict]:
    """The model (in evaluation mode), its vocabulary, and the raw checkpoint."""
    checkpoint_file = Path(path)
    if checkpoint_file.is_dir():
        found = latest_checkpoint(checkpoint_file)
        if found is None:
            raise DataError(f"No checkpoint in the directory {checkpoint_file}.")
        checkpoint_file = found
    if not checkpoint_file.is_file():
        raise DataError(f"No checkpoint at {checkpoint_file}.")
    checkpoint = load_checkpoint(checkpoint_file, map_location=device)
    # `"labml_nn.transformers.xl:TransformerXL"` → the class object.
    module_name, _, qualname = checkpoint["model_class"].partition(":")
    model_class = importlib.import_module(module_name)
    for part in qualname.split("."):
        model_class = getattr(model_class, part)
    model = model_class(**checkpoint["model_kwargs"])
    model.load_state_dict(checkpoint["model"])
    model.to(device).eval()
    return model, Vocabulary.from_state(checkpoint["vocab"]), checkpoint


@torch.no_grad()
def sample(model: nn.Module, vocab: Vocabulary, prompt: str, length: int,
           temperature: float = 1.0, top_k: Optional[int] = None) -> str:
    """The prompt followed by `length` sampled characters."""
    ids = vocab.encode(prompt or "\n")[None, :].to(next(model.parameters()).device)
    out = model.generate(ids, length, temperature=temperature, top_k=top_k)
    return vocab.decode(out[0].tolist())


def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = argparse.ArgumentParser(description="Generate text from a saved checkpoint.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint file, or a run directory (its newest checkpoint)")
    parser.add_argument("--prompt", default="ROMEO:", help="the text to continue")
    parser.add_argument("--length", type=int, default=200, help="characters to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=0, help="sample only among the k likeliest characters (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--device", default="cpu", help="device to run on")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    try:
        model, vocab, _ = load_model(args.checkpoint, args.device)
        text = sample(model, vocab, args.prompt, args.length, args.temperature, args.top_k or None)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
    print(text)
    return text


if __name__ == "__main__":
    main()
