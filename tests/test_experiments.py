"""Tests for the shared training code (`labml_nn.experiments`) and the per-paper experiments.

Every model here is tiny (width 32, two layers, segments of 16 characters) so the file runs in
well under three minutes on two CPU cores.
"""

import dataclasses
import importlib
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from labml_nn.experiments import checkpoint as ckpt
from labml_nn.experiments.config import build_parser
from labml_nn.experiments.data import DATA_PATH_ENV, DataError, StreamBatcher, Vocabulary, load_text, read_text

pytestmark = pytest.mark.checks("labml_nn/experiments/__init__.py")

REPO = Path(__file__).resolve().parents[1]

# The three experiments.
EXPERIMENTS = ["labml_nn.transformers.xl.experiment",
               "labml_nn.transformers.compressive.experiment",
               "labml_nn.transformers.feedback.experiment"]


def experiment_module(name: str):
    """Import an experiment (a failing import fails the test)."""
    return importlib.import_module(name)


# ## Data

@pytest.mark.checks("labml_nn/experiments/data.py")
def test_load_text_from_path_and_env(shakespeare, monkeypatch):
    monkeypatch.delenv(DATA_PATH_ENV, raising=False)
    text = load_text(shakespeare)
    assert text.startswith("First Citizen:")
    monkeypatch.setenv(DATA_PATH_ENV, shakespeare)
    assert load_text() == text


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="No data file at .*--data PATH"):
        load_text(str(tmp_path / "nowhere.txt"))


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"  \n", "empty"),
                                              (b"abc\x00\x01\x02", "binary"),
                                              (b"caf\xe9 au lait", "not UTF-8")])
def test_bad_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text(path)


def test_offline_download_is_one_clear_message(tmp_path, monkeypatch, capsys):
    """No local copy and no network: the entry point prints one message naming the URL and the
    option, with no traceback."""
    monkeypatch.delenv(DATA_PATH_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    unreachable = "http://127.0.0.1:9/tiny_shakespeare.txt"
    with pytest.raises(DataError, match="127.0.0.1:9"):
        load_text(url=unreachable, cache=tmp_path / "cache")
    xl = experiment_module(EXPERIMENTS[0])
    with pytest.raises(SystemExit) as exit_info:
        xl.main(["--no-labml", "--data-url", unreachable, "--checkpoint-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert unreachable in err and "--data PATH" in err and DATA_PATH_ENV in err
    assert "Traceback" not in err
    assert not any((tmp_path / "cache").rglob("*.txt")), "no partial download is left behind"


def test_offline_message_from_the_command_line(tmp_path):
    """The same, as a person would see it in a terminal."""
    experiment_module(EXPERIMENTS[0])
    env = {k: v for k, v in os.environ.items() if k != DATA_PATH_ENV}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    result = subprocess.run([sys.executable, "-m", EXPERIMENTS[0], "--no-labml",
                             "--data-url", "http://127.0.0.1:9/input.txt"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "http://127.0.0.1:9/input.txt" in result.stderr and "--data PATH" in result.stderr
    assert "Traceback" not in result.stderr


def test_vocabulary_round_trip(shakespeare):
    text = read_text(Path(shakespeare))
    vocab = Vocabulary.from_text(text)
    assert len(vocab) == 65
    sample = text[:1000]
    assert vocab.decode(vocab.encode(sample)) == sample
    # What the checkpoint stores rebuilds the same mapping.
    again = Vocabulary.from_state(vocab.to_state())
    assert again.itos == vocab.itos and torch.equal(again.encode(sample), vocab.encode(sample))
    with pytest.raises(DataError, match="not in the vocabulary"):
        vocab.encode("ROMEO: ☃")


@pytest.mark.checks("labml_nn/experiments/data.py")
def test_each_batch_continues_the_last_in_every_row():
    """Row b of batch t+1 starts exactly where row b of batch t ended, and targets are the inputs
    shifted by one."""
    ids = torch.arange(1000)
    batcher = StreamBatcher(ids, batch_size=4)
    x0, y0, wrapped0 = batcher.next(16)
    x1, y1, wrapped1 = batcher.next(16)
    assert not wrapped0 and not wrapped1
    assert torch.equal(x0[:, 1:], y0[:, :-1]) and torch.equal(x1[:, 1:], y1[:, :-1])
    # `arange` makes each stream consecutive integers: continuity is `x1 = x0 + 16`.
    assert torch.equal(x1, x0 + 16)
    assert torch.equal(x1[:, 0], y0[:, -1] + 0)
    # Rows are far apart in the text: one stream each.
    assert torch.equal(x0[:, 0], torch.arange(4) * batcher.stream_len)


def test_streams_wrap_around_and_say_so():
    batcher = StreamBatcher(torch.arange(101), batch_size=2)  # streams of 50
    for _ in range(3):
        _, _, wrapped = batcher.next(16)
        assert not wrapped
    x, _, wrapped = batcher.next(16)
    assert wrapped and x[0, 0].item() == 0


def test_processes_read_disjoint_streams():
    ids = torch.arange(1000)
    rank0 = StreamBatcher(ids, batch_size=2, rank=0, world_size=2).streams
    rank1 = StreamBatcher(ids, batch_size=2, rank=1, world_size=2).streams
    both = StreamBatcher(ids, batch_size=4).streams
    assert torch.equal(torch.cat([rank0, rank1]), both)


# ## Checkpoints

def tiny_model():
    from labml_nn.transformers.xl import TransformerXL
    return TransformerXL(num_tokens=3, dim=8, depth=1, heads=2, mem_len=2)


def test_checkpoints_keep_the_last_k(tmp_path):
    for step in range(1, 6):
        ckpt.save_checkpoint(tmp_path, step, tiny_model(), {"step": step}, vocab="abc", keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-00000004", "checkpoint-00000005"]
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path)).trainer["step"] == 5


def test_a_killed_save_never_becomes_the_latest(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path, 1, tiny_model(), {"step": 1})

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, 2, tiny_model(), {"step": 2})
    monkeypatch.undo()
    # A temporary directory left by a process killed harder than this is ignored, too.
    (tmp_path / ".checkpoint-zzz.tmp").mkdir()
    (tmp_path / ".checkpoint-zzz.tmp" / "trainer.pt").write_bytes(b"garbage")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["checkpoint-00000001"]
    assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint-00000001"
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path)).trainer["step"] == 1


# ## Configuration

@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.checks("labml_nn/experiments/config.py")
def test_help_lists_every_option_with_its_default(name, capsys):
    module = experiment_module(name)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for field in dataclasses.fields(module.Config):
        assert "--" + field.name.replace("_", "-") in out
    assert out.count("(default:") >= len(dataclasses.fields(module.Config))


def test_options_set_the_config():
    xl = experiment_module(EXPERIMENTS[0])
    args = build_parser(xl.Config).parse_args(["--mem-len", "0", "--lr", "0.01", "--resume"])
    config = xl.Config(**vars(args))
    assert config.mem_len == 0 and config.lr == 0.01 and config.resume is True
    assert config.dim == xl.Config().dim


# ## Training

def final_weights(run_dir: Path) -> dict:
    return ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir)).weights


@pytest.mark.checks("labml_nn/experiments/trainer.py", "labml_nn/experiments/checkpoint.py")
@pytest.mark.parametrize("name", EXPERIMENTS[:2])
def test_resume_ends_on_the_same_weights(name, tmp_path, shakespeare, tiny_args):
    """Train 12 steps straight, or 5 steps, stop, and resume to 12: the weights are identical.

    Run for Transformer-XL (memory: a list of tensors) and the Compressive Transformer (memory: a named
    tuple, and two optimisers)."""
    xl = experiment_module(name)
    extra = ["--mem-len", "8", "--cmem-len", "4", "--compression-rate", "2"] if "compressive" in name else []
    straight = xl.main(tiny_args("--name", "straight", "--checkpoint-interval", "4", *extra))
    first = xl.main(tiny_args("--name", "resumed", "--stop-at", "5", *extra))
    assert first["step"] == 5 and not first["finished"]
    second = xl.main(tiny_args("--name", "resumed", "--resume", *extra))
    assert second["step"] == 12 and second["tokens"] == straight["tokens"]
    a, b = final_weights(tmp_path / "checkpoints" / "straight"), final_weights(tmp_path / "checkpoints" / "resumed")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert second["valid_bpc"] == straight["valid_bpc"]
    # The loss curve survives the interruption: the resumed run's history is the straight run's.
    assert len(second["history"]["train_bpc"]) == 12
    assert second["history"] == straight["history"]


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, shakespeare, capsys, tiny_args):
    xl = experiment_module(EXPERIMENTS[0])
    with pytest.raises(SystemExit):
        xl.main(tiny_args("--resume"))
    assert "no checkpoint" in capsys.readouterr().err


def _ddp_worker(rank: int, world_size: int, port: int, args: list, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from labml_nn.experiments.config import parse_config
    from labml_nn.experiments.trainer import Trainer
    xl = importlib.import_module(EXPERIMENTS[0])
    trainer = Trainer(parse_config(xl.Config, args), xl.TransformerXL, xl.model_kwargs)
    first_batch = trainer.train_batches.streams[:, :16].clone()
    trainer.run()
    torch.save({"model": trainer.module.state_dict(), "first_batch": first_batch}, f"{out}/rank{rank}.pt")
    trainer.close()


@pytest.mark.checks("labml_nn/experiments/trainer.py")
def test_two_processes_hold_identical_weights(tmp_path, shakespeare, tiny_args):
    """DistributedDataParallel over gloo on 127.0.0.1, with two micro-batches per step (gradients averaged
    across the processes once, at the last): each process reads its own streams, and after a few steps
    both hold the same weights (which have moved from the initial ones)."""
    experiment_module(EXPERIMENTS[0])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = tiny_args("--steps", "4", "--batch-size", "2", "--grad-accum", "2")
    mp.spawn(_ddp_worker, args=(2, port, args, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert not torch.equal(rank0["first_batch"], rank1["first_batch"]), "each process reads its own streams"
    for key in rank0["model"]:
        assert torch.equal(rank0["model"][key], rank1["model"][key]), key
    xl = importlib.import_module(EXPERIMENTS[0])
    torch.manual_seed(0)
    initial = xl.TransformerXL(**xl.model_kwargs(xl.Config(dim=32, depth=2, heads=2, dim_head=16, mem_len=16), 65))
    assert any(not torch.equal(p, rank0["model"][k]) for k, p in initial.state_dict().items())


@pytest.mark.checks("labml_nn/experiments/sample.py")
def test_sample_from_a_checkpoint(tmp_path, shakespeare, capsys, tiny_args):
    xl = experiment_module(EXPERIMENTS[0])
    xl.main(tiny_args("--steps", "3"))
    from labml_nn.experiments import sample
    capsys.readouterr()
    text = sample.main(["--checkpoint", str(tmp_path / "checkpoints" / "xl"), "--prompt", "ROMEO:", "--length", "20"])
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 20
    assert text in capsys.readouterr().out
    # The checkpoint alone is enough: class, constructor arguments and vocabulary.
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "checkpoints" / "xl"))
    assert state.config["model_class"] == "TransformerXL"
    assert len(state.config["vocab"]) == state.config["num_tokens"] == 65


@pytest.mark.checks("labml_nn/transformers/xl/experiment.py", "labml_nn/transformers/compressive/experiment.py",
                     "labml_nn/transformers/feedback/experiment.py")
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_a_short_run_learns(name, tmp_path, shakespeare, tiny_args):
    """Each experiment, end to end: within a few dozen steps validation falls at least a bit per
    character below what a model that knows nothing spends ($\\log_2 65 \\approx 6.02$), and a
    checkpoint is written."""
    module = experiment_module(name)
    extra = ["--steps", "40", "--lr", "1e-2", "--batch-size", "8"]
    if name.endswith("compressive.experiment"):
        extra += ["--mem-len", "8", "--cmem-len", "4", "--compression-rate", "2"]
    if name.endswith("feedback.experiment"):
        extra += ["--mem-len", "16", "--curriculum-steps", "10", "--curriculum-start-len", "4"]
    summary = module.main(tiny_args(*extra))
    assert summary["finished"] and summary["step"] == 40
    assert summary["valid_bpc"] < math.log2(65) - 1.0
    # The loss curve: one training value per step (40 < 500 points, so none is merged), falling, and the
    # final validation.
    curve = summary["history"]["train_bpc"]
    assert len(curve) == 40 and summary["history"]["steps_per_point"] == 1
    assert sum(curve[-5:]) / 5 < sum(curve[:5]) / 5 - 1.0
    assert summary["history"]["valid"] == [[40, summary["valid_bpc"]]]
    assert ckpt.latest_checkpoint(tmp_path / "checkpoints" / module.Config().name) is not None


def test_the_command_line_run_reports_through_labml(tmp_path, shakespeare, tiny_args):
    """`python -m labml_nn.transformers.xl.experiment` with labml on: progress, metrics and samples."""
    experiment_module(EXPERIMENTS[0])
    args = [a for a in tiny_args("--steps", "6", "--sample-interval", "3") if a != "--no-labml"]
    result = subprocess.run([sys.executable, "-m", EXPERIMENTS[0], *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "loss.train" in result.stdout and "ROMEO:" in result.stdout
    assert "bits per character" in result.stdout


# ## Schedules

@pytest.mark.checks("labml_nn/experiments/trainer.py")
def test_learning_rate_warms_up_then_decays_to_its_floor():
    from labml_nn.experiments.config import TrainConfig
    from labml_nn.experiments.trainer import learning_rate
    c = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [learning_rate(c, 1.0, step, step / c.steps) for step in range(c.steps + 1)]
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10]))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(0.1)


@pytest.mark.checks("labml_nn/transformers/feedback/experiment.py")
def test_feedback_curriculum_grows_segments_to_seq_len():
    feedback = experiment_module(EXPERIMENTS[2])
    lengths = [feedback.curriculum_seq_len(step, 32, 8, 300) for step in range(400)]
    assert lengths[0] == 8 and lengths[-1] == 32 and sorted(lengths) == lengths
    assert set(lengths) == {8, 16, 32}
    assert feedback.curriculum_seq_len(0, 32, 8, 0) == 32


@pytest.mark.checks("labml_nn/experiments/trainer.py")
def test_compile_trains_the_same_model_within_float_tolerance(tmp_path, shakespeare, tiny_args):
    """`--compile` trains the readable model under torch.compile: a compiled run of the experiment (its
    first step without memory, the next with, so two graphs) reports its compile time apart and validates
    as the eager run does, to float tolerance (Adam's normalised steps amplify the last bits of tiny
    gradients, so the weights are compared through the validation loss)."""
    xl = experiment_module(EXPERIMENTS[0])
    eager = xl.main(tiny_args("--name", "eager", "--steps", "3"))
    run = xl.main(tiny_args("--name", "compiled", "--steps", "3", "--compile"))
    assert run["compile_seconds"] > 0 and "compile_seconds" not in eager
    assert run["valid_bpc"] == pytest.approx(eager["valid_bpc"], abs=5e-3)
