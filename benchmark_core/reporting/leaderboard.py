"""The leaderboard: a pure function of a runs table.

``runs_frame(tracker)`` reads one pandas row per child run from MLflow (identity tags, budget,
status, every logged metric the table keeps); ``load_runs`` in :mod:`benchmark_core.reporting.publish`
reads the same table back from a stored export.  The table's columns and both conversions are
owned by :mod:`benchmark_core.record`.  Everything after that is a pure function of the frame:

frame -> :func:`build_board` (latest run per spec_hash, refusal to mix data hashes or metric
variants, mean ± std over seeds per method x dataset x metric, failed/missing runs, cross-dataset
rank, interaction/robustness columns, provenance) -> :func:`render` in Markdown, LaTeX
(booktabs), standalone HTML, CSV or JSON.  Effective robustness is cross-run (against the
late-fusion run of the same dataset and seed), so it is computed here rather than by the run.
See docs/leaderboard.md.
"""

from __future__ import annotations

import html as _html
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from benchmark_core.errors import FuseBenchError
from benchmark_core.evaluation.robustness import HEADLINE, effective_robustness
from benchmark_core.record import (
    BUDGET_COLUMNS,
    EMAP,
    INFO,
    ROBUSTNESS,
    TEST,
    RunRecord,
    canonical,
    is_missing,
    json_value,
    runs_table,
    stress_points,
)
from benchmark_core.reporting.comparisons import Comparisons, compare
from benchmark_core.reporting.statistics import t_interval
from benchmark_core.specs import KNOWN_FAMILIES
from benchmark_core.tracking import Tracker

# The effective-robustness reference (MultiBench): late fusion of the same dataset and seed.
REFERENCE_METHOD = "late"
FORMATS = ("md", "latex", "html", "csv", "json")
SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".tex": "latex", ".html": "html", ".htm": "html",
                  ".csv": "csv", ".json": "json"}
RANKINGS = ("mean-rank", "borda", "none")
VIEWS = ("default", "tuned", "both")


def runs_frame(tracker: Tracker) -> pd.DataFrame:
    """One row per child run (identity tags, status, every logged metric), plus one row with
    status ``missing`` per planned run that never started (an interrupted suite's plan is kept
    on its parent run), so nothing planned is silently dropped from a board.  Columns, values
    and row order are those of :func:`benchmark_core.record.runs_table`."""
    records = [RunRecord.from_mlflow(run) for run in tracker.child_runs()]
    started = {record.spec_hash for record in records}
    for planned in tracker.planned_runs():
        if planned["spec_hash"] not in started:
            started.add(planned["spec_hash"])
            records.append(RunRecord.missing(planned))
    return runs_table(records)


def view_of(frame: pd.DataFrame) -> pd.Series:
    """Each row's view: ``default`` (bench run), ``trial`` or ``tuned`` (bench tune)."""
    if "view" not in frame:
        return pd.Series("default", index=frame.index, dtype=object)
    return frame["view"].where(frame["view"].notna(), "default")


def tuned_selection(frame: pd.DataFrame) -> pd.DataFrame:
    """The tuned runs shown: per dataset and method, those of its newest search (study and
    number of trials), so two searches of one method never average into one cell."""
    tuned = frame[view_of(frame) == "tuned"]
    if tuned.empty:
        return tuned
    newest = tuned.sort_values("start_time", kind="stable").groupby(["dataset", "method"])[["study", "n_trials"]].last()
    keys = [tuple(newest.loc[(d, m)]) for d, m in zip(tuned["dataset"], tuned["method"], strict=True)]
    mine = [(s, n) == k for s, n, k in zip(tuned["study"], tuned["n_trials"], keys, strict=True)]
    return tuned[mine]


def select_view(frame: pd.DataFrame, view: str = "default") -> pd.DataFrame:
    """The runs of one view: ``default`` (everything ``bench run`` recorded; trials and tuned runs
    left out) or ``tuned`` (the chosen configurations of each method's newest search)."""
    if view not in ("default", "tuned"):
        raise FuseBenchError(f"--view must be one of {', '.join(VIEWS)}, got {view!r}.")
    if frame.empty or "view" not in frame:
        return frame if view == "default" else frame.iloc[0:0]
    return frame[view_of(frame) == "default"] if view == "default" else tuned_selection(frame)


def tuning_compute(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method, what its shown search cost: trials and their summed wall seconds
    (latest attempt of each trial, failed ones included: they were paid for)."""
    columns = ["dataset", "method", "trials", "trial_seconds", "n_trials"]
    tuned = tuned_selection(frame)
    if tuned.empty:
        return pd.DataFrame(columns=columns)
    trials = frame[view_of(frame) == "trial"]
    trials = trials[trials["status"] != "missing"].sort_values("start_time", kind="stable")
    trials = trials.drop_duplicates("spec_hash", keep="last")
    rows = []
    for (dataset, method), part in tuned.groupby(["dataset", "method"], sort=True):
        study, n = part["study"].iloc[0], int(part["n_trials"].iloc[0])
        mine = trials[(trials["study"] == study) & (trials["trial"].astype(float) < n)]
        seconds = pd.to_numeric(mine.get(INFO.key("wall_time_s"), pd.Series(dtype=float)), errors="coerce")
        rows.append({"dataset": dataset, "method": method, "trials": int(mine["trial"].nunique()),
                     "trial_seconds": float(seconds.sum()), "n_trials": n})
    return pd.DataFrame(rows, columns=columns)


def _family_order(family: str) -> tuple[int, str]:
    return (KNOWN_FAMILIES.index(family) if family in KNOWN_FAMILIES else len(KNOWN_FAMILIES), str(family))


def _variants(row: pd.Series) -> tuple[str, str]:
    variants = row.get("metric_variants")
    return (str(row.get("primary_metric")), "" if variants is None or pd.isna(variants) else str(variants))


def _data_versions(done: pd.DataFrame, dataset: str) -> str:
    """'hash (N runs, newest START)' for each data version of one dataset, newest first."""
    rows = done[done["dataset"] == dataset].groupby("data_hash")["start_time"].agg(["size", "max"])
    rows = rows.sort_values("max", ascending=False)
    return ", ".join(f"{h} ({n} run{'s' * (n != 1)}, newest {pd.to_datetime(t, unit='ms'):%Y-%m-%d %H:%M})"
                     for h, (n, t) in rows.iterrows())


def finished_runs(frame: pd.DataFrame, allow_mixed_data: bool = False, allow_mixed_metrics: bool = False,
                  latest_data: bool = False) -> pd.DataFrame:
    """Latest finished run per spec_hash; refuses to mix data versions or metric variants of one
    dataset.  ``latest_data`` keeps, per dataset, only the runs on the data version (content
    hash) of its most recent run: after a data file changed and the suite was re-run, the
    old results stay in the store but leave the table."""
    if frame.empty:
        return frame
    done = canonical(frame[frame["status"] == "finished"]).sort_values("start_time", kind="stable")
    done = done.drop_duplicates("spec_hash", keep="last")
    if latest_data:
        newest = done.groupby("dataset")["data_hash"].last()
        done = done[done["data_hash"].fillna("") == done["dataset"].map(newest).fillna("")]
    if not allow_mixed_data:
        hashes = done.groupby("dataset")["data_hash"].nunique()
        mixed = sorted(hashes[hashes > 1].index)
        if mixed:
            versions = "; ".join(f"{d}: {_data_versions(done, d)}" for d in mixed)
            raise FuseBenchError(
                f"Results for dataset(s) {mixed} were computed on different data (data content hashes: "
                f"{versions}). Pass --latest-data to show only each dataset's newest data version, re-run "
                "into a separate --suite, or pass --allow-mixed-data to aggregate anyway."
            )
    if not allow_mixed_metrics:
        seen: dict[str, set[tuple[str, str]]] = {}
        for _, row in done.iterrows():
            seen.setdefault(row["dataset"], set()).add(_variants(row))
        mixed = {d: sorted(v) for d, v in sorted(seen.items()) if len(v) > 1}
        if mixed:
            detail = "; ".join(f"{d}: " + " vs ".join(f"primary={p} variants=[{v}]" for p, v in pairs)
                               for d, pairs in mixed.items())
            raise FuseBenchError(
                f"Results for dataset(s) {sorted(mixed)} were scored with different metric variants or "
                f"primary metrics ({detail}). Re-run them with one metric set, use a separate --suite, or pass "
                "--allow-mixed-metrics to aggregate anyway."
            )
    return canonical(done)


def recorded_metrics(done: pd.DataFrame, dataset: str) -> list[str]:
    """Metric variants recorded (on the test split) for a dataset's finished runs."""
    part = done[done["dataset"] == dataset]
    names: set[str] = set()
    for _, row in part.iterrows():
        primary, variants = _variants(row)
        names.add(primary)
        names.update(v for v in variants.split(",") if v)
    return sorted(n for n in names if n and n != "None" and TEST.key(n) in part.columns)


def select_metrics(done: pd.DataFrame, datasets: Sequence[str], metrics: Sequence[str] | None) -> dict[str, list[str]]:
    """dataset -> metrics to show.  ``metrics`` entries are ``NAME`` (every dataset) or
    ``DATASET:NAME``; default: each dataset's primary metric."""
    chosen: dict[str, list[str]] = {}
    for dataset in datasets:
        part = done[done["dataset"] == dataset]
        if part.empty:
            continue
        primary = str(part["primary_metric"].iloc[-1])
        if not metrics:
            chosen[dataset] = [primary]
            continue
        names = [m.split(":", 1)[1] if ":" in m else m for m in metrics
                 if ":" not in m or m.split(":", 1)[0] == dataset]
        recorded = recorded_metrics(done, dataset)
        for name in names:
            if name not in recorded:
                raise FuseBenchError(f"Metric variant {name!r} was not recorded for dataset {dataset!r}; "
                                     f"recorded variants: {', '.join(recorded) or 'none'}.")
        chosen[dataset] = list(dict.fromkeys(names)) or [primary]
    return chosen


def _stats(values: pd.Series) -> tuple[float, float, int]:
    values = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if values.empty:
        return float("nan"), float("nan"), 0
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0, len(values)


def headline_curve(row: pd.Series, metric: str) -> dict[float, float]:
    """level -> score of one run's headline stress curve (noise on all modalities), with the
    clean test score at level 0."""
    points = {level: float(value) for level, value in stress_points(row, *HEADLINE, metric).items()
              if pd.notna(value)}
    clean = row.get(TEST.key(metric))
    if points and pd.notna(clean):
        points[0.0] = float(clean)
    return dict(sorted(points.items()))


def effective_robustness_per_run(frame: pd.DataFrame, reference: str = REFERENCE_METHOD,
                                 metric: str | None = None) -> pd.Series:
    """ER of each run's headline curve against the reference method's run with the same
    dataset and seed (NaN where either curve is missing), on their common levels."""
    values = pd.Series(np.nan, index=frame.index, dtype=float)
    if frame.empty:
        return values
    refs = {(r["dataset"], r["seed"]): r for _, r in frame[frame["method"] == reference].iterrows()}
    for index, row in frame.iterrows():
        ref = refs.get((row["dataset"], row["seed"]))
        if ref is None:
            continue
        name = metric or row["primary_metric"]
        mine, theirs = headline_curve(row, name), headline_curve(ref, name)
        levels = sorted(set(mine) & set(theirs))
        if len(levels) > 1 and levels[0] == 0.0:
            values[index] = effective_robustness([mine[lv] for lv in levels], [theirs[lv] for lv in levels],
                                                 bool(row["higher_is_better"]))
    return values


# column title -> (long-table name, metric -> its run metric key; None: computed here)
ANALYSIS_COLUMNS: dict[str, tuple[str, Callable[[str], str] | None]] = {
    "Clean": ("clean", TEST.key),
    "EMAP": ("emap", EMAP.key),
    "EMAP gap": ("emap_gap", lambda m: EMAP.key("gap", m)),
    "Missing (mean)": ("missing_mean", lambda m: ROBUSTNESS.key("missing", "mean", m)),
    "Relative rob.": ("relative_rob", lambda m: ROBUSTNESS.key("relative", m)),
    "Effective rob.": ("effective_rob", None),
}


def _fmt(mean: float, std: float, n: int) -> str:
    if n == 0 or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    return f"{mean:.4f}" if n == 1 else f"{mean:.4f} ± {std:.4f}"


def _arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def analysis_table(frame: pd.DataFrame, datasets: Sequence[str] | None = None,
                   metrics: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """One row per family x method x dataset: clean score, EMAP score and gap, mean
    missing-modality score, relative and effective robustness (first shown metric, default the
    primary one; mean ± std over seeds).  Empty when no run logged EMAP or stress results."""
    return _analysis_cells(_analysis_long(frame, datasets, metrics))


def _analysis_cells(long: pd.DataFrame) -> pd.DataFrame:
    """Long analysis statistics -> display rows with 'mean ± std' cells."""
    if long.empty:
        return pd.DataFrame()
    rows = []
    for _, r in long.iterrows():
        row = {"Family": r["family"], "Method": r["method"], "Dataset": r["dataset"],
               "Metric": f"{r['metric']} {_arrow(bool(r['higher_is_better']))}"}
        for title, (name, _) in ANALYSIS_COLUMNS.items():
            row[title] = _fmt(r[f"{name}_mean"], r[f"{name}_std"], int(r[f"{name}_n"]))
        if r.get("emap_mc") and row["EMAP gap"] != "—":
            row["EMAP gap"] += f" (MC se {r['emap_se']:.4f})"
        rows.append(row)
    return pd.DataFrame(rows)


def _emap_uncertainty(group: pd.DataFrame, metric: str) -> dict[str, Any]:
    """Whether any run's EMAP was Monte Carlo, and the Monte-Carlo standard error of the seed
    mean of its gap: sqrt(sum of the runs' squared errors) / runs (independent estimates)."""
    partners = group.get(EMAP.key("n_partners"))
    se = group.get(EMAP.key("gap_se", metric))
    mc = bool(partners is not None and (partners.fillna(0) > 0).any())
    if not mc or se is None or se.notna().sum() == 0:
        return {"emap_mc": mc, "emap_se": float("nan")}
    values = se.dropna().to_numpy(dtype=float)
    return {"emap_mc": True, "emap_se": float(np.sqrt((values ** 2).sum()) / len(values))}


def _analysis_long(frame: pd.DataFrame, datasets: Sequence[str] | None = None,
                   metrics: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    analysed = any(EMAP.owns(c) or ROBUSTNESS.owns(c) for c in frame.columns)
    if frame.empty or not analysed:
        return pd.DataFrame()
    frame = canonical(frame)
    ers: dict[str, pd.Series] = {}
    rows = []
    for (dataset, method), group in frame.groupby(["dataset", "method"], sort=True):
        if datasets and dataset not in datasets:
            continue
        metric = (metrics or {}).get(dataset, [None])[0] or group["primary_metric"].iloc[0]
        if metric not in ers:
            ers[metric] = effective_robustness_per_run(frame, metric=metric)
        row = {"family": group["family"].iloc[0], "method": method, "dataset": dataset, "metric": metric,
               "higher_is_better": bool(group["higher_is_better"].iloc[0])}
        for name, key in ANALYSIS_COLUMNS.values():
            values = ers[metric].loc[group.index] if key is None else group.get(key(metric))
            mean, std, n = _stats(values) if values is not None else (float("nan"), float("nan"), 0)
            row.update({f"{name}_mean": mean, f"{name}_std": std, f"{name}_n": n})
        row.update(_emap_uncertainty(group, metric))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = table["family"].map(_family_order)
    return (table.assign(_order=order).sort_values(["_order", "method", "dataset"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


# -- the board -------------------------------------------------------------------------------

RANK_DEFINITIONS = {
    "mean-rank": ("Mean rank ↓", ("Mean rank: on each dataset (its first shown metric, direction respected) "
                  "methods are ranked 1 = best by their mean over seeds, ties sharing the average rank; a "
                  "method's mean rank averages these over the datasets it has a finished result on "
                  "(k/N: ranked on only k of N datasets).")),
    "borda": ("Borda ↑", ("Borda count: on each dataset (its first shown metric, direction respected) a method "
              "scores one point per method it beats and half a point per tie (N ranked methods: N - "
              "average rank); points are summed over datasets, so a missing dataset scores 0.")),
}


@dataclass
class Board:
    """Everything a rendering needs, computed once from a runs frame."""

    suite: str
    long: pd.DataFrame            # family, method, dataset, metric, mean, std, n, planned, ... (numeric)
    ranking: pd.DataFrame         # family, method, rank value, datasets ranked
    analysis: pd.DataFrame        # numeric analysis long table
    failures: pd.DataFrame        # family, method, dataset, seed, status, error
    provenance: dict[str, Any]
    rank: str = "mean-rank"
    group: bool = False
    metrics: dict[str, list[str]] = field(default_factory=dict)
    comparisons: Comparisons = field(default_factory=Comparisons)
    view: str = "default"
    # tuned view: per dataset and method, the trials and trial seconds its search spent
    compute: pd.DataFrame = field(default_factory=pd.DataFrame)


BUDGET_LABELS = {"batch_size": "batch"}  # footer label of a budget column, where it is not the column


def _budget(row: pd.Series) -> str:
    """'epochs=20, batch=64, ...': every Budget field the run's record holds (records written
    before grad_clip, threads and device reached the table show the six they have)."""
    return ", ".join(f"{BUDGET_LABELS.get(col, col)}={row.get(col)}" for col in BUDGET_COLUMNS
                     if not is_missing(row.get(col)))


def _budgets(done: pd.DataFrame) -> list[str]:
    """The distinct budgets; where datasets differ (a dataset's own budget defaults), each
    budget names its datasets."""
    by_budget: dict[str, set[str]] = {}
    for _, row in done.iterrows():
        by_budget.setdefault(_budget(row), set()).add(str(row["dataset"]))
    if len(by_budget) <= 1:
        return sorted(by_budget)
    return sorted(f"{b} ({', '.join(sorted(d))})" for b, d in by_budget.items())


def _provenance(suite: str, frame: pd.DataFrame, done: pd.DataFrame, failures: pd.DataFrame,
                metrics: Mapping[str, Sequence[str]], rank: str) -> dict[str, Any]:
    versions: dict[str, set[str]] = {}
    for text in done.get("versions", pd.Series(dtype=object)).dropna():
        for name, value in json.loads(text).items():
            versions.setdefault(name, set()).add(str(value))
    for value in done["harness_version"].dropna():
        versions.setdefault("fusebench", set()).add(str(value))

    def uniq(col: str) -> list[str]:
        return sorted({str(v) for v in done[col].dropna()}) if col in done else []

    variants = {}
    for dataset, part in done.groupby("dataset", sort=True):
        pairs = (_variants(r) for _, r in part.iterrows())
        variants[dataset] = sorted({f"{p} (primary); variants {v or p}" for p, v in pairs})
    return {
        "suite": suite,
        "finished_runs": len(done),
        "attempted_runs": len(frame),
        "failed_or_missing": len(failures),
        "seeds": sorted({int(s) for s in done["seed"]}),
        "budget": _budgets(done),
        "versions": {k: sorted(v) for k, v in sorted(versions.items())},
        "torch": uniq("torch_version"),
        "git_sha": uniq("git_sha"),
        "data_hashes": {d: sorted({str(h) for h in part["data_hash"].dropna()})
                        for d, part in done.groupby("dataset", sort=True)},
        "metric_variants": variants,
        "metrics_shown": {d: list(m) for d, m in sorted(metrics.items())},
        "ranking": rank,
    }


def _failures(frame: pd.DataFrame, datasets: Sequence[str]) -> pd.DataFrame:
    columns = ["family", "method", "dataset", "seed", "status", "error"]
    frame = frame[frame["dataset"].isin(datasets)]
    finished = set(frame.loc[frame["status"] == "finished", "spec_hash"])
    latest = canonical(frame).sort_values("start_time", kind="stable").drop_duplicates("spec_hash", keep="last")
    rows = [{"family": r["family"], "method": r["method"], "dataset": r["dataset"], "seed": int(r["seed"]),
             "status": str(r["status"]), "error": "" if is_missing(r["error"]) else str(r["error"])}
            for _, r in latest.iterrows() if r["spec_hash"] not in finished]
    # missing: planned (method x seed of the dataset's grid) but never attempted
    for dataset, part in frame.groupby("dataset", sort=True):
        seeds = sorted({int(s) for s in part["seed"]})
        for method, runs in part.groupby("method", sort=True):
            have = {int(s) for s in runs["seed"]}
            rows += [{"family": runs["family"].iloc[0], "method": method, "dataset": dataset, "seed": s,
                      "status": "missing", "error": "no run recorded for this seed"} for s in seeds if s not in have]
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    order = table["family"].map(_family_order)
    return (table.assign(_o=order).sort_values(["_o", "method", "dataset", "seed", "status"], kind="stable")
            .drop(columns="_o").reset_index(drop=True))


def _ranking(long: pd.DataFrame, metrics: Mapping[str, Sequence[str]], rank: str) -> pd.DataFrame:
    columns = ["family", "method", "value", "datasets_ranked", "datasets_total"]
    if rank == "none" or long.empty:
        return pd.DataFrame(columns=columns)
    per: dict[tuple[str, str], list[float]] = {}
    total = 0
    for dataset, part in long.groupby("dataset", sort=True):
        if dataset not in metrics:
            continue
        part = part[(part["metric"] == metrics[dataset][0]) & (part["n"] > 0) & part["mean"].notna()]
        if part.empty:
            continue
        total += 1
        ranks = part["mean"].rank(ascending=not bool(part["higher_is_better"].iloc[0]), method="average")
        for (_, r), position in zip(part.iterrows(), ranks, strict=True):
            value = float(position) if rank == "mean-rank" else float(len(part) - position)
            per.setdefault((r["family"], r["method"]), []).append(value)
    families = dict(zip(long["method"], long["family"], strict=False))
    rows = []
    for method in sorted(set(long["method"])):
        values = per.get((families[method], method), [])
        value = (float(np.mean(values)) if values else float("nan")) if rank == "mean-rank" else float(sum(values))
        rows.append({"family": families[method], "method": method, "value": value,
                     "datasets_ranked": len(values), "datasets_total": total})
    return pd.DataFrame(rows, columns=columns)


def build_board(frame: pd.DataFrame, suite: str = "default", datasets: Sequence[str] | None = None,
                metrics: Sequence[str] | None = None, rank: str = "mean-rank", group: bool = False,
                allow_mixed_data: bool = False, allow_mixed_metrics: bool = False,
                latest_data: bool = False, predictions: Mapping[str, Any] | None = None,
                view: str = "default") -> Board:
    """The pure core: a runs frame (from MLflow or a stored export) -> a :class:`Board`.
    ``predictions`` (run_id -> stored predictions) enable the significance marks; ``view``
    picks the default runs or the tuned ones (``bench tune``; with a tuning-compute column)."""
    if rank not in RANKINGS:
        raise FuseBenchError(f"--rank must be one of {', '.join(RANKINGS)}, got {rank!r}.")
    compute = tuning_compute(frame) if view == "tuned" and not frame.empty else pd.DataFrame()
    frame = canonical(select_view(frame, view))
    if not frame.empty:
        frame = frame[frame["dataset"].notna()]
    known = sorted(set(frame["dataset"])) if not frame.empty else []
    if datasets:
        unknown = [d for d in datasets if d not in known]
        if unknown:
            raise FuseBenchError(f"No runs for dataset(s) {unknown} in suite {suite!r}; it has: "
                                 f"{', '.join(known) or 'none'}.")
    wanted = list(datasets) if datasets else known
    done = finished_runs(frame, allow_mixed_data, allow_mixed_metrics, latest_data)
    if not done.empty:
        done = done[done["dataset"].isin(wanted)]
    chosen = select_metrics(done, wanted, metrics) if not done.empty else {}
    rows = []
    if not frame.empty:
        shown = frame[frame["dataset"].isin(wanted)]
        for (dataset, method), attempts in shown.groupby(["dataset", "method"], sort=True):
            planned = len({int(s) for s in frame.loc[frame["dataset"] == dataset, "seed"]})
            group_done = done[(done["dataset"] == dataset) & (done["method"] == method)] if not done.empty else done
            ref = group_done if not group_done.empty else attempts
            for metric in chosen.get(dataset, [str(attempts["primary_metric"].dropna().iloc[-1])
                                               if attempts["primary_metric"].notna().any() else "?"]):
                col = TEST.key(metric)
                mean, std, n = _stats(group_done[col]) if col in group_done else (float("nan"), float("nan"), 0)
                undefined = int(group_done[col].isna().sum()) if col in group_done else 0
                interval = t_interval(pd.to_numeric(group_done[col], errors="coerce").dropna()) \
                    if col in group_done and n > 1 and not undefined else None
                if undefined:  # a seed's value is undefined (e.g. corr of a constant prediction): so is the mean
                    mean, std, n = float("nan"), float("nan"), n + undefined
                rows.append({
                    "family": ref["family"].iloc[0], "method": method, "dataset": dataset, "metric": metric,
                    "higher_is_better": bool(ref["higher_is_better"].iloc[0]), "mean": mean, "std": std, "n": n,
                    "ci_low": interval[0] if interval else float("nan"),
                    "ci_high": interval[1] if interval else float("nan"),
                    "planned": planned, "undefined": undefined,
                    "seeds": ",".join(str(int(s)) for s in sorted(group_done["seed"])),
                    "params": _stats(group_done.get(INFO.key("params"), pd.Series(dtype=float)))[0],
                    "train_time_s": _stats(group_done.get(INFO.key("train_time_s"), pd.Series(dtype=float)))[0],
                    "peak_memory_mb": _stats(group_done.get(INFO.key("peak_memory_mb"), pd.Series(dtype=float)))[0],
                })
    long = pd.DataFrame(rows, columns=["family", "method", "dataset", "metric", "higher_is_better", "mean", "std",
                                       "n", "ci_low", "ci_high", "planned", "undefined", "seeds", "params",
                                       "train_time_s", "peak_memory_mb"])
    analysis = _analysis_long(done, wanted, chosen) if not done.empty else pd.DataFrame()
    failures = _failures(frame, wanted) if not frame.empty else pd.DataFrame(
        columns=["family", "method", "dataset", "seed", "status", "error"])
    ranking = _ranking(long, chosen, rank)
    searched = done.drop(columns=["lr", "weight_decay"]) if view == "tuned" else done  # tuned per method
    provenance = _provenance(suite, frame, searched, failures, chosen, rank) if not done.empty else {"suite": suite}
    comparisons = compare(done, long, chosen, predictions) if not done.empty else Comparisons()
    if not compute.empty:
        compute = compute[compute["dataset"].isin(wanted)].reset_index(drop=True)
    return Board(suite, long, ranking, analysis, failures, provenance, rank, group, chosen, comparisons, view, compute)


# -- display tables ------------------------------------------------------------------------------

UNDEFINED_CELL = "— (undefined)"
UNDEFINED_NOTE = ("— (undefined): the metric is undefined for at least one seed, e.g. the Pearson correlation of a "
                  "constant prediction (as MMSA reports it); such cells are not averaged over the other seeds and "
                  "not ranked")


TIED_MARK = " ≈"


def _main_cell(mean: float, half: float, n: int, planned: int, tied: bool = False) -> str:
    """'mean ± half-width of the 95% t interval' (no spread for one seed), ' ≈' when not
    significantly different from the column's best."""
    if n == 0:
        return f"no result (0/{planned} seeds)"
    if math.isnan(mean):
        return UNDEFINED_CELL
    cell = f"{mean:.4f}" if n == 1 or math.isnan(half) else f"{mean:.4f} ± {half:.4f}"
    cell += TIED_MARK if tied else ""
    if n < planned:
        return cell + f" ({n}/{planned} seeds)"
    return cell + (" (n=1)" if n == 1 else "")


def wide_table(board: Board) -> pd.DataFrame:
    """Methods as rows (grouped by family unless ``board.group`` is off), one column per shown
    dataset x metric with 'mean ± std' cells, then params, train time and the rank column."""
    long = board.long
    if long.empty:
        return pd.DataFrame()
    tests = board.comparisons.datasets

    def tied(method: str, dataset: str, metric: str) -> bool:
        test = tests.get(dataset)
        return bool(test and test.metric == metric and test.tied(method))

    long = long.assign(cell=[_main_cell(r.mean, (r.ci_high - r.ci_low) / 2, int(r.n), int(r.planned),
                                        tied(r.method, r.dataset, r.metric))
                             for r in long.itertuples(index=False)])
    headers, order = {}, []
    for dataset in sorted(set(long["dataset"])):
        for metric in board.metrics.get(dataset) or sorted(set(long.loc[long["dataset"] == dataset, "metric"])):
            part = long[(long["dataset"] == dataset) & (long["metric"] == metric)]
            if part.empty:
                continue
            title = f"{dataset} ({metric} {_arrow(bool(part['higher_is_better'].iloc[0]))})"
            headers[(dataset, metric)] = title
            order.append(title)
    long = long[[(d, m) in headers for d, m in zip(long["dataset"], long["metric"], strict=True)]]
    long = long.assign(column=[headers[(d, m)] for d, m in zip(long["dataset"], long["metric"], strict=True)])
    table = long.pivot_table(index=["family", "method"], columns="column", values="cell", aggfunc="first")
    table = table.reindex(columns=order)
    table.columns.name = None
    extra = long.groupby(["family", "method"]).agg(params=("params", "mean"), train_s=("train_time_s", "mean"))
    table = table.join(extra).reset_index()
    table["params"] = table["params"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
    table["train_s"] = table["train_s"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    if not board.compute.empty:
        table[COMPUTE_TITLE] = table["method"].map(compute_cells(board.compute))
    sort_key = [0] * len(table)
    if board.rank != "none" and not board.ranking.empty:
        values = dict(zip(board.ranking["method"], board.ranking["value"], strict=True))
        counts = dict(zip(board.ranking["method"], board.ranking["datasets_ranked"], strict=True))
        total = int(board.ranking["datasets_total"].max())
        title = RANK_DEFINITIONS[board.rank][0]

        def show(method: str) -> str:
            value = values.get(method, float("nan"))
            if counts.get(method, 0) == 0:
                return "—"
            text = f"{value:.2f}" if board.rank == "mean-rank" else f"{value:g}"
            return text + ("" if counts[method] == total else f" ({counts[method]}/{total})")

        table[title] = table["method"].map(show)
        sign = 1 if board.rank == "mean-rank" else -1
        sort_key = [sign * values.get(m, float("nan")) if counts.get(m, 0) else float("inf") for m in table["method"]]
    table = table.assign(_fam=table["family"].map(_family_order), _rank=sort_key)
    keys = ["_fam", "method"] if board.group else ["_rank", "_fam", "method"]
    table = table.sort_values(keys, kind="stable").drop(columns=["_fam", "_rank"]).reset_index(drop=True)
    table = table.rename(columns={"family": "Family", "method": "Method", "params": "Params",
                                  "train_s": "Train s (mean)"})
    return table.fillna("—")


COMPUTE_TITLE = "Tuning compute"
COMPUTE_NOTE = ("Tuning compute: the search behind the method's tuned cells, over the shown datasets: trials × mean "
                "trial wall time = summed trial wall seconds (trials train on the tuning seed without stress tests "
                "or EMAP; the same number of trials for every method)")


def compute_cells(compute: pd.DataFrame) -> dict[str, str]:
    """method -> 'trials × mean s = total s' summed over the datasets of ``compute``."""
    out = {}
    for method, part in compute.groupby("method", sort=True):
        trials, seconds = int(part["trials"].sum()), float(part["trial_seconds"].sum())
        out[method] = f"{trials} × {seconds / trials:.1f} s = {seconds:.0f} s" if trials else "—"
    return out


def best_cells(board: Board, table: pd.DataFrame) -> set[tuple[int, str]]:
    """(row, column) of each dataset column's best mean (direction respected; ties all bold)."""
    long = board.long
    out: set[tuple[int, str]] = set()
    if long.empty or table.empty:
        return out
    for (dataset, metric), part in long.groupby(["dataset", "metric"], sort=False):
        part = part[part["n"] > 0].dropna(subset=["mean"])
        title = f"{dataset} ({metric} {_arrow(bool(part['higher_is_better'].iloc[0]))})" if not part.empty else None
        if title not in table.columns:
            continue
        higher = bool(part["higher_is_better"].iloc[0])
        best = part["mean"].max() if higher else part["mean"].min()
        winners = set(part.loc[np.isclose(part["mean"], best, rtol=0, atol=1e-12), "method"])
        for i, method in enumerate(table["Method"]):
            if method in winners:
                out.add((i, title))
    return out


def analysis_display(board: Board) -> pd.DataFrame:
    return _analysis_cells(board.analysis)


def failures_display(board: Board, width: int | None = 160) -> pd.DataFrame:
    if board.failures.empty:
        return pd.DataFrame()
    errors = [" ".join(str(e).split()) for e in board.failures["error"]]
    if width:
        errors = [e if len(e) <= width else e[:width - 1] + "…" for e in errors]
    return pd.DataFrame({"Family": board.failures["family"], "Method": board.failures["method"],
                         "Dataset": board.failures["dataset"], "Seed": board.failures["seed"].astype(str),
                         "Status": board.failures["status"], "Error": errors})


def footer_items(board: Board) -> list[str]:
    """The provenance footer, one item per fact (joined per format)."""
    p = board.provenance
    if "seeds" not in p:
        return [f"Suite {board.suite} · no finished runs"]
    versions = "; ".join(f"{k} {', '.join(v)}" for k, v in p["versions"].items())
    hashes = ", ".join(f"{d}={'/'.join(h)}" for d, h in p["data_hashes"].items())
    variants = "; ".join(f"{d}: {' | '.join(v)}" for d, v in p["metric_variants"].items())
    return [
        f"Suite {p['suite']}",
        f"{p['finished_runs']} finished runs of {p['attempted_runs']} recorded "
        f"({p['failed_or_missing']} failed or missing)",
        f"seeds {p['seeds']}",
        f"budget {'; '.join(p['budget'])}",
        f"versions: {versions}",
        f"torch {', '.join(p['torch']) or 'unknown'}",
        f"git {', '.join(p['git_sha']) or 'unknown'}",
        f"data hashes: {hashes}",
        f"metrics: {variants}",
        CELLS_NOTE + _significance_note(board),
    ] + ([UNDEFINED_NOTE] if "undefined" in board.long and (board.long["undefined"] > 0).any() else []) \
      + ([tuned_note(board.compute), COMPUTE_NOTE] if board.view == "tuned" else []) \
      + [f"Warning: {w}" for w in board.comparisons.warnings]


def tuned_note(compute: pd.DataFrame, budget_shown: bool = True) -> str:
    """What a tuned cell is, with the number of trials of the searches shown."""
    counts = sorted({int(n) for n in compute.get("n_trials", pd.Series(dtype=float)).dropna()})
    trials = " or ".join(str(n) for n in counts) if counts else "the same number of"
    return (f"Tuned: each method's configuration chosen from {trials} trials per dataset (bench tune; the same "
            "number for every method and baseline, trial 0 = the defaults, learning rate and weight decay "
            "searched with the method's own hyper-parameters), selected on the validation primary metric only and "
            "retrained on the seeds above" + ("; the budget above omits the searched lr and weight_decay"
                                              if budget_shown else ""))


CELLS_NOTE = ("Cells: test-split metric, mean over seeds ± half-width of its 95% t interval over seeds (Student t, "
              "n − 1 df; n/planned seeds where some did not finish; one seed: no interval); bold: the best mean "
              "of the column")


def _significance_note(board: Board) -> str:
    tested = sorted(d for d, c in board.comparisons.datasets.items() if c.results)
    skipped = sorted(f"{d} ({c.skipped})" for d, c in board.comparisons.datasets.items() if c.skipped)
    note = ""
    if tested:
        note += (f"; ≈: not significantly different from the best ({', '.join(tested)}: approximate randomization "
                 "test of the difference of means over seeds, paired over seeds and test samples, Holm-corrected "
                 "over the column, α = 0.05; unmarked: significantly worse)")
    if skipped:
        note += f"; no significance test for {', '.join(skipped)}"
    return note


ANALYSIS_NOTE = (
    "Shown metric, mean ± std over seeds (the spread of the trained models; the main table gives intervals). "
    "Units and direction: Clean, EMAP, Missing (mean) and Relative "
    "rob. are scores of the row's metric, in its units and direction (↑ higher is better; ↓ lower is better, "
    "e.g. MAE: an error), so compare them within a row's metric only; EMAP gap and Effective rob. are "
    "oriented for every metric so that > 0 means 'uses cross-modal interactions' and 'degrades more "
    "gracefully than late fusion'. EMAP: score of the model's empirical multimodally-additive projection; "
    "EMAP gap: how much worse that is than the model; \"MC se\" marks a Monte-Carlo EMAP (too many "
    "modalities or samples for the exact grid) and gives the Monte-Carlo standard error of the seed mean, "
    "which applies to the EMAP score too (common random numbers: exactly 0 for additive models). "
    "Missing (mean): mean score over every removed-modality subset. Relative rob.: the mean score over the "
    "noise levels (area under the score-vs-level curve, noise on all modalities, clean at level 0, divided "
    "by the level range). "
    f"Effective rob.: MultiBench ER against {REFERENCE_METHOD} of the same dataset and seed. See docs/stress.md."
)
FAILURES_NOTE = ("Runs that did not finish (latest attempt per spec: failed, diverged, killed, still running) "
                 "and planned seeds with no run at all; they are left out of the means above.")


def across_display(board: Board) -> tuple[pd.DataFrame, str]:
    """The across-datasets comparison: average ranks (Friedman) and Nemenyi's critical difference."""
    result = board.comparisons.friedman
    if result is None:
        return pd.DataFrame(), "Needs at least two methods scored on the same datasets."
    if not result.applicable:
        return pd.DataFrame(), f"Not applicable: {result.reason}."
    cd = board.comparisons.cd
    ranks = sorted(result.avg_ranks.items(), key=lambda item: (item[1], item[0]))
    best = ranks[0][1]
    table = pd.DataFrame({"Method": [m for m, _ in ranks], "Average rank": [f"{r:.2f}" for _, r in ranks],
                          "Within CD of the best": ["yes" if r - best < cd else "no" for _, r in ranks]})
    groups = "; ".join("{" + ", ".join(g) + "}" for g in board.comparisons.groups) or "none"
    note = (f"Average rank per method over {result.n} datasets (1 = best; each dataset's shown metric, direction "
            f"respected). Friedman: chi²_F = {result.chi2:.2f} (p = {result.chi2_p:.3g}), Iman–Davenport "
            f"F_F = {result.iman_davenport:.2f} (p = {result.iman_davenport_p:.3g}). Nemenyi critical difference "
            f"at α = 0.05 for k = {result.k} methods and N = {result.n} datasets: CD = {cd:.2f} ranks; methods "
            f"whose average ranks differ by less than CD are not significantly different. Groups not "
            f"significantly different: {groups}. " + " ".join(f"Note: {n}." for n in result.notes)
            + " `bench plot cd` draws the critical-difference diagram; docs/statistics.md.")
    return table, note.strip()


def _sections(board: Board) -> list[tuple[str, pd.DataFrame, str]]:
    """(title, display table, note) of every table after the main one."""
    out = []
    if board.comparisons.friedman is not None:
        table, note = across_display(board)
        out.append(("Across datasets", table, note))
    analysis = analysis_display(board)
    if not analysis.empty:
        out.append(("Interactions and robustness", analysis, ANALYSIS_NOTE))
    failures = failures_display(board)
    out.append(("Failed or missing runs", failures, FAILURES_NOTE if not failures.empty else
                "None: every planned run finished."))
    return out


def _rank_note(board: Board) -> str:
    return "" if board.rank == "none" else RANK_DEFINITIONS[board.rank][1]


_MD_SPECIAL = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "\n": " ", "\r": " ", "`": "\\`"})


def markdown_escape(text: Any) -> str:
    """Text as literal Markdown: a name with '|' or a newline cannot break a table, '<script>'
    is not emitted as HTML, '[...](...)' is not a link and '`' opens no code span."""
    return str(text).translate(_MD_SPECIAL).replace("](", "]\\(")


def _markdown_table(table: pd.DataFrame, bold: set[tuple[int, str]] = frozenset()) -> str:
    cells = table.copy()
    for column in cells.columns:
        cells[column] = [("**" + markdown_escape(v) + "**") if (i, column) in bold else markdown_escape(v)
                         for i, v in enumerate(cells[column])]
    cells.columns = [markdown_escape(c) for c in cells.columns]
    return tabulate(cells, headers="keys", tablefmt="github", showindex=False, disable_numparse=True)


def to_markdown(board: Board) -> str:
    main = wide_table(board)
    md = _markdown_table
    text = md(main, best_cells(board, main)) + "\n\n" + markdown_escape(" · ".join(footer_items(board)) + ".") + "\n"
    if _rank_note(board):
        text += "\n" + _rank_note(board) + "\n"
    for title, table, note in _sections(board):
        text += f"\n### {title}\n\n" + (md(table) + "\n\n" if not table.empty else "") + markdown_escape(note) + "\n"
    return text


LATEX_SYMBOLS = {"±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "—": "---", "…": r"\ldots{}",
                 "·": r"\textperiodcentered{}"}
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "`": ""}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for symbol, macro in LATEX_SYMBOLS.items():
        out = out.replace(symbol, macro)
    return out


_BOLD_OPEN, _BOLD_CLOSE = "\x02", "\x03"  # survive tabulate's escaping, become \textbf{...} after it


def _latex_table(table: pd.DataFrame, caption: str, bold: set[tuple[int, str]] = frozenset()) -> str:
    # tabulate's latex_booktabs escapes & % $ # _ { } ^ ~ \ in headers and cells; the Unicode
    # symbols are replaced by math macros afterwards.
    cells = table.copy()
    for column in cells.columns:
        cells[column] = [f"{_BOLD_OPEN}{' '.join(str(v).splitlines())}{_BOLD_CLOSE}" if (i, column) in bold
                         else " ".join(str(v).splitlines()) for i, v in enumerate(cells[column])]
    body = tabulate(cells, headers="keys", tablefmt="latex_booktabs", showindex=False, disable_numparse=True)
    body = body.replace(_BOLD_OPEN, "\\textbf{").replace(_BOLD_CLOSE, "}")
    for symbol, macro in LATEX_SYMBOLS.items():
        body = body.replace(symbol, macro)
    return ("\\begin{table}[ht]\n\\centering\n\\small\n" + f"\\caption{{{latex_escape(caption)}}}\n"
            + "\\resizebox{\\linewidth}{!}{%\n" + body + "}\n\\end{table}\n")


def to_latex(board: Board) -> str:
    main = wide_table(board)
    footer = latex_escape(" · ".join(footer_items(board)) + ".")
    out = ["% FuseBench leaderboard; needs \\usepackage{booktabs} and \\usepackage{graphicx}.",
           _latex_table(main, f"FuseBench leaderboard, suite {board.suite}", best_cells(board, main)),
           "\\noindent{\\footnotesize " + footer + "}\n"]
    if _rank_note(board):
        out.append("\\noindent{\\footnotesize " + latex_escape(_rank_note(board)) + "}\n")
    for title, table, note in _sections(board):
        if not table.empty:
            out.append(_latex_table(table, title))
        out.append("\\noindent{\\footnotesize " + latex_escape(f"{title}: {note}") + "}\n")
    return "\n".join(out)


HTML_STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;user-select:none}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
tr:hover td{background:#fafafa}.note{font-size:12px;color:#555;max-width:70em}"""
HTML_SCRIPT = """document.querySelectorAll("table.sortable th").forEach(function(th){
th.addEventListener("click",function(){var table=th.closest("table"),body=table.tBodies[0];
var i=Array.prototype.indexOf.call(th.parentNode.children,th),asc=!th.classList.contains("asc");
table.querySelectorAll("th").forEach(function(h){h.classList.remove("asc","desc")});
th.classList.add(asc?"asc":"desc");
function key(tr){var t=tr.children[i].textContent.trim(),n=parseFloat(t.replace(/,/g,""));return isNaN(n)?t:n}
Array.from(body.rows).sort(function(a,b){var x=key(a),y=key(b);
var c=(typeof x==="number"&&typeof y==="number")?x-y:String(x).localeCompare(String(y));return asc?c:-c})
.forEach(function(tr){body.appendChild(tr)})})});"""


def _html_table(table: pd.DataFrame, bold: set[tuple[int, str]] = frozenset()) -> str:
    head = "".join(f"<th>{_html.escape(str(c))}</th>" for c in table.columns)

    def cell(i: int, column: str, value: Any) -> str:
        text = _html.escape(str(value))
        return f"<td><strong>{text}</strong></td>" if (i, column) in bold else f"<td>{text}</td>"

    rows = "\n".join("<tr>" + "".join(cell(i, c, v) for c, v in zip(table.columns, row, strict=True)) + "</tr>"
                     for i, row in enumerate(table.itertuples(index=False)))
    return f'<table class="sortable">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>\n'


def _main_html(board: Board) -> str:
    main = wide_table(board)
    return _html_table(main, best_cells(board, main))


def to_html(board: Board) -> str:
    esc = _html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>FuseBench leaderboard: {esc(board.suite)}</title>", f"<style>\n{HTML_STYLE}\n</style>",
             "</head>", "<body>", f"<h1>FuseBench leaderboard: {esc(board.suite)}</h1>",
             "<p class=\"note\">Click a column header to sort.</p>", _main_html(board),
             '<p class="note">' + esc(" · ".join(footer_items(board)) + ".") + "</p>"]
    if _rank_note(board):
        parts.append('<p class="note">' + esc(_rank_note(board)) + "</p>")
    for title, table, note in _sections(board):
        parts.append(f"<h2>{esc(title)}</h2>")
        if not table.empty:
            parts.append(_html_table(table))
        parts.append('<p class="note">' + esc(note) + "</p>")
    parts += [f"<script>\n{HTML_SCRIPT}\n</script>", "</body>", "</html>", ""]
    return "\n".join(parts)


def results_table(board: Board) -> pd.DataFrame:
    """The long numeric table behind CSV/JSON: one row per family x method x dataset x metric,
    with the analysis columns (first shown metric of the dataset) and the per-method rank."""
    long = board.long.copy()
    if not board.analysis.empty:
        keep = [c for c in board.analysis.columns if c.endswith(("_mean", "_std", "_n"))]
        long = long.merge(board.analysis[["method", "dataset", "metric", *keep]], how="left",
                          on=["method", "dataset", "metric"])
    if not board.ranking.empty:
        name = board.rank.replace("-", "_")
        long = long.merge(board.ranking[["method", "value"]].rename(columns={"value": name}), how="left", on="method")
    if not board.compute.empty:
        long = long.merge(board.compute[["dataset", "method", "trials", "trial_seconds"]], how="left",
                          on=["dataset", "method"])
    order = long["family"].map(_family_order)
    return (long.assign(_o=order).sort_values(["_o", "method", "dataset", "metric"], kind="stable")
            .drop(columns="_o").reset_index(drop=True))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula ('=cmd|...', '+1', '@SUM') gets a leading
    apostrophe (OWASP's CSV-injection rule); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(board: Board) -> str:
    buffer = io.StringIO()
    table = results_table(board)
    for column in table.columns:
        if not pd.api.types.is_numeric_dtype(table[column]):
            table[column] = table[column].map(csv_safe)
    table.to_csv(buffer, index=False, lineterminator="\n")
    footer = "".join(f"# {' '.join(str(csv_safe(item)).splitlines())}\n" for item in footer_items(board))
    return buffer.getvalue() + footer


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def to_json(board: Board) -> str:
    doc = {"provenance": board.provenance, "footer": footer_items(board),
           "ranking": {"method": board.rank, "definition": _rank_note(board), "rows": _records(board.ranking)},
           "results": _records(results_table(board)), "failures": _records(board.failures)}
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


RENDERERS = {"md": to_markdown, "latex": to_latex, "html": to_html, "csv": to_csv, "json": to_json}


def format_for(out: str | None, fmt: str | None) -> str:
    """--format wins; else the --out suffix; else Markdown."""
    if fmt:
        if fmt not in FORMATS:
            raise FuseBenchError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
        return fmt
    if out:
        from pathlib import Path

        suffix = Path(out).suffix.lower()
        if suffix in SUFFIX_FORMATS:
            return SUFFIX_FORMATS[suffix]
        raise FuseBenchError(f"Cannot tell the format of --out {out!r}; pass --format {'|'.join(FORMATS)}.")
    return "md"


# -- default and tuned side by side (--view both) ------------------------------------------------

@dataclass
class ViewComparison:
    """The default and the tuned leaderboard of one suite, side by side."""

    suite: str
    rows: pd.DataFrame     # method x dataset: both views' mean, interval, n and rank (numeric)
    taus: pd.DataFrame     # dataset ("across datasets" last), tau, p, methods
    compute: pd.DataFrame  # dataset, method, trials, trial_seconds, n_trials
    footer: list[str]


BOTH_CELLS_NOTE = ("Cells: test-split metric, mean over seeds ± half-width of its 95% t interval (as in the default "
                   "table); rank: 1 = best on the dataset among the methods with both a default and a tuned result "
                   "(ties share the average rank), default → tuned; mean rank over the datasets where the method is "
                   "ranked")


def _view_rank(part: pd.DataFrame, column: str) -> pd.Series:
    higher = bool(part["higher_is_better"].iloc[0])
    return part[column].rank(ascending=not higher, method="average")


def _kendall(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    from scipy.stats import kendalltau

    if len(x) < 2:
        return float("nan"), float("nan")
    result = kendalltau(x, y)
    return float(result.statistic), float(result.pvalue)


def compare_views(frame: pd.DataFrame, suite: str = "default", datasets: Sequence[str] | None = None,
                  metrics: Sequence[str] | None = None, allow_mixed_data: bool = False,
                  allow_mixed_metrics: bool = False, latest_data: bool = False, **_: Any) -> ViewComparison:
    """Both views of a runs frame on the datasets that have default and tuned runs: scores and
    ranks side by side, Kendall's tau between the two rankings per dataset and across datasets."""
    def known(view: str) -> set[str]:
        part = select_view(frame, view) if not frame.empty else frame
        return set(part.loc[part["status"] == "finished", "dataset"]) if not part.empty else set()

    tuned_sets, default_sets = known("tuned"), known("default")
    if not tuned_sets:
        raise FuseBenchError(f"No tuned runs in suite {suite!r}: run `bench tune` (same --suite) first, or use "
                             "--view default.")
    wanted = list(datasets) if datasets else sorted(tuned_sets & default_sets)
    missing = sorted(set(wanted) - (tuned_sets & default_sets))
    if missing or not wanted:
        which = f"dataset(s) {', '.join(missing)} lack one of them" if missing else "no dataset has both"
        raise FuseBenchError(
            f"--view both needs default and tuned runs of the same datasets, and {which} (finished default runs: "
            f"{', '.join(sorted(default_sets)) or 'none'}; tuned runs: {', '.join(sorted(tuned_sets))}). Run "
            "`bench run` and `bench tune` with the same --datasets and --suite, or pass --datasets.")
    options = {"datasets": wanted, "metrics": metrics, "rank": "none", "allow_mixed_data": allow_mixed_data,
               "allow_mixed_metrics": allow_mixed_metrics, "latest_data": latest_data}
    default, tuned = (build_board(frame, suite, view=view, **options) for view in ("default", "tuned"))
    keys = ["family", "method", "dataset", "metric", "higher_is_better"]
    values = ["mean", "ci_low", "ci_high", "n", "planned"]
    rows = default.long[keys + values].merge(tuned.long[keys + values], how="outer", on=keys,
                                             suffixes=("_default", "_tuned"))
    rows = rows[[m == (tuned.metrics.get(d) or [m])[0] for d, m in zip(rows["dataset"], rows["metric"], strict=True)]]
    rows = rows.assign(rank_default=np.nan, rank_tuned=np.nan).reset_index(drop=True)
    taus = []
    for dataset, part in rows.groupby("dataset", sort=True):
        common = part[(part["n_default"] > 0) & (part["n_tuned"] > 0)].dropna(subset=["mean_default", "mean_tuned"])
        if common.empty:
            continue
        rows.loc[common.index, "rank_default"] = _view_rank(common, "mean_default")
        rows.loc[common.index, "rank_tuned"] = _view_rank(common, "mean_tuned")
        tau, p = _kendall(rows.loc[common.index, "rank_default"], rows.loc[common.index, "rank_tuned"])
        taus.append({"dataset": dataset, "tau": tau, "p": p, "methods": len(common)})
    ranked = rows.dropna(subset=["rank_default"])
    everywhere = ranked.groupby("method").filter(lambda g: len(g) == ranked["dataset"].nunique())
    means = everywhere.groupby("method")[["rank_default", "rank_tuned"]].mean()
    if ranked["dataset"].nunique() > 1:
        tau, p = _kendall(means["rank_default"], means["rank_tuned"])
        taus.append({"dataset": "across datasets", "tau": tau, "p": p, "methods": len(means)})
    taus = pd.DataFrame(taus, columns=["dataset", "tau", "p", "methods"])
    p_d, p_t = default.provenance, tuned.provenance
    footer = [f"Suite {suite}",
              (f"default: {p_d.get('finished_runs', 0)} finished runs, seeds {p_d.get('seeds', [])}, budget "
               f"{'; '.join(p_d.get('budget', []))}"),
              f"tuned: {p_t.get('finished_runs', 0)} finished runs, seeds {p_t.get('seeds', [])}",
              tuned_note(tuned.compute, budget_shown=False), BOTH_CELLS_NOTE, kendall_note(taus), COMPUTE_NOTE]
    return ViewComparison(suite, rows, taus, tuned.compute, footer)


def kendall_note(taus: pd.DataFrame) -> str:
    parts = []
    for r in taus.itertuples(index=False):
        where = (f"across datasets (mean ranks of the {r.methods} methods ranked on every shown dataset)"
                 if r.dataset == "across datasets" else f"{r.dataset} ({r.methods} methods)")
        value = "undefined" if math.isnan(r.tau) else f"τ = {r.tau:.2f} (p = {r.p:.3g})"
        parts.append(f"{where}: {value}")
    return ("Kendall's τ between the default and the tuned ranking (τ_b, scipy.stats.kendalltau; 1 = the same order, "
            "p: two-sided test of no association): " + ("; ".join(parts) or "no dataset ranks two methods in both"))


def _rank_text(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:g}"


def both_table(comparison: ViewComparison) -> pd.DataFrame:
    """Display rows: per dataset the default score, the tuned score and 'rank default → tuned';
    then the mean ranks and the tuning compute; sorted by the tuned mean rank."""
    rows = comparison.rows
    if rows.empty:
        return pd.DataFrame()
    compute = compute_cells(comparison.compute) if not comparison.compute.empty else {}
    titles = {}
    for (dataset, metric), part in rows.groupby(["dataset", "metric"], sort=True):
        titles[(dataset, metric)] = f"{dataset} ({metric} {_arrow(bool(part['higher_is_better'].iloc[0]))})"
    table = []
    for (family, method), part in rows.groupby(["family", "method"], sort=False):
        row = {"Family": family, "Method": method}
        for r in part.itertuples(index=False):
            title = titles[(r.dataset, r.metric)]
            for view in ("default", "tuned"):
                mean = getattr(r, f"mean_{view}")
                low, high = getattr(r, f"ci_low_{view}"), getattr(r, f"ci_high_{view}")
                n, planned = getattr(r, f"n_{view}"), getattr(r, f"planned_{view}")
                row[f"{title} {view}"] = ("—" if pd.isna(n) else
                                          _main_cell(mean, (high - low) / 2, int(n), int(planned)))
            row[f"{title} rank"] = f"{_rank_text(r.rank_default)} → {_rank_text(r.rank_tuned)}"
        ranked = part.dropna(subset=["rank_default"])
        row["Mean rank default"] = f"{ranked['rank_default'].mean():.2f}" if not ranked.empty else "—"
        row["Mean rank tuned"] = f"{ranked['rank_tuned'].mean():.2f}" if not ranked.empty else "—"
        row[COMPUTE_TITLE] = compute.get(method, "—")
        row["_key"] = ranked["rank_tuned"].mean() if not ranked.empty else float("inf")
        table.append(row)
    order = [f"{t} {c}" for t in titles.values() for c in ("default", "tuned", "rank")]
    table = pd.DataFrame(table).sort_values(["_key", "Method"], kind="stable").drop(columns="_key")
    columns = ["Family", "Method", *order, "Mean rank default", "Mean rank tuned", COMPUTE_TITLE]
    return table.reindex(columns=columns).fillna("—").reset_index(drop=True)


def both_long(comparison: ViewComparison) -> pd.DataFrame:
    """The numeric table behind --view both in CSV/JSON."""
    long = comparison.rows.copy()
    if not comparison.compute.empty:
        long = long.merge(comparison.compute[["dataset", "method", "trials", "trial_seconds", "n_trials"]],
                          how="left", on=["dataset", "method"])
    order = long["family"].map(_family_order)
    return (long.assign(_o=order).sort_values(["_o", "method", "dataset"], kind="stable").drop(columns="_o")
            .reset_index(drop=True))


def render_both(frame: pd.DataFrame, fmt: str = "md", suite: str = "default", **options: Any) -> str:
    """``bench leaderboard --view both`` in one format."""
    comparison = compare_views(frame, suite, **options)
    table = both_table(comparison)
    footer = " · ".join(comparison.footer) + "."
    title = f"FuseBench default vs tuned: {suite}"
    if fmt == "md":
        return _markdown_table(table) + "\n\n" + markdown_escape(footer) + "\n"
    if fmt == "latex":
        return ("% FuseBench default vs tuned; needs \\usepackage{booktabs} and \\usepackage{graphicx}.\n"
                + _latex_table(table, title) + "\n\\noindent{\\footnotesize " + latex_escape(footer) + "}\n")
    if fmt == "html":
        esc = _html.escape
        return "\n".join(["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
                          f"<title>{esc(title)}</title>", f"<style>\n{HTML_STYLE}\n</style>", "</head>", "<body>",
                          f"<h1>{esc(title)}</h1>", _html_table(table), f'<p class="note">{esc(footer)}</p>',
                          f"<script>\n{HTML_SCRIPT}\n</script>", "</body>", "</html>", ""])
    long = both_long(comparison)
    if fmt == "csv":
        for column in long.columns:
            if not pd.api.types.is_numeric_dtype(long[column]):
                long[column] = long[column].map(csv_safe)
        buffer = io.StringIO()
        long.to_csv(buffer, index=False, lineterminator="\n")
        return buffer.getvalue() + "".join(f"# {' '.join(str(csv_safe(i)).splitlines())}\n" for i in comparison.footer)
    doc = {"view": "both", "suite": suite, "footer": comparison.footer, "kendall": _records(comparison.taus),
           "results": _records(long)}
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def render(frame: pd.DataFrame, fmt: str = "md", suite: str = "default", **options: Any) -> str:
    """Render a runs frame (from MLflow or a stored export) in one format; ``view`` (default,
    tuned, both) picks which runs (docs/tuning.md)."""
    view = options.pop("view", "default")
    if view not in VIEWS:
        raise FuseBenchError(f"--view must be one of {', '.join(VIEWS)}, got {view!r}.")
    if view == "both":
        return render_both(frame, fmt, suite, **options)
    board = build_board(frame, suite, view=view, **options)
    if board.long.empty or board.long["n"].sum() == 0 and board.failures.empty:
        if view == "tuned":
            return f"No tuned runs in suite {suite!r}. Run `bench tune` first.\n"
        return f"No finished runs in suite {suite!r}. Run `bench run` first.\n"
    return RENDERERS[fmt](board)


def render_markdown(tracker: Tracker, datasets: Sequence[str] | None = None, allow_mixed_data: bool = False,
                    **options: Any) -> str:
    """The Markdown leaderboard of a suite, read from MLflow (with its stored predictions)."""
    from benchmark_core.predictions import finished_run_ids, load

    frame = runs_frame(tracker)
    options.setdefault("predictions", load(tracker, finished_run_ids(frame)) or None)
    if frame.empty or not (frame["status"] == "finished").any():
        return f"No finished runs in suite {tracker.suite!r} at {tracker.uri}. Run `bench run` first.\n"
    return render(frame, "md", tracker.suite, datasets=datasets, allow_mixed_data=allow_mixed_data, **options)
