"""The bundled UCI Multiple Features data."""

from pathlib import Path

import numpy as np
import pytest

from plugins.datasets import mfeat

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mfeat"


def test_six_views_ten_balanced_classes_stratified_split():
    dsd = mfeat.load({})
    assert {s: len(d) for s, d in dsd.items()} == {"train": 1400, "validation": 300, "test": 300}
    for split, per_class in (("train", 140), ("validation", 30), ("test", 30)):
        assert np.bincount(dsd[split]["label"]).tolist() == [per_class] * 10
    for view, dim in mfeat.VIEWS.items():
        assert dsd["train"].features[view].length == dim


def test_standardised_with_train_statistics():
    train = np.array(mfeat.load({})["train"]["mor"])
    assert np.allclose(train.mean(axis=0), 0, atol=1e-4) and np.allclose(train.std(axis=0), 1, atol=1e-3)
    raw = np.array(mfeat.load({"standardize": False})["train"]["mor"])
    assert raw.max() > 1000  # the unscaled view really is on another scale


def test_split_depends_only_on_data_seed():
    a, b, c = mfeat.load({}), mfeat.load({}), mfeat.load({"data_seed": 1})
    assert a["test"]["pix"] == b["test"]["pix"]
    assert a["test"]["pix"] != c["test"]["pix"]


def test_splits_are_disjoint_and_cover_all():
    _, labels = mfeat.read_arrays()
    parts = mfeat.stratified_split(labels, 0)
    everything = np.concatenate(list(parts.values()))
    assert len(everything) == 2000 and len(np.unique(everything)) == 2000


def test_attribution_ships_next_to_the_data():
    text = (mfeat.data_file().parent / "SOURCE.md").read_text()
    assert "CC BY 4.0" in text and "Duin" in text


@pytest.mark.skipif(not SHARED.exists(), reason="mfeat CSVs not in ../shared/data/mfeat")
def test_bundled_archive_equals_the_source_csvs(tmp_path):
    mfeat.build_npz(SHARED, tmp_path / "rebuilt.npz")
    with np.load(tmp_path / "rebuilt.npz") as new, np.load(mfeat.data_file()) as shipped:
        assert sorted(new) == sorted(shipped)
        for key in new:
            assert np.array_equal(new[key], shipped[key]), key
    fou = np.loadtxt(SHARED / "mfeat-fou.csv", delimiter=",", skiprows=1)
    views, labels = mfeat.read_arrays()
    assert np.allclose(views["fou"], fou[:, :-1], rtol=1e-6) and np.array_equal(labels, fou[:, -1])
