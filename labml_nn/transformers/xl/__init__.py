r"""
---
title: Transformer-XL
summary: A transformer language model that carries a memory of earlier segments and attends to it with relative positions.
---

# Transformer-XL

A plain transformer language model is trained on fixed-length segments and sees nothing before the
start of its segment: its context is cut into pieces, and at evaluation it must recompute every
position for every new token. Dai et al.'s Transformer-XL
([arXiv:1901.02860](https://arxiv.org/abs/1901.02860)) keeps the hidden states that each layer computed
for the previous segment and lets the next segment attend to them. For segment $\tau + 1$, layer $l$
attends over

$$\tilde{h}^{l-1}_{\tau+1} = \big[\operatorname{SG}(m^{l-1}_{\tau}) \circ h^{l-1}_{\tau+1}\big]$$

where $m^{l-1}_\tau$ is the memory of layer $l$'s input, the last `mem_len` positions, $\circ$
concatenates along the sequence and $\operatorname{SG}$ stops the gradient. The queries come from
the segment alone; keys and values come from memory and segment. Since layer $l$'s memory was itself
computed by attending to older memory, the reach grows with depth: up to about
$N \times L$ positions back, with $N$ layers and memory length $L$.

Reusing states makes absolute positions meaningless, so the layers use
[relative multi-head attention](relative_mha.html). This page holds what the paper adds: the memory
update, a layer, and the model's pass through its layers. Everything around them (the embedding, the
read-out, the checks, generation, the FLOP count and the model files) is the
[memory language model](../lm.html) every model here shares; the model readers use is
`TransformerXL`:

```python
from labml_nn.transformers.xl import TransformerXL

model = TransformerXL(num_tokens=65, dim=128, depth=4, heads=4, mem_len=32)
logits, memory = model(x1, return_memory=True)               # x1: [batch_size, seq_len]
logits, memory = model(x2, memory=memory, return_memory=True)  # x2 continues x1
text = model.generate(prompt, length=100, top_k=1)
```

| symbol | meaning | code | shape |
|---|---|---|---|
| $h^{l-1}_{\tau+1}$ | input of layer $l$ for the current segment | `h` | `[batch_size, seq_len, dim]` |
| $m^{l-1}_\tau$ | memory of layer $l$ (layers count from 1, lists from 0) | `memory[l - 1]` | `[batch_size, mem_len, dim]` |
| $L$ | memory length | `mem_len` | |

## Adaptive span

`span_ramp` $= \rho$ gives every head of every layer the [adaptive attention span](../adaptive_span.html) of
Sukhbaatar et al., which is not part of this paper: a learned span $zL$ over the memory of $L$ positions, each
head's weights masked beyond it and renormalised. A Transformer-XL query sees its own position, so the mask
counts distances from there ($\delta_0 = 0$). The memory still keeps $L$ positions, so that a span may grow
again, but each layer reads only the newest $P_{span} - 1$ of them (`TransformerXLLayer.forward`): the
older ones would get no weight. The span loss and the clamp are the [shell's](../lm.html#MemoryLM.span_loss),
`--span-ramp`, `--span-loss` the [experiment's](experiment.html); the [fast generation](generation.html)
applies the same mask.

## What differs from the authors' code

The authors' PyTorch code ([kimiyoung/transformer-xl](https://github.com/kimiyoung/transformer-xl):
`mem_transformer.py`, `train.py` and, for the enwik8 model, `run_enwik8_base.sh`) computes the same memory
and the same relative attention as this page. Around them, the two differ in these points:

| | their code | here, by default | the option that gives theirs |
|---|---|---|---|
| feed-forward activation | ReLU | GELU | `activation="relu"` |
| norm placement | post-norm: $\operatorname{LN}(h + \operatorname{block}(h))$ | pre-norm: $h + \operatorname{block}(\operatorname{LN}(h))$ | none (1) |
| final LayerNorm | none | before the read-out | none (1) |
| bias of $W_o$ | none | yes | none (2) |
| embedding | scaled by $\sqrt{d}$ | not scaled | none (3) |
| read-out | tied to the embedding | its own weights | none (3) |
| $\mathbf{u}$, $\mathbf{v}$ | one pair for all layers | a pair per layer | none (4) |
| dropout | one rate on the embeddings, position encodings, attention and feed-forward outputs, feed-forward hidden layer and last output; `dropatt` on the attention weights | on the attention weights (`attn_dropout`) and the feed-forward hidden layer (`ff_dropout`) | `attn_dropout` for `dropatt`; the rest: none |
| initialisation | weights, $\mathbf{u}$, $\mathbf{v}$ from N(0, 0.02); LayerNorm gains N(1, 0.02) | PyTorch's defaults; $\mathbf{u} = \mathbf{v} = 0$ | none |
| first memory | empty | empty | (the same) |
| evaluation | `same_length`: every query sees $L$ keys | each query sees the memory and the segment up to itself | none (5) |
| optimiser | Adam, $\beta_2 = 0.999$, no weight decay | AdamW, $\beta_2 = 0.99$ | `--weight-decay 0`; $\beta_2$: none |

Why there is no option for the rest: (1) every layer of this site is pre-norm, and the
[fast generation](generation.html) folds the pre-norm into the projections after it; a pre-norm stack's
output is not normalised, hence the final LayerNorm. (2) The bias belongs to the
[multi-head attention](../mha.html) all three models share ($d$ numbers per layer). (3) The embedding and
read-out are the [memory language model](../lm.html)'s, shared by the three models (untied and unscaled, as
in the Feedback Transformer's released code). (4) Per-layer biases are what the authors' TensorFlow code
gives with its `untie_r` flag. (5) Not implemented; `--eval-seq-len`, `--eval-mem-len` and `--clamp-len` of
the [evaluation](../../experiments/evaluate.html) give the rest of their evaluation. The
[enwik8 presets](../../experiments/presets.html) use their ReLU. At equal sizes this model has
$V d + N(d + 2 H d_h) - 2 H d_h + 2d$ more parameters than theirs, for a vocabulary of $V$: the untied
read-out, the biases of $W_o$, the per-layer $\mathbf{u}$, $\mathbf{v}$ and the final LayerNorm.
"""

from typing import Optional, Tuple

import torch
from torch import nn

from labml_nn.transformers.adaptive_span import AdaptiveSpan
from labml_nn.transformers.feed_forward import FeedForward
from labml_nn.transformers.lm import MemoryLM
from labml_nn.transformers.mha import MultiHeadAttention
from labml_nn.transformers.xl.relative_mha import RelativeMultiHeadAttention, sinusoidal_embeddings


def append_memory(mem: Optional[torch.Tensor], new: torch.Tensor, mem_len: int) -> torch.Tensor:
    r"""
    The memory update: append the positions `new`, `[batch_size, seq_len, dim]`, to `mem`,
    `[batch_size, m, dim]`, keep the newest `mem_len` and cut them from the graph. The result is
    `[batch_size, min(m + seq_len, mem_len), dim]`.

    Detaching is what makes the memory a *stop-gradient* $\operatorname{SG}(\cdot)$ in the equation above:
    gradients never flow into the previous segment.
    """
    full = new if mem is None else torch.cat([mem, new], dim=1)
    return full[:, full.shape[1] - min(mem_len, full.shape[1]):].detach()


class TransformerXLLayer(nn.Module):
    r"""
    One layer: relative attention over $[\operatorname{SG}(m) \circ h]$, then the feed-forward network,
    each as a pre-norm residual block. Maps `[batch_size, seq_len, dim]` to the same shape.
    """

    def __init__(self, dim: int, heads: int, dim_head: Optional[int], d_ff: int, attn_dropout: float = 0.0,
                 ff_dropout: float = 0.0, ff_glu: bool = False, relative: bool = True, activation: str = "gelu"):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        # `relative=False` is the absolute-position ablation (see `TransformerXL`): plain attention.
        self.attn = (RelativeMultiHeadAttention(dim, heads, dim_head, attn_dropout) if relative
                     else MultiHeadAttention(dim, heads, dim_head, attn_dropout, bias=False))
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, d_ff, ff_dropout, activation, glu=ff_glu)

    def forward(self, h: torch.Tensor, mem: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""
        `h` is this layer's input for the segment, `[batch_size, seq_len, dim]`; `mem` is the memory,
        `[batch_size, mem_len, dim]`, of this layer's input for earlier positions (already detached).
        """
        if mem is not None and self.attn.span is not None:
            # [Adaptive span](../adaptive_span.html) trimming: the segment's first query needs the newest
            # $P_{span} - 1$ memory positions and itself; the older ones would all get $\chi = 0$.
            seq_len = h.shape[1]
            keep = self.attn.span.trimmed_key_len(self.attn.span_ratio, mem.shape[1] + seq_len, seq_len) - seq_len
            mem = mem[:, mem.shape[1] - keep:]
        return self.forward_cached(h, None if mem is None else self.memory_keys_values(mem))[0]

    def memory_keys_values(self, mem: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""
        Keys and values of the memory $m$, `[batch_size, mem_len, dim]`, each as
        `[batch_size, heads, mem_len, dim_head]`.

        The memory holds layer *inputs*, so it goes through the same pre-norm as the segment: the keys
        of a remembered position are exactly what they were when that position was the segment (with
        the weights of now). They are computed apart from the segment's because the memory is a
        constant: autograd then skips the gradient with respect to it, a third of the projection's
        backward work when memory and segment are the same length.
        """
        return self.attn.keys_values(self.attn_norm(mem))

    def forward_cached(self, h: torch.Tensor, cache: Optional[Tuple[torch.Tensor, torch.Tensor]]
                       ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        r"""
        The layer given the keys and values of its memory, `cache`, rather than the memory itself: attention
        over `[cache, h]`, then the feed-forward network. Returns the new `h`, `[batch_size, seq_len, dim]`,
        and the cache extended by the segment's keys and values, which the
        [fast generator](generation.html) keeps for the prompt.
        """
        z = self.attn_norm(h)
        k, v = self.attn.keys_values(z)
        if cache is not None:
            # `[batch_size, heads, cached_len + seq_len, dim_head]`
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        h = h + self.attn.attend(self.attn.queries(z), k, v)
        h = h + self.ff(self.ff_norm(h))
        return h, (k, v)


class TransformerXL(MemoryLM, paper_url="https://arxiv.org/abs/1901.02860"):
    r"""
    The Transformer-XL language model: `depth` [layers](#TransformerXLLayer), each with its own memory, in
    the [memory language model](../lm.html#MemoryLM) shell (embedding, final norm, logits, checks,
    generation).

    * `model(x, memory=m, return_memory=True)` → `(logits, new_memory)`, where `new_memory` is a list of
      `depth` detached tensors `[batch_size, mem_len, dim]` (fewer positions until `mem_len` have
      been seen). `memory=None` starts from an empty memory.
    * `mem_len=0` gives the same model without memory: a baseline of the same size.
    * `activation="relu"` is the feed-forward network of the authors' code; GELU is the default (the
      [differences](#what-differs-from-the-authors-code) from their code).
    * `positions="absolute"` is the **ablation the paper argues against** (its section 3.3): the sinusoidal
      encoding of each position *within its segment* added to the embeddings, and plain attention. With
      memory, the remembered positions and the segment's share the same encodings, $0 \dots n - 1$, so a
      layer cannot tell them apart by position. It exists to measure that ([results](readme.html)), and
      generates through its own forward pass only.
    * `span_ramp` turns on an [adaptive span](#adaptive-span) with a ramp of that many keys (`None`: off),
      `span_trim_step` is its trim step $s_{trim}$ and `span_init` the span ratio every head starts from.
    """

    def __init__(self, *, num_tokens: int, dim: int, depth: int, heads: int, dim_head: Optional[int] = None,
                 mem_len: int, ff_mult: int = 4, attn_dropout: float = 0.0, ff_dropout: float = 0.0,
                 ff_glu: bool = False, positions: str = "relative", activation: str = "gelu",
                 span_ramp: Optional[float] = None, span_trim_step: int = 64, span_init: float = 0.0):
        if positions not in ("relative", "absolute"):
            raise ValueError(f"positions must be 'relative' or 'absolute', got {positions!r}")
        if positions == "absolute" and dim % 2 != 0:
            raise ValueError(f"the sinusoidal encoding of positions needs an even dim, got {dim}")
        relative = positions == "relative"
        layers = [TransformerXLLayer(dim, heads, dim_head, dim * ff_mult, attn_dropout, ff_dropout, ff_glu, relative,
                                     activation) for _ in range(depth)]
        if span_ramp is not None:
            if mem_len < 1:
                raise ValueError(f"an adaptive span is a share of the memory: span_ramp needs mem_len >= 1, got {mem_len}")
            # The span's $L$, $\rho$ and $s_{trim}$, the same for every layer; each layer has its own ratios $z$.
            span = AdaptiveSpan(mem_len, span_ramp, span_trim_step)
            for layer in layers:
                layer.attn.span, layer.attn.span_ratio = span, span.new_span_ratio(heads, span_init)
        super().__init__(num_tokens, dim, mem_len, layers)
        self.positions = positions
        self.generation_page = "labml_nn.transformers.xl.generation" if relative else None

    def forward_layers(self, h: torch.Tensor, memory: Optional[list], return_memory: bool) -> tuple:
        r"""
        $h^0$, `[batch_size, seq_len, dim]`, through the layers. Layer `layers[l]` (the paper's layer
        $l + 1$) attends over its memory `memory[l]`, $m^l$, and the segment; its new memory is its input
        $h^l$: the old memory followed by this segment's $h^l$, cut to the newest `mem_len` positions and
        detached.
        """
        if self.positions == "absolute":
            h = h + sinusoidal_embeddings(torch.arange(h.shape[1], device=h.device), self.dim).to(h.dtype)
        new_memory = []
        for l, layer in enumerate(self.layers):
            mem = None if memory is None else memory[l]
            if return_memory:
                new_memory.append(append_memory(mem, h, self.mem_len))
            h = layer(h, mem)
        return h, new_memory
