"""
Transformer-XL side by side with x-transformers and labml-nn 0.5.1.

At CONFIG (vocab 65, dim 128, heads 4, depth 4, feed-forward 512, segment 32, memory 32, batch 8,
dropout 0) this measures, interleaved in one process with 2 threads:

* training-step tokens/s: forward, backward and an AdamW step on a segment, carrying memory; ours is the
  readable model of the page, eager and under `torch.compile` (its compile time reported apart). The
  training comparison is three interleaved runs; each ratio is the median of the three runs' ratios;
* generation tokens/s: 64 new tokens after a 32-token prompt, batch 8, top-k sampling; ours through the
  fast generation page (`generate`, the default) and through the model's own forward pass, token by
  token (`generate(..., cached=False)`); and at batch 1, one 32-token prompt continued by 128 tokens,
  greedily, which is how a reader samples;
* cached evaluation at attention length 512: the per-token cost of our cached generation with a
  512-position memory against recomputing a full forward over the last 512 tokens for every token;
* peak memory of a training run of each model, each in a fresh process.

Run it with `make bench` (or `python -m bench.xl` inside .venv-bench).
"""
import argparse
import json
import sys
from typing import Dict, List, Optional

import torch
from torch import nn

from bench.common import (CONFIG, compile_model, first_call_seconds,
                          import_labml_nn_release, interleaved, lm_loss, median,
                          run_isolated, setup_threads, times, training_memory_mb, write_report)
from labml_nn.transformers.xl import TransformerXL

C = CONFIG
TOKENS_PER_STEP = C["batch_size"] * C["seq_len"]


# ---------------------------------------------------------------------------------------------------
# The three models, each behind the same two closures: `train_step()` and `generate(prompt, n)`.

class Runner:
    name: str
    model: nn.Module

    def train_step(self) -> None:
        raise NotImplementedError

    def generate(self, prompt: torch.Tensor, n: int) -> torch.Tensor:
        raise NotImplementedError


def _data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, C["num_tokens"], (C["batch_size"], 64 * C["seq_len"] + 1), generator=g)


class _Stream:
    """Consecutive segments of a fixed random stream, so memory carries over as in training."""

    def __init__(self):
        self.data, self.pos = _data(), 0

    def next(self):
        s = C["seq_len"]
        if self.pos + s + 1 > self.data.shape[1]:
            self.pos = 0
        x, y = self.data[:, self.pos:self.pos + s], self.data[:, self.pos + 1:self.pos + s + 1]
        self.pos += s
        return x, y, self.pos == s



class Ours(Runner):
    name = "ours"

    def __init__(self, mem_len: int = C["mem_len"], compiled: bool = False, cached: bool = True):
        torch.manual_seed(0)
        self.model = TransformerXL(num_tokens=C["num_tokens"], dim=C["dim"], depth=C["depth"], heads=C["heads"],
                                   mem_len=mem_len, ff_mult=C["ff"] // C["dim"])
        self.forward = compile_model(self.model) if compiled else self.model
        self.cached = cached
        if compiled:
            self.name = "ours, torch.compile"
        elif not cached:
            self.name = "ours, generation by forward calls"
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.stream, self.memory = _Stream(), None

    def train_step(self):
        x, y, restart = self.stream.next()
        if restart:
            self.memory = None
        logits, self.memory = self.forward(x, memory=self.memory, return_memory=True)
        self.opt.zero_grad(set_to_none=True)
        lm_loss(logits, y).backward()
        self.opt.step()

    def generate(self, prompt, n, greedy: bool = False):
        return self.model.generate(prompt, n, top_k=1 if greedy else 8, cached=self.cached)


class XTransformers(Runner):
    name = "x-transformers"

    def __init__(self):
        from x_transformers import AutoregressiveWrapper, Decoder, TransformerWrapper
        torch.manual_seed(0)
        self.model = TransformerWrapper(num_tokens=C["num_tokens"], max_seq_len=C["seq_len"],
                                        max_mem_len=C["mem_len"],
                                        attn_layers=Decoder(dim=C["dim"], depth=C["depth"], heads=C["heads"],
                                                            rel_pos_bias=True, ff_mult=C["ff"] // C["dim"]))
        self.wrapper = AutoregressiveWrapper(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.stream, self.mems = _Stream(), None

    def train_step(self):
        x, y, restart = self.stream.next()
        if restart:
            self.mems = None
        logits, self.mems = self.model(x, mems=self.mems, return_mems=True)
        self.opt.zero_grad(set_to_none=True)
        lm_loss(logits, y).backward()
        self.opt.step()

    def generate(self, prompt, n, greedy: bool = False):
        # The wrapper samples with top-k filtering (greedily at temperature 0) and caches keys/values by default.
        self.model.eval()
        if greedy:
            out = self.wrapper.generate(prompt, n, temperature=0.0)
        else:
            out = self.wrapper.generate(prompt, n, filter_kwargs=dict(k=8))
        self.model.train()
        return out


class LabmlNN(Runner):
    """labml-nn 0.5.1's Transformer-XL in a wrapper that does what its experiment's model does."""
    name = "labml-nn 0.5.1"

    def __init__(self):
        mods = import_labml_nn_release("labml_nn.transformers.xl", "labml_nn.transformers.feed_forward",
                                       "labml_nn.transformers.xl.relative_mha", "labml_nn.transformers.utils")
        xl = mods["labml_nn.transformers.xl"]
        ff = mods["labml_nn.transformers.feed_forward"]
        rel = mods["labml_nn.transformers.xl.relative_mha"]
        self.subsequent_mask = mods["labml_nn.transformers.utils"].subsequent_mask
        torch.manual_seed(0)
        d = C["dim"]
        layer = xl.TransformerXLLayer(d_model=d, self_attn=rel.RelativeMultiHeadAttention(C["heads"], d, 0.0),
                                      feed_forward=ff.FeedForward(d, C["ff"], 0.0, activation=nn.GELU()), dropout_prob=0.0)
        self.emb = nn.Embedding(C["num_tokens"], d)
        self.xl = xl.TransformerXL(layer, C["depth"])
        self.head = nn.Linear(d, C["num_tokens"])
        self.model = nn.ModuleList([self.emb, self.xl, self.head])
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.stream, self.mem = _Stream(), []

    def forward(self, x: torch.Tensor, mem: List[torch.Tensor]):
        # labml-nn is sequence-first: `[seq_len, batch_size]`; mask `[seq_len, mem_len + seq_len, 1]`.
        x = x.t()
        m_len = len(mem[0]) if mem else 0
        mask_x = self.subsequent_mask(len(x))
        mask = torch.cat([mask_x.new_ones(len(x), m_len, 1), mask_x], dim=1) if m_len else mask_x
        out, new_mem = self.xl(self.emb(x), mem, mask)
        if mem:
            new_mem = [torch.cat([m, n], dim=0) for m, n in zip(mem, new_mem)]
        new_mem = [m[-C["mem_len"]:].detach() for m in new_mem]
        return self.head(out).transpose(0, 1), new_mem

    def train_step(self):
        x, y, restart = self.stream.next()
        if restart:
            self.mem = []
        logits, self.mem = self.forward(x, self.mem)
        self.opt.zero_grad(set_to_none=True)
        lm_loss(logits, y).backward()
        self.opt.step()


# ---------------------------------------------------------------------------------------------------

def measure_training(runners: List[Runner], rounds: int, runs: int = 3) -> List[Dict[str, float]]:
    """Tokens per second of each runner's training step, in `runs` interleaved runs of `rounds` rounds each."""
    fns = {r.name: r.train_step for r in runners}
    results = []
    for _ in range(runs):
        samples = interleaved(fns, rounds=rounds, warmup=3, calls=4)
        results.append({name: TOKENS_PER_STEP / median(s) for name, s in samples.items()})
    return results


def measure_generation(runners: List[Runner], rounds: int, batch_size: int = C["batch_size"], new_tokens: int = 64,
                       greedy: bool = False) -> Dict[str, float]:
    prompt = _data()[:batch_size, :C["seq_len"]]
    fns = {r.name: (lambda r=r: r.generate(prompt, new_tokens, greedy)) for r in runners}
    samples = interleaved(fns, rounds=rounds, warmup=1)
    return {name: batch_size * new_tokens / median(s) for name, s in samples.items()}


def measure_cached_eval(rounds: int, context: int = 512, new_tokens: int = 32) -> Dict[str, float]:
    """Per-token time with a 512-position memory (cached) against a full 512-token forward per token."""
    ours = Ours(mem_len=context).model.eval()
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, C["num_tokens"], (1, context), generator=g)

    def cached():
        # The prompt pass is the same in both; time only the tokens after it.
        ours.generate(prompt, new_tokens, top_k=1)

    def cached_prompt_only():
        ours.generate(prompt, 1, top_k=1)

    @torch.no_grad()
    def recompute():
        seq = prompt
        for _ in range(new_tokens):
            nxt = ours(seq[:, -context:])[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)

    s = interleaved({"cached": cached, "prompt": cached_prompt_only, "recompute": recompute}, rounds=rounds,
                    warmup=1)
    per_token_cached = (median(s["cached"]) - median(s["prompt"])) / (new_tokens - 1)
    per_token_recompute = median(s["recompute"]) / new_tokens
    return dict(cached_ms=per_token_cached * 1e3, recompute_ms=per_token_recompute * 1e3,
                speedup=per_token_recompute / per_token_cached)


def _make(name: str) -> Runner:
    return {"ours": Ours, "x-transformers": XTransformers, "labml-nn 0.5.1": LabmlNN}[name]()


def peak_memory_child(name: str, steps: int = 20) -> dict:
    """Run in a fresh process: the memory `steps` training steps need above the built model."""
    setup_threads(2)
    runner = _make(name)
    return dict(name=name, **training_memory_mb(runner.train_step, steps))


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds (median taken)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(peak_memory_child(args.memory_child)))
        return {}
    setup_threads(2)
    runners = [Ours(), XTransformers(), LabmlNN()]
    # The readable model under torch.compile: its first steps compile (the memory grows from empty to
    # full over the first two, which compiles twice); that time is reported apart.
    compiled = Ours(compiled=True)
    compile_seconds = sum(first_call_seconds(compiled.train_step) for _ in range(3))
    runs = measure_training(runners + [compiled], args.rounds)
    # Each model's rate is the median over the runs; each ratio the median of the runs' ratios.
    train = {name: median([run[name] for run in runs]) for name in runs[0]}
    ratio = lambda name: median([run["ours"] / run[name] for run in runs])
    readable = Ours(cached=False)
    gen = measure_generation([runners[0], runners[1], readable], args.rounds)
    gen_1 = measure_generation([runners[0], runners[1]], args.rounds, batch_size=1, new_tokens=128, greedy=True)
    cached = measure_cached_eval(max(3, args.rounds // 2))
    memory = {r.name: run_isolated("bench.xl", "--memory-child", r.name) for r in runners}

    rows = []
    for r in runners + [compiled, readable]:
        rows.append({
            "model": r.name,
            "train tokens/s": train.get(r.name, "n/a"),
            "ours ÷ this (train)": ratio(r.name) if r.name in train else "n/a",
            "generate tokens/s": gen.get(r.name, "n/a"),
            "ours ÷ this (generate)": gen["ours"] / gen[r.name] if r.name in gen else "n/a",
            "generate tokens/s, batch 1": gen_1.get(r.name, "n/a"),
            "ours ÷ this (generate, batch 1)": gen_1["ours"] / gen_1[r.name] if r.name in gen_1 else "n/a",
            "training memory MiB": memory[r.name]["train_mb"] if r.name in memory else "n/a",
        })
    figures = dict(train_vs_x_transformers=times(ratio("x-transformers")),
                   train_vs_labml_nn=times(ratio("labml-nn 0.5.1")),
                   generate_vs_x_transformers=times(gen["ours"] / gen["x-transformers"]),
                   generate_vs_x_transformers_batch_1=times(gen_1["ours"] / gen_1["x-transformers"]),
                   generate_fast_vs_forward_calls=times(gen["ours"] / gen[readable.name]),
                   cached_eval_speedup=times(cached["speedup"]),
                   compiled_vs_eager=times(1 / ratio(compiled.name)),
                   compile_seconds=f"{compile_seconds:.0f} s")
    per_run = "; ".join(f"{name}: " + ", ".join(f"{run['ours'] / run[name]:.2f}×" for run in runs)
                        for name in ("x-transformers", "labml-nn 0.5.1"))
    notes = (f"Training: {len(runs)} interleaved runs of {args.rounds} rounds, ours ÷ peer in each ({per_run}); "
             f"the table gives the median rate and the median ratio.\n\n"
             f"Which path: 'ours' trains the readable model of the page, eagerly, and generates through the fast "
             f"generation page (`xl/generation.py`, the default of `generate`); 'ours, torch.compile' is the same "
             f"model under `torch.compile` (inductor), whose first three steps took {compile_seconds:.0f} s "
             f"(compiling, not in the rate); 'ours, generation by forward calls' generates with the model's own "
             f"forward pass, token by token (`generate(..., cached=False)`).\n\n"
             f"Cached evaluation at attention length 512 (batch 1): {cached['cached_ms']:.2f} ms per token "
             f"with the key/value cache against {cached['recompute_ms']:.2f} ms recomputing the 512-token context "
             f"for every token: **{cached['speedup']:.1f}× faster**.\n\n"
             "Generation: 64 new tokens after a 32-token prompt, batch 8, top-k 8; at batch 1, 128 new tokens "
             "after one 32-token prompt, greedy; x-transformers through its AutoregressiveWrapper with its "
             "key/value cache. labml-nn 0.5.1 has no cached generation of its own and is not timed for it. Floors: "
             "training ≥ 1.2× both peers, generation ≥ 3× x-transformers at batch 8 and at batch 1, "
             "cached evaluation ≥ 20×. Training memory: the peak resident memory of 20 training steps above "
             "that of the built model and optimiser, each model in a fresh process. Every model has a GELU "
             "feed-forward (labml-nn's is set to GELU; its default is ReLU).")
    path = write_report("xl", "Transformer-XL: training and generation throughput", rows,
                        ["model", "train tokens/s", "ours ÷ this (train)", "generate tokens/s",
                         "ours ÷ this (generate)", "generate tokens/s, batch 1", "ours ÷ this (generate, batch 1)",
                         "training memory MiB"], notes,
                        extra=dict(cached_eval=cached, compile_seconds=compile_seconds, training_runs=runs),
                        figures=figures)
    print(path.read_text())
    return dict(rows=rows, cached=cached)


if __name__ == "__main__":
    main(sys.argv[1:])
