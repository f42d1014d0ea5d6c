"""``bench publish``: run the default embedded suite, store its results, render the tables and plots.

The stored result (``leaderboards/runs.json``) is a compact, deterministic export of the
suite's child runs: one JSON array per run (one line each) under a shared, sorted column
list, rows sorted by dataset, method, seed, start time, run id.  Everything published is
rendered from that file, never from MLflow, so ``bench publish --from leaderboards/runs.json``
(and tests/test_publish.py) re-creates the committed tables byte for byte.  Next to it,
``leaderboards/predictions.npz`` keeps every finished run's test and validation predictions
(see :mod:`benchmark_core.predictions`), so the published statistics can be recomputed from the
stored files alone.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .predictions import Predictions

from .errors import FuseBenchError

EXPORT_FORMAT = "fusebench-runs/1"
# Metric prefixes the tables and plots never read (per-epoch curves, data-cleaning counts).
DROPPED_PREFIXES = ("epoch/", "data/")
TABLE_FILES = {"md": "leaderboard.md", "latex": "leaderboard.tex", "html": "leaderboard.html",
               "csv": "leaderboard.csv", "json": "leaderboard.json"}
PLOT_FILES = {"robustness": "robustness.png", "emap": "score_vs_emap_gap.png", "time": "time_vs_score.png",
              "cd": "critical_difference.png"}
# `bench publish --tuned`: the default and tuned tables side by side on a subset of the suite, from
# their own stored result (default runs, trials and tuned runs of one suite), next to the files above.
TUNED_RUNS = "tuned_runs.json"
TUNED_FILES = {"md": "tuned.md", "csv": "tuned.csv", "json": "tuned.json"}
TUNED_PLOT = "tuning.png"
TUNED_SUITE = "published-tuned"
# the embedded suite without mfeat, whose MulT runs are by far its most expensive (docs/tuning.md)
# one synthetic dataset (2 vector modalities) and the real sequences: the published tuned table,
# about 40 min on 2 cores with 8 trials and 3 seeds (docs/tuning.md)
TUNED_DATASETS = "synthetic-xor,basicmotions"
TUNED_TRIALS = 8


def _value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def export_runs(frame: pd.DataFrame, path: str | Path, suite: str) -> Path:
    """Write a runs frame as the stored result (byte-stable for the same runs)."""
    from .leaderboard import IDENTITY_COLUMNS, TUNING_COLUMNS, canonical

    frame = canonical(frame)
    named = (*IDENTITY_COLUMNS, *TUNING_COLUMNS)  # the tuning ones only in a suite with `bench tune` runs
    metrics = sorted(c for c in frame.columns if c not in named and not str(c).startswith(DROPPED_PREFIXES))
    identity = [c for c in named if c in frame.columns]
    columns = identity + metrics
    lines = []
    for row in frame[columns].itertuples(index=False):
        lines.append(json.dumps([_value(v) for v in row], ensure_ascii=False, allow_nan=False, separators=(",", ":")))
    header = json.dumps({"format": EXPORT_FORMAT, "suite": suite, "columns": columns}, ensure_ascii=False,
                        separators=(",", ":"))
    text = ('{"meta":' + header + ',\n"runs":[\n' + ",\n".join(lines) + "\n]}\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_runs(path: str | Path) -> tuple[pd.DataFrame, str]:
    """(runs frame, suite name) of a stored result, as :func:`runs_frame` would have built it."""
    import pandas as pd

    from .leaderboard import IDENTITY_COLUMNS, TUNING_COLUMNS

    path = Path(path)
    if not path.exists():
        raise FuseBenchError(f"No stored result at {path}; run `bench publish` first.")
    doc = json.loads(path.read_text(encoding="utf-8"))
    meta = doc.get("meta", {})
    if meta.get("format") != EXPORT_FORMAT:
        raise FuseBenchError(f"{path} is not a FuseBench runs export ({EXPORT_FORMAT}).")
    columns = meta["columns"]
    rows = []
    for values in doc["runs"]:
        row = {}
        for name, value in zip(columns, values, strict=True):
            if name in IDENTITY_COLUMNS or name in TUNING_COLUMNS:
                row[name] = value
            elif value is not None:
                row[name] = float(value)
        rows.append(row)
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(IDENTITY_COLUMNS))
    return frame, meta.get("suite", "default")


def published_predictions(runs_json: str | Path, frame: pd.DataFrame) -> dict[str, Predictions] | None:
    """spec_hash -> Predictions stored next to a runs.json by ``bench publish`` (None when there
    are none, e.g. a result published before they were kept), checked to belong to that file."""
    from .predictions import check_exported, exported_path, load_exported

    path = exported_path(runs_json)
    if not path.exists():
        return None
    exported = load_exported(path)
    check_exported(frame, exported, path)
    return exported


def by_run_id(stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An export (spec_hash -> Predictions) keyed by the run id each came from, as boards take it."""
    return None if stored is None else {p.run_id: p for p in stored.values()}


def render_all(frame: pd.DataFrame, suite: str, out: str | Path, plots: bool = True,
               predictions: Mapping[str, Any] | None = None) -> list[Path]:
    """Write every table format (and the plots, the critical-difference diagram included) of a
    runs frame into ``out``; ``predictions`` (run_id -> stored predictions) add the
    significance marks."""
    from .leaderboard import RENDERERS, build_board

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    board = build_board(frame, suite, predictions=predictions)
    written = []
    for fmt, name in TABLE_FILES.items():
        (out / name).write_text(RENDERERS[fmt](board), encoding="utf-8")
        written.append(out / name)
    if plots:
        written += draw_all(frame, out)
        path = draw_board_cd(board, out / PLOT_FILES["cd"])
        if path:
            written.append(path)
    return written


def draw_board_cd(board: Any, out: str | Path) -> Path | None:
    """The critical-difference diagram of a board (None when the Friedman test does not apply)."""
    result = board.comparisons.friedman
    if result is None or not result.applicable:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    from .cd_diagram import draw_cd

    title = f"Average rank over {result.n} datasets, Nemenyi CD = {board.comparisons.cd:.2f} (α = 0.05)"
    return draw_cd(result.avg_ranks, board.comparisons.cd, out, title)


def draw_all(frame: pd.DataFrame, out: str | Path) -> list[Path]:
    """The three published figures (skipping any the data cannot draw)."""
    from .leaderboard import finished_runs, select_view
    from .plots import (
        draw_robustness,
        draw_score_vs_emap_gap,
        draw_time_vs_score,
        robustness_curves,
    )

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    out = Path(out)
    done = finished_runs(select_view(frame, "default"))
    written = []
    if done.empty:
        return written
    curves = robustness_curves(done)
    if not curves.empty:
        written.append(draw_robustness(curves, out / PLOT_FILES["robustness"]))
    path = draw_score_vs_emap_gap(done, out / PLOT_FILES["emap"])
    if path:
        written.append(path)
    path = draw_time_vs_score(done, out / PLOT_FILES["time"])
    if path:
        written.append(path)
    return written


def log_to_mlflow(tracker, files: Sequence[Path], command: str) -> str:
    """Log the published files as artifacts of a dedicated ``publish`` run of the suite."""
    from .tracking import TAG

    run = tracker.client.create_run(tracker.experiment_id, run_name="bench publish",
                                    tags={f"{TAG}.kind": "publish", f"{TAG}.command": command[:5000]})
    for path in files:
        sub = "plots" if path.suffix in (".png", ".svg") else "leaderboard"
        tracker.client.log_artifact(run.info.run_id, str(path), sub)
    tracker.end_run(run.info.run_id)
    return run.info.run_id


def add_publish_parser(sub: Any) -> None:
    from .cli import _add_tracking

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
    pub.add_argument("--seeds", default="0,1,2", help="seeds of the published suite (default: %(default)s)")
    tuned = pub.add_argument_group("the tuned table (--tuned; docs/tuning.md)")
    tuned.add_argument("--tuned", action="store_true",
                       help=f"publish the default-vs-tuned table instead: bench run and bench tune on a subset into "
                            f"suite {TUNED_SUITE}, stored as OUT/{TUNED_RUNS}, rendered as OUT/tuned.md/.csv/.json "
                            f"and OUT/{TUNED_PLOT}")
    tuned.add_argument("--trials", type=int, default=TUNED_TRIALS, help="--tuned: trials per method and dataset "
                                                                          "(default: %(default)s)")
    tuned.add_argument("--tune-seed", default=None, help="--tuned: bench tune's --tune-seed (default: its default)")
    tuned.add_argument("--methods", default="all", help="--tuned: methods (default: %(default)s)")
    tuned.add_argument("--datasets", default=TUNED_DATASETS, help="--tuned: datasets (default: %(default)s)")
    _add_tracking(pub)
    pub.set_defaults(suite=None)  # published, or published-tuned with --tuned


def render_tuned(frame: pd.DataFrame, suite: str, out: str | Path, plots: bool = True) -> list[Path]:
    """The tuned publication of a runs frame: --view both in every TUNED_FILES format, and the
    expected-best-vs-trials plot."""
    from .leaderboard import render

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, name in TUNED_FILES.items():
        (out / name).write_text(render(frame, fmt, suite, view="both"), encoding="utf-8")
        written.append(out / name)
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return written
        from .plots import draw_tuning, tuning_curves

        curves = tuning_curves(frame)
        if not curves.empty:
            written.append(draw_tuning(curves, out / TUNED_PLOT))
    return written


def _publish_tuned(args: argparse.Namespace) -> int:
    """``bench publish --tuned``: default runs and a tuning sweep of a subset into one suite, exported
    to OUT/tuned_runs.json and rendered from that file alone."""
    import shlex
    import sys

    out, suite = Path(args.out), args.suite or TUNED_SUITE
    source = args.source or (str(out / TUNED_RUNS) if args.render_only else None)
    if source:
        frame, suite = load_runs(source)
        written = render_tuned(frame, suite, out, plots=not args.no_plots)
        print("Rendered from " + source + ": " + ", ".join(str(p) for p in written))
        return 0
    from .cli import build_parser, cmd_run, cmd_tune
    from .leaderboard import runs_frame
    from .tracking import Tracker

    code = 0
    if not args.no_run:
        common = ["--suite", suite, "--seeds", args.seeds, "--methods", args.methods, "--datasets", args.datasets]
        for flag, value in (("--executor", args.executor), ("--tracking-uri", args.tracking_uri),
                            ("--workers", args.workers)):
            if value is not None:
                common += [flag, str(value)]
        code = cmd_run(build_parser().parse_args(["run", *common]))
        tune = ["tune", *common, "--trials", str(args.trials)]
        if args.tune_seed is not None:
            tune += ["--tune-seed", str(args.tune_seed)]
        code = max(code, cmd_tune(build_parser().parse_args(tune)))
    tracker = Tracker(args.tracking_uri, suite)
    stored = export_runs(runs_frame(tracker), out / TUNED_RUNS, suite)
    frame, suite = load_runs(stored)  # render from the stored file, never from MLflow
    written = render_tuned(frame, suite, out, plots=not args.no_plots)
    print(f"Stored {stored} ({stored.stat().st_size / 1e6:.2f} MB); wrote " + ", ".join(str(p) for p in written))
    if not args.no_log:
        run_id = log_to_mlflow(tracker, [stored, *written], "bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        print(f"Logged them to MLflow run {run_id} (experiment fusebench/{suite}).")
    return code


def cmd_publish(args: argparse.Namespace) -> int:
    if args.tuned:
        return _publish_tuned(args)
    args.suite = args.suite or "published"
    out = Path(args.out)
    source = args.source or (str(out / "runs.json") if args.render_only else None)
    if source:
        frame, suite = load_runs(source)
        stored = published_predictions(source, frame)
        written = render_all(frame, suite, out, plots=not args.no_plots, predictions=by_run_id(stored))
        with_predictions = "" if stored is None else f" with the stored predictions of {len(stored)} runs"
        print("Rendered from " + source + with_predictions + ": " + ", ".join(str(p) for p in written))
        return 0
    from .cli import build_parser, cmd_run
    from .leaderboard import runs_frame
    from .predictions import export_predictions, exported_path, without_predictions_note
    from .tracking import Tracker

    code = 0
    if not args.no_run:
        run_args = ["run", "--suite", args.suite, "--seeds", args.seeds]
        if args.executor:
            run_args += ["--executor", args.executor]
        if args.tracking_uri:
            run_args += ["--tracking-uri", args.tracking_uri]
        if args.workers is not None:
            run_args += ["--workers", str(args.workers)]
        code = cmd_run(build_parser().parse_args(run_args))
    tracker = Tracker(args.tracking_uri, args.suite)
    runs = runs_frame(tracker)
    stored = export_runs(runs, out / "runs.json", args.suite)
    exported = export_predictions(tracker, runs, exported_path(stored))
    missing = len(exported.without_predictions)
    print(f"Stored {exported.path} ({exported.path.stat().st_size / 1e6:.2f} MB): the predictions of "
          f"{exported.runs} runs" + (f"; {without_predictions_note(missing)}" if missing else ""))
    frame, suite = load_runs(stored)  # render from the stored files, never from MLflow
    written = render_all(frame, suite, out, plots=not args.no_plots,
                         predictions=by_run_id(published_predictions(stored, frame)))
    print(f"Stored {stored} ({stored.stat().st_size / 1e6:.2f} MB); wrote " + ", ".join(str(p) for p in written))
    if not args.no_log:
        import shlex
        import sys

        run_id = log_to_mlflow(tracker, [stored, exported.path, *written],
                               "bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        print(f"Logged them to MLflow run {run_id} (experiment fusebench/{args.suite}).")
    return code
