r"""
---
title: Position-wise feed-forward network
summary: The two-layer network each transformer layer applies to every position, with a choice of activation and the gated (GLU) variants.
---

# Position-wise feed-forward network

After attention has mixed information *between* positions, every layer applies the same small
network to each position on its own (Vaswani et al., [Attention Is All You Need](https://arxiv.org/abs/1706.03762)):

$$\operatorname{FFN}(x) = \phi(x W_1 + b_1)\, W_2 + b_2$$

with $W_1$ of shape $d \times d_{ff}$ (usually $d_{ff} = 4\, d$) and an activation $\phi$:
ReLU in the original paper, GELU in most models since.

Shazeer's [GLU variants](https://arxiv.org/abs/2002.05202) multiply the activated branch by a second,
linear one:

$$\operatorname{FFN}_{GLU}(x) = \big(\phi(x W_1) \otimes x V\big)\, W_2$$

With $\phi$ = sigmoid this is GLU, with ReLU *ReGLU*, with GELU *GEGLU* and with SiLU (Swish) *SwiGLU*.
The gated forms train to lower perplexity at the same number of parameters; pass `glu=True`.

| symbol | meaning | code | shape |
|---|---|---|---|
| $x$ | input | `x` | `[batch_size, seq_len, dim]` |
| $d_{ff}$ | hidden size | `d_ff` | |
| $\phi$ | activation | `activation` | |
| $W_1$, $V$ | first layer and gate | `w1`, `v` | `[dim, d_ff]` |
| $W_2$ | second layer | `w2` | `[d_ff, dim]` |
"""

import torch
import torch.nn.functional as F
from torch import nn

# The activations a caller can name; `sigmoid` with `glu=True` is Dauphin et al.'s original GLU.
# Plain functions rather than modules: they hold no parameters.
ACTIVATIONS = {
    'relu': F.relu,
    'gelu': F.gelu,
    'silu': F.silu,
    'sigmoid': torch.sigmoid,
}


class FeedForward(nn.Module):
    r"""
    $\operatorname{FFN}(x) = \phi(x W_1 + b_1) W_2 + b_2$, or the gated
    $\big(\phi(x W_1 + b_1) \otimes (x V + c)\big) W_2 + b_2$ with `glu=True`.
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
        hidden = self.dropout(hidden)
        # back to `[batch_size, seq_len, dim]`
        return self.w2(hidden)
