"""The shared pieces of the one-token pages (labml_nn/transformers/one_token.py): the sliding cache and the
folded pre-norm."""
import pytest
import torch

from labml_nn.transformers.one_token import SlidingKV, fold_norm

pytestmark = pytest.mark.checks("labml_nn/transformers/one_token.py")


@pytest.mark.parametrize("window,prompt_len,append", [(1, 3, 1), (2, 1, 1), (4, 6, 1), (5, 2, 1), (4, 0, 3)])
def test_a_sliding_cache_returns_the_newest_positions_of_a_growing_history(window, prompt_len, append):
    torch.manual_seed(0)
    cache = SlidingKV(2, 3, 4, window, torch.zeros(1), max_append=append)
    history = torch.randn(2, 3, prompt_len, 8)
    with torch.no_grad():
        if prompt_len:
            cache.append(history)
        for _ in range(5 * window + 7):  # several trips round the buffer
            new = torch.randn(2, 3, append, 8)
            k, v = cache.append(new)
            history = torch.cat([history, new], dim=2)
            newest = history[:, :, max(0, history.shape[2] - window):]
            assert torch.equal(k, newest[..., :4]) and torch.equal(v, newest[..., 4:])
    assert cache.capacity == 2 * window + append - 1


def test_a_sliding_cache_refuses_gradients_and_late_long_appends():
    cache = SlidingKV(1, 1, 2, 3, torch.zeros(1))
    with pytest.raises(RuntimeError, match="without gradients"):
        cache.append(torch.randn(1, 1, 1, 4, requires_grad=True))
    with torch.no_grad():
        cache.append(torch.randn(1, 1, 1, 4))
        with pytest.raises(ValueError, match="at most 1"):
            cache.append(torch.randn(1, 1, 2, 4))


def test_a_folded_norm_equals_the_norm_then_the_product():
    torch.manual_seed(0)
    norm = torch.nn.LayerNorm(6).double()
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    W, b = torch.randn(6, 5, dtype=torch.double), torch.randn(5, dtype=torch.double)
    x = torch.randn(4, 6, dtype=torch.double)
    W_folded, b_folded = fold_norm(norm, W, b)
    plain = torch.nn.functional.layer_norm(x, (6,), eps=norm.eps)
    torch.testing.assert_close(plain @ W_folded + b_folded, norm(x) @ W + b)
