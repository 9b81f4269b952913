"""
Compressive Transformer: training-step and generation throughput, ours against
compressive-transformer-pytorch 0.4.0 and labml-nn 0.5.1, measured side by side in one process.

Run inside the benchmark environment: `python -m bench.compressive`.

All three models are built at `CONFIG` (vocab 65, dim 128, 4 heads, 4 layers, feed-forward 512,
segments of 32, memory 32, batch 8, no dropout) with a compressed memory of 16 and compression rate 4.

* **Training step**: forward, the language-model loss plus the attention-reconstruction loss,
  backward and an AdamW step, carrying the memory from one segment to the next, as each library's
  own training loop does.
* **Generation**: a 32-token prompt continued by 64 tokens, batch 8, so that positions are evicted and
  compressed along the way; and at batch 1, one 32-token prompt continued by 128 tokens, which is how a
  reader samples. Ours uses `generate` (the cached generation page, `compressive/generation.py`),
  and, as a row of its own, the model's forward pass token by token (`generate(..., cached=False)`);
  compressive-transformer-pytorch
  uses its `AutoregressiveWrapper.generate`, which reruns the current segment for every token;
  labml-nn has no generator, so it is driven token by token with its memory, the way its experiment samples.

labml-nn's package is also called `labml_nn`, so it is installed outside the environment's
site-packages (in `.venv-bench/peers`, or `$LABML_NN_RELEASE_DIR`) and imported with
`bench.common.import_labml_nn_release`.
"""
import argparse
from typing import Dict, List, NamedTuple, Optional

import torch
from torch import nn

from bench.common import (CONFIG, compile_model, first_call_seconds,
                          import_labml_nn_release, interleaved, lm_loss, machine,
                          median, setup_threads, times, write_report)
from labml_nn.transformers.compressive import CompressiveTransformer

CMEM_LEN, CMEM_RATIO = 16, 4
PROMPT_LEN, GEN_LEN, GEN_LEN_BATCH_1 = 32, 64, 128
# ---------------------------------------------------------------------------------------------
# The three models behind one small interface: `train_step()` and `generate(prompt)`.
# ---------------------------------------------------------------------------------------------

def batch(seed: int, length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, CONFIG['num_tokens'], (CONFIG['batch_size'], length), generator=g)


class Ours:
    name = 'ours'

    def __init__(self, compiled: bool = False, cached: bool = True):
        torch.manual_seed(0)
        self.model = CompressiveTransformer(num_tokens=CONFIG['num_tokens'], dim=CONFIG['dim'],
                                            depth=CONFIG['depth'], heads=CONFIG['heads'],
                                            mem_len=CONFIG['mem_len'], cmem_len=CMEM_LEN, compression_rate=CMEM_RATIO,
                                            ff_mult=CONFIG['ff'] // CONFIG['dim'])
        self.forward = compile_model(self.model, static=True) if compiled else self.model
        self.cached = cached
        if compiled:
            self.name = 'ours, torch.compile'
        elif not cached:
            self.name = 'ours, generation by forward calls'
        # The paper's split: the compression functions have their own optimiser.
        self.opt = torch.optim.AdamW(self.model.main_parameters(), lr=1e-4, fused=True)
        self.compression_opt = torch.optim.AdamW(self.model.compression_parameters(), lr=1e-4, fused=True)
        self.memory = None
        self.data = batch(1, CONFIG['seq_len'] + 1)

    def train_step(self):
        x, y = self.data[:, :-1], self.data[:, 1:]
        logits, self.memory, aux = self.forward(x, memory=self.memory, return_memory=True, return_aux_loss=True)
        loss = lm_loss(logits, y)
        self.opt.zero_grad(set_to_none=True)
        self.compression_opt.zero_grad(set_to_none=True)
        (loss + aux).backward()
        self.opt.step()
        self.compression_opt.step()

    def generate(self, prompt, n: int = GEN_LEN):
        return self.model.generate(prompt, n, top_k=1, cached=self.cached)


class LucidrainsPeer:
    name = 'compressive-transformer-pytorch 0.4.0'

    def __init__(self):
        from compressive_transformer_pytorch import AutoregressiveWrapper
        from compressive_transformer_pytorch import CompressiveTransformer as Peer
        torch.manual_seed(0)
        # Its defaults otherwise (GRU-gated residuals, enhanced recurrence, feed-forward 4 x dim = 512).
        self.model = Peer(num_tokens=CONFIG['num_tokens'], dim=CONFIG['dim'], seq_len=CONFIG['seq_len'],
                          depth=CONFIG['depth'], heads=CONFIG['heads'], mem_len=CONFIG['mem_len'],
                          cmem_len=CMEM_LEN, cmem_ratio=CMEM_RATIO)
        self.wrapper = AutoregressiveWrapper(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=True)
        self.memory = None
        self.data = batch(1, CONFIG['seq_len'] + 1)

    def train_step(self):
        x, y = self.data[:, :-1], self.data[:, 1:]
        logits, self.memory, aux = self.model(x, memories=self.memory)
        loss = lm_loss(logits, y)
        self.opt.zero_grad(set_to_none=True)
        (loss + aux.sum()).backward()
        self.opt.step()

    def generate(self, prompt, n: int = GEN_LEN):
        return self.wrapper.generate(prompt, n)


class LabmlMemory(NamedTuple):
    mem: List[torch.Tensor]
    c_mem: List[torch.Tensor]


class LabmlPeer:
    """
    labml-nn's layers and attention-reconstruction loss, sequence-first as it expects, with the memory
    bookkeeping its experiment performs between steps (append, compress the oldest whole groups of c,
    keep the newest `c_mem_len` compressed slots) written out here.
    """
    name = 'labml-nn 0.5.1'

    def __init__(self):
        peer = import_labml_nn_release('labml_nn.transformers.compressive',
                                       'labml_nn.transformers.xl.relative_mha',
                                       'labml_nn.transformers.feed_forward')
        comp = peer['labml_nn.transformers.compressive']
        rel = peer['labml_nn.transformers.xl.relative_mha']
        ff = peer['labml_nn.transformers.feed_forward']
        torch.manual_seed(0)
        d = CONFIG['dim']
        layer = comp.CompressiveTransformerLayer(
            d_model=d, self_attn=rel.RelativeMultiHeadAttention(CONFIG['heads'], d, 0.0),
            feed_forward=ff.FeedForward(d, CONFIG['ff'], 0.0, activation=nn.GELU()), dropout_prob=0.0,
            compress=comp.Conv1dCompression(CMEM_RATIO, d))
        self.emb = nn.Embedding(CONFIG['num_tokens'], d)
        self.transformer = comp.CompressiveTransformer(layer, CONFIG['depth'])
        self.head = nn.Linear(d, CONFIG['num_tokens'])
        self.modules = nn.ModuleList([self.emb, self.transformer, self.head])
        self.ar_loss = comp.AttentionReconstructionLoss(self.transformer.layers)
        self.opt = torch.optim.AdamW(self.modules.parameters(), lr=1e-4, fused=True)
        self.memory: Optional[LabmlMemory] = None
        self.data = batch(1, CONFIG['seq_len'] + 1).t().contiguous()  # [seq_len + 1, batch_size]

    def forward(self, x: torch.Tensor, memory: Optional[LabmlMemory]):
        """`x`: `[seq_len, batch_size]` → logits, the new memory, and the states to compress."""
        mem, c_mem = (memory.mem, memory.c_mem) if memory is not None else ([], [])
        n_mem = (mem[0].shape[0] if mem else 0) + (c_mem[0].shape[0] if c_mem else 0)
        n = x.shape[0]
        # True where attention is allowed: `[seq_len, n_mem + seq_len, 1]`.
        mask = torch.cat([torch.ones(n, n_mem, dtype=torch.bool),
                          torch.ones(n, n, dtype=torch.bool).tril()], dim=1)[:, :, None]
        out, new_states = self.transformer(self.emb(x), mem, c_mem, mask)
        memory, to_compress = self.update_memory(mem, c_mem, new_states)
        return self.head(out), memory, new_states, to_compress

    @torch.no_grad()
    def update_memory(self, mem, c_mem, new_states):
        mem = [torch.cat([m, s]) for m, s in zip(mem, new_states)] if mem else list(new_states)
        over = mem[0].shape[0] - CONFIG['mem_len']
        if over <= 0:
            return LabmlMemory(mem, c_mem), []
        n_old = -(-over // CMEM_RATIO) * CMEM_RATIO
        to_compress = [m[:n_old] for m in mem]
        mem = [m[n_old:] for m in mem]
        new_c = [layer.compress(old) for layer, old in zip(self.transformer.layers, to_compress)]
        c_mem = [torch.cat([c, nc])[-CMEM_LEN:] for c, nc in zip(c_mem, new_c)] if c_mem else new_c
        return LabmlMemory(mem, c_mem), to_compress

    def train_step(self):
        x, y = self.data[:-1], self.data[1:]
        logits, self.memory, states, to_compress = self.forward(x, self.memory)
        loss = lm_loss(logits, y)
        if to_compress:
            loss = loss + self.ar_loss(states, to_compress)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    @torch.no_grad()
    def generate(self, prompt, n: int = GEN_LEN):
        tokens, memory, out = prompt.t(), None, [prompt]
        for _ in range(n):
            logits, memory, _, _ = self.forward(tokens, memory)
            tokens = logits[-1:].argmax(-1)  # [1, batch_size]
            out.append(tokens.t())
        return torch.cat(out, dim=1)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument('--threads', type=int, default=2, help="torch threads (the project measures at 2)")
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    models = [Ours(), LucidrainsPeer(), LabmlPeer()]
    # The readable model under torch.compile; its first steps (memories filling) compile, timed apart.
    compiled = Ours(compiled=True)
    compile_seconds = sum(first_call_seconds(compiled.train_step) for _ in range(5))
    tokens_per_step = CONFIG['batch_size'] * CONFIG['seq_len']
    train: Dict[str, List[float]] = interleaved({m.name: m.train_step for m in models + [compiled]}, rounds=9,
                                                warmup=3, calls=3)

    prompt = batch(2, PROMPT_LEN)
    readable = Ours(cached=False)
    generators = models + [readable]
    for m in generators:
        for attr in ('model', 'modules'):
            if hasattr(m, attr):
                getattr(m, attr).eval()
    gen = interleaved({m.name: (lambda m=m: m.generate(prompt)) for m in generators}, rounds=5, warmup=1)
    # Batch 1: one prompt, ours (cached) against compressive-transformer-pytorch.
    gen_1 = interleaved({m.name: (lambda m=m: m.generate(prompt[:1], GEN_LEN_BATCH_1)) for m in models[:2]},
                        rounds=5, warmup=1)

    ours_train = tokens_per_step / median(train['ours'])
    ours_gen = CONFIG['batch_size'] * GEN_LEN / median(gen['ours'])
    ours_gen_1 = GEN_LEN_BATCH_1 / median(gen_1['ours'])
    rows = []
    for m in models + [compiled, readable]:
        train_tps = tokens_per_step / median(train[m.name]) if m.name in train else None
        gen_tps = CONFIG['batch_size'] * GEN_LEN / median(gen[m.name]) if m.name in gen else None
        gen_1_tps = GEN_LEN_BATCH_1 / median(gen_1[m.name]) if m.name in gen_1 else None
        rows.append({'model': m.name, 'train tokens/s': train_tps or 'n/a',
                     'train: ours ×': ours_train / train_tps if train_tps else 'n/a',
                     'generate tokens/s': gen_tps or 'n/a', 'generate: ours ×': ours_gen / gen_tps if gen_tps else 'n/a',
                     'generate tokens/s, batch 1': gen_1_tps or 'n/a',
                     'generate, batch 1: ours ×': ours_gen_1 / gen_1_tps if gen_1_tps else 'n/a'})
    for row in rows:
        print(row)
    by_name = {row['model']: row for row in rows}
    figures = dict(train_vs_ctp=times(by_name[models[1].name]['train: ours ×']),
                   train_vs_labml_nn=times(by_name[models[2].name]['train: ours ×']),
                   generate_vs_ctp=times(by_name[models[1].name]['generate: ours ×']),
                   generate_vs_ctp_batch_1=times(by_name[models[1].name]['generate, batch 1: ours ×']),
                   generate_cached_vs_forward_calls=times(by_name[readable.name]['generate: ours ×']),
                   compiled_vs_eager=times(1 / by_name[compiled.name]['train: ours ×']),
                   compile_seconds=f"{compile_seconds:.0f} s")
    notes = (f"Which path: 'ours' trains the readable model of the page, eagerly, and generates through the cached "
             f"generation page (`compressive/generation.py`, the default of `generate`); 'ours, torch.compile' is the "
             f"same model under `torch.compile` (inductor) with `--compile-shapes static`, the experiment's default (one "
             f"graph per shape), whose first five steps took {compile_seconds:.0f} s "
             f"(compiling, not in the rate); 'ours, generation by forward calls' is `generate(..., cached=False)`. "
             f"Compressed memory {CMEM_LEN}, compression rate {CMEM_RATIO}. Training step: forward, LM loss + "
             f"attention-reconstruction loss, backward, AdamW step, memory carried (medians of 9 interleaved "
             f"rounds of 3 steps). Generation: prompt {PROMPT_LEN}, {GEN_LEN} new tokens, batch "
             f"{CONFIG['batch_size']}; at batch 1, {GEN_LEN_BATCH_1} new tokens after one prompt (medians of 5 "
             f"interleaved rounds); ours greedy, compressive-transformer-pytorch with its wrapper's default top-k "
             f"sampling. 'ours ×' is our throughput over the "
             f"row's. compressive-transformer-pytorch reruns the current segment for every generated token; "
             f"labml-nn is run token by token with its memory (no key/value cache); ours caches keys and values. "
             f"compressive-transformer-pytorch detaches its key/value projection weights in place when it first "
             f"computes its reconstruction loss, so from then on its training step skips their gradients. "
             f"labml-nn's feed-forward is given GELU, like ours (its default is ReLU). Floors: training ≥ 1.3× "
             f"both peers, generation ≥ 3× compressive-transformer-pytorch at batch 8 and at batch 1.")
    path = write_report('compressive', 'Compressive Transformer throughput', rows,
                        ['model', 'train tokens/s', 'train: ours ×', 'generate tokens/s', 'generate: ours ×',
                         'generate tokens/s, batch 1', 'generate, batch 1: ours ×'],
                        notes=notes, extra=dict(compile_seconds=compile_seconds), figures=figures)
    print(f"{machine()}\nwrote {path}")


if __name__ == '__main__':
    main()
