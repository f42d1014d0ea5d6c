"""LMF / early-CMU pickles: ``mosi.pkl`` and ``iemocap.pkl`` with covarep / facet / glove / label.

Layout (Justin1904/Low-rank-Multimodal-Fusion ``utils.py``, README, issues #3, #11, #22):
Python-2 pickles that LMF reads with ``encoding='bytes'``, so its keys are ``b'train'`` etc.
(a genuine Python-2 file read as latin-1 gives ``str`` keys; a Python-3 re-save may hold
``bytes``: both are accepted).

* ``mosi.pkl``: ``{train, valid, test} -> {covarep (N, 74), facet (N, 46/47), glove
  (N, 20, 300), label (N, 1)}`` - audio and vision averaged over the segment, the first 20
  words zero-padded.
* ``iemocap.pkl``: ``{happy, sad, angry, neutral} -> {train, valid, test} -> {covarep,
  facet, glove, label (N, 2)}``: one binary problem per emotion, each holding the *same*
  features (LMF#22).  Our ``iemocap`` dataset is the 4-emotion multi-label target, so the
  features must be identical under the four keys (checked and reported) and the four label
  sets become MulT's ``(N, 4, 2)`` in the order neutral, happy, sad, angry, read like MulT's
  (argmax per emotion, :func:`.profiles.iemocap_labels`).  Which column means "present" is
  not documented consistently (LMF's author: "[1, 0] for positive", LMF#11); per-emotion
  accuracy and weighted F1 do not depend on it.

A time-averaged ``(N, D)`` array is a one-step sequence; glove's padding side is decided from
the data (:mod:`.padding`; CMU's processed files pad at the front).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusebench import DataError, safe_pickle_load

from .convert import Converted, SplitArrays, check_sizes, dense_features, require, research_splits, sample_ids
from .padding import Part, convert
from .profiles import EMOTIONS, MODALITIES, AffectProfile
from .sniff import LMF_EMOTIONS, Layout, outline

if TYPE_CHECKING:
    from .formats import Found

FIELDS = {"text": "glove", "audio": "covarep", "vision": "facet"}  # modality -> LMF key
_FIX = ("An LMF file holds 'covarep', 'facet', 'glove' and 'label' per split (Low-rank-Multimodal-Fusion "
        "utils.py); take the file again from its source.")


def _layout(profile: AffectProfile) -> Layout:
    return "emotion splits" if profile.target.labels == EMOTIONS else "split fields"


def accepted(profile: AffectProfile) -> str:
    if _layout(profile) == "emotion splits":
        return (f"LMF pickle {profile.name}.pkl ({{happy, sad, angry, neutral}} -> {{train, valid, test}} -> "
                "{covarep, facet, glove, label})")
    return f"LMF pickle {profile.name}.pkl ({{train, valid, test}} -> {{covarep, facet, glove, label}})"


def find(folder: Path, profile: AffectProfile, options: Mapping[str, Any]) -> Found | None:
    """``<dataset>.pkl`` whose top level is LMF's (sniffed, :mod:`.sniff`; MAG's file of the
    same name maps splits to lists)."""
    from .formats import Found, aligned_choices  # formats imports this module

    path = folder / f"{profile.name}.pkl"
    if (False not in aligned_choices(options.get("aligned"), profile) or not path.is_file()
            or outline(path) != _layout(profile)):
        return None
    return Found({"pickle": path}, {"aligned": False})


def _text_keys(data: Any, where: str, what: str) -> tuple[dict[str, Any], str]:
    """``data`` with str keys, and what the keys were (bytes from a Python-3 re-save, str from a
    Python-2 file read as latin-1)."""
    if not isinstance(data, Mapping):
        raise DataError(f"{where}: holds a {type(data).__name__}; an LMF file holds a dict of {what}. {_FIX}")
    kinds = {type(k).__name__ for k in data}
    return {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in data.items()}, "/".join(sorted(kinds))


def _emotion_splits(data: Any, path: Path) -> tuple[dict[str, dict[str, Mapping[str, Any]]], str]:
    """emotion (our order) -> split -> fields."""
    emotions, keys = _text_keys(data, str(path), "emotions")
    missing = [e for e in LMF_EMOTIONS if e not in emotions]
    if missing:
        raise DataError(f"{path}: top-level keys are {sorted(emotions)}; LMF's iemocap.pkl is keyed by the emotions "
                        f"{list(LMF_EMOTIONS)} - missing {missing}. Use the complete file from its source.")
    return {e: research_splits(emotions[e], path, f"LMF IEMOCAP (emotion {e!r})") for e in EMOTIONS}, keys


def _same_features(per_emotion: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """The four emotions must hold the same samples in the same order, or one 4-emotion label
    per sample cannot be built."""
    reference = EMOTIONS[0]
    for emotion in EMOTIONS[1:]:
        for key in FIELDS.values():
            a = require(per_emotion[reference], key, f"{where} emotion {reference!r}", _FIX)
            b = require(per_emotion[emotion], key, f"{where} emotion {emotion!r}", _FIX)
            if a is not b and not (np.shape(a) == np.shape(b) and np.array_equal(a, b, equal_nan=True)):
                raise DataError(
                    f"{where}: emotion {emotion!r} holds other {key!r} features than {reference!r} (shapes "
                    f"{np.shape(b)} and {np.shape(a)}). FuseBench's iemocap target has all four emotions per "
                    "sample, which needs the same samples in the same order under every emotion, as in LMF's "
                    "released iemocap.pkl (Low-rank-Multimodal-Fusion#22). Use that file, or MulT's "
                    "iemocap_data.pkl."
                )


def _iemocap_labels(per_emotion: Mapping[str, Mapping[str, Any]], where: str) -> np.ndarray:
    """The four (N, 2) one-hot label sets as MulT's (N, 4, 2), emotions in profiles.EMOTIONS order."""
    sets = []
    for emotion in EMOTIONS:
        at = f"{where} emotion {emotion!r} field 'label'"
        labels = np.asarray(require(per_emotion[emotion], "label", f"{where} emotion {emotion!r}", _FIX))
        if labels.dtype.kind not in "fiub" or labels.ndim != 2 or labels.shape[1] != 2:
            raise DataError(f"{at}: labels have dtype {labels.dtype} and shape {labels.shape}; LMF's iemocap.pkl "
                            "holds one 2-way one-hot (N, 2) per emotion. Use the file from LMF's release.")
        sets.append(labels)
    sizes = {e: len(s) for e, s in zip(EMOTIONS, sets, strict=True)}
    check_sizes(f"{where} field 'label'", **sizes)
    return np.stack(sets, axis=1)


def read(found: Found, profile: AffectProfile, options: Mapping[str, Any]) -> Converted:
    path = found.files["pickle"]
    data = safe_pickle_load(path)
    report: dict[str, Any] = {"format": "lmf", "file": path.name, "aligned": False}
    if _layout(profile) == "emotion splits":
        per_emotion, keys = _emotion_splits(data, path)
        splits = {split: per_emotion[EMOTIONS[0]][split] for split in per_emotion[EMOTIONS[0]]}
        report["recognised"] = ("LMF IEMOCAP pickle: {happy, sad, angry, neutral} -> {train, valid, test} -> "
                                "{covarep, facet, glove, label (N, 2)}")
    else:
        splits = research_splits(data, path, "LMF")
        keys = _text_keys(data, str(path), "splits")[1]
        report["recognised"] = "LMF MOSI pickle: {train, valid, test} -> {covarep, facet, glove, label}"
    report["keys"] = keys
    parts: dict[str, dict[str, Part]] = {m: {} for m in MODALITIES}
    sources: dict[str, str] = {}
    labels, ids = {}, {}
    for split, fields in splits.items():
        where = f"{path} split {split!r}"
        dense = {}
        for m, key in FIELDS.items():
            raw = require(fields, key, where, _FIX)
            dense[m] = dense_features(raw, f"{where} field {key!r}")
            sources[m] = "time-averaged (one step)" if np.ndim(raw) == 2 else "zero padding"
        n = len(dense["text"])
        ids[split] = sample_ids(None, split, n, where)
        if _layout(profile) == "emotion splits":
            _same_features({e: per_emotion[e][split] for e in EMOTIONS}, where)
            raw_labels = _iemocap_labels({e: per_emotion[e][split] for e in EMOTIONS}, where)
        else:
            raw_labels = require(fields, "label", where, _FIX)
        labels[split] = profile.labels(raw_labels, f"{where} field 'label'", ids[split])
        check_sizes(where, label=len(labels[split]), **{FIELDS[m]: len(a) for m, a in dense.items()})
        for m, array in dense.items():
            parts[m][split] = Part(array)
    if _layout(profile) == "emotion splits":
        report["features_identical_across_emotions"] = True
    seqs, padding = convert(parts, file=str(path), option=options.get("padding", "auto"),
                            option_name=f"{profile.name}.padding", default="left", sources=sources)
    out = {split: SplitArrays({**seqs[split]}, labels[split], ids[split]) for split in splits}
    return out, {**report, **padding}
