"""MulT / CMU "seq_length_50" pickles: ``<stem>_data.pkl`` (aligned), ``<stem>_data_noalign.pkl``.

Layout: ``{"train"|"valid"|"test": {"vision", "audio", "text": (N, T, D), "labels": 3-D,
"id": per-sample bytes}}`` with zero padding at the front.  In the aligned file every
modality shares the word steps, so one length per sample (steps where any modality is
non-zero) is used for all three; unaligned modalities get their own lengths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark_core import safe_pickle
from benchmark_core.errors import DataError

from .convert import Converted, SplitArrays, check_sizes, dense_features, id_string, require, research_splits
from .padding import detect_side, lengths_from_mask, real_steps, strip
from .profiles import MODALITIES, AffectProfile


def file_names(profile: AffectProfile) -> dict[bool, str]:
    """aligned -> file name."""
    return {True: f"{profile.mult_stem}_data.pkl", False: f"{profile.mult_stem}_data_noalign.pkl"}


def read(path: Path, profile: AffectProfile, aligned: bool, padding: str) -> Converted:
    splits = research_splits(safe_pickle.load(path), path, "MulT")
    dense, labels, ids = {}, {}, {}
    for split, fields in splits.items():
        where = f"{path} split {split!r}"
        fix = "A MulT file holds 'vision', 'audio', 'text', 'labels' (and 'id') per split."
        dense[split] = {m: dense_features(require(fields, m, where, fix), f"{where} field {m!r}") for m in MODALITIES}
        labels[split] = profile.labels(require(fields, "labels", where, fix), f"{where} field 'labels'")
        n = len(labels[split])
        raw_ids = fields.get("id")
        ids[split] = [id_string(v) for v in raw_ids] if raw_ids is not None else [f"{split}[{i}]" for i in range(n)]
        check_sizes(where, labels=n, id=len(ids[split]), **{m: len(a) for m, a in dense[split].items()})
        steps = {m: a.shape[1] for m, a in dense[split].items()}
        if aligned and len(set(steps.values())) > 1:
            raise DataError(
                f"{where}: an aligned MulT file gives every modality the same number of steps, "
                f"found {steps}. This looks like an unaligned file: name it "
                f"{file_names(profile)[False]} or pass --dataset-option {profile.name}.aligned=false."
            )
    masks = {s: {m: real_steps(a) for m, a in mods.items()} for s, mods in dense.items()}
    side = padding if padding in ("left", "right") else detect_side(
        [m for mods in masks.values() for m in mods.values()])
    out, empty = {}, 0
    for split, mods in dense.items():
        if aligned:
            shared = lengths_from_mask(np.logical_or.reduce(list(masks[split].values())), side)
            lengths = dict.fromkeys(mods, shared)
        else:
            lengths = {m: lengths_from_mask(masks[split][m], side) for m in mods}
        empty += int(sum((lengths[m] == 0).sum() for m in mods))
        out[split] = SplitArrays({m: strip(a, lengths[m], side) for m, a in mods.items()}, labels[split], ids[split])
    report = {"format": "mult", "file": path.name, "aligned": aligned, "padding": side,
              "empty_sequences_kept_as_one_zero_step": empty}
    return out, report

