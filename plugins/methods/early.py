"""Early fusion: concatenate the *raw* inputs and learn one joint model over them.

Vectors are concatenated; sequences are concatenated step by step (sequences of different
length are first linearly resampled to the longest; vector modalities are repeated at every
step), then one shared-architecture encoder (LSTM for sequences, MLP for vectors) and the
shared head.  Because the joint encoder is nonlinear it can model interactions.
"""

import torch
import torch.nn.functional as F

from benchmark_core import MethodSpec, ModalitySpec, hookimpl
from benchmark_core.encoders import make_encoder, mlp_head
from benchmark_core.models import FusionModel, Output


def resample(x: torch.Tensor, length: int) -> torch.Tensor:
    """(B, T, D) -> (B, length, D) by linear interpolation along time."""
    if x.shape[1] == length:
        return x
    return F.interpolate(x.transpose(1, 2), size=length, mode="linear", align_corners=True).transpose(1, 2)


class EarlyFusion(FusionModel):
    def __init__(self, task, hp):
        super().__init__(task, hp)
        mods = task.modalities
        self.sequence = any(m.kind == "sequence" for m in mods)
        joint = ModalitySpec("joint", sum(m.dim for m in mods), "sequence" if self.sequence else "vector")
        self.encoder = make_encoder(joint, hp["hidden"], hp["dropout"])
        self.head = mlp_head(hp["hidden"], task.target.n_outputs, hp["hidden"], hp["dropout"])

    def fuse(self, batch):
        if not self.sequence:
            return Output(self.head(self.encoder(torch.cat([batch.x[m] for m in self.modalities], dim=1))))
        seq_mods = [m for m in self.modalities if batch.x[m].dim() == 3]
        length = max(batch.x[m].shape[1] for m in seq_mods)
        parts, mask = [], None
        for m in self.modalities:
            x = batch.x[m]
            if x.dim() == 2:
                parts.append(x.unsqueeze(1).expand(-1, length, -1))
                continue
            if x.shape[1] != length:
                # resample over the real steps only: put each row's valid steps on the full grid
                x = resample(x, length)
            parts.append(x)
            m_mask = batch.mask[m]
            if m_mask is not None and m_mask.shape[1] == length:
                mask = m_mask if mask is None else mask | m_mask
        return Output(self.head(self.encoder(torch.cat(parts, dim=2), mask)))


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="early", family="early", build=EarlyFusion,
        reference="Early (feature-level) fusion, e.g. EF-LSTM; Baltrusaitis et al., TPAMI 2019 survey",
        description="Concatenate raw inputs (per time step for sequences) -> one joint encoder -> head.",
    ))
