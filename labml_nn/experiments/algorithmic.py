r"""
---
title: The code-execution task
summary: Tiny programs over three variables whose printed values a model must predict, the Feedback Transformer paper's algorithmic task, generated from a seed; its word vocabulary, its streams of tokens and targets, and its accuracy.
---

# The code-execution task

Fan et al. ([Addressing Some Limitations of Transformers with Feedback Memory](https://arxiv.org/abs/2002.09402))
argue that a transformer cannot keep a *state* up to date: layer $l$ of a token sees only layer
$l - 1$ of the tokens before it, so a chain of updates, each depending on the last, needs as many
layers as the chain is long. They test it with a task that is nothing but state: a model reads a
program, one word at a time, and must say what each `print` prints.

```
x = 7 ; y = 3 ; x ++ ; print x ; if x > y : y -- ; z = 10 ; print y ; if y < 5 : z -- ; print z ; END
```

Here the model must answer `8` at the `;` of `print x ;`, then `2`, then `9`. Every other position has
no target: the loss and the accuracy count the printed values only. The value of a variable is its
assignment followed by every increment and decrement since, and each `if` is decided by the values of
that moment: the model has to run the program. In the authors' released results the 4-layer Feedback
Transformer answers 99.1% of the test prints correctly and an 8-layer Transformer 33.7%.

This page writes the task from its description in the paper and in the authors' released generator
(`data/gen_data_algo_seq.py` of [facebookresearch/transformer-sequential](https://github.com/facebookresearch/transformer-sequential)):
how a program is drawn, its vocabulary, how the programs become streams a memory transformer reads,
and the accuracy. The [experiment](../transformers/feedback/algorithmic.html) trains the two models on it.

## A program

A program is $S$ statements (100 in the paper) followed by the word `END`, over 3 variables (`x`, `y`,
`z`) whose values stay within $1 \dots 10$. Each statement is one of five kinds:

| kind | example | what it does |
|---|---|---|
| assignment | `x = 7 ;` | gives a variable that has no value yet a value drawn from $1 \dots 10$ |
| increment | `x ++ ;` | adds one (never beyond 10) |
| decrement | `x -- ;` | subtracts one (never below 1) |
| print | `print x ;` | the target: the value of `x`, at the `;` |
| condition | `if x < y : z ++ ;` | runs its statement when the comparison holds |

A condition compares a variable with another variable or with a constant from $1 \dots 10$, with `<` or
`>`, each of the two halves of each choice equally likely; its statement is an assignment, an increment
or a decrement (no `print`, no second `if`: one level of nesting). Its statement is written whether or
not it runs, so the model must evaluate the comparison to know whether it happened.

**"Equally likely"** is meant as the authors' generator means it: a statement is drawn by picking one
of the five kinds uniformly, then its variables and numbers uniformly, and the draw is thrown away and
repeated if the statement cannot be written in the current state: an increment of a 10, a decrement
of a 1, a use of a variable that has no value yet, an assignment when every variable already has one,
a comparison of two variables when only one has a value. So the kinds are *drawn* equally often, not
*written* equally often: the first statement is always an assignment, and once every variable has a
value (which an untaken condition's assignment does not give), assignments stop. The statement of
a condition is drawn by the same rule, against the state it would run in, whether or not it runs.

## Tokens and targets

The words are the tokens: a program of $S$ statements is about $4.4\,S$ of them. The vocabulary is
fixed, not read from the data: the ten words of the statements' syntax, the variables and the values,
a [word vocabulary](data.html) (its tokens joined by spaces when decoded). The target of a position is
the id of a value word, or `IGNORE` ($-100$, PyTorch's `ignore_index`) where nothing is asked. In the
authors' data the targets are a second file of the same words with `_` for "no target" (`_ _ 8` under
`print x ;`), read into the same vocabulary and masked out of the loss; here `IGNORE` does that directly,
and the model's output still ranges over the whole vocabulary, as the authors' does. The target of a
position belongs to that position, not to the next one as in language modelling: at the `;` the model
has read the whole statement and must give its value.

## Streams

The authors treat a split as one text: the programs one after the other, separated only by their
`END`, cut into $B$ contiguous streams (one per row of a batch, each a slice of the concatenation that
starts and ends wherever it falls, mid-program included), which the model reads 64 tokens per step with
its memory carried from step to step. A stream is a long computation whose programs start after each
`END`; nothing tells the model where the memory of the last program stops mattering except the `END`.
`load_algorithmic` returns the three splits as that concatenation, a [`TokenData`](data.html#TokenData)
with the tokens and the targets of each split as two aligned 1-D tensors, and the trainer's
[stream batcher](data.html) cuts them into streams the same way as it does a text. (One difference: at
the end of its streams the authors' trainer starts the next pass at a random offset below 64, the
batcher at offset 0.)

## Accuracy

Over the set $\mathcal{P}$ of positions with a target $y_t$, with $\hat{y}_t$ the model's highest
scored token at position $t$,

$$\text{accuracy} = \frac{1}{|\mathcal{P}|} \sum_{t \in \mathcal{P}} [\hat{y}_t = y_t].$$

The positions without a target take no part: a model is not credited for predicting nothing where
nothing is asked. This is the accuracy the [training loop](trainer.html#evaluate_streams) reports for
any task with targets: it reads the held-out streams window by window, with the memory carried, adds
up the correct predictions and the counted targets of every window and divides once at the end; the
training loss is the cross-entropy over the same positions.

| symbol | meaning | code |
|---|---|---|
| $S$ | statements per program | `statements` |
| $y_t$ | the target at position $t$: a value's id, or $-100$ | `targets` |
| $\hat{y}_t$ | the model's prediction at position $t$: its largest logit ([the trainer's validation](trainer.html) computes it) | |
| $\mathcal{P}$ | the positions with a target (the `;` of each `print`) | `targets != IGNORE` |
"""

import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from labml_nn.experiments.data import IGNORE, TokenData, Vocabulary

# The variables, in the order they are offered: the paper's 3-variable task uses the first three,
# its 5-variable task all five (the authors' names).
VARIABLE_NAMES = ("x", "y", "z", "p", "r")
# The values a variable can hold and a constant can be.
MIN_VALUE, MAX_VALUE = 1, 10
# The five kinds of statement, drawn uniformly.
KINDS = ("=", "++", "--", "if", "print")
# The word that ends a program.
END = "END"
# The splits and their sizes in the paper: 10,000 training programs, 1,000 each for validation and test.
SPLITS = ("train", "valid", "test")
PAPER_PROGRAMS = {"train": 10_000, "valid": 1_000, "test": 1_000}

# The state of a program: the value of each variable that has one.
State = Dict[str, int]


# ## Drawing a statement

@dataclass(frozen=True)
class Statement:
    """A statement's words, the state after it, and, for a `print`, the value printed."""
    words: Tuple[str, ...]
    state: State
    printed: Optional[int] = None


def draw_statement(rng: random.Random, state: State, variables: Sequence[str], nested: bool = False
                   ) -> Optional[Statement]:
    r"""
    One draw: a kind of statement, uniformly, then its variables and numbers. `None` when the draw
    cannot be written in `state` (the caller draws again); `state` is never changed, the statement
    carries the state after it. `nested` is the statement of a condition, which can be neither a
    `print` nor another condition.
    """
    kind = rng.choice(KINDS)
    assigned = [v for v in variables if v in state]
    if kind == "=":
        free = [v for v in variables if v not in state]
        if not free:
            return None
        var = rng.choice(free)
        value = rng.randint(MIN_VALUE, MAX_VALUE)
        return Statement((var, "=", str(value), ";"), {**state, var: value})
    # Every other kind reads a variable that has a value.
    if not assigned:
        return None
    if kind in ("++", "--"):
        var = rng.choice(assigned)
        value = state[var] + (1 if kind == "++" else -1)
        if not MIN_VALUE <= value <= MAX_VALUE:
            return None
        return Statement((var, kind, ";"), {**state, var: value})
    if nested:
        return None
    if kind == "print":
        var = rng.choice(assigned)
        return Statement(("print", var, ";"), state, printed=state[var])
    # A condition: half of them compare two variables, half a variable and a constant.
    if rng.random() < 0.5:
        if len(assigned) < 2:
            return None
        var, other = rng.sample(assigned, 2)
        bound, operand = state[other], other
    else:
        var = rng.choice(assigned)
        bound = rng.randint(MIN_VALUE, MAX_VALUE)
        operand = str(bound)
    comparison = rng.choice(("<", ">"))
    holds = state[var] < bound if comparison == "<" else state[var] > bound
    # The statement it guards is drawn against the state it would run in; it changes the state
    # only if the comparison holds.
    body = next_statement(rng, state, variables, nested=True)
    return Statement(("if", var, comparison, operand, ":") + body.words, body.state if holds else state)


def next_statement(rng: random.Random, state: State, variables: Sequence[str], nested: bool = False) -> Statement:
    """Draw until a statement can be written: the authors' "equally likely" (see above)."""
    while True:
        statement = draw_statement(rng, state, variables, nested)
        if statement is not None:
            return statement


# ## Programs

@dataclass(frozen=True)
class Program:
    r"""
    A program's words, `END` included, and the target of each: the printed value (as a word) at
    the `;` of each `print`, `None` elsewhere. `text` is the program as the authors' files hold it,
    its words joined by spaces.
    """
    words: Tuple[str, ...]
    targets: Tuple[Optional[str], ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def check_task(statements: int, variables: int) -> None:
    """A clear error for a task that cannot be generated."""
    if not isinstance(statements, int) or statements < 1:
        raise ValueError(f"statements must be an int >= 1, got {statements!r}")
    if not isinstance(variables, int) or not 1 <= variables <= len(VARIABLE_NAMES):
        raise ValueError(f"variables must be an int in 1..{len(VARIABLE_NAMES)}, got {variables!r}")


def generate_program(rng: random.Random, statements: int = 100, variables: int = 3) -> Program:
    """One program of `statements` statements over the first `variables` variable names, then `END`."""
    check_task(statements, variables)
    names = VARIABLE_NAMES[:variables]
    state: State = {}
    words: List[str] = []
    targets: List[Optional[str]] = []
    for _ in range(statements):
        statement = next_statement(rng, state, names)
        state = statement.state
        words.extend(statement.words)
        targets.extend([None] * len(statement.words))
        if statement.printed is not None:
            # The answer belongs to the statement's last word, its `;`.
            targets[-1] = str(statement.printed)
    words.append(END)
    targets.append(None)
    return Program(tuple(words), tuple(targets))


def split_rng(seed: int, split: str) -> random.Random:
    r"""
    The random number generator of one split: its own `random.Random`, seeded from the task's seed
    and the split's name, so that the programs depend on nothing else: not on the global random state,
    not on the other splits, not on how many programs are asked for (the first $k$ programs of a split
    are the same whatever the count).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    # A string seed is hashed (SHA-512) by `random.Random`: the same on every machine and every run.
    return random.Random(f"labml_nn.algorithmic/{seed}/{split}")


def generate_programs(count: int, split: str = "train", seed: int = 0, statements: int = 100,
                      variables: int = 3) -> List[Program]:
    """`count` programs of one split, the same for the same arguments."""
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an int >= 0, got {count!r}")
    rng = split_rng(seed, split)
    return [generate_program(rng, statements, variables) for _ in range(count)]


# ## The vocabulary

def vocabulary(variables: int = 3) -> Vocabulary:
    """
    The words, in the order of their ids: `END`, the syntax, the variables, then the values `1` to
    `10`. Fixed, so that a checkpoint's vocabulary is the task's, whatever programs were drawn; decoding
    joins the words with spaces.
    """
    check_task(1, variables)
    syntax = [END, ";", ":", "=", "++", "--", "<", ">", "if", "print"]
    values = [str(v) for v in range(MIN_VALUE, MAX_VALUE + 1)]
    return Vocabulary(syntax + list(VARIABLE_NAMES[:variables]) + values, separator=" ")


def encode(programs: Sequence[Program], vocab: Vocabulary) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""
    The programs one after the other as two aligned `LongTensor`s, `[N]` each: the token ids, and the
    target ids with `IGNORE` where there is no target.
    """
    tokens: List[int] = []
    targets: List[int] = []
    for program in programs:
        for word, target in zip(program.words, program.targets):
            missing = word if word not in vocab.stoi else target if target is not None and target not in vocab.stoi else None
            if missing is not None:
                raise ValueError(f"the word {missing!r} is not in the vocabulary: was it built for fewer variables?")
            tokens.append(vocab.stoi[word])
            targets.append(IGNORE if target is None else vocab.stoi[target])
    return torch.tensor(tokens, dtype=torch.long), torch.tensor(targets, dtype=torch.long)


# ## The data of a run

def load_algorithmic(seed: int = 0, statements: int = 100, variables: int = 3,
                     train_programs: int = PAPER_PROGRAMS["train"], valid_programs: int = PAPER_PROGRAMS["valid"],
                     test_programs: int = PAPER_PROGRAMS["test"]) -> TokenData:
    """
    The task as the training loop reads it: the vocabulary, and for each split the concatenated programs'
    token ids and targets, two aligned `LongTensor`s `[N]` (`train` and `train_targets`, ...). Generated
    anew (the paper's sizes by default: a few seconds). The task's `seed` is the data's alone: a run's
    seed (its initialisation, its dropout) can change while the programs stay the same.
    """
    vocab = vocabulary(variables)
    counts = {"train": train_programs, "valid": valid_programs, "test": test_programs}
    parts = {}
    for split in SPLITS:
        parts[split], parts[f"{split}_targets"] = encode(
            generate_programs(counts[split], split, seed, statements, variables), vocab)
    return TokenData(vocab=vocab, **parts)
