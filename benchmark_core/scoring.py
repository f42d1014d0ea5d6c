"""Scoring raw model outputs with the registered metrics: the one function every caller uses
(clean test and validation metrics, each stress condition, EMAP's projection and each of its
bootstrap resamples), so one policy holds everywhere and the metrics' numpy fast paths
(``plugins/metrics.py``) apply to all of them.

Torch-free: it takes CPU tensors or numpy arrays alike (a CPU tensor converts without a copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark_core.specs import MetricSpec


def score(pred: Any, y: Any, metrics: Mapping[str, MetricSpec]) -> dict[str, float]:
    """Every metric of raw outputs ``pred`` against targets ``y``; NaN for every metric when
    the outputs are not all finite (e.g. attention over a fully masked, missing modality), since
    a metric of such outputs is undefined, never a number to rank."""
    pred_np, y_np = np.asarray(pred), np.asarray(y)
    if not np.isfinite(pred_np).all():
        return {name: float("nan") for name in metrics}
    return {name: float(spec.fn(y_np, pred_np)) for name, spec in metrics.items()}
