"""Robustness summaries of metric-vs-severity curves (MultiBench, Liang et al. 2021).

A curve is the clean score ``a_0`` followed by the score at each severity level.  Relative
robustness is the area under it; effective robustness compares its *shape* with the
late-fusion curve of the same dataset and seed after shifting both to start at their own
clean score, so a method is not credited for robustness it owes to a higher clean score.
Definitions, MultiBench's formulas and the test vectors: docs/stress.md, "Robustness summaries".

The missing-modality subset design (which of the 2^M - 2 subsets are removed, and how the
mean over them is estimated when they are sampled) lives here as well, so the plugin that
lists the conditions and the engine that summarises them share one definition.

The metric keys of stress results (``stress/<test>/<target>/<level>/<metric>``) are named and
parsed in :mod:`benchmark_core.record`, with every other key of a run's record.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from benchmark_core.record import stress_points

MULTIBENCH_STEP = 0.1


def relative_robustness(scores: Sequence[float], step: float = MULTIBENCH_STEP) -> float:
    """MultiBench's RR: trapezoid area with a fixed step, not normalised by curve length
    (only curves with equally many points are comparable)."""
    a = np.asarray(scores, dtype=np.float64)
    return float(np.sum(step * (a[:-1] + a[1:]) / 2))


def area_under_curve(levels: Sequence[float], scores: Sequence[float]) -> float:
    """Trapezoid area under score(level) divided by the level range: the mean score over
    the severity range, in metric units, comparable between grids of different lengths."""
    x, a = np.asarray(levels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if len(x) < 2 or x[-1] == x[0]:
        return float(a.mean())
    return float(np.sum(np.diff(x) * (a[:-1] + a[1:]) / 2) / (x[-1] - x[0]))


def effective_robustness(scores: Sequence[float], reference: Sequence[float],
                         higher_is_better: bool = True) -> float:
    """MultiBench's ER against a reference (late-fusion) curve on the same levels:
    sum_i [a_i - (b_i + a_0 - b_0)].  Positive means degrading more gracefully than the
    reference; for lower-is-better metrics the sign is flipped so this stays true."""
    a, b = np.asarray(scores, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"curves differ in length ({len(a)} vs {len(b)}); compare equal grids only")
    value = float(np.sum(a - a[0]) - np.sum(b - b[0]))
    return value if higher_is_better else -value


def minmax_normalise(values: Mapping[str, float]) -> dict[str, float]:
    """MultiBench's (x - min) / (max - min) over a set of methods; all-equal values map to 0.
    Only meaningful within one set of methods, so the leaderboard reports raw values."""
    finite = [v for v in values.values() if np.isfinite(v)]
    if not finite:
        return dict(values)
    low, high = min(finite), max(finite)
    span = high - low
    return {k: (v - low) / span if span > 0 else 0.0 for k, v in values.items()}


def drop(clean: float, score: float, higher_is_better: bool = True) -> float:
    """How much worse ``score`` is than ``clean`` (positive = worse)."""
    return clean - score if higher_is_better else score - clean


def worst_drop(clean: float, scores: Sequence[float], higher_is_better: bool = True) -> float:
    """The largest degradation over a set of conditions (e.g. every missing subset)."""
    return max(drop(clean, s, higher_is_better) for s in scores)


# -- stress conditions and curves ----------------------------------------------------------------

# The curve the leaderboard's relative/effective robustness columns summarise.
HEADLINE = ("noise", "all")


@dataclass(frozen=True)
class Condition:
    """One cell of the grid: a stress test applied to a target at a level (its metrics are
    logged under :func:`benchmark_core.record.stress_key`)."""

    test: str
    target: str
    level: float


def curve(metrics: Mapping[str, float], test: str, target: str, metric: str,
          clean: float) -> tuple[list[float], list[float]]:
    """(levels, scores) of one stressed target from logged metrics, starting at (0, clean)."""
    points = {0.0: clean, **{level: float(value) for level, value in stress_points(metrics, test, target,
                                                                                      metric).items()}}
    levels = sorted(points)
    return levels, [points[level] for level in levels]


# -- the missing-modality subset design ----------------------------------------------------------

# Every subset is evaluated up to this many modalities (M = 8: 254 subsets); above it, every
# leave-one-out and keep-one subset plus a seeded sample of SAMPLE_FACTOR * M^2 of the others.
FULL_GRID_MAX_MODALITIES = 8
SAMPLE_FACTOR = 3


@dataclass(frozen=True)
class SubsetDesign:
    """Which modality subsets the ``missing`` test removes (indices into the task's modality
    order, each sorted; ordered by size, then lexicographically) and how to average over them.

    ``sampled`` of them were drawn at random from the subsets of sizes 2 .. M - 2 (0: every
    subset is evaluated).  Sizes 1 (leave one out) and M - 1 (keep one) are always complete,
    so the Horvitz-Thompson weight of a subset is 1, or rest / sampled for a drawn one.
    """

    modalities: int
    subsets: tuple[tuple[int, ...], ...]
    sampled: int = 0

    @property
    def total(self) -> int:
        """Every subset that removes at least one modality and keeps at least one: 2^M - 2."""
        return 2 ** self.modalities - 2

    @property
    def rest(self) -> int:
        """The subsets of sizes 2 .. M - 2, the stratum a sample is drawn from."""
        return self.total - len(self.subsets) + self.sampled

    @property
    def full(self) -> bool:
        return len(self.subsets) == self.total

    @property
    def name(self) -> str:
        return "full" if self.full else "sampled"

    def weight(self, subset: tuple[int, ...]) -> float:
        m = self.modalities
        return 1.0 if self.full or len(subset) in (1, m - 1) else self.rest / self.sampled

    def targets(self, names: Sequence[str]) -> list[str]:
        """The subsets as condition targets (``a+b``), in design order."""
        if len(names) != self.modalities:
            raise ValueError(f"the design is for {self.modalities} modalities, got {len(names)} names")
        return ["+".join(names[i] for i in subset) for subset in self.subsets]


def design_size(modalities: int, full_max: int = FULL_GRID_MAX_MODALITIES, factor: int = SAMPLE_FACTOR) -> int:
    """How many subsets :func:`subset_design` evaluates for M modalities, without drawing them:
    2^M - 2 up to ``full_max``, above it 2M (leave one out, keep one) plus the sample."""
    m = modalities
    if m <= full_max:
        return 2 ** m - 2
    return 2 * m + min(2 ** m - 2 - 2 * m, factor * m * m)


def subset_design(modalities: int, seed: int = 0, full_max: int = FULL_GRID_MAX_MODALITIES,
                  factor: int = SAMPLE_FACTOR) -> SubsetDesign:
    """The full grid for M <= ``full_max``; above it every leave-one-out and keep-one subset
    plus min(rest, factor * M^2) subsets drawn uniformly without replacement from the rest.

    The draw depends only on ``seed`` (the run's stress seed) and M, never on the model, so
    every method of a seed is scored on the same subsets.  Bits are drawn per modality
    (rejection of sizes 0, 1, M - 1, M and repeats), so nothing of size 2^M is enumerated.
    """
    m = modalities
    if m <= full_max:
        return SubsetDesign(m, tuple(s for size in range(1, m) for s in combinations(range(m), size)))
    fixed = [(i,) for i in range(m)] + [tuple(j for j in range(m) if j != i) for i in range(m)]
    wanted = design_size(m, full_max, factor) - len(fixed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(b"missing-subsets"), m]))
    chosen: dict[tuple[int, ...], None] = {}
    while len(chosen) < wanted:
        for row in rng.integers(0, 2, size=(2 * wanted, m), dtype=np.int8).astype(bool):
            if 2 <= row.sum() <= m - 2:
                chosen.setdefault(tuple(int(i) for i in np.flatnonzero(row)), None)
                if len(chosen) == wanted:
                    break
    subsets = sorted([*fixed, *chosen], key=lambda s: (len(s), s))
    return SubsetDesign(m, tuple(subsets), wanted)


def design_mean(design: SubsetDesign, scores: Sequence[float]) -> tuple[float, float]:
    """(estimate, standard error) of the mean score over all 2^M - 2 subsets from the scores
    of ``design.subsets`` (same order).  Full grid: the plain mean, error 0.  Sampled: the
    Horvitz-Thompson (stratified) estimate, the certain strata with weight 1 and the sample
    with weight rest / sampled, and its standard error under sampling without replacement,
    (rest / total) * sqrt((1 - sampled / rest) * s^2 / sampled), s^2 the sample variance."""
    a = np.asarray(scores, dtype=np.float64)
    if len(a) != len(design.subsets):
        raise ValueError(f"{len(a)} scores for a design of {len(design.subsets)} subsets")
    if design.full:
        return float(a.mean()), 0.0
    weights = np.array([design.weight(s) for s in design.subsets])
    estimate = float((weights * a).sum() / design.total)
    drawn = a[[len(s) not in (1, design.modalities - 1) for s in design.subsets]]
    k, rest = design.sampled, design.rest
    var = float(drawn.var(ddof=1)) if k > 1 else 0.0
    return estimate, float(rest / design.total * np.sqrt(max(0.0, 1 - k / rest) * var / k))
