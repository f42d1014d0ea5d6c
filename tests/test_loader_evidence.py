"""The affect readers decide padding from evidence and never lose real frames or labels silently.

Issue 12 item 2 (an MMSA file padded at the front was read as padded at the back, dropping
the real frames and their -inf values) and the affect-loader half of item 4 (non-finite
labels, label shapes).  Every fixture is written in the exact on-disk layout and loaded
through the real dataset plugin, so the whole path (reader, cache, engine) is exercised.
"""

import logging
import pickle

import numpy as np
import pytest
from fixtures_affect import DIMS, label_entries, real_region, write_csd, write_feature_csds, write_mmsa, write_mult

from benchmark_core.engine.data import to_tensors
from benchmark_core.errors import DataError
from plugins.datasets.affect.loader import load, make_spec
from plugins.datasets.affect.profiles import IEMOCAP, MOSEI, MOSI

SPLITS = ("train", "validation", "test")
FILE_SPLIT = {"train": "train", "validation": "valid", "test": "test"}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FUSEBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _check(dsd, expected, modalities=tuple(DIMS)):
    """Lengths of every sample and the exact real steps of sample 0, per split and modality."""
    for split in SPLITS:
        for m in modalities:
            lengths = np.array([len(seq) for seq in dsd[split][m]])
            assert np.array_equal(lengths, expected.lengths[split][m]), (split, m)
            first = np.array(dsd[split][0][m], dtype=np.float32)
            assert np.array_equal(first, expected.first_steps[split][m], equal_nan=True), (split, m)


def _rewrite(path, change):
    """Apply ``change(data)`` to a pickle in place (the layout stays the researchers' one)."""
    data = pickle.loads(path.read_bytes())
    change(data)
    path.write_bytes(pickle.dumps(data, protocol=4))


# -- MMSA: the padding side comes from evidence, cross-checked with the lengths --------------

def test_front_padded_mmsa_with_lengths_keeps_real_frames_and_inf(tmp_path):
    """The issue's case: aligned_50.pkl padded at the front that carries *_lengths."""
    expected = write_mmsa(tmp_path, aligned=True, sides=dict.fromkeys(DIMS, "left"), junk_every=0,
                          nonfinite=True)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path)})
    _check(dsd, expected)
    engine = to_tensors(make_spec(MOSI), dsd).report
    assert engine["nonfinite_replaced"] == expected.nonfinite  # the -inf survive stripping
    assert report["padding"] == "left"
    audio = report["padding_by_modality"]["audio"]
    assert audio["side"] == "left" and audio["decided_by"] == "evidence"
    assert audio["length_source"] == "audio_lengths"
    assert audio["support"]["right"] == 0 and audio["support"]["left"] > 0
    assert audio["lengths_disagree"] == {"nonzero_beyond_lengths": 0, "zero_steps_inside_lengths": 0}
    assert report["padding_by_modality"]["text"]["length_source"] == "text_bert attention mask"
    assert report["warnings"] == []
    again = load(MOSI, {"data_dir": str(tmp_path)})[1]  # the evidence is stored with the cache
    assert again["cache"] == "reused" and again["padding_by_modality"] == report["padding_by_modality"]


def test_back_padded_mmsa_junk_beyond_lengths_is_dropped_and_reported(tmp_path, caplog):
    """Frames beyond *_lengths that are not zero (seen in MMSA's MOSI files) are padding."""
    expected = write_mmsa(tmp_path, junk_every=3, nonfinite=True)
    with caplog.at_level(logging.WARNING, logger="fusebench.data"):
        dsd, report = load(MOSI, {"data_dir": str(tmp_path)})
    _check(dsd, expected)  # lengths honoured, junk gone
    assert to_tensors(make_spec(MOSI), dsd).report["nonfinite_replaced"] == expected.nonfinite
    for m in ("audio", "vision"):
        entry = report["padding_by_modality"][m]
        assert entry["side"] == "right" and entry["decided_by"] == "evidence"
        beyond = entry["lengths_disagree"]["nonzero_beyond_lengths"]
        assert beyond == expected.junk_samples[m] > 0
        assert entry["dropped_nonzero_steps"] > 0
    dropped_inf = report["padding_by_modality"]["audio"]["dropped_nonfinite_values"]
    assert dropped_inf == expected.dropped_nonfinite["audio"] == 3  # one -inf in the junk of each split
    assert report["padding_by_modality"]["text"]["dropped_nonzero_steps"] == 0
    assert [m for m in DIMS if any(f"modality '{m}'" in w for w in report["warnings"])] == ["audio", "vision"]


def test_mixed_sides_in_one_file_are_decided_per_modality(tmp_path):
    """BERT text padded at the back next to CMU audio/vision padded at the front."""
    sides = {"text": "right", "audio": "left", "vision": "right"}
    expected = write_mmsa(tmp_path, aligned=True, sides=sides, junk_every=0, nonfinite=True)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path)})
    _check(dsd, expected)
    assert to_tensors(make_spec(MOSI), dsd).report["nonfinite_replaced"] == expected.nonfinite
    assert {m: e["side"] for m, e in report["padding_by_modality"].items()} == sides
    assert report["padding"] == "mixed"


def test_lengths_disagreeing_with_evidence_warn_once_naming_file_and_modality(tmp_path, caplog):
    expected = write_mmsa(tmp_path, n=(20, 10, 10), junk_every=0)
    short = {}

    def shorten(data):  # every 4th vision length one short of the real frames
        for key, fields in data.items():
            lengths = np.asarray(fields["vision_lengths"])
            cut = (np.arange(len(lengths)) % 4 == 0) & (lengths > 1)
            short[key] = int(cut.sum())
            fields["vision_lengths"] = list(lengths - cut)

    _rewrite(tmp_path / "unaligned_50.pkl", shorten)
    with caplog.at_level(logging.WARNING, logger="fusebench.data"):
        dsd, report = load(MOSI, {"data_dir": str(tmp_path)})
    warnings = [r for r in caplog.records if r.name == "fusebench.data" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "unaligned_50.pkl" in message and "'vision'" in message and "vision_lengths" in message
    assert f"{sum(short.values())} of 40" in message
    assert report["warnings"] == [message]
    entry = report["padding_by_modality"]["vision"]
    assert entry["lengths_disagree"]["nonzero_beyond_lengths"] == sum(short.values())
    given = expected.lengths["train"]["vision"]
    honoured = given - ((np.arange(20) % 4 == 0) & (given > 1))
    assert np.array_equal([len(s) for s in dsd["train"]["vision"]], honoured)


def test_disagreement_within_tolerance_is_reported_not_warned(tmp_path, caplog):
    write_mmsa(tmp_path, n=(80, 15, 15), junk_every=0)  # 110 samples: one is under 1 %

    def shorten_one(data):
        lengths = np.asarray(data["train"]["audio_lengths"])
        i = int(np.flatnonzero(lengths > 1)[0])
        lengths[i] -= 1
        data["train"]["audio_lengths"] = list(lengths)

    _rewrite(tmp_path / "unaligned_50.pkl", shorten_one)
    with caplog.at_level(logging.WARNING, logger="fusebench.data"):
        _, report = load(MOSI, {"data_dir": str(tmp_path)})
    assert not [r for r in caplog.records if r.name == "fusebench.data" and r.levelno >= logging.WARNING]
    assert report["padding_by_modality"]["audio"]["lengths_disagree"]["nonzero_beyond_lengths"] == 1
    assert report["warnings"] == []


def test_explicit_padding_contradicting_clear_evidence_is_an_error(tmp_path):
    write_mmsa(tmp_path, aligned=True, sides=dict.fromkeys(DIMS, "left"), junk_every=0)
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path), "padding": "right"})
    message = str(info.value)
    for fragment in ("aligned_50.pkl", "'text'", "mosi.padding=right", "left", "padding=auto"):
        assert fragment in message, fragment
    assert "of 20 samples" in message


def test_explicit_padding_decides_when_evidence_is_ambiguous(tmp_path):
    """Garbage beyond the lengths in every sample: zeros cannot tell the side, the option does."""
    expected = write_mmsa(tmp_path)  # audio/vision: garbage everywhere

    def junk_text(data):  # text too, so no modality shows a side
        for fields in data.values():
            fields["text"] = fields["text"] + 1.0

    _rewrite(tmp_path / "unaligned_50.pkl", junk_text)
    data = pickle.loads((tmp_path / "unaligned_50.pkl").read_bytes())
    dsd, report = load(MOSI, {"data_dir": str(tmp_path), "padding": "left"})
    for m in DIMS:
        entry = report["padding_by_modality"][m]
        assert entry["side"] == "left" and entry["decided_by"] == "option (evidence not clear)", m
        raw = np.asarray(data["train"][m])
        lengths = np.asarray(data["train"]["text_bert"][:, 1].sum(axis=1) if m == "text"
                             else data["train"][f"{m}_lengths"]).astype(int)
        assert np.array_equal(np.array(dsd["train"][0][m], dtype=np.float32),
                              raw[0, raw.shape[1] - lengths[0]:].astype(np.float32))
    assert np.array_equal([len(s) for s in dsd["train"]["audio"]], expected.lengths["train"]["audio"])
    _, auto = load(MOSI, {"data_dir": str(tmp_path)})  # without the option: MMSA's documented side
    assert auto["padding_by_modality"]["audio"]["side"] == "right"
    assert auto["padding_by_modality"]["audio"]["decided_by"].startswith("format default")


def test_mmsa_lengths_are_validated_and_empty_samples_get_one_zero_step(tmp_path):
    write_mmsa(tmp_path, junk_every=1)

    def edit(data):
        audio = list(data["test"]["audio_lengths"])
        audio[1] = 0  # no real frame: the garbage there must not become one
        audio[2] = 10_000  # longer than the array: a truncated stream, every step real
        data["test"]["audio_lengths"] = audio

    _rewrite(tmp_path / "unaligned_50.pkl", edit)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path)})
    test_audio = dsd["test"]["audio"]
    assert np.array_equal(np.array(test_audio[1]), np.zeros((1, DIMS["audio"])))
    assert len(test_audio[2]) == 9  # all T steps of the unaligned audio
    entry = report["padding_by_modality"]["audio"]
    assert entry["empty_kept_as_one_zero_step"] == 1 and entry["lengths_beyond_steps"] == 1

    _rewrite(tmp_path / "unaligned_50.pkl", lambda d: d["valid"].update(vision_lengths=[-1] * 5))
    with pytest.raises(DataError, match=r"unaligned_50\.pkl split 'validation' field 'vision_lengths'.*negative"):
        load(MOSI, {"data_dir": str(tmp_path)})


# -- MulT path audit -------------------------------------------------------------------------

def test_mult_unaligned_side_is_decided_per_modality(tmp_path):
    """One modality padded at the back in a MulT-layout file: its padding is not real data."""
    expected = write_mult(tmp_path, aligned=False, sides={"vision": "right"})
    dsd, report = load(MOSI, {"data_dir": str(tmp_path)})
    _check(dsd, expected)
    assert to_tensors(make_spec(MOSI), dsd).report["nonfinite_replaced"] == expected.nonfinite
    sides = {m: e["side"] for m, e in report["padding_by_modality"].items()}
    assert sides == {"text": "left", "audio": "left", "vision": "right"}
    assert report["padding_by_modality"]["vision"]["length_source"] == "zero padding"


def test_mult_explicit_padding_contradicting_evidence_is_an_error(tmp_path):
    write_mult(tmp_path)  # MulT files are padded at the front
    with pytest.raises(DataError, match=r"mosi_data\.pkl.*'text'.*mosi\.padding=right.*left.*padding=auto"):
        load(MOSI, {"data_dir": str(tmp_path), "padding": "right"})
    dsd, report = load(MOSI, {"data_dir": str(tmp_path), "padding": "left"})  # agreeing option is fine
    assert report["padding_by_modality"]["audio"]["decided_by"] == "evidence and option"


def test_mult_aligned_report_counts_empty_sequences_per_modality(tmp_path):
    write_mult(tmp_path)

    def blank(data):  # one sample with no real step in any modality
        for m in DIMS:
            data["test"][m][2] = 0.0

    _rewrite(tmp_path / "mosi_data.pkl", blank)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path)})
    for m in DIMS:
        assert report["padding_by_modality"][m]["empty_kept_as_one_zero_step"] == 1
        assert report["padding_by_modality"][m]["length_source"] == "steps where any modality is non-zero (aligned)"
        assert np.array_equal(np.array(dsd["test"][2][m]), np.zeros((1, DIMS[m])))


def test_iemocap_labels_with_an_undecided_emotion_are_an_error(tmp_path):
    write_mult(tmp_path, "iemocap", iemocap=True)

    def tie(data):  # [0, 0] says neither "absent" nor "present"; argmax would say class 0
        data["valid"]["labels"][3, 2] = 0.0

    _rewrite(tmp_path / "iemocap_data.pkl", tie)
    with pytest.raises(DataError, match=r"iemocap_data\.pkl split 'validation' field 'labels'.*rows \[3\]"):
        load(IEMOCAP, {"data_dir": str(tmp_path)})


# -- labels: finite and of a documented shape ------------------------------------------------

def test_nonfinite_labels_are_rejected_naming_file_split_field_rows(tmp_path):
    write_mult(tmp_path)

    def spoil(data):
        data["test"]["labels"][1, 0, 0] = np.nan
        data["test"]["labels"][4, 0, 0] = np.inf

    _rewrite(tmp_path / "mosi_data.pkl", spoil)
    with pytest.raises(DataError, match=r"mosi_data\.pkl split 'test' field 'labels': 2 non-finite "
                                        r"labels \(NaN/inf\) at rows \[1, 4\]"):
        load(MOSI, {"data_dir": str(tmp_path)})


def test_nonfinite_mmsa_regression_labels_are_rejected(tmp_path):
    write_mmsa(tmp_path)
    _rewrite(tmp_path / "unaligned_50.pkl", lambda d: d["train"]["regression_labels"].__setitem__(7, np.nan))
    with pytest.raises(DataError, match=r"unaligned_50\.pkl split 'train' field 'regression_labels': "
                                        r"1 non-finite labels \(NaN/inf\) at rows \[7\]"):
        load(MOSI, {"data_dir": str(tmp_path)})


def test_nonfinite_csd_labels_are_rejected_naming_the_segment(tmp_path):
    labels = label_entries()
    labels["video05"][0][2, 0] = np.nan
    write_csd(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    write_feature_csds(tmp_path, labels)
    folds = {"train": [f"video0{i}" for i in range(4)], "valid": ["video04"], "test": ["video05"]}
    with pytest.raises(DataError, match=r"CMU_MOSI_Opinion_Labels\.csd split 'test'.*1 non-finite "
                                        r"labels \(NaN/inf\) at rows \[2\] \(ids \['video05\[2\]'\]\)"):
        load(MOSI, {"data_dir": str(tmp_path), "folds": folds})


@pytest.mark.parametrize("shape", [(1, 5), (2,), (1, 7)])
def test_mosi_labels_of_an_undocumented_shape_are_rejected(tmp_path, shape):
    write_mult(tmp_path)

    def reshape(data):
        for fields in data.values():
            n = len(fields["labels"])
            fields["labels"] = np.broadcast_to(fields["labels"].reshape(n, *([1] * len(shape))), (n, *shape)).copy()

    _rewrite(tmp_path / "mosi_data.pkl", reshape)
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path)})
    message = str(info.value)
    assert "mosi_data.pkl split" in message and "field 'labels'" in message
    assert f"shape {(12, *shape)}" in message
    assert "(N,), (N, 1), (N, 1, 1)" in message


def test_mosei_accepts_sentiment_plus_six_emotions_but_not_other_widths(tmp_path):
    expected = write_mult(tmp_path, "mosei_senti")

    def widen(width):
        def change(data):
            for fields in data.values():
                n = len(fields["labels"])
                fields["labels"] = np.concatenate([fields["labels"], np.full((n, 1, width - 1), 2.0)], axis=2)
        return change

    original = (tmp_path / "mosei_senti_data.pkl").read_bytes()
    _rewrite(tmp_path / "mosei_senti_data.pkl", widen(7))
    dsd, _ = load(MOSEI, {"data_dir": str(tmp_path)})
    assert np.allclose(dsd["test"]["label"], expected.labels["test"])
    (tmp_path / "mosei_senti_data.pkl").write_bytes(original)
    _rewrite(tmp_path / "mosei_senti_data.pkl", widen(5))
    with pytest.raises(DataError, match=r"mosei_senti_data\.pkl split .* field 'labels'.*\(N, 1, 7\)"):
        load(MOSEI, {"data_dir": str(tmp_path)})


def test_real_region_helper_matches_the_fixture_layout():
    """The fixture helper itself: left padding keeps the last L steps, right the first L."""
    region = real_region(np.array([2, 0, 3]), 3, "left")
    assert region.tolist() == [[False, True, True], [False, False, False], [True, True, True]]
    assert real_region(np.array([1]), 3, "right").tolist() == [[True, False, False]]
