"""
Shared benchmark machinery: interleaved timing with medians, peak memory in a fresh process, and
the report format. Every benchmark measures ours and the peers *in one run*, alternating between
them, and reports ratios: absolute times on a shared 2-core machine drift, ratios measured side by
side do not drift nearly as much.
"""
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

# torch.compile keeps what it compiled in a cache on disk; a benchmark that reports compile time starts
# from an empty one, so that the time is what a first run costs.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="labml_nn_bench_inductor_"))

import torch  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "reports"

# The configuration every model issue benchmarks at (issue "Foundation and Transformer-XL").
CONFIG = dict(num_tokens=65, dim=128, heads=4, depth=4, ff=512, seq_len=32, mem_len=32, batch_size=8)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of `logits`, `[batch_size, seq_len, num_tokens]`, against `targets`, `[batch_size, seq_len]`."""
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# The 1-minute load average when the benchmark started (`setup_threads` records it): the machine is shared,
# and other work slows every model, those with many small operations most.
LOAD_AT_START: Optional[float] = None


def setup_threads(n: int = 2) -> None:
    global LOAD_AT_START
    torch.set_num_threads(n)
    LOAD_AT_START = os.getloadavg()[0]


def machine() -> str:
    """One line naming what the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}")


def interleaved(fns: Dict[str, Callable[[], None]], rounds: int = 7, warmup: int = 2,
                calls: int = 1) -> Dict[str, List[float]]:
    """
    Time each function `rounds` times, alternating between them round by round (A B C A B C ...),
    after `warmup` untimed rounds. Each sample is the mean seconds of `calls` consecutive calls.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - start) / calls)
    return samples


def median(xs: List[float]) -> float:
    return statistics.median(xs)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def training_memory_mb(step: Callable[[], None], steps: int = 10) -> dict:
    """
    The memory `steps` calls of `step` need above what the process holds before them: the peak
    resident set during the steps (the kernel's high-water mark, reset first through
    /proc/self/clear_refs) minus the resident set before. Call it in a fresh process
    (`run_isolated`) with the model and optimiser built, so imports and other models do not count.
    """
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    for _ in range(steps):
        step()
    peak = _status_mb("VmHWM")
    return dict(peak_mb=peak, train_mb=peak - before)


def compile_model(model: torch.nn.Module, static: bool = False) -> Callable:
    """`model` under `torch.compile` as the trainer's `--compile` builds it (`static`: `--compile-shapes static`,
    one graph per input shape; else torch's default)."""
    return torch.compile(model, dynamic=False if static else None)


def first_call_seconds(fn: Callable[[], None]) -> float:
    """The seconds of one call of `fn`: for a compiled model's first call, its compile time."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_isolated(module: str, *args: str, timeout: int = 600) -> dict:
    """
    Run `python -m module args...` in a fresh process that prints one JSON object on its last line.
    Used for peak memory, where a shared process's high-water mark would mix the models up.
    """
    out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                         timeout=timeout, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def times(x: float) -> str:
    """A ratio as the pages quote it: `1.27×`."""
    return f"{x:.2f}×"


def write_report(name: str, title: str, rows: List[dict], columns: List[str], notes: str = "",
                 extra: Optional[dict] = None, figures: Optional[Dict[str, str]] = None) -> Path:
    """
    Write `reports/<name>.json` and `reports/<name>.md` (a markdown table with the machine named).
    `figures` are the formatted numbers the pages quote, `{report:<name>.<key>}` in their prose: the
    site build takes them from the JSON, so a page never carries a number typed by hand.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    meta = dict(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), config=CONFIG,
                load_at_start=LOAD_AT_START, load_at_end=os.getloadavg()[0])
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(dict(meta=meta, rows=rows, extra=extra or {},
                                                              figures=figures or {}), indent=2))
    start = f"{LOAD_AT_START:.1f} when it started, " if LOAD_AT_START is not None else ""
    lines = [f"### {title}", "", f"Measured {meta['date']} on {meta['machine']}; 1-minute load average "
                                 f"{start}{meta['load_at_end']:.1f} when the report was written (the machine is "
                                 f"shared: other work slows every model, and makes the ratios noisier).", ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    if notes:
        lines += ["", notes]
    path = RESULTS_DIR / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


# labml-nn 0.5.1 is a peer whose top-level package has the same name as ours. `make bench` installs it
# into its own folder; this is where that folder is.
# `LABML_NN_RELEASE_DIR` points elsewhere (a folder holding the release's `labml_nn` package).
LABML_NN_RELEASE_DIR = Path(os.environ.get("LABML_NN_RELEASE_DIR",
                                           Path(__file__).resolve().parent.parent / ".venv-bench" / "peers"))


def import_labml_nn_release(*modules: str) -> dict:
    """
    Import modules of the labml-nn 0.5.1 release beside this repository's `labml_nn`.

    Both packages are called `labml_nn`, so the release is imported with this package's modules taken
    out of `sys.modules` and the release's folder first on `sys.path`; afterwards the module table is
    put back. Classes keep references to their own modules, so both can then be used in one process.
    Returns `{module_name: module}`.
    """
    import importlib

    if not (LABML_NN_RELEASE_DIR / "labml_nn").is_dir():
        raise RuntimeError(f"labml-nn 0.5.1 is not installed in {LABML_NN_RELEASE_DIR}: run `make bench`, "
                           "which installs it there")
    # The release calls `labml.tracker.debug`, which labml 0.5.3 no longer has; it only logs, so a
    # no-op stands in for it.
    from labml import tracker
    if not hasattr(tracker, "debug"):
        tracker.debug = lambda *args, **kwargs: None
    ours = {k: v for k, v in sys.modules.items() if k == "labml_nn" or k.startswith("labml_nn.")}
    for k in ours:
        del sys.modules[k]
    sys.path.insert(0, str(LABML_NN_RELEASE_DIR))
    try:
        loaded = {m: importlib.import_module(m) for m in modules}
    finally:
        sys.path.remove(str(LABML_NN_RELEASE_DIR))
        for k in [k for k in sys.modules if k == "labml_nn" or k.startswith("labml_nn.")]:
            del sys.modules[k]
        sys.modules.update(ours)
    return loaded
