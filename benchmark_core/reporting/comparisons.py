"""Which differences on a leaderboard are real: the statistics a board shows, computed once.

Per cell, the mean over seeds and its 95% t interval (t over seeds: the seeds are the
replications a reader can repeat; docs/statistics.md says why and what it leaves out).  Per
dataset, the methods not significantly worse than the best (approximate randomization test
paired over seeds and test samples, from the runs' stored predictions, Holm-corrected).  Across
datasets, Friedman's test on the rank table and Nemenyi's critical difference, and warnings
when a comparison is underpowered or a budget takes very few optimiser steps.  Torch-free: a
metric's function is only imported (with the plugin registry) when it has no per-sample form.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmark_core.reporting import statistics as st

ALPHA = st.ALPHA
# Resamples of the randomization test: the vectorised per-sample path is cheap; the generic path
# recomputes the metric (e.g. an F1 through scikit-learn) for every resample.
FAST_RESAMPLES = 10_000
GENERIC_RESAMPLES = 500
FEW_STEPS = 200  # optimiser steps below which a run has barely trained


@dataclass
class DatasetComparison:
    """One dataset's shown metric: who is best and who is tied with the best."""

    dataset: str
    metric: str
    results: dict[str, st.BestComparison] = field(default_factory=dict)
    skipped: str = ""  # why no test was run (e.g. no stored predictions)

    def tied(self, method: str) -> bool:
        result = self.results.get(method)
        return bool(result and not result.is_best and result.tied)

    def best(self, method: str) -> bool:
        result = self.results.get(method)
        return bool(result and result.is_best)


@dataclass
class Comparisons:
    """Everything statistical a board renders."""

    cells: dict[tuple[str, str], st.Cell] = field(default_factory=dict)  # (method, dataset) -> mean, CI
    datasets: dict[str, DatasetComparison] = field(default_factory=dict)
    friedman: st.FriedmanResult | None = None
    cd: float = math.nan
    groups: list[tuple[str, ...]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _metric_function(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """A registered metric's function (imports the plugin registry, so torch: only for metrics
    without a per-sample form)."""
    from benchmark_core.plugins import get_registry

    return get_registry().metric(name).fn


def _seed_predictions(runs: pd.DataFrame, predictions: Mapping[str, Any]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for _, row in runs.iterrows():
        stored = predictions.get(row["run_id"])
        if stored is not None:
            out[int(row["seed"])] = (stored.test.ids, stored.test.y, stored.test.pred)
    return out


def _aligned(per_method: Mapping[str, Mapping[int, tuple]],
             ) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] | str:
    """Line every method's test predictions up by sample id (the same seed's test set is the
    same samples for every method; their order is checked, never assumed)."""
    reference: dict[int, np.ndarray] = {}
    out: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for method, seeds in per_method.items():
        out[method] = {}
        for seed, (ids, y, pred) in seeds.items():
            ids = np.asarray(ids).astype(str)
            if seed not in reference:
                reference[seed] = ids
            if len(ids) != len(reference[seed]) or set(ids) != set(reference[seed]):
                return f"the test samples of seed {seed} differ between methods"
            if not np.array_equal(ids, reference[seed]):
                order = {sample: i for i, sample in enumerate(ids)}
                take = np.array([order[sample] for sample in reference[seed]])
                y, pred = y[take], pred[take]
            out[method][seed] = (y, pred)
    return out


def compare_dataset(done: pd.DataFrame, dataset: str, metric: str, higher_is_better: bool,
                    predictions: Mapping[str, Any] | None) -> DatasetComparison:
    result = DatasetComparison(dataset, metric)
    if not predictions:
        result.skipped = "no stored predictions"
        return result
    part = done[done["dataset"] == dataset]
    per_method = {m: _seed_predictions(runs, predictions) for m, runs in part.groupby("method", sort=True)}
    missing = sorted(m for m, seeds in per_method.items() if not seeds)
    per_method = {m: seeds for m, seeds in per_method.items() if seeds}
    if len(per_method) < 2:
        result.skipped = "fewer than two methods with stored predictions"
        return result
    aligned = _aligned(per_method)
    if isinstance(aligned, str):
        result.skipped = aligned
        return result
    per_sample = st.PER_SAMPLE.get(metric)
    function = per_sample_metric(per_sample) if per_sample else _metric_function(metric)
    try:
        result.results = st.tied_with_best(aligned, function, higher_is_better=higher_is_better,
                                           per_sample=per_sample,
                                           resamples=FAST_RESAMPLES if per_sample else GENERIC_RESAMPLES)
    except ValueError as exc:  # e.g. an undefined metric (corr of a constant prediction): no test
        result.skipped = f"no test possible: {exc}"
        return result
    if missing:
        result.skipped = f"not tested (no stored predictions): {', '.join(missing)}"
    return result


def per_sample_metric(per_sample: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., float]:
    return lambda y, pred: float(np.mean(per_sample(y, pred)))


def _steps_warning(done: pd.DataFrame) -> list[str]:
    if "info/optimizer_steps" not in done:
        return []
    steps = done.dropna(subset=["info/optimizer_steps"]).groupby("dataset")["info/optimizer_steps"].min()
    few = {d: int(s) for d, s in steps.items() if s < FEW_STEPS}
    if not few:
        return []
    listed = ", ".join(f"{d}: {s}" for d, s in sorted(few.items()))
    return [f"Budget warning: some runs took fewer than {FEW_STEPS} optimiser steps ({listed} at the least), "
            "too few for most methods to converge; raise --epochs or lower --batch-size"]


def compare(done: pd.DataFrame, long: pd.DataFrame, metrics: Mapping[str, Sequence[str]],
            predictions: Mapping[str, Any] | None = None) -> Comparisons:
    """The statistics of a board (``long``: one row per method x dataset x shown metric)."""
    out = Comparisons()
    if long.empty or done.empty:
        return out
    for _, row in long.iterrows():
        col = f"test/{row['metric']}"
        runs = done[(done["dataset"] == row["dataset"]) & (done["method"] == row["method"])]
        values = pd.to_numeric(runs[col], errors="coerce").dropna().to_numpy() if col in runs else np.array([])
        if len(values) and row["metric"] == metrics.get(row["dataset"], [row["metric"]])[0]:
            out.cells[(row["method"], row["dataset"])] = st.Cell.from_values(values)
    table: dict[str, dict[str, float]] = {}
    directions: dict[str, bool] = {}
    for dataset, shown in sorted(metrics.items()):
        rows = (long["dataset"] == dataset) & (long["metric"] == shown[0]) & (long["n"] > 0)
        part = long[rows].dropna(subset=["mean"])
        if part.empty:
            continue
        higher = bool(part["higher_is_better"].iloc[0])
        directions[dataset] = higher
        table[dataset] = dict(zip(part["method"], part["mean"].astype(float), strict=True))
        out.datasets[dataset] = compare_dataset(done, dataset, shown[0], higher, predictions)
    methods = sorted({m for scores in table.values() for m in scores})
    # Friedman needs complete blocks: a method without a score on some dataset (unimodal-3 on a
    # two-modality task) leaves the test, rather than the dataset leaving it for every method.
    complete = [m for m in methods if all(m in scores for scores in table.values())]
    if table and len(complete) >= 2:
        by_method = {m: {d: table[d][m] for d in table} for m in complete}
        out.friedman = st.friedman(by_method, directions)
        left_out = sorted(set(methods) - set(complete))
        if left_out:
            note = f"left out methods without a score on every dataset: {', '.join(left_out)}"
            out.friedman = dataclasses.replace(out.friedman, notes=(*out.friedman.notes, note))
        if out.friedman.applicable:
            out.cd = st.nemenyi_cd(out.friedman.k, out.friedman.n)
            out.groups = st.cliques(out.friedman.avg_ranks, out.cd)
    out.warnings = st.underpowered(out.cells) + _steps_warning(done)
    return out
