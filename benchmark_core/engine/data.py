"""From a dataset plugin's Hugging Face ``DatasetDict`` to pre-padded tensors and batches.

Every split is converted once, record batch by record batch through Arrow, into dense
right-padded tensors plus lengths (masks); batches are then index slices (no per-sample
Python work in the training loop).  Non-finite feature values are replaced by 0 and
*counted*, and a content hash of the tensors identifies the data in every run's provenance.
Data that come from the converted-data cache (:mod:`.datacache`) are converted straight into
tensor files kept with that cache entry, hashed once there, and opened memory-mapped by later
runs (no copy, no re-hash; pages are read as batches use them); other data are converted in
memory, without intermediate copies.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import datasets
import numpy as np
import torch

from benchmark_core.engine import datacache
from benchmark_core.engine.memory import PeakMemory
from benchmark_core.errors import DataError
from benchmark_core.specs import DatasetSpec, ModalitySpec, TargetSpec, TaskSpec

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
        "(sequence). Build it with benchmark_core.engine.data.modality_feature(kind, dim)."
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
        move = lambda t: None if t is None else t.to(device, non_blocking=True)
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
        pick = lambda t, i: None if t is None else t.index_select(0, i)
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
            take = lambda t: None if t is None else t[index]
        else:
            take = lambda t: None if t is None else t.index_select(0, index)
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
    # what loading cost in this process: where the tensors came from, seconds, peak RSS (MiB)
    load: dict[str, object] = field(default_factory=dict)
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

class _InMemory:
    """Where converted arrays live by default: plain, zero-filled memory.  The tensor cache
    puts them in memory-mapped files instead (:class:`datacache.ArrayWriter`, same methods)."""

    def array(self, name: str, shape: tuple[int, ...], dtype: object) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def keep(self, name: str, values: np.ndarray) -> np.ndarray:
        return values


def _lengths(column) -> np.ndarray:
    """Steps per row of a sequence column, from its offsets alone (no feature value is read)."""
    parts = [np.diff(chunk.offsets.to_numpy()) for chunk in column.chunks]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _fill(out: np.ndarray, start: int, column, modality: ModalitySpec) -> int:
    """Write one record batch of a modality column into rows ``start...`` of the dense
    (right-padded) output, non-finite values replaced by 0; returns how many were replaced.
    The batch's values are read in place (Arrow -> numpy without a copy) and scattered once."""
    n = len(column)
    inner = column.flatten() if modality.kind == "vector" else column.flatten().flatten()
    values = inner.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, modality.dim)
    bad = ~np.isfinite(values)
    count = int(bad.sum())
    if count:
        values = np.where(bad, np.float32(0.0), values)
    if modality.kind == "vector":
        out[start:start + n] = values.reshape(n, modality.dim)
        return count
    lengths = np.diff(column.offsets.to_numpy()).astype(np.int64)
    t_max = out.shape[1]
    rows = np.repeat(np.arange(n), lengths)
    pos = np.arange(len(values)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[start:start + n].reshape(n * t_max, modality.dim)[rows * t_max + pos] = values
    return count


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


def _task(spec: DatasetSpec, dsd: datasets.DatasetDict) -> TaskSpec:
    """The task the loaded splits describe, checked against the spec (column names and kinds)."""
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
    return TaskSpec(modalities=modalities, target=spec.target)


Batches = Callable[[str, object], Iterable[object]]  # (split, its Arrow table) -> its record batches


def _table_batches(split: str, table) -> Iterable[object]:
    """A table's record batches of about datacache.BATCH_BYTES each (zero-copy slices)."""
    return table.to_batches(max_chunksize=datacache.batch_rows(table.nbytes / max(table.num_rows, 1)))


def _convert(spec: DatasetSpec, dsd: datasets.DatasetDict, task: TaskSpec, store,
             batches: Batches = _table_batches) -> tuple[dict[str, np.ndarray], str, dict[str, object]]:
    """Every split as dense arrays named ``<split>.x<i>`` / ``.mask<i>`` (modality i), ``.y``
    and ``.ids``, allocated by ``store`` and filled batch by batch; the content hash; the report.

    The hash is SHA-256 over the task, then per split each modality's padded values and mask
    and the targets, as bytes in C order - read from the arrays themselves, never copied."""
    where = f"dataset {spec.name!r}"
    digest = hashlib.sha256(task.to_json().encode())
    arrays: dict[str, np.ndarray] = {}
    nonfinite = {m: 0 for m in spec.modalities}
    sizes = {}
    for split in SPLITS:
        ds = dsd[split]
        for mod in task.modalities:
            if mod.name not in ds.features or infer_modality(mod.name, ds.features[mod.name], where) != mod:
                raise DataError(
                    f"{where}: split {split!r} column {mod.name!r} has a different shape/kind than "
                    "in 'train'; all splits must share feature dimensions."
                )
        table = ds.with_format("arrow")[:]
        y = _labels_to_numpy(table, spec.target, f"{where} split {split!r}")
        if len(y) == 0:
            raise DataError(f"{where}: split {split!r} is empty.")
        n = len(y)
        out = {}
        for i, mod in enumerate(task.modalities):
            if mod.kind == "vector":
                out[mod.name] = store.array(f"{split}.x{i}", (n, mod.dim), np.float32)
                continue
            lengths = _lengths(table.column(mod.name))
            t_max = max(int(lengths.max()), 1)
            out[mod.name] = store.array(f"{split}.x{i}", (n, t_max, mod.dim), np.float32)
            arrays[f"{split}.mask{i}"] = store.keep(f"{split}.mask{i}", np.arange(t_max)[None, :] < lengths[:, None])
        start = 0
        for batch in batches(split, table):
            for mod in task.modalities:
                nonfinite[mod.name] += _fill(out[mod.name], start, batch.column(mod.name), mod)
            start += batch.num_rows
            del batch  # before the next one is read
        datacache.release_arrow_memory()
        if start != n:
            raise DataError(f"{where}: split {split!r} gave {start} rows of features for {n} labels; the data "
                            "changed while they were read. Run the command again.")
        for i, mod in enumerate(task.modalities):
            arrays[f"{split}.x{i}"] = out[mod.name]
            digest.update(np.ascontiguousarray(out[mod.name]))
            if mod.kind == "sequence":
                digest.update(np.ascontiguousarray(arrays[f"{split}.mask{i}"]))
        arrays[f"{split}.y"] = store.keep(f"{split}.y", y)
        digest.update(np.ascontiguousarray(y))
        if ID in table.column_names:
            arrays[f"{split}.ids"] = store.keep(f"{split}.ids", table.column(ID).to_numpy().astype(str))
        sizes[split] = n
    return arrays, digest.hexdigest()[:16], {"sizes": sizes, "nonfinite_replaced": nonfinite}


def _as_tensors(name: str, task: TaskSpec, arrays: Mapping[str, np.ndarray], data_hash: str,
                report: Mapping[str, object]) -> DatasetTensors:
    """Tensors that share memory with the arrays (no copy)."""
    splits = {}
    for split in SPLITS:
        x, mask = {}, {}
        for i, mod in enumerate(task.modalities):
            x[mod.name] = torch.from_numpy(arrays[f"{split}.x{i}"])
            mask[mod.name] = torch.from_numpy(arrays[f"{split}.mask{i}"]) if mod.kind == "sequence" else None
        ids = arrays.get(f"{split}.ids")
        splits[split] = SplitTensors(x=x, mask=mask, y=torch.from_numpy(arrays[f"{split}.y"]),
                                     ids=None if ids is None else np.asarray(ids))
    return DatasetTensors(name, task, splits, data_hash, json.loads(json.dumps(report)))


def to_tensors(spec: DatasetSpec, dsd: datasets.DatasetDict) -> DatasetTensors:
    """Validate a loaded DatasetDict against its spec and convert every split, in memory."""
    task = _task(spec, dsd)
    arrays, data_hash, report = _convert(spec, dsd, task, _InMemory())
    return _as_tensors(spec.name, task, arrays, data_hash, report)


TENSOR_LAYOUT = 1  # bump when the arrays kept in the tensor cache change meaning or layout


def _cached_tensors(spec: DatasetSpec, dsd: datasets.DatasetDict, entry: Path) -> tuple[DatasetTensors, str]:
    """The tensors of a converted-data cache entry: opened from the tensor files kept with it
    (memory-mapped, with the data hash computed when they were written), or converted from the
    entry straight into those files - each split read batch by batch with plain reads, so
    converting never holds the data twice - and then opened the same way."""
    task = _task(spec, dsd)
    key = hashlib.sha256(json.dumps({"layout": TENSOR_LAYOUT, "task": task.to_dict()},
                                    sort_keys=True).encode()).hexdigest()[:16]
    folder = datacache.tensor_folder(entry, key)
    source = "tensor cache"
    opened = datacache.open_arrays(folder) if folder.exists() else "absent"
    if isinstance(opened, str):
        if opened != "absent":
            datacache.discard(folder, opened)
        with datacache.ArrayWriter(folder) as writer:
            arrays, data_hash, report = _convert(spec, dsd, task, writer,
                                                 lambda split, table: datacache.read_batches(entry, split))
            del arrays  # the writable maps go; the published files are opened copy-on-write below
            writer.commit({"data_hash": data_hash, "report": report, "task": task.to_dict()})
        source = "converted to the tensor cache"
        opened = datacache.open_arrays(folder)
        if isinstance(opened, str):
            raise DataError(f"The tensors just saved to {folder} cannot be read back: {opened}. Check the disk "
                            "(space, errors) and run the command again.")
    arrays, meta = opened
    return _as_tensors(spec.name, task, arrays, meta["data_hash"], meta["report"]), source


_CACHE: dict[str, DatasetTensors] = {}


def load_tensors(spec: DatasetSpec, options: Mapping[str, object] | None = None,
                 reload: bool = False) -> DatasetTensors:
    """Load (once per process and option set) and convert a dataset.

    ``reload`` bypasses the in-process cache: the planner uses it so that a long-lived
    process (a notebook, a test) plans on the files as they are now, never on what it read
    earlier; runs then reuse that fresh copy and check its hash against their plan.  Data a
    plugin returns from the converted-data cache (:mod:`.datacache`) get their tensors from
    the tensor files kept with that entry; any other data are converted in memory.  What the
    load cost is kept in ``tensors.load`` (where the tensors came from, seconds, peak RSS).
    """

    opts = {**spec.defaults, **(options or {})}
    key = f"{spec.name}:{json.dumps(opts, sort_keys=True, default=str)}"
    if reload or key not in _CACHE:
        started = time.perf_counter()
        with PeakMemory() as memory:
            if spec.specialise is not None:
                spec = spec.specialise(opts)
            loaded = spec.load(opts)
            dsd, loader_report = loaded if isinstance(loaded, tuple) else (loaded, None)
            if not isinstance(dsd, datasets.DatasetDict):
                raise DataError(
                    f"dataset {spec.name!r}: load() returned {type(dsd).__name__}; it must return a "
                    "datasets.DatasetDict with train/validation/test splits (optionally with a report dict)."
                )
            entry = datacache.entry_of(dsd)
            if entry is None:
                tensors, source = to_tensors(spec, dsd), "converted in memory"
            else:
                tensors, source = _cached_tensors(spec, dsd, entry)
            del dsd, loaded
        if loader_report:
            tensors.report["loader"] = dict(loader_report)
        tensors.load = {"tensors": source, "seconds": time.perf_counter() - started,
                        "peak_memory_mb": memory.peak_mb}
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
    stacked = (np.concatenate([np.asarray(v, dtype=np.float32).reshape(-1, dim) for v in values]) if values
               else np.zeros((0, dim), np.float32))
    inner = pa.FixedSizeListArray.from_arrays(pa.array(stacked.reshape(-1)), dim)
    return pa.ListArray.from_arrays(offsets, inner)


Modalities = Mapping[str, tuple[str, "np.ndarray | list[np.ndarray]"]]


def features_from_arrays(modalities: Modalities, target: TargetSpec, ids: bool = False) -> datasets.Features:
    """The features :func:`table_from_arrays` writes (dims from the first sample)."""
    spec = {name: (kind, int(np.asarray(values[0]).shape[-1])) for name, (kind, values) in modalities.items()}
    features = make_features(spec, target)
    if ids:
        features[ID] = datasets.Value("string")
    return features


def table_from_arrays(modalities: Modalities, labels: np.ndarray, target: TargetSpec,
                      ids: Sequence[str] | None = None, features: datasets.Features | None = None):
    """One Arrow table, column-wise from numpy (no per-row Python conversion): the modality
    columns, ``label`` and, given ``ids``, ``id``.  ``modalities`` maps a column name to (kind,
    data): vectors as an (N, D) array, sequences as an (N, T, D) array or a list of (T_i, D)
    arrays (ragged).  Converters write a large split as several such tables (row ranges)."""
    import pyarrow as pa

    features = features or features_from_arrays(modalities, target, ids is not None)
    columns = {}
    for name, (kind, values) in modalities.items():
        columns[name] = _arrow_modality(values, kind, int(np.asarray(values[0]).shape[-1]))
    labels = np.asarray(labels)
    if labels.ndim == 2:
        columns[LABEL] = pa.FixedSizeListArray.from_arrays(pa.array(labels.reshape(-1)), labels.shape[1])
    else:
        columns[LABEL] = pa.array(labels)
    if ids is not None:
        columns[ID] = pa.array(list(ids), type=pa.string())
    return pa.table(columns).cast(features.arrow_schema)


def table_fingerprint(table) -> str:
    """A content fingerprint of an Arrow table from its buffers as they lie in memory (no
    serialisation, no copy) - what ``datasets`` would otherwise compute by pickling the table."""
    digest = hashlib.sha256(table.schema.to_string().encode())
    for column in table.columns:
        for chunk in column.chunks:
            digest.update(str((chunk.offset, len(chunk))).encode())
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(buffer)
    return digest.hexdigest()[:32]


def dataset_from_arrays(modalities: Modalities, labels: np.ndarray, target: TargetSpec,
                        fingerprint: str | None = None) -> datasets.Dataset:
    """Build an HF Dataset column-wise from numpy (no per-row Python conversion).

    ``modalities`` maps a column name to (kind, data): vectors as an (N, D) array,
    sequences as an (N, T, D) array or a list of (T_i, D) arrays (ragged).  ``fingerprint``:
    the ``datasets`` fingerprint; by default one is computed from the table's buffers
    (:func:`table_fingerprint`), never by the library serialising the whole table.
    """
    features = features_from_arrays(modalities, target)
    table = table_from_arrays(modalities, labels, target, features=features)
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features),
                            fingerprint=fingerprint or table_fingerprint(table))
