"""
One implementation per idea: the attention a reader studies on a paper page is the attention that runs.
The attention weights are computed on the paper pages, and only the named fast pages compute them again
in their own way; nothing in the package calls PyTorch's private APIs.
"""
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labml_nn"

pytestmark = pytest.mark.checks("labml_nn/transformers/mha.py", "labml_nn/transformers/xl/generation.py",
                                "labml_nn/transformers/feedback/step.py")

# Where attention weights over keys are computed: the paper pages, and the pages named as fast forms.
PAPER_PAGES = {"transformers/mha.py",                # every model's attention (XL's relative scores feed it)
               "transformers/compressive/__init__.py"}  # the attention-reconstruction loss of the paper
FAST_PAGES = {"transformers/xl/generation.py",       # cached generation, fused attention
              "transformers/feedback/step.py"}       # the exact model's hand-written step

ATTENTION = re.compile(r"\.softmax\(dim=-1\)|scaled_dot_product_attention\(")


def sources():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def code_lines(path: Path):
    """The lines of a source that are code (not comments), with their numbers."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.lstrip().startswith("#"):
            yield number, line


def test_no_source_calls_private_torch_apis():
    private = re.compile(r"torch\._C\b|torch\.ops\.|\baten::|torch\._dynamo\.|torch\._inductor\.")
    found = [f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}" for p in sources() for n, line in code_lines(p)
             if private.search(line)]
    assert found == []


def test_attention_weights_are_computed_only_on_the_paper_pages_and_the_named_fast_pages():
    found = {}
    for p in sources():
        for n, line in code_lines(p):
            # The Feedback Transformer's layer weights and the pictures' read-outs are softmaxes too, but not
            # attention over keys.
            if ATTENTION.search(line) and "layer_weights" not in line and "/experiments/" not in str(p):
                found.setdefault(str(p.relative_to(PACKAGE)), []).append(n)
    assert set(found) <= PAPER_PAGES | FAST_PAGES, found
    # ... and each of them really computes it (the lists above are not stale).
    assert set(found) == PAPER_PAGES | FAST_PAGES


def test_the_fast_pages_say_what_they_are_the_fast_form_of():
    for page in sorted(FAST_PAGES):
        intro = (PACKAGE / page).read_text()[:3000].lower()
        assert "fast" in intro or "faster" in intro, page
