"""Tests for the code-execution task (`labml_nn.experiments.algorithmic`): the generator, its labels, its
streams and the accuracy.

The labels are checked against an evaluation of the program *text* written here, independently of the
generator: the text is translated to Python source and run with `exec`.
"""
import inspect
import random
from collections import Counter
from typing import Dict, List, Tuple

import pytest
import torch

from labml_nn.experiments import algorithmic as task
from labml_nn.experiments.algorithmic import (IGNORE_INDEX, accuracy, count_correct, encode, generate_program,
                                              generate_programs, load_algorithmic, vocabulary)

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
    for split in ("train", "valid", "test"):
        assert all(torch.equal(x, y) for x, y in zip(getattr(a, split), getattr(b, split)))
    c = load_algorithmic(seed=8, statements=10, train_programs=20, valid_programs=5, test_programs=5)
    assert not torch.equal(a.train[0], c.train[0])


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
    assert vocab == vocabulary(3) and len(set(vocab)) == len(vocab)
    for split, count in (("train", 12), ("valid", 3), ("test", 4)):
        tokens, targets = getattr(data, split)
        assert tokens.dtype == targets.dtype == torch.long and tokens.shape == targets.shape and tokens.dim() == 1
        programs = generate_programs(count, split, seed=2, statements=15)
        # The trainer decodes with a space between words: that gives back the programs' text.
        assert " ".join(vocab[i] for i in tokens.tolist()) == " ".join(p.text for p in programs)
        assert (tokens == vocab.index("END")).sum() == count
        # Targets: a value's id at the `;` of a print, -100 everywhere else.
        expected = [t for p in programs for t in p.targets]
        assert [None if t == IGNORE_INDEX else vocab[t] for t in targets.tolist()] == expected
        counted = targets != IGNORE_INDEX
        assert counted.any() and (tokens[counted] == vocab.index(";")).all()
        assert set(vocab[t] for t in targets[counted].tolist()) <= {str(v) for v in range(1, 11)}


def test_the_defaults_are_the_papers_task():
    defaults = {name: p.default for name, p in inspect.signature(load_algorithmic).parameters.items()}
    assert (defaults["statements"], defaults["variables"]) == (100, 3)
    assert (defaults["train_programs"], defaults["valid_programs"], defaults["test_programs"]) == (10_000, 1_000, 1_000)
    assert inspect.signature(generate_program).parameters["statements"].default == 100


def test_a_word_outside_the_vocabulary_is_a_clear_error():
    programs = generate_programs(2, "train", seed=0, statements=100, variables=5)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        encode(programs, vocabulary(3))


# ## Accuracy

def test_accuracy_counts_only_the_positions_with_a_target():
    targets = torch.tensor([[IGNORE_INDEX, 5, IGNORE_INDEX, 7],
                            [3, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    # Wrong everywhere without a target, right at 5 and 3, wrong at 7.
    predictions = torch.tensor([[0, 5, 1, 2],
                                [3, 9, 9, 9]])
    assert count_correct(predictions, targets) == (2, 3)
    assert accuracy(predictions, targets) == pytest.approx(2 / 3)
    # Logits give the same through their argmax.
    logits = torch.nn.functional.one_hot(predictions, 12).float() * 4 + 0.1 * torch.randn(2, 4, 12)
    assert accuracy(logits, targets) == pytest.approx(2 / 3)
    # Getting the positions without a target right changes nothing.
    fixed = predictions.clone()
    fixed[targets == IGNORE_INDEX] = 11
    assert accuracy(fixed, targets) == pytest.approx(2 / 3)


def test_accuracy_of_a_perfect_model_on_generated_data_is_one():
    data = load_algorithmic(seed=0, statements=30, train_programs=4, valid_programs=1, test_programs=1)
    tokens, targets = data.train
    # A "model" that reads the answers: the targets themselves where there is one, garbage elsewhere.
    predictions = torch.where(targets == IGNORE_INDEX, tokens, targets)
    assert accuracy(predictions, targets) == 1.0
    assert accuracy(torch.zeros_like(targets), targets) == 0.0  # id 0 is END, never a value


def test_accuracy_errors_are_clear():
    targets = torch.tensor([1, IGNORE_INDEX])
    with pytest.raises(ValueError, match="no position has a target"):
        accuracy(torch.tensor([1, 2]), torch.tensor([IGNORE_INDEX, IGNORE_INDEX]))
    with pytest.raises(ValueError, match=r"expected logits \[..., num_tokens\]"):
        accuracy(torch.zeros(3, 5), targets)
    with pytest.raises(TypeError, match="integer predictions"):
        accuracy(torch.tensor([1.0, 2.0]), targets)
    with pytest.raises(TypeError, match="targets must be integer ids"):
        accuracy(torch.tensor([1, 2]), targets.float())



# ## The experiment and its presets

@pytest.mark.checks("labml_nn/transformers/feedback/algorithmic.py", "labml_nn/experiments/presets.py")
def test_the_presets_are_the_authors_two_models():
    from labml_nn.experiments.config import parse_config
    from labml_nn.experiments.presets import PRESETS, presets_of
    from labml_nn.transformers.feedback import FeedbackTransformer
    from labml_nn.transformers.feedback.algorithmic import Config, build_model
    from labml_nn.transformers.xl import TransformerXL
    assert set(presets_of("algorithmic")) == {"feedback-algorithmic", "xl-algorithmic"}
    assert (PRESETS["feedback-algorithmic"].paper_accuracy, PRESETS["xl-algorithmic"].paper_accuracy) == (0.991, 0.337)
    built = {}
    for name in presets_of("algorithmic"):
        c = parse_config(Config, ["--preset", name], presets=presets_of("algorithmic"))
        assert (c.statements, c.variables, c.train_programs, c.valid_programs, c.test_programs) == (100, 3, 10_000, 1_000, 1_000)
        assert (c.dim, c.heads, c.dim_head, c.mem_len, c.seq_len, c.batch_size) == (256, 4, 64, 100, 64, 512)
        assert (c.lr, c.warmup_steps, c.min_lr_ratio, c.grad_clip, c.steps) == (1e-4, 1000, 1.0, 0.1, 50_000)
        with torch.device("meta"):
            built[name] = build_model(c, num_tokens=len(vocabulary(c.variables)))
    feedback, xl = built["feedback-algorithmic"], built["xl-algorithmic"]
    assert isinstance(feedback, FeedbackTransformer) and isinstance(xl, TransformerXL)
    assert (feedback.depth, xl.depth) == (4, 8)
    assert (feedback.mem_len, xl.mem_len, feedback.seq_len, feedback.shared_kv) == (100, 100, 1, False)
    assert len(feedback.memory_kv) == 4  # one key/value projection per layer, as in the authors' script


@pytest.mark.checks("labml_nn/transformers/feedback/algorithmic.py")
def test_the_experiment_options_give_the_task_and_the_model():
    from labml_nn.experiments.config import UsageError, parse_config
    from labml_nn.transformers.feedback.algorithmic import Config, build_model, task_data
    c = parse_config(Config, ["--model", "xl", "--statements", "5", "--train-programs", "3", "--valid-programs", "2",
                              "--test-programs", "2", "--dim", "16", "--depth", "2", "--heads", "2", "--dim-head", "8",
                              "--mem-len", "8", "--task-seed", "4"])
    data = task_data(c)
    assert torch.equal(data.test[0], load_algorithmic(seed=4, statements=5, train_programs=1, valid_programs=1,
                                                      test_programs=2).test[0])
    model = build_model(c, len(data.vocab))
    logits = model(data.train[0][None, :16])
    assert logits.shape == (1, 16, len(data.vocab))
    with pytest.raises(UsageError, match="--model 'lstm': expected one of feedback, xl"):
        parse_config(Config, ["--model", "lstm"])
