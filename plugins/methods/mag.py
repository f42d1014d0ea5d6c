"""Multimodal Adaptation Gate (Rahman et al., ACL 2020): shift a primary modality by the others.

The primary modality (text in the paper) keeps its own representation Z_i per step; the
other modalities only *displace* it:

    g_m = ReLU(W_gm [E_m; Z_i] + b_gm),   H_i = sum_m g_m * (W_m E_m + b_m)
    alpha_i = min(beta * ||Z_i|| / (||H_i|| + eps), 1)   (||H_i|| = 0 -> use 1)
    Z'_i = Dropout(LayerNorm(Z_i + alpha_i H_i))

so the shift can never be larger than beta times the primary vector.  The reference
injects MAG after BERT's embedding layer with word-aligned nonverbal features; here the
primary's steps are linearly embedded, each other modality is summarised once by its
shared encoder (E_m, broadcast to every primary step: harness data are not word-aligned),
and the shifted sequence is read by a primary-kind encoder (LSTM for sequences, MLP for a
vector primary) and the shared head.  ``primary``: modality name or 0-based position;
default ``""`` = the first sequence modality, else the first modality.
"""

from __future__ import annotations

import torch
from torch import nn

from fusebench import (
    Batch,
    Float,
    FusionModel,
    MethodSpec,
    ModalitySpec,
    Output,
    TaskSpec,
    UnimodalEncoders,
    hookimpl,
    make_encoder,
    mlp_head,
)

from .common import pick_modality

EPS = 1e-6


def shift_scale(z: torch.Tensor, h: torch.Tensor, beta: float, eps: float = EPS) -> torch.Tensor:
    """alpha = min(beta * ||z|| / (||h|| + eps), 1) over the last axis (keepdim); a zero
    shift norm is replaced by 1, as in the reference."""
    z_norm = z.norm(dim=-1, keepdim=True)
    h_norm = h.norm(dim=-1, keepdim=True)
    h_norm = torch.where(h_norm == 0, torch.ones_like(h_norm), h_norm)
    return (z_norm / (h_norm + eps) * beta).clamp(max=1.0)


class AdaptationGate(nn.Module):
    """The MAG layer: Z (B, T, d) shifted by other modalities' vectors E_m (B, d_m)."""

    def __init__(self, dim: int, other_dims: list[int], beta: float, dropout: float):
        super().__init__()
        self.gates = nn.ModuleList(nn.Linear(d + dim, dim) for d in other_dims)
        self.values = nn.ModuleList(nn.Linear(d, dim) for d in other_dims)
        self.norm, self.dropout, self.beta = nn.LayerNorm(dim), nn.Dropout(dropout), beta

    def shift(self, z: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor:
        h = torch.zeros_like(z)
        for gate, value, e in zip(self.gates, self.values, others, strict=True):
            e = e.unsqueeze(1).expand(-1, z.shape[1], -1)
            h = h + torch.relu(gate(torch.cat([e, z], dim=-1))) * value(e)
        return h

    def forward(self, z: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor:
        h = self.shift(z, others)
        return self.dropout(self.norm(z + shift_scale(z, h, self.beta) * h))


def default_primary(task: TaskSpec) -> str:
    sequences = [m.name for m in task.modalities if m.kind == "sequence"]
    return sequences[0] if sequences else task.modality_names[0]


class MAG(FusionModel):
    def __init__(self, task: TaskSpec, hparams):
        super().__init__(task, hparams)
        hidden, dropout = self.hparams["hidden"], self.hparams["dropout"]
        choice = self.hparams["primary"]
        self.primary = default_primary(task) if choice == "" else pick_modality(task, choice)
        self.others = [m for m in self.modalities if m != self.primary]
        primary = task.modality(self.primary)
        self.embed = nn.Linear(primary.dim, hidden)
        self.encoders = UnimodalEncoders(
            TaskSpec(tuple(task.modality(m) for m in self.others), task.target), hidden, dropout)
        self.gate = AdaptationGate(hidden, [hidden] * len(self.others), self.hparams["beta_shift"], dropout)
        self.reader = make_encoder(ModalitySpec(self.primary, hidden, primary.kind), hidden, dropout)
        self.head = mlp_head(hidden, task.target.n_outputs, hidden, dropout)

    def encode(self, batch: Batch) -> Batch:
        x = {m: self.encoders.encode(m, batch.x[m], batch.mask[m]) for m in self.others}
        x[self.primary] = self.embed(batch.x[self.primary])
        mask = {**{m: None for m in self.others}, self.primary: batch.mask[self.primary]}
        return batch.replace(x=x, mask=mask)

    def fuse(self, encoded: Batch) -> Output:
        z = encoded.x[self.primary]
        vector = z.dim() == 2
        shifted = self.gate(z.unsqueeze(1) if vector else z, [encoded.x[m] for m in self.others])
        read = self.reader(shifted.squeeze(1) if vector else shifted, encoded.mask[self.primary])
        return Output(self.head(read))


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="mag", family="modality-shift", build=MAG,
        defaults={"primary": "", "beta_shift": 1.0},
        search_space={"beta_shift": Float(0.1, 4.0, log=True)},
        reference="Rahman et al., Integrating Multimodal Information in Large Pretrained Transformers, "
                  "ACL 2020 (Multimodal Adaptation Gate)",
        description="Primary modality's steps shifted by gated displacements from the other "
                    "modalities (norm-bounded by beta_shift) -> primary encoder -> head.",
        min_modalities=2,
    ))
