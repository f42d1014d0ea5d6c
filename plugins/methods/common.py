"""Building blocks shared by several fusion methods (not a plugin: registers nothing).

Only mechanisms used by two or more methods live here, so each method module keeps just
what makes that method different: the TFN/LMF "prepend a 1" convention, per-modality
projections, the vector-as-length-1-sequence view used by the sequence-level methods, the
fairseq sinusoidal positions, the MulT attention mask and choosing a modality by
position or name (unimodal baselines, the MAG primary).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fusebench import TaskSpec


def prepend_one(z: torch.Tensor) -> torch.Tensor:
    """[1; z] along the last axis (the 1 goes at index 0, as in both TFN/LMF reference codes)."""
    return torch.cat([torch.ones_like(z[..., :1]), z], dim=-1)


class PerModality(nn.ModuleList):
    """One module per modality, applied to the matching representation."""

    def forward(self, reps: Sequence[torch.Tensor]) -> list[torch.Tensor]:  # type: ignore[override]
        return [module(z) for module, z in zip(self, reps, strict=True)]


def project_each(n_modalities: int, in_dim: int, out_dim: int, bias: bool = True) -> PerModality:
    """Independent linear maps, one per modality."""
    return PerModality(nn.Linear(in_dim, out_dim, bias=bias) for _ in range(n_modalities))


def as_sequence(x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A modality as (B, T, D) plus a (B, T) real-step mask; a vector is a length-1 sequence.

    A row without any real step (a removed modality: one masked zero step) gets its first
    step marked real, so attention over it sees a zero input instead of an all-masked row
    (which would give NaN)."""
    if x.dim() == 2:
        x = x.unsqueeze(1)
    if mask is None:
        return x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    empty = ~mask.any(dim=1, keepdim=True)
    first = torch.zeros_like(mask)
    first[:, 0] = True
    return x, mask | (empty & first)


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """fairseq sinusoids (as MulT uses them): positions start at 1, the first half of the
    channels are sines and the second half cosines, frequencies 10000^(-j/(dim/2 - 1))."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32)
                     * -(math.log(10000.0) / max(half - 1, 1)))
    angles = torch.arange(1, length + 1, device=device, dtype=torch.float32)[:, None] * freq[None]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(length, 1, device=device)], dim=1)
    return table


def causal_mask(t_query: int, t_key: int, device: torch.device | None = None) -> torch.Tensor:
    """MulT's "future" mask: query i may not attend key j > i + |t_key - t_query| (True = blocked)."""
    offset = 1 + abs(t_key - t_query)
    return torch.ones(t_query, t_key, dtype=torch.bool, device=device).triu(offset)


def pick_modality(task: TaskSpec, choice: Any) -> str:
    """A modality name from a 0-based position or a name."""
    names = task.modality_names
    if isinstance(choice, str) and choice in names:
        return choice
    try:
        index = int(choice)
    except (TypeError, ValueError):
        raise ValueError(f"modality must be a position 0..{len(names) - 1} or one of {list(names)}, "
                         f"got {choice!r}") from None
    if not 0 <= index < len(names):
        raise ValueError(f"modality position {index} is out of range for modalities {list(names)}")
    return names[index]
