"""Tensor Fusion Network (Zadeh et al., EMNLP 2017).

Z = [1; z_1] (x) [1; z_M] (outer product, 1 *prepended* as in both reference codes),
flattened row-major over the modality order, then the shared MLP head.  Z contains the
constant, every unimodal vector and every bi-/tri-/M-modal product, so a linear map of it
is a polynomial with all interaction orders.  Each encoding is first projected to
``tensor_dim`` units; with ``tensor_dim = 0`` (default) it is chosen as the largest size
whose fused width prod(d+1) stays within ``max_fused_dim`` (the fused width grows
exponentially with the number of modalities).
"""

import torch
from torch import nn

from fusebench import Choice, MethodSpec, RepresentationFusion, hookimpl

from .common import prepend_one, project_each


def outer_with_ones(reps: list[torch.Tensor]) -> torch.Tensor:
    """vec([1;z_1] (x) ... (x) [1;z_M]) for a batch: (B, prod(d_m + 1))."""
    fused = None
    for z in reps:
        z1 = prepend_one(z)
        fused = z1 if fused is None else torch.einsum("bi,bj->bij", fused, z1).flatten(1)
    return fused


def auto_tensor_dim(n_modalities: int, hidden: int, max_fused_dim: int) -> int:
    dim = max(1, round(max_fused_dim ** (1.0 / n_modalities)) - 1)
    while dim > 1 and (dim + 1) ** n_modalities > max_fused_dim:
        dim -= 1
    return min(hidden, dim)


class TensorFusion(nn.Module):
    def __init__(self, n_modalities: int, hidden: int, tensor_dim: int):
        super().__init__()
        self.project = project_each(n_modalities, hidden, tensor_dim)
        self.out_dim = (tensor_dim + 1) ** n_modalities

    def forward(self, reps: list[torch.Tensor]) -> torch.Tensor:
        return outer_with_ones(self.project(reps))


def build(task, hp):
    m = len(task.modalities)
    dim = hp["tensor_dim"] or auto_tensor_dim(m, hp["hidden"], hp["max_fused_dim"])
    return RepresentationFusion(task, hp, TensorFusion(m, hp["hidden"], dim))


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="tensor", family="tensor", build=build,
        aliases=("tfn", "tensor_fusion", "tensorfusion"),  # the paper / MMSA, MultiBench's TensorFusion
        defaults={"tensor_dim": 0, "max_fused_dim": 4096},
        # the fused width cap, not tensor_dim: a fixed per-modality width explodes with 3+ modalities
        search_space={"max_fused_dim": Choice((1024, 4096, 16384))},
        reference="Zadeh et al., Tensor Fusion Network for Multimodal Sentiment Analysis, EMNLP 2017",
        description="Outer product of [1; z_m] over modalities -> MLP head.",
    ))
