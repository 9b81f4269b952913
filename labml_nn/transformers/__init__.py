r"""
---
title: Transformers
summary: The building blocks shared by every memory transformer here, and the three papers built from them.
---

# Transformers with memory

A transformer language model reads a fixed window of tokens. The three papers on this site let it
read further back without attending over an ever longer window:

* [Transformer-XL](xl/index.html) keeps each layer's hidden states from the previous segment as a
  memory and attends to it with [relative positions](xl/relative_mha.html).
* The [Compressive Transformer](compressive/index.html) compresses the memories Transformer-XL would
  discard into a second, coarser memory.
* The [Feedback Transformer](feedback/index.html) lets every layer read a memory built from *all*
  layers of the past, which makes the model recurrent.

They share the pieces in this folder: [multi-head attention](mha.html), the
[feed-forward network](feed_forward.html), and the [memory language model](lm.html), the shell around each
paper's layers that gives the three models one interface: token ids `[batch_size, seq_len]` in, logits
`[batch_size, seq_len, num_tokens]` out, memory passed from call to call, generation, model files. The
fast forms of the same computations live on pages of their own
([one token at a time](one_token.html), each paper's generation page, the Feedback Transformer's
[hand-written step](feedback/step.html)); the paper pages never import them.

## Notation

One table of symbols for the whole site: every page writes these symbols with these meanings, and
a page's own notation table only adds the symbols of its paper. Where a paper writes something
else (the Compressive Transformer's $n_m$, $n_{cm}$, $n_s$), the page says so once and then uses
the site's symbol.

| symbol | meaning | in code |
|---|---|---|
| $B$ | streams in a batch | `batch_size` |
| $n$ | segment length: the tokens a stream advances per training step | `seq_len` |
| $L$ | memory length: positions remembered per layer (Transformer-XL, Compressive), memory vectors (Feedback) | `mem_len` |
| $L_c$ | compressed-memory length | `cmem_len` |
| $c$ | compression rate | `compression_rate` |
| $n_w$ | Feedback window: tokens computed in parallel between memory updates (1: the exact model) | `window` |
| $P$ | keys one query attends to | `P` |
| $N$ | number of layers | `depth` |
| $l$ | a layer, $1 \dots N$ ($0$: the embeddings) | `l` |
| $H$ | attention heads | `heads` |
| $d$ | model width | `dim` |
| $d_h$ | width of one head | `dim_head` |
| $d_{ff}$ | hidden width of the feed-forward network | `d_ff` |
| $t$ | a position in time: a step of a stream | `t` |
| $\tau$ | a segment of a stream | |
| $i$, $j$ | a query's and a key's position | |
| $\delta$ | distance from a key to a query | |
| $h^l$ | hidden states: the output of layer $l$ (Transformer-XL, Compressive) | `h` |
| $x^l_t$ | the output of layer $l$ at step $t$ (Feedback: the paper's letter for $h^l$) | `x` |
| $m^l$ | memory of layer $l + 1$'s input (Transformer-XL, Compressive) | `memory[l]` |
| $\mathbf{m}_t$ | the Feedback memory vector of step $t$ | `m` |
| $cm^l$ | compressed memory of layer $l + 1$ | `cmem` |
| $q_i$, $k_j$, $v_j$ | a head's query, key and value vectors ($Q$, $K$, $V$: stacked) | `q`, `k`, `v` |
| $A_{i,j}$ | attention score, before the softmax | `scores` |
| $a_{i,j}$ | attention weight, after the softmax | `a` |
| $W_q$, $W_k$, $W_v$, $W_o$ | the query, key, value and output projections | `to_q`, `to_kv`, `to_out` |
| $\mathbf{u}$, $\mathbf{v}$ | Transformer-XL's global content and position biases (attributes of a layer's attention) | `attn.u`, `attn.v` |
| $R_\delta$ | the sinusoidal encoding of distance $\delta$ | `R` |
| $W_{k,R}$ | the projection of $R_\delta$ to a position key | `to_r` |
| $r_\delta$ | the position key of distance $\delta$ | `r` |
| $p_\delta$ | a learned key of distance $\delta$ (the Feedback authors' form) | `distance_keys` |
| $w$ | the Feedback Transformer's weights of the layers in the memory vector | `layer_weights` |
| $f_c$ | the compression function | `compress` |
| $z$ | adaptive span: a head's span, as a fraction of $L$ | `span_ratio` |
| $\rho$ | adaptive span: the length of the mask's ramp | `span_ramp` |
| $\chi_z(\delta)$ | adaptive span: the soft mask of distance $\delta$ | |
| $\gamma$, $\beta$ | a layer norm's gain and shift | `weight`, `bias` |
| $\mathcal{L}$ | a loss ($\mathcal{L}^{attn}$: attention reconstruction, $\mathcal{L}^{span}$: span) | `loss` |
| $s$ | a training step | `step` |
| $\eta$ | the peak learning rate ($\eta_s$: at step $s$) | `lr` |
| $s_w$ | warm-up steps | `warmup_steps` |
| $G$ | processes of a run | `world_size` |
| $M$ | micro-batches per optimiser step | `grad_accum` |

Tensors are batch-first: `[batch_size, seq_len, dim]` for a segment, `[batch_size, mem_len, dim]`
for a memory, `[batch_size, heads, seq_len, dim_head]` for one head's vectors.

## Long memory, demonstrated

A synthetic task puts the answer beyond the current segment: a key token, then $D$ positions later a
query asking for it. Trained for the same budget (`python -m bench.long_memory`, part of `make bench`),
the models recall exactly as far as their papers say they should:

![Recall accuracy against distance for the four models](pictures/long_memory.png)

The model without memory fails as soon as the key lies in an earlier segment; Transformer-XL recalls
within segment plus memory; the Compressive Transformer, attending to as many keys, reaches further
through its compressed memory; the Feedback Transformer's recurrence carried the key beyond everything
it attends to at every distance tested. The table with the numbers is in the
[results](../../readme.md#results).
"""
