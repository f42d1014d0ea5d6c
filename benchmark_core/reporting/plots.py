"""The figures of ``bench plot`` and ``bench publish``: robustness curves, score vs EMAP gap,
score vs training time, expected best score vs tuning trials; one panel per dataset.

Like the leaderboard, a pure function of a runs frame (from MLflow or a stored result); the
command line (:mod:`benchmark_core.cli.report`) reads the flags and picks the figure.  Heavy
imports (pandas, matplotlib with the non-interactive Agg backend) happen only when a plot is
drawn, so the CLI stays fast to start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def robustness_curves(frame: Any, test: str = "noise", target: str = "all", metric: str | None = None,
                      datasets: Sequence[str] | None = None) -> Any:
    """Long table (dataset, family, method, metric, higher_is_better, level, mean, std, n):
    each method's curve averaged over seeds, with the clean test score at level 0."""
    import pandas as pd

    from benchmark_core.record import TEST, is_missing, stress_points

    rows = []
    for _, run in frame.iterrows():
        if datasets and run["dataset"] not in datasets:
            continue
        name = metric or run["primary_metric"]
        points = {0.0: run.get(TEST.key(name)), **stress_points(run, test, target, name)}
        if len(points) < 2:
            continue
        for level, value in points.items():
            if not is_missing(value):
                rows.append({"dataset": run["dataset"], "family": run["family"], "method": run["method"],
                             "metric": name, "higher_is_better": bool(run["higher_is_better"]),
                             "level": level, "score": float(value)})
    columns = ["dataset", "family", "method", "metric", "higher_is_better", "level"]
    if not rows:
        return pd.DataFrame(columns=[*columns, "mean", "std", "n"])
    long = pd.DataFrame(rows)
    return (long.groupby(columns, sort=True)["score"]
            .agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else 0.0, n="count")
            .reset_index())


def _save_dataset_panels(frame: Any, out: str | Path, height: float, draw: Any, **savefig: Any) -> Path:
    """One panel per dataset of ``frame`` (up to three per row): ``draw(ax, part)`` plots that
    dataset's rows, then the panel gets its title, metric axis label and grid; the figure is
    written to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    datasets = sorted(frame["dataset"].unique())
    cols = min(3, len(datasets))
    rows = math.ceil(len(datasets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, height * rows), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        part = frame[frame["dataset"] == dataset]
        draw(ax, part)
        metric, higher = part["metric"].iloc[0], bool(part["higher_is_better"].iloc[0])
        ax.set_title(dataset)
        ax.set_ylabel(f"{metric} ({'higher' if higher else 'lower'} is better)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(datasets):]:
        ax.set_visible(False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, **savefig)
    plt.close(fig)
    return out


def draw_robustness(curves: Any, out: str | Path, test: str = "noise", target: str = "all") -> Path:
    """One panel per dataset, one line (mean over seeds, band = ± std) per method."""

    def draw(ax, part):
        for method, line in part.groupby("method", sort=True):
            line = line.sort_values("level")
            ax.plot(line["level"], line["mean"], marker="o", markersize=3, label=method)
            ax.fill_between(line["level"], line["mean"] - line["std"], line["mean"] + line["std"], alpha=0.15)
        ax.set_xlabel(f"{test} level ({target})" + (" × train std" if test == "noise" else ""))
        ax.legend(fontsize=7)

    return _save_dataset_panels(curves, out, 3.4, draw)


def method_points(frame: Any, x_key: str) -> Any:
    """Per dataset x method: mean over seeds of the primary metric (y) and of ``x_key``
    (``{m}`` is replaced by the primary metric)."""
    import pandas as pd

    rows = []
    for (dataset, method), group in frame.groupby(["dataset", "method"], sort=True):
        metric = group["primary_metric"].iloc[0]
        x_col, y_col = x_key.format(m=metric), f"test/{metric}"
        if x_col not in group or y_col not in group:
            continue
        x, y = group[x_col].astype(float).mean(), group[y_col].astype(float).mean()
        if pd.notna(x) and pd.notna(y):
            rows.append({"dataset": dataset, "method": method, "family": group["family"].iloc[0], "metric": metric,
                         "higher_is_better": bool(group["higher_is_better"].iloc[0]), "x": float(x), "y": float(y)})
    return pd.DataFrame(rows, columns=["dataset", "method", "family", "metric", "higher_is_better", "x", "y"])


def _scatter(points: Any, out: str | Path, xlabel: str, logx: bool = False) -> Path | None:
    if points.empty:
        return None

    def draw(ax, part):
        ax.scatter(part["x"], part["y"], s=18)
        for _, p in part.iterrows():
            ax.annotate(p["method"], (p["x"], p["y"]), fontsize=6, xytext=(2, 2), textcoords="offset points")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)

    return _save_dataset_panels(points, out, 3.6, draw,
                                metadata={"Software": None} if Path(out).suffix == ".png" else None)


def draw_score_vs_emap_gap(frame: Any, out: str | Path) -> Path | None:
    """Clean score vs EMAP gap (> 0: the model uses cross-modal interactions), per method."""
    return _scatter(method_points(frame, "emap/gap/{m}"), out, "EMAP gap (clean − additive projection)")


def draw_time_vs_score(frame: Any, out: str | Path) -> Path | None:
    """Clean score vs mean training time in seconds (log scale), per method."""
    return _scatter(method_points(frame, "info/train_time_s"), out, "training time, s (log)", logx=True)


def tuning_curves(frame: Any, datasets: Sequence[str] | None = None) -> Any:
    """Long table (dataset, family, method, metric, higher_is_better, n, expected): the expected
    best validation score after n = 1 .. N trials (Dodge et al. 2019) of each method's search
    shown in the tuned view (its newest study), from the stored trial scores."""
    import pandas as pd

    from benchmark_core.reporting.leaderboard import tuned_selection, view_of
    from benchmark_core.suite.tuning import expected_best_curve

    columns = ["dataset", "family", "method", "metric", "higher_is_better", "n", "expected"]
    if frame.empty or "view" not in frame:
        return pd.DataFrame(columns=columns)
    tuned = tuned_selection(frame)
    trials = frame[(view_of(frame) == "trial") & (frame["status"] == "finished")]
    trials = trials.sort_values("start_time", kind="stable").drop_duplicates("spec_hash", keep="last")
    rows = []
    for (dataset, method), part in tuned.groupby(["dataset", "method"], sort=True):
        if datasets and dataset not in datasets:
            continue
        study, n_trials = part["study"].iloc[0], int(part["n_trials"].iloc[0])
        metric, higher = str(part["primary_metric"].iloc[0]), bool(part["higher_is_better"].iloc[0])
        mine = trials[(trials["study"] == study) & (trials["trial"].astype(float) < n_trials)]
        scores = pd.to_numeric(mine.get(f"val/{metric}", pd.Series(dtype=float)), errors="coerce").dropna()
        for n, value in enumerate(expected_best_curve(list(scores), higher), start=1):
            rows.append({"dataset": dataset, "family": part["family"].iloc[0], "method": method,
                         "metric": f"validation {metric}", "higher_is_better": higher, "n": n, "expected": value})
    return pd.DataFrame(rows, columns=columns)


def draw_tuning(curves: Any, out: str | Path) -> Path:
    """One panel per dataset, one line per method: expected best validation score vs trials."""

    from matplotlib.ticker import MaxNLocator

    def draw(ax, part):
        for method, line in part.groupby("method", sort=True):
            ax.plot(line["n"], line["expected"], marker="o", markersize=3, label=method)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trials (n)")
        ax.legend(fontsize=6, ncol=2)

    return _save_dataset_panels(curves, out, 3.6, draw,
                                metadata={"Software": None} if Path(out).suffix == ".png" else None)
