r"""
---
title: Position-wise feed-forward network
summary: The two-layer network each transformer layer applies to every position, with a choice of activation and the gated (GLU) variants.
---

# Position-wise feed-forward network

After attention has mixed information *between* positions, every layer applies the same small
network to each position on its own (Vaswani et al., [Attention Is All You Need](https://arxiv.org/abs/1706.03762)):

$$\operatorname{FFN}(x) = f(x W_1 + b_1)\, W_2 + b_2$$

with $W_1$ of shape $d_{model} \times d_{ff}$ (usually $d_{ff} = 4\, d_{model}$) and an activation $f$:
ReLU in the original paper, GELU in most models since.

Shazeer's [GLU variants](https://arxiv.org/abs/2002.05202) multiply the activated branch by a second,
linear one:

$$\operatorname{FFN}_{GLU}(x) = \big(f(x W_1) \otimes x V\big)\, W_2$$

With $f$ = sigmoid this is GLU, with ReLU *ReGLU*, with GELU *GEGLU* and with SiLU (Swish) *SwiGLU*.
The gated forms train to lower perplexity at the same number of parameters; pass `glu=True`.

| symbol | meaning | code | shape |
|---|---|---|---|
| $x$ | input | `x` | `[batch_size, seq_len, dim]` |
| $d_{ff}$ | hidden size | `d_ff` | |
| $f$ | activation | `activation` | |
| $W_1$, $V$ | first layer and gate | `w1`, `v` | `[dim, d_ff]` |
| $W_2$ | second layer | `w2` | `[d_ff, dim]` |
"""

from typing import Callable, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

# The activations a caller can name; `sigmoid` with `glu=True` is Dauphin et al.'s original GLU.
# Plain functions rather than modules: they hold no parameters, and a generator that runs one token
# at a time pays for every module call.
ACTIVATIONS = {
    'relu': F.relu,
    'gelu': F.gelu,
    'silu': F.silu,
    'sigmoid': torch.sigmoid,
}


class FeedForward(nn.Module):
    r"""
    $\operatorname{FFN}(x) = f(x W_1 + b_1) W_2 + b_2$, or the gated
    $\big(f(x W_1 + b_1) \otimes (x V + c)\big) W_2 + b_2$ with `glu=True`.
    Maps `[batch_size, seq_len, dim]` to the same shape.
    """

    def __init__(self, dim: int, d_ff: int, dropout: float = 0.0, activation: str = 'gelu',
                 glu: bool = False, bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.w1 = nn.Linear(dim, d_ff, bias=bias)
        self.activation = ACTIVATIONS[activation]
        # The gate's linear branch $x V + c$; absent in the plain network.
        self.v = nn.Linear(dim, d_ff, bias=bias) if glu else None
        # Dropout on the hidden layer, as in the original Transformer.
        self.dropout = nn.Dropout(dropout)
        self.w2 = nn.Linear(d_ff, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # `[batch_size, seq_len, d_ff]`
        hidden = self.activation(self.w1(x))
        if self.v is not None:
            hidden = hidden * self.v(x)
        if self.training and self.dropout.p > 0:
            hidden = self.dropout(hidden)
        # back to `[batch_size, seq_len, dim]`
        return self.w2(hidden)

    def plain(self) -> 'PlainFeedForward':
        r"""This network as plain tensors and a function, for a generator's inner loop (see below)."""
        return PlainFeedForward(self.w1.weight, self.w1.bias, self.activation,
                                None if self.v is None else (self.v.weight, self.v.bias),
                                self.w2.weight, self.w2.bias)


class PlainFeedForward(NamedTuple):
    r"""
    The same network held as plain tensors, with no dropout (evaluation). A generator that runs one
    token at a time calls it thousands of times on tiny tensors, where the fixed cost of each module
    call is a large part of the time; this computes the same numbers without module calls. It holds
    the parameters themselves, not copies.
    """
    W_1: torch.Tensor
    b_1: Optional[torch.Tensor]
    activation: Callable[[torch.Tensor], torch.Tensor]
    # $V$ and $c$ of the gate, or `None`
    gate: Optional[Tuple[torch.Tensor, Optional[torch.Tensor]]]
    W_2: torch.Tensor
    b_2: Optional[torch.Tensor]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(F.linear(x, self.W_1, self.b_1))
        if self.gate is not None:
            hidden = hidden * F.linear(x, *self.gate)
        return F.linear(hidden, self.W_2, self.b_2)
