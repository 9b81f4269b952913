r"""
---
title: The Feedback Transformer's step, with its gradient written out
summary: The exact model's layer step as one autograd function whose backward is written by hand with public torch operations, and whose weight gradients are summed over all steps of a pass in one matrix product each.
---

# The step, with its gradient written out

The [exact Feedback Transformer](index.html) (`window=1`) runs every layer once per token, on
tensors of one position per sequence: `[batch_size, dim]`. The model's page states that recurrence
with its readable layers ([`FeedbackTransformer.step`](index.html#FeedbackTransformer.step)), and
`FeedbackTransformer(step="autograd")` trains with exactly that code. This page computes the same
numbers in fewer operations, and is what the model uses by default (`step="hand-written"`). A segment of
$n$ tokens through $N$ layers is $n N$ layer steps, each a few dozen small operations; with autograd
every one of them is also a node of the graph, run backwards on its own, and each has a fixed cost
whatever its size. Two costs stand out:

* **Weight gradients, step by step.** A weight used at every step gets the sum of the gradients of all
  steps. For $W_1$ of the feed-forward network, with $\hat{y}_t$ its input and $\delta_{e_t}$ the gradient
  of its output at step $t$,

  $$\nabla_{W_1} \mathcal{L} = \sum_{t=1}^{n} \hat{y}_t^\top \delta_{e_t} = \hat{Y}^\top \Delta_e,$$

  where $\hat{Y}$ and $\Delta_e$ stack the $n$ steps' rows. Autograd computes each term as its own
  product, with an inner dimension of only `batch_size`, and adds it to the running sum: $n$ small
  products and $n$ additions of a whole weight-sized tensor. The right-hand side is *one* product with
  an inner dimension of $n \cdot$ `batch_size`.
* **Nodes.** A layer step is about twenty autograd nodes; each saves its inputs, allocates its
  gradients and goes through the engine's queue.

So the layer step is one `torch.autograd.Function`, [`LayerStep`](#LayerStep), whose backward is the
chain rule written out below, and so is the memory vector with its keys and values
([`MemoryStep`](#MemoryStep)).

## Summing the weight gradients through autograd itself

One more function per layer and forward pass, [`SharedWeights`](#SharedWeights), takes the layer's
weights as its inputs and returns, for every product whose weight gradient is wanted, a *slot*: a
tensor of $n$ rows, one per step, whose values are never read ([`LayerSlots`](#LayerSlots) names
them). Step $t$ takes row $t$ of each slot as an input, and its backward returns, as that input's
gradient, the $\delta$ of the product at step $t$ ($\delta_{e_t}$ for $W_1$). Autograd collects the $n$
rows into the slot's gradient, $\Delta_e$, and since `SharedWeights` is an ancestor of every step, runs
its backward last, when every row is in. The other factor of each product ($\hat{y}_t$) is known in the
forward pass, and the step keeps it for `SharedWeights` there. So the gradients travel only through
autograd: a backward pass that asks for the gradient of the input alone never reaches `SharedWeights`,
and leaves nothing behind that a later backward pass could pick up.

## The step and its gradient

Weights act on rows ($q = z W_q$, with $W_q$ `[dim, heads * dim_head]`) and each row of $x$ is one
sequence of the batch. The pre-norms' scale and shift and $1/\sqrt{d_h}$ fold into the products after
them once per pass ([folding](../one_token.html#fold_norm)); with primes marking folded weights,
$W_q' = \operatorname{diag}(\gamma_a) W_q / \sqrt{d_h}$, $\mathbf{u}' = (\mathbf{u} + \beta_a W_q) / \sqrt{d_h}$,
$W_1' = \operatorname{diag}(\gamma_f) W_1$ and $b_1' = b_1 + \beta_f W_1$ (and $\mathbf{v} - \mathbf{u}$ scaled by
$1/\sqrt{d_h}$ too), one step of one layer is

$$\begin{aligned}
\hat{x} &= \operatorname{LN}(x) &
q_u &= \hat{x} W_q' + \mathbf{u}', \quad q_v = q_u + (\mathbf{v} - \mathbf{u}) \\
A_j &= q_u^\top k_j + q_v^\top r_{P-j} &
a &= \operatorname{softmax}(A), \quad o = \textstyle\sum_j a_j v_j \quad \text{(per head)} \\
y &= x + o W_o + b_o &
\hat{y} &= \operatorname{LN}(y), \quad e = \hat{y} W_1' + b_1' \\
g &= \operatorname{GELU}(e) &
x' &= y + g W_2 + b_2
\end{aligned}$$

Given $\delta_{x'} = \partial \mathcal{L} / \partial x'$, the backward runs the same lines upwards:

$$\begin{aligned}
\delta_e &= (\delta_{x'} W_2^\top) \odot \operatorname{GELU}'(e) &
\delta_y &= \delta_{x'} + \operatorname{LN}^\top(\delta_e W_1'^\top) \\
\delta_o &= \delta_y W_o^\top, \quad \delta_{a_j} = \delta_o^\top v_j, \quad \delta_{v_j} = a_j \delta_o &
\delta_A &= a \odot \big(\delta_a - \textstyle\sum_j a_j \delta_{a_j}\big) \\
\delta_{k_j} &= \delta_{A_j} q_u &
\delta_{q_v} &= \textstyle\sum_j \delta_{A_j} r_{P-j}, \quad \delta_{q_u} = \textstyle\sum_j \delta_{A_j} k_j + \delta_{q_v} \\
& &
\delta_x &= \delta_y + \operatorname{LN}^\top(\delta_{q_u} W_q'^\top)
\end{aligned}$$

with the derivatives of the normalisation and of GELU written out too, in public tensor operations
only: for $\hat{x} = (x - \mu)/\sigma$,
$\operatorname{LN}^\top(\delta) = \big(\delta - \operatorname{mean}(\delta) - \hat{x}\, \operatorname{mean}(\delta \odot \hat{x})\big)/\sigma$
([`norm_backward`](#norm_backward)), and $\operatorname{GELU}'(e) = \Phi(e) + e\, \varphi(e)$ with $\Phi$ and
$\varphi$ the standard normal's distribution and density ([`gelu_derivative`](#gelu_derivative)). The
feed-forward's activation and its derivative are read from one table, `DERIVATIVES`.
The weights' gradients are the products of the stacked rows:
$\nabla_{W_2} = G^\top \Delta_{x'}$, $\nabla_{W_1'} = \hat{Y}^\top \Delta_e$, $\nabla_{W_o} = O^\top \Delta_y$,
$\nabla_{W_q'} = \hat{X}^\top \Delta_{q_u}$, $\nabla_{r^\top} = Q_v^\top \Delta_A$ (per head); $\nabla_{\mathbf{u}'}$, the
biases' gradients and $\nabla_{\mathbf{v}-\mathbf{u}} = \sum_t \delta_{q_{v,t}}$ are sums. The folding is ordinary
autograd code, run once per pass, so autograd carries these to $W_q$, $\mathbf{u}$, $\mathbf{v}$, $\gamma$,
$\beta$ and the rest. Dropout, where it is active, multiplies $a$ and $g$ by a saved mask and their
gradients by the same mask.

**Checked, and measured.** `tests/test_feedback.py` checks both functions with `gradcheck` in float64
(dropout included), and the whole model, outputs, memory and every parameter's gradient, against
`step="autograd"`. The model uses this step by default while it pays: in the benchmark's training step
(`python -m bench.feedback`) it trains {report:feedback.hand_written_vs_autograd} as many tokens per
second as `step="autograd"`, and {report:feedback.hand_written_vs_compiled} as many as `step="autograd"`
compiled by `torch.compile` (whose first step compiles for {report:feedback.compile_seconds}, again for
every new segment length). [Generation](generation.html) runs it too, without gradients.

| symbol | meaning | code | shape |
|---|---|---|---|
| $x$, $x'$ | layer input and output of one step | `x`, `out` | `[batch_size, dim]` |
| $\hat{x}$, $\hat{y}$ | the pre-norms' inputs normalised | `x_hat`, `y_hat` | `[batch_size, dim]` |
| $W_q'$, $\mathbf{u}'$ | the query weight and bias, folded | `W_q_prime`, `u_prime` | `[dim, heads * dim_head]`, `[heads * dim_head]` |
| $W_1'$, $b_1'$ | the feed-forward's first weight and bias, folded | `W_1_prime`, `b_1_prime` | `[dim, d_ff]`, `[d_ff]` |
| $q_u, q_v$ | content and position queries, scaled | `q_u`, `q_v` | `[batch_size * heads, 1, dim_head]`, `[heads, batch_size, dim_head]` |
| $k_j, v_j$ | keys and values of the $P$ memory entries | `k`, `v` | `[batch_size * heads, P, dim_head]` |
| $r_\delta$ | position keys, distances `max_distance` … 1 | `r_t` | `[heads, dim_head, max_distance]` |
| $A$ | attention scores | `scores` | `[batch_size, heads, P]` |
| $a$ | attention weights | `a` | `[batch_size, heads, P]` |
| $o$ | attention output before $W_o$ | `o` | `[batch_size, heads * dim_head]` |
| $e$, $g$ | feed-forward hidden layer before and after the activation | `e`, `g` | `[batch_size, d_ff]` |
| $\delta_\cdot$ | gradient of the loss with respect to $\cdot$ (`d_x`, `d_e`, … in the code) | | as $\cdot$ |
"""

import contextlib
import math
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from labml_nn.transformers.feedback import FeedbackLayer, FeedbackTransformer
from labml_nn.transformers.one_token import fold_norm


# ## Derivatives written out

def normalise(x: torch.Tensor, eps: float, for_backward: bool = True
              ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    r"""
    $\hat{x} = (x - \mu)/\sigma$ over the last dimension, and $1/\sigma$ for the backward; without a
    backward to come (generation), `F.layer_norm`'s one fused operation and no $1/\sigma$.
    """
    if not for_backward:
        return F.layer_norm(x, x.shape[-1:], eps=eps), None
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    rstd = (var + eps).rsqrt()
    return (x - mean) * rstd, rstd


def norm_backward(d_x_hat: torch.Tensor, x_hat: torch.Tensor, rstd: torch.Tensor) -> torch.Tensor:
    r"""$\operatorname{LN}^\top(\delta) = \big(\delta - \operatorname{mean}(\delta) - \hat{x}\operatorname{mean}(\delta \odot \hat{x})\big)/\sigma$."""
    mean_d = d_x_hat.mean(dim=-1, keepdim=True)
    mean_dx = (d_x_hat * x_hat).mean(dim=-1, keepdim=True)
    return torch.addcmul(d_x_hat - mean_d, x_hat, mean_dx, value=-1.0).mul_(rstd)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu_derivative(e: torch.Tensor) -> torch.Tensor:
    r"""$\operatorname{GELU}'(e) = \Phi(e) + e\,\varphi(e)$ for PyTorch's exact (erf) GELU."""
    cdf = torch.erf(e * _SQRT_HALF).add_(1.0).mul_(0.5)
    return torch.addcmul(cdf, e, torch.exp(e * e * -0.5).mul_(_INV_SQRT_2PI))


# The feed-forward activations the step knows, with their derivatives: the one place it reads the
# activation. A layer with another activation is refused (it trains with `step="autograd"`).
DERIVATIVES: Dict[Callable, Callable[[torch.Tensor], torch.Tensor]] = {F.gelu: gelu_derivative}


def softmax_backward(d_a: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    r"""$\delta_A = a \odot \big(\delta_a - \sum_j a_j \delta_{a_j}\big)$ over the last dimension."""
    return a * (d_a - (a * d_a).sum(dim=-1, keepdim=True))


def full_precision(device_type: str) -> contextlib.AbstractContextManager:
    r"""Autocast turned off where it is on (the steps run in the weights' precision); nothing otherwise."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def dropout_mask(t: torch.Tensor, p: float) -> Optional[torch.Tensor]:
    r"""Inverted dropout's mask for `t`, $\operatorname{Bernoulli}(1 - p) / (1 - p)$; `None` when `p` is 0."""
    if p == 0:
        return None
    return torch.empty_like(t).bernoulli_(1 - p).div_(1 - p)


# ## The weights of a pass

class LayerWeights(NamedTuple):
    r"""
    A layer's weights in the form every step of a forward pass uses them, with each pre-norm's $\gamma$
    and $\beta$ and the scale $1/\sqrt{d_h}$ folded into the product that follows (primes). The same
    fields hold their gradients.
    """
    # $W_q' = \operatorname{diag}(\gamma_a) W_q / \sqrt{d_h}$, `[dim, heads * dim_head]`
    W_q_prime: Optional[torch.Tensor]
    # $\mathbf{u}' = (\mathbf{u} + \beta_a W_q) / \sqrt{d_h}$ and $(\mathbf{v} - \mathbf{u}) / \sqrt{d_h}$,
    # `[heads * dim_head]` each
    u_prime: Optional[torch.Tensor]
    v_minus_u: Optional[torch.Tensor]
    # $r_\delta^\top$ for the distances from `max_distance` down to 1, `[heads, dim_head, max_distance]`
    r_t: Optional[torch.Tensor]
    # $W_o$, `[heads * dim_head, dim]`, and $b_o$
    W_o: Optional[torch.Tensor]
    b_o: Optional[torch.Tensor]
    # $W_1' = \operatorname{diag}(\gamma_f) W_1$, `[dim, d_ff]`, $b_1' = b_1 + \beta_f W_1$; $W_2$, `[d_ff, dim]`,
    # and $b_2$
    W_1_prime: Optional[torch.Tensor]
    b_1_prime: Optional[torch.Tensor]
    W_2: Optional[torch.Tensor]
    b_2: Optional[torch.Tensor]


class StepOptions(NamedTuple):
    """What is not a tensor: the norms' epsilon, the dropout probabilities in force, the activation."""
    eps: float
    attn_dropout: float
    ff_dropout: float
    activation: Callable[[torch.Tensor], torch.Tensor] = F.gelu


def prepare_layer(layer: FeedbackLayer) -> Tuple[LayerWeights, StepOptions]:
    r"""
    The weights of [`LayerWeights`](#LayerWeights) made from the layer's parameters, once per forward pass:
    differentiable functions of them, so the gradients found for these reach the parameters.
    """
    attn, ff = layer.attn, layer.ff
    if ff.activation not in DERIVATIVES or ff.v is not None or ff.w1.bias is None or ff.w2.bias is None:
        raise ValueError("the hand-written step implements the feed-forward networks of DERIVATIVES' activations, "
                         "ungated, with biases (use step='autograd' for others)")
    if layer.attn_norm.eps != layer.ff_norm.eps:
        raise ValueError("the hand-written step expects both pre-norms to share one eps")
    W_q_prime, u_from_beta = fold_norm(layer.attn_norm, attn.to_q.weight.t() * attn.scale)
    u_prime = attn.u.reshape(-1) * attn.scale + u_from_beta
    v_minus_u = (attn.v - attn.u).reshape(-1) * attn.scale
    r_t = attn.position_keys(attn.max_distance, u_prime.device).transpose(1, 2)
    W_1_prime, b_1_prime = fold_norm(layer.ff_norm, ff.w1.weight.t(), ff.w1.bias)
    weights = LayerWeights(W_q_prime=W_q_prime, u_prime=u_prime, v_minus_u=v_minus_u, r_t=r_t,
                           W_o=attn.to_out.weight.t(), b_o=attn.to_out.bias, W_1_prime=W_1_prime,
                           b_1_prime=b_1_prime, W_2=ff.w2.weight.t(), b_2=ff.w2.bias)
    options = StepOptions(eps=layer.attn_norm.eps, attn_dropout=attn.dropout.p if layer.training else 0.0,
                          ff_dropout=ff.dropout.p if layer.training else 0.0, activation=ff.activation)
    return weights, options


# ## Slots: the weight gradients of all steps, through autograd

class LayerSlots(NamedTuple):
    r"""
    One entry per product of a layer step whose weight gradient is summed over the steps, named by the
    $\delta$ its gradient brings: $\delta_{q_u}$ (for $W_q'$, $\mathbf{u}'$), $\delta_y$ ($W_o$, $b_o$),
    $\delta_e$ ($W_1'$, $b_1'$), $\delta_{x'}$ ($W_2$, $b_2$) and the position part of $\delta_A$
    ($r$, $\mathbf{v} - \mathbf{u}$). The slots of a pass are `[n, ...]`; one step takes row $t$ of each,
    and its backward returns that row's gradient.
    """
    q_u: Optional[torch.Tensor]
    y: Optional[torch.Tensor]
    e: Optional[torch.Tensor]
    out: Optional[torch.Tensor]
    A: Optional[torch.Tensor]


class LayerRows:
    r"""
    The rows a layer's steps know in the forward pass (one per step: $\hat{x}_t$, $o_t$, $q_{v,t}$, $\hat{y}_t$,
    $g_t$), and the shapes of the [slots](#LayerSlots) whose gradients bring the other factors.
    """

    def __init__(self, steps: int, batch_size: int, weights: LayerWeights):
        heads, dim_head, max_distance = weights.r_t.shape
        dim, d_ff = weights.W_1_prime.shape
        self.like = weights.W_o
        # `None` for a step without attention (the first of a stream): its rows are zeros.
        self.x_hat: List[Optional[torch.Tensor]] = []
        self.o: List[Optional[torch.Tensor]] = []
        self.q_v: List[Optional[torch.Tensor]] = []
        self.y_hat: List[torch.Tensor] = []
        self.g: List[torch.Tensor] = []
        self.slot_shapes = LayerSlots(q_u=(steps, batch_size, heads * dim_head), y=(steps, batch_size, dim),
                                      e=(steps, batch_size, d_ff), out=(steps, batch_size, dim),
                                      A=(steps, heads, batch_size, max_distance))
        self.row_shapes = dict(x_hat=(batch_size, dim), o=(batch_size, heads * dim_head),
                               q_v=(heads, batch_size, dim_head))

    def stacked(self, name: str) -> torch.Tensor:
        """The rows of one kind, `[n, ...]`, with zeros for the steps that had none."""
        rows = getattr(self, name)
        if any(r is None for r in rows):
            zeros = self.like.new_zeros(self.row_shapes[name])
            rows = [zeros if r is None else r for r in rows]
        return torch.stack(rows)

    def gradients(self, w: LayerWeights, d: LayerSlots) -> LayerWeights:
        r"""The gradients of the weights, from the slots' gradients `d` (`None` where none reached a slot)."""
        grads = dict.fromkeys(LayerWeights._fields)
        flat = lambda t: t.reshape(-1, t.shape[-1])  # `[n, batch_size, ·]` → `[n * batch_size, ·]`
        if d.e is not None:
            grads.update(W_1_prime=flat(self.stacked("y_hat")).t() @ flat(d.e), b_1_prime=flat(d.e).sum(0))
        if d.out is not None:
            grads.update(W_2=flat(self.stacked("g")).t() @ flat(d.out), b_2=flat(d.out).sum(0))
        if d.q_u is not None:
            grads.update(W_q_prime=flat(self.stacked("x_hat")).t() @ flat(d.q_u), u_prime=flat(d.q_u).sum(0))
        if d.y is not None:
            grads.update(W_o=flat(self.stacked("o")).t() @ flat(d.y), b_o=flat(d.y).sum(0))
        if d.A is not None:
            heads, dim_head, max_distance = w.r_t.shape
            # `[heads, n * batch_size, ·]`: the steps and the batch are the inner dimension of one product per head.
            D_A = d.A.transpose(0, 1).reshape(heads, -1, max_distance)
            Q_v = self.stacked("q_v").transpose(0, 1).reshape(heads, -1, dim_head)
            # $\sum_t \delta_{q_{v,t}} = \sum_{t,j} \delta_{A_j} r_{P-j}$: the sum over steps first, then one product.
            grads.update(r_t=torch.bmm(Q_v.transpose(1, 2), D_A),
                         v_minus_u=torch.bmm(w.r_t, D_A.sum(1)[:, :, None]).reshape(-1))
        return LayerWeights(**grads)


class MemoryRows:
    r"""The rows $\hat{\mathbf{m}}_t$ of the memory steps, and the slots of the projections' $\delta_{kv}$."""

    def __init__(self, steps: int, batch_size: int, projections: Sequence[Tuple[torch.Tensor, torch.Tensor]]):
        self.m_hat: List[Optional[torch.Tensor]] = []
        self.dim = projections[0][0].shape[0]
        self.like = projections[0][0]
        self.slot_shapes = [(steps, batch_size, W.shape[1]) for W, _ in projections]

    def gradients(self, weights: Sequence[torch.Tensor], *d_kvs: Optional[torch.Tensor]
                  ) -> Tuple[Optional[torch.Tensor], ...]:
        r"""$(\nabla_{W'}, \nabla_{b'})$ of each projection, one pair after the other."""
        zeros = self.like.new_zeros(self.slot_shapes[0][1], self.dim)
        M_hat = torch.stack([zeros if m is None else m for m in self.m_hat]).reshape(-1, self.dim)
        grads: List[Optional[torch.Tensor]] = []
        for d_kv in d_kvs:
            if d_kv is None:
                grads += [None, None]
            else:
                D_kv = d_kv.reshape(-1, d_kv.shape[-1])
                grads += [M_hat.t() @ D_kv, D_kv.sum(0)]
        return tuple(grads)


class SharedWeights(torch.autograd.Function):
    r"""
    The door through which a layer's weights (or the memory projections') enter the steps of one forward
    pass. Forward returns the slots, `[n, ...]` each, whose rows the steps take as inputs; the steps read
    the weights themselves from their arguments. Backward, which autograd runs after every step's, turns
    the slots' gradients and the rows kept in the forward pass into the weights' gradients.
    """

    @staticmethod
    def forward(ctx, rows, *weights: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        ctx.rows = rows
        # A slot no step used (no step attended, say) gets `None`, not a tensor of zeros.
        ctx.set_materialize_grads(False)
        # Saved only to be checked: if a weight the steps used (several are views of the parameters) was
        # changed in place before the backward pass, an optimiser step too early, autograd raises its usual error.
        ctx.save_for_backward(*weights)
        return tuple(weights[0].new_zeros(shape) for shape in rows.slot_shapes)

    @staticmethod
    def backward(ctx, *slot_grads: Optional[torch.Tensor]):
        if torch.is_grad_enabled():
            raise RuntimeError("the hand-written step has no second derivative (backward with create_graph=True)")
        weights = ctx.saved_tensors
        if isinstance(ctx.rows, LayerRows):
            return (None, *ctx.rows.gradients(LayerWeights(*weights), LayerSlots(*slot_grads)))
        return (None, *ctx.rows.gradients(weights, *slot_grads))


# ## One layer, one token

class FeedForwardSaved(NamedTuple):
    r"""What the feed-forward block's backward needs: $\hat{y}$, $1/\sigma$ of its norm, $e$ and the dropout mask."""
    y_hat: torch.Tensor
    rstd_f: torch.Tensor
    e: torch.Tensor
    g_mask: Optional[torch.Tensor]


class AttentionSaved(NamedTuple):
    """What the attention block's backward needs (a step with no memory to attend to saves none of it)."""
    x_hat: torch.Tensor
    rstd_a: torch.Tensor
    q_u: torch.Tensor
    q_v: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    a: torch.Tensor
    a_mask: Optional[torch.Tensor]
    a_used: torch.Tensor


class LayerStep(torch.autograd.Function):
    r"""
    One layer for one token, `x` `[batch_size, dim]` → `[batch_size, dim]`, against the keys and values
    `k`, `v` of the memory (`[batch_size, heads, P, dim_head]` each; `None` when there is no memory yet,
    and then the attention adds nothing). The first five inputs are this step's rows of the
    [slots](#LayerSlots) (`None` without gradients), `rows` what it keeps for them. The forward pass and
    its backward are the equations above.
    """

    @staticmethod
    def forward(ctx, slot_q_u, slot_y, slot_e, slot_out, slot_A, x: torch.Tensor, k: Optional[torch.Tensor],
                v: Optional[torch.Tensor], w: LayerWeights, options: StepOptions, rows: Optional[LayerRows]
                ) -> torch.Tensor:
        batch_size, dim = x.shape
        ctx.w, ctx.activation = w, options.activation
        ctx.has_attention = k is not None
        attention: Tuple[torch.Tensor, ...] = ()
        if k is None:
            y = x
            x_hat = o = q_v = None
        else:
            heads, dim_head, max_distance = w.r_t.shape
            P = k.shape[2]
            bh = batch_size * heads
            # Batch and heads as one dimension, `[batch_size * heads, P, dim_head]`: the layout of a batched product.
            k, v = k.reshape(bh, P, dim_head), v.reshape(bh, P, dim_head)
            x_hat, rstd_a = normalise(x, options.eps, rows is not None)
            # $q_u = \hat{x} W_q' + \mathbf{u}'$, `[batch_size, heads * dim_head]`; $q_v$ per head,
            # `[heads, batch_size, dim_head]`, to meet the position keys of its head
            q_u = torch.addmm(w.u_prime, x_hat, w.W_q_prime)
            q_v = (q_u + w.v_minus_u).view(batch_size, heads, dim_head).transpose(0, 1)
            q_u = q_u.view(bh, 1, dim_head)
            # $A_j$: content `[batch_size * heads, 1, dim_head] @ [batch_size * heads, dim_head, P]`, with the query
            # as the row of the product, and position against the distances $P \dots 1$, the last $P$ columns
            # of the table: `[heads, batch_size, dim_head] @ [heads, dim_head, P]`. Both stay matrix
            # products: an elementwise multiply-and-sum would make a temporary the size of the keys at every
            # step.
            content = torch.bmm(q_u, k.transpose(1, 2)).view(batch_size, heads, P)
            position = torch.bmm(q_v, w.r_t[:, :, max_distance - P:])
            scores = content + position.transpose(0, 1)
            # $a$, `[batch_size, heads, P]`
            a = scores.softmax(dim=-1)
            a_mask = dropout_mask(a, options.attn_dropout)
            a_used = a if a_mask is None else a * a_mask
            # $o = \sum_j a_j v_j$: `[batch_size * heads, 1, P] @ [batch_size * heads, P, dim_head]`, as
            # `[batch_size, heads * dim_head]`; then $y = x + o W_o + b_o$
            o = torch.bmm(a_used.view(bh, 1, P), v).view(batch_size, heads * dim_head)
            y = torch.addmm(w.b_o, o, w.W_o).add_(x)
            attention = AttentionSaved(x_hat, rstd_a, q_u, q_v, k, v, a, a_mask, a_used)
        y_hat, rstd_f = normalise(y, options.eps, rows is not None)
        # $e = \hat{y} W_1' + b_1'$ and $g$, `[batch_size, d_ff]`; then $x' = y + g W_2 + b_2$
        e = torch.addmm(w.b_1_prime, y_hat, w.W_1_prime)
        g = options.activation(e)
        g_mask = dropout_mask(g, options.ff_dropout)
        if g_mask is not None:
            g = g * g_mask
        out = torch.addmm(w.b_2, g, w.W_2).add_(y)
        if rows is not None:
            # The factors of the weight gradients that the forward pass knows.
            rows.x_hat.append(x_hat)
            rows.o.append(o)
            rows.q_v.append(q_v)
            rows.y_hat.append(y_hat)
            rows.g.append(g)
        ctx.save_for_backward(*FeedForwardSaved(y_hat, rstd_f, e, g_mask), *attention)
        return out

    @staticmethod
    def backward(ctx, d_out: torch.Tensor):
        # The backward is not itself differentiable; refuse rather than return a gradient without a graph.
        if torch.is_grad_enabled():
            raise RuntimeError("LayerStep has no second derivative (backward with create_graph=True)")
        w = ctx.w
        saved = ctx.saved_tensors
        ff = FeedForwardSaved(*saved[:len(FeedForwardSaved._fields)])
        # The feed-forward network: $\delta_g = \delta_{x'} W_2^\top$ (times the dropout mask), then
        # $\delta_e = \delta_g \odot f'(e)$ and $\delta_{\hat{y}} = \delta_e W_1'^\top$
        d_g = torch.mm(d_out, w.W_2.t())
        if ff.g_mask is not None:
            d_g = d_g * ff.g_mask
        d_e = d_g.mul_(DERIVATIVES[ctx.activation](ff.e))
        # $\delta_y = \delta_{x'} + \operatorname{LN}^\top(\delta_{\hat{y}})$
        d_y = norm_backward(torch.mm(d_e, w.W_1_prime.t()), ff.y_hat, ff.rstd_f).add_(d_out)
        if not ctx.has_attention:
            # Slots: $\delta_e$ and $\delta_{x'}$ only; then the input $x$.
            slots = LayerSlots(q_u=None, y=None, e=d_e, out=d_out, A=None)
            return (*slots, d_y, None, None, None, None, None)
        s = AttentionSaved(*saved[len(FeedForwardSaved._fields):])
        heads, dim_head, max_distance = w.r_t.shape
        bh, P, _ = s.k.shape
        batch_size = bh // heads
        # $\delta_o = \delta_y W_o^\top$, `[batch_size * heads, 1, dim_head]`
        d_o = torch.mm(d_y, w.W_o.t()).view(bh, 1, dim_head)
        # $\delta_{a_j} = \delta_o^\top v_j$ and $\delta_{v_j} = a_j \delta_o$
        d_a = torch.bmm(d_o, s.v.transpose(1, 2)).view(batch_size, heads, P)
        d_v = torch.bmm(s.a_used.view(bh, P, 1), d_o)
        if s.a_mask is not None:
            d_a = d_a * s.a_mask
        # $\delta_A$, `[batch_size, heads, P]`
        d_A = softmax_backward(d_a, s.a)
        # $\delta_{k_j} = \delta_{A_j} q_u$: `[batch_size * heads, P, 1] @ [batch_size * heads, 1, dim_head]`
        d_k = torch.bmm(d_A.view(bh, P, 1), s.q_u)
        # $\sum_j \delta_{A_j} k_j$ and, per head, $\delta_{q_v} = \sum_j \delta_{A_j} r_{P-j}$
        d_qu = torch.bmm(d_A.view(bh, 1, P), s.k).view(batch_size, heads * dim_head)
        d_position = d_A.transpose(0, 1)
        d_qv = torch.bmm(d_position, w.r_t[:, :, max_distance - P:].transpose(1, 2))
        d_qu = d_qu.add_(d_qv.transpose(0, 1).reshape(batch_size, heads * dim_head))
        # $\delta_{\hat{x}} = \delta_{q_u} W_q'^\top$, and $\delta_x = \delta_y + \operatorname{LN}^\top(\delta_{\hat{x}})$
        d_x = norm_backward(torch.mm(d_qu, w.W_q_prime.t()), s.x_hat, s.rstd_a).add_(d_y)
        # The position slot covers every distance: this step's $P$ are the last $P$, `[heads, batch_size, max_distance]`.
        slots = LayerSlots(q_u=d_qu, y=d_y, e=d_e, out=d_out, A=F.pad(d_position, (max_distance - P, 0)))
        # The keys' and values' gradients in the layout they came in, `[batch_size, heads, P, dim_head]`.
        return (*slots, d_x, d_k.view(batch_size, heads, P, dim_head), d_v.view(batch_size, heads, P, dim_head),
                None, None, None)


class LayerSteps:
    r"""
    The steps of one layer in one forward pass of `steps` tokens: `layer_steps(x, kv)` runs the layer for
    one token. With gradients enabled, the weights go through [`SharedWeights`](#SharedWeights) and each
    call takes the next row of its slots.
    """

    def __init__(self, weights: LayerWeights, options: StepOptions, steps: int, batch_size: int):
        self.options = options
        self.weights = LayerWeights(*(t.detach() for t in weights))
        self.rows = self.slots = None
        if torch.is_grad_enabled():
            self.rows = LayerRows(steps, batch_size, self.weights)
            self.slots = [LayerSlots(*rows) for rows in zip(*(slot.unbind(0) for slot in
                                                              SharedWeights.apply(self.rows, *weights)))]
        self.t = 0

    def __call__(self, x: torch.Tensor, kv: Optional[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        k, v = (None, None) if kv is None else kv
        slots = LayerSlots(None, None, None, None, None) if self.slots is None else self.slots[self.t]
        self.t += 1
        # The step computes in the weights' precision whatever `torch.autocast` says: its backward is
        # written for one dtype.
        with full_precision(x.device.type):
            return LayerStep.apply(*slots, x, k, v, self.weights, self.options, self.rows)


# ## The memory vector of one token

class MemoryStep(torch.autograd.Function):
    r"""
    The memory vector of one step and, for the steps after it, its keys and values:
    $\mathbf{m}_t = \sum_l \operatorname{softmax}(w)_l\, x^l_t$ from the outputs $x^0_t \dots x^N_t$ (each
    `[batch_size, dim]`), and $[k | v] = \hat{\mathbf{m}}_t W' + b'$ for each memory projection (the
    norm's $\gamma, \beta$ folded into $W', b'$ as in the layers), each `[batch_size, heads, 1, 2 * dim_head]`,
    the layout the [key/value history](kv_buffer.html) appends. Backwards:
    $\delta_{\mathbf{m}} \mathrel{+}= \operatorname{LN}^\top\big(\sum_p \delta_{kv_p} W_p'^\top\big)$, then
    $\delta_{x^l} = \operatorname{softmax}(w)_l\, \delta_{\mathbf{m}}$ and
    $\delta_{\operatorname{softmax}(w)_l} = \langle x^l, \delta_{\mathbf{m}} \rangle$.
    """

    @staticmethod
    def forward(ctx, softmax_w: torch.Tensor, projections: Tuple[Tuple[torch.Tensor, torch.Tensor], ...],
                heads: int, eps: float, rows: Optional[MemoryRows], n_slots: int, *inputs: torch.Tensor):
        # The first `n_slots` inputs are this step's rows of the projections' slots; the rest the outputs.
        outputs = inputs[n_slots:]
        batch_size, dim = outputs[0].shape
        # `[depth + 1, batch_size * dim]`, and $\mathbf{m}_t$ as one matrix-vector product
        X = torch.stack(outputs).view(len(outputs), -1)
        m = torch.mv(X.t(), softmax_w).view(batch_size, dim)
        ctx.projections, ctx.shape, ctx.n_slots = projections, (batch_size, dim), n_slots
        if not projections:
            if rows is not None:
                rows.m_hat.append(None)
            ctx.save_for_backward(X, softmax_w)
            return m
        m_hat, rstd = normalise(m, eps, rows is not None)
        if rows is not None:
            rows.m_hat.append(m_hat)
        kvs = [torch.addmm(b, m_hat, W).view(batch_size, heads, 1, -1) for W, b in projections]
        ctx.save_for_backward(X, softmax_w, m_hat, rstd)
        return (m, *kvs)

    @staticmethod
    def backward(ctx, d_m: torch.Tensor, *d_kvs: torch.Tensor):
        if torch.is_grad_enabled():
            raise RuntimeError("MemoryStep has no second derivative (backward with create_graph=True)")
        X, softmax_w, *normalised = ctx.saved_tensors
        d_slots = [None] * ctx.n_slots
        if ctx.projections:
            m_hat, rstd = normalised
            d_m_hat = None
            for p, ((W, _), d_kv) in enumerate(zip(ctx.projections, d_kvs)):
                d_kv = d_kv.reshape(ctx.shape[0], -1)
                d_slots[p] = d_kv
                d_m_hat = torch.mm(d_kv, W.t()) if d_m_hat is None else d_m_hat.addmm_(d_kv, W.t())
            d_m = norm_backward(d_m_hat, m_hat, rstd).add_(d_m)
        # $\delta_{x^l} = \operatorname{softmax}(w)_l\, \delta_{\mathbf{m}}$ for all $l$ at once, `[depth + 1, batch_size, dim]`,
        # and $\delta_{\operatorname{softmax}(w)} = X \delta_{\mathbf{m}}$
        d_m = d_m.reshape(-1)
        d_outputs = torch.outer(softmax_w, d_m).view(len(softmax_w), *ctx.shape).unbind(0)
        return (torch.mv(X, d_m), None, None, None, None, None, *d_slots, *d_outputs)


class MemorySteps:
    r"""
    The memory vector of each step of one forward pass and its keys and values:
    `memory_steps(outputs, with_kv)` → `(m, kvs)`, through [`MemoryStep`](#MemoryStep); `kvs` is empty when
    `with_kv` is false (the last step of a pass, whose keys and values no step of the pass reads).
    `projections` are each memory projection's $(W', b')$, `[dim, heads * 2 * dim_head]` and
    `[heads * 2 * dim_head]`.
    """

    def __init__(self, softmax_w: torch.Tensor, projections: List[Tuple[torch.Tensor, torch.Tensor]], heads: int,
                 eps: float, steps: int, batch_size: int):
        self.softmax_w, self.heads, self.eps = softmax_w, heads, eps
        self.projections = tuple((W.detach(), b.detach()) for W, b in projections)
        self.rows = self.slots = None
        if torch.is_grad_enabled():
            self.rows = MemoryRows(steps, batch_size, self.projections)
            flat = [t for pair in projections for t in pair]
            self.slots = list(zip(*(slot.unbind(0) for slot in SharedWeights.apply(self.rows, *flat))))
        self.t = 0

    def __call__(self, outputs: List[torch.Tensor], with_kv: bool = True
                 ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        slots = () if self.slots is None or not with_kv else self.slots[self.t]
        self.t += 1
        with full_precision(outputs[0].device.type):
            result = MemoryStep.apply(self.softmax_w, self.projections if with_kv else (), self.heads, self.eps,
                                      self.rows, len(slots), *slots, *outputs)
        if not with_kv:
            return result, []
        return result[0], list(result[1:])


# ## The steps of a forward pass

class HandWrittenSteps:
    r"""
    What [`FeedbackTransformer.step`](index.html#FeedbackTransformer.step) computes, for one forward pass of
    `steps` tokens (`None` without gradients: generation): `steps(x, windows, with_kv)` runs the embeddings
    `x`, `[batch_size, dim]`, through every layer's [`LayerStep`](#LayerStep) and the
    [`MemoryStep`](#MemoryStep), and returns the last layer's output, the memory vector and its keys and
    values for each history. What every step shares (the folded weights, the position keys) is prepared
    here, once.
    """

    def __init__(self, model: FeedbackTransformer, steps: Optional[int], batch_size: int):
        self.model = model
        self.layers = []
        # In the weights' precision, like the steps (see `LayerSteps`).
        with full_precision(model.token_emb.weight.device.type):
            for layer in model.layers:
                weights, options = prepare_layer(layer)
                self.layers.append(LayerSteps(weights, options, steps or 1, batch_size))
            norm = model.memory_kv[0].norm
            projections = [fold_norm(project.norm, project.to_kv.weight.t()) for project in model.memory_kv]
            self.memory = MemorySteps(model.layer_weights.softmax(dim=0), projections, model.layers[0].attn.heads,
                                      norm.eps, steps or 1, batch_size)

    def __call__(self, x: torch.Tensor, windows: List[Optional[Tuple[torch.Tensor, torch.Tensor]]],
                 with_kv: bool = True) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        outputs = [x]
        for l, layer_steps in enumerate(self.layers):
            x = layer_steps(x, windows[self.model.projection_of(l)])
            outputs.append(x)
        m, kvs = self.memory(outputs, with_kv)
        return x, m, kvs
