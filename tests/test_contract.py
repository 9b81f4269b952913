"""
The user-facing contract every memory transformer follows (labml_nn/transformers/lm.py): bad input gets
an error that names what was expected, generation checks its arguments, keeps the shape and dtype of
its output and restores the model's mode. One test per claim, run against all three models.
"""
import re

import pytest
import torch

from labml_nn.transformers.compressive import CompressiveTransformer
from labml_nn.transformers.feedback import FeedbackTransformer
from labml_nn.transformers.xl import TransformerXL

NUM_TOKENS = 19
COMMON = dict(num_tokens=NUM_TOKENS, dim=16, depth=2, heads=2)
MODELS = {
    "xl": lambda: TransformerXL(mem_len=6, **COMMON),
    "compressive": lambda: CompressiveTransformer(mem_len=6, cmem_len=4, cmem_ratio=2, **COMMON),
    "feedback": lambda: FeedbackTransformer(mem_len=6, **COMMON),
    "feedback, windows": lambda: FeedbackTransformer(mem_len=6, seq_len=3, **COMMON),
}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    torch.manual_seed(0)
    return MODELS[request.param]().eval()


@pytest.mark.parametrize("bad,err,words", [
    (torch.tensor([[1, 2, NUM_TOKENS]]), ValueError, f"[0, {NUM_TOKENS})"),
    (torch.tensor([[-1, 2]]), ValueError, f"[0, {NUM_TOKENS})"),
    (torch.rand(2, 3), TypeError, "integer"),
    (torch.tensor([1, 2, 3]), ValueError, "[batch_size, seq_len]"),
    (torch.zeros(1, 2, 3, dtype=torch.long), ValueError, "[batch_size, seq_len]"),
    (torch.zeros(2, 0, dtype=torch.long), ValueError, "at least one"),
    ([[1, 2]], TypeError, "torch.Tensor"),
])
def test_bad_tokens_get_clear_errors(model, bad, err, words):
    with pytest.raises(err, match=re.escape(words)):
        model(bad)
    with pytest.raises(err, match=re.escape(words)):
        model.generate(bad, 2)


def test_bad_generate_arguments(model):
    p = torch.zeros(1, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(p, 3, temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(p, 3, top_k=0)
    with pytest.raises(ValueError, match="length"):
        model.generate(p, -1)


def test_generate_returns_the_prompt_and_new_tokens_and_restores_the_mode(model):
    model.train()
    prompt = torch.randint(0, NUM_TOKENS, (3, 4))
    out = model.generate(prompt, length=9, temperature=0.7, top_k=3)
    assert out.shape == (3, 13) and out.dtype == torch.long
    assert torch.equal(out[:, :4], prompt)
    assert int(out.min()) >= 0 and int(out.max()) < NUM_TOKENS
    assert model.training
    assert torch.equal(model.generate(prompt, length=0), prompt)


def test_memory_is_detached_and_carries_over(model):
    x = torch.randint(0, NUM_TOKENS, (2, 5))
    _, memory = model.train()(x, return_memory=True)
    tensors = [t for t in torch.utils._pytree.tree_leaves(memory) if isinstance(t, torch.Tensor)]
    assert tensors and not any(t.requires_grad for t in tensors)
    logits = model(x, memory=memory)
    assert logits.shape == (2, 5, NUM_TOKENS)
