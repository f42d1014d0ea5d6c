"""MMSA pickles (thuiar/MMSA): ``aligned_50.pkl`` and ``unaligned_50.pkl``.

Layout: ``{"train"|"valid"|"test": {"text", "audio", "vision": (N, T, D),
"regression_labels": (N,), "audio_lengths", "vision_lengths": (N,), "text_bert":
(N, 3, T), "id": str, ...}}``.  ``*_lengths`` say *how many* steps are real (frames beyond
them are not always zero); text length comes from ``text_lengths`` or the BERT attention
mask (``text_bert[:, 1]``).  They do not say *which side* is padding: MMSA's own arrays are
padded at the back, arrays derived from CMU/MulT data at the front, even next to lengths,
so the side is decided per modality from the data (:mod:`.padding`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fusebench import DataError, safe_pickle_load

from .convert import Converted, SplitArrays, check_sizes, dense_features, require, research_splits, sample_ids
from .padding import Part, convert, given_lengths
from .profiles import MODALITIES, AffectProfile

FILE_NAMES = {True: "aligned_50.pkl", False: "unaligned_50.pkl"}


def _part(fields: Mapping[str, Any], modality: str, array: np.ndarray, where: str) -> tuple[Part, str]:
    """The modality's Part with its given lengths (if any) and where the lengths came from."""
    n, steps = array.shape[:2]
    if f"{modality}_lengths" in fields:
        field = f"{modality}_lengths"
        lengths, beyond = given_lengths(fields[field], steps, n, f"{where} field {field!r}")
        return Part(array, lengths, beyond), field
    if modality == "text" and "text_bert" in fields:
        bert = np.asarray(fields["text_bert"])
        if bert.ndim != 3 or bert.shape[1] < 2:
            raise DataError(f"{where} field 'text_bert' has shape {bert.shape}; expected (N, 3, T) "
                            "with the attention mask in row 1.")
        lengths, beyond = given_lengths((bert[:, 1] > 0).sum(axis=1), steps, n, f"{where} field 'text_bert'")
        return Part(array, lengths, beyond), "text_bert attention mask"
    return Part(array), "zero padding"


def read(path: Path, profile: AffectProfile, aligned: bool, padding: str) -> Converted:
    splits = research_splits(safe_pickle_load(path), path, "MMSA")
    fix = "An MMSA file holds 'text', 'audio', 'vision', 'regression_labels' per split (MMSA README §2)."
    parts: dict[str, dict[str, Part]] = {m: {} for m in MODALITIES}
    sources: dict[str, dict[str, list[str]]] = {m: {} for m in MODALITIES}
    labels, ids = {}, {}
    for split, fields in splits.items():
        where = f"{path} split {split!r}"
        mods = {m: dense_features(require(fields, m, where, fix), f"{where} field {m!r}") for m in MODALITIES}
        n = len(mods["text"])
        ids[split] = sample_ids(fields.get("id"), split, n, where)
        labels[split] = profile.labels(require(fields, "regression_labels", where, fix),
                                       f"{where} field 'regression_labels'",
                                       ids[split] if len(ids[split]) == n else None)
        check_sizes(where, regression_labels=len(labels[split]), id=len(ids[split]),
                    **{m: len(a) for m, a in mods.items()})
        for m, array in mods.items():
            parts[m][split], source = _part(fields, m, array, where)
            sources[m].setdefault(source, []).append(split)
    described = {m: next(iter(s)) if len(s) == 1 else "; ".join(f"{k} ({', '.join(v)})" for k, v in s.items())
                 for m, s in sources.items()}
    seqs, report = convert(parts, file=str(path), option=padding, option_name=f"{profile.name}.padding",
                           default="right", sources=described)
    out = {split: SplitArrays(seqs[split], labels[split], ids[split]) for split in splits}
    return out, {"format": "mmsa", "file": path.name, "aligned": aligned, **report}
