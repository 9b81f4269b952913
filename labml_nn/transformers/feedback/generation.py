r"""
---
title: Generating with the Feedback Transformer
summary: The memory is the cache: the Feedback Transformer generates token by token, each memory vector's keys and values computed once and kept in a sliding cache, so a token costs one step whatever the length.
---

# Generating with the Feedback Transformer

The [Feedback Transformer](index.html) is recurrent, and its memory *is* the cache of a generator: the
keys and values of each step's memory vector $\mathbf{m}_t$ are computed once, when the step is done, and
every later step reads them. This page keeps the newest $L$ of them, one history per memory projection,
in a [sliding cache](../one_token.html#SlidingKV), which holds at most $2L + n_w - 1$ entries however
long the text: a new token costs one step through the layers, and the memory it needs stays bounded.

* **The exact model** (`window=1`) reads every token, the prompt's too, with the model's step (the
  [hand-written step](step.html) without gradients, or `step="autograd"`'s
  [`FeedbackTransformer.step`](index.html#FeedbackTransformer.step)); each step's keys and values join the
  cache before the next step runs.
* **A windowed model** (`window` $= n_w > 1$) starts its windows at multiples of $n_w$, as its forward
  pass does: the unfinished window (at most $n_w - 1$ earlier tokens) is run again with each new token,
  and its memory vectors join the cache once it is full.

So the tokens are those that calling the model on the growing sequence would pick (`tests/test_feedback.py`
checks it). `model.generate(..., cached=False)` calls the model itself with `memory=` instead, which
recomputes the keys and values of the memory for every token. The benchmark (`python -m bench.feedback`)
measures this path against feedback-transformer-pytorch: {report:feedback.generate_vs_feedback_transformer_pytorch}
as many tokens per second at batch 8, {report:feedback.generate_vs_feedback_transformer_pytorch_batch_1} at
batch 1.

| symbol | meaning | code | shape |
|---|---|---|---|
| $x^0_t$ | embedding of step $t$ | `x` | `[batch_size, dim]` |
| $\mathbf{m}$ | memory vectors of the unfinished window | `m` | `[batch_size, n, dim]` |
| $n_w$ | window | `window` | |
| | keys and values of the newest $L$ memory vectors, one pair per memory projection | `windows` | `[batch_size, heads, P, dim_head]` each |
"""

from typing import List, Optional, Tuple

import torch

from labml_nn.transformers.feedback import FeedbackTransformer
from labml_nn.transformers.one_token import SlidingKV


class CachedReader:
    r"""
    What [`ForwardCalls`](../lm.html#ForwardCalls) computes for the exact model, `reader(tokens)` → the
    logits of the last position, `[batch_size, num_tokens]`, with the memory vectors' keys and values kept in
    one [`SlidingKV`](../one_token.html#SlidingKV) per memory projection; for a windowed model, what the
    forward pass on the whole sequence computes.
    """

    def __init__(self, model: FeedbackTransformer):
        self.model = model
        self.histories: List[SlidingKV] = []
        # The keys and values each layer reads (one pair per memory projection; `None` before the first step).
        self.windows: List[Optional[Tuple[torch.Tensor, torch.Tensor]]] = []
        # The exact model: the last step's keys and values, to join the cache before the next step.
        self.kvs: List[torch.Tensor] = []
        # A windowed model: the unfinished window's embeddings and memory vectors.
        self.pending: Optional[torch.Tensor] = None
        self.m: Optional[torch.Tensor] = None

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        model = self.model
        if not self.histories:
            attn = model.layers[0].attn
            self.histories = [SlidingKV(tokens.shape[0], attn.heads, attn.dim_head, model.mem_len,
                                        model.token_emb.weight, max_append=model.window) for _ in model.memory_kv]
            self.windows = [None] * len(self.histories)
            self.step = model.exact_steps(None, tokens.shape[0]) if model.window == 1 else None
        top = self.read_exact(tokens) if model.window == 1 else self.read_windowed(tokens)
        # `[batch_size, num_tokens]`
        return model.to_logits(model.norm(top))

    def read_exact(self, tokens: torch.Tensor) -> torch.Tensor:
        r"""The exact model, token by token; returns the last step's $x^N_t$, `[batch_size, dim]`."""
        for x in self.model.token_emb(tokens).unbind(1):
            if self.kvs:
                self.windows = [history.append(kv) for history, kv in zip(self.histories, self.kvs)]
            out, _, self.kvs = self.step(x, self.windows)
        return out

    def read_windowed(self, tokens: torch.Tensor) -> torch.Tensor:
        r"""A windowed model, windows from multiples of $n_w$; returns the last position's output, `[batch_size, dim]`."""
        model = self.model
        window, softmax_w = model.window, model.layer_weights.softmax(dim=0)
        pending = self.pending
        if pending is not None and pending.shape[1] == window:
            # The window is full: its memory joins the caches and the new tokens start the next one.
            self.windows = model.commit(self.histories, self.m)
            pending = None
        new = model.token_emb(tokens)
        # The unfinished window, `[batch_size, n, dim]`, starting at a multiple of $n_w$.
        pending = new if pending is None else torch.cat([pending, new], dim=1)
        # The full windows of a long prompt, all but the one the next logits come from.
        while pending.shape[1] > window:
            _, m = model.run_window(pending[:, :window], self.windows, softmax_w)
            self.windows = model.commit(self.histories, m)
            pending = pending[:, window:]
        top, self.m = model.run_window(pending, self.windows, softmax_w)
        self.pending = pending
        return top[:, -1]
