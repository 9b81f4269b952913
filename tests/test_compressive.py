"""Tests that state the claims of the Compressive Transformer page."""
import re

import pytest
import torch

from conftest import greedy_with_memory
from labml_nn.transformers.compressive import (CompressiveLayer, CompressiveMemory, CompressiveTransformer,
                                               ConvCompression)
from labml_nn.transformers.xl import TransformerXL, TransformerXLLayer

pytestmark = pytest.mark.checks("labml_nn/transformers/compressive/__init__.py", "labml_nn/transformers/compressive/readme.md")

VOCAB = 23


def make_model(mem_len=6, cmem_len=4, compression_rate=2, **kw):
    torch.manual_seed(0)
    args = dict(num_tokens=VOCAB, dim=16, depth=2, heads=2, mem_len=mem_len, cmem_len=cmem_len,
                compression_rate=compression_rate)
    args.update(kw)
    return CompressiveTransformer(**args).double().eval()


def set_averaging_compression(model):
    """Make every f_c the mean of its c inputs, so compressed slots can be checked by value."""
    with torch.no_grad():
        for layer in model.layers:
            proj, c = layer.compress.proj, layer.compress.compression_rate
            # W_k = I / c for every tap k.
            proj.weight.copy_(torch.eye(proj.out_features).repeat(1, c) / c)
            proj.bias.zero_()


def run_segments(model, x, seg_len, **kw):
    memory, outs = None, []
    for s in range(0, x.shape[1], seg_len):
        out = model(x[:, s:s + seg_len], memory=memory, return_memory=True, **kw)
        memory = out[1]
        outs.append(out)
    return outs, memory


def expected_lengths(seen, mem_len, cmem_len, c):
    """The page's rule: evict whole groups of c beyond mem_len; the compressed memory keeps cmem_len."""
    groups = max(seen - mem_len, 0) // c
    return seen - groups * c, min(groups, cmem_len)


def test_compression_is_a_convolution_with_kernel_and_stride_c():
    torch.manual_seed(0)
    f = ConvCompression(dim=4, compression_rate=3).double()
    mem = torch.randn(2, 9, 4, dtype=torch.double)
    out = f(mem)
    assert out.shape == (2, 3, 4)
    # The same numbers as nn.Conv1d(dim, dim, kernel_size=c, stride=c) with taps W_k = weight[:, k*dim:(k+1)*dim].
    conv = torch.nn.Conv1d(4, 4, kernel_size=3, stride=3).double()
    with torch.no_grad():
        conv.weight.copy_(f.proj.weight.view(4, 3, 4).permute(0, 2, 1))
        conv.bias.copy_(f.proj.bias)
    torch.testing.assert_close(out, conv(mem.transpose(1, 2)).transpose(1, 2))
    with pytest.raises(ValueError, match="multiple of the compression rate 3"):
        f(mem[:, :7])


@pytest.mark.parametrize("seg_len,mem_len,cmem_len,c", [
    (4, 8, 4, 2),    # evictions are whole groups
    (5, 4, 3, 3),    # counts not divisible by c: the remainder waits in the memory
    (10, 4, 2, 2),   # segment longer than the memory: the segment's oldest positions are evicted too
    (1, 3, 5, 4),    # one token at a time
])
def test_memory_and_compressed_memory_lengths_follow_the_page(seg_len, mem_len, cmem_len, c):
    model = make_model(mem_len=mem_len, cmem_len=cmem_len, compression_rate=c)
    x = torch.randint(0, VOCAB, (2, 6 * seg_len))
    memory = None
    for k in range(1, 7):
        _, memory = model(x[:, (k - 1) * seg_len:k * seg_len], memory=memory, return_memory=True)
        n_m, n_cm = expected_lengths(k * seg_len, mem_len, cmem_len, c)
        assert [tuple(m.shape) for m in memory.mem] == [(2, n_m, 16)] * 2
        assert [tuple(m.shape) for m in memory.cmem] == [(2, n_cm, 16)] * 2
        assert mem_len <= n_m < mem_len + c or k * seg_len < mem_len


@pytest.mark.parametrize("seg_len,mem_len,cmem_len,c", [(6, 4, 5, 2), (5, 4, 10, 3)])
def test_compressed_memory_holds_the_oldest_positions_in_order(seg_len, mem_len, cmem_len, c):
    model = make_model(mem_len=mem_len, cmem_len=cmem_len, compression_rate=c)
    set_averaging_compression(model)
    x = torch.randint(0, VOCAB, (2, 3 * seg_len))
    _, memory = run_segments(model, x, seg_len)
    # Layer 0's memory holds token embeddings, so the evicted positions can be named.
    emb = model.token_emb(x).detach()
    seen = x.shape[1]
    n_m, n_cm = expected_lengths(seen, mem_len, cmem_len, c)
    groups = (seen - n_m) // c
    torch.testing.assert_close(memory.mem[0], emb[:, seen - n_m:])
    # Group g averages positions gc ... gc + c - 1; the newest n_cm groups survive, oldest first.
    averages = emb[:, :groups * c].reshape(2, groups, c, 16).mean(dim=2)
    torch.testing.assert_close(memory.cmem[0], averages[:, groups - n_cm:])


def test_layer_attends_over_compressed_memory_then_memory():
    torch.manual_seed(0)
    layer = CompressiveLayer(dim=8, heads=2, dim_head=4, d_ff=16, compression_rate=2).double()
    h, mem, cmem = (torch.randn(2, n, 8, dtype=torch.double) for n in (3, 4, 2))
    # The Transformer-XL layer with [cm, m] as its memory: compressed slots sit in front of memory.
    torch.testing.assert_close(layer(h, mem, cmem), TransformerXLLayer.forward(layer, h, torch.cat([cmem, mem], 1)))


def test_segments_equal_one_pass_while_nothing_is_evicted():
    model = make_model(mem_len=20)
    x = torch.randint(0, VOCAB, (2, 18))
    full = model(x)
    outs, memory = run_segments(model, x, 6)
    torch.testing.assert_close(torch.cat([o[0] for o in outs], 1), full, rtol=1e-5, atol=1e-5)
    assert all(m.shape[1] == 0 for m in memory.cmem)
    steps, _ = run_segments(model, x, 1)
    torch.testing.assert_close(torch.cat([o[0] for o in steps], 1), full, rtol=1e-5, atol=1e-5)


def test_without_compressed_memory_it_is_transformer_xl():
    model = make_model(mem_len=5, cmem_len=0)
    torch.manual_seed(0)
    xl = TransformerXL(num_tokens=VOCAB, dim=16, depth=2, heads=2, mem_len=5).double().eval()
    missing, unexpected = xl.load_state_dict(model.state_dict(), strict=False)
    assert missing == [] and all('compress' in k for k in unexpected)
    x = torch.randint(0, VOCAB, (2, 16))
    ours, memory = run_segments(model, x, 4)
    xl_mem, theirs = None, []
    for s in range(0, 16, 4):
        logits, xl_mem = xl(x[:, s:s + 4], memory=xl_mem, return_memory=True)
        theirs.append(logits)
    torch.testing.assert_close(torch.cat([o[0] for o in ours], 1), torch.cat(theirs, 1))


def test_compressed_memory_is_attended():
    model = make_model(mem_len=4, cmem_len=4, compression_rate=2)
    x = torch.randint(0, VOCAB, (1, 12))
    _, memory = model(x[:, :8], return_memory=True)
    assert memory.cmem[0].shape[1] == 2
    # (A random change: a constant shift would vanish in the layer norm.)
    changed = CompressiveMemory(memory.mem, [m + torch.randn_like(m) for m in memory.cmem])
    assert not torch.allclose(model(x[:, 8:], memory=memory), model(x[:, 8:], memory=changed))


def test_reconstruction_loss_is_zero_before_the_first_eviction_and_positive_after():
    model = make_model(mem_len=6, cmem_len=4, compression_rate=2).train()
    x = torch.randint(0, VOCAB, (2, 12))
    _, memory, aux = model(x[:, :4], return_memory=True, return_aux_loss=True)
    assert aux.item() == 0.0
    aux.backward()  # a zero that accepts backward, so training loops need no special case
    _, memory, aux = model(x[:, 4:8], memory=memory, return_memory=True, return_aux_loss=True)
    assert aux.item() > 0.0


def test_reconstruction_loss_is_the_content_attention_error_over_the_evicted_positions():
    model = make_model(mem_len=4, cmem_len=4, compression_rate=2, depth=1)
    x = torch.randint(0, VOCAB, (2, 10))
    _, memory = model(x[:, :5], return_memory=True)
    _, _, aux = model(x[:, 5:], memory=memory, return_memory=True, return_aux_loss=True)
    # Seen 10 with mem_len 4: the first 6 positions are evicted, 1 of them by the first segment
    # (it waited in memory) and 5 by the second, as 3 groups of 2.
    layer, emb = model.layers[0], model.token_emb(x)
    h, evicted = emb[:, 5:], emb[:, :6]
    attn = layer.attn

    def content_attention(h, m):
        q = attn.queries(layer.attn_norm(h))
        k, v = attn.keys_values(layer.attn_norm(m))
        return (q @ k.transpose(-2, -1) * attn.scale).softmax(-1) @ v

    expected = ((content_attention(h, evicted) - content_attention(h, layer.compress(evicted))) ** 2).mean()
    torch.testing.assert_close(aux, expected)


def test_reconstruction_loss_trains_only_compression_and_lm_loss_never_does():
    model = make_model(mem_len=4, cmem_len=4, compression_rate=2).train()
    x = torch.randint(0, VOCAB, (2, 12))
    _, memory = model(x[:, :6], return_memory=True)
    logits, _, aux = model(x[:, 6:], memory=memory, return_memory=True, return_aux_loss=True)
    compression = {id(p) for p in model.compression_parameters()}
    assert len(compression) == 2 * model.depth  # a weight and a bias per layer
    # The two groups split the parameters between them.
    main = {id(p) for p in model.main_parameters()}
    assert not main & compression and len(main) + len(compression) == len(list(model.parameters()))

    aux.backward(retain_graph=True)
    for name, p in model.named_parameters():
        if id(p) in compression:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name

    model.zero_grad(set_to_none=True)
    logits.logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        if id(p) in compression:
            assert p.grad is None, name


@pytest.mark.parametrize("prompt_len,mem_len,cmem_len,c", [(3, 4, 3, 2), (9, 4, 2, 3), (20, 4, 3, 2), (2, 0, 3, 2)])
def test_generate_equals_token_by_token_with_memory_when_compressing(prompt_len, mem_len, cmem_len, c):
    model = make_model(mem_len=mem_len, cmem_len=cmem_len, compression_rate=c)
    prompt = torch.randint(0, VOCAB, (2, prompt_len))
    out = model.generate(prompt, length=14, top_k=1)
    # The prompt in segments as long as the memory (all at once without memory), then token by token.
    seq, memory = greedy_with_memory(model, prompt, 14, segment=mem_len or None)
    assert memory.cmem[0].shape[1] == cmem_len  # compression did happen
    assert torch.equal(out, seq)


@pytest.mark.checks("labml_nn/transformers/compressive/generation.py")
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_cached_generation_computes_the_logits_of_the_models_own_forward_calls(activation):
    """The cached reader (the prompt through `step_cached`, then each token through Transformer-XL's
    `CachedLayer` over a `CompressedKV`) gives the logits the model's forward calls give, at every token,
    through evictions and compressions, with either activation of the feed-forward network."""
    from conftest import randomise_biases
    from labml_nn.transformers.compressive.generation import CachedReader
    from labml_nn.transformers.lm import ForwardCalls
    model = make_model(mem_len=4, cmem_len=3, compression_rate=2, activation=activation)
    randomise_biases(model)
    assert all(layer.ff.activation is getattr(torch.nn.functional, activation) for layer in model.layers)
    tokens = torch.randint(0, VOCAB, (2, 19))
    cached, reference = CachedReader(model), ForwardCalls(model)
    with torch.no_grad():
        for part in [tokens[:, :4], tokens[:, 4:7]] + list(tokens[:, 7:].split(1, dim=1)):
            torch.testing.assert_close(cached(part), reference(part))
    assert reference.memory.cmem[0].shape[1] == 3  # the compressed memory filled up


def test_bad_memory_gets_clear_errors():
    model = make_model()
    x = torch.randint(0, VOCAB, (2, 4))
    _, memory = model(x, return_memory=True)
    with pytest.raises(ValueError, match=re.escape("memory.mem[0] must have shape [batch_size=3")):
        model(torch.randint(0, VOCAB, (3, 4)), memory=memory)  # the field is named
    with pytest.raises(ValueError, match="2 layers"):
        model(x, memory=CompressiveMemory(memory.mem[:1], memory.cmem[:1]))
    with pytest.raises(TypeError, match="CompressiveMemory"):
        model(x, memory=memory.mem)  # a Transformer-XL style memory
    with pytest.raises(TypeError, match="list of per-layer tensors"):
        model(x, memory=CompressiveMemory(torch.stack(memory.mem), memory.cmem))


def test_constructor_errors():
    kw = dict(num_tokens=5, depth=1, mem_len=2, cmem_len=2)
    with pytest.raises(ValueError, match="compression_rate"):
        CompressiveTransformer(dim=8, heads=2, compression_rate=0, **kw)
    with pytest.raises(ValueError, match="cmem_len"):
        CompressiveTransformer(dim=8, heads=2, num_tokens=5, depth=1, mem_len=2, cmem_len=-1)
    with pytest.raises(ValueError, match="activation must be one of"):
        CompressiveTransformer(dim=8, heads=2, activation="swish", **kw)

