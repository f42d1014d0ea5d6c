"""MulT — Multimodal Transformer (Tsai, Bai et al., ACL 2019).

Every *directed* pair of modalities (source -> target, M(M-1) of them) gets a crossmodal
transformer: the target's sequence queries the source's, so unaligned sequences of
different lengths are fused without alignment.  Per target, the outputs of its M-1
crossmodal transformers are concatenated and read by a self-attention transformer; the
last *real* step of each target is concatenated, passed through a residual MLP and a
linear output layer.  Follows the reference code (yaohungt/Multimodal-Transformer) where it
differs from the paper: pre-LayerNorm residuals with un-normalised skip, key/value always the
*layer-0* source embedding (normalised by the layer's own LayerNorm; key and value embedded
and dropped out separately), inputs scaled by sqrt(d) plus fairseq sinusoids, kernel-1
"temporal conv" = bias-free linear projection (skipped when the input already has d
features), self-attention stack of max(layers, 3), xavier-uniform attention and FFN weights.

Dropout roles.  The reference is written for (text, audio, vision) and its dropouts depend on
the role: the attention dropout of a crossmodal stack is that of its *source* modality
(``attn_dropout`` for text, ``attn_dropout_a`` / ``attn_dropout_v`` for audio / vision),
every self-attention ("memory") stack uses ``attn_dropout``, and only the raw text input gets
``embed_dropout`` before its projection.  Here ``text_modality`` (name or 0-based position,
default the first — text in the affect datasets, which keep the reference's text, audio,
vision order) plays text, the first other modality in task order plays audio and every
further one vision.

Departures: padding comes from the batch masks (key-padding mask and zero positional
embedding on padded steps, instead of "first feature == 0"), and the causal mask, on in the
reference only because ``--attn_mask`` is ``store_false``, is off by default
(``causal_mask: true`` restores it) since it hides later steps of an unaligned source for no
modelling reason.  Vector modalities are length-1 sequences.

Batched.  The M(M-1) crossmodal transformers run as one (and so do the M self-attention
stacks): every weight has a leading pair (or target) axis, each layer is one batched matmul
per projection and one fused ``scaled_dot_product_attention`` call per distinct attention
dropout among the pairs (``fusebench.GroupLinear``, ``group_attention``).  Modalities of different lengths are
right-padded to the longest with masked steps, which changes nothing for the real steps (the
causal mask still uses each pair's own lengths); in eval mode rows are processed in chunks so
the batched activations stay as small as one pair's were.  Each pair's slice is initialised
like the per-pair module it replaces, so the model and its parameter count are the reference's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fusebench import (
    Batch,
    Float,
    FusionModel,
    GroupLayerNorm,
    GroupLinear,
    Int,
    MethodSpec,
    Output,
    SearchSpace,
    TaskSpec,
    group_attention,
    hookimpl,
    last_valid,
)

from .common import as_sequence, causal_mask, pick_modality, sinusoidal_positions

EVAL_CHUNK = 1 << 17  # eval mode: rows x pairs x steps per chunk, bounds the batched activations


class StackedLayer(nn.Module):
    """One pre-LN block of G stacks at once: attention (to ``kv`` if given, else self) then a
    4x ReLU MLP; ``attn_dropout`` holds each stack's attention-weight dropout."""

    def __init__(self, groups: int, dim: int, heads: int, attn_dropout: Sequence[float], relu_dropout: float,
                 res_dropout: float):
        super().__init__()
        self.heads, self.attn_dropout = heads, tuple(float(p) for p in attn_dropout)
        # nn.MultiheadAttention's packed (query; key; value) projection and its output map
        self.in_proj, self.out_proj = GroupLinear(groups, dim, 3 * dim), GroupLinear(groups, dim, dim)
        self.norm_attn, self.norm_ff = GroupLayerNorm(groups, dim), GroupLayerNorm(groups, dim)
        self.ff = nn.Sequential(GroupLinear(groups, dim, 4 * dim), nn.ReLU(), nn.Dropout(relu_dropout),
                                GroupLinear(groups, 4 * dim, dim))
        self.residual_dropout = nn.Dropout(res_dropout)
        # the reference: xavier-uniform in/out projections and FFN weights, zero biases
        for linear in (self.in_proj, self.out_proj, self.ff[0], self.ff[3]):
            linear.xavier_()

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor] | None,
                allowed: torch.Tensor) -> torch.Tensor:
        g, b, t, d = x.shape
        if kv is None:
            q, k, v = self.in_proj(self.norm_attn(x)).chunk(3, dim=-1)
        else:  # key and value: the layer-0 source embeddings, normalised by this layer's norm
            q, k, v = self.in_proj(self.norm_attn(torch.stack([x, *kv], dim=1)), parts=3).unbind(1)
        heads = [y.reshape(g, b, y.shape[2], self.heads, -1).transpose(2, 3) for y in (q, k, v)]
        attended = group_attention(*heads, allowed, self.attn_dropout, self.training)
        x = x + self.residual_dropout(self.out_proj(attended.transpose(2, 3).reshape(g, b, t, d)))
        return x + self.residual_dropout(self.ff(self.norm_ff(x)))


class StackedTransformer(nn.Module):
    """``len(names)`` independent crossmodal (``source`` given) or self-attention stacks run as
    one.  ``forward(x, allowed, source)``: (G, B, T, dim) embedded queries and sources, ``allowed``
    (G, B, 1 or T, T) True where a step may attend a step.  Iterating gives the stack names,
    as the ``nn.ModuleDict`` of per-pair stacks it replaces did."""

    def __init__(self, names: Sequence[str], dim: int, heads: int, layers: int, *, attn_dropout: Sequence[float],
                 relu_dropout: float, res_dropout: float, embed_dropout: float):
        super().__init__()
        self.names, self.dim = tuple(names), dim
        self.layers = nn.ModuleList(StackedLayer(len(self.names), dim, heads, attn_dropout, relu_dropout,
                                                 res_dropout) for _ in range(layers))
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.norm = GroupLayerNorm(len(self.names), dim)

    def __iter__(self):
        return iter(self.names)

    def embed(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """sqrt(dim) x + sinusoids on real steps (dropout comes per use, in ``forward``)."""
        positions = sinusoidal_positions(x.shape[-2], self.dim, x.device).to(x.dtype)
        return math.sqrt(self.dim) * x + positions * mask.unsqueeze(-1)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed_dropout(x)
        # key and value embedded (dropped out) separately, as the reference's x_k, x_v
        kv = None if source is None else (self.embed_dropout(source), self.embed_dropout(source))
        for layer in self.layers:
            x = layer(x, kv, allowed)
        return self.norm(x)


def source_attn_dropouts(modalities: tuple[str, ...], text: str, hparams) -> dict[str, float]:
    """Attention dropout of the crossmodal stacks reading each modality (reference roles: text,
    then audio = the first other modality in task order, vision = every further one)."""
    others = [m for m in modalities if m != text]
    return {text: float(hparams["attn_dropout"]),
            **{m: float(hparams["attn_dropout_a" if i == 0 else "attn_dropout_v"]) for i, m in enumerate(others)}}


def causal_allowed(lengths: Sequence[tuple[int, int]], steps: int, device: torch.device) -> torch.Tensor:
    """(len(lengths), 1, steps, steps) True = may attend: the reference's future mask for each
    (query length, key length), on the grid padded to ``steps`` (padded keys are masked anyway)."""
    blocked = torch.zeros(len(lengths), 1, steps, steps, dtype=torch.bool, device=device)
    for g, (tq, tk) in enumerate(lengths):
        blocked[g, 0, :tq, :tk] = causal_mask(tq, tk, device)
    return ~blocked


class MulT(FusionModel):
    def __init__(self, task: TaskSpec, hparams):
        super().__init__(task, hparams)
        hp = self.hparams
        d, n = hp["mult_dim"], len(self.modalities)
        self.text = pick_modality(task, hp["text_modality"])
        self.text_dropout = nn.Dropout(hp["embed_dropout"])
        self.project = nn.ModuleDict({
            m.name: nn.Identity() if m.dim == d else nn.Linear(m.dim, d, bias=False) for m in task.modalities})
        options = {"relu_dropout": hp["relu_dropout"], "res_dropout": hp["res_dropout"],
                       "embed_dropout": hp["embed_dropout"]}
        self.causal = bool(hp["causal_mask"])
        source_dropout = source_attn_dropouts(self.modalities, self.text, hp)
        # directed pairs, target-major: each target's M-1 sources are contiguous, in task order
        self.pairs = [(s, t) for t in self.modalities for s in self.modalities if s != t]
        index = {m: i for i, m in enumerate(self.modalities)}
        self.pair_positions = [(index[s], index[t]) for s, t in self.pairs]
        self.register_buffer("source_index", torch.tensor([s for s, _ in self.pair_positions]), persistent=False)
        self.register_buffer("target_index", torch.tensor([t for _, t in self.pair_positions]), persistent=False)
        self.crossmodal = StackedTransformer([f"{s}->{t}" for s, t in self.pairs], d, hp["heads"], hp["layers"],
                                             attn_dropout=[source_dropout[s] for s, _ in self.pairs], **options)
        self.memory = StackedTransformer(self.modalities, (n - 1) * d, hp["heads"], max(hp["layers"], 3),
                                         attn_dropout=[hp["attn_dropout"]] * n, **options)
        width = n * (n - 1) * d
        self.proj1, self.proj2 = nn.Linear(width, width), nn.Linear(width, width)
        self.out_dropout = nn.Dropout(hp["out_dropout"])
        self.out = nn.Linear(width, task.target.n_outputs)

    def fuse(self, batch: Batch) -> Output:
        seqs = [as_sequence(batch.x[m], batch.mask[m]) for m in self.modalities]
        z = [self.project[m](self.text_dropout(x) if m == self.text else x) for m, (x, _) in zip(self.modalities, seqs)]
        lengths = [x.shape[1] for x in z]
        steps = max(lengths)
        z = torch.stack([F.pad(x, (0, 0, 0, steps - x.shape[1])) for x in z])  # (M, B, T, d)
        mask = torch.stack([F.pad(k, (0, steps - k.shape[1])) for _, k in seqs])  # (M, B, T)
        if torch.is_grad_enabled():
            h = self.last_steps(z, mask, lengths)
        else:  # rows are independent in eval mode: chunk them to bound memory
            rows = max(1, EVAL_CHUNK // (len(self.pairs) * steps))
            h = torch.cat([self.last_steps(zc, mc, lengths) for zc, mc in zip(z.split(rows, 1), mask.split(rows, 1))])
        h = h + self.proj2(self.out_dropout(torch.relu(self.proj1(h))))
        return Output(self.out(h))

    def last_steps(self, z: torch.Tensor, mask: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """(M, B, T, d) projected inputs, (M, B, T) masks -> (B, M (M-1) d): per target, the
        self-attention stack's output at its last real step, targets in task order."""
        m, b, t, d = z.shape
        embedded = self.crossmodal.embed(z, mask)
        allowed = mask[self.source_index].unsqueeze(2)  # (P, B, 1, T): the source's real steps
        if self.causal:
            allowed = allowed & causal_allowed([(lengths[tq], lengths[sk]) for sk, tq in self.pair_positions],
                                               t, z.device)
        crossed = self.crossmodal(embedded[self.target_index], allowed, embedded[self.source_index])
        # per target, its M-1 crossmodal outputs concatenated (sources in task order)
        crossed = crossed.view(m, m - 1, b, t, d).permute(0, 2, 3, 1, 4).reshape(m, b, t, -1)
        allowed = mask.unsqueeze(2)
        if self.causal:
            allowed = allowed & causal_allowed([(n, n) for n in lengths], t, z.device)
        memory = self.memory(self.memory.embed(crossed, mask), allowed)
        last = last_valid(memory.reshape(m * b, t, -1), mask.reshape(m * b, t)).view(m, b, -1)
        return last.transpose(0, 1).reshape(b, -1)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="mult", family="attention", build=MulT,
        # main.py argparse defaults (d = 30 is hard-coded in src/models.py)
        defaults={"mult_dim": 30, "heads": 5, "layers": 5, "attn_dropout": 0.1, "attn_dropout_a": 0.0,
                  "attn_dropout_v": 0.0, "relu_dropout": 0.1, "res_dropout": 0.1, "embed_dropout": 0.25,
                  "out_dropout": 0.0, "text_modality": 0, "causal_mask": False},
        # MulT reads neither the shared width nor the shared dropout: its own dropouts and depth are
        # searched instead (mult_dim stays 30, a multiple of the 5 heads)
        search_space=SearchSpace(params={f"{name}_dropout": Float(0.0, 0.5) for name in (
            "embed", "attn", "relu", "res", "out")} | {"layers": Int(1, 5)}, exclude=("hidden", "dropout")),
        reference="Tsai, Bai et al., Multimodal Transformer for Unaligned Multimodal Language "
                  "Sequences, ACL 2019",
        description="Crossmodal transformers for all directed modality pairs -> per-target "
                    "self-attention -> last step -> residual MLP -> output.",
        min_modalities=2,
    ))
