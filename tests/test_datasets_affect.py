"""MOSI / MOSEI / IEMOCAP readers on fixtures written in each exact research format."""

import pickle

import numpy as np
import pytest
from fixtures_affect import DIMS, label_entries, write_csd, write_feature_csds, write_mmsa, write_mult

from benchmark_core import Budget, RunSpec
from benchmark_core.engine.data import to_tensors
from benchmark_core.errors import DataError
from plugins.datasets.affect.loader import load, make_spec
from plugins.datasets.affect.profiles import IEMOCAP, MOSEI, MOSI

SPLITS = ("train", "validation", "test")


def load_splits(profile, options):
    """The DatasetDict alone (``load`` also returns the conversion report)."""
    return load(profile, options)[0]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FUSEBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _lengths(dsd, split, modality):
    return np.array([len(seq) for seq in dsd[split][modality]])


def _check_against(dsd, expected, label_dtype=np.float32):
    for split in SPLITS:
        for m in DIMS:
            assert np.array_equal(_lengths(dsd, split, m), expected.lengths[split][m]), (split, m)
            first = np.array(dsd[split][0][m], dtype=np.float32)
            assert np.array_equal(first, expected.first_steps[split][m], equal_nan=True)
        assert np.allclose(np.array(dsd[split]["label"], dtype=label_dtype), expected.labels[split])
        assert dsd[split]["id"] == expected.ids[split]


@pytest.mark.parametrize("aligned", [True, False])
def test_mult_left_padding_inf_and_bytes_ids(tmp_path, aligned):
    expected = write_mult(tmp_path / "mosi", aligned=aligned)
    dsd, loader_report = load(MOSI, {"data_dir": str(tmp_path / "mosi")})
    _check_against(dsd, expected)
    assert loader_report["format"] == "mult" and loader_report["padding"] == "left"
    assert loader_report["cache"] == "converted"
    assert load(MOSI, {"data_dir": str(tmp_path / "mosi")})[1]["cache"] == "reused"
    assert dsd["train"].features["audio"].feature.length == DIMS["audio"]  # shape from data
    report = to_tensors(make_spec(MOSI), dsd).report
    assert report["nonfinite_replaced"] == expected.nonfinite  # -inf counted, not hidden


def test_mult_iemocap_4x2_labels_become_multilabel(tmp_path):
    expected = write_mult(tmp_path / "iemocap", "iemocap", iemocap=True)
    dsd, report = load(IEMOCAP, {"data_dir": str(tmp_path / "iemocap")})
    _check_against(dsd, expected, label_dtype=np.int64)
    tensors = to_tensors(make_spec(IEMOCAP), dsd)
    assert tensors.task.target.kind == "multilabel" and tuple(tensors.train.y.shape) == (12, 4)


def test_iemocap_with_wrong_label_shape_names_file_and_fix(tmp_path):
    write_mult(tmp_path, "iemocap")  # sentiment-style (N, 1, 1) labels
    with pytest.raises(DataError, match=r"iemocap_data\.pkl.*'labels'.*\(N, 4, 2\)"):
        load(IEMOCAP, {"data_dir": str(tmp_path)})


def test_mmsa_lengths_beat_padding_and_garbage(tmp_path):
    expected = write_mmsa(tmp_path / "MOSI" / "Processed")
    dsd, report = load(MOSI, {"data_dir": str(tmp_path / "MOSI")})  # MMSA layout: <dir>/Processed/
    _check_against(dsd, expected)
    assert report["format"] == "mmsa"


def test_mosei_mult_labels_take_the_sentiment_column(tmp_path):
    expected = write_mult(tmp_path, "mosei_senti")
    data = pickle.loads((tmp_path / "mosei_senti_data.pkl").read_bytes())
    for fields in data.values():  # (N, 1, 7): sentiment then six emotions
        fields["labels"] = np.concatenate([fields["labels"], np.full((len(fields["labels"]), 1, 6), 9.0)], axis=2)
    (tmp_path / "mosei_senti_data.pkl").write_bytes(pickle.dumps(data))
    dsd, report = load(MOSEI, {"data_dir": str(tmp_path)})
    assert np.allclose(dsd["test"]["label"], expected.labels["test"])


FOLDS = {"train": [f"video0{i}" for i in range(4)], "valid": ["video04"], "test": ["video05"]}


def _csd_dir(tmp_path):
    labels = label_entries()
    write_csd(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels,
              {"dimension names": ["sentiment score"]})
    write_feature_csds(tmp_path, labels)
    return labels


def test_csd_features_aligned_to_label_intervals(tmp_path):
    labels = _csd_dir(tmp_path)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path), "folds": FOLDS})
    assert [len(dsd[s]) for s in SPLITS] == [16, 4, 4]
    assert dsd["test"]["id"] == [f"video05[{i}]" for i in range(4)]
    assert np.allclose(dsd["test"]["label"], labels["video05"][0][:, 0])
    # a 2 s segment [1 + 2k, 3 + 2k] overlaps: audio rows of 0.1 s -> 20, vision 0.2 s -> 10,
    # text 0.4 s -> 6 (rows starting 0.8 and 2.8 overlap partially and are kept)
    assert set(_lengths(dsd, "train", "text")) == {6}
    assert set(_lengths(dsd, "train", "audio")) == {20}
    assert set(_lengths(dsd, "train", "vision")) == {10}


def test_csd_rows_are_the_overlapping_ones(tmp_path):
    labels = label_entries(videos=6, segments=1)
    write_csd(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    paths = write_feature_csds(tmp_path, labels)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path), "folds": FOLDS})
    import h5py
    with h5py.File(paths["vision"]) as fh:
        root = next(iter(fh))
        feats = fh[root]["data"]["video05"]["features"][()]
        iv = fh[root]["data"]["video05"]["intervals"][()]
    start, end = labels["video05"][1][0]
    want = feats[(iv[:, 0] < end - 1e-5) & (iv[:, 1] > start + 1e-5)]
    assert np.allclose(np.array(dsd["test"][0]["vision"]), want)


def test_words_csd_cannot_be_a_modality(tmp_path):
    labels = _csd_dir(tmp_path)
    words = {vid: (np.array([[b"hello"], [b"sp"]], dtype="S12"), np.array([[1.0, 2.0], [2.0, 3.0]]))
             for vid in labels}
    write_csd(tmp_path / "words.csd", "CMU_MOSI_TimestampedWords", words)
    with pytest.raises(DataError, match=r"words\.csd.*\|S12.*cannot be the text modality.*csd_text"):
        load(MOSI, {"data_dir": str(tmp_path), "folds": FOLDS, "csd_text": "words.csd"})


def test_csd_standard_folds_need_all_93_videos(tmp_path):
    _csd_dir(tmp_path)
    with pytest.raises(DataError, match="holds 6 videos.*93.*mosi.folds"):
        load(MOSI, {"data_dir": str(tmp_path)})


def test_missing_dataset_says_where_what_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(tmp_path / "root"))
    with pytest.raises(DataError) as info:
        load(MOSI, {})
    message = str(info.value)
    for fragment in (str(tmp_path / "root" / "mosi"), str(tmp_path / "home" / ".fusebench" / "data" / "mosi"),
                     "mosi_data.pkl", "mosi_data_noalign.pkl", "aligned_50.pkl", "unaligned_50.pkl", ".csd",
                     "--data-dir", "Multimodal-Transformer", "never downloads"):
        assert fragment in message, fragment


def test_data_dir_env_root_is_searched(tmp_path, monkeypatch):
    write_mult(tmp_path / "root", aligned=False)  # MulT names say which dataset they hold
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(tmp_path / "root"))
    assert len(load_splits(MOSI, {})["train"]) == 12


def test_aligned_option_and_format_option(tmp_path):
    write_mult(tmp_path, aligned=True)
    write_mult(tmp_path, aligned=False)
    write_mmsa(tmp_path)
    assert len(load_splits(MOSI, {"data_dir": str(tmp_path)})["train"][0]["audio"]) == 8  # aligned preferred
    assert len(load_splits(MOSI, {"data_dir": str(tmp_path), "aligned": False})["validation"]) == 6
    assert len(load_splits(MOSI, {"data_dir": str(tmp_path), "format": "mmsa"})["train"]) == 10
    with pytest.raises(DataError, match="can be read from mult"):
        load(IEMOCAP, {"data_dir": str(tmp_path), "format": "csd"})
    with pytest.raises(DataError, match="no option.*'alinged'"):
        load(MOSI, {"data_dir": str(tmp_path), "alinged": True})


def test_unsafe_pickle_in_data_dir_is_refused(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    (tmp_path / "mosi_data.pkl").write_bytes(pickle.dumps({"train": Evil()}))
    with pytest.raises(DataError, match="Refused to unpickle.*mosi_data.pkl"):
        load(MOSI, {"data_dir": str(tmp_path)})


def test_cache_reused_then_rebuilt_when_source_changes(tmp_path):
    write_mult(tmp_path, seed=0)
    first = load_splits(MOSI, {"data_dir": str(tmp_path)})
    again = load_splits(MOSI, {"data_dir": str(tmp_path)})
    assert again["train"].cache_files[0]["filename"] == first["train"].cache_files[0]["filename"]
    expected = write_mult(tmp_path, seed=5)
    rebuilt = load_splits(MOSI, {"data_dir": str(tmp_path)})
    assert rebuilt["train"].cache_files[0]["filename"] != first["train"].cache_files[0]["filename"]
    assert np.allclose(rebuilt["train"]["label"], expected.labels["train"])


def test_execute_additive_end_to_end_on_mult_fixture(tmp_path):
    from benchmark_core.plugins import get_registry
    from benchmark_core.suite.runner import execute, resolve_hparams

    write_mult(tmp_path, aligned=True, n=(24, 8, 8))
    registry = get_registry()
    spec = RunSpec(method="additive", dataset="mosi", seed=0, budget=Budget(epochs=1, batch_size=8),
                   hparams=resolve_hparams(registry.method("additive"), {}),
                   dataset_options={"data_dir": str(tmp_path)}, evaluation={"stress": False, "emap": False})
    result = execute(spec, registry)
    assert result.ok, result.traceback
    for name in MOSI.metrics:
        assert f"test/{name}" in result.metrics
    assert result.info["primary_metric"] == "mae" and result.info["higher_is_better"] is False
    assert result.info["data_report"]["nonfinite_replaced"]["audio"] == 6
    assert result.info["data_report"]["loader"]["format"] == "mult"  # conversion report reaches the run
