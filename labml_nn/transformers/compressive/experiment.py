r"""
---
title: Training the Compressive Transformer on Tiny Shakespeare
summary: A character-level Compressive Transformer, whose compression network is trained by its own attention-reconstruction loss and its own optimiser.
---

# Training the Compressive Transformer on Tiny Shakespeare

```bash
python -m labml_nn.transformers.compressive.experiment          # a few minutes on a 2-core CPU
python -m labml_nn.transformers.compressive.experiment --help   # every option with its default
python -m labml_nn.experiments.sample --checkpoint checkpoints/compressive --prompt "ROMEO:"
```

The [Compressive Transformer](index.html) keeps Transformer-XL's memory of the last `mem_len` $= L$
hidden states, and instead of discarding the states that fall out of it, compresses every
`compression_rate` $= c$ of them into one and keeps `cmem_len` $= L_c$ of those (`--cmem-ratio` is the
option's old name, still accepted). With the defaults below ($n = 64$, $L = 32$, $c = 4$, $L_c = 16$)
each layer attends over $64$ current, $32$ remembered and $16$ compressed states, the last standing
for $64$ older characters.

## Two losses, two optimisers

The model has two jobs, and the paper trains them apart
([Rae et al., 2019](https://arxiv.org/abs/1911.05507)):

* the language model minimises the cross-entropy $\mathcal{L}_\text{LM}$;
* the compression function $f_c$ minimises the *attention-reconstruction loss*
  $$\mathcal{L}^{attn} = \sum_{l} \frac{1}{E_l} \big\| \operatorname{attn}^l(h^{l-1}, old\_mem^{l-1}) - \operatorname{attn}^l(h^{l-1}, f_c^{l}(old\_mem^{l-1})) \big\|_2^2,$$
  how much the layer's attention output changes (content terms only, through the layer's pre-norm)
  when it reads the compressed memories instead of the old memories they replace. The compression
  is judged by what the attention needs, not by how well it could rebuild the memories themselves.

The reconstruction loss's gradient reaches only the compression parameters, and the language-model
loss does not reach them (the memories are stored detached). So a single `backward()` of
$\mathcal{L}_\text{LM} + \mathcal{L}^{attn}$ gives each parameter exactly the gradient of its own
loss, and we step the two parameter sets with **two AdamW optimisers**: each gets its own learning
rate, its own moment estimates and its own gradient clipping, so a large reconstruction error
early on can neither shrink the language model's clipped step nor inflate its Adam statistics.

Everything else (streams, schedule, validation, checkpoints with both optimisers, resume, DDP) is
the [shared training loop](../../experiments/trainer.html); this page gives it two hooks, `param_groups`
and `loss`. Until the first memories are evicted there is nothing to compress, so the compression
parameters get no gradient: `DistributedDataParallel` is told to expect that.

## At the paper's scale

```bash
python -m labml_nn.transformers.compressive.experiment --preset compressive-enwik8 --data enwik8.zip --dtype bfloat16 --compile
python -m labml_nn.experiments.evaluate --checkpoint checkpoints/compressive --split test   # compressed memory 3072
```

The [preset](../../experiments/presets.html) is the paper's enwik8 model, where it published the values.
One GPU, as the GPU benchmark (`make bench-gpu`) measures it: {report:gpu.compressive-enwik8_tokens_per_s}
training tokens per second; hours to the preset's steps: {report:gpu.compressive-enwik8_hours}.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from labml_nn.experiments.config import TrainConfig, above, at_least, option, probability
from labml_nn.experiments.presets import presets_of
from labml_nn.experiments.trainer import Experiment, ParamGroup, run_experiment, token_loss
from labml_nn.transformers.compressive import CompressiveTransformer
from labml_nn.transformers.xl.experiment import activation_kwargs


@dataclass
class Config(TrainConfig):
    """Train a character-level Compressive Transformer on Tiny Shakespeare."""
    name: str = option("compressive", "name of the run; checkpoints go to CHECKPOINT_DIR/NAME")
    dim: int = option(128, "model width", at_least(1))
    depth: int = option(4, "number of layers", at_least(1))
    heads: int = option(4, "attention heads", at_least(1))
    dim_head: int = option(32, "width of each head", at_least(1))
    ff_mult: int = option(4, "the feed-forward network's hidden width, as a multiple of dim", at_least(1))
    mem_len: int = option(32, "uncompressed hidden states kept per layer", at_least(0))
    cmem_len: int = option(16, "compressed memories kept per layer", at_least(0))
    compression_rate: int = option(4, "old memories compressed into one, the compression rate c", at_least(1),
                                   aliases=["--cmem-ratio"])
    attn_dropout: float = option(0.0, "dropout on the attention weights", probability)
    ff_dropout: float = option(0.0, "dropout in the feed-forward blocks", probability)
    activation: str = option("gelu", "the feed-forward network's activation: 'gelu', or 'relu' (that of the "
                                     "Transformer-XL code the paper builds on)",
                             lambda value: None if value in ("gelu", "relu") else "expected gelu or relu")
    compile_shapes: str = option("static", "how --compile treats shapes that change: the two memories settle "
                                           "after a few segments, and one graph per shape ('static') measured faster "
                                           "here than torch's default ('auto')",
                                 lambda value: None if value in ("auto", "static") else "expected auto or static")
    eval_cmem_len: int = option(0, "compressed-memory length of `evaluate` (0: the model's)", at_least(0))
    reconstruction_loss: bool = option(True, "train f_c with the attention-reconstruction loss (without it f_c keeps "
                                             "its initial weights: the memories are a stop-gradient, so the "
                                             "language-model loss cannot reach it; the ablation of the paper's choice)")
    compression_lr: float = option(1e-3, "peak learning rate of the compression network's optimiser", above(0.0))


def model_kwargs(c: Config, num_tokens: int) -> Dict[str, Any]:
    """The constructor arguments of `CompressiveTransformer`; the checkpoint stores them."""
    return dict(num_tokens=num_tokens, dim=c.dim, depth=c.depth, heads=c.heads, dim_head=c.dim_head, ff_mult=c.ff_mult,
                mem_len=c.mem_len, cmem_len=c.cmem_len, compression_rate=c.compression_rate,
                attn_dropout=c.attn_dropout, ff_dropout=c.ff_dropout, **activation_kwargs(c.activation))


def param_groups(model: CompressiveTransformer, c: Config) -> List[ParamGroup]:
    """Two optimisers: the language model's, and the compression network's."""
    compression = list(model.compression_parameters())
    ids = {id(p) for p in compression}
    others = [p for p in model.parameters() if id(p) not in ids]
    return [ParamGroup("model", others, c.lr), ParamGroup("compression", compression, c.compression_lr)]


def loss(model: CompressiveTransformer, x: torch.Tensor, y: torch.Tensor, memory: Any,
         c: Config) -> Tuple[torch.Tensor, Any, Dict[str, float]]:
    r"""$\mathcal{L}_\text{LM} + \mathcal{L}^{attn}$ for inputs `x` and targets `y`, `[batch_size, seq_len]`."""
    if not c.reconstruction_loss:
        # The ablation: $f_c$ compresses with the weights it was initialised with.
        logits, memory = model(x, memory=memory, return_memory=True)
        lm_loss = token_loss(logits, y)
        return lm_loss, memory, {"loss.train": lm_loss.item()}
    logits, memory, reconstruction = model(x, memory=memory, return_memory=True, return_aux_loss=True)
    lm_loss = token_loss(logits, y)
    # The two gradients do not overlap (see above), so the sum back-propagates each loss into
    # its own parameters only.
    return lm_loss + reconstruction, memory, {"loss.train": lm_loss.item(),
                                              "loss.reconstruction": reconstruction.detach().item()}


EXPERIMENT = Experiment(Config, CompressiveTransformer, model_kwargs, param_groups=param_groups, loss=loss,
                        find_unused_parameters=True, presets=presets_of("compressive"))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    return run_experiment(EXPERIMENT, argv)


if __name__ == "__main__":
    main()
