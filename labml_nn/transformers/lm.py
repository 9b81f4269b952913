r"""
---
title: The language-model contract
summary: Input checks, memory bookkeeping and sampling shared by every memory transformer's user-facing model.
---

# The language-model contract

Transformer-XL, the Compressive Transformer and the Feedback Transformer all expose the same
user-facing model, so that experiments, benchmarks and notebooks can swap one for another:

* `model(x)`: token ids `x`, a `LongTensor` `[batch_size, seq_len]`, give logits
  `[batch_size, seq_len, num_tokens]`;
* `model(x, memory=m, return_memory=True)` gives `(logits, new_memory)`; the new memory is detached
  from the graph, so a long stream can be trained segment by segment without the graph growing;
* `model.generate(prompt, length, temperature=1.0, top_k=None)` continues a prompt.

The pieces they share live here, in one place: the checks that turn bad input into a clear error,
the update of a per-layer memory, the sampling of the next token, and generation by the model's own
forward pass, which the faster generators are tested against.
"""

import contextlib
from typing import Callable, Iterator, List, Optional, Sequence

import torch
from torch import nn


def head_size(dim: int, heads: int, dim_head: Optional[int]) -> int:
    """`dim_head`, or `dim // heads` when it is not given (which then must divide evenly)."""
    if dim_head is not None:
        return dim_head
    if dim % heads != 0:
        raise ValueError(f"dim ({dim}) must be divisible by heads ({heads}), or pass dim_head")
    return dim // heads


def check_tokens(x: torch.Tensor, num_tokens: int, name: str = 'x') -> torch.Tensor:
    """
    Return `x` as a `LongTensor`, raising a clear `TypeError`/`ValueError` unless it is an integer tensor
    `[batch_size, seq_len]` of ids in `[0, num_tokens)`. Ids of any integer dtype (`uint8`, `int16`, ...)
    are accepted and converted, since `nn.Embedding` takes only `int32` and `int64`.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids [batch_size, seq_len], got {type(x).__name__}")
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [batch_size, seq_len], got {tuple(x.shape)} "
                         f"({x.dim()} dimensions)")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sequence and one token, got shape {tuple(x.shape)}")
    x = x.long()
    # Reading the values is a synchronisation, and under `torch.compile` a graph break: a compiled
    # model leaves the range to the embedding's own check.
    if not torch.compiler.is_compiling():
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= num_tokens:
            raise ValueError(f"token ids in {name} must lie in [0, {num_tokens}), got values from {low} to {high}")
    return x


def check_memory_tensor(mem: torch.Tensor, like: torch.Tensor, name: str) -> None:
    """A memory tensor must have the dtype and device of the model's weights (`like`)."""
    if mem.dtype != like.dtype or mem.device != like.device:
        raise TypeError(f"{name} is {mem.dtype} on {mem.device}, but the model computes in {like.dtype} on "
                        f"{like.device}: pass the memory the model returned, or convert it with "
                        f".to({like.dtype}, device='{like.device}')")


def check_layer_memory(memory: Sequence[torch.Tensor], depth: int, batch_size: int, like: torch.Tensor,
                       name: str = 'memory') -> List[torch.Tensor]:
    """
    Check a per-layer memory: a list of `depth` tensors, each `[batch_size, mem_len, dim]`, in the dtype
    and on the device of `like` (a weight of the model, `[..., dim]`). Returns it as a list; raises an
    error that names the expected and the received shape, dtype or device.
    """
    dim = like.shape[-1]
    if isinstance(memory, torch.Tensor) or not isinstance(memory, (list, tuple)):
        raise TypeError(f"{name} must be the list of per-layer tensors returned with return_memory=True, "
                        f"got {type(memory).__name__}")
    if len(memory) != depth:
        raise ValueError(f"{name} must hold one tensor per layer ({depth} layers), got {len(memory)}: "
                         f"was it made by a model of another depth?")
    for layer, mem in enumerate(memory):
        if not isinstance(mem, torch.Tensor):
            raise TypeError(f"{name}[{layer}] must be a tensor, got {type(mem).__name__}")
        if mem.dim() != 3 or mem.shape[0] != batch_size or mem.shape[2] != dim:
            raise ValueError(f"{name}[{layer}] must have shape [batch_size={batch_size}, mem_len, dim={dim}], "
                             f"got {tuple(mem.shape)}: was it made for another batch size or model?")
        check_memory_tensor(mem, like, f"{name}[{layer}]")
    return list(memory)


def append_memory(mem: Optional[torch.Tensor], new: torch.Tensor, mem_len: int) -> torch.Tensor:
    r"""
    Append the positions `new`, `[batch_size, seq_len, dim]`, to `mem`, `[batch_size, m, dim]`, keep the
    newest `mem_len` and cut them from the graph: the result is `[batch_size, min(m + seq_len, mem_len), dim]`.

    Detaching is what makes the memory a *stop-gradient* $\operatorname{SG}(\cdot)$ in Transformer-XL's
    equations: gradients never flow into the previous segment.
    """
    full = new if mem is None else torch.cat([mem, new], dim=1)
    return full[:, full.shape[1] - min(mem_len, full.shape[1]):].detach()


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: Optional[int] = None) -> torch.Tensor:
    r"""
    Draw the next token from `logits`, `[batch_size, num_tokens]`; returns `[batch_size]` ids.

    Sampling is from $\operatorname{softmax}(\text{logits} / T)$ restricted to the `top_k` most likely
    tokens; `top_k=1` is greedy decoding and does not draw at all.
    """
    if top_k is not None and top_k == 1:
        return logits.argmax(dim=-1)
    indices = None
    if top_k is not None and top_k < logits.shape[-1]:
        # Keep the `top_k` largest logits and their token ids, each `[batch_size, top_k]`; dividing by
        # $T > 0$ does not change which ones they are, so it comes after, on fewer numbers.
        logits, indices = logits.topk(top_k, dim=-1)
    if temperature != 1.0:
        logits = logits / temperature
    # The Gumbel-max trick: $\arg\max_i (\text{logit}_i + g_i)$ with $g_i = -\log E_i$, $E_i \sim \operatorname{Exp}(1)$,
    # is a draw from $\operatorname{softmax}(\text{logits})$; it needs no normalisation and is several times
    # cheaper than `torch.multinomial` for one token per sequence.
    choice = (logits - torch.empty_like(logits).exponential_().log()).argmax(dim=-1)
    return choice if indices is None else indices.gather(-1, choice[:, None])[:, 0]


def check_generate_args(prompt: torch.Tensor, num_tokens: int, length: int, temperature: float,
                        top_k: Optional[int]) -> None:
    """The checks every `generate` makes before it starts; returns the prompt as a `LongTensor`."""
    prompt = check_tokens(prompt, num_tokens, 'prompt')
    if not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use top_k=1 for greedy decoding), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or a positive int, got {top_k!r}")
    return prompt


def generate_loop(model: nn.Module, prompt: torch.Tensor, length: int, temperature: float,
                  top_k: Optional[int], next_logits: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    r"""
    The loop every `generate` shares. `next_logits(tokens)` runs new tokens, `[batch_size, n]` (the
    prompt first, then each sampled token), through the model, updating whatever caches it keeps, and
    returns the logits of the last position, `[batch_size, num_tokens]`. The model is in evaluation
    mode throughout and goes back to its previous mode afterwards. Returns
    `[batch_size, prompt_len + length]`.
    """
    prompt = check_generate_args(prompt, model.num_tokens, length, temperature, top_k)
    was_training = model.training
    model.eval()
    try:
        out, tokens = [prompt], prompt
        for _ in range(length):
            tokens = sample_next(next_logits(tokens), temperature, top_k)[:, None]
            out.append(tokens)
    finally:
        model.train(was_training)
    return torch.cat(out, dim=1)


def generate_with_memory(model: nn.Module, prompt: torch.Tensor, length: int, temperature: float = 1.0,
                         top_k: Optional[int] = None) -> torch.Tensor:
    r"""
    Generation as the papers evaluate: the prompt as one segment, then each sampled token as a segment
    of one, the memory carried from call to call (`model(tokens, memory=m, return_memory=True)`). Nothing
    but the model's own forward pass: the reference that every faster generator must agree with.
    """
    memory = None

    def next_logits(tokens: torch.Tensor) -> torch.Tensor:
        nonlocal memory
        logits, memory = model(tokens, memory=memory, return_memory=True)
        return logits[:, -1]

    return generate_loop(model, prompt, length, temperature, top_k, next_logits)


@contextlib.contextmanager
def evaluation_memory(model: nn.Module, mem_len: Optional[int] = None, cmem_len: Optional[int] = None,
                      clamp_len: Optional[int] = None) -> Iterator[nn.Module]:
    r"""
    Inside the block, `model` keeps a memory of `mem_len` positions (and a compressed memory of
    `cmem_len`) instead of the lengths it was built with, and its relative attention encodes every
    distance beyond `clamp_len` as `clamp_len`. Transformer-XL trains with $L = 512$ and evaluates with
    2,100: each position then sees further back, at no cost to training. These are plain attributes the
    models read at every call; the block puts them back.
    """
    from labml_nn.transformers.xl.relative_mha import RelativeMultiHeadAttention
    attentions = [m for m in model.modules() if isinstance(m, RelativeMultiHeadAttention)]
    saved = (getattr(model, "mem_len", None), getattr(model, "cmem_len", None),
             [(a.clamp_len, getattr(a, "max_distance", None)) for a in attentions])
    try:
        if mem_len:
            model.mem_len = mem_len
            for attention in attentions:
                if hasattr(attention, "max_distance"):
                    # The Feedback Transformer's attention knows how far its keys reach: $L + n - 1$.
                    attention.max_distance = mem_len + model.seq_len - 1
        if cmem_len is not None and hasattr(model, "cmem_len"):
            model.cmem_len = cmem_len
        if clamp_len:
            for attention in attentions:
                attention.clamp_len = clamp_len
        yield model
    finally:
        model.mem_len, cmem = saved[0], saved[1]
        if cmem is not None:
            model.cmem_len = cmem
        for attention, (clamp, distance) in zip(attentions, saved[2]):
            attention.clamp_len = clamp
            if distance is not None:
                attention.max_distance = distance
