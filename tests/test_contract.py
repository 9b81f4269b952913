"""
The user-facing contract every memory transformer follows (labml_nn/transformers/lm.py): bad input gets
an error that names what was expected, generation checks its arguments, keeps the shape and dtype of
its output and restores the model's mode. One test per claim, run against all three models.
"""
import json
import re

import pytest
import torch

import labml_nn

from labml_nn.transformers.compressive import CompressiveTransformer
from labml_nn.transformers.feedback import FeedbackTransformer
from labml_nn.transformers.xl import TransformerXL

pytestmark = pytest.mark.checks("labml_nn/transformers/lm.py", "labml_nn/__init__.py")

NUM_TOKENS = 19
COMMON = dict(num_tokens=NUM_TOKENS, dim=16, depth=2, heads=2)
MODELS = {
    "xl": lambda: TransformerXL(mem_len=6, **COMMON),
    "compressive": lambda: CompressiveTransformer(mem_len=6, cmem_len=4, compression_rate=2, **COMMON),
    "feedback": lambda: FeedbackTransformer(mem_len=6, **COMMON),
    "feedback, windows": lambda: FeedbackTransformer(mem_len=6, window=3, **COMMON),
}


@pytest.fixture(params=sorted(MODELS))
def name(request):
    return request.param


@pytest.fixture
def model(name):
    torch.manual_seed(0)
    return MODELS[name]().eval()


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


def tensors_of(memory) -> list:
    """Every tensor in a memory: one tensor, a list of them, or a named tuple of lists."""
    if isinstance(memory, torch.Tensor):
        return [memory]
    return [t for part in memory for t in tensors_of(part)]


def test_memory_is_detached_and_carries_over(model):
    x, later = torch.randint(0, NUM_TOKENS, (2, 2, 5))
    _, memory = model.train()(x, return_memory=True)
    tensors = tensors_of(memory)
    assert tensors and not any(t.requires_grad for t in tensors)
    model.eval()
    with_memory, without = model(later, memory=memory), model(later)
    assert with_memory.shape == (2, 5, NUM_TOKENS)
    # What the memory carries changes what the model predicts next.
    assert not torch.allclose(with_memory, without)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_token_ids_of_any_integer_dtype_give_the_same_logits(model, dtype):
    x = torch.randint(0, NUM_TOKENS, (2, 5))
    torch.testing.assert_close(model(x.to(dtype)), model(x), rtol=0, atol=0)
    assert model.generate(x[:, :2].to(dtype), 3, top_k=1).dtype == torch.long


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_a_memory_of_another_dtype_is_a_clear_error(model, dtype):
    x = torch.randint(0, NUM_TOKENS, (2, 5))
    _, memory = model(x, return_memory=True)
    model.to(dtype)
    with pytest.raises(TypeError, match=re.escape(f"is torch.float32 on cpu, but the model computes in {dtype}")):
        model(x, memory=memory)


@pytest.mark.checks("labml_nn/transformers/hub.py")
def test_save_pretrained_then_from_pretrained_gives_the_same_logits(model, tmp_path):
    from labml_nn.transformers.hub import load_pretrained
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # weights no constructor would make
    model.save_pretrained(tmp_path, vocab="abcdefghijklmnopqrs")
    x = torch.randint(0, NUM_TOKENS, (2, 7))
    for again in (type(model).from_pretrained(tmp_path), load_pretrained(tmp_path)):
        assert type(again) is type(model) and not again.training
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_class"] == type(model).__name__ and config["vocab"] == "abcdefghijklmnopqrs"
    assert config["labml_nn_version"] == labml_nn.__version__


@pytest.mark.checks("labml_nn/transformers/hub.py")
def test_a_model_file_of_another_class_or_with_missing_weights_is_refused(tmp_path):
    from labml_nn.transformers.hub import ModelFileError
    MODELS["xl"]().save_pretrained(tmp_path / "xl")
    with pytest.raises(ModelFileError, match="holds a TransformerXL, not a FeedbackTransformer"):
        FeedbackTransformer.from_pretrained(tmp_path / "xl")
    config = json.loads((tmp_path / "xl" / "config.json").read_text())
    config["depth"] = 3  # a layer more than the weights have
    (tmp_path / "xl" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="missing"):
        TransformerXL.from_pretrained(tmp_path / "xl")


# The most keys one query may attend to while a prompt is read segment by segment: memory (with the
# Compressive Transformer's c - 1 positions waiting to be compressed and its compressed memory), plus a
# segment as long as the memory; the Feedback Transformer attends to its memory vectors only.
REACH = {"xl": 6 + 6, "compressive": 6 + 1 + 4 + 6, "feedback": 6, "feedback, windows": 6 + 3 - 1}


@pytest.mark.parametrize("cached", [True, False])
def test_a_long_prompt_is_read_segment_by_segment_with_the_memory(name, cached, monkeypatch):
    from labml_nn.transformers.mha import MultiHeadAttention
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    keys = []
    attend = MultiHeadAttention.attend

    def counting(self, q, k, v, mask=None):
        keys.append(k.shape[-2])
        return attend(self, q, k, v, mask)

    monkeypatch.setattr(MultiHeadAttention, "attend", counting)
    model.generate(torch.randint(0, NUM_TOKENS, (2, 200)), 3, top_k=1, cached=cached)
    assert max(keys, default=0) <= REACH[name]
