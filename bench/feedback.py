"""
The Feedback Transformer side by side with feedback-transformer-pytorch 0.0.11 and labml-nn 0.5.1.

At CONFIG (vocab 65, dim 128, heads 4, depth 4, feed-forward 512, segment 32, memory 32, batch 8,
dropout 0) this measures, interleaved in one process with 2 threads:

* training-step tokens/s: forward, backward and an AdamW step on a 32-token segment, token by token
  (`window=1`, the paper's model) for every model; ours with its default, hand-written step
  (`feedback/step.py`), with `step="autograd"` (the readable recurrence of the model's page through
  autograd), and with that under `torch.compile`;
* generation tokens/s: 32 new tokens after a 32-token prompt, batch 8, greedy, and at batch 1 128 new
  tokens after one 32-token prompt. feedback-transformer-pytorch has no generator; it is driven token by token with its key/value memory, which is its cached path.
  labml-nn 0.5.1 has no memory across calls and no generator, so it is not timed for generation;
* peak memory of a training run of each model, each in a fresh process;
* the key/value buffer (`AppendKV`) against plain concatenation, in our shared-KV model with the
  memory as long as the segment, at segment lengths 32, 128 and 512.

Run it with `python -m bench.feedback` inside .venv-bench.
"""
import argparse
import json
import sys
from typing import List, Optional

import torch
from torch import nn

from bench.common import (CONFIG, compile_model, first_call_seconds,
                          import_labml_nn_release, interleaved, lm_loss, median,
                          run_isolated, setup_threads, times, training_memory_mb, write_report)
from labml_nn.transformers.feedback import FeedbackTransformer
from labml_nn.transformers.feedback.kv_buffer import ConcatHistory, KVHistory

C = CONFIG
TOKENS_PER_STEP = C["batch_size"] * C["seq_len"]
DIM_HEAD = C["dim"] // C["heads"]


def _data(length: int = C["seq_len"]) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, C["num_tokens"], (C["batch_size"], length + 1), generator=g)



class Runner:
    """A model behind two closures: `train_step()` and `generate(prompt, n)`."""
    name: str
    model: nn.Module

    def setup(self, length: int = C["seq_len"]):
        data = _data(length)
        self.x, self.y = data[:, :-1], data[:, 1:]
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def train_step(self) -> None:
        loss = lm_loss(self.logits(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


class Ours(Runner):
    def __init__(self, shared_kv: bool = True, kv_buffer: bool = True, length: int = C["seq_len"],
                 mem_len: int = C["mem_len"], step: str = "hand-written", compiled: bool = False):
        self.name = "ours" if shared_kv else "ours (per-layer KV)"
        if step != "hand-written":
            self.name += f", step={step}" + (", torch.compile" if compiled else "")
        torch.manual_seed(0)
        self.model = FeedbackTransformer(num_tokens=C["num_tokens"], dim=C["dim"], depth=C["depth"],
                                         heads=C["heads"], dim_head=DIM_HEAD, ff_mult=C["ff"] // C["dim"],
                                         mem_len=mem_len, window=1, shared_kv=shared_kv, step=step)
        # The key/value history: the buffer (the default) or the `torch.cat` it replaces.
        self.history = KVHistory if kv_buffer else ConcatHistory
        self.forward = compile_model(self.model) if compiled else self.model
        self.setup(length)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x, history=self.history)

    def generate(self, prompt, n):
        return self.model.generate(prompt, n, top_k=1)


class Lucidrains(Runner):
    name = "feedback-transformer-pytorch 0.0.11"

    def __init__(self):
        from feedback_transformer_pytorch import FeedbackTransformer as Peer
        torch.manual_seed(0)
        # Its feed-forward is GEGLU with a fixed 4× width, close to our 4× GELU.
        self.model = Peer(num_tokens=C["num_tokens"], dim=C["dim"], depth=C["depth"], mem_len=C["mem_len"],
                          seq_len=1, heads=C["heads"], dim_head=DIM_HEAD)
        self.setup()

    @torch.no_grad()
    def generate(self, prompt, n):
        self.model.eval()
        logits, memory = self.model(prompt, return_memory=True)
        out = [prompt]
        for _ in range(n):
            token = logits[:, -1].argmax(-1, keepdim=True)
            out.append(token)
            logits, memory = self.model(token, memory=memory, return_memory=True)
        return torch.cat(out, 1)


class LabmlNN(Runner):
    """labml-nn 0.5.1's feedback transformers (sequence-first) with an embedding and a readout."""

    def __init__(self, shared_kv: bool = True):
        mods = import_labml_nn_release("labml_nn.transformers.feedback", "labml_nn.transformers.feed_forward")
        fb, ff = mods["labml_nn.transformers.feedback"], mods["labml_nn.transformers.feed_forward"]
        torch.manual_seed(0)
        d = C["dim"]
        layer = fb.FeedbackTransformerLayer(
            d_model=d, attn=fb.FeedbackAttention(C["heads"], d, 0.0, is_kv_precomputed=shared_kv),
            feed_forward=ff.FeedForward(d, C["ff"], 0.0, activation=nn.GELU()), dropout_prob=0.0)
        if shared_kv:
            self.name = "labml-nn 0.5.1 (shared KV)"
            self.transformer = fb.FeedbackTransformerKV(layer, C["depth"], d, C["heads"])
        else:
            self.name = "labml-nn 0.5.1"
            self.transformer = fb.FeedbackTransformer(layer, C["depth"])
        self.model = nn.ModuleList([nn.Embedding(C["num_tokens"], d), self.transformer,
                                    nn.Linear(d, C["num_tokens"])])
        self.setup()

    def logits(self, x):
        emb, transformer, head = self.model
        return head(transformer(emb(x.t()))).transpose(0, 1)


def _make(name: str) -> Runner:
    return {"ours": Ours, "ours (per-layer KV)": lambda: Ours(shared_kv=False),
            "feedback-transformer-pytorch 0.0.11": Lucidrains,
            "labml-nn 0.5.1 (shared KV)": LabmlNN, "labml-nn 0.5.1": lambda: LabmlNN(shared_kv=False)}[name]()


def peak_memory_child(name: str, steps: int = 5) -> dict:
    """Run in a fresh process: the memory a few training steps need above the built model."""
    setup_threads(2)
    if name.startswith("buffer-") or name.startswith("cat-"):
        kind, length = name.split("-")
        runner = Ours(kv_buffer=kind == "buffer", length=int(length), mem_len=int(length))
        steps = 1
    else:
        runner = _make(name)
    return dict(name=name, **training_memory_mb(runner.train_step, steps))


def measure_buffer(lengths=(32, 128, 512)) -> List[dict]:
    """A training step of our shared-KV model with the buffer and with `torch.cat`, memory = segment."""
    rows = []
    for length in lengths:
        runners = {kind: Ours(kv_buffer=kind == "buffer", length=length, mem_len=length)
                   for kind in ("buffer", "cat")}
        rounds = 5 if length <= 128 else 3
        s = interleaved({k: r.train_step for k, r in runners.items()}, rounds=rounds, warmup=1)
        memory = {k: run_isolated("bench.feedback", "--memory-child", f"{k}-{length}") for k in runners}
        rows.append(dict(length=length, buffer_ms=median(s["buffer"]) * 1e3, cat_ms=median(s["cat"]) * 1e3,
                         speedup=median(s["cat"]) / median(s["buffer"]),
                         buffer_growth_mb=memory["buffer"]["train_mb"], cat_growth_mb=memory["cat"]["train_mb"]))
        print(rows[-1], flush=True)
    return rows


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median taken)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(peak_memory_child(args.memory_child)))
        return {}
    setup_threads(2)
    runners = [Ours(), Ours(shared_kv=False), Lucidrains(), LabmlNN(), LabmlNN(shared_kv=False)]
    readable = Ours(step="autograd")
    # The readable step under torch.compile: the whole 32-step recurrence is traced, so the first call
    # compiles for a long time; it is timed apart.
    compiled = Ours(step="autograd", compiled=True)
    compile_seconds = first_call_seconds(compiled.train_step)
    timed = runners + [readable, compiled]
    samples = interleaved({r.name: r.train_step for r in timed}, rounds=args.rounds, warmup=2)
    train = {name: TOKENS_PER_STEP / median(s) for name, s in samples.items()}
    print(train, flush=True)

    new_tokens = 32
    prompt = _data()[:, :C["seq_len"]]
    generators = runners[:3] + [readable]
    samples = interleaved({r.name: (lambda r=r: r.generate(prompt, new_tokens)) for r in generators},
                          rounds=args.rounds, warmup=1)
    gen = {name: C["batch_size"] * new_tokens / median(s) for name, s in samples.items()}
    # Batch 1: one prompt, 128 new tokens, ours against feedback-transformer-pytorch.
    samples = interleaved({r.name: (lambda r=r: r.generate(prompt[:1], 128)) for r in (runners[0], runners[2])},
                          rounds=args.rounds, warmup=1)
    gen_1 = {name: 128 / median(s) for name, s in samples.items()}
    print(gen, gen_1, flush=True)
    memory = {r.name: run_isolated("bench.feedback", "--memory-child", r.name) for r in runners}
    buffer_rows = measure_buffer()

    rows = []
    for r in timed:
        rows.append({
            "model": r.name,
            "train tokens/s": train[r.name],
            "ours ÷ this (train)": train["ours"] / train[r.name],
            "generate tokens/s": gen.get(r.name, "n/a"),
            "ours ÷ this (generate)": gen["ours"] / gen[r.name] if r.name in gen else "n/a",
            "generate tokens/s, batch 1": gen_1.get(r.name, "n/a"),
            "ours ÷ this (generate, batch 1)": gen_1["ours"] / gen_1[r.name] if r.name in gen_1 else "n/a",
            "training memory MiB": memory[r.name]["train_mb"] if r.name in memory else "n/a",
        })
    by_length = {b["length"]: b for b in buffer_rows}
    figures = dict(train_vs_feedback_transformer_pytorch=times(train["ours"] / train[runners[2].name]),
                   train_vs_labml_nn_shared_kv=times(train["ours"] / train[runners[3].name]),
                   generate_vs_feedback_transformer_pytorch=times(gen["ours"] / gen[runners[2].name]),
                   generate_vs_feedback_transformer_pytorch_batch_1=times(gen_1["ours"] / gen_1[runners[2].name]),
                   hand_written_vs_autograd=times(train["ours"] / train[readable.name]),
                   hand_written_vs_compiled=times(train["ours"] / train[compiled.name]),
                   compile_seconds=f"{compile_seconds:.0f} s",
                   buffer_memory_128=times(by_length[128]["cat_growth_mb"] / by_length[128]["buffer_growth_mb"]),
                   buffer_memory_512=times(by_length[512]["cat_growth_mb"] / by_length[512]["buffer_growth_mb"]),
                   buffer_speed_128=times(by_length[128]["speedup"]),
                   buffer_speed_512=times(by_length[512]["speedup"]))
    buffer_table = ["| segment = memory | buffer ms/step | torch.cat ms/step | speed-up | buffer step memory MiB "
                    "| torch.cat step memory MiB |", "|---|---|---|---|---|---|"]
    for b in buffer_rows:
        buffer_table.append(f"| {b['length']} | {b['buffer_ms']:.0f} | {b['cat_ms']:.0f} | {b['speedup']:.2f}× "
                            f"| {b['buffer_growth_mb']:.0f} | {b['cat_growth_mb']:.0f} |")
    notes = (f"Which path: 'ours' and 'ours (per-layer KV)' train and generate with the hand-written step "
             f"(`feedback/step.py`, the default); 'step=autograd' is the readable recurrence of the model's page "
             f"through autograd, and 'torch.compile' that model compiled (its first step took "
             f"{compile_seconds:.0f} s, compiling, not in the rate).\n\n"
             "All models run token by token (`window=1`). Training: forward, backward and AdamW on a fresh "
             "32-token segment. Generation: 32 new tokens after a 32-token prompt, batch 8, greedy, and 128 new "
             "tokens after one prompt at batch 1; "
             "feedback-transformer-pytorch is driven token by token with its key/value memory; labml-nn 0.5.1 "
             "has neither memory across calls nor a generator. Feed-forward: GELU in ours and in labml-nn (set; its "
             "default is ReLU), GEGLU (fixed) in feedback-transformer-pytorch. Floors: training ≥ 1.5× "
             "feedback-transformer-pytorch and ≥ 2× labml-nn's shared-KV model; generation ≥ 2× "
             "feedback-transformer-pytorch at batch 8 and at batch 1; the hand-written step stays the default "
             "while it trains faster than `step=autograd`, eager and compiled.\n\n"
             "Key/value accumulation, our shared-KV model, training step (forward, backward, AdamW), batch 8, "
             "memory as long as the segment (so every step attends to the whole history). Memory: the peak "
             "resident memory of one training step above that of the built model, in a fresh process. Floor: the buffer ≥ 1.5× `torch.cat` at 128, growing "
             "with length.\n\n" + "\n".join(buffer_table))
    path = write_report("feedback", "Feedback Transformer: training and generation throughput", rows,
                        ["model", "train tokens/s", "ours ÷ this (train)", "generate tokens/s",
                         "ours ÷ this (generate)", "generate tokens/s, batch 1", "ours ÷ this (generate, batch 1)",
                         "training memory MiB"], notes,
                        extra=dict(buffer=buffer_rows, compile_seconds=compile_seconds), figures=figures)
    print(path.read_text())
    return dict(rows=rows, buffer=buffer_rows)


if __name__ == "__main__":
    main(sys.argv[1:])
