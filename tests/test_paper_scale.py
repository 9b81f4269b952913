"""
The papers' own setting, proven small on a CPU: enwik8-format corpora (labml_nn/experiments/corpora.py), the
papers' presets (presets.py), mixed precision, gradient accumulation, throughput and model FLOP utilisation
(trainer.py), and evaluation of a whole split with a longer memory (evaluate.py).
"""
import dataclasses
import math
import random
import zipfile
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from labml_nn.experiments import corpora, evaluate
from labml_nn.experiments.config import parse_config
from labml_nn.experiments.corpora import Corpus, corpus_bytes, prepare_bytes
from labml_nn.experiments.data import IGNORE, DataError
from labml_nn.experiments.presets import PRESETS, presets_of
from labml_nn.experiments.trainer import dataset
from labml_nn.transformers.compressive import CompressiveTransformer
from labml_nn.transformers.feedback import FeedbackTransformer
from labml_nn.transformers.lm import evaluation_memory
from labml_nn.transformers.xl import TransformerXL


pytestmark = pytest.mark.checks("labml_nn/experiments/corpora.py")


def wiki_bytes(n_words: int = 30000, seed: int = 0) -> bytes:
    """Text shaped like enwik8: XML markup around words, some of them with multi-byte UTF-8 characters."""
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "Zürich", "naïve", "☃", "[[link]]"]
    return ("<page><title>Test</title><text>" + " ".join(rng.choice(words) for _ in range(n_words))
            + "</text></page>\n").encode("utf-8")


def write_zip(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, data)
    return path


@pytest.fixture
def small_enwik8(tmp_path, monkeypatch):
    """A small archive in enwik8's format (a zip holding one member called `enwik8`), enwik8's published
    size unchecked for it, and a cache of its own."""
    data = wiki_bytes()
    monkeypatch.setitem(corpora.CORPORA, "enwik8", Corpus("enwik8", "http://127.0.0.1:9/enwik8.zip", "enwik8", None,
                                                          "ENWIK8_PATH"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ENWIK8_PATH", raising=False)
    return write_zip(tmp_path / "enwik8.zip", "enwik8", data), data


# ## The corpora

def test_an_archive_is_extracted_once_and_read_through_a_memory_map(small_enwik8, tmp_path):
    archive, data = small_enwik8
    corpus = corpora.CORPORA["enwik8"]
    raw = corpus_bytes(corpus, str(archive))
    assert raw.dtype == torch.uint8 and bytes(raw.tolist()) == data
    # The bytes are the extracted file's, mapped into memory (Linux lists the mapping), not a copy in
    # Python objects.
    extracted = tmp_path / "cache" / "labml_nn" / "enwik8"
    assert any(line.rstrip().endswith(str(extracted)) for line in Path("/proc/self/maps").read_text().splitlines())
    stamp = extracted.stat().st_mtime_ns
    corpus_bytes(corpus, str(archive))
    assert extracted.stat().st_mtime_ns == stamp, "the same member is not extracted again"
    # Another archive's member is extracted anew, not mistaken for the cached one.
    other = write_zip(tmp_path / "other.zip", "enwik8", data[::-1])
    assert bytes(corpus_bytes(corpus, str(other)).tolist()) == data[::-1]


@pytest.mark.parametrize("damage", ["truncated", "wrong member", "wrong size", "not a zip"])
def test_a_damaged_or_foreign_archive_is_a_clear_error(damage, tmp_path):
    data = wiki_bytes(2000)
    path = write_zip(tmp_path / "enwik8.zip", "text8" if damage == "wrong member" else "enwik8", data)
    size = len(data) + 1 if damage == "wrong size" else len(data)
    corpus = Corpus("enwik8", "http://example.invalid/enwik8.zip", "enwik8", size, "ENWIK8_PATH")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    elif damage == "not a zip":
        path.write_bytes(data)
    message = {"truncated": "not a complete zip archive", "wrong member": "not 'enwik8'",
               "wrong size": f"{len(data):,} bytes, enwik8 is {size:,}", "not a zip": "not a complete zip"}[damage]
    with pytest.raises(DataError, match=message):
        corpus_bytes(corpus, str(path), cache=tmp_path / "cache")


def test_offline_without_a_local_copy_names_the_url_and_the_option(tmp_path, monkeypatch):
    monkeypatch.delenv("ENWIK8_PATH", raising=False)
    with pytest.raises(DataError, match=r"(?s)127\.0\.0\.1:9/enwik8\.zip.*--data PATH.*ENWIK8_PATH"):
        corpus_bytes(corpora.CORPORA["enwik8"], url="http://127.0.0.1:9/enwik8.zip", cache=tmp_path)
    assert not list(tmp_path.glob("*.partial")), "no partial download is left behind"


def test_a_byte_vocabulary_round_trips_utf8_and_splits_90_5_5():
    data = wiki_bytes(5000)
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    prepared = prepare_bytes(raw, chunk=1000)  # chunks much smaller than the corpus
    vocab = prepared.vocab
    assert vocab.byte_level and len(vocab) == len(set(data))
    assert prepared.train.dtype == torch.uint8
    assert (len(prepared.train), len(prepared.valid), len(prepared.test)) == (
        int(len(data) * 0.9), int(len(data) * 0.05), len(data) - int(len(data) * 0.9) - int(len(data) * 0.05))
    text = data.decode("utf-8")
    assert vocab.decode(torch.cat([prepared.train, prepared.valid, prepared.test])) == text
    assert vocab.decode(vocab.encode("naïve ☃")) == "naïve ☃"
    # "ø" is the bytes c3 b8: the first starts "ü" and "ï" of the text too, the second occurs nowhere.
    assert vocab.unknown("ø") == "\xb8"


# ## Training and evaluating on a byte corpus

def test_an_experiment_trains_and_evaluates_on_a_byte_corpus(small_enwik8, tmp_path, shakespeare, tiny_args):
    archive, data = small_enwik8
    from labml_nn.transformers.xl import experiment as xl
    args = [a if a != shakespeare else str(archive) for a in tiny_args()]
    summary = xl.main([*args, "--dataset", "enwik8", "--prompt", "Zürich ☃", "--steps", "6"])
    assert summary["finished"] and math.isfinite(summary["valid_bpc"])
    run = tmp_path / "checkpoints" / "xl"
    # The whole test split, once, with the training memory, and with a longer, clamped one.
    plain = evaluate.main(["--checkpoint", str(run), "--split", "test"])
    longer = evaluate.main(["--checkpoint", str(run), "--split", "test", "--mem-len", "48", "--clamp-len", "20",
                            "--seq-len", "8"])
    test_len = len(data) - int(len(data) * 0.9) - int(len(data) * 0.05)
    assert plain["characters"] == longer["characters"] == test_len - 1  # every character after the first
    assert plain["mem_len"] == 16 and longer["mem_len"] == 48 and longer["seq_len"] == 8
    assert math.isfinite(plain["bpc"]) and plain["bpc"] != longer["bpc"]
    from labml_nn.experiments import sample
    assert sample.main(["--checkpoint", str(run), "--prompt", "Zürich", "--length", "5"]).startswith("Zürich")


@pytest.mark.checks("labml_nn/transformers/lm.py", "labml_nn/transformers/xl/relative_mha.py")
def test_an_evaluation_memory_is_longer_and_clamps_distances_then_goes_back():
    torch.manual_seed(0)
    model = TransformerXL(num_tokens=11, dim=16, depth=1, heads=2, mem_len=4).eval()
    x = torch.randint(0, 11, (1, 10))
    with evaluation_memory(model, mem_len=8, clamp_len=3):
        _, memory = model(x, return_memory=True)
        r = model.layers[0].attn.position_keys(6, torch.device("cpu"))
        # Distances 5, 4, 3, 2, 1, 0: the first three are all encoded as 3.
        assert torch.equal(r[:, 0], r[:, 2]) and not torch.equal(r[:, 2], r[:, 3])
    assert memory[0].shape[1] == 8 and model.mem_len == 4 and model.layers[0].attn.clamp_len is None
    fb = FeedbackTransformer(num_tokens=11, dim=16, depth=1, heads=2, mem_len=4)
    with evaluation_memory(fb, mem_len=9):
        _, memory = fb(x, return_memory=True)
    assert memory.shape[1] == 9 and fb.layers[0].attn.max_distance == 4


# ## The papers' configurations

def built(preset_name: str):
    preset = PRESETS[preset_name]
    o = preset.options
    common = dict(num_tokens=205, dim=o["dim"], depth=o["depth"], heads=o["heads"], dim_head=o["dim_head"],
                  ff_mult=o["ff_mult"], mem_len=o["mem_len"])
    with torch.device("meta"):
        if preset.experiment == "xl":
            return TransformerXL(**common)
        if preset.experiment == "compressive":
            return CompressiveTransformer(**common, cmem_len=o["cmem_len"], compression_rate=o["compression_rate"])
        # The model `--preset` builds: the experiment's own constructor arguments.
        from labml_nn.transformers.feedback import experiment as feedback
        config = parse_config(feedback.Config, ["--preset", preset_name], presets=presets_of("feedback"))
        return FeedbackTransformer(**feedback.model_kwargs(config, common["num_tokens"]))


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.checks("labml_nn/experiments/presets.py")
def test_each_preset_has_the_papers_parameter_count():
    # Transformer-XL: the paper's 41M and 277M, within the untied output layer.
    for name in ("xl-enwik8-base", "xl-enwik8-large"):
        assert parameters(built(name)) == pytest.approx(PRESETS[name].paper_parameters, rel=0.01), name
    # The compressive model: the 24-layer Transformer-XL plus one convolution of c · d² weights per layer.
    compressive = built("compressive-enwik8")
    o = PRESETS["compressive-enwik8"].options
    convolutions = sum(p.numel() for p in compressive.compression_parameters())
    assert convolutions == o["depth"] * (o["compression_rate"] * o["dim"] ** 2 + o["dim"])
    assert parameters(compressive) - convolutions == pytest.approx(277e6, rel=0.01)
    # The Feedback Transformer: the authors' enwik8 model, 76.84M parameters counted from their code (76,837,178
    # with their vocabulary of 205), within 1 %. The difference is exactly what the page's table of differences
    # lists: a bias on each layer's W_O and a LayerNorm (gain and shift) in each layer's memory projection.
    feedback = built("feedback-enwik8")
    assert PRESETS["feedback-enwik8"].paper_parameters == 76.84e6
    assert parameters(feedback) == pytest.approx(76.84e6, rel=0.01)
    o = PRESETS["feedback-enwik8"].options
    assert parameters(feedback) - 76_837_178 == o["depth"] * (o["dim"] + 2 * o["dim"])


@pytest.mark.checks("labml_nn/experiments/presets.py")
def test_a_preset_sets_the_defaults_and_options_still_override_it():
    from labml_nn.experiments.config import UsageError
    from labml_nn.transformers.feedback import experiment as feedback
    from labml_nn.transformers.xl import experiment as xl
    config = parse_config(xl.Config, ["--preset", "xl-enwik8-base", "--steps", "10"], presets=presets_of("xl"))
    assert (config.dim, config.depth, config.mem_len, config.dataset, config.clamp_len) == (512, 12, 512, "enwik8", 820)
    assert config.steps == 10
    with pytest.raises(UsageError, match="expected one of this experiment's presets"):
        parse_config(xl.Config, ["--preset", "feedback-enwik8"], presets=presets_of("xl"))
    fb = parse_config(feedback.Config, ["--preset", "feedback-enwik8"], presets=presets_of("feedback"))
    assert (fb.mem_len, fb.shared_kv, fb.ff_mult, fb.window) == (8192, False, 8, 1)
    # The authors' options, and the trainer's options that make AdamW their Adam (no weight decay, no decay of
    # the learning rate after the warm-up, beta2 0.999).
    assert (fb.activation, fb.position_keys, fb.span_ramp, fb.span_loss, fb.span_trim_step, fb.span_init) == (
        "relu", "learned", 32.0, 5e-7, 64, 0.0)
    assert (fb.weight_decay, fb.min_lr_ratio, fb.adam_beta2, fb.lr, fb.warmup_steps) == (0.0, 1.0, 0.999, 1.5e-3, 8000)
    assert "feedback-enwik8: 0.962 bpc in the paper, 76.84M parameters" in feedback.EXPERIMENT.help()


# ## Training at scale, small

PATHS = {
    "xl": ("labml_nn.transformers.xl.experiment", []),
    "compressive": ("labml_nn.transformers.compressive.experiment",
                    ["--mem-len", "8", "--cmem-len", "4", "--compression-rate", "2"]),
    "feedback, hand-written step": ("labml_nn.transformers.feedback.experiment", ["--curriculum-steps", "0"]),
    "feedback, autograd step": ("labml_nn.transformers.feedback.experiment", ["--curriculum-steps", "0",
                                                                              "--step", "autograd"]),
    "feedback, windows": ("labml_nn.transformers.feedback.experiment", ["--curriculum-steps", "0", "--window", "4"]),
}


@pytest.mark.checks("labml_nn/experiments/trainer.py")
@pytest.mark.parametrize("path", sorted(PATHS))
def test_bfloat16_trains_every_model_and_path_close_to_float32(path, tmp_path, shakespeare, tiny_args):
    import importlib
    module, extra = PATHS[path]
    experiment = importlib.import_module(module)
    result = {}
    for dtype in ("float32", "bfloat16"):
        result[dtype] = experiment.main(tiny_args("--name", dtype, "--steps", "4",
                                                  "--dtype", dtype, *extra))
    assert math.isfinite(result["bfloat16"]["valid_bpc"])
    # Four steps from the same weights: bfloat16's 8-bit mantissa moves the loss by a few hundredths at most.
    assert result["bfloat16"]["valid_bpc"] == pytest.approx(result["float32"]["valid_bpc"], abs=0.05)


@pytest.mark.checks("labml_nn/experiments/trainer.py")
def test_float16_trains_with_a_gradient_scaler(tmp_path, shakespeare, tiny_args):
    from labml_nn.transformers.xl import experiment as xl
    a = xl.main(tiny_args("--name", "f32", "--steps", "4"))
    b = xl.main(tiny_args("--name", "f16", "--steps", "4", "--dtype", "float16"))
    assert b["valid_bpc"] == pytest.approx(a["valid_bpc"], abs=0.05)


def uneven_targets(config, vocab):
    """Tiny Shakespeare with a target at every position of the first half of the text and at every fifth
    of the second: the first streams have many more targets than the last."""
    data = dataset(config, vocab)
    ids = data.train
    targets = torch.cat([ids[1:], ids[:1]])
    second_half = torch.arange(len(ids)) >= len(ids) // 2
    targets[second_half & (torch.arange(len(ids)) % 5 != 0)] = IGNORE
    return dataclasses.replace(data, train=ids, train_targets=targets)


@pytest.mark.checks("labml_nn/experiments/trainer.py")
@pytest.mark.parametrize("targets", ["every position", "uneven"])
def test_gradient_accumulation_gives_the_gradients_of_one_large_batch(targets, tmp_path, tiny_args, monkeypatch):
    """Two micro-batches of 2 streams, each with its own memory, against one batch of 4 streams: after two
    steps (so that the memory is used), the same gradients; also when the micro-batches hold different
    numbers of targets (each then weighs its share of the targets)."""
    from labml_nn.experiments.run import Run
    from labml_nn.experiments.trainer import train
    from labml_nn.transformers.xl import experiment as xl
    experiment = xl.EXPERIMENT if targets == "every position" else dataclasses.replace(xl.EXPERIMENT,
                                                                                      data=uneven_targets)
    grads = {}
    for name, extra in (("accumulated", ["--batch-size", "2", "--grad-accum", "2"]), ("one", ["--batch-size", "4"])):
        args = tiny_args("--name", name, "--grad-clip", "0", "--steps", "2", *extra)
        with Run(parse_config(xl.Config, args), experiment) as run:
            for _, optimiser in run.optimisers:
                monkeypatch.setattr(optimiser, "step", lambda *a, **k: None)  # keep the weights: compare gradients
            train(run)
            grads[name] = {n: p.grad.clone() for n, p in run.module.named_parameters()}
    for n in grads["one"]:
        torch.testing.assert_close(grads["accumulated"][n], grads["one"][n], rtol=1e-5, atol=1e-7, msg=n)


# ## Throughput and FLOPs

@pytest.mark.checks("labml_nn/transformers/xl/__init__.py", "labml_nn/transformers/compressive/__init__.py",
                    "labml_nn/transformers/feedback/__init__.py")
@pytest.mark.parametrize("name", ["xl", "compressive", "feedback"])
def test_flops_per_token_agree_with_a_count_of_the_operations(name):
    """The formula on each page, against PyTorch's count of the FLOPs of a training step's forward and
    backward with a full memory (matrix products; the elementwise operations are left out by both)."""
    torch.manual_seed(0)
    n = 8
    common = dict(num_tokens=32, dim=32, depth=2, heads=2)
    model = {"xl": lambda: TransformerXL(**common, mem_len=8),
             "compressive": lambda: CompressiveTransformer(**common, mem_len=8, cmem_len=4, compression_rate=2),
             "feedback": lambda: FeedbackTransformer(**common, mem_len=8, step="autograd")}[name]()
    x = torch.randint(0, 32, (2, n))
    memory = None
    for _ in range(4):  # fill the memories
        _, memory = model(x, memory=memory, return_memory=True)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x, memory=memory)
        out.sum().backward()
    counted = counter.get_total_flops() / x.numel()
    assert model.flops_per_token(n) == pytest.approx(counted, rel=0.25), (model.flops_per_token(n), counted)


@pytest.mark.checks("labml_nn/experiments/trainer.py")
def test_the_summary_reports_tokens_per_second_and_model_flop_utilisation(tmp_path, shakespeare, tiny_args):
    from labml_nn.transformers.xl import experiment as xl
    summary = xl.main(tiny_args("--steps", "3", "--peak-tflops", "1"))
    rate = summary["tokens_per_s"]
    # `train_seconds` is rounded to hundredths.
    seconds = summary["train_seconds"]
    assert summary["tokens"] / (seconds + 0.006) <= rate <= summary["tokens"] / max(seconds - 0.006, 1e-9)
    model = TransformerXL(**xl.model_kwargs(xl.Config(dim=32, depth=2, heads=2, dim_head=16, mem_len=16), 65))
    assert summary["mfu"] == pytest.approx(model.flops_per_token(16) * rate / 1e12, rel=1e-3)  # the rate is rounded
