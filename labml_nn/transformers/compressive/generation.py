r"""
---
title: Generating with cached memories
summary: The Compressive Transformer's generation with the keys and values of both memories kept, evictions and compressions included: the same tokens as running the model token by token, without recomputing the memories.
---

# Generating with cached memories

The [Compressive Transformer](index.html) generates the way it evaluates: the prompt is read in segments,
then every new token is a segment of one, with `memory=` carried from call to call
(`model.generate(..., cached=False)`). Each call recomputes, in every layer, the keys and values of the
whole memory and compressed memory, though a position's keys and values never change while it stays.
This page keeps them.

* **The prompt's segments** run through the layers themselves ([`step_cached`](#step_cached)): each
  layer attends over the cached keys and values of $[cm \circ m]$ and the segment's, and then does the
  model's bookkeeping on keys and values: the same [eviction rule](index.html#evict), $f_c$ on the
  evicted hidden states, and each new compressed slot projected to a key and a value, once.
* **Each new token** runs through a [`CachedLayer`](../xl/generation.html#CachedLayer), Transformer-XL's
  one-position layer (the compressive layer *is* a Transformer-XL layer), over a
  [`CompressedKV`](#CompressedKV): the keys and values of $[cm \circ m]$ in one buffer, written once per
  token. Every $c$ tokens, once the memory is full, $c$ memory positions leave it, in place, for the
  one compressed slot $f_c$ makes of them, and the compressed memory moves up behind it.

So a new token costs one position's work in every layer, and the tokens are the same as the model's own:
`tests/test_compressive.py` checks it. The benchmark (`python -m bench.compressive`) measures this path
against compressive-transformer-pytorch: {report:compressive.generate_vs_ctp} as many tokens per second at
batch 8, {report:compressive.generate_vs_ctp_batch_1} at batch 1.

| symbol | meaning | code | shape |
|---|---|---|---|
| $h$ | a layer's input for the new tokens | `h` | `[batch_size, seq_len, dim]` |
| | keys and values of $[cm \circ m]$, then the new tokens | `k`, `v` | `[batch_size, heads, n_cm + n_m + seq_len, dim_head]` |
| $L_c$ | compressed-memory length | `cmem_len` | |
| $c$ | compression rate | `compression_rate` | |
"""

from collections import deque
from typing import Deque, List, NamedTuple, Optional, Tuple

import torch

from labml_nn.transformers.compressive import CompressiveLayer, CompressiveTransformer, evict, evicted_count
from labml_nn.transformers.xl.generation import CachedLayer


class GenerationCache(NamedTuple):
    r"""
    What generation keeps for one layer while it reads the prompt: the keys and values of $[cm \circ m]$,
    each `[batch_size, heads, n_cm + n_m, dim_head]`, how many of them, `n_cm`, belong to the compressed
    memory, and the memory's hidden states, `mem`, `[batch_size, n_m, dim]`, for $f_c$.
    """
    kv: Tuple[torch.Tensor, torch.Tensor]
    n_cm: int
    mem: torch.Tensor


def step_cached(model: CompressiveTransformer, layer: CompressiveLayer, h: torch.Tensor,
                cache: Optional[GenerationCache]) -> Tuple[torch.Tensor, GenerationCache]:
    r"""
    One layer for a segment `h`, `[batch_size, seq_len, dim]`: the layer's output and its updated cache. The
    Transformer-XL layer's `forward_cached` attends over the cached keys and values of $[cm \circ m]$ and
    returns them with the segment's appended; then the bookkeeping of the model's forward pass is done on
    keys and values.
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


class CompressedKV:
    r"""
    The keys and values of one layer's $[cm \circ m]$ and of each new position, for generation one token at
    a time (no gradients), in one buffer `[2, batch_size, heads, capacity, dim_head]` (keys, then values)
    whose *window*, slots `start` to `end`, holds the `n_cm` compressed slots and then the memory.
    `append` writes a new position after the window, `evict` replaces the memory's oldest positions by their
    compressed slots, in place. The buffer holds two windows of at most `max_keys` positions, so that moving
    the window back to its start, when the buffer is full, never overlaps its source.
    """

    def __init__(self, k: torch.Tensor, v: torch.Tensor, n_cm: int, max_keys: int):
        batch_size, heads, n, dim_head = k.shape
        self.buffer = k.new_empty(2, batch_size, heads, 2 * max_keys, dim_head)
        self.buffer[0, :, :, :n], self.buffer[1, :, :, :n] = k, v
        self.start, self.end, self.n_cm = 0, n, n_cm

    def append(self, kv: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""
        Add one position, `kv`, `[batch_size, heads, 1, 2 * dim_head]` (each head's key and value side by
        side), and return the window's keys and values, `[batch_size, heads, P, dim_head]` each (views).
        """
        if self.end == self.buffer.shape[3]:
            n = self.end - self.start
            self.buffer[:, :, :, :n] = self.buffer[:, :, :, self.start:self.end]
            self.start, self.end = 0, n
        batch_size, heads, _, width = kv.shape
        self.buffer[:, :, :, self.end] = kv.view(batch_size, heads, 2, width // 2).permute(2, 0, 1, 3)
        self.end += 1
        k, v = self.buffer[:, :, :, self.start:self.end]
        return k, v

    def evict(self, n_evicted: int, slots: Optional[Tuple[torch.Tensor, torch.Tensor]], cmem_len: int) -> None:
        r"""
        The memory's oldest `n_evicted` positions leave it. `slots` are the keys and values of their
        compression, `[batch_size, heads, n_evicted / c, dim_head]` each, which join the compressed memory;
        it keeps its newest `cmem_len` slots, directly in front of the memory's remaining positions. `None`:
        there is no compressed memory, and the positions are dropped.
        """
        mem_start = self.start + self.n_cm
        if slots is None:
            self.start += n_evicted
            return
        ck, cv = slots
        n_new = min(ck.shape[2], cmem_len)
        n_old = min(self.n_cm, cmem_len - n_new)
        # The compressed memory ends where the memory's remaining positions begin.
        end = mem_start + n_evicted
        old = self.buffer[:, :, :, mem_start - n_old:mem_start].clone()
        self.buffer[:, :, :, end - n_new - n_old:end - n_new] = old
        self.buffer[0, :, :, end - n_new:end] = ck[:, :, ck.shape[2] - n_new:]
        self.buffer[1, :, :, end - n_new:end] = cv[:, :, cv.shape[2] - n_new:]
        self.start, self.n_cm = end - n_new - n_old, n_old + n_new


class CachedReader:
    r"""
    What [`ForwardCalls`](../lm.html#ForwardCalls) computes, `reader(tokens)` → the logits of the last
    position, `[batch_size, num_tokens]`, with each layer's keys and values kept: the prompt's segments
    through [`step_cached`](#step_cached); from the first single token on, each layer as a
    [`CachedLayer`](../xl/generation.html#CachedLayer) over a [`CompressedKV`](#CompressedKV), with the
    memory's hidden states queued for $f_c$.
    """

    def __init__(self, model: CompressiveTransformer):
        self.model = model
        self.caches: List[Optional[GenerationCache]] = [None] * model.depth
        self.steps: List[CachedLayer] = []
        # Each layer's memory, one `[batch_size, dim]` row per position, oldest first.
        self.memories: List[Deque[torch.Tensor]] = []

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        model = self.model
        if self.steps or (tokens.shape[1] == 1 and self.caches[0] is not None):
            if not self.steps:
                self.start_steps()
            # One position through every layer, `[batch_size, dim]`.
            h = model.token_emb(tokens[:, 0])
            for l, (layer, step) in enumerate(zip(model.layers, self.steps)):
                h_in, h = h, step(h)
                self.remember(l, layer, h_in)
        else:
            # A segment of the prompt: `[batch_size, seq_len, dim]`.
            h = model.token_emb(tokens)
            for l, layer in enumerate(model.layers):
                h, self.caches[l] = step_cached(model, layer, h, self.caches[l])
            h = h[:, -1]
        # `[batch_size, num_tokens]`
        return model.to_logits(model.norm(h))

    def start_steps(self) -> None:
        r"""Turn the prompt's caches into each layer's `CompressedKV`, memory queue and `CachedLayer`."""
        model = self.model
        # The most keys a new position sees: a full compressed memory, a memory waiting to evict $c$, itself.
        max_keys = model.cmem_len + model.mem_len + model.compression_rate
        for layer, cache in zip(model.layers, self.caches):
            self.steps.append(CachedLayer(layer, CompressedKV(*cache.kv, cache.n_cm, max_keys), max_keys))
            self.memories.append(deque(cache.mem.unbind(1)))

    def remember(self, l: int, layer: CompressiveLayer, h: torch.Tensor) -> None:
        r"""
        The memory of layer `l` takes in the new position's input `h`, `[batch_size, dim]`, and evicts by the
        model's rule; what it evicts is compressed and joins the compressed memory.
        """
        model, memory = self.model, self.memories[l]
        memory.append(h)
        compress = model.cmem_len > 0
        n_evicted = evicted_count(len(memory), model.mem_len, model.compression_rate, compress)
        if n_evicted:
            # `[batch_size, n_evicted, dim]`
            evicted = torch.stack([memory.popleft() for _ in range(n_evicted)], dim=1)
            slots = layer.memory_keys_values(layer.compress(evicted)) if compress else None
            self.steps[l].cache.evict(n_evicted, slots, model.cmem_len)
