"""The leaderboard is rendered from MLflow alone: mean ± std over seeds per method x dataset."""

from __future__ import annotations

import statistics

from conftest import TINY_XOR

from benchmark_core.reporting.leaderboard import render_markdown, runs_frame
from benchmark_core.specs import Budget
from benchmark_core.suite.executors import SerialExecutor
from benchmark_core.suite.plan import make_plan, run_suite
from benchmark_core.tracking import Tracker


def test_leaderboard_reports_mean_and_interval_over_seeds(registry, fusebench_tracking_uri):
    tracker = Tracker(fusebench_tracking_uri, "lb")
    specs = make_plan(registry, ["late", "tensor"], ["synthetic-xor", "synthetic-redundant"], [0, 1],
                      Budget(epochs=1, batch_size=32),
                      dataset_options={"synthetic-xor": TINY_XOR, "synthetic-redundant": TINY_XOR},
                      evaluation={"stress": False, "emap": False})
    run_suite(registry, specs, tracker, SerialExecutor(registry), echo=lambda s: None)

    # A fresh tracker: nothing but what MLflow stored is used.
    fresh = Tracker(fusebench_tracking_uri, "lb")
    text = render_markdown(fresh)
    frame = runs_frame(fresh)
    for (method, _dataset), group in frame.groupby(["method", "dataset"]):
        values = list(group["test/accuracy"])
        half = 12.706205 * statistics.stdev(values) / len(values) ** 0.5  # t_{1, 0.975}: two seeds
        cell = f"{statistics.mean(values):.4f} ± {half:.4f}"
        row = next(line for line in text.splitlines() if f"| {method} " in line)
        assert cell in row, (cell, row)
    header = text.splitlines()[0]
    assert "synthetic-xor (accuracy ↑)" in header and "synthetic-redundant (accuracy ↑)" in header
    # sorted by mean rank by default (issue 15); --group orders by family: late before tensor
    ranks = [float(line.rstrip(" |").rsplit("|", 1)[1].split()[0]) for line in text.splitlines()[2:4]]
    assert ranks == sorted(ranks)
    grouped = render_markdown(fresh, group=True)
    assert grouped.index("| late ") < grouped.index("| tensor ")
    assert "seeds [0, 1]" in text and "epochs=1" in text


def test_empty_suite_says_what_to_do(fusebench_tracking_uri):
    assert "Run `bench run` first" in render_markdown(Tracker(fusebench_tracking_uri, "empty"))
