r"""
---
title: Pictures of trained models
summary: The matplotlib drawings on the paper pages and in the notebooks: training curves, attention maps recorded with forward hooks, memory timelines, the feedback memory's layer weights, the spans an adaptive span learned, and timings.
---

# Pictures of trained models

The pictures on the paper pages are drawn by these functions, from small models trained with the
experiments' own code; the notebooks call the same functions on the models they train. Each function
takes a model (or plain numbers) and returns a matplotlib figure. Attention is recorded with a
forward hook on each attention module's dropout, whose input is the attention weights: the pictures
read what the model computed, and compute nothing of their own.

`scripts/pictures.py` (`make pictures`) writes the pages' PNG files with them. matplotlib is needed
(`pip install labml_nn[notebooks]`; Colab has it).
"""

import contextlib
import math
import os
import tempfile
import time
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from torch import nn

from labml_nn.experiments.run import Run
from labml_nn.experiments.trainer import train

DPI = 100


# ## Training a small model with the project's experiment code

def small_config(config_class: type, **overrides: Any) -> Any:
    """The experiment's configuration made small enough for a CPU minute, with no files left behind."""
    settings = dict(labml=False, threads=2, batch_size=16, seq_len=32, dim=64, depth=2, heads=4, dim_head=16,
                    steps=200, warmup_steps=20, valid_interval=100, valid_windows=8, sample_interval=0,
                    checkpoint_interval=0, sample_length=100, lr=2e-3,
                    checkpoint_dir=tempfile.mkdtemp(prefix="labml_nn_pictures_"),
                    data=os.environ.get("TINY_SHAKESPEARE_PATH", ""))
    settings.update(overrides)
    names = {f.name for f in __import__("dataclasses").fields(config_class)}
    return config_class(**{k: v for k, v in settings.items() if k in names})


def train_small(paper: str, **overrides: Any) -> Run:
    """
    Train the paper's experiment (`labml_nn.transformers.<paper>.experiment`) in a small configuration;
    returns the finished run, whose `module`, `vocab`, `valid_batches` and `state.history` the pictures use.
    """
    import importlib
    experiment = importlib.import_module(f"labml_nn.transformers.{paper}.experiment").EXPERIMENT
    with Run(small_config(experiment.config_class, **overrides), experiment) as run:
        train(run)
    return run


def text_segments(run: Run, n_segments: int, batch_size: int = 8) -> List[torch.Tensor]:
    """`n_segments` consecutive segments `[batch_size, seq_len]` of a run's validation text."""
    seq_len = run.config.seq_len
    windows = run.valid_batches.windows(seq_len)
    return [next(windows)[0][:batch_size] for _ in range(n_segments)]


def plot_losses(history: Dict[str, Any], title: str = "") -> plt.Figure:
    """Training loss (smoothed) and validation bits per character against the step, from a run's history
    (`run.state.history`, which checkpoints keep too)."""
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=DPI)
    loss = np.array(history["train"].get("loss.train", [])) / math.log(2)
    if len(loss):
        k = max(1, len(loss) // 30)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(1, len(smooth) + 1), smooth, label="train (bits per character)")
    valid = [(v["step"], v["bpc"]) for v in history["valid"]]
    if valid:
        ax.plot(*zip(*valid), marker="o", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per character")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ## Reading the attention out of a model

@contextlib.contextmanager
def record_attention(model: nn.Module) -> Iterator[List[torch.Tensor]]:
    """
    Inside the block, every call of a layer's attention appends its weights,
    `[batch_size, heads, seq_len, key_len]`, to the yielded list (layer by layer, call by call). They are
    the input of the attention's dropout, read by a forward hook; the model's outputs are unchanged.
    """
    from labml_nn.transformers.mha import MultiHeadAttention
    records: List[torch.Tensor] = []
    hooks = [module.dropout.register_forward_hook(lambda _, inputs, __: records.append(inputs[0].detach()))
             for module in model.modules() if isinstance(module, MultiHeadAttention)]
    try:
        yield records
    finally:
        for hook in hooks:
            hook.remove()


@torch.no_grad()
def segment_attention(model: nn.Module, segments: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], Any]:
    """
    Read `segments` one after the other with memory; return the attention of every layer for the
    **last** segment, a list of `[batch_size, heads, seq_len, key_len]`, and the memory it read with.
    """
    model.eval()
    memory = None
    for segment in segments[:-1]:
        _, memory = model(segment, memory=memory, return_memory=True)
    with record_attention(model) as records:
        model(segments[-1], memory=memory)
    return records, memory


def attention_by_distance(attn: torch.Tensor) -> np.ndarray:
    r"""
    The mean attention a query gives to the key $\delta$ positions back, for $\delta = 0 \dots$
    `key_len - 1`, from `attn`, `[batch_size, heads, seq_len, key_len]` (memory in front), averaged over
    the batch, the heads and the queries that can reach $\delta$. Returns `[key_len]`.
    """
    _, _, seq_len, key_len = attn.shape
    mem_len = key_len - seq_len
    p = attn.mean(dim=(0, 1))  # `[seq_len, key_len]`
    total, count = np.zeros(key_len), np.zeros(key_len)
    for i in range(seq_len):
        # Query $i$ sits at key position `mem_len + i`; key $j$ is `mem_len + i - j` back.
        row = p[i, :mem_len + i + 1].flip(0).numpy()
        total[:len(row)] += row
        count[:len(row)] += 1
    return total / np.maximum(count, 1)


def plot_attention_heads(attn: List[torch.Tensor], title: str, front: Sequence[Tuple[int, str]] = (),
                         example: int = 0) -> plt.Figure:
    """
    One heat map per layer (rows) and head (columns) of the attention of the segment's queries (y)
    over memory and segment keys (x), for stream `example` of the batch. `front` names the blocks in front of
    the segment, oldest first, as `(length, label)`; a white line separates each block.
    """
    depth, heads = len(attn), attn[0].shape[1]
    fig, axes = plt.subplots(depth, heads, figsize=(1.9 * heads + 0.6, 1.55 * depth + 0.7), dpi=DPI,
                             squeeze=False)
    for l, a in enumerate(attn):
        seq_len, key_len = a.shape[-2:]
        for h in range(heads):
            ax = axes[l][h]
            # One stream (not an average, which would blur what a head picks by content), on a
            # square-root colour scale that shows the small weights on far keys as well as the peaks.
            ax.imshow(a[example, h].sqrt().numpy(), cmap="viridis", aspect="auto", vmin=0,
                      interpolation="nearest")
            edge = -0.5
            for length, _ in front:
                edge += length
                ax.axvline(edge, color="white", linewidth=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if l == 0:
                ax.set_title(f"head {h}", fontsize=8)
            if h == 0:
                ax.set_ylabel(f"layer {l}\nquery", fontsize=8)
            if l == depth - 1:
                labels = " | ".join(label for _, label in front) + (" | segment" if front else "segment")
                ax.set_xlabel(labels, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_attention_distance(attn: List[torch.Tensor], seq_len: int, title: str) -> plt.Figure:
    """Mean attention against distance, one line per layer, with the segment length marked."""
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=DPI)
    for l, a in enumerate(attn):
        mass = attention_by_distance(a)
        mem_len = a.shape[-1] - a.shape[-2]
        # The share of all attention that went to memory keys.
        on_memory = a[..., :mem_len].sum(-1).mean().item()
        ax.semilogy(np.arange(len(mass)), mass, label=f"layer {l}: {on_memory:.0%} of attention on memory")
    ax.axvline(seq_len - 0.5, color="grey", linestyle=":")
    ax.text(seq_len, ax.get_ylim()[1], " beyond the segment for every query", fontsize=7, va="top")
    ax.set_xlabel("distance back from the query, δ (tokens)")
    ax.set_ylabel("mean attention weight")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


# ## Diagrams

def _box(ax, x, y, w, h, color, text="", fontsize=7, alpha=1.0):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="0.3", linewidth=0.6, alpha=alpha))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, color="0.35", style="-|>", lw=0.7, rad=0.0, ls="-"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=7, color=color,
                                 linewidth=lw, linestyle=ls, connectionstyle=f"arc3,rad={rad}"))


def xl_diagram() -> plt.Figure:
    r"""
    Segments $\tau - 1$ and $\tau$ of 4 tokens, 3 layers, `mem_len` 4: the last query of segment
    $\tau$ in each layer attends to the layer below over memory and segment; memory arrows are
    dashed (no gradient). Grey arrows show how the reach grows with depth.
    """
    seq_len, depth = 4, 3
    fig, ax = plt.subplots(figsize=(7.2, 3.4), dpi=DPI)
    colors = {"old": "#e8e8e8", "mem": "#c6dbef", "seg": "#fdd0a2"}
    # A gap between segments keeps them apart.
    xs = np.arange(3 * seq_len) * 0.55 + (np.arange(3 * seq_len) // seq_len) * 0.5
    for l in range(depth + 1):
        y = l * 0.8
        for t, x in enumerate(xs):
            segment = t // seq_len
            color = colors["old"] if segment == 0 else colors["mem"] if segment == 1 else colors["seg"]
            ax.add_patch(plt.Circle((x, y), 0.15, facecolor=color, edgecolor="0.3", linewidth=0.6))
        ax.text(-0.6, y, "tokens" if l == 0 else f"layer {l}", ha="right", va="center", fontsize=8)
    # The last position of segment $\tau$ in every layer attends to the layer below.
    query = 3 * seq_len - 1
    for l in range(1, depth + 1):
        for j in range(seq_len, 3 * seq_len):
            ls = "--" if j < 2 * seq_len else "-"
            color = "#08519c" if j < 2 * seq_len else "#a63603"
            _arrow(ax, (xs[j], (l - 1) * 0.8 + 0.15), (xs[query], l * 0.8 - 0.15), color=color, lw=0.5,
                   ls=ls, style="-")
    # How layer 1 of the memory itself reached further back when it was computed.
    for j in range(0, 2 * seq_len):
        _arrow(ax, (xs[j], 0.15), (xs[2 * seq_len - 1], 0.8 - 0.15), color="0.75", lw=0.4, style="-")
    for s, label in enumerate(["segment τ−1\n(reached through layer 1)",
                               "segment τ = memory\n(stop-gradient)", "segment τ+1\n(being computed)"]):
        ax.text(xs[s * seq_len] + (xs[seq_len - 1] - xs[0]) / 2, -0.55, label, ha="center", va="top", fontsize=7)
    ax.set_xlim(-1.6, xs[-1] + 0.5)
    ax.set_ylim(-1.2, depth * 0.8 + 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("Transformer-XL: each layer attends to the layer below over [memory ∘ segment];\n"
                 "dashed: memory (no gradient). Stacked, the reach grows by mem_len per layer.", fontsize=9)
    fig.tight_layout()
    return fig


def compressive_diagram() -> plt.Figure:
    """The two FIFOs of one layer: segment → memory → (f_c, c to 1) → compressed memory → forgotten."""
    fig, ax = plt.subplots(figsize=(7.2, 2.6), dpi=DPI)
    c = 3
    y = 0.9
    # Compressed memory slots, each as wide as one position but standing for c.
    x = 0.0
    for i in range(4):
        _box(ax, x, y, 0.5, 0.5, "#c7e9c0" if i else "#eeeeee", "cm" if i else "", fontsize=7)
        x += 0.55
    ax.text(0.55 * 2, y + 0.62, f"compressed memory\n(L_c slots, each = c = {c} positions)",
            ha="center", fontsize=7.5)
    x_mem = x + 0.4
    for i in range(6):
        _box(ax, x_mem + i * 0.45, y, 0.4, 0.5, "#c6dbef", "m", fontsize=7)
    ax.text(x_mem + 6 * 0.45 / 2, y + 0.62, "memory\n(L positions)", ha="center", fontsize=7.5)
    x_seg = x_mem + 6 * 0.45 + 0.4
    for i in range(6):
        _box(ax, x_seg + i * 0.45, y, 0.4, 0.5, "#fdd0a2", "h", fontsize=7)
    ax.text(x_seg + 6 * 0.45 / 2, y + 0.62, "segment\n(n positions)", ha="center", fontsize=7.5)
    # Eviction: the oldest memories go through f_c into new compressed slots.
    _arrow(ax, (x_mem + 0.6, y - 0.05), (0.55 * 3 + 0.25, y - 0.05), color="#238b45", rad=-0.45, lw=1.0)
    ax.text((x_mem + 0.55 * 3) / 2 + 0.2, y - 0.62, f"oldest {c} memories → f_c (conv, kernel = stride = {c}) → 1 slot",
            ha="center", fontsize=7, color="#238b45")
    _arrow(ax, (x_seg + 0.6, y - 0.05), (x_mem + 6 * 0.45 - 0.2, y - 0.05), color="#08519c", rad=-0.45, lw=1.0)
    ax.text((x_seg + x_mem + 6 * 0.45) / 2, y - 0.42, "segment → memory", ha="center", fontsize=7, color="#08519c")
    _arrow(ax, (0.25, y + 0.25), (-0.6, y + 0.25), color="0.5", lw=1.0)
    ax.text(-0.62, y + 0.05, "forgotten", ha="right", fontsize=7, color="0.4")
    ax.text(x_seg + 1.35, y - 0.95, "queries of the segment attend over [cm ∘ m ∘ h]:\n"
            "L_c + L + n keys that reach c·L_c + L + n back", ha="center", fontsize=7)
    ax.set_xlim(-1.8, x_seg + 6 * 0.45 + 0.2)
    ax.set_ylim(-0.3, 1.9)
    ax.axis("off")
    ax.set_title("Compressive Transformer: one layer's memories after a segment", fontsize=9)
    fig.tight_layout()
    return fig


def feedback_diagram() -> plt.Figure:
    r"""
    Three past steps and the current one: every layer of a past step feeds one memory vector
    $m_t = \sum_l \operatorname{softmax}(w)_l\, x^l_t$, and every layer of the current step attends to
    all the memory vectors.
    """
    depth, steps = 3, 4
    fig, ax = plt.subplots(figsize=(7.2, 3.4), dpi=DPI)
    xs = np.arange(steps) * 1.7
    for t, x in enumerate(xs):
        current = t == steps - 1
        for l in range(depth + 1):
            _box(ax, x - 0.35, l * 0.6, 0.7, 0.4, "#fdd0a2" if current else "#e0e0e0",
                 ("emb" if l == 0 else f"layer {l}"), fontsize=6)
        label = "step t (being computed)" if current else f"step t−{steps - 1 - t}"
        ax.text(x, -0.35, label, ha="center", fontsize=7)
        if not current:
            # The memory vector of step t, a learned mix of all its layers.
            my = depth * 0.6 + 0.75
            _box(ax, x - 0.3, my, 0.6, 0.35, "#c6dbef", "m", fontsize=7)
            for l in range(depth + 1):
                _arrow(ax, (x + 0.35, l * 0.6 + 0.2), (x + 0.3, my + 0.1), color="#6baed6", lw=0.5,
                       rad=0.25, style="-|>")
            for l in range(1, depth + 1):
                _arrow(ax, (x, my), (xs[-1] - 0.35, l * 0.6 + 0.2), color="#08519c", lw=0.45, rad=0.0)
    ax.text(xs[1], depth * 0.6 + 1.35, "memory  m_t = Σ_l softmax(w)_l · x_t^l   (one vector per step, all layers)",
            ha="center", fontsize=7)
    ax.set_xlim(-0.8, xs[-1] + 0.8)
    ax.set_ylim(-0.6, depth * 0.6 + 1.6)
    ax.axis("off")
    ax.set_title("Feedback Transformer: every layer of step t reads the memory of all layers of the past steps,\n"
                 "so step t cannot start before step t−1 has finished: the steps are sequential", fontsize=9)
    fig.tight_layout()
    return fig


# ## Compressive Transformer

def memory_timeline(seq_len: int, mem_len: int, cmem_len: int, compression_rate: int, n_segments: int
                    ) -> np.ndarray:
    """
    Where every stream position is after each segment, run through the compressive model's own
    memory bookkeeping (`evict`, `append_compressed`) with position numbers as the hidden states.
    Returns `[n_segments, n_segments * seq_len]` with 0 = not read yet, 1 = segment, 2 = memory,
    3 = compressed memory, 4 = forgotten.
    """
    from labml_nn.transformers.compressive import append_compressed, evict
    total = n_segments * seq_len
    state = np.zeros((n_segments, total), dtype=int)
    mem, cmem = None, None
    for s in range(n_segments):
        positions = torch.arange(s * seq_len, (s + 1) * seq_len, dtype=torch.float32)
        h = positions[None, :, None]
        row = state[s]
        row[: (s + 1) * seq_len] = 4
        row[s * seq_len:(s + 1) * seq_len] = 1
        if mem is not None:
            row[mem[0, :, 0].long().numpy()] = 2
        if cmem is not None:
            # A slot is named by the first of the `compression_rate` positions it stands for.
            for first in cmem[0, :, 0].long().tolist():
                row[first:first + compression_rate] = 3
        # After reading the segment: what the memory keeps, and what it evicts to compression.
        mem, evicted = evict(mem, h, mem_len, compression_rate, cmem_len > 0)
        if evicted.shape[1] > 0:
            slots = evicted[:, ::compression_rate]
            cmem = append_compressed(cmem, slots, cmem_len)
    return state


def plot_memory_timeline(state: np.ndarray, seq_len: int, title: str) -> plt.Figure:
    from matplotlib.colors import ListedColormap
    colors = ["white", "#fdd0a2", "#c6dbef", "#74c476", "#f0f0f0"]
    labels = ["not read yet", "segment", "memory", "compressed memory", "forgotten"]
    fig, ax = plt.subplots(figsize=(7, 3.0), dpi=DPI)
    ax.imshow(state, cmap=ListedColormap(colors), vmin=0, vmax=4, aspect="auto", interpolation="nearest")
    ax.set_xlabel("position in the stream")
    ax.set_ylabel("segment being read")
    for s in range(1, state.shape[1] // seq_len):
        ax.axvline(s * seq_len - 0.5, color="0.6", linewidth=0.4)
    handles = [Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="0.5") for c in colors[1:]]
    ax.legend(handles, labels[1:], fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_memory_attention_mass(attn: List[torch.Tensor], cmem_len: int, mem_len: int, title: str
                               ) -> plt.Figure:
    """Stacked bars, one per layer and head: the share of attention on compressed memory, memory and segment."""
    fig, ax = plt.subplots(figsize=(6.5, 3.0), dpi=DPI)
    labels, parts = [], []
    for l, a in enumerate(attn):
        for h in range(a.shape[1]):
            p = a[:, h].mean(dim=(0, 1))  # `[key_len]`
            parts.append([p[:cmem_len].sum().item(), p[cmem_len:cmem_len + mem_len].sum().item(),
                          p[cmem_len + mem_len:].sum().item()])
            labels.append(f"L{l}H{h}")
    parts = np.array(parts)
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for k, (name, color) in enumerate([("compressed memory", "#74c476"), ("memory", "#6baed6"),
                                       ("segment", "#fd8d3c")]):
        ax.bar(x, parts[:, k], bottom=bottom, color=color, label=name)
        bottom += parts[:, k]
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("share of attention")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


# ## Feedback Transformer

def feedback_layer_weights(model: nn.Module) -> np.ndarray:
    r"""$\operatorname{softmax}(w)$, the share of each layer (embedding first) in the memory vector."""
    return model.layer_weights.detach().softmax(dim=0).numpy()


def plot_layer_weights(weights: np.ndarray, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 2.8), dpi=DPI)
    names = ["embedding"] + [f"layer {l}" for l in range(1, len(weights))]
    ax.bar(names, weights, color="#6baed6")
    ax.axhline(1 / len(weights), color="0.4", linestyle=":", linewidth=1, label="uniform (initial)")
    for i, w in enumerate(weights):
        ax.text(i, w, f"{w:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("softmax(w) in the memory")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ## Adaptive span

def learned_spans(model: nn.Module) -> np.ndarray:
    r"""
    The span $zL$ in keys of every head of every layer of a model whose attentions have an
    [adaptive span](../transformers/adaptive_span.html), `[depth, heads]`, read from each layer's
    `attn.span` and `attn.span_ratio` (the model's `layers`, first to last).
    """
    layers = getattr(model, "layers", None)
    if layers is None or len(layers) == 0:
        raise ValueError(f"expected a model with a list of `layers`, got {type(model).__name__}")
    spans = []
    for l, layer in enumerate(layers):
        attn = getattr(layer, "attn", None)
        if getattr(attn, "span", None) is None:
            raise ValueError(f"layer {l} of {type(model).__name__} has no adaptive span (`layer.attn.span` is "
                             f"None): build the model with `span_ramp`")
        spans.append(attn.span.spans(attn.span_ratio).cpu().numpy())
    return np.stack(spans)


def plot_spans(spans: np.ndarray, mem_len: int, span_ramp: float, title: str) -> plt.Figure:
    r"""
    One bar per head, grouped by layer (`spans` is `[depth, heads]`, in keys): the span $zL$, the ramp
    $\rho$ on top of it in a lighter colour up to the reach $zL + \rho$ where the mask falls to 0, the
    window $L$ as a line, and each span's value above its bar. Layers and heads (h1, h2, ...) are numbered
    from 1.
    """
    if spans.ndim != 2:
        raise ValueError(f"spans must be [depth, heads], got shape {spans.shape}")
    depth, heads = spans.shape
    fig, ax = plt.subplots(figsize=(6.5, 3.2), dpi=DPI)
    # A gap of one bar between layers.
    x = np.array([[l * (heads + 1) + h for h in range(heads)] for l in range(depth)], dtype=float)
    ax.bar(x.ravel(), spans.ravel(), width=0.8, color="#2171b5", label=r"span $zL$")
    ax.bar(x.ravel(), np.full(spans.size, span_ramp), bottom=spans.ravel(), width=0.8, color="#c6dbef",
           label=rf"ramp $\rho$ = {span_ramp:g}: the mask falls to 0 at $zL + \rho$")
    ax.axhline(mem_len, color="0.3", linestyle="--", linewidth=1, label=f"window $L$ = {mem_len}")
    for xi, s in zip(x.ravel(), spans.ravel()):
        ax.text(xi, s + span_ramp, f"{s:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x.ravel())
    ax.set_xticklabels([f"h{h + 1}" for _ in range(depth) for h in range(heads)], fontsize=7)
    # The layer names under the heads' numbers, centred on each group.
    for l in range(depth):
        ax.text(x[l].mean(), -0.11, f"layer {l + 1}", transform=ax.get_xaxis_transform(), ha="center",
                va="top", fontsize=8)
    ax.set_ylabel("keys behind the newest")
    ax.set_ylim(0, 1.3 * max(mem_len, float(spans.max()) + span_ramp))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", ncol=1)
    fig.tight_layout()
    return fig


def time_it(fn, repeats: int = 3) -> float:
    """The median seconds of `repeats` calls of `fn`, after one untimed call (allocations, caches)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def feedback_timing(lengths: Sequence[int], dim: int = 64, depth: int = 2, heads: int = 4,
                    batch_size: int = 4, num_tokens: int = 65, repeats: int = 3) -> Dict[str, List[float]]:
    """
    Seconds for one training step (forward and backward of a segment of `L` tokens) and for generating
    `L` tokens, for the feedback model and for a Transformer-XL of the same width and depth (no memory
    for training: one parallel pass; `mem_len = L` for generation, so its cache holds the whole text).
    """
    from labml_nn.transformers.feedback import FeedbackTransformer
    from labml_nn.transformers.xl import TransformerXL
    out = {"length": list(lengths), "feedback_train": [], "xl_train": [], "feedback_generate": [],
           "xl_generate": []}
    for L in lengths:
        torch.manual_seed(0)
        x = torch.randint(0, num_tokens, (batch_size, L))
        # `window=1`: the exact model, one token after the other.
        fb = FeedbackTransformer(num_tokens=num_tokens, dim=dim, depth=depth, heads=heads, window=1, mem_len=L)
        xl_train = TransformerXL(num_tokens=num_tokens, dim=dim, depth=depth, heads=heads, mem_len=0)
        xl_gen = TransformerXL(num_tokens=num_tokens, dim=dim, depth=depth, heads=heads, mem_len=L)
        for name, model in (("feedback", fb), ("xl", xl_train)):
            def step(model=model):
                model(x).sum().backward()
            out[f"{name}_train"].append(time_it(step, repeats))
        prompt = x[:, :1]
        out["feedback_generate"].append(time_it(lambda: fb.generate(prompt, L - 1, top_k=1), repeats))
        out["xl_generate"].append(time_it(lambda: xl_gen.generate(prompt, L - 1, top_k=1), repeats))
    return out


def plot_timing(timing: Dict[str, List[float]], title: str) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0), dpi=DPI, sharey=False)
    L = timing["length"]
    for ax, kind, label in ((axes[0], "train", "training step (forward + backward)"),
                            (axes[1], "generate", "generating L tokens")):
        ax.loglog(L, timing[f"feedback_{kind}"], marker="o", color="#2ca02c", label="Feedback Transformer")
        ax.loglog(L, timing[f"xl_{kind}"], marker="o", color="#1f77b4", label="Transformer-XL")
        ax.set_xlabel("sequence length L (tokens)")
        ax.set_title(label, fontsize=9)
        ax.set_xticks(L)
        ax.set_xticklabels([str(v) for v in L], fontsize=7)
        ax.minorticks_off()
    axes[0].set_ylabel("seconds")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
