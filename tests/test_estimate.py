"""The suite time estimate: the cost model's fit, its schedule and the shipped coefficients."""

from __future__ import annotations

import pytest

from benchmark_core import Budget
from benchmark_core.suite.estimate import (
    CostModel,
    Estimate,
    MethodCost,
    Observation,
    Shape,
    estimate,
    fit,
    format_duration,
    shape_of,
)

VECTORS = Shape(n_train=1400, n_test=300, modalities=2, steps=1.0)
SEQUENCES = Shape(n_train=32, n_test=40, modalities=2, steps=100.0)
SIX = Shape(n_train=1400, n_test=300, modalities=6, steps=1.0)


def test_units_follow_size_epochs_and_the_subset_grid():
    assert VECTORS.train_units(20) == 1400 * 20 * 2
    assert SEQUENCES.train_units(50) == 32 * 50 * 2 * 100
    assert SIX.eval_units() == 300 * (2**6 - 2)  # the 62 subsets of the full grid
    assert SIX.pair_units(20) == 1400 * 20 * 6 * 5  # 30 directed pairs


@pytest.mark.parametrize("modalities", [2, 6, 8, 9, 12, 23])
def test_evaluation_units_count_the_subsets_the_stress_grid_scores(modalities):
    """Before: the estimate counted 2^M subsets for every M (capped at M = 12), while the stress
    grid samples above M = 8; the count must be exactly what subset_design evaluates."""
    from benchmark_core.evaluation.robustness import design_size, subset_design

    assert design_size(modalities) == len(subset_design(modalities).subsets)
    assert Shape(10, 300, modalities, 1.0).eval_units() == 300 * design_size(modalities)
    if modalities == 23:  # polynomial: 2M + 3M^2, not 2^23 - 2
        assert design_size(23) == 2 * 23 + 3 * 23**2


def test_fit_recovers_known_coefficients():
    truth = MethodCost(train=2e-5, evaluate=3e-4, overhead=1.5, pairs=4e-6)
    rows = [Observation("m", shape, epochs, truth.predict(shape, epochs))
            for shape in (VECTORS, SEQUENCES, SIX, Shape(500, 100, 3, 10.0)) for epochs in (10, 20)]
    got = fit(rows).cost("m")
    assert got.train == pytest.approx(truth.train, rel=1e-6)
    assert got.evaluate == pytest.approx(truth.evaluate, rel=1e-6)
    assert got.overhead == pytest.approx(truth.overhead, rel=1e-6)
    assert got.pairs == pytest.approx(truth.pairs, rel=1e-6)


def test_unknown_methods_get_the_median_cost_and_json_round_trips():
    model = CostModel({"a": MethodCost(1, 0), "b": MethodCost(2, 0), "c": MethodCost(3, 0)}, "here", 9)
    assert model.cost("new-plugin-method") == MethodCost(2, 0)
    assert CostModel.from_json(model.to_json()) == model


def test_wall_time_is_a_longest_first_schedule_over_workers():
    assert Estimate([5, 3, 3, 1], workers=1).wall == 12
    assert Estimate([5, 3, 3, 1], workers=2).wall == 6  # 5+1 | 3+3
    assert Estimate([10, 1, 1], workers=4).wall == 10  # one long run bounds it


def test_estimate_of_a_plan_uses_each_runs_dataset_and_epochs(registry):
    from benchmark_core.engine.data import load_tensors
    from benchmark_core.suite.plan import make_plan

    plan = make_plan(registry, ["additive", "late"], ["synthetic-xor"], [0, 1], Budget(epochs=2))
    shape = shape_of(load_tensors(registry.dataset("synthetic-xor"), plan[0].dataset_options))
    assert shape == Shape(1400, 300, 2, 1.0)
    model = CostModel({"additive": MethodCost(1e-3, 0), "late": MethodCost(2e-3, 0)})
    got = estimate(plan, {"synthetic-xor": shape}, model)
    assert got.per_run == pytest.approx([5.6, 5.6, 11.2, 11.2])  # 1400 x 2 epochs x 2 modalities


def test_the_shipped_model_covers_every_method_of_the_default_suite(registry):
    model = CostModel.shipped()
    assert model.fitted_runs > 0 and model.measured_on
    assert set(registry.select("methods", "all", "--methods")) <= set(model.methods)


def test_durations_read_naturally():
    assert [format_duration(s) for s in (12, 600, 5400, 9000)] == ["12 s", "10 min", "1.5 h", "2.5 h"]


def test_the_automatic_executor_is_parallel_only_when_it_pays():
    from benchmark_core.cli import AUTO_PARALLEL_SECONDS, auto_executor, usable_cores

    assert auto_executor(AUTO_PARALLEL_SECONDS - 1, runs=100, threads=1) == "serial"  # start-up would dominate
    assert auto_executor(10_000, runs=1, threads=1) == "serial"
    assert auto_executor(10_000, runs=100, threads=usable_cores()) == "serial"  # one run fills the machine
    expected = "process" if usable_cores() >= 2 else "serial"
    assert auto_executor(10_000, runs=100, threads=1) == expected


def test_bench_run_prints_the_estimate_and_the_executor_before_starting(tmp_path, monkeypatch, capsys):
    from benchmark_core.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["run", "--methods", "additive", "--datasets", "synthetic-xor", "--seeds", "0", "--epochs", "1",
                 "--dataset-option", "synthetic-xor.n=200", "--no-stress", "--no-emap"]) == 0
    out = capsys.readouterr().out
    planned, estimate = out.index("Planned 1 runs"), out.index("Estimated time: about ")
    assert planned < estimate < out.index("[finished]") and "serial executor, 1 worker" in out
