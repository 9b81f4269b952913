r"""
---
title: Generating with cached memories
summary: The Compressive Transformer's generation with the keys and values of both memories kept, evictions and compressions included: the same tokens as running the model token by token, without recomputing the memories.
---

# Generating with cached memories

The [Compressive Transformer](index.html) generates the way it evaluates: the prompt is one segment,
then every new token a segment of one, with `memory=` carried from call to call
(`model.generate(..., cached=False)`). Each call recomputes, in every layer, the keys and values of the
whole memory and compressed memory, though a position's keys and values never change while it stays.
This page keeps them. Each layer's cache holds the keys and values of $[cm \circ m]$ and the memory's
hidden states, which $f_c$ needs when they are evicted; a new token costs one position's work in every
layer, and every $c$ tokens, once the memory is full, a layer compresses $c$ evicted states into one slot
and projects that slot to a key and a value, once. Evictions follow the same rule as the model's
forward pass ([`evict`](index.html#evict)), so the tokens are the same: `tests/test_compressive.py`
checks it.

| symbol | meaning | code | shape |
|---|---|---|---|
| $h$ | a layer's input for the new tokens | `h` | `[batch_size, seq_len, dim]` |
| | keys and values of $[cm \circ m]$, then the new tokens | `k`, `v` | `[batch_size, heads, n_cm + n_m + seq_len, dim_head]` |
| $L_c$ | compressed-memory length | `cmem_len` | |
"""

from typing import List, NamedTuple, Optional, Tuple

import torch

from labml_nn.transformers.compressive import CompressiveLayer, CompressiveTransformer, evict
from labml_nn.transformers.lm import generate_loop
from labml_nn.transformers.xl import KVCache


class GenerationCache(NamedTuple):
    r"""
    What generation keeps for one layer: the keys and values of $[cm \circ m]$, each
    `[batch_size, heads, n_cm + n_m, dim_head]`, how many of them, `n_cm`, belong to the compressed
    memory, and the memory's hidden states, `mem`, `[batch_size, n_m, dim]`, for $f_c$.
    """
    kv: KVCache
    n_cm: int
    mem: torch.Tensor


def step_cached(model: CompressiveTransformer, layer: CompressiveLayer, h: torch.Tensor,
                cache: Optional[GenerationCache]) -> Tuple[torch.Tensor, GenerationCache]:
    r"""
    One layer for the new tokens `h`, `[batch_size, seq_len, dim]`: the layer's output and its updated
    cache. The Transformer-XL layer's `forward_cached` attends over the cached keys and values of
    $[cm \circ m]$ and returns them with the new tokens' appended; then the bookkeeping of the model's
    forward pass is done on keys and values.
    """
    kv = None if cache is None else cache.kv
    n_cm = 0 if cache is None else cache.n_cm
    # `k`, `v`: `[batch_size, heads, n_cm + n_m + seq_len, dim_head]`. Every key is kept: eviction is
    # decided below, by the same rule as the model's forward pass.
    out, (k, v) = layer.forward_cached(h, kv)
    kept, evicted = evict(None if cache is None else cache.mem, h, model.mem_len, model.compression_rate,
                          model.cmem_len > 0)
    n_evicted = evicted.shape[1]
    if n_evicted == 0:
        # The common case while the memory fills, and $c - 1$ tokens in $c$ after: nothing to move.
        return out, GenerationCache((k, v), n_cm, kept)
    # The memory's keys and values after eviction: `[batch_size, heads, n_m, dim_head]` (views).
    mem_k, mem_v = k[:, :, n_cm + n_evicted:], v[:, :, n_cm + n_evicted:]
    if model.cmem_len == 0:
        return out, GenerationCache((mem_k, mem_v), 0, kept)
    # $f_c$ on the evicted states, `[batch_size, n_evicted / c, dim]`, then the new slots' keys and
    # values, `[batch_size, heads, n_evicted / c, dim_head]`, projected once.
    ck, cv = layer.memory_keys_values(layer.compress(evicted))
    # The compressed memory keeps its newest `cmem_len` slots, still in front of the memory.
    n_new = ck.shape[2]
    n_keep_old = min(n_cm, max(model.cmem_len - n_new, 0))
    k = torch.cat([k[:, :, n_cm - n_keep_old:n_cm], ck[:, :, max(n_new - model.cmem_len, 0):], mem_k], dim=2)
    v = torch.cat([v[:, :, n_cm - n_keep_old:n_cm], cv[:, :, max(n_new - model.cmem_len, 0):], mem_v], dim=2)
    return out, GenerationCache((k, v), min(n_cm + n_new, model.cmem_len), kept)


@torch.no_grad()
def generate_cached(model: CompressiveTransformer, prompt: torch.Tensor, length: int, temperature: float = 1.0,
                    top_k: Optional[int] = None) -> torch.Tensor:
    r"""What [`model.generate(..., cached=False)`](index.html#CompressiveTransformer.generate) computes, with
    each layer's keys and values kept. Returns `[batch_size, prompt_len + length]`."""
    caches: List[Optional[GenerationCache]] = [None] * model.depth

    def next_logits(tokens: torch.Tensor) -> torch.Tensor:
        h = model.token_emb(tokens)
        for l, layer in enumerate(model.layers):
            h, caches[l] = step_cached(model, layer, h, caches[l])
        # Only the last position's logits are needed: `[batch_size, num_tokens]`.
        return model.to_logits(model.norm(h[:, -1]))

    return generate_loop(model, prompt, length, temperature, top_k, next_logits)
