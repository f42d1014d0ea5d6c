"""Built-in stress tests: remove modalities, add feature-scaled Gaussian noise, drop time steps.

Each corruption is a pure function of the clean batch, the condition and a generator the
engine seeds per condition, so every method is scored on identical corrupted inputs.
Untouched modalities are passed through as the same tensors (``batch.replace``), which
lets the engine reuse their clean encodings.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from fusebench import Batch, StressSpec, TaskSpec, hookimpl, subset_design

LEVELS = tuple(round(0.1 * i, 1) for i in range(1, 11))  # 0.1 ... 1.0
TIMEDROP_LEVELS = (0.2, 0.4, 0.6, 0.8, 1.0)  # coarser: each level re-encodes whole sequences
REMOVED = 1.0  # the single "level" of a missing-modality condition


def targeted(target: str, candidates: tuple[str, ...]) -> tuple[str, ...]:
    """Modalities a condition's target names: one, a '+'-joined subset, or ``all``."""
    return candidates if target == "all" else tuple(target.split("+"))


# -- missing -----------------------------------------------------------------------------------

def missing_conditions(task: TaskSpec, seed: int = 0) -> list[tuple[str, float]]:
    """Every non-empty subset of modalities that leaves at least one modality present, up to
    ``fusebench.FULL_GRID_MAX_MODALITIES`` (8) modalities; above, the seeded subset design
    (every leave-one-out and keep-one subset plus a sample of the others drawn from ``seed``,
    the run's stress seed, so every method of a seed gets the same subsets; docs/stress.md)."""
    names = task.modality_names
    return [(target, REMOVED) for target in subset_design(len(names), seed).targets(names)]


def remove(batch: Batch, target: str, level: float, generator: torch.Generator,
           stats: Mapping[str, torch.Tensor]) -> Batch:
    """Zero the inputs, mask every step and flag the modality absent (``present`` False),
    so a method able to impute (e.g. MFM's surrogate inference) can tell and do so.  A
    removed sequence becomes a single masked zero step: no content, and nothing to encode."""
    x, mask, present = dict(batch.x), dict(batch.mask), dict(batch.present)
    for m in targeted(target, tuple(batch.x)):
        clean = batch.x[m]
        if batch.mask[m] is None:
            x[m] = torch.zeros_like(clean)
        else:
            x[m] = clean.new_zeros(clean.shape[0], 1, clean.shape[2])
            mask[m] = batch.mask[m].new_zeros(clean.shape[0], 1)
        present[m] = torch.zeros_like(batch.present[m])
    return batch.replace(x=x, mask=mask, present=present)


# -- noise -------------------------------------------------------------------------------------

def noise_conditions(task: TaskSpec) -> list[tuple[str, float]]:
    # "all" even for one modality: it is the headline curve every run reports
    targets = list(task.modality_names) + ["all"]
    return [(target, level) for target in targets for level in LEVELS]


@functools.lru_cache(maxsize=4)
def standard_normal(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """N(0, 1) draws for one seed, memoised: the engine seeds every level of a target alike
    (common random numbers), so ten noise levels cost one draw.  Never modified in place."""
    return torch.empty(shape).normal_(generator=torch.Generator().manual_seed(seed))


def gaussian_noise(batch: Batch, target: str, level: float, generator: torch.Generator,
                   stats: Mapping[str, torch.Tensor]) -> Batch:
    """x + level * std_train * eps on real steps only (padding stays zero)."""
    if level == 0:
        return batch
    x = dict(batch.x)
    for m in targeted(target, tuple(batch.x)):
        clean = batch.x[m]
        seed = int(torch.randint(2**62, (1,), generator=generator))
        eps = standard_normal(seed, tuple(clean.shape)).to(clean.device, clean.dtype)
        # one pass and one allocation over a large (N, T, D) tensor; padding is zero in the
        # data, so masking the sum keeps it zero
        noisy = torch.addcmul(clean, eps, level * stats[m].to(clean.device, clean.dtype))
        if batch.mask[m] is not None:
            noisy.mul_(batch.mask[m].unsqueeze(-1))
        x[m] = noisy
    return batch.replace(x=x)


# -- time-step drop ----------------------------------------------------------------------------

def _sequences(task: TaskSpec) -> tuple[str, ...]:
    return tuple(m.name for m in task.modalities if m.kind == "sequence")


def timedrop_conditions(task: TaskSpec) -> list[tuple[str, float]]:
    seqs = _sequences(task)
    targets = list(seqs) + (["all"] if len(seqs) > 1 else [])
    return [(target, level) for target in targets for level in TIMEDROP_LEVELS]


def drop_steps(batch: Batch, target: str, level: float, generator: torch.Generator,
               stats: Mapping[str, torch.Tensor]) -> Batch:
    """Drop each real time step with probability ``level`` (at least one step survives),
    close the gaps so sequences stay right-padded, and trim the padding."""
    if level == 0:
        return batch
    seqs = tuple(m for m, mask in batch.mask.items() if mask is not None)
    x, mask = dict(batch.x), dict(batch.mask)
    for m in targeted(target, seqs):
        x[m], mask[m] = _drop(batch.x[m], batch.mask[m], level, generator)
    return batch.replace(x=x, mask=mask)


def _drop(x: torch.Tensor, mask: torch.Tensor, level: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    draw = torch.rand(mask.shape, generator=generator, device=mask.device)
    keep = mask & (draw >= level)
    # rows that lost every step keep the one real step with the highest draw
    lost = mask.any(dim=1) & ~keep.any(dim=1)
    if lost.any():
        rescue = torch.where(mask, draw, torch.full_like(draw, -1.0)).argmax(dim=1)
        keep[lost, rescue[lost]] = True
    # stable sort puts kept steps first, in their original order
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices
    lengths = keep.sum(dim=1)
    width = max(int(lengths.max()) if lengths.numel() else 1, 1)
    order = order[:, :width]
    new_mask = torch.arange(width, device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
    gathered = x.gather(1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    return gathered * new_mask.unsqueeze(-1).to(x.dtype), new_mask


@hookimpl
def register_stress_tests(register):
    register(StressSpec(
        name="missing", apply=remove, conditions=missing_conditions, curve=False, modality_wise=True,
        description="Remove each modality and each subset leaving at least one (above 8 modalities: "
                    "every leave-one-out and keep-one subset plus a seeded sample of 3 M^2 others): "
                    "zeroed, fully masked and flagged absent (present=False).",
    ))
    register(StressSpec(
        name="noise", apply=gaussian_noise, conditions=noise_conditions, modality_wise=True,
        description="Gaussian noise scaled by each feature's train std, levels 0.1..1.0, per "
                    "modality and on all modalities at once.",
    ))
    register(StressSpec(
        name="timedrop", apply=drop_steps, conditions=timedrop_conditions, modality_wise=True,
        description="Drop each time step with probability 0.2..1.0 (>= 1 step kept) per sequence "
                    "modality and on all sequences at once.",
    ))
