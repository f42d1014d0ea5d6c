"""The real CMU-MOSI label and word .csd files (../shared/data/mosi), skipped when absent."""

from pathlib import Path

import numpy as np
import pytest
from fixtures_affect import write_feature_csds

from benchmark_core.errors import DataError
from plugins.datasets.affect.csd import open_csd
from plugins.datasets.affect.loader import load
from plugins.datasets.affect.profiles import MOSI, mosi_std_folds

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mosi"
LABELS = REAL / "CMU_MOSI_Opinion_Labels.csd"
WORDS = REAL / "CMU_MOSI_ModifiedTimestampedWords.csd"
pytestmark = pytest.mark.skipif(not LABELS.exists(), reason=f"real MOSI files not in {REAL}")


def load_splits(profile, options):
    """The DatasetDict alone (``load`` also returns the conversion report)."""
    return load(profile, options)[0]


@pytest.fixture(scope="module")
def label_entries():
    with open_csd(LABELS) as csd:
        assert csd.root == "Opinion Segment Labels"  # root name, not the file name
        assert csd.metadata()["dimension names"] == ["sentiment score"]  # JSON-decoded
        return {vid: csd.entry(vid) for vid in csd.videos}


def test_labels_have_2199_segments_96_zeros(label_entries):
    values = np.concatenate([v[:, 0] for v, _ in label_entries.values()])
    assert len(label_entries) == 93 and len(values) == 2199
    assert int((values == 0).sum()) == 96 and values.min() >= -3 and values.max() <= 3
    assert int(np.isin(np.abs(values), [0.5, 1.5, 2.5]).sum()) == 52  # rounding ties


def test_standard_folds_give_1284_229_686(label_entries):
    folds = mosi_std_folds(list(label_entries))
    sizes = {k: sum(len(label_entries[v][0]) for v in ids) for k, ids in folds.items()}
    assert sizes == {"train": 1284, "valid": 229, "test": 686}


def test_aligned_dataset_with_real_labels(tmp_path, monkeypatch, label_entries):
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / LABELS.name).symlink_to(LABELS)
    write_feature_csds(tmp_path, label_entries)  # synthetic numeric streams, SDK layout
    dsd, report = load(MOSI, {"data_dir": str(tmp_path)})
    assert [len(dsd[s]) for s in ("train", "validation", "test")] == [1284, 229, 686]
    assert report["release"].startswith("2199 of 2199 labelled segments: the complete CMU-MOSI")
    labels = np.concatenate([dsd[s]["label"] for s in dsd])
    assert int((labels == 0).sum()) == 96
    assert all(len(seq) >= 1 for seq in dsd["test"]["audio"])


def test_real_words_csd_is_not_a_modality(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="no feature .csd for the text modality"):
        load(MOSI, {"data_dir": str(REAL)})
    if WORDS.exists():
        (tmp_path / LABELS.name).symlink_to(LABELS)
        with pytest.raises(DataError, match="dtype \\|S12.*cannot be the text modality"):
            load(MOSI, {"data_dir": str(tmp_path), "csd_text": str(WORDS),
                        "csd_audio": str(WORDS), "csd_vision": str(WORDS)})
