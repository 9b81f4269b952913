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

$$y^l_t = \operatorname{Attn}\big(x^{l-1}_t,\; [\mathbf{m}_{t-L}, \dots, \mathbf{m}_{t-1}]\big),
\qquad x^l_t = \operatorname{FF}(y^l_t)$$

(each with its pre-norm residual). **The exact attention set:** the query of step $t$ in every layer
sees the memory entries of steps $t - L \dots t - 1$, at distances $1 \dots L$, and nothing of step $t$
itself: $\mathbf{m}_t$ needs the output of the last layer, which does not exist yet. This is the
paper's equation, and the attention set of the authors' code. Here the first step of a stream has an
empty memory: its attention block adds nothing and the residual carries $x^{l-1}_t$ through. (The
authors' code starts every stream from $L$ zero vectors instead, which the queries do attend to: the
attention set is the same, the first segment's outputs are not; see the [differences](#differences).)

The memory makes the model recurrent: step $t$ cannot start before step $t - 1$ has gone through
all layers, so training runs token by token: $n$ sequential steps for a segment of $n$ tokens, where a
parallel transformer takes one pass. In exchange, prediction is cheap: the memory *is* the cache of a generator, and the top layer's
abstractions of the past are available to the bottom layer of the present.

## Two variants

1. As first described, each layer $l$ projects the memory with its own $W^l_k, W^l_v$.
   (`shared_kv=False`)
2. In the updated paper all layers share $W_k, W_v$. Then the keys and values of step $t$ are the
   same for every layer and every later step: they are computed once, when $\mathbf{m}_t$ is
   formed, and kept. (`shared_kv=True`, the default.) The history grows by one entry per step, which
   needs care during training; that is the subject of the [key/value buffer](kv_buffer.html).

The authors' published runs (their enwik8 model of 77M parameters and their algorithmic tasks) use
variant 1; the default here is variant 2, the smaller and faster.

## Positions

Every key lies strictly in the past, so distances run $1 \dots L$, not Transformer-XL's $0 \dots L - 1$:
for a one-token step, key $j$ of a window of $P$ memory entries is at distance $\delta = P - j$. (A bias
indexed by *key position within the segment* would give every memory entry the same position when the
segment is one token long; the tests check that ours do not.) The score of a query and the key at
distance $\delta$ takes one of two forms, `position_keys`:

| | `"learned"`: the authors' code | `"sinusoid"`: Transformer-XL's, the default |
|---|---|---|
| score $A_{i,j}$ | $\big(q_i^\top k_j + q_i^\top p_\delta\big) / \sqrt{d_h}$ | $\big((q_i + \mathbf{u})^\top k_j + (q_i + \mathbf{v})^\top r_\delta\big) / \sqrt{d_h}$, $r_\delta = W_{k,R} R_\delta$ |
| position keys | one learned $p_\delta$ per distance, drawn from $N(0, 1)$: one table, `distance_keys`, `[L + n_w - 1, dim_head]` with distance $\delta$ in row $\delta - 1$, read by every layer and every head | the [sinusoids](../xl/relative_mha.html) $R_\delta$, projected per head by each layer's $W_{k,R}$ |
| parameters | $(L + n_w - 1)\, d_h$ | $N (d \cdot H d_h + 2 H d_h)$ |
| at the authors' enwik8 size ($L$ = 8,192, $n_w$ = 1, $N$ = 12, $d$ = 512, $H d_h$ = 8 · 128) | 1,048,576 | 6,316,032 |
| a longer memory at evaluation | only up to the table's $L + n_w - 1$ distances, or with `clamp_len` (further distances read its row) | any length |

The learned table has no $\mathbf{u}$, $\mathbf{v}$ or $W_{k,R}$; the sinusoids cost a projection per
layer but describe any distance. The tests check that the learned scores are exactly the formula above
(`test_learned_scores_are_content_plus_position_over_root_d`), that the table is one parameter for all
layers and heads, and that the [hand-written step](step.html) computes what the readable layers compute
with either form. In the benchmark's training step (`python -m bench.feedback`) the hand-written step with
the learned keys trains at {report:feedback.learned_vs_sinusoid} the tokens per second of the default.

## Adaptive span

`span_ramp` $= \rho$ gives each head of each layer a learned span, the [adaptive attention
span](../adaptive_span.html) the authors' enwik8 model uses with $L$ = 8,192: each head's weights are
masked beyond its span $z L$ and renormalised, and a layer reads only the newest $P_{span}$ memory
entries its heads reach (`span_reach`, read once per pass), which is where the speed comes from. Per
layer, each key/value history keeps only what its layer reaches; with the shared projection, one history
keeps what the furthest-reaching layer needs and each layer reads its own newest $P_{span}$ entries of it.
`model.span_loss()` is the span loss the trainer weighs with `--span-loss`, and `model.clamp_spans_()`
what it calls after every optimiser step. The tests check that the trimmed model computes what the
untrimmed, masked one computes, outputs, memory and gradients, in both steps. In the benchmark's training
step, a span that covers the whole memory costs the mask alone ({report:feedback.span_mask_vs_none} the
default's tokens per second), and at a memory of 512 with the spans at their shortest, trimming trains
{report:feedback.span_trimmed_vs_untrimmed_512} as fast as the same model untrimmed.

## Differences

What the authors' code (facebookresearch/transformer-sequential, `models/feedback.py` and
`experiments/feedback/enwik8.sh`) does differently from this page's defaults, and the option that gives
theirs; the [`feedback-enwik8` preset](../../experiments/presets.html) sets every option there is.

| | the authors' code | this page by default | option that gives theirs |
|---|---|---|---|
| variant | per-layer $W_k, W_v$ (`--share-proj-kv` is off in both scripts) | shared $W_k, W_v$ | `shared_kv=False` |
| position keys | learned $p_\delta$ | sinusoids through $W_{k,R}$, with $\mathbf{u}$, $\mathbf{v}$ | `position_keys="learned"` |
| feed-forward activation | ReLU | GELU | `activation="relu"` |
| adaptive span | ramp 32, trim step 64, init 0, loss 5e-7 | off | `span_ramp=32`, `span_trim_step=64`, `span_init=0`, `--span-loss 5e-7` |
| first memory of a stream | $L$ zero vectors, attended to like any entry | empty | none |
| the memory's norm | the layer's own attention pre-norm (with shared projections, shared too) | a LayerNorm in each memory projection | none |
| bias on $W_o$ | none | yes | none |
| initialisation | PyTorch's defaults, with $W_o$, $W_2$ and $b_2$ divided by $\sqrt{2N}$ | PyTorch's defaults | none |
| optimiser | Adam, $\beta_2$ = 0.999, no weight decay | AdamW, $\beta_2$ = 0.99, weight decay 0.01 | `--adam-beta2 0.999 --weight-decay 0` |
| data | enwik8 without its newline bytes | every byte | none |

The rest is as theirs: pre-norm with a final LayerNorm, dropout on the attention weights and the
feed-forward's hidden layer only, an output layer not tied to the embedding, no scale on the embedding,
$N + 1$ memory weights $w$ starting at zero, and a memory carried between segments detached, with its
keys and values recomputed from it with the current weights.

## Windows: $n_w > 1$

`window=1` is the paper's model. With `window` $= n_w > 1$ the model processes windows of $n_w$ tokens
in parallel and updates the memory between windows, trading exactness for speed. Inside a window, the
memory of the earlier window positions is not formed yet; position $i$ attends to the memory before
the window and, in place of $\mathbf{m}_j$ for the window positions $j < i$, to the part of it that
is formed: $\sum_{l' < l} \operatorname{softmax}(w)_{l'} x^{l'}_j$, the weighted sum of the layers below.
Every key still lies strictly in the past. Steps per segment of $n$ tokens drop from $n$ to $n / n_w$,
so training is about $n_w$ times faster per token on hardware that is latency-bound, but the window's
positions lose the feedback from each other's top layers: the longer the window, the closer the
model is to a Transformer-XL. Use it to train cheaply and check quality with `window=1`.

## The step that runs

The exact model is a loop over steps, and inside it a loop over layers:
[`FeedbackTransformer.step`](#FeedbackTransformer.step) is one step of the recurrence, written with
the layers on this page. `step="autograd"` trains with exactly that code. The default,
`step="hand-written"`, computes the same numbers through [a step whose gradient is written
out](step.html), and stays the default while it pays: in the benchmark's training step it trains
{report:feedback.hand_written_vs_autograd} as many tokens per second as `step="autograd"`, and
{report:feedback.hand_written_vs_compiled} as many as `step="autograd"` under `torch.compile`. The tests
check that both give the same outputs, memory and gradients. Generation, token by token with the
memory vectors' keys and values kept, is on [its own page](generation.html).

Around this page's code is the [memory language model](../lm.html) every model here shares (embedding,
read-out, checks, generation, model files).

```python
from labml_nn.transformers.feedback import FeedbackTransformer

model = FeedbackTransformer(num_tokens=20000, dim=512, depth=6, window=1, mem_len=256,
                            dim_head=64, heads=8, attn_dropout=0.1, ff_dropout=0.1)
logits = model(x)                                             # [batch_size, seq_len, num_tokens]
out1, mem1 = model(x1, return_memory=True)                    # mem1: [batch_size, mem_len, dim]
out2, mem2 = model(x2, memory=mem1, return_memory=True)       # x2 continues x1
text = model.generate(prompt, length=100, top_k=1)
model = FeedbackTransformer(..., step="autograd")            # the loop above, through autograd
```

| symbol | meaning | code | shape: one step; a window |
|---|---|---|---|
| $x^l_t$ | output of layer $l$ at step $t$ ($x^0_t$: the embedding) | `x` | `[batch_size, dim]`; `[batch_size, window, dim]` |
| $w$ | weights of the $N + 1$ layer outputs in the memory vector | `layer_weights` | `[depth + 1]` |
| $\mathbf{m}_t$ | memory vector of step $t$ | `m` | `[batch_size, dim]`; `[batch_size, window, dim]` |
| $L$ | memory length | `mem_len` | |
| $n_w$ | window: tokens computed in parallel (1: exact) | `window` | |
| $W_k, W_v$ | memory projections, shared or per layer | `memory_kv` | |
| $p_\delta$ | learned key of distance $\delta$ (`position_keys="learned"`) | `distance_keys` | `[mem_len + window - 1, dim_head]` |
| | keys and values of the memory a step attends to | `kv` | `[batch_size, heads, P, dim_head]` each |
"""

import functools
from typing import List, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn

from labml_nn.transformers.adaptive_span import AdaptiveSpan
from labml_nn.transformers.feed_forward import FeedForward
from labml_nn.transformers.feedback.kv_buffer import KVHistory
from labml_nn.transformers.lm import MemoryLM
from labml_nn.transformers.xl import append_memory
from labml_nn.transformers.xl.relative_mha import RelativeMultiHeadAttention, relative_shift

# The keys and the values of a memory window, each `[batch_size, heads, P, dim_head]`, as the key/value
# histories return them.
KV = Tuple[torch.Tensor, torch.Tensor]
# The implementations of the exact model's step.
STEPS = ("hand-written", "autograd")
# The forms of the position keys: Transformer-XL's, and the authors' learned table.
POSITION_KEYS = ("sinusoid", "learned")


class FeedbackAttention(RelativeMultiHeadAttention):
    r"""
    [Relative attention](../xl/relative_mha.html) whose keys all lie strictly in the past.

    Three things change. The keys and values come from the memory through a [`MemoryKV`](#MemoryKV)
    projection, so this module has no `to_kv` of its own. The position keys are for distances
    $\text{key\_len}, \dots, 1$ instead of $\text{key\_len} - 1, \dots, 0$: with the inherited relative
    shift and causal mask, query $i$ of a window that follows $P$ memory entries sees key $j$ at distance
    $P + i - j$, and never itself. And with `position_keys="learned"` the position keys are the authors'
    table $p_\delta$ ([positions](#positions)): then there is no $W_{k,R}$, $\mathbf{u}$ or $\mathbf{v}$,
    and the model gives every layer's attention its one table, `distance_keys`.
    """

    def __init__(self, dim: int, heads: int, dim_head: Optional[int], max_distance: int, dropout: float = 0.0,
                 position_keys: str = "sinusoid"):
        super().__init__(dim, heads, dim_head, dropout, nearest_distance=1)
        self.to_kv = None
        # The most keys a query can see, $L + n_w - 1$.
        self.max_distance = max_distance
        # $p_\delta$, `[max_distance, dim_head]`, row $\delta - 1$: the model's table (`None`: sinusoids).
        self.distance_keys: Optional[nn.Parameter] = None
        if position_keys == "learned":
            self.to_r = self.u = self.v = None

    def position_keys(self, key_len: int, device: torch.device) -> torch.Tensor:
        r"""
        The position keys of the distances $\delta = \text{key\_len}, \dots, 1$ (descending):
        $r_\delta = W_{k,R} R_\delta$ as `[heads, key_len, dim_head]`, or the learned $p_\delta$ as
        `[1, key_len, dim_head]`, one for all heads.
        """
        if key_len > self.max_distance:
            raise ValueError(f"{key_len} keys exceed the {self.max_distance} distances this attention was built for")
        if self.distance_keys is None:
            return super().position_keys(key_len, device)
        rows = self.distance_keys.shape[0]
        if min(key_len, self.clamp_len or key_len) > rows:
            raise ValueError(f"the learned position keys cover distances 1 to {rows}; {key_len} keys need more: "
                             f"evaluate with clamp_len <= {rows}")
        # Row $\delta - 1$ holds distance $\delta$; beyond `clamp_len` every distance reads `clamp_len`'s row.
        distances = torch.arange(key_len, 0, -1, device=device).clamp(max=self.clamp_len or key_len)
        return self.distance_keys[distances - 1][None]

    def content_queries(self, q: torch.Tensor) -> torch.Tensor:
        r"""$q_i + \mathbf{u}$; the learned form has no $\mathbf{u}$: $q_i$."""
        return q if self.u is None else super().content_queries(q)

    def score_bias(self, q: torch.Tensor, key_len: int) -> torch.Tensor:
        r"""
        The position terms, `[batch_size, heads, seq_len, key_len]`: $(q_i + \mathbf{v})^\top r_{\delta}$ as
        in [relative attention](../xl/relative_mha.html#RelativeMultiHeadAttention.score_bias), or the learned
        form's $q_i^\top p_\delta$.
        """
        if self.distance_keys is None:
            return super().score_bias(q, key_len)
        # One table for every head: `[batch_size, heads, seq_len, dim_head] @ [1, dim_head, key_len]`, against
        # the distances in descending order, then each row moved into place.
        p = self.position_keys(key_len, q.device)
        return relative_shift(q @ p.transpose(1, 2))


class MemoryKV(nn.Module):
    r"""
    Keys and values of memory vectors: $[K \,|\, V] = \operatorname{LN}(\mathbf{m}) [W_k \,|\, W_v]$,
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
    One layer: $y = x + \operatorname{Attn}(\operatorname{LN}(x), \text{memory})$, then
    $y + \operatorname{FF}(\operatorname{LN}(y))$. Maps `[batch_size, n_w, dim]` to the same shape.
    """

    def __init__(self, dim: int, heads: int, dim_head: Optional[int], d_ff: int, max_distance: int,
                 attn_dropout: float = 0.0, ff_dropout: float = 0.0, activation: str = "gelu",
                 position_keys: str = "sinusoid", span: Optional[AdaptiveSpan] = None, span_init: float = 0.0):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = FeedbackAttention(dim, heads, dim_head, max_distance, attn_dropout, position_keys)
        if span is not None:
            # [Adaptive span](../adaptive_span.html): the heads' span ratios $z$, `[heads]`.
            self.attn.span, self.attn.span_ratio = span, span.new_span_ratio(heads, span_init)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, d_ff, ff_dropout, activation)

    def forward(self, x: torch.Tensor, kv: Optional[KV], reach: Optional[int] = None) -> torch.Tensor:
        r"""
        `x` is the layer input for a window of $n_w$ steps, `[batch_size, n_w, dim]`; `kv` holds the keys
        and the values of everything they may attend to, each `[batch_size, heads, P + n_w - 1, dim_head]`:
        $P$ memory entries, then the stand-ins for the window's first $n_w - 1$ positions (none when
        $n_w = 1$). `None` when there is nothing at all (the first token of a stream). `reach`, with an
        adaptive span: $P_{span}$, the newest memory entries the heads' spans can reach.
        """
        if kv is not None:
            n_w = x.shape[1]
            q = self.attn.queries(self.attn_norm(x))
            k, v = kv
            if reach is not None:
                # Trimming: the keys beyond every head's span would all get $\chi = 0$.
                k, v = k[:, :, -(reach + n_w - 1):], v[:, :, -(reach + n_w - 1):]
            if k.shape[2] > n_w - 1:
                x = x + self.attn.attend(q, k, v)
            else:
                # No memory before the window: position 0 has no past, its attention adds nothing.
                # The others see the stand-ins before them.
                x = x + F.pad(self.attn.attend(q[:, :, 1:], k, v), (0, 0, 1, 0))
        return x + self.ff(self.ff_norm(x))


class FeedbackTransformer(MemoryLM, paper_url="https://arxiv.org/abs/2002.09402"):
    r"""
    The Feedback Transformer language model: `depth` [layers](#FeedbackLayer) that all read one memory of
    memory vectors, in the [memory language model](../lm.html#MemoryLM) shell.

    * `model(x, memory=m, return_memory=True)` → `(logits, new_memory)`: the memory is the tensor of
      memory vectors $\mathbf{m}$ of the last `mem_len` steps, `[batch_size, mem_len, dim]` (fewer until
      `mem_len` steps have been seen), detached from the graph. `memory=None` starts a new stream.
    * `shared_kv` picks the variant; `window` the number of tokens processed in parallel (1: exact);
      `step` which implementation runs the exact model's steps: `"hand-written"` ([its page](step.html))
      or `"autograd"` ([`step`](#FeedbackTransformer.step) below, through autograd).
    * `activation` is the feed-forward's, `"gelu"` or the authors' `"relu"`; `position_keys` the form of the
      position keys, `"sinusoid"` or the authors' `"learned"` ([positions](#positions)).
    * `span_ramp` turns on the [adaptive span](../adaptive_span.html) with a ramp of that many keys (`None`:
      off), `span_trim_step` is its trim step $s$ and `span_init` the span ratio every head starts from.
    * `seq_len` is the name `window` had in model files written before it was renamed (their `config.json`
      holds `seq_len`); given, it is the window.
    """

    generation_page = "labml_nn.transformers.feedback.generation"
    memory_per_layer = False

    def __init__(self, *, num_tokens: int, dim: int, depth: int, mem_len: int, window: int = 1,
                 heads: int = 8, dim_head: Optional[int] = None, ff_mult: int = 4,
                 attn_dropout: float = 0.0, ff_dropout: float = 0.0, shared_kv: bool = True,
                 activation: str = "gelu", position_keys: str = "sinusoid", span_ramp: Optional[float] = None,
                 span_trim_step: int = 64, span_init: float = 0.0, step: str = "hand-written",
                 seq_len: Optional[int] = None):
        if seq_len is not None and window not in (1, seq_len):
            raise ValueError(f"seq_len is the old name of window: give one of them, got window={window}, "
                             f"seq_len={seq_len}")
        window = seq_len or window
        if mem_len < 1 or window < 1 or depth < 1:
            raise ValueError(f"mem_len, window and depth must be >= 1, got mem_len={mem_len}, "
                             f"window={window}, depth={depth}")
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
        if position_keys not in POSITION_KEYS:
            raise ValueError(f"position_keys must be one of {', '.join(POSITION_KEYS)}, got {position_keys!r}")
        # Query $i$ of a window sees memory up to $L + i$ steps back.
        max_distance = mem_len + window - 1
        # The adaptive span's $L$, $\rho$ and $s$, the same for every layer (each has its own ratios $z$).
        span = None if span_ramp is None else AdaptiveSpan(mem_len, span_ramp, span_trim_step)
        layers = [FeedbackLayer(dim, heads, dim_head, dim * ff_mult, max_distance, attn_dropout, ff_dropout,
                                activation, position_keys, span, span_init) for _ in range(depth)]
        dim_head = layers[0].attn.dim_head
        # Variant 2: one projection for all layers; variant 1: one per layer.
        memory_kv = nn.ModuleList([MemoryKV(dim, heads, dim_head) for _ in range(1 if shared_kv else depth)])
        super().__init__(num_tokens, dim, mem_len, layers, memory_kv=memory_kv)
        self.window, self.shared_kv, self.step_implementation = window, shared_kv, step
        # $w$, one logit per layer output $x^0 \dots x^N$; zeros start the memory as their plain mean.
        self.layer_weights = nn.Parameter(torch.zeros(depth + 1))
        if position_keys == "learned":
            # $p_\delta$ in row $\delta - 1$, `[max_distance, dim_head]`, drawn from $N(0, 1)$ as the authors do:
            # one table, which every layer's attention reads.
            self.distance_keys = nn.Parameter(torch.randn(max_distance, dim_head))
            for layer in self.layers:
                layer.attn.distance_keys = self.distance_keys

    def projection_of(self, layer: int) -> int:
        """The index of the memory projection (and key/value history) that layer `layer` reads."""
        return 0 if self.shared_kv else layer

    def commit(self, histories: list, m: torch.Tensor) -> List[KV]:
        r"""Add the keys and values of the memory vectors `m`, `[batch_size, n, dim]`; returns the new windows."""
        return [history.append(project(m)) for history, project in zip(histories, self.memory_kv)]

    def step(self, x: torch.Tensor, windows: List[Optional[KV]], with_kv: bool = True,
             reach: Optional[List[Optional[int]]] = None) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        r"""
        **One step of the exact model**, as the paper states it: the embedding $x^0_t$ of step $t$, `x`,
        `[batch_size, dim]`, goes up through the layers, each attending to the memory windows of the steps
        before; then the outputs of all layers make the memory vector
        $\mathbf{m}_t = \sum_l \operatorname{softmax}(w)_l\, x^l_t$, and its keys and values are computed for
        the steps after. Returns $x^N_t$ and $\mathbf{m}_t$, both `[batch_size, dim]`, and the keys and values
        of $\mathbf{m}_t$ for each history (`[batch_size, heads, 1, 2 * dim_head]`; none unless `with_kv`).
        `reach` is each layer's [`span_reach`](#FeedbackTransformer.span_reach), read once per pass.
        """
        reach = reach or [None] * self.depth
        outputs = [x]
        for l, layer in enumerate(self.layers):
            # The layer on a window of one step: `[batch_size, 1, dim]`.
            x = layer(x[:, None], windows[self.projection_of(l)], reach[l])[:, 0]
            outputs.append(x)
        # $\mathbf{m}_t$, `[batch_size, dim]` (a weighted sum, in the precision of the residual stream)
        softmax_w = self.layer_weights.softmax(dim=0)
        m = (softmax_w[:, None, None] * torch.stack(outputs)).sum(dim=0)
        kvs = [project(m[:, None]) for project in self.memory_kv] if with_kv else []
        return x, m, kvs

    def run_window(self, x: torch.Tensor, windows: List[Optional[KV]], softmax_w: torch.Tensor,
                   reach: Optional[List[Optional[int]]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""
        Run a window of $n_w$ steps, embeddings `x`, `[batch_size, n_w, dim]`, through all layers against
        the memory windows `windows`, with `softmax_w` $= \operatorname{softmax}(w)$ (and `reach` as in
        [`step`](#FeedbackTransformer.step)). Returns the last layer's output and the memory vectors
        $\mathbf{m}$, both `[batch_size, n_w, dim]`.
        """
        reach = reach or [None] * self.depth
        # $\mathbf{m}$ accumulates layer by layer: $\operatorname{softmax}(w)_0\, x^0$ first.
        m = softmax_w[0] * x
        for l, layer in enumerate(self.layers):
            kv = windows[self.projection_of(l)]
            if x.shape[1] > 1:
                # The window's own memory is not formed yet; positions $0 \dots n_w - 2$ lend the part of
                # it that is, for the positions after them to attend to.
                stand_ins = self.memory_kv[self.projection_of(l)](m[:, :-1]).split(layer.attn.dim_head, dim=-1)
                kv = stand_ins if kv is None else tuple(torch.cat([past, new], dim=2)
                                                        for past, new in zip(kv, stand_ins))
            x = layer(x, kv, reach[l])
            m = torch.addcmul(m, softmax_w[l + 1], x)
        return x, m

    def forward_layers(self, h: torch.Tensor, memory: Optional[torch.Tensor], return_memory: bool,
                       history: Type = KVHistory) -> tuple:
        r"""
        The embeddings $x^0$ of a segment of $n$ steps, `h`, `[batch_size, n, dim]`, through the recurrence,
        step by step (or window by window) with the memory vectors' keys and values kept in a `history` per
        memory projection, a [`KVHistory`](kv_buffer.html#KVHistory) (tests and the benchmark pass the
        buffer page's plain `ConcatHistory` to compare). The keys and values of a memory from an earlier call
        are computed here, once, with the current weights. Returns the last layer's output and the new
        memory: the memory vectors of the newest `mem_len` steps.
        """
        batch_size, n, _ = h.shape
        attn = self.layers[0].attn
        # With an adaptive span, each history keeps only the newest entries its layers' spans reach.
        reach = self.span_reach()
        lengths = self.window_lengths(reach)
        past = 0 if memory is None else min(memory.shape[1], max(lengths))
        histories = [history(batch_size, attn.heads, 2 * attn.dim_head, past + n, length, h) for length in lengths]
        windows = [None] * len(histories) if memory is None else self.commit(histories, memory[:, -past:])
        outputs, memories = [], []
        if self.window == 1:
            # The exact model, token by token on `[batch_size, dim]` tensors.
            step = self.exact_steps(n, batch_size, reach)
            for t, x_t in enumerate(h.unbind(1)):
                # The keys and values of the new memory are for the steps that follow; the last step's are
                # needed only by the next call, which computes them from the returned memory.
                out, m, kvs = step(x_t, windows, with_kv=t + 1 < n)
                outputs.append(out)
                memories.append(m)
                if kvs:
                    windows = [history.append(kv) for history, kv in zip(histories, kvs)]
            out, m = torch.stack(outputs, dim=1), torch.stack(memories, dim=1)
        else:
            softmax_w = self.layer_weights.softmax(dim=0)
            for start in range(0, n, self.window):
                out, m = self.run_window(h[:, start:start + self.window], windows, softmax_w, reach)
                outputs.append(out)
                memories.append(m)
                if start + self.window < n:
                    windows = self.commit(histories, m)
            out, m = torch.cat(outputs, dim=1), torch.cat(memories, dim=1)
        return out, append_memory(memory, m, self.mem_len) if return_memory else None

    def exact_steps(self, steps: Optional[int], batch_size: int, reach: Optional[List[Optional[int]]] = None):
        r"""
        The function that runs one step of the exact model, `steps(x, windows, with_kv)` as in
        [`step`](#FeedbackTransformer.step), for a pass of `steps` tokens (`None`: generation) with the layers'
        `reach` (read here if not given): `step` itself, or the [hand-written step](step.html), which prepares
        what all the pass's steps share once.
        """
        reach = self.span_reach() if reach is None else reach
        if self.step_implementation == "autograd":
            return functools.partial(self.step, reach=reach)
        from labml_nn.transformers.feedback.step import HandWrittenSteps
        return HandWrittenSteps(self, steps, batch_size, reach)

    # ### Adaptive span

    def span_reach(self) -> List[Optional[int]]:
        r"""
        Each layer's $P_{span}$ ([`keys_needed`](../adaptive_span.html#AdaptiveSpan.keys_needed)): how many of
        the newest memory entries its heads' spans reach; `None` for a layer without a span. It reads the
        spans (a synchronisation of the device), so a pass reads it once, before its first step.
        """
        return [None if layer.attn.span is None else layer.attn.span.keys_needed(layer.attn.span_ratio)
                for layer in self.layers]

    def window_lengths(self, reach: List[Optional[int]]) -> List[int]:
        r"""How many of the newest memory entries each key/value history must return: $L$, or the furthest reach
        of the layers that read it."""
        readers = [[reach[l] for l in range(self.depth) if self.projection_of(l) == p] for p in range(len(self.memory_kv))]
        return [self.mem_len if None in r else min(self.mem_len, max(r)) for r in readers]

    def set_memory_lengths(self, mem_len: int) -> None:
        """A memory of `mem_len` steps, and attention that reaches $L + n_w - 1$ steps back."""
        super().set_memory_lengths(mem_len=mem_len)
        for layer in self.layers:
            layer.attn.max_distance = mem_len + self.window - 1

    def keys_per_query(self, seq_len: int) -> float:
        """Every step attends to the $L$ memory vectors of a full memory."""
        return self.mem_len

    def weight_uses_per_token(self, seq_len: int) -> dict:
        r"""The memory's keys and values once per step; the position keys of every distance once per segment."""
        return {"to_kv": 1.0, "to_r": self.layers[0].attn.max_distance / seq_len}
