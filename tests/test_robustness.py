"""Robustness summaries: MultiBench's RR/ER test vector, normalisation and worst drops."""

from __future__ import annotations

import pytest

from benchmark_core.evaluation.robustness import (
    area_under_curve,
    curve,
    drop,
    effective_robustness,
    minmax_normalise,
    relative_robustness,
    worst_drop,
)
from benchmark_core.evaluation.stress import summarise
from benchmark_core.record import stress_key

A, B = (0.8, 0.7, 0.6), (0.75, 0.7, 0.65)  # MultiBench's test vector, docs/stress.md


def test_multibench_test_vector():
    assert relative_robustness(A) == pytest.approx(0.14)
    assert effective_robustness(A, B) == pytest.approx(-0.15)


def test_normalised_area_is_the_mean_score_over_the_level_range():
    assert area_under_curve([0.0, 0.1, 0.2], A) == pytest.approx(0.14 / 0.2)
    assert area_under_curve([0.0, 0.5, 1.0], [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    # uneven grids integrate with their real spacing
    assert area_under_curve([0.0, 0.2, 1.0], [1.0, 0.0, 0.0]) == pytest.approx(0.1)


def test_effective_robustness_orientation_and_shape_only():
    assert effective_robustness(B, B) == 0.0
    # a curve shifted up by a constant is not more robust
    assert effective_robustness([a + 0.1 for a in B], B) == pytest.approx(0.0)
    # errors (lower is better): rising faster than the reference is negative
    assert effective_robustness([1.0, 1.5], [1.0, 1.2], higher_is_better=False) == pytest.approx(-0.3)
    with pytest.raises(ValueError):
        effective_robustness(A, B[:2])


def test_minmax_and_drops():
    assert minmax_normalise({"x": 1.0, "y": 3.0, "z": 2.0}) == {"x": 0.0, "y": 1.0, "z": 0.5}
    assert minmax_normalise({"x": 1.0, "y": 1.0}) == {"x": 0.0, "y": 0.0}
    assert drop(0.8, 0.6) == pytest.approx(0.2) and drop(1.0, 1.3, higher_is_better=False) == pytest.approx(0.3)
    assert worst_drop(0.8, [0.7, 0.5, 0.79]) == pytest.approx(0.3)
    assert worst_drop(1.0, [1.1, 0.9], higher_is_better=False) == pytest.approx(0.1)


def test_run_summaries_from_stress_keys(registry):
    results = {stress_key("noise", "all", lv, "accuracy"): s for lv, s in ((0.1, 0.7), (0.2, 0.6))}
    results.update({stress_key("missing", t, 1.0, "accuracy"): s for t, s in (("a", 0.5), ("b", 0.7))})
    assert curve(results, "noise", "all", "accuracy", 0.8) == ([0.0, 0.1, 0.2], [0.8, 0.7, 0.6])
    specs = [registry.stress_test("noise"), registry.stress_test("missing")]
    out = summarise(results, {"accuracy": 0.8}, {"accuracy": registry.metric("accuracy")}, specs)
    assert out["robustness/relative/accuracy"] == pytest.approx(0.7)
    assert out["robustness/noise/all/relative/accuracy"] == out["robustness/relative/accuracy"]
    assert out["robustness/missing/mean/accuracy"] == pytest.approx(0.6)
    assert out["robustness/missing/worst_drop/accuracy"] == pytest.approx(0.3)
    assert not any("missing/a/relative" in key for key in out)  # missing is not a curve


def test_missing_summary_of_a_sampled_design_is_its_weighted_estimate(registry):
    """Above eight modalities the mean over the missing subsets is the design-weighted
    (Horvitz-Thompson) estimate of the mean over all 2^M - 2 of them, not the plain mean of
    the evaluated ones (which over-weights the complete leave-one-out and keep-one strata)."""
    import numpy as np

    from benchmark_core.evaluation.robustness import design_mean, subset_design

    names = tuple(f"m{i}" for i in range(9))
    design = subset_design(9, seed=3)
    score = {t: 0.9 - 0.05 * len(s) for t, s in zip(design.targets(names), design.subsets, strict=True)}
    results = {stress_key("missing", t, 1.0, "accuracy"): v for t, v in score.items()}
    specs = [registry.stress_test("missing")]
    metric = {"accuracy": registry.metric("accuracy")}
    out = summarise(results, {"accuracy": 0.9}, metric, specs, design, names)
    mean, se = design_mean(design, list(score.values()))
    assert out["robustness/missing/mean/accuracy"] == pytest.approx(mean)
    assert out["robustness/missing/mean_se/accuracy"] == pytest.approx(se) and se > 0
    assert mean != pytest.approx(np.mean(list(score.values())))  # not the plain mean
    assert out["robustness/missing/worst_drop/accuracy"] == pytest.approx(0.05 * 8)
    assert (out["robustness/missing/n_subsets"], out["robustness/missing/n_sampled"],
            out["robustness/missing/n_total"]) == (261, 243, 510)
    # a full design (M <= 8) keeps the plain mean and logs no standard error
    small = subset_design(3)
    three = {stress_key("missing", t, 1.0, "accuracy"): 0.5 for t in small.targets(("a", "b", "c"))}
    out = summarise(three, {"accuracy": 0.9}, metric, specs, small, ("a", "b", "c"))
    assert out["robustness/missing/mean/accuracy"] == 0.5 and "robustness/missing/mean_se/accuracy" not in out
    assert out["robustness/missing/n_sampled"] == 0 and out["robustness/missing/n_total"] == 6
