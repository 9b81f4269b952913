"""The measurements behind the papers' headline sections: Transformer-XL evaluated with longer memories
(`bench.eval_memory`) and the Compressive Transformer's attention by memory region
(`bench.compressive_cost`). The training runs belong to `make results-eval-memory` and
`make results-compressive-cost`; these tests check what the reports compute from a model."""
import math

import pytest
import torch
import torch.nn.functional as F

from bench.compressive_cost import attention_by_region
from bench.eval_memory import loss_by_stream_and_position, paired, verdict
from labml_nn.transformers.compressive import CompressiveTransformer
from labml_nn.transformers.xl import TransformerXL

VOCAB = 11


def xl(mem_len: int = 4) -> TransformerXL:
    torch.manual_seed(0)
    return TransformerXL(num_tokens=VOCAB, dim=16, depth=2, heads=2, mem_len=mem_len).double().eval()


def streams(batch: int = 3, length: int = 33) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(1))


def test_the_loss_by_position_is_the_mean_over_segments_of_each_prediction():
    """Without memory every segment is read alone: the table is the mean over segments of the
    cross-entropy of each position, computed here segment by segment."""
    model, s, n = xl(), streams(), 8
    table = loss_by_stream_and_position(model, s, n, mem_len=0, clamp_len=None)
    assert table.shape == (3, n)
    expected = torch.zeros(3, n, dtype=torch.float64)
    with torch.no_grad(), model.evaluation_memory(mem_len=0):
        for p in range(0, 32, n):
            logits = model(s[:, p:p + n])
            expected += F.cross_entropy(logits.transpose(1, 2), s[:, p + 1:p + n + 1], reduction="none")
    torch.testing.assert_close(table, expected / 4)


def test_the_evaluation_memory_is_used_and_put_back():
    """A longer memory at evaluation changes the loss (the memory is read), and the model keeps the memory
    it was built with afterwards."""
    model, s = xl(mem_len=4), streams()
    short = loss_by_stream_and_position(model, s, 8, mem_len=0, clamp_len=None)
    long = loss_by_stream_and_position(model, s, 8, mem_len=16, clamp_len=3)
    assert not torch.allclose(short, long)
    assert model.mem_len == 4
    assert torch.isfinite(long).all() and (long > 0).all()


def test_a_difference_is_decided_against_twice_its_standard_error():
    # `paired(a, b)` is the mean of b - a: positive when a (the longer memory) has the lower loss.
    d, se = paired([1.0, 1.1, 0.9, 1.0], [1.2, 1.3, 1.1, 1.2])
    assert d == pytest.approx(0.2) and se == pytest.approx(0.0, abs=1e-12)
    assert verdict(d, se) == "holds"
    assert verdict(-0.2, 0.01) == "fails"
    assert verdict(0.019, 0.01) == "not resolved"
    d, se = paired([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
    assert d == pytest.approx(0.0) and se == pytest.approx(0.5 / math.sqrt(3))


def test_the_attention_by_region_adds_up_and_follows_the_memories():
    """Every layer's attention on compressed memory, memory and segment sums to 1; the per-position means
    cover the compressed slots, the memories and the segment, in that order."""
    torch.manual_seed(0)
    model = CompressiveTransformer(num_tokens=VOCAB, dim=16, depth=2, heads=2, mem_len=8, cmem_len=4,
                                   compression_rate=2).eval()
    rows = streams(batch=2, length=8 * 8)
    mass = attention_by_region(model, rows, seq_len=8, segments=8)
    assert len(mass["layers"]) == 2
    for layer in mass["layers"]:
        assert sum(layer) == pytest.approx(1.0, abs=1e-5)
        assert all(share > 0 for share in layer)  # the memories were filled before the last segment
    assert len(mass["by_position"]) == 4 + 8 + 8
    assert sum(mass["by_position"]) == pytest.approx(1.0, abs=1e-5)
    assert mass["regions"] == pytest.approx([sum(l[k] for l in mass["layers"]) / 2 for k in range(3)])


def test_the_attention_by_region_refuses_memories_not_yet_full():
    """With too few segments read before the last, the regions would be cut at the wrong keys: refused."""
    torch.manual_seed(0)
    model = CompressiveTransformer(num_tokens=VOCAB, dim=16, depth=1, heads=2, mem_len=8, cmem_len=4,
                                   compression_rate=2).eval()
    with pytest.raises(ValueError, match="not full after 1 segment"):
        attention_by_region(model, streams(batch=2, length=16), seq_len=8, segments=2)


def test_the_feedback_options_rows_are_the_models_they_say():
    """`bench.feedback_options`: each row's options build the model its label names (the default, learned
    position keys, an adaptive span), and each claim compares two of its rows."""
    from bench.feedback_options import CLAIMS, ROWS
    from labml_nn.experiments.config import parse_config
    from labml_nn.transformers.feedback.experiment import Config, model_kwargs
    built = {row.key: model_kwargs(parse_config(Config, row.options), VOCAB) for row in ROWS}
    assert built["sinusoid"]["position_keys"] == "sinusoid" and not built["sinusoid"].get("span_ramp")
    assert built["learned"]["position_keys"] == "learned"
    assert built["span"]["span_ramp"] == 8.0 and built["span"]["position_keys"] == "sinusoid"
    assert all(kwargs["mem_len"] == 32 for kwargs in built.values())
    assert {side for _, _, a, b in CLAIMS for side in (a, b)} <= set(built)
