"""The leaderboard: a pure function of what MLflow holds.

Runs -> one pandas row per child run -> mean ± std over seeds per method x dataset (each
dataset's primary metric on the test split), grouped by fusion family -> tabulate.  A second
table puts each method next to its EMAP projection and its robustness (stress grid):
effective robustness is cross-run (against the late-fusion run of the same dataset and
seed), so it is computed here rather than by the run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tabulate import tabulate

from .errors import FuseBenchError
from .robustness import effective_robustness
from .specs import KNOWN_FAMILIES
from .stress import HEADLINE, key_target, parse_stress_key
from .tracking import TAG, Tracker

# The effective-robustness reference (MultiBench): late fusion of the same dataset and seed.
REFERENCE_METHOD = "late"


def runs_frame(tracker: Tracker) -> pd.DataFrame:
    """One row per child run: identity tags, status, and every logged metric."""
    rows = []
    for run in tracker.child_runs():
        tags, params = run.data.tags, run.data.params
        row = {
            "run_id": run.info.run_id,
            "status": tags.get(f"{TAG}.status", run.info.status.lower()),
            "mlflow_status": run.info.status,
            "method": tags.get(f"{TAG}.method"),
            "dataset": tags.get(f"{TAG}.dataset"),
            "seed": int(tags.get(f"{TAG}.seed", -1)),
            "family": tags.get(f"{TAG}.family", ""),
            "spec_hash": tags.get(f"{TAG}.spec_hash"),
            "data_hash": tags.get(f"{TAG}.data_hash"),
            "primary_metric": tags.get(f"{TAG}.primary_metric"),
            "higher_is_better": tags.get(f"{TAG}.higher_is_better", "True") == "True",
            "metric_variants": tags.get(f"{TAG}.metric_variants", ""),
            "harness_version": tags.get(f"{TAG}.version.fusebench"),
            "epochs": params.get("budget.epochs"),
            "batch_size": params.get("budget.batch_size"),
            "lr": params.get("budget.lr"),
            "start_time": run.info.start_time,
            "error": tags.get(f"{TAG}.error"),
        }
        row.update(run.data.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def _family_order(family: str) -> tuple[int, str]:
    return (KNOWN_FAMILIES.index(family) if family in KNOWN_FAMILIES else len(KNOWN_FAMILIES), family)


def finished_runs(frame: pd.DataFrame, allow_mixed_data: bool = False) -> pd.DataFrame:
    """Latest finished run per spec_hash; refuses to mix data versions of one dataset."""
    if frame.empty:
        return frame
    done = frame[frame["status"] == "finished"].sort_values("start_time")
    done = done.drop_duplicates("spec_hash", keep="last")
    if not allow_mixed_data:
        hashes = done.groupby("dataset")["data_hash"].nunique()
        mixed = sorted(hashes[hashes > 1].index)
        if mixed:
            raise FuseBenchError(
                f"Results for dataset(s) {mixed} were computed on different data (several data "
                "content hashes). Re-run them on one version, use a separate --suite, or pass "
                "--allow-mixed-data to aggregate anyway."
            )
    return done


def aggregate(frame: pd.DataFrame, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table: family, method, dataset, metric, mean, std, n, params, train time."""
    if frame.empty:
        return pd.DataFrame(columns=["family", "method", "dataset", "metric", "mean", "std", "n"])
    rows = []
    for (dataset, method), group in frame.groupby(["dataset", "method"], sort=True):
        if datasets and dataset not in datasets:
            continue
        metric = group["primary_metric"].iloc[0]
        values = group[f"test/{metric}"].astype(float)
        rows.append({
            "family": group["family"].iloc[0], "method": method, "dataset": dataset, "metric": metric,
            "higher_is_better": bool(group["higher_is_better"].iloc[0]),
            "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else 0.0,
            "n": len(values), "seeds": ",".join(str(s) for s in sorted(group["seed"])),
            "params": group.get("info/params", pd.Series([float("nan")])).mean(),
            "train_time_s": group.get("info/train_time_s", pd.Series([float("nan")])).mean(),
        })
    return pd.DataFrame(rows)


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """Methods as rows (grouped by family), datasets as columns, 'mean ± std' cells."""
    if long.empty:
        return pd.DataFrame()
    long = long.assign(cell=[f"{m:.4f} ± {s:.4f}" + ("" if n > 1 else " (n=1)")
                             for m, s, n in zip(long["mean"], long["std"], long["n"], strict=True)])
    headers = {d: f"{d} ({g['metric'].iloc[0]} {'↑' if g['higher_is_better'].iloc[0] else '↓'})"
               for d, g in long.groupby("dataset")}
    table = long.pivot_table(index=["family", "method"], columns="dataset", values="cell", aggfunc="first")
    table = table.rename(columns=headers)
    extra = long.groupby(["family", "method"]).agg(params=("params", "mean"), train_s=("train_time_s", "mean"))
    table = table.join(extra).reset_index()
    table["params"] = table["params"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
    table["train_s"] = table["train_s"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    table = table.sort_values(["family", "method"], key=lambda col: col.map(_family_order) if col.name == "family" else col)
    return table.rename(columns={"family": "Family", "method": "Method", "params": "Params",
                                 "train_s": "Train s (mean)"}).fillna("—")


def headline_curve(row: pd.Series, metric: str) -> dict[float, float]:
    """level -> score of one run's headline stress curve (noise on all modalities), with the
    clean test score at level 0."""
    test, target = HEADLINE
    points = {}
    for key, value in row.items():
        parsed = parse_stress_key(key) if isinstance(key, str) else None
        if parsed and parsed[:2] == (test, key_target(target)) and parsed[3] == metric and pd.notna(value):
            points[parsed[2]] = float(value)
    if points and pd.notna(row.get(f"test/{metric}")):
        points[0.0] = float(row[f"test/{metric}"])
    return dict(sorted(points.items()))


def effective_robustness_per_run(frame: pd.DataFrame, reference: str = REFERENCE_METHOD) -> pd.Series:
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
        metric = row["primary_metric"]
        mine, theirs = headline_curve(row, metric), headline_curve(ref, metric)
        levels = sorted(set(mine) & set(theirs))
        if len(levels) > 1 and levels[0] == 0.0:
            values[index] = effective_robustness([mine[lv] for lv in levels], [theirs[lv] for lv in levels],
                                                 bool(row["higher_is_better"]))
    return values


# column title -> metric key template ({m}: the dataset's primary metric); None: computed here
ANALYSIS_COLUMNS: dict[str, str | None] = {
    "Clean": "test/{m}",
    "EMAP": "emap/{m}",
    "EMAP gap": "emap/gap/{m}",
    "Missing (mean)": "robustness/missing/mean/{m}",
    "Relative rob.": "robustness/relative/{m}",
    "Effective rob.": None,
}


def _cell(values: pd.Series) -> str:
    values = values.dropna().astype(float)
    if values.empty:
        return "—"
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def analysis_table(frame: pd.DataFrame, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per family x method x dataset: clean score, EMAP score and gap, mean
    missing-modality score, relative and effective robustness (primary metric, mean ± std
    over seeds).  Empty when no run logged EMAP or stress results."""
    analysed = any(isinstance(c, str) and c.startswith(("emap/", "robustness/")) for c in frame.columns)
    if frame.empty or not analysed:
        return pd.DataFrame()
    frame = frame.assign(_er=effective_robustness_per_run(frame))
    rows = []
    for (dataset, method), group in frame.groupby(["dataset", "method"], sort=True):
        if datasets and dataset not in datasets:
            continue
        metric = group["primary_metric"].iloc[0]
        row = {"Family": group["family"].iloc[0], "Method": method, "Dataset": dataset,
               "Metric": f"{metric} {'↑' if group['higher_is_better'].iloc[0] else '↓'}"}
        for title, template in ANALYSIS_COLUMNS.items():
            key = "_er" if template is None else template.format(m=metric)
            row[title] = _cell(group[key]) if key in group else "—"
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = table["Family"].map(_family_order)
    return table.assign(_order=order).sort_values(["_order", "Method", "Dataset"]).drop(columns="_order")


def render_markdown(tracker: Tracker, datasets: Sequence[str] | None = None, allow_mixed_data: bool = False) -> str:
    frame = runs_frame(tracker)
    done = finished_runs(frame, allow_mixed_data)
    long = aggregate(done, datasets)
    if long.empty:
        return f"No finished runs in suite {tracker.suite!r} at {tracker.uri}. Run `bench run` first.\n"
    table = wide_table(long)
    body = tabulate(table, headers="keys", tablefmt="github", showindex=False, disable_numparse=True)
    seeds = sorted({int(s) for s in done["seed"]})
    budgets = sorted({f"epochs={e}, batch={b}, lr={lr}" for e, b, lr in
                      zip(done["epochs"], done["batch_size"], done["lr"], strict=True)})
    hashes = ", ".join(f"{d}={h}" for d, h in sorted(set(zip(done["dataset"], done["data_hash"], strict=True))))
    footer = (
        f"\nSuite `{tracker.suite}` · {len(done)} finished runs · seeds {seeds} · budget "
        f"{'; '.join(budgets)} · fusebench {', '.join(sorted(set(map(str, done['harness_version']))))}"
        f" · data hashes: {hashes}. Cells: test-split primary metric, mean ± std over seeds.\n"
    )
    analysis = analysis_table(done, datasets)
    if not analysis.empty:
        footer += (
            "\n### Interactions and robustness\n\n"
            + tabulate(analysis, headers="keys", tablefmt="github", showindex=False, disable_numparse=True)
            + "\n\nPrimary metric, mean ± std over seeds. EMAP: score of the model's empirical "
            "multimodally-additive projection; EMAP gap: how much worse that is than the model "
            "(> 0: it uses cross-modal interactions). Missing (mean): mean score over every "
            "removed-modality subset. Relative rob.: area under the score-vs-noise-level curve "
            "(noise on all modalities, clean at level 0) over the level range. Effective rob.: "
            f"MultiBench ER against `{REFERENCE_METHOD}` of the same dataset and seed (> 0: degrades "
            "more gracefully). See docs/stress.md.\n"
        )
    return body + "\n" + footer
