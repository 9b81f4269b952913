"""The GPU benchmark runs its whole code path at a tiny size on the CPU, refuses to run without a GPU
unless asked, reports one path's failure in its row, and its committed report has every figure a page
may quote."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bench.gpu as gpu
from labml_nn.experiments.presets import PRESETS

pytestmark = pytest.mark.checks("labml_nn/experiments/presets.py")

ROOT = Path(__file__).resolve().parent.parent


def run_gpu_bench(*args: str, env: dict = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.gpu", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_tiny_cpu_run_measures_every_model_and_writes_the_figures(tmp_path):
    out = run_gpu_bench("--device", "cpu", "--tiny", "--out-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    eager = [r for r in report["rows"] if r["path"] == "eager"]
    assert {r["model"] for r in eager} == {"xl", "x-transformers", "compressive", "feedback"}
    assert {r["size"] for r in eager} == {"full", "half"}
    assert all(r["status"] == "ok" and r["tokens_per_s"] > 0 and r["mfu"] > 0 for r in eager)
    # Compiling is off for --tiny; those rows say so rather than vanish.
    assert all(r["status"] == "skipped: --no-compile" for r in report["rows"] if r["path"] == "compiled")
    figures = report["figures"]
    assert set(figures) == set(gpu.figure_keys())
    for name in ["xl-enwik8-base", "compressive-enwik8", "feedback-enwik8"]:
        assert name in PRESETS
        assert float(figures[f"{name}_tokens_per_s"].replace(",", "")) > 0
        assert figures[f"{name}_hours"].endswith(" h")
    table = (tmp_path / "gpu.md").read_text()
    for name in ["Transformer-XL", "x-transformers", "Compressive Transformer", "Feedback Transformer"]:
        assert f"| {name}" in table
    assert "tiny check" in table


def test_without_a_gpu_it_stops_at_once_with_one_error_line():
    # No GPU is visible to the child even on a GPU machine.
    out = run_gpu_bench(env={"CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), out.stderr
    assert "GPU" in lines[0] and "--device cpu" in lines[0]
    assert "Traceback" not in out.stderr + out.stdout


def test_one_failing_path_is_reported_in_its_row_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    build = gpu.build

    def failing_build(spec):
        if spec.model == "compressive":
            raise RuntimeError("CUDA out of memory. Tried to allocate 12.00 GiB")
        return build(spec)

    monkeypatch.setattr(gpu, "build", failing_build)
    code = gpu.main(["--device", "cpu", "--tiny", "--sizes", "full", "--out-dir", str(tmp_path)])
    assert code == 1
    rows = json.loads((tmp_path / "gpu.json").read_text())["rows"]
    failed = [r for r in rows if r["model"] == "compressive" and r["path"] == "eager"]
    assert failed[0]["status"] == "error: RuntimeError: CUDA out of memory. Tried to allocate 12.00 GiB"
    assert all(r["tokens_per_s"] > 0 for r in rows if r["model"] != "compressive" and r["path"] == "eager")
    figures = json.loads((tmp_path / "gpu.json").read_text())["figures"]
    assert figures["compressive-enwik8_hours"].startswith("not measured: error")
    assert "out of memory" in (tmp_path / "gpu.md").read_text()


def test_the_committed_report_has_every_figure_a_page_may_quote():
    report = json.loads((ROOT / "bench/reports/gpu.json").read_text())
    assert set(report["figures"]) == set(gpu.figure_keys())
    assert all(isinstance(v, str) for v in report["figures"].values())
    if not report["meta"].get("measured"):
        assert set(report["figures"].values()) == {gpu.NOT_MEASURED}
        assert "No GPU figure has been measured yet" in (ROOT / "bench/reports/gpu.md").read_text()
