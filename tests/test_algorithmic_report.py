"""Tests of the code-execution report (`bench.algorithmic`): how it decides the claim, the strategies it
reads the models against, the report and picture it writes from each seed's results, and the command for
the paper's size. No training: the runs are given as their summaries."""
import argparse
import json

import pytest

from bench.algorithmic import (GPU_COMMAND, MODELS, decide, main, model_options, reference_accuracies,
                               write_report)
from labml_nn.experiments.algorithmic import generate_programs

pytestmark = pytest.mark.checks("labml_nn/transformers/feedback/readme.md")


def summary(row: str, seed: int, test: float, curve=(0.2, 0.3)) -> dict:
    """What `run_one` keeps of a finished run: the experiment's summary and the run's seconds and load."""
    history = dict(valid=[dict(step=100 * (i + 1), accuracy=a, bpc=1.0) for i, a in enumerate(curve)])
    return dict(row=row, seed=seed, command=f"python -m x --model {row} --seed {seed}", load=1.5, cpu_seconds=60.0,
                wall_seconds=70.0, step=200, train_seconds=50.0, parameters=1000, valid_accuracy=curve[-1],
                test_accuracy=test, history=history)


META = dict(statements=6, train_programs=100, valid_programs=20, test_programs=30, dim=16, heads=2, mem_len=8,
            seq_len=8, batch_size=4, lr=1e-3, warmup_steps=10, steps=200, machine="a test", date="today",
            seeds=[0, 1, 2], threads=1, parallel=2, paper=False)


def test_the_claim_holds_only_when_the_feedback_model_is_ahead_by_twice_the_standard_error():
    ahead = [summary("feedback", s, t) for s, t in enumerate([0.90, 0.91, 0.92])]
    behind = [summary("xl", s, t) for s, t in enumerate([0.30, 0.31, 0.32])]
    verdict, difference, se = decide(ahead + behind)
    assert verdict == "holds" and difference == pytest.approx(0.6) and 0 < se < 0.3
    swapped = [dict(r, row="xl" if r["row"] == "feedback" else "feedback") for r in ahead + behind]
    assert decide(swapped)[0] == "fails"
    close = [summary("feedback", s, t) for s, t in enumerate([0.30, 0.40, 0.35])]
    assert decide(close + behind)[0] == "not resolved"
    # A failed run is left out; with no run of a model, nothing is decided.
    assert decide(behind + [dict(row="feedback", seed=0, error="killed", command="python ...")])[0] == "not resolved"


def test_the_strategies_that_do_not_execute_agree_with_a_direct_reading_of_the_programs():
    # Read back from the text before each print: the variable's last assignment that is not inside a
    # condition, and that value moved by every `++` and `--` of the variable outside a condition after it.
    right = dict(last_assignment=0, unconditional_updates=0)
    prints = 0
    for program in generate_programs(40, "valid", 0, 12):
        words = program.words
        for i, target in enumerate(program.targets):
            if target is None:
                continue
            prints += 1
            name = words[i - 1]
            starts = [j for j in range(i - 2) if words[j] == name and (j == 0 or words[j - 1] == ";")]
            assigned = [j for j in starts if words[j + 1] == "="]
            if not assigned:
                continue
            value = int(words[assigned[-1] + 2])
            right["last_assignment"] += value == int(target)
            moves = sum({"++": 1, "--": -1}.get(words[j + 1], 0) for j in starts if j > assigned[-1])
            right["unconditional_updates"] += value + moves == int(target)
    refs = reference_accuracies("valid", 40, 12)
    assert prints > 0 and 0.0 < refs["last_assignment"] < refs["unconditional_updates"] < 1.0
    assert refs == pytest.approx({key: count / prints for key, count in right.items()})


def test_the_report_tabulates_each_model_the_check_and_the_picture(tmp_path):
    results = [summary(m.key, s, t, curve) for s in range(3) for m, t, curve in
               zip(MODELS, (0.8 + 0.01 * s, 0.3 + 0.01 * s), ((0.4, 0.8), (0.3, 0.3)))]
    report = write_report(results, META, tmp_path, tmp_path / "picture.png")
    text = report.read_text()
    assert "| Feedback Transformer | 4 | **81.0% ± 1.0%**" in text and "| Transformer (Transformer-XL) | 8 | **31.0% ± 1.0%**" in text
    assert "✅ The Feedback Transformer's test accuracy beats the Transformer's: holds" in text
    figures = json.loads((tmp_path / "algorithmic.json").read_text())["figures"]
    assert figures["check_feedback_beats_xl"] == "holds" and figures["feedback_test_accuracy"] == "81.0% ± 1.0%"
    assert figures["steps"] == "200" and figures["seeds"] == "3"
    # Where each model stands against the strategies that execute nothing (6-statement programs: the
    # last assignment alone is right more often than 31% of the time, not 81%).
    refs = reference_accuracies("test", META["test_programs"], META["statements"])
    assert refs["last_assignment"] > 0.31 and figures["xl_level"] == "below the last assignment"
    assert figures["feedback_level"] == ("above the unconditional updates: it evaluates conditions"
                                         if refs["unconditional_updates"] <= 0.81 else
                                         "between the last assignment and the unconditional updates")
    assert all(isinstance(v, str) for v in figures.values())  # the site takes figures already formatted
    assert (tmp_path / "picture.png").stat().st_size > 0
    # The report and the picture again from the JSON alone, without training.
    (tmp_path / "algorithmic.md").unlink()
    main(["--rewrite", "--out", str(tmp_path), "--picture", str(tmp_path / "again.png")])
    assert (tmp_path / "algorithmic.md").read_text() == text and (tmp_path / "again.png").stat().st_size > 0


def test_the_gpu_command_trains_both_models_at_the_papers_size():
    from labml_nn.experiments.config import parse_config
    from labml_nn.experiments.presets import presets_of
    from labml_nn.transformers.feedback.algorithmic import Config
    assert "--paper" in GPU_COMMAND and "--device cuda" in GPU_COMMAND
    # This torch has no CUDA: the options are read as they would be on a GPU, with the device this one has.
    args = argparse.Namespace(paper=True, device="cpu", steps=None, points=6)
    for model in MODELS:
        c = parse_config(Config, model_options(model, args), "", presets_of("algorithmic"))
        assert (c.model, c.depth, c.device, c.steps) == (model.key, model.depth, "cpu", 50_000)
        assert (c.statements, c.dim, c.heads, c.mem_len, c.seq_len) == (100, 256, 4, 100, 64)
