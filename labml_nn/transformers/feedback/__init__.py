r"""
---
title: Feedback Transformer
summary: A transformer in which every layer attends to one memory built from all layers of the past steps, trained token by token, with shared keys and values cached in a buffer.
---

# Feedback Transformer

In a transformer, layer $l$ of step $t$ attends to layer $l - 1$ of the earlier steps: the lowest
layers never see what the highest layers concluded about the past, and a computation can only be
as deep as the stack. Fan et al. ([Addressing Some Limitations of Transformers with Feedback
Memory](https://arxiv.org/abs/2002.09402)) give every layer the *same* memory, built from all layers
of each past step. With $x^l_t$ the input of layer $l + 1$ at step $t$ ($x^0_t$ the token embedding,
$x^N_t$ the output of the last of $N$ layers), the memory vector of step $t$ is

$$\mathbf{m}_t = \sum_{l=0}^{N} \operatorname{softmax}(w)_l \; x^l_t$$

with learned scalars $w$, and the attention of every layer reads the memory of the $L$ previous steps:

$$z^l_t = \operatorname{Attn}\big(x^{l-1}_t,\; [\mathbf{m}_{t-L}, \dots, \mathbf{m}_{t-1}]\big),
\qquad x^l_t = \operatorname{FF}(z^l_t)$$

(each with its pre-norm residual). **The exact attention set:** the query of step $t$ in every layer
sees the memory entries of steps $t - L \dots t - 1$, at distances $1 \dots L$, and nothing of step $t$
itself: $\mathbf{m}_t$ needs the output of the last layer, which does not exist yet. This is the
paper's equation and its reference implementation. The first step of a stream has an empty memory;
there its attention block adds nothing and the residual carries $x^{l-1}_t$ through.

The memory makes the model recurrent: step $t$ cannot start before step $t - 1$ has gone through
all layers, so training runs token by token, several times slower than a parallel transformer. In
exchange, prediction is cheap: the memory *is* the cache of a generator, and the top layer's
abstractions of the past are available to the bottom layer of the present.

## Two variants

1. As first described, each layer $l$ projects the memory with its own $W^l_K, W^l_V$.
   (`shared_kv=False`)
2. In the updated paper all layers share $W_K, W_V$. Then the keys and values of step $t$ are the
   same for every layer and every later step: they are computed once, when $\mathbf{m}_t$ is
   formed, and cached. (`shared_kv=True`, the default.) The cache grows by one entry per step, which
   needs care during training; that is the subject of the [key/value buffer](kv_buffer.html).

## Positions

Attention uses Transformer-XL's [relative scores](../xl/relative_mha.html) with one change: since
every key lies strictly in the past, distances run $1 \dots L$, not $0 \dots L - 1$. For a one-token
step, key $j$ of a window of $P$ memory entries is at distance $P - j$. (A bias indexed by
*key position within the segment* would give every memory entry the same position when the segment
is one token long; the tests check that ours do not.)

## Windows: `seq_len > 1`

`seq_len=1` is the paper's model. With `seq_len = n > 1` the model processes windows of $n$ tokens in
parallel and updates the memory between windows, trading exactness for speed. Inside a window, the
memory of the earlier window positions is not formed yet; position $i$ attends to the memory before
the window and, in place of $\mathbf{m}_j$ for the window positions $j < i$, to the part of it that
is formed: $\sum_{l' < l} \operatorname{softmax}(w)_{l'} x^{l'}_j$, the weighted sum of the layers below.
Every key still lies strictly in the past. Steps per segment drop from $T$ to $T / n$, so
training is about $n$ times faster per token on hardware that is latency-bound, but the window's
positions lose the feedback from each other's top layers: the longer the window, the closer the
model is to a Transformer-XL. Use it to train cheaply and check quality with `seq_len=1`.

## The step that runs

The exact model is a loop over steps, and inside it a loop over layers:
[`FeedbackTransformer.step`](#FeedbackTransformer.step) is one step of the recurrence, written with
the layers on this page. `step="autograd"` trains and generates with exactly that code. The default,
`step="hand-written"`, computes the same numbers through [a step whose gradient is written
out](step.html), which trains {report:feedback.hand_written_vs_autograd} as fast at the benchmark's size:
at one token per call, autograd's bookkeeping of every small operation is much of the time. The tests
check that both give the same outputs, memory and gradients.

```python
from labml_nn.transformers.feedback import FeedbackTransformer

model = FeedbackTransformer(num_tokens=20000, dim=512, depth=6, seq_len=1, mem_len=256,
                            dim_head=64, heads=8, attn_dropout=0.1, ff_dropout=0.1)
logits = model(x)                                             # [batch_size, T, num_tokens]
out1, mem1 = model(x1, return_memory=True)                    # mem1: [batch_size, mem_len, dim]
out2, mem2 = model(x2, memory=mem1, return_memory=True)       # x2 continues x1
text = model.generate(prompt, length=100, top_k=1)
model = FeedbackTransformer(..., step="autograd")            # the loop above, through autograd
```

| symbol | meaning | code | shape |
|---|---|---|---|
| $x^l_t$ | input of layer $l + 1$ at step $t$ | `x` | `[batch_size, n, dim]` |
| $w$ | memory weights over the $N + 1$ layer outputs | `layer_weights` | `[depth + 1]` |
| $\mathbf{m}_t$ | memory vector of step $t$ | `m` | `[batch_size, n, dim]` |
| $L$ | memory length | `mem_len` | |
| $n$ | tokens processed in parallel (1: exact) | `seq_len` | |
| $W_K, W_V$ | memory projections, shared or per layer | `memory_kv` | |
| | keys and values of the memory window | `kv` | `[batch_size, heads, P, dim_head]` each |
"""

from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from labml_nn.transformers.feed_forward import FeedForward
from labml_nn.transformers.feedback.kv_buffer import KVHistory
from labml_nn.transformers.hub import Pretrained
from labml_nn.transformers.lm import (append_memory, check_memory_tensor, check_tokens, generate_loop,
                                      generate_with_memory, head_size)
from labml_nn.transformers.one_token import SlidingKV
from labml_nn.transformers.xl.relative_mha import RelativeMultiHeadAttention

# The keys and the values of a memory window, each `[batch_size * heads, P, dim_head]`, as the key/value
# histories return them.
KV = Tuple[torch.Tensor, torch.Tensor]
# The steps of the implementations of the exact model.
STEPS = ("hand-written", "autograd")


class FeedbackAttention(RelativeMultiHeadAttention):
    r"""
    [Relative attention](../xl/relative_mha.html) whose keys all lie strictly in the past.

    Only two things change. The keys and values come from the memory through a
    [`MemoryKV`](#MemoryKV) projection, so this module has no `to_kv` of its own. And the position
    keys are for distances $\text{key\_len}, \dots, 1$ instead of $\text{key\_len} - 1, \dots, 0$:
    with the inherited relative shift and causal mask, query $i$ of a window that follows $P$ memory
    entries sees key $j$ at distance $P + i - j$, and never itself.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, max_distance: int, dropout: float = 0.0):
        super().__init__(dim, heads, dim_head, dropout, nearest_distance=1)
        self.to_kv = None
        # The most keys a query can see, $L + n - 1$.
        self.max_distance = max_distance

    def position_keys(self, key_len: int, device: torch.device) -> torch.Tensor:
        r"""$r_\delta = W_{k,R} R_\delta$ for $\delta = \text{key\_len}, \dots, 1$, as `[heads, key_len, dim_head]`."""
        if key_len > self.max_distance:
            raise ValueError(f"{key_len} keys exceed the {self.max_distance} distances this attention was built for")
        return super().position_keys(key_len, device)


class MemoryKV(nn.Module):
    r"""
    Keys and values of memory vectors: $[K \,|\, V] = \operatorname{LN}(\mathbf{m}) [W_K \,|\, W_V]$,
    mapping `[batch_size, n, dim]` to `[batch_size, heads, n, 2 * dim_head]` with each head's key and
    value side by side, the layout the [key/value buffer](kv_buffer.html) stores.
    """

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        # The memory mixes layers of different scales; the norm puts it on the scale the
        # projections expect, as the pre-norm of a Transformer-XL layer does for its memory.
        self.norm = nn.LayerNorm(dim)
        # Columns are grouped per head, $[k\,v]$ within each, so splitting heads is a view.
        self.to_kv = nn.Linear(dim, heads * 2 * dim_head, bias=False)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        batch_size, n, _ = m.shape
        # `[batch_size, n, heads * 2 * dim_head]` → `[batch_size, heads, n, 2 * dim_head]`
        return self.to_kv(self.norm(m)).view(batch_size, n, self.heads, -1).transpose(1, 2)


class FeedbackLayer(nn.Module):
    r"""
    One layer: $z = x + \operatorname{Attn}(\operatorname{LN}(x), \text{memory})$, then
    $z + \operatorname{FF}(\operatorname{LN}(z))$. Maps `[batch_size, n, dim]` to the same shape.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, d_ff: int, max_distance: int,
                 attn_dropout: float = 0.0, ff_dropout: float = 0.0):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = FeedbackAttention(dim, heads, dim_head, max_distance, attn_dropout)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, d_ff, ff_dropout)

    def forward(self, x: torch.Tensor, kv: Optional[KV]) -> torch.Tensor:
        r"""
        `x` is the layer input for a window of $n$ steps, `[batch_size, n, dim]`; `kv` holds the keys
        and the values of everything they may attend to, each `[batch_size, heads, P + n - 1, dim_head]`:
        $P$ memory entries, then the stand-ins for the window's first $n - 1$ positions (none when
        $n = 1$). `None` when there is nothing at all (the first token of a stream).
        """
        if kv is not None:
            n = x.shape[1]
            q = self.attn.queries(self.attn_norm(x))
            k, v = kv
            if k.shape[2] > n - 1:
                x = x + self.attn.attend(q, k, v)
            else:
                # No memory before the window: position 0 has no past, its attention adds nothing.
                # The others see the stand-ins before them.
                x = x + F.pad(self.attn.attend(q[:, :, 1:], k, v), (0, 0, 1, 0))
        return x + self.ff(self.ff_norm(x))


class FeedbackTransformer(nn.Module, Pretrained, paper_url="https://arxiv.org/abs/2002.09402"):
    r"""
    The Feedback Transformer language model.

    * `model(x)` → logits `[batch_size, T, num_tokens]` for token ids `x`, `[batch_size, T]`;
    * `model(x, memory=m, return_memory=True)` → `(logits, new_memory)`: the memory is the tensor of
      memory vectors $\mathbf{m}$ of the last `mem_len` steps, `[batch_size, mem_len, dim]` (fewer until
      `mem_len` steps have been seen), detached from the graph. `memory=None` starts a new stream.
    * `shared_kv` picks the variant; `seq_len` the number of tokens processed in parallel (1: exact);
      `step` which implementation runs the exact model's steps: `"hand-written"` ([its page](step.html))
      or `"autograd"` ([`step`](#FeedbackTransformer.step) below, through autograd).
    """

    # The history of keys and values a forward pass appends to: the [custom function](kv_buffer.html).
    # (The tests and the benchmark swap in the plain concatenation it replaces.)
    History = KVHistory

    def __init__(self, *, num_tokens: int, dim: int, depth: int, mem_len: int, seq_len: int = 1,
                 heads: int = 8, dim_head: Optional[int] = None, ff_mult: int = 4,
                 attn_dropout: float = 0.0, ff_dropout: float = 0.0, shared_kv: bool = True,
                 step: str = "hand-written"):
        super().__init__()
        dim_head = head_size(dim, heads, dim_head)
        if mem_len < 1 or seq_len < 1 or depth < 1:
            raise ValueError(f"mem_len, seq_len and depth must be >= 1, got mem_len={mem_len}, "
                             f"seq_len={seq_len}, depth={depth}")
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
        self.num_tokens, self.dim, self.depth = num_tokens, dim, depth
        self.mem_len, self.seq_len, self.shared_kv, self.step_implementation = mem_len, seq_len, shared_kv, step
        self.token_emb = nn.Embedding(num_tokens, dim)
        # Query $i$ of a window sees memory up to $L + i$ steps back.
        max_distance = mem_len + seq_len - 1
        self.layers = nn.ModuleList([
            FeedbackLayer(dim, heads, dim_head, dim * ff_mult, max_distance, attn_dropout, ff_dropout)
            for _ in range(depth)])
        # Variant 2: one projection for all layers; variant 1: one per layer.
        self.memory_kv = nn.ModuleList([MemoryKV(dim, heads, dim_head)
                                        for _ in range(1 if shared_kv else depth)])
        # $w$, one logit per layer output $x^0 \dots x^N$; zeros start the memory as their plain mean.
        self.layer_weights = nn.Parameter(torch.zeros(depth + 1))
        self.norm = nn.LayerNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens)

    def projection_of(self, layer: int) -> int:
        """The index of the memory projection (and key/value history) that layer `layer` reads."""
        return 0 if self.shared_kv else layer

    def check_memory(self, memory: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Check a memory from `return_memory=True` and keep its newest `mem_len` steps."""
        if isinstance(memory, (list, tuple)):
            raise TypeError(f"memory must be one tensor [batch_size, mem_len, dim={self.dim}] shared by all "
                            f"layers, got a list of {len(memory)}: a per-layer memory from another model?")
        if not isinstance(memory, torch.Tensor):
            raise TypeError(f"memory must be the tensor returned with return_memory=True, "
                            f"got {type(memory).__name__}")
        if memory.dim() != 3 or memory.shape[0] != batch_size or memory.shape[2] != self.dim:
            raise ValueError(f"memory must have shape [batch_size={batch_size}, mem_len, dim={self.dim}], got "
                             f"{tuple(memory.shape)}: was it made for another batch size or model?")
        check_memory_tensor(memory, self.token_emb.weight, "memory")
        return memory[:, max(0, memory.shape[1] - self.mem_len):]

    def start_histories(self, memory: Optional[torch.Tensor], batch_size: int, capacity: int
                        ) -> Tuple[list, List[Optional[KV]]]:
        r"""
        One [key/value history](kv_buffer.html) per memory projection, with room for `capacity` new
        steps after the memory, and the windows the first step attends to. The keys and values of a
        memory from an earlier call are computed here, once, with the current weights. Without
        gradients (generation), a [sliding cache](../one_token.html#SlidingKV) instead, which holds at
        most $2L + n - 1$ entries however many steps come.
        """
        past = 0 if memory is None else memory.shape[1]
        attn = self.layers[0].attn
        if torch.is_grad_enabled():
            histories = [self.History(batch_size, attn.heads, 2 * attn.dim_head, past + capacity, self.mem_len,
                                      self.token_emb.weight) for _ in self.memory_kv]
        else:
            histories = [SlidingKV(batch_size, attn.heads, attn.dim_head, self.mem_len, self.token_emb.weight,
                                   max_append=self.seq_len) for _ in self.memory_kv]
        if past == 0:
            return histories, [None] * len(histories)
        return histories, self.commit(histories, memory)

    def commit(self, histories: list, m: torch.Tensor) -> List[KV]:
        r"""Add the keys and values of the memory vectors `m`, `[batch_size, n, dim]`; returns the new windows."""
        return [history.append(project(m)) for history, project in zip(histories, self.memory_kv)]

    def window_kv(self, windows: List[Optional[KV]], layer: int, batch_size: int) -> Optional[KV]:
        r"""The window layer `layer` reads, as `[batch_size, heads, P, dim_head]` keys and values (views)."""
        kv = windows[self.projection_of(layer)]
        if kv is None:
            return None
        attn = self.layers[layer].attn
        return tuple(t.view(batch_size, attn.heads, -1, attn.dim_head) for t in kv)

    def step(self, x: torch.Tensor, windows: List[Optional[KV]], with_kv: bool = True
             ) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        r"""
        **One step of the exact model**, as the paper states it: the embedding $x^0_t$ of step $t$, `x`,
        `[batch_size, dim]`, goes up through the layers, each attending to the memory windows of the steps
        before; then the outputs of all layers make the memory vector
        $\mathbf{m}_t = \sum_l \operatorname{softmax}(w)_l\, x^l_t$, and its keys and values are computed for
        the steps after. Returns $x^N_t$ and $\mathbf{m}_t$, both `[batch_size, dim]`, and the keys and values
        of $\mathbf{m}_t$ for each history (`[batch_size, heads, 1, 2 * dim_head]`; none unless `with_kv`).
        """
        batch_size = x.shape[0]
        outputs = [x]
        for l, layer in enumerate(self.layers):
            # The layer on a window of one step: `[batch_size, 1, dim]`.
            x = layer(x[:, None], self.window_kv(windows, l, batch_size))[:, 0]
            outputs.append(x)
        # $\mathbf{m}_t$, `[batch_size, dim]` (a weighted sum, in the precision of the residual stream)
        w = self.layer_weights.softmax(dim=0)
        m = (w[:, None, None] * torch.stack(outputs)).sum(dim=0)
        kvs = [project(m[:, None]) for project in self.memory_kv] if with_kv else []
        return x, m, kvs

    def exact_steps(self, steps: Optional[int], batch_size: int):
        r"""
        The function that runs one step of the exact model, with the signature of [`step`](#FeedbackTransformer.step),
        for a forward pass of `steps` tokens: `step` itself, or the [hand-written step](step.html), which
        prepares what all the pass's steps share once.
        """
        if self.step_implementation == "autograd":
            return self.step
        from labml_nn.transformers.feedback.step import HandWrittenSteps
        return HandWrittenSteps(self, steps, batch_size)

    def window(self, x: torch.Tensor, windows: List[Optional[KV]], w: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""
        Run a window of $n$ steps, embeddings `x`, `[batch_size, n, dim]`, through all layers against
        the memory windows `windows`. `w` is $\operatorname{softmax}(w)$. Returns the last layer's output
        and the memory vectors $\mathbf{m}$, both `[batch_size, n, dim]`.
        """
        # $\mathbf{m}$ accumulates layer by layer: $\operatorname{softmax}(w)_0\, x^0$ first.
        m = w[0] * x
        for l, layer in enumerate(self.layers):
            kv = self.window_kv(windows, l, x.shape[0])
            if x.shape[1] > 1:
                # The window's own memory is not formed yet; positions $0 \dots n-2$ lend the part of it
                # that is, for the positions after them to attend to.
                stand_ins = self.memory_kv[self.projection_of(l)](m[:, :-1]).split(layer.attn.dim_head, dim=-1)
                kv = stand_ins if kv is None else tuple(torch.cat([past, new], dim=2)
                                                        for past, new in zip(kv, stand_ins))
            x = layer(x, kv)
            m = torch.addcmul(m, w[l + 1], x)
        return x, m

    def forward(self, x: torch.Tensor, memory: Optional[torch.Tensor] = None, return_memory: bool = False
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        x = check_tokens(x, self.num_tokens)
        batch_size, T = x.shape
        if memory is not None:
            memory = self.check_memory(memory, batch_size)
        # `[batch_size, T, dim]`: embeddings of all steps at once; no position embedding, positions enter
        # only as distances inside attention.
        h = self.token_emb(x)
        histories, windows = self.start_histories(memory, batch_size, T)
        outputs, memories = [], []
        if self.seq_len == 1:
            # The exact model, token by token on `[batch_size, dim]` tensors.
            step = self.exact_steps(T, batch_size)
            for t, x_t in enumerate(h.unbind(1)):
                # The keys and values of the new memory are for the steps that follow; the last step's are
                # needed only by the next call, which computes them from the returned memory.
                out, m, kvs = step(x_t, windows, with_kv=t + 1 < T)
                outputs.append(out)
                memories.append(m)
                if kvs:
                    windows = [history.append(kv) for history, kv in zip(histories, kvs)]
            out, m = torch.stack(outputs, dim=1), torch.stack(memories, dim=1)
        else:
            w = self.layer_weights.softmax(dim=0)
            for start in range(0, T, self.seq_len):
                out, m = self.window(h[:, start:start + self.seq_len], windows, w)
                outputs.append(out)
                memories.append(m)
                if start + self.seq_len < T:
                    windows = self.commit(histories, m)
            out, m = torch.cat(outputs, dim=1), torch.cat(memories, dim=1)
        logits = self.to_logits(self.norm(out))
        if not return_memory:
            return logits
        return logits, append_memory(memory, m, self.mem_len)

    def memory_state(self, memory):
        """The memory as tensors in plain lists (what a checkpoint stores); it already is one."""
        return memory

    def load_memory_state(self, state):
        """The memory `memory_state` gave."""
        return state

    def flops_per_token(self, seq_len: int) -> float:
        r"""
        The training FLOPs per token with a full memory, three times the forward pass at 2 FLOPs per
        multiply-add: per layer the query and output projections and the feed-forward network, and the
        content scores, position scores and weighted values over the $L$ memory entries; the position keys
        $W_{k,R} R$ once per segment of `seq_len`; the keys and values of each step's memory vector, once per
        projection; the output layer.
        """
        layer = self.layers[0]
        attn, ff = layer.attn, layer.ff
        width = attn.heads * attn.dim_head
        per_layer = (attn.to_q.weight.numel() + attn.to_out.weight.numel() + ff.w1.weight.numel()
                     + ff.w2.weight.numel() + attn.to_r.weight.numel() * attn.max_distance / seq_len
                     + 3 * self.mem_len * width)
        memory = sum(project.to_kv.weight.numel() for project in self.memory_kv)
        return 3 * 2 * (self.depth * per_layer + memory + self.to_logits.weight.numel())

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, length: int, temperature: float = 1.0,
                 top_k: Optional[int] = None, cached: bool = True) -> torch.Tensor:
        r"""
        Continue `prompt`, `[batch_size, prompt_len]`, by `length` tokens; returns
        `[batch_size, prompt_len + length]`, the same tokens that calling the model on the growing
        sequence would pick.

        The memory *is* the cache: the keys and values of each step's memory are computed once and kept,
        the newest $L$ of them in a [sliding cache](../one_token.html#SlidingKV), so a new token costs one
        step through the layers, whatever the length. The exact model (`seq_len=1`) runs its
        [step](#FeedbackTransformer.exact_steps) without gradients, each token's memory joining the cache
        before the next one runs. `cached=False` calls the model token by token with `memory=` instead
        ([`generate_with_memory`](../lm.html#generate_with_memory)), which recomputes the keys and values of
        the memory for every token. With `seq_len = n > 1` the model's windows start at multiples of $n$,
        so the unfinished window (at most $n - 1$ earlier tokens) is run again with each new token, and
        committed to the memory once it is full.
        """
        if self.seq_len == 1 and not cached:
            return generate_with_memory(self, prompt, length, temperature, top_k)
        state = {}

        def start(tokens: torch.Tensor) -> None:
            # The first call, with the prompt (checked by now).
            state["histories"], state["windows"] = self.start_histories(None, tokens.shape[0], 0)
            state.update(kvs=[], pending=None, m=None)

        def next_exact(tokens: torch.Tensor) -> torch.Tensor:
            if not state:
                start(tokens)
                state["step"] = self.exact_steps(None, tokens.shape[0])
            # The prompt too goes token by token: the model is recurrent. Each step's memory joins the
            # caches before the next step runs.
            for x in self.token_emb(tokens).unbind(1):
                if state["kvs"]:
                    state["windows"] = [history.append(kv) for history, kv in zip(state["histories"], state["kvs"])]
                out, _, state["kvs"] = state["step"](x, state["windows"])
            # `[batch_size, num_tokens]`
            return self.to_logits(self.norm(out))

        def next_windowed(tokens: torch.Tensor) -> torch.Tensor:
            if not state:
                start(tokens)
            w = self.layer_weights.softmax(dim=0)
            # The unfinished window, `[batch_size, k, dim]` with $1 \le k \le n$, starting at a multiple of $n$.
            pending = state["pending"]
            if pending is not None and pending.shape[1] == self.seq_len:
                # The window is full: its memory joins the caches and the new tokens start the next one.
                state["windows"] = self.commit(state["histories"], state["m"])
                pending = None
            new = self.token_emb(tokens)
            pending = new if pending is None else torch.cat([pending, new], dim=1)
            # Commit the full windows of a long prompt, all but the one the next logits come from.
            while pending.shape[1] > self.seq_len:
                _, m = self.window(pending[:, :self.seq_len], state["windows"], w)
                state["windows"] = self.commit(state["histories"], m)
                pending = pending[:, self.seq_len:]
            top, state["m"] = self.window(pending, state["windows"], w)
            state["pending"] = pending
            # `[batch_size, num_tokens]`, for the last position only
            return self.to_logits(self.norm(top[:, -1]))

        return generate_loop(self, prompt, length, temperature, top_k,
                             next_exact if self.seq_len == 1 else next_windowed)
