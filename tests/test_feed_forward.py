"""Tests for the position-wise feed-forward page."""
import pytest
import torch

from labml_nn.transformers.feed_forward import ACTIVATIONS, FeedForward

pytestmark = pytest.mark.checks("labml_nn/transformers/feed_forward.py")


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("glu", [False, True])
def test_shapes_and_formula(activation, glu):
    torch.manual_seed(0)
    ff = FeedForward(8, 32, activation=activation, glu=glu)
    x = torch.randn(2, 5, 8)
    out = ff(x)
    assert out.shape == (2, 5, 8)
    hidden = ACTIVATIONS[activation](x @ ff.w1.weight.T + ff.w1.bias)
    if glu:
        hidden = hidden * (x @ ff.v.weight.T + ff.v.bias)
    torch.testing.assert_close(out, hidden @ ff.w2.weight.T + ff.w2.bias)


def test_gated_variant_has_the_extra_weights():
    plain, gated = FeedForward(8, 32), FeedForward(8, 32, glu=True)
    assert sum(p.numel() for p in gated.parameters()) - sum(p.numel() for p in plain.parameters()) == 8 * 32 + 32


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="activation must be one of"):
        FeedForward(8, 32, activation='tanhh')
