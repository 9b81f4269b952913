"""The pictures of the pages read what the model computed (labml_nn/experiments/pictures.py)."""
import pytest
import torch

from labml_nn.experiments.pictures import (attention_by_distance, learned_spans, plot_spans, record_attention,
                                           segment_attention)
from labml_nn.transformers.feedback import FeedbackTransformer
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


def small_span_model(span_ratios):
    r"""A Feedback Transformer with an adaptive span ($L$ = 8, $\rho$ = 4) whose ratios $z$ are `span_ratios`,
    `[depth, heads]`."""
    model = FeedbackTransformer(num_tokens=11, dim=16, depth=len(span_ratios), heads=len(span_ratios[0]),
                                dim_head=4, mem_len=8, span_ramp=4)
    with torch.no_grad():
        for layer, z in zip(model.layers, span_ratios):
            layer.attn.span_ratio.copy_(torch.tensor(z))
    return model


def test_learned_spans_are_z_times_L_per_layer_and_head():
    ratios = [[0.0, 0.25, 1.0], [0.5, 0.0, 0.125]]
    spans = learned_spans(small_span_model(ratios))
    assert spans.shape == (2, 3)
    # $zL$ with $L$ = 8, layer by layer, head by head: the layers are not reordered or averaged.
    assert spans.tolist() == [[0.0, 2.0, 8.0], [4.0, 0.0, 1.0]]


def test_learned_spans_refuses_a_model_without_a_span():
    model = FeedbackTransformer(num_tokens=11, dim=16, depth=2, heads=2, mem_len=8)
    with pytest.raises(ValueError, match="layer 0 .* no adaptive span"):
        learned_spans(model)


def test_plot_spans_draws_a_bar_and_a_ramp_per_head_and_writes_a_png(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    spans = learned_spans(small_span_model([[0.0, 0.25], [0.5, 1.0], [0.0, 0.0]]))
    fig = plot_spans(spans, mem_len=8, span_ramp=4, title="spans")
    ax = fig.axes[0]
    bars = ax.patches
    # Six spans, then six ramps stacked on them from $zL$ to $zL + \rho$.
    assert len(bars) == 12
    assert [b.get_height() for b in bars[:6]] == spans.ravel().tolist()
    assert [(b.get_y(), b.get_height()) for b in bars[6:]] == [(s, 4.0) for s in spans.ravel().tolist()]
    # The window $L$ as a horizontal line, and the layers named 1..3.
    assert any(line.get_ydata()[0] == 8 for line in ax.get_lines())
    assert {t.get_text() for t in ax.texts} >= {"layer 1", "layer 2", "layer 3"}
    path = tmp_path / "spans.png"
    fig.savefig(path)
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_spans_picture_reruns_the_reports_command_into_its_own_checkpoints():
    import sys
    from scripts.pictures import SPAN_CHECKPOINTS, span_command, span_run
    result = span_run()
    # The run the page draws is the deterministic one: a fixed seed, one thread.
    assert result["seed"] == 0 and "--seed 0" in result["command"] and "--threads 1" in result["command"]
    command = span_command(result["command"], "/tmp/summary.json")
    assert command[0] == sys.executable and command[1:3] == ["-m", "labml_nn.transformers.feedback.experiment"]
    assert command[command.index("--checkpoint-dir") + 1] == SPAN_CHECKPOINTS
    assert command[-2:] == ["--summary", "/tmp/summary.json"]
    # Every other option is the report's, in its order.
    original = result["command"].split()[1:]
    at = original.index("--checkpoint-dir") + 1
    assert command[1:-2] == original[:at] + [SPAN_CHECKPOINTS] + original[at + 1:]


@pytest.mark.checks("labml_nn/transformers/adaptive_span.py")
def test_the_adaptive_span_pages_reading_of_its_picture_is_the_reports():
    """The page says every head's span stayed within a fraction of a key of z = 0, whatever its layer: the
    numbers its caption quotes must say so (a picture drawn again from another run must rewrite the prose)."""
    import json
    from pathlib import Path
    figures = json.loads((Path(__file__).resolve().parent.parent / "bench" / "reports" / "pictures.json")
                         .read_text())["figures"]
    assert figures["adaptive_span_short"] == figures["adaptive_span_heads"]
    assert float(figures["adaptive_span_max"]) < 1.0
