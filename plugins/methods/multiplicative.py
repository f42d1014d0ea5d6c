"""Multiplicative (element-wise) fusion: h = (W_1 z_1 + b_1) * ... * (W_M z_M + b_M).

The Hadamard product is the cheapest fusion whose output contains products of features
from different modalities, so unlike a sum it can express parity-type (XOR) labels; the
biases keep lower-order terms reachable (expanding the product gives every sub-product).
This is the "diagonal" multiplicative interaction of Jayakumar et al. (2020).
"""

from __future__ import annotations

import torch
from torch import nn

from fusebench import Choice, MethodSpec, RepresentationFusion, hookimpl

from .common import project_each


class ProductFusion(nn.Module):
    def __init__(self, n_modalities: int, in_dim: int, out_dim: int):
        super().__init__()
        self.project = project_each(n_modalities, in_dim, out_dim)
        self.out_dim = out_dim

    def forward(self, reps: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(self.project(reps)).prod(dim=0)


def build(task, hp):
    width = hp["product_dim"] or hp["hidden"]
    return RepresentationFusion(task, hp, ProductFusion(len(task.modalities), hp["hidden"], width))


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="multiplicative", family="multiplicative", build=build,
        defaults={"product_dim": 0},
        search_space={"product_dim": Choice((0, 16, 32, 64, 128))},
        reference="Jayakumar et al., Multiplicative Interactions and Where to Find Them, ICLR 2020",
        description="Element-wise product of affinely projected unimodal encodings -> MLP head "
                    "(product_dim 0 = hidden).",
        min_modalities=2,
    ))
