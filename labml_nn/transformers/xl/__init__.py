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
$\text{depth} \times \text{mem\_len}$ positions back.

Reusing states makes absolute positions meaningless, so the layers use
[relative multi-head attention](relative_mha.html). This page puts the pieces together:
a layer, the stack with a memory per layer, and the language model readers use:

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
| $m^{l-1}_\tau$ | memory of layer $l$ | `memory[l]` | `[batch_size, mem_len, dim]` |
| $L$ | memory length | `mem_len` | |
"""

from typing import List, Optional, Tuple, Union

import torch
from torch import nn

from labml_nn.transformers.feed_forward import FeedForward
from labml_nn.transformers.hub import Pretrained
from labml_nn.transformers.lm import append_memory, check_layer_memory, check_tokens, generate_with_memory, head_size
from labml_nn.transformers.mha import MultiHeadAttention
from labml_nn.transformers.xl.relative_mha import RelativeMultiHeadAttention, sinusoidal_embeddings

# A key/value cache for one layer: keys and values, each `[batch_size, heads, cached_len, dim_head]`.
KVCache = Tuple[torch.Tensor, torch.Tensor]


class TransformerXLLayer(nn.Module):
    r"""
    One layer: relative attention over $[\operatorname{SG}(m) \circ h]$, then the feed-forward network,
    each as a pre-norm residual block. Maps `[batch_size, seq_len, dim]` to the same shape.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, d_ff: int, attn_dropout: float = 0.0,
                 ff_dropout: float = 0.0, ff_glu: bool = False, relative: bool = True):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        # `relative=False` is the absolute-position ablation (see `TransformerXL`): plain attention.
        self.attn = (RelativeMultiHeadAttention(dim, heads, dim_head, attn_dropout) if relative
                     else MultiHeadAttention(dim, heads, dim_head, attn_dropout, bias=False))
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, d_ff, ff_dropout, glu=ff_glu)

    def forward(self, h: torch.Tensor, mem: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""
        `h` is this layer's input for the segment, `[batch_size, seq_len, dim]`; `mem` is the memory,
        `[batch_size, mem_len, dim]`, of this layer's input for earlier positions (already detached).
        """
        return self.forward_cached(h, None if mem is None else self.memory_keys_values(mem))[0]

    def memory_keys_values(self, mem: torch.Tensor) -> KVCache:
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

    def forward_cached(self, h: torch.Tensor, cache: Optional[KVCache]) -> Tuple[torch.Tensor, KVCache]:
        r"""
        The layer given the keys and values of its memory rather than the memory itself: attention
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


class TransformerXL(nn.Module, Pretrained, paper_url="https://arxiv.org/abs/1901.02860"):
    r"""
    The Transformer-XL language model: token embedding, `depth` [layers](#TransformerXLLayer) each with
    its own memory, a final layer norm and the output projection.

    * `model(x)` → logits `[batch_size, seq_len, num_tokens]` for token ids `x`, `[batch_size, seq_len]`;
    * `model(x, memory=m, return_memory=True)` → `(logits, new_memory)`, where `new_memory` is a list of
      `depth` detached tensors `[batch_size, mem_len, dim]` (fewer positions until `mem_len` have
      been seen). `memory=None` starts from an empty memory.
    * `mem_len=0` gives the same model without memory: a baseline of the same size.
    * `positions="absolute"` is the **ablation the paper argues against** (its section 3.3): the sinusoidal
      encoding of each position *within its segment* added to the embeddings, and plain attention. With
      memory, the remembered positions and the segment's share the same encodings, $0 \dots n - 1$, so a
      layer cannot tell them apart by position. It exists to measure that ([results](readme.html)), and
      generates through its own forward pass only.
    """

    def __init__(self, *, num_tokens: int, dim: int, depth: int, heads: int, dim_head: Optional[int] = None,
                 mem_len: int, ff_mult: int = 4, attn_dropout: float = 0.0, ff_dropout: float = 0.0,
                 ff_glu: bool = False, positions: str = "relative"):
        super().__init__()
        dim_head = head_size(dim, heads, dim_head)
        if mem_len < 0:
            raise ValueError(f"mem_len must be >= 0, got {mem_len}")
        if positions not in ("relative", "absolute"):
            raise ValueError(f"positions must be 'relative' or 'absolute', got {positions!r}")
        if positions == "absolute" and dim % 2 != 0:
            raise ValueError(f"the sinusoidal encoding of positions needs an even dim, got {dim}")
        self.num_tokens, self.dim, self.depth, self.mem_len = num_tokens, dim, depth, mem_len
        self.positions = positions
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.layers = nn.ModuleList([
            TransformerXLLayer(dim, heads, dim_head, dim * ff_mult, attn_dropout, ff_dropout, ff_glu,
                               relative=positions == "relative")
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens)

    def forward(self, x: torch.Tensor, memory: Optional[List[torch.Tensor]] = None,
                return_memory: bool = False
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, List[torch.Tensor]]]:
        x = check_tokens(x, self.num_tokens)
        if memory is not None:
            memory = check_layer_memory(memory, self.depth, x.shape[0], self.token_emb.weight)
        # $h^0$, `[batch_size, seq_len, dim]`. No position embedding: positions enter only as distances,
        # inside attention (except in the absolute-position ablation).
        h = self.token_emb(x)
        if self.positions == "absolute":
            h = h + sinusoidal_embeddings(torch.arange(x.shape[1], device=x.device), self.dim).to(h.dtype)
        new_memory = []
        for l, layer in enumerate(self.layers):
            mem = memory[l] if memory is not None else None
            # The new memory of layer $l$ is its input: the old memory followed by this segment's
            # $h^{l-1}$, cut to the newest `mem_len` positions and detached.
            if return_memory:
                new_memory.append(append_memory(mem, h, self.mem_len))
            h = layer(h, mem)
        logits = self.to_logits(self.norm(h))
        return (logits, new_memory) if return_memory else logits

    def memory_state(self, memory):
        """The memory as tensors in plain lists (what a checkpoint stores); it already is one."""
        return memory

    def load_memory_state(self, state):
        """The memory `memory_state` gave."""
        return state

    def flops_per_token(self, seq_len: int) -> float:
        r"""
        The training FLOPs per token of segments of $n$ = `seq_len` with a full memory of $L$: three times
        the forward pass (the backward pass costs about twice the forward), which counts 2 FLOPs per
        multiply-add. Per layer: the query and output projections and the feed-forward network once per
        token; the keys and values of the segment, and of the memory, which is projected again every
        segment ($L / n$ positions per token); the content scores, the position scores and the weighted
        values over $L + (n + 1) / 2$ keys on average; the position keys $W_{k,R} R$ of $L + n$ distances
        once per segment. Then the output layer. Used for the trainer's model FLOP utilisation.
        """
        n, L = seq_len, self.mem_len
        layer = self.layers[0]
        attn, ff = layer.attn, layer.ff
        width = attn.heads * attn.dim_head
        relative = self.positions == "relative"
        matmuls = (attn.to_q.weight.numel() + attn.to_out.weight.numel() + attn.to_kv.weight.numel() * (1 + L / n)
                   + (attn.to_r.weight.numel() * (L + n) / n if relative else 0)
                   + sum(m.weight.numel() for m in (ff.w1, ff.v, ff.w2) if m is not None))
        attention = (3 if relative else 2) * (L + (n + 1) / 2) * width
        forward = 2 * (self.depth * (matmuls + attention) + self.to_logits.weight.numel())
        return 3 * forward

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, length: int, temperature: float = 1.0,
                 top_k: Optional[int] = None, cached: bool = True) -> torch.Tensor:
        r"""
        Continue `prompt`, `[batch_size, prompt_len]`, by `length` tokens; returns
        `[batch_size, prompt_len + length]`.

        The prompt is run as one segment, then each new token as a segment of one with the memory of
        the last `mem_len` positions, which is how the paper evaluates: `cached=False` runs exactly that,
        calling this model token by token with `memory=`
        ([`generate_with_memory`](../lm.html#generate_with_memory)). By default (`cached=True`) the
        [fast generation page](generation.html) computes the same: it keeps the keys and values of the
        memory instead of recomputing them for every token, and runs each new position through each layer
        in a few plain tensor operations.
        """
        if cached and self.positions == "relative":
            from labml_nn.transformers.xl.generation import generate_cached
            return generate_cached(self, prompt, length, temperature, top_k)
        return generate_with_memory(self, prompt, length, temperature, top_k)
