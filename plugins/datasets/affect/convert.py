"""The reader-neutral intermediate form and its conversion to a ``datasets.DatasetDict``.

Every format reader returns ``{split: SplitArrays}`` with ragged (T_i, D) float32 steps
(padding already stripped) or, for utterance-level features, one (N, D) float32 array per
modality; labels already in the dataset's encoding, and string ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

from fusebench import (
    DataError,
    SplitRows,
    TargetSpec,
    batch_rows,
    features_from_arrays,
    table_from_arrays,
)

# Split names used by the research files -> ours.
SPLIT_ALIASES = {"train": "train", "valid": "validation", "dev": "validation",
                 "validation": "validation", "test": "test"}


Sequences = list[np.ndarray]  # one (T_i, D) array per sample: modality kind "sequence"
Vectors = np.ndarray  # (N, D): modality kind "vector" (one feature vector per sample)


@dataclass
class SplitArrays:
    """One split.  A modality is :data:`Sequences` or :data:`Vectors`; the type says which
    column kind :func:`to_dataset_dict` writes, so readers never name kinds separately."""

    modalities: dict[str, Sequences | Vectors]
    labels: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return len(self.labels)


# What every reader returns: the splits and a JSON-able conversion report.
Converted = tuple[dict[str, SplitArrays], dict[str, Any]]


def require(container: Mapping[str, Any], key: str, where: str, fix: str = "") -> Any:
    """``container[key]`` or a DataError naming the file, the missing field and the fix."""
    if key in container:
        return container[key]
    raise DataError(
        f"{where} has no field {key!r} (fields present: {sorted(map(str, container))}). "
        + (fix or "The file is not in the expected layout; see docs/datasets.md for the accepted formats.")
    )


def research_splits(data: Any, path: Path, fmt: str) -> dict[str, Mapping[str, Any]]:
    """Map a pickle's top-level ``train``/``valid``/``test`` dicts to our split names."""
    if not isinstance(data, Mapping):
        raise DataError(
            f"{path}: the pickle holds a {type(data).__name__}, but a {fmt} file holds a dict "
            "with keys 'train', 'valid', 'test'. Check that this is the right file for --dataset-option format."
        )
    data = {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}
    found = {SPLIT_ALIASES[k]: k for k in data if k in SPLIT_ALIASES}
    missing = [s for s in ("train", "validation", "test") if s not in found]
    if missing:
        raise DataError(
            f"{path}: top-level keys are {sorted(map(str, data))}; a {fmt} file needs 'train', "
            f"'valid' (or 'dev') and 'test' - missing {missing}. Use the complete file from its source."
        )
    out = {}
    for split, key in found.items():
        value = data[key]
        if not isinstance(value, Mapping):
            raise DataError(f"{path}: split {key!r} is a {type(value).__name__}, expected a dict of arrays.")
        out[split] = {k.decode() if isinstance(k, bytes) else k: v for k, v in value.items()}
    return out


def dense_features(value: Any, where: str) -> np.ndarray:
    """A modality array as (N, T, D); time-averaged (N, D) arrays become one step."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise DataError(f"{where}: features have dtype {array.dtype}, expected numbers; "
                        "a modality must be a numeric (N, T, D) array.")
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3 or array.shape[-1] == 0:
        raise DataError(f"{where}: features have shape {array.shape}, expected (N, T, D).")
    return array


def vector_features(value: Any, where: str) -> np.ndarray:
    """Per-sample feature vectors (an (N, D) array or a list of N (D,) arrays) as (N, D) float32."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged lists
        array = np.asarray(value, dtype=object)
    if array.dtype.kind not in "fiub" or array.ndim != 2 or array.shape[1] == 0:
        raise DataError(f"{where}: features have dtype {array.dtype} and shape {array.shape}; expected one "
                        "numeric feature vector per sample, all of the same length (N, D).")
    return array.astype(np.float32, copy=False)


def id_string(value: Any) -> str:
    """bytes, str, numbers or arrays of them (MulT ids are arrays of bytes) -> one string."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.ndim > 0 or isinstance(value, (list, tuple)):
        return "|".join(id_string(v) for v in value)
    if isinstance(value, np.generic):
        return id_string(value.item())
    return str(value)


def sample_ids(raw: Any, split: str, samples: int, where: str) -> list[str]:
    """One id string per sample from the split's ``id`` field, or ``split[i]`` when the file
    has none (IEMOCAP).  A scalar is an error: a str would be read one character per sample."""
    if raw is None:
        return [f"{split}[{i}]" for i in range(samples)]
    if not isinstance(raw, (list, tuple, np.ndarray)) or getattr(raw, "ndim", 1) == 0:
        kind = "0-d numpy array" if isinstance(raw, np.ndarray) else type(raw).__name__
        raise DataError(
            f"{where} field 'id' is a single {kind}, not one id per sample (a list or "
            f"array of {samples} ids). Fix the field, or remove it: without it FuseBench names the "
            f"samples {split}[0], {split}[1], ..."
        )
    return [id_string(v) for v in raw]


def at_rows(rows: np.ndarray, ids: Sequence[str] | None = None) -> str:
    """'rows [..] (ids [..])' for an error message: at most 10, so the user can find them."""
    shown = rows[:10].tolist()
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    named = f" (ids {[ids[i] for i in shown]})" if ids is not None else ""
    return f"rows {shown}{named}{more}"


def check_sizes(where: str, **sizes: int) -> None:
    if len(set(sizes.values())) > 1:
        raise DataError(f"{where}: fields disagree on the number of samples ({sizes}); "
                        "every per-sample field must have the same first dimension.")


def _rows(arrays: SplitArrays, kinds: Mapping[str, str], target: TargetSpec,
          features: datasets.Features) -> Iterator[pa.Table]:
    """The split as Arrow tables of about ``fusebench.BATCH_BYTES``; once the last is out the
    split's arrays are dropped, so the source arrays they view (the unpickled file) can go
    before the next split is written."""
    n = len(arrays)
    per_row = sum(v.nbytes / max(n, 1) if isinstance(v, np.ndarray) else sum(s.nbytes for s in v) / max(n, 1)
                  for v in arrays.modalities.values())
    step = batch_rows(per_row)
    for start in range(0, n, step):
        part = {m: (kinds[m], values[start:start + step]) for m, values in arrays.modalities.items()}
        yield table_from_arrays(part, arrays.labels[start:start + step], target, arrays.ids[start:start + step],
                                features)
    arrays.modalities.clear()


def to_split_rows(splits: Mapping[str, SplitArrays], target: TargetSpec) -> dict[str, SplitRows]:
    """The splits as lazily built Arrow tables for :func:`fusebench.cached_dataset`:
    nothing is converted until the cache writes it, one batch of rows at a time, and each
    split's source arrays are released once it is written (columns: the modalities, ``label``,
    ``id``)."""
    out = {}
    for split, arrays in splits.items():
        kinds = {m: "vector" if isinstance(values, np.ndarray) else "sequence"
                 for m, values in arrays.modalities.items()}
        features = features_from_arrays({m: (kinds[m], v) for m, v in arrays.modalities.items()}, target, ids=True)
        out[split] = SplitRows(features, _rows(arrays, kinds, target, features))
    return out
