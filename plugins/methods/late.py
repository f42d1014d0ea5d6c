"""Late fusion: each modality gets its own encoder and prediction head; predictions
(logits) are averaged.  Additive in the modalities by construction."""

import torch
from torch import nn

from fusebench import MethodSpec, RepresentationFusion, hookimpl, mlp_head


class AveragedHeads(nn.Module):
    def __init__(self, n_modalities: int, dim: int, n_outputs: int, dropout: float):
        super().__init__()
        self.heads = nn.ModuleList(mlp_head(dim, n_outputs, dim, dropout) for _ in range(n_modalities))
        self.out_dim = n_outputs

    def forward(self, reps: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([head(r) for head, r in zip(self.heads, reps, strict=True)]).mean(dim=0)


def build(task, hp):
    heads = AveragedHeads(len(task.modalities), hp["hidden"], task.target.n_outputs, hp["dropout"])
    return RepresentationFusion(task, hp, heads, head="none")


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="late", family="late", build=build,
        aliases=("lf", "late_fusion"),
        reference="Late fusion (decision-level averaging); Baltrusaitis et al., TPAMI 2019 survey",
        description="Per-modality encoder + head; output logits averaged.",
    ))
