r"""
---
title: Multi-head attention
summary: Scaled dot-product multi-head attention with causal masking and extra memory keys, the building block every memory transformer here extends.
---

# Multi-head attention

Attention lets every position of a sequence read from every other position it is allowed to see.
Vaswani et al. ([Attention Is All You Need](https://arxiv.org/abs/1706.03762)) compute it as

$$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\Big(\frac{Q K^\top}{\sqrt{d_k}}\Big) V$$

and run $h$ of these *heads* side by side, each with its own projections, so that one head can
follow syntax while another copies a name from far back:

$$\operatorname{MultiHead}(X) = \operatorname{Concat}(\text{head}_1, \dots, \text{head}_h)\, W^O,
\qquad \text{head}_i = \operatorname{Attention}(X W^Q_i, X W^K_i, X W^V_i)$$

The memory transformers on this site change one thing about this picture: the keys and values come
not only from the current segment but also from a *memory* of $L$ earlier positions placed in front of
it. Query $i$ of the segment therefore sits at position $L + i$ of the key sequence, and the causal
mask must let it see keys $0 \dots L + i$. This module supports that directly (`mem=`), and splits the
computation into small methods so that
[relative attention](xl/relative_mha.html) can replace only the scores and the
[Feedback Transformer](feedback/index.html) can reuse the projections.

| symbol | meaning | code | shape |
|---|---|---|---|
| $X$ | the segment's input | `x` | `[batch_size, seq_len, dim]` |
| $h$ | number of heads | `heads` | |
| $d_k$ | size of one head | `dim_head` | |
| $L$ | number of memory positions in front of the segment | `mem_len` | |
| $Q$ | queries, one per segment position | `q` | `[batch_size, heads, seq_len, dim_head]` |
| $K, V$ | keys and values over memory and segment | `k`, `v` | `[batch_size, heads, mem_len + seq_len, dim_head]` |
| $A$ | attention scores | `scores` | `[batch_size, heads, seq_len, mem_len + seq_len]` |
"""

from typing import Optional, Tuple

import torch
from einops import rearrange
from torch import nn


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

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if dim <= 0 or heads <= 0 or dim_head <= 0:
            raise ValueError(f"dim, heads and dim_head must be positive, got dim={dim}, heads={heads}, "
                             f"dim_head={dim_head}")
        self.heads = heads
        self.dim_head = dim_head
        # $W^Q$ for all heads at once: `[dim] -> [heads * dim_head]`.
        self.to_q = nn.Linear(dim, heads * dim_head, bias=bias)
        # $W^K$ and $W^V$ share one matrix multiplication; they are split after it.
        self.to_kv = nn.Linear(dim, 2 * heads * dim_head, bias=bias)
        # $W^O$ maps the concatenated heads back to the model's width.
        self.to_out = nn.Linear(heads * dim_head, dim)
        # $\frac{1}{\sqrt{d_k}}$ keeps the dot products at unit scale, so the softmax does not saturate
        # as `dim_head` grows.
        self.scale = dim_head ** -0.5
        # Dropout on the attention weights. Its input *is* the attention weights
        # $\operatorname{softmax}(A / \sqrt{d_k})$, so a forward hook on this module sees them: that is
        # how the pictures of the pages record attention, without a second copy of this computation.
        self.dropout = nn.Dropout(dropout)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        r"""$Q = X W^Q$, split into heads: `[batch_size, seq_len, dim]` → `[batch_size, heads, seq_len, dim_head]`."""
        return rearrange(self.to_q(x), 'b n (h d) -> b h n d', h=self.heads)

    def keys_values(self, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""
        $K = H W^K$ and $V = H W^V$ for the positions `h`, `[batch_size, key_len, dim]`, each returned as
        `[batch_size, heads, key_len, dim_head]`. Keys and values depend only on their own position, which
        is why a generator may compute them once and cache them.
        """
        k, v = rearrange(self.to_kv(h), 'b n (two h d) -> two b h n d', two=2, h=self.heads)
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
        $\operatorname{softmax}(A / \sqrt{d_k})\, V$ for all heads, then $W^O$.

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
        attn = self.dropout(scores.softmax(dim=-1))
        out = attn @ v
        # `[batch_size, heads, seq_len, dim_head]` → `[batch_size, seq_len, heads * dim_head]`
        out = rearrange(out, 'b h n d -> b n (h d)')
        return self.to_out(out)

    def forward(self, x: torch.Tensor, mem: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""
        Attend from the segment `x`, `[batch_size, seq_len, dim]`, to the memory `mem`,
        `[batch_size, mem_len, dim]`, and the segment itself. Returns `[batch_size, seq_len, dim]`.
        """
        # Memory goes in front: key position $j < L$ is memory, $j \ge L$ is the segment.
        h = x if mem is None else torch.cat([mem, x], dim=1)
        k, v = self.keys_values(h)
        return self.attend(self.queries(x), k, v, mask)

