"""MultiBench affect pickles (pliang279/MultiBench ``datasets/affect/get_data.py``):
``mosi_raw.pkl``, ``mosei_raw.pkl``, ``sarcasm.pkl`` (MUStARD) and ``humor.pkl`` (UR-FUNNY).

Layout: MulT's - ``{"train"|"valid"|"test": {"vision", "audio", "text": (N, T, D), "labels",
"id"}}`` with word-aligned steps (every modality has the same T).  MultiBench's loader then
(1) drops the samples whose text is all zero (``drop_entry``), (2) cuts every modality before
the first non-zero *text* step and (3) maps ``label > 0`` to class 1.  Here (1) is kept - it
defines which samples the MultiBench protocol scores - and reported with the ids dropped; the
padding of (2) is decided from the data like MulT's (:mod:`.padding`), because a real first
word with an all-zero embedding (out of vocabulary) is not padding; (3) is the profile's label
reader.  MulT's own ``<stem>_data.pkl`` is claimed by the ``mult`` format; this format reads it
(MultiBench's loader accepts it unchanged) only when asked with ``format=multibench``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusebench import DataError, safe_pickle_load

from . import mult
from .convert import Converted, SplitArrays, check_sizes, dense_features, require, research_splits, sample_ids
from .padding import Part, convert, lengths_from_mask, step_summary
from .profiles import MODALITIES, AffectProfile

if TYPE_CHECKING:
    from .formats import Found

SHOWN_IDS = 10  # dropped ids listed per split in the report


def file_names(profile: AffectProfile, options: Mapping[str, Any]) -> list[str]:
    """MultiBench's own file for the dataset; MulT's aligned file only on ``format=multibench``."""
    names = [profile.multibench_file] if profile.multibench_file else []
    if options.get("format") == "multibench" and profile.mult_stem:
        names.append(mult.file_names(profile)[True])
    return names


def find(folder: Path, profile: AffectProfile, options: Mapping[str, Any]) -> Found | None:
    from .formats import Found  # formats imports this module to list it

    for name in file_names(profile, options):
        if (folder / name).is_file():
            return Found({"pickle": folder / name})
    return None


def accepted(profile: AffectProfile) -> str:
    names = [profile.multibench_file] if profile.multibench_file else []
    if profile.mult_stem:
        names.append(f"{mult.file_names(profile)[True]} with --dataset-option {profile.name}.format=multibench")
    return f"MultiBench pickle {' or '.join(names)}"


def _drop_empty_text(arrays: dict[str, np.ndarray], labels: np.ndarray, ids: list[str],
                     where: str) -> tuple[dict[str, np.ndarray], np.ndarray, list[str], list[str]]:
    """MultiBench's ``drop_entry``: samples without any non-zero text value go (their arrays,
    label and id); returns what is kept and the dropped ids.  A copy is made only if needed."""
    has_text = step_summary(arrays["text"])[0].any(axis=1)
    if has_text.all():
        return arrays, labels, ids, []
    if not has_text.any():
        raise DataError(f"{where}: every sample's text is all zero, so the MultiBench protocol (which drops "
                        "samples without text) leaves nothing. The text array is empty or not the text "
                        "features; take the file again from the MultiBench Google Drive folder.")
    keep = np.flatnonzero(has_text)
    dropped = [ids[i] for i in np.flatnonzero(~has_text)]
    return {m: a[keep] for m, a in arrays.items()}, labels[keep], [ids[i] for i in keep], dropped


def read(path: Path, profile: AffectProfile, padding: str) -> Converted:
    splits = research_splits(safe_pickle_load(path), path, "MultiBench")
    fix = ("A MultiBench file holds 'vision', 'audio', 'text' (N, T, D) and 'labels' (and 'id') per split "
           "(MultiBench datasets/affect/get_data.py).")
    parts: dict[str, dict[str, Part]] = {m: {} for m in MODALITIES}
    labels, ids, dropped, raw_values = {}, {}, {}, set()
    for split, fields in splits.items():
        where = f"{path} split {split!r}"
        dense = {m: dense_features(require(fields, m, where, fix), f"{where} field {m!r}") for m in MODALITIES}
        n = len(dense["text"])
        split_ids = sample_ids(fields.get("id"), split, n, where)
        raw = require(fields, "labels", where, fix)
        split_labels = profile.labels(raw, f"{where} field 'labels'", split_ids if len(split_ids) == n else None)
        check_sizes(where, labels=len(split_labels), id=len(split_ids), **{m: len(a) for m, a in dense.items()})
        if profile.target.kind == "multiclass":
            raw_values |= set(np.unique(np.asarray(raw, dtype=np.float64)).tolist())
        dense, labels[split], ids[split], dropped[split] = _drop_empty_text(dense, split_labels, split_ids, where)
        for m, array in dense.items():
            parts[m][split] = Part(array)
    steps = {m: {p.array.shape[1] for p in parts[m].values()} for m in MODALITIES}
    aligned = len(set().union(*steps.values())) == 1
    source = "steps where any modality is non-zero (aligned)" if aligned else "zero padding"
    seqs, report = convert(parts, file=str(path), option=padding, option_name=f"{profile.name}.padding",
                           default="left", sources=dict.fromkeys(MODALITIES, source), aligned=aligned)
    out = {split: SplitArrays(seqs[split], labels[split], ids[split]) for split in splits}
    extra: dict[str, Any] = {}
    if raw_values:
        extra["label_values"] = sorted(raw_values)  # e.g. [-1.0, 1.0] (sarcasm) or [0.0, 1.0] (humor)
    return out, {
        "format": "multibench", "file": path.name, "aligned": aligned,
        "dropped_empty_text": {split: len(d) for split, d in dropped.items()},
        "dropped_empty_text_ids": {split: d[:SHOWN_IDS] for split, d in dropped.items() if d},
        "kept_edge_steps_without_text": _edges_without_text(parts, report) if aligned else 0,
        **extra, **report,
    }


def _edges_without_text(parts: Mapping[str, Mapping[str, Part]], report: Mapping[str, Any]) -> int:
    """Kept samples whose sequence starts (left padding) or ends (right) with steps where the
    text is all zero but audio or vision is real - e.g. a first word without an embedding.
    MultiBench's loader starts every modality at the first non-zero text step, so it would cut
    those frames at the front; they are kept here and counted."""
    sides = {m: entry["side"] for m, entry in report["padding_by_modality"].items()}
    count = 0
    for split, text in parts["text"].items():
        side = sides["text"]
        peers = [parts[m][split].real for m in MODALITIES if sides[m] == side]
        kept = lengths_from_mask(np.logical_or.reduce(peers), side)
        count += int((kept > lengths_from_mask(text.real, side)).sum())
    return count
