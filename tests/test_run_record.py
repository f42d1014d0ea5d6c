"""The run record (benchmark_core.record): a real run's RunResult -> MLflow -> runs table ->
runs.json -> runs table is the same table; every Budget field reaches the table and the
provenance footer; each metric-key family has one builder and one parser that round-trip."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_spec
from mlflow.tracking import MlflowClient

from benchmark_core.record import (
    BUDGET_COLUMNS,
    DATA,
    EMAP,
    EPOCH,
    INFO,
    INFO_FIELDS,
    INFO_METRICS,
    NONFINITE,
    TEST,
    VAL,
    RunInfo,
    RunResult,
    StressKey,
    is_missing,
    json_value,
    key_target,
    parse_stress_key,
    stress_key,
    stress_points,
)
from benchmark_core.reporting.leaderboard import build_board, footer_items, render, runs_frame
from benchmark_core.reporting.publish import export_runs, load_runs
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.suite.runner import execute
from benchmark_core.tracking import Tracker

ROOT = Path(__file__).resolve().parents[1]
SUITE = "record"
TRIAL = {"role": "trial", "study": "s0", "trial": 0}
VERSIONS = {"fusebench": "0.0.test", "method": "fusebench 0.0.test", "dataset": "fusebench 0.0.test"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Real runs logged by the real tracker: a finished run with the stress grid and EMAP, a
    `bench tune` trial, a failed run, and a planned run that never started."""
    from benchmark_core.plugins import get_registry

    registry = get_registry()
    uri = f"sqlite:///{tmp_path_factory.mktemp('record') / 'mlflow.db'}"
    finished = execute(tiny_spec("additive", epochs=2, evaluation={"stress": True, "emap": True},
                                 versions=VERSIONS), registry)
    trial = execute(dataclasses.replace(tiny_spec("late", epochs=1), tuning=TRIAL), registry)
    failed = execute(tiny_spec("tensor", epochs=1, hparams={"tensor_dim": -1}), registry)
    assert finished.ok and trial.ok and failed.status == "failed", (finished.traceback, trial.traceback)
    never = tiny_spec("late", seed=5, epochs=1)
    tracker = Tracker(uri, SUITE)
    parent = tracker.start_parent("bench run (test)")
    results = (finished, trial, failed)
    tracker.log_plan(parent, [{"spec_hash": s.spec_hash, "method": s.method, "dataset": s.dataset, "seed": s.seed,
                               "family": registry.method(s.method).family}
                              for s in (*(r.spec for r in results), never)])
    run_ids = {}
    for result in results:
        run_ids[result.spec.spec_hash] = tracker.start_child(parent, result.spec,
                                                             registry.method(result.spec.method).family)
        tracker.log_result(run_ids[result.spec.spec_hash], result)
    tracker.end_run(parent)
    return uri, {"finished": finished, "trial": trial, "failed": failed}, never, run_ids


def test_mlflow_runs_json_and_back_give_the_same_table(store, tmp_path):
    uri, _, _, _ = store
    frame = runs_frame(Tracker(uri, SUITE))
    stored = export_runs(frame, tmp_path / "runs.json", SUITE)
    loaded, suite = load_runs(stored)
    assert suite == SUITE
    assert list(loaded.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(loaded, frame)  # values, dtypes, NaN where a run lacks a metric
    assert export_runs(loaded, tmp_path / "again.json", SUITE).read_bytes() == stored.read_bytes()
    for fmt in ("md", "json"):
        assert render(loaded, fmt, SUITE) == render(frame, fmt, SUITE)


def test_the_table_holds_what_the_run_recorded(store):
    uri, results, never, run_ids = store
    frame = runs_frame(Tracker(uri, SUITE)).set_index("spec_hash")
    finished = results["finished"]
    row = frame.loc[finished.spec.spec_hash]
    spec, info = finished.spec, finished.info
    assert (row["run_id"], row["status"], row["mlflow_status"]) == (run_ids[spec.spec_hash], "finished", "FINISHED")
    assert (row["method"], row["dataset"], row["seed"], row["family"]) == ("additive", "synthetic-xor", 0, "additive")
    assert (row["data_hash"], row["primary_metric"], row["higher_is_better"]) == (
        info.data_hash, "accuracy", True)
    assert row["metric_variants"] == ",".join(info.metric_variants) and row["git_sha"] == info.git_sha
    assert row["torch_version"] == info.torch_version and row["harness_version"] == "0.0.test"
    assert json.loads(row["versions"]) == VERSIONS
    for name in BUDGET_COLUMNS:  # the MLflow param text of every Budget field
        assert row[name] == str(getattr(spec.budget, name)), name
    families = {"test/", "val/", "stress/", "emap/", "robustness/"}
    assert {k.split("/")[0] + "/" for k in finished.metrics} == families
    for key, value in finished.metrics.items():  # every metric, exactly (NaN where it was NaN)
        assert row[key] == value or (math.isnan(value) and math.isnan(row[key])), key
    for name in INFO_METRICS:
        assert row[INFO.key(name)] == pytest.approx(float(info[name]), nan_ok=True), name
    # per-epoch curves and data-cleaning counts stay in MLflow, out of the table
    assert not any(EPOCH.owns(c) or DATA.owns(c) for c in frame.columns)
    client = MlflowClient(uri)
    run_id = run_ids[spec.spec_hash]
    assert [m.step for m in client.get_metric_history(run_id, EPOCH.key("train_loss"))] == [1, 2]
    replaced = info.nonfinite_replaced()
    assert replaced and {NONFINITE.key(m) for m in replaced} <= set(client.get_run(run_id).data.metrics)
    # the other runs: a trial of `bench tune`, a failure, a planned run that never started
    trial = frame.loc[results["trial"].spec.spec_hash]
    assert (trial["view"], trial["study"], trial["trial"], trial["status"]) == ("trial", "s0", 0, "finished")
    assert is_missing(row["view"]) and is_missing(trial["n_trials"])
    failed = frame.loc[results["failed"].spec.spec_hash]
    assert (failed["status"], failed["mlflow_status"], failed["error"]) == ("failed", "FAILED", results["failed"].error)
    assert failed[INFO.key("wall_time_s")] > 0 and is_missing(failed[TEST.key("accuracy")])
    missing = frame.loc[never.spec_hash]
    assert (missing["status"], missing["run_id"], missing["seed"]) == ("missing", "", 5)


def test_every_budget_field_reaches_the_table_and_the_footer(store, tmp_path):
    """Budget has nine fields; the table used to read six, so grad_clip, threads and device never
    reached the provenance footer."""
    assert set(BUDGET_COLUMNS) == {f.name for f in dataclasses.fields(Budget)}
    budget = Budget(epochs=3, batch_size=16, optimizer="sgd", lr=0.05, weight_decay=0.01, patience=2,
                    grad_clip=0.5, threads=2, device="cuda:1")
    tracker = Tracker(store[0], "budget")  # the module's store (a new one costs seconds), its own suite
    parent = tracker.start_parent("bench run (test)")
    for seed in (0, 1):
        spec = RunSpec("late", "toy", seed, budget)
        info = RunInfo(data_hash="h", primary_metric="accuracy", higher_is_better=True, metric_variants=["accuracy"])
        tracker.log_result(tracker.start_child(parent, spec, "late"),
                           RunResult(spec, "finished", {TEST.key("accuracy"): 0.7 + seed / 10}, info=info))
    frame = runs_frame(tracker)
    for name in BUDGET_COLUMNS:
        assert set(frame[name]) == {str(getattr(budget, name))}, name
    expected = ("budget epochs=3, batch=16, lr=0.05, optimizer=sgd, weight_decay=0.01, patience=2, grad_clip=0.5, "
                "threads=2, device=cuda:1")
    assert expected in footer_items(build_board(frame, "budget"))
    loaded, _ = load_runs(export_runs(frame, tmp_path / "runs.json", "budget"))
    assert expected in render(loaded, "md", "budget")


def test_a_record_without_the_newer_budget_fields_shows_the_ones_it_has():
    """The published runs.json predates the grad_clip, threads and device columns: its footer
    shows the six fields it holds (so the committed tables re-render byte for byte)."""
    frame, suite = load_runs(ROOT / "leaderboards" / "runs.json")
    assert not {"grad_clip", "threads", "device"} & set(frame.columns)
    two = frame[frame["dataset"].isin(["basicmotions", "synthetic-xor"]) & frame["method"].isin(["late", "lmf"])]
    budget = next(item for item in footer_items(build_board(two, suite)) if item.startswith("budget "))
    assert budget == ("budget epochs=20, batch=64, lr=0.001, optimizer=adam, weight_decay=0.0, patience=10 "
                      "(synthetic-xor); epochs=50, batch=8, lr=0.001, optimizer=adam, weight_decay=0.0, patience=20 "
                      "(basicmotions)")


@pytest.mark.parametrize("test, target, level, metric", [
    ("noise", "all", 0.3, "accuracy"), ("missing", "text+audio", 1.0, "acc2_nonzero"),
    ("drop", "x1", 1e-05, "f1_macro"), ("timeshift", "a+b+c", 2.0, "mae"), ("noise", "x.y", 0.25, "corr/pearson")])
def test_the_stress_key_parser_round_trips_with_the_builder(test, target, level, metric):
    key = stress_key(test, target, level, metric)
    parsed = parse_stress_key(key)
    assert parsed == StressKey(test, key_target(target), level, metric)
    assert parsed.key == key and stress_key(*parsed) == key  # the key form of a target is its own key form
    assert stress_points({key: 0.5, "test/accuracy": 0.9}, test, target, metric) == {level: 0.5}


def test_keys_of_other_shapes_are_not_stress_keys():
    for key in ("test/accuracy", "stress/noise/all/accuracy", "stress/noise/all/high/accuracy",
                "emap/stress/a/1/b/c", "", None, 3.0):
        assert parse_stress_key(key) is None, key


def test_the_grid_writes_the_keys_the_readers_parse(store):
    """What the stress grid logged parses into cells whose key rebuilds the logged key."""
    _, results, _, _ = store
    keys = [k for k in results["finished"].metrics if k.startswith("stress/")]
    assert keys
    for key in keys:
        parsed = parse_stress_key(key)
        assert parsed is not None and parsed.key == key


def test_key_families_build_and_parse_one_way():
    assert TEST.key("accuracy") == "test/accuracy" and TEST.parse("test/accuracy") == "accuracy"
    assert VAL.parse("test/accuracy") is None and VAL.key("mae") == "val/mae"
    assert EMAP.key("gap", "accuracy") == "emap/gap/accuracy" and EMAP.parse("emap/gap/accuracy") == "gap/accuracy"
    assert NONFINITE.key("audio") == "data/nonfinite_replaced/audio" and DATA.owns(NONFINITE.key("audio"))
    assert INFO.key("peak_memory_run_mb") == "info/peak_memory_run_mb" and not INFO.owns("information/x")


def test_run_info_is_typed_and_reads_as_the_mapping_info_json_holds():
    info = RunInfo(params=10, wall_time_s=1.5, git_sha=None, metric_variants=["accuracy"])
    assert dict(info) == {"params": 10, "wall_time_s": 1.5, "metric_variants": ["accuracy"]}  # recorded fields
    assert info["params"] == 10 and info.get("git_sha") is None and "git_sha" not in info
    assert RunInfo.of({"params": 10, "wall_time_s": 1.5, "metric_variants": ["accuracy"]}) == info
    with pytest.raises(ValueError, match=r"no field\(s\) \['wall_time'\]"):
        RunInfo.of({"wall_time": 1.0})
    assert set(INFO_METRICS) <= set(INFO_FIELDS)
    result = RunResult(RunSpec("late", "toy", 0, Budget()), "failed", info={"wall_time_s": 2.0})
    assert isinstance(result.info, RunInfo) and result.info.wall_time_s == 2.0


def test_json_value_is_the_one_nan_to_none_conversion():
    assert [json_value(v) for v in (float("nan"), np.float32("nan"), None, np.int64(3), np.bool_(True),
                                    np.float64(0.25), "x", 7)] == [None, None, None, 3, True, 0.25, "x", 7]
    assert type(json_value(np.int64(3))) is int and type(json_value(np.float32(0.5))) is float
    assert [is_missing(v) for v in (None, float("nan"), np.float32("nan"), 0.0, "nan", 10**400, [1])] == [
        True, True, True, False, False, False, False]
