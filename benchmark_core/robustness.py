"""Robustness summaries of metric-vs-severity curves (MultiBench, Liang et al. 2021).

A curve is the clean score ``a_0`` followed by the score at each severity level.  Relative
robustness is the area under it; effective robustness compares its *shape* with the
late-fusion curve of the same dataset and seed after shifting both to start at their own
clean score, so a method is not credited for robustness it owes to a higher clean score.
See methods-math.md §10 and docs/stress.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

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
