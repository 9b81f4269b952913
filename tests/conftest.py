"""pytest setup shared by every test: the `checks` marker and the results file the site reads.

`@pytest.mark.checks("labml_nn/transformers/xl/relative_mha.py")` (on a test, a class, or as a
module's `pytestmark`) declares the pages whose claims a test checks; the site generator reads the
declarations from the source (`utils/checked_by.py`) and lists the tests at the end of each page.

At the end of a run this plugin writes the outcome of every test to a JSON file, for the pages'
"Checked by" sections: `--test-results PATH`, else the environment variable `TEST_RESULTS` (a
relative PATH is read from the folder pytest runs in). `make test` passes
`--test-results .test-results/results.json`, which `make site` reads; a run without either (a few
tests by hand) writes nothing, so it cannot replace the results of the whole suite. The file holds the
date (UTC), the commit (`git rev-parse HEAD`), whether the tree had uncommitted changes, the
command line, and `tests`: node id (repository-relative) -> passed, failed, skipped or error.
Writing never fails the run: a problem is printed as a warning.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--test-results", default=None, metavar="PATH",
                     help="where to write the outcome of every test as JSON, for the site's 'Checked by' "
                          "sections (default: $TEST_RESULTS; without either, nothing is written; make test writes "
                          ".test-results/results.json)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "checks(*paths): the site pages (repository-relative .py or .md sources) whose "
                   "claims this test checks; listed under 'Checked by' on those pages")
    path = config.getoption("--test-results")
    if path is None:
        path = os.environ.get("TEST_RESULTS")
    target = Path(config.invocation_params.dir) / path if path else None
    if target is not None and not hasattr(config, "workerinput"):  # one file per run, not per worker
        config.pluginmanager.register(ResultsWriter(config, target), "site-test-results")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


class ResultsWriter:
    def __init__(self, config, path: Path):
        self.config = config
        self.path = path
        self.outcomes: dict[str, str] = {}
        self.started = datetime.datetime.now(datetime.timezone.utc)
        commit = _git("rev-parse", "HEAD")
        self.commit = commit.strip() if commit else None
        status = _git("status", "--porcelain")
        self.dirty = bool(status.strip()) if status is not None else None

    def _node_id(self, nodeid: str) -> str:
        """The node id with its file relative to the repository, whatever pytest's rootdir."""
        file, sep, rest = nodeid.partition("::")
        try:
            file = (Path(self.config.rootpath) / file).resolve().relative_to(REPO).as_posix()
        except ValueError:
            pass
        return file + sep + rest

    def pytest_runtest_logreport(self, report):
        node = self._node_id(report.nodeid)
        if report.when == "call":
            outcome = report.outcome  # passed, failed or skipped (an expected failure is skipped)
        elif report.failed:
            outcome = "error"  # setup or teardown failed
        elif report.skipped:
            outcome = "skipped"
        else:
            return
        if self.outcomes.get(node) in ("failed", "error") and outcome != "error":
            return  # a teardown that passes does not hide the failure
        self.outcomes[node] = outcome

    def pytest_collectreport(self, report):
        if report.failed:
            self.outcomes[self._node_id(report.nodeid)] = "error"

    def pytest_sessionfinish(self, session, exitstatus):
        data = {
            "format": 1,
            "date": self.started.strftime("%Y-%m-%d %H:%M UTC"),
            "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "commit": self.commit,
            "dirty": self.dirty,
            "args": [str(a) for a in self.config.invocation_params.args],
            "exit_status": int(exitstatus),
            "tests": dict(sorted(self.outcomes.items())),
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as e:
            print(f"warning: could not write the test results to {self.path}: {e}", file=sys.stderr)


# ## The data every training test reads

@pytest.fixture(scope="session")
def shakespeare() -> str:
    """The local copy of Tiny Shakespeare: `$TINY_SHAKESPEARE_PATH` (set by `make test`), else the
    shared copy beside the checkout. Without it the tests skip, except in CI, where they fail."""
    from labml_nn.experiments.data import DATA_PATH_ENV
    path = os.environ.get(DATA_PATH_ENV) or str(REPO.parent / "shared" / "data" / "tiny_shakespeare.txt")
    if not Path(path).is_file():
        reason = f"no local Tiny Shakespeare at {path} (set {DATA_PATH_ENV})"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


# ## Helpers the model tests share (test modules never import each other)

def greedy_by_full_forwards(model, prompt, length: int):
    """Greedy continuation of `prompt` by running the model on the whole growing sequence for every token."""
    import torch
    seq = prompt
    with torch.no_grad():
        for _ in range(length):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], 1)
    return seq


def greedy_with_memory(model, prompt, length: int, segment=None):
    """Greedy continuation by calling the model with `memory=`: the prompt in segments of `segment` tokens
    (all of it when `None`), then each new token on its own. Returns the tokens and the last memory."""
    import torch
    memory, seq = None, prompt
    with torch.no_grad():
        for part in prompt.split(segment or prompt.shape[1], dim=1):
            logits, memory = model(part, memory=memory, return_memory=True)
        for _ in range(length):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
            logits, memory = model(nxt, memory=memory, return_memory=True)
    return seq, memory


def randomise_biases(model) -> None:
    """Non-zero relative-attention biases u, v and layer norms, so that every term of a model is exercised."""
    import torch
    from labml_nn.transformers.xl.relative_mha import RelativeMultiHeadAttention
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, RelativeMultiHeadAttention) and module.u is not None:
                module.u.normal_()
                module.v.normal_()
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_()
                module.bias.normal_()


# ## The training tests' helpers (labml_nn/experiments): tiny runs of the experiments

@pytest.fixture
def tiny_args(tmp_path, shakespeare):
    """A function that gives the options of a tiny, quick run of any of the experiments (width 32, two
    layers, segments of 16 characters, 12 steps, checkpoints under `tmp_path`), followed by `extra`:
    `tiny_args("--steps", "3")`."""
    def args(*extra: str) -> list:
        return ["--no-labml", "--data", shakespeare, "--checkpoint-dir", str(tmp_path / "checkpoints"),
                "--dim", "32", "--depth", "2", "--heads", "2", "--dim-head", "16", "--mem-len", "16",
                "--seq-len", "16", "--batch-size", "4", "--steps", "12", "--warmup-steps", "2",
                "--valid-interval", "0", "--valid-windows", "4", "--sample-interval", "0",
                "--sample-length", "10", "--checkpoint-interval", "0", "--threads", "1", *extra]
    return args


def run_entry_point(main, argv, capsys):
    """Call a command-line entry point in this process; returns (exit code, stderr)."""
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    """The one `error: ` line of a command's stderr, with no traceback."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def run_experiment_quietly(experiment, args: list, **options) -> tuple:
    """Run `experiment` with `args` in this process, its stderr captured: `(exit code, stderr)`, what each
    worker of the multi-process tests reports back."""
    import io
    from contextlib import redirect_stderr
    from labml_nn.experiments.trainer import run_experiment
    err = io.StringIO()
    with redirect_stderr(err):
        try:
            run_experiment(experiment, args, **options)
            code = 0
        except SystemExit as exit_info:
            code = exit_info.code
    return code, err.getvalue()
