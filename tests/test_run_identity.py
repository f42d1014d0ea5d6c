"""A run's identity covers the data it read: a changed data file is retrained, never skipped as
"already finished" (issue 12 §1), and a plan holds each run once (§4, repeated seeds)."""

from __future__ import annotations

import pickle
import re

import pytest
from fixtures_affect import write_mult

from benchmark_core.cli import main
from benchmark_core.plugins import get_registry
from benchmark_core.specs import Budget
from benchmark_core.suite.plan import make_plan
from benchmark_core.suite.runner import execute


def _run_args(data_dir, *extra):
    return ["run", "--methods", "additive", "--datasets", "mosi", "--data-dir", str(data_dir), "--seeds", "0",
            "--epochs", "1", "--batch-size", "8", "--no-stress", "--no-emap", *extra]


def _summary(out: str) -> tuple[int, int]:
    match = re.search(r"Done: (\d+) trained, (\d+) skipped", out)
    assert match, out
    return int(match[1]), int(match[2])


def _negate_test_labels(path):
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    data["test"]["labels"] = -data["test"]["labels"]
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)


def test_changed_data_file_is_retrained_not_skipped(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    write_mult(data / "mosi", n=(24, 8, 8))
    monkeypatch.chdir(tmp_path)
    assert main(_run_args(data)) == 0
    assert _summary(capsys.readouterr().out) == (1, 0)
    assert main(_run_args(data)) == 0
    assert _summary(capsys.readouterr().out) == (0, 1)

    _negate_test_labels(data / "mosi" / "mosi_data.pkl")
    assert main(_run_args(data)) == 0
    assert _summary(capsys.readouterr().out) == (1, 0)  # before issue 12: "0 trained, 1 skipped"

    # Both data versions are in the store: the leaderboard refuses to mix them, says which
    # versions exist, and shows the newest one on request.
    assert main(["leaderboard"]) == 2
    err = capsys.readouterr().err
    assert "different data" in err and "--latest-data" in err and "2 runs" not in err
    assert main(["leaderboard", "--latest-data"]) == 0
    assert "additive" in capsys.readouterr().out


def test_conversion_options_are_part_of_the_identity(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_mult(data / "mosi", n=(24, 8, 8))
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(data))
    registry = get_registry()

    def plan(**options):
        return make_plan(registry, ["additive"], ["mosi"], [0], Budget(epochs=1),
                         dataset_options={"mosi": options} if options else None)[0]

    default, explicit = plan(), plan(padding="left")
    # every conversion option is recorded with its resolved value, defaults included
    assert default.dataset_options["padding"] == "auto" and default.dataset_options["aligned"] == "auto"
    assert explicit.dataset_options["padding"] == "left"
    assert default.spec_hash != explicit.spec_hash
    assert default.data_hash and len(default.data_hash) == 16


def test_data_that_changed_after_planning_fails_the_run(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_mult(data / "mosi", n=(24, 8, 8))
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(data))
    registry = get_registry()
    spec = make_plan(registry, ["additive"], ["mosi"], [0], Budget(epochs=1, batch_size=8),
                     evaluation={"stress": False, "emap": False})[0]
    _negate_test_labels(data / "mosi" / "mosi_data.pkl")
    make_plan(registry, ["additive"], ["mosi"], [0], Budget(epochs=1, batch_size=8))  # reloads the files
    result = execute(spec, registry)
    assert result.status == "failed"
    assert "changed after this run was planned" in result.error and spec.data_hash in result.error


def test_repeated_seeds_are_planned_and_trained_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--methods", "additive", "--datasets", "synthetic-xor", "--seeds", "0,0", "--epochs", "1",
            "--dataset-option", "synthetic-xor.n=200", "--no-stress", "--no-emap", "--executor", "process",
            "--workers", "2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert _summary(captured.out) == (1, 0)
    assert "1 repeated run(s) planned once" in captured.err
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("fusebench/default")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]  # parent + one child, none RUNNING


def test_run_suite_drops_repeats_it_is_handed(fusebench_tracking_uri):
    from conftest import tiny_spec

    from benchmark_core.suite.executors import SerialExecutor
    from benchmark_core.suite.plan import run_suite
    from benchmark_core.tracking import Tracker

    spec = tiny_spec(epochs=1)
    lines: list[str] = []
    report = run_suite(get_registry(), [spec, spec], Tracker(fusebench_tracking_uri), SerialExecutor(get_registry()),
                       echo=lines.append)
    assert report.planned == 1 and len(report.results) == 1
    assert any("planned once" in line for line in lines)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_labels_are_refused_at_load(bad):
    import datasets
    import numpy as np

    from benchmark_core.engine.data import dataset_from_arrays, to_tensors
    from benchmark_core.errors import DataError
    from benchmark_core.specs import DatasetSpec, TargetSpec

    target = TargetSpec("regression", 1)
    labels = np.zeros(6, dtype=np.float32)
    labels[[2, 4]] = float(bad)
    good = dataset_from_arrays({"a": ("vector", np.ones((6, 2)))}, np.zeros(6, dtype=np.float32), target)
    broken = dataset_from_arrays({"a": ("vector", np.ones((6, 2)))}, labels, target)
    spec = DatasetSpec("toy", lambda o: None, target, ("a",), ("mae",), "mae")
    dsd = datasets.DatasetDict({"train": good, "validation": good, "test": broken})
    with pytest.raises(DataError, match=r"dataset 'toy' split 'test': 2 row\(s\) have non-finite labels "
                                        r"\(NaN/inf\) in column 'label', at rows \[2, 4\]"):
        to_tensors(spec, dsd)


def test_labels_of_the_wrong_width_are_refused_not_truncated():
    import datasets
    import numpy as np

    from benchmark_core.engine.data import dataset_from_arrays, to_tensors
    from benchmark_core.errors import DataError
    from benchmark_core.specs import DatasetSpec, TargetSpec

    ds = dataset_from_arrays({"a": ("vector", np.ones((4, 2)))}, np.zeros((4, 5), dtype=np.float32),
                             TargetSpec("regression", 5))
    spec = DatasetSpec("toy", lambda o: None, TargetSpec("regression", 1), ("a",), ("mae",), "mae")
    with pytest.raises(DataError, match=r"5 value\(s\) per row.*n_outputs=1"):
        to_tensors(spec, datasets.DatasetDict({"train": ds, "validation": ds, "test": ds}))
