"""
Runs and model files under careless and hostile use, second round (issue 25): model files trusted for their
sizes (labml_nn/transformers/hub.py). One test per case; each failed before its fix.
"""
import dataclasses
import http.server
import json
import math
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import safetensors.torch
import torch

from labml_nn.experiments import checkpoint as ckpt
from labml_nn.experiments import evaluate, sample
from labml_nn.experiments.corpora import Corpus, extracted
from labml_nn.experiments.data import DataError, load_text
from labml_nn.experiments.trainer import language_model_loss, run_experiment
from labml_nn.transformers.hub import ModelFileError, load_pretrained
from labml_nn.transformers.xl import TransformerXL
from labml_nn.transformers.xl import experiment as xl

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.checks("labml_nn/transformers/hub.py")


def run(main, argv, capsys):
    """Call an entry point; returns (exit code, stderr)."""
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def env() -> dict:
    """The environment of a subprocess that imports this checkout."""
    return dict(os.environ, PYTHONPATH=str(REPO))


# ## Model files: sizes checked against the weights before anything is built

VOCAB = "abcdefghijklmnop"


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A small Transformer-XL's model directory, with a vocabulary of 16 characters."""
    torch.manual_seed(0)
    TransformerXL(num_tokens=16, dim=16, depth=1, heads=2, mem_len=4).save_pretrained(tmp_path / "model", vocab=VOCAB)
    return tmp_path / "model"


def set_config(directory: Path, **fields) -> None:
    config = json.loads((directory / "config.json").read_text())
    config.update(fields)
    (directory / "config.json").write_text(json.dumps(config))


def refused_everywhere(directory: Path, capsys, words: str) -> None:
    """`load_pretrained`, `from_pretrained`, `sample` and `evaluate` each refuse `directory` with `words` in
    one line (a `ModelFileError`, or `error:` and exit code 2)."""
    for load in (load_pretrained, TransformerXL.from_pretrained):
        with pytest.raises(ModelFileError, match=words):
            load(directory)
    for main in (sample.main, evaluate.main):
        code, err = run(main, ["--checkpoint", str(directory)], capsys)
        assert code == 2 and re.search(words, one_error_line(err)), err


@pytest.mark.parametrize("field,value", [("dim", 200_000), ("depth", 1_000_000)])
def test_a_config_that_outgrows_its_weights_is_refused_before_the_model_is_built(field, value, model_dir, capsys):
    """350 bytes asking for 640 GB (`dim`), or minutes of building a million layers (`depth`): refused from
    the safetensors header, naming both files and the field, before anything is allocated."""
    set_config(model_dir, **{field: value})
    refused_everywhere(model_dir, capsys, rf"config\.json describes a TransformerXL larger than the weights in "
                                          rf".*model\.safetensors.*check {field} is {value}")


def test_a_config_of_gigabytes_is_refused_within_a_small_memory_limit(model_dir):
    """`sample` under a 4 GB address-space limit, on a config that would build 20 GB of weights: one error line
    and exit code 2, not a MemoryError; so nothing large is allocated before the check."""
    set_config(model_dir, dim=20_000)
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
            "from labml_nn.experiments import sample; sample.main(sys.argv[1:])")
    done = subprocess.run([sys.executable, "-c", code, "--checkpoint", str(model_dir)], capture_output=True,
                          text=True, env=env(), timeout=300)
    assert done.returncode == 2 and "dim is 20000" in one_error_line(done.stderr), done.stderr


@pytest.mark.parametrize("fields,words", [
    ({"dim": 32}, r"holds layers\.0\.attn\.to_kv\.weight of shape \[32, 16\], but .*config\.json gives it \[64, 32\]: "
                  r"check dim is 32"),
    ({"depth": 3}, r"missing \['layers\.1\..*\(layers: 3 in the model, 1 in the file\); check depth is 3"),
], ids=["dim", "depth"])
def test_a_config_that_does_not_fit_its_weights_names_the_tensor_and_the_field(fields, words, model_dir, capsys):
    set_config(model_dir, **fields)
    refused_everywhere(model_dir, capsys, words)


def deep_json(directory: Path) -> None:
    (directory / "config.json").write_text("[" * 100_000 + "]" * 100_000)


def fifo(name: str):
    def make(directory: Path) -> None:
        (directory / name).unlink()
        os.mkfifo(directory / name)
    return make


def no_config(directory: Path) -> None:
    (directory / "config.json").unlink()


@pytest.mark.parametrize("damage,words", [
    ({"dim": -16}, r"config\.json: dim is -16, expected a non-negative integer"),
    ({"depth": True}, r"config\.json: depth is true, expected int"),
    ({"heads": "2"}, r"config\.json: heads is \"2\", expected int"),
    ({"mem_len": 1.5}, r"config\.json: mem_len is 1.5, expected int"),
    ({"vocab": "aabcdefghijklmno"}, r"config\.json: vocab: a vocabulary lists each token once; repeated: \['a'\]"),
    ({"vocab": "abcdefgh"}, r"config\.json: vocab: the vocabulary has 8 tokens, the model 16"),
    (deep_json, r"config\.json is not readable JSON \(nested too deeply\)"),
    (no_config, r"config\.json is missing"),
    (lambda d: (d / "config.json").write_text("[1, 2]"), r"config\.json must hold a JSON object, got list"),
    (fifo("config.json"), r"config\.json is not a regular file"),
    (fifo("model.safetensors"), r"model\.safetensors is not a regular file"),
], ids=["negative", "bool", "string", "float", "repeats", "short vocab", "nested", "no config", "list", "fifo config",
        "fifo weights"])
def test_a_careless_model_directory_is_one_model_file_error_naming_the_file_and_the_field(damage, words, model_dir,
                                                                                        capsys):
    """Negative sizes, values of the wrong type, a vocabulary with repeats or fewer tokens than the model has, a
    JSON nested a hundred thousand deep, no `config.json`, a JSON list, a FIFO where a file should be (which
    would block the reader forever): one `ModelFileError` from every loader, one error line from the commands."""
    if callable(damage):
        damage(model_dir)
    else:
        set_config(model_dir, **damage)
    if damage is no_config:
        # Without config.json, the directory is not a model directory, and sample looks for checkpoints in it.
        for load in (load_pretrained, TransformerXL.from_pretrained):
            with pytest.raises(ModelFileError, match=words):
                load(model_dir)
        return
    refused_everywhere(model_dir, capsys, words)


def test_weights_of_another_dtype_are_cast_with_a_warning_and_integers_refused(model_dir):
    weights = safetensors.torch.load_file(model_dir / "model.safetensors")
    safetensors.torch.save_file({k: v.half() for k, v in weights.items()}, model_dir / "model.safetensors")
    with pytest.warns(UserWarning, match=r"model\.safetensors: weights stored as F16 are cast to float32"):
        model = load_pretrained(model_dir)
    assert model.token_emb.weight.dtype == torch.float32
    torch.testing.assert_close(model.token_emb.weight, weights["token_emb.weight"].half().float())
    safetensors.torch.save_file({k: v.long() for k, v in weights.items()}, model_dir / "model.safetensors")
    with pytest.raises(ModelFileError, match=r"holds layers\.0\.attn\.to_kv\.weight as I64; a weight is a "
                                             r"floating-point tensor"):
        load_pretrained(model_dir)


def test_model_directories_and_checkpoints_are_readable_by_others(tmp_path):
    """A model directory is meant to be shared: the permissions of the umask (0644 files, 0755 directories),
    not the 0600 safetensors writes or the 0700 of a temporary directory."""
    old = os.umask(0o022)
    try:
        model = TransformerXL(num_tokens=16, dim=16, depth=1, heads=2, mem_len=4)
        model.save_pretrained(tmp_path / "model", vocab=VOCAB)
        saved = ckpt.save_checkpoint(tmp_path / "run", 1, model, {"step": 1})
    finally:
        os.umask(old)
    for directory in (tmp_path / "model", saved):
        assert directory.stat().st_mode & 0o777 == 0o755, directory
        for file in directory.iterdir():
            assert file.stat().st_mode & 0o777 == 0o644, file


def test_save_pretrained_never_leaves_a_directory_without_its_config(model_dir, monkeypatch):
    """A save into an existing model directory that fails while it writes the weights leaves the old model
    whole: `config.json` is replaced last, never removed first."""
    from huggingface_hub import PyTorchModelHubMixin
    before = load_pretrained(model_dir).token_emb.weight.clone()

    def dies_half_way(self, save_directory):
        (Path(save_directory) / "model.safetensors").write_bytes(b"\0" * 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(PyTorchModelHubMixin, "_save_pretrained", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        TransformerXL(num_tokens=16, dim=16, depth=1, heads=2, mem_len=4).save_pretrained(model_dir, vocab=VOCAB)
    monkeypatch.undo()
    assert torch.equal(load_pretrained(model_dir).token_emb.weight, before)
    assert sorted(p.name for p in model_dir.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_from_pretrained_offline_is_one_error_at_once(tmp_path):
    """A repository name with the Hub out of reach (here: a local port nothing listens on): one
    `ModelFileError`, without the Hub client's retries and their warnings; a path that is not a
    directory says so."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        code = ("from labml_nn.transformers.xl import TransformerXL\n"
                "from labml_nn.transformers.hub import ModelFileError\n"
                "for name in ('user/repo', './no/such/dir'):\n"
                "    try:\n        TransformerXL.from_pretrained(name)\n"
                "    except ModelFileError as error:\n        print('ModelFileError:', error)\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env=dict(env(), HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf")))
    assert "Retrying" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout + done.stderr
    assert lines[0].startswith(f"ModelFileError: user/repo is not a local directory; the Hub (http://127.0.0.1:{port}) "
                               f"cannot be reached"), lines[0]
    assert lines[0].endswith("and it is not in the cache"), lines[0]
    assert lines[1] == "ModelFileError: no model directory at ./no/such/dir"
