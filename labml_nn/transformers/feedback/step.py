r"""
---
title: The Feedback Transformer's step, with its gradient written out
summary: The exact model's layer step as one autograd function whose backward is written by hand, and whose weight gradients are summed over all steps of a pass in one matrix product each.
---

# The step, with its gradient written out

The [exact Feedback Transformer](index.html) (`seq_len=1`) runs every layer once per token, on
tensors of one position per sequence: `[batch_size, dim]`. In a 32-token segment with 4 layers that is 128
layer steps, each a few dozen tiny operations. With autograd, every one of them is also recorded as a
node of the graph and run backwards as a separate node, and at this size the bookkeeping is a large
share of the time. Two costs stand out:

* **Weight gradients, step by step.** A weight used at every step gets the sum of the gradients of all
  steps. For $W_1$ of the feed-forward network, with $z_t$ its input and $\delta_{h_t}$ the gradient of its output at step $t$,

  $$\nabla_{W_1} \mathcal{L} = \sum_{t=1}^{T} z_t^\top \delta_{h_t} = Z^\top \Delta_h,$$

  where $Z$ and $\Delta_h$ stack the $T$ steps' rows. Autograd computes each term as its own product
  (an inner dimension of `batch_size`, 8 in the benchmark, which runs a CPU's matrix units at a fraction of their speed)
  and adds it to the running sum: $T$ small products and $T$ additions of a whole weight-sized
  tensor. The right-hand side is *one* product with an inner dimension of $T \cdot$ `batch_size`.
* **Nodes.** A layer step is about twenty autograd nodes; each saves its inputs, allocates its
  gradients and goes through the engine's queue.

So the layer step is one `torch.autograd.Function`, [`LayerStep`](#LayerStep), whose backward is the
chain rule written out below, and so is the memory vector with its keys and values
([`MemoryStep`](#MemoryStep)). They return the gradients of their inputs (the layer input $x$, the keys and
values, which the [key/value buffer](kv_buffer.html) collects, the layer outputs that make the memory),
and for the weights they only *record* the two factors of each product, $(\hat{y}_t, \delta_{h_t})$ for
$W_1$ and so on. One more function per layer and forward pass, [`SharedWeights`](#SharedWeights), takes
the weights as its inputs and hands the steps a token; every step depends on it, so autograd runs its
backward after the backward of every step, and there it turns the records into gradients: one
product per weight matrix, one sum per bias.

## The step and its gradient

Weights act on rows ($q = z W_q$, with $W_q$ `[dim, heads * dim_head]`) and each row of $x$ is one
sequence of the batch. A pre-norm computes $\gamma \odot \hat{x} + \beta$ from the normalised
$\hat{x} = (x - \mu) / \sigma$, and what follows it is a product, so the scale and shift fold into
that product once per pass: $(\gamma \odot \hat{x} + \beta) W = \hat{x} \operatorname{diag}(\gamma) W + \beta W$.
With the primes marking folded weights, $W_q' = \operatorname{diag}(\gamma_a) W_q / \sqrt{d_k}$,
$u' = (u + \beta_a W_q) / \sqrt{d_k}$, $W_1' = \operatorname{diag}(\gamma_f) W_1$ and
$b_1' = b_1 + \beta_f W_1$ (and $v - u$ scaled by $1/\sqrt{d_k}$ too), one step of one layer is

$$\begin{aligned}
\hat{x} &= \operatorname{LN}(x) &
q_u &= \hat{x} W_q' + u', \quad q_v = q_u + (v - u) \\
s_j &= q_u^\top k_j + q_v^\top r_{P-j} &
a &= \operatorname{softmax}(s), \quad o = \textstyle\sum_j a_j v_j \quad \text{(per head)} \\
y &= x + o W_O + b_O &
\hat{y} &= \operatorname{LN}(y), \quad h = \hat{y} W_1' + b_1' \\
g &= \operatorname{GELU}(h) &
x' &= y + g W_2 + b_2
\end{aligned}$$

Given $\delta_{x'} = \partial \mathcal{L} / \partial x'$, the backward runs the same lines upwards:

$$\begin{aligned}
\delta_h &= (\delta_{x'} W_2^\top) \odot \operatorname{GELU}'(h) &
\delta_y &= \delta_{x'} + \operatorname{LN}^\top(\delta_h W_1'^\top) \\
\delta_o &= \delta_y W_O^\top, \quad \delta_{a_j} = \delta_o^\top v_j, \quad \delta_{v_j} = a_j \delta_o &
\delta_s &= a \odot \big(\delta_a - \textstyle\sum_j a_j \delta_{a_j}\big) \\
\delta_{k_j} &= \delta_{s_j} q_u, \quad \delta_{r_{P-j}} \mathrel{+}= \delta_{s_j} q_v &
\delta_{q_v} &= \textstyle\sum_j \delta_{s_j} r_{P-j}, \quad \delta_{q_u} = \textstyle\sum_j \delta_{s_j} k_j + \delta_{q_v} \\
& &
\delta_x &= \delta_y + \operatorname{LN}^\top(\delta_{q_u} W_q'^\top)
\end{aligned}$$

where $\operatorname{LN}^\top$ is the normalisation's backward (PyTorch's own kernel). The weights'
gradients are sums over the steps of products of rows recorded on the way:
$\nabla_{W_2} = \sum_t g_t^\top \delta_{x'_t}$, $\nabla_{W_1'} = \sum_t \hat{y}_t^\top \delta_{h_t}$,
$\nabla_{W_O} = \sum_t o_t^\top \delta_{y_t}$, $\nabla_{W_q'} = \sum_t \hat{x}_t^\top \delta_{q_{u,t}}$,
$\nabla_{u'} = \sum_t \delta_{q_{u,t}}$, $\nabla_{v-u} = \sum_t \delta_{q_{v,t}}$, and the biases' are the
sums of the $\delta$s. The folding is ordinary autograd code, run once per pass, so autograd carries
these to $W_q$, $u$, $v$, $\gamma$, $\beta$ and the rest. Dropout, where it is active, multiplies $a$ and
$g$ by a saved mask and their gradients by the same mask.

**Checked and measured.** `tests/test_feedback.py` checks both functions with `gradcheck` in float64
(dropout included), and the whole exact model, outputs and every parameter's gradient, against the
same recurrence run with plain autograd through the general [layer](index.html#FeedbackLayer). In the
benchmark's training step (`python -m bench.feedback`, 2-core CPU, interleaved in one process) the exact
model trained 1.09–1.22 times as many tokens per second as with autograd recording every operation
(the implementation these functions replaced), over nine runs; the larger gains were on a busier
machine. Most of what is left is the work of the operations themselves, at sizes where a CPU is
far from its peak: the same step without gradients takes about a third of the training step.

| symbol | meaning | code | shape |
|---|---|---|---|
| $x$, $x'$ | layer input and output of one step | `x`, `out` | `[batch_size, dim]` |
| $\hat{x}$, $\hat{y}$ | the pre-norms' inputs normalised | `x_hat`, `y_hat` | `[batch_size, dim]` |
| $q_u, q_v$ | content and position queries, scaled | `q_u`, `q_v` | `[batch_size * heads, 1, dim_head]`, `[heads, batch_size, dim_head]` |
| $k_j, v_j$ | keys and values of the $P$ memory entries | `k`, `v` | `[batch_size * heads, P, dim_head]` |
| $r_\delta$ | position keys, distances `max_distance` … 1 | `r_t` | `[heads, dim_head, max_distance]` |
| $a$ | attention weights | `a` | `[batch_size, heads, P]` |
| $o$ | attention output before $W_O$ | `o` | `[batch_size, heads * dim_head]` |
| $h$, $g$ | feed-forward hidden layer before and after GELU | `h`, `g` | `[batch_size, d_ff]` |
| $\delta_\cdot$ | gradient of the loss with respect to $\cdot$ | `d_…` | as $\cdot$ |
"""

from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F


class LayerWeights(NamedTuple):
    r"""
    A layer's weights in the form every step of a forward pass uses them, with each pre-norm's $\gamma$
    and $\beta$ folded into the product that follows it (primes below).
    """
    # $W_q' = \operatorname{diag}(\gamma_a) W_q / \sqrt{d_k}$, `[dim, heads * dim_head]`
    W_q: torch.Tensor
    # $u' = (u + \beta_a W_q) / \sqrt{d_k}$ and $(v - u) / \sqrt{d_k}$, `[heads * dim_head]` each
    u: torch.Tensor
    v_minus_u: torch.Tensor
    # $r_\delta^\top$ for the distances from `max_distance` down to 1, `[heads, dim_head, max_distance]`
    r_t: torch.Tensor
    # $W_O$, `[heads * dim_head, dim]`, and $b_O$
    W_o: torch.Tensor
    b_o: torch.Tensor
    # $W_1' = \operatorname{diag}(\gamma_f) W_1$, `[dim, d_ff]`, $b_1' = b_1 + \beta_f W_1$; $W_2$, `[d_ff, dim]`,
    # and $b_2$
    W_1: torch.Tensor
    b_1: torch.Tensor
    W_2: torch.Tensor
    b_2: torch.Tensor


class StepOptions(NamedTuple):
    """What is not a tensor: the layer norms' epsilon and the dropout probabilities in force."""
    eps: float
    attn_dropout: float
    ff_dropout: float


class Records:
    r"""
    What the backward of each step leaves for the gradients of weights that every step shares,
    collected over one backward pass and turned into gradients by [`SharedWeights`](#SharedWeights).
    """

    def __init__(self):
        # The backward pass the records belong to
        self.task: Optional[int] = None
        self.clear()

    def clear(self):
        raise NotImplementedError

    def sums(self) -> Tuple[Optional[torch.Tensor], ...]:
        """The weights' gradients, in the order `SharedWeights` took them; clears the records."""
        raise NotImplementedError

    def for_this_pass(self) -> 'Records':
        r"""
        Called by every step's backward before it records: drops the records of an earlier backward pass
        that never reached [`SharedWeights`](#SharedWeights) (a gradient asked of the input alone,
        `torch.autograd.grad(out, x)`), which would otherwise be added to the next pass's.
        """
        task = torch._C._current_graph_task_id()
        if task != self.task:
            self.clear()
            self.task = task
        return self


def _rows(records):
    r"""`[T' * batch_size, ·]` for the $T'$ steps recorded, one block of rows per step, per column of the records."""
    return [torch.cat(column) for column in zip(*records)]


class WeightGradients(Records):
    r"""
    The records of one layer: per step, the rows whose products and sums make the weights' gradients
    (each `[batch_size, ·]`), and the position keys' gradient, which is added to in place because its
    window grows from step to step.
    """

    def clear(self):
        # $(\hat{x}_t, \delta_{q_{u,t}}, \delta_{q_{v,t}})$ for $W_q'$, $u'$ and $v - u$
        self.queries: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        # $(o_t, \delta_{y_t})$ for $W_O$, $(\hat{y}_t, \delta_{h_t})$ for $W_1'$ and $(g_t, \delta_{x'_t})$ for $W_2$
        self.out: List[Tuple[torch.Tensor, torch.Tensor]] = []
        self.hidden: List[Tuple[torch.Tensor, torch.Tensor]] = []
        self.ff_out: List[Tuple[torch.Tensor, torch.Tensor]] = []
        # $\nabla_{r^\top}$, `[heads, dim_head, max_distance]`, once a step has attended
        self.r_t: Optional[torch.Tensor] = None

    def sums(self) -> Tuple[Optional[torch.Tensor], ...]:
        r"""
        The gradients of the tensors of `LayerWeights`, in its order, from everything recorded; `None`
        where nothing was (no step attended). Clears the records, so that a second backward pass
        (`retain_graph=True`) starts from nothing.
        """
        if not self.ff_out:
            # No step of this pass ran backwards (a gradient asked of other inputs only).
            return (None,) * len(LayerWeights._fields)
        (Y_hat, D_h), (G, D_out) = _rows(self.hidden), _rows(self.ff_out)
        grads_ff = (Y_hat.t() @ D_h, D_h.sum(0), G.t() @ D_out, D_out.sum(0))
        if not self.queries:
            grads_attn = (None,) * 6
        else:
            (X_hat, D_qu, D_qv), (O, D_y) = _rows(self.queries), _rows(self.out)
            grads_attn = (X_hat.t() @ D_qu, D_qu.sum(0), D_qv.sum(0), self.r_t, O.t() @ D_y, D_y.sum(0))
        self.clear()
        return grads_attn + grads_ff


class SharedWeights(torch.autograd.Function):
    r"""
    The door through which a layer's weights enter the steps of one forward pass. Forward returns a
    scalar token that every [`LayerStep`](#LayerStep) of the pass takes as an input; the steps read the
    weights themselves from their arguments. The token makes this node an ancestor of every step in
    the graph, so its backward runs after all of theirs, when every record is in, and returns the
    weights' gradients.
    """

    @staticmethod
    def forward(ctx, grads: Records, *weights: torch.Tensor) -> torch.Tensor:
        ctx.grads = grads
        # Saved only to be checked: if a weight the steps used (several are views of the parameters) was
        # changed in place before the backward pass, an optimiser step too early, autograd raises its usual error.
        ctx.save_for_backward(*weights)
        # On the weights' device, like everything else the steps take.
        return weights[0].new_zeros(())

    @staticmethod
    def backward(ctx, _token_grad: torch.Tensor):
        ctx.saved_tensors
        return (None, *ctx.grads.sums())


class LayerStep(torch.autograd.Function):
    r"""
    One layer for one token, `x` `[batch_size, dim]` → `[batch_size, dim]`, against the keys and values
    `k`, `v` of the memory (`[batch_size * heads, P, dim_head]` each; `None` when there is no memory
    yet, and then the attention adds nothing). The forward pass and its backward are the equations
    above.
    """

    @staticmethod
    def forward(ctx, token: Optional[torch.Tensor], x: torch.Tensor, k: Optional[torch.Tensor],
                v: Optional[torch.Tensor], w: LayerWeights, options: StepOptions, grads: WeightGradients
                ) -> torch.Tensor:
        batch_size, dim = x.shape
        ctx.w, ctx.options, ctx.grads = w, options, grads
        # What the attention's backward needs, all `None` when there is no memory to attend to.
        saved_attn: Tuple[Optional[torch.Tensor], ...] = (None,) * 12
        if k is None:
            y = x
        else:
            heads, dim_head, max_distance = w.r_t.shape
            bh, P, _ = k.shape
            # $\hat{x}$, the mean and $1/\sigma$ (kept for the backward)
            x_hat, mean_a, rstd_a = torch.native_layer_norm(x, (dim,), None, None, options.eps)
            # $q_u = \hat{x} W_q' + u'$, `[batch_size, heads * dim_head]`; $q_v$ per head, `[heads, batch_size, dim_head]`,
            # to meet the position keys of its head
            q_u = torch.addmm(w.u, x_hat, w.W_q)
            q_v = (q_u + w.v_minus_u).view(batch_size, heads, dim_head).transpose(0, 1)
            q_u = q_u.view(bh, 1, dim_head)
            # $s_j$: content `[batch_size * heads, 1, dim_head] @ [batch_size * heads, dim_head, P]`, and position
            # against the distances $P \dots 1$, the last $P$ columns of the table:
            # `[heads, batch_size, dim_head] @ [heads, dim_head, P]`. The query is the row of the content
            # product: the same numbers as `k @ q` with the query as a column, which the CPU's batched
            # product ran three times slower (42 against 13 µs at $P = 32$). And the products stay matrix
            # products: elementwise multiply-and-sum forms make a temporary the size of the keys at every
            # step, of a new size each time, and the heap fragments (a gigabyte more at $P = 512$).
            content = torch.bmm(q_u, k.transpose(1, 2)).view(batch_size, heads, P)
            position = torch.bmm(q_v, w.r_t[:, :, max_distance - P:])
            # $a$, `[batch_size, heads, P]`
            a = (content + position.transpose(0, 1)).softmax(dim=-1)
            a_mask = _dropout_mask(a, options.attn_dropout)
            a_used = a if a_mask is None else a * a_mask
            # $o = \sum_j a_j v_j$: `[batch_size * heads, 1, P] @ [batch_size * heads, P, dim_head]`, as
            # `[batch_size, heads * dim_head]`; then $y = x + o W_O + b_O$
            o = torch.bmm(a_used.view(bh, 1, P), v).view(batch_size, heads * dim_head)
            y = torch.addmm(w.b_o, o, w.W_o).add_(x)
            saved_attn = (x, x_hat, mean_a, rstd_a, q_u, q_v, k, v, a, a_mask, a_used, o)
        y_hat, mean_f, rstd_f = torch.native_layer_norm(y, (dim,), None, None, options.eps)
        # $h = \hat{y} W_1' + b_1'$ and $g$, `[batch_size, d_ff]`; then $x' = y + g W_2 + b_2$
        h = torch.addmm(w.b_1, y_hat, w.W_1)
        g = F.gelu(h)
        g_mask = _dropout_mask(g, options.ff_dropout)
        if g_mask is not None:
            g = g * g_mask
        out = torch.addmm(w.b_2, g, w.W_2).add_(y)
        # (`None` entries, for the masks of inactive dropout and the attention of a first step, are kept as `None`.)
        ctx.save_for_backward(y, y_hat, mean_f, rstd_f, h, g, g_mask, *saved_attn)
        return out

    @staticmethod
    def backward(ctx, d_out: torch.Tensor):
        # The backward is not itself differentiable; refuse rather than return a gradient without a graph.
        if torch.is_grad_enabled():
            raise RuntimeError("LayerStep has no second derivative (backward with create_graph=True)")
        w, grads = ctx.w, ctx.grads.for_this_pass()
        (y, y_hat, mean_f, rstd_f, h, g, g_mask,
         x, x_hat, mean_a, rstd_a, q_u, q_v, k, v, a, a_mask, a_used, o) = ctx.saved_tensors
        # The feed-forward network: $\delta_g = \delta_{x'} W_2^\top$ (times the dropout mask), then
        # $\delta_h = \delta_g \odot \operatorname{GELU}'(h)$ and $\delta_{\hat{y}} = \delta_h W_1'^\top$
        grads.ff_out.append((g, d_out))
        d_g = torch.mm(d_out, w.W_2.t())
        if g_mask is not None:
            d_g = d_g * g_mask
        d_h = torch.ops.aten.gelu_backward(d_g, h)
        grads.hidden.append((y_hat, d_h))
        # $\delta_y = \delta_{x'} + \operatorname{LN}^\top(\delta_{\hat{y}})$
        d_y = _norm_backward(torch.mm(d_h, w.W_1.t()), y, mean_f, rstd_f).add_(d_out)
        if k is None:
            return None, d_y, None, None, None, None, None
        heads, dim_head, max_distance = w.r_t.shape
        bh, P, _ = k.shape
        batch_size = bh // heads
        # $\delta_o = \delta_y W_O^\top$, `[batch_size * heads, 1, dim_head]`
        grads.out.append((o, d_y))
        d_o = torch.mm(d_y, w.W_o.t()).view(bh, 1, dim_head)
        # $\delta_{a_j} = \delta_o^\top v_j$ and $\delta_{v_j} = a_j \delta_o$
        d_a = torch.bmm(d_o, v.transpose(1, 2)).view(batch_size, heads, P)
        d_v = torch.bmm(a_used.view(bh, P, 1), d_o)
        if a_mask is not None:
            d_a = d_a * a_mask
        # $\delta_s = a \odot (\delta_a - \sum_j a_j \delta_{a_j})$, `[batch_size, heads, P]`
        d_s = torch._softmax_backward_data(d_a, a, -1, a.dtype)
        # $\delta_{k_j} = \delta_{s_j} q_u$: `[batch_size * heads, P, 1] @ [batch_size * heads, 1, dim_head]`
        d_k = torch.bmm(d_s.view(bh, P, 1), q_u)
        # $\sum_j \delta_{s_j} k_j$ and, per head, $\delta_{q_v} = \sum_j \delta_{s_j} r_{P-j}$
        d_qu = torch.bmm(d_s.view(bh, 1, P), k).view(batch_size, heads * dim_head)
        d_position = d_s.transpose(0, 1)
        d_qv = torch.bmm(d_position, w.r_t[:, :, max_distance - P:].transpose(1, 2))
        d_qv = d_qv.transpose(0, 1).reshape(batch_size, heads * dim_head)
        # $\delta_{r_{P-j}} \mathrel{+}= \delta_{s_j} q_v$: `[heads, dim_head, batch_size] @ [heads, batch_size, P]`
        if grads.r_t is None:
            grads.r_t = torch.zeros_like(w.r_t)
        grads.r_t[:, :, max_distance - P:].baddbmm_(q_v.transpose(1, 2), d_position)
        d_qu = d_qu.add_(d_qv)
        grads.queries.append((x_hat, d_qu, d_qv))
        # $\delta_{\hat{x}} = \delta_{q_u} W_q'^\top$, and $\delta_x = \delta_y + \operatorname{LN}^\top(\delta_{\hat{x}})$
        d_x = _norm_backward(torch.mm(d_qu, w.W_q.t()), x, mean_a, rstd_a).add_(d_y)
        return None, d_x, d_k, d_v, None, None, None


class MemoryGradients(Records):
    r"""The records of the memory projections: $(\hat{\mathbf{m}}_t, \delta_{kv_t})$ per projection."""

    def __init__(self, projections: int):
        self.projections = projections
        super().__init__()

    def clear(self):
        self.pairs: List[List[Tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in range(self.projections)]

    def sums(self) -> Tuple[Optional[torch.Tensor], ...]:
        r"""$(\nabla_{W'}, \nabla_{b'})$ of each projection, flattened."""
        grads: List[Optional[torch.Tensor]] = []
        for pairs in self.pairs:
            if pairs:
                M_hat, D_kv = _rows(pairs)
                grads += [M_hat.t() @ D_kv, D_kv.sum(0)]
            else:
                grads += [None, None]
        self.clear()
        return tuple(grads)


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
    def forward(ctx, token: Optional[torch.Tensor], w: torch.Tensor, projections: Tuple[Tuple[torch.Tensor, ...], ...],
                heads: int, eps: float, grads: MemoryGradients, *outputs: torch.Tensor):
        batch_size, dim = outputs[0].shape
        # `[depth + 1, batch_size * dim]`, and $\mathbf{m}_t$ as one matrix-vector product
        X = torch.stack(outputs).view(len(outputs), -1)
        m = torch.mv(X.t(), w).view(batch_size, dim)
        ctx.projections, ctx.grads, ctx.shape = projections, grads, (batch_size, dim)
        if not projections:
            ctx.save_for_backward(X, w, None, None, None, None)
            return m
        m_hat, mean, rstd = torch.native_layer_norm(m, (dim,), None, None, eps)
        kvs = [torch.addmm(b, m_hat, W).view(batch_size, heads, 1, -1) for W, b in projections]
        ctx.save_for_backward(X, w, m, m_hat, mean, rstd)
        return (m, *kvs)

    @staticmethod
    def backward(ctx, d_m: torch.Tensor, *d_kvs: torch.Tensor):
        if torch.is_grad_enabled():
            raise RuntimeError("MemoryStep has no second derivative (backward with create_graph=True)")
        X, w, m, m_hat, mean, rstd = ctx.saved_tensors
        if ctx.projections:
            grads = ctx.grads.for_this_pass()
            d_m_hat = None
            for (W, _), d_kv, pairs in zip(ctx.projections, d_kvs, grads.pairs):
                d_kv = d_kv.reshape(m.shape[0], -1)
                pairs.append((m_hat, d_kv))
                d_m_hat = torch.mm(d_kv, W.t()) if d_m_hat is None else d_m_hat.addmm_(d_kv, W.t())
            d_m = _norm_backward(d_m_hat, m, mean, rstd).add_(d_m)
        # $\delta_{x^l} = \operatorname{softmax}(w)_l\, \delta_{\mathbf{m}}$ for all $l$ at once, `[depth + 1, batch_size, dim]`,
        # and $\delta_{\operatorname{softmax}(w)} = X \delta_{\mathbf{m}}$
        d_m = d_m.reshape(-1)
        d_outputs = torch.outer(w, d_m).view(len(w), *ctx.shape).unbind(0)
        return (None, torch.mv(X, d_m), None, None, None, None, *d_outputs)


def _dropout_mask(t: torch.Tensor, p: float) -> Optional[torch.Tensor]:
    r"""Inverted dropout's mask for `t`, $\operatorname{Bernoulli}(1 - p) / (1 - p)$; `None` when `p` is 0."""
    if p == 0:
        return None
    return torch.empty_like(t).bernoulli_(1 - p).div_(1 - p)


def _norm_backward(d_x_hat: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor
                   ) -> torch.Tensor:
    r"""$\operatorname{LN}^\top(\delta_{\hat{x}})$: the gradient of the input `x` of $\hat{x} = (x - \mu) / \sigma$."""
    return torch.ops.aten.native_layer_norm_backward(d_x_hat, x, (x.shape[1],), mean, rstd, None, None,
                                                     [True, False, False])[0]


class LayerSteps:
    r"""
    The steps of one layer in one forward pass: `steps(x, kv)` runs the layer for one token. Made by
    [`FeedbackLayer.start_steps`](index.html#FeedbackLayer.start_steps), which prepares the weights;
    with gradients enabled it passes them through [`SharedWeights`](#SharedWeights).
    """

    def __init__(self, weights: LayerWeights, options: StepOptions):
        self.grads = WeightGradients()
        self.token = SharedWeights.apply(self.grads, *weights) if torch.is_grad_enabled() else None
        self.weights = LayerWeights(*(t.detach() for t in weights))
        self.options = options

    def __call__(self, x: torch.Tensor, kv: Optional[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        k, v = (None, None) if kv is None else kv
        return LayerStep.apply(self.token, x, k, v, self.weights, self.options, self.grads)


class MemorySteps:
    r"""
    The memory vector of each step of one forward pass and its keys and values:
    `steps(outputs, with_kv)` → `(m, kvs)`, through [`MemoryStep`](#MemoryStep); `kvs` is empty when
    `with_kv` is false (the last step of a pass, whose keys and values no step of the pass reads).
    `projections` are each memory projection's $(W', b')$, `[dim, heads * 2 * dim_head]` and
    `[heads * 2 * dim_head]`.
    """

    def __init__(self, w: torch.Tensor, projections: List[Tuple[torch.Tensor, torch.Tensor]], heads: int,
                 eps: float):
        self.grads = MemoryGradients(len(projections))
        flat = [t for pair in projections for t in pair]
        self.token = SharedWeights.apply(self.grads, *flat) if torch.is_grad_enabled() else None
        self.w, self.heads, self.eps = w, heads, eps
        self.projections = tuple((W.detach(), b.detach()) for W, b in projections)

    def __call__(self, outputs: List[torch.Tensor], with_kv: bool = True
                 ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        result = MemoryStep.apply(self.token, self.w, self.projections if with_kv else (), self.heads, self.eps,
                                  self.grads, *outputs)
        if not with_kv:
            return result, []
        return result[0], list(result[1:])
