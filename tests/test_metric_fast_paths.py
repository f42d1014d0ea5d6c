"""The numpy fast paths of accuracy and F1 equal scikit-learn to the last bit (issue 17: the
stress grid and EMAP's bootstrap call them thousands of times per run)."""

from __future__ import annotations

import time

import numpy as np
from sklearn import metrics as skm

from plugins.metrics import accuracy, class_predictions, f1_macro, f1_weighted


def _reference(y, logits):
    pred = class_predictions(logits)
    return (float(skm.accuracy_score(y, pred)), float(skm.f1_score(y, pred, average="macro", zero_division=0)),
            float(skm.f1_score(y, pred, average="weighted", zero_division=0)))


def test_fast_paths_equal_scikit_learn_bitwise():
    rng = np.random.default_rng(0)
    for _ in range(250):
        n, c = int(rng.integers(1, 300)), int(rng.integers(2, 12))
        y = rng.integers(0, c if rng.random() < 0.7 else max(2, c // 2), n)  # classes absent from y, too
        logits = rng.normal(size=(n, c)).astype(np.float32 if rng.random() < 0.5 else np.float64)
        if rng.random() < 0.3:
            logits[:, 0] += 3  # classes never predicted
        assert (accuracy(y, logits), f1_macro(y, logits), f1_weighted(y, logits)) == _reference(y, logits)


def test_other_inputs_still_go_through_scikit_learn():
    y = np.array([0.0, 1.0, 1.0])  # float labels: not the fast path, same answer
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    assert (accuracy(y, logits), f1_macro(y, logits), f1_weighted(y, logits)) == _reference(y, logits)
    multilabel = np.array([[1, 0], [0, 1]])
    assert accuracy(multilabel, np.array([[1.0, -1.0], [1.0, 1.0]])) == 0.75


def test_fast_paths_are_much_faster_than_scikit_learn():
    rng = np.random.default_rng(1)
    y, logits = rng.integers(0, 10, 300), rng.normal(size=(300, 10))
    started = time.perf_counter()
    for _ in range(20):
        _reference(y, logits)
    slow = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(20):
        accuracy(y, logits), f1_macro(y, logits), f1_weighted(y, logits)
    assert time.perf_counter() - started < slow / 5
