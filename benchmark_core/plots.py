"""``bench plot robustness``: score-vs-severity curves per method, one panel per dataset.

Like the leaderboard, a pure function of what MLflow holds.  Heavy imports (pandas,
matplotlib with the non-interactive Agg backend) happen only when a plot is drawn, so the
CLI stays fast to start.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMATS = (".png", ".svg")


def add_plot_parser(sub: Any) -> None:
    """Register ``bench plot <figure>`` on the CLI's subparsers."""
    from .cli import _add_tracking

    plot = sub.add_parser("plot", help="draw figures from MLflow (needs matplotlib: pip install '.[plot]')")
    figures = plot.add_subparsers(dest="figure", required=True)
    rob = figures.add_parser("robustness", help="score vs noise level per method, one panel per dataset")
    rob.add_argument("--out", default="robustness.png", help="output file, .png or .svg (default: %(default)s)")
    rob.add_argument("--datasets", default=None, help="comma list of datasets (default: all with stress results)")
    rob.add_argument("--metric", default=None, help="metric to plot (default: each dataset's primary metric)")
    rob.add_argument("--test", default="noise", help="stress test whose levels form the x axis (default: noise)")
    rob.add_argument("--target", default="all", help="stressed modality, 'a+b' subset or 'all' (default: all)")
    rob.add_argument("--allow-mixed-data", action="store_true",
                     help="use runs even if a dataset's content hash differs between them")
    _add_tracking(rob)
    for name, text in (("emap", "clean score vs EMAP gap (cross-modal interaction use), one panel per dataset"),
                       ("time", "clean score vs mean training time, one panel per dataset")):
        fig = figures.add_parser(name, help=text)
        fig.add_argument("--out", default=f"{name}.png", help="output file, .png or .svg (default: %(default)s)")
        fig.add_argument("--allow-mixed-data", action="store_true",
                         help="use runs even if a dataset's content hash differs between them")
        _add_tracking(fig)
    cd = figures.add_parser("cd", help="critical-difference diagram: average ranks across datasets, Nemenyi CD")
    cd.add_argument("--out", default="critical_difference.png", help="output file, .png or .svg (default: %(default)s)")
    cd.add_argument("--from", dest="source", default=None, metavar="RUNS_JSON",
                    help="draw from a stored result (bench publish) instead of MLflow")
    cd.add_argument("--datasets", default=None, help="comma list of datasets (default: all)")
    _add_tracking(cd)
    tune = figures.add_parser("tuning", help="expected best validation score vs number of trials (bench tune), "
                                             "per method, one panel per dataset")
    tune.add_argument("--out", default="tuning.png", help="output file, .png or .svg (default: %(default)s)")
    tune.add_argument("--from", dest="source", default=None, metavar="RUNS_JSON",
                      help="draw from a stored result (bench publish --tuned) instead of MLflow")
    tune.add_argument("--datasets", default=None, help="comma list of datasets (default: all with tuned runs)")
    _add_tracking(tune)


def robustness_curves(frame: Any, test: str = "noise", target: str = "all", metric: str | None = None,
                      datasets: Sequence[str] | None = None) -> Any:
    """Long table (dataset, family, method, metric, higher_is_better, level, mean, std, n):
    each method's curve averaged over seeds, with the clean test score at level 0."""
    import pandas as pd

    from .robustness import key_target, parse_stress_key

    rows = []
    for _, run in frame.iterrows():
        if datasets and run["dataset"] not in datasets:
            continue
        name = metric or run["primary_metric"]
        points = {0.0: run.get(f"test/{name}")}
        for key, value in run.items():
            parsed = parse_stress_key(key) if isinstance(key, str) else None
            if parsed and parsed[:2] == (test, key_target(target)) and parsed[3] == name:
                points[parsed[2]] = value
        if len(points) < 2:
            continue
        for level, value in points.items():
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
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


def cmd_plot(args: argparse.Namespace) -> int:
    from .errors import FuseBenchError
    from .leaderboard import finished_runs, runs_frame, select_view
    from .tracking import Tracker

    if Path(args.out).suffix.lower() not in FORMATS:
        raise FuseBenchError(f"--out {args.out!r}: write a .png or .svg file.")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FuseBenchError("bench plot needs matplotlib: pip install 'fusebench[plot]'.") from None
    if args.figure == "cd":
        return _plot_cd(args)
    if args.figure == "tuning":
        return _plot_tuning(args)
    tracker = Tracker(args.tracking_uri, args.suite)
    if args.figure in ("emap", "time"):
        done = finished_runs(select_view(runs_frame(tracker)), args.allow_mixed_data)
        draw = draw_score_vs_emap_gap if args.figure == "emap" else draw_time_vs_score
        path = draw(done, args.out) if not done.empty else None
        if path is None:
            raise FuseBenchError(f"Nothing to plot in suite {args.suite!r} at {tracker.uri}"
                                 + (" (run without --no-emap first)." if args.figure == "emap" else "."))
        print(f"Wrote {path}")
        return 0
    datasets = [d for d in (args.datasets or "").split(",") if d] or None
    done = finished_runs(select_view(runs_frame(tracker)), args.allow_mixed_data)
    curves = robustness_curves(done, args.test, args.target, args.metric, datasets) if not done.empty else None
    if curves is None or curves.empty:
        raise FuseBenchError(
            f"No {args.test}/{args.target} stress results in suite {args.suite!r} at {tracker.uri}"
            f"{' for ' + ','.join(datasets) if datasets else ''}. Run `bench run` without --no-stress first.")
    print(f"Wrote {draw_robustness(curves, args.out, args.test, args.target)}")
    return 0


def _plot_cd(args: argparse.Namespace) -> int:
    """``bench plot cd``: the board's Friedman ranks and Nemenyi CD, drawn as Demšar's diagram."""
    from .errors import FuseBenchError
    from .leaderboard import build_board, runs_frame
    from .publish import draw_board_cd, load_runs
    from .tracking import Tracker

    if args.source:
        frame, suite = load_runs(args.source)
    else:
        frame, suite = runs_frame(Tracker(args.tracking_uri, args.suite)), args.suite
    datasets = [d for d in (args.datasets or "").split(",") if d] or None
    board = build_board(frame, suite, datasets=datasets)
    path = draw_board_cd(board, args.out)
    if path is None:
        result = board.comparisons.friedman
        why = result.reason if result is not None else "it needs at least two methods scored on two datasets"
        raise FuseBenchError(f"No critical-difference diagram for suite {suite!r}: {why}.")
    print(f"Wrote {path}")
    return 0


def tuning_curves(frame: Any, datasets: Sequence[str] | None = None) -> Any:
    """Long table (dataset, family, method, metric, higher_is_better, n, expected): the expected
    best validation score after n = 1 .. N trials (Dodge et al. 2019) of each method's search
    shown in the tuned view (its newest study), from the stored trial scores."""
    import pandas as pd

    from .leaderboard import tuned_selection, view_of
    from .tuning import expected_best_curve

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


def _plot_tuning(args: argparse.Namespace) -> int:
    """``bench plot tuning``: does the number of trials suffice? (flat curves: it does)."""
    from .errors import FuseBenchError
    from .leaderboard import runs_frame
    from .publish import load_runs
    from .tracking import Tracker

    if args.source:
        frame, suite = load_runs(args.source)
    else:
        frame, suite = runs_frame(Tracker(args.tracking_uri, args.suite)), args.suite
    datasets = [d for d in (args.datasets or "").split(",") if d] or None
    curves = tuning_curves(frame, datasets)
    if curves.empty:
        raise FuseBenchError(f"No tuning studies with tuned runs in suite {suite!r}"
                             f"{' for ' + ','.join(datasets) if datasets else ''}; run `bench tune` first.")
    print(f"Wrote {draw_tuning(curves, args.out)}")
    return 0
