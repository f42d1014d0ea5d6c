"""The library entry of a benchmark (issue 20 §2): ``run_benchmark`` runs a suite without a command
line and prints nothing itself; the commands that report on runs match names in any case."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark_core.cli import main
from benchmark_core.errors import FuseBenchError
from benchmark_core.suite.benchmark import BenchmarkOptions, Reporter, run_benchmark
from benchmark_core.tracking import Tracker

PUBLISHED = Path(__file__).resolve().parents[1] / "leaderboards" / "runs.json"


class Recorder(Reporter):
    """Keeps everything a benchmark says, in order."""

    def __init__(self):
        self.heard = []

    def message(self, text):
        self.heard.append(("message", text))

    def note(self, text):
        self.heard.append(("note", text))

    def start(self, seconds, runs):
        self.heard.append(("start", runs))

    def finished(self, result, cost):
        self.heard.append(("finished", result.spec.label, result.status))

    def skipped(self, spec, cost):
        self.heard.append(("skipped", spec.label))

    def close(self):
        self.heard.append(("close",))


def test_run_benchmark_runs_a_suite_and_says_everything_through_its_reporter(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = BenchmarkOptions(methods="ADDITIVE", datasets=["synthetic-xor"], seeds=(0, 0), budget={"epochs": 1},
                               dataset_options={"synthetic-xor": {"n": 200}}, stress=False, emap=False,
                               executor="serial", tracking_uri=uri, suite="api")
    heard = Recorder()
    summary = run_benchmark(options, heard)
    assert (summary.planned, summary.finished, summary.failed, summary.skipped, summary.busy) == (1, 1, 0, 0, 0)
    assert summary.exit_code == 0 and summary.suite == "api" and summary.tracking_uri == uri
    children = Tracker(uri, "api").child_runs()
    assert len(children) == 1 and children[0].data.tags["mlflow.parentRunId"] == summary.parent_run_id
    assert children[0].data.tags["fusebench.method"] == "additive"  # any case, recorded by its name
    kinds = [item[0] for item in heard.heard]
    assert kinds == ["note", "message", "message", "start", "finished", "close"], heard.heard
    assert "repeated run(s) planned once" in heard.heard[0][1]  # seeds (0, 0)
    assert heard.heard[1][1].startswith("Planned 1 runs (1 methods x 1 datasets x 1 seeds)")
    assert heard.heard[4] == ("finished", "additive/synthetic-xor/seed0", "finished")
    out, err = capsys.readouterr()
    # the library printed nothing (MLflow's own notes on creating the store are its logger's)
    assert out == "" and all(" mlflow." in line or " alembic." in line for line in err.splitlines()), err

    again = Recorder()
    summary = run_benchmark(options, again)
    assert (summary.finished, summary.skipped, summary.parent_run_id) == (0, 1, None)
    assert ("skipped", "additive/synthetic-xor/seed0") in again.heard and again.heard[-1] == ("close",)
    assert any("Skipping 1 of 1 runs already finished" in item[1] for item in again.heard if item[0] == "message")


def test_run_benchmark_checks_its_options_before_writing_anything(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for options, fragment in (
        (BenchmarkOptions(methods="tensr", datasets="synthetic-xor", tracking_uri=uri), "Did you mean 'tensor'?"),
        (BenchmarkOptions(methods="additive", datasets="synthetic-xor", workers=0, tracking_uri=uri),
         "--workers must be at least 1"),
        (BenchmarkOptions(methods="additive", datasets="synthetic-xor", budget={"epochs": 0}, tracking_uri=uri),
         "epochs must be a positive integer"),
    ):
        with pytest.raises(FuseBenchError, match=fragment):
            run_benchmark(options)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.skipif(not PUBLISHED.exists(), reason="leaderboards/runs.json not generated yet")
def test_leaderboard_datasets_and_metrics_match_in_any_case(tmp_path, capsys):
    """Before: --datasets MFEAT failed ("No runs for dataset(s) ['MFEAT']") while --methods matched
    any case; now both flags resolve to the recorded spelling and render the same table."""
    from benchmark_core.reporting.publish import export_runs, load_runs

    frame, suite = load_runs(PUBLISHED)  # two methods of the published suite (no predictions: quick)
    small = export_runs(frame[frame["method"].isin(["additive", "late"])], tmp_path / "runs.json", suite)
    base = ["leaderboard", "--from", str(small), "--rank", "none"]
    assert main([*base, "--datasets", "mfeat,synthetic-xor", "--metrics", "f1_macro,mfeat:accuracy"]) == 0
    expected = capsys.readouterr().out
    assert "mfeat (f1_macro" in expected and "mfeat (accuracy" in expected
    assert main([*base, "--datasets", "MFEAT,Synthetic-XOR", "--metrics", "F1_Macro,MFeat:ACCURACY"]) == 0
    assert capsys.readouterr().out == expected
    assert main([*base, "--datasets", "mfet"]) == 2
    assert "No runs for dataset(s) ['mfet']" in capsys.readouterr().err
