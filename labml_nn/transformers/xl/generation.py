r"""
---
title: Generating one token at a time, fast
summary: Transformer-XL's generation with the keys and values of the memory kept in a sliding cache, each layer's step as a few plain tensor operations: the same tokens as the readable loop, without recomputing the memory.
---

# Generating one token at a time, fast

[Transformer-XL](index.html) generates the way it evaluates: the prompt is read in segments, then every
new token is a segment of one, attending to the memory of the last $L$ positions of every layer.
Written with the model itself (`model.generate(..., cached=False)`, the
[memory language model](../lm.html#MemoryLM.generate)'s reference), each new token recomputes the keys and
values of the whole memory in every layer. They never change: a position's keys and values depend only on
its own hidden state. This page keeps them, and runs each new position through each layer as a
[`CachedLayer`](#CachedLayer): the same arithmetic as the layer, in as few operations as one position
allows, because at one position per sequence the fixed cost of each operation, not its arithmetic, is
most of the time.

* the keys and values of the newest $L + 1$ positions (the memory and the new position itself) sit in
  a [sliding cache](../one_token.html#SlidingKV): one copy per new position;
* the pre-norm's $\gamma, \beta$ and the scale $1/\sqrt{d_h}$ are folded into one matrix that makes the
  query, the key and the value in one product ([folding](../one_token.html#fold_norm)); the same for
  the feed-forward's pre-norm;
* the new query sits at the last position: it may see every key, so there is no mask, and its
  distances to the keys, $P - 1, \dots, 1, 0$ in key order, are already the order of the position
  keys, so there is no relative shift: the position term is one batched product, given to PyTorch's
  fused attention kernel as an additive mask. With an [adaptive span](../adaptive_span.html) the weights
  must be masked and renormalised after the softmax, so that layer writes the attention out instead.

The prompt's segments run through the layers themselves (`forward_cached`), in parallel, and leave the
keys and values of their newest $L$ positions in each layer's cache. `model.generate` uses this page by
default (`cached=True`); the [Compressive Transformer's generator](../compressive/generation.html) uses its
`CachedLayer` too. `tests/test_xl.py` checks that a `CachedLayer` equals the layer and that both paths pick
the same tokens. The benchmark (`python -m bench.xl`) measures this path against x-transformers' cached
generation: {report:xl.generate_vs_x_transformers} as many tokens per second at batch 8,
{report:xl.generate_vs_x_transformers_batch_1} at batch 1.

| symbol | meaning | code | shape |
|---|---|---|---|
| $h$ | the new position's layer input | `h` | `[batch_size, dim]` |
| $\hat{h}$ | $h$ normalised, without the affine | `z` | `[batch_size, dim]` |
| $q + \mathbf{u}$, $q + \mathbf{v}$ | the content and the position query, scaled | `q_u`, `q_v` | `[batch_size, heads, 1, dim_head]`, `[heads, batch_size, dim_head]` |
| $k_j, v_j$ | keys and values of the cached positions | `k`, `v` | `[batch_size, heads, P, dim_head]` |
| $r_\delta^\top$ | position keys, stacked as columns, distances `max_keys` $- 1 \dots 0$ | `r_t` | `[heads, dim_head, max_keys]` |
| $a$ | attention weights, written out with an adaptive span | `a` | `[batch_size, heads, 1, P]` |
"""

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from labml_nn.transformers.one_token import SlidingKV, fold_norm
from labml_nn.transformers.xl import TransformerXL, TransformerXLLayer


def affine(x: torch.Tensor, W: torch.Tensor, b: Optional[torch.Tensor]) -> torch.Tensor:
    r"""$x W + b$ for `x` `[n, in]` and an already transposed `W`, `[in, out]`: one `torch.addmm`."""
    return torch.mm(x, W) if b is None else torch.addmm(b, x, W)


class CachedLayer:
    r"""
    A [layer](index.html#TransformerXLLayer) for **one new position at a time, without gradients**:
    `step(h)` with `h`, `[batch_size, dim]`, returns what the layer computes for that position against the
    positions of `cache`, `[batch_size, dim]`, and appends the position's key and value to it. `cache` is
    a [`SlidingKV`](../one_token.html#SlidingKV), or any cache with its `append`, that holds at most
    `max_keys` positions after an append. Made from the layer's weights of the moment it is made (so it
    belongs to one generation).
    """

    @torch.no_grad()
    def __init__(self, layer: TransformerXLLayer, cache: SlidingKV, max_keys: int):
        if layer.training:
            raise RuntimeError("CachedLayer is for generation: put the model in evaluation mode (model.eval())")
        attn, ff = layer.attn, layer.ff
        self.cache, self.heads, self.dim_head = cache, attn.heads, attn.dim_head
        heads, dim_head = attn.heads, attn.dim_head
        # $[W_q / \sqrt{d_h} \,|\, W_k \,|\, W_v]$ as `[dim, 3 * heads * dim_head]`, the keys and values ordered
        # head by head as the cache stores them, with the pre-norm folded in.
        W_kv = attn.to_kv.weight.view(2, heads, dim_head, -1).transpose(0, 1).reshape(2 * heads * dim_head, -1)
        self.W_qkv, self.b_qkv = fold_norm(layer.attn_norm, torch.cat([attn.to_q.weight * attn.scale, W_kv]).t())
        # $\mathbf{u} / \sqrt{d_h}$ and $\mathbf{v} / \sqrt{d_h}$, `[heads, 1, dim_head]` each
        self.u, self.v = (attn.u * attn.scale)[:, None], (attn.v * attn.scale)[:, None]
        # $r_\delta^\top$ for the distances `max_keys` $- 1, \dots, 1, 0$, `[heads, dim_head, max_keys]`
        self.r_t = attn.position_keys(max_keys, attn.u.device).transpose(1, 2)
        self.W_o, self.b_o = attn.to_out.weight.t(), attn.to_out.bias
        # An [adaptive span](../adaptive_span.html), if the layer has one, and its ratios $z$, `[heads]`.
        self.span, self.span_ratio = attn.span, getattr(attn, "span_ratio", None)
        # The feed-forward network, its pre-norm folded into $W_1$ (and the gate's $V$).
        self.W_1, self.b_1 = fold_norm(layer.ff_norm, ff.w1.weight.t(), ff.w1.bias)
        self.gate = None if ff.v is None else fold_norm(layer.ff_norm, ff.v.weight.t(), ff.v.bias)
        self.activation = ff.activation
        self.W_2, self.b_2 = ff.w2.weight.t(), ff.w2.bias
        self.eps = (layer.attn_norm.eps, layer.ff_norm.eps)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError("CachedLayer computes without gradients (it is for generation): call it under "
                               "torch.no_grad(), or train with the layer itself")
        batch_size, dim = h.shape
        heads, dim_head = self.heads, self.dim_head
        # ### Attention block: $h + \operatorname{Attn}(\operatorname{LN}(h))$
        z = F.layer_norm(h, (dim,), eps=self.eps[0])
        # `[batch_size, 3 * heads * dim_head]`: the scaled query, then each head's key and value.
        qkv = affine(z, self.W_qkv, self.b_qkv)
        q = qkv[:, :heads * dim_head].view(batch_size, heads, dim_head)
        # The cache's window, this position included, `[batch_size, heads, P, dim_head]` each.
        k, v = self.cache.append(qkv[:, heads * dim_head:].view(batch_size, heads, 1, 2 * dim_head))
        P = k.shape[2]
        q_u = (q + self.u.transpose(0, 1)).unsqueeze(2)
        q_v = q.transpose(0, 1) + self.v
        # Terms (b) + (d): `[heads, batch_size, dim_head] @ [heads, dim_head, P]` against distances $P - 1 \dots 0$,
        # read as `[batch_size, heads, 1, P]`, the additive mask of the fused attention.
        position = torch.bmm(q_v, self.r_t[:, :, self.r_t.shape[2] - P:]).transpose(0, 1).unsqueeze(2)
        if self.span is None:
            # Terms (a) + (c) inside the kernel; the scale is already applied. `[batch_size, heads, 1, dim_head]`
            o = F.scaled_dot_product_attention(q_u, k, v, attn_mask=position, scale=1.0)
        else:
            # The span masks the weights themselves, so they are written out: $a$, `[batch_size, heads, 1, P]`,
            # masked and renormalised over the $P$ keys whose newest is this position ($\delta_0 = 0$).
            a = (q_u @ k.transpose(2, 3) + position).softmax(dim=-1)
            o = self.span(a, self.span_ratio) @ v
        h = h + affine(o.view(batch_size, heads * dim_head), self.W_o, self.b_o)
        # ### Feed-forward block: $h + \operatorname{FFN}(\operatorname{LN}(h))$
        z = F.layer_norm(h, (dim,), eps=self.eps[1])
        hidden = self.activation(affine(z, self.W_1, self.b_1))
        if self.gate is not None:
            hidden = hidden * affine(z, *self.gate)
        return h + affine(hidden, self.W_2, self.b_2)


class CachedReader:
    r"""
    What [`ForwardCalls`](../lm.html#ForwardCalls) computes, `reader(tokens)` → the logits of the last
    position, `[batch_size, num_tokens]`, with the keys and values kept. The prompt's segments go through the
    layers (`forward_cached`) against each layer's cached keys and values of the newest $L$ positions; the
    first single token turns each cache into a sliding cache and each layer into a
    [`CachedLayer`](#CachedLayer), which every later token runs through.
    """

    def __init__(self, model: TransformerXL):
        self.model = model
        # While the prompt is read: each layer's keys and values of its newest $L$ positions.
        self.caches: List[Optional[Tuple[torch.Tensor, torch.Tensor]]] = [None] * model.depth
        self.steps: List[CachedLayer] = []

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        model = self.model
        if self.steps or (tokens.shape[1] == 1 and self.caches[0] is not None):
            if not self.steps:
                self.steps = [CachedLayer(layer, self.sliding(*cache), model.mem_len + 1)
                              for layer, cache in zip(model.layers, self.caches)]
            # One position through every layer, `[batch_size, dim]`.
            h = model.token_emb(tokens[:, 0])
            for step in self.steps:
                h = step(h)
        else:
            # A segment of the prompt, in parallel: `[batch_size, seq_len, dim]`.
            h = model.token_emb(tokens)
            for l, layer in enumerate(model.layers):
                h, (k, v) = layer.forward_cached(h, self.caches[l])
                keep = k.shape[2] - min(model.mem_len, k.shape[2])
                self.caches[l] = (k[:, :, keep:], v[:, :, keep:])
            h = h[:, -1]
        # `[batch_size, num_tokens]`
        return model.to_logits(model.norm(h))

    def sliding(self, k: torch.Tensor, v: torch.Tensor) -> SlidingKV:
        r"""A sliding cache of the newest $L + 1$ positions, started from `k`, `v`, `[batch_size, heads, n, dim_head]`."""
        batch_size, heads, n, dim_head = k.shape
        cache = SlidingKV(batch_size, heads, dim_head, self.model.mem_len + 1, k)
        if n:
            cache.append(torch.cat([k, v], dim=-1))
        return cache
