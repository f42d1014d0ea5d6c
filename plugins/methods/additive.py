"""Additive fusion: sum of the unimodal representations, then a *linear* head.

A linear map of a sum is a sum of per-modality terms, so the model's output is exactly
additive across modalities: f(x1..xM) = sum_m g_m(x_m) + b.  This is the reference point
for EMAP (an additive model equals its own projection) and cannot represent XOR.
"""

import torch
from torch import nn

from fusebench import MethodSpec, RepresentationFusion, hookimpl


class SumFusion(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, reps: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(reps).sum(dim=0)


def build(task, hp):
    return RepresentationFusion(task, hp, SumFusion(hp["hidden"]), head="linear")


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="additive", family="additive", build=build,
        reference="Additive baseline; Hessel & Lee, EMNLP 2020 (EMAP) for why it matters",
        description="Sum of unimodal encodings -> linear head (output exactly additive).",
    ))
