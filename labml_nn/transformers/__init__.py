r"""
---
title: Transformers
summary: The building blocks shared by every memory transformer here, and the three papers built from them.
---

# Transformers with memory

A transformer language model reads a fixed window of tokens. The three papers on this site let it
read further back without attending over an ever longer window:

* [Transformer-XL](xl/index.html) keeps each layer's hidden states from the previous segment as a
  memory and attends to it with [relative positions](xl/relative_mha.html).
* The [Compressive Transformer](compressive/index.html) compresses the memories Transformer-XL would
  discard into a second, coarser memory.
* The [Feedback Transformer](feedback/index.html) lets every layer read a memory built from *all*
  layers of the past, which makes the model recurrent.

They share the pieces in this folder: [multi-head attention](mha.html), the
[feed-forward network](feed_forward.html), and the [language-model contract](lm.html) that gives the
three models one interface: token ids `[batch_size, seq_len]` in, logits `[batch_size, seq_len, num_tokens]`
out, memory passed from call to call.

## Long memory, demonstrated

A synthetic task puts the answer beyond the current segment: a key token, then $D$ positions later a
query asking for it. Trained for the same budget (`python -m bench.long_memory`, part of `make bench`),
the models recall exactly as far as their papers say they should:

![Recall accuracy against distance for the four models](pictures/long_memory.png)

The model without memory fails as soon as the key lies in an earlier segment; Transformer-XL recalls
within segment plus memory; the Compressive Transformer, attending to as many keys, reaches further
through its compressed memory; the Feedback Transformer's recurrence carried the key beyond everything
it attends to at every distance tested. The table with the numbers is in the
[results](../../readme.md#results).
"""
