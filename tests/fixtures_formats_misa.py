"""Builders for MISA, MAG and LMF files in their exact on-disk layouts (misa.py / lmf.py
docstrings, docs/datasets.md).  Each writer returns the sequences, labels and ids a correct
reader must produce, so tests compare against ground truth rather than against the reader.

* MISA: ``train.pkl``/``dev.pkl``/``test.pkl`` pickled as Python 3.7 did (protocol 3), and
  ``embedding_and_mapping.pt`` written by the real ``torch.save`` - legacy (torch 1.3, MISA's
  environment) or zip - with a ``defaultdict`` whose factory is ``create_dataset.return_unk``
  from a ``create_dataset`` module that exists only while saving.
* MAG: ``mosi.pkl`` = ``{"train", "dev", "test": [((words, visual, acoustic), label, segment)]}``.
* LMF: Python-2 pickles; :class:`Py2Pickler` writes Python-2's opcodes (``str`` as
  BINSTRING), or ``pickle.dump(protocol=2)`` of ``bytes`` keys as a Python-3 re-save does.
"""

from __future__ import annotations

import importlib
import pickle
import struct
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPLIT_FILES = {"train": "train.pkl", "validation": "dev.pkl", "test": "test.pkl"}
MAG_KEYS = {"train": "train", "validation": "dev", "test": "test"}
LMF_KEYS = {"train": "train", "validation": "valid", "test": "test"}
LMF_EMOTIONS = ("happy", "sad", "angry", "neutral")  # LMF's key order; ours is neutral, happy, sad, angry
DIMS = {"text": 300, "audio": 74, "vision": 47}  # GloVe, COVAREP, FACET 4.1 (MOSI)
VOCABULARY = [f"w{i}" for i in range(40)] + ["New York", "don't", "Okay"]


@dataclass
class Truth:
    """What a reader must return: per split the sequences of every modality, labels, ids."""

    sequences: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)
    words: dict[str, list[list[str]]] = field(default_factory=dict)
    unknown_tokens: int = 0


def _sentiment(rng: np.random.Generator, n: int) -> np.ndarray:
    labels = np.round(rng.uniform(-3, 3, size=n), 1)
    labels[::4] = 0.0
    labels[1::4] = np.abs(labels[1::4]) + 0.5
    return labels.astype(np.float32)


def glove_vectors(words: list[str], dim: int = DIMS["text"], seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {w: rng.normal(size=dim).astype(np.float32) for w in words}


def write_glove(path: Path, vectors: dict[str, np.ndarray], *, header: bool = False) -> Path:
    """A GloVe text file: ``word v1 ... vD`` per line (words may hold spaces, as in 840B),
    optionally with word2vec's ``count dim`` header; a decoy line whose first field starts a
    vocabulary word ("New Yorker") and a word listed twice (the last vector counts)."""
    dim = len(next(iter(vectors.values())))
    lines = [f"{len(vectors)} {dim}"] if header else []
    decoy = " ".join(["New", "Yorker"] + ["9.0"] * dim)
    first = next(iter(vectors))
    lines += [" ".join([first] + ["5.0"] * dim), decoy]
    lines += [" ".join([w] + [repr(float(v)) for v in vec]) for w, vec in vectors.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _misa_samples(rng: np.random.Generator, split: str, n: int, word2id: dict[str, int], dims: dict[str, int],
                  *, empty: bool, word_ids: bool) -> tuple[list[Any], list[list[str]], np.ndarray, list[str]]:
    """MISA elements (or MAG's with ``word_ids=False``), their words, labels and ids."""
    labels = _sentiment(rng, n)
    items: list[Any] = []
    words_out: list[list[str]] = []
    ids: list[str] = []
    for i in range(n):
        length = 0 if empty and i == 1 else (1 if i == 2 else int(rng.integers(2, 9)))
        words = [VOCABULARY[k] for k in rng.integers(0, len(VOCABULARY), size=length)]
        visual = rng.normal(size=(length, dims["vision"])).astype(np.float32)
        acoustic = rng.normal(size=(length, dims["audio"])).astype(np.float32)
        if length == 0:  # create_dataset.py: np.asarray([]) of a segment whose words were all 'sp'
            visual = acoustic = np.asarray([])
        segment = f"{split}vid{i % 3}[{i}]"
        if word_ids:
            tokens = np.asarray([word2id[w] for w in words]) if words else np.asarray([])
            items.append(((tokens, visual, acoustic, words), labels[i].reshape(1, 1), segment))
        else:
            items.append(((words, visual.astype(np.float64), acoustic.astype(np.float64)), float(labels[i]), segment))
        words_out.append(words)
        ids.append(segment)
    return items, words_out, labels, ids


def _truth_from(truth: Truth, split: str, items: list[Any], words: list[list[str]], labels: np.ndarray,
                ids: list[str], vectors: dict[str, np.ndarray], dims: dict[str, int]) -> None:
    """Expected sequences: text from ``vectors`` (unknown words zero), a sample without words
    one zero step in every modality."""
    seqs: dict[str, list[np.ndarray]] = {m: [] for m in DIMS}
    for item, sample_words in zip(items, words, strict=True):
        visual, acoustic = item[0][1], item[0][2]
        if not sample_words:
            for m in DIMS:
                seqs[m].append(np.zeros((1, dims[m]), np.float32))
            continue
        text = np.zeros((len(sample_words), dims["text"]), np.float32)
        for k, w in enumerate(sample_words):
            if w in vectors:
                text[k] = vectors[w]
            else:
                truth.unknown_tokens += 1
        seqs["text"].append(text)
        seqs["vision"].append(np.asarray(visual, np.float32))
        seqs["audio"].append(np.asarray(acoustic, np.float32))
    truth.sequences[split], truth.labels[split], truth.ids[split], truth.words[split] = seqs, labels, ids, words


def save_misa_embeddings(path: Path, matrix: Any, word2id: dict[str, int], *, legacy: bool,
                         factory_module: Path) -> Path:
    """``torch.save((matrix, word2id))`` as create_dataset.py does: word2id a defaultdict whose
    factory is ``create_dataset.return_unk``.  The module exists (on sys.path) only while
    saving, so a reader that imported it would fail."""
    import torch

    factory_module.mkdir(parents=True, exist_ok=True)
    (factory_module / "create_dataset.py").write_text("UNK = 0\n\n\ndef return_unk():\n    return UNK\n")
    sys.path.insert(0, str(factory_module))
    try:
        module = importlib.import_module("create_dataset")
        mapping = defaultdict(module.return_unk, word2id)
        torch.save((matrix, mapping), path, _use_new_zipfile_serialization=not legacy)
    finally:
        sys.path.remove(str(factory_module))
        sys.modules.pop("create_dataset", None)
        (factory_module / "create_dataset.py").unlink()
    return path


def misa_vocabulary(seed: int = 3) -> tuple[dict[str, int], np.ndarray]:
    """MISA's word2id (``<unk>`` 0, ``<pad>`` 1, then words in first-seen order) and its matrix:
    GloVe rows for known words, random rows for the rest (create_dataset.load_emb)."""
    rng = np.random.default_rng(seed)
    word2id = {"<unk>": 0, "<pad>": 1, **{w: i + 2 for i, w in enumerate(rng.permutation(VOCABULARY))}}
    return word2id, rng.normal(size=(len(word2id), DIMS["text"])).astype(np.float32)


def write_misa(folder: Path, *, n: tuple[int, int, int] = (16, 6, 6), seed: int = 0, legacy: bool = True,
               embeddings: bool = True, mosei: bool = False) -> Truth:
    """MISA's three split pickles (protocol 3, Python 3.7's default) and, with ``embeddings``,
    ``embedding_and_mapping.pt``.  The train split has a sample without words."""
    import torch

    rng = np.random.default_rng(seed)
    word2id, matrix = misa_vocabulary()
    dims = {**DIMS, "vision": 35} if mosei else DIMS  # FACET 4.2 on MOSEI
    vectors = {w: matrix[i] for w, i in word2id.items()}
    truth = Truth()
    folder.mkdir(parents=True, exist_ok=True)
    for (split, name), size in zip(SPLIT_FILES.items(), n, strict=True):
        items, words, labels, ids = _misa_samples(rng, split, size, word2id, dims, empty=split == "train",
                                                  word_ids=True)
        with open(folder / name, "wb") as fh:
            pickle.dump(items, fh, protocol=3)
        _truth_from(truth, split, items, words, labels, ids, vectors, dims)
    if embeddings:
        save_misa_embeddings(folder / "embedding_and_mapping.pt", torch.from_numpy(matrix), word2id, legacy=legacy,
                             factory_module=folder.parent / "misa-code")
    return truth


def write_mag(path: Path, *, n: tuple[int, int, int] = (16, 6, 6), seed: int = 1, label_arrays: bool = False,
              vectors: dict[str, np.ndarray] | None = None) -> Truth:
    """MAG's one dict of splits; labels float (README) or ``(1, 1)`` arrays (MISA-derived
    copies); text truth from ``vectors`` (by word; words missing there are zeros)."""
    rng = np.random.default_rng(seed)
    vectors = vectors if vectors is not None else {}
    truth, data = Truth(), {}
    for split, key in MAG_KEYS.items():
        items, words, labels, ids = _misa_samples(rng, split, n[list(MAG_KEYS).index(split)], {}, DIMS,
                                                  empty=False, word_ids=False)
        if label_arrays:
            items = [(f, np.float32(label).reshape(1, 1), s) for f, label, s in items]
        data[key] = items
        _truth_from(truth, split, items, words, labels, ids, vectors, DIMS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=3)
    return truth


class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol 2 as Python 2's cPickle writes it: ``str`` and ``bytes`` as 8-bit strings
    (SHORT_BINSTRING / BINSTRING) - dict keys and numpy's array buffers alike."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_py2_string(self, obj: str | bytes) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_string
    dispatch[str] = save_py2_string


def _lmf_split(rng: np.random.Generator, n: int, vision: int, steps: int = 20) -> tuple[dict[str, np.ndarray], dict]:
    """covarep/facet time-averaged (N, D), glove (N, 20, 300) zero-padded at the front."""
    lengths = rng.integers(1, steps + 1, size=n)
    lengths[0] = steps
    glove = np.zeros((n, steps, DIMS["text"]))
    for i, length in enumerate(lengths):
        glove[i, steps - length:] = rng.normal(size=(length, DIMS["text"])) + 0.5
    covarep = rng.normal(size=(n, DIMS["audio"]))
    covarep[n - 1, 3] = np.nan  # LMF's README: NaN in acoustic features
    facet = rng.normal(size=(n, vision))
    fields = {"covarep": covarep, "facet": facet, "glove": glove}
    seqs = {"text": [glove[i, steps - k:].astype(np.float32) for i, k in enumerate(lengths)],
            "audio": [covarep[i:i + 1].astype(np.float32) for i in range(n)],
            "vision": [facet[i:i + 1].astype(np.float32) for i in range(n)]}
    return fields, seqs


def _dump_lmf(path: Path, data: dict, py2: bool) -> None:
    """``py2``: Python-2 opcodes (keys arrive as str); else Python 3 ``bytes`` keys, protocol 2."""
    def as_bytes(value: Any) -> Any:
        return {k.encode(): as_bytes(v) for k, v in value.items()} if isinstance(value, dict) else value

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        if py2:
            Py2Pickler(fh, protocol=2).dump(data)
        else:
            pickle.dump(as_bytes(data), fh, protocol=2)


def write_lmf(path: Path, *, n: tuple[int, int, int] = (16, 6, 6), seed: int = 2, py2: bool = True) -> Truth:
    """LMF's mosi.pkl: {train, valid, test} -> {covarep (N, 74), facet (N, 46), glove (N, 20, 300),
    label (N, 1)}."""
    rng = np.random.default_rng(seed)
    truth, data = Truth(), {}
    for split, key in LMF_KEYS.items():
        size = n[list(LMF_KEYS).index(split)]
        fields, seqs = _lmf_split(rng, size, vision=46)
        labels = _sentiment(rng, size)
        data[key] = {**fields, "label": labels.reshape(size, 1).astype(np.float64)}
        truth.sequences[split], truth.labels[split] = seqs, labels
        truth.ids[split] = [f"{split}[{i}]" for i in range(size)]
    _dump_lmf(path, data, py2)
    return truth


def write_lmf_iemocap(path: Path, *, n: tuple[int, int, int] = (16, 6, 6), seed: int = 4,
                      py2: bool = True) -> tuple[Truth, dict]:
    """LMF's iemocap.pkl: emotion -> split -> fields, the same features under every emotion,
    labels (N, 2) one-hot per emotion.  Returns the truth (labels (N, 4) = argmax per emotion in
    the order neutral, happy, sad, angry) and the data, for tests that break it."""
    rng = np.random.default_rng(seed)
    truth = Truth()
    features: dict[str, dict[str, np.ndarray]] = {}
    hot: dict[str, np.ndarray] = {}
    for split in LMF_KEYS:
        size = n[list(LMF_KEYS).index(split)]
        features[split], truth.sequences[split] = _lmf_split(rng, size, vision=35)
        emotion = rng.integers(0, 4, size=size)  # one emotion per utterance
        hot[split] = np.eye(4, dtype=np.int64)[emotion]  # (N, 4) in LMF_EMOTIONS order
        ours = ("neutral", "happy", "sad", "angry")
        truth.labels[split] = hot[split][:, [LMF_EMOTIONS.index(e) for e in ours]]
        truth.ids[split] = [f"{split}[{i}]" for i in range(size)]
    data = {e: {LMF_KEYS[split]: {**{f: a.copy() for f, a in features[split].items()},
                                  "label": np.eye(2)[hot[split][:, k]]}
                for split in LMF_KEYS}
            for k, e in enumerate(LMF_EMOTIONS)}
    _dump_lmf(path, data, py2)
    return truth, data
