"""The stored result: MLflow -> runs.json -> tables equal to rendering from MLflow; the
committed leaderboards/ match what `bench publish --from leaderboards/runs.json` renders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark_core.cli import main
from benchmark_core.record import RunResult, stress_key
from benchmark_core.reporting.leaderboard import render, runs_frame
from benchmark_core.reporting.publish import (
    TABLE_FILES,
    by_run_id,
    export_runs,
    load_runs,
    published_predictions,
    render_all,
)
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.tracking import Tracker

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "leaderboards"
FORMATS = ("md", "latex", "html", "csv", "json")


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('publish') / 'mlflow.db'}"
    writer = Tracker(uri, "pub")
    parent = writer.start_parent("bench run (test)")
    for method, family, base in (("late", "late", 0.8), ("tensor", "tensor", 0.9)):
        for seed in (0, 1):
            clean = base + 0.01 * seed
            metrics = {"test/accuracy": clean, "test/f1_macro": clean - 0.1, "emap/accuracy": clean - 0.2,
                       "emap/gap/accuracy": 0.2, "robustness/relative/accuracy": 0.7,
                       "info_extra/ignored": 1.0, "epoch/train_loss": 0.3,
                       stress_key("noise", "all", 0.5, "accuracy"): clean - 0.1,
                       stress_key("noise", "all", 1.0, "accuracy"): clean - 0.3}
            spec = RunSpec(method, "toy", seed, Budget(epochs=1))
            info = {"data_hash": "h", "primary_metric": "accuracy", "higher_is_better": True, "train_time_s": 1.5,
                    "metric_variants": ["accuracy", "f1_macro"], "harness_version": "test", "git_sha": "abc"}
            writer.log_result(writer.start_child(parent, spec, family), RunResult(spec, "finished", metrics, info=info))
    spec = RunSpec("tensor", "toy", 2, Budget(epochs=1))
    writer.log_result(writer.start_child(parent, spec, "tensor"),
                      RunResult(spec, "failed", {}, info={}, error="ValueError: nan loss"))
    writer.end_run(parent)
    return Tracker(uri, "pub")


def test_export_round_trip_renders_the_same_tables(tracker, tmp_path):
    frame = runs_frame(tracker)
    stored = export_runs(frame, tmp_path / "runs.json", "pub")
    loaded, suite = load_runs(stored)
    assert suite == "pub" and "epoch/train_loss" not in loaded.columns
    for fmt in FORMATS:
        assert render(loaded, fmt, suite) == render(frame, fmt, "pub"), fmt
    assert "ValueError: nan loss" in render(loaded, "md", suite)
    again = export_runs(loaded, tmp_path / "again.json", "pub")
    assert again.read_bytes() == stored.read_bytes()  # byte-stable re-export


def test_bench_publish_no_run_then_render_only(tracker, tmp_path, capsys):
    out = tmp_path / "boards"
    assert main(["publish", "--no-run", "--out", str(out), "--tracking-uri", tracker.uri, "--suite", "pub"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"runs.json", *TABLE_FILES.values(), "robustness.png", "score_vs_emap_gap.png", "time_vs_score.png"} <= names
    first = {n: (out / n).read_bytes() for n in TABLE_FILES.values()}
    publish_runs = [r for r in tracker._search("tags.`fusebench.kind` = 'publish'")]
    assert publish_runs, "the published files are logged to an MLflow run"
    artifacts = {a.path for a in tracker.client.list_artifacts(publish_runs[0].info.run_id, "leaderboard")}
    assert "leaderboard/leaderboard.md" in artifacts
    for name in TABLE_FILES.values():
        (out / name).unlink()
    assert main(["publish", "--render-only", "--out", str(out), "--no-plots"]) == 0
    assert {n: (out / n).read_bytes() for n in TABLE_FILES.values()} == first
    assert main(["leaderboard", "--from", str(out / "runs.json"), "--out", str(tmp_path / "b.tex")]) == 0
    assert (tmp_path / "b.tex").read_text() == first["leaderboard.tex"].decode()


def test_bench_leaderboard_cli_options(tracker, tmp_path, capsys):
    assert main(["leaderboard", "--tracking-uri", tracker.uri, "--suite", "pub", "--metrics", "f1_macro",
                 "--rank", "borda", "--format", "md"]) == 0
    text = capsys.readouterr().out
    assert "toy (f1_macro ↑)" in text and "Borda ↑" in text and "(2/3 seeds)" in text
    assert main(["leaderboard", "--tracking-uri", tracker.uri, "--suite", "pub", "--metrics", "auroc"]) == 2
    assert "recorded variants: accuracy, f1_macro" in capsys.readouterr().err


@pytest.mark.skipif(not (PUBLISHED / "runs.json").exists(),
                    reason="leaderboards/runs.json not generated yet: run `bench publish` (see leaderboards/README.md)")
def test_committed_leaderboards_match_what_publish_renders(tmp_path):
    frame, suite = load_runs(PUBLISHED / "runs.json")
    stored = published_predictions(PUBLISHED / "runs.json", frame)  # the significance marks need them
    assert stored is not None and len(stored) == len(frame)
    render_all(frame, suite, tmp_path, plots=False, predictions=by_run_id(stored))
    for name in TABLE_FILES.values():
        committed = (PUBLISHED / name).read_bytes()
        assert (tmp_path / name).read_bytes() == committed, (
            f"leaderboards/{name} differs from what `bench publish --render-only` renders from "
            "leaderboards/runs.json; never hand-edit published numbers, re-run the command.")


def test_rendering_a_leaderboard_does_not_import_torch(tmp_path):
    """Reading and rendering stored results needs pandas, not the training stack."""
    code = (
        "import json, sys\n"
        "from benchmark_core.cli import main\n"
        f"code = main(['leaderboard', '--from', {str(PUBLISHED / 'runs.json')!r}, '--out', "
        f"{str(tmp_path / 'board.md')!r}])\n"
        "print(json.dumps([code, 'torch' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [0, False]
    assert "| Method" in (tmp_path / "board.md").read_text()
