"""What ``bench publish`` writes: the stored result of a suite and the tables and plots rendered from it.

The stored result (``leaderboards/runs.json``) is a compact, deterministic export of the
suite's child runs: one JSON array per run (one line each) under a shared, sorted column
list, rows sorted by dataset, method, seed, start time, run id.  Everything published is
rendered from that file, never from MLflow, so ``bench publish --from leaderboards/runs.json``
(and tests/test_publish.py) re-creates the committed tables byte for byte.  Next to it,
``leaderboards/predictions.npz`` keeps every finished run's test and validation predictions
(see :mod:`benchmark_core.predictions`), so the published statistics can be recomputed from the
stored files alone.  The command (:mod:`benchmark_core.cli.report`) runs the suite through
:func:`benchmark_core.suite.benchmark.run_benchmark` and then calls the functions here; this module
never imports the command line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark_core.errors import FuseBenchError
from benchmark_core.predictions import (
    EXPORT_FORMAT,
    SPLITS,
    PredictionStore,
    load,
    pack_ids,
    pack_y,
    smallest_int,
    write_npz,
)
from benchmark_core.record import RUNS_FORMAT, from_runs_json, runs_json
from benchmark_core.reporting.leaderboard import finished_runs

if TYPE_CHECKING:
    import pandas as pd

    from benchmark_core.predictions import Predictions

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


def export_runs(frame: pd.DataFrame, path: str | Path, suite: str) -> Path:
    """Write a runs frame as the stored result (:func:`benchmark_core.record.runs_json`:
    byte-stable for the same runs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(runs_json(frame, suite), encoding="utf-8")
    return path


def load_runs(path: str | Path) -> tuple[pd.DataFrame, str]:
    """(runs frame, suite name) of a stored result, as :func:`runs_frame` would have built it
    (:func:`benchmark_core.record.from_runs_json`)."""
    path = Path(path)
    if not path.exists():
        raise FuseBenchError(f"No stored result at {path}; run `bench publish` first.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FuseBenchError(f"{path} is not a FuseBench runs export ({RUNS_FORMAT}): it is not JSON text "
                             f"({exc}). Pass the runs.json that `bench publish` wrote.") from None
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != RUNS_FORMAT:
        raise FuseBenchError(f"{path} is not a FuseBench runs export ({RUNS_FORMAT}).")
    return from_runs_json(doc)


def published_predictions(runs_json: str | Path, frame: pd.DataFrame) -> dict[str, Predictions] | None:
    """spec_hash -> Predictions stored next to a runs.json by ``bench publish`` (None when there
    are none, e.g. a result published before they were kept), checked to belong to that file."""
    from benchmark_core.predictions import check_exported, exported_path, load_exported

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
    from benchmark_core.reporting.leaderboard import RENDERERS, build_board

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
    from benchmark_core.reporting.cd_diagram import draw_cd

    title = f"Average rank over {result.n} datasets, Nemenyi CD = {board.comparisons.cd:.2f} (α = 0.05)"
    return draw_cd(result.avg_ranks, board.comparisons.cd, out, title)


def draw_all(frame: pd.DataFrame, out: str | Path) -> list[Path]:
    """The three published figures (skipping any the data cannot draw)."""
    from benchmark_core.reporting.leaderboard import finished_runs, select_view
    from benchmark_core.reporting.plots import (
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
    from benchmark_core.tracking import TAG

    run = tracker.client.create_run(tracker.experiment_id, run_name="bench publish",
                                    tags={f"{TAG}.kind": "publish", f"{TAG}.command": command[:5000]})
    for path in files:
        sub = "plots" if path.suffix in (".png", ".svg") else "leaderboard"
        tracker.client.log_artifact(run.info.run_id, str(path), sub)
    tracker.end_run(run.info.run_id)
    return run.info.run_id


def render_tuned(frame: pd.DataFrame, suite: str, out: str | Path, plots: bool = True) -> list[Path]:
    """The tuned publication of a runs frame: --view both in every TUNED_FILES format, and the
    expected-best-vs-trials plot."""
    from benchmark_core.reporting.leaderboard import render

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
        from benchmark_core.reporting.plots import draw_tuning, tuning_curves

        curves = tuning_curves(frame)
        if not curves.empty:
            written.append(draw_tuning(curves, out / TUNED_PLOT))
    return written


# -- the suite's predictions next to runs.json ------------------------------------------------

@dataclass(frozen=True)
class Exported:
    path: Path
    runs: int  # runs whose predictions it holds
    without_predictions: list[str]  # run ids of finished runs that had none to export


def export_predictions(tracker: PredictionStore, frame: pd.DataFrame, path: str | Path) -> Exported:
    """One compact ``predictions.npz`` (format ``EXPORT_FORMAT`` of :mod:`benchmark_core.predictions`)
    for the latest finished run of every spec of the suite, keyed by spec_hash (byte-stable for
    the same runs)."""
    done = finished_runs(frame, allow_mixed_data=True, allow_mixed_metrics=True)
    runs = dict(zip(done["spec_hash"], done["run_id"], strict=True)) if not done.empty else {}
    stored = load(tracker, runs.values())
    hashes = sorted(h for h, run_id in runs.items() if run_id in stored)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(EXPORT_FORMAT),
        "spec_hash": np.char.encode(np.array(hashes, dtype=str), "ascii"),
        "run_id": np.char.encode(np.array([runs[h] for h in hashes], dtype=str), "ascii"),
    }
    for split in SPLITS:
        blocks: dict[bytes, int] = {}
        block_of = []
        for spec_hash in hashes:
            part = stored[runs[spec_hash]].split(split)
            ids, y = pack_ids(part.ids), pack_y(part.y)
            key = _digest(ids, y)
            if key not in blocks:
                blocks[key] = len(blocks)
                arrays[f"{split}/ids/{blocks[key]}"], arrays[f"{split}/y/{blocks[key]}"] = ids, y
            block_of.append(blocks[key])
            arrays[f"{split}/pred/{spec_hash}"] = np.asarray(part.pred, dtype=np.float32)
        arrays[f"{split}/block"] = smallest_int(np.array(block_of, dtype=np.int64))
    missing = sorted(run_id for run_id in runs.values() if run_id not in stored)
    return Exported(write_npz(path, arrays), len(hashes), missing)


def _digest(*arrays: np.ndarray) -> bytes:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()
