"""Executors: the same RunSpec gives bitwise-identical weights and metrics on serial, process
and Ray; results flow back to the driver, which alone writes MLflow."""

from __future__ import annotations

import pytest
from conftest import TINY_XOR, tiny_spec

from benchmark_core.specs import Budget
from benchmark_core.suite.executors import ProcessExecutor, SerialExecutor
from benchmark_core.suite.plan import make_plan, run_suite
from benchmark_core.tracking import Tracker


def _collect(executor, specs):
    started = []
    results = list(executor.run(specs, started.append))
    executor.shutdown()
    assert sorted(s.spec_hash for s in started) == sorted(s.spec_hash for s in specs)
    return {r.spec.spec_hash: r for r in results}


@pytest.fixture(scope="module")
def specs():
    return [tiny_spec("tensor", epochs=2), tiny_spec("early", seed=1, epochs=1)]


@pytest.fixture(scope="module")
def serial_results(registry, specs):
    return _collect(SerialExecutor(registry), specs)


def _assert_same(results, reference):
    assert results.keys() == reference.keys()
    for key, result in results.items():
        assert result.ok, result.traceback or result.error
        assert result.info["state_hash"] == reference[key].info["state_hash"]
        assert result.metrics == reference[key].metrics


def test_process_executor_matches_serial_bitwise(specs, serial_results):
    _assert_same(_collect(ProcessExecutor(workers=2), specs), serial_results)


def test_ray_executor_matches_serial_bitwise(specs, serial_results):
    pytest.importorskip("ray", reason="the fusebench[ray] extra is not installed")
    from benchmark_core.suite.executors import RayExecutor

    _assert_same(_collect(RayExecutor(num_cpus=2), specs), serial_results)


def test_process_suite_logs_from_driver_only(registry, fusebench_tracking_uri):
    tracker = Tracker(fusebench_tracking_uri, "proc")
    plan = make_plan(registry, ["additive", "late"], ["synthetic-xor"], [0], Budget(epochs=1),
                     dataset_options={"synthetic-xor": TINY_XOR}, evaluation={"stress": False, "emap": False})
    report = run_suite(registry, plan, tracker, ProcessExecutor(workers=2), echo=lambda s: None)
    assert sorted(r.status for r in report.results) == ["finished", "finished"]
    assert {r.info.status for r in tracker.child_runs()} == {"FINISHED"}
