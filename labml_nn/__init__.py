r"""
---
title: labml_nn
summary: Annotated PyTorch implementations of the memory transformers.
---

# Annotated memory transformers

Readable, tested PyTorch implementations of

* [Transformer-XL](transformers/xl/index.html) with [relative multi-head attention](transformers/xl/relative_mha.html)
* the [Compressive Transformer](transformers/compressive/index.html)
* the [Feedback Transformer](transformers/feedback/index.html)

Each model takes token ids `[batch_size, seq_len]` and returns logits `[batch_size, seq_len, num_tokens]`,
carries its memory between calls, and has an `experiment.py` that trains it on Tiny Shakespeare.
"""

__version__ = "0.2.0"
