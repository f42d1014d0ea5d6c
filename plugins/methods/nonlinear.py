"""Nonlinear fusion: an MLP on the concatenated unimodal encodings (intermediate fusion).

Unlike early fusion it concatenates *encodings*, not raw inputs, so it isolates the
question "does a generic nonlinear map of the joint representation suffice?" — the MLP can
learn any interaction in principle, it just has no built-in multiplicative structure.
"""

from __future__ import annotations

import torch
from torch import nn

from fusebench import Choice, Int, MethodSpec, RepresentationFusion, hookimpl


class ConcatMLP(nn.Module):
    def __init__(self, in_dim: int, width: int, layers: int, dropout: float):
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*blocks)
        self.out_dim = width if layers else in_dim

    def forward(self, reps: list[torch.Tensor]) -> torch.Tensor:
        return self.net(torch.cat(reps, dim=-1))


def build(task, hp):
    fusion = ConcatMLP(len(task.modalities) * hp["hidden"], hp["mlp_dim"] or hp["hidden"],
                       hp["mlp_layers"], hp["dropout"])
    return RepresentationFusion(task, hp, fusion)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="nonlinear", family="nonlinear", build=build,
        defaults={"mlp_layers": 1, "mlp_dim": 0},
        search_space={"mlp_layers": Int(1, 3), "mlp_dim": Choice((0, 32, 64, 128, 256))},
        reference="Intermediate fusion by an MLP on concatenated encodings; "
                  "Baltrusaitis et al., Multimodal Machine Learning: A Survey and Taxonomy, TPAMI 2019",
        description="Concatenate unimodal encodings -> ReLU MLP (mlp_layers) -> MLP head.",
    ))
