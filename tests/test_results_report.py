"""Tests of how the results and ablation reports decide their claims, aggregate seeds and merge runs."""
import json
import math
import subprocess
import sys

import pytest

from bench.ablations import STUDIES, claims, study_rows
from bench.results import REPO, Spread, compare, decided_checks, main, spreads

# The pages whose "holds / fails / not resolved" these verdicts are.
pytestmark = pytest.mark.checks("readme.md", "labml_nn/transformers/xl/readme.md",
                                "labml_nn/transformers/compressive/readme.md", "labml_nn/transformers/feedback/readme.md")


def spread(*values: float) -> Spread:
    return Spread(list(values), [800] * len(values), [40.0] * len(values), [1.0] * len(values))


# ## Deciding a claim

def test_a_difference_larger_than_twice_its_standard_error_decides_the_claim():
    low, high = spread(2.00, 2.01, 2.02), spread(2.20, 2.21, 2.22)
    verdict, difference, se = compare(low, high)
    assert verdict == "holds"
    assert difference == pytest.approx(0.2)
    # $\sqrt{s_a^2 / n_a + s_b^2 / n_b}$ with both standard deviations 0.01.
    assert se == pytest.approx(math.sqrt(2 * 0.01 ** 2 / 3))
    assert compare(high, low)[0] == "fails"


def test_a_difference_within_the_spread_is_not_resolved():
    a, b = spread(2.00, 2.10, 2.20), spread(2.05, 2.15, 2.25)
    verdict, difference, se = compare(a, b)
    assert abs(difference) <= 2 * se
    assert verdict == "not resolved"


def test_one_seed_never_decides_however_large_the_difference():
    assert compare(spread(1.0), spread(3.0))[0] == "not resolved"
    assert compare(spread(1.0, 1.0), spread(3.0))[0] == "not resolved"


def test_spreads_group_by_row_and_regime_and_leave_out_failed_runs():
    results = [dict(row="xl", regime="tokens", seed=s, valid_bpc=v, step=800, train_seconds=40.0, load=1.0)
               for s, v in enumerate([2.0, 2.2])]
    results.append(dict(row="xl", regime="tokens", seed=2, error="killed", command="python ..."))
    s = spreads(results)
    assert list(s) == [("xl", "tokens")]
    assert s[("xl", "tokens")].values == [2.0, 2.2]
    assert s[("xl", "tokens")].mean == pytest.approx(2.1)
    assert s[("xl", "tokens")].std == pytest.approx(math.sqrt(0.02))


def run(row: str, seed: int, bpc: float, regime: str = "long") -> dict:
    return dict(row=row, regime=regime, seed=seed, valid_bpc=bpc, step=1000 + seed, tokens=256 * (1000 + seed),
                train_seconds=900.0, load=1.1, parameters=875073, command=f"python -m x --seed {seed}",
                checkpoint=f"/nowhere/bench-{row}-{regime}-{seed}/checkpoint-00001000")


def test_checks_compare_each_memory_model_with_the_baseline():
    results = [run("xl", s, 2.0 + 0.01 * s) for s in range(3)] + [run("baseline", s, 2.3 + 0.01 * s) for s in range(3)]
    checks = {key: verdict for key, _, verdict, _, _ in decided_checks(results, ["long"])}
    assert checks == {"xl_vs_baseline_long": "holds"}


# ## Writing a report again, and adding seeds to it

def write_long_report(tmp_path, results, seeds):
    meta = dict(machine="test", date="2026-12-01 00:00 UTC", budget="long", steps=800, time_budget=60.0,
                long_budget=900.0, batch_size=8, seq_len=32, valid_windows=100, seeds=seeds)
    (tmp_path / "results-long.json").write_text(json.dumps(dict(meta=meta, results=results, figures={})))


def test_rewrite_writes_the_tables_and_figures_from_the_json_alone(tmp_path):
    results = [run(r, s, b + 0.01 * s) for r, b in [("xl", 2.0), ("baseline", 2.3)] for s in (0, 1)]
    write_long_report(tmp_path, results, [0, 1])
    main(["--budget", "long", "--rewrite", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "results-long.json").read_text())
    assert report["results"] == results
    # The runs' machine and date, not those of the rewrite.
    assert report["meta"]["machine"] == "test" and report["meta"]["date"] == "2026-12-01 00:00 UTC"
    figures = report["figures"]
    assert figures["xl_long_bpc"] == "2.005 ± 0.007" and figures["baseline_long_bpc"] == "2.305 ± 0.007"
    assert figures["check_xl_vs_baseline_long"] == "holds" and figures["seeds"] == "2"
    assert figures["xl_long_seeds"] == "2" and figures["baseline_long_seeds"] == "2"
    text = (tmp_path / "results-long.md").read_text()
    assert "**2.005** ± 0.007" in text and "✅ Transformer-XL beats the no-memory baseline in the long budget" in text


def test_rewrite_without_a_report_says_what_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="results-long.json, which does not exist"):
        main(["--budget", "long", "--rewrite", "--out", str(tmp_path)])


def test_add_refuses_a_report_of_other_options(tmp_path, shakespeare):
    write_long_report(tmp_path, [run("xl", 0, 2.0)], [0])
    with pytest.raises(SystemExit, match="--long-budget 900.0, this run 5.0"):
        main(["--budget", "long", "--add", "--long-budget", "5", "--seeds", "1", "--out", str(tmp_path)])


def test_add_trains_the_new_seed_and_keeps_the_old_runs(tmp_path, shakespeare, monkeypatch):
    monkeypatch.setenv("TINY_SHAKESPEARE_PATH", shakespeare)
    old = [run("baseline", 0, 2.5, regime="tokens")]
    meta = dict(machine="test", budget="quick", steps=2, time_budget=60.0, long_budget=900.0, batch_size=8,
                seq_len=32, valid_windows=2, seeds=[0])
    (tmp_path / "results.json").write_text(json.dumps(dict(meta=meta, results=old, figures={})))
    subprocess.run([sys.executable, "-m", "bench.results", "--add", "--models", "baseline", "--regimes", "tokens",
                    "--steps", "2", "--valid-windows", "2", "--seeds", "1", "--out", str(tmp_path)],
                   cwd=REPO, check=True, capture_output=True, text=True)
    report = json.loads((tmp_path / "results.json").read_text())
    assert [(r["row"], r["seed"]) for r in report["results"]] == [("baseline", 0), ("baseline", 1)]
    assert report["results"][0] == old[0]
    new = report["results"][1]
    assert new["step"] == 2 and "--seed 1" in new["command"] and math.isfinite(new["valid_bpc"])
    assert report["meta"]["seeds"] == [0, 1] and report["figures"]["seeds"] == "2"


# ## The ablations

@pytest.mark.parametrize("study", list(STUDIES))
def test_every_claim_of_a_study_compares_two_of_its_rows(study):
    rows = study_rows(study, 32)
    s = {row.key: spread(2.0 + 0.1 * i, 2.01 + 0.1 * i) for i, row in enumerate(rows)}
    positions = {row.key: [[3.0 - 0.01 * p for p in range(32)]] * 2 for row in rows} if study == "xl-memory" else None
    decided = claims(study, s, positions)
    assert decided
    keys = [key for key, *_ in decided]
    assert len(set(keys)) == len(keys)
    for _, _, a, b in decided:
        assert isinstance(a, Spread) and isinstance(b, Spread) and a is not b


def test_the_memory_study_measures_the_loss_at_each_position(tmp_path, shakespeare, monkeypatch):
    """Two tiny runs per memory length end to end: the table, the per-position figures and the picture."""
    monkeypatch.setenv("TINY_SHAKESPEARE_PATH", shakespeare)
    subprocess.run([sys.executable, "-m", "bench.ablations", "--studies", "xl-memory", "--seeds", "0", "1",
                    "--steps", "2", "--valid-windows", "2", "--out", str(tmp_path), "--pictures", str(tmp_path)],
                   cwd=REPO, check=True, capture_output=True, text=True)
    report = json.loads((tmp_path / "ablation-xl.json").read_text())
    study = report["studies"][0]
    assert set(study["positions"]) == {"memory-0", "memory-16", "memory-32", "memory-64"}
    for curves in study["positions"].values():
        assert len(curves) == 2 and all(len(c) == 32 and all(math.isfinite(v) for v in c) for c in curves)
    figures = report["figures"]
    assert figures["xl-memory_memory_16_beats_0"] in ("holds", "fails", "not resolved")
    assert {"xl-memory_gain_first", "xl-memory_gain_last", "xl-memory_start_gains_most"} <= set(figures)
    assert (tmp_path / "ablation_xl_memory.png").stat().st_size > 1000
    assert "#### Transformer-XL: memory length" in (tmp_path / "ablation-xl.md").read_text()
    # The picture is drawn again from the report alone, training nothing.
    (tmp_path / "ablation_xl_memory.png").unlink()
    redrawn = tmp_path / "redrawn"
    subprocess.run([sys.executable, "-m", "bench.ablations", "--redraw", "--out", str(tmp_path), "--pictures",
                    str(redrawn)], cwd=REPO, check=True, capture_output=True, text=True)
    assert [p.name for p in redrawn.iterdir()] == ["ablation_xl_memory.png"]
    assert report == json.loads((tmp_path / "ablation-xl.json").read_text())
