"""Tests for the code-execution task (`labml_nn.experiments.algorithmic`): the generator, its labels, its
streams and the accuracy; and for its experiment (`labml_nn.transformers.feedback.algorithmic`): the two
models trained, checkpointed, resumed and scored on tiny programs, and the authors' presets.

The labels are checked against an evaluation of the program *text* written here, independently of the
generator: the text is translated to Python source and run with `exec`.
"""
import inspect
import json
import math
import random
from collections import Counter
from typing import Dict, List, Tuple

import pytest
import torch
from torch import nn

from labml_nn.experiments.algorithmic import (encode, generate_program, generate_programs, load_algorithmic,
                                              vocabulary)
from labml_nn.experiments.data import IGNORE, StreamBatcher
from labml_nn.experiments.trainer import evaluate_streams

pytestmark = pytest.mark.checks("labml_nn/experiments/algorithmic.py")


# ## An evaluation of the program text, independent of the generator

def statements_of(text: str) -> List[List[str]]:
    """The statements of a program's text, each as its words without the `;`; the text must end with END."""
    words = text.split()
    assert words[-1] == "END" and "END" not in words[:-1]
    statements, current = [], []
    for word in words[:-1]:
        if word == ";":
            statements.append(current)
            current = []
        else:
            current.append(word)
    assert current == [], "every statement ends with ';'"
    return statements


def python_of(words: List[str]) -> str:
    """One statement of the task as one line of Python."""
    if words[0] == "print":
        (var,) = words[1:]
        return f"printed.append({var})"
    if words[0] == "if":
        var, comparison, operand, colon, *body = words[1:]
        assert comparison in ("<", ">") and colon == ":"
        return f"if {var} {comparison} {operand}: {python_of(body)}"
    if words[1] == "=":
        var, _, value = words
        return f"{var} = {int(value)}"
    var, op = words
    return {"++": f"{var} += 1", "--": f"{var} -= 1"}[op]


def run_program(text: str, variables: str = "xyz") -> Tuple[List[int], List[Dict[str, int]]]:
    """Run the program text as Python: the printed values, and the variables' values after each statement.
    A variable read before it is assigned raises NameError."""
    lines = []
    for words in statements_of(text):
        lines.append(python_of(words))
        lines.append(f"states.append({{k: v for k, v in globals().items() if k in {variables!r}}})")
    namespace = {"printed": [], "states": []}
    exec("\n".join(lines), namespace)
    return namespace["printed"], namespace["states"]


# ## The generator

def test_the_same_seed_gives_the_same_programs_whatever_the_global_random_state():
    random.seed(1)
    torch.manual_seed(1)
    first = generate_programs(5, "train", seed=3, statements=20)
    random.seed(2)
    torch.manual_seed(2)
    _ = [random.random() for _ in range(10)]
    assert generate_programs(5, "train", seed=3, statements=20) == first
    # Another seed, another split: other programs.
    assert generate_programs(5, "train", seed=4, statements=20) != first
    assert generate_programs(5, "test", seed=3, statements=20) != first
    # The first k programs do not depend on how many are asked for.
    assert generate_programs(2, "train", seed=3, statements=20) == first[:2]


def test_the_split_arrays_are_the_same_for_the_same_seed():
    a = load_algorithmic(seed=7, statements=10, train_programs=20, valid_programs=5, test_programs=5)
    b = load_algorithmic(seed=7, statements=10, train_programs=20, valid_programs=5, test_programs=5)
    for part in ("train", "valid", "test", "train_targets", "valid_targets", "test_targets"):
        assert torch.equal(getattr(a, part), getattr(b, part))
    c = load_algorithmic(seed=8, statements=10, train_programs=20, valid_programs=5, test_programs=5)
    assert not torch.equal(a.train, c.train)


def test_a_program_is_its_statements_then_END():
    for statements in (1, 7, 100):
        program = generate_program(random.Random(0), statements=statements)
        assert len(statements_of(program.text)) == statements
        assert program.words[-1] == "END" and len(program.words) == len(program.targets)
        assert program.text == " ".join(program.words)


def test_the_labels_are_the_printed_values_at_the_semicolon_of_each_print():
    for program in generate_programs(30, "valid", seed=0, statements=60):
        printed, _ = run_program(program.text)
        words = program.words
        # The positions with a target are exactly the `;` of the `print` statements...
        labelled = [i for i, target in enumerate(program.targets) if target is not None]
        print_ends = [i for i in range(2, len(words)) if words[i] == ";" and words[i - 2] == "print"]
        assert labelled == print_ends
        # ... and their targets are what the program prints.
        assert [int(program.targets[i]) for i in labelled] == printed


def test_the_programs_keep_the_rules_of_the_task():
    programs = generate_programs(40, "train", seed=1, statements=100)
    kinds = Counter()
    for program in programs:
        # Run as Python: no variable is read before it has a value (NameError otherwise) ...
        _, states = run_program(program.text)
        # ... and no value ever leaves 1..10.
        assert all(1 <= value <= 10 for state in states for value in state.values())
        statements = statements_of(program.text)
        assert statements[0][1] == "="
        for words in statements:
            kind = words[0] if words[0] in ("if", "print") else words[1]
            kinds[kind] += 1
            if kind == "if":
                # One level of nesting: the guarded statement is an assignment, ++ or --.
                assert words[5] not in ("if", "print") and words[6] in ("=", "++", "--")
                assert words[4] == ":" and (words[3] in "xyz" or 1 <= int(words[3]) <= 10)
    # The kinds are drawn equally likely; assignments stop once every variable has a value, so the
    # other four are each about a quarter of the statements.
    total = sum(kinds.values())
    assert kinds["="] / total < 0.06
    for kind in ("++", "--", "if", "print"):
        assert 0.2 < kinds[kind] / total < 0.3, kinds


def test_five_variables_use_the_authors_five_names():
    words = set(w for p in generate_programs(5, "train", seed=0, statements=100, variables=5) for w in p.words)
    assert {"x", "y", "z", "p", "r"} <= words
    words3 = set(w for p in generate_programs(5, "train", seed=0, statements=100) for w in p.words)
    assert not {"p", "r"} & words3


@pytest.mark.parametrize("kwargs, match", [(dict(statements=0), "statements must be"),
                                           (dict(variables=6), "variables must be"),
                                           (dict(variables=0), "variables must be")])
def test_a_task_that_cannot_be_generated_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_programs(1, "train", seed=0, **kwargs)


def test_bad_split_seed_or_count_are_clear_errors():
    with pytest.raises(ValueError, match="split must be one of train, valid, test"):
        generate_programs(1, "validation")
    with pytest.raises(ValueError, match="seed must be"):
        generate_programs(1, "train", seed=-1)
    with pytest.raises(ValueError, match="count must be"):
        generate_programs(-1, "train")


# ## The vocabulary and the streams

def test_the_streams_are_the_programs_one_after_the_other_with_targets_aligned():
    data = load_algorithmic(seed=2, statements=15, train_programs=12, valid_programs=3, test_programs=4)
    vocab = data.vocab
    assert vocab.itos == vocabulary(3).itos and len(set(vocab.itos)) == len(vocab) and vocab.separator == " "
    for split, count in (("train", 12), ("valid", 3), ("test", 4)):
        tokens, targets = getattr(data, split), getattr(data, f"{split}_targets")
        assert tokens.dtype == targets.dtype == torch.long and tokens.shape == targets.shape and tokens.dim() == 1
        programs = generate_programs(count, split, seed=2, statements=15)
        # The vocabulary decodes with a space between words: that gives back the programs' text.
        assert vocab.decode(tokens) == " ".join(p.text for p in programs)
        assert (tokens == vocab.stoi["END"]).sum() == count
        # Targets: a value's id at the `;` of a print, -100 everywhere else.
        expected = [t for p in programs for t in p.targets]
        assert [None if t == IGNORE else vocab.itos[t] for t in targets.tolist()] == expected
        counted = targets != IGNORE
        assert counted.any() and (tokens[counted] == vocab.stoi[";"]).all()
        assert set(vocab.itos[t] for t in targets[counted].tolist()) <= {str(v) for v in range(1, 11)}


def test_the_defaults_are_the_papers_task():
    defaults = {name: p.default for name, p in inspect.signature(load_algorithmic).parameters.items()}
    assert (defaults["statements"], defaults["variables"]) == (100, 3)
    assert (defaults["train_programs"], defaults["valid_programs"], defaults["test_programs"]) == (10_000, 1_000, 1_000)
    assert inspect.signature(generate_program).parameters["statements"].default == 100


def test_a_word_outside_the_vocabulary_is_a_clear_error():
    programs = generate_programs(2, "train", seed=0, statements=100, variables=5)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        encode(programs, vocabulary(3))


# ## Accuracy: the trainer's, over the printed values only

class Oracle(nn.Module):
    """A stand-in model that is shown the answers: it reads the target windows of `batches` in the order the
    evaluation reads the input windows, and predicts `predict(x, y)` for inputs `x` with targets `y`, both
    `[batch_size, seq_len]`, as one-hot logits. It carries a memory (a count of the windows read)."""

    def __init__(self, batches: StreamBatcher, seq_len: int, num_tokens: int, predict):
        super().__init__()
        self.answers = (y for _, y in batches.windows(seq_len, tail=True))
        self.num_tokens, self.predict, self.read = num_tokens, predict, 0

    def forward(self, x, memory=None, return_memory=False):
        y = next(self.answers)
        # The evaluation carries the memory from window to window.
        assert memory == (self.read or None)
        self.read += 1
        logits = nn.functional.one_hot(self.predict(x, y), self.num_tokens).float() * 5
        return (logits, self.read) if return_memory else logits


def reported_accuracy(data, predict, batch_size: int = 3, seq_len: int = 7) -> Tuple[float, int]:
    """The accuracy the training loop reports over the validation programs for a model predicting `predict(x, y)`,
    and how many targets it counted."""
    batches = StreamBatcher(data.valid, batch_size, targets=data.valid_targets)
    model = Oracle(batches, seq_len, len(data.vocab), predict)
    metrics = evaluate_streams(model, batches, seq_len, batches.num_windows(seq_len, tail=True), torch.device("cpu"),
                               tail=True)
    return metrics.accuracy, metrics.targets


def test_the_accuracy_counts_only_the_printed_values():
    data = load_algorithmic(seed=0, statements=30, train_programs=1, valid_programs=6, test_programs=1)
    counted = data.valid_targets != IGNORE
    # The streams cut off the split's last few tokens (3 streams of equal length): count what they hold.
    held = StreamBatcher(data.valid, 3, targets=data.valid_targets).targets
    prints = int((held != IGNORE).sum())
    assert 0 < prints <= int(counted.sum())
    # Right at every printed value, and the input word (never a value at a `;`) everywhere else: 100%.
    right = lambda x, y: torch.where(y == IGNORE, x, y)
    assert reported_accuracy(data, right) == (1.0, prints)
    # The positions without a target do not count: what is predicted there changes nothing.
    assert reported_accuracy(data, lambda x, y: torch.where(y == IGNORE, torch.zeros_like(y), y)) == (1.0, prints)
    # Wrong at every printed value: 0%; id 0 is END, never a value.
    assert reported_accuracy(data, lambda x, y: torch.zeros_like(y)) == (0.0, prints)
    # Wrong at the printed values of the first stream only: its share of the prints is lost.
    def first_stream_wrong(x, y):
        predicted = right(x, y)
        predicted[0] = 0
        return predicted
    in_first = int((held[0] != IGNORE).sum())
    accuracy, targets = reported_accuracy(data, first_stream_wrong)
    assert targets == prints and accuracy == pytest.approx(1 - in_first / prints)


def test_the_accuracy_is_one_for_the_values_an_independent_run_of_the_text_prints():
    """The targets the accuracy is measured against are what the program text prints, run as Python."""
    data = load_algorithmic(seed=5, statements=40, train_programs=1, valid_programs=8, test_programs=1)
    text = data.vocab.decode(data.valid)
    printed = [value for program in text.split(" END")[:-1] for value in run_program(program + " END")[0]]
    from_targets = [int(data.vocab.itos[t]) for t in data.valid_targets[data.valid_targets != IGNORE].tolist()]
    assert from_targets == printed


# ## The experiment


def tiny_task_args(tmp_path, model: str, *extra: str) -> list:
    """A tiny run of the experiment: programs of 6 statements, width 16, 2 layers, 24 steps."""
    return ["--no-labml", "--model", model, "--checkpoint-dir", str(tmp_path / "checkpoints"), "--name", model,
            "--statements", "6", "--train-programs", "120", "--valid-programs", "12", "--test-programs", "15",
            "--dim", "16", "--depth", "2", "--heads", "2", "--dim-head", "8", "--mem-len", "8", "--seq-len", "8",
            "--batch-size", "4", "--steps", "24", "--lr", "3e-3", "--warmup-steps", "2", "--valid-interval", "8",
            "--checkpoint-interval", "0", "--threads", "1", *extra]


@pytest.mark.checks("labml_nn/transformers/feedback/algorithmic.py", "labml_nn/experiments/trainer.py")
@pytest.mark.parametrize("model", ["feedback", "xl"])
def test_each_model_trains_checkpoints_resumes_and_reports_its_accuracy(model, tmp_path):
    from labml_nn.experiments.checkpoint import latest_checkpoint, load_checkpoint
    from labml_nn.transformers.feedback import algorithmic
    straight = algorithmic.main(tiny_task_args(tmp_path, model, "--summary", str(tmp_path / "straight.json")))
    assert straight["finished"] and straight["model"] == {"feedback": "FeedbackTransformer", "xl": "TransformerXL"}[model]
    # Validation reports the accuracy on the valid programs, by step; the summary keeps the last one.
    valid = straight["history"]["valid"]
    assert [v["step"] for v in valid] == [8, 16, 24] and len(straight["history"]["train_bpc"]) == 24
    # It trains: the loss over the printed values of the validation programs falls, from above the
    # log2(23) bits of a model that finds every word as likely.
    assert valid[-1]["bpc"] < valid[0]["bpc"] - 0.05 and valid[-1]["bpc"] < math.log2(len(vocabulary(3)))
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in valid) and straight["valid_accuracy"] == valid[-1]["accuracy"]
    # The test accuracy is over every printed value of the test programs, read once from the last checkpoint.
    prints = sum(target is not None for program in generate_programs(15, "test", seed=0, statements=6)
                 for target in program.targets)
    assert straight["test_targets"] == prints and 0.0 <= straight["test_accuracy"] <= 1.0
    written = json.loads((tmp_path / "straight.json").read_text())
    assert written["test_accuracy"] == straight["test_accuracy"] and written["valid_accuracy"] == straight["valid_accuracy"]

    # Stopped at step 10 and resumed, the run ends where the straight one did: same weights, same accuracies.
    first = algorithmic.main(tiny_task_args(tmp_path, model, "--name", "resumed", "--stop-at", "10"))
    assert first["step"] == 10 and not first["finished"] and "test_accuracy" not in first
    second = algorithmic.main(tiny_task_args(tmp_path, model, "--name", "resumed", "--resume"))
    assert second["step"] == 24 and second["history"] == straight["history"]
    assert (second["valid_accuracy"], second["test_accuracy"]) == (straight["valid_accuracy"], straight["test_accuracy"])
    a, b = (load_checkpoint(latest_checkpoint(tmp_path / "checkpoints" / name)).weights for name in (model, "resumed"))
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.checks("labml_nn/transformers/feedback/algorithmic.py")
def test_a_resume_on_another_task_or_a_prompt_outside_the_task_is_a_clear_error(tmp_path, capsys):
    from labml_nn.transformers.feedback import algorithmic
    algorithmic.main(tiny_task_args(tmp_path, "xl", "--stop-at", "2"))
    with pytest.raises(SystemExit) as exit_code:
        algorithmic.main(tiny_task_args(tmp_path, "xl", "--resume", "--statements", "7"))
    assert exit_code.value.code == 2
    assert "--statements 6, this run has --statements 7" in capsys.readouterr().err
    # The default prompt is a program of the task's words; a character-model prompt is refused.
    with pytest.raises(SystemExit):
        algorithmic.main(tiny_task_args(tmp_path, "xl", "--name", "other", "--prompt", "ROMEO:"))
    assert "--prompt 'ROMEO:'" in capsys.readouterr().err


@pytest.mark.checks("labml_nn/transformers/feedback/algorithmic.py")
def test_the_sample_is_the_models_answer_to_the_prompt(tmp_path, capsys):
    from labml_nn.transformers.feedback import algorithmic
    algorithmic.main(tiny_task_args(tmp_path, "feedback", "--steps", "2", "--valid-interval", "0"))
    out = capsys.readouterr().out
    prompt = algorithmic.Config().prompt
    sample = out.split("--- sample ---\n")[1].splitlines()[0]
    # The prompt ends with a print; the sample adds one word to it.
    assert prompt.endswith("print y ;") and sample.startswith(prompt + " ") and len(sample.split()) == len(prompt.split()) + 1


# ## The authors' runs as presets

def authors_parameters(num_tokens: int, dim: int, inner: int, depth: int, heads: int, dim_head: int, attn_lim: int,
                       feedback: bool) -> int:
    """The parameters of the authors' models (models/transformer_seq.py and models/feedback.py of
    facebookresearch/transformer-sequential), counted from their shapes: an embedding; per layer the
    query, key, value and output projections without biases, a two-layer ReLU network with biases and two
    layer norms; one learned key per distance shared by the layers (`head_dim` × `attn_lim`); the output norm
    and layer; and for the Feedback Transformer the weights of the depth + 1 layers in the memory."""
    layer = 4 * dim * heads * dim_head + (dim * inner + inner) + (inner * dim + dim) + 2 * 2 * dim
    total = num_tokens * dim + depth * layer + dim_head * attn_lim + 2 * dim + (dim * num_tokens + num_tokens)
    return total + (depth + 1 if feedback else 0)


@pytest.mark.checks("labml_nn/transformers/feedback/algorithmic.py", "labml_nn/experiments/presets.py")
def test_the_presets_are_the_authors_two_runs():
    """experiments/feedback/algorithmic_3var.sh: --nlayers 8 (baseline) / 4 (--feedback), --hid-sz 256,
    --inner-hid-sz 1024, --nheads 4, --attn-lim 100, --mem-sz 64 (the block), --dropout 0.2, --lr 0.0001,
    --lr-warmup 1000, --grad-clip 0.1, --batch-sz 512, --nepochs 50 × --nbatches 1000; the data of
    gen_data_algo_seq.py --variables 3 (100 statements, 10,000 / 1,000 / 1,000 programs)."""
    from labml_nn.experiments.config import parse_config
    from labml_nn.experiments.presets import PRESETS, presets_of
    from labml_nn.transformers.feedback.algorithmic import EXPERIMENTS, Config
    assert set(presets_of("algorithmic")) == {"feedback-algorithmic", "xl-algorithmic"}
    assert (PRESETS["feedback-algorithmic"].paper_accuracy, PRESETS["xl-algorithmic"].paper_accuracy) == (0.991, 0.337)
    num_tokens = len(vocabulary(3))
    for name, model, depth in (("feedback-algorithmic", "feedback", 4), ("xl-algorithmic", "xl", 8)):
        c = parse_config(Config, ["--preset", name], presets=presets_of("algorithmic"))
        assert (c.model, c.depth) == (model, depth)
        assert (c.statements, c.variables, c.train_programs, c.valid_programs, c.test_programs) == (100, 3, 10_000, 1_000, 1_000)
        assert (c.dim, c.dim * c.ff_mult, c.heads, c.dim_head, c.mem_len, c.seq_len) == (256, 1024, 4, 64, 100, 64)
        assert (c.attn_dropout, c.ff_dropout, c.weight_decay) == (0.2, 0.2, 0.0)
        assert (c.lr, c.warmup_steps, c.min_lr_ratio, c.grad_clip, c.batch_size, c.steps) == (1e-4, 1000, 1.0, 0.1, 512, 50_000)
        experiment = EXPERIMENTS[c.model]
        with torch.device("meta"):
            built = experiment.model_class(**experiment.model_kwargs(c, num_tokens))
        assert len(built.layers) == depth and built.mem_len == 100
        # The parameter count is the authors' but for the differences the page's table lists: relative attention's
        # W_k,R, u and v in every layer instead of one learned key per distance, a bias on the attention's output,
        # and the Feedback memory's own norm before each layer's key/value projection.
        h, d = c.heads * c.dim_head, c.dim
        ours_only = depth * (d * h + 2 * h + d) + (depth * 2 * d if model == "feedback" else 0)
        theirs_only = c.dim_head * 100
        expected = authors_parameters(num_tokens, d, d * c.ff_mult, depth, c.heads, c.dim_head, 100, model == "feedback")
        assert sum(p.numel() for p in built.parameters()) == expected + ours_only - theirs_only
    with torch.device("meta"):
        feedback = EXPERIMENTS["feedback"].model_class(**EXPERIMENTS["feedback"].model_kwargs(
            parse_config(Config, ["--preset", "feedback-algorithmic"], presets=presets_of("algorithmic")), num_tokens))
    # The exact token-by-token model, with one key/value projection of the memory per layer (no --share-proj-kv).
    assert feedback.window == 1 and not feedback.shared_kv and len(feedback.memory_kv) == 4


@pytest.mark.checks("labml_nn/transformers/feedback/algorithmic.py")
def test_the_options_give_the_task_and_the_model(capsys):
    from labml_nn.experiments.config import UsageError, parse_config
    from labml_nn.transformers.feedback.algorithmic import EXPERIMENTS, Config, task_data
    c = parse_config(Config, ["--model", "xl", "--statements", "5", "--train-programs", "3", "--valid-programs", "2",
                              "--test-programs", "2", "--dim", "16", "--depth", "2", "--heads", "2", "--dim-head", "8",
                              "--mem-len", "8", "--task-seed", "4"])
    data = task_data(c)
    assert torch.equal(data.test, load_algorithmic(seed=4, statements=5, train_programs=1, valid_programs=1,
                                                   test_programs=2).test)
    model = EXPERIMENTS["xl"].model_class(**EXPERIMENTS["xl"].model_kwargs(c, len(data.vocab)))
    assert model(data.train[None, :16]).shape == (1, 16, len(data.vocab))
    with pytest.raises(UsageError, match="--model 'lstm': expected one of feedback, xl"):
        parse_config(Config, ["--model", "lstm"])
    # --help lists the presets with the accuracies the paper reports.
    assert "feedback-algorithmic: 99.1% test accuracy in the paper" in EXPERIMENTS["feedback"].help()
