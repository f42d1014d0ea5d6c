"""MISA / MAG word-aligned pickles, LMF pickles and the restricted torch loader (issue 14 §1):
fixtures in the exact layouts -> the dataset plugin -> ``bench run``; malformed and hostile
variants fail with one paragraph naming the file and the fix."""

from __future__ import annotations

import io
import os
import pickle
import sys
from collections import OrderedDict, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_paragraph
from fixtures_formats_misa import (
    DIMS,
    VOCABULARY,
    glove_vectors,
    misa_vocabulary,
    save_misa_embeddings,
    write_glove,
    write_lmf,
    write_lmf_iemocap,
    write_mag,
    write_misa,
)

from benchmark_core.cli import main
from benchmark_core.engine import safe_torch
from benchmark_core.engine.data import to_tensors
from benchmark_core.engine.safe_pickle import UnsafePickleError
from benchmark_core.errors import DataError
from plugins.datasets.affect.loader import load, make_spec
from plugins.datasets.affect.profiles import IEMOCAP, MOSEI, MOSI
from plugins.datasets.affect.sniff import outline

SPLITS = ("train", "validation", "test")


pytestmark = pytest.mark.usefixtures("isolated_data")


def _check(dsd, truth, label_dtype=np.float32) -> None:
    for split in SPLITS:
        assert dsd[split]["id"] == truth.ids[split]
        assert np.allclose(np.array(dsd[split]["label"], dtype=label_dtype), truth.labels[split])
        for m in DIMS:
            got = dsd[split][m]
            want = truth.sequences[split][m]
            assert len(got) == len(want), (split, m)
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                assert np.array_equal(np.array(g, dtype=np.float32), w, equal_nan=True), (split, m, i)


def test_profiles_list_the_formats():
    """The readers below are reached through the profiles' format lists (search order: after
    MulT and MMSA, before the SDK's .csd files)."""
    assert {"misa", "mag", "lmf"} <= set(MOSI.formats), MOSI.formats
    assert {"misa", "mag"} <= set(MOSEI.formats), MOSEI.formats
    assert "lmf" in IEMOCAP.formats, IEMOCAP.formats


# -- the restricted torch loader ---------------------------------------------------------------

@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_safe_torch_reads_misa_embeddings_without_importing_create_dataset(tmp_path, legacy):
    word2id, matrix = misa_vocabulary()
    path = save_misa_embeddings(tmp_path / "embedding_and_mapping.pt", torch.from_numpy(matrix), word2id,
                                legacy=legacy, factory_module=tmp_path / "code")
    assert path.read_bytes()[:2] == (b"\x80\x02" if legacy else b"PK")
    with pytest.raises(ModuleNotFoundError, match="create_dataset"):
        torch.load(path, weights_only=False)  # what plain torch.load needs: MISA's code importable
    loaded, mapping = safe_torch.load(path)
    assert "create_dataset" not in sys.modules
    assert loaded.dtype == np.float32 and np.array_equal(loaded, matrix)
    assert type(mapping) is dict and mapping == word2id


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_safe_torch_tensor_views_numpy_arrays_and_half_precision(tmp_path, legacy):
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    value = {"transposed": base.t(), "slice": base[1:3, 2:], "half": base.half(), "array": np.arange(5),
             "ids": torch.tensor([3, 1, 2])}
    torch.save(value, tmp_path / "t.pt", _use_new_zipfile_serialization=not legacy)
    loaded = safe_torch.load(tmp_path / "t.pt")
    for key, tensor in value.items():
        want = tensor if isinstance(tensor, np.ndarray) else tensor.numpy()
        assert loaded[key].dtype == want.dtype and np.array_equal(loaded[key], want), key


class _Shell:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_safe_torch_refuses_code(tmp_path, legacy):
    marker = tmp_path / "pwned"
    torch.save((torch.zeros(2, 3), _Shell(marker)), tmp_path / "evil.pt", _use_new_zipfile_serialization=not legacy)
    with pytest.raises(UnsafePickleError) as error:
        safe_torch.load(tmp_path / "evil.pt")
    message = one_paragraph(error.value)
    assert "evil.pt" in message and "system" in message and "never runs code" in message
    assert not marker.exists()


@pytest.mark.parametrize("factory", [list, "other"], ids=["builtin-list", "other-function"])
def test_safe_torch_admits_only_misas_default_factory(tmp_path, factory):
    code = tmp_path / "code"
    code.mkdir()
    (code / "create_dataset.py").write_text("def other():\n    return 0\n")
    sys.path.insert(0, str(code))
    try:
        import create_dataset

        mapping = defaultdict(create_dataset.other if factory == "other" else factory, {"a": 0})
        torch.save((torch.zeros(1, 2), mapping), tmp_path / "e.pt")
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("create_dataset", None)
    with pytest.raises(UnsafePickleError, match=r"e\.pt") as error:
        safe_torch.load(tmp_path / "e.pt")
    assert ("create_dataset.other" if factory == "other" else "defaultdict") in one_paragraph(error.value)


class _Bomb:
    """A tensor of 10**9 floats whose storage the file does not hold (legacy layout)."""

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (_STORAGE, 0, (10**9,), (1,), False, OrderedDict())


_STORAGE = object()


class _BombPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, "0", "cpu", 10**9, None) if obj is _STORAGE else None


def test_safe_torch_refuses_tensors_the_file_cannot_hold(tmp_path):
    buffer = io.BytesIO()
    for header in (safe_torch.MAGIC_NUMBER, safe_torch.LEGACY_PROTOCOL, {"little_endian": True}):
        pickle.dump(header, buffer, protocol=2)
    _BombPickler(buffer, protocol=2).dump((_Bomb(), {}))
    pickle.dump(["0"], buffer, protocol=2)
    (tmp_path / "bomb.pt").write_bytes(buffer.getvalue() + (10**9).to_bytes(8, "little"))
    with pytest.raises(UnsafePickleError, match=r"bomb\.pt.*would materialise 3\.7 GiB") as error:
        safe_torch.load(tmp_path / "bomb.pt")
    one_paragraph(error.value)


def test_safe_torch_truncated_and_foreign_files(tmp_path):
    word2id, matrix = misa_vocabulary()
    path = save_misa_embeddings(tmp_path / "e.pt", torch.from_numpy(matrix), word2id, legacy=True,
                                factory_module=tmp_path / "code")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"e\.pt: storage .* found \d+ bytes.*truncated") as error:
        safe_torch.load(path)
    one_paragraph(error.value)
    (tmp_path / "plain.pt").write_bytes(pickle.dumps({"not": "torch"}, protocol=2))
    with pytest.raises(DataError, match=r"plain\.pt is not a file written by torch\.save"):
        safe_torch.load(tmp_path / "plain.pt")


# -- MISA ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-pt", "zip-pt"])
def test_misa_split_pickles_with_embedding_and_mapping(tmp_path, legacy):
    truth = write_misa(tmp_path / "mosi", legacy=legacy)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path / "mosi")})
    _check(dsd, truth)
    assert report["format"] == "misa" and report["text"]["by"] == "word id"
    assert report["recognised"].startswith("MISA per-split pickles: lists of ((word ids and words")
    assert report["empty_samples_kept_as_one_zero_step"] == 1
    assert report["dims"] == {"vision": 47, "audio": 74, "text": 300}
    assert report["files"]["embeddings"] == "embedding_and_mapping.pt"
    assert "create_dataset" not in sys.modules
    assert to_tensors(make_spec(MOSI), dsd).train.y.shape[0] == 16


def test_misa_mosei_labels_and_facet42(tmp_path):
    truth = write_misa(tmp_path / "mosei", mosei=True, legacy=False)
    dsd, report = load(MOSEI, {"data_dir": str(tmp_path / "mosei")})
    _check(dsd, truth)
    assert report["dims"]["vision"] == 35


def test_misa_with_glove_text_file_looks_words_up(tmp_path):
    truth_ids = write_misa(tmp_path / "mosi", embeddings=False)
    known = [*VOCABULARY[:30], "New York"]  # the rest are unknown -> zero vectors
    vectors = glove_vectors(known)
    glove = write_glove(tmp_path / "glove.840B.300d.txt", vectors, header=True)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path / "mosi"), "embeddings": str(glove)})
    unknown = 0
    for split in SPLITS:  # same samples as the .pt variant, text from the GloVe file
        for i, words in enumerate(truth_ids.words[split]):
            want = np.zeros((max(len(words), 1), 300), np.float32)
            for k, w in enumerate(words):
                want[k] = vectors.get(w, 0.0)
                unknown += w not in vectors
            assert np.array_equal(np.array(dsd[split]["text"][i], dtype=np.float32), want), (split, i)
        assert np.allclose(dsd[split]["label"], truth_ids.labels[split])
    assert report["text"]["by"] == "word" and report["text"]["source"] == "GloVe-style text file"
    assert report["text"]["unknown_words"]["tokens"] == unknown > 0
    used = {w for per_split in truth_ids.words.values() for words in per_split for w in words}
    assert report["text"]["vocabulary"] == len(used & set(known))


def test_misa_without_embeddings_says_which_file_and_both_fixes(tmp_path):
    write_misa(tmp_path / "mosi", embeddings=False)
    with pytest.raises(DataError) as error:
        load(MOSI, {"data_dir": str(tmp_path / "mosi")})
    message = one_paragraph(error.value)
    assert "embedding_and_mapping.pt is missing" in message and "mosi.embeddings=" in message
    assert "glove" in message.lower()


def test_misa_embeddings_from_other_pickles_are_refused(tmp_path):
    write_misa(tmp_path / "mosi", embeddings=False)
    word2id, matrix = misa_vocabulary(seed=99)  # another build: other ids for the same words
    save_misa_embeddings(tmp_path / "mosi" / "embedding_and_mapping.pt", torch.from_numpy(matrix), word2id,
                         legacy=True, factory_module=tmp_path / "code")
    with pytest.raises(DataError, match=r"train\.pkl sample 0 .*word .* has id \d+ in the pickle but \d+ in .*"
                                        r"belongs to other pickles") as error:
        load(MOSI, {"data_dir": str(tmp_path / "mosi")})
    one_paragraph(error.value)


def _rewrite(path: Path, edit) -> None:
    items = pickle.loads(path.read_bytes())  # our own fixture: trusted
    edit(items)
    path.write_bytes(pickle.dumps(items, protocol=3))


def _short_visual(items):
    (ids, visual, acoustic, words), label, segment = items[3]
    items[3] = ((ids, visual[:-1], acoustic, words), label, segment)


def _label_shape(items):
    features, label, segment = items[2]
    items[2] = (features, label.reshape(1), segment)


def _not_a_tuple(items):
    items[0] = {"words": []}


def _dict_file(items):
    items.clear()


@pytest.mark.parametrize("edit, pattern", [
    (_short_visual, r"dev\.pkl sample 3 \(id 'validationvid0\[3\]'\): visual has shape \(\d+, 47\) for \d+ words"),
    (_label_shape, r"dev\.pkl sample 2 \(id .*\): label has shape \(1,\), most samples \(1, 1\)"),
    (_not_a_tuple, r"dev\.pkl sample 0 is a dict; a sample is \(\(word ids or words"),
    (_dict_file, r"dev\.pkl holds an empty list; it should be a non-empty list of samples"),
], ids=["modalities-disagree", "label-shape", "not-a-tuple", "empty-split"])
def test_misa_malformed_samples_name_file_sample_and_fix(tmp_path, edit, pattern):
    write_misa(tmp_path / "mosi")
    _rewrite(tmp_path / "mosi" / "dev.pkl", edit)
    with pytest.raises(DataError, match=pattern) as error:
        load(MOSI, {"data_dir": str(tmp_path / "mosi")})
    one_paragraph(error.value)


def test_embeddings_option_naming_a_missing_file(tmp_path):
    write_misa(tmp_path / "mosi", embeddings=False)
    with pytest.raises(DataError, match=r"mosi\.embeddings=.*nope\.txt: no such file.*GloVe"):
        load(MOSI, {"data_dir": str(tmp_path / "mosi"), "embeddings": str(tmp_path / "nope.txt")})


def test_glove_file_with_a_short_line(tmp_path):
    write_misa(tmp_path / "mosi", embeddings=False)
    glove = write_glove(tmp_path / "g.txt", glove_vectors(VOCABULARY))
    glove.write_text(glove.read_text() + "w3 1.0 2.0\n")
    with pytest.raises(DataError, match=r"g\.txt line \d+: expected a word and 300 numbers"):
        load(MOSI, {"data_dir": str(tmp_path / "mosi"), "embeddings": str(glove)})


# -- MAG and LMF: both call their file mosi.pkl --------------------------------------------------

@pytest.mark.parametrize("label_arrays", [False, True], ids=["float-labels", "array-labels"])
def test_mag_dict_of_splits_with_glove(tmp_path, label_arrays):
    vectors = glove_vectors([*VOCABULARY[:35], "don't"])
    glove = write_glove(tmp_path / "glove.txt", vectors)
    truth = write_mag(tmp_path / "mosi" / "mosi.pkl", vectors=vectors, label_arrays=label_arrays)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path / "mosi"), "embeddings": str(glove)})
    _check(dsd, truth)
    assert report["format"] == "mag" and report["recognised"].startswith("MAG dict of splits")
    assert report["text"]["unknown_words"]["tokens"] == truth.unknown_tokens > 0


def test_mag_with_misa_embedding_file_by_word(tmp_path):
    word2id, matrix = misa_vocabulary()
    pt = save_misa_embeddings(tmp_path / "emb.pt", torch.from_numpy(matrix), word2id, legacy=False,
                              factory_module=tmp_path / "code")
    truth = write_mag(tmp_path / "mosi" / "mosi.pkl", vectors={w: matrix[i] for w, i in word2id.items()})
    dsd, report = load(MOSI, {"data_dir": str(tmp_path / "mosi"), "embeddings": str(pt)})
    _check(dsd, truth)
    assert report["text"]["by"] == "word" and report["text"]["unknown_words"]["tokens"] == 0


def test_mag_without_embeddings(tmp_path):
    write_mag(tmp_path / "mosi" / "mosi.pkl")
    with pytest.raises(DataError, match=r"mosi\.pkl is a MAG pickle whose text is words.*mosi\.embeddings=") as error:
        load(MOSI, {"data_dir": str(tmp_path / "mosi")})
    one_paragraph(error.value)


@pytest.mark.parametrize("py2", [True, False], ids=["python2-opcodes", "python3-bytes-keys"])
def test_lmf_mosi_pickle(tmp_path, py2):
    truth = write_lmf(tmp_path / "mosi" / "mosi.pkl", py2=py2)
    raw = (tmp_path / "mosi" / "mosi.pkl").read_bytes()
    assert (b"U\x05train" in raw) == py2 and (b"X\x00\x00\x00\x00" not in raw or not py2)
    dsd, report = load(MOSI, {"data_dir": str(tmp_path / "mosi")})
    _check(dsd, truth)
    assert report["format"] == "lmf" and report["keys"] == ("str" if py2 else "bytes")
    assert report["recognised"].startswith("LMF MOSI pickle")
    assert report["padding_by_modality"]["text"]["side"] == "left"
    assert to_tensors(make_spec(MOSI), dsd).report["nonfinite_replaced"]["audio"] == 3  # a NaN per split


def test_mosi_pkl_is_read_as_what_it_holds(tmp_path):
    """The same name, two layouts: each folder is read by the format whose layout it holds."""
    write_lmf(tmp_path / "a" / "mosi.pkl")
    vectors = glove_vectors(VOCABULARY)
    write_mag(tmp_path / "b" / "mosi.pkl", vectors=vectors)
    glove = write_glove(tmp_path / "glove.txt", vectors)
    for folder, fmt in (("a", "lmf"), ("b", "mag")):
        report = load(MOSI, {"data_dir": str(tmp_path / folder), "embeddings": str(glove)})[1]
        assert report["format"] == fmt
    for folder, other in (("a", "mag"), ("b", "lmf")):  # forcing the other format finds nothing
        with pytest.raises(DataError, match="data not found"):
            load(MOSI, {"data_dir": str(tmp_path / folder), "format": other, "embeddings": str(glove)})


def test_outline_tells_the_layouts_apart_from_the_first_opcodes(tmp_path):
    write_misa(tmp_path / "misa", n=(4, 3, 3), embeddings=False)
    write_mag(tmp_path / "mag.pkl", n=(4, 3, 3))
    write_lmf(tmp_path / "py2.pkl", n=(4, 3, 3))
    write_lmf(tmp_path / "py3.pkl", n=(4, 3, 3), py2=False)
    write_lmf_iemocap(tmp_path / "iemocap.pkl", n=(4, 3, 3))
    (tmp_path / "mult.pkl").write_bytes(pickle.dumps({"train": {"text": np.zeros((2, 3, 4))}}, protocol=4))
    (tmp_path / "text.pkl").write_text("not a pickle")
    expected = {"misa/dev.pkl": "list", "mag.pkl": "split lists", "py2.pkl": "split fields",
                "py3.pkl": "split fields", "iemocap.pkl": "emotion splits", "mult.pkl": None, "text.pkl": None}
    assert {name: outline(tmp_path / name) for name in expected} == expected


@pytest.mark.parametrize("py2", [True, False], ids=["python2-opcodes", "python3-bytes-keys"])
def test_lmf_iemocap_four_emotions_become_one_multilabel_target(tmp_path, py2):
    truth, _ = write_lmf_iemocap(tmp_path / "iemocap" / "iemocap.pkl", py2=py2)
    dsd, report = load(IEMOCAP, {"data_dir": str(tmp_path / "iemocap")})
    _check(dsd, truth, label_dtype=np.int64)
    assert report["features_identical_across_emotions"] is True
    assert report["recognised"].startswith("LMF IEMOCAP pickle")
    tensors = to_tensors(make_spec(IEMOCAP), dsd)
    assert tensors.task.target.kind == "multilabel" and tuple(tensors.train.y.shape) == (16, 4)


def test_lmf_iemocap_with_different_features_per_emotion(tmp_path):
    _, data = write_lmf_iemocap(tmp_path / "iemocap.pkl", py2=False)
    data["sad"]["valid"]["facet"][0, 0] += 1.0
    (tmp_path / "iemocap.pkl").write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(DataError, match=r"iemocap\.pkl split 'validation': emotion 'sad' holds other 'facet' "
                                        r"features than 'neutral'") as error:
        load(IEMOCAP, {"data_dir": str(tmp_path)})
    one_paragraph(error.value)


def test_lmf_iemocap_missing_an_emotion(tmp_path):
    _, data = write_lmf_iemocap(tmp_path / "iemocap.pkl", py2=False)
    del data["angry"]
    (tmp_path / "iemocap.pkl").write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(DataError, match=r"iemocap\.pkl: top-level keys .* missing \['angry'\]"):
        load(IEMOCAP, {"data_dir": str(tmp_path)})


def test_lmf_missing_field_names_split_and_field(tmp_path):
    write_lmf(tmp_path / "mosi.pkl", py2=False)
    data = pickle.loads((tmp_path / "mosi.pkl").read_bytes())
    del data[b"test"][b"glove"]
    (tmp_path / "mosi.pkl").write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(DataError, match=r"mosi\.pkl split 'test' has no field 'glove'.*covarep"):
        load(MOSI, {"data_dir": str(tmp_path)})


# -- end to end ---------------------------------------------------------------------------------

def _write_for_run(kind: str, data: Path, tmp_path: Path) -> tuple[str, list[str]]:
    if kind == "misa":
        write_misa(data / "mosi", n=(24, 8, 8))
        return "mosi", []
    if kind == "mag":
        vectors = glove_vectors(VOCABULARY)
        write_mag(data / "mosi" / "mosi.pkl", n=(24, 8, 8), vectors=vectors)
        glove = write_glove(tmp_path / "glove.txt", vectors)
        return "mosi", ["--dataset-option", f"mosi.embeddings={glove}"]
    if kind == "lmf":
        write_lmf(data / "mosi.pkl", n=(24, 8, 8))  # shared folder: the file name says the dataset
        return "mosi", []
    write_lmf_iemocap(data / "iemocap" / "iemocap.pkl", n=(24, 8, 8))
    return "iemocap", []


@pytest.mark.parametrize("kind", ["misa", "mag", "lmf", "lmf-iemocap"])
def test_bench_run_end_to_end(tmp_path, monkeypatch, capsys, kind):
    data = tmp_path / "data"
    dataset, extra = _write_for_run(kind, data, tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["run", "--methods", "additive", "--datasets", dataset, "--data-dir", str(data), "--seeds", "0",
            "--epochs", "1", "--batch-size", "8", "--no-stress", "--no-emap", *extra]
    assert main(args) == 0, capsys.readouterr()
    assert "Done: 1 trained" in capsys.readouterr().out
