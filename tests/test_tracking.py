"""MLflow content of a suite: experiment, parent/child runs, params, tags, curves, artifacts,
and skipping finished runs on a re-run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_XOR
from mlflow.tracking import MlflowClient

import benchmark_core
from benchmark_core.errors import FuseBenchError
from benchmark_core.specs import Budget
from benchmark_core.suite.executors import SerialExecutor
from benchmark_core.suite.plan import make_plan, run_suite
from benchmark_core.tracking import Tracker

EVAL_OFF = {"stress": False, "emap": False}


@pytest.fixture
def suite(registry, fusebench_tracking_uri):
    tracker = Tracker(fusebench_tracking_uri, "t")
    specs = make_plan(registry, ["additive", "tensor"], ["synthetic-xor"], [0, 1], Budget(epochs=2, batch_size=32),
                      dataset_options={"synthetic-xor": TINY_XOR}, evaluation=EVAL_OFF)
    report = run_suite(registry, specs, tracker, SerialExecutor(registry), "bench run (test)", echo=lambda s: None)
    return tracker, specs, report


def test_mlflow_holds_one_parent_and_a_child_per_runspec(suite):
    tracker, specs, report = suite
    client = MlflowClient(tracker.uri)
    experiment = client.get_experiment_by_name("fusebench/t")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags["fusebench.kind"] == "parent"]
    children = [r for r in runs if r.data.tags["fusebench.kind"] == "child"]
    assert len(parents) == 1 and len(children) == len(specs) == 4
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["fusebench.command"] == "bench run (test)"
    by_hash = {c.data.tags["fusebench.spec_hash"]: c for c in children}
    assert set(by_hash) == {s.spec_hash for s in specs}
    results = {r.spec.spec_hash: r for r in report.results}
    for spec in specs:
        child = by_hash[spec.spec_hash]
        tags, params, metrics = child.data.tags, child.data.params, child.data.metrics
        assert child.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert tags["fusebench.method"] == spec.method and tags["fusebench.seed"] == str(spec.seed)
        assert tags["fusebench.family"] == spec.method  # additive/tensor are their own families
        assert tags["fusebench.status"] == "finished"
        assert tags["fusebench.data_hash"] and tags["fusebench.version.fusebench"] == benchmark_core.__version__
        assert tags["fusebench.metric_variants"] == "accuracy,f1_macro"
        assert params["budget.epochs"] == "2" and params["hparams.hidden"] == "32"
        assert params["dataset_options.n"] == "400"
        # the record holds the run's own numbers, and its accuracy is that of its stored test outputs
        result, outputs = results[spec.spec_hash], results[spec.spec_hash].predictions.test
        assert metrics["test/accuracy"] == result.metrics["test/accuracy"] == np.mean(
            outputs.pred.argmax(axis=1) == outputs.y)
        assert metrics["val/f1_macro"] == result.metrics["val/f1_macro"]
        assert metrics["info/params"] > 0 and metrics["info/train_time_s"] > 0
        assert 0 < metrics["info/validation_time_s"] < metrics["info/train_time_s"]
        curve = client.get_metric_history(child.info.run_id, "epoch/train_loss")
        assert sorted(m.step for m in curve) == [1, 2]
        artifact = Path(client.download_artifacts(child.info.run_id, "spec.json"))
        assert json.loads(artifact.read_text()) == spec.to_dict()


def test_rerun_skips_finished_runs(registry, suite):
    tracker, specs, _ = suite
    messages = []
    report = run_suite(registry, specs, tracker, SerialExecutor(registry), echo=messages.append)
    assert report.results == [] and len(report.skipped) == 4
    assert "Skipping 4 of 4 runs already finished" in messages[0]


def test_failed_run_is_recorded_and_not_skipped(registry, fusebench_tracking_uri):
    tracker = Tracker(fusebench_tracking_uri, "f")
    specs = make_plan(registry, ["tensor"], ["synthetic-xor"], [0], Budget(epochs=1),
                      hparams={"tensor": {"tensor_dim": -1}}, dataset_options={"synthetic-xor": TINY_XOR},
                      evaluation=EVAL_OFF)
    report = run_suite(registry, specs, tracker, SerialExecutor(registry), echo=lambda s: None)
    assert [r.status for r in report.results] == ["failed"]
    child = tracker.child_runs()[0]
    assert child.info.status == "FAILED"
    assert "fusebench.error" in child.data.tags
    assert tracker.finished_hashes() == {}


def test_unreachable_tracking_uri_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(FuseBenchError, match="--tracking-uri"):
        Tracker(f"sqlite:///{blocker}/sub/mlflow.db", "x")


def test_hparam_override_rules(registry):
    budget = Budget(epochs=1)
    specs = make_plan(registry, ["tensor", "additive"], ["synthetic-xor"], [0], budget,
                      hparams={"*": {"hidden": 8}, "tensor": {"tensor_dim": 3}},
                      dataset_options={"synthetic-xor": TINY_XOR})
    by_method = {s.method: s.hparams for s in specs}
    assert by_method["tensor"]["hidden"] == 8 and by_method["tensor"]["tensor_dim"] == 3
    assert by_method["additive"]["hidden"] == 8 and "tensor_dim" not in by_method["additive"]
    with pytest.raises(FuseBenchError, match="Unknown hyper-parameter"):
        make_plan(registry, ["additive"], ["synthetic-xor"], [0], budget, hparams={"additive": {"rank": 2}})
    with pytest.raises(FuseBenchError, match="seed list is empty"):
        make_plan(registry, ["additive"], ["synthetic-xor"], [], budget)
