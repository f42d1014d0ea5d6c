"""Metric variants for MOSI/MOSEI sentiment and the MulT IEMOCAP protocol.

The literature disagrees on these conventions (docs/datasets.md, "Metric variants", names the
papers and code behind each), so each variant is its own named metric and the name is
recorded with every result:

* ``acc2_nonneg`` / ``f1_nonneg``: negative (< 0) vs non-negative (>= 0), zeros count as
  positive, all samples (MMSA "Has0", pre-2019 papers).
* ``acc2_nonzero`` / ``f1_nonzero``: samples with truth == 0 dropped, then < 0 vs > 0
  (MMSA "Non0", MulT's final numbers, what most papers since 2019 report).
* F1 is support-weighted with ``y_true`` first (MulT and MISA swap the arguments).
* ``acc5`` / ``acc7``: clip truth and prediction to [-2, 2] / [-3, 3], then round half to
  even (``np.round``: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2), fraction equal.
* IEMOCAP: one logit per emotion, predicted present iff logit > 0; accuracy and weighted
  F1 per emotion (Neutral, Happy, Sad, Angry) and their unweighted means.

``mae`` and ``corr`` (unclipped, Pearson) come from :mod:`plugins.metrics`.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from fusebench import MetricSpec, hookimpl

from .datasets.affect.profiles import EMOTIONS
from .metrics import regression_values


def _sentiment(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(y_true, dtype=np.float64).reshape(-1), regression_values(y_pred)


def _binary_nonneg(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = _sentiment(y_true, y_pred)
    return truth >= 0, pred >= 0


def _binary_nonzero(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = _sentiment(y_true, y_pred)
    keep = truth != 0
    return truth[keep] > 0, pred[keep] > 0


def _accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    return float((truth == pred).mean()) if len(truth) else float("nan")


def _weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    if not len(truth):
        return float("nan")
    return float(skm.f1_score(truth, pred, average="weighted", zero_division=0))


def acc2_nonneg(y_true, y_pred) -> float:
    return _accuracy(*_binary_nonneg(y_true, y_pred))


def f1_nonneg(y_true, y_pred) -> float:
    return _weighted_f1(*_binary_nonneg(y_true, y_pred))


def acc2_nonzero(y_true, y_pred) -> float:
    return _accuracy(*_binary_nonzero(y_true, y_pred))


def f1_nonzero(y_true, y_pred) -> float:
    return _weighted_f1(*_binary_nonzero(y_true, y_pred))


def multiclass_accuracy(y_true, y_pred, bound: float) -> float:
    """Clip both to [-bound, bound], round half to even, fraction equal."""
    truth, pred = _sentiment(y_true, y_pred)
    return _accuracy(np.round(np.clip(truth, -bound, bound)), np.round(np.clip(pred, -bound, bound)))


def acc5(y_true, y_pred) -> float:
    return multiclass_accuracy(y_true, y_pred, 2.0)


def acc7(y_true, y_pred) -> float:
    return multiclass_accuracy(y_true, y_pred, 3.0)


def _emotion(y_true, y_pred, index: int) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(y_true).reshape(len(y_true), -1)[:, index] > 0.5
    return truth, np.asarray(y_pred).reshape(len(y_pred), -1)[:, index] > 0


def per_emotion(kind: str, index: int):
    score = _accuracy if kind == "acc" else _weighted_f1

    def metric(y_true, y_pred) -> float:
        return score(*_emotion(y_true, y_pred, index))

    metric.__name__ = metric.__qualname__ = f"{kind}_{EMOTIONS[index]}"
    return metric


def mean_over_emotions(kind: str):
    parts = [per_emotion(kind, i) for i in range(len(EMOTIONS))]

    def metric(y_true, y_pred) -> float:
        return float(np.mean([p(y_true, y_pred) for p in parts]))

    metric.__name__ = metric.__qualname__ = f"{kind}_mean"
    return metric


@hookimpl
def register_metrics(register):
    sentiment = ("regression",)
    register(MetricSpec("acc2_nonneg", acc2_nonneg, True, sentiment,
                        "Binary accuracy, negative (<0) vs non-negative (>=0); zeros positive (MMSA Has0)."))
    register(MetricSpec("f1_nonneg", f1_nonneg, True, sentiment,
                        "Weighted F1 of the acc2_nonneg classes (y_true first)."))
    register(MetricSpec("acc2_nonzero", acc2_nonzero, True, sentiment,
                        "Binary accuracy <0 vs >0 with zero-truth samples dropped (MMSA Non0, MulT)."))
    register(MetricSpec("f1_nonzero", f1_nonzero, True, sentiment,
                        "Weighted F1 of the acc2_nonzero classes (y_true first)."))
    register(MetricSpec("acc5", acc5, True, sentiment,
                        "5-class accuracy: clip to [-2, 2], round half to even."))
    register(MetricSpec("acc7", acc7, True, sentiment,
                        "7-class accuracy: clip to [-3, 3], round half to even."))
    for i, emotion in enumerate(EMOTIONS):
        register(MetricSpec(f"acc_{emotion}", per_emotion("acc", i), True, ("multilabel",),
                            f"IEMOCAP {emotion}: binary accuracy (logit > 0 = present)."))
        register(MetricSpec(f"f1_{emotion}", per_emotion("f1", i), True, ("multilabel",),
                            f"IEMOCAP {emotion}: support-weighted binary F1 (MulT protocol)."))
    register(MetricSpec("acc_mean", mean_over_emotions("acc"), True, ("multilabel",),
                        "Mean of the per-emotion accuracies."))
    register(MetricSpec("f1_mean", mean_over_emotions("f1"), True, ("multilabel",),
                        "Mean of the per-emotion weighted F1 scores."))
