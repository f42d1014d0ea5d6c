"""Golden values for the MOSI/MOSEI and IEMOCAP metric variants, checked by hand.

The vectors contain exact +-0.5 and +-2.5 ties (NumPy rounds half to even), an exact-zero
truth (dropped by the *_nonzero variants) and an exact-zero prediction (positive for
*_nonneg, negative for *_nonzero).
"""

import numpy as np
import pytest

from plugins import metrics_affect as m
from plugins.metrics import mae

TRUTH = np.array([0.5, -0.5, 1.5, 2.5, -2.5, 3.4, 0.0, -1.0, 2.2])
PRED = np.array([0.0, -0.4, 1.6, 2.0, -1.6, 2.6, -0.3, -1.5, 2.9]).reshape(-1, 1)  # (N, 1) model output


def test_acc7_rounds_half_to_even_after_clipping():
    # truth -> [0, 0, 2, 2, -2, 3, 0, -1, 2], pred -> [0, 0, 2, 2, -2, 3, 0, -2, 3]
    assert m.acc7(TRUTH, PRED) == pytest.approx(7 / 9)


def test_acc5_clips_to_two_before_rounding():
    # 2.2 vs 2.9 both clip to 2: only -1.0 vs -1.5 (-> -2) differs
    assert m.acc5(TRUTH, PRED) == pytest.approx(8 / 9)


def test_half_away_from_zero_would_differ():
    half_up = np.floor(np.abs(np.clip(TRUTH, -3, 3)) + 0.5) * np.sign(TRUTH)
    assert not np.array_equal(half_up, np.round(np.clip(TRUTH, -3, 3)))  # the ties matter


def test_acc2_nonneg_counts_zero_as_positive():
    # only the zero truth predicted -0.3 is wrong; the 0.0 prediction counts as positive
    assert m.acc2_nonneg(TRUTH, PRED) == pytest.approx(8 / 9)


def test_acc2_nonzero_drops_zero_truths():
    # zero truth dropped; the 0.0 prediction for truth 0.5 is now negative -> wrong
    assert m.acc2_nonzero(TRUTH, PRED) == pytest.approx(7 / 8)


def test_weighted_f1_uses_truth_support():
    assert m.f1_nonneg(TRUTH, PRED) == pytest.approx(618 / 693)
    assert m.f1_nonzero(TRUTH, PRED) == pytest.approx(442 / 504)
    swapped = (4 * 8 / 9 + 4 * 6 / 7) / 8  # MulT's f1_score(pred, truth) order gives this
    assert m.f1_nonzero(TRUTH, PRED) != pytest.approx(swapped)


def test_mae_is_unclipped():
    assert mae(TRUTH, PRED) == pytest.approx(4.4 / 9)


def test_all_zero_truth_gives_nan_for_nonzero_variants():
    zeros = np.zeros(3)
    assert np.isnan(m.acc2_nonzero(zeros, np.ones((3, 1))))
    assert np.isnan(m.f1_nonzero(zeros, np.ones((3, 1))))


Y = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1]])
LOGITS = np.array([[2, -1, -1, -1], [1, 1, -1, -1], [-1, -1, 1, -1], [-1, -1, -1, 1]], dtype=float)


@pytest.mark.parametrize(("emotion", "acc", "f1"), [
    ("neutral", 0.5, 0.5), ("happy", 1.0, 1.0), ("sad", 1.0, 1.0), ("angry", 0.75, (2 / 3 + 0.8) / 2),
])
def test_iemocap_per_emotion(emotion, acc, f1):
    i = ("neutral", "happy", "sad", "angry").index(emotion)
    assert m.per_emotion("acc", i)(Y, LOGITS) == pytest.approx(acc)
    assert m.per_emotion("f1", i)(Y, LOGITS) == pytest.approx(f1)


def test_iemocap_means():
    assert m.mean_over_emotions("acc")(Y, LOGITS) == pytest.approx(0.8125)
    assert m.mean_over_emotions("f1")(Y, LOGITS) == pytest.approx((0.5 + 1 + 1 + (2 / 3 + 0.8) / 2) / 4)


def test_registered_names_and_directions():
    from benchmark_core.plugins import build_registry

    registry = build_registry()
    for name in ("acc2_nonneg", "acc2_nonzero", "f1_nonneg", "f1_nonzero", "acc5", "acc7",
                 "acc_neutral", "f1_angry", "acc_mean", "f1_mean"):
        assert registry.metric(name).higher_is_better
    assert registry.dataset("mosi").primary_metric == "mae"
    assert not registry.metric("mae").higher_is_better
    assert registry.dataset("iemocap").primary_metric == "f1_mean"
