"""Tests for the shared training code (`labml_nn.experiments`) and the per-paper experiments.

Every model here is tiny (width 32, two layers, segments of 16 characters) so the file runs in
well under three minutes on two CPU cores.
"""

import dataclasses
import importlib
import math
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from labml_nn.experiments import checkpoint as ckpt
from labml_nn.experiments.config import build_parser
from labml_nn.experiments.data import (DATA_PATH_ENV, IGNORE, DataError, StreamBatcher, TokenData, Vocabulary,
                                      load_text, read_text)

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
    # What the checkpoint stores rebuilds the same mapping; for characters, a string, as model files of
    # character models have always held it.
    assert vocab.to_config() == {"vocab": "".join(vocab.itos), "vocab_separator": "", "vocab_bytes": False}
    again = Vocabulary.from_config(vocab.to_config())
    assert again.itos == vocab.itos and torch.equal(again.encode(sample), vocab.encode(sample))
    assert Vocabulary.from_config({"vocab": "".join(vocab.itos)}).itos == vocab.itos
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
    rank0 = StreamBatcher(ids, batch_size=2, rank=0, world_size=2)
    rank1 = StreamBatcher(ids, batch_size=2, rank=1, world_size=2)
    both = StreamBatcher(ids, batch_size=4)
    assert torch.equal(torch.cat([rank0.inputs, rank1.inputs]), both.inputs)
    assert torch.equal(torch.cat([rank0.targets, rank1.targets]), both.targets)


@pytest.mark.checks("labml_nn/experiments/data.py")
def test_given_targets_are_cut_into_the_same_streams_as_the_ids():
    """Targets given with the ids stay aligned with them, position by position, in every window; without
    them the target of every position is the next id."""
    ids = torch.arange(1000)
    targets = torch.where(ids % 7 == 0, ids * 10, torch.full_like(ids, IGNORE))
    batcher = StreamBatcher(ids, batch_size=4, targets=targets)
    assert batcher.stream_len == 250  # every id is an input: no position is spent on a last target
    for _ in range(3):
        x, y, _ = batcher.next(16)
        assert torch.equal(y, torch.where(x % 7 == 0, x * 10, torch.full_like(x, IGNORE)))
    for x, y in batcher.windows(16, tail=True):
        assert torch.equal(y, torch.where(x % 7 == 0, x * 10, torch.full_like(x, IGNORE)))
    with pytest.raises(DataError, match="aligned"):
        StreamBatcher(ids, batch_size=4, targets=targets[:-1])


# ## Checkpoints

def tiny_model():
    from labml_nn.transformers.xl import TransformerXL
    return TransformerXL(num_tokens=3, dim=8, depth=1, heads=2, mem_len=2)


def test_checkpoints_keep_the_last_k(tmp_path):
    for step in range(1, 6):
        ckpt.save_checkpoint(tmp_path, step, tiny_model(), {"step": step}, vocab=Vocabulary("abc"), keep=2)
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


def _ddp_worker(rank: int, world_size: int, init_method: str, args: list, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_WORLD_SIZE=str(world_size))
    from labml_nn.experiments.config import parse_config
    from labml_nn.experiments.run import Run
    from labml_nn.experiments.trainer import train
    xl = importlib.import_module(EXPERIMENTS[0])
    with Run(parse_config(xl.Config, args), xl.EXPERIMENT, init_method) as run:
        first_batch = run.train_batches.inputs[:, :16].clone()
        train(run)
        torch.save({"model": run.module.state_dict(), "first_batch": first_batch}, f"{out}/rank{rank}.pt")


@pytest.mark.checks("labml_nn/experiments/trainer.py")
def test_two_processes_hold_identical_weights(tmp_path, shakespeare, tiny_args):
    """DistributedDataParallel over gloo on 127.0.0.1, with two micro-batches per step (gradients averaged
    across the processes once, at the last): each process reads its own streams, and after a few steps
    both hold the same weights (which have moved from the initial ones)."""
    experiment_module(EXPERIMENTS[0])
    # The processes find each other through a file (no port to reserve).
    args = tiny_args("--steps", "4", "--batch-size", "2", "--grad-accum", "2")
    mp.spawn(_ddp_worker, args=(2, f"file://{tmp_path}/rendezvous", args, str(tmp_path)), nprocs=2, join=True)
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
    assert summary["history"]["valid"] == [{"step": 40, "bpc": summary["valid_bpc"],
                                            "accuracy": summary["valid_accuracy"]}]
    # The most likely character is right far more often than one character in 65.
    assert summary["valid_accuracy"] > 0.15
    assert ckpt.latest_checkpoint(tmp_path / "checkpoints" / module.Config().name) is not None


def test_the_command_line_run_reports_through_labml(tmp_path, shakespeare, tiny_args):
    """`python -m labml_nn.transformers.xl.experiment` with labml on: progress, metrics and samples. The
    sample it prints at the end is the trained model's continuation of the prompt: the model of the final
    checkpoint, drawing with the random state saved with it (the sample draws inside `fork_rng`), continues
    the prompt with exactly the printed text."""
    experiment_module(EXPERIMENTS[0])
    args = [a for a in tiny_args("--steps", "6", "--sample-interval", "3", "--sample-length", "40")
            if a != "--no-labml"]
    result = subprocess.run([sys.executable, "-m", EXPERIMENTS[0], *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "loss.train" in result.stdout and "bits per character" in result.stdout
    assert "--- sample at step 3 ---" in result.stdout
    printed = re.search(r"--- sample ---\n(.*)\n---", result.stdout, re.S).group(1)
    from labml_nn.experiments import sample
    checkpoint = ckpt.latest_checkpoint(tmp_path / "checkpoints" / "xl")
    assert checkpoint.name == "checkpoint-00000006"
    model, vocab = sample.load_model(str(checkpoint))
    torch.set_rng_state(ckpt.load_checkpoint(checkpoint).trainer["per_process"][0]["rng"]["torch"])
    assert printed == sample.sample(model, vocab, "ROMEO:", 40, temperature=0.8)
    assert len(printed) == len("ROMEO:") + 40


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


# ## An experiment's own data: words, and targets at some positions only

WORDS = [f"w{i}" for i in range(8)]


def echo_task(config, vocab, received: list = None, n: int = 6000, seed: int = 0) -> TokenData:
    """A task of words: random words, and at every third position the target is the word just read (the
    others have none). `received` collects the vocabulary the trainer passes (that of the checkpoint when
    a run resumes)."""
    if received is not None:
        received.append(vocab)
    vocab = vocab or Vocabulary(WORDS, separator=" ")
    ids = torch.randint(0, len(WORDS), (n,), generator=torch.Generator().manual_seed(seed))
    targets = torch.where(torch.arange(n) % 3 == 2, ids, torch.full_like(ids, IGNORE))
    cut = n * 3 // 4
    return TokenData(vocab, train=ids[:cut], valid=ids[cut:], train_targets=targets[:cut], valid_targets=targets[cut:])


@pytest.mark.checks("labml_nn/experiments/data.py", "labml_nn/transformers/hub.py")
def test_a_word_vocabulary_round_trips_and_model_files_keep_it(tmp_path):
    vocab = Vocabulary(["x", "y", "=", ";", "print", "7", "++"], separator=" ")
    ids = vocab.encode("x = 7 ; print x ; x ++ ;")
    assert ids.tolist() == [0, 2, 5, 3, 4, 0, 3, 0, 6, 3]
    assert vocab.decode(ids) == "x = 7 ; print x ; x ++ ;"
    assert vocab.unknown("x = 8 ; z") == "8 z" and vocab.unit == "token"
    with pytest.raises(DataError, match="Tokens not in the vocabulary: '8'"):
        vocab.encode("x = 8")
    for tokens, separator in [(["x", "x"], " "), (["x y"], " "), (["ab"], "")]:
        with pytest.raises(ValueError):
            Vocabulary(tokens, separator)
    # A model file stores the words as a list, with their separator, and reads back the same vocabulary.
    from labml_nn.experiments import sample
    from labml_nn.transformers.hub import read_config
    from labml_nn.transformers.xl import TransformerXL
    model = TransformerXL(num_tokens=len(vocab), dim=8, depth=1, heads=2, mem_len=2)
    model.save_pretrained(tmp_path / "words", **vocab.to_config())
    config = read_config(tmp_path / "words")
    assert config["vocab"] == vocab.itos and config["vocab_separator"] == " " and "vocab_bytes" not in config
    loaded, again = sample.load_model(str(tmp_path / "words"))
    assert again.itos == vocab.itos and again.separator == " "
    assert sample.sample(loaded, again, "x =", 3).split(" ")[:2] == ["x", "="]
    # A model file is refused a vocabulary that does not fit it.
    with pytest.raises(ValueError, match="7 tokens, the model 3"):
        TransformerXL(num_tokens=3, dim=8, depth=1, heads=2, mem_len=2).save_pretrained(tmp_path / "bad", **vocab.to_config())
    with pytest.raises(ValueError, match="once"):
        TransformerXL(num_tokens=2, dim=8, depth=1, heads=2, mem_len=2).save_pretrained(tmp_path / "bad", vocab=["x", "x"],
                                                                                vocab_separator=" ")


class Echo(torch.nn.Module):
    """A stand-in model whose logits favour the token it reads: `5` for it, `0` for the others."""

    def __init__(self, num_tokens: int):
        super().__init__()
        self.num_tokens = num_tokens

    def forward(self, x, memory=None, return_memory=False):
        logits = 5.0 * torch.nn.functional.one_hot(x, self.num_tokens).float()
        return (logits, memory) if return_memory else logits


@pytest.mark.checks("labml_nn/experiments/trainer.py")
def test_the_loss_and_the_validation_count_only_the_targets():
    """Positions whose target is IGNORE count in neither the loss nor the bits nor the accuracy: here every
    ignored position's target would be wrong, and half the counted ones are right."""
    from labml_nn.experiments.trainer import evaluate_streams, token_loss
    ids = torch.arange(400) % 8
    # Counted at even positions: right (the token read) at positions 0, 4, 8, ..., wrong at 2, 6, ...;
    # the odd positions, ignored, would all be wrong.
    position = torch.arange(400)
    targets = torch.where(position % 4 == 0, ids, (ids + 1) % 8)
    targets = torch.where(position % 2 == 1, torch.full_like(ids, IGNORE), targets)
    batches = StreamBatcher(ids, batch_size=2, targets=targets)
    metrics = evaluate_streams(Echo(8), batches, seq_len=10, windows=batches.num_windows(10), device=torch.device("cpu"))
    right, wrong = -math.log(math.exp(5) / (math.exp(5) + 7)), -math.log(1 / (math.exp(5) + 7))
    assert metrics.targets == 200 and metrics.accuracy == 0.5
    assert metrics.loss == pytest.approx((right + wrong) / 2) and metrics.bits == pytest.approx(metrics.loss / math.log(2))
    logits = Echo(8)(ids[None, :8])
    assert token_loss(logits, targets[None, :8]).item() == pytest.approx((right + wrong) / 2)
    assert token_loss(logits, torch.full((1, 8), IGNORE)).item() == 0.0


@pytest.mark.checks("labml_nn/experiments/trainer.py", "labml_nn/experiments/run.py", "labml_nn/experiments/data.py")
def test_an_experiment_trains_on_its_own_words_and_targets(tmp_path, tiny_args):
    """The `data` hook: a task of words with targets at every third position only. The model learns it (the
    accuracy over the counted targets is far above chance), the summary and the history carry the accuracy,
    the checkpoint keeps the words, a resumed run gives the hook the checkpoint's vocabulary, and `sample`
    continues a prompt in words."""
    import functools
    from labml_nn.experiments import sample
    from labml_nn.experiments.trainer import run_experiment
    xl = experiment_module(EXPERIMENTS[0])
    received = []
    experiment = dataclasses.replace(xl.EXPERIMENT, data=functools.partial(echo_task, received=received))
    args = tiny_args("--steps", "40", "--lr", "1e-2", "--valid-interval", "20", "--prompt", "w1 w2",
                     "--checkpoint-interval", "20", "--summary", str(tmp_path / "summary.json"))
    summary = run_experiment(experiment, args)
    assert summary["valid_accuracy"] > 0.9, summary["valid_accuracy"]  # chance: 1 in 8
    assert [v["step"] for v in summary["history"]["valid"]] == [20, 40]
    assert summary["history"]["valid"][-1]["accuracy"] == summary["valid_accuracy"]
    assert json.loads((tmp_path / "summary.json").read_text())["valid_accuracy"] == summary["valid_accuracy"]
    run_dir = tmp_path / "checkpoints" / "xl"
    config = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir)).config
    assert config["vocab"] == WORDS and config["vocab_separator"] == " "
    assert received == [None]
    resumed = run_experiment(experiment, [*args, "--resume", "--steps", "44"])
    assert resumed["step"] == 44 and received[1].itos == WORDS and received[1].separator == " "
    words = sample.main(["--checkpoint", str(run_dir), "--prompt", "w3 w4", "--length", "5"]).split(" ")
    assert words[:2] == ["w3", "w4"] and len(words) == 7 and set(words) <= set(WORDS)


@pytest.mark.checks("labml_nn/experiments/run.py")
def test_the_summary_is_valid_json_when_a_loss_is_not_finite(tmp_path, tiny_args):
    from labml_nn.experiments.trainer import language_model_loss, run_experiment
    xl = experiment_module(EXPERIMENTS[0])

    def reports_nan(*args):
        loss, memory, _ = language_model_loss(*args)
        return loss, memory, {"loss.train": float("nan")}

    summary = run_experiment(dataclasses.replace(xl.EXPERIMENT, loss=reports_nan),
                             tiny_args("--steps", "3", "--summary", str(tmp_path / "summary.json")))
    assert all(math.isnan(v) for v in summary["history"]["train_bpc"])
    written = json.loads((tmp_path / "summary.json").read_text(),
                         parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert written["history"]["train_bpc"] == [None, None, None] and written["step"] == 3


@pytest.mark.checks("labml_nn/experiments/run.py")
def test_a_checkpoint_with_the_earlier_history_resumes_with_it(tmp_path, tiny_args):
    """A checkpoint written before the history held accuracies (the training losses as `train_loss`, each
    validation as `[step, bpc]`) and before it held the gradient scaler resumes, and keeps its curve."""
    xl = experiment_module(EXPERIMENTS[0])
    xl.main(tiny_args("--stop-at", "5", "--valid-interval", "4"))
    path = ckpt.latest_checkpoint(tmp_path / "checkpoints" / "xl") / "trainer.pt"
    state = torch.load(path, weights_only=True)
    losses, (valid,) = state["history"]["train"]["loss.train"], state["history"]["valid"]
    state["history"] = {"train_loss": losses, "valid": [[valid["step"], valid["bpc"]]]}
    del state["scaler"]
    torch.save(state, path)
    summary = xl.main(tiny_args("--resume", "--valid-interval", "4"))
    assert summary["step"] == 12
    assert summary["history"]["train_bpc"][:5] == [v / math.log(2) for v in losses]
    assert summary["history"]["valid"][0] == {"step": 4, "bpc": valid["bpc"], "accuracy": None}
    assert [v["step"] for v in summary["history"]["valid"]] == [4, 8, 12]


@pytest.mark.checks("labml_nn/experiments/trainer.py", "labml_nn/experiments/run.py")
def test_the_training_code_imports_no_paper_module():
    """The training code reaches a model only through the experiment it is given and the model files' table:
    no module of `labml_nn/experiments` but the pictures (which draw the papers' models) imports a paper's
    module, and none imports inside a function."""
    import ast
    papers = ("labml_nn.transformers.xl", "labml_nn.transformers.compressive", "labml_nn.transformers.feedback")
    for path in sorted((REPO / "labml_nn" / "experiments").glob("*.py")):
        if path.name == "pictures.py":
            continue
        tree = ast.parse(path.read_text())
        in_functions = {node for function in ast.walk(tree) if isinstance(function, ast.FunctionDef)
                        for node in ast.walk(function)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n and n.startswith(papers) for n in names), f"{path.name}:{node.lineno} imports {names}"
                assert node not in in_functions, f"{path.name}:{node.lineno} imports inside a function"
