"""Robustness summaries of metric-vs-severity curves (MultiBench, Liang et al. 2021).

A curve is the clean score ``a_0`` followed by the score at each severity level.  Relative
robustness is the area under it; effective robustness compares its *shape* with the
late-fusion curve of the same dataset and seed after shifting both to start at their own
clean score, so a method is not credited for robustness it owes to a higher clean score.
Definitions, MultiBench's formulas and the test vectors: docs/stress.md, "Robustness summaries".

The metric keys of stress results (``stress/<test>/<target>/<level>/<metric>``) are named and
parsed here too, free of torch, so the leaderboard and plots can read them without importing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


# -- stress metric keys ------------------------------------------------------------------------

PREFIX = "stress"
# The curve the leaderboard's relative/effective robustness columns summarise.
HEADLINE = ("noise", "all")


@dataclass(frozen=True)
class Condition:
    """One cell of the grid: a stress test applied to a target at a level."""

    test: str
    target: str
    level: float

    @property
    def key(self) -> str:
        return f"{PREFIX}/{self.test}/{key_target(self.target)}/{self.level:g}"


def key_target(target: str) -> str:
    """MLflow keys allow neither '+' nor ','; subsets are written ``a.b`` in keys."""
    return target.replace("+", ".")


def stress_key(test: str, target: str, level: float, metric: str) -> str:
    return f"{Condition(test, target, level).key}/{metric}"


def parse_stress_key(key: str) -> tuple[str, str, float, str] | None:
    """``stress/<test>/<target>/<level>/<metric>`` -> (test, key target, level, metric)."""
    parts = key.split("/", 4)
    if len(parts) != 5 or parts[0] != PREFIX:
        return None
    try:
        return parts[1], parts[2], float(parts[3]), parts[4]
    except ValueError:
        return None


def curve(metrics: Mapping[str, float], test: str, target: str, metric: str,
          clean: float) -> tuple[list[float], list[float]]:
    """(levels, scores) of one stressed target from logged metrics, starting at (0, clean)."""
    points = {0.0: clean}
    for key, value in metrics.items():
        parsed = parse_stress_key(key)
        if parsed and parsed[0] == test and parsed[1] == key_target(target) and parsed[3] == metric:
            points[parsed[2]] = float(value)
    levels = sorted(points)
    return levels, [points[level] for level in levels]
