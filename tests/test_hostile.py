"""
Runs and model files under careless and hostile use, second round (issue 25): model files trusted for their
sizes (labml_nn/transformers/hub.py), resuming (run.py, checkpoint.py), concurrent first use of a dataset
(data.py, corpora.py), output paths and options (config.py, sample.py, evaluate.py), a diverged run and a
signal (trainer.py, run.py). One test per case; each failed before its fix.
"""
import dataclasses
import http.server
import json
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

from conftest import one_error_line, run_entry_point, run_experiment_quietly
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
        code, err = run_entry_point(main, ["--checkpoint", str(directory)], capsys)
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


# ## Sampling and evaluating: options that were ignored or tracebacks

@pytest.fixture
def trained(tmp_path, tiny_args) -> Path:
    """A run directory of a Transformer-XL trained for 3 steps."""
    xl.main(tiny_args("--steps", "3"))
    return tmp_path / "checkpoints" / "xl"


@pytest.mark.checks("labml_nn/experiments/sample.py")
def test_a_tiny_temperature_is_greedy(trained):
    args = ["--checkpoint", str(trained), "--prompt", "ROMEO:", "--length", "30"]
    assert sample.main([*args, "--temperature", "1e-300"]) == sample.main([*args, "--top-k", "1"])


@pytest.mark.checks("labml_nn/experiments/sample.py")
@pytest.mark.parametrize("seed", [str(10 ** 23), "-1"])
def test_a_seed_outside_the_generators_range_is_one_error_line(seed, model_dir, capsys):
    code, err = run_entry_point(sample.main, ["--checkpoint", str(model_dir), "--seed", seed], capsys)
    assert code == 2 and one_error_line(err).startswith(f"error: --seed {seed}: expected a number in [0, 4294967295]")


@pytest.mark.checks("labml_nn/experiments/evaluate.py")
@pytest.mark.parametrize("extra,words", [
    (["--cmem-len", "4"], "--cmem-len 4: a TransformerXL has no compressed memory"),
    (["--clamp-len", "-7"], "--clamp-len -7: expected a number >= 0"),
    (["--summary", "FILE/summary.json"], "--summary FILE/summary.json: FILE is a file, not a directory"),
], ids=["cmem-len", "clamp-len", "summary"])
def test_evaluate_refuses_what_it_would_ignore_or_fail_on_after_the_evaluation(extra, words, trained, tmp_path,
                                                                             capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("")
    code, err = run_entry_point(evaluate.main, ["--checkpoint", str(trained), "--split", "valid", *extra], capsys)
    assert code == 2 and words in one_error_line(err), err


# ## Data: the first use by several processes at once, and messages that name the way out

def _first_use(kind: str, source: str, cache: str, start, results) -> None:
    """One of the racing processes: wait for the others, then need the data from the empty cache."""
    start.wait()
    try:
        if kind == "zip":
            path = extracted(Corpus("enwik8", "http://127.0.0.1:9/enwik8.zip", "enwik8", None, "ENWIK8_PATH"),
                             Path(source), Path(cache))
            results.put(path.read_bytes())
        else:
            results.put(load_text(url=source, cache=Path(cache)).encode())
    except BaseException as error:  # reported to the test, which fails on it
        results.put(f"{type(error).__name__}: {error}")


def race(kind: str, source: str, cache: Path, processes: int = 2) -> list:
    context = multiprocessing.get_context("fork")  # the workers read files only: no torch is run in them
    start, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_first_use, args=(kind, source, str(cache), start, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    got = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    return got


@pytest.mark.checks("labml_nn/experiments/corpora.py", "labml_nn/experiments/data.py")
def test_processes_that_extract_an_archive_into_an_empty_cache_at_once_all_get_it_whole(tmp_path):
    """What `torchrun --nproc_per_node=2 ... --dataset enwik8 --data X.zip` does on an empty cache: every process
    gets the whole member, and no temporary file is left."""
    data = bytes(range(256)) * 40_000  # 10 MB: extraction takes long enough for the two to overlap
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("enwik8", data)
    for round_ in range(2):
        cache = tmp_path / f"cache{round_}"
        got = race("zip", str(tmp_path / "enwik8.zip"), cache)
        assert got == [data, data], [g if isinstance(g, str) else len(g) for g in got]
        assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == ["enwik8", "enwik8.crc"]


class SlowText(http.server.BaseHTTPRequestHandler):
    """Serves `body` in small pieces, slowly enough for two downloads to overlap, counting the requests; with
    `cut`, announces the whole length and sends half."""
    body = b""
    cut = False
    requests = 0

    def do_GET(self):
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        body = self.body[:len(self.body) // 2] if self.cut else self.body
        for i in range(0, len(body), 1 << 15):
            self.wfile.write(body[i:i + (1 << 15)])
            self.wfile.flush()
            time.sleep(0.005)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server on a free port (opened before it is used), serving `SlowText`."""
    SlowText.requests, SlowText.cut = 0, False
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowText)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/input.txt"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.checks("labml_nn/experiments/data.py")
def test_processes_that_download_into_an_empty_cache_at_once_download_once(server, tmp_path, shakespeare, monkeypatch):
    """The readme's plain `torchrun` command on an empty cache: one process downloads, the other waits and
    reads the same file; both get the whole text."""
    monkeypatch.delenv("TINY_SHAKESPEARE_PATH", raising=False)
    text = Path(shakespeare).read_text()
    SlowText.body = text.encode()
    got = race("url", server, tmp_path / "cache")
    assert got == [text.encode(), text.encode()], [g if isinstance(g, str) else len(g) for g in got]
    assert SlowText.requests == 1
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert names == ["tiny_shakespeare.txt", "tiny_shakespeare.txt.lock"]


@pytest.mark.checks("labml_nn/experiments/data.py")
def test_a_download_cut_short_is_never_renamed_into_place(server, tmp_path, monkeypatch):
    monkeypatch.delenv("TINY_SHAKESPEARE_PATH", raising=False)
    SlowText.body, SlowText.cut = b"To be, or not to be\n" * 10_000, True
    with pytest.raises(DataError, match=r"stopped after 100,000 of 200,000 bytes"):
        load_text(url=server, cache=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny_shakespeare.txt.lock"]


@pytest.mark.checks("labml_nn/experiments/data.py")
def test_an_archive_passed_as_text_names_the_dataset_option(tmp_path, tiny_args, capsys):
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w") as z:
        z.writestr("enwik8", "hello " * 1000)
    args = tiny_args()
    args[args.index("--data") + 1] = str(tmp_path / "enwik8.zip")
    code, err = run_entry_point(xl.main, args, capsys)
    line = one_error_line(err)
    assert code == 2 and "is a zip archive, not text; a byte corpus is read with --dataset enwik8" in line


@pytest.mark.checks("labml_nn/experiments/run.py")
def test_a_text_too_short_names_the_file(tmp_path, tiny_args, capsys):
    (tmp_path / "short.txt").write_text("ab\n")
    args = tiny_args("--prompt", "ab")
    args[args.index("--data") + 1] = str(tmp_path / "short.txt")
    code, err = run_entry_point(xl.main, args, capsys)
    line = one_error_line(err)
    assert code == 2 and f"--data {tmp_path / 'short.txt'}: its training part (2 characters) is too short" in line


# ## Runs: options checked before training, resuming, divergence, signals

@pytest.mark.checks("labml_nn/experiments/config.py")
@pytest.mark.parametrize("option,make,words", [
    ("--export", "file", "--export {}: is a file; expected a directory"),
    ("--summary", "directory", "--summary {}: is a directory; expected the path of a file to write"),
    ("--checkpoint-dir", "file", "--checkpoint-dir {}: is a file; expected a directory"),
    ("--summary", "under a file", "--summary {}: {} is a file, not a directory"),
], ids=["export onto a file", "summary onto a directory", "checkpoint-dir a file", "summary under a file"])
def test_output_paths_are_checked_before_training(option, make, words, tmp_path, tiny_args, capsys):
    target = tmp_path / "out"
    if make == "directory":
        target.mkdir()
    else:
        target.write_text("")
    path = target / "summary.json" if make == "under a file" else target
    args = [*tiny_args(), option, str(path)]
    code, err = run_entry_point(xl.main, args, capsys)
    assert code == 2 and words.format(path, target) in one_error_line(err)
    assert not (tmp_path / "checkpoints").exists(), "nothing ran"


@pytest.mark.checks("labml_nn/experiments/config.py")
def test_more_threads_than_cpus_is_one_error_line(tiny_args, capsys):
    code, err = run_entry_point(xl.main, [*tiny_args(), "--threads", "100000"], capsys)
    assert code == 2 and one_error_line(err).startswith(f"error: --threads 100000: expected a number in "
                                                        f"[0, {os.cpu_count()}]")


@pytest.mark.checks("labml_nn/experiments/run.py")
@pytest.mark.parametrize("before,after,words", [
    (["--grad-accum", "1"], ["--grad-accum", "2"], "--grad-accum 1, this run has --grad-accum 2"),
    (["--grad-accum", "2", "--batch-size", "2"], ["--grad-accum", "1", "--batch-size", "2"],
     "--grad-accum 2, this run has --grad-accum 1"),
    ([], ["--valid-fraction", "0.2"], "--valid-fraction 0.1, this run has --valid-fraction 0.2"),
    ([], ["--data", "COPY"], "--data {}, this run has --data {}"),
], ids=["grad-accum 1 to 2", "grad-accum 2 to 1", "valid-fraction", "data"])
def test_resume_with_other_data_options_is_refused_with_the_old_and_new_value(before, after, words, tmp_path,
                                                                               shakespeare, tiny_args, capsys):
    copy = tmp_path / "copy.txt"
    copy.write_text(Path(shakespeare).read_text())
    after = [str(copy) if a == "COPY" else a for a in after]
    xl.main([*tiny_args("--stop-at", "2"), *before])
    code, err = run_entry_point(xl.main, [*tiny_args("--resume"), *before, *after], capsys)
    assert code == 2 and words.format(repr(shakespeare), repr(str(copy))) in one_error_line(err), err


def nan_from(step: int):
    """A loss hook whose loss becomes NaN from the `step`-th call on."""
    calls = []

    def loss(model, x, y, memory, config):
        calls.append(1)
        value, memory, parts = language_model_loss(model, x, y, memory, config)
        return (value * float("nan") if len(calls) >= step else value), memory, parts
    return loss


@pytest.mark.checks("labml_nn/experiments/trainer.py")
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_diverged_run_stops_and_keeps_its_last_good_checkpoint(dtype, tmp_path, tiny_args, capsys):
    """A loss of NaN from the 5th step: the run stops with one error line and exit code 1, exports nothing,
    writes a summary that is JSON and says it diverged, and its newest checkpoint is one from before, with
    weights and memory that are numbers. (float16: once its scaler has given up, after the skipped steps.)"""
    summary_path, export = tmp_path / "summary.json", tmp_path / "export"
    experiment = dataclasses.replace(xl.EXPERIMENT, loss=nan_from(5))
    code, err = run_entry_point(lambda argv: run_experiment(experiment, argv),
                    tiny_args("--steps", "40", "--checkpoint-interval", "2", "--dtype", dtype,
                              "--summary", str(summary_path), "--export", str(export)), capsys)
    line = one_error_line(err)
    assert code == 1 and "the run diverged at step" in line
    newest = ckpt.latest_checkpoint(tmp_path / "checkpoints" / "xl")
    assert f"The last good checkpoint is {newest}" in line
    assert int(newest.name.split("-")[1]) <= 4
    summary = json.loads(summary_path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert summary["finished"] is False and summary["diverged"] and summary["checkpoint"] == str(newest)
    assert not export.exists()
    saved = ckpt.load_checkpoint(newest)
    assert all(torch.isfinite(w).all() for w in saved.weights.values())
    assert all(torch.isfinite(m).all() for m in saved.trainer["per_process"][0]["memory"][0])


def corrupt(state: dict, how: str) -> None:
    if how == "missing key":
        del state["optimisers"]
    elif how == "rng of the wrong size":
        state["per_process"][0]["rng"]["torch"] = state["per_process"][0]["rng"]["torch"][:100]
    elif how == "empty per_process":
        state["per_process"] = []


@pytest.mark.checks("labml_nn/experiments/run.py", "labml_nn/experiments/checkpoint.py")
@pytest.mark.parametrize("how", ["missing key", "rng of the wrong size", "empty per_process"])
def test_a_trainer_state_that_is_not_the_trainers_falls_back_to_the_checkpoint_before(how, tmp_path, tiny_args, capsys):
    xl.main(tiny_args("--stop-at", "4", "--checkpoint-interval", "2"))
    run_dir = tmp_path / "checkpoints" / "xl"
    newest = ckpt.latest_checkpoint(run_dir) / "trainer.pt"
    state = torch.load(newest, weights_only=True)
    corrupt(state, how)
    torch.save(state, newest)
    capsys.readouterr()
    summary = xl.main(tiny_args("--resume"))
    out = capsys.readouterr()
    assert summary["step"] == 12 and summary["finished"]
    assert "checkpoint-00000004 is unreadable" in out.out and "is not a trainer state of this package" in out.out
    assert "using checkpoint-00000002" in out.out


def final_weights(run_dir: Path) -> dict:
    return ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir)).weights


def checkpoint_steps(run_dir: Path) -> list:
    return [int(p.name.split("-")[1]) for p in ckpt.list_checkpoints(run_dir)]


@pytest.mark.checks("labml_nn/experiments/run.py", "labml_nn/experiments/trainer.py")
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_a_checkpoint_and_the_run_resumes_exactly(number, tmp_path, tiny_args):
    """A scheduler's SIGTERM or a Ctrl-C, sent once the run says it has started (read from its output, not
    timed): it saves where it is, says so, exits with 128 + the signal's number, and `--resume` ends on the
    same weights as a run never interrupted."""
    args = tiny_args("--steps", "100000", "--name", "signalled")
    process = subprocess.Popen([sys.executable, "-m", "labml_nn.transformers.xl.experiment", *args], env=env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if "starting at step 0" in line:
                break
        process.send_signal(number)
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 128 + number, err
    run_dir = tmp_path / "checkpoints" / "signalled"
    (step,) = checkpoint_steps(run_dir)
    assert err.strip().splitlines()[-1] == (f"stopped: {signal.Signals(number).name} at step {step}: saved "
                                            f"{run_dir / f'checkpoint-{step:08d}'}; continue with --resume"), err
    resumed = xl.main([*args, "--resume", "--stop-at", str(step + 2)])
    straight = xl.main([*tiny_args("--steps", "100000", "--name", "straight"), "--stop-at", str(step + 2)])
    assert resumed["step"] == straight["step"] == step + 2
    a, b = final_weights(run_dir), final_weights(tmp_path / "checkpoints" / "straight")
    assert all(torch.equal(a[k], b[k]) for k in a)


def _signalled_peer_worker(rank: int, init_method: str, args: list, out: str) -> None:
    """Process `rank` of a two-process run; process 1 sends itself SIGTERM as its third step starts."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    experiment = xl.EXPERIMENT
    if rank == 1:
        def signals_itself(step, config):
            if step == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return config.seq_len
        experiment = dataclasses.replace(experiment, seq_len_at=signals_itself)
    code, err = run_experiment_quietly(experiment, args, init_method=init_method)
    Path(out, f"rank{rank}.json").write_text(json.dumps(dict(code=code, err=err)))


@pytest.mark.checks("labml_nn/experiments/run.py")
def test_a_signal_to_one_process_stops_every_process_after_the_same_step(tmp_path, tiny_args):
    """Only process 1 gets the SIGTERM; both stop after the same step (a process that went on would wait for
    the other's gradients until --ddp-timeout), and the checkpoint of that step holds both processes' state."""
    import torch.multiprocessing as mp
    args = tiny_args("--steps", "100", "--ddp-timeout", "60")
    mp.spawn(_signalled_peer_worker, args=(f"file://{tmp_path}/rendezvous", args, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["code"] == rank1["code"] == 128 + signal.SIGTERM, (rank0, rank1)
    run_dir = tmp_path / "checkpoints" / "xl"
    (step,) = checkpoint_steps(run_dir)
    # Asked during step 3, the processes agree one step later: they stop after step 4.
    assert step == 4
    for rank in (rank0, rank1):
        assert f"stopped: SIGTERM at step {step}" in rank["err"], rank
    assert len(ckpt.load_checkpoint(run_dir / f"checkpoint-{step:08d}").trainer["per_process"]) == 2


@pytest.mark.checks("labml_nn/experiments/run.py", "labml_nn/experiments/checkpoint.py")
@pytest.mark.parametrize("extra", [["--dtype", "float16"],
                                   ["--dtype", "bfloat16", "--grad-accum", "2", "--batch-size", "2"]],
                         ids=["float16", "bfloat16, grad-accum 2"])
def test_a_run_killed_while_it_trains_resumes_to_the_bit(extra, tmp_path, tiny_args):
    """SIGKILL (nothing to catch), once the run has written its second checkpoint, then `--resume`: the
    weights, the optimiser's moments and float16's gradient scaler end as in a run never killed."""
    args = [*tiny_args("--steps", "400", "--checkpoint-interval", "3", "--name", "killed"), *extra]
    run_dir = tmp_path / "checkpoints" / "killed"
    process = subprocess.Popen([sys.executable, "-m", "labml_nn.transformers.xl.experiment", *args], env=env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # The run's own files say how far it is: its checkpoints.
        while 6 not in checkpoint_steps(run_dir) and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    stop = max(checkpoint_steps(run_dir)) + 3
    xl.main([*args, "--resume", "--stop-at", str(stop)])
    straight = [a if a != "killed" else "straight" for a in args]
    xl.main([*straight, "--stop-at", str(stop)])
    a = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    b = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "checkpoints" / "straight"))
    assert a.path.name == b.path.name == f"checkpoint-{stop:08d}"
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert a.trainer["scaler"] == b.trainer["scaler"]
    if "float16" in extra:
        assert a.trainer["scaler"]["_growth_tracker"] > 0
    for x, y in zip(a.trainer["optimisers"], b.trainer["optimisers"]):
        for key in x["state"]:
            assert all(torch.equal(x["state"][key][m], y["state"][key][m]) for m in ("exp_avg", "exp_avg_sq"))


# ## The Makefile

def test_the_makefile_finds_the_shared_data_under_a_path_with_a_space(tmp_path):
    repo = tmp_path / "a b" / "repo"
    repo.mkdir(parents=True)
    (repo / "Makefile").write_text((REPO / "Makefile").read_text())
    data = tmp_path / "a b" / "shared" / "data"
    data.mkdir(parents=True)
    (data / "tiny_shakespeare.txt").write_text("text")
    environment = {k: v for k, v in os.environ.items() if k != "TINY_SHAKESPEARE_PATH"}
    done = subprocess.run(["make", "-s", "-C", str(repo), "--eval", 'show: ; @echo "[$$TINY_SHAKESPEARE_PATH]"',
                           "show"], capture_output=True, text=True, env=environment, timeout=60)
    assert done.stdout.strip() == f"[{data / 'tiny_shakespeare.txt'}]", done.stdout + done.stderr
