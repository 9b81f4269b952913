r"""
---
title: One token at a time
summary: The two pieces the fast one-token pages share: a sliding key/value cache for generation, and a pre-norm folded into the product after it.
---

# One token at a time

Generating text, and training the exact Feedback Transformer, run the model on **one position per
sequence** at a time: tensors of `[batch_size, dim]`. At that size a tensor operation does little
arithmetic, and its fixed cost (Python, PyTorch's dispatch, a module call, an allocation) is most of
its time. The readable models of the paper pages are not written for that case, and should not be:
the pages that make it fast ([Transformer-XL's generation](xl/generation.html), the
[Feedback Transformer's step](feedback/step.html)) compute the same numbers in fewer operations, and
share the two pieces on this page.

## A sliding key/value cache

A generator keeps the keys and values of the positions it may still attend to. Concatenating each
new position onto the cache and cutting the oldest copies the whole window, and allocates a new one,
for every token. [`SlidingKV`](#SlidingKV) writes each new position once into a buffer with room for
about twice the window, hands out a *view* of the newest `window` positions, and only when the
buffer is full moves those back to its start: one copy of the window every `window` or so tokens
instead of one per token.

The buffer holds the keys and then the values, `[2, batch_size, heads, capacity, dim_head]`, so one copy
moves both, and the window comes out as keys and values of `[batch_size, heads, P, dim_head]` each, every
head's rows contiguous, so batch and heads merge into the one dimension of a batched matrix product
with a view.
New positions arrive as each head's key and value side by side, `[batch_size, heads, n, 2 * dim_head]`,
the layout the Feedback Transformer's [key/value buffer](feedback/kv_buffer.html) uses in training.

## A pre-norm folded into the product after it

A pre-norm computes $\gamma \odot \hat{x} + \beta$ from the normalised $\hat{x} = (x - \mu)/\sigma$, and
what follows it is a product with a weight $W$ (`[in, out]`, acting on rows). The scale and the shift
fold into that product once, before the loop:

$$(\gamma \odot \hat{x} + \beta)\, W + b = \hat{x}\, \big(\operatorname{diag}(\gamma) W\big) + (b + \beta W)$$

so every step normalises without an affine and runs one product with a bias:
[`fold_norm`](#fold_norm).
"""

from typing import Optional, Tuple

import torch
from torch import nn


def fold_norm(norm: nn.LayerNorm, W: torch.Tensor, b: Optional[torch.Tensor] = None
              ) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""
    $W' = \operatorname{diag}(\gamma) W$ and $b' = b + \beta W$ for the layer norm `norm` ($\gamma, \beta$)
    and the product after it, `W` `[in, out]` (already transposed to act on rows) with bias `b` (or none).
    Differentiable: with gradients enabled, the gradients found for $W', b'$ reach $\gamma$, $\beta$, $W$
    and $b$.
    """
    # Scaled as `[out, in]` and handed back transposed: a product of a few rows by the transpose of a
    # contiguous weight is what `nn.Linear` computes.
    W_folded = (W.t() * norm.weight).t()
    b_folded = norm.bias @ W
    return W_folded, b_folded if b is None else b_folded + b


class SlidingKV:
    r"""
    The keys and values of the newest `window` positions of one attention, for generation (no
    gradients). `append(kv)` adds the positions `kv`, `[batch_size, heads, n, 2 * dim_head]` (each
    head's key and value side by side, any strides), and returns the keys and the values of the newest
    `min(length, window)` positions, each `[batch_size, heads, P, dim_head]`.

    The buffer holds `2 * window + max_append - 1` positions: the window, as many again, and room for
    the largest single append (`max_append`), so the move to the front never overlaps its source. Only
    the first append (a prompt) may be longer.
    """

    def __init__(self, batch_size: int, heads: int, dim_head: int, window: int, like: torch.Tensor,
                 max_append: int = 1):
        if window < 1:
            raise ValueError(f"the window holds at least one position, got {window}")
        self.window, self.max_append = window, max_append
        # `[2, batch_size, heads, capacity, dim_head]`, in the dtype and on the device of `like`.
        self.buffer = like.new_empty(2, batch_size, heads, 2 * window + max_append - 1, dim_head)
        self.length = 0

    @property
    def capacity(self) -> int:
        """The positions the buffer holds: the window, as many again, and the largest append but one."""
        return self.buffer.shape[3]

    def append(self, kv: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if torch.is_grad_enabled():
            raise RuntimeError("SlidingKV is for generation without gradients: it overwrites the slots of the "
                               "windows it handed out (train with the model's own attention)")
        batch_size, heads, n, width = kv.shape
        # `[2, batch_size, heads, n, dim_head]`: keys, then values (a view).
        kv = kv.view(batch_size, heads, n, 2, width // 2).permute(3, 0, 1, 2, 4)
        if n > self.max_append:
            # A prompt: longer than any later append, so it must come first. Only its newest `window`
            # positions can ever be attended to again.
            if self.length:
                raise ValueError(f"appends after the first hold at most {self.max_append} positions, got {n}")
            n = min(n, self.window)
            self.buffer.narrow(3, 0, n).copy_(kv.narrow(3, kv.shape[3] - n, n))
            self.length = n
            return self.view()
        if self.length + n > self.capacity:
            # Full: move the newest `window` positions to the start. Source and target do not overlap,
            # because the buffer holds more than twice the window.
            keep = min(self.length, self.window)
            self.buffer.narrow(3, 0, keep).copy_(self.buffer.narrow(3, self.length - keep, keep))
            self.length = keep
        self.buffer.narrow(3, self.length, n).copy_(kv)
        self.length += n
        return self.view()

    def view(self) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""The newest `min(length, window)` positions' keys and values, `[batch_size, heads, P, dim_head]` each."""
        P = min(self.length, self.window)
        keys, values = self.buffer.narrow(3, self.length - P, P)
        return keys, values
