r"""
---
title: Compressive Transformer
summary: Transformer-XL whose evicted memories are compressed into a second, coarser memory by a learned convolution, trained with an attention-reconstruction loss.
paper: https://arxiv.org/abs/1911.05507
---

# Compressive Transformer

[Transformer-XL](../xl/index.html) keeps the last $L$ hidden states of every layer as memory and
throws a state away once it is older than that. Rae et al.'s Compressive Transformer
([arXiv:1911.05507](https://arxiv.org/abs/1911.05507)) keeps it in a coarser form instead: the states
pushed out of the memory are squeezed $c$ to $1$ by a learned *compression function* $f_c$ and
appended to a second FIFO, the **compressed memory** of $L_c$ slots. (The paper writes $n_m$, $n_{cm}$
and $n_s$ for the lengths of the memory, the compressed memory and the segment; this site writes $L$,
$L_c$ and $n$ on every page.) Each layer then attends over

$$\big[\operatorname{SG}(cm^{l-1}) \circ \operatorname{SG}(m^{l-1}) \circ h^{l-1}\big]$$

(compressed memory, memory, segment; $\circ$ concatenates along the sequence). The attention cost
grows by $L_c$ keys, while the reach of one layer grows from $L$ to $L + c\, L_c$ positions.

Compression only ever acts on memory, which is a stop-gradient: the language-model loss cannot train
$f_c$. The paper trains it with a local auxiliary loss instead, the **attention reconstruction loss**:
the compressed memories should give the same attention output as the states they replace. Summed
over the layers as in the paper's Algorithm 2, with each layer's term a mean squared error,

$$\mathcal{L}^{attn} = \sum_{l} \frac{1}{E_l} \big\| \operatorname{attn}^l(h^{l-1}, old\_mem^{l-1})
 - \operatorname{attn}^l(h^{l-1}, f_c^{l}(old\_mem^{l-1})) \big\|_2^2$$

where $h^{l-1}$ is layer $l$'s input, $old\_mem^{l-1}$ the positions its memory evicted, $E_l$ the
number of elements of the attention output, so that the loss does not grow with the batch or the
segment, and

$$\operatorname{attn}(h, m) = \operatorname{softmax}\big((\operatorname{LN}(h) W_q)(\operatorname{LN}(m) W_k)^\top / \sqrt{d_h}\big)(\operatorname{LN}(m) W_v)$$

is the layer's *content-based* attention, with no position terms, through the layer's own pre-norm
$\operatorname{LN}$, so that the loss compares what the layer really reads. Gradients are stopped
everywhere except into $f_c$. The paper's Algorithm 2 writes the plain norm, no $\operatorname{LN}$ and no
$1/\sqrt{d_h}$ (see [what differs from the paper](#what-differs-from-the-paper)). The loss is lossy on
purpose: what no query attends to may be forgotten.

This page shows what compression adds to Transformer-XL, in reading order: the compression function,
the memory bookkeeping, the reconstruction loss, the layer (a Transformer-XL layer given
$[cm \circ m]$ as its memory) and the model's pass through its layers; the embedding, read-out, checks,
generation and model files are the [memory language model](../lm.html) every model here shares. The
[paper page](readme.html) has the results.

```python
import torch
from labml_nn.transformers.compressive import CompressiveTransformer

model = CompressiveTransformer(num_tokens=65, dim=128, depth=4, heads=4,
                               mem_len=32, cmem_len=16, compression_rate=4)
main_opt = torch.optim.AdamW(model.main_parameters())
compression_opt = torch.optim.AdamW(model.compression_parameters())
logits, memory, aux_loss = model(x, memory=memory, return_memory=True, return_aux_loss=True)
(lm_loss(logits) + aux_loss).backward()   # the two losses reach disjoint parameters
```

| symbol | meaning | code | shape |
|---|---|---|---|
| $n$ | segment length (`seq_len` of the experiment) | | |
| $L$ | memory length | `mem_len` | |
| $L_c$ | compressed-memory length | `cmem_len` | |
| $c$ | compression rate | `compression_rate` | |
| $h^{l-1}$ | input of layer $l$ for the segment | `h` | `[batch_size, seq_len, dim]` |
| $m^{l-1}$ | memory of layer $l$ (layers count from 1, lists from 0) | `memory.mem[l - 1]` | `[batch_size, mem_len, dim]` |
| $cm^{l-1}$ | compressed memory of layer $l$ | `memory.cmem[l - 1]` | `[batch_size, cmem_len, dim]` |
| $old\_mem$ | the positions pushed out of the memory by this segment | `evicted` | `[batch_size, n_evicted, dim]` |
| $f_c$ | compression function of a layer | `layer.compress` | `[batch_size, n, dim]` → `[batch_size, n / c, dim]` |

**Positions.** A compressed slot is treated as one position, directly in front of the memory: with
$L_c$ compressed slots and $L$ memory positions, key $j$ runs over
$0 \dots L_c + L + n - 1$, query $i$ sits at key position $L_c + L + i$ and the
[relative attention](../xl/relative_mha.html) sees compressed slot $j$ at distance $L_c + L + i - j$.
A slot stands for $c$ positions, so this understates how old it is; the network learns what the
distance of a compressed slot means. The paper's Algorithm 1 likewise attends over the plain
concatenation $[cm \circ m]$ as the layer's memory.

## What differs from the paper

No code by the authors is known to be public, so the reference is the paper: its Algorithm 1 (the model)
and Algorithm 2 (the reconstruction loss). This page follows them except where the table says otherwise:

| | the paper | here, by default | the option that gives the paper's |
|---|---|---|---|
| norm placement | post-norm: $\operatorname{LN}(h + \operatorname{block}(h))$ | pre-norm, $h + \operatorname{block}(\operatorname{LN}(h))$, and a final LayerNorm | none (1) |
| first memories | $m_0 = 0$, $cm_0 = 0$: $L$ and $L_c$ zero vectors | empty | none (2) |
| a segment longer than the memory, $n > L$ | $old\_mem = m[{:}n]$: the segment's oldest $n - L$ positions are dropped, not compressed | every evicted position is compressed ([`evict`](#evict)) | none |
| evicted positions not a multiple of $c$ | $\lfloor n / c \rfloor$ slots: the remainder is not compressed | the remainder waits in the memory ([`evict`](#evict)) | none |
| attention of $\mathcal{L}^{attn}$ | $\operatorname{softmax}\big((h W_q)(m W_k)^\top\big)(m W_v)$ | the layer's frozen $\operatorname{LN}$ on $h$ and $m$, and $1/\sqrt{d_h}$ | none (3) |
| the loss of a layer | $\lVert \cdot \rVert_2$ | the mean of squares (4) | none |
| feed-forward activation | not stated (Transformer-XL's code: ReLU) | GELU | `activation="relu"` |
| bias of $W_o$; $\mathbf{u}$, $\mathbf{v}$ | not stated (Transformer-XL's code: no bias; one pair for all layers) | a bias; a pair per layer | none |
| positions of compressed slots | not stated | one position each, in front of the memory (above) | — |

(1) The layer is the [Transformer-XL layer](../xl/index.html#TransformerXLLayer), with the differences
[its page lists](../xl/index.html#what-differs-from-the-authors-code). (2) The first segments' outputs differ:
the paper's queries also attend to the zero vectors until they are pushed out. (3) With post-norm, the
paper's $h$ and $m$ are (above the first layer) outputs of a LayerNorm; with pre-norm they are not, and the
layer normalises them before it attends, so the loss does too. (4) As in lucidrains'
[compressive-transformer-pytorch](https://github.com/lucidrains/compressive-transformer-pytorch), which is
not the authors' code, and whose attention also scales by $1/\sqrt{d_h}$; the Compressive model of
Facebook's [transformer-sequential](https://github.com/facebookresearch/transformer-sequential) (the
Feedback authors' baseline) mean-pools and has no reconstruction loss.
"""

from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from labml_nn.transformers.lm import MemoryLM, check_layer_memory
from labml_nn.transformers.xl import TransformerXLLayer


class CompressiveMemory(NamedTuple):
    r"""
    Everything the model carries from one segment to the next, one entry per layer, all detached:

    * `mem[l]`, $m^{l}$, `[batch_size, mem_len, dim]` (fewer positions until `mem_len` have been seen;
      up to `compression_rate - 1` more while they wait to be compressed, see [`evict`](#evict));
    * `cmem[l]`, $cm^{l}$, `[batch_size, cmem_len, dim]` (fewer slots until `cmem_len` have been made).
    """
    mem: List[torch.Tensor]
    cmem: List[torch.Tensor]


class ConvCompression(nn.Module):
    r"""
    The compression function $f_c: \mathbb{R}^{n \times d} \to \mathbb{R}^{n/c \times d}$, a 1D
    convolution over time whose kernel size and stride are both the compression rate $c$: each
    compressed slot is a learned linear map of $c$ consecutive memories, and no two slots share one,

    $$f_c(m)_g = b + \sum_{k=0}^{c-1} W_k\, m_{gc + k}, \qquad W_k \in \mathbb{R}^{d \times d}.$$

    The paper compares several choices of $f_c$ on Enwik8 (bits per character, lower is better):
    max pooling (0.986), mean pooling (0.982), keeping the most-attended memories ("most-used", 0.980),
    a dilated convolution with the attention-reconstruction loss (0.977) and this 1D convolution,
    trained without a local loss by back-propagating through time (0.996), with an auto-encoding loss
    (0.984) or with the attention-reconstruction loss (0.973). The last is the best of the table and is
    what this page implements.

    Because the windows do not overlap, the convolution is one linear layer applied to each group of
    $c$ memories laid side by side, $[m_{gc} \circ \dots \circ m_{gc+c-1}] \in \mathbb{R}^{cd}$, with
    weight $[W_0 \dots W_{c-1}]$. That is how it is computed here: one matrix multiplication over the
    groups, with no sliding window to set up.
    """

    def __init__(self, dim: int, compression_rate: int):
        super().__init__()
        self.compression_rate = compression_rate
        # `proj.weight[:, k * dim:(k + 1) * dim]` is $W_k$, the kernel's tap $k$.
        self.proj = nn.Linear(compression_rate * dim, dim)

    def forward(self, mem: torch.Tensor) -> torch.Tensor:
        r"""`mem`, `[batch_size, n, dim]` with $n$ a multiple of $c$, → `[batch_size, n / c, dim]`."""
        if mem.shape[1] % self.compression_rate != 0:
            raise ValueError(f"the number of memories to compress must be a multiple of the compression rate "
                             f"{self.compression_rate}, got {mem.shape[1]}")
        # `[batch_size, n / c, c * dim]`: each row is one window of $c$ memories, oldest first.
        windows = rearrange(mem, 'b (g c) d -> b g (c d)', c=self.compression_rate)
        return self.proj(windows)


def evicted_count(length: int, mem_len: int, compression_rate: int, compress: bool) -> int:
    r"""
    How many of `length` positions (the memory, then the segment) the memory evicts: those beyond the newest
    `mem_len`, in whole groups of $c$ when they are to be compressed (see [`evict`](#evict)).
    """
    n_over = max(length - mem_len, 0)
    return (n_over // compression_rate) * compression_rate if compress else n_over


def evict(mem: Optional[torch.Tensor], h: torch.Tensor, mem_len: int, compression_rate: int,
          compress: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""
    Append the segment `h`, `[batch_size, seq_len, dim]`, to the memory `mem` and split the result into
    the positions the memory keeps and the positions it evicts, oldest first:
    `(kept, evicted)`, both detached.

    The memory keeps the newest `mem_len` positions. Everything older is evicted, which covers a
    segment longer than the memory: then the whole old memory and the oldest part of the segment go.

    **A count that is not a multiple of $c$.** The paper's $f_c$ maps $n_s$ memories to
    $\lfloor n_s / c \rfloor$ and assumes $c$ divides $n_s$. We compress only whole groups of $c$:
    the $r < c$ evicted positions left over stay in the memory, in front of the newest `mem_len`, and
    are compressed with the next ones to leave. So the memory holds between `mem_len` and
    `mem_len + c - 1` positions, nothing is padded and nothing is dropped, and the groups always start
    at a multiple of $c$ counted from the start of the stream, whatever the segment length. Padding
    the group with zeros instead would, when generating one token at a time, turn every evicted token
    into a compressed slot of its own: compression rate 1, and inputs $f_c$ never saw in training.

    With `compress=False` (no compressed memory) the evicted positions are simply dropped, as in
    Transformer-XL, and the memory keeps exactly `mem_len`.
    """
    full = h if mem is None else torch.cat([mem, h], dim=1)
    n_evicted = evicted_count(full.shape[1], mem_len, compression_rate, compress)
    return full[:, n_evicted:].detach(), full[:, :n_evicted].detach()


def append_compressed(cmem: Optional[torch.Tensor], new: torch.Tensor, cmem_len: int) -> torch.Tensor:
    r"""The compressed memory's FIFO: append the new slots `new` and keep the newest `cmem_len`."""
    full = new if cmem is None else torch.cat([cmem, new], dim=1)
    return full[:, full.shape[1] - min(cmem_len, full.shape[1]):]


def frozen_linear(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    r"""`linear(x)` with its weight and bias cut from the graph: gradients reach `x`, never `linear`."""
    bias = None if linear.bias is None else linear.bias.detach()
    return F.linear(x, linear.weight.detach(), bias)


def frozen_layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    r"""`norm(x)` with its gain and bias cut from the graph."""
    weight = None if norm.weight is None else norm.weight.detach()
    bias = None if norm.bias is None else norm.bias.detach()
    return F.layer_norm(x, norm.normalized_shape, weight, bias, norm.eps)


class CompressiveLayer(TransformerXLLayer):
    r"""
    A [Transformer-XL layer](../xl/index.html#TransformerXLLayer) with its own compression function
    $f_c$. Its forward pass *is* the Transformer-XL layer's, given $[cm \circ m]$ as its memory; what
    this class adds is $f_c$ and the layer's term of the attention reconstruction loss.
    """

    def __init__(self, dim: int, heads: int, dim_head: Optional[int], d_ff: int, compression_rate: int,
                 attn_dropout: float = 0.0, ff_dropout: float = 0.0, activation: str = "gelu"):
        super().__init__(dim, heads, dim_head, d_ff, attn_dropout, ff_dropout, activation=activation)
        self.compress = ConvCompression(dim, compression_rate)

    def forward(self, h: torch.Tensor, mem: Optional[torch.Tensor] = None,
                cmem: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""
        Attend from the segment `h`, `[batch_size, seq_len, dim]`, over
        $[cm \circ m \circ h]$; `cmem` is `[batch_size, n_cm, dim]`, `mem` `[batch_size, n_m, dim]`.
        Putting the compressed memory in front of the memory *is* the position convention of this
        page: the relative attention sees `n_cm + n_m` memory positions.
        """
        parts = [t for t in (cmem, mem) if t is not None and t.shape[1] > 0]
        context = torch.cat(parts, dim=1) if len(parts) > 1 else (parts[0] if parts else None)
        return super().forward(h, context)

    def content_attention(self, q: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        r"""
        $\operatorname{softmax}\big(q (\operatorname{LN}(m) W_k)^\top / \sqrt{d_h}\big)(\operatorname{LN}(m) W_v)$:
        the layer's attention of the queries `q`, `[batch_size, heads, seq_len, dim_head]`, over the
        memories `mem`, `[batch_size, n, dim]`, with no position terms, no mask (every memory is in the
        past of every query) and no output projection. All of the layer's weights are frozen, so
        gradients reach `mem` only. The memories are normalised first, as the layer does before
        attending, so that the loss compares what the layer would really see.
        Returns `[batch_size, heads, seq_len, dim_head]`.
        """
        z = frozen_layer_norm(self.attn_norm, mem)
        k, v = rearrange(frozen_linear(self.attn.to_kv, z), 'b n (two heads d) -> two b heads n d',
                         two=2, heads=self.attn.heads)
        a = (q @ k.transpose(-2, -1) * self.attn.scale).softmax(dim=-1)
        return a @ v

    def reconstruction_loss(self, h: torch.Tensor, evicted: torch.Tensor,
                            compressed: torch.Tensor) -> torch.Tensor:
        r"""
        This layer's term of $\mathcal{L}^{attn}$, the mean squared error between
        $\operatorname{attn}(h, old\_mem)$ and $\operatorname{attn}(h, f_c(old\_mem))$ over exactly the
        `evicted` positions, `[batch_size, n, dim]`; `compressed` is $f_c$(`evicted`),
        `[batch_size, n / c, dim]`, still attached to $f_c$'s parameters. `h`, `[batch_size, seq_len, dim]`,
        is the layer's input for the segment.

        The stop-gradients: `h` and `evicted` are detached, and every weight of the layer is used
        frozen, so the only path for the gradient is through `compressed` into $f_c$. (Detaching a
        weight in place instead, `weight.detach_()`, would freeze it for the language-model loss as
        well, for good.)
        """
        h, evicted = h.detach(), evicted.detach()
        q = rearrange(frozen_linear(self.attn.to_q, frozen_layer_norm(self.attn_norm, h)),
                      'b n (heads d) -> b heads n d', heads=self.attn.heads)
        target = self.content_attention(q, evicted)
        return F.mse_loss(self.content_attention(q, compressed), target)


class CompressiveTransformer(MemoryLM, paper_url="https://arxiv.org/abs/1911.05507"):
    r"""
    The Compressive Transformer language model: `depth` [compressive layers](#CompressiveLayer) in the
    [memory language model](../lm.html#MemoryLM) shell, with the same contract as
    [Transformer-XL](../xl/index.html#TransformerXL):

    * `model(x, memory=m, return_memory=True)` → `(logits, new_memory)`, a detached
      [`CompressiveMemory`](#CompressiveMemory); `memory=None` starts with both memories empty (the
      paper's start from zeros: see [what differs from the paper](#what-differs-from-the-paper));
    * `model(x, memory=m, return_memory=True, return_aux_loss=True)` → `(logits, new_memory, aux_loss)`
      where `aux_loss` is $\mathcal{L}^{attn}$, **summed** over the layers as in the paper's
      Algorithm 2, each layer's term a mean over its elements. It is a zero when this segment evicted
      nothing, and its gradient reaches only `compression_parameters()`.

    `cmem_len=0` gives back Transformer-XL with the same weights (nothing is compressed), and
    `activation="relu"` the feed-forward network of the Transformer-XL code the paper builds on.
    """

    memory_lengths = ("mem_len", "cmem_len")
    generation_page = "labml_nn.transformers.compressive.generation"

    def __init__(self, *, num_tokens: int, dim: int, depth: int, heads: int, dim_head: Optional[int] = None,
                 mem_len: int, cmem_len: int, compression_rate: int = 4, ff_mult: int = 4,
                 attn_dropout: float = 0.0, ff_dropout: float = 0.0, activation: str = "gelu"):
        if cmem_len < 0:
            raise ValueError(f"cmem_len must be >= 0, got {cmem_len}")
        if not isinstance(compression_rate, int) or compression_rate < 1:
            raise ValueError(f"compression_rate (c) must be a positive int, got {compression_rate!r}")
        layers = [CompressiveLayer(dim, heads, dim_head, dim * ff_mult, compression_rate, attn_dropout, ff_dropout,
                                   activation) for _ in range(depth)]
        super().__init__(num_tokens, dim, mem_len, layers)
        self.cmem_len, self.compression_rate = cmem_len, compression_rate

    def compression_parameters(self) -> Iterator[nn.Parameter]:
        r"""The parameters of every layer's $f_c$: trained by $\mathcal{L}^{attn}$ alone, with their own optimiser."""
        for layer in self.layers:
            yield from layer.compress.parameters()

    def main_parameters(self) -> Iterator[nn.Parameter]:
        r"""Every other parameter: trained by the language-model loss alone."""
        compression = {id(p) for p in self.compression_parameters()}
        return (p for p in self.parameters() if id(p) not in compression)

    def forward_layers(self, h: torch.Tensor, memory: Optional[CompressiveMemory], return_memory: bool,
                       return_aux_loss: bool = False) -> tuple:
        r"""
        $h^0$, `[batch_size, seq_len, dim]`, through the layers, each attending over
        $[cm^{l-1} \circ m^{l-1} \circ h^{l-1}]$; then, as the paper's Algorithm 1, the memory takes in the
        segment's layer inputs and pushes its oldest positions out, and they are compressed and appended to
        the compressed memory. Returns the last layer's output, the new [`CompressiveMemory`](#CompressiveMemory)
        and, with `return_aux_loss`, $\mathcal{L}^{attn}$.
        """
        mems, cmems = memory if memory is not None else ([None] * self.depth, [None] * self.depth)
        compress = self.cmem_len > 0
        new_mem, new_cmem, aux_losses = [], [], []
        for l, layer in enumerate(self.layers):
            mem, cmem = mems[l], cmems[l]
            # The segment's layer input is what the memory stores and what the reconstruction loss
            # queries with.
            h_in = h
            h = layer(h, mem, cmem)
            if not (return_memory or return_aux_loss):
                continue
            # `evicted` is `[batch_size, n_evicted, dim]`, a multiple of $c$ positions.
            kept, evicted = evict(mem, h_in, self.mem_len, self.compression_rate, compress)
            if compress and evicted.shape[1] > 0:
                if return_aux_loss:
                    # One call of $f_c$ serves both: attached for the loss, detached for the memory.
                    compressed = layer.compress(evicted)
                    aux_losses.append(layer.reconstruction_loss(h_in, evicted, compressed))
                else:
                    with torch.no_grad():
                        compressed = layer.compress(evicted)
                # Kept in the dtype of the hidden states, whatever precision $f_c$ ran in (autocast).
                cmem = append_compressed(cmem, compressed.detach().to(h_in.dtype), self.cmem_len)
            new_mem.append(kept)
            new_cmem.append(cmem if cmem is not None else h_in.new_zeros(h_in.shape[0], 0, self.dim))
        outputs = (h, CompressiveMemory(new_mem, new_cmem) if return_memory else None)
        if return_aux_loss:
            # Before the first eviction the loss is a zero that still accepts `.backward()`, so a
            # training loop needs no special case.
            outputs += (torch.stack(aux_losses).sum() if aux_losses else
                        torch.zeros((), dtype=h.dtype, device=h.device, requires_grad=torch.is_grad_enabled()),)
        return outputs

    def check_memory(self, memory: CompressiveMemory, batch_size: int) -> CompressiveMemory:
        r"""Raise a clear error unless `memory` is a `CompressiveMemory` for this model and batch size."""
        if not isinstance(memory, CompressiveMemory):
            raise TypeError(f"memory must be the CompressiveMemory(mem, cmem) returned with return_memory=True, "
                            f"got {type(memory).__name__}")
        like = self.token_emb.weight
        return CompressiveMemory(check_layer_memory(memory.mem, self.depth, batch_size, like, 'memory.mem'),
                                 check_layer_memory(memory.cmem, self.depth, batch_size, like, 'memory.cmem'))

    def memory_state(self, memory: Optional[CompressiveMemory]) -> Optional[dict]:
        """The memory as plain lists of tensors, `{"mem": [...], "cmem": [...]}` (what a checkpoint stores)."""
        return None if memory is None else {"mem": list(memory.mem), "cmem": list(memory.cmem)}

    def load_memory_state(self, state: Optional[dict]) -> Optional[CompressiveMemory]:
        """The memory `memory_state` gave."""
        return None if state is None else CompressiveMemory(state["mem"], state["cmem"])

    def weight_uses_per_token(self, seq_len: int) -> Dict[str, float]:
        r"""As the shell counts, and $f_c$ once per $c$ tokens: every token is compressed once, $c$ to one."""
        return {**super().weight_uses_per_token(seq_len), "proj": 1 / self.compression_rate}
