"""The pictures of the pages read what the model computed (labml_nn/experiments/pictures.py)."""
import pytest
import torch

from labml_nn.experiments.pictures import attention_by_distance, record_attention, segment_attention
from labml_nn.transformers.mha import causal_mask
from labml_nn.transformers.xl import TransformerXL

pytestmark = pytest.mark.checks("labml_nn/experiments/pictures.py")


def test_recorded_attention_is_the_softmax_of_the_models_own_scores():
    torch.manual_seed(0)
    model = TransformerXL(num_tokens=11, dim=16, depth=2, heads=2, mem_len=5).double().eval()
    with torch.no_grad():
        for layer in model.layers:
            layer.attn.u.normal_(), layer.attn.v.normal_()
    segments = [torch.randint(0, 11, (3, 4)) for _ in range(3)]
    records, memory = segment_attention(model, segments)
    assert len(records) == model.depth and records[0].shape == (3, 2, 4, 5 + 4)
    # Layer 0, recomputed from its input and memory with the attention's scores and the causal mask.
    layer = model.layers[0]
    h = model.token_emb(segments[-1])
    z, z_mem = layer.attn_norm(h), layer.attn_norm(memory[0])
    k, _ = layer.attn.keys_values(torch.cat([z_mem, z], 1))
    scores = layer.attn.scores(layer.attn.queries(z), k) * layer.attn.scale
    expected = scores.masked_fill(causal_mask(4, 9), float("-inf")).softmax(-1)
    torch.testing.assert_close(records[0], expected.detach())
    # The hooks are gone afterwards, and the model computes what it computed before.
    with record_attention(model) as again:
        pass
    model(segments[-1], memory=memory)
    assert again == []


def test_attention_by_distance_puts_each_weight_at_its_distance():
    # One query row per position; weight 1 on the key exactly 2 back (or the farthest when nearer).
    seq_len, mem_len = 3, 4
    attn = torch.zeros(1, 1, seq_len, mem_len + seq_len)
    for i in range(seq_len):
        attn[0, 0, i, mem_len + i - 2] = 1.0
    profile = attention_by_distance(attn)
    assert profile.argmax() == 2 and profile[2] == pytest.approx(1.0)
