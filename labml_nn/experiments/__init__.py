r"""
---
title: Shared training code
summary: How every memory transformer in this project is trained: the data, the configuration, the loop, checkpoints and sampling, each on its own page.
---

# Shared training code

The three papers of this project change the model, not the way a language model is trained, so all
three are trained by the same code. It is split into pages that each do one thing, in the order a
training run needs them:

1. [Data](data.html): Tiny Shakespeare, vocabularies of characters or words, targets where a task
   gives them, and the **contiguous streams** that give a memory transformer's memory something to
   remember; [enwik8 and text8](corpora.html), the papers' byte-level benchmark, read through a memory map.
2. [Configuration](config.html): one typed dataclass per experiment; each field is a command-line
   option, so `--help` lists them all with their defaults.
3. [The training loop](trainer.html): one function, read top to bottom: the memory carried across
   steps and across the validation text, the loss over the counted targets, AdamW with warm-up and
   cosine decay, gradient clipping, bits per token and accuracy; and the hooks through which an
   experiment trains differently.
4. [The run around it](run.html): the processes of `torchrun` and `DistributedDataParallel`, one run
   per directory, an exact `--resume`, labml's progress and metrics.
5. [Checkpoints](checkpoint.html): written atomically and loaded without running code, so a killed
   run never leaves a broken one and a file from elsewhere can be opened safely.
6. [Sampling](sample.html): rebuild a model from a checkpoint alone and continue a prompt.
7. [Evaluation](evaluate.html): bits per character over a whole split, with the papers' longer
   evaluation memory.
8. [The papers' configurations](presets.html): each paper's enwik8 model as a preset.
9. [Pictures](pictures.html): the drawings of the pages and the notebooks.

The models never import any of this: they are plain `torch.nn.Module`s that take token ids
`[batch_size, seq_len]`, return logits `[batch_size, seq_len, num_tokens]`, and hand back their
memory when asked. Each paper's `experiment.py` ([Transformer-XL](../transformers/xl/experiment.html),
[Compressive](../transformers/compressive/experiment.html),
[Feedback](../transformers/feedback/experiment.html)) only picks the model, its options and, where
the paper trains differently, one of the loop's hooks.

```bash
python -m labml_nn.transformers.xl.experiment            # train; prints progress and samples
python -m labml_nn.transformers.xl.experiment --resume   # continue the run from its last checkpoint
torchrun --nproc_per_node=2 -m labml_nn.transformers.xl.experiment
python -m labml_nn.experiments.sample --checkpoint checkpoints/xl --prompt "ROMEO:" --length 200
```
"""
