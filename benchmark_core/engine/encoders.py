"""Shared unimodal encoders, built by the core from the TaskSpec.

Every representation-level fusion method uses exactly these, so methods differ only in
how they fuse.  Sequences are summarised by an LSTM read at the last *real* step
(right-padded input, so padding never reaches the summary); vectors go through an MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark_core.specs import ModalitySpec, TaskSpec


def last_valid(outputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, H) -> (B, H): the output at each row's last real step."""
    if mask is None:
        return outputs[:, -1]
    lengths = mask.sum(dim=1).clamp(min=1)
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
    return outputs.gather(1, index).squeeze(1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, D) -> (B, D) mean over real steps."""
    if mask is None:
        return x.mean(dim=1)
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class VectorEncoder(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


class SequenceEncoder(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, batch_first=True)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        outputs, _ = self.rnn(x)
        return self.out(last_valid(outputs, mask))


def make_encoder(modality: ModalitySpec, hidden: int, dropout: float) -> nn.Module:
    cls = SequenceEncoder if modality.kind == "sequence" else VectorEncoder
    return cls(modality.dim, hidden, dropout)


class UnimodalEncoders(nn.ModuleDict):
    """One encoder per modality of the task, each mapping its input to (B, hidden)."""

    def __init__(self, task: TaskSpec, hidden: int, dropout: float):
        super().__init__({m.name: make_encoder(m, hidden, dropout) for m in task.modalities})
        self.hidden = hidden

    def encode(self, name: str, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self[name](x, mask)


def mlp_head(in_dim: int, out_dim: int, hidden: int, dropout: float) -> nn.Module:
    """The shared prediction head (one hidden ReLU layer)."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))
