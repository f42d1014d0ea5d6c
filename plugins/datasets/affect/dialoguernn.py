"""DialogueRNN-family IEMOCAP pickles (declare-lab/conv-emotion): ``IEMOCAP_features_raw.pkl``
(DialogueRNN, bc-LSTM) and ``IEMOCAP_features.pkl`` (DialogueGCN) - the 6-emotion protocol.

Layout (``DialogueRNN/dataloader.py``, unpickled with ``encoding='latin1'``): a 9-tuple
``(videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual, videoSentence,
trainVid, testVid)``; the first seven are dicts keyed by dialogue id with one entry per
utterance (labels 0 hap, 1 sad, 2 neu, 3 ang, 4 exc, 5 fru; features one vector per
utterance), the last two the dialogue ids of each split.  Every utterance is one sample with
its three vectors: speakers and the dialogue context are not modalities (utterance-level
classification without context).  The file has no validation split and ``trainVid`` is often
a set (no stable order), so the validation dialogues are chosen by a hash of their ids: fixed,
reproducible from the docs alone, and whole dialogues only, so no conversation is on both sides.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusebench import DataError, safe_pickle_load

from .convert import Converted, SplitArrays, check_sizes, id_string, vector_features
from .profiles import AffectProfile

if TYPE_CHECKING:
    from .formats import Found

FILE_NAMES = ("IEMOCAP_features_raw.pkl", "IEMOCAP_features.pkl")
FIELDS = ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio", "videoVisual",
          "videoSentence", "trainVid", "testVid")
FEATURES = {"text": "videoText", "audio": "videoAudio", "vision": "videoVisual"}
VALID_SHARE = 0.1
VALID_SALT = "fusebench-iemocap6"
_SOURCE = "declare-lab/conv-emotion DialogueRNN/dataloader.py"


def find(folder: Path, profile: AffectProfile, options: Mapping[str, Any]) -> Found | None:
    from .formats import Found  # formats imports this module to list it

    for name in FILE_NAMES:
        if (folder / name).is_file():
            return Found({"pickle": folder / name})
    return None


def accepted(profile: AffectProfile) -> str:
    return (f"DialogueRNN pickles {' or '.join(FILE_NAMES)} (the 9-tuple videoIDs, videoSpeakers, videoLabels, "
            "videoText, videoAudio, videoVisual, videoSentence, trainVid, testVid)")


def _layout(data: Any, path: Path) -> dict[str, Any]:
    """The 9-tuple as {field: value}, or one paragraph saying what the file is instead."""
    if isinstance(data, (tuple, list)) and len(data) == len(FIELDS):
        fields = dict(zip(FIELDS, data, strict=True))
        for name in ("videoLabels", *FEATURES.values()):
            if not isinstance(fields[name], Mapping):
                raise DataError(f"{path}: element {FIELDS.index(name)} ({name}) is a {type(fields[name]).__name__}; "
                                f"the DialogueRNN layout has a dict keyed by dialogue id there ({_SOURCE}). "
                                "Use IEMOCAP_features_raw.pkl / IEMOCAP_features.pkl from conv-emotion unchanged.")
        return fields
    sized = isinstance(data, (tuple, list))
    hint = ""
    if sized and len(data) == 10:
        hint = (" A 10-element list is COSMIC's iemocap_features_roberta.pkl (speakers, labels, four RoBERTa "
                "text features, sentences, train/test/valid ids): it has no audio or visual features, so it "
                "cannot be read as iemocap6.")
    elif isinstance(data, Mapping):
        hint = (" A dict of 'train'/'valid'/'test' is a MulT-style file: MulT's iemocap_data.pkl is read by "
                "the dataset iemocap (4-emotion protocol).")
    raise DataError(
        f"{path}: the pickle holds a {type(data).__name__}{f' of {len(data)} elements' if sized else ''}; a "
        f"DialogueRNN IEMOCAP file holds the 9-tuple ({', '.join(FIELDS)}) ({_SOURCE}).{hint} Use "
        f"{' or '.join(FILE_NAMES)} from declare-lab/conv-emotion unchanged."
    )


def _dialogues(raw: Any, name: str, path: Path) -> list[Any]:
    """A split's dialogue keys, in sorted order (sets have none), each listed once."""
    if not isinstance(raw, (list, tuple, set, frozenset, np.ndarray)) or isinstance(raw, np.ndarray) and raw.ndim != 1:
        raise DataError(f"{path}: {name} is a {type(raw).__name__}; the DialogueRNN layout lists the split's "
                        f"dialogue ids there (a set or list, {_SOURCE}).")
    keys = list(raw.tolist() if isinstance(raw, np.ndarray) else raw)
    twice = sorted(k for k, c in Counter(map(id_string, keys)).items() if c > 1)
    if twice:
        raise DataError(f"{path}: {name} lists dialogues more than once: {twice[:10]}; each dialogue belongs to "
                        "one split exactly once. Fix the list or take the file again from conv-emotion.")
    if not keys:
        raise DataError(f"{path}: {name} is empty; the file must list the dialogues of its split.")
    return sorted(keys, key=id_string)


def carve_validation(train: Sequence[Any], path: Path) -> tuple[list[Any], list[Any]]:
    """(train, validation): 10 % of the training dialogues (rounded half up, at least 1), those
    with the smallest SHA-256 of ``"fusebench-iemocap6:<dialogue id>"`` - fixed, independent of
    numpy versions and of which other dialogues the file holds."""
    if len(train) < 2:
        raise DataError(f"{path}: trainVid lists {len(train)} dialogue; the validation split is carved from "
                        "whole training dialogues, so at least 2 are needed. Use the complete file.")
    size = min(len(train) - 1, max(1, math.floor(VALID_SHARE * len(train) + 0.5)))
    digest = {id_string(d): hashlib.sha256(f"{VALID_SALT}:{id_string(d)}".encode()).hexdigest() for d in train}
    chosen = set(sorted(digest, key=digest.__getitem__)[:size])
    return [d for d in train if id_string(d) not in chosen], [d for d in train if id_string(d) in chosen]


def _split(dialogues: Sequence[Any], listed_in: str, fields: Mapping[str, Any], profile: AffectProfile,
           path: Path, dims: dict[str, tuple[int, str]]) -> SplitArrays:
    """One split's utterances in dialogue order; ``dims`` remembers each modality's width and
    where it was first seen, so a file mixing feature sets fails naming both dialogues."""
    ids: list[str] = []
    labels: list[np.ndarray] = []
    vectors: dict[str, list[np.ndarray]] = {m: [] for m in FEATURES}
    for dialogue in dialogues:
        key = id_string(dialogue)
        where = f"{path} dialogue {key!r} (listed in {listed_in})"
        absent = [name for name in ("videoLabels", *FEATURES.values()) if dialogue not in fields[name]]
        if absent:
            raise DataError(f"{where} has no entry in {absent}; every listed dialogue needs labels and text, "
                            "audio and visual features. The file is incomplete; take it again from conv-emotion.")
        raw = fields["videoLabels"][dialogue]
        utterances = [f"{key}[{i}]" for i in range(len(raw))] if isinstance(raw, (list, tuple, np.ndarray)) else None
        y = profile.labels(raw, f"{where} field 'videoLabels'", utterances)
        feats = {m: vector_features(fields[name][dialogue], f"{where} field {name!r}") for m, name in FEATURES.items()}
        check_sizes(where, videoLabels=len(y), **{FEATURES[m]: len(v) for m, v in feats.items()})
        for m, v in feats.items():
            width, first = dims.setdefault(m, (v.shape[1], key))
            if v.shape[1] != width:
                raise DataError(f"{where} field {FEATURES[m]!r} has {v.shape[1]} values per utterance, dialogue "
                                f"{first!r} has {width}; every utterance needs features of the same length. The "
                                "file mixes feature sets; take it again from conv-emotion.")
            vectors[m].append(v)
        ids += [f"{key}[{i}]" for i in range(len(y))]
        labels.append(y)
    return SplitArrays({m: np.concatenate(v) for m, v in vectors.items()}, np.concatenate(labels), ids)


def read(path: Path, profile: AffectProfile) -> Converted:
    fields = _layout(safe_pickle_load(path), path)
    train, test = _dialogues(fields["trainVid"], "trainVid", path), _dialogues(fields["testVid"], "testVid", path)
    both = sorted(set(map(id_string, train)) & set(map(id_string, test)))
    if both:
        raise DataError(f"{path}: dialogues {both[:10]} are listed in both trainVid and testVid, so the test "
                        "would score conversations the model trained on. Take the file again from conv-emotion.")
    train, valid = carve_validation(train, path)
    dims: dict[str, tuple[int, str]] = {}
    splits = {"train": _split(train, "trainVid", fields, profile, path, dims),
              "validation": _split(valid, "trainVid", fields, profile, path, dims),
              "test": _split(test, "testVid", fields, profile, path, dims)}
    listed = set(map(id_string, train + valid + test))
    return splits, {
        "format": "dialoguernn", "file": path.name,
        "dialogues": {"train": len(train), "validation": len(valid), "test": len(test)},
        "utterances": {split: len(arrays) for split, arrays in splits.items()},
        "validation": {"carved_from": "trainVid", "share": VALID_SHARE,
                       "rule": f"smallest sha256('{VALID_SALT}:<dialogue id>')",
                       "dialogues": [id_string(d) for d in valid]},
        "unlisted_dialogues": sum(id_string(d) not in listed for d in fields["videoLabels"]),
        "feature_dims": {m: width for m, (width, _) in dims.items()},
        "context": "not used: one sample per utterance, speakers and neighbouring utterances ignored",
    }
