"""Strip padding from dense (N, T, D) research arrays so only real steps are stored.

MulT / CMU "seq_length_50" files pad at the front, MMSA files at the back and carry
``*_lengths``.  Lengths, when a file has them, are authoritative (frames beyond them are
not always zero).  Without lengths, a step is padding when *every* value in it is exactly
0 (``-inf`` and NaN count as real), and the padding side is decided once per file from
where the all-zero steps sit, so a real all-zero frame inside a sequence is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Side = Literal["left", "right"]


def real_steps(array: np.ndarray) -> np.ndarray:
    """(N, T) bool: True where a step holds any non-zero (or non-finite) value."""
    return np.any(array != 0, axis=-1)


def detect_side(masks: Sequence[np.ndarray]) -> Side:
    """'left' or 'right': the side where more samples start/end with an all-zero step."""
    left = sum(int((~m[:, 0]).sum()) for m in masks if m.shape[1])
    right = sum(int((~m[:, -1]).sum()) for m in masks if m.shape[1])
    return "left" if left > right else "right"


def lengths_from_mask(real: np.ndarray, side: Side) -> np.ndarray:
    """Number of steps from the first real step (left padding) or to the last one (right)."""
    n, t = real.shape
    if side == "right":
        real = real[:, ::-1]
    first = np.where(real.any(axis=1), real.argmax(axis=1), t)
    return (t - first).astype(np.int64)


def strip(array: np.ndarray, lengths: np.ndarray, side: Side) -> list[np.ndarray]:
    """Per-sample (T_i, D) float32 views with padding removed; at least one step each
    (an all-padding sample keeps one zero step, so every encoder gets valid input)."""
    t = array.shape[1]
    lengths = np.clip(np.asarray(lengths, dtype=np.int64), 1, t)
    if side == "left":
        return [np.asarray(array[i, t - n:], dtype=np.float32) for i, n in enumerate(lengths)]
    return [np.asarray(array[i, :n], dtype=np.float32) for i, n in enumerate(lengths)]
