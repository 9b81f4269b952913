"""Tests that state the claims of the Transformer-XL and relative-attention pages."""
import pytest
import torch

from conftest import greedy_with_memory, randomise_biases
from labml_nn.transformers.mha import MultiHeadAttention, causal_mask
from labml_nn.transformers.xl import TransformerXL
from labml_nn.transformers.xl.relative_mha import (RelativeMultiHeadAttention, relative_shift,
                                                   sinusoidal_embeddings)

pytestmark = pytest.mark.checks("labml_nn/transformers/xl/__init__.py", "labml_nn/transformers/xl/readme.md")


def make_model(mem_len=16, **kw):
    torch.manual_seed(0)
    args = dict(num_tokens=23, dim=32, depth=3, heads=4, mem_len=mem_len)
    args.update(kw)
    return TransformerXL(**args).double().eval()


def explicit_relative_scores(attn: RelativeMultiHeadAttention, x, mem):
    """The four terms of A^rel_{i,j}, one query/key pair at a time, straight from the paper."""
    h = x if mem is None else torch.cat([mem, x], 1)
    m = 0 if mem is None else mem.shape[1]
    q = attn.queries(x)
    k, _ = attn.keys_values(h)
    batch, heads, seq_len, _ = q.shape
    key_len = k.shape[2]
    W_kR = attn.to_r.weight  # [heads * dim_head, dim]
    scores = torch.full((batch, heads, seq_len, key_len), float('nan'), dtype=x.dtype)
    for i in range(seq_len):
        for j in range(m + i + 1):
            delta = m + i - j
            R = sinusoidal_embeddings(torch.tensor([delta]), attn.dim)[0].to(x.dtype)
            r = (W_kR @ R).view(heads, -1)
            for b in range(batch):
                for hd in range(heads):
                    qi, kj = q[b, hd, i], k[b, hd, j]
                    a = qi @ kj
                    bb = qi @ r[hd]
                    c = attn.u[hd] @ kj
                    d = attn.v[hd] @ r[hd]
                    scores[b, hd, i, j] = a + bb + c + d
    return scores


@pytest.mark.checks("labml_nn/transformers/xl/relative_mha.py")
@pytest.mark.parametrize("seq_len,mem_len", [(5, 0), (4, 3), (1, 6), (1, 0)])
def test_relative_scores_equal_the_four_terms(seq_len, mem_len):
    torch.manual_seed(1)
    attn = RelativeMultiHeadAttention(dim=8, heads=2, dim_head=4).double()
    with torch.no_grad():
        attn.u.normal_()
        attn.v.normal_()
    x = torch.randn(2, seq_len, 8, dtype=torch.double)
    mem = torch.randn(2, mem_len, 8, dtype=torch.double) if mem_len else None
    h = x if mem is None else torch.cat([mem, x], 1)
    k, _ = attn.keys_values(h)
    fast = attn.scores(attn.queries(x), k)
    slow = explicit_relative_scores(attn, x, mem)
    allowed = ~causal_mask(seq_len, mem_len + seq_len)
    torch.testing.assert_close(fast[..., allowed], slow[..., allowed], rtol=1e-10, atol=1e-10)


@pytest.mark.checks("labml_nn/transformers/xl/relative_mha.py")
def test_relative_shift_matches_worked_example():
    # The page's example: 3 queries, 1 memory position, distances 3 2 1 0 in each row.
    x = torch.tensor([[13., 12, 11, 10], [23, 22, 21, 20], [33, 32, 31, 30]])  # "q{i+1}, distance d" -> 10*(i+1)+d
    shifted = relative_shift(x)
    m = 1
    for i in range(3):
        for j in range(m + i + 1):
            assert shifted[i, j] == 10 * (i + 1) + (m + i - j)


@pytest.mark.checks("labml_nn/transformers/mha.py")
def test_mha_with_memory_matches_sdpa():
    torch.manual_seed(0)
    attn = MultiHeadAttention(dim=16, heads=4, dim_head=4).double()
    x, mem = torch.randn(2, 5, 16).double(), torch.randn(2, 3, 16).double()
    out = attn(x, mem=mem)
    k, v = attn.keys_values(torch.cat([mem, x], 1))
    ref = torch.nn.functional.scaled_dot_product_attention(attn.queries(x), k, v, attn_mask=~causal_mask(5, 8))
    ref = attn.to_out(ref.transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(out, ref)


def test_two_segments_with_memory_equal_one_pass():
    model = make_model(mem_len=10)
    x = torch.randint(0, 23, (2, 18))
    full = model(x)
    first, memory = model(x[:, :10], return_memory=True)
    second = model(x[:, 10:], memory=memory)
    torch.testing.assert_close(torch.cat([first, second], 1), full, rtol=1e-5, atol=1e-5)


def test_token_by_token_equals_one_pass():
    model = make_model(mem_len=12)
    x = torch.randint(0, 23, (3, 13))
    full = model(x)
    memory, steps = None, []
    for t in range(x.shape[1]):
        logits, memory = model(x[:, t:t + 1], memory=memory, return_memory=True)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_memory_keeps_last_mem_len_positions_of_every_layer():
    model = make_model(mem_len=6)
    x = torch.randint(0, 23, (2, 10))
    _, memory = model(x[:, :4], return_memory=True)
    assert [tuple(m.shape) for m in memory] == [(2, 4, 32)] * 3
    _, memory = model(x[:, 4:], memory=memory, return_memory=True)
    assert [tuple(m.shape) for m in memory] == [(2, 6, 32)] * 3
    # Layer 0's memory is the embedding of the last 6 tokens.
    torch.testing.assert_close(memory[0], model.token_emb(x[:, -6:]))
    assert all(not m.requires_grad for m in memory)


# Generation beyond the memory, long enough to go round the key/value window several times; the prompt is
# read in segments as long as the memory (all at once without memory).
@pytest.mark.parametrize("mem_len,batch_size,prompt_len,length", [(4, 1, 3, 8), (0, 2, 6, 25), (3, 2, 6, 25)])
def test_generate_beyond_memory_equals_token_by_token_with_memory(mem_len, batch_size, prompt_len, length):
    model = make_model(mem_len=mem_len)
    prompt = torch.randint(0, 23, (batch_size, prompt_len))
    out = model.generate(prompt, length=length, top_k=1)
    assert torch.equal(out, greedy_with_memory(model, prompt, length, segment=mem_len or None)[0])


def test_bad_memory_gets_clear_errors():
    model = make_model()
    x = torch.randint(0, 23, (2, 4))
    _, memory = model(x, return_memory=True)
    with pytest.raises(ValueError, match="3 layers"):
        model(x, memory=memory[:2])
    with pytest.raises(TypeError, match="list of per-layer tensors"):
        model(x, memory=torch.stack(memory))


def test_eval_without_grad_equals_eval_with_grad():
    model = make_model(mem_len=8)
    x = torch.randint(0, 23, (2, 9))
    with torch.no_grad():
        a = model(x)
    torch.testing.assert_close(a, model(x).detach())


def test_sampling_follows_the_softmax_and_top_k():
    from labml_nn.transformers.lm import sample_next
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(20000, 4)
    counts = torch.bincount(sample_next(logits), minlength=4).double() / 20000
    torch.testing.assert_close(counts, torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.double), atol=0.015, rtol=0)
    top2 = torch.bincount(sample_next(logits, top_k=2), minlength=4).double() / 20000
    assert top2[2:].sum() == 0
    torch.testing.assert_close(top2[:2], torch.tensor([0.625, 0.375], dtype=torch.double), atol=0.015, rtol=0)


@pytest.mark.checks("labml_nn/transformers/xl/generation.py", "labml_nn/transformers/one_token.py")
@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("ff_glu", [False, True])
@pytest.mark.parametrize("prompt_len", [1, 6])
def test_cached_layer_equals_the_layer(ff_glu, prompt_len, activation):
    from labml_nn.transformers.one_token import SlidingKV
    from labml_nn.transformers.xl.generation import CachedLayer
    model = make_model(mem_len=4, ff_glu=ff_glu, activation=activation)
    layer = model.layers[1]
    randomise_biases(layer)
    with torch.no_grad():
        h = torch.randn(2, prompt_len, 32, dtype=torch.double)
        _, cache = layer.forward_cached(h, None)
        sliding = SlidingKV(2, 4, 8, 5, h)
        sliding.append(torch.cat(cache, dim=-1))
        step = CachedLayer(layer, sliding, max_keys=5)
        for _ in range(11):  # round the sliding cache several times
            x = torch.randn(2, 1, 32, dtype=torch.double)
            # The reference: the layer itself, over the newest 4 positions and the new one.
            expected, cache = layer.forward_cached(x, tuple(t[:, :, -4:] for t in cache))
            torch.testing.assert_close(step(x[:, 0]), expected[:, 0])
        with pytest.raises(RuntimeError, match="eval"):
            CachedLayer(layer.train(), sliding, max_keys=5)
    with pytest.raises(RuntimeError, match="no_grad"):
        step(torch.randn(2, 32, dtype=torch.double))


def test_the_absolute_position_ablation_encodes_positions_within_each_segment():
    """`positions="absolute"`: plain attention over [memory, segment] with each segment's positions encoded
    from 0, so a token's first-layer input is the same wherever its segment starts; still causal, with
    memory, and generating through its own forward pass."""
    model = make_model(mem_len=4, positions="absolute")
    assert not any(hasattr(layer.attn, "to_r") for layer in model.layers)
    x = torch.randint(0, 23, (2, 6))
    y = x.clone()
    y[:, 4:] = (y[:, 4:] + 3) % 23
    torch.testing.assert_close(model(x)[:, :4], model(y)[:, :4], rtol=0, atol=0)
    _, memory = model(x[:, :3], return_memory=True)
    assert not torch.allclose(model(x[:, 3:], memory=memory), model(x[:, 3:]))
    prompt = torch.randint(0, 23, (2, 3))
    out = model.generate(prompt, length=5, top_k=1)
    logits, memory = model(prompt, return_memory=True)
    seq = prompt
    for _ in range(5):
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
        logits, memory = model(nxt, memory=memory, return_memory=True)
    assert torch.equal(out, seq)
    with pytest.raises(ValueError, match="relative' or 'absolute"):
        make_model(positions="learned")


def test_the_activation_is_the_feed_forward_of_every_layer_and_gelu_by_default(tmp_path):
    """`activation="relu"` (the authors' code) reaches every layer's feed-forward network; a model file
    written before the option existed (no `activation` in its config.json) loads as the GELU model it was."""
    import json
    import torch.nn.functional as F
    relu, gelu = make_model(activation="relu"), make_model()
    gelu.load_state_dict(relu.state_dict())  # the same weights, the parameters do not depend on the activation
    z = torch.randn(2, 5, 32, dtype=torch.double)
    for layer, activation in [(l, F.relu) for l in relu.layers] + [(l, F.gelu) for l in gelu.layers]:
        ff = layer.ff
        torch.testing.assert_close(ff(z), ff.w2(activation(ff.w1(z))))
    x = torch.randint(0, 23, (2, 7))
    assert not torch.allclose(relu(x), gelu(x))
    gelu.float().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["activation"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    torch.testing.assert_close(TransformerXL.from_pretrained(tmp_path)(x), gelu(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="activation must be one of"):
        make_model(activation="swish")


@pytest.mark.checks("labml_nn/transformers/xl/experiment.py", "labml_nn/transformers/compressive/experiment.py",
                    "labml_nn/experiments/presets.py")
def test_the_experiments_pass_activation_to_the_model_and_the_enwik8_presets_use_the_authors_relu():
    import torch.nn.functional as F
    from labml_nn.experiments.config import UsageError, parse_config
    from labml_nn.experiments.presets import presets_of
    from labml_nn.transformers.compressive import experiment as compressive
    from labml_nn.transformers.xl import experiment as xl
    small = ["--dim", "16", "--depth", "1", "--heads", "2", "--dim-head", "8"]
    for page in (xl, compressive):
        # The default, GELU, is left out of the stored arguments: a checkpoint saved before the option existed
        # stores the same arguments, so `--resume` still accepts it.
        assert "activation" not in page.model_kwargs(parse_config(page.Config, small), 10)
        kwargs = page.model_kwargs(parse_config(page.Config, small + ["--activation", "relu"]), 10)
        assert kwargs["activation"] == "relu"
        assert page.EXPERIMENT.model_class(**kwargs).layers[0].ff.activation is F.relu
        with pytest.raises(UsageError, match="expected gelu or relu"):
            parse_config(page.Config, ["--activation", "tanh"])
    for name in ("xl-enwik8-base", "xl-enwik8-large"):
        assert parse_config(xl.Config, ["--preset", name], presets=presets_of("xl")).activation == "relu"


@pytest.mark.parametrize("V,d,N,H,d_h,ff_mult", [(205, 512, 12, 8, 64, 4), (23, 32, 3, 4, 16, 3)])
def test_the_table_of_differences_counts_the_parameters_beyond_the_authors_model(V, d, N, H, d_h, ff_mult):
    """The page: at equal sizes this model has V d + N(d + 2 H d_h) - 2 H d_h + 2d more parameters than the
    authors' (kimiyoung/transformer-xl's MemTransformerLM, tied read-out, no adaptive softmax). Theirs is
    counted here layer by layer from what their code holds, ours from the model (the meta device: no memory)."""
    d_ff = d * ff_mult
    theirs_per_layer = (3 * H * d_h * d        # qkv_net, no bias
                        + H * d_h * d          # r_net (W_kR), no bias
                        + H * d_h * d          # o_net, no bias
                        + 2 * 2 * d            # the two post-norms
                        + d * d_ff + d_ff + d_ff * d + d)  # the feed-forward network, with biases
    theirs = V * d + V + N * theirs_per_layer + 2 * H * d_h  # embedding = read-out weight, its bias; one u, v
    with torch.device("meta"):
        ours = TransformerXL(num_tokens=V, dim=d, depth=N, heads=H, dim_head=d_h, mem_len=4, ff_mult=ff_mult)
    assert sum(p.numel() for p in ours.parameters()) - theirs == V * d + N * (d + 2 * H * d_h) - 2 * H * d_h + 2 * d
