"""Writers for tiny MultiBench affect pickles and DialogueRNN IEMOCAP pickles in their exact
on-disk layouts (docs/datasets.md, "MultiBench pickles" and "DialogueRNN IEMOCAP pickles").

Each writer returns the ground truth a correct reader must recover - real lengths, labels in
the dataset's encoding, ids, which samples MultiBench's protocol drops, which dialogues the
documented validation rule holds out - computed here, never by the reader.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fixtures_affect import SPLITS, Expected, real_region

# Feature widths of MultiBench's files (examples/affect/*: MOSI/MOSEI 35 vision, 74 audio, 300
# GloVe text; sarcasm/humor 371 vision, 81 audio, 300 text), 50 word-aligned steps.
MULTIBENCH_DIMS = {
    "mosi_raw.pkl": {"text": 300, "audio": 74, "vision": 35},
    "mosei_raw.pkl": {"text": 300, "audio": 74, "vision": 35},
    "mosei_senti_data.pkl": {"text": 300, "audio": 74, "vision": 35},
    "sarcasm.pkl": {"text": 300, "audio": 81, "vision": 371},
    "humor.pkl": {"text": 300, "audio": 81, "vision": 371},
}
STEPS = 50


@dataclass
class MultiBenchExpected(Expected):
    dropped: dict[str, list[str]] = field(default_factory=dict)  # split -> ids without text
    edge_without_text: int = 0  # kept samples starting/ending with steps of audio/vision but no text


def _labels(rng: np.random.Generator, n: int, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """(as stored, as the dataset reads it): ``posneg`` {-1, 1} (sarcasm.pkl), ``binary01``
    {0, 1} (humor.pkl), ``sentiment`` a score in [-3, 3] with exact zeros (MOSI/MOSEI)."""
    if encoding == "sentiment":
        values = np.round(rng.uniform(-3, 3, size=n), 1).astype(np.float32)
        values[::5] = 0.0
        return values.reshape(n, 1, 1), values
    positive = np.arange(n) % 2 == 0
    rng.shuffle(positive)
    stored = np.where(positive, 1.0, -1.0 if encoding == "posneg" else 0.0).astype(np.float32)
    return stored.reshape(n, 1), positive.astype(np.int64)


def _ids(name: str, split: str, n: int) -> tuple[np.ndarray, list[str]]:
    """MUStARD ids are strings ('1_60'), UR-FUNNY ids integers; MOSI/MOSEI video segments."""
    if name == "humor.pkl":
        raw = np.array([1000 * (1 + list(SPLITS.values()).index(split)) + i for i in range(n)])
        return raw, [str(v) for v in raw]
    text = [f"{i + 1}_{split}{i}" if name == "sarcasm.pkl" else f"vid{i % 4}[{i}]" for i in range(n)]
    return np.array(text), text


def write_multibench(folder: Path, name: str = "sarcasm.pkl", *, encoding: str | None = None,
                     n: tuple[int, int, int] = (24, 8, 8), seed: int = 0, side: str = "left",
                     no_text: Mapping[str, Sequence[int]] | None = None,
                     oov_first_word: Mapping[str, Sequence[int]] | None = None) -> MultiBenchExpected:
    """A MultiBench pickle: ``{train, valid, test} -> {vision, audio, text: (N, 50, D), labels,
    id}``, word-aligned (one length per sample for every modality), zero padding on ``side``
    (front in MultiBench's GloVe files), -inf in audio as in COVAREP.  ``no_text``: samples
    whose text is all zero (MultiBench drops them); ``oov_first_word``: samples whose word next
    to the padding has an all-zero embedding while its audio and vision are real (a real step,
    kept)."""
    encoding = encoding or {"sarcasm.pkl": "posneg", "humor.pkl": "binary01"}.get(name, "sentiment")
    no_text = {"train": [3], "test": [1], **(no_text if no_text is not None else {})}
    oov_first_word = {"train": [5], **(oov_first_word if oov_first_word is not None else {})}
    dims = MULTIBENCH_DIMS[name]
    rng = np.random.default_rng(seed)
    data, expected = {}, MultiBenchExpected(nonfinite=dict.fromkeys(dims, 0))
    for (key, split), size in zip(SPLITS.items(), n, strict=True):
        lengths = rng.integers(3, STEPS + 1, size=size)
        lengths[0] = STEPS  # one unpadded sample
        real = real_region(lengths, STEPS, side)
        fields = {m: np.zeros((size, STEPS, dim), dtype=np.float32) for m, dim in dims.items()}
        for m, array in fields.items():
            for i, length in enumerate(lengths):
                array[i, real[i]] = rng.normal(size=(length, dims[m])).astype(np.float32) + 0.5
        gone = list(no_text.get(split, []))
        oov = [i for i in oov_first_word.get(split, []) if i not in gone]
        for i in gone:
            fields["text"][i] = 0.0
        for i in oov:
            fields["text"][i, np.flatnonzero(real[i])[0 if side == "left" else -1]] = 0.0
        kept = [i for i in range(size) if i not in gone]
        for i in kept[:2]:  # COVAREP -inf on a real step
            fields["audio"][i, np.flatnonzero(real[i])[-1], 0] = -np.inf
            expected.nonfinite["audio"] += 1
        stored, labels = _labels(rng, size, encoding)
        raw_ids, ids = _ids(name, split, size)
        data[key] = {**fields, "labels": stored, "id": raw_ids}
        expected.lengths[split] = {m: lengths[kept] for m in dims}
        expected.labels[split] = labels[kept]
        expected.ids[split] = [ids[i] for i in kept]
        expected.first_steps[split] = {m: fields[m][kept[0], real[kept[0]]] for m in dims} if kept else {}
        expected.dropped[split] = [ids[i] for i in gone]
        expected.edge_without_text += len(oov)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return expected


# -- DialogueRNN / conv-emotion IEMOCAP ---------------------------------------------------------

DIALOGUE_DIMS = {"text": 100, "audio": 100, "vision": 512}  # IEMOCAP_features_raw.pkl
VALID_SALT = "fusebench-iemocap6"  # docs/datasets.md, "iemocap6": the validation rule


@dataclass
class DialogueExpected:
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)
    features: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # split -> modality -> (N, D)
    dialogues: dict[str, list[str]] = field(default_factory=dict)


def documented_validation(train: Sequence[str]) -> list[str]:
    """The rule as docs/datasets.md states it: round(10 %) half up, at least 1, of the training
    dialogues with the smallest sha256 of 'fusebench-iemocap6:<id>'."""
    size = min(len(train) - 1, max(1, math.floor(0.1 * len(train) + 0.5)))
    ranked = sorted(train, key=lambda d: hashlib.sha256(f"{VALID_SALT}:{d}".encode()).hexdigest())
    return sorted(ranked[:size])


def write_dialoguernn(folder: Path, name: str = "IEMOCAP_features_raw.pkl", *, train: int = 12, test: int = 4,
                      seed: int = 0, as_sets: bool = True, unlisted: int = 1) -> DialogueExpected:
    """The conv-emotion 9-tuple (videoIDs, videoSpeakers, videoLabels, videoText, videoAudio,
    videoVisual, videoSentence, trainVid, testVid): dicts keyed by dialogue id with one entry
    per utterance - text and visual as lists of (D,) arrays, audio as an (n, D) array, labels
    as Python ints 0..5 - and the split lists as sets (``as_sets``) or lists, pickled with
    protocol 2 like the Python-2 originals.  ``unlisted`` dialogues are in no split."""
    rng = np.random.default_rng(seed)
    names = ([f"Ses0{1 + i % 4}{'FM'[i % 2]}_impro{i:02d}" for i in range(train)]
             + [f"Ses05{'FM'[i % 2]}_script{i:02d}_1" for i in range(test)]
             + [f"Ses03F_extra{i}" for i in range(unlisted)])
    tables: dict[str, dict[str, object]] = {f: {} for f in ("ids", "speakers", "labels", "text", "audio",
                                                             "vision", "sentences")}
    per_dialogue: dict[str, dict[str, np.ndarray]] = {}
    for d in names:
        k = int(rng.integers(3, 9))
        labels = rng.integers(0, 6, size=k)
        feats = {m: rng.normal(size=(k, dim)).astype(np.float32) for m, dim in DIALOGUE_DIMS.items()}
        per_dialogue[d] = {"labels": labels, **feats}
        tables["ids"][d] = [f"{d}_{'FM'[j % 2]}{j:03d}" for j in range(k)]
        tables["speakers"][d] = ["FM"[j % 2] for j in range(k)]
        tables["labels"][d] = [int(v) for v in labels]
        tables["text"][d] = list(feats["text"])
        tables["audio"][d] = feats["audio"]
        tables["vision"][d] = list(feats["vision"])
        tables["sentences"][d] = [f"utterance {j} of {d}" for j in range(k)]
    train_ids, test_ids = names[:train], names[train:train + test]
    wrap = set if as_sets else list
    data = (tables["ids"], tables["speakers"], tables["labels"], tables["text"], tables["audio"], tables["vision"],
            tables["sentences"], wrap(train_ids), wrap(test_ids))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    valid = documented_validation(train_ids)
    expected = DialogueExpected()
    for split, dialogues in (("train", sorted(set(train_ids) - set(valid))), ("validation", valid),
                             ("test", sorted(test_ids))):
        expected.dialogues[split] = dialogues
        expected.labels[split] = np.concatenate([per_dialogue[d]["labels"] for d in dialogues])
        expected.ids[split] = [f"{d}[{j}]" for d in dialogues for j in range(len(per_dialogue[d]["labels"]))]
        expected.features[split] = {m: np.concatenate([per_dialogue[d][m] for d in dialogues])
                                    for m in DIALOGUE_DIMS}
    return expected


def rewrite(path: Path, change) -> None:
    """Load a fixture pickle, let ``change(data)`` edit (or return a replacement), write it back."""
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    replaced = change(data)
    with open(path, "wb") as fh:
        pickle.dump(data if replaced is None else replaced, fh, protocol=2)
