r"""
---
title: Multi-head attention
summary: Scaled dot-product multi-head attention with causal masking and extra memory keys, the building block every memory transformer here extends.
---

# Multi-head attention

Attention lets every position of a sequence read from every other position it is allowed to see.
Vaswani et al. ([Attention Is All You Need](https://arxiv.org/abs/1706.03762)) compute it as

$$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\Big(\frac{Q K^\top}{\sqrt{d_h}}\Big) V$$

and run $H$ of these *heads* side by side, each with its own projections, so that one head can
follow syntax while another copies a name from far back:

$$\operatorname{MultiHead}(X) = \operatorname{Concat}(\text{head}_1, \dots, \text{head}_H)\, W_o,
\qquad \text{head}_i = \operatorname{Attention}(X W_{q,i}, X W_{k,i}, X W_{v,i})$$

The memory transformers on this site change one thing about this picture: the keys and values come
not only from the current segment but also from a *memory* of $L$ earlier positions placed in front of
it. Query $i$ of the segment therefore sits at position $L + i$ of the key sequence, and the causal
mask must let it see keys $0 \dots L + i$. This module supports that directly (`mem=`), and splits the
computation into small methods so that
[relative attention](xl/relative_mha.html) can replace only the scores and the
[Feedback Transformer](feedback/index.html) can reuse the projections. The scores $A_{i,j}$ become the
weights $a_{i,j}$ in one place, [`attend`](#MultiHeadAttention.attend), which every model's attention runs.

| symbol | meaning | code | shape |
|---|---|---|---|
| $X$ | the segment's input | `x` | `[batch_size, seq_len, dim]` |
| $H$ | number of heads | `heads` | |
| $d_h$ | size of one head | `dim_head` | |
| $L$ | number of memory positions in front of the segment | `mem_len` | |
| $Q$ | queries, one per segment position | `q` | `[batch_size, heads, seq_len, dim_head]` |
| $K, V$ | keys and values over memory and segment | `k`, `v` | `[batch_size, heads, mem_len + seq_len, dim_head]` |
| $A$ | attention scores | `scores` | `[batch_size, heads, seq_len, mem_len + seq_len]` |
| $a$ | attention weights, $\operatorname{softmax}(A / \sqrt{d_h})$ | `a` | `[batch_size, heads, seq_len, mem_len + seq_len]` |
"""

from typing import Optional, Tuple

import torch
from einops import rearrange
from torch import nn


def head_size(dim: int, heads: int, dim_head: Optional[int]) -> int:
    """`dim_head`, or `dim // heads` when it is not given (which then must divide evenly)."""
    if dim_head is not None:
        return dim_head
    if dim % heads != 0:
        raise ValueError(f"dim ({dim}) must be divisible by heads ({heads}), or pass dim_head")
    return dim // heads


def causal_mask(seq_len: int, key_len: int, device: Optional[torch.device] = None) -> torch.Tensor:
    r"""
    The causal mask for `seq_len` queries that follow `key_len - seq_len` memory positions.

    Query $i$ sits at key position $L + i$ with $L$ = `key_len - seq_len`, so it may see keys
    $j \le L + i$. Returns a boolean `[seq_len, key_len]` tensor that is `True` where attention is
    **forbidden**; with no memory it is the familiar strictly upper triangle.
    """
    mem_len = key_len - seq_len
    return torch.ones(seq_len, key_len, dtype=torch.bool, device=device).triu(mem_len + 1)


class MultiHeadAttention(nn.Module):
    r"""
    Multi-head attention over the current segment and an optional memory in front of it.

    `forward(x, mem)` returns `[batch_size, seq_len, dim]`. The keys and values are computed from
    the concatenation `[mem, x]`; the queries from `x` alone.
    """

    # Vectors of the heads' width multiplied per query and key: the score $q_i^\top k_j$ and the weighted
    # value $a_{i,j} v_j$ (the models' FLOP count reads it).
    products_per_key = 2

    def __init__(self, dim: int, heads: int, dim_head: Optional[int] = None, dropout: float = 0.0,
                 bias: bool = True):
        super().__init__()
        if dim <= 0 or heads <= 0 or (dim_head is not None and dim_head <= 0):
            raise ValueError(f"dim, heads and dim_head must be positive, got dim={dim}, heads={heads}, "
                             f"dim_head={dim_head}")
        dim_head = head_size(dim, heads, dim_head)
        self.heads = heads
        self.dim_head = dim_head
        # $W_q$ for all heads at once: `[dim] -> [heads * dim_head]`.
        self.to_q = nn.Linear(dim, heads * dim_head, bias=bias)
        # $W_k$ and $W_v$ share one matrix multiplication; they are split after it.
        self.to_kv = nn.Linear(dim, 2 * heads * dim_head, bias=bias)
        # $W_o$ maps the concatenated heads back to the model's width.
        self.to_out = nn.Linear(heads * dim_head, dim)
        # $\frac{1}{\sqrt{d_h}}$ keeps the dot products at unit scale, so the softmax does not saturate
        # as `dim_head` grows.
        self.scale = dim_head ** -0.5
        # Dropout on the attention weights. Its input *is* the attention weights
        # $a = \operatorname{softmax}(A / \sqrt{d_h})$, so a forward hook on this module sees them: that is
        # how the pictures of the pages record attention, without a second copy of this computation.
        self.dropout = nn.Dropout(dropout)
        # The largest distance whose own position encoding is used (`None`: every distance's). Plain
        # attention has no positions; [relative attention](xl/relative_mha.html) reads it, and a model's
        # `evaluation_memory` sets it.
        self.clamp_len: Optional[int] = None

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        r"""$Q = X W_q$, split into heads: `[batch_size, seq_len, dim]` → `[batch_size, heads, seq_len, dim_head]`."""
        return rearrange(self.to_q(x), 'b n (heads d) -> b heads n d', heads=self.heads)

    def keys_values(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""
        $K = X W_k$ and $V = X W_v$ for the positions `x`, `[batch_size, key_len, dim]`, each returned as
        `[batch_size, heads, key_len, dim_head]`. Keys and values depend only on their own position, which
        is why a generator may compute them once and cache them.
        """
        k, v = rearrange(self.to_kv(x), 'b n (two heads d) -> two b heads n d', two=2, heads=self.heads)
        return k, v

    def content_queries(self, q: torch.Tensor) -> torch.Tensor:
        r"""The queries that meet the keys in $q_i^\top k_j$; plain attention uses $q_i$ itself."""
        return q

    def score_bias(self, q: torch.Tensor, key_len: int) -> Optional[torch.Tensor]:
        r"""
        A term added to every score $q_i^\top k_j$ that is not a dot product with a key,
        `[batch_size, heads, seq_len, key_len]`; plain attention has none.

        This method and `content_queries` are the two that [relative attention](xl/relative_mha.html)
        replaces.
        """
        return None

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        r"""
        The unscaled scores $A_{i,j}$, `[batch_size, heads, seq_len, key_len]`: here
        $q_i^\top k_j$ plus the score bias, if any.
        """
        scores = self.content_queries(q) @ k.transpose(-2, -1)
        bias = self.score_bias(q, k.shape[-2])
        return scores if bias is None else scores + bias

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""
        $a = \operatorname{softmax}(A / \sqrt{d_h})$, then $\sum_j a_{i,j} v_j$ for all heads, then $W_o$.

        `q` is `[batch_size, heads, seq_len, dim_head]`, `k` and `v` are
        `[batch_size, heads, key_len, dim_head]` with the last `seq_len` keys belonging to the queries'
        own positions. `mask` (`True` = forbidden) broadcasts to `[batch_size, heads, seq_len, key_len]`;
        by default it is the causal mask with `key_len - seq_len` memory positions in front.
        Returns `[batch_size, seq_len, dim]`.
        """
        seq_len, key_len = q.shape[-2], k.shape[-2]
        # `[batch_size, heads, seq_len, key_len]`
        scores = self.scores(q, k) * self.scale
        # A single query at the last position may see every key: nothing to mask.
        if mask is None and seq_len > 1:
            mask = causal_mask(seq_len, key_len, q.device)
        if mask is not None:
            scores = scores.masked_fill(mask, float('-inf'))
        a = self.dropout(scores.softmax(dim=-1))
        out = a @ v
        # `[batch_size, heads, seq_len, dim_head]` → `[batch_size, seq_len, heads * dim_head]`
        out = rearrange(out, 'b heads n d -> b n (heads d)')
        return self.to_out(out)

    def forward(self, x: torch.Tensor, mem: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""
        Attend from the segment `x`, `[batch_size, seq_len, dim]`, to the memory `mem`,
        `[batch_size, mem_len, dim]`, and the segment itself. Returns `[batch_size, seq_len, dim]`.
        """
        # Memory goes in front: key position $j < L$ is memory, $j \ge L$ is the segment.
        context = x if mem is None else torch.cat([mem, x], dim=1)
        k, v = self.keys_values(context)
        return self.attend(self.queries(x), k, v, mask)
