"""Leaderboard statistics, each checked against a hand-computed case (arithmetic in the comments)
and, where scipy has the same test, against scipy."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from benchmark_core.reporting.statistics import (
    PER_SAMPLE,
    Cell,
    cliques,
    few_seeds,
    friedman,
    holm,
    nemenyi_cd,
    nemenyi_q,
    paired_randomization_test,
    per_sample_absolute_error,
    per_sample_accuracy,
    t_interval,
    tied_with_best,
    underpowered,
    unresolved_datasets,
)

# ---- metrics used by the tests (the conventions of plugins/metrics.py, without sklearn) ----

def accuracy(y, pred):
    return float(np.mean(np.asarray(pred).reshape(len(y), -1).argmax(axis=1) == np.asarray(y)))


def mae(y, pred):
    return float(np.mean(np.abs(np.asarray(pred, dtype=float).reshape(len(y), -1)[:, 0] - y)))


def rmse(y, pred):
    """Not a mean over samples: only the generic path can test it."""
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=float).reshape(len(y), -1)[:, 0] - y) ** 2)))


def logits(classes, n_classes=2):
    """One-hot logits whose argmax is ``classes``."""
    return np.eye(n_classes)[np.asarray(classes)]


def exhaustive_p(a, b, metric):
    """Exact two-sided randomization p-value: every one of the 2^(total samples) swap patterns.

    Statistic: mean over seeds of metric(A'_s) − metric(B'_s)."""
    seeds = sorted(a)
    sizes = [len(a[s][0]) for s in seeds]

    def stat(swaps):
        diffs, at = [], 0
        for s, n in zip(seeds, sizes):
            (y, pa), (_, pb) = a[s], b[s]
            m = np.array(swaps[at:at + n], dtype=bool).reshape((-1,) + (1,) * (pa.ndim - 1))
            diffs.append(metric(y, np.where(m, pb, pa)) - metric(y, np.where(m, pa, pb)))
            at += n
        return float(np.mean(diffs))

    observed = stat([False] * sum(sizes))
    patterns = list(itertools.product([False, True], repeat=sum(sizes)))
    hits = sum(abs(stat(p)) >= abs(observed) - 1e-12 for p in patterns)
    return hits / len(patterns)


# ---- t interval ----

def test_t_interval_by_hand():
    # [1, 2, 3]: mean 2; s² = ((−1)² + 0² + 1²)/(3 − 1) = 1 so s = 1; s/√3 = 0.577350;
    # t_{2,0.975} = 4.302653; half-width = 4.302653 × 0.577350 = 2.484138
    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert lo == pytest.approx(2 - 2.484138, abs=1e-6) and hi == pytest.approx(2 + 2.484138, abs=1e-6)
    assert stats.t.ppf(0.975, 2) == pytest.approx(4.303, abs=5e-4)  # the number the docstring quotes
    assert (lo, hi) == pytest.approx(stats.t.interval(0.95, 2, loc=2.0, scale=1 / math.sqrt(3)))
    # 90%: t_{2,0.95} = 2.919986, half = 2.919986 × 0.577350 = 1.685854
    assert t_interval([1, 2, 3], 0.90) == pytest.approx((2 - 1.685854, 2 + 1.685854), abs=1e-6)
    assert t_interval([5.0]) is None and t_interval([]) is None
    assert t_interval([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7))  # s = 0: no width
    with pytest.raises(ValueError):
        t_interval([1.0, float("nan")])


# ---- approximate randomization ----

def test_randomization_one_seed_three_samples_matches_enumeration():
    # y = [0, 1, 1]; A right on all three, B wrong on samples 0 and 1.  Per-sample accuracy
    # difference δ = (1, 1, 0), observed t = 2/3.  A swap flips the sign of δ_i, so
    # t = (±1 ± 1 + 0)/3: |t| = 2/3 when the two signs agree (2 of 4 sign pairs) × 2 for the
    # sign of sample 2, i.e. 4 of the 8 swap patterns: exact p = 4/8 = 0.5.
    y = np.array([0, 1, 1])
    a = {0: (y, logits([0, 1, 1]))}
    b = {0: (y, logits([1, 0, 1]))}
    assert exhaustive_p(a, b, accuracy) == 0.5
    for per_sample in (per_sample_accuracy, None):
        r = paired_randomization_test(a, b, accuracy, per_sample=per_sample, resamples=10_000, seed=1)
        assert r.difference == pytest.approx(2 / 3)
        assert r.p_value == pytest.approx(0.5, abs=0.02)  # MC error sd ≈ √(.25/10000) = .005
        assert r.resamples == 10_000 and r.seeds == (0,) and r.a_better and r.note == ""


def test_randomization_mae_four_samples_by_hand():
    # y = 0; |errors| of A = (.5, .2, .2, .2), of B = (.1, .1, .1, .1): δ = 0.1 × (4, 1, 1, 1),
    # observed t = MAE(A) − MAE(B) = .275 − .1 = .175 = 0.1 × 7/4.  After swaps t = 0.1 × (±4 ± 1 ± 1 ± 1)/4,
    # and |±4 ± 1 ± 1 ± 1| >= 7 only with all signs equal: 2 of 16 patterns, exact p = 0.125.
    y = np.zeros(4)
    a = {0: (y, np.array([[0.5], [0.2], [0.2], [0.2]]))}
    b = {0: (y, np.full((4, 1), 0.1))}
    assert exhaustive_p(a, b, mae) == 0.125
    r = paired_randomization_test(a, b, mae, higher_is_better=False, per_sample=per_sample_absolute_error,
                                  resamples=100_000, seed=3)
    assert r.difference == pytest.approx(0.175)
    assert r.p_value == pytest.approx(0.125, abs=0.005)  # sd ≈ √(.125 × .875/1e5) = .001
    assert not r.a_better  # lower MAE is better and A's is higher
    # RMSE is not a mean over samples: the generic path, checked against the same enumeration
    exact = exhaustive_p(a, b, rmse)
    g = paired_randomization_test(a, b, rmse, higher_is_better=False, resamples=10_000, seed=3)
    assert g.difference == pytest.approx(math.sqrt(0.37 / 4) - 0.1)  # √((.25 + 3 × .04)/4) − .1
    assert g.p_value == pytest.approx(exact, abs=0.02)
    assert "generic" in g.method and "per-sample" in r.method


def test_randomization_averages_over_seeds_and_pairs_within_seeds():
    # seed 0 (2 samples): A right on both, B wrong on both -> accuracy difference 1.
    # seed 1 (3 samples): A right on 2, B right on 1 -> 2/3 − 1/3 = 1/3.
    # Statistic = mean over seeds = (1 + 1/3)/2 = 2/3 (pooling the 5 samples would give 4/5 − 1/5 = 3/5).
    y0, y1 = np.array([0, 1]), np.array([0, 1, 0])
    a = {0: (y0, logits([0, 1])), 1: (y1, logits([0, 1, 1]))}
    b = {0: (y0, logits([1, 0])), 1: (y1, logits([1, 0, 0]))}
    exact = exhaustive_p(a, b, accuracy)  # 2^5 = 32 patterns
    r = paired_randomization_test(a, b, accuracy, per_sample=per_sample_accuracy, resamples=40_000, seed=0)
    assert r.difference == pytest.approx(2 / 3)
    assert r.p_value == pytest.approx(exact, abs=0.015)


def _random_runs(rng, seeds, n, classes, skill):
    y = {s: rng.integers(0, classes, n) for s in seeds}
    out = {}
    for s in seeds:
        right = rng.random(n) < skill
        guess = np.where(right, y[s], (y[s] + 1) % classes)
        out[s] = (y[s], logits(guess, classes) + 0.01 * rng.random((n, classes)))
    return y, out


def test_fast_path_equals_generic_path_on_accuracy():
    # Both paths draw the same swap masks from the same seed, so they must agree exactly.
    rng = np.random.default_rng(7)
    y, a = _random_runs(rng, [0, 1, 2], 40, 3, 0.7)
    b = {}
    for s in a:
        right = rng.random(40) < 0.6
        b[s] = (y[s], logits(np.where(right, y[s], (y[s] + 2) % 3), 3))
    fast = paired_randomization_test(a, b, accuracy, per_sample=per_sample_accuracy, resamples=500, seed=11)
    slow = paired_randomization_test(a, b, accuracy, resamples=500, seed=11)
    assert fast.p_value == slow.p_value and fast.difference == pytest.approx(slow.difference)
    assert 0 < fast.p_value < 1
    # defaults: 10 000 resamples on the fast path, 1 000 on the generic one
    assert paired_randomization_test(a, b, accuracy, per_sample=per_sample_accuracy).resamples == 10_000
    assert paired_randomization_test(a, b, accuracy).resamples == 1_000


def test_randomization_extremes_and_determinism():
    y = np.arange(50) % 2
    a = {s: (y, logits(y)) for s in range(3)}
    b = {s: (y, logits(1 - y)) for s in range(3)}
    r = paired_randomization_test(a, b, accuracy, per_sample=per_sample_accuracy, resamples=999)
    # only the observed pattern reaches |t| = 1 (all 150 pairs unswapped, or all swapped: 2^-149):
    # p = (0 + 1)/(999 + 1)
    assert r.p_value == 1 / 1000 and r.difference == 1.0
    same = paired_randomization_test(a, a, accuracy, per_sample=per_sample_accuracy, resamples=999)
    assert same.difference == 0.0 and same.p_value == 1.0  # every resample ties the observed 0
    rng = np.random.default_rng(0)
    _, c = _random_runs(rng, [0, 1, 2], 50, 2, 0.7)
    c = {s: (y, c[s][1]) for s in c}
    p1 = paired_randomization_test(a, c, accuracy, per_sample=per_sample_accuracy, seed=5).p_value
    p2 = paired_randomization_test(a, c, accuracy, per_sample=per_sample_accuracy, seed=5).p_value
    assert p1 == p2


def test_randomization_pairs_common_seeds_and_refuses_bad_input():
    y = np.array([0, 1, 1, 0])
    a = {s: (y, logits([0, 1, 1, 1])) for s in (0, 1, 2)}
    b = {s: (y, logits([0, 1, 0, 1])) for s in (0, 1, 5)}
    r = paired_randomization_test(a, b, accuracy, per_sample=per_sample_accuracy, resamples=100)
    assert r.seeds == (0, 1)
    assert "[0, 1]" in r.note and "only A has [2]" in r.note and "only B has [5]" in r.note
    with pytest.raises(ValueError, match="no seed in common"):
        paired_randomization_test({0: a[0]}, {1: b[1]}, accuracy)
    with pytest.raises(ValueError, match="different test sets"):
        paired_randomization_test({0: a[0]}, {0: (1 - y, b[0][1])}, accuracy)
    with pytest.raises(ValueError, match="per_sample"):  # RMSE is not the mean of absolute errors
        paired_randomization_test({0: (y * 1.0, np.c_[[0, 1, 3, 0.0]])}, {0: (y * 1.0, np.zeros((4, 1)))},
                                  rmse, per_sample=per_sample_absolute_error)
    assert set(PER_SAMPLE) == {"accuracy", "mae", "mse"}


def test_per_sample_forms_average_to_the_plugin_metrics():
    # PER_SAMPLE must follow plugins/metrics.py (argmax of logits; multilabel logit > 0; first output
    # column for regression), or the fast path would test a different metric than the table shows.
    from plugins import metrics as plugin

    rng = np.random.default_rng(4)
    y, out = rng.integers(0, 3, 30), rng.normal(size=(30, 3))
    assert PER_SAMPLE["accuracy"](y, out).mean() == pytest.approx(plugin.accuracy(y, out))
    ym, outm = (rng.random((30, 4)) > 0.5).astype(float), rng.normal(size=(30, 4))
    assert PER_SAMPLE["accuracy"](ym, outm).mean() == pytest.approx(plugin.accuracy(ym, outm))
    yr, outr = rng.normal(size=30), rng.normal(size=(30, 2))
    assert PER_SAMPLE["mae"](yr, outr).mean() == pytest.approx(plugin.mae(yr, outr))
    assert PER_SAMPLE["mse"](yr, outr).mean() == pytest.approx(plugin.mse(yr, outr))
    # the multilabel fast path agrees with the generic one (same masks), through the plugin metric
    a = {0: (ym, outm)}
    b = {0: (ym, rng.normal(size=(30, 4)))}
    fast = paired_randomization_test(a, b, plugin.accuracy, per_sample=PER_SAMPLE["accuracy"], resamples=200)
    slow = paired_randomization_test(a, b, plugin.accuracy, resamples=200)
    assert fast.p_value == slow.p_value
    with pytest.raises(ValueError, match="resamples"):
        paired_randomization_test(a, b, plugin.accuracy, resamples=0)


# ---- Holm ----

def test_holm_by_hand():
    # p = (.01, .04, .03, .005), m = 4.  Sorted: .005 × 4 = .02; .01 × 3 = .03; .03 × 2 = .06;
    # .04 × 1 = .04 -> raised to the running max .06.  Back in input order: (.03, .06, .06, .02).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1: .5 × 2 = 1.0; .6 × 1 = .6 -> running max 1.0
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2] and holm([]) == []
    with pytest.raises(ValueError):
        holm([1.2])


# ---- tied with best ----

def test_tied_with_best_by_hand():
    # 3 seeds × 60 samples.  "best" is right on 54 of 60 per seed (mean accuracy .9);
    # "close" equals best except one sample per seed where it is wrong and best right (.8833);
    # "weak" is right on 30 (.5).  close vs best: 3 discordant pairs, |t| = observed only when all three
    # swaps agree: exact p = 2/8 = .25 -> tied.  weak vs best: p = 1/(R + 1).
    # Holm over the two p-values: weak's (smaller) × 2 = 2/(R + 1); close's = max(.25-ish, that).
    y = np.arange(60) % 2
    best_guess = np.where(np.arange(60) < 54, y, 1 - y)
    close_guess = best_guess.copy()
    close_guess[0] = 1 - y[0]
    weak_guess = np.where(np.arange(60) % 2 == 0, y, 1 - y)
    preds = {name: {s: (y, logits(g)) for s in range(3)}
             for name, g in (("weak", weak_guess), ("close", close_guess), ("best", best_guess))}
    res = tied_with_best(preds, accuracy, per_sample=per_sample_accuracy, resamples=4_999, seed=2)
    assert list(res) == ["weak", "close", "best"]
    assert res["best"].is_best and res["best"].tied and res["best"].p_value is None
    assert res["best"].mean == pytest.approx(0.9)
    assert res["close"].mean == pytest.approx(53 / 60) and res["close"].difference == pytest.approx(-1 / 60)
    assert res["close"].p_value == pytest.approx(0.25, abs=0.02) and res["close"].tied
    assert res["weak"].p_value == 1 / 5000 and res["weak"].p_holm == 2 / 5000 and not res["weak"].tied
    assert res["close"].p_holm == res["close"].p_value  # .25 > 2/5000: the running max keeps it
    # lower is better: the smallest MAE wins; an exact tie of means goes to the first name
    yr = np.zeros(3)
    reg = {"b": {0: (yr, np.c_[[0.1, 0.1, 0.1]])}, "a": {0: (yr, np.c_[[0.1, -0.1, 0.1]])},
           "c": {0: (yr, np.c_[[0.5, 0.5, 0.5]])}}
    out = tied_with_best(reg, mae, higher_is_better=False, per_sample=per_sample_absolute_error, resamples=99)
    assert out["a"].is_best and not out["b"].is_best and out["b"].difference == 0.0 and out["b"].tied


# ---- Friedman ----

# Demšar (2006), Table 6: AUC of C4.5 and three variants on 14 UCI data sets, as printed (3 decimals).
DEMSAR_METHODS = ("C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf")
DEMSAR_ROWS = {
    "adult (sample)": (0.763, 0.768, 0.771, 0.798),
    "breast cancer": (0.599, 0.591, 0.590, 0.569),
    "breast cancer wisconsin": (0.954, 0.971, 0.968, 0.967),
    "cmc": (0.628, 0.661, 0.654, 0.657),
    "ionosphere": (0.882, 0.888, 0.886, 0.898),
    "iris": (0.936, 0.931, 0.916, 0.931),
    "liver disorders": (0.661, 0.668, 0.609, 0.685),
    "lung cancer": (0.583, 0.583, 0.563, 0.625),
    "lymphography": (0.775, 0.838, 0.866, 0.875),
    "mushroom": (1.000, 1.000, 1.000, 1.000),
    "primary tumor": (0.940, 0.962, 0.965, 0.962),
    "rheum": (0.619, 0.666, 0.614, 0.669),
    "voting": (0.972, 0.981, 0.975, 0.975),
    "wine": (0.957, 0.978, 0.946, 0.970),
}


def _table(rows, methods):
    return {m: {d: row[j] for d, row in rows.items()} for j, m in enumerate(methods)}


def test_friedman_on_demsar_table_6():
    # The paper's average ranks (3.143, 2.000, 2.893, 1.964) rank C4.5+cf 2nd and C4.5+m+cf 3rd on
    # "voting", where both print as 0.975: the unrounded AUCs differ.  (With that tie averaged the
    # last two would be 2.929 and 1.929; voting is the only row whose ranks can move them by exactly
    # ±0.5/14.)  So voting's C4.5+cf is typed as 0.9751.
    rows = dict(DEMSAR_ROWS, voting=(0.972, 0.981, 0.9751, 0.975))
    res = friedman(_table(rows, DEMSAR_METHODS))
    # Rank sums by hand (1 = best AUC, ties averaged): C4.5 44, C4.5+m 28, C4.5+cf 40.5, C4.5+m+cf 27.5;
    # divided by N = 14: 3.143, 2.000, 2.893, 1.964.
    assert res.applicable and (res.k, res.n) == (4, 14)
    assert [res.avg_ranks[m] for m in DEMSAR_METHODS] == pytest.approx([44 / 14, 28 / 14, 40.5 / 14, 27.5 / 14])
    assert [round(res.avg_ranks[m], 3) for m in DEMSAR_METHODS] == [3.143, 2.000, 2.893, 1.964]
    # chi2_F = 12·14/(4·5) · [(44² + 28² + 40.5² + 27.5²)/14² − 4·5²/4] = 8.4 × (26.10459 − 25) = 9.2786
    assert res.chi2 == pytest.approx(9.2786, abs=1e-4) and round(res.chi2, 2) == 9.28
    # F_F = 13 × 9.2786 / (14 × 3 − 9.2786) = 3.6863; the paper: 3.69, above F(3, 39) at .05 = 2.85
    assert res.iman_davenport == pytest.approx(3.6863, abs=1e-4) and round(res.iman_davenport, 2) == 3.69
    assert stats.f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=0.005)
    assert res.iman_davenport_p == pytest.approx(stats.f.sf(res.iman_davenport, 3, 39)) and res.iman_davenport_p < 0.05
    assert res.chi2_p == pytest.approx(stats.chi2.sf(res.chi2, 3))
    # scipy applies a tie correction that Demšar's formula omits: chi2_scipy = chi2_F / C with
    # C = 1 − Σ(t³ − t)/(N k (k² − 1)).  Ties: iris, lung cancer, primary tumor (pairs: 6 each) and
    # mushroom (all four: 60) -> Σ = 78; N k (k² − 1) = 14 × 4 × 15 = 840; C = 1 − 78/840.
    scipy_chi2 = stats.friedmanchisquare(*np.array(list(rows.values())).T).statistic
    assert scipy_chi2 == pytest.approx(res.chi2 / (1 - 78 / 840))
    # decimals=3 ranks on the printed precision: voting's tie is back, ranks 2.929 and 1.929
    printed = friedman(_table(rows, DEMSAR_METHODS), decimals=3)
    assert [round(printed.avg_ranks[m], 3) for m in DEMSAR_METHODS] == [3.143, 2.000, 2.929, 1.929]
    assert friedman(_table(DEMSAR_ROWS, DEMSAR_METHODS)).avg_ranks == printed.avg_ranks


def test_friedman_small_hand_table_mixed_directions():
    # d1..d3: higher is better; d4 is an error (lower is better).
    # d1 A .9  B .8  C .7   -> ranks 1 2 3
    # d2 A .6  B .7  C .5   -> 2 1 3
    # d3 A .85 B .80 C .90  -> 2 3 1
    # d4 A 1.0 B 1.2 C 1.5  -> 1 2 3 (lower is better)
    # average ranks: A 6/4 = 1.5, B 8/4 = 2.0, C 10/4 = 2.5
    # chi2_F = 12·4/(3·4) × (1.5² + 2² + 2.5² − 3·4²/4) = 4 × 0.5 = 2.0; p = exp(−2/2) = .367879 (2 df)
    # F_F = 3 × 2/(4 × 2 − 2) = 1.0; p = (1 + 2·1/6)^(−6/2) = (4/3)^−3 = 27/64 for F(2, 6)
    table = {"A": {"d1": .9, "d2": .6, "d3": .85, "d4": 1.0}, "B": {"d1": .8, "d2": .7, "d3": .80, "d4": 1.2},
             "C": {"d1": .7, "d2": .5, "d3": .90, "d4": 1.5}}
    res = friedman(table, {"d1": True, "d2": True, "d3": True, "d4": False})
    assert res.avg_ranks == pytest.approx({"A": 1.5, "B": 2.0, "C": 2.5})
    assert res.chi2 == pytest.approx(2.0) and res.chi2_p == pytest.approx(math.exp(-1))
    assert res.iman_davenport == pytest.approx(1.0) and res.iman_davenport_p == pytest.approx(27 / 64)
    # no ties, so scipy (scores of d4 negated to make higher better) gives the same chi2
    columns = [[table[m][d] * (-1 if d == "d4" else 1) for d in ("d1", "d2", "d3", "d4")] for m in "ABC"]
    assert stats.friedmanchisquare(*columns).statistic == pytest.approx(2.0)


def test_friedman_degenerate_cases():
    one = friedman({"A": {"d1": 0.9}, "B": {"d1": 0.8}})
    assert not one.applicable and "at least 2 datasets" in one.reason and one.avg_ranks == {"A": 1.0, "B": 2.0}
    assert one.chi2 is None and one.iman_davenport_p is None
    solo = friedman({"A": {"d1": 0.9, "d2": 0.8}})
    assert not solo.applicable and "at least 2 methods" in solo.reason
    # a dataset missing a method is left out, with a note; here that leaves one dataset
    gap = friedman({"A": {"d1": 0.9, "d2": 0.8}, "B": {"d1": 0.7}})
    assert not gap.applicable and gap.datasets == ("d1",) and "d2" in gap.notes[0]
    # all ranks tied: chi2 = 0, F = 0, p = 1
    flat = friedman({"A": {"d1": 1.0, "d2": 2.0}, "B": {"d1": 1.0, "d2": 2.0}})
    assert flat.chi2 == 0.0 and flat.chi2_p == 1.0 and flat.iman_davenport_p == 1.0
    # identical order on every dataset: chi2 = N(k − 1) = 2 (its maximum), F_F infinite, p = 0
    same = friedman({"A": {"d1": 3.0, "d2": 9.0}, "B": {"d1": 2.0, "d2": 8.0}})
    assert same.chi2 == pytest.approx(2.0) and same.iman_davenport == math.inf and same.iman_davenport_p == 0.0


# ---- Nemenyi ----

def test_nemenyi_q_matches_demsar_table_5():
    # Demšar (2006) Table 5: q_alpha = studentized range quantile / √2, k = 2..10
    q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    q10 = [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]
    for k, a, b in zip(range(2, 11), q05, q10):
        assert nemenyi_q(k, 0.05) == pytest.approx(a, abs=1e-3)
        assert nemenyi_q(k, 0.10) == pytest.approx(b, abs=1e-3)
    # k = 2: the range of two normals over √2 is |N(0,1)|, so q_.05 is z_.975 exactly
    assert nemenyi_q(2) == pytest.approx(stats.norm.ppf(0.975), abs=1e-6)
    # the paper's example: CD = 2.569 × √(4·5/(6·14)) = 2.569 × 0.48795 = 1.2535 -> 1.25
    assert nemenyi_cd(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84), abs=1e-3)
    assert round(nemenyi_cd(4, 14), 2) == 1.25
    with pytest.raises(ValueError):
        nemenyi_cd(1, 5)


def test_cliques_by_hand():
    # ranks a 1.0, b 1.5, c 2.4, d 3.0, e 4.5 with CD = 1:
    # from a: b (.5 < 1) joins, c (1.4) does not -> (a, b); from b: c (.9) -> (b, c);
    # from c: d (.6) -> (c, d); from d: e is 1.5 away -> nothing; e is in no group.
    ranks = {"e": 4.5, "c": 2.4, "a": 1.0, "d": 3.0, "b": 1.5}
    assert cliques(ranks, 1.0) == [("a", "b"), ("b", "c"), ("c", "d")]
    # a group inside the previous one is not maximal: from a everything is within 1 -> only (a, b, c)
    assert cliques({"a": 1.0, "b": 1.2, "c": 1.4}, 1.0) == [("a", "b", "c")]
    # a difference of exactly CD is significant (Demšar: "differ by at least the critical difference")
    assert cliques({"x": 1.0, "y": 2.0}, 1.0) == []
    # the paper's example: 3.143 − 1.964 = 1.179 < CD 1.254, so all four form one group
    demsar = {"C4.5": 3.143, "C4.5+m": 2.000, "C4.5+cf": 2.893, "C4.5+m+cf": 1.964}
    assert cliques(demsar, nemenyi_cd(4, 14)) == [("C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5")]


# ---- underpowered ----

def test_underpowered_reasons():
    cells = {
        # mosi: half-widths .02, .04, .01 -> median .02; means .80, .81, .805 -> spread .01 < .02: warn
        ("late", "mosi"): Cell(0.80, (0.78, 0.82), 3),
        ("tensor", "mosi"): Cell(0.81, (0.77, 0.85), 3),
        ("early", "mosi"): Cell(0.805, (0.795, 0.815), 3),
        # xor: half-widths .01, .05 -> median .03 < spread .9 − .5 = .4: fine; early has 1 seed
        ("late", "xor"): Cell(0.6, (0.59, 0.61), 3),
        ("tensor", "xor"): Cell(0.9, (0.85, 0.95), 3),
        ("early", "xor"): Cell(0.5, None, 1),
    }
    seeds = few_seeds(cells)
    assert len(seeds) == 1 and seeds[0].startswith("1 of 6 cells have fewer than 3 seeds")
    assert "early on xor: 1" in seeds[0]
    spread = unresolved_datasets(cells)
    assert len(spread) == 1 and spread[0].startswith("mosi:") and "(0.02)" in spread[0] and "(0.01)" in spread[0]
    assert underpowered(cells) == seeds + spread
    fine = {k: v for k, v in cells.items() if k[1] == "xor" and v.n_seeds >= 3}
    assert underpowered(fine) == []
    # from per-seed values: the t interval of [1, 2, 3] by hand above
    cell = Cell.from_values([1.0, 2.0, 3.0])
    assert cell.mean == 2.0 and cell.n_seeds == 3 and cell.ci == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-6)
    assert Cell.from_values([0.5]).ci is None


# ---- CD diagram ----

def test_draw_cd_is_byte_stable(tmp_path):
    pytest.importorskip("matplotlib")
    from benchmark_core.reporting.cd_diagram import draw_cd

    ranks = {"C4.5": 3.143, "C4.5+m": 2.000, "C4.5+cf": 2.893, "C4.5+m+cf": 1.964}
    cd = nemenyi_cd(4, 14)
    for suffix in (".png", ".svg", ".pdf"):
        first = draw_cd(ranks, cd, tmp_path / f"one{suffix}", "Demšar 2006")
        second = draw_cd(dict(reversed(ranks.items())), cd, tmp_path / "sub" / f"two{suffix}", "Demšar 2006")
        assert first.read_bytes() == second.read_bytes(), suffix
        assert b"matplotlib" not in first.read_bytes()  # no software-version stamp
    assert (tmp_path / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    moved = draw_cd(dict(ranks, **{"C4.5": 3.5}), cd, tmp_path / "moved.png", "Demšar 2006")
    assert moved.read_bytes() != (tmp_path / "one.png").read_bytes()
    with pytest.raises(ValueError):
        draw_cd({"only": 1.0}, cd, tmp_path / "x.png", "")
    with pytest.raises(ValueError):
        draw_cd(ranks, cd, tmp_path / "x.jpg", "")


def test_statistics_module_is_torch_free():
    code = ("import sys, benchmark_core.reporting.statistics, benchmark_core.reporting.cd_diagram; "
            "sys.exit(1 if any(m == 'torch' or m.startswith('torch.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
