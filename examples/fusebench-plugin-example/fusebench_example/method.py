"""Max-pool fusion: the element-wise maximum of the shared unimodal encodings.

Each modality is encoded by FuseBench's shared encoders (so the comparison with other
representation-level methods isolates the fusion step), optionally layer-normalised per
modality so no modality wins the max by scale alone, and pooled with an element-wise max
over the modalities that are *present* (a missing modality, ``batch.present[m] == False``,
is left out of the max instead of contributing the encoding of zeros).  An MLP head maps
the pooled vector to the outputs.

Max is a symmetric set function (Zaheer et al., "Deep Sets", NeurIPS 2017; Qi et al.,
"PointNet", CVPR 2017); unlike a sum, it is not additive across modalities, so EMAP can
tell whether the trained model actually uses cross-modal interactions.
"""

from __future__ import annotations

import torch
from torch import nn

from fusebench import Batch, Output, RepresentationFusion


class ElementwiseMax(nn.Module):
    """(list of M tensors (B, H), presence (M, B)) -> (B, H): max over present modalities."""

    def __init__(self, dim: int, n_modalities: int, layer_norm: bool):
        super().__init__()
        self.out_dim = dim
        self.norms = nn.ModuleList(
            nn.LayerNorm(dim) if layer_norm else nn.Identity() for _ in range(n_modalities)
        )

    def forward(self, reps: list[torch.Tensor], present: torch.Tensor | None = None) -> torch.Tensor:
        stacked = torch.stack([norm(r) for norm, r in zip(self.norms, reps, strict=True)])  # (M, B, H)
        if present is None:
            return stacked.amax(dim=0)
        masked = stacked.masked_fill(~present[..., None], float("-inf"))
        pooled = masked.amax(dim=0)
        # a sample with every modality missing gets the zero vector, never -inf
        return torch.where(present.any(dim=0)[:, None], pooled, torch.zeros_like(pooled))


class MaxPoolFusion(RepresentationFusion):
    """Shared encoders -> ElementwiseMax over present modalities -> MLP head."""

    def __init__(self, task, hparams):
        fusion = ElementwiseMax(int(hparams["hidden"]), len(task.modalities), bool(hparams["layer_norm"]))
        super().__init__(task, hparams, fusion, head="mlp")

    # encode() is inherited: one shared encoder per modality, modalities never mixed.

    def fuse(self, encoded: Batch) -> Output:
        reps = [encoded.x[m] for m in self.modalities]
        present = torch.stack([encoded.present[m] for m in self.modalities])  # (M, B)
        return Output(self.head(self.fusion(reps, present)))


def build(task, hparams) -> MaxPoolFusion:
    return MaxPoolFusion(task, hparams)
