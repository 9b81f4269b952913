r"""
# Long memory: recall a key from beyond the segment

The memory transformers claim to let a model use text it can no longer see in its segment. This
script checks that claim on a task where nothing else helps: every answer lies exactly $D$
positions back, and $D$ is varied past the segment, past the memory, and past the compressed memory.

**The task.** An episode is `num_segments * seq_len` tokens of random *noise* tokens. One position
holds a *key* token (one of `num_keys`, a vocabulary of its own); the last position of the episode
is the *query* token, and the model must predict the key there. The key sits $D$ positions before
the query, so:

* the query is always the last position of the last segment, and the key is in the same segment
  exactly when $D <$ `seq_len`;
* a model that attends to `mem_len` remembered positions can see the key when
  $D <$ `seq_len + mem_len`;
* the compressive transformer, with `cmem_len` compressed slots of `compression_rate` positions each,
  covers $D <$ `seq_len + mem_len + cmem_len * compression_rate`, while attending to only
  `seq_len + mem_len + cmem_len` keys.

Each model reads an episode segment by segment, carrying its memory, exactly as it reads text; the
loss is the cross-entropy of the key at the query position (the noise is unpredictable, so it would
only add noise to the gradient). Every model trains on the same episodes with $D$ drawn uniformly,
for the same number of steps, and is then tested at each $D$: accuracy is the fraction of fresh
episodes whose key is the model's most likely token. Chance is $1 /$ `num_keys`.

```
python -m bench.long_memory                 # the default run, ~10-15 minutes on 2 idle cores
python -m bench.long_memory --steps 300     # shorter budget
python -m bench.long_memory --help
```

It writes `bench/reports/long_memory.{md,json,png}`.
"""

import argparse
import json

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from bench.common import machine
from labml_nn.transformers.compressive import CompressiveTransformer
from labml_nn.transformers.feedback import FeedbackTransformer
from labml_nn.transformers.xl import TransformerXL

RESULTS_DIR = Path(__file__).resolve().parent / "reports"
SITE_PICTURE = Path(__file__).resolve().parent.parent / "labml_nn" / "transformers" / "pictures" / "long_memory.png"


# ## The task

@dataclass
class RecallTask:
    """Token layout and episode shape of the recall task."""
    seq_len: int = 16
    num_segments: int = 3
    num_noise: int = 16
    num_keys: int = 8

    @property
    def episode_len(self) -> int:
        return self.seq_len * self.num_segments

    @property
    def query_token(self) -> int:
        # Ids: noise `0 .. num_noise - 1`, keys `num_noise .. num_noise + num_keys - 1`, then the query.
        return self.num_noise + self.num_keys

    @property
    def num_tokens(self) -> int:
        return self.num_noise + self.num_keys + 1

    @property
    def max_distance(self) -> int:
        # The key must fit before the query: it can be as far back as the first position.
        return self.episode_len - 1

    def episodes(self, distances: torch.Tensor, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Episodes `[batch_size, episode_len]` with their answers `[batch_size]`, one per distance in
        `distances`, `[batch_size]`: the key at position `episode_len - 1 - D`, the query at the last.
        """
        if distances.min() < 1 or distances.max() > self.max_distance:
            raise ValueError(f"distances must lie in 1..{self.max_distance}, got "
                             f"{distances.min().item()}..{distances.max().item()}")
        batch_size = distances.shape[0]
        x = torch.randint(0, self.num_noise, (batch_size, self.episode_len), generator=generator)
        keys = torch.randint(0, self.num_keys, (batch_size,), generator=generator) + self.num_noise
        query_pos = self.episode_len - 1
        x[torch.arange(batch_size), query_pos - distances] = keys
        x[:, query_pos] = self.query_token
        return x, keys

    def segments(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Cut episodes `[batch_size, episode_len]` into `num_segments` segments `[batch_size, seq_len]`."""
        return list(x.split(self.seq_len, dim=1))

    def key_segment(self, distance: int) -> int:
        """The index of the segment that holds a key at `distance` (the query is in the last)."""
        return (self.episode_len - 1 - distance) // self.seq_len


# ## The models

@dataclass
class ModelSpec:
    """One contender: a name, how to build it, and the reach its memory is designed to have."""
    name: str
    build: Callable[[], nn.Module]
    # Keys a query attends to (segment + memory + compressed memory) and how many positions back
    # those keys cover, from the last position of a segment.
    attention_len: int
    reach: Optional[int]
    note: str = ""


def model_specs(task: RecallTask, dim: int, depth: int, heads: int, mem_len: int, cmem_len: int,
                compression_rate: int, names: List[str]) -> List[ModelSpec]:
    """The models to compare."""

    S = task.seq_len
    # Transformer-XL gets the same attention length as the compressive transformer:
    # `mem_len + cmem_len` remembered positions.
    xl_mem = mem_len + cmem_len
    common = dict(num_tokens=task.num_tokens, dim=dim, depth=depth, heads=heads)
    specs = []
    for name in names:
        if name == "baseline":
            specs.append(ModelSpec("baseline", lambda: TransformerXL(**common, mem_len=0),
                                   attention_len=S, reach=S - 1, note="TransformerXL, mem_len=0"))
        elif name == "xl":
            specs.append(ModelSpec("xl", lambda: TransformerXL(**common, mem_len=xl_mem),
                                   attention_len=S + xl_mem, reach=S - 1 + xl_mem,
                                   note=f"TransformerXL, mem_len={xl_mem}"))
        elif name == "compressive":
            specs.append(ModelSpec(
                "compressive",
                lambda: CompressiveTransformer(**common, mem_len=mem_len, cmem_len=cmem_len,
                                               compression_rate=compression_rate),
                attention_len=S + mem_len + cmem_len, reach=S - 1 + mem_len + cmem_len * compression_rate,
                note=f"mem_len={mem_len}, cmem_len={cmem_len}, compression_rate={compression_rate}"))
        elif name == "feedback":
            specs.append(ModelSpec(
                "feedback",
                # `window=1`: the exact model, one token at a time.
                lambda: FeedbackTransformer(**common, window=1, mem_len=xl_mem),
                attention_len=xl_mem, reach=None,
                note=f"mem_len={xl_mem}, token by token; the recurrence has no fixed reach"))
        else:
            raise ValueError(f"unknown model {name!r}: choose from baseline, xl, compressive, feedback")
    return specs


def read_segment(model: nn.Module, x: torch.Tensor, memory: Any) -> Tuple[torch.Tensor, Any, Optional[torch.Tensor]]:
    """
    One segment `[batch_size, seq_len]` through any of the models: logits
    `[batch_size, seq_len, num_tokens]`, the new memory, and the compressive transformer's
    auxiliary (attention-reconstruction) loss, or `None` for the others.
    """
    if hasattr(model, "compression_parameters"):
        logits, memory, aux = model(x, memory=memory, return_memory=True, return_aux_loss=True)
        return logits, memory, aux
    logits, memory = model(x, memory=memory, return_memory=True)
    return logits, memory, None


def answer_logits(model: nn.Module, task: RecallTask, x: torch.Tensor, train: bool
                  ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """
    Read episodes `x` segment by segment; return the logits at the query, `[batch_size, num_tokens]`,
    and the compressive transformer's auxiliary loss of the last segment (`None` for the others).
    The models detach their memory, so only the last segment needs a graph. The compression network
    learns from the positions the last segment evicts; earlier segments would teach it the same
    thing at the cost of a graph per segment.
    """
    memory = None
    segments = task.segments(x)
    for segment in segments[:-1]:
        with torch.no_grad():
            _, memory, _ = read_segment(model, segment, memory)
    with torch.set_grad_enabled(train):
        logits, _, aux = read_segment(model, segments[-1], memory)
    return logits[:, -1], aux


# ## Training and evaluation

def train(model: nn.Module, task: RecallTask, steps: int, batch_size: int, lr: float, seed: int,
          log: Callable[[str], None] = print) -> Dict[str, Any]:
    """AdamW with a short linear warm-up; `D` uniform over `1 .. max_distance` in every batch."""
    generator = torch.Generator().manual_seed(seed)
    # The compressive transformer's compression network is trained by its own loss; as in its
    # experiment it gets its own parameter group, clipped on its own.
    if hasattr(model, "compression_parameters"):
        groups = [list(model.main_parameters()), list(model.compression_parameters())]
    else:
        groups = [list(model.parameters())]
    optimiser = torch.optim.AdamW([{"params": g} for g in groups], lr=lr, weight_decay=0.0)
    warmup = max(1, min(100, steps // 10))
    losses = []
    model.train()
    started = time.perf_counter()
    for step in range(steps):
        for group in optimiser.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        distances = torch.randint(1, task.max_distance + 1, (batch_size,), generator=generator)
        x, keys = task.episodes(distances, generator)
        logits, aux = answer_logits(model, task, x, train=True)
        loss = F.cross_entropy(logits, keys)
        total = loss if aux is None else loss + aux
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        for group in groups:
            torch.nn.utils.clip_grad_norm_(group, 1.0)
        optimiser.step()
        losses.append(loss.item())
        if (step + 1) % max(1, steps // 5) == 0:
            recent = losses[-max(1, steps // 5):]
            log(f"  step {step + 1}/{steps}: loss {sum(recent) / len(recent):.3f} "
                f"({time.perf_counter() - started:.0f}s)")
    return {"losses": losses, "train_seconds": time.perf_counter() - started}


@torch.no_grad()
def recall_accuracy(model: nn.Module, task: RecallTask, distance: int, episodes: int, seed: int) -> float:
    """The fraction of `episodes` fresh episodes with the key at `distance` that the model recalls."""
    model.eval()
    generator = torch.Generator().manual_seed(seed + distance)
    x, keys = task.episodes(torch.full((episodes,), distance), generator)
    logits, _ = answer_logits(model, task, x, train=False)
    return (logits.argmax(-1) == keys).float().mean().item()


# ## The report

def default_distances(task: RecallTask) -> List[int]:
    """Eight distances spread over `1 .. max_distance`, the first inside the segment."""
    step = task.seq_len // 2
    return list(range(step, task.max_distance + 1, step))


def write_outputs(out_dir: Path, results: dict) -> Dict[str, Path]:
    """`long_memory.json`, `long_memory.md` and `long_memory.png` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / f"long_memory.{k}" for k in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(results, indent=2))

    distances = results["distances"]
    models = results["models"]
    task = results["task"]
    lines = ["### Long memory: recall accuracy against distance", "",
             f"Measured {results['date']} on {results['machine']}.", "",
             f"Episodes of {task['num_segments']} segments of {task['seq_len']} tokens; the key is one of "
             f"{task['num_keys']} (chance {1 / task['num_keys']:.2f}) and lies D positions before the query, "
             f"which is the last position of the last segment. Every model: dim {results['dim']}, "
             f"depth {results['depth']}, {results['heads']} heads, {results['steps']} steps of "
             f"{results['batch_size']} episodes, D uniform in 1..{task['episode_len'] - 1}. "
             f"Accuracy over {results['eval_episodes']} fresh episodes per D.", "",
             "| model | memory | keys attended | designed reach | train s | "
             + " | ".join(f"D={d}" for d in distances) + " |",
             "|" + "---|" * (5 + len(distances))]
    for m in models:
        reach = "—" if m["reach"] is None else f"D ≤ {m['reach']}"
        accs = " | ".join(_cell(m["accuracy"][str(d)], d, m["reach"]) for d in distances)
        lines.append(f"| {m['name']} | {m['note']} | {m['attention_len']} | {reach} | "
                     f"{m['train_seconds']:.0f} | {accs} |")
    lines += ["", "Bold: D within the model's designed reach (segment plus memory, plus compressed memory). "
              "Keys attended: segment + memory + compressed memory for the layered models; the feedback "
              "model attends to its memory vectors only (the segment's tokens reach it through them). "
              "Train s: wall-clock seconds, which on a shared machine also measure the other users' load."]
    paths["md"].write_text("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8.5, 3.6), dpi=100)
    colors = {"baseline": "#7f7f7f", "xl": "#1f77b4", "compressive": "#d62728", "feedback": "#2ca02c"}
    for m in models:
        color = colors.get(m["name"])
        ax.plot(distances, [m["accuracy"][str(d)] for d in distances], marker="o", color=color,
                label=f"{m['name']} ({m['attention_len']} keys)")
        if m["reach"] is not None:
            ax.axvline(m["reach"] + 0.5, color=color, linestyle=":", linewidth=1)
    ax.axhline(1 / task["num_keys"], color="black", linewidth=0.8, linestyle="--", label="chance")
    for s in range(1, task["num_segments"]):
        # Segment boundaries, seen from the query: beyond the first, the key is in an earlier segment.
        ax.axvline(s * task["seq_len"] - 0.5, color="0.85", linewidth=3, zorder=0)
    ax.set_xlabel("distance D from the key to the query (tokens)")
    ax.set_ylabel("recall accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title("Recall of a key D tokens back (grey: segment boundaries; dotted: designed reach)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(paths["png"])
    # The site shows the plot on the transformers page, which can only show pictures from the package.
    if out_dir.resolve() == RESULTS_DIR.resolve():
        fig.savefig(SITE_PICTURE)
    plt.close(fig)
    return paths


def _cell(acc: float, distance: int, reach: Optional[int]) -> str:
    text = f"{acc:.2f}"
    return f"**{text}**" if reach is not None and distance <= reach else text


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict:
    torch.set_num_threads(args.threads)
    task = RecallTask(seq_len=args.seq_len, num_segments=args.num_segments, num_noise=args.num_noise,
                      num_keys=args.num_keys)
    distances = args.distances or default_distances(task)
    specs = model_specs(task, args.dim, args.depth, args.heads, args.mem_len, args.cmem_len,
                        args.compression_rate, args.models)
    models = []
    for spec in specs:
        torch.manual_seed(args.seed)
        model = spec.build()
        log(f"{spec.name} ({spec.note}): {sum(p.numel() for p in model.parameters()):,} parameters")
        trained = train(model, task, args.steps, args.batch_size, args.lr, args.seed, log)
        accuracy = {str(d): recall_accuracy(model, task, d, args.eval_episodes, args.seed + 1)
                    for d in distances}
        log("  accuracy: " + ", ".join(f"D={d}: {a:.2f}" for d, a in accuracy.items()))
        models.append(dict(name=spec.name, note=spec.note, attention_len=spec.attention_len,
                           reach=spec.reach, train_seconds=trained["train_seconds"],
                           final_loss=sum(trained["losses"][-20:]) / len(trained["losses"][-20:]),
                           accuracy=accuracy))
    results = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=machine(),
                   task=dict(asdict(task), episode_len=task.episode_len), distances=distances,
                   dim=args.dim, depth=args.depth, heads=args.heads, steps=args.steps,
                   batch_size=args.batch_size, lr=args.lr, eval_episodes=args.eval_episodes,
                   seed=args.seed, models=models)
    paths = write_outputs(Path(args.out_dir), results)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Recall accuracy against distance for the memory transformers.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="training steps per model (the budget)")
    p.add_argument("--batch-size", type=int, default=32, help="episodes per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of AdamW")
    p.add_argument("--models", nargs="+", default=["baseline", "xl", "compressive", "feedback"],
                   help="which models to train")
    p.add_argument("--distances", type=int, nargs="*", default=None,
                   help="distances to test (default: every seq_len / 2 up to the episode length)")
    p.add_argument("--seq-len", type=int, default=16, help="tokens per segment")
    p.add_argument("--num-segments", type=int, default=3, help="segments per episode")
    p.add_argument("--num-noise", type=int, default=16, help="noise tokens in the vocabulary")
    p.add_argument("--num-keys", type=int, default=8, help="key tokens in the vocabulary")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=1,
                   help="layers; with more than one, Transformer-XL's reach grows past segment + memory")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mem-len", type=int, default=8, help="the compressive transformer's memory")
    p.add_argument("--cmem-len", type=int, default=4,
                   help="its compressed memory; Transformer-XL and feedback get mem_len + cmem_len")
    p.add_argument("--compression-rate", "--cmem-ratio", type=int, default=4, help="compression rate c")
    p.add_argument("--eval-episodes", type=int, default=256, help="test episodes per distance")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=str(RESULTS_DIR), help="where the report files go")
    return p


def main(argv: Optional[List[str]] = None) -> dict:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
