"""MMSA pickles (thuiar/MMSA): ``aligned_50.pkl`` and ``unaligned_50.pkl``.

Layout: ``{"train"|"valid"|"test": {"text", "audio", "vision": (N, T, D),
"regression_labels": (N,), "audio_lengths", "vision_lengths": (N,), "text_bert":
(N, 3, T), "id": str, ...}}``, padded at the back.  ``*_lengths`` are authoritative (frames
beyond them are not always zero); text length comes from ``text_lengths`` or the BERT
attention mask (``text_bert[:, 1]``); a modality with neither falls back to zero-step
detection.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_core import safe_pickle
from benchmark_core.errors import DataError

from .convert import Converted, SplitArrays, check_sizes, dense_features, id_string, require, research_splits
from .padding import Side, detect_side, lengths_from_mask, real_steps, strip
from .profiles import MODALITIES, AffectProfile

FILE_NAMES = {True: "aligned_50.pkl", False: "unaligned_50.pkl"}


def _given_lengths(fields: Mapping[str, Any], modality: str, where: str) -> np.ndarray | None:
    if f"{modality}_lengths" in fields:
        return np.asarray(fields[f"{modality}_lengths"]).astype(np.int64).reshape(-1)
    if modality == "text" and "text_bert" in fields:
        bert = np.asarray(fields["text_bert"])
        if bert.ndim != 3 or bert.shape[1] < 2:
            raise DataError(f"{where} field 'text_bert' has shape {bert.shape}; expected (N, 3, T) "
                            "with the attention mask in row 1.")
        return (bert[:, 1] > 0).sum(axis=1).astype(np.int64)
    return None


def read(path: Path, profile: AffectProfile, aligned: bool, padding: str) -> Converted:
    splits = research_splits(safe_pickle.load(path), path, "MMSA")
    fix = "An MMSA file holds 'text', 'audio', 'vision', 'regression_labels' per split (MMSA README §2)."
    out: dict[str, SplitArrays] = {}
    sources: dict[str, str] = {}
    pending: list[tuple[str, str, np.ndarray, np.ndarray]] = []  # modalities without lengths
    for split, fields in splits.items():
        where = f"{path} split {split!r}"
        mods = {m: dense_features(require(fields, m, where, fix), f"{where} field {m!r}") for m in MODALITIES}
        labels = profile.labels(require(fields, "regression_labels", where, fix), f"{where} field 'regression_labels'")
        raw_ids = fields.get("id")
        ids = [id_string(v) for v in raw_ids] if raw_ids is not None else [f"{split}[{i}]" for i in range(len(labels))]
        check_sizes(where, regression_labels=len(labels), id=len(ids), **{m: len(a) for m, a in mods.items()})
        seqs: dict[str, list[np.ndarray]] = {}
        for m, array in mods.items():
            lengths = _given_lengths(fields, m, where)
            if lengths is None:
                pending.append((split, m, array, real_steps(array)))
                sources[m] = "zero padding"
                continue
            check_sizes(f"{where} field '{m}_lengths'", lengths=len(lengths), **{m: len(array)})
            seqs[m] = strip(array, lengths, "right")
            sources[m] = "lengths"
        out[split] = SplitArrays(seqs, labels, ids)
    side: Side = "right"
    if padding in ("left", "right"):
        side = padding
    elif pending:
        side = detect_side([mask for *_, mask in pending])
    for split, m, array, mask in pending:
        out[split].modalities[m] = strip(array, lengths_from_mask(mask, side), side)
    for arrays in out.values():  # restore the canonical column order
        arrays.modalities = {m: arrays.modalities[m] for m in MODALITIES}
    report = {"format": "mmsa", "file": path.name, "aligned": aligned, "length_source": sources,
              "padding_without_lengths": side if pending else None}
    return out, report
