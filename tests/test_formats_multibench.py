"""MultiBench affect pickles (MOSI, MOSEI, MUStARD, UR-FUNNY) and DialogueRNN IEMOCAP pickles
(iemocap6): fixtures in the exact layouts -> the real loader -> ground truth, malformed files ->
one-paragraph errors, and ``bench run`` end to end."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fixtures_formats_multibench import (
    DIALOGUE_DIMS,
    MULTIBENCH_DIMS,
    documented_validation,
    rewrite,
    write_dialoguernn,
    write_multibench,
)

from benchmark_core.cli import main
from benchmark_core.engine.data import to_tensors
from benchmark_core.errors import DataError
from plugins.datasets.affect.loader import load, make_spec
from plugins.datasets.affect.profiles import IEMOCAP6, MOSEI, MOSI, MUSTARD, URFUNNY

SPLITS = ("train", "validation", "test")
MULTIBENCH_CASES = [("sarcasm.pkl", MUSTARD, [-1.0, 1.0]), ("humor.pkl", URFUNNY, [0.0, 1.0]),
                    ("mosi_raw.pkl", MOSI, None), ("mosei_raw.pkl", MOSEI, None)]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FUSEBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _check_sequences(dsd, expected, label_dtype):
    for split in SPLITS:
        for m in MULTIBENCH_DIMS["sarcasm.pkl"]:
            lengths = np.array([len(seq) for seq in dsd[split][m]])
            assert np.array_equal(lengths, expected.lengths[split][m]), (split, m)
            assert np.array_equal(np.array(dsd[split][0][m], dtype=np.float32), expected.first_steps[split][m])
        assert np.array_equal(np.array(dsd[split]["label"], dtype=label_dtype), expected.labels[split])
        assert dsd[split]["id"] == expected.ids[split]


# -- MultiBench -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "profile", "values"), MULTIBENCH_CASES)
def test_multibench_file_drops_textless_samples_and_strips_front_padding(tmp_path, name, profile, values):
    expected = write_multibench(tmp_path, name)
    dsd, report = load(profile, {"data_dir": str(tmp_path)})
    _check_sequences(dsd, expected, np.int64 if values else np.float32)
    assert report["format"] == "multibench" and report["file"] == name and report["aligned"] is True
    assert report["padding"] == "left"
    assert report["dropped_empty_text"] == {s: len(expected.dropped[s]) for s in SPLITS} == \
        {"train": 1, "validation": 0, "test": 1}
    assert report["dropped_empty_text_ids"] == {s: ids for s, ids in expected.dropped.items() if ids}
    assert report["kept_edge_steps_without_text"] == expected.edge_without_text == 1
    assert report.get("label_values") == values
    tensors = to_tensors(make_spec(profile), dsd)
    assert tensors.report["nonfinite_replaced"]["audio"] == expected.nonfinite["audio"] == 6  # COVAREP -inf


def test_multibench_labels_map_positive_to_class_one_in_every_encoding(tmp_path):
    expected = write_multibench(tmp_path, "sarcasm.pkl")  # stored {-1, 1}
    stored = {}

    def as_bool(data):
        for key, fields in data.items():
            stored[key] = fields["labels"].copy()
            fields["labels"] = fields["labels"].reshape(-1) > 0  # MUStARD's own booleans, shape (N,)

    rewrite(tmp_path / "sarcasm.pkl", as_bool)
    dsd, report = load(MUSTARD, {"data_dir": str(tmp_path)})
    assert np.array_equal(dsd["train"]["label"], expected.labels["train"])
    assert report["label_values"] == [0.0, 1.0]
    assert set(np.unique(stored["train"])) == {-1.0, 1.0}


def test_multibench_back_padding_is_decided_from_the_data(tmp_path):
    expected = write_multibench(tmp_path, "humor.pkl", side="right")
    dsd, report = load(URFUNNY, {"data_dir": str(tmp_path)})
    _check_sequences(dsd, expected, np.int64)
    assert report["padding"] == "right"
    assert report["padding_by_modality"]["text"]["decided_by"] == "evidence"
    assert report["kept_edge_steps_without_text"] == 1
    with pytest.raises(DataError, match=r"humor\.pkl modality 'text'.*urfunny\.padding=left.*clearly show right"):
        load(URFUNNY, {"data_dir": str(tmp_path), "padding": "left"})


def test_mult_claims_its_file_names_unless_multibench_is_asked_for(tmp_path):
    write_multibench(tmp_path, "mosei_senti_data.pkl")  # MulT's name; MultiBench's loader reads it unchanged
    _, report = load(MOSEI, {"data_dir": str(tmp_path)})
    assert report["format"] == "mult"  # MulT's reader: no textless sample dropped
    dsd, report = load(MOSEI, {"data_dir": str(tmp_path), "format": "multibench"})
    assert report["format"] == "multibench" and report["file"] == "mosei_senti_data.pkl"
    assert report["dropped_empty_text"]["train"] == 1 and len(dsd["train"]) == 23

    mosi = tmp_path / "mosi"
    write_multibench(mosi, "mosi_raw.pkl", n=(10, 5, 5))
    write_multibench(mosi, "mosei_senti_data.pkl")  # another dataset's name is never read as MOSI
    from fixtures_affect import write_mult
    write_mult(mosi, "mosi")
    assert load(MOSI, {"data_dir": str(mosi)})[1]["format"] == "mult"  # multibench is listed last
    _, report = load(MOSI, {"data_dir": str(mosi), "format": "multibench"})
    assert report["file"] == "mosi_raw.pkl"  # MultiBench's own file before MulT's


def test_files_named_for_their_dataset_are_found_in_the_data_root(tmp_path, monkeypatch):
    write_multibench(tmp_path, "sarcasm.pkl")
    write_multibench(tmp_path, "humor.pkl")
    write_dialoguernn(tmp_path)
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(tmp_path))
    assert load(MUSTARD, {})[1]["file"] == "sarcasm.pkl"
    assert load(URFUNNY, {})[1]["file"] == "humor.pkl"
    assert load(IEMOCAP6, {})[1]["file"] == "IEMOCAP_features_raw.pkl"


def test_missing_multibench_data_says_which_file_and_where_to_get_it(tmp_path):
    with pytest.raises(DataError) as info:
        load(MUSTARD, {"data_dir": str(tmp_path)})
    message = str(info.value)
    for fragment in ("MUStARD", "sarcasm.pkl", "github.com/pliang279/MultiBench", "never downloads"):
        assert fragment in message, fragment


def _set_labels(split, values):
    def change(data):
        data[split]["labels"] = np.asarray(values, dtype=np.float32)
    return change


@pytest.mark.parametrize(("change", "pattern"), [
    (lambda n: np.array([0, 1, 2] * (n // 3) + [0] * (n % 3)).reshape(n, 1),
     r"sarcasm\.pkl split 'test' field 'labels': labels take the values \{0\.0: \d+, 1\.0: \d+, 2\.0: \d+\}.*"
     r"\{0, 1\}.*\{-1, 1\}.*re-encode"),
    (lambda n: np.linspace(-1, 1, n).reshape(n, 1), r"labels take the values .*a score"),
    (lambda n: np.zeros((n, 2)), r"sarcasm\.pkl split 'test' field 'labels': labels have shape \(8, 2\)"),
    (lambda n: np.where(np.arange(n) == 2, np.nan, 1.0).reshape(n, 1),
     r"1 non-finite labels \(NaN/inf\) at rows \[2\] \(ids \['3_test2'\]\)"),
])
def test_multibench_bad_labels_are_one_paragraph(tmp_path, change, pattern):
    write_multibench(tmp_path, "sarcasm.pkl")
    rewrite(tmp_path / "sarcasm.pkl", _set_labels("test", change(8)))
    with pytest.raises(DataError, match=pattern) as info:
        load(MUSTARD, {"data_dir": str(tmp_path)})
    assert "\n" not in str(info.value)


def test_multibench_malformed_fields_name_file_split_and_fix(tmp_path):
    write_multibench(tmp_path, "humor.pkl")
    rewrite(tmp_path / "humor.pkl", lambda data: data["valid"].__delitem__("text"))
    with pytest.raises(DataError, match=r"humor\.pkl split 'validation' has no field 'text'.*get_data\.py"):
        load(URFUNNY, {"data_dir": str(tmp_path)})

    write_multibench(tmp_path, "humor.pkl", no_text={"test": range(8)})
    with pytest.raises(DataError, match=r"humor\.pkl split 'test': every sample's text is all zero"):
        load(URFUNNY, {"data_dir": str(tmp_path)})

    write_multibench(tmp_path, "humor.pkl")
    rewrite(tmp_path / "humor.pkl", lambda data: data.__setitem__("test", data["test"]["text"]))
    with pytest.raises(DataError, match=r"split 'test' is a ndarray, expected a dict"):
        load(URFUNNY, {"data_dir": str(tmp_path)})


# -- DialogueRNN IEMOCAP ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "as_sets"), [("IEMOCAP_features_raw.pkl", True), ("IEMOCAP_features.pkl", False)])
def test_dialoguernn_utterances_become_vector_samples(tmp_path, name, as_sets):
    expected = write_dialoguernn(tmp_path, name, as_sets=as_sets)
    dsd, report = load(IEMOCAP6, {"data_dir": str(tmp_path)})
    for split in SPLITS:
        assert dsd[split]["id"] == expected.ids[split]
        assert np.array_equal(dsd[split]["label"], expected.labels[split])
        for m in DIALOGUE_DIMS:
            assert np.array_equal(np.array(dsd[split][m], dtype=np.float32), expected.features[split][m]), (split, m)
    assert report["format"] == "dialoguernn" and report["file"] == name
    assert report["validation"]["dialogues"] == expected.dialogues["validation"] == \
        documented_validation([f"Ses0{1 + i % 4}{'FM'[i % 2]}_impro{i:02d}" for i in range(12)])
    assert report["dialogues"] == {"train": 11, "validation": 1, "test": 4}
    assert report["utterances"] == {s: len(expected.ids[s]) for s in SPLITS}
    assert report["unlisted_dialogues"] == 1 and report["feature_dims"] == DIALOGUE_DIMS
    tensors = to_tensors(make_spec(IEMOCAP6), dsd)
    assert {m.name: (m.kind, m.dim) for m in tensors.task.modalities} == \
        {m: ("vector", d) for m, d in DIALOGUE_DIMS.items()}
    assert tensors.task.target.kind == "multiclass" and tensors.task.target.n_outputs == 6


def test_validation_holds_whole_dialogues_about_a_tenth(tmp_path):
    expected = write_dialoguernn(tmp_path, train=120, test=31)
    dsd, report = load(IEMOCAP6, {"data_dir": str(tmp_path)})
    assert report["dialogues"] == {"train": 108, "validation": 12, "test": 31}  # COSMIC also holds out 12 of 120
    dialogue = lambda uid: uid.rsplit("[", 1)[0]
    train, valid = {dialogue(i) for i in dsd["train"]["id"]}, {dialogue(i) for i in dsd["validation"]["id"]}
    assert not train & valid and valid == set(expected.dialogues["validation"])


@pytest.mark.parametrize(("change", "pattern"), [
    (lambda data: list(data) + [data[7]],
     r"IEMOCAP_features_raw\.pkl: the pickle holds a list of 10 elements.*9-tuple \(videoIDs.*COSMIC.*no audio"),
    (lambda data: {"train": {}, "valid": {}, "test": {}},
     r"holds a dict; .*9-tuple.*MulT-style file.*dataset iemocap"),
    (lambda data: data[:4] + ([1, 2],) + data[5:], r"element 4 \(videoAudio\) is a list; .*dict keyed by dialogue"),
    (lambda data: data[:7] + (set(data[7]) | {"Ses05F_script00_1"},) + data[8:],
     r"dialogues \['Ses05F_script00_1'\] are listed in both trainVid and testVid"),
    (lambda data: data[:7] + (list(data[7]) + ["Ses01F_impro00"],) + data[8:],
     r"trainVid lists dialogues more than once: \['Ses01F_impro00'\]"),
    (lambda data: data[5].pop("Ses05M_script01_1") and None,
     r"dialogue 'Ses05M_script01_1' \(listed in testVid\) has no entry in \['videoVisual'\]"),
    (lambda data: data[2]["Ses01F_impro00"].__setitem__(1, 6),
     r"dialogue 'Ses01F_impro00' \(listed in trainVid\) field 'videoLabels': 1 labels are not class indices "
     r"\(0 happy, 1 sad, 2 neutral, 3 angry, 4 excited, 5 frustrated\) at rows \[1\] "
     r"\(ids \['Ses01F_impro00\[1\]'\]\)"),
    (lambda data: data[3]["Ses01F_impro00"].__delitem__(-1),
     r"dialogue 'Ses01F_impro00' .*fields disagree on the number of samples .*'videoLabels': \d+, 'videoText': \d+"),
    (lambda data: data[4].__setitem__("Ses02M_impro01", data[4]["Ses02M_impro01"][:, :50]),
     r"field 'videoAudio' has 50 values per utterance, dialogue '\w+' has 100.*mixes feature sets"),
])
def test_dialoguernn_malformed_files_are_one_paragraph(tmp_path, change, pattern):
    write_dialoguernn(tmp_path)
    rewrite(tmp_path / "IEMOCAP_features_raw.pkl", change)
    with pytest.raises(DataError, match=pattern) as info:
        load(IEMOCAP6, {"data_dir": str(tmp_path)})
    assert "\n" not in str(info.value)


# -- end to end --------------------------------------------------------------------------------

E2E = [("mustard", lambda d: write_multibench(d / "mustard", "sarcasm.pkl")),
       ("urfunny", lambda d: write_multibench(d / "urfunny", "humor.pkl")),
       ("mosi", lambda d: write_multibench(d / "mosi", "mosi_raw.pkl")),
       ("iemocap6", lambda d: write_dialoguernn(d / "iemocap6"))]


@pytest.mark.parametrize(("dataset", "write"), E2E, ids=[name for name, _ in E2E])
def test_bench_run_end_to_end(tmp_path, monkeypatch, capsys, dataset, write):
    write(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    args = ["run", "--methods", "additive", "--datasets", dataset, "--data-dir", str(tmp_path / "data"),
            "--seeds", "0", "--epochs", "1", "--batch-size", "8", "--no-stress", "--no-emap"]
    assert main(args) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert re.search(r"Done: 1 trained, 0 skipped", out), out
