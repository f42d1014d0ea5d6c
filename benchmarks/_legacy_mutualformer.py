"""Frozen copy of the per-pair MutualFormer as it was before the batched rewrite (commit ad794ef,
``plugins/methods/mutualformer.py``), kept only so ``benchmarks/method_speed.py`` can time old and new
side by side and ``tests/test_method_speedups.py`` can check the new one computes the same
function.  Not registered as a method; do not import it from product code.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark_core import TaskSpec
from benchmark_core.engine.data import Batch
from benchmark_core.engine.encoders import mlp_head
from benchmark_core.engine.models import FusionModel, Output
from plugins.methods.common import as_sequence


def cross_diffusion(a_m: torch.Tensor, a_j: torch.Tensor, alpha: float) -> torch.Tensor:
    """One diffusion step from the identity with S = A^T: alpha A_m^T A_j + (1-alpha)(A_m + A_j)."""
    return alpha * a_m.transpose(-1, -2) @ a_j + (1 - alpha) * (a_m + a_j)


class Tokenizer(nn.Module):
    """A modality as ``tokens`` tokens of width ``dim``: linear for vectors, attention pooling
    with learned queries over the real steps for sequences."""

    def __init__(self, in_dim: int, dim: int, tokens: int, sequence: bool):
        super().__init__()
        self.sequence, self.tokens, self.dim = sequence, tokens, dim
        if sequence:
            self.queries = nn.Parameter(torch.randn(tokens, dim) * dim ** -0.5)
            self.keys, self.values = nn.Linear(in_dim, dim), nn.Linear(in_dim, dim)
        else:
            self.values = nn.Linear(in_dim, tokens * dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if not self.sequence:
            return self.values(x).view(-1, self.tokens, self.dim)
        x, mask = as_sequence(x, mask)
        scores = self.queries @ self.keys(x).transpose(1, 2) * self.dim ** -0.5  # (B, N, T)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        return scores.softmax(dim=-1) @ self.values(x)


class CrossDiffusionAttention(nn.Module):
    """The reference ``MultiAttention`` generalised to M modality streams."""

    def __init__(self, dim: int, heads: int, n_modalities: int, alpha: float, dropout: float):
        super().__init__()
        self.heads, self.alpha, self.scale = heads, alpha, (dim // heads) ** -0.5
        self.qkv = nn.ModuleList(nn.Linear(dim, 3 * dim, bias=False) for _ in range(n_modalities))
        self.qkv_fused = nn.Linear(dim, 3 * dim, bias=False)
        self.merge = nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(n_modalities))
        self.proj = nn.Linear(dim, dim)
        self.proj_all = nn.Linear(n_modalities * dim, dim)
        self.attn_dropout, self.proj_dropout = nn.Dropout(dropout), nn.Dropout(dropout)

    def split(self, qkv: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, n, c = x.shape
        q, k, v = qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return (q @ k.transpose(-1, -2) * self.scale).softmax(dim=-1), v

    @staticmethod
    def join(x: torch.Tensor) -> torch.Tensor:
        b, h, n, c = x.shape
        return x.transpose(1, 2).reshape(b, n, h * c)

    def forward(self, xs: list[torch.Tensor], fused: torch.Tensor) -> torch.Tensor:
        attn, values = zip(*(self.split(qkv, x) for qkv, x in zip(self.qkv, xs, strict=True)))
        merged = []
        for m, merge in enumerate(self.merge):
            others = [j for j in range(len(xs)) if j != m]
            cross = sum(self.attn_dropout(cross_diffusion(attn[m], attn[j], self.alpha)) @ values[j]
                        for j in others) / len(others)
            merged.append(merge(torch.cat([self.join(attn[m] @ values[m]), self.join(cross)], dim=-1)))
        a, v = self.split(self.qkv_fused, fused)
        out = self.join(self.attn_dropout(a) @ v)
        return self.proj_dropout(self.proj(out)) + self.proj_all(torch.cat(merged, dim=-1))


class MutualBlock(nn.Module):
    def __init__(self, dim: int, heads: int, n_modalities: int, alpha: float, dropout: float):
        super().__init__()
        self.norm_modalities = nn.LayerNorm(n_modalities * dim)  # joint over the concatenation
        self.norm_fused, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CrossDiffusionAttention(dim, heads, n_modalities, alpha, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, xs: list[torch.Tensor], fused: torch.Tensor) -> torch.Tensor:
        normed = self.norm_modalities(torch.cat(xs, dim=-1)).chunk(len(xs), dim=-1)
        fused = fused + self.attn(list(normed), self.norm_fused(fused))
        return fused + self.mlp(self.norm_mlp(fused))


class MutualFormer(FusionModel):
    def __init__(self, task: TaskSpec, hparams):
        super().__init__(task, hparams)
        hp = self.hparams
        dim, dropout, n = hp["hidden"], hp["dropout"], len(task.modalities)
        self.tokenizers = nn.ModuleDict({
            m.name: Tokenizer(m.dim, dim, hp["tokens"], m.kind == "sequence") for m in task.modalities})
        self.blocks = nn.ModuleList(MutualBlock(dim, hp["heads"], n, hp["diffusion_alpha"], dropout)
                                    for _ in range(hp["layers"]))
        self.norm = nn.LayerNorm(dim)
        self.head = mlp_head(dim, task.target.n_outputs, dim, dropout)

    def encode(self, batch: Batch) -> Batch:
        x = {m: self.tokenizers[m](batch.x[m], batch.mask[m]) for m in self.modalities}
        return batch.replace(x=x, mask={m: None for m in self.modalities})

    def fuse(self, encoded: Batch) -> Output:
        xs = [encoded.x[m] for m in self.modalities]
        fused = torch.stack(xs).mean(dim=0)
        for block in self.blocks:
            fused = block(xs, fused)
        return Output(self.head(self.norm(fused).mean(dim=1)))


def copy_weights(legacy: MutualFormer, batched: nn.Module) -> None:
    """Load a legacy MutualFormer's weights into the batched ``plugins.methods.mutualformer``
    model built for the same task and hyper-parameters (per-modality ``qkv`` and ``merge``
    linears become slices of one stacked, transposed weight, see ``GroupLinear``)."""
    state = batched.state_dict()
    with torch.no_grad():
        for key, value in legacy.state_dict().items():
            parts = key.split(".")
            if parts[0] == "blocks" and parts[2] == "attn" and parts[3] in ("qkv", "merge"):
                state[".".join(parts[:4] + parts[5:])][int(parts[4])].copy_(value.t() if value.dim() == 2 else value)
            else:
                state[key].copy_(value)
