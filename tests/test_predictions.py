"""Stored predictions (issue 15 §1): every run keeps its test and validation predictions,
targets and sample ids as ``predictions.npz``, so any metric registered later can be computed
for old runs without retraining, and ``bench publish`` keeps a compact, byte-stable copy."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import TINY_XOR
from fixtures_affect import write_mult

from benchmark_core import DatasetSpec, MetricSpec, hookimpl
from benchmark_core.cli import main
from benchmark_core.engine.data import load_tensors
from benchmark_core.errors import FuseBenchError
from benchmark_core.plugins import build_registry, get_registry
from benchmark_core.predictions import (
    ARTIFACT,
    SPLITS,
    load,
    load_exported,
    read_npz,
    recompute,
    registered_metrics,
)
from benchmark_core.record import RunResult
from benchmark_core.reporting.leaderboard import runs_frame
from benchmark_core.reporting.publish import export_predictions
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.suite.executors import ProcessExecutor, SerialExecutor
from benchmark_core.suite.plan import make_plan, run_suite
from benchmark_core.tracking import Tracker
from plugins.datasets.synthetic import DEFAULTS, TARGET, make_loader

EVAL_OFF = {"stress": False, "emap": False}
PREFIX = {"test": "test", "validation": "val"}


def _suite(registry, tracker, methods, dataset, options, executor=None, seeds=(0,)):
    specs = make_plan(registry, methods, [dataset], list(seeds), Budget(epochs=2, batch_size=32),
                      dataset_options={dataset: options}, evaluation=EVAL_OFF)
    report = run_suite(registry, specs, tracker, executor or SerialExecutor(registry), "bench run (test)",
                       echo=lambda s: None)
    assert all(r.ok for r in report.results), [r.traceback for r in report.results]
    return report


def _log_old_run(tracker: Tracker, parent: str, data_hash: str) -> str:
    """A finished run as FuseBench logged it before predictions were stored: metrics only."""
    spec = RunSpec("late", "synthetic-xor", 7, Budget(epochs=1))
    info = {"data_hash": data_hash, "primary_metric": "accuracy", "higher_is_better": True,
            "metric_variants": ["accuracy", "f1_macro"]}
    run_id = tracker.start_child(parent, spec, "late")
    tracker.log_result(run_id, RunResult(spec, "finished", {"test/accuracy": 0.5, "val/accuracy": 0.25}, info=info))
    return run_id


@pytest.fixture(scope="module")
def xor_suite(tmp_path_factory):
    """Two finished synthetic-xor runs (row-number ids) and one run logged without predictions."""
    registry = build_registry()
    tracker = Tracker(f"sqlite:///{tmp_path_factory.mktemp('pred') / 'mlflow.db'}", "pred")
    report = _suite(registry, tracker, ["additive"], "synthetic-xor", TINY_XOR, seeds=(0, 1))
    parent = tracker.start_parent("older FuseBench")
    old = _log_old_run(tracker, parent, report.results[0].info["data_hash"])
    tracker.end_run(parent)
    return registry, tracker, report, old


def _assert_same(stored, expected) -> None:
    for split in SPLITS:
        got, want = getattr(stored, split), getattr(expected, split)
        for field in ("ids", "y", "pred"):
            assert np.array_equal(getattr(got, field), getattr(want, field)), (split, field)
            kind = (lambda a: a.dtype.kind) if field == "ids" else (lambda a: a.dtype)  # str of any width
            assert kind(getattr(got, field)) == kind(getattr(want, field)), (split, field)


def test_artifact_round_trip_with_row_number_ids(xor_suite):
    registry, tracker, report, _ = xor_suite
    data = load_tensors(registry.dataset("synthetic-xor"), TINY_XOR)
    by_hash = tracker.finished_hashes()
    for result in report.results:
        run_id = by_hash[result.spec.spec_hash]
        artifacts = {a.path for a in tracker.client.list_artifacts(run_id)}
        assert ARTIFACT in artifacts
        stored = load(tracker, [run_id])[run_id]
        assert stored.run_id == run_id
        _assert_same(stored, result.predictions)
        for split in SPLITS:
            part, tensors = getattr(stored, split), data.splits[split]
            assert part.ids.tolist() == [str(i) for i in range(tensors.size)]  # no id column: row numbers
            assert np.array_equal(part.y, tensors.y.numpy()) and part.y.dtype == np.int64
            assert part.pred.dtype == np.float32 and part.pred.shape == (tensors.size, 2)


def test_artifact_round_trip_with_dataset_ids_through_worker_processes(registry, fusebench_tracking_uri, tmp_path):
    expected = write_mult(tmp_path / "mosi", n=(24, 8, 8))
    tracker = Tracker(fusebench_tracking_uri, "mosi")
    report = _suite(registry, tracker, ["additive"], "mosi", {"data_dir": str(tmp_path / "mosi")},
                    executor=ProcessExecutor(workers=1))
    result = report.results[0]
    run_id = tracker.finished_hashes()[result.spec.spec_hash]
    stored = load(tracker, [run_id])[run_id]
    _assert_same(stored, result.predictions)
    for split in SPLITS:
        part = getattr(stored, split)
        assert part.ids.tolist() == expected.ids[split]  # the dataset's own ids, e.g. 'vid1|4|0'
        assert np.array_equal(part.y, expected.labels[split]) and part.pred.shape == (len(part.ids), 1)
    frame = runs_frame(tracker)
    again = recompute(frame, {run_id: stored}, registered_metrics(registry, ["mosi"]))
    for name in registry.dataset("mosi").metrics:
        for prefix in PREFIX.values():
            key = f"{prefix}/{name}"
            assert np.array_equal(again.frame[key].to_numpy(), frame[key].to_numpy(), equal_nan=True), key


def test_recompute_equals_stored_metrics(xor_suite):
    registry, tracker, report, old = xor_suite
    frame = runs_frame(tracker)
    stored = load(tracker, frame.loc[frame["status"] == "finished", "run_id"])
    assert old not in stored and len(stored) == 2
    done = recompute(frame, stored, registered_metrics(registry, ["synthetic-xor"]))
    assert sorted(done.recomputed) == sorted(stored) and done.without_predictions == [old]
    for run_id in stored:
        before, after = frame[frame["run_id"] == run_id].iloc[0], done.frame[done.frame["run_id"] == run_id].iloc[0]
        for name in ("accuracy", "f1_macro"):
            for prefix in PREFIX.values():
                assert after[f"{prefix}/{name}"] == before[f"{prefix}/{name}"]  # exactly, not approximately
    untouched = [c for c in frame.columns if not c.startswith(("test/", "val/"))]
    assert done.frame[untouched].equals(frame[untouched])


def test_a_metric_that_raises_names_itself_and_the_run(xor_suite):
    _, tracker, _, _ = xor_suite
    frame = runs_frame(tracker)
    stored = load(tracker, frame.loc[frame["status"] == "finished", "run_id"])

    def broken(y_true, y_pred):
        raise ValueError("needs probabilities,\nnot logits")

    with pytest.raises(FuseBenchError, match=r"Metric 'broken' raised ValueError: needs probabilities, not logits "
                                             r"on the stored predictions of run \w+ \(additive on synthetic-xor"):
        recompute(frame, stored, {"synthetic-xor": {"broken": MetricSpec("broken", broken)}})


def test_run_logged_before_this_change_is_reported_not_recomputable(xor_suite, capsys):
    _, tracker, _, old = xor_suite
    assert load(tracker, [old]) == {}
    assert main(["leaderboard", "--tracking-uri", tracker.uri, "--suite", "pred", "--recompute",
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "recomputed the metrics of 2 runs" in captured.err
    assert "1 run has no stored predictions" in captured.err
    frame = runs_frame(tracker)
    assert frame.loc[frame["run_id"] == old, "test/accuracy"].item() == 0.5  # its logged value stays


NEW_METRIC_PLUGIN = '''
import numpy as np

from benchmark_core import DatasetSpec, MetricSpec, hookimpl
from plugins.datasets.synthetic import DEFAULTS, TARGET, make_loader


def error_rate(y_true, y_pred):
    return float((np.asarray(y_pred).argmax(axis=1) != np.asarray(y_true)).mean())


@hookimpl
def register_metrics(register):
    register(MetricSpec("error_rate", error_rate, higher_is_better=False, target_kinds=("multiclass",)))


@hookimpl
def register_datasets(register):  # the dataset's new release lists the new metric
    register(DatasetSpec(name="tiny-xor", load=make_loader("xor", False), target=TARGET, modalities=("x1", "x2"),
                         metrics=("accuracy", "error_rate"), primary_metric="accuracy", defaults=DEFAULTS))
'''


class TinyXorV1:
    """The dataset as it was when the suite ran: scored with accuracy only."""

    @staticmethod
    @hookimpl
    def register_datasets(register):
        register(DatasetSpec(name="tiny-xor", load=make_loader("xor", False), target=TARGET, modalities=("x1", "x2"),
                             metrics=("accuracy",), primary_metric="accuracy", defaults=DEFAULTS))


@pytest.fixture
def fresh_registry():
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()


def test_new_metric_plugin_is_computed_for_an_old_suite_without_retraining(fusebench_tracking_uri, install_plugin,
                                                                             fresh_registry, tmp_path, capsys):
    old_registry = build_registry(plugins=[TinyXorV1])
    tracker = Tracker(fusebench_tracking_uri, "late-metric")
    _suite(old_registry, tracker, ["additive", "late"], "tiny-xor", TINY_XOR)
    before = {r.info.run_id for r in tracker.client.search_runs([tracker.experiment_id])}
    assert main(["leaderboard", "--tracking-uri", fusebench_tracking_uri, "--suite", "late-metric",
                 "--metrics", "error_rate"]) == 2  # not recorded when the suite ran
    capsys.readouterr()

    install_plugin("fusebench-error-rate", "1.0", "fusebench_error_rate", NEW_METRIC_PLUGIN, entry_name="errrate")
    assert main(["leaderboard", "--tracking-uri", fusebench_tracking_uri, "--suite", "late-metric", "--recompute",
                 "--metrics", "accuracy,error_rate", "--format", "json", "--out", str(tmp_path / "b.json")]) == 0
    assert "recomputed the metrics of 2 runs" in capsys.readouterr().err
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    cells = {(r["method"], r["metric"]): r["mean"] for r in rows}
    frame = runs_frame(tracker)
    for method in ("additive", "late"):
        accuracy = frame.loc[frame["method"] == method, "test/accuracy"].item()
        assert cells[(method, "accuracy")] == accuracy  # the stored primary metric, exactly
        assert cells[(method, "error_rate")] == pytest.approx(1 - accuracy)
    after = {r.info.run_id for r in tracker.client.search_runs([tracker.experiment_id])}
    assert after == before, "recomputing must not create (or train) any run"


def test_export_is_byte_stable_compact_and_loadable(xor_suite, tmp_path):
    registry, tracker, report, old = xor_suite
    frame = runs_frame(tracker)
    first = export_predictions(tracker, frame, tmp_path / "a" / "predictions.npz")
    time.sleep(2.1)  # a zip entry's time has 2-second resolution: a later write must not change the bytes
    second = export_predictions(tracker, frame, tmp_path / "b" / "predictions.npz")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.without_predictions == [old] and first.runs == 2
    exported = load_exported(first.path)
    by_hash = tracker.finished_hashes()
    assert set(exported) == {r.spec.spec_hash for r in report.results}
    for result in report.results:
        stored = exported[result.spec.spec_hash]
        assert stored.run_id == by_hash[result.spec.spec_hash]
        _assert_same(stored, result.predictions)
    members = read_npz(first.path)
    for name, array in members.items():  # compact: small ints for row ids and labels, float32 outputs
        if "/ids/" in name or "/y/" in name:
            assert array.dtype.itemsize == 1, (name, array.dtype)
        if "/pred/" in name:
            assert array.dtype == np.float32
    assert sum(1 for n in members if n.startswith("test/ids/")) == 1  # shared by the runs on the same data
    again = recompute(frame, exported, registered_metrics(registry, ["synthetic-xor"]))
    assert sorted(again.recomputed) == sorted(by_hash[r.spec.spec_hash] for r in report.results)


def test_bench_publish_stores_and_checks_the_predictions(xor_suite, tmp_path, capsys):
    _, tracker, report, _ = xor_suite
    out = tmp_path / "boards"
    assert main(["publish", "--no-run", "--no-plots", "--no-log", "--out", str(out), "--tracking-uri", tracker.uri,
                 "--suite", "pred"]) == 0
    printed = capsys.readouterr().out
    assert "predictions of 2 runs" in printed and "1 run has no stored predictions" in printed
    assert set(load_exported(out / "predictions.npz")) == {r.spec.spec_hash for r in report.results}
    assert main(["publish", "--render-only", "--no-plots", "--out", str(out)]) == 0
    assert "with the stored predictions of 2 runs" in capsys.readouterr().out
    assert main(["leaderboard", "--from", str(out / "runs.json"), "--recompute", "--format", "json"]) == 0
    assert "recomputed the metrics of 2 runs" in capsys.readouterr().err


def test_predictions_of_another_publish_are_refused(xor_suite, tmp_path, capsys):
    """A predictions.npz left from an earlier publish must not pass for this runs.json's."""
    _, tracker, _, _ = xor_suite
    out = tmp_path / "boards"
    assert main(["publish", "--no-run", "--no-plots", "--no-log", "--out", str(out), "--tracking-uri", tracker.uri,
                 "--suite", "pred"]) == 0
    runs = json.loads((out / "runs.json").read_text())
    run_id = runs["meta"]["columns"].index("run_id")
    for row in runs["runs"]:
        row[run_id] = "x" + row[run_id][1:]
    (out / "runs.json").write_text(json.dumps(runs))
    assert main(["publish", "--render-only", "--no-plots", "--out", str(out)]) == 2
    assert "predictions.npz" in capsys.readouterr().err
