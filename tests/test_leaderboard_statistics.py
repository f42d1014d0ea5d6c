"""Issue 15 §2-§3 end to end: intervals, significance marks, the across-datasets comparison,
underpowered and budget warnings, planned-but-never-started runs, on a real suite."""

from __future__ import annotations

import signal

import pytest
from store_checks import child_statuses, start_driver, stop, wait_for

from benchmark_core.cli import main
from benchmark_core.predictions import finished_run_ids, load
from benchmark_core.reporting.leaderboard import build_board, render, runs_frame
from benchmark_core.reporting.statistics import t_interval
from benchmark_core.specs import Budget
from benchmark_core.suite.executors import SerialExecutor
from benchmark_core.suite.plan import make_plan, run_suite
from benchmark_core.tracking import Tracker

XOR = {"n": 300}


@pytest.fixture(scope="module")
def suite(registry, tmp_path_factory):
    """additive, late, tensor x synthetic-xor, synthetic-redundant x seeds 0, 1 (a tiny budget)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('stats') / 'mlflow.db'}"
    tracker = Tracker(uri, "stats")
    specs = make_plan(registry, ["additive", "late", "tensor"], ["synthetic-xor", "synthetic-redundant"], [0, 1],
                      Budget(epochs=3, batch_size=32, lr=1e-2),
                      dataset_options={"synthetic-xor": XOR, "synthetic-redundant": XOR},
                      evaluation={"stress": False, "emap": False})
    run_suite(registry, specs, tracker, SerialExecutor(registry), echo=lambda s: None)
    return Tracker(uri, "stats")


def _board(tracker):
    frame = runs_frame(tracker)
    return frame, build_board(frame, "stats", predictions=load(tracker, finished_run_ids(frame)))


def test_cells_are_means_with_t_intervals(suite):
    frame, board = _board(suite)
    text = render(frame, "md", "stats", predictions=load(suite, finished_run_ids(frame)))
    for (method, _dataset), part in frame.groupby(["method", "dataset"]):
        values = part["test/accuracy"].tolist()
        low, high = t_interval(values)
        cell = f"{sum(values) / len(values):.4f} ± {(high - low) / 2:.4f}"
        row = next(line for line in text.splitlines() if line.split("|")[2].strip() == method)
        assert cell in row, (cell, row)
    assert "95% t interval over seeds" in text


def test_best_is_bold_and_ties_are_marked_from_the_paired_test(suite):
    frame, board = _board(suite)
    xor = board.comparisons.datasets["synthetic-xor"]
    assert xor.results and not xor.skipped
    best = next(m for m, r in xor.results.items() if r.is_best)
    assert best == "tensor"  # the only interaction-capable method solves XOR
    assert not xor.tied("additive") and not xor.tied("late")  # additive models cannot: significantly worse
    text = render(frame, "md", "stats", predictions=load(suite, finished_run_ids(frame)))
    row = next(line for line in text.splitlines() if line.split("|")[2].strip() == "tensor")
    assert "**" in row.split("|")[3] or "**" in row.split("|")[4]
    assert "approximate randomization test" in text and "Holm-corrected" in text
    redundant = board.comparisons.datasets["synthetic-redundant"]
    tied = [m for m in ("additive", "late", "tensor") if redundant.tied(m)]
    assert all(f"{m}" for m in tied)  # every method solves the redundant task: ties are allowed here
    for method in tied:
        line = next(line for line in text.splitlines() if line.split("|")[2].strip() == method)
        assert "≈" in line


def test_without_predictions_the_table_says_no_test_was_run(suite):
    frame = runs_frame(suite)
    text = render(frame, "md", "stats")
    assert "≈" not in text.split("\n\n")[0] and "no significance test for" in text


def test_across_datasets_section_and_warnings(suite):
    frame, board = _board(suite)
    assert board.comparisons.friedman is not None
    text = render(frame, "md", "stats", predictions=load(suite, finished_run_ids(frame)))
    assert "### Across datasets" in text
    across = text.split("### Across datasets", 1)[1]
    assert "Not applicable" in across or "Nemenyi critical difference" in across
    # two seeds: underpowered; 3 epochs of 200 training samples in batches of 32: a few dozen steps
    assert "fewer than 3 seeds" in text
    assert "Budget warning: some runs took fewer than 200 optimiser steps" in text


def test_plot_cd_draws_the_diagram(suite, tmp_path, capsys):
    out = tmp_path / "cd.png"
    code = main(["plot", "cd", "--suite", "stats", "--tracking-uri", suite.uri, "--out", str(out)])
    if code == 0:
        assert out.exists() and out.stat().st_size > 1000
    else:  # two datasets and three methods: the test may not apply; the command then says why
        assert "No critical-difference diagram" in capsys.readouterr().err


def test_runs_that_never_started_are_listed_as_missing(tmp_path, monkeypatch, capsys):
    """Before issue 15 an interrupted suite's leaderboard simply omitted what never started."""
    args = ["run", "--methods", "additive,late,tensor", "--datasets", "synthetic-xor", "--seeds", "0", "--epochs", "1",
            "--dataset-option", "synthetic-xor.n=200", "--no-stress", "--no-emap"]
    driver = start_driver(tmp_path, args)
    assert wait_for(lambda: any(s == "FINISHED" for s, _ in child_statuses(tmp_path / "mlflow.db")))
    stop(driver, signal.SIGKILL)
    monkeypatch.chdir(tmp_path)
    assert main(["leaderboard"]) == 0
    text = capsys.readouterr().out
    failures = text.split("### Failed or missing runs", 1)[1]
    finished = {h for status, h in child_statuses(tmp_path / "mlflow.db") if status == "FINISHED"}
    assert len(finished) < 3
    # every planned method is on the board: with a result, or listed as not finished / never started
    for method in ("additive", "late", "tensor"):
        assert f"| {method} " in text
    assert failures.count("| synthetic-xor ") == 3 - len(finished)


def test_a_plan_without_children_is_listed_missing(fusebench_tracking_uri):
    """The plan stored on a parent run is what makes never-started runs visible."""
    tracker = Tracker(fusebench_tracking_uri, "plan")
    parent = tracker.start_parent("bench run ...")
    tracker.log_plan(parent, [{"spec_hash": "h1", "method": "tensor", "dataset": "synthetic-xor", "seed": 0,
                               "family": "tensor"}])
    frame = runs_frame(Tracker(fusebench_tracking_uri, "plan"))
    (row,) = frame.to_dict(orient="records")
    assert row["status"] == "missing" and row["method"] == "tensor" and row["spec_hash"] == "h1"
    text = render(frame, "md", "plan")
    assert "planned, but its bench run stopped before starting it" in text
