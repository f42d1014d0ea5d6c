"""Significance statistics for a leaderboard with few seeds and few datasets.

Torch-free (numpy and scipy only) because the torch-free leaderboard imports it.  Formulas,
when each statistic applies, and references are in docs/statistics.md.

* per cell (method x dataset): :func:`t_interval`, a t confidence interval over seeds;
* per dataset, method A vs method B: :func:`paired_randomization_test`, approximate
  randomization paired across seeds *and* test samples; :func:`tied_with_best` runs it
  against the best method with :func:`holm` correction;
* across datasets: :func:`friedman` (average ranks, chi2_F, Iman-Davenport F_F),
  :func:`nemenyi_cd` and :func:`cliques` for the critical-difference diagram
  (:mod:`benchmark_core.reporting.cd_diagram` draws it);
* footer warnings: :func:`underpowered` (:func:`few_seeds`, :func:`unresolved_datasets`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import stats as _st

__all__ = [
    "BestComparison", "Cell", "FriedmanResult", "PER_SAMPLE", "PairedTest", "cliques", "few_seeds",
    "friedman", "holm", "nemenyi_cd", "nemenyi_q", "paired_randomization_test", "per_sample_absolute_error",
    "per_sample_accuracy", "per_sample_squared_error", "t_interval", "tied_with_best", "underpowered",
    "unresolved_datasets",
]

Metric = Callable[[np.ndarray, np.ndarray], float]
PerSample = Callable[[np.ndarray, np.ndarray], np.ndarray]
# seed -> (y_true, raw model outputs): one method's test predictions on one dataset
SeedPredictions = Mapping[int, tuple[np.ndarray, np.ndarray]]

FAST_RESAMPLES = 10_000
GENERIC_RESAMPLES = 1_000
ALPHA = 0.05
MIN_SEEDS = 3
# Swap masks are drawn in blocks of about this many booleans, so memory stays flat for large test sets.
_BLOCK_ELEMENTS = 1 << 20


# --------------------------------------------------------------------------------------------
# per cell: t interval over seeds
# --------------------------------------------------------------------------------------------

def t_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float] | None:
    """``mean ± t_{n-1,(1+c)/2} · s/√n`` over seeds (s: sample std, ddof=1); None for n < 2.

    Student's t, not the normal 1.96, because seeds are few: with 3 seeds t_{2,0.975} = 4.303,
    so the interval is more than twice as wide as a normal one would claim."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"t_interval needs finite values, got {x.tolist()}")
    n = x.size
    if n < 2:
        return None
    mean = float(x.mean())
    half = float(_st.t.ppf((1.0 + confidence) / 2.0, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean - half, mean + half


# --------------------------------------------------------------------------------------------
# per-sample forms of the mean-decomposable metrics (the conventions of plugins/metrics.py)
# --------------------------------------------------------------------------------------------

def per_sample_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """1.0 where argmax of the logits is right (multilabel: fraction of labels right per sample),
    so its mean is ``accuracy`` and the randomization test can take its fast path."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == 2:
        return ((y_pred > 0) == (y_true > 0.5)).mean(axis=1).astype(np.float64)
    return (y_pred.reshape(len(y_pred), -1).argmax(axis=1) == y_true.reshape(-1)).astype(np.float64)


def _regression_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    return np.asarray(y_pred, dtype=np.float64).reshape(len(truth), -1)[:, 0] - truth


def per_sample_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """|error| on the first output column; its mean is ``mae``."""
    return np.abs(_regression_error(y_true, y_pred))


def per_sample_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """error² on the first output column; its mean is ``mse``."""
    return _regression_error(y_true, y_pred) ** 2


# Metric name -> per-sample form, for the metrics whose value is a plain mean over samples.
PER_SAMPLE: dict[str, PerSample] = {
    "accuracy": per_sample_accuracy,
    "mae": per_sample_absolute_error,
    "mse": per_sample_squared_error,
}


# --------------------------------------------------------------------------------------------
# per dataset: approximate randomization test, A vs B paired over seeds x test samples
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairedTest:
    """Result of :func:`paired_randomization_test`.

    ``difference``: mean over the paired seeds of metric(A) − metric(B), in metric units (its
    sign is not the direction of improvement; see :attr:`a_better`)."""

    difference: float
    p_value: float
    resamples: int
    method: str
    seeds: tuple[int, ...]
    higher_is_better: bool = True
    note: str = ""

    @property
    def a_better(self) -> bool:
        """Whether A's observed score is better than B's, given the metric's direction."""
        return self.difference > 0 if self.higher_is_better else self.difference < 0


def _pair_seeds(a: SeedPredictions, b: SeedPredictions) -> tuple[list[int], str]:
    """The seeds both methods have, and a note naming those only one of them has."""
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError(f"no seed in common: A has {sorted(a)}, B has {sorted(b)}")
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    note = ""
    if only_a or only_b:
        note = (f"paired on the {len(common)} common seeds {common}; dropped seeds only A has {only_a}"
                f" and only B has {only_b}")
    return common, note


def _swap_masks(rng: np.random.Generator, sizes: Sequence[int], resamples: int) -> Iterator[list[np.ndarray]]:
    """Blocks of swap masks, one boolean array (block, N_s) per seed: True = swap A and B there.

    Both test paths draw from this one generator, so with the same seed and ``resamples`` they see
    the same permutations (which is why the fast and generic paths agree exactly)."""
    block = max(1, min(resamples, _BLOCK_ELEMENTS // max(1, sum(sizes))))
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        # fair coins from random bytes, 8 per byte: half the time of rng.random(...) < 0.5
        yield [np.unpackbits(rng.integers(0, 256, (b, (n + 7) // 8), dtype=np.uint8), axis=1, count=n)
               .view(np.bool_) for n in sizes]
        done += b


def _extreme(stats: np.ndarray, observed: float) -> int:
    """How many resampled |statistics| reach |observed| (two-sided).

    Equal values up to float rounding count (the identity permutation must count, whatever the
    summation order); a NaN statistic counts too, which can only make the p-value larger."""
    size, obs = np.abs(stats), abs(observed)
    hit = (size >= obs) | np.isclose(size, obs, rtol=1e-9, atol=1e-12) | np.isnan(size)
    return int(hit.sum())


def _check_pair(seed: int, ya: np.ndarray, pa: np.ndarray, yb: np.ndarray, pb: np.ndarray) -> None:
    if not np.array_equal(ya, yb):
        raise ValueError(f"seed {seed}: A and B were scored on different test sets (y_true differs); "
                         "the paired test needs the same test samples for both")
    if len(ya) == 0:
        raise ValueError(f"seed {seed}: no test samples")
    if len(pa) != len(ya) or len(pb) != len(ya) or pa.shape != pb.shape:
        raise ValueError(f"seed {seed}: predictions {pa.shape} and {pb.shape} do not match "
                         f"{len(ya)} test samples")


def paired_randomization_test(
    a: SeedPredictions,
    b: SeedPredictions,
    metric: Metric,
    *,
    higher_is_better: bool = True,
    per_sample: PerSample | None = None,
    resamples: int | None = None,
    seed: int = 0,
) -> PairedTest:
    """Approximate randomization test of A vs B on one dataset (Noreen 1989; Riezler & Maxwell 2005).

    ``a``/``b`` map seed -> (y_true, raw predictions (N, ...)); within a seed both must hold the
    same test samples.  Statistic: mean over the common seeds of metric(A_s) − metric(B_s).  Under
    H0 the two predictions of each (seed, sample) pair are exchangeable, so each pair is swapped
    independently with probability 1/2 and the statistic recomputed; two-sided
    p = (#{|t_r| >= |t_obs|} + 1) / (R + 1), which is never 0 and is a valid p-value for any R.

    Pairing over samples as well as seeds is what gives power with 3 seeds: a test over 3 seed
    means alone can never reach p < 0.25.  ``per_sample(y, pred) -> (N,)`` with mean equal to the
    metric (accuracy, MAE, MSE: see :data:`PER_SAMPLE`) enables a vectorised path (default
    10 000 resamples); otherwise the metric is recomputed per resample (default 1 000).
    """
    common, note = _pair_seeds(a, b)
    rng = np.random.default_rng(seed)
    ys, pas, pbs = [], [], []
    for s in common:
        (ya, pa), (yb, pb) = a[s], b[s]
        ya, pa, yb, pb = np.asarray(ya), np.asarray(pa), np.asarray(yb), np.asarray(pb)
        _check_pair(s, ya, pa, yb, pb)
        ys.append(ya)
        pas.append(pa)
        pbs.append(pb)
    observed_metric = float(np.mean([metric(y, pa) - metric(y, pb) for y, pa, pb in zip(ys, pas, pbs)]))
    if not math.isfinite(observed_metric):
        raise ValueError(f"the metric is not finite on the observed predictions ({observed_metric}); "
                         "nothing to test")
    sizes = [len(y) for y in ys]
    r = int(resamples) if resamples is not None else FAST_RESAMPLES if per_sample is not None else GENERIC_RESAMPLES
    if r < 1:
        raise ValueError(f"resamples must be >= 1, got {r}")
    if per_sample is not None:
        deltas = []
        for s, y, pa, pb in zip(common, ys, pas, pbs):
            la = np.asarray(per_sample(y, pa), dtype=np.float64)
            lb = np.asarray(per_sample(y, pb), dtype=np.float64)
            for values, pred in ((la, pa), (lb, pb)):
                if values.shape != (len(y),) or not np.isclose(values.mean(), metric(y, pred), rtol=1e-6,
                                                                  atol=1e-9):
                    raise ValueError(f"seed {s}: the mean of per_sample ({values.mean()}) is not the metric "
                                     f"({metric(y, pred)}); pass per_sample only for mean-decomposable metrics")
            deltas.append(la - lb)
        observed = float(np.mean([d.mean() for d in deltas]))
        count = 0
        for masks in _swap_masks(rng, sizes, r):
            # swapping pair i flips the sign of its delta: mean((1 − 2m) · δ) = (Σδ − 2 m·δ) / N
            per_seed = [(d.sum() - 2.0 * (m.view(np.uint8) @ d)) / len(d) for m, d in zip(masks, deltas)]
            count += _extreme(np.mean(per_seed, axis=0), observed)
        name = "approximate randomization (per-sample vectorised path)"
    else:
        observed = observed_metric
        count = 0
        for masks in _swap_masks(rng, sizes, r):
            block = np.empty(len(masks[0]), dtype=np.float64)
            for i in range(len(block)):
                diffs = []
                for m, y, pa, pb in zip(masks, ys, pas, pbs):
                    swap = m[i].reshape((-1,) + (1,) * (pa.ndim - 1))
                    diffs.append(metric(y, np.where(swap, pb, pa)) - metric(y, np.where(swap, pa, pb)))
                block[i] = np.mean(diffs)
            count += _extreme(block, observed)
        name = "approximate randomization (generic metric path)"
    return PairedTest(difference=observed_metric, p_value=(count + 1) / (r + 1), resamples=r, method=name,
                      seeds=tuple(common), higher_is_better=higher_is_better, note=note)


# --------------------------------------------------------------------------------------------
# multiple comparisons
# --------------------------------------------------------------------------------------------

def holm(p_values: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values, in the input order.

    Sorted ascending, p_(i) (i = 1..m) becomes max_{j <= i} min(1, (m − j + 1) p_(j)): the running
    max keeps the adjusted values monotone, so "reject where adjusted <= alpha" is exactly Holm's
    procedure.  Controls the family-wise error without Bonferroni's loss of power."""
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


@dataclass(frozen=True)
class BestComparison:
    """One method's standing against the best method on one dataset (:func:`tied_with_best`).

    ``tied``: the best method itself, or not significantly different from it (Holm-adjusted
    p > alpha).  ``difference``: this method's paired score minus the best's, in metric units."""

    method: str
    mean: float
    n_seeds: int
    is_best: bool
    difference: float = 0.0
    p_value: float | None = None
    p_holm: float | None = None
    tied: bool = True
    note: str = ""


def _seed_mean(runs: SeedPredictions, metric: Metric) -> float:
    return float(np.mean([metric(np.asarray(y), np.asarray(p)) for y, p in runs.values()]))


def tied_with_best(
    predictions: Mapping[str, SeedPredictions],
    metric: Metric,
    *,
    higher_is_better: bool = True,
    per_sample: PerSample | None = None,
    alpha: float = ALPHA,
    resamples: int | None = None,
    seed: int = 0,
) -> dict[str, BestComparison]:
    """Which methods on one dataset are statistically indistinguishable from the best.

    ``predictions``: method -> {seed: (y_true, pred)}.  The best method has the best mean over its
    seeds (exact ties: the first name in sorted order, so the answer does not depend on input
    order).  Every other method gets :func:`paired_randomization_test` against it, all with the
    same ``seed`` (a method's raw p-value does not depend on which other methods are present), and
    the k − 1 p-values are Holm-adjusted together because they form one family of claims
    ("X is worse than the best").  Returns one entry per method, in input order."""
    if not predictions:
        raise ValueError("tied_with_best needs at least one method")
    empty = [m for m, runs in predictions.items() if not runs]
    if empty:
        raise ValueError(f"methods without any seed: {empty}")
    means = {m: _seed_mean(runs, metric) for m, runs in predictions.items()}
    sign = -1.0 if higher_is_better else 1.0
    best = min(sorted(means), key=lambda m: sign * means[m])
    others = [m for m in predictions if m != best]
    tests = {m: paired_randomization_test(predictions[m], predictions[best], metric,
                                          higher_is_better=higher_is_better, per_sample=per_sample,
                                          resamples=resamples, seed=seed) for m in others}
    adjusted = dict(zip(others, holm([tests[m].p_value for m in others])))
    out: dict[str, BestComparison] = {}
    for m, runs in predictions.items():
        if m == best:
            out[m] = BestComparison(m, means[m], len(runs), True)
            continue
        t = tests[m]
        out[m] = BestComparison(m, means[m], len(runs), False, t.difference, t.p_value, adjusted[m],
                                adjusted[m] > alpha, t.note)
    return out


# --------------------------------------------------------------------------------------------
# across datasets: Friedman, Iman-Davenport, Nemenyi critical difference
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over a methods x datasets table (Demšar 2006, section 3.2.2).

    ``applicable`` is False (with ``reason``) for fewer than 2 methods or 2 complete datasets; the
    average ranks are still filled whenever there is at least one complete dataset.
    ``iman_davenport_p`` is the p-value to report (Demšar: chi2_F is needlessly conservative)."""

    applicable: bool
    reason: str
    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    avg_ranks: dict[str, float]
    chi2: float | None = None
    chi2_p: float | None = None
    iman_davenport: float | None = None
    iman_davenport_p: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def k(self) -> int:
        return len(self.methods)

    @property
    def n(self) -> int:
        return len(self.datasets)


def friedman(
    table: Mapping[str, Mapping[str, float]],
    higher_is_better: bool | Mapping[str, bool] = True,
    decimals: int | None = None,
) -> FriedmanResult:
    """Average ranks and the Friedman / Iman-Davenport tests for ``table[method][dataset]`` = mean score.

    Ranks per dataset: 1 = best under that dataset's direction (``higher_is_better`` may map
    dataset -> bool, since each dataset has its own primary metric), ties get the average rank.
    ``decimals`` rounds scores before ranking, so differences below the displayed precision tie.
    A dataset missing a method (or holding NaN) is left out, and a note says so: Friedman needs
    complete blocks.  chi2_F = 12N/(k(k+1)) [Σ R_j² − k(k+1)²/4] with k − 1 df (no tie
    correction, as in Demšar; scipy.stats.friedmanchisquare adds one);
    F_F = (N − 1) chi2_F / (N(k − 1) − chi2_F) with (k − 1, (k − 1)(N − 1)) df."""
    methods = tuple(table)
    datasets_all = sorted({d for row in table.values() for d in row})
    complete, dropped = [], []
    for d in datasets_all:
        values = [table[m].get(d) for m in methods]
        ok = all(v is not None and math.isfinite(float(v)) for v in values)
        (complete if ok else dropped).append(d)
    notes: list[str] = []
    if dropped:
        notes.append(f"left out datasets without a finite score for every method: {', '.join(dropped)}")
    k, n = len(methods), len(complete)
    avg: dict[str, float] = {}
    ranks = np.zeros((n, k))
    for i, d in enumerate(complete):
        scores = np.array([float(table[m][d]) for m in methods])
        if decimals is not None:
            scores = np.round(scores, decimals)
        if isinstance(higher_is_better, Mapping):
            if d not in higher_is_better:
                raise ValueError(f"no direction (higher_is_better) given for dataset {d!r}")
            higher = bool(higher_is_better[d])
        else:
            higher = bool(higher_is_better)
        ranks[i] = _st.rankdata(-scores if higher else scores, method="average")
    if n:
        avg = dict(zip(methods, ranks.mean(axis=0).tolist()))
    reason = ""
    if k < 2:
        reason = f"the Friedman test needs at least 2 methods, got {k}"
    elif n < 2:
        reason = f"the Friedman test needs at least 2 datasets scored for every method, got {n}"
    if reason:
        return FriedmanResult(False, reason, methods, tuple(complete), avg, notes=tuple(notes))
    if n < 10 or k < 5:
        notes.append(f"N={n} datasets, k={k} methods: below Demšar's rule of thumb (N > 10 and k > 5) the "
                     "chi² and F approximations behind these p-values are rough; treat them as indicative")
    r = ranks.mean(axis=0)
    chi2 = float(12.0 * n / (k * (k + 1)) * (np.sum(r ** 2) - k * (k + 1) ** 2 / 4.0))
    chi2 = max(chi2, 0.0)  # rounding can leave -1e-15 when every rank ties
    chi2_p = float(_st.chi2.sf(chi2, k - 1))
    denom = n * (k - 1) - chi2
    if denom <= 1e-12 * n * k:  # every dataset ranks the methods identically: F_F is infinite
        f_f, f_p = math.inf, 0.0
    else:
        f_f = (n - 1) * chi2 / denom
        f_p = float(_st.f.sf(f_f, k - 1, (k - 1) * (n - 1)))
    return FriedmanResult(True, "", methods, tuple(complete), avg, chi2, chi2_p, f_f, f_p, tuple(notes))


@lru_cache(maxsize=256)
def nemenyi_q(k: int, alpha: float = ALPHA) -> float:
    """Demšar's q_alpha: the studentized range quantile for k means and infinite df, over √2."""
    if k < 2:
        raise ValueError(f"the Nemenyi test needs at least 2 methods, got {k}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(_st.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference CD = q_alpha √(k(k+1)/(6N)): two methods whose average ranks
    over N datasets differ by at least CD are significantly different (Demšar 2006, eq. 5)."""
    if n < 1:
        raise ValueError(f"the critical difference needs at least 1 dataset, got {n}")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def cliques(avg_ranks: Mapping[str, float], cd: float) -> list[tuple[str, ...]]:
    """Maximal groups of at least 2 methods whose average ranks all differ by less than ``cd``.

    These are the thick bars of a CD diagram.  Methods sorted by rank (then name): the group
    starting at each method runs to the last method within ``cd`` of it; a group contained in the
    previous one is not maximal.  A method within ``cd`` of no other is in no group."""
    order = sorted(avg_ranks, key=lambda m: (avg_ranks[m], m))
    groups: list[tuple[str, ...]] = []
    last_end = -1
    for i, start in enumerate(order):
        end = i
        while end + 1 < len(order) and avg_ranks[order[end + 1]] - avg_ranks[start] < cd:
            end += 1
        if end > i and end > last_end:
            groups.append(tuple(order[i:end + 1]))
            last_end = end
    return groups


# --------------------------------------------------------------------------------------------
# underpowered comparisons: footer warnings
# --------------------------------------------------------------------------------------------

class Cell(NamedTuple):
    """One leaderboard cell: mean over seeds, its interval (:func:`t_interval`, None below 2
    seeds) and how many seeds it has."""

    mean: float
    ci: tuple[float, float] | None
    n_seeds: int

    @classmethod
    def from_values(cls, values: Sequence[float], confidence: float = 0.95) -> Cell:
        """The cell of these per-seed values."""
        x = [float(v) for v in values]
        return cls(float(np.mean(x)) if x else math.nan, t_interval(x, confidence), len(x))


def _shorten(items: list[str], limit: int = 6) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def few_seeds(cells: Mapping[tuple[str, str], Cell], minimum: int = MIN_SEEDS) -> list[str]:
    """A reason when some cells ((method, column) -> Cell) have fewer than ``minimum`` seeds."""
    low = sorted((key, c.n_seeds) for key, c in cells.items() if c.n_seeds < minimum)
    if not low:
        return []
    listed = [f"{m} on {d}: {n}" for (m, d), n in low]
    return [f"{len(low)} of {len(cells)} cells have fewer than {minimum} seeds ({_shorten(listed)}): "
            "seed-to-seed variance is barely measured there (1 seed: no interval; 2 seeds: "
            f"t_1,0.975 = 12.71 makes the 95% interval huge); run at least {minimum} seeds"]


def unresolved_datasets(cells: Mapping[tuple[str, str], Cell]) -> list[str]:
    """A reason per column where the typical (median) CI half-width of its cells exceeds the spread
    (max − min) of the method means: the seeds and test set are too noisy to order the methods."""
    by_column: dict[str, list[Cell]] = {}
    for (_, column), cell in cells.items():
        by_column.setdefault(column, []).append(cell)
    reasons = []
    for column in sorted(by_column):
        group = [c for c in by_column[column] if math.isfinite(c.mean)]
        halves = [(c.ci[1] - c.ci[0]) / 2.0 for c in group if c.ci is not None]
        if len(group) < 2 or not halves:
            continue
        half = float(np.median(halves))
        spread = max(c.mean for c in group) - min(c.mean for c in group)
        if half > spread:
            reasons.append(f"{column}: the typical CI half-width ({half:.3g}) is wider than the spread of the "
                           f"{len(group)} method means ({spread:.3g}): with these seeds and this test set the "
                           "methods cannot be told apart")
    return reasons


def underpowered(cells: Mapping[tuple[str, str], Cell], minimum_seeds: int = MIN_SEEDS) -> list[str]:
    """All footer warnings for a table of cells: :func:`few_seeds` then :func:`unresolved_datasets`."""
    return few_seeds(cells, minimum_seeds) + unresolved_datasets(cells)
