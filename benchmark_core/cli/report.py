"""``bench leaderboard``, ``bench plot`` and ``bench publish``: their flags and commands.  The
tables, figures and the stored result are library code (:mod:`benchmark_core.reporting.leaderboard`,
:mod:`benchmark_core.reporting.plots`, :mod:`benchmark_core.reporting.publish`); a suite is run through
:func:`benchmark_core.suite.benchmark.run_benchmark`, never by re-parsing a command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmark_core.cli.common import add_tracking, comma_list, command_line, match_names, one_seed, seed_list
from benchmark_core.errors import FuseBenchError
from benchmark_core.reporting.publish import TUNED_DATASETS, TUNED_PLOT, TUNED_RUNS, TUNED_SUITE, TUNED_TRIALS

PLOT_FORMATS = (".png", ".svg")


# -- flags ------------------------------------------------------------------------------------------

def add_leaderboard_parser(sub: Any) -> None:
    board = sub.add_parser("leaderboard", help="render the leaderboard from MLflow (or a stored runs.json)")
    board.add_argument("--datasets", default=None, help="comma list to restrict columns, any case")
    board.add_argument("--metrics", default=None, metavar="NAME|DATASET:NAME,...",
                       help="metric variants to show, any case (default: each dataset's primary metric)")
    board.add_argument("--format", default=None, choices=["md", "latex", "html", "csv", "json"],
                       help="output format (default: from the --out suffix, else md)")
    board.add_argument("--rank", default="mean-rank", choices=["mean-rank", "borda", "none"],
                       help="cross-dataset rank column (default: %(default)s; see docs/leaderboard.md)")
    board.add_argument("--view", default="default", choices=["default", "tuned", "both"],
                       help="default: the bench run results; tuned: the configurations bench tune chose; both: the "
                            "two side by side with their ranks, Kendall's tau and the tuning compute "
                            "(default: %(default)s)")
    board.add_argument("--group", action="store_true",
                       help="group rows by fusion family (default: one list sorted by the rank column)")
    board.add_argument("--no-group", action="store_true", help=argparse.SUPPRESS)  # the default since 0.2
    board.add_argument("--from", dest="source", default=None, metavar="RUNS_JSON",
                       help="render from a stored result (bench publish) instead of MLflow")
    board.add_argument("--out", default=None, help="write to FILE instead of stdout")
    board.add_argument("--allow-mixed-data", action="store_true",
                       help="aggregate runs even if a dataset's content hash differs between them")
    board.add_argument("--allow-mixed-metrics", action="store_true",
                       help="aggregate runs even if a dataset's metric variants or primary metric differ")
    board.add_argument("--allow-mixed", action="store_true", help="both --allow-mixed-data and --allow-mixed-metrics")
    board.add_argument("--latest-data", action="store_true",
                       help="per dataset, show only runs on its newest data version (content hash)")
    board.add_argument("--recompute", action="store_true",
                       help="recompute every metric variant registered now from the runs' stored predictions "
                            "(no retraining; with --from: the predictions.npz next to RUNS_JSON)")
    add_tracking(board)


def add_plot_parser(sub: Any) -> None:
    """Register ``bench plot <figure>`` on the CLI's subparsers."""
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
    add_tracking(rob)
    for name, text in (("emap", "clean score vs EMAP gap (cross-modal interaction use), one panel per dataset"),
                       ("time", "clean score vs mean training time, one panel per dataset")):
        fig = figures.add_parser(name, help=text)
        fig.add_argument("--out", default=f"{name}.png", help="output file, .png or .svg (default: %(default)s)")
        fig.add_argument("--allow-mixed-data", action="store_true",
                         help="use runs even if a dataset's content hash differs between them")
        add_tracking(fig)
    cd = figures.add_parser("cd", help="critical-difference diagram: average ranks across datasets, Nemenyi CD")
    cd.add_argument("--out", default="critical_difference.png", help="output file, .png or .svg (default: %(default)s)")
    cd.add_argument("--from", dest="source", default=None, metavar="RUNS_JSON",
                    help="draw from a stored result (bench publish) instead of MLflow")
    cd.add_argument("--datasets", default=None, help="comma list of datasets (default: all)")
    add_tracking(cd)
    tune = figures.add_parser("tuning", help="expected best validation score vs number of trials (bench tune), "
                                             "per method, one panel per dataset")
    tune.add_argument("--out", default="tuning.png", help="output file, .png or .svg (default: %(default)s)")
    tune.add_argument("--from", dest="source", default=None, metavar="RUNS_JSON",
                      help="draw from a stored result (bench publish --tuned) instead of MLflow")
    tune.add_argument("--datasets", default=None, help="comma list of datasets (default: all with tuned runs)")
    add_tracking(tune)


def add_publish_parser(sub: Any) -> None:
    pub = sub.add_parser("publish", help="run the default embedded suite, store it and render leaderboards/")
    pub.add_argument("--out", default="leaderboards", help="output folder (default: %(default)s)")
    pub.add_argument("--from", dest="source", default=None, metavar="RUNS_JSON",
                     help="only re-render from a stored result (no MLflow, no training)")
    pub.add_argument("--render-only", action="store_true", help="same as --from OUT/runs.json")
    pub.add_argument("--no-run", action="store_true", help="export and render what MLflow holds, train nothing")
    pub.add_argument("--no-plots", action="store_true", help="tables only")
    pub.add_argument("--no-log", action="store_true", help="do not log the published files to MLflow")
    pub.add_argument("--executor", default=None,
                     help="executor for the suite run (default: as `bench run`: process with one worker per core "
                          "when the machine has 2+ cores)")
    pub.add_argument("--workers", type=int, default=None, help="process executor: worker processes")
    pub.add_argument("--seeds", type=seed_list, default="0,1,2",
                     help="seeds of the published suite (default: %(default)s)")
    tuned = pub.add_argument_group("the tuned table (--tuned; docs/tuning.md)")
    tuned.add_argument("--tuned", action="store_true",
                       help=f"publish the default-vs-tuned table instead: bench run and bench tune on a subset into "
                            f"suite {TUNED_SUITE}, stored as OUT/{TUNED_RUNS}, rendered as OUT/tuned.md/.csv/.json "
                            f"and OUT/{TUNED_PLOT}")
    tuned.add_argument("--trials", type=int, default=TUNED_TRIALS, help="--tuned: trials per method and dataset "
                                                                          "(default: %(default)s)")
    tuned.add_argument("--tune-seed", type=one_seed, default=None,
                       help="--tuned: bench tune's --tune-seed (default: its default)")
    tuned.add_argument("--methods", default="all", help="--tuned: methods (default: %(default)s)")
    tuned.add_argument("--datasets", default=TUNED_DATASETS, help="--tuned: datasets (default: %(default)s)")
    add_tracking(pub)
    pub.set_defaults(suite=None)  # published, or published-tuned with --tuned


# -- shared by the commands -------------------------------------------------------------------------

def _load_frame(source: str | None, tracking_uri: str | None, suite: str):
    """(runs frame, suite name, tracker) from a stored result (``--from``; tracker None) or MLflow."""
    from benchmark_core.reporting.leaderboard import runs_frame
    from benchmark_core.reporting.publish import load_runs
    from benchmark_core.tracking import Tracker

    if source:
        frame, suite = load_runs(source)
        return frame, suite, None
    tracker = Tracker(tracking_uri, suite)
    return runs_frame(tracker), suite, tracker


def _datasets(text: str | None, frame) -> list[str] | None:
    """A ``--datasets`` list, each name spelled as the runs record it (any case, like ``--methods``)."""
    names = comma_list(text)
    if names is None:
        return None
    known = frame["dataset"].dropna().astype(str) if "dataset" in frame else ()
    return match_names(names, known)


def _metrics(text: str | None, frame) -> list[str] | None:
    """A ``--metrics`` list (``NAME`` or ``DATASET:NAME``), datasets and metric variants matched
    to the recorded spelling ignoring case."""
    items = comma_list(text)
    if items is None:
        return None
    recorded = [str(c)[len("test/"):] for c in frame.columns if str(c).startswith("test/")]
    out = []
    for item in items:
        if ":" in item:  # split as the leaderboard splits it: at the first colon
            dataset, name = item.split(":", 1)
            out.append(f"{(_datasets(dataset, frame) or [dataset])[0]}:{match_names([name], recorded)[0]}")
        else:
            out.append(match_names([item], recorded)[0])
    return out


def _stored_predictions(frame, runs_json: str | None, tracker) -> dict | None:
    """run_id -> stored predictions of the finished runs (the significance tests need them):
    from MLflow, or from the export next to a stored runs.json."""
    from benchmark_core.predictions import finished_run_ids, load
    from benchmark_core.reporting.publish import by_run_id, published_predictions

    if runs_json:
        return by_run_id(published_predictions(runs_json, frame))
    return load(tracker, finished_run_ids(frame)) or None


# -- bench leaderboard ------------------------------------------------------------------------------

def cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmark_core.reporting.leaderboard import format_for, render, select_view

    fmt = format_for(args.out, args.format)
    frame, suite, tracker = _load_frame(args.source, args.tracking_uri, args.suite)
    if args.recompute:
        from benchmark_core.plugins import get_registry
        from benchmark_core.predictions import recompute_stored

        done = recompute_stored(frame, get_registry(), runs_json=args.source, tracker=tracker)
        frame = done.frame
        print(done.note(), file=sys.stderr)
    text = render(frame, fmt, suite, datasets=_datasets(args.datasets, frame), metrics=_metrics(args.metrics, frame),
                  rank=args.rank, group=args.group,
                  allow_mixed_data=args.allow_mixed_data or args.allow_mixed,
                  allow_mixed_metrics=args.allow_mixed_metrics or args.allow_mixed, latest_data=args.latest_data,
                  predictions=None if args.view == "both" else _stored_predictions(
                      # from MLflow only the shown view's predictions (not every trial's)
                      frame if args.source else select_view(frame, args.view), args.source, tracker), view=args.view)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"Wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


# -- bench plot -------------------------------------------------------------------------------------

def cmd_plot(args: argparse.Namespace) -> int:
    from benchmark_core.reporting.leaderboard import finished_runs, select_view
    from benchmark_core.reporting.plots import (
        draw_robustness,
        draw_score_vs_emap_gap,
        draw_time_vs_score,
        robustness_curves,
    )

    if Path(args.out).suffix.lower() not in PLOT_FORMATS:
        raise FuseBenchError(f"--out {args.out!r}: write a .png or .svg file.")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FuseBenchError("bench plot needs matplotlib: pip install 'fusebench[plot]'.") from None
    frame, suite, tracker = _load_frame(getattr(args, "source", None), args.tracking_uri, args.suite)
    if args.figure == "cd":
        return _plot_cd(frame, suite, _datasets(args.datasets, frame), args.out)
    if args.figure == "tuning":
        return _plot_tuning(frame, suite, _datasets(args.datasets, frame), args.out)
    done = finished_runs(select_view(frame), args.allow_mixed_data)
    if args.figure in ("emap", "time"):
        draw = draw_score_vs_emap_gap if args.figure == "emap" else draw_time_vs_score
        path = draw(done, args.out) if not done.empty else None
        if path is None:
            raise FuseBenchError(f"Nothing to plot in suite {args.suite!r} at {tracker.uri}"
                                 + (" (run without --no-emap first)." if args.figure == "emap" else "."))
        print(f"Wrote {path}")
        return 0
    datasets = _datasets(args.datasets, frame)
    curves = robustness_curves(done, args.test, args.target, args.metric, datasets) if not done.empty else None
    if curves is None or curves.empty:
        raise FuseBenchError(
            f"No {args.test}/{args.target} stress results in suite {args.suite!r} at {tracker.uri}"
            f"{' for ' + ','.join(datasets) if datasets else ''}. Run `bench run` without --no-stress first.")
    print(f"Wrote {draw_robustness(curves, args.out, args.test, args.target)}")
    return 0


def _plot_cd(frame, suite: str, datasets: list[str] | None, out: str) -> int:
    """``bench plot cd``: the board's Friedman ranks and Nemenyi CD, drawn as Demšar's diagram."""
    from benchmark_core.reporting.leaderboard import build_board
    from benchmark_core.reporting.publish import draw_board_cd

    board = build_board(frame, suite, datasets=datasets)
    path = draw_board_cd(board, out)
    if path is None:
        result = board.comparisons.friedman
        why = result.reason if result is not None else "it needs at least two methods scored on two datasets"
        raise FuseBenchError(f"No critical-difference diagram for suite {suite!r}: {why}.")
    print(f"Wrote {path}")
    return 0


def _plot_tuning(frame, suite: str, datasets: list[str] | None, out: str) -> int:
    """``bench plot tuning``: does the number of trials suffice? (flat curves: it does)."""
    from benchmark_core.reporting.plots import draw_tuning, tuning_curves

    curves = tuning_curves(frame, datasets)
    if curves.empty:
        raise FuseBenchError(f"No tuning studies with tuned runs in suite {suite!r}"
                             f"{' for ' + ','.join(datasets) if datasets else ''}; run `bench tune` first.")
    print(f"Wrote {draw_tuning(curves, out)}")
    return 0


# -- bench publish ----------------------------------------------------------------------------------

def _log_published(tracker, files, suite: str) -> None:
    from benchmark_core.reporting.publish import log_to_mlflow

    run_id = log_to_mlflow(tracker, files, command_line())
    print(f"Logged them to MLflow run {run_id} (experiment fusebench/{suite}).")


def _publish_tuned(args: argparse.Namespace) -> int:
    """``bench publish --tuned``: default runs and a tuning sweep of a subset into one suite, exported
    to OUT/tuned_runs.json and rendered from that file alone."""
    from benchmark_core.cli.run import run_and_report, tune_and_report
    from benchmark_core.reporting.publish import export_runs, load_runs, render_tuned
    from benchmark_core.suite.benchmark import DEFAULT_TUNE_SEED, BenchmarkOptions

    out, suite = Path(args.out), args.suite or TUNED_SUITE
    source = args.source or (str(out / TUNED_RUNS) if args.render_only else None)
    if source:
        frame, suite = load_runs(source)
        written = render_tuned(frame, suite, out, plots=not args.no_plots)
        print("Rendered from " + source + ": " + ", ".join(str(p) for p in written))
        return 0
    code = 0
    if not args.no_run:
        options = BenchmarkOptions(methods=args.methods, datasets=args.datasets, seeds=tuple(args.seeds),
                                   executor=args.executor, workers=args.workers, tracking_uri=args.tracking_uri,
                                   suite=suite, command=command_line())
        code = run_and_report(options)
        tune_seed = DEFAULT_TUNE_SEED if args.tune_seed is None else args.tune_seed
        code = max(code, tune_and_report(options, args.trials, tune_seed))
    frame, _, tracker = _load_frame(None, args.tracking_uri, suite)
    stored = export_runs(frame, out / TUNED_RUNS, suite)
    frame, suite = load_runs(stored)  # render from the stored file, never from MLflow
    written = render_tuned(frame, suite, out, plots=not args.no_plots)
    print(f"Stored {stored} ({stored.stat().st_size / 1e6:.2f} MB); wrote " + ", ".join(str(p) for p in written))
    if not args.no_log:
        _log_published(tracker, [stored, *written], suite)
    return code


def cmd_publish(args: argparse.Namespace) -> int:
    if args.tuned:
        return _publish_tuned(args)
    from benchmark_core.reporting.publish import by_run_id, export_runs, load_runs, published_predictions, render_all

    suite = args.suite or "published"
    out = Path(args.out)
    source = args.source or (str(out / "runs.json") if args.render_only else None)
    if source:
        frame, suite = load_runs(source)
        stored = published_predictions(source, frame)
        written = render_all(frame, suite, out, plots=not args.no_plots, predictions=by_run_id(stored))
        with_predictions = "" if stored is None else f" with the stored predictions of {len(stored)} runs"
        print("Rendered from " + source + with_predictions + ": " + ", ".join(str(p) for p in written))
        return 0
    from benchmark_core.cli.run import run_and_report
    from benchmark_core.predictions import exported_path, without_predictions_note
    from benchmark_core.reporting.publish import export_predictions
    from benchmark_core.suite.benchmark import BenchmarkOptions

    code = 0
    if not args.no_run:
        code = run_and_report(BenchmarkOptions(seeds=tuple(args.seeds), executor=args.executor, workers=args.workers,
                                               tracking_uri=args.tracking_uri, suite=suite, command=command_line()))
    runs, _, tracker = _load_frame(None, args.tracking_uri, suite)
    stored = export_runs(runs, out / "runs.json", suite)
    exported = export_predictions(tracker, runs, exported_path(stored))
    missing = len(exported.without_predictions)
    print(f"Stored {exported.path} ({exported.path.stat().st_size / 1e6:.2f} MB): the predictions of "
          f"{exported.runs} runs" + (f"; {without_predictions_note(missing)}" if missing else ""))
    frame, suite = load_runs(stored)  # render from the stored files, never from MLflow
    written = render_all(frame, suite, out, plots=not args.no_plots,
                         predictions=by_run_id(published_predictions(stored, frame)))
    print(f"Stored {stored} ({stored.stat().st_size / 1e6:.2f} MB); wrote " + ", ".join(str(p) for p in written))
    if not args.no_log:
        _log_published(tracker, [stored, exported.path, *written], suite)
    return code
