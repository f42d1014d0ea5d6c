"""Frozen copy of the per-pair MulT as it was before the batched rewrite (commit ad794ef,
``plugins/methods/mult.py``), kept only so ``benchmarks/method_speed.py`` can time old and new
side by side and ``tests/test_method_speedups.py`` can check the new one computes the same
function.  Not registered as a method; do not import it from product code.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark_core import TaskSpec
from benchmark_core.engine.data import Batch
from benchmark_core.engine.encoders import last_valid
from benchmark_core.engine.models import FusionModel, Output
from plugins.methods.common import as_sequence, causal_mask, pick_modality, sinusoidal_positions


class CrossmodalLayer(nn.Module):
    """One pre-LN block: attention (to ``key``/``value`` if given, else self) then a 4x ReLU MLP."""

    def __init__(self, dim: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)
        self.norm_attn, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(relu_dropout),
                                nn.Linear(4 * dim, dim))
        self.residual_dropout = nn.Dropout(res_dropout)
        # PyTorch already draws in_proj xavier-uniform with zero biases; the reference also
        # draws out_proj xavier-uniform (PyTorch leaves it at the default Linear init).
        nn.init.xavier_uniform_(self.attn.out_proj.weight)
        for linear in (self.ff[0], self.ff[3]):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor, key: torch.Tensor | None, value: torch.Tensor | None,
                key_padding: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        query = self.norm_attn(x)
        if key is None:
            key = value = query
        else:
            key, value = self.norm_attn(key), self.norm_attn(value)
        attended, _ = self.attn(query, key, value, key_padding_mask=key_padding, attn_mask=attn_mask,
                                need_weights=False)
        x = x + self.residual_dropout(attended)
        return x + self.residual_dropout(self.ff(self.norm_ff(x)))


class CrossmodalTransformer(nn.Module):
    """``forward(x, mask, source, source_mask)``: source -> target crossmodal stack, or a
    self-attention stack when ``source`` is None.  Inputs are (B, T, dim) with (B, T) masks."""

    def __init__(self, dim: int, heads: int, layers: int, *, attn_dropout: float, relu_dropout: float,
                 res_dropout: float, embed_dropout: float, causal: bool):
        super().__init__()
        self.dim, self.causal = dim, causal
        self.layers = nn.ModuleList(CrossmodalLayer(dim, heads, attn_dropout, relu_dropout, res_dropout)
                                    for _ in range(layers))
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.norm = nn.LayerNorm(dim)

    def embed(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = sinusoidal_positions(x.shape[1], self.dim, x.device).to(x.dtype)
        return self.embed_dropout(math.sqrt(self.dim) * x + positions * mask.unsqueeze(-1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, source: torch.Tensor | None = None,
                source_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(x, mask)
        key = value = None
        if source is not None:  # embedded twice: independent dropout, as the reference's x_k, x_v
            key, value = self.embed(source, source_mask), self.embed(source, source_mask)
        keys_mask = mask if source is None else source_mask
        attn_mask = causal_mask(x.shape[1], keys_mask.shape[1], x.device) if self.causal else None
        for layer in self.layers:
            x = layer(x, key, value, ~keys_mask, attn_mask)
        return self.norm(x)


def source_attn_dropouts(modalities: tuple[str, ...], text: str, hparams) -> dict[str, float]:
    """Attention dropout of the crossmodal stacks reading each modality (reference roles: text,
    then audio = the first other modality in task order, vision = every further one)."""
    others = [m for m in modalities if m != text]
    return {text: float(hparams["attn_dropout"]),
            **{m: float(hparams["attn_dropout_a" if i == 0 else "attn_dropout_v"]) for i, m in enumerate(others)}}


class MulT(FusionModel):
    def __init__(self, task: TaskSpec, hparams):
        super().__init__(task, hparams)
        hp = self.hparams
        d, n = hp["mult_dim"], len(self.modalities)
        self.text = pick_modality(task, hp["text_modality"])
        self.text_dropout = nn.Dropout(hp["embed_dropout"])
        self.project = nn.ModuleDict({
            m.name: nn.Identity() if m.dim == d else nn.Linear(m.dim, d, bias=False) for m in task.modalities})
        options = dict(relu_dropout=hp["relu_dropout"], res_dropout=hp["res_dropout"],
                       embed_dropout=hp["embed_dropout"], causal=hp["causal_mask"])
        source_dropout = source_attn_dropouts(self.modalities, self.text, hp)
        self.pairs = [(s, t) for t in self.modalities for s in self.modalities if s != t]
        self.crossmodal = nn.ModuleDict({
            f"{s}->{t}": CrossmodalTransformer(d, hp["heads"], hp["layers"], attn_dropout=source_dropout[s],
                                               **options)
            for s, t in self.pairs})
        self.memory = nn.ModuleDict({
            t: CrossmodalTransformer((n - 1) * d, hp["heads"], max(hp["layers"], 3),
                                     attn_dropout=hp["attn_dropout"], **options)
            for t in self.modalities})
        width = n * (n - 1) * d
        self.proj1, self.proj2 = nn.Linear(width, width), nn.Linear(width, width)
        self.out_dropout = nn.Dropout(hp["out_dropout"])
        self.out = nn.Linear(width, task.target.n_outputs)

    def fuse(self, batch: Batch) -> Output:
        seqs = {m: as_sequence(batch.x[m], batch.mask[m]) for m in self.modalities}
        z = {m: self.project[m](self.text_dropout(x) if m == self.text else x) for m, (x, _) in seqs.items()}
        last = []
        for t in self.modalities:
            mask = seqs[t][1]
            crossed = [self.crossmodal[f"{s}->{t}"](z[t], mask, z[s], seqs[s][1])
                       for s in self.modalities if s != t]
            last.append(last_valid(self.memory[t](torch.cat(crossed, dim=-1), mask), mask))
        h = torch.cat(last, dim=-1)
        h = h + self.proj2(self.out_dropout(torch.relu(self.proj1(h))))
        return Output(self.out(h))


# legacy per-pair parameter (inside a CrossmodalLayer) -> the batched StackedLayer's parameter
LAYER_PARAMS = {"attn.in_proj_weight": "in_proj.weight", "attn.in_proj_bias": "in_proj.bias",
                "attn.out_proj.weight": "out_proj.weight", "attn.out_proj.bias": "out_proj.bias",
                "norm_attn.weight": "norm_attn.weight", "norm_attn.bias": "norm_attn.bias",
                "norm_ff.weight": "norm_ff.weight", "norm_ff.bias": "norm_ff.bias",
                "ff.0.weight": "ff.0.weight", "ff.0.bias": "ff.0.bias", "ff.3.weight": "ff.3.weight",
                "ff.3.bias": "ff.3.bias"}


def copy_weights(legacy: MulT, batched: nn.Module) -> None:
    """Load a legacy MulT's weights into the batched ``plugins.methods.mult.MulT`` built for the
    same task and hyper-parameters (each per-pair module becomes one slice of a stacked weight;
    linear weights are stored transposed there, see ``GroupLinear``)."""
    state = batched.state_dict()
    groups = {"crossmodal": {f"{s}->{t}": g for g, (s, t) in enumerate(batched.pairs)},
              "memory": {t: g for g, t in enumerate(batched.modalities)}}
    with torch.no_grad():
        for key, value in legacy.state_dict().items():
            head, _, rest = key.partition(".")
            if head not in groups:
                state[key].copy_(value)
                continue
            name, _, rest = rest.partition(".")
            if rest.startswith("layers."):
                _, layer, param = rest.split(".", 2)
                rest = f"layers.{layer}.{LAYER_PARAMS[param]}"
            state[f"{head}.{rest}"][groups[head][name]].copy_(value.t() if value.dim() == 2 else value)
