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
learned vectors $u$ and $v$ that are the same for every query:

$$
\mathbf{A}^{rel}_{i,j} =
\underbrace{q_i^\top k_j}_{(a)\ \text{content}}
+ \underbrace{q_i^\top r_{i-j}}_{(b)\ \text{content-dependent position}}
+ \underbrace{u^\top k_j}_{(c)\ \text{global content bias}}
+ \underbrace{v^\top r_{i-j}}_{(d)\ \text{global position bias}}
$$

where $q_i = W_q E_{x_i}$, $k_j = W_{k,E} E_{x_j}$ and $r_{i-j} = W_{k,R} R_{i-j}$. $R$ is the
sinusoidal encoding of Vaswani et al., not learned, and $W_{k,R}$ is a separate projection, so
content keys and position keys live in different spaces. Grouping the terms gives the two matrix
products the code computes:

$$\mathbf{A}^{rel}_{i,j} = (q_i + u)^\top k_j + (q_i + v)^\top r_{i-j}$$

Everything else, the softmax, the values and the output projection, is
[plain multi-head attention](../mha.html): this module replaces only how the scores are formed, through
`content_queries` ($q_i + u$) and `score_bias` (the position terms).

| symbol | meaning | code | shape |
|---|---|---|---|
| $q_i$ | query of segment position $i$ | `q` | `[batch_size, heads, seq_len, dim_head]` |
| $k_j$ | content key of memory or segment position $j$ | `k` | `[batch_size, heads, key_len, dim_head]` |
| $R_\delta$ | sinusoidal encoding of distance $\delta$ | `R` | `[key_len, dim]` |
| $W_{k,R}$ | projection of the encodings to position keys | `to_r` | `[dim, heads * dim_head]` |
| $r_\delta$ | position key of distance $\delta$ | `r` | `[heads, key_len, dim_head]` |
| $u$, $v$ | global content and position biases | `u`, `v` | `[heads, dim_head]` |
| $m$ | memory positions in front of the segment | `mem_len` | |

With $m$ memory positions in front of a segment of length $n$, key position $j$ runs over
$0 \dots m + n - 1$ and query $i$ sits at key position $m + i$; its distance to key $j$ is
$\delta = m + i - j$.
"""

import contextlib
import functools
import math
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from labml_nn.transformers.mha import KVWindow, MultiHeadAttention


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


@functools.lru_cache(maxsize=32)
def descending_sinusoids(key_len: int, dim: int, device: torch.device, nearest: int = 0) -> torch.Tensor:
    r"""
    $R_\delta$ for $\delta = \text{key\_len} - 1 + \text{nearest}, \dots, \text{nearest}$ (descending), as
    `[key_len, dim]`. It depends only on the lengths, so it is computed once per length and kept (callers
    must not modify it in place).
    """
    return sinusoidal_embeddings(torch.arange(key_len - 1 + nearest, nearest - 1, -1, device=device), dim)


def relative_shift(x: torch.Tensor) -> torch.Tensor:
    r"""
    Turn scores against **distances** into scores against **keys**.

    `x` is `[..., seq_len, key_len]` where column $t$ holds the score of query $i$ against the
    distance $\delta = \text{key\_len} - 1 - t$ (distances in descending order, the same for every row).
    The result is `[..., seq_len, key_len]` where column $j$ holds the score against key $j$, that is
    against distance $m + i - j$, with $m = \text{key\_len} - \text{seq\_len}$.

    Row $i$ of the result is row $i$ of `x` moved left by $n - 1 - i$ places, with $n$ = `seq_len`: the
    last query needs no move, the first moves furthest. Entries that move in from the right are
    garbage, but they are exactly the future keys $j > m + i$ that the causal mask removes.

    A gather would build an index tensor as big as the scores. Instead, a zero column and two views
    do it, with one copy. For $n = 3$, $m = 1$ (so `key_len` $= 4$, distances $3, 2, 1, 0$):

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


def weights_key(*tensors: torch.Tensor) -> tuple:
    r"""
    What identifies the current values of some parameters: their storage and version counters. Every
    in-place update (an optimiser step, `load_state_dict`) advances a version counter, so a quantity
    computed from the parameters without gradients stays valid exactly while this key is unchanged.
    A cache that compares keys must also hold on to the storages (`keep_storages`): a freed storage's
    address could otherwise be reused by a new tensor whose counter starts again at zero.
    """
    return tuple((t.data_ptr(), t._version) for t in tensors)


def keep_storages(*tensors: torch.Tensor) -> tuple:
    """References that keep the tensors' storages, and so their addresses, alive."""
    return tuple(t.untyped_storage() for t in tensors)


class RelativeMultiHeadAttention(MultiHeadAttention):
    r"""
    Multi-head attention with Transformer-XL's relative scores
    $\mathbf{A}^{rel}_{i,j} = (q_i + u)^\top k_j + (q_i + v)^\top r_{i-j}$.

    Like its parent, `forward(x, mem)` takes the segment `[batch_size, seq_len, dim]` and a memory
    `[batch_size, mem_len, dim]` and returns `[batch_size, seq_len, dim]`.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0, nearest_distance: int = 0):
        # The paper's projections have no bias: the biases $u$ and $v$ below take that role.
        super().__init__(dim, heads, dim_head, dropout, bias=False)
        if dim % 2 != 0:
            raise ValueError(f"the sinusoidal encoding of distances needs an even dim, got {dim}")
        self.dim = dim
        # The distance of the last key from the last query: 0 in Transformer-XL, where a position attends
        # to itself; the [Feedback Transformer](../feedback/index.html), whose keys lie strictly in the past,
        # uses 1.
        self.nearest_distance = nearest_distance
        # $W_{k,R}$, the projection of the sinusoidal encodings to position keys.
        self.to_r = nn.Linear(dim, heads * dim_head, bias=False)
        # $u$ and $v$, one vector per head. (The paper's $v$ is a bias; the values are `v` only inside
        # `attend`.)
        self.u = nn.Parameter(torch.zeros(heads, dim_head))
        self.v = nn.Parameter(torch.zeros(heads, dim_head))
        # A table of position keys reused across calls (see `position_keys`), and what it was made from.
        self._r_table: Optional[torch.Tensor] = None
        self._r_table_key = None
        # The storage of $W_{k,R}$ the table was made from, kept alive so its address stays its own.
        self._r_table_keep = ()

    def position_table(self, length: int, device: torch.device) -> torch.Tensor:
        r"""$r_\delta = W_{k,R} R_\delta$ for `length` distances in descending order, as `[heads, length, dim_head]`."""
        R = descending_sinusoids(length, self.dim, device, self.nearest_distance).to(self.to_r.weight.dtype)
        return rearrange(self.to_r(R), 'n (h d) -> h n d', h=self.heads)

    def position_keys(self, key_len: int, device: torch.device) -> torch.Tensor:
        r"""
        $r_\delta = W_{k,R} R_\delta$ for the distances $\delta = \text{key\_len} - 1, \dots, 1, 0$ (each plus
        `nearest_distance`), in that (descending) order, as `[heads, key_len, dim_head]`.

        The distances are in descending order, so the keys for a shorter length are the last `key_len`
        rows of those for a longer one: one table serves every length up to its own. A table is reused
        while it is valid: inside `shared_position_keys` (one forward pass, gradients flowing into the
        one table), or without gradients while $W_{k,R}$ is unchanged. The second case is checked with
        the weight's version counter, which every in-place update (an optimiser step,
        `load_state_dict`) advances.
        """
        W = self.to_r.weight
        if self._r_table_key == 'shared':
            if key_len > self._r_table.shape[1]:
                raise ValueError(f"{key_len} keys exceed the {self._r_table.shape[1]} position keys "
                                 f"prepared by shared_position_keys")
        elif torch.is_grad_enabled():
            return self.position_table(key_len, device)
        else:
            key = weights_key(W) + (device,)
            if self._r_table_key != key or self._r_table.shape[1] < key_len:
                length = max(key_len, 2 * self._r_table.shape[1] if self._r_table_key == key else 0)
                self._r_table, self._r_table_key = self.position_table(length, device), key
                self._r_table_keep = keep_storages(W)
        table = self._r_table
        # (The whole table needs no slice, which with gradients would be one more step in the graph.)
        return table if key_len == table.shape[1] else table[:, table.shape[1] - key_len:]

    @contextlib.contextmanager
    def shared_position_keys(self, max_key_len: int, device: torch.device):
        r"""
        Within this block, position keys come from one table of `max_key_len` distances, computed on
        entry. A model that calls the attention many times in one forward pass (the Feedback
        Transformer steps token by token) computes $W_{k,R} R$ once instead of at every step, and its
        gradient once in the backward pass.
        """
        previous = self._r_table, self._r_table_key
        self._r_table, self._r_table_key = self.position_table(max_key_len, device), 'shared'
        try:
            yield
        finally:
            self._r_table, self._r_table_key = previous

    def content_queries(self, q: torch.Tensor) -> torch.Tensor:
        r"""
        Terms (a) + (c) are one dot product, $(q_i + u)^\top k_j$: the content queries are $q_i + u$.
        `u[:, None]` is `[heads, 1, dim_head]` and broadcasts over batch and queries.
        """
        return q + self.u[:, None]

    def score_bias(self, q: torch.Tensor, key_len: int) -> torch.Tensor:
        r"""
        Terms (b) + (d), $(q_i + v)^\top r_{m+i-j}$, as `[batch_size, heads, seq_len, key_len]`, for
        `q`, `[batch_size, heads, seq_len, dim_head]`, and `key_len` keys of which the last `seq_len`
        are the queries' own positions.
        """
        # `[heads, key_len, dim_head]`, row $t$ for distance $\text{key\_len} - 1 - t$.
        r = self.position_keys(key_len, q.device)
        # $(q_i + v)^\top r_\delta$ against every distance. The position keys are the same for the whole
        # batch, so the batch joins the queries and the product runs once per head:
        # `[heads, batch_size * seq_len, dim_head] @ [heads, dim_head, key_len]`, then back to
        # `[batch_size, heads, seq_len, key_len]`.
        batch_size, heads, seq_len, dim_head = q.shape
        q_v = (q + self.v[:, None]).transpose(0, 1).reshape(heads, batch_size * seq_len, dim_head)
        position = (q_v @ r.transpose(1, 2)).view(heads, batch_size, seq_len, key_len).transpose(0, 1)
        # Column $j$ must hold distance $m + i - j$: move each row into place.
        return relative_shift(position)

    def start_steps(self, k: torch.Tensor, v: torch.Tensor, size: int) -> 'AttentionStep':
        r"""
        This attention prepared for generating one position at a time (see
        [`AttentionStep`](#AttentionStep)), starting from the keys and values of a prompt, `k` and `v`,
        each `[batch_size, heads, n, dim_head]`, and keeping a window of the newest `size` positions.
        """
        return AttentionStep(self, k, v, size)


class AttentionStep:
    r"""
    Relative attention for **one new position at a time, without gradients**: the inner loop of
    generation. Calling it with `z`, `[batch_size, dim]`, the new position's (normalised) input,
    adds the position's key and value to a [window](../mha.html#KVWindow) of the newest `size` ones
    and returns what `attend` gives for the new query over the window and itself, `[batch_size, dim]`
    (the tests check it). The length-one sequence dimension is left out throughout.

    With one position per call, every tensor operation does little arithmetic and most of the time
    goes to each operation's fixed cost: Python, PyTorch's dispatch, module calls. So this is the
    same arithmetic in as few operations as the special case allows:

    * $W_q$, $W_{k,E}$ and $W_v$ are stacked into one matrix, and $1/\sqrt{d_k}$ is folded into $W_q$,
      $u$ and $v$: one product and one addition give $(q + u)/\sqrt{d_k}$, $(q + v)/\sqrt{d_k}$, $k$ and $v$;
    * the single query sits at the last position: it may see every key, so there is no mask, and
      its distances to the keys, $n - 1, \dots, 1, 0$ in key order, are already the order of the
      position table, so there is no relative shift either: the position term is one product;
    * the parameters are gathered once, as plain tensors, when generation starts (so this object
      belongs to one generation: it uses the weights of the moment it was made).
    """

    @torch.no_grad()
    def __init__(self, attn: RelativeMultiHeadAttention, k: torch.Tensor, v: torch.Tensor, size: int):
        self.heads, self.dim_head = attn.heads, attn.dim_head
        self.window = KVWindow(k, v, size)
        # $[W_q / \sqrt{d_k};\, W_{k,E};\, W_v]$, `[3 * heads * dim_head, dim]`
        self.W_qkv = torch.cat([attn.to_q.weight * attn.scale, attn.to_kv.weight])
        # $[u; v] / \sqrt{d_k}$, `[2, 1, heads, 1, dim_head]`, to broadcast against `[batch_size, heads, 1, dim_head]`
        self.uv = (torch.stack([attn.u, attn.v]) * attn.scale)[:, None, :, None, :]
        # $r_\delta$ for the distances from `size` down to 0, `[heads, size + 1, dim_head]`
        self.r = attn.position_table(size + 1, k.device)
        # $W^O$ and its bias
        self.W_o, self.b_o = attn.to_out.weight, attn.to_out.bias

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError("AttentionStep computes without gradients (it is for generation): call it "
                               "under torch.no_grad(), or train with the attention module itself")
        batch_size = z.shape[0]
        # `[batch_size, 3 * heads * dim_head]`, read as `[batch_size, 3, heads, 1, dim_head]`.
        qkv = F.linear(z, self.W_qkv).view(batch_size, 3, self.heads, 1, self.dim_head)
        # Keys and values over the window and the new position, `[batch_size, heads, n, dim_head]` each.
        k, v = self.window.append(qkv[:, 1:].transpose(0, 1))
        # $(q + u)/\sqrt{d_k}$ and $(q + v)/\sqrt{d_k}$, each `[batch_size, heads, 1, dim_head]`.
        q_u, q_v = (qkv[:, 0] + self.uv).unbind(0)
        # The position keys of distances $n - 1 \dots 0$, `[heads, n, dim_head]`.
        r = self.r[:, self.r.shape[1] - k.shape[2]:]
        # Terms (b) + (d) per head: `[heads, batch_size, dim_head] @ [heads, dim_head, n]`, then read as
        # `[batch_size, heads, 1, n]`, the additive term of the fused attention.
        position = torch.bmm(q_v.squeeze(2).transpose(0, 1), r.transpose(1, 2)).transpose(0, 1).unsqueeze(2)
        # Terms (a) + (c) inside the kernel; the scale is already applied. `[batch_size, heads, 1, dim_head]`
        out = F.scaled_dot_product_attention(q_u, k, v, attn_mask=position, scale=1.0)
        # `[batch_size, heads, 1, dim_head]` → `[batch_size, heads * dim_head]`, then $W^O$.
        return F.linear(out.reshape(batch_size, self.heads * self.dim_head), self.W_o, self.b_o)
