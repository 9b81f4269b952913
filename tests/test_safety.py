"""
Files anyone can load safely, and runs that never lose work (labml_nn/experiments/checkpoint.py,
trainer.py, config.py, sample.py; labml_nn/transformers/hub.py). One test per way a careless or
hostile input used to run code or lose a run.
"""
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from conftest import one_error_line, run_entry_point, run_experiment_quietly
from labml_nn.experiments import checkpoint as ckpt
from labml_nn.experiments import sample
from labml_nn.transformers.xl import experiment as xl

pytestmark = pytest.mark.checks("labml_nn/experiments/checkpoint.py")


class RunsACommand:
    """A pickle that runs `touch path` when it is unpickled."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


# ## Loading never runs code

@pytest.fixture
def marker(tmp_path) -> Path:
    """The file a hostile checkpoint would create."""
    return tmp_path / "SOMEFILE"


def test_a_pickle_that_runs_a_command_is_never_unpickled(tmp_path, shakespeare, marker, capsys, tiny_args):
    """A checkpoint whose trainer state is a pickle that runs a command: `--resume` and `sample` refuse it
    with one line and run nothing, and so does `sample` given the pickle itself."""
    xl.main(tiny_args("--steps", "2"))
    run_dir = tmp_path / "checkpoints" / "xl"
    with open(ckpt.latest_checkpoint(run_dir) / "trainer.pt", "wb") as f:
        pickle.dump({"step": RunsACommand(marker)}, f)
    code, err = run_entry_point(xl.main, tiny_args("--resume"), capsys)
    assert code == 2 and "not readable as plain data" in one_error_line(err)
    assert not marker.exists()
    with open(tmp_path / "model.pt", "wb") as f:
        pickle.dump({"model": RunsACommand(marker)}, f)
    code, err = run_entry_point(sample.main, ["--checkpoint", str(tmp_path / "model.pt")], capsys)
    assert code == 2 and "is a file" in one_error_line(err)
    assert not marker.exists()


@pytest.mark.checks("labml_nn/transformers/hub.py")
def test_a_file_of_plain_data_cannot_name_code_to_run(tmp_path, shakespeare, marker, capsys, tiny_args):
    # A checkpoint directory whose config.json names `os:system`: it is never imported or called.
    new = tmp_path / "checkpoints" / "xl" / "checkpoint-00000010"
    new.mkdir(parents=True)
    (new / "config.json").write_text(json.dumps({"model_class": "os:system", "command": f"touch {marker}",
                                                 "vocab": "abc"}))
    (new / "model.safetensors").write_bytes(b"")
    torch.save({"step": 10}, new / "trainer.pt")
    for directory in [new, new.parent]:
        code, err = run_entry_point(sample.main, ["--checkpoint", str(directory)], capsys)
        assert code == 2 and "unknown model class 'os:system'" in one_error_line(err)
    code, err = run_entry_point(xl.main, tiny_args("--resume"), capsys)
    assert code == 2 and "unknown model class 'os:system'" in one_error_line(err)
    assert not marker.exists()
    from labml_nn.transformers.hub import ModelFileError, load_pretrained
    with pytest.raises(ModelFileError, match="unknown model class 'os:system'"):
        load_pretrained(new)
    assert not marker.exists()


# ## A damaged newest checkpoint

def damage(path: Path, how: str) -> None:
    if how == "truncated weights":
        data = (path / "model.safetensors").read_bytes()
        (path / "model.safetensors").write_bytes(data[:len(data) // 2])
    elif how == "empty trainer state":
        (path / "trainer.pt").write_bytes(b"")
    elif how == "garbled config":
        (path / "config.json").write_text("{not json")
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", ["truncated weights", "empty trainer state", "garbled config"])
def test_a_damaged_newest_checkpoint_resumes_from_the_one_before(how, tmp_path, shakespeare, capsys, tiny_args):
    straight = xl.main(tiny_args("--name", "straight"))
    first = xl.main(tiny_args("--name", "damaged", "--stop-at", "8",
                              "--checkpoint-interval", "4"))
    assert first["step"] == 8
    run_dir = tmp_path / "checkpoints" / "damaged"
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["checkpoint-00000004", "checkpoint-00000008"]
    damage(run_dir / "checkpoint-00000008", how)
    # Sampling says which checkpoint it could not read and which it used, in one line each.
    capsys.readouterr()
    text = sample.main(["--checkpoint", str(run_dir), "--length", "5"])
    err = capsys.readouterr().err
    assert text.startswith("ROMEO:") and "Traceback" not in err
    assert re.search(r"checkpoint-00000008 is unreadable", err) and "using checkpoint-00000004" in err
    # Resuming continues from step 4, and so ends exactly where the uninterrupted run ended.
    second = xl.main(tiny_args("--name", "damaged", "--resume"))
    assert second["step"] == 12 and second["valid_bpc"] == straight["valid_bpc"]
    a = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "checkpoints" / "straight")).weights
    b = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir)).weights
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoints_load_with_weights_only(tmp_path, shakespeare, tiny_args):
    """Every file of a checkpoint is data: JSON, safetensors, and a pickle of tensors and plain types only."""
    xl.main(tiny_args("--steps", "3"))
    path = ckpt.latest_checkpoint(tmp_path / "checkpoints" / "xl")
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "model.safetensors", "trainer.pt"]
    state = torch.load(path / "trainer.pt", weights_only=True)
    assert state["step"] == 3 and isinstance(state["per_process"][0]["rng"]["numpy"][1], list)


# ## One run per directory

def test_a_new_run_in_another_runs_directory_stops_unless_told_to_overwrite(tmp_path, shakespeare, capsys, tiny_args):
    xl.main(tiny_args("--steps", "6"))
    run_dir = tmp_path / "checkpoints" / "xl"
    before = {p.name: (p / "model.safetensors").read_bytes() for p in ckpt.list_checkpoints(run_dir)}
    code, err = run_entry_point(xl.main, tiny_args("--steps", "3"), capsys)
    line = one_error_line(err)
    assert code == 2 and "already holds the checkpoints of another run" in line
    assert "--resume" in line and "--overwrite" in line
    assert {p.name: (p / "model.safetensors").read_bytes() for p in ckpt.list_checkpoints(run_dir)} == before
    summary = xl.main(tiny_args("--steps", "3", "--overwrite"))
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["checkpoint-00000003"]
    assert summary["checkpoint"].endswith("checkpoint-00000003")


def test_a_second_run_in_the_same_directory_at_the_same_time_stops(tmp_path, shakespeare, capsys, tiny_args):
    run_dir = tmp_path / "checkpoints" / "xl"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from labml_nn.experiments.checkpoint import RunLock; "
                               f"RunLock({str(run_dir)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = run_entry_point(xl.main, tiny_args("--steps", "2"), capsys)
        assert code == 2 and f"process {holder.pid}" in one_error_line(err)
    finally:
        holder.kill()
        holder.wait()
    # A killed run leaves no stale lock: the directory is free again.
    assert xl.main(tiny_args("--steps", "2"))["step"] == 2


# ## Options are checked before anything trains

@pytest.mark.parametrize("option,value", [
    # Options that used to fail only when the first sample was drawn, losing the training before it.
    ("--temperature", "0"), ("--temperature", "-1"), ("--sample-length", "-3"), ("--prompt", "ROMEO: ☃"),
    # Options that used to end in a traceback, or be accepted silently.
    ("--seq-len", "0"), ("--batch-size", "0"), ("--mem-len", "-1"), ("--lr", "nan"), ("--lr", "-1"),
    ("--lr", "inf"), ("--dim", "0"), ("--heads", "0"), ("--attn-dropout", "2"), ("--valid-fraction", "nan"),
    ("--device", "foo"), ("--steps", "-5"), ("--dim", "33"), ("--name", "../elsewhere"),
])
@pytest.mark.checks("labml_nn/experiments/config.py", "labml_nn/experiments/trainer.py")
def test_a_bad_option_is_one_error_line_before_training(option, value, tmp_path, shakespeare, capsys, tiny_args):
    code, err = run_entry_point(xl.main, tiny_args(option, value), capsys)
    line = one_error_line(err)
    assert code == 2
    assert option in line or "model options" in line, line
    assert not list((tmp_path / "checkpoints").rglob("checkpoint-*")), "nothing was trained"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a torch without CUDA")
def test_cuda_on_a_cpu_only_torch_is_one_error_line(tmp_path, shakespeare, capsys, tiny_args):
    code, err = run_entry_point(xl.main, tiny_args("--device", "cuda"), capsys)
    assert code == 2 and "--device 'cuda': this torch is built without CUDA" in one_error_line(err)


def test_bad_options_from_the_command_line_print_no_traceback(tmp_path, shakespeare, tiny_args):
    for args in (["--seq-len", "0"], ["--lr", "nan"], ["--prompt", "☃"]):
        result = subprocess.run([sys.executable, "-m", "labml_nn.transformers.xl.experiment",
                                 *tiny_args(*args)],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv,words", [
    (["--temperature", "0"], "--temperature"), (["--length", "-3"], "--length"), (["--prompt", "☃"], "--prompt"),
    (["--device", "foo"], "--device"), (["--top-k", "-1"], "--top-k"),
])
@pytest.mark.checks("labml_nn/experiments/sample.py")
def test_sampling_options_are_checked(argv, words, tmp_path, shakespeare, capsys, tiny_args):
    xl.main(tiny_args("--steps", "2"))
    code, err = run_entry_point(sample.main, ["--checkpoint", str(tmp_path / "checkpoints" / "xl"), *argv], capsys)
    assert code == 2 and words in one_error_line(err)


# ## Sharing a model

def test_the_trainer_exports_a_model_that_sample_reads(tmp_path, shakespeare, tiny_args):
    xl.main(tiny_args("--steps", "3", "--export", str(tmp_path / "export")))
    from labml_nn.transformers.xl import TransformerXL
    model = TransformerXL.from_pretrained(tmp_path / "export")
    checkpoint = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "checkpoints" / "xl"))
    assert all(torch.equal(p, checkpoint.weights[k]) for k, p in model.state_dict().items())
    text = sample.main(["--checkpoint", str(tmp_path / "export"), "--length", "5", "--top-k", "1"])
    assert text == sample.main(["--checkpoint", str(tmp_path / "checkpoints" / "xl"), "--length", "5", "--top-k", "1"])


# ## A hung peer

def _hanging_peer_worker(rank: int, init_method: str, released, args: list, out: str) -> None:
    """Process `rank` of a two-process run. Process 1 stops before its first step and answers nothing until
    `released` is set, which process 0 does only once it has ended on its own."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    import dataclasses
    experiment = xl.EXPERIMENT
    woke = []
    if rank == 1:
        def stalls(step, config):
            if not woke:
                # A stopped peer: it answers again only when told (the 5 minutes only bound a broken test).
                woke.append("released" if released.wait(timeout=300) else "timed out")
            return config.seq_len
        experiment = dataclasses.replace(experiment, seq_len_at=stalls)
    code, err = run_experiment_quietly(experiment, args, init_method=init_method)
    Path(out, f"rank{rank}.json").write_text(json.dumps(dict(code=code, err=err, woke=woke)))
    if rank == 0:
        released.set()


@pytest.mark.checks("labml_nn/experiments/run.py")
def test_a_hung_peer_ends_the_run_with_a_clear_message(tmp_path, shakespeare, tiny_args):
    """Process 0 waits for its stalled peer in the first step's all-reduce, gives up after --ddp-timeout, and
    ends with one line that says so, while the peer is still stalled (it is released only after)."""
    released = mp.get_context("spawn").Event()
    args = tiny_args("--steps", "3", "--ddp-timeout", "3")
    mp.spawn(_hanging_peer_worker, args=(f"file://{tmp_path}/rendezvous", released, args, str(tmp_path)), nprocs=2,
             join=True)
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["code"] == 1, rank0
    assert "did not answer within --ddp-timeout 3.0 s" in one_error_line(rank0["err"])
    assert rank1["woke"] == ["released"], "the peer was stalled until process 0 had ended"
