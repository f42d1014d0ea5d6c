"""MulT / CMU "seq_length_50" pickles: ``<stem>_data.pkl`` (aligned), ``<stem>_data_noalign.pkl``.

Layout: ``{"train"|"valid"|"test": {"vision", "audio", "text": (N, T, D), "labels": 3-D,
"id": per-sample bytes}}`` (IEMOCAP files have no ``id``), zero padding at the front as
MulT's authors state (yaohungt/Multimodal-Transformer#3) - but the side is still decided per
modality from the data (:mod:`.padding`), since converted copies differ.  In the aligned
file every modality shares the word steps, so a sample's length is where any modality of
the same side is non-zero; unaligned modalities get their own lengths.
"""

from __future__ import annotations

from pathlib import Path

from fusebench import DataError, safe_pickle_load

from .convert import Converted, SplitArrays, check_sizes, dense_features, require, research_splits, sample_ids
from .padding import Part, convert
from .profiles import MODALITIES, AffectProfile


def file_names(profile: AffectProfile) -> dict[bool, str]:
    """aligned -> file name."""
    return {True: f"{profile.mult_stem}_data.pkl", False: f"{profile.mult_stem}_data_noalign.pkl"}


def read(path: Path, profile: AffectProfile, aligned: bool, padding: str) -> Converted:
    splits = research_splits(safe_pickle_load(path), path, "MulT")
    parts: dict[str, dict[str, Part]] = {m: {} for m in MODALITIES}
    labels, ids = {}, {}
    for split, fields in splits.items():
        where = f"{path} split {split!r}"
        fix = "A MulT file holds 'vision', 'audio', 'text', 'labels' (and 'id') per split."
        dense = {m: dense_features(require(fields, m, where, fix), f"{where} field {m!r}") for m in MODALITIES}
        n = len(dense["text"])
        ids[split] = sample_ids(fields.get("id"), split, n, where)
        labels[split] = profile.labels(require(fields, "labels", where, fix), f"{where} field 'labels'",
                                       ids[split] if len(ids[split]) == n else None)
        check_sizes(where, labels=len(labels[split]), id=len(ids[split]), **{m: len(a) for m, a in dense.items()})
        steps = {m: a.shape[1] for m, a in dense.items()}
        if aligned and len(set(steps.values())) > 1:
            raise DataError(
                f"{where}: an aligned MulT file gives every modality the same number of steps, "
                f"found {steps}. This looks like an unaligned file: name it "
                f"{file_names(profile)[False]} or pass --dataset-option {profile.name}.aligned=false."
            )
        for m, array in dense.items():
            parts[m][split] = Part(array)
    source = "steps where any modality is non-zero (aligned)" if aligned else "zero padding"
    seqs, report = convert(parts, file=str(path), option=padding, option_name=f"{profile.name}.padding",
                           default="left", sources=dict.fromkeys(MODALITIES, source), aligned=aligned)
    out = {split: SplitArrays(seqs[split], labels[split], ids[split]) for split in splits}
    return out, {"format": "mult", "file": path.name, "aligned": aligned, **report}
