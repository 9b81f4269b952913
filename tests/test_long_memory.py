"""Tests of the long-memory demonstration: the task puts the answer where it says, and the script runs."""
import json

import pytest
import torch

from bench.long_memory import RecallTask, build_parser, default_distances, run

pytestmark = pytest.mark.checks("labml_nn/transformers/__init__.py")


def test_answer_lies_exactly_distance_back_from_the_query():
    task = RecallTask(seq_len=8, num_segments=4, num_noise=10, num_keys=5)
    distances = torch.arange(1, task.max_distance + 1)
    x, keys = task.episodes(distances, torch.Generator().manual_seed(0))
    assert x.shape == (len(distances), task.episode_len)
    query_pos = task.episode_len - 1
    assert (x[:, query_pos] == task.query_token).all()
    rows = torch.arange(len(distances))
    assert torch.equal(x[rows, query_pos - distances], keys)
    is_key = (x >= task.num_noise) & (x < task.query_token)
    # Exactly one key per episode, and the query appears only at the end: nothing else gives it away.
    assert (is_key.sum(1) == 1).all()
    assert ((x == task.query_token).sum(1) == 1).all()


def test_key_is_beyond_the_segment_exactly_when_distance_reaches_seq_len():
    task = RecallTask(seq_len=8, num_segments=4)
    last = task.num_segments - 1
    for d in range(1, task.max_distance + 1):
        x, keys = task.episodes(torch.tensor([d]), torch.Generator().manual_seed(d))
        segments = task.segments(x)
        assert len(segments) == task.num_segments and all(s.shape == (1, task.seq_len) for s in segments)
        # The query is the last position of the last segment.
        assert segments[last][0, -1] == task.query_token
        holder = task.key_segment(d)
        assert (segments[holder][0] == keys[0]).any()
        assert (holder == last) == (d < task.seq_len)
        assert holder == last - d // task.seq_len


def test_distances_out_of_range_are_refused():
    task = RecallTask(seq_len=4, num_segments=2)
    with pytest.raises(ValueError, match="distances must lie"):
        task.episodes(torch.tensor([task.episode_len]), torch.Generator())


def test_script_runs_end_to_end(tmp_path):
    args = build_parser().parse_args([
        "--steps", "3", "--batch-size", "4", "--seq-len", "4", "--num-segments", "3", "--dim", "16",
        "--heads", "2", "--mem-len", "2", "--cmem-len", "2", "--compression-rate", "2", "--eval-episodes", "8",
        "--threads", "1", "--out-dir", str(tmp_path)])
    results = run(args, log=lambda _: None)
    task = RecallTask(seq_len=4, num_segments=3)
    assert results["distances"] == default_distances(task)
    names = [m["name"] for m in results["models"]]
    assert names[:2] == ["baseline", "xl"]
    saved = json.loads((tmp_path / "long_memory.json").read_text())
    assert [m["name"] for m in saved["models"]] == names
    for m in saved["models"]:
        assert set(m["accuracy"]) == {str(d) for d in results["distances"]}
        assert all(0.0 <= a <= 1.0 for a in m["accuracy"].values())
    table = (tmp_path / "long_memory.md").read_text()
    assert all(f"| {n} |" in table for n in names)
    assert (tmp_path / "long_memory.png").stat().st_size > 0


def test_each_model_recalls_within_its_reach_and_is_at_chance_beyond_it(tmp_path):
    """The claim of the demonstration, at a size that trains in seconds: a key within segment (plus memory)
    reach is recalled; one beyond it is guessed, at chance (1 / num_keys)."""
    args = build_parser().parse_args([
        "--steps", "150", "--batch-size", "32", "--seq-len", "4", "--num-segments", "3", "--num-keys", "4",
        "--num-noise", "6", "--dim", "32", "--heads", "2", "--mem-len", "2", "--cmem-len", "2", "--lr", "5e-3",
        "--eval-episodes", "256", "--threads", "2", "--models", "baseline", "xl", "--out-dir", str(tmp_path)])
    results = run(args, log=lambda _: None)
    chance = 1 / 4
    for model in results["models"]:
        within = [a for d, a in model["accuracy"].items() if int(d) <= model["reach"]]
        beyond = [a for d, a in model["accuracy"].items() if int(d) > model["reach"]]
        assert within and beyond, model
        assert min(within) > 0.9, (model["name"], model["accuracy"])
        assert max(beyond) < chance + 0.2, (model["name"], model["accuracy"])
    # Memory is what makes the difference: Transformer-XL reaches further than the same model without it.
    reach = {m["name"]: m["reach"] for m in results["models"]}
    assert reach["xl"] > reach["baseline"]
