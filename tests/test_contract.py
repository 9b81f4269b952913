"""
The user-facing contract every memory transformer follows (labml_nn/transformers/lm.py, the shell they
share): bad input gets an error that names what was expected; the memory is detached and carries over;
later tokens never change earlier logits; every parameter trains with the memory carried; generation checks
its arguments, keeps the shape and dtype of its output, restores the model's mode, picks the tokens full
forward passes pick, and its fast page picks the same tokens as the model's own forward calls; a long prompt
is read segment by segment; model files load back. One test per claim, run against every model (and the
variants whose code paths differ).
"""
import json
import re

import pytest
import torch

import labml_nn

from conftest import greedy_by_full_forwards, randomise_biases
from labml_nn.transformers.compressive import CompressiveTransformer
from labml_nn.transformers.feedback import FeedbackTransformer
from labml_nn.transformers.xl import TransformerXL

pytestmark = pytest.mark.checks("labml_nn/transformers/lm.py", "labml_nn/__init__.py",
                                "labml_nn/transformers/xl/__init__.py", "labml_nn/transformers/compressive/__init__.py",
                                "labml_nn/transformers/feedback/__init__.py")

NUM_TOKENS = 19
COMMON = dict(num_tokens=NUM_TOKENS, dim=16, depth=2, heads=2)
MODELS = {
    "xl": lambda: TransformerXL(mem_len=6, **COMMON),
    "xl, no memory": lambda: TransformerXL(mem_len=0, **COMMON),
    "xl, relu": lambda: TransformerXL(mem_len=6, activation="relu", **COMMON),
    "compressive": lambda: CompressiveTransformer(mem_len=6, cmem_len=4, compression_rate=2, **COMMON),
    "compressive, no compressed memory": lambda: CompressiveTransformer(mem_len=6, cmem_len=0, **COMMON),
    "compressive, relu": lambda: CompressiveTransformer(mem_len=6, cmem_len=4, compression_rate=2, activation="relu",
                                                        **COMMON),
    "feedback": lambda: FeedbackTransformer(mem_len=6, **COMMON),
    "feedback, per-layer KV": lambda: FeedbackTransformer(mem_len=6, shared_kv=False, **COMMON),
    "feedback, autograd step": lambda: FeedbackTransformer(mem_len=6, step="autograd", **COMMON),
    "feedback, windows": lambda: FeedbackTransformer(mem_len=6, window=3, **COMMON),
}
# The model classes, with the arguments each needs besides the common ones.
CLASSES = {TransformerXL: dict(mem_len=4), CompressiveTransformer: dict(mem_len=4, cmem_len=2),
           FeedbackTransformer: dict(mem_len=4)}


@pytest.fixture(params=sorted(MODELS))
def name(request):
    return request.param


@pytest.fixture
def model(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    # Non-zero biases and norms (and Feedback layer weights), so that every term of a model is exercised.
    randomise_biases(model)
    if isinstance(model, FeedbackTransformer):
        with torch.no_grad():
            model.layer_weights.normal_()
    return model


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


@pytest.mark.parametrize("name", [n for n in sorted(MODELS) if n != "xl, no memory"])
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


def test_a_memory_for_another_batch_size_is_a_clear_error(model):
    _, memory = model(torch.randint(0, NUM_TOKENS, (2, 4)), return_memory=True)
    with pytest.raises(ValueError, match=re.escape("[batch_size=3")):
        model(torch.randint(0, NUM_TOKENS, (3, 4)), memory=memory)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_constructor_errors_name_the_argument(cls):
    with pytest.raises(ValueError, match="divisible"):
        cls(num_tokens=5, dim=10, depth=1, heads=3, **CLASSES[cls])
    with pytest.raises(ValueError, match="mem_len"):
        cls(num_tokens=5, dim=8, depth=1, heads=2, **{**CLASSES[cls], "mem_len": -1})


def test_causality_within_and_across_segments(model):
    # Later tokens never change earlier logits: within one call, and through the memory across calls.
    x = torch.randint(0, NUM_TOKENS, (2, 12))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 5) % NUM_TOKENS
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=0)
    assert not torch.allclose(a[:, 7:], b[:, 7:])
    first_x, memory_x = model(x[:, :6], return_memory=True)
    first_y, memory_y = model(y[:, :6], return_memory=True)
    torch.testing.assert_close(first_x, first_y, rtol=0, atol=0)
    torch.testing.assert_close(model(x[:, 6:], memory=memory_x)[:, 0], model(y[:, 6:], memory=memory_y)[:, 0],
                               rtol=0, atol=0)


def training_outputs(model, x, memory):
    """Logits, the new memory and the auxiliary loss of a training step (0 for a model without one)."""
    if isinstance(model, CompressiveTransformer):
        return model(x, memory=memory, return_memory=True, return_aux_loss=True)
    return (*model(x, memory=memory, return_memory=True), 0.0)


def test_every_parameter_trains_with_the_memory_carried(model):
    # (Without a compressed memory the compression functions are never used.)
    without_cmem = isinstance(model, CompressiveTransformer) and model.cmem_len == 0
    unused = {id(p) for p in model.compression_parameters()} if without_cmem else set()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randint(0, NUM_TOKENS, (2, 33))
    memory = None
    for s in range(4):
        x, y = data[:, s * 8:(s + 1) * 8], data[:, s * 8 + 1:(s + 1) * 8 + 1]
        logits, memory, aux = training_outputs(model, x, memory)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, NUM_TOKENS), y.reshape(-1)) + aux
        opt.zero_grad()
        # Would fail with "backward through the graph a second time" if the memory kept its graph.
        loss.backward()
        opt.step()
    # By the last segment every memory is full and everything has been evicted that will be: every parameter,
    # the compression functions' included, has a gradient.
    for parameter_name, p in model.named_parameters():
        assert id(p) in unused or (p.grad is not None and p.grad.abs().sum() > 0), parameter_name


@pytest.mark.parametrize("name", [n for n in sorted(MODELS) if n != "xl, no memory"])
def test_greedy_generation_picks_what_full_forward_passes_pick(model):
    # The prompt and the tokens read after it fit in the memory (and the windows start where a full pass's
    # do), so generating with the memory and recomputing the whole sequence for every token agree.
    model.double()
    prompt = torch.randint(0, NUM_TOKENS, (2, 3))
    out = model.generate(prompt, length=4, top_k=1)
    assert out.shape == (2, 7)
    assert torch.equal(out, greedy_by_full_forwards(model, prompt, 4))


@pytest.mark.parametrize("name", [n for n in sorted(MODELS) if n != "feedback, windows"])
def test_the_fast_page_picks_the_tokens_the_models_own_forward_calls_pick(model):
    # Well beyond the memory (evictions and compressions included), sampling with the same seed. (A windowed
    # Feedback Transformer called one token at a time runs windows of one, another computation: its fast
    # page is checked against full forward passes above.)
    model.double()
    prompt = torch.randint(0, NUM_TOKENS, (3, 5))
    torch.manual_seed(1)
    cached = model.generate(prompt, length=17, temperature=0.9, top_k=5)
    torch.manual_seed(1)
    assert torch.equal(cached, model.generate(prompt, length=17, temperature=0.9, top_k=5, cached=False))


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
# segment as long as the memory (the whole prompt without memory); the Feedback Transformer attends to its
# memory vectors only.
REACH = {"xl": 6 + 6, "xl, no memory": 200, "xl, relu": 6 + 6, "compressive": 6 + 1 + 4 + 6,
         "compressive, no compressed memory": 6 + 6, "compressive, relu": 6 + 1 + 4 + 6,
         "feedback": 6, "feedback, per-layer KV": 6, "feedback, autograd step": 6, "feedback, windows": 6 + 3 - 1}


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
