r"""
---
title: Evaluating on a whole split
summary: Bits per character of a trained model over a whole validation or test split, with the memory carried across it, and optionally the longer memory and clamped distances Transformer-XL evaluates with.
---

# Evaluating on a whole split

```bash
python -m labml_nn.experiments.evaluate --checkpoint checkpoints/xl --split test
python -m labml_nn.experiments.evaluate --checkpoint checkpoints/xl-enwik8 --split test --mem-len 2100 --clamp-len 820 --seq-len 80
```

The papers report bits per character on the test split of [enwik8](corpora.html), read once from
beginning to end with the memory carried from segment to segment. That is what this does: the split
is cut into `--batch-size` contiguous streams, each read in segments of `--seq-len`, the last shorter
one included, so that every character of the split is predicted exactly once, and the memory carries
over from segment to segment. (A stream's first characters start from an empty memory, as the split's
first character does; with one stream, `--batch-size 1`, that is one character.)

Evaluation may use a longer memory than training: Transformer-XL's enwik8 model trains with
$L = 512$ and evaluates with 2,100, and encodes every distance beyond 820 as 820 (`--clamp-len`), so
that no distance is one it never saw in training (see the model's
[`evaluation_memory`](../transformers/lm.html#MemoryLM.evaluation_memory)).
The settings come from the run's options (`--eval-seq-len`, `--eval-mem-len`, `--clamp-len` of
training, which a [preset](presets.html) sets to the paper's) and can be given here. An option the model
cannot use (`--cmem-len` for a model without a compressed memory, `--clamp-len` for one without relative
attention) is an error, not ignored, and so is a `--summary` that cannot be written: found before the
evaluation, not after it.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from labml_nn.experiments.checkpoint import CheckpointError, load_checkpoint
from labml_nn.experiments.config import DTYPES, UsageError, at_least, check_option, check_output_path, device_check
from labml_nn.experiments.corpora import DATASETS, load_dataset
from labml_nn.experiments.data import DataError
from labml_nn.experiments.sample import add_checkpoint_option, load_model, model_directory
from labml_nn.experiments.run import finite_or_none
from labml_nn.experiments.trainer import evaluate_streams
from labml_nn.transformers.hub import ModelFileError


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description="Bits per character of a trained model over a whole split.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_checkpoint_option(parser)
    parser.add_argument("--split", default="test", choices=["valid", "test"], help="which part of the dataset")
    parser.add_argument("--dataset", default="", help=f"the dataset ({', '.join(DATASETS)}; default: the run's)")
    parser.add_argument("--data", default="", help="a local copy of the dataset (default: the run's, or its environment "
                                                   "variable, or a download)")
    parser.add_argument("--seq-len", type=int, default=0, help="segment length (default: the run's --eval-seq-len, "
                                                              "else its --seq-len)")
    parser.add_argument("--mem-len", type=int, default=0, help="memory length (default: the run's --eval-mem-len, else "
                                                              "the model's)")
    parser.add_argument("--cmem-len", type=int, default=None,
                        help="compressed-memory length (the Compressive Transformer only; default: the run's "
                             "--eval-cmem-len, else the model's)")
    parser.add_argument("--clamp-len", type=int, default=None, help="clamp distances beyond this one (default: the "
                                                                   "run's --clamp-len; 0: none)")
    parser.add_argument("--batch-size", type=int, default=1, help="streams the split is cut into")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="the precision of the forward pass")
    parser.add_argument("--summary", default="", help="write the result as JSON to this path")
    args = parser.parse_args(argv)
    try:
        for name in ("seq_len", "mem_len", "batch_size", "cmem_len", "clamp_len"):
            if getattr(args, name) is not None:
                check_option(name, getattr(args, name), at_least(0 if name != "batch_size" else 1))
        check_option("device", args.device, lambda d: "expected cpu, cuda or cuda:N" if d == "auto" else device_check(d))
        # Checked now, not after the whole evaluation.
        check_output_path("summary", args.summary, "file")
        result = evaluate(args)
    except (DataError, UsageError, CheckpointError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
    print(f"{result['split']} bits per character: {result['bpc']:.4f} ({result['characters']:,} characters, "
          f"segments of {result['seq_len']}, memory {result['mem_len']})")
    if args.summary:
        Path(args.summary).write_text(json.dumps(finite_or_none(result), indent=2, allow_nan=False))
    return result


def evaluate(args: argparse.Namespace) -> dict:
    directory = model_directory(args.checkpoint, lambda line: print(line, file=sys.stderr))
    model, vocab = load_model(str(directory), args.device)
    # The run's options, where the directory is a checkpoint (a model directory has none).
    run = load_checkpoint(directory).trainer.get("config", {}) if (directory / "trainer.pt").is_file() else {}
    dataset = args.dataset or run.get("dataset", "tiny_shakespeare")
    data = load_dataset(dataset, args.data or run.get("data") or None, run.get("data_url") or None,
                        run.get("valid_fraction", 0.1), vocab=vocab)
    part = data.test if args.split == "test" else data.valid
    if part is None:
        raise UsageError(f"--split test: {dataset} has no test split (it is split into training and validation)")
    seq_len = args.seq_len or run.get("eval_seq_len") or run.get("seq_len") or 64
    mem_len = args.mem_len or run.get("eval_mem_len") or None
    if args.cmem_len is not None and "cmem_len" not in model.memory_lengths:
        raise UsageError(f"--cmem-len {args.cmem_len}: a {type(model).__name__} has no compressed memory")
    cmem_len = args.cmem_len if args.cmem_len is not None else (run.get("eval_cmem_len") or None)
    # Relative attention is the attention that has position keys to clamp.
    if args.clamp_len and not any(hasattr(m, "position_keys") for m in model.modules()):
        raise UsageError(f"--clamp-len {args.clamp_len}: a {type(model).__name__} with these options has no relative "
                         f"attention whose distances it would clamp")
    clamp_len = args.clamp_len if args.clamp_len is not None else (run.get("clamp_len") or None)
    batches = data.streams(args.split, args.batch_size)
    device = torch.device(args.device)
    autocast = lambda: torch.autocast(device.type, dtype=DTYPES[args.dtype], enabled=args.dtype != "float32")
    # Only the lengths given (the model has them: checked above).
    lengths = {name: value for name, value in (("mem_len", mem_len), ("cmem_len", cmem_len)) if value is not None}
    with model.evaluation_memory(clamp_len=clamp_len or None, **lengths):
        windows = batches.num_windows(seq_len, tail=True)
        metrics = evaluate_streams(model, batches, seq_len, windows, device, autocast, tail=True)
        used_mem = model.mem_len
    return dict(checkpoint=str(directory), dataset=dataset, split=args.split, bpc=metrics.bits,
                accuracy=metrics.accuracy, characters=batches.stream_len * args.batch_size, seq_len=seq_len,
                mem_len=used_mem,
                clamp_len=clamp_len, batch_size=args.batch_size, dtype=args.dtype)


if __name__ == "__main__":
    main()
