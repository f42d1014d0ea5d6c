"""Bilinear fusion: h_k = sum_{i<j} z_i^T W^{ij}_k z_j + sum_m u_{m,k}^T z_m + b_k.

For two modalities this is MultiBench's ``MultiplicativeInteractions2Modal('matrix')`` and
exactly ``Linear(TFN([z_1, z_2]))`` with the weight blocks (b, u, v, W) placed at the
(0,0), (1:,0), (0,1:), (1:,1:) corners of the TFN tensor (docs/methods.md, "Bilinear"); LMF is its
low-rank factorisation.  For M > 2 modalities it keeps every *pairwise* bilinear term (the
TFN terms of order <= 2), so, unlike TFN, it cannot express M-way parity.
"""

from __future__ import annotations

from itertools import combinations

import torch
from torch import nn

from fusebench import Choice, MethodSpec, RepresentationFusion, hookimpl


class BilinearFusion(nn.Module):
    def __init__(self, n_modalities: int, in_dim: int, out_dim: int):
        super().__init__()
        self.pairs = list(combinations(range(n_modalities), 2))
        self.linear = nn.Linear(n_modalities * in_dim, out_dim)  # sum_m u_m^T z_m + b
        self.bilinear = nn.ModuleList(nn.Bilinear(in_dim, in_dim, out_dim, bias=False) for _ in self.pairs)
        self.out_dim = out_dim

    def forward(self, reps: list[torch.Tensor]) -> torch.Tensor:
        out = self.linear(torch.cat(reps, dim=-1))
        for (i, j), form in zip(self.pairs, self.bilinear, strict=True):
            out = out + form(reps[i], reps[j])
        return out


def build(task, hp):
    width = hp["bilinear_dim"] or hp["hidden"]
    return RepresentationFusion(task, hp, BilinearFusion(len(task.modalities), hp["hidden"], width))


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="bilinear", family="bilinear", build=build,
        defaults={"bilinear_dim": 0},
        search_space={"bilinear_dim": Choice((0, 8, 16, 32, 64))},
        reference="Tenenbaum & Freeman, Separating Style and Content with Bilinear Models, "
                  "Neural Computation 2000; MultiBench MultiplicativeInteractions2Modal (Liang et al., 2021)",
        description="Pairwise bilinear forms + linear terms of the unimodal encodings -> MLP head "
                    "(bilinear_dim 0 = hidden).",
        min_modalities=2,
    ))
