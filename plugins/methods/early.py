"""Early fusion: concatenate the *raw* inputs and learn one joint model over them.

Vectors are concatenated; sequences are concatenated step by step.  Unaligned sequences
(different lengths per modality and per row) are first put on a common per-row time grid:
each row's *real* steps of every sequence modality are linearly resampled to that row's
longest real length (padding never enters the interpolation), vector modalities are
repeated at every step, and the joint mask marks the row's grid.  Then one
shared-architecture encoder (LSTM for sequences, MLP for vectors) and the shared head.
Because the joint encoder is nonlinear it can model interactions.
"""

from __future__ import annotations

import torch

from fusebench import Batch, FusionModel, MethodSpec, ModalitySpec, Output, hookimpl, make_encoder, mlp_head

from .common import as_sequence


def resample_rows(x: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, steps: int) -> torch.Tensor:
    """Row b's first ``lengths[b]`` steps of ``x`` (B, T, D), linearly resampled to
    ``targets[b]`` steps (end points kept) and right-padded with zeros to ``steps``."""
    grid = torch.arange(steps, device=x.device, dtype=x.dtype).expand(x.shape[0], -1)
    scale = (lengths - 1).to(x.dtype) / (targets - 1).clamp(min=1).to(x.dtype)
    pos = grid * scale[:, None]
    low = pos.floor().long().clamp(max=x.shape[1] - 1)
    high = (low + 1).clamp(max=(lengths - 1)[:, None])
    frac = (pos - low.to(x.dtype)).unsqueeze(-1)
    take = lambda idx: x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    out = take(low) * (1 - frac) + take(high) * frac
    return out * (grid < targets[:, None]).unsqueeze(-1)


def align(batch: Batch, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, sum D) joint sequence on each row's longest real length, and its mask."""
    seqs = {m: as_sequence(batch.x[m], batch.mask[m]) for m in names if batch.x[m].dim() == 3}
    lengths = {m: mask.sum(dim=1).clamp(min=1) for m, (_, mask) in seqs.items()}
    targets = torch.stack(list(lengths.values())).amax(dim=0)
    steps = int(targets.max())
    parts = []
    for m in names:
        x = batch.x[m]
        if x.dim() == 2:
            parts.append(x.unsqueeze(1).expand(-1, steps, -1))
        else:
            parts.append(resample_rows(seqs[m][0], lengths[m], targets, steps))
    mask = torch.arange(steps, device=targets.device)[None, :] < targets[:, None]
    return torch.cat(parts, dim=2), mask


class EarlyFusion(FusionModel):
    def __init__(self, task, hp):
        super().__init__(task, hp)
        mods = task.modalities
        self.sequence = any(m.kind == "sequence" for m in mods)
        joint = ModalitySpec("joint", sum(m.dim for m in mods), "sequence" if self.sequence else "vector")
        self.encoder = make_encoder(joint, hp["hidden"], hp["dropout"])
        self.head = mlp_head(hp["hidden"], task.target.n_outputs, hp["hidden"], hp["dropout"])

    def fuse(self, batch: Batch) -> Output:
        if not self.sequence:
            return Output(self.head(self.encoder(torch.cat([batch.x[m] for m in self.modalities], dim=1))))
        joint, mask = align(batch, self.modalities)
        return Output(self.head(self.encoder(joint, mask)))


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="early", family="early", build=EarlyFusion,
        aliases=("ef", "early_fusion", "ef_lstm"),  # MMSA's EF-LSTM: raw inputs concatenated per step, one LSTM
        reference="Early (feature-level) fusion, e.g. EF-LSTM; Baltrusaitis et al., TPAMI 2019 survey",
        description="Concatenate raw inputs (per time step for sequences, unaligned ones resampled "
                    "over their real steps) -> one joint encoder -> head.",
    ))
