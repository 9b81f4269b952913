r"""
---
title: Relative multi-head attention
summary: Transformer-XL's attention, whose scores depend on how far apart two positions are rather than where they are, with the relative-shift trick explained step by step.
---

# Relative multi-head attention

[Transformer-XL](index.html) (Dai et al., [arXiv:1901.02860](https://arxiv.org/abs/1901.02860)) reuses
the hidden states of the previous segment as memory. Absolute position embeddings break that: the
first token of every segment would carry position $0$, and a layer could not tell the memory's
position $0$ from the segment's. So the paper makes attention depend only on the **distance**
$i - j$ between a query and a key.

Write the scores of plain attention with absolute embeddings $U$ and expand them into four terms; then
replace the absolute $U_j$ by a relative encoding $R_{i-j}$, and the query's own position by two
learned vectors $\mathbf{u}$ and $\mathbf{v}$ that are the same for every query:

$$
A^{rel}_{i,j} =
\underbrace{q_i^\top k_j}_{(a)\ \text{content}}
+ \underbrace{q_i^\top r_{i-j}}_{(b)\ \text{content-dependent position}}
+ \underbrace{\mathbf{u}^\top k_j}_{(c)\ \text{global content bias}}
+ \underbrace{\mathbf{v}^\top r_{i-j}}_{(d)\ \text{global position bias}}
$$

where $q_i = W_q E_{x_i}$, $k_j = W_{k,E} E_{x_j}$ and $r_{i-j} = W_{k,R} R_{i-j}$. $R$ is the
sinusoidal encoding of Vaswani et al., not learned, and $W_{k,R}$ is a separate projection, so
content keys and position keys live in different spaces. Grouping the terms gives the two matrix
products the code computes:

$$A^{rel}_{i,j} = (q_i + \mathbf{u})^\top k_j + (q_i + \mathbf{v})^\top r_{i-j}$$

Everything else, the softmax, the values and the output projection, is
[plain multi-head attention](../mha.html): this module replaces only how the scores are formed, through
`content_queries` ($q_i + \mathbf{u}$) and `score_bias` (the position terms).

| symbol | meaning | code | shape |
|---|---|---|---|
| $q_i$ | query of segment position $i$ | `q` | `[batch_size, heads, seq_len, dim_head]` |
| $k_j$ | content key of memory or segment position $j$ (from the parent's `keys_values`) | | `[batch_size, heads, key_len, dim_head]` |
| $R_\delta$ | sinusoidal encoding of distance $\delta$ | `R` | `[key_len, dim]` |
| $W_{k,R}$ | projection of the encodings to position keys | `to_r` | `[dim, heads * dim_head]` |
| $r_\delta$ | position key of distance $\delta$ | `r` | `[heads, key_len, dim_head]` |
| $\mathbf{u}$, $\mathbf{v}$ | global content and position biases | `u`, `v` | `[heads, dim_head]` |
| $L$ | memory positions in front of the segment (the model's `mem_len`) | | |

With $L$ memory positions in front of a segment of length $n$, key position $j$ runs over
$0 \dots L + n - 1$ and query $i$ sits at key position $L + i$; its distance to key $j$ is
$\delta = L + i - j$.
"""

import math
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from labml_nn.transformers.mha import MultiHeadAttention


def sinusoidal_embeddings(positions: torch.Tensor, dim: int) -> torch.Tensor:
    r"""
    Vaswani et al.'s encoding of the (here: relative) positions `positions`, `[n]`, as `[n, dim]`:

    $$R_{\delta, 2k} = \sin\big(\delta / 10000^{2k/d}\big), \qquad R_{\delta, 2k+1} = \cos\big(\delta / 10000^{2k/d}\big)$$

    (sines in the first half of the vector and cosines in the second, which is the same encoding up to
    a fixed permutation). Each distance gets a unique pattern, and a fixed linear map takes
    $R_\delta$ to $R_{\delta + c}$, which is what lets $W_{k,R}$ learn distance-based attention.
    """
    if dim % 2 != 0:
        raise ValueError(f"the sinusoidal encoding needs an even dim, got {dim}")
    # $1 / 10000^{2k/d}$ for $k = 0 \dots d/2 - 1$
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)
                         * (-math.log(10000.0) / dim))
    # `[n, dim / 2]`
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def descending_sinusoids(key_len: int, dim: int, device: torch.device, nearest: int = 0,
                         clamp_len: Optional[int] = None) -> torch.Tensor:
    r"""
    $R_\delta$ for $\delta = \text{key\_len} - 1 + \text{nearest}, \dots, \text{nearest}$ (descending), as
    `[key_len, dim]`: the order in which the keys see the last query's distances. With `clamp_len`,
    distances beyond it are encoded as `clamp_len`: Transformer-XL evaluates with a memory longer than
    any distance it trained on, and encodings it never saw would be noise to $W_{k,R}$.
    """
    distances = torch.arange(key_len - 1 + nearest, nearest - 1, -1, device=device)
    if clamp_len is not None:
        distances = distances.clamp(max=clamp_len)
    return sinusoidal_embeddings(distances, dim)


def relative_shift(x: torch.Tensor) -> torch.Tensor:
    r"""
    Turn scores against **distances** into scores against **keys**.

    `x` is `[..., seq_len, key_len]` whose columns hold the scores of query $i$ against the distances
    $\delta = \text{key\_len} - 1, \dots, 1, 0$ (descending, the same for every row).
    The result is `[..., seq_len, key_len]` where column $j$ holds the score against key $j$, that is
    against distance $L + i - j$, with $L = \text{key\_len} - \text{seq\_len}$.

    Row $i$ of the result is row $i$ of `x` moved left by $n - 1 - i$ places, with $n$ = `seq_len`: the
    last query needs no move, the first moves furthest. Entries that move in from the right are
    garbage, but they are exactly the future keys $j > L + i$ that the causal mask removes.

    A gather would build an index tensor as big as the scores. Instead, a zero column and two views
    do it, with one copy. For $n = 3$, $L = 1$ (so `key_len` $= 4$, distances $3, 2, 1, 0$):

    ```
    x (distances 3 2 1 0)     1. pad a zero column
    q0: a3 a2 a1 a0           0 a3 a2 a1 a0
    q1: b3 b2 b1 b0           0 b3 b2 b1 b0
    q2: c3 c2 c1 c0           0 c3 c2 c1 c0

    2. view as [5, 3]         3. drop row 0, view as [3, 4]
    0  a3 a2                  a1 a0 0  b3
    a1 a0 0                   b2 b1 b0 0
    b3 b2 b1                  c3 c2 c1 c0
    b0 0  c3
    c2 c1 c0
    ```

    Query $q_0$ sits at key position $1$: keys $0, 1$ are at distances $1, 0$, which is `a1 a0`; `0 b3`
    are future keys, masked. Query $q_2$ sits at position $3$ and sees distances $3, 2, 1, 0$.
    """
    *lead, seq_len, key_len = x.shape
    # A single query is the last position: its row needs no move.
    if seq_len == 1:
        return x
    # 1. `[..., seq_len, key_len + 1]`: each row now starts with a zero.
    x = F.pad(x, (1, 0))
    # 2. Read the same numbers as `[..., key_len + 1, seq_len]`: each padded row is one element
    #    longer than `key_len`, so every following row starts one place further to the left.
    x = x.view(*lead, key_len + 1, seq_len)
    # 3. Drop the first `seq_len` numbers and read the rest back as `[..., seq_len, key_len]`;
    #    within one batch and head the remaining numbers are contiguous, so this is a view.
    return x[..., 1:, :].reshape(*lead, seq_len, key_len)


class RelativeMultiHeadAttention(MultiHeadAttention):
    r"""
    Multi-head attention with Transformer-XL's relative scores
    $A^{rel}_{i,j} = (q_i + \mathbf{u})^\top k_j + (q_i + \mathbf{v})^\top r_{i-j}$.

    Like its parent, `forward(x, mem)` takes the segment `[batch_size, seq_len, dim]` and a memory
    `[batch_size, mem_len, dim]` and returns `[batch_size, seq_len, dim]`.
    """

    # The score, the position score $q_i^\top r_\delta$ and the weighted value, per query and key.
    products_per_key = 3

    def __init__(self, dim: int, heads: int, dim_head: Optional[int] = None, dropout: float = 0.0,
                 nearest_distance: int = 0):
        # The paper's projections have no bias: the biases $\mathbf{u}$ and $\mathbf{v}$ below take that role.
        super().__init__(dim, heads, dim_head, dropout, bias=False)
        if dim % 2 != 0:
            raise ValueError(f"the sinusoidal encoding of distances needs an even dim, got {dim}")
        self.dim = dim
        # The distance of the last key from the last query: 0 in Transformer-XL, where a position attends
        # to itself; the [Feedback Transformer](../feedback/index.html), whose keys lie strictly in the past,
        # uses 1.
        self.nearest_distance = nearest_distance
        # $W_{k,R}$, the projection of the sinusoidal encodings to position keys.
        self.to_r = nn.Linear(dim, heads * self.dim_head, bias=False)
        # $\mathbf{u}$ and $\mathbf{v}$, one vector per head. (The bias is `self.v`; the values are `v` only
        # inside `attend`.)
        self.u = nn.Parameter(torch.zeros(heads, self.dim_head))
        self.v = nn.Parameter(torch.zeros(heads, self.dim_head))

    def position_keys(self, key_len: int, device: torch.device) -> torch.Tensor:
        r"""
        $r_\delta = W_{k,R} R_\delta$ for the distances $\delta = \text{key\_len} - 1, \dots, 1, 0$ (each plus
        `nearest_distance`), in that (descending) order, as `[heads, key_len, dim_head]`. The distances are
        descending so that row $t$ is the distance of key $t$ from the *last* query; `score_bias` moves the
        other queries' rows into place.
        """
        R = descending_sinusoids(key_len, self.dim, device, self.nearest_distance,
                                 self.clamp_len).to(self.to_r.weight.dtype)
        return rearrange(self.to_r(R), 'n (heads d) -> heads n d', heads=self.heads)

    def content_queries(self, q: torch.Tensor) -> torch.Tensor:
        r"""
        Terms (a) + (c) are one dot product, $(q_i + \mathbf{u})^\top k_j$: the content queries are $q_i + \mathbf{u}$.
        `u[:, None]` is `[heads, 1, dim_head]` and broadcasts over batch and queries.
        """
        return q + self.u[:, None]

    def score_bias(self, q: torch.Tensor, key_len: int) -> torch.Tensor:
        r"""
        Terms (b) + (d), $(q_i + \mathbf{v})^\top r_{L+i-j}$, as `[batch_size, heads, seq_len, key_len]`, for
        `q`, `[batch_size, heads, seq_len, dim_head]`, and `key_len` keys of which the last `seq_len`
        are the queries' own positions.
        """
        # `[heads, key_len, dim_head]`, row $t$ for distance $\text{key\_len} - 1 - t$.
        r = self.position_keys(key_len, q.device)
        # $(q_i + \mathbf{v})^\top r_\delta$ against every distance. The position keys are the same for the whole
        # batch, so the batch joins the queries and the product runs once per head:
        # `[heads, batch_size * seq_len, dim_head] @ [heads, dim_head, key_len]`, then back to
        # `[batch_size, heads, seq_len, key_len]`.
        batch_size, heads, seq_len, dim_head = q.shape
        q_v = (q + self.v[:, None]).transpose(0, 1).reshape(heads, batch_size * seq_len, dim_head)
        position = (q_v @ r.transpose(1, 2)).view(heads, batch_size, seq_len, key_len).transpose(0, 1)
        # Column $j$ must hold distance $L + i - j$: move each row into place.
        return relative_shift(position)
