"""Tests for the adaptive attention span page: the mask, its gradient, the renormalisation, trimming, the loss."""
import math

import pytest
import torch
from torch import nn

from labml_nn.transformers.adaptive_span import (AdaptiveSpan, clamp_spans_, renormalise, renormalise_backward,
                                                  span_loss, span_ratio_gradient)
from labml_nn.transformers.mha import causal_mask

pytestmark = pytest.mark.checks("labml_nn/transformers/adaptive_span.py")


def expected_mask(z: float, L: int, ramp: float, offset: int) -> float:
    """The page's formula for one head and one key `offset` keys behind the newest, written out."""
    if offset <= z * L:
        return 1.0
    if offset >= z * L + ramp:
        return 0.0
    return (z * L - offset) / ramp + 1


def random_weights(*shape: int, dtype=torch.float64) -> torch.Tensor:
    """Attention weights as a softmax makes them: positive rows summing to 1."""
    return torch.randn(*shape, dtype=dtype).mul(2).softmax(dim=-1)


# -- the mask ---------------------------------------------------------------------------------

def test_mask_is_one_inside_the_span_zero_beyond_span_plus_ramp_and_linear_on_the_ramp():
    L, ramp, key_len = 100, 8.0, 130
    z = [0.0, 0.25, 0.503, 1.0]
    span = AdaptiveSpan(L, ramp)
    chi = span.mask(torch.tensor(z, dtype=torch.float64), key_len)
    assert chi.shape == (4, 1, key_len)
    for h, z_h in enumerate(z):
        for j in range(key_len):
            # One query: key j lies key_len - 1 - j keys behind the newest.
            assert chi[h, 0, j].item() == pytest.approx(expected_mask(z_h, L, ramp, key_len - 1 - j), abs=1e-12)
    # The newest key always keeps its full weight; z = 0 keeps the ramp only.
    assert torch.all(chi[:, 0, -1] == 1)
    assert chi[0, 0].sum().item() == pytest.approx(1 + sum(1 - k / ramp for k in range(1, 8)))


def test_mask_is_the_authors_for_keys_at_distances_from_one_and_counts_from_zero_for_transformer_xl():
    L, ramp, z = 64, 4.0, torch.tensor([0.1, 0.3], dtype=torch.float64)
    span = AdaptiveSpan(L, ramp)
    # Feedback Transformer: one query, P keys at distances P ... 1: clamp((zL - delta + 1)/rho + 1, 0, 1).
    P = 40
    delta = torch.arange(P, 0, -1, dtype=torch.float64)
    authors = ((z[:, None] * L - delta + 1) / ramp + 1).clamp(0, 1)
    torch.testing.assert_close(span.mask(z, P)[:, 0], authors, rtol=0, atol=1e-12)
    # Transformer-XL: n queries after m memory positions; query i sees key j at delta = m + i - j >= 0,
    # and its mask is the paper's with a span of zL tokens: clamp((zL - delta)/rho + 1, 0, 1).
    n, m = 5, 30
    i, j = torch.arange(n)[:, None], torch.arange(m + n)[None, :]
    delta = (m + i - j).to(torch.float64)
    paper = ((z[:, None, None] * L - delta) / ramp + 1).clamp(0, 1)
    torch.testing.assert_close(span.mask(z, m + n, n), paper, rtol=0, atol=1e-12)


def test_the_mask_of_the_newest_keys_is_the_last_columns_of_a_longer_mask():
    span, z = AdaptiveSpan(50, 6.0), torch.tensor([0.2, 0.7, 0.0])
    long = span.mask(z, 80, 3)
    torch.testing.assert_close(span.mask(z, 25, 3), long[..., -25:], rtol=0, atol=0)
    torch.testing.assert_close(span.mask(z, 25)[:, 0], long[:, -1, -25:], rtol=0, atol=0)


# -- its gradient with respect to z -----------------------------------------------------------

@pytest.mark.parametrize("z", [[0.0, 0.25, 0.5], [0.013, 0.377, 0.9]])
def test_mask_gradient_is_L_over_rho_on_the_ramp_and_zero_off_it(z):
    L, ramp, key_len, seq_len = 40, 5.0, 60, 3
    span = AdaptiveSpan(L, ramp)
    z = torch.tensor(z, dtype=torch.float64)
    # `[heads, seq_len, key_len, heads]`: the mask of head h depends on z_h only.
    jac = torch.autograd.functional.jacobian(lambda r: span.mask(r, key_len, seq_len), z)
    own = torch.stack([jac[h, :, :, h] for h in range(len(z))])
    assert torch.count_nonzero(jac).item() == torch.count_nonzero(own).item()
    offset = (key_len - seq_len + torch.arange(seq_len)[:, None] - torch.arange(key_len)[None, :]).double()
    on_ramp = (offset >= z[:, None, None] * L) & (offset <= z[:, None, None] * L + ramp)
    torch.testing.assert_close(own, on_ramp.double() * L / ramp)
    # The slope a hand-written backward uses is autograd's, at the ramp's ends (z = 0) too.
    torch.testing.assert_close(span.slope(z, key_len, seq_len), own, rtol=0, atol=1e-12)
    assert on_ramp.any(dim=(1, 2)).all()


def test_masked_attention_passes_gradcheck_in_float64():
    torch.manual_seed(0)
    span = AdaptiveSpan(32, 4.0)
    # Spans away from the ramp's corners, where the mask is differentiable.
    z = torch.tensor([0.07, 0.41, 0.2], dtype=torch.float64, requires_grad=True)
    a = random_weights(2, 3, 4, 40).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, z: span(a, z), (a, z))


@pytest.mark.parametrize("z", [[0.0, 0.0, 0.0], [0.0, 0.25, 1.0], [0.07, 0.41, 0.2]])
def test_hand_written_backward_matches_autograd(z):
    torch.manual_seed(1)
    span = AdaptiveSpan(32, 4.0)
    z = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    a = random_weights(2, 3, 4, 40).requires_grad_()
    g = torch.randn(2, 3, 4, 40, dtype=torch.float64)
    a_hat = span(a, z)
    d_a_autograd, d_z_autograd = torch.autograd.grad((a_hat * g).sum(), (a, z))
    with torch.no_grad():
        chi = span.mask(z, 40, 4)
        d_a, d_chi = renormalise_backward(g, a, chi, a_hat)
        d_z = span_ratio_gradient(d_chi, span.slope(z, 40, 4))
    torch.testing.assert_close(d_a, d_a_autograd)
    torch.testing.assert_close(d_z, d_z_autograd)
    # The layout of the Feedback Transformer's step: one query, `[batch_size, heads, P]`, `chi` `[heads, P]`.
    a1 = a.detach()[:, :, -1]
    a1_hat = renormalise(a1, chi[:, -1])
    d_a1, d_chi1 = renormalise_backward(g[:, :, -1], a1, chi[:, -1], a1_hat)
    torch.testing.assert_close(a1_hat, a_hat.detach()[:, :, -1])
    torch.testing.assert_close(d_a1, d_a[:, :, -1])
    assert d_chi1.shape == (3, 40)


# -- the renormalisation ----------------------------------------------------------------------

def test_renormalised_weights_are_proportional_to_the_masked_weights_and_sum_to_one():
    torch.manual_seed(2)
    span, z = AdaptiveSpan(20, 3.0), torch.tensor([0.0, 0.3], dtype=torch.float64)
    a = random_weights(3, 2, 5, 30)
    a_hat = span(a, z)
    chi = span.mask(z, 30, 5)
    assert torch.all(a_hat[(chi == 0).expand_as(a_hat)] == 0)
    # Every kept key is scaled by the same factor per row, and a row sums to 1 but for epsilon: S / (S + eps).
    masked = a * chi
    total = masked.sum(dim=-1, keepdim=True)
    kept = (chi > 0).expand_as(a_hat)
    torch.testing.assert_close(a_hat[kept], (masked / (total + 1e-8))[kept], rtol=1e-14, atol=0)
    torch.testing.assert_close(a_hat.sum(dim=-1, keepdim=True), total / (total + 1e-8), rtol=1e-14, atol=0)
    assert torch.all((a_hat.sum(dim=-1) - 1).abs() < 1e-8 / total.squeeze(-1))
    # A mask of ones changes nothing (but for epsilon).
    torch.testing.assert_close(renormalise(a, torch.ones(())), a, rtol=1e-7, atol=0)


def test_masked_softmax_is_the_papers_masked_exponentials():
    torch.manual_seed(3)
    span, z = AdaptiveSpan(16, 4.0), torch.tensor([0.1, 0.6], dtype=torch.float64)
    scores = torch.randn(2, 2, 3, 24, dtype=torch.float64)
    chi = span.mask(z, 24, 3)
    paper = chi * scores.exp() / (chi * scores.exp()).sum(dim=-1, keepdim=True)
    torch.testing.assert_close(renormalise(scores.softmax(dim=-1), chi, eps=0.0), paper, rtol=1e-12, atol=0)


# -- trimming ---------------------------------------------------------------------------------

def attention(q, k, v, span, z, trim: bool, eps: float):
    """Causal attention over `k`, `v` (the last `seq_len` keys the queries' own), masked by `span`."""
    seq_len, key_len = q.shape[-2], k.shape[-2]
    if trim:
        keep = span.trimmed_key_len(z, key_len, seq_len)
        k, v, key_len = k[..., -keep:, :], v[..., -keep:, :], keep
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(causal_mask(seq_len, key_len), float('-inf'))
    return span(scores.softmax(dim=-1), z, eps) @ v


@pytest.mark.parametrize("z, trim_step", [([0.05, 0.1, 0.0], 8), ([0.0, 0.0, 0.0], 1), ([0.02, 0.2, 0.1], 3)])
@pytest.mark.parametrize("seq_len", [1, 4])
def test_trimmed_attention_equals_untrimmed_masked_attention(z, trim_step, seq_len):
    torch.manual_seed(4)
    span = AdaptiveSpan(40, 4.0, trim_step)
    z = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    key_len = 60
    q = torch.randn(2, 3, seq_len, 8, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, key_len, 8, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 3, key_len, 8, dtype=torch.float64, requires_grad=True)
    assert span.trimmed_key_len(z, key_len, seq_len) < key_len  # the test trims something
    # Without epsilon the two are the same function, values and gradients (z's too, at z = 0).
    full, trimmed = (attention(q, k, v, span, z, trim, eps=0.0) for trim in (False, True))
    torch.testing.assert_close(trimmed, full, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(full)
    grads_full = torch.autograd.grad((full * g).sum(), (q, k, v, z))
    grads_trimmed = torch.autograd.grad((trimmed * g).sum(), (q, k, v, z))
    for got, want in zip(grads_trimmed, grads_full):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    # With the authors' epsilon they differ only by epsilon's share of the dropped softmax weight.
    full, trimmed = (attention(q, k, v, span, z, trim, eps=1e-8) for trim in (False, True))
    torch.testing.assert_close(trimmed, full, rtol=1e-5, atol=1e-7)


def test_keys_needed_is_span_plus_ramp_rounded_up_to_the_trim_step():
    span = AdaptiveSpan(100, 8.0, 16)
    # 0.3 * 100 + 8 = 38: keys 0 ... 38 behind the newest, 39, rounded up to 48.
    assert span.keys_needed(torch.tensor([0.1, 0.3])) == 48
    assert span.trimmed_key_len(torch.tensor([0.1, 0.3]), 30) == 30
    assert span.trimmed_key_len(torch.tensor([0.1, 0.3]), 200, seq_len=5) == 52
    # The key at the ramp's far end (weight 0, slope not) is kept when zL + rho is whole: 33 + 1.
    assert AdaptiveSpan(100, 8.0, 1).keys_needed(torch.tensor([0.25])) == 34


def test_trimming_drops_only_keys_whose_mask_and_slope_are_zero():
    torch.manual_seed(5)
    for _ in range(20):
        L, ramp, step = 50, float(torch.randint(1, 10, ()).item()), int(torch.randint(1, 9, ()).item())
        span = AdaptiveSpan(L, ramp, step)
        # In float32, as a model holds them, with spans whose ends fall on whole keys among them.
        z = torch.rand(4) * 0.5
        z[0], z[1] = 0.0, 0.1
        keep = span.trimmed_key_len(z, 120)
        assert keep % step == 0 or keep == 120
        chi, slope = span.mask(z, 120), span.slope(z, 120)
        assert torch.all(chi[..., :120 - keep] == 0) and torch.all(slope[..., :120 - keep] == 0)


def test_kept_keys_match_the_authors_count_when_the_trim_step_divides_the_window():
    # The authors drop the oldest keys in multiples of s: they keep L - s * floor((L - ceil(max zL + rho)) / s).
    L, ramp, s = 8192, 32.0, 64
    span = AdaptiveSpan(L, ramp, s)
    for z_max in [0.0003, 0.01, 0.1234, 0.5, 0.9977, 1.0]:
        z = torch.tensor([z_max / 2, z_max], dtype=torch.float64)
        needed = min(L, math.ceil(z_max * L + ramp))
        authors = L - s * math.floor(min(L - 1, L - needed) / s)
        assert span.trimmed_key_len(z, L) == authors, z_max


# -- the span loss and the clamp --------------------------------------------------------------

class Attention(nn.Module):
    """A stand-in for a model's attention with (or without) a span."""

    def __init__(self, heads: int, span=None, span_init: float = 0.0):
        super().__init__()
        self.span = span
        self.span_ratio = span.new_span_ratio(heads, span_init) if span is not None else None
        self.to_q = nn.Linear(4, 4)


def test_span_loss_is_the_span_in_keys_averaged_over_heads_and_summed_over_layers():
    layers = [Attention(4, AdaptiveSpan(100, 8.0)), Attention(2), Attention(2, AdaptiveSpan(30, 4.0))]
    with torch.no_grad():
        layers[0].span_ratio.copy_(torch.tensor([0.1, 0.2, 0.3, 0.6]))
        layers[2].span_ratio.copy_(torch.tensor([0.5, 1.0]))
    loss = span_loss(layers)
    assert loss.item() == pytest.approx(100 * 0.3 + 30 * 0.75)
    loss.backward()
    torch.testing.assert_close(layers[0].span_ratio.grad, torch.full((4,), 100 / 4))
    torch.testing.assert_close(layers[2].span_ratio.grad, torch.full((2,), 30 / 2))
    # No span anywhere: a constant zero that a training loop can add.
    nothing = span_loss([Attention(2), Attention(2)])
    assert nothing.item() == 0 and not nothing.requires_grad


def test_clamp_spans_puts_every_ratio_back_into_the_unit_interval_in_place():
    layer = Attention(3, AdaptiveSpan(10, 2.0))
    ratio = layer.span_ratio
    with torch.no_grad():
        ratio.copy_(torch.tensor([-0.2, 0.5, 1.3]))
    clamp_spans_([layer, Attention(2)])
    assert layer.span_ratio is ratio
    torch.testing.assert_close(ratio.detach(), torch.tensor([0.0, 0.5, 1.0]))
    assert ratio.grad_fn is None and ratio.requires_grad


def test_new_span_ratio_starts_every_head_at_span_init():
    z = AdaptiveSpan.new_span_ratio(8, 0.25)
    assert isinstance(z, nn.Parameter) and z.shape == (8,) and torch.all(z == 0.25)
    assert AdaptiveSpan(8192, 32.0).spans(z).tolist() == [2048.0] * 8


# -- bad input --------------------------------------------------------------------------------

def test_bad_options_and_shapes_are_named():
    with pytest.raises(ValueError, match="mem_len"):
        AdaptiveSpan(0, 32.0)
    with pytest.raises(ValueError, match="span_ramp"):
        AdaptiveSpan(64, 0.0)
    with pytest.raises(ValueError, match="span_trim_step"):
        AdaptiveSpan(64, 32.0, 0)
    with pytest.raises(ValueError, match="span_init"):
        AdaptiveSpan.new_span_ratio(4, 1.5)
    span = AdaptiveSpan(64, 32.0)
    with pytest.raises(ValueError, match=r"span_ratio must be \[heads\]"):
        span.mask(torch.zeros(2, 4), 10)
    with pytest.raises(ValueError, match=r"heads=4"):
        span(random_weights(2, 3, 1, 10), torch.zeros(4))


# -- Transformer-XL with an adaptive span -------------------------------------------------------

def xl_with_span(trim_step: int = 1, **kw):
    """A float64 Transformer-XL whose heads have spans of 0, 1/4, 1/2 and 1 of its memory of 8 (ramp 1.5)."""
    from labml_nn.transformers.xl import TransformerXL
    torch.manual_seed(0)
    args = dict(num_tokens=13, dim=16, depth=2, heads=4, dim_head=4, mem_len=8, span_ramp=1.5, span_trim_step=trim_step)
    args.update(kw)
    model = TransformerXL(**args).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.attn.span_ratio.copy_(torch.tensor([0.0, 0.25, 0.5, 1.0]))
    return model


def weights_seen(model):
    """Record the attention weights each layer uses (the input of its dropout), `[batch_size, heads, n, keys]`."""
    seen = []
    for layer in model.layers:
        layer.attn.dropout.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    return seen


@pytest.mark.checks("labml_nn/transformers/xl/__init__.py")
def test_transformer_xl_masks_every_head_beyond_its_span_counting_from_the_query_itself():
    model = xl_with_span(trim_step=100)  # nothing trimmed: every key's weight is seen
    seen = weights_seen(model)
    x = torch.randint(0, 13, (2, 5))
    memory = [torch.randn(2, 8, 16, dtype=torch.double) for _ in range(2)]
    model(x, memory=memory)
    for a in seen:
        # Query i sits at key position 8 + i; head h's weight on a key `offset` behind it is 0 exactly where
        # the page's mask is, and the rest is renormalised.
        for h, z in enumerate([0.0, 0.25, 0.5, 1.0]):
            for i in range(5):
                for j in range(8 + i + 1):
                    chi = expected_mask(z, 8, 1.5, 8 + i - j)
                    assert (a[:, h, i, j] == 0).all() == (chi == 0), (h, i, j)
        torch.testing.assert_close(a.sum(-1), torch.ones_like(a.sum(-1)))


@pytest.mark.checks("labml_nn/transformers/xl/__init__.py")
def test_transformer_xl_trimmed_equals_untrimmed_outputs_memory_and_gradients():
    x = torch.randint(0, 13, (2, 5))
    memory = [torch.randn(2, 8, 16, dtype=torch.double) for _ in range(2)]
    results, keys = [], []
    for trim_step in (1, 100):
        model = xl_with_span(trim_step)
        seen = weights_seen(model)
        out, new_memory = model(x, memory=memory, return_memory=True)
        (out.sin().sum() + sum(m.cos().sum() for m in new_memory)).backward()
        results.append([out, *new_memory] + [p.grad for p in model.parameters()])
        keys.append([a.shape[-1] for a in seen])
    # Trimmed, each layer reads P_span - 1 = floor(8 * 1 + 1.5) memory positions of 8 (all of them) ...
    assert keys == [[13, 13], [13, 13]]
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
    # ... and with shorter spans, fewer: the longest head at z = 1/4 reaches 2 + 1.5 keys back.
    model = xl_with_span(1)
    with torch.no_grad():
        for layer in model.layers:
            layer.attn.span_ratio.clamp_(max=0.25)
    seen = weights_seen(model)
    trimmed = model(x, memory=memory)
    assert [a.shape[-1] for a in seen] == [3 + 5, 3 + 5]
    model.layers[0].attn.span = model.layers[1].attn.span = AdaptiveSpan(8, 1.5, 100)
    torch.testing.assert_close(trimmed, model(x, memory=memory))


@pytest.mark.checks("labml_nn/transformers/xl/generation.py")
def test_transformer_xl_with_a_span_generates_the_same_tokens_fast_and_through_forward_calls():
    model = xl_with_span().eval()
    prompt = torch.randint(0, 13, (3, 11))
    fast = model.generate(prompt, length=20, top_k=1)
    torch.testing.assert_close(fast, model.generate(prompt, length=20, top_k=1, cached=False), rtol=0, atol=0)
    # The span changes what the model says: the same weights without it generate something else.
    for layer in model.layers:
        layer.attn.span = None
    assert not torch.equal(fast, model.generate(prompt, length=20, top_k=1))


@pytest.mark.checks("labml_nn/transformers/xl/__init__.py", "labml_nn/transformers/lm.py")
def test_transformer_xl_span_loss_clamp_model_file_and_bad_options(tmp_path):
    from labml_nn.transformers.xl import TransformerXL
    model = xl_with_span()
    # L * mean_h z per layer, summed over the 2 layers: 2 * 8 * (0 + 0.25 + 0.5 + 1) / 4
    assert model.span_loss().item() == pytest.approx(7.0)
    with torch.no_grad():
        model.layers[1].attn.span_ratio.copy_(torch.tensor([-1.0, 0.5, 2.0, 0.25]))
    model.clamp_spans_()
    assert model.layers[1].attn.span_ratio.tolist() == [0.0, 0.5, 1.0, 0.25]
    # The model file keeps the span's options and ratios.
    model.save_pretrained(tmp_path / "xl-span")
    with pytest.warns(UserWarning, match="cast to float32"):
        loaded = TransformerXL.from_pretrained(tmp_path / "xl-span").double()
    assert (loaded.layers[0].attn.span.span_ramp, loaded.layers[0].attn.span.span_trim_step) == (1.5, 1)
    x = torch.randint(0, 13, (2, 6))
    torch.testing.assert_close(loaded(x), model(x))
    assert TransformerXL(num_tokens=5, dim=8, depth=1, heads=2, mem_len=4).span_loss().item() == 0.0
    with pytest.raises(ValueError, match="mem_len >= 1"):
        TransformerXL(num_tokens=5, dim=8, depth=1, heads=2, mem_len=0, span_ramp=2.0)


@pytest.mark.checks("labml_nn/transformers/xl/experiment.py", "labml_nn/experiments/trainer.py")
def test_the_xl_experiment_trains_a_span_and_leaves_the_default_model_unchanged(tiny_args):
    from labml_nn.experiments.config import parse_config
    from labml_nn.experiments.run import Run
    from labml_nn.experiments.trainer import train
    from labml_nn.transformers.xl.experiment import EXPERIMENT, Config, model_kwargs
    # Without --span-ramp the constructor arguments are those of a checkpoint saved before the option existed.
    assert not any(key.startswith("span") for key in model_kwargs(parse_config(Config, tiny_args()), 65))
    # A span loss heavy enough to push every ratio below 0 in the first step: only the clamp keeps it at 0.
    args = tiny_args("--steps", "3", "--span-ramp", "4", "--span-init", "0.005", "--span-trim-step", "4",
                     "--span-loss", "100", "--lr", "1e-2", "--warmup-steps", "0")
    with Run(parse_config(Config, args), EXPERIMENT) as run:
        span_loss = run.module.span_loss().item()
        summary = train(run)
    history = run.state.history["train"]
    assert history["loss.span"][0] == pytest.approx(span_loss) and span_loss == pytest.approx(2 * 16 * 0.005)
    assert all(0 < loss < 6 for loss in history["loss.train"])
    assert all((layer.attn.span_ratio == 0).all() for layer in run.module.layers)
    assert summary["valid_bpc"] < 7
