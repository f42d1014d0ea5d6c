"""Decide each modality's padding side from evidence, then strip the padding from dense
(N, T, D) research arrays so only real steps are stored.

Why evidence and not convention: CMU/MulT arrays are padded at the front, MMSA arrays at
the back, and MMSA files built from CMU arrays carry ``*_lengths`` while padded at the
front; assuming a side keeps padding as data and silently drops the real frames.  So the
side is decided per file *and* per modality from where the non-zero steps sit, cross-checked
with the lengths and the ``padding`` option, and the evidence goes into the conversion
report.  A step is *real* when any value in it is non-zero; ``-inf``/NaN count as real (the
engine replaces and counts them later, so they must survive stripping).  The rule, its
thresholds and the report fields are documented in docs/datasets.md ("Padding").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fusebench import DataError

from .convert import at_rows

Side = Literal["left", "right"]
# What one sample's steps say about the side; counted per modality in the report.
VOTES = ("left", "right", "ambiguous", "unpadded", "empty")
_LEFT, _RIGHT, _AMBIGUOUS, _UNPADDED, _EMPTY = range(len(VOTES))

CLEAR_SHARE = 0.95  # evidence is clear when >= 95 % of the samples that show a side agree ...
CLEAR_MIN = 3  # ... and at least 3 of them do (a handful of samples proves nothing)
TOLERANCE = 0.01  # more than 1 % of a modality's samples disagreeing -> one WARNING
_CHUNK = 1024  # samples per block when scanning arrays (MOSEI's unaligned ones are GBs)

log = logging.getLogger("fusebench.data")


def step_summary(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, T) real-step mask and (N, T) count of non-finite values, in blocks of samples so a
    multi-GB array is never duplicated as a full boolean copy."""
    n, t = array.shape[:2]
    real, nonfinite = np.empty((n, t), dtype=bool), np.empty((n, t), dtype=np.int32)
    for start in range(0, n, _CHUNK):
        block = array[start:start + _CHUNK]
        real[start:start + _CHUNK] = np.any(block != 0, axis=-1)
        nonfinite[start:start + _CHUNK] = (~np.isfinite(block)).sum(axis=-1)
    return real, nonfinite


@dataclass
class Part:
    """One split of one modality: the dense array and, when the file has them, its given
    lengths (validated by :func:`given_lengths`)."""

    array: np.ndarray
    lengths: np.ndarray | None = None
    lengths_beyond_steps: int = 0
    real: np.ndarray = field(init=False, repr=False)
    nonfinite: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.real, self.nonfinite = step_summary(self.array)


def given_lengths(raw: Any, steps: int, samples: int, where: str) -> tuple[np.ndarray, int]:
    """A file's per-sample lengths as int64, and how many exceeded the array's ``steps``.

    A length above T means the stream was truncated to T, so it is clamped to T (every step
    is real) and counted; negative, fractional or non-finite lengths are an error."""
    fix = (f"A length counts the real steps of a sample (0..{steps} here). Fix the field, or remove "
           "it: without lengths FuseBench takes the real steps from where the non-zero steps sit.")
    values = np.asarray(raw)
    if values.dtype.kind not in "iuf" or values.size != samples:
        raise DataError(f"{where}: expected {samples} numeric lengths (one per sample), found dtype "
                        f"{values.dtype} and shape {values.shape}. {fix}")
    values = values.reshape(-1)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values))) if values.dtype.kind == "f" \
        else np.zeros(0, dtype=np.int64)
    if len(bad):
        raise DataError(f"{where}: {len(bad)} lengths are not whole numbers at {at_rows(bad)}. {fix}")
    lengths = values.astype(np.int64)
    negative = np.flatnonzero(lengths < 0)
    if len(negative):
        raise DataError(f"{where}: {len(negative)} negative lengths at {at_rows(negative)}. {fix}")
    return np.minimum(lengths, steps), int((lengths > steps).sum())


def sample_votes(real: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Per sample, the index into :data:`VOTES` of the side its steps support.

    Without lengths: padding is the all-zero steps at the start (left) or the end (right);
    zeros at both ends are ambiguous.  With lengths L: the side whose real region
    ([T-L, T) or [0, L)) covers every non-zero step; when both or neither do (e.g. non-zero
    junk beyond the lengths), the region with fewer all-zero steps inside it, else ambiguous.
    """
    n, t = real.shape
    has = real.any(axis=1)
    first = np.where(has, real.argmax(axis=1), t)
    last = np.where(has, t - 1 - real[:, ::-1].argmax(axis=1), -1)
    if lengths is None:
        lead, trail = first, t - 1 - last
        left, right = (lead > 0) & (trail == 0), (trail > 0) & (lead == 0)
        unpadded = (lead == 0) & (trail == 0)
    else:
        zeros = np.zeros((n, t + 1), dtype=np.int64)
        np.cumsum(~real, axis=1, out=zeros[:, 1:])
        rows = np.arange(n)
        holes_right = zeros[rows, lengths]
        holes_left = zeros[:, t] - zeros[rows, t - lengths]
        covers_left, covers_right = first >= t - lengths, last < lengths
        tie = covers_left == covers_right
        left = (covers_left & ~covers_right) | (tie & (holes_left < holes_right))
        right = (covers_right & ~covers_left) | (tie & (holes_right < holes_left))
        unpadded = lengths == t
    votes = np.full(n, _AMBIGUOUS, dtype=np.int8)
    votes[left], votes[right], votes[unpadded], votes[~has] = _LEFT, _RIGHT, _UNPADDED, _EMPTY
    return votes


def decide(votes: np.ndarray, *, option: str, default: Side, where: str,
           option_name: str) -> tuple[Side, str, dict[str, int]]:
    """(side, how it was decided, vote counts).  Clear evidence decides; an explicit option
    decides only when the evidence is not clear and is an error when clear evidence
    contradicts it; with no evidence at all the format's documented side is used."""
    support = {name: int((votes == i).sum()) for i, name in enumerate(VOTES)}
    left, right = support["left"], support["right"]
    winner: Side | None = "left" if left > right else "right" if right > left else None
    clear = winner is not None and support[winner] >= max(CLEAR_MIN, CLEAR_SHARE * (left + right))
    if option in ("left", "right"):
        if clear and winner != option:
            raise DataError(
                f"{where}: --dataset-option {option_name}={option} says the padding is on the "
                f"{option}, but the data clearly show {winner} padding: {support[winner]} of "
                f"{len(votes)} samples are padded on the {winner}, {support[option]} on the {option} "
                f"({support['ambiguous']} ambiguous, {support['unpadded']} unpadded, {support['empty']} "
                f"empty). Reading them as {option}-padded would keep padding as data and cut real "
                f"frames. Remove the option ({option_name}=auto decides the side per modality from "
                "the data), or check that the file's arrays and lengths belong together."
            )
        return option, ("evidence and option" if clear else "option (evidence not clear)"), support
    if winner is not None:
        return winner, ("evidence" if clear else "evidence (majority, not clear)"), support
    return default, f"format default ({'evidence tied' if left else 'no sample shows a side'})", support


def lengths_from_mask(real: np.ndarray, side: Side) -> np.ndarray:
    """Number of steps from the first real step (left padding) or to the last one (right)."""
    t = real.shape[1]
    if side == "right":
        real = real[:, ::-1]
    first = np.where(real.any(axis=1), real.argmax(axis=1), t)
    return (t - first).astype(np.int64)


def kept_steps(lengths: np.ndarray, t: int, side: Side) -> np.ndarray:
    """(N, T) True on the steps that stripping keeps."""
    steps = np.arange(t)[None, :]
    return steps >= (t - lengths)[:, None] if side == "left" else steps < lengths[:, None]


def strip(array: np.ndarray, lengths: np.ndarray, side: Side) -> list[np.ndarray]:
    """Per-sample (T_i, D) float32 arrays without padding.  A sample with no real step gets
    one *zero* step (never a step of padding junk), so every encoder gets valid input."""
    t, dim = array.shape[1:]
    return [np.zeros((1, dim), dtype=np.float32) if n == 0
            else np.asarray(array[i, t - n:] if side == "left" else array[i, :n], dtype=np.float32)
            for i, n in enumerate(lengths)]


def convert(modalities: Mapping[str, Mapping[str, Part]], *, file: str, option: str, option_name: str,
            default: Side, sources: Mapping[str, str],
            aligned: bool = False) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict[str, Any]]:
    """Decide every modality's side, strip every split and report the evidence.

    ``aligned``: modalities share their steps (MulT aligned files), so a sample's length is
    taken from the steps where *any* modality of the same side is real, and an all-zero
    frame of one modality inside the sentence is kept.  Returns ``{split: {modality:
    sequences}}`` and the report fields ``padding``, ``padding_by_modality``, ``warnings``.
    """
    sides: dict[str, Side] = {}
    entries: dict[str, dict[str, Any]] = {}
    for m, parts in modalities.items():
        votes = np.concatenate([sample_votes(p.real, p.lengths) for p in parts.values()])
        sides[m], decided_by, support = decide(votes, option=option, default=default,
                                               where=f"{file} modality {m!r}", option_name=option_name)
        entries[m] = {"side": sides[m], "decided_by": decided_by, "length_source": sources[m],
                      "samples": len(votes), "support": support}
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    warnings = []
    for m, parts in modalities.items():
        side, entry = sides[m], entries[m]
        given = any(p.lengths is not None for p in parts.values())
        dropped = nonfinite = empty = beyond = inside = clamped = 0
        for split, part in parts.items():
            lengths = part.lengths
            if lengths is None:
                peers = [q for q in modalities if aligned and sides[q] == side and modalities[q][split].lengths is None]
                real = np.logical_or.reduce([modalities[q][split].real for q in peers or [m]])
                lengths = lengths_from_mask(real, side)
            else:
                derived = lengths_from_mask(part.real, side)
                beyond += int((derived > lengths).sum())
                inside += int((derived < lengths).sum())
                clamped += part.lengths_beyond_steps
            outside = ~kept_steps(lengths, part.array.shape[1], side)
            dropped += int((part.real & outside).sum())
            nonfinite += int(part.nonfinite[outside].sum())
            empty += int((lengths == 0).sum())
            out.setdefault(split, {})[m] = strip(part.array, lengths, side)
        entry.update(dropped_nonzero_steps=dropped, dropped_nonfinite_values=nonfinite,
                     empty_kept_as_one_zero_step=empty)
        if given:
            entry.update(lengths_disagree={"nonzero_beyond_lengths": beyond, "zero_steps_inside_lengths": inside},
                         lengths_beyond_steps=clamped)
        warning = _warning(file, m, entry, beyond, inside)
        if warning:
            log.warning("%s", warning)
            warnings.append(warning)
    distinct = set(sides.values())
    return out, {"padding": distinct.pop() if len(distinct) == 1 else "mixed",
                 "padding_by_modality": entries, "warnings": warnings}


def _warning(file: str, modality: str, entry: Mapping[str, Any], beyond: int, inside: int) -> str | None:
    """One paragraph when more than :data:`TOLERANCE` of the samples disagree with the
    decision (other side) or with the given lengths; None otherwise."""
    n, side, support = entry["samples"], entry["side"], entry["support"]
    other = "right" if side == "left" else "left"
    problems = []
    if support[other] > TOLERANCE * n:
        problems.append(f"{support[other]} of {n} samples look padded on the {other} (for them padding "
                        "is kept as data or real frames are cut; does the file mix padding sides?)")
    if "lengths_disagree" in entry and beyond + inside > TOLERANCE * n:
        problems.append(
            f"{beyond + inside} of {n} samples disagree with {entry['length_source']}: {beyond} have "
            f"non-zero steps beyond their length ({entry['dropped_nonzero_steps']} such steps dropped, "
            f"{entry['dropped_nonfinite_values']} non-finite values among them), {inside} have all-zero "
            "steps inside it (kept). The lengths were honoured; if they do not belong to these arrays, "
            "fix or remove the field")
    if not problems:
        return None
    return (f"{file} modality {modality!r} (padding {side}, {entry['decided_by']}): " + "; ".join(problems)
            + f". More than {TOLERANCE:.0%} of the samples, so this is reported; see docs/datasets.md (Padding).")
