"""Issue 14: a pre-flight that fails once (§3), `bench data inspect` (§2), MOSEI standard folds
without the SDK and the MOSI release in the conversion report (§1, last bullet)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures_affect import label_entries, write_csd, write_feature_csds, write_mmsa, write_mult

from benchmark_core.cli import main
from plugins.datasets.affect.csd import mosi_release
from plugins.datasets.affect.loader import load
from plugins.datasets.affect.profiles import MOSEI, mosei_std_folds

TINY = ["--seeds", "0", "--epochs", "1", "--batch-size", "8", "--no-stress", "--no-emap"]


def test_missing_datasets_stop_the_command_once_before_anything_is_written(tmp_path, monkeypatch, capsys):
    """Before: 108 runs failed one by one, the same paragraph printed 216 times, 108 FAILED
    runs in MLflow, all counted as 'trained'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    code = main(["run", "--methods", "all", "--datasets", "mosi,iemocap", "--data-dir", str(tmp_path / "data"), *TINY])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("CMU-MOSI data not found") == 1
    assert captured.err.count("IEMOCAP (MulT 4-emotion protocol) data not found") == 1
    assert "Nothing was run or recorded." in captured.err and "Planned" not in captured.out
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    # one dataset: exactly one paragraph
    assert main(["run", "--methods", "all", "--datasets", "mosi", "--data-dir", str(tmp_path / "data"), *TINY]) == 2
    err = capsys.readouterr().err
    paragraph = err.split("bench: error: ", 1)[1]
    assert paragraph.count("\n") == 1 and paragraph.count("data not found") == 1
    assert not (tmp_path / "mlflow.db").exists()


def test_non_finite_note_is_printed_once_per_dataset(tmp_path, monkeypatch, capsys):
    write_mult(tmp_path / "data" / "mosi", n=(24, 8, 8))  # -inf in audio
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--methods", "additive,late", "--datasets", "mosi", "--data-dir", str(tmp_path / "data"),
                 "--seeds", "0,1", *TINY[2:]]) == 0
    err = capsys.readouterr().err
    assert err.count("replaced non-finite feature values with 0") == 1  # before: once per run (4)


def _inspect(capsys, path) -> tuple[int, dict]:
    code = main(["data", "inspect", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("aligned", [True, False])
def test_inspect_names_a_mult_file_and_what_it_holds(tmp_path, capsys, aligned):
    expected = write_mult(tmp_path / "mosi", aligned=aligned)
    name = "mosi_data.pkl" if aligned else "mosi_data_noalign.pkl"
    code, answer = _inspect(capsys, tmp_path / "mosi" / name)
    assert code == 0
    (found,) = answer["recognised"]
    assert found["format"] == "mult" and found["aligned"] is aligned and found["datasets"] == ["mosi"]
    assert found["splits"] == {s: len(expected.labels[s]) for s in ("train", "validation", "test")}
    assert found["modalities"]["audio"]["nonfinite"] == expected.nonfinite["audio"]
    assert found["modalities"]["text"]["kind"] == "sequence" and found["modalities"]["text"]["dim"] == 6
    assert found["conversion_report"]["padding_by_modality"]["audio"]["side"] == "left"
    labels = np.concatenate(list(expected.labels.values()))
    assert found["labels"]["min"] == pytest.approx(labels.min()) and found["labels"]["zero"] == int((labels == 0).sum())
    assert found["command"] == f"bench run --datasets mosi --data-dir {tmp_path}"


def test_inspect_mmsa_serves_mosi_and_mosei_with_padding_evidence(tmp_path, capsys):
    write_mmsa(tmp_path / "mmsa")
    main(["data", "inspect", str(tmp_path / "mmsa")])
    text = capsys.readouterr().out
    assert "format: MMSA pickles [mmsa]" in text and "serves: mosi, mosei" in text
    assert "padding of audio: right" in text and "length source: audio_lengths" in text
    assert "use it: bench run --datasets mosi --dataset-option mosi.data_dir=" in text


def test_inspect_iemocap_and_csd(tmp_path, capsys):
    write_mult(tmp_path / "iemocap", stem="iemocap", iemocap=True)
    code, answer = _inspect(capsys, tmp_path / "iemocap")
    assert code == 0 and answer["recognised"][0]["datasets"] == ["iemocap"]
    assert set(answer["recognised"][0]["labels"]["positives"]) == {"neutral", "happy", "sad", "angry"}
    labels = label_entries()
    write_csd(tmp_path / "csd" / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    write_feature_csds(tmp_path / "csd", labels)
    code, answer = _inspect(capsys, tmp_path / "csd")
    # the fixture holds 6 of MOSI's 93 videos: the standard folds cannot split it, and inspect says why
    assert code == 1 and any("93" in r["reason"] for r in answer["rejected"] if r["dataset"] == "mosi")


def test_inspect_an_unknown_file_lists_the_supported_layouts(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["data", "inspect", str(tmp_path / "notes.txt")]) == 1
    out = capsys.readouterr().out
    assert "no registered dataset recognises this path" in out
    assert "MMSA pickles aligned_50.pkl or unaligned_50.pkl (for mosi, mosei)" in out
    assert main(["data", "inspect", str(tmp_path / "absent.pkl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_mosei_standard_folds_ship_with_fusebench():
    folds = mosei_std_folds([])
    assert {k: len(v) for k, v in folds.items()} == {"train": 2249, "valid": 300, "test": 678}
    assert len(set().union(*map(set, folds.values()))) == 2249 + 300 + 678


def test_mosei_csd_splits_with_the_shipped_folds_without_the_sdk(tmp_path):
    folds = mosei_std_folds([])
    picked = folds["train"][:4] + folds["valid"][:1] + folds["test"][:1]
    labels = {vid: entry for vid, entry in zip(picked, label_entries(videos=6).values(), strict=True)}
    write_csd(tmp_path / "CMU_MOSEI_LabelsSentiment.csd", "All Labels", labels, {"dataset name": "CMU-MOSEI"})
    write_feature_csds(tmp_path, labels, prefix="CMU_MOSEI")
    dsd, report = load(MOSEI, {"data_dir": str(tmp_path)})
    assert [len(dsd[s]) for s in ("train", "validation", "test")] == [16, 4, 4]
    assert report["dropped_segments"]["not_in_folds"] == 0 and "release" not in report


def test_mosi_release_is_named_from_the_segment_count():
    assert "complete CMU-MOSI" in mosi_release(2199, 2199)
    assert "high-level features" in mosi_release(2199, 2183) and "not directly comparable" in mosi_release(2199, 2183)
    assert "not a known CMU-MOSI release" in mosi_release(2199, 1000)


def _recognised(capsys, path) -> dict[str, list[str]]:
    code, answer = _inspect(capsys, path)
    assert code == 0, answer
    return {found["format"]: found["datasets"] for found in answer["recognised"]}


def test_inspect_every_new_format(tmp_path, capsys):
    """Issue 14 §2: `bench data inspect` on a fixture of each format added in this issue."""
    from fixtures_formats_misa import write_lmf, write_lmf_iemocap, write_misa
    from fixtures_formats_multibench import write_dialoguernn, write_multibench

    write_misa(tmp_path / "misa")
    assert _recognised(capsys, tmp_path / "misa") == {"misa": ["mosi", "mosei"]}
    write_lmf(tmp_path / "lmf" / "mosi.pkl")
    assert _recognised(capsys, tmp_path / "lmf" / "mosi.pkl") == {"lmf": ["mosi"]}
    write_lmf_iemocap(tmp_path / "lmf6" / "iemocap.pkl")
    assert _recognised(capsys, tmp_path / "lmf6" / "iemocap.pkl") == {"lmf": ["iemocap"]}
    write_multibench(tmp_path / "mb", "sarcasm.pkl")
    write_multibench(tmp_path / "mb", "humor.pkl")
    write_multibench(tmp_path / "mb", "mosi_raw.pkl")
    assert _recognised(capsys, tmp_path / "mb" / "sarcasm.pkl") == {"multibench": ["mustard"]}
    assert _recognised(capsys, tmp_path / "mb" / "humor.pkl") == {"multibench": ["urfunny"]}
    assert _recognised(capsys, tmp_path / "mb" / "mosi_raw.pkl") == {"multibench": ["mosi"]}
    write_dialoguernn(tmp_path / "erc")
    code, answer = _inspect(capsys, tmp_path / "erc" / "IEMOCAP_features_raw.pkl")
    (found,) = answer["recognised"]
    assert found["format"] == "dialoguernn" and found["datasets"] == ["iemocap6"]
    assert found["modalities"]["visual" if "visual" in found["modalities"] else "vision"]["kind"] == "vector"
    assert set(found["labels"]["classes"]) <= {"happy", "sad", "neutral", "angry", "excited", "frustrated",
                                               "0", "1", "2", "3", "4", "5"}


def test_inspect_a_mag_folder_without_embeddings_says_how_to_fix_it(tmp_path, capsys):
    from fixtures_formats_misa import write_mag

    write_mag(tmp_path / "mag" / "mosi.pkl")
    code, answer = _inspect(capsys, tmp_path / "mag" / "mosi.pkl")
    assert code == 1 and answer["recognised"] == []
    assert any(r["format"] == "mag" and "embedding" in r["reason"] for r in answer["rejected"])
