"""From a dataset plugin's Hugging Face ``DatasetDict`` to pre-padded tensors and batches.

Every split is converted once, column-wise through Arrow, into dense right-padded tensors
plus lengths; batches are then index slices (no per-sample Python work in the training
loop).  Non-finite feature values are replaced by 0 and *counted*, and a content hash of
the tensors identifies the data in every run's provenance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

import datasets
import numpy as np
import torch

from .errors import DataError
from .specs import DatasetSpec, ModalitySpec, TargetSpec, TaskSpec

SPLITS = ("train", "validation", "test")
LABEL = "label"
ID = "id"  # optional column naming each sample; kept with every run's stored predictions


# -- feature helpers for dataset plugins -------------------------------------------------------

def modality_feature(kind: str, dim: int) -> datasets.List:
    """The HF feature type for a modality column: a vector or a ragged (T, dim) sequence."""
    vector = datasets.List(datasets.Value("float32"), length=dim)
    return vector if kind == "vector" else datasets.List(vector)


def label_feature(target: TargetSpec) -> datasets.features.features.FeatureType:
    if target.kind == "multiclass":
        return datasets.Value("int64")
    if target.kind == "multilabel":
        return datasets.List(datasets.Value("int64"), length=target.n_outputs)
    if target.n_outputs == 1:
        return datasets.Value("float32")
    return datasets.List(datasets.Value("float32"), length=target.n_outputs)


def make_features(modalities: Mapping[str, tuple[str, int]], target: TargetSpec) -> datasets.Features:
    """``modalities`` maps column name to (kind, dim)."""
    feats = {name: modality_feature(kind, dim) for name, (kind, dim) in modalities.items()}
    feats[LABEL] = label_feature(target)
    return datasets.Features(feats)


def infer_modality(name: str, feature: object, where: str) -> ModalitySpec:
    """Derive a ModalitySpec from a column's feature type (shapes come from the data)."""
    if isinstance(feature, datasets.List):
        inner = feature.feature
        if isinstance(inner, datasets.Value) and feature.length > 0:
            return ModalitySpec(name, int(feature.length), "vector")
        if isinstance(inner, datasets.List) and isinstance(inner.feature, datasets.Value) and inner.length > 0:
            return ModalitySpec(name, int(inner.length), "sequence")
    raise DataError(
        f"{where}: column {name!r} has feature type {feature!r}; a modality column must be "
        "List(Value('float32'), length=D) (vector) or List(List(Value('float32'), length=D)) "
        "(sequence). Build it with benchmark_core.data.modality_feature(kind, dim)."
    )


# -- batches -----------------------------------------------------------------------------------

@dataclass
class Batch:
    """Model input: per-modality tensors (B, T, D) or (B, D), step masks (True = real step,
    None for vectors), per-sample presence flags (False = modality missing), and targets."""

    x: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor | None]
    present: dict[str, torch.Tensor]
    y: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return next(iter(self.x.values())).shape[0]

    def replace(self, **changes) -> Batch:
        return replace(self, **changes)

    def to(self, device: torch.device | str) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(
            x={m: move(t) for m, t in self.x.items()},
            mask={m: move(t) for m, t in self.mask.items()},
            present={m: move(t) for m, t in self.present.items()},
            y=move(self.y),
        )

    def select(self, index: torch.Tensor | Mapping[str, torch.Tensor]) -> Batch:
        """Gather rows; a mapping gives each modality its own row index (used by EMAP to
        pair modality ``a`` of sample i with modality ``b`` of sample j). ``y`` is kept
        only for a shared index."""
        per_mod = index if isinstance(index, Mapping) else {m: index for m in self.x}
        pick = lambda t, i: None if t is None else t.index_select(0, i)  # noqa: E731
        return Batch(
            x={m: pick(t, per_mod[m]) for m, t in self.x.items()},
            mask={m: pick(t, per_mod[m]) for m, t in self.mask.items()},
            present={m: pick(t, per_mod[m]) for m, t in self.present.items()},
            y=None if isinstance(index, Mapping) or self.y is None else self.y.index_select(0, index),
        )


@dataclass
class SplitTensors:
    """One split as dense tensors (right-padded sequences, masks precomputed), and the sample
    ids (the dataset's ``id`` column, else the row numbers as strings) that let stored
    predictions be matched to samples later."""

    x: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor | None]
    y: torch.Tensor
    ids: np.ndarray | None = None  # (N,) str; None: the row numbers

    def __post_init__(self) -> None:
        if self.ids is None:
            self.ids = np.arange(self.size).astype(str)

    @property
    def size(self) -> int:
        return self.y.shape[0]

    def batch(self, index: torch.Tensor | slice) -> Batch:
        if isinstance(index, slice):
            take = lambda t: None if t is None else t[index]  # noqa: E731
        else:
            take = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        x = {m: take(t) for m, t in self.x.items()}
        n = self.y[index].shape[0] if isinstance(index, slice) else index.shape[0]
        present = {m: torch.ones(n, dtype=torch.bool) for m in self.x}
        return Batch(x=x, mask={m: take(t) for m, t in self.mask.items()}, present=present, y=take(self.y))

    def all(self) -> Batch:
        return self.batch(slice(None))

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Contiguous batches in order, or shuffled with ``generator``."""
        if generator is None:
            for start in range(0, self.size, batch_size):
                yield self.batch(slice(start, start + batch_size))
        else:
            order = torch.randperm(self.size, generator=generator)
            for start in range(0, self.size, batch_size):
                yield self.batch(order[start:start + batch_size])


@dataclass
class DatasetTensors:
    """All splits of one dataset, its task, content hash and load report."""

    name: str
    task: TaskSpec
    splits: dict[str, SplitTensors]
    data_hash: str
    report: dict[str, object] = field(default_factory=dict)
    _feature_std: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def train(self) -> SplitTensors:
        return self.splits["train"]

    @property
    def validation(self) -> SplitTensors:
        return self.splits["validation"]

    @property
    def test(self) -> SplitTensors:
        return self.splits["test"]

    def feature_std(self) -> dict[str, torch.Tensor]:
        """Per-feature standard deviation on the train split (real steps only); computed once."""
        if self._feature_std is None:
            self._feature_std = self._compute_feature_std()
        return self._feature_std

    def _compute_feature_std(self) -> dict[str, torch.Tensor]:
        out = {}
        for m, x in self.train.x.items():
            mask = self.train.mask[m]
            values = x[mask] if mask is not None else x
            out[m] = values.std(dim=0, unbiased=False) if values.shape[0] > 1 else torch.ones(x.shape[-1])
        return out


# -- conversion --------------------------------------------------------------------------------

def _pad_ragged(values: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, total = len(lengths), int(lengths.sum())
    t_max = max(int(lengths.max()) if n else 0, 1)
    out = np.zeros((n, t_max, values.shape[-1]), dtype=np.float32)
    rows = np.repeat(np.arange(n), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n else np.zeros(0, dtype=np.int64)
    pos = np.arange(total) - np.repeat(starts, lengths)
    out[rows, pos] = values
    mask = np.arange(t_max)[None, :] < lengths[:, None]
    return out, mask


def _column_to_numpy(table, name: str, modality: ModalitySpec):
    arr = table.column(name).combine_chunks()
    if modality.kind == "vector":
        values = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return values.reshape(len(arr), modality.dim), None
    offsets = arr.offsets.to_numpy()
    lengths = np.diff(offsets).astype(np.int64)
    values = arr.flatten().flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return _pad_ragged(values.reshape(-1, modality.dim), lengths)


def _labels_to_numpy(table, target: TargetSpec, where: str) -> np.ndarray:
    if LABEL not in table.column_names:
        raise DataError(f"{where}: no {LABEL!r} column; a dataset must provide its targets there.")
    arr = table.column(LABEL).combine_chunks()
    if arr.null_count:
        raise DataError(f"{where}: {arr.null_count} missing labels in column {LABEL!r}; drop those rows.")
    import pyarrow as pa

    if pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        flat = arr.flatten()
        if flat.null_count:
            raise DataError(f"{where}: {flat.null_count} missing values inside column {LABEL!r}; drop those rows.")
        y = flat.to_numpy(zero_copy_only=False)
        if y.size % max(len(arr), 1):
            raise DataError(f"{where}: column {LABEL!r} holds label lists of different lengths; every row "
                            f"needs exactly {target.n_outputs} value(s).")
        y = y.reshape(len(arr), -1)
    else:
        y = arr.to_numpy(zero_copy_only=False)
    per_row = y.shape[1] if y.ndim == 2 else 1
    if per_row != target.n_outputs and not (target.kind == "multiclass" and per_row == 1):
        raise DataError(
            f"{where}: column {LABEL!r} has {per_row} value(s) per row, but the dataset's target "
            f"({target.kind}, n_outputs={target.n_outputs}) needs "
            f"{1 if target.kind == 'multiclass' else target.n_outputs}. Fix the loader's label column "
            "(e.g. pick the right label column) or the DatasetSpec's target; FuseBench never guesses "
            "which column is meant."
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        bad = np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))
        raise DataError(
            f"{where}: {len(bad)} row(s) have non-finite labels (NaN/inf) in column {LABEL!r}, at rows "
            f"{bad[:10].tolist()}{' ...' if len(bad) > 10 else ''}. A label cannot be repaired like a "
            "feature value; drop those rows or fix the source file."
        )
    if target.kind == "multiclass":
        y = y.astype(np.int64).reshape(-1)
        if y.size and (y.min() < 0 or y.max() >= target.n_outputs):
            raise DataError(
                f"{where}: class labels must lie in [0, {target.n_outputs}), found range "
                f"[{y.min()}, {y.max()}]."
            )
        return y
    if target.kind == "multilabel":
        return y.astype(np.float32).reshape(len(arr), target.n_outputs)
    y = y.astype(np.float32)
    return y.reshape(-1) if target.n_outputs == 1 else y.reshape(len(arr), target.n_outputs)


def to_tensors(spec: DatasetSpec, dsd: datasets.DatasetDict) -> DatasetTensors:
    """Validate a loaded DatasetDict against its spec and convert every split."""
    where = f"dataset {spec.name!r}"
    missing = [s for s in SPLITS if s not in dsd]
    if missing:
        raise DataError(f"{where}: load() returned splits {sorted(dsd)}; missing {missing}.")
    train_features = dsd["train"].features
    absent = [m for m in spec.modalities if m not in train_features]
    if absent:
        raise DataError(
            f"{where}: modality columns {absent} are not in the loaded data (columns: "
            f"{sorted(train_features)})."
        )
    modalities = tuple(infer_modality(m, train_features[m], where) for m in spec.modalities)
    task = TaskSpec(modalities=modalities, target=spec.target)
    digest = hashlib.sha256(task.to_json().encode())
    splits, nonfinite = {}, {m: 0 for m in spec.modalities}
    for split in SPLITS:
        ds = dsd[split]
        table = ds.with_format("arrow")[:]
        x, mask = {}, {}
        for mod in modalities:
            if mod.name not in ds.features or infer_modality(mod.name, ds.features[mod.name], where) != mod:
                raise DataError(
                    f"{where}: split {split!r} column {mod.name!r} has a different shape/kind than "
                    "in 'train'; all splits must share feature dimensions."
                )
            values, m = _column_to_numpy(table, mod.name, mod)
            bad = ~np.isfinite(values)
            if m is not None:
                bad &= m[..., None]
            count = int(bad.sum())
            if count:
                nonfinite[mod.name] += count
                values = np.where(np.isfinite(values), values, 0.0).astype(np.float32)
            x[mod.name] = torch.from_numpy(np.array(values, dtype=np.float32, copy=True))
            mask[mod.name] = None if m is None else torch.from_numpy(np.array(m, copy=True))
            digest.update(values.tobytes())
            if m is not None:
                digest.update(m.tobytes())
        y = _labels_to_numpy(table, spec.target, f"{where} split {split!r}")
        digest.update(y.tobytes())
        if len(y) == 0:
            raise DataError(f"{where}: split {split!r} is empty.")
        ids = table.column(ID).to_numpy().astype(str) if ID in table.column_names else None
        splits[split] = SplitTensors(x=x, mask=mask, y=torch.from_numpy(np.array(y, copy=True)), ids=ids)
    report = {
        "sizes": {s: splits[s].size for s in SPLITS},
        "nonfinite_replaced": nonfinite,
    }
    return DatasetTensors(spec.name, task, splits, digest.hexdigest()[:16], report)


_CACHE: dict[str, DatasetTensors] = {}


def load_tensors(spec: DatasetSpec, options: Mapping[str, object] | None = None,
                 reload: bool = False) -> DatasetTensors:
    """Load (once per process and option set) and convert a dataset.

    ``reload`` bypasses the in-process cache: the planner uses it so that a long-lived
    process (a notebook, a test) plans on the files as they are now, never on what it read
    earlier; runs then reuse that fresh copy and check its hash against their plan.
    """
    opts = {**spec.defaults, **(options or {})}
    key = f"{spec.name}:{json.dumps(opts, sort_keys=True, default=str)}"
    if reload or key not in _CACHE:
        if spec.specialise is not None:
            spec = spec.specialise(opts)
        loaded = spec.load(opts)
        dsd, loader_report = loaded if isinstance(loaded, tuple) else (loaded, None)
        if not isinstance(dsd, datasets.DatasetDict):
            raise DataError(
                f"dataset {spec.name!r}: load() returned {type(dsd).__name__}; it must return a "
                "datasets.DatasetDict with train/validation/test splits (optionally with a report dict)."
            )
        tensors = to_tensors(spec, dsd)
        if loader_report:
            tensors.report["loader"] = dict(loader_report)
        _CACHE[key] = tensors
    return _CACHE[key]


# -- building datasets from arrays (for dataset plugins) --------------------------------------

def _arrow_modality(values: np.ndarray | list[np.ndarray], kind: str, dim: int):
    import pyarrow as pa

    if kind == "vector":
        flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, dim)
    if isinstance(values, np.ndarray) and values.ndim == 3:
        values = list(values)
    lengths = np.array([len(v) for v in values], dtype=np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    stacked = np.concatenate([np.asarray(v, dtype=np.float32).reshape(-1, dim) for v in values]) if values else np.zeros((0, dim), np.float32)
    inner = pa.FixedSizeListArray.from_arrays(pa.array(stacked.reshape(-1)), dim)
    return pa.ListArray.from_arrays(offsets, inner)


def dataset_from_arrays(modalities: Mapping[str, tuple[str, np.ndarray | list[np.ndarray]]],
                        labels: np.ndarray, target: TargetSpec) -> datasets.Dataset:
    """Build an HF Dataset column-wise from numpy (no per-row Python conversion).

    ``modalities`` maps a column name to (kind, data): vectors as an (N, D) array,
    sequences as an (N, T, D) array or a list of (T_i, D) arrays (ragged).
    """
    import pyarrow as pa

    columns, spec = {}, {}
    for name, (kind, values) in modalities.items():
        dim = int(np.asarray(values[0]).shape[-1])
        spec[name] = (kind, dim)
        columns[name] = _arrow_modality(values, kind, dim)
    features = make_features(spec, target)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        columns[LABEL] = pa.FixedSizeListArray.from_arrays(pa.array(labels.reshape(-1)), labels.shape[1])
    else:
        columns[LABEL] = pa.array(labels)
    table = pa.table(columns).cast(features.arrow_schema)
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features))
