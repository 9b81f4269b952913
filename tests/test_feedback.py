"""Tests that state the claims of the Feedback Transformer and key/value buffer pages."""
import re

import pytest
import torch

from labml_nn.transformers.feedback import FeedbackAttention, FeedbackLayer, FeedbackTransformer
from labml_nn.transformers.feedback.kv_buffer import ConcatHistory, KVHistory
from labml_nn.transformers.feedback.step import LayerSteps, LayerWeights, MemorySteps, StepOptions, prepare_layer
from labml_nn.transformers.one_token import SlidingKV
from labml_nn.transformers.xl.relative_mha import sinusoidal_embeddings

pytestmark = pytest.mark.checks("labml_nn/transformers/feedback/__init__.py", "labml_nn/transformers/feedback/readme.md")

NUM_TOKENS = 17


def make_model(shared_kv=True, window=1, mem_len=6, **kw):
    torch.manual_seed(0)
    args = dict(num_tokens=NUM_TOKENS, dim=16, depth=2, heads=2, mem_len=mem_len, window=window,
                shared_kv=shared_kv)
    args.update(kw)
    model = FeedbackTransformer(**args).double().eval()
    # Non-zero position biases and memory weights, so that every term of the model is exercised.
    with torch.no_grad():
        for layer in model.layers:
            layer.attn.u.normal_()
            layer.attn.v.normal_()
        model.layer_weights.normal_()
    return model


def recurrence(x: torch.Tensor, mem_len: int, buffered: bool) -> torch.Tensor:
    """A toy recurrent attention: each step's entry depends on the window the previous step read."""
    batch, steps, width = x.shape
    history = (KVHistory if buffered else ConcatHistory)(batch, 1, width, steps, mem_len, x)
    state, outputs = torch.zeros_like(x[:, 0]), []
    for t in range(steps):
        k, v = (kv[:, 0] for kv in history.append(torch.tanh(x[:, t] + state)[:, None, None]))  # [batch, P, width / 2]
        window = torch.cat([k, v.flip(-1)], -1)
        weights = torch.arange(1, window.shape[1] + 1, dtype=x.dtype)[:, None]  # distinct per position
        state = (window * weights).sum(1).sin()
        outputs.append(state)
    return torch.stack(outputs, 1)


@pytest.mark.checks("labml_nn/transformers/feedback/kv_buffer.py")
@pytest.mark.parametrize("mem_len", [3, 10])
def test_custom_backward_matches_autograd(mem_len):
    torch.manual_seed(0)
    x = torch.randn(2, 7, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: recurrence(x, mem_len, buffered=True), (x,))
    # ... and equals autograd through plain concatenation, output and gradient.
    g = torch.randn(2, 7, 4, dtype=torch.double)
    fast, slow = recurrence(x, mem_len, True), recurrence(x, mem_len, False)
    torch.testing.assert_close(fast, slow, rtol=0, atol=0)
    grad_fast, = torch.autograd.grad(fast, x, g)
    grad_slow, = torch.autograd.grad(slow, x, g)
    torch.testing.assert_close(grad_fast, grad_slow, rtol=1e-12, atol=1e-12)


@pytest.mark.checks("labml_nn/transformers/feedback/kv_buffer.py")
def test_gradient_buffer_is_clean_after_backward():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 4, dtype=torch.double, requires_grad=True)
    out = recurrence(x, 4, buffered=True).sum()
    first, = torch.autograd.grad(out, x, retain_graph=True)
    second, = torch.autograd.grad(out, x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


@pytest.mark.checks("labml_nn/transformers/feedback/kv_buffer.py")
def test_custom_function_refuses_a_second_derivative():
    x = torch.randn(2, 5, 4, dtype=torch.double, requires_grad=True)
    with pytest.raises(RuntimeError, match="second derivative"):
        torch.autograd.grad(recurrence(x, 3, buffered=True).sum(), x, create_graph=True)


@pytest.mark.checks("labml_nn/transformers/feedback/kv_buffer.py")
@pytest.mark.parametrize("shared_kv", [True, False])
@pytest.mark.parametrize("window", [1, 3])
def test_buffer_and_plain_stacking_give_identical_outputs_and_gradients(shared_kv, window):
    x = torch.randint(0, NUM_TOKENS, (2, 11))
    results = []
    for history in [KVHistory, ConcatHistory]:
        model = make_model(shared_kv, window, mem_len=5).train()
        _, memory = model(x[:, :4], return_memory=True, history=history)
        logits = model(x[:, 4:], memory=memory, history=history)
        logits.pow(2).sum().backward()
        results.append((logits, {n: p.grad for n, p in model.named_parameters()}))
    (a, grads_a), (b, grads_b) = results
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("shared_kv", [True, False])
def test_token_by_token_equals_one_call(shared_kv):
    model = make_model(shared_kv, mem_len=5)
    x = torch.randint(0, NUM_TOKENS, (3, 13))
    full = model(x)
    memory, pieces, start = None, [], 0
    for size in [1, 3, 1, 5, 2, 1]:  # chunks of any size, memory carried between them
        logits, memory = model(x[:, start:start + size], memory=memory, return_memory=True)
        pieces.append(logits)
        start += size
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=1e-10, atol=1e-10)
    assert memory.shape == (3, 5, 16)


def test_windowed_model_equals_chunked_calls_at_window_boundaries():
    model = make_model(window=3, mem_len=7)
    x = torch.randint(0, NUM_TOKENS, (2, 12))
    full = model(x)
    first, memory = model(x[:, :6], return_memory=True)
    second = model(x[:, 6:], memory=memory)
    torch.testing.assert_close(torch.cat([first, second], 1), full, rtol=1e-10, atol=1e-10)
    # Windows are an approximation: the exact model differs.
    exact = make_model(window=1, mem_len=7)
    assert not torch.allclose(exact(x), full)


@pytest.mark.parametrize("window", [1, 3])
@pytest.mark.checks("labml_nn/transformers/feedback/generation.py")
def test_long_generation_keeps_a_bounded_cache(window, monkeypatch):
    # Far more tokens than the cache holds (2 * mem_len + window - 1): the same tokens as full forwards, in
    # caches whose buffers never grow.
    model = make_model(True, window, mem_len=3)
    sizes, entries = [], []
    real_append = SlidingKV.append

    def append(self, kv):
        sizes.append(self.capacity)
        entries.append(kv.shape[2])
        return real_append(self, kv)

    monkeypatch.setattr(SlidingKV, "append", append)
    prompt = torch.randint(0, NUM_TOKENS, (2, 4))
    out = model.generate(prompt, length=20, top_k=1)
    monkeypatch.undo()
    assert max(sizes) == 2 * 3 + window - 1 and sum(entries) > 2 * max(sizes)
    seq = prompt
    for _ in range(20):
        seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, seq)


def test_position_keys_are_distances_one_to_key_len():
    attn = FeedbackAttention(dim=8, heads=2, dim_head=4, max_distance=10).double()
    r = attn.position_keys(6, torch.device('cpu'))
    R = sinusoidal_embeddings(torch.arange(6, 0, -1), 8).double()
    torch.testing.assert_close(r, attn.to_r(R).view(6, 2, 4).transpose(0, 1))


def test_one_token_step_gives_each_memory_entry_its_own_distance():
    """Scores of a one-token step against P memory entries equal the four terms with distance P - j."""
    torch.manual_seed(1)
    attn = FeedbackAttention(dim=8, heads=2, dim_head=4, max_distance=10).double()
    with torch.no_grad():
        attn.u.normal_()
        attn.v.normal_()
    P = 5
    q = torch.randn(2, 2, 1, 4, dtype=torch.double)
    k = torch.randn(2, 2, P, 4, dtype=torch.double)
    fast = attn.scores(q, k)
    W_kR = attn.to_r.weight
    position_terms = torch.empty(2, 2, P, dtype=torch.double)
    for j in range(P):
        R = sinusoidal_embeddings(torch.tensor([P - j]), 8)[0].double()
        r = (W_kR @ R).view(2, 4)
        for b in range(2):
            for h in range(2):
                position_terms[b, h, j] = (q[b, h, 0] + attn.v[h]) @ r[h]
                expected = (q[b, h, 0] + attn.u[h]) @ k[b, h, j] + position_terms[b, h, j]
                torch.testing.assert_close(fast[b, h, 0, j], expected)
    # A bias indexed by position within a one-token segment would give all keys the same term.
    assert (position_terms.max(-1).values - position_terms.min(-1).values).abs().min() > 1e-3


def test_model_output_depends_on_the_order_of_memory():
    model = make_model(mem_len=6)
    x = torch.randint(0, NUM_TOKENS, (2, 7))
    _, memory = model(x[:, :6], return_memory=True)
    step = model(x[:, 6:], memory=memory)
    assert not torch.allclose(step, model(x[:, 6:], memory=memory.flip(1)))
    # The same check is blind when positions carry no information: it would catch a same-position bias.
    with torch.no_grad():
        for layer in model.layers:
            layer.attn.to_r.weight.zero_()
    torch.testing.assert_close(model(x[:, 6:], memory=memory), model(x[:, 6:], memory=memory.flip(1)))


def test_bad_memory_gets_clear_errors():
    model = make_model()
    x = torch.randint(0, NUM_TOKENS, (2, 4))
    _, memory = model(x, return_memory=True)
    with pytest.raises(ValueError, match=re.escape("got (2, 4, 8)")):
        model(x, memory=memory[..., :8])
    with pytest.raises(TypeError, match="a per-layer memory from another model"):
        model(x, memory=[memory, memory])  # a per-layer memory, as Transformer-XL returns


def test_constructor_errors():
    with pytest.raises(ValueError, match="mem_len"):
        FeedbackTransformer(num_tokens=5, dim=8, depth=1, heads=2, mem_len=0)
    with pytest.raises(ValueError, match="window"):
        FeedbackTransformer(num_tokens=5, dim=8, depth=1, heads=2, mem_len=2, window=0)
    with pytest.raises(ValueError, match="old name of window"):
        FeedbackTransformer(num_tokens=5, dim=8, depth=1, heads=2, mem_len=2, window=2, seq_len=3)


@pytest.mark.checks("labml_nn/transformers/hub.py")
def test_a_model_file_written_before_window_was_renamed_loads_with_its_window(tmp_path):
    """Model files written when `window` was called `seq_len` hold `"seq_len"` in config.json: they load
    with that window, through `from_pretrained` and `load_pretrained` alike."""
    import json
    from labml_nn.transformers.hub import load_pretrained
    model = make_model(window=3).float()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["window"] == 3
    config["seq_len"] = config.pop("window")  # the file as it was written before the rename
    (tmp_path / "config.json").write_text(json.dumps(config))
    x = torch.randint(0, NUM_TOKENS, (2, 7))
    for again in (FeedbackTransformer.from_pretrained(tmp_path), load_pretrained(tmp_path)):
        assert again.window == 3
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


@pytest.mark.checks("labml_nn/transformers/feedback/step.py")
def test_one_token_step_equals_the_general_layer():
    torch.manual_seed(0)
    layer = FeedbackLayer(dim=16, heads=2, dim_head=8, d_ff=32, max_distance=6).double()
    with torch.no_grad():
        layer.attn.u.normal_()
        layer.attn.v.normal_()
        for norm in (layer.attn_norm, layer.ff_norm):
            norm.weight.normal_()
            norm.bias.normal_()
    x = torch.randn(3, 1, 16, dtype=torch.double, requires_grad=True)
    kv = torch.randn(3, 2, 5, 16, dtype=torch.double, requires_grad=True)
    k, v = kv.split(8, dim=-1)  # the history's layout, [batch_size, heads, P, dim_head] each
    step = LayerSteps(*prepare_layer(layer), steps=1, batch_size=3)(x[:, 0], (k, v))
    general = layer(x, (k, v))[:, 0]
    torch.testing.assert_close(step, general)
    # ... and so are the gradients, with respect to the input, the keys and values and every parameter.
    g = torch.randn_like(step)
    params = [x, kv] + list(layer.parameters())
    for a, b in zip(torch.autograd.grad(step, params, g, retain_graph=True), torch.autograd.grad(general, params, g)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(LayerSteps(*prepare_layer(layer), steps=1, batch_size=3)(x[:, 0], None),
                               layer(x, None)[:, 0])


def _small_step_inputs(P=4, batch_size=3, heads=2, dim_head=3, dim=5, d_ff=7, max_distance=6):
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, dtype=torch.double, generator=g, requires_grad=True)
    weights = LayerWeights(W_q_prime=r(dim, heads * dim_head), u_prime=r(heads * dim_head),
                           v_minus_u=r(heads * dim_head), r_t=r(heads, dim_head, max_distance),
                           W_o=r(heads * dim_head, dim), b_o=r(dim), W_1_prime=r(dim, d_ff), b_1_prime=r(d_ff),
                           W_2=r(d_ff, dim), b_2=r(dim))
    return r(batch_size, dim), r(batch_size, heads, P, dim_head), r(batch_size, heads, P, dim_head), weights


@pytest.mark.checks("labml_nn/transformers/feedback/step.py")
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("with_memory", [True, False])
def test_hand_written_step_gradient_passes_gradcheck(dropout, with_memory):
    # Every input and every weight, in float64, against finite differences, over two steps (the weight
    # gradients are sums over the steps of a pass); the dropout masks are the same in every call because
    # the generator is reseeded.
    x, k, v, weights = _small_step_inputs()

    def steps(x, k, v, *weights):
        torch.manual_seed(0)
        layer_steps = LayerSteps(LayerWeights(*weights), StepOptions(1e-5, dropout, dropout), steps=2, batch_size=3)
        first = layer_steps(x, (k, v) if with_memory else None)
        return layer_steps(first.sin(), (k * 0.5, v) if with_memory else None)

    inputs = (x, k, v, *weights) if with_memory else (x, *weights)
    f = steps if with_memory else (lambda x, *w: steps(x, None, None, *w))
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.checks("labml_nn/transformers/feedback/step.py")
def test_hand_written_step_can_run_backwards_twice_and_for_some_inputs_only():
    x, k, v, weights = _small_step_inputs()
    out = LayerSteps(weights, StepOptions(1e-5, 0.0, 0.0), steps=1, batch_size=3)(x, (k, v))
    first = torch.autograd.grad(out.sum(), [x, k, weights.W_1_prime], retain_graph=True)
    second = torch.autograd.grad(out.sum(), [x, k, weights.W_1_prime], retain_graph=True)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b)
    # A backward that does not reach the weights leaves nothing behind for the next one.
    only_x = torch.autograd.grad(out.sum(), x, retain_graph=True)[0]
    torch.testing.assert_close(only_x, first[0])
    torch.testing.assert_close(torch.autograd.grad(out.sum(), weights.W_1_prime)[0], first[2])


@pytest.mark.checks("labml_nn/transformers/feedback/step.py")
def test_hand_written_step_detects_weights_changed_before_backward():
    model = make_model()
    loss = model(torch.randint(0, NUM_TOKENS, (2, 5))).sum()
    with torch.no_grad():
        model.layers[0].attn.to_out.weight.add_(1.0)  # an optimiser step between forward and backward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.checks("labml_nn/transformers/feedback/step.py")
def test_hand_written_step_refuses_a_second_derivative():
    x, k, v, weights = _small_step_inputs()
    out = LayerSteps(weights, StepOptions(1e-5, 0.0, 0.0), steps=1, batch_size=3)(x, (k, v))
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.autograd.grad(out.sum(), x, create_graph=True)


@pytest.mark.checks("labml_nn/transformers/feedback/step.py")
@pytest.mark.parametrize("with_kv", [True, False])
def test_memory_step_gradient_passes_gradcheck(with_kv):
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, dtype=torch.double, generator=g, requires_grad=True)
    outputs, w = [r(3, 5) for _ in range(4)], r(4)
    projections = [(r(5, 2 * 2 * 3), r(2 * 2 * 3)), (r(5, 2 * 2 * 3), r(2 * 2 * 3))]

    def memory(w, *tensors):
        steps = MemorySteps(w, [tensors[:2], tensors[2:4]], heads=2, eps=1e-5, steps=2, batch_size=3)
        m, kvs = steps(list(tensors[4:]), True)
        # A second step, whose keys and values are asked for only `with_kv`.
        m2, kvs2 = steps([t * m for t in tensors[4:]], with_kv)
        return (m, m2, *kvs, *kvs2)

    assert torch.autograd.gradcheck(memory, (w, *projections[0], *projections[1], *outputs))


@pytest.mark.checks("labml_nn/transformers/feedback/step.py")
@pytest.mark.parametrize("shared_kv", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_hand_written_step_equals_the_readable_step(shared_kv, dropout):
    # The whole exact model with the hand-written step against the same model with `step="autograd"`, the
    # recurrence of the page through plain autograd: outputs, memory and every parameter's gradient, with a
    # memory passed in and a segment longer than mem_len. (With dropout the masks differ, so only the
    # loss's scale is compared there; the masks themselves are gradchecked above.)
    torch.manual_seed(0)
    x = torch.randint(0, NUM_TOKENS, (2, 7))
    memory = torch.randn(2, 3, 16, dtype=torch.double)
    results = []
    for step in ("hand-written", "autograd"):
        model = make_model(shared_kv, window=1, mem_len=4, step=step, attn_dropout=dropout, ff_dropout=dropout)
        with torch.no_grad():
            for norm in [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]:
                norm.weight.normal_()
                norm.bias.normal_()
        model.train(dropout > 0)
        out, new_memory = model(x, memory=memory, return_memory=True)
        (out.sin().sum() + new_memory.cos().sum()).backward()
        results.append([out, new_memory] + [p.grad for p in model.parameters()])
    if dropout:
        assert all(torch.isfinite(t).all() for t in results[0])
        return
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
