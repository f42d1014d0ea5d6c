"""BasicMotions (bundled) and the UEA/sktime .ts reader behind it (issue 19)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from benchmark_core import Budget, DatasetSpec, TargetSpec
from benchmark_core.cli import DEFAULT_DATASETS, main
from benchmark_core.engine.data import load_tensors
from benchmark_core.errors import DataError
from benchmark_core.specs import SpecError
from benchmark_core.suite.plan import make_plan
from benchmark_core.tracking import Tracker
from plugins.datasets import basicmotions
from plugins.datasets.uea import parse_grouping, read_ts, stratified_validation

CLASSES = ("Standing", "Running", "Walking", "Badminton")


def write_ts(path, cases, labels, classes=("a", "b"), header=None, lengths_equal=True):
    """Write a .ts file the way sktime's writer lays it out (comments, header, @data, cases)."""
    n_channels = cases[0].shape[0]
    lines = ["#A generated fixture", f"@problemName {path.stem}", "@timeStamps false", "@missing false",
             f"@univariate {'true' if n_channels == 1 else 'false'}", f"@dimensions {n_channels}",
             f"@equalLength {'true' if lengths_equal else 'false'}"]
    if lengths_equal:
        lines.append(f"@seriesLength {cases[0].shape[1]}")
    lines += [f"@classLabel true {' '.join(classes)}", *(header or []), "@data"]
    for case, label in zip(cases, labels, strict=True):
        lines.append(":".join(",".join(repr(float(v)) for v in channel) for channel in case) + f":{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def fixture_arrays(n=6, channels=4, steps=7, seed=0):
    rng = np.random.default_rng(seed)
    cases = [rng.normal(size=(channels, steps)).astype(np.float32) for _ in range(n)]
    return cases, ["a", "b"] * (n // 2)


def test_reader_round_trips_a_generated_file(tmp_path):
    cases, labels = fixture_arrays()
    ts = read_ts(write_ts(tmp_path / "X_TRAIN.ts", cases, labels))
    assert ts.problem == "X_TRAIN" and ts.class_labels == ("a", "b") and ts.n_channels == 4
    assert ts.labels.tolist() == labels and ts.equal_length
    for got, want in zip(ts.series, cases, strict=True):
        assert got.dtype == np.float32 and np.array_equal(got, want)


def test_reader_keeps_unequal_lengths_as_ragged_cases(tmp_path):
    cases = [np.ones((2, 5), np.float32), np.zeros((2, 3), np.float32)]
    ts = read_ts(write_ts(tmp_path / "R_TRAIN.ts", cases, ["a", "b"], lengths_equal=False))
    assert [s.shape for s in ts.series] == [(2, 5), (2, 3)] and not ts.equal_length


def test_shipped_files_counts_shapes_and_labels():
    for split in ("TRAIN", "TEST"):
        ts = read_ts(basicmotions.data_dir() / f"BasicMotions_{split}.ts")
        assert ts.problem == "BasicMotions" and ts.class_labels == CLASSES
        assert len(ts.series) == 40 and {s.shape for s in ts.series} == {(6, 100)}
        assert {c: int((ts.labels == c).sum()) for c in CLASSES} == dict.fromkeys(CLASSES, 10)
    first = read_ts(basicmotions.data_dir() / "BasicMotions_TRAIN.ts").series[0]
    assert first[0, :3].tolist() == pytest.approx([0.079106, 0.079106, -0.903497])  # the file's first values


def test_shipped_files_are_the_attributed_bytes():
    source = (basicmotions.data_dir() / "SOURCE.md").read_text()
    assert "arXiv:1811.00075" in source and "BSD 3-Clause" in source and "sktime" in source
    for split in ("TRAIN", "TEST"):
        path = basicmotions.data_dir() / f"BasicMotions_{split}.ts"
        assert hashlib.sha256(path.read_bytes()).hexdigest() in source


MALFORMED = [
    # (what is wrong, file text after the header, expected message fragment)
    ("no @data", None, "no @data line"),
    ("label not declared", "1,2:3,4:c", "class label 'c' is not among"),
    ("channel count changes", "1,2:3,4:a\n1,2:b", "1 channels, but earlier cases have 2"),
    ("missing value", "1,?:3,4:a", "line 7, channel 1: missing value"),
    ("channels of unequal length", "1,2,3:3,4:a", "channels have different lengths"),
    ("not a number", "1,x:3,4:a", "values must be numbers"),
    ("non-finite", "1,nan:3,4:a", "non-finite value"),
    ("time stamps", "(0,1),(1,2):3,4:a", "time-stamped values"),
    ("no label separator", "1,2", "needs at least one channel and a class label"),
    ("declared dimensions disagree", "1,2:3,4:a\n", "@dimensions 3 but the cases have 2"),
    ("declared length disagrees", "1,2,5:3,4,6:a", "@seriesLength 2 but the cases have 3"),
]


@pytest.mark.parametrize("what,data,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_get_one_clear_error_naming_file_and_line(tmp_path, what, data, message):
    dims = 3 if what == "declared dimensions disagree" else 2
    header = ["@problemName P", f"@dimensions {dims}", "@equalLength true", "@seriesLength 2",
              "@classLabel true a b"]
    text = "\n".join(header) + ("" if data is None else "\n@data\n" + data) + "\n"
    path = tmp_path / "P_TRAIN.ts"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        read_ts(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("header,message", [
    ("@classLabel false", "not a classification file"),
    ("@targetLabel true", "regression file"),
    ("@timeStamps true\n@classLabel true a b", "@timeStamps true is not supported"),
    ("@missing true\n@classLabel true a b", "@missing true"),
    ("@problemName P", "no @classLabel line"),
])
def test_unsupported_headers_are_refused_with_the_reason(tmp_path, header, message):
    path = tmp_path / "P_TRAIN.ts"
    path.write_text(header + "\n@data\n1,2:a\n")
    with pytest.raises(DataError, match=re.escape(message)):
        read_ts(path)


def test_binary_or_missing_files_are_refused(tmp_path):
    (tmp_path / "bin.ts").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_ts(tmp_path / "bin.ts")
    with pytest.raises(DataError, match="no such file"):
        read_ts(tmp_path / "absent.ts")


def test_grouping_parses_one_based_ranges_and_refuses_overlaps():
    assert parse_grouping("acc:1-3,gyro:4-6", 6, "w") == {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
    assert parse_grouping("x:2", 6, "w") == {"x": [1]}
    for bad, message in (("acc:1-7", "has channels 1-6"), ("acc:1-3,gyro:3-4", "repeats"),
                         ("acc=1-3", "must look like name:first-last"), ("", "give the channel")):
        with pytest.raises(DataError, match=message):
            parse_grouping(bad, 6, "w")


def test_validation_is_stratified_and_fixed_by_the_data_seed():
    labels = np.repeat(np.arange(4), 10)
    train, validation = stratified_validation(labels, 0.2, 0)
    assert len(train) == 32 and len(validation) == 8 and not set(train) & set(validation)
    assert np.bincount(labels[validation]).tolist() == [2, 2, 2, 2]
    again, other = stratified_validation(labels, 0.2, 0)[1], stratified_validation(labels, 0.2, 1)[1]
    assert np.array_equal(validation, again) and not np.array_equal(validation, other)


def test_basicmotions_loads_two_standardised_sequence_modalities():
    dsd, report = basicmotions.load({})
    assert {s: len(d) for s, d in dsd.items()} == {"train": 32, "validation": 8, "test": 40}
    for split, per_class in (("train", 8), ("validation", 2), ("test", 10)):
        assert np.bincount(dsd[split]["label"]).tolist() == [per_class] * 4
    acc = np.array(dsd["train"]["accelerometer"])  # (32, 100, 3)
    assert acc.shape == (32, 100, 3) and np.array(dsd["test"]["gyroscope"]).shape == (40, 100, 3)
    assert np.allclose(acc.reshape(-1, 3).mean(axis=0), 0, atol=1e-5)
    assert np.allclose(acc.reshape(-1, 3).std(axis=0), 1, atol=1e-4)
    assert report["modalities"] == {"accelerometer": [1, 2, 3], "gyroscope": [4, 5, 6]}
    assert report["files"] == ["bundled:BasicMotions_TRAIN.ts", "bundled:BasicMotions_TEST.ts"]
    raw = np.array(basicmotions.load({"standardize": False})[0]["test"]["gyroscope"])
    first_test = read_ts(basicmotions.data_dir() / "BasicMotions_TEST.ts").series[0]
    assert np.allclose(raw[0].T, first_test[3:6])  # channels 4-6, test order kept


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(DataError, match="no option.*'standardise'.*standardize"):
        basicmotions.load({"standardise": False})


def test_generic_uea_dataset_takes_modalities_and_classes_from_the_file(tmp_path, registry):
    cases, labels = fixture_arrays(n=12, channels=5, steps=4)
    write_ts(tmp_path / "Toy_TRAIN.ts", cases, labels, classes=("a", "b"))
    write_ts(tmp_path / "Toy_TEST.ts", cases[:4], labels[:4], classes=("a", "b"))
    options = {"train": str(tmp_path / "Toy_TRAIN.ts"), "modalities": "left:1-2,right:3-5"}
    tensors = load_tensors(registry.dataset("uea"), options, reload=True)
    assert tensors.task.modality_names == ("left", "right")
    assert [m.dim for m in tensors.task.modalities] == [2, 3] and tensors.task.target.n_outputs == 2
    assert tensors.task.target.labels == ("a", "b")
    assert len(tensors.train.y) + len(tensors.splits["validation"].y) == 12 and len(tensors.test.y) == 4
    with pytest.raises(DataError, match=r"needs the training file.*uea.train="):
        load_tensors(registry.dataset("uea"), {}, reload=True)


def test_generic_uea_dataset_parses_each_file_once(tmp_path, registry, monkeypatch):
    """Learning the spec from the files and building the dataset share one parse."""
    import plugins.datasets.uea as uea

    cases, labels = fixture_arrays(n=12, channels=5, steps=4)
    write_ts(tmp_path / "Once_TRAIN.ts", cases, labels, classes=("a", "b"))
    write_ts(tmp_path / "Once_TEST.ts", cases[:4], labels[:4], classes=("a", "b"))
    reads: list[str] = []
    original = uea.read_ts
    monkeypatch.setattr(uea, "read_ts", lambda path: reads.append(Path(path).name) or original(path))
    load_tensors(registry.dataset("uea"), {"train": str(tmp_path / "Once_TRAIN.ts"), "modalities": "l:1-2,r:3-5"},
                 reload=True)
    assert sorted(reads) == ["Once_TEST.ts", "Once_TRAIN.ts"]


def test_a_dataset_budget_applies_unless_the_user_pins_the_flag(registry):
    plan = make_plan(registry, ["additive"], ["basicmotions", "synthetic-xor"], [0], Budget(epochs=3),
                     pinned={"epochs"})
    budgets = {s.dataset: s.budget for s in plan}
    assert budgets["basicmotions"].batch_size == basicmotions.BUDGET["batch_size"] == 8
    assert budgets["basicmotions"].epochs == 3  # pinned by the user
    assert budgets["synthetic-xor"] == Budget(epochs=3)
    exact = make_plan(registry, ["additive"], ["basicmotions"], [0], Budget(epochs=3))  # library default
    assert exact[0].budget == Budget(epochs=3)
    with pytest.raises(SpecError, match="budget names \\['device'\\]"):
        DatasetSpec(name="d", load=lambda o: None, target=TargetSpec("multiclass", 2), modalities=("x",),
                    metrics=("accuracy",), primary_metric="accuracy", budget={"device": "cuda"})


def test_basicmotions_is_in_the_default_suite_and_runs_end_to_end(tmp_path, monkeypatch, capsys):
    assert "basicmotions" in DEFAULT_DATASETS
    monkeypatch.chdir(tmp_path)
    args = ["run", "--methods", "additive,mult", "--datasets", "basicmotions", "--seeds", "0",
            "--epochs", "1", "--no-stress", "--emap-samples", "8"]
    assert main(args) == 0
    assert "3 trained" in capsys.readouterr().out  # + the late baseline EMAP compares with
    assert main(["leaderboard", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in doc["results"] if r["dataset"] == "basicmotions"}
    assert set(rows) == {"additive", "late", "mult"}
    # one seed: each cell is its run's recorded test accuracy (the primary metric)
    runs = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "default").child_runs()
    recorded = {r.data.tags["fusebench.method"]: r.data.metrics["test/accuracy"] for r in runs}
    assert {m: (r["metric"], r["mean"]) for m, r in rows.items()} == {m: ("accuracy", v) for m, v in recorded.items()}
    assert any("batch=8" in b and "epochs=1" in b for b in doc["provenance"]["budget"])
    # the small-comparison warnings apply to it like to any dataset: 1 seed, and 1 epoch of 4 steps
    footer = json.dumps(doc["footer"])
    assert "fewer than 3 seeds" in footer and "basicmotions: 4 at the least" in footer
