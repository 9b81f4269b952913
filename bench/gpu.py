"""
Training throughput on one GPU at the papers' enwik8 configurations, and how long a run would take.

For each model at its enwik8 preset (`xl-enwik8-base`, `compressive-enwik8`, `feedback-enwik8` of
`labml_nn/experiments/presets.py`: the preset's width, depth, heads, feed-forward, segment, memories and
dropouts, with enwik8's 205 byte ids) and at a half-size variant (half the depth, half the width and
half the heads of the same head width; the same segment and memories), this measures a training step
as the training loop runs it (`labml_nn.experiments.trainer.train`): forward with the memory carried from segment to segment,
the LM loss (plus the compressive model's attention-reconstruction loss), backward and an AdamW step,
in bfloat16 through `torch.autocast` with float32 weights, eagerly and under `torch.compile`. It
reports

* training tokens per second, from the median step time of a few steps taken in turn with the other
  paths of the same model (eager, compiled and the peer), after warm-up steps;
* the model FLOP utilisation, `model.flops_per_token(segment) * tokens/s / peak` (`--peak-tflops`,
  989 by default: an H100's or H200's dense bfloat16 peak);
* the peak GPU memory of the path (`torch.cuda.max_memory_allocated` over building the model and its
  warm-up steps, less what the process held before: weights, gradients, AdamW moments, memories and
  activations of this path only);
* the compile time: the warm-up steps of a compiled path, run from an empty inductor cache;
* beside the Transformer-XL rows, x-transformers' `TransformerWrapper` with `Decoder(rel_pos_bias=True)`
  at the same width, depth, heads, segment (`max_seq_len`) and memory (`max_mem_len`), eager and compiled.

Every step starts from a memory already full (filled by forward passes without gradients first): that
is the steady state a long run spends its time in, the state `flops_per_token` counts, and it gives a
compiled model one shape to compile for.

Run it with `make bench-gpu` (or `python -m bench.gpu` in .venv-bench) on a GPU machine; it writes
`bench/reports/gpu.md` and `bench/reports/gpu.json`, whose `figures` the pages quote as
`{report:gpu.KEY}`. `python -m bench.gpu --device cpu --tiny` runs the same code at a tiny size in a few
seconds (the test does), writing to a temporary folder unless `--out-dir` says where.
`python -m bench.gpu --placeholder` writes the report that says no GPU figure has been measured yet.

**Why the defaults fit in 8 minutes on one H200** (estimates: no GPU has run this yet). Steady-state
steps are cheap: the XL preset at batch 22, its full batch (~4.4 TFLOP a step), takes tens of
milliseconds, and the compressive preset at batch 8 (~24 TFLOP; its attention over 2,688 positions in 24
layers keeps the batch small) a fraction of a second, so 2 warm-up and 10 timed steps of a path take
seconds. The Feedback Transformer runs token by token: a 128-token segment is ~1,500 small layer steps
and hundreds of thousands of operator calls forward and backward, so its step costs a few seconds of host time
almost whatever the batch, hence a batch of 64 and a memory of 512 (`--feedback-mem-len`: the preset's
8,192 makes every step attend 16 times as far); the timing of a model stops after `--group-seconds`
(20 s, at least 3 rounds). What takes the time is compiling, from an empty cache: roughly 30 s to 2
minutes per compiled path (the compiled Feedback Transformer breaks its graph at the key/value buffer and
unrolls its layers between the breaks: ~50 s for 2 layers and ~160 s for 12 on a 2-core CPU, nearly
the same for 16- and 64-token segments), 8 compiled paths in all, ~5-7 minutes together. So the full
sizes run first, and a path is started only if it should end within `--time-limit` (420 s: an eager path
needs 20 s left, a compiled one 120 s); one that is not says so in its row (run it on its own with
`--only MODEL --sizes half`). The whole run should take 6-8 minutes.
"""
import argparse
import gc
import json
import math
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from bench.common import RESULTS_DIR, compile_model, lm_loss, machine, median
from labml_nn.experiments.presets import PRESETS

# enwik8 is read as bytes; 205 distinct values occur in it.
NUM_TOKENS = 205
MODELS = ["xl", "compressive", "feedback"]
PRESET_OF = {"xl": "xl-enwik8-base", "compressive": "compressive-enwik8", "feedback": "feedback-enwik8"}
NAMES = {"xl": "Transformer-XL", "x-transformers": "x-transformers",
         "compressive": "Compressive Transformer", "feedback": "Feedback Transformer"}
NOT_MEASURED = "not measured yet"
# A path is not started when the run has fewer seconds than this left before `--time-limit`.
RESERVE_S = {"eager": 20.0, "compiled": 120.0}
# The tiny size of `--tiny`: the same code path in seconds on a CPU.
TINY = dict(dim=32, depth=2, heads=2, dim_head=16, ff_mult=2, seq_len=16, mem_len=16, cmem_len=16,
            compression_rate=2)


def figure_keys() -> List[str]:
    """The keys of the report's `figures`, the same whether measured or not, so a page's placeholder
    never breaks the site build when the report is regenerated."""
    return [f"{name}_{what}" for name in PRESET_OF.values() for what in ("tokens_per_s", "hours", "mfu")]


# ---------------------------------------------------------------------------------------------------
# What to build: the constructor arguments of each model at each size.

@dataclass
class Spec:
    """One path to time: a model (`xl`, `x-transformers`, `compressive`, `feedback`) at a size, eager
    or compiled, with the constructor arguments of our model, its segment and batch."""
    model: str
    size: str
    compiled: bool
    kwargs: Dict[str, Any]
    segment: int
    batch_size: int
    note: str = ""

    @property
    def path(self) -> str:
        return "compiled" if self.compiled else "eager"

    @property
    def preset(self) -> str:
        return PRESET_OF["xl" if self.model == "x-transformers" else self.model]


def model_kwargs(model: str, size: str, args: argparse.Namespace) -> Tuple[Dict[str, Any], int]:
    """Our model's constructor arguments at `size` (`full` or `half`) and the training segment, from
    the preset's options (or the tiny size of `--tiny`)."""
    o = dict(PRESETS[PRESET_OF[model]].options)
    if args.tiny:
        o.update(TINY)
    kw = dict(num_tokens=NUM_TOKENS, dim=o["dim"], depth=o["depth"], heads=o["heads"], dim_head=o["dim_head"],
              ff_mult=o["ff_mult"], mem_len=o["mem_len"], attn_dropout=o["attn_dropout"],
              ff_dropout=o["ff_dropout"])
    if size == "half":
        # Half the width as half the heads of the same head width, so heads * dim_head halves with dim.
        kw.update(dim=kw["dim"] // 2, depth=max(1, kw["depth"] // 2), heads=max(1, kw["heads"] // 2))
    if model == "compressive":
        kw.update(cmem_len=o["cmem_len"], compression_rate=o["compression_rate"])
    if model == "feedback":
        # The experiment's `window` is the model's `seq_len`: 1, the paper's token-by-token model.
        kw.update(seq_len=o["window"], shared_kv=o["shared_kv"],
                  mem_len=o["mem_len"] if args.tiny else args.feedback_mem_len)
    return kw, o["seq_len"]


def specs_of(model: str, size: str, args: argparse.Namespace) -> List[Spec]:
    """The paths measured side by side for one model at one size."""
    kw, segment = model_kwargs(model, size, args)
    batch = args.batch_size or (2 if args.tiny else getattr(args, f"{model}_batch_size"))
    if model == "xl":
        return [Spec("xl", size, False, kw, segment, batch), Spec("xl", size, True, kw, segment, batch),
                Spec("x-transformers", size, False, kw, segment, batch,
                     "`Decoder(rel_pos_bias=True)`; MFU counted with our model's FLOPs"),
                Spec("x-transformers", size, True, kw, segment, batch,
                     "`Decoder(rel_pos_bias=True)`; MFU counted with our model's FLOPs")]
    if model == "feedback":
        # The default step is the hand-written one (`feedback/step.py`), which computes in float32 whatever
        # autocast says; compiled, the model page's recurrence (`step="autograd"`), as `bench/feedback.py` does.
        compiled_segment = min(segment, args.feedback_compile_seq_len or segment)
        return [Spec("feedback", size, False, kw, segment, batch, "hand-written step (float32 inside)"),
                Spec("feedback", size, True, {**kw, "step": "autograd"}, compiled_segment, batch,
                     "`step=\"autograd\"`" + (f", segment {compiled_segment}" if compiled_segment != segment else ""))]
    return [Spec(model, size, False, kw, segment, batch), Spec(model, size, True, kw, segment, batch)]


def build(spec: Spec) -> torch.nn.Module:
    """The model of `spec`, on the current default device."""
    kw = spec.kwargs
    if spec.model == "xl":
        from labml_nn.transformers.xl import TransformerXL
        return TransformerXL(**kw)
    if spec.model == "compressive":
        from labml_nn.transformers.compressive import CompressiveTransformer
        return CompressiveTransformer(**kw)
    if spec.model == "feedback":
        from labml_nn.transformers.feedback import FeedbackTransformer
        return FeedbackTransformer(**kw)
    from x_transformers import Decoder, TransformerWrapper
    return TransformerWrapper(
        num_tokens=kw["num_tokens"], max_seq_len=spec.segment, max_mem_len=kw["mem_len"],
        attn_layers=Decoder(dim=kw["dim"], depth=kw["depth"], heads=kw["heads"], rel_pos_bias=True,
                            attn_dim_head=kw["dim_head"], ff_mult=kw["ff_mult"],
                            attn_dropout=kw["attn_dropout"], ff_dropout=kw["ff_dropout"]))


def flops_per_token(spec: Spec) -> float:
    """Our model's training FLOPs per token at the spec's segment (x-transformers: those of our
    Transformer-XL of the same size), from a copy of the model on the meta device."""
    ours = Spec("xl" if spec.model == "x-transformers" else spec.model, spec.size, False, spec.kwargs,
                spec.segment, spec.batch_size)
    with torch.device("meta"):
        return build(ours).flops_per_token(spec.segment)


# ---------------------------------------------------------------------------------------------------
# One path: a model, its optimiser, its carried memory and a training step.

def call(model: str, fn: Callable, x: torch.Tensor, memory: Any, aux: bool) -> Tuple[torch.Tensor, Any, Any]:
    """Run `fn` (the model, or the model compiled) on `x` with `memory`: `(logits, new_memory, aux_loss or None)`."""
    if model == "x-transformers":
        logits, memory = fn(x, mems=memory, return_mems=True)
        return logits, memory, None
    if model == "compressive" and aux:
        return fn(x, memory=memory, return_memory=True, return_aux_loss=True)
    logits, memory = fn(x, memory=memory, return_memory=True)
    return logits, memory, None


def shapes(memory: Any) -> tuple:
    """The shapes of every tensor of a memory (a tensor, a list, a named tuple of lists)."""
    if isinstance(memory, torch.Tensor):
        return (tuple(memory.shape),)
    if isinstance(memory, (list, tuple)):
        return tuple(s for m in memory for s in shapes(m))
    return ()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """A path of `spec` ready to train: the model (and it compiled), AdamW, a few batches of random
    byte ids on the device, and the memory, carried from step to step."""

    def __init__(self, spec: Spec, device: torch.device, seed: int = 0):
        self.spec, self.device = spec, device
        torch.manual_seed(seed)
        with torch.device(device):
            self.module = build(spec)
        self.module.train()
        self.forward = compile_model(self.module) if spec.compiled else self.module
        self.opt = torch.optim.AdamW(self.module.parameters(), lr=1e-4)
        g = torch.Generator().manual_seed(seed)
        tokens = torch.randint(0, NUM_TOKENS, (4, spec.batch_size, spec.segment + 1), generator=g).to(device)
        self.batches = [(t[:, :-1], t[:, 1:]) for t in tokens]
        self.i, self.memory = 0, None

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def fill_memory(self, max_calls: int = 64) -> None:
        """Forward passes without gradients, eagerly, until the memory stops growing: the steady state."""
        before = None
        with torch.no_grad(), self.autocast():
            for i in range(max_calls):
                _, self.memory, _ = call(self.spec.model, self.module, self.batches[i % 4][0], self.memory, aux=False)
                now = shapes(self.memory)
                if now == before:
                    break
                before = now

    def step(self) -> None:
        """One training step, as the training loop (`train`) takes it, and wait for the device to finish it."""
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        with self.autocast():
            logits, self.memory, aux = call(self.spec.model, self.forward, x, self.memory, aux=True)
            loss = lm_loss(logits, y)
            if aux is not None:
                # The reconstruction loss reaches only the compression network: the sum trains both.
                loss = loss + aux
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        synchronize(self.device)


# ---------------------------------------------------------------------------------------------------
# Measuring one model at one size: its paths built one after another, then timed in turn.

@dataclass
class Row:
    spec: Spec
    status: str = "ok"
    warmup_s: Optional[float] = None
    peak_gib: Optional[float] = None
    step_s: List[float] = field(default_factory=list)
    tokens_per_s: Optional[float] = None
    mfu: Optional[float] = None

    def as_dict(self) -> dict:
        s = self.spec
        return dict(model=s.model, name=NAMES[s.model], preset=s.preset, size=s.size, path=s.path,
                    layers=s.kwargs["depth"], dim=s.kwargs["dim"], heads=s.kwargs["heads"],
                    dim_head=s.kwargs["dim_head"], batch_size=s.batch_size, segment=s.segment,
                    mem_len=s.kwargs["mem_len"], cmem_len=s.kwargs.get("cmem_len"), note=s.note,
                    tokens_per_s=self.tokens_per_s, mfu=self.mfu, peak_gib=self.peak_gib,
                    compile_s=self.warmup_s if s.compiled else None,
                    median_step_s=median(self.step_s) if self.step_s else None, timed_steps=len(self.step_s),
                    status=self.status)


def describe_error(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"error: {type(error).__name__}: {lines[0] if lines else ''}"[:200]


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class Clock:
    """Seconds since the run started, and whether a path still fits before `--time-limit`."""

    def __init__(self, limit: float):
        self.start, self.limit = time.perf_counter(), limit

    def __call__(self) -> float:
        return time.perf_counter() - self.start

    def fits(self, path: str) -> bool:
        return self.limit <= 0 or self() + RESERVE_S[path] <= self.limit


def log(clock: Clock, message: str) -> None:
    print(f"[{clock():5.0f} s] {message}", flush=True)


def measure(specs: List[Spec], args: argparse.Namespace, device: torch.device, clock: Clock) -> List[Row]:
    """
    Build and warm up each path in turn (its peak memory measured alone, its compile time the warm-up),
    then time them step by step in turn (A B C A B C ...), `--steps` rounds or until `--group-seconds`
    have passed, and report the median. A path that fails is reported in its row; the others go on.
    """
    rows = [Row(s) for s in specs]
    runners: Dict[int, Runner] = {}
    for i, row in enumerate(rows):
        s = row.spec
        label = f"{s.model} {s.size} {s.path}"
        if s.compiled and not args.compile:
            row.status = "skipped: --no-compile"
            continue
        if not clock.fits(s.path):
            only = "xl" if s.model == "x-transformers" else s.model
            row.status = (f"skipped: less than {RESERVE_S[s.path]:.0f} s of --time-limit {args.time_limit:.0f} s "
                          f"left (run it with --only {only} --sizes {s.size})")
            log(clock, f"{label}: {row.status}")
            continue
        try:
            base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            runner = Runner(s, device)
            runner.fill_memory()
            start = time.perf_counter()
            for _ in range(args.warmup):
                runner.step()
            row.warmup_s = time.perf_counter() - start
            if device.type == "cuda":
                row.peak_gib = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 30
            runners[i] = runner
            log(clock, f"{label}: built, {args.warmup} warm-up steps in {row.warmup_s:.1f} s"
                       + (f", peak {row.peak_gib:.1f} GiB" if row.peak_gib is not None else ""))
        except Exception as error:  # noqa: BLE001 - one path's failure (out of memory, compile) is its row's
            traceback.print_exc()
            row.status = describe_error(error)
            log(clock, f"{label}: {row.status}")
        # Out of the `except` block, whose traceback holds the failed path's tensors.
        runner = None
        free(device)

    start = time.perf_counter()
    for r in range(args.steps):
        for i in list(runners):
            try:
                t = time.perf_counter()
                runners[i].step()
                rows[i].step_s.append(time.perf_counter() - t)
            except Exception as error:  # noqa: BLE001
                traceback.print_exc()
                rows[i].status = describe_error(error)
                log(clock, f"{rows[i].spec.model} {rows[i].spec.size} {rows[i].spec.path}: {rows[i].status}")
            if rows[i].status != "ok":
                del runners[i]
                free(device)
        if r + 1 >= min(3, args.steps) and time.perf_counter() - start > args.group_seconds:
            break
    for row in rows:
        if row.step_s and row.status == "ok":
            s = row.spec
            row.tokens_per_s = s.batch_size * s.segment / median(row.step_s)
            row.mfu = flops_per_token(s) * row.tokens_per_s / (args.peak_tflops * 1e12)
            log(clock, f"{s.model} {s.size} {s.path}: {row.tokens_per_s:,.0f} tokens/s over "
                       f"{len(row.step_s)} steps, MFU {row.mfu:.1%}")
    runners.clear()
    free(device)
    torch._dynamo.reset()
    return rows


def warm_up_compiler(device: torch.device) -> None:
    """Compile a small training step once, so that the compiler's one-time start (its imports, its
    workers) is not counted in the first model's compile time."""
    layer = torch.nn.Linear(8, 8).to(device)
    x = torch.randn(4, 8, device=device)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        compile_model(layer)(x).float().square().mean().backward()
    synchronize(device)
    torch._dynamo.reset()


# ---------------------------------------------------------------------------------------------------
# The report.

def significant(x: float, digits: int) -> float:
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x))))) if x else 0.0


def fmt_rate(x: float) -> str:
    """Tokens per second as the pages quote them: three significant figures, `61,200`."""
    r = significant(x, 3)
    return f"{r:,.0f}" if r >= 100 else f"{r:,.3g}"


def fmt_hours(h: float) -> str:
    """Hours, two significant figures: `310 h`, `2.4 h`."""
    r = significant(h, 2)
    return f"{r:,.0f} h" if r >= 10 else f"{r:.2g} h"


def figures_of(rows: List[Row]) -> Dict[str, str]:
    """For each preset: the best tokens/s of our full-size model (eager or compiled), the hours to train
    the preset's `steps` at its full batch at that rate on one GPU, and the MFU of that path."""
    figures = {}
    for model, name in PRESET_OF.items():
        done = [r for r in rows if r.spec.model == model and r.spec.size == "full" and r.tokens_per_s]
        if not done:
            tried = [r for r in rows if r.spec.model == model and r.spec.size == "full"]
            why = "not measured: " + (tried[0].status if tried else "not run")
            figures.update({f"{name}_tokens_per_s": why, f"{name}_hours": why, f"{name}_mfu": why})
            continue
        best = max(done, key=lambda r: r.tokens_per_s)
        o = PRESETS[name].options
        tokens = o["steps"] * o["batch_size"] * o["seq_len"]
        figures[f"{name}_tokens_per_s"] = fmt_rate(best.tokens_per_s)
        figures[f"{name}_hours"] = fmt_hours(tokens / best.tokens_per_s / 3600)
        figures[f"{name}_mfu"] = f"{best.mfu:.1%}" if best.mfu >= 0.001 else f"{best.mfu:.2g}"
    return figures


def where(device: torch.device) -> str:
    """The machine, named: the GPU and torch's versions, or the CPU."""
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return (f"{torch.cuda.get_device_name(device)} ({p.total_memory / 2 ** 30:.0f} GiB), "
                f"torch {torch.__version__}, "
                f"CUDA {torch.version.cuda}")
    return machine()


def cell(row: Row) -> List[str]:
    s, kw = row.spec, row.spec.kwargs
    memory = f"{kw['mem_len']:,}"
    if s.model == "compressive":
        memory += f" + {kw['cmem_len']:,} compressed (c = {kw['compression_rate']})"
    if s.model == "feedback":
        memory += f" (preset {PRESETS[s.preset].options['mem_len']:,})"
    compile_s = f"{row.warmup_s:.0f}" if s.compiled and row.warmup_s is not None else "—"
    note = s.note if row.status == "ok" else (f"{s.note}; {row.status}" if s.note else row.status)
    return [NAMES[s.model], f"{s.size}: {kw['depth']} × {kw['dim']}", s.path, f"{s.batch_size} × {s.segment}",
            memory, f"{row.tokens_per_s:,.0f}" if row.tokens_per_s else "—",
            f"{row.mfu:.1%}" if row.mfu is not None else "—",
            f"{row.peak_gib:.1f}" if row.peak_gib is not None else "—", compile_s, note]


COLUMNS = ["model", "size: layers × width", "path", "batch × segment", "memory", "tokens/s", "MFU",
           "peak memory GiB", "compile s", "note"]
TITLE = "### Training throughput on one GPU at the papers' enwik8 configurations"


def write(out_dir: Path, meta: dict, rows: List[dict], figures: Dict[str, str], lines: List[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu.json").write_text(json.dumps(dict(meta=meta, rows=rows, figures=figures), indent=2) + "\n")
    (out_dir / "gpu.md").write_text("\n".join(lines) + "\n")


def write_report(out_dir: Path, rows: List[Row], args: argparse.Namespace, device: torch.device,
                 seconds: float) -> Dict[str, str]:
    figures = figures_of(rows)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta = dict(measured=True, tiny=args.tiny, machine=where(device), device=str(device), date=date,
                torch=torch.__version__, peak_tflops=args.peak_tflops, steps=args.steps, warmup=args.warmup,
                seconds=round(seconds, 1))
    title = TITLE + (" (tiny check, not the presets)" if args.tiny else "")
    lines = [title, "", f"Measured {date} on {meta['machine']}, in {seconds:.0f} s. Training step: forward with the "
                        f"memory carried (full from the start), LM loss (+ the compressive model's reconstruction "
                        f"loss), backward, AdamW; bfloat16 autocast, float32 weights. Tokens/s: batch × segment over "
                        f"the median of up to {args.steps} steps after {args.warmup} warm-up steps, the paths of a "
                        f"model taken in turn. MFU: `flops_per_token(segment)` × tokens/s over {args.peak_tflops:g} "
                        f"TFLOP/s. Peak memory: `torch.cuda.max_memory_allocated` while the path was built and warmed "
                        f"up, less what the process held before. Compile s: the compiled path's warm-up steps, from "
                        f"an empty inductor cache.", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    lines += ["| " + " | ".join(cell(r)) + " |" for r in rows]
    lines += ["", "Hours to train each preset on one GPU, its `steps` at its full batch (`batch_size × seq_len` "
                  "tokens a step) at the best rate measured for our full-size model:", ""]
    for name in PRESET_OF.values():
        o = PRESETS[name].options
        lines.append(f"* `{name}`: {figures[f'{name}_tokens_per_s']} tokens/s, {o['steps']:,} steps of "
                     f"{o['batch_size']} × {o['seq_len']} tokens: **{figures[f'{name}_hours']}**")
    fb_mem = next((r.spec.kwargs["mem_len"] for r in rows if r.spec.model == "feedback"), args.feedback_mem_len)
    lines += ["", f"Where a batch is smaller than its preset's, the hours assume the same rate at the preset's batch "
                  f"(reached through `--grad-accum` or more GPUs; a larger batch usually runs a little faster per "
                  f"token). The Feedback Transformer "
                  f"is measured with a memory of {fb_mem:,} (`--feedback-mem-len`), not the preset's "
                  f"{PRESETS['feedback-enwik8'].options['mem_len']:,}, which attends 16 times as far every step: its "
                  f"hours are for that shorter memory. Its eager path is the hand-written step "
                  f"(`feedback/step.py`, the default), which computes in float32 inside autocast; its compiled path "
                  f"is the model page's recurrence (`step=\"autograd\"`) under autocast. "
                  f"x-transformers uses T5's bucketed relative bias where ours projects sinusoids, so its MFU, "
                  f"counted with our model's FLOPs, is slightly high."]
    write(out_dir, meta, [r.as_dict() for r in rows], figures, lines)
    return figures


def write_placeholder(out_dir: Path) -> None:
    """The report before any GPU has run the benchmark: every figure says so."""
    message = "No GPU figure has been measured yet: run `make bench-gpu` on a GPU machine."
    lines = [TITLE, "", message, "", "It measures training tokens/s, model FLOP utilisation, peak memory and compile "
             "time of Transformer-XL (beside x-transformers), the Compressive Transformer and the Feedback "
             "Transformer at their enwik8 presets and at half size, and the hours each preset would take on one GPU."]
    write(out_dir, dict(measured=False, message=message), [], {k: NOT_MEASURED for k in figure_keys()}, lines)


# ---------------------------------------------------------------------------------------------------
# The command line.

def positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (with --tiny: the CPU check)")
    p.add_argument("--tiny", action="store_true", help="tiny models (dim 32, depth 2, segment and memory 16), "
                                                       "batch 2, 2 timed steps, no compile: checks the script")
    p.add_argument("--placeholder", action="store_true",
                   help="write the report that says no GPU figure has been measured yet, and stop")
    p.add_argument("--peak-tflops", type=positive(float), default=989.0,
                   help="the device's dense bfloat16 peak, for the MFU (989: H100/H200 SXM)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where gpu.md and gpu.json go (default bench/reports/; a temporary folder for --tiny or "
                        "--device cpu, whose numbers are a check, not a figure)")
    p.add_argument("--only", nargs="+", choices=MODELS, default=MODELS, help="models to measure (default: all)")
    p.add_argument("--sizes", nargs="+", choices=["full", "half"], default=["full", "half"],
                   help="sizes to measure: the preset's and half its depth and width (default: both)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="also time each model under torch.compile (default: yes; no with --tiny)")
    p.add_argument("--batch-size", type=positive(int), default=None, help="one batch size for every model")
    p.add_argument("--xl-batch-size", type=positive(int), default=22, help="Transformer-XL's (the preset's full 22)")
    p.add_argument("--compressive-batch-size", type=positive(int), default=8,
                   help="the Compressive Transformer's (the preset's is 32; its attention over 2,688 positions "
                        "in 24 layers needs ~4 GiB a sequence)")
    p.add_argument("--feedback-batch-size", type=positive(int), default=64,
                   help="the Feedback Transformer's (the preset's is 1,024); it runs token by token, so its step "
                        "costs about the same up to far larger batches")
    p.add_argument("--feedback-mem-len", type=positive(int), default=512,
                   help="the Feedback Transformer's memory (the preset's 8,192 would make every step 16 times as long)")
    p.add_argument("--feedback-compile-seq-len", type=positive(int), default=None,
                   help="a shorter segment for the compiled Feedback Transformer (default: the preset's, 128), "
                        "should its compile take too long")
    p.add_argument("--steps", type=positive(int), default=None, help="timed steps per path (default 10; 2 with --tiny)")
    p.add_argument("--warmup", type=positive(int), default=None,
                   help="untimed steps per path before timing, the compile time of a compiled one "
                        "(default 2; 1 with --tiny)")
    p.add_argument("--group-seconds", type=positive(float), default=20.0,
                   help="stop timing a model's paths after this many seconds (at least 3 rounds)")
    p.add_argument("--time-limit", type=float, default=420.0,
                   help="skip paths that would not finish within this many seconds of the start "
                        f"(a compiled one needs {RESERVE_S['compiled']:.0f} s left, an eager one "
                        f"{RESERVE_S['eager']:.0f} s); 0: no limit")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.placeholder:
        out_dir = args.out_dir or RESULTS_DIR
        write_placeholder(out_dir)
        print(f"wrote {out_dir / 'gpu.md'} and {out_dir / 'gpu.json'}: no GPU figure measured yet")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        why = (f"this torch ({torch.__version__}) is built without CUDA" if torch.version.cuda is None
               else "torch.cuda.is_available() is False")
        print(f"error: no GPU is visible ({why}): run `make bench-gpu` on a GPU machine with a CUDA build of "
              f"torch, or check the script on the CPU with `python -m bench.gpu --device cpu --tiny`", file=sys.stderr)
        return 2
    if device.type not in ("cuda", "cpu"):
        print(f"error: --device {args.device}: expected cuda, cuda:N or cpu", file=sys.stderr)
        return 2
    if args.compile is None:
        args.compile = not args.tiny
    args.steps = args.steps or (2 if args.tiny else 10)
    args.warmup = args.warmup or (1 if args.tiny else 2)
    out_dir = args.out_dir
    if out_dir is None:
        # Only a full run on a GPU writes the committed report; other runs are checks.
        measured = device.type == "cuda" and not args.tiny
        out_dir = RESULTS_DIR if measured else Path(tempfile.mkdtemp(prefix="bench_gpu_"))

    threads = torch.get_num_threads()
    if device.type == "cpu" and args.tiny:
        # Tiny tensors gain nothing from threads, and on a busy machine every threaded op waits for a core.
        torch.set_num_threads(1)
    try:
        rows, seconds = run(args, device)
    finally:
        torch.set_num_threads(threads)
    figures = write_report(out_dir, rows, args, device, seconds)
    print((out_dir / "gpu.md").read_text())
    print(json.dumps(figures, indent=2))
    failed = [r for r in rows if r.status.startswith("error")]
    if failed:
        print(f"{len(failed)} path(s) failed; see their rows in {out_dir / 'gpu.md'}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace, device: torch.device) -> Tuple[List[Row], float]:
    """Every path of the chosen models and sizes, the full sizes first: the report's figures come from
    them, so they get the time. Returns the rows and the seconds the run took."""
    clock = Clock(args.time_limit)
    log(clock, f"{where(device)}; models {', '.join(args.only)}, sizes {', '.join(args.sizes)}, "
               f"compile {'on' if args.compile else 'off'}")
    if args.compile:
        warm_up_compiler(device)
        log(clock, "the compiler is loaded: each compile time below is its model's own")
    rows: List[Row] = []
    for size in [s for s in ("full", "half") if s in args.sizes]:
        for model in [m for m in MODELS if m in args.only]:
            rows += measure(specs_of(model, size, args), args, device, clock)
    return rows, clock()


if __name__ == "__main__":
    sys.exit(main())
