r"""
---
title: A key/value history that grows without copying
summary: A custom autograd function that writes each step's keys and values into a preallocated buffer, so a recurrent transformer's training does not copy its whole history at every step.
---

# A key/value history that grows without copying

The [Feedback Transformer](index.html) computes one step at a time: step $t$ attends to the keys
and values of the memory of steps $t - L, \dots, t - 1$, then adds its own. The obvious code keeps
the history as a tensor and concatenates the new step onto it:

```python
kv = torch.cat([kv, kv_t], dim=2)[:, :, -mem_len:]   # [batch_size, heads, min(t, L), 2 * dim_head]
```

This costs far more than it looks. `torch.cat` allocates a new tensor and copies the whole history
into it, so step $t$ moves $\min(t, L)$ entries; over a segment of $n$ steps with $L \ge n$ that is
$1 + 2 + \dots + n = O(n^2)$ entries of memory traffic. Worse, the attention of step $t$ *saves*
its copy for the backward pass, so the graph holds $O(n^2)$ entries too, and the backward pass of
every `cat` slices and adds the gradient of the whole history again: another $O(n^2)$. At
$n = 512$, batch 8, 4 heads of 32 that is about a gigabyte of saved copies for one layer's memory,
where the history itself is 4 MB.

Every copy holds the same numbers: entry $s$ never changes after step $s$. So we write each step
once into a buffer allocated for the whole segment, and let step $t$ read a *view* of its window.
Autograd does not allow that on its own: a view saved for backward must not be written to, and
writing step $t + 1$ into the buffer would count as modifying the views saved at step $t$ (even
though the slots they cover never change). [`AppendKV`](#AppendKV) is a custom
`torch.autograd.Function` that does the bookkeeping itself:

* **forward** copies the new entries into the next free slots and returns the window's keys and
  values as tensors that read the buffer's storage but have their own version counters, so later
  writes to other slots do not invalidate them;
* **backward** adds the gradients of the window's keys and values into a gradient buffer of the
  buffer's shape, then returns the gradient of the slots it wrote.

Why the last step is right: the gradient of slot $s$ is the sum of the gradients of every window
that contains it, the windows read at steps $s + 1, \dots, s + L$. Those are returned by the appends of
steps $s, \dots, s + L - 1$. Each append takes the previous window as an input (it does not use its
value), so in the graph the append of step $s + 1$ consumes the output of the append of step $s$, and
autograd runs the backward of step $s + 1$ before that of step $s$. When the backward of step $s$ runs,
every later window has already added its share to slot $s$, and the slot holds its complete gradient.
The recurrence itself creates the same order (step $s + 1$'s keys depend on the window of step $s$);
the explicit edge makes the function correct on its own, which is what the tests check.

Each slot is written once, read once from the gradient buffer and then cleared, so after a
backward pass the gradient buffer is zero again and `retain_graph=True` works. Copies per segment
drop from $O(n^2)$ entries to $O(n)$.

| symbol | meaning | code | shape |
|---|---|---|---|
| $L$ | memory length: entries a step attends to | `mem_len` | |
| | keys and values of all steps so far | `buffer` | `[batch_size, heads, capacity, 2 * dim_head]` |
| | the new step(s) | `kv` | `[batch_size, heads, n, 2 * dim_head]` |
| | keys and values of the entries the next step attends to | `k`, `v` | `[batch_size, heads, min(length, mem_len), dim_head]` each |

**What it buys.** The benchmark (`python -m bench.feedback`) times a whole training step of the
shared-KV model with each accumulation, memory as long as the segment. The saving is mostly in memory:
one step at $n = 512$ needs {report:feedback.buffer_memory_512} less memory above the model with the
buffer than with `torch.cat`, and {report:feedback.buffer_memory_128} less at $n = 128$. In time the
buffer gains less ({report:feedback.buffer_speed_128} the speed of `torch.cat` at $n = 128$,
{report:feedback.buffer_speed_512} at 512): the step is dominated by the per-step attention and
feed-forward work, which both versions share, and the backward pass still adds each window's gradient,
$O(n^2)$ in total, in both: the gradient of a window is as large as the window, whoever stores it.
[`ConcatHistory`](#ConcatHistory), at the end of the page, is the obvious code, kept as the reference:
a model's forward pass takes the history class as an argument (`model(x, history=ConcatHistory)`), which
is how the tests compare the two and the benchmark times them.
"""

from typing import Optional, Tuple

import torch


class BufferGradient:
    r"""
    The gradient of every slot of a buffer, allocated at the first backward pass (a forward pass under
    `torch.no_grad()` never needs it). The autograd function keeps a reference to this small object
    rather than to the [`KVHistory`](#KVHistory), so no output tensor is reachable from its own
    backward node.
    """

    def __init__(self, like: torch.Tensor):
        self.shape, self.dtype, self.device = like.shape, like.dtype, like.device
        self.grad: Optional[torch.Tensor] = None

    def get(self) -> torch.Tensor:
        if self.grad is None:
            self.grad = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        return self.grad


def alias(buffer: torch.Tensor, start: int, end: int, first: int, last: int) -> torch.Tensor:
    r"""
    Slots `start:end`, features `first:last`, of `buffer`, `[batch_size, heads, capacity, width]`, as a
    tensor `[batch_size, heads, end - start, last - first]` that shares the buffer's memory but not its
    version counter. (A plain slice would share the counter, and the next write would make autograd
    reject the slice's saved copies.)
    """
    batch_size, heads, _, _ = buffer.shape
    stride = buffer.stride()
    # The offset of element `[0, 0, start, first]`.
    offset = buffer.storage_offset() + start * stride[2] + first * stride[3]
    return buffer.new_empty(0).set_(buffer.untyped_storage(), offset,
                                    (batch_size, heads, end - start, last - first), stride)


class AppendKV(torch.autograd.Function):
    r"""
    Write `kv`, `[batch_size, heads, n, 2 * dim_head]` (each head's key and value side by side), into the
    next `n` slots of `history`'s buffer and return the newest `mem_len` slots as two tensors, the keys
    and the values, each `[batch_size, heads, min(length, mem_len), dim_head]`. Returning them apart
    saves the attention a split, whose backward would join the two gradients again with a copy.
    `previous_window` is the keys the last append returned (or `None`): it is not read, it only
    orders the backward passes as explained above.
    """

    @staticmethod
    def forward(ctx, kv: torch.Tensor, previous_window: Optional[torch.Tensor], history: 'KVHistory'
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        start, end = history.length, history.length + kv.shape[2]
        if end > history.buffer.shape[2]:
            raise RuntimeError(f"the key/value buffer holds {history.buffer.shape[2]} steps, "
                               f"cannot append {kv.shape[2]} after {start}")
        history.buffer.narrow(2, start, end - start).copy_(kv)
        history.length = end
        # The window that step `end` will attend to: the newest `mem_len` slots.
        lo = max(0, end - history.mem_len)
        width = kv.shape[3]
        ctx.gradient, ctx.written, ctx.window, ctx.half = history.gradient, (start, end), (lo, end), width // 2
        return alias(history.buffer, lo, end, 0, width // 2), alias(history.buffer, lo, end, width // 2, width)

    @staticmethod
    def backward(ctx, grad_k: torch.Tensor, grad_v: torch.Tensor) -> Tuple[torch.Tensor, None, None]:
        if torch.is_grad_enabled():
            raise RuntimeError("AppendKV has no second derivative (backward with create_graph=True)")
        grad = ctx.gradient.get()
        lo, hi = ctx.window
        # Every window that contains a slot adds its share; the later ones have already done so. The
        # window gradients are `[batch_size, heads, P, dim_head]`, the layout the windows were given in.
        window = grad.narrow(2, lo, hi - lo)
        window[..., :ctx.half].add_(grad_k)
        window[..., ctx.half:].add_(grad_v)
        start, end = ctx.written
        # The slots written here are now complete: hand their gradient on and clear them for the
        # next backward pass.
        written = grad.narrow(2, start, end - start)
        grad_kv = written.clone()
        written.zero_()
        return grad_kv, None, None


class KVHistory:
    r"""
    The keys and values of the memory of one stream of steps, for one projection (one per layer in the
    first variant of the paper, one for all layers in the second), during a forward pass.

    `append(kv)` adds the entries `kv`, `[batch_size, heads, n, 2 * dim_head]`, and returns the keys and
    the values of the newest `mem_len` entries, each `[batch_size, heads, min(length, mem_len), dim_head]`.
    `capacity` is the number of entries the pass will append.
    """

    def __init__(self, batch_size: int, heads: int, width: int, capacity: int, mem_len: int, like: torch.Tensor):
        if width % 2 != 0:
            raise ValueError(f"the width holds a key and a value of equal size: it must be even, got {width}")
        self.mem_len = mem_len
        self.length = 0
        # The last window's keys.
        self.window: Optional[torch.Tensor] = None
        # `[batch_size, heads, capacity, width]`, in the dtype and on the device of `like`.
        self.buffer = like.new_empty(batch_size, heads, capacity, width)
        self.gradient = BufferGradient(self.buffer)

    def append(self, kv: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        k, v = AppendKV.apply(kv, self.window, self)
        self.window = k
        return k, v


class ConcatHistory:
    r"""
    What the custom function replaces: the same `append(kv)`, by concatenating the history at every append
    (the code at the top of the page). The tests check that both give the same numbers and gradients, and
    the benchmark times them, each passing it to the model's forward pass as `history=ConcatHistory`.
    """

    def __init__(self, batch_size: int, heads: int, width: int, capacity: int, mem_len: int, like: torch.Tensor):
        self.mem_len = mem_len
        self.window: Optional[torch.Tensor] = None

    def append(self, kv: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        history = kv if self.window is None else torch.cat([self.window, kv], dim=2)
        self.window = history[:, :, max(0, history.shape[2] - self.mem_len):]
        k, v = self.window.split(self.window.shape[-1] // 2, dim=-1)
        return k, v
