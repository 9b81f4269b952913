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
        r"""
        This network as plain tensors and a function, for loops that call it once per token (see
        below). Works with gradients too: the transposes are part of the graph, made once.
        """
        return PlainFeedForward(self.w1.weight.t(), self.w1.bias, self.activation,
                                None if self.v is None else (self.v.weight.t(), self.v.bias),
                                self.w2.weight.t(), self.w2.bias)


def affine(x: torch.Tensor, W: torch.Tensor, b: Optional[torch.Tensor]) -> torch.Tensor:
    r"""$x W + b$ for `x` `[n, in]` and an already transposed `W`, `[in, out]`: one `torch.addmm`."""
    return torch.mm(x, W) if b is None else torch.addmm(b, x, W)


class PlainFeedForward(NamedTuple):
    r"""
    The same network held as plain tensors, with no dropout. A generator that runs one token at a
    time calls it thousands of times on tiny tensors, and there the fixed cost of every module call
    and every extra operation is a large part of the time. This computes the same numbers with the
    weights transposed once, up front: `F.linear` transposes its weight at every call, and with
    gradients that transpose is one more step for autograd to record and to run backwards. It holds
    the parameters themselves (transposed views), not copies. (The [Feedback Transformer](feedback/step.html)'s
    training step goes further and writes its whole layer step, backward included, by hand.)
    """
    # $W_1^\top$, `[dim, d_ff]`, and $b_1$
    W_1: torch.Tensor
    b_1: Optional[torch.Tensor]
    activation: Callable[[torch.Tensor], torch.Tensor]
    # $V^\top$ and $c$ of the gate, or `None`
    gate: Optional[Tuple[torch.Tensor, Optional[torch.Tensor]]]
    # $W_2^\top$, `[d_ff, dim]`, and $b_2$
    W_2: torch.Tensor
    b_2: Optional[torch.Tensor]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        r"""`x` is one position per sequence, `[batch_size, dim]`; so is the result."""
        hidden = self.activation(affine(x, self.W_1, self.b_1))
        if self.gate is not None:
            hidden = hidden * affine(x, *self.gate)
        return affine(hidden, self.W_2, self.b_2)
