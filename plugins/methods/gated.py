"""Gated Multimodal Unit (Arevalo et al., 2017): h = sum_m g_m * tanh(W_m z_m).

The gate g is computed from *all* modalities, so how much each modality contributes is
decided per sample and per unit; the gate-times-feature products are the interaction.
The paper's two-modality gate is g = sigmoid(W_g [z_1; z_2]), h = g h_1 + (1 - g) h_2; for
M modalities we use a per-unit softmax over modalities, g = softmax_m(W_g [z_1; ...; z_M]),
which for M = 2 spans exactly the same functions (softmax of two logits = sigmoid of their
difference, and the difference of two linear maps is a linear map).
"""

from __future__ import annotations

import torch
from torch import nn

from fusebench import Choice, MethodSpec, RepresentationFusion, hookimpl

from .common import project_each


class GatedFusion(nn.Module):
    def __init__(self, n_modalities: int, in_dim: int, out_dim: int):
        super().__init__()
        self.n, self.out_dim = n_modalities, out_dim
        self.transform = project_each(n_modalities, in_dim, out_dim, bias=False)  # paper: no bias
        self.gate = nn.Linear(n_modalities * in_dim, n_modalities * out_dim, bias=False)

    def gates(self, reps: list[torch.Tensor]) -> torch.Tensor:
        """(B, M, d_out), summing to 1 over modalities."""
        logits = self.gate(torch.cat(reps, dim=-1)).view(-1, self.n, self.out_dim)
        return logits.softmax(dim=1)

    def forward(self, reps: list[torch.Tensor]) -> torch.Tensor:
        h = torch.stack([torch.tanh(t) for t in self.transform(reps)], dim=1)
        return (self.gates(reps) * h).sum(dim=1)


def build(task, hp):
    width = hp["gmu_dim"] or hp["hidden"]
    return RepresentationFusion(task, hp, GatedFusion(len(task.modalities), hp["hidden"], width))


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="gmu", family="gated", build=build,
        aliases=("gated",),  # its family, the name peer tables use
        defaults={"gmu_dim": 0},
        search_space={"gmu_dim": Choice((0, 16, 32, 64, 128))},
        reference="Arevalo et al., Gated Multimodal Units for Information Fusion, ICLR workshop 2017",
        description="Per-unit softmax gates over modalities weight tanh-projected encodings -> MLP head.",
        min_modalities=2,
    ))
