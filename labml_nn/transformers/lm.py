r"""
---
title: The memory language model
summary: The shell every memory transformer here shares: token checks, embedding, layers, read-out, memory checks, generation, evaluation lengths and the FLOP count, written once.
---

# The memory language model

Transformer-XL, the Compressive Transformer and the Feedback Transformer differ in their layers and in
what they remember; everything around that is the same, and lives here, once, in
[`MemoryLM`](#MemoryLM). A paper's page subclasses it and writes only its paper: the layers and the
memory update ([`forward_layers`](#MemoryLM.forward_layers)), and a few declarations. Every model then
has the same user-facing contract, so that experiments, benchmarks and notebooks can swap one for another:

* `model(x)`: token ids `x`, an integer tensor `[batch_size, seq_len]`, give logits
  `[batch_size, seq_len, num_tokens]`;
* `model(x, memory=m, return_memory=True)` gives `(logits, new_memory)`; the new memory is detached
  from the graph, so a long stream can be trained segment by segment without the graph growing;
* `model.generate(prompt, length, temperature=1.0, top_k=None)` continues a prompt;
* `model.save_pretrained(directory)` and `Model.from_pretrained(directory)` write and read a
  [model file](hub.html);
* `model.memory_state(memory)` and `model.load_memory_state(state)` turn a memory into plain tensors
  and back (what a training checkpoint stores);
* `with model.evaluation_memory(mem_len=...)` evaluates with longer memories than training used;
* `model.flops_per_token(seq_len)`, the training FLOPs per token, for the trainer's model FLOP
  utilisation.

Bad input gets a clear error that says what was expected, at the entry points: the token ids, the
memory, the arguments of `generate`. The checks run once per call, never per layer.

## Generation

`generate` reads the prompt the way training reads text, in segments with the memory carried from one to
the next ($n = L$ by default, as the papers train; `prompt_segment=` chooses), so a long prompt costs
memory linear in its length, not quadratic; then every new token is a segment of one. With
`cached=False` every read is a call of the model itself with `memory=`
([`ForwardCalls`](#ForwardCalls)): the reference. By default (`cached=True`) a model that names a *fast
page* (`generation_page`) reads through that page's `CachedReader`, which computes the same numbers while
keeping the keys and values of the memory instead of recomputing them for every token. The paper pages
never import their fast pages: the shell imports the page it is told, when it is first asked to.
"""

import contextlib
import importlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from labml_nn.transformers import adaptive_span
from labml_nn.transformers.hub import Pretrained
from labml_nn.transformers.mha import MultiHeadAttention


# ## Checks at the entry points

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
    # model leaves the range to the embedding's own check. One reduction gives both ends.
    if not torch.compiler.is_compiling():
        low, high = (int(t) for t in x.aminmax())
        if low < 0 or high >= num_tokens:
            raise ValueError(f"token ids in {name} must lie in [0, {num_tokens}), got values from {low} to {high}")
    return x


def check_memory_sequence(mem: torch.Tensor, batch_size: int, like: torch.Tensor, name: str) -> torch.Tensor:
    r"""
    Check one memory tensor: `[batch_size, n, dim]` (any $n$), in the dtype and on the device of `like`
    (a weight of the model, `[..., dim]`). Raises an error that names the expected and the received
    shape, dtype or device.
    """
    dim = like.shape[-1]
    if not isinstance(mem, torch.Tensor):
        raise TypeError(f"{name} must be one tensor [batch_size, mem_len, dim={dim}], got {type(mem).__name__}"
                        + (": a per-layer memory from another model?" if isinstance(mem, (list, tuple)) else ""))
    if mem.dim() != 3 or mem.shape[0] != batch_size or mem.shape[2] != dim:
        raise ValueError(f"{name} must have shape [batch_size={batch_size}, mem_len, dim={dim}], "
                         f"got {tuple(mem.shape)}: was it made for another batch size or model?")
    if mem.dtype != like.dtype or mem.device != like.device:
        raise TypeError(f"{name} is {mem.dtype} on {mem.device}, but the model computes in {like.dtype} on "
                        f"{like.device}: pass the memory the model returned, or convert it with "
                        f".to({like.dtype}, device='{like.device}')")
    return mem


def check_layer_memory(memory: Sequence[torch.Tensor], depth: int, batch_size: int, like: torch.Tensor,
                       name: str = 'memory') -> List[torch.Tensor]:
    """A per-layer memory: a list of `depth` tensors, each checked by `check_memory_sequence`."""
    if isinstance(memory, torch.Tensor) or not isinstance(memory, (list, tuple)):
        raise TypeError(f"{name} must be the list of per-layer tensors returned with return_memory=True, "
                        f"got {type(memory).__name__}")
    if len(memory) != depth:
        raise ValueError(f"{name} must hold one tensor per layer ({depth} layers), got {len(memory)}: "
                         f"was it made by a model of another depth?")
    return [check_memory_sequence(mem, batch_size, like, f"{name}[{l}]") for l, mem in enumerate(memory)]


def check_generate_args(prompt: torch.Tensor, num_tokens: int, length: int, temperature: float,
                        top_k: Optional[int], prompt_segment: Optional[int]) -> torch.Tensor:
    """The checks `generate` makes before it starts; returns the prompt as a `LongTensor`."""
    prompt = check_tokens(prompt, num_tokens, 'prompt')
    if not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use top_k=1 for greedy decoding), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or a positive int, got {top_k!r}")
    if prompt_segment is not None and (not isinstance(prompt_segment, int) or prompt_segment < 1):
        raise ValueError(f"prompt_segment must be None or a positive int, got {prompt_segment!r}")
    return prompt


# ## Sampling

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
    # is a draw from $\operatorname{softmax}(\text{logits})$; it needs no normalisation, and no
    # cumulative sum over the vocabulary as `torch.multinomial` does.
    choice = (logits - torch.empty_like(logits).exponential_().log()).argmax(dim=-1)
    return choice if indices is None else indices.gather(-1, choice[:, None])[:, 0]


class ForwardCalls:
    r"""
    The reader of `generate(..., cached=False)`: `reader(tokens)` runs the new tokens, `[batch_size, n]`,
    through the model itself with the memory of everything read before, and returns the logits of the last
    position, `[batch_size, num_tokens]`. Nothing but the model's own forward pass: the reference that
    every fast page's `CachedReader` must agree with.
    """

    def __init__(self, model: "MemoryLM"):
        self.model, self.memory = model, None

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        logits, self.memory = self.model(tokens, memory=self.memory, return_memory=True)
        return logits[:, -1]


# ## The shell

class MemoryLM(nn.Module, Pretrained):
    r"""
    A memory language model: the token embedding, the paper's `layers` (with any other `modules` the paper
    adds, registered after them in the order given), a final layer norm and the output projection.
    Subclasses implement [`forward_layers`](#MemoryLM.forward_layers) and declare:

    * `memory_lengths`: the names of the model's memory lengths (attributes such as `mem_len`,
      `cmem_len`), which `evaluation_memory` may change;
    * `memory_per_layer`: whether the memory is a list of per-layer tensors (Transformer-XL) or one tensor
      that every layer reads (the Feedback Transformer's memory vectors);
    * `generation_page`: the module whose `CachedReader` generates fast (`None`: none);
    * `check_memory`, `memory_state`, `load_memory_state` where the memory is neither (the Compressive
      Transformer's two memories), and the FLOP count's `keys_per_query` and `weight_uses_per_token` where
      they differ from a layer attending over its memory and its segment.
    """

    memory_lengths: Tuple[str, ...] = ("mem_len",)
    memory_per_layer: bool = True
    generation_page: Optional[str] = None

    def __init__(self, num_tokens: int, dim: int, mem_len: int, layers: Sequence[nn.Module], **modules: nn.Module):
        super().__init__()
        if mem_len < 0:
            raise ValueError(f"mem_len must be >= 0, got {mem_len}")
        self.num_tokens, self.dim, self.depth, self.mem_len = num_tokens, dim, len(layers), mem_len
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.layers = nn.ModuleList(layers)
        for name, module in modules.items():
            setattr(self, name, module)
        self.norm = nn.LayerNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens)

    # ### The forward pass

    def forward(self, x: torch.Tensor, memory=None, return_memory: bool = False, **options):
        r"""
        Logits `[batch_size, seq_len, num_tokens]` for the token ids `x`, `[batch_size, seq_len]`; with
        `return_memory=True` also the new memory, and after them whatever else the model's
        `forward_layers` returns for its `options` (the Compressive Transformer's auxiliary loss).
        """
        x = check_tokens(x, self.num_tokens)
        if memory is not None:
            memory = self.check_memory(memory, x.shape[0])
        # $h^0$, `[batch_size, seq_len, dim]`. No position embedding here: positions are the layers'
        # business (distances, inside relative attention).
        h, new_memory, *extra = self.forward_layers(self.token_emb(x), memory, return_memory, **options)
        logits = self.to_logits(self.norm(h))
        outputs = (logits, new_memory)[:1 + return_memory] + tuple(extra)
        return outputs[0] if len(outputs) == 1 else outputs

    def forward_layers(self, h: torch.Tensor, memory, return_memory: bool, **options) -> tuple:
        r"""
        **The paper.** The embeddings $h^0$, `[batch_size, seq_len, dim]`, through the layers with the
        (checked) memory; returns the last layer's output, `[batch_size, seq_len, dim]`, the new memory
        (detached; `None` unless `return_memory`), and any extra outputs.
        """
        raise NotImplementedError

    # ### The memory

    def check_memory(self, memory, batch_size: int):
        r"""
        A memory from `return_memory=True`, checked: a list of `depth` tensors `[batch_size, n, dim]`, or,
        without `memory_per_layer`, one such tensor, of which the newest `mem_len` positions are kept.
        """
        if self.memory_per_layer:
            return check_layer_memory(memory, self.depth, batch_size, self.token_emb.weight)
        memory = check_memory_sequence(memory, batch_size, self.token_emb.weight, "memory")
        return memory[:, max(0, memory.shape[1] - self.mem_len):]

    def memory_state(self, memory):
        """The memory as tensors in plain lists and dictionaries (what a checkpoint stores); here it is one."""
        return memory

    def load_memory_state(self, state):
        """The memory that `memory_state` gave."""
        return state

    def set_memory_lengths(self, **lengths: int) -> None:
        """Set memory lengths named in `memory_lengths`; the layers read them at every call."""
        for name, value in lengths.items():
            setattr(self, name, value)

    @contextlib.contextmanager
    def evaluation_memory(self, clamp_len: Optional[int] = None, **lengths: Optional[int]) -> Iterator["MemoryLM"]:
        r"""
        Inside the block, the model keeps memories of the given lengths (`mem_len=`, and `cmem_len=` for the
        Compressive Transformer; `None` keeps a length) instead of those it was built with, and its
        relative attention encodes every distance beyond `clamp_len` as `clamp_len`. Transformer-XL trains
        with $L = 512$ and evaluates with 2,100: each position then sees further back, at no cost to
        training. The block puts everything back.
        """
        unknown = sorted(set(lengths) - set(self.memory_lengths))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no {', '.join(unknown)}: its memory lengths are "
                             f"{', '.join(self.memory_lengths)}")
        saved = {name: getattr(self, name) for name in self.memory_lengths}
        attentions = [m for m in self.modules() if isinstance(m, MultiHeadAttention)]
        saved_clamps = [a.clamp_len for a in attentions]
        try:
            self.set_memory_lengths(**{name: value for name, value in lengths.items() if value is not None})
            if clamp_len:
                for attention in attentions:
                    attention.clamp_len = clamp_len
            yield self
        finally:
            self.set_memory_lengths(**saved)
            for attention, clamp in zip(attentions, saved_clamps):
                attention.clamp_len = clamp

    # ### Adaptive span

    def attentions(self) -> List[MultiHeadAttention]:
        """The model's attentions, in the order of its layers."""
        return [m for m in self.modules() if isinstance(m, MultiHeadAttention)]

    def span_loss(self) -> torch.Tensor:
        r"""$\mathcal{L}^{span} = \sum_l L \cdot \operatorname{mean}_h z^l_h$ over the attentions with an
        [adaptive span](adaptive_span.html) (0 without one), which the trainer weighs with `--span-loss` and adds to
        the training loss."""
        return adaptive_span.span_loss(self.attentions())

    def clamp_spans_(self) -> None:
        r"""Every span ratio back into $[0, 1]$: the trainer calls it after each optimiser step."""
        adaptive_span.clamp_spans_(self.attentions())

    # ### The FLOP count

    def keys_per_query(self, seq_len: int) -> float:
        r"""
        Keys one query attends to, on average over a segment of $n$ = `seq_len` with full memories: every
        remembered position (the sum of the memory lengths) and, causally, $(n + 1) / 2$ of the segment's.
        """
        return sum(getattr(self, name) for name in self.memory_lengths) + (seq_len + 1) / 2

    def weight_uses_per_token(self, seq_len: int) -> Dict[str, float]:
        r"""
        How many times per token a weight multiplies a vector, by the name of its `nn.Linear`, where it is not
        once: the keys and values of the $R$ remembered positions are projected again every segment
        (`to_kv`: $1 + R / n$), and the position keys of $R + n$ distances once per segment (`to_r`).
        """
        n, remembered = seq_len, sum(getattr(self, name) for name in self.memory_lengths)
        return {"to_kv": 1 + remembered / n, "to_r": (remembered + n) / n}

    def flops_per_token(self, seq_len: int) -> float:
        r"""
        The training FLOPs per token of segments of $n$ = `seq_len` with full memories, from the model's
        shapes: three times the forward pass (the backward pass costs about twice the forward), which counts
        2 FLOPs per multiply-add. Every weight of an `nn.Linear` multiplies each token's vector once, or as
        often as `weight_uses_per_token` says; each attention multiplies `products_per_key` vectors of its
        width per key (scores and weighted values, and the position scores of relative attention) over
        `keys_per_query` keys. Embeddings are look-ups; norms, softmaxes and the other elementwise
        operations are left out. Used for the trainer's model FLOP utilisation.
        """
        uses = self.weight_uses_per_token(seq_len)
        weights = sum(module.weight.numel() * uses.get(name.rsplit(".", 1)[-1], 1.0)
                      for name, module in self.named_modules() if isinstance(module, nn.Linear))
        attentions = [m for m in self.modules() if isinstance(m, MultiHeadAttention)]
        attention = sum(a.products_per_key * a.heads * a.dim_head for a in attentions) * self.keys_per_query(seq_len)
        return 3 * 2 * (weights + attention)

    # ### Generation

    def prompt_segment(self) -> Optional[int]:
        """The segment a prompt is read in by default: the memory length; the whole prompt (`None`) without memory."""
        return self.mem_len or None

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, length: int, temperature: float = 1.0, top_k: Optional[int] = None,
                 cached: bool = True, prompt_segment: Optional[int] = None) -> torch.Tensor:
        r"""
        Continue `prompt`, `[batch_size, prompt_len]`, by `length` tokens; returns
        `[batch_size, prompt_len + length]`. The prompt is read in segments of `prompt_segment` tokens
        (default: [`self.prompt_segment()`](#MemoryLM.prompt_segment)), then each sampled token on its own,
        by the fast page's `CachedReader` (`cached=True`, where the model names one) or by
        [`ForwardCalls`](#ForwardCalls). The model is in evaluation mode throughout and goes back to its
        previous mode afterwards.
        """
        prompt = check_generate_args(prompt, self.num_tokens, length, temperature, top_k, prompt_segment)
        if length == 0:
            return prompt
        segment = prompt_segment or self.prompt_segment() or prompt.shape[1]
        was_training = self.training
        self.eval()
        try:
            page = self.generation_page if cached else None
            read = ForwardCalls(self) if page is None else importlib.import_module(page).CachedReader(self)
            for part in prompt.split(segment, dim=1):
                logits = read(part)
            out = [prompt]
            for i in range(length):
                out.append(sample_next(logits, temperature, top_k)[:, None])
                if i + 1 < length:
                    logits = read(out[-1])
        finally:
            self.train(was_training)
        return torch.cat(out, dim=1)


# `evaluation_memory(model, ...)` is `model.evaluation_memory(...)`.
evaluation_memory = MemoryLM.evaluation_memory
