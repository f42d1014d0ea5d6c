"""MutualFormer — cross-diffusion attention (Wang, Jiang et al., arXiv 2112.01177 / IJCV 2024).

Per head, each modality's self-attention matrix A_m = softmax(Q_m K_m^T / sqrt(c)) is an
affinity over the *same* N token positions; cross-diffusion mixes two modalities'
affinities into one that both agree on,

    A_{m<-j} = alpha * S_m S_j^T + (1 - alpha) (A_m + A_j),   S = A^T,

and uses it to aggregate the *other* modality's values (O_{m<-j} = A_{m<-j} V_j).  This is
exactly the reference code: ``get_S`` normalises a row-stochastic matrix by its row sums
(so S = A^T), the diffusion starts from the identity and its loop never feeds back (one
step, whatever ``max_iter``), and nothing renormalises the result (rows sum to 2).  Each
modality merges [O_m; O_{m<-j}] (Linear 2C -> C); a fused token stream gets ordinary
self-attention plus a projection of all merged modality outputs; pre-LN residual blocks
with a GELU MLP update the fused stream only (the modality tokens are the block inputs at
every depth, as in the code, whose first LayerNorm normalises the concatenated modality
tokens jointly).

Harness choices (the paper's inputs are token-aligned image patches): every modality is
turned into the same number ``tokens`` of tokens in ``encode`` — a vector by a linear map
to tokens x hidden, a sequence by attention pooling with ``tokens`` learned queries (padded
steps masked out) — so unequal lengths and vectors are handled without alignment.  The
fused stream starts as the mean of the modality tokens and is mean-pooled at the end.  For
M > 2 modalities modality m averages its cross-diffused outputs over all j != m (for M = 2
this is the reference formula).

Batched: the per-modality projections are one stacked ``GroupLinear`` each and the M(M-1)
cross-diffusions of a block are computed as one batch of pairs (``fusebench.GroupLinear``),
instead of Python loops over modalities and pairs; same model, same parameter count.
"""

from __future__ import annotations

import torch
from torch import nn

from fusebench import (
    Batch,
    Float,
    FusionModel,
    GroupLinear,
    Int,
    MethodSpec,
    Output,
    TaskSpec,
    hookimpl,
    mlp_head,
)

from .common import as_sequence


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
    """The reference ``MultiAttention`` generalised to M modality streams, all at once."""

    def __init__(self, dim: int, heads: int, n_modalities: int, alpha: float, dropout: float):
        super().__init__()
        self.heads, self.alpha, self.scale = heads, alpha, (dim // heads) ** -0.5
        self.qkv = GroupLinear(n_modalities, dim, 3 * dim, bias=False)
        self.qkv_fused = nn.Linear(dim, 3 * dim, bias=False)
        self.merge = GroupLinear(n_modalities, 2 * dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_all = nn.Linear(n_modalities * dim, dim)
        self.attn_dropout, self.proj_dropout = nn.Dropout(dropout), nn.Dropout(dropout)
        # (m, j) pairs, m-major: modality m's cross-diffused outputs are one contiguous block
        pairs = [(m, j) for m in range(n_modalities) for j in range(n_modalities) if j != m]
        self.register_buffer("receiver", torch.tensor([m for m, _ in pairs]), persistent=False)
        self.register_buffer("sender", torch.tensor([j for _, j in pairs]), persistent=False)

    def split(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., N, 3C) packed projections -> softmax attention (..., H, N, N) and values (..., H, N, c)."""
        *lead, n, c3 = qkv.shape
        q, k, v = qkv.view(*lead, n, 3, self.heads, c3 // (3 * self.heads)).movedim(-3, 0).transpose(-2, -3)
        return (q @ k.transpose(-1, -2) * self.scale).softmax(dim=-1), v

    @staticmethod
    def join(x: torch.Tensor) -> torch.Tensor:
        """(..., H, N, c) -> (..., N, H c)."""
        return x.transpose(-2, -3).flatten(-2)

    def forward(self, xs: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        """xs: (M, B, N, C) modality tokens, fused: (B, N, C)."""
        n_mod, b, n, _c = xs.shape
        attn, values = self.split(self.qkv(xs))  # (M, B, H, N, N), (M, B, H, N, c)
        cross = cross_diffusion(attn[self.receiver], attn[self.sender], self.alpha)
        mixed = (self.attn_dropout(cross) @ values[self.sender]).unflatten(0, (n_mod, n_mod - 1)).mean(dim=1)
        merged = self.merge(torch.cat([self.join(attn @ values), self.join(mixed)], dim=-1))  # (M, B, N, C)
        a, v = self.split(self.qkv_fused(fused))
        out = self.join(self.attn_dropout(a) @ v)
        return self.proj_dropout(self.proj(out)) + self.proj_all(merged.permute(1, 2, 0, 3).reshape(b, n, -1))


class MutualBlock(nn.Module):
    def __init__(self, dim: int, heads: int, n_modalities: int, alpha: float, dropout: float):
        super().__init__()
        self.norm_modalities = nn.LayerNorm(n_modalities * dim)  # joint over the concatenation
        self.norm_fused, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CrossDiffusionAttention(dim, heads, n_modalities, alpha, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, xs: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        """xs: (M, B, N, C); the LayerNorm reads each token's M modality vectors jointly."""
        n_mod, b, n, c = xs.shape
        normed = self.norm_modalities(xs.permute(1, 2, 0, 3).reshape(b, n, n_mod * c))
        fused = fused + self.attn(normed.view(b, n, n_mod, c).permute(2, 0, 1, 3), self.norm_fused(fused))
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
        xs = torch.stack([encoded.x[m] for m in self.modalities])  # (M, B, N, C)
        fused = xs.mean(dim=0)
        for block in self.blocks:
            fused = block(xs, fused)
        return Output(self.head(self.norm(fused).mean(dim=1)))


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="mutualformer", family="diffusion-attention", build=MutualFormer,
        defaults={"tokens": 4, "heads": 4, "layers": 2, "diffusion_alpha": 0.6},
        search_space={"tokens": Int(2, 8), "layers": Int(1, 3), "diffusion_alpha": Float(0.1, 0.9)},
        reference="Wang, Jiang et al., MutualFormer: Multi-modal Representation Learning via "
                  "Cross-Diffusion Attention, IJCV 2024 (arXiv 2112.01177)",
        description="Per-modality tokens; self-attention + cross-diffusion attention between "
                    "modalities aggregated into a fused token stream -> head.",
        min_modalities=2,
    ))
