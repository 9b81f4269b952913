r"""
---
title: Adaptive attention span
summary: Each head learns how far back it looks, through a soft mask on its attention weights with a differentiable span and a penalty on its length; the keys beyond every head's span are never computed.
paper: https://arxiv.org/abs/1905.07799
---

# Adaptive attention span

A memory transformer gives every head of every layer the same window of $L$ keys. Sukhbaatar et al.
([Adaptive Attention Span in Transformers](https://arxiv.org/abs/1905.07799), 2019; one of them is an
author of the [Feedback Transformer](feedback/index.html)) observed that in a character-level language
model most heads look only a few dozen characters back, while a few use thousands. If each head
*learned* its span, the long window would cost only what the long-range heads use. Both
[Transformer-XL](xl/index.html#adaptive-span) and the [Feedback Transformer](feedback/index.html) offer it
here, as `span_ramp=` (off by default).

A span must be learned by gradient descent, so it cannot be a hard cut-off. Each head $h$ has a
**span ratio** $z_h \in [0, 1]$, its span as a fraction of $L$, and multiplies its attention weights by a
soft mask of the distance $\delta$ between query and key, with a linear **ramp** of length $\rho$:

$$\chi_z(\delta) = \min\Big(\max\Big(\frac{zL - (\delta - \delta_0)}{\rho} + 1,\; 0\Big),\; 1\Big)$$

where $\delta_0$ is the distance of the nearest key a query sees: $1$ in the
[Feedback Transformer](feedback/index.html), whose keys all lie in the past, $0$ in
[Transformer-XL](xl/index.html), where a position attends to itself. The mask is $1$ for the $\lfloor zL \rfloor + 1$
nearest keys, falls linearly to $0$ over the next $\rho$ and is $0$ beyond: so the nearest key always
keeps its full weight, and a head with $z = 0$ still sees a ramp of $\rho$ keys. With the Feedback
Transformer's $\delta_0 = 1$ this is $\chi_z(\delta) = \operatorname{clamp}\big((zL - \delta + 1)/\rho + 1, 0, 1\big)$,
exactly the mask of the authors' code; below, the code computes $\delta - \delta_0$ directly from a key's
position behind the newest key the query may see, so one implementation serves both models.

The paper applies the mask to the exponentials of the scores, $a_{i,j} \propto \chi_z(\delta_{ij}) \exp(A_{i,j})$.
Since the softmax's own normaliser cancels, that is the softmax's weights $a$ masked and renormalised:

$$\hat{a}_{i,j} = \frac{a_{i,j}\, \chi_z(\delta_{ij})}{\sum_{j'} a_{i,j'}\, \chi_z(\delta_{ij'}) + \epsilon}$$

with $\epsilon = 10^{-8}$ against a row of zeros, which is how the authors compute it and how an
attention applies it here: at one place, after the softmax and before dropout.

**The span loss.** Nothing in the language-model loss asks for short spans; the paper adds an $\ell_1$
penalty on the spans in tokens, a mean over a layer's heads summed over the layers,

$$\mathcal{L}^{span} = \sum_{l} L \cdot \frac{1}{H} \sum_{h} z^l_h,$$

which the training loop multiplies by a small coefficient (`--span-loss`) and adds to the training loss only.
After every optimiser step the ratios are clamped back into $[0, 1]$ ([`clamp_spans_`](#clamp_spans_)).

**Where the speed comes from: trimming.** Beyond $zL + \rho$ the mask is $0$, so keys further back than
every head's span contribute nothing. A layer needs only the newest

$$P_{span} = \Big\lceil \frac{\lfloor \max_h z_h L + \rho \rfloor + 1}{s} \Big\rceil \cdot s$$

keys per query, rounded up to a multiple of a trim step $s_{trim}$ so that the shapes change rarely (and
fewer if fewer are there); a segment of $n$ queries needs $P_{span} + n - 1$. The attention is computed
over only those, and gives the same weights as masking the full window: the dropped keys' products
$a_{i,j} \chi$ are exactly $0$ either way, and the softmax normaliser, the only thing the dropped keys
change, cancels in the renormalisation (all but its share of $\epsilon$;
[the tests](../../tests/test_adaptive_span.py) check both). When the spans are short this removes most
of the attention's work and, for the Feedback Transformer, most of the keys and values of the memory: at
a memory of 512 with every span at its shortest, its training step runs
{report:feedback.span_trimmed_vs_untrimmed_512} as fast trimmed as untrimmed (`python -m bench.feedback`).

## The gradient with respect to the span

A [step whose backward is written by hand](feedback/step.html) needs the mask's gradient spelled out.
For one head and one query, with $b_j = a_j \chi_j$, $S = \sum_j b_j + \epsilon$ and $\hat{a}_j = b_j / S$:

$$\delta_{b_j} = \frac{\delta_{\hat{a}_j} - \sum_k \hat{a}_k\, \delta_{\hat{a}_k}}{S}, \qquad
\delta_{a_j} = \chi_j\, \delta_{b_j}, \qquad \delta_{\chi_j} = a_j\, \delta_{b_j}$$

($\delta_a$ then goes through the softmax's backward as before). $\chi_j$ depends on $z$ only on the ramp,
$zL \le \delta_j - \delta_0 \le zL + \rho$, where $\partial \chi_j / \partial z = L / \rho$; so

$$\frac{\partial \hat{a}_j}{\partial z} = \frac{L}{\rho} \cdot \frac{[\,j \in \text{ramp}\,]\; a_j - \hat{a}_j \sum_{k \in \text{ramp}} a_k}{S},
\qquad
\delta_z = \frac{L}{\rho} \sum_{\text{batch},\, i} \;\sum_{j \in \text{ramp}} a_j\, \delta_{b_j}.$$

Every weight moves when $z$ does (through $S$), but only the keys on the ramp contribute to $\delta_z$,
and a head none of whose keys lies on its ramp gets no gradient from the language model, only the
span loss's. The ramp's two ends are included:
that is the subgradient PyTorch's `clamp` takes at its corners, so the hand-written gradient is the one
autograd computes for the readable code, also at $z = 0$, where training starts and where the clamp
holds a head whose span the loss keeps pushing down.

| symbol | meaning | code | shape |
|---|---|---|---|
| $z$ | span ratio of each head: its span as a fraction of $L$ | `span_ratio` | `[heads]` |
| $L$ | the window the span scales: the memory length, the authors' attention limit | `mem_len` | |
| $\rho$ | length of the mask's ramp, in keys | `span_ramp` | |
| $s_{trim}$ | trim step: the kept keys are a multiple of it | `span_trim_step` | |
| $\delta_0$ | the distance of the nearest key a query sees (1: Feedback, 0: Transformer-XL) | | |
| $\chi_z(\delta)$ | the soft mask | `chi` | `[heads, seq_len, key_len]` |
| $\partial \chi / \partial z$ | its slope: $L / \rho$ on the ramp, 0 elsewhere | `slope` | `[heads, seq_len, key_len]` |
| $a$ | attention weights after the softmax | `a` | `[batch_size, heads, seq_len, key_len]` |
| $\hat{a}$ | the same, masked and renormalised | `a_hat` | `[batch_size, heads, seq_len, key_len]` |
| $\epsilon$ | the renormalisation's guard against zero | `eps` | |
| $P_{span}$ | keys one query needs under the current spans | `keys_needed` | |

## Where this page differs from the paper and from the authors' code

| | paper | authors' code (`modules/adaptive_mask.py`, `modules/adaptive_span.py` of facebookresearch/transformer-sequential) | this page |
|---|---|---|---|
| mask | $\operatorname{clamp}((\rho + z - \delta)/\rho, 0, 1)$, $z$ in tokens, $\delta \ge 1$: the nearest key is inside the ramp when $z < 1$ | $z$ as a ratio of $L$; full weight up to distance $zL + 1$ | the authors' mask, counted from the nearest key a query sees ($\delta - \delta_0$), so also for Transformer-XL's $\delta_0 = 0$ |
| where applied | on $\exp(A)$ inside the softmax | softmax, mask, renormalise with $\epsilon$, dropout | the same |
| span loss | $\lambda / H \sum_h z_h$ per layer ($z$ in tokens) | $\lambda \cdot L \cdot \operatorname{mean}_h(z)$ per layer, added to the training loss | `span_loss` returns $\sum_l L \operatorname{mean}_h z^l$; the coefficient is the trainer's |
| kept keys | — | drops the oldest keys in multiples of $s$: keeps $L - s \lfloor (L - \lceil \max z L + \rho \rceil)/s \rfloor$ | keeps $P_{span}$, a multiple of $s$ counted from the newest key; the same count when $s$ divides $L$ (the enwik8 model: $L = 8192$, $s = 64$), except that the key at the ramp's far end, of weight 0 but with a gradient, is kept when $zL + \rho$ is a whole number |
| one span per layer | — | an option (`--adapt-span-layer`) | not offered: one span per head |

## How an attention uses it

An attention that has a span keeps the helper and its parameter, `attn.span` and `attn.span_ratio`
(`[heads]`, made by [`AdaptiveSpan.new_span_ratio`](#AdaptiveSpan.new_span_ratio)), trims its keys and
values, and masks its weights after the softmax:

```python
keep = attn.span.trimmed_key_len(attn.span_ratio, k.shape[-2], q.shape[-2])
k, v = k[..., -keep:, :], v[..., -keep:, :]   # the newest `keep` keys and values (and of a mask, if given)
...                                           # scores and softmax over them as before: a, [batch_size, heads, seq_len, keep]
a = attn.span(a, attn.span_ratio)             # masked and renormalised
out = attn.dropout(a) @ v
```

A model sums [`span_loss`](#span_loss) over its attentions for the trainer, and calls
[`clamp_spans_`](#clamp_spans_) after each optimiser step.

## The spans a trained model learns

![The span of each head in each layer of a trained Feedback Transformer](pictures/adaptive_spans.png)

*The span $zL$ of each of the {report:pictures.adaptive_span_heads} heads of a
[Feedback Transformer](feedback/index.html) with an adaptive span (width 128, 4 layers of 4 heads,
$L = 32$, $\rho = 8$, span loss $4 \cdot 10^{-4}$, 800 steps on Tiny Shakespeare):
{report:pictures.adaptive_span_model}. The dark bar is the span, the light one the ramp up to $zL + \rho$
where the mask reaches 0, the dashed line the window $L$; the number above a bar is its span in keys. The
mean span is {report:pictures.adaptive_span_mean} keys and the longest {report:pictures.adaptive_span_max};
{report:pictures.adaptive_span_short} heads have $zL < 1$, so that their mask is that of $z = 0$ moved by
less than a key ({report:pictures.adaptive_span_zero} of them exactly at $z = 0$, held there by the clamp).*

`python -m scripts.pictures --spans` draws it (`make pictures` includes it). The run is the row `span` of
`bench.feedback_options`, whose results the [Feedback Transformer page](feedback/index.html) quotes; that
bench keeps no checkpoints, so the script trains the run again with the command its report stores and
stops unless the validation bits per character are the report's.

The paper's figure shows what its introduction describes: in a character-level model with a window of
thousands of characters, the spans are short in the lower layers and very long in the last ones. Nothing of
that kind happened here. Every head's span stayed within a fraction of a key of $z = 0$, where training
starts, whatever its layer: each head gives full weight to its nearest key and reaches back only through
the ramp's $\rho$ keys. The language model's gradient reaches $z$ only through the keys on a head's ramp,
while the span loss pushes every $z$ down, and in these 800 steps with $L = 32$ no span grew past one key.
What the span row gains over the same model without a span (its row `sinusoid`) therefore comes from every
head reading a short, soft window of about $\rho$ keys, not from heads that learned to look far.
"""

import math
from typing import Iterable, Tuple

import torch
from torch import nn

# $\epsilon$ of the renormalisation, the authors' value.
EPS = 1e-8


# ## The masked attention weights, and their gradient

def renormalise(a: torch.Tensor, chi: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    r"""
    $\hat{a}_j = a_j \chi_j / (\sum_k a_k \chi_k + \epsilon)$ over the last dimension (the keys).

    `a` is `[batch_size, heads, seq_len, key_len]` (or any shape ending in the keys) and `chi` broadcasts
    to it, `[heads, seq_len, key_len]`; the result has the shape of `a`.
    """
    b = a * chi
    return b / (b.sum(dim=-1, keepdim=True) + eps)


def renormalise_backward(d_a_hat: torch.Tensor, a: torch.Tensor, chi: torch.Tensor, a_hat: torch.Tensor,
                         eps: float = EPS) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""
    The backward of [`renormalise`](#renormalise), for a hand-written step: given $\delta_{\hat{a}}$
    (`d_a_hat`, the shape of `a`), returns $\delta_a = \chi \odot \delta_b$, the shape of `a`, and
    $\delta_\chi = a \odot \delta_b$ summed over the dimensions along which `chi` was broadcast (the batch),
    the shape of `chi`, with $\delta_b = (\delta_{\hat{a}} - \sum_k \hat{a}_k \delta_{\hat{a}_k}) / S$.
    """
    # $S$, recomputed from what the forward saved rather than saved itself: one sum over the keys.
    total = (a * chi).sum(dim=-1, keepdim=True) + eps
    d_b = (d_a_hat - (a_hat * d_a_hat).sum(dim=-1, keepdim=True)) / total
    return chi * d_b, (a * d_b).sum_to_size(chi.shape)


def span_ratio_gradient(d_chi: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    r"""
    $\delta_z = \sum \frac{\partial \chi}{\partial z} \delta_\chi$ per head, `[heads]`, from $\delta_\chi$ and
    the slope, both `[heads, ...]` (as [`AdaptiveSpan.slope`](#AdaptiveSpan.slope) returns it).
    """
    return (d_chi * slope).flatten(1).sum(dim=1)


# ## The span of one attention

class AdaptiveSpan:
    r"""
    The adaptive span of one attention's heads: the window $L$ (`mem_len`) its ratios scale, the ramp
    $\rho$ (`span_ramp`) and the trim step $s_{trim}$ (`span_trim_step`). It holds no tensor: the ratios $z$
    are the attention's parameter `span_ratio`, `[heads]`, passed to each method, so that a hand-written
    step can pass the detached values it works with and return their gradient itself.
    """

    def __init__(self, mem_len: int, span_ramp: float, span_trim_step: int = 64):
        if not isinstance(mem_len, int) or mem_len < 1:
            raise ValueError(f"mem_len (L, the window the span ratios scale) must be a positive int, got {mem_len!r}")
        if not span_ramp > 0:
            raise ValueError(f"span_ramp (the mask's ramp, in keys) must be > 0, got {span_ramp!r}")
        if not isinstance(span_trim_step, int) or span_trim_step < 1:
            raise ValueError(f"span_trim_step must be a positive int, got {span_trim_step!r}")
        self.mem_len, self.span_ramp, self.span_trim_step = mem_len, float(span_ramp), span_trim_step

    def __repr__(self) -> str:
        return (f"AdaptiveSpan(mem_len={self.mem_len}, span_ramp={self.span_ramp:g}, "
                f"span_trim_step={self.span_trim_step})")

    @staticmethod
    def new_span_ratio(heads: int, span_init: float = 0.0) -> nn.Parameter:
        r"""A fresh parameter $z$, `[heads]`, every head at `span_init` (the authors start at 0: the ramp only)."""
        if not 0.0 <= span_init <= 1.0:
            raise ValueError(f"span_init (z at the start) must be in [0, 1], got {span_init!r}")
        return nn.Parameter(torch.full((heads,), float(span_init)))

    def unclamped(self, span_ratio: torch.Tensor, key_len: int, seq_len: int = 1) -> torch.Tensor:
        r"""
        $(zL - (\delta - \delta_0))/\rho + 1$ for `seq_len` queries over `key_len` keys, query $i$ seeing keys
        up to $key\_len - seq\_len + i$ (its own position in Transformer-XL, the step before it in the
        Feedback Transformer), as `[heads, seq_len, key_len]`: the mask before the clamp, in the one place
        both the mask and its slope read it.
        """
        if span_ratio.dim() != 1:
            raise ValueError(f"span_ratio must be [heads], got shape {tuple(span_ratio.shape)}")
        if seq_len < 1 or key_len < 1:
            raise ValueError(f"seq_len and key_len must be >= 1, got seq_len={seq_len}, key_len={key_len}")
        # Query $i$ may see keys up to $key\_len - seq\_len + i$; key $j$ lies `offset` $= \delta - \delta_0$
        # behind that newest key, whichever the model's $\delta_0$ is. `[seq_len, key_len]`; negative for the
        # future keys the causal mask removes (where $\chi = 1$ and nothing depends on $z$).
        i = torch.arange(seq_len, device=span_ratio.device)[:, None]
        j = torch.arange(key_len, device=span_ratio.device)[None, :]
        offset = (key_len - seq_len + i - j).to(span_ratio.dtype)
        # `[heads, 1, 1]` against `[seq_len, key_len]`
        return (span_ratio[:, None, None] * self.mem_len - offset) / self.span_ramp + 1

    def mask(self, span_ratio: torch.Tensor, key_len: int, seq_len: int = 1) -> torch.Tensor:
        r"""
        $\chi_z(\delta)$, `[heads, seq_len, key_len]`, differentiable with respect to `span_ratio`. The mask of
        the newest $P$ keys is the last $P$ columns of the mask of more: it depends only on how far behind
        the newest key a key lies.
        """
        return self.unclamped(span_ratio, key_len, seq_len).clamp(0.0, 1.0)

    def slope(self, span_ratio: torch.Tensor, key_len: int, seq_len: int = 1) -> torch.Tensor:
        r"""
        $\partial \chi / \partial z$, `[heads, seq_len, key_len]`: $L / \rho$ on the ramp, ends included (the
        subgradient of `clamp` that autograd takes), 0 elsewhere.
        """
        u = self.unclamped(span_ratio.detach(), key_len, seq_len)
        on_ramp = (u >= 0) & (u <= 1)
        return on_ramp.to(u.dtype) * (self.mem_len / self.span_ramp)

    def __call__(self, a: torch.Tensor, span_ratio: torch.Tensor, eps: float = EPS) -> torch.Tensor:
        r"""
        $\hat{a}$ for the attention weights `a`, `[batch_size, heads, seq_len, key_len]` (the heads third from
        last), straight after the softmax; returns the same shape.
        """
        if a.dim() < 3 or a.shape[-3] != span_ratio.shape[0]:
            raise ValueError(f"attention weights must be [..., heads={span_ratio.shape[0]}, seq_len, key_len], "
                             f"got shape {tuple(a.shape)}")
        chi = self.mask(span_ratio, a.shape[-1], a.shape[-2]).to(a.dtype)
        return renormalise(a, chi, eps)

    # ### Trimming

    def keys_needed(self, span_ratio: torch.Tensor) -> int:
        r"""
        $P_{span}$: the newest keys one query needs under the current spans, every key with
        $\delta - \delta_0 \le \max_h z_h L + \rho$, rounded up to a multiple of `span_trim_step`. (It reads
        the spans: one synchronisation of the device, so call it once per forward pass, not per step.)
        """
        # The longest span decides; its mask falls with the distance. Counted with the mask's own arithmetic
        # (`unclamped`, on the CPU: one small copy), so that a key is dropped exactly when its $\chi$ and its
        # slope are both 0, whatever the rounding at the ramp's far end.
        z_max = span_ratio.detach().max().reshape(1).cpu()
        bound = math.floor(float(z_max) * self.mem_len + self.span_ramp) + 3
        needed = int((self.unclamped(z_max, bound) >= 0).sum())
        return math.ceil(needed / self.span_trim_step) * self.span_trim_step

    def trimmed_key_len(self, span_ratio: torch.Tensor, key_len: int, seq_len: int = 1) -> int:
        r"""
        How many of the newest of `key_len` keys `seq_len` queries need: $P_{span} + n - 1$, at most `key_len`.
        An attention keeps `k[..., -keep:, :]` and the same of `v` (and of any mask it is given); the earlier
        keys would all get $\chi = 0$.
        """
        return min(key_len, self.keys_needed(span_ratio) + seq_len - 1)

    def loss(self, span_ratio: torch.Tensor) -> torch.Tensor:
        r"""This attention's term of $\mathcal{L}^{span}$, $L \cdot \operatorname{mean}_h z_h$, a scalar."""
        return span_ratio.mean() * self.mem_len

    def spans(self, span_ratio: torch.Tensor) -> torch.Tensor:
        r"""The spans in keys, $z L$, `[heads]`: what the pages' pictures show."""
        return span_ratio.detach() * self.mem_len


# ## For the model and the trainer

def span_loss(attentions: Iterable[nn.Module]) -> torch.Tensor:
    r"""
    $\mathcal{L}^{span} = \sum_l L \cdot \operatorname{mean}_h z^l_h$, a scalar, over the attentions that have
    a span (an attribute `span`, an [`AdaptiveSpan`](#AdaptiveSpan) or `None`, and `span_ratio`); a constant
    zero when none has one, so that a training loop can always add it. The trainer multiplies it by its
    coefficient and adds it to the training loss only.
    """
    attentions = list(attentions)
    terms = [attn.span.loss(attn.span_ratio) for attn in attentions if getattr(attn, "span", None) is not None]
    if terms:
        return torch.stack(terms).sum()
    like = next((p for attn in attentions for p in attn.parameters()), None)
    return torch.zeros(()) if like is None else like.new_zeros(())


@torch.no_grad()
def clamp_spans_(attentions: Iterable[nn.Module]) -> None:
    r"""Put every span ratio back into $[0, 1]$, in place: after each optimiser step, as the authors do."""
    for attn in attentions:
        if getattr(attn, "span", None) is not None:
            attn.span_ratio.clamp_(0.0, 1.0)
