"""Stored predictions: what a run keeps so that any metric can be recomputed without retraining.

Every finished run logs ``predictions.npz`` to MLflow: for its ``test`` and ``validation``
splits, the sample ids, the targets and the raw model outputs (best checkpoint) that its
metrics were computed on.  ``bench leaderboard --recompute`` recomputes every metric variant
registered now (metric plugins installed after the suite ran included) from them, and
``bench publish`` keeps one compact copy for a whole suite next to ``runs.json``, so the
published statistics can be recomputed from the stored files alone.

Both files are zip archives of ``.npy`` members written by :func:`write_npz` (fixed entry
times, sorted names: the same arrays give the same bytes), readable with ``numpy.load``:

* run artifact (``fusebench-predictions/1``): ``format``; ``<split>/ids``, ``<split>/y``,
  ``<split>/pred`` for split in ``test``, ``validation``.
* suite export (``fusebench-predictions-export/1``): ``format``; ``spec_hash`` and
  ``run_id`` (one entry per run, sorted by spec_hash); per split ``<split>/pred/<spec_hash>``,
  ``<split>/block`` (per run, the index of its ids/targets block) and the blocks
  ``<split>/ids/<k>``, ``<split>/y/<k>``, stored once for all the runs on the same samples.

Encoding (both files): ``pred`` float32 (N, n_outputs); ids that are all row numbers as the
smallest unsigned int, other ASCII ids as bytes, else unicode; integer targets (class labels)
as the smallest int type, float targets as float32.  Reading restores what the metrics saw:
str ids, int64 class labels, float32 targets and outputs.

This module must not import torch: the torch-free leaderboard path imports it.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from benchmark_core.errors import FuseBenchError
from benchmark_core.record import SPLIT_KEYS
from benchmark_core.scoring import score

if TYPE_CHECKING:
    import pandas as pd

    from benchmark_core.plugins import Registry
    from benchmark_core.specs import MetricSpec

ARTIFACT = "predictions.npz"  # the MLflow artifact of a run, and the export's name next to runs.json
FORMAT = "fusebench-predictions/1"
EXPORT_FORMAT = "fusebench-predictions-export/1"
SPLITS = ("test", "validation")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold; fixed for byte-stable files


@dataclass(frozen=True)
class SplitPredictions:
    """One split of one run: what its metrics were computed on."""

    ids: np.ndarray  # (N,) str
    y: np.ndarray  # (N,) int64 class labels or float32 values, (N, n_outputs) float32 multilabel
    pred: np.ndarray  # (N, n_outputs) float32 raw model outputs


@dataclass(frozen=True)
class Predictions:
    """A run's stored predictions; ``run_id`` names the MLflow run they belong to ('' before
    the driver logged them), so a spec_hash-keyed export is matched to its rows exactly."""

    test: SplitPredictions
    validation: SplitPredictions
    run_id: str = ""

    def split(self, name: str) -> SplitPredictions:
        return {"test": self.test, "validation": self.validation}[name]


# -- compact encoding ------------------------------------------------------------------------

def smallest_int(values: np.ndarray) -> np.ndarray:
    """Integers in the narrowest dtype that holds them (row numbers, class labels)."""
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = int(values.min()), int(values.max())
    for dtype in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values.astype(np.int64)


def pack_ids(ids: np.ndarray) -> np.ndarray:
    """Row-number ids as small unsigned ints, ASCII ids as bytes (1 byte a character, not 4)."""
    ids = np.asarray(ids, dtype=str)
    try:
        ascii_ids = np.char.encode(ids, "ascii")
    except UnicodeEncodeError:
        return ids
    if ids.size and np.char.str_len(ids).max() <= 18 and np.char.isdigit(ascii_ids).all():
        numbers = ids.astype(np.int64)
        if np.array_equal(numbers.astype(str), ids):  # no leading zeros: the round trip is exact
            return smallest_int(numbers)
    return ascii_ids


def unpack_ids(stored: np.ndarray) -> np.ndarray:
    if stored.dtype.kind == "S":
        return np.char.decode(stored, "ascii")
    return stored.astype(str)


def pack_y(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    return smallest_int(y) if y.dtype.kind in "iu" else y.astype(np.float32)


def unpack_y(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.int64) if stored.dtype.kind in "iu" else stored.astype(np.float32)


def split_of(arrays: Mapping[str, np.ndarray], ids: str, y: str, pred: str) -> SplitPredictions:
    return SplitPredictions(ids=unpack_ids(arrays[ids]), y=unpack_y(arrays[y]),
                            pred=np.asarray(arrays[pred], dtype=np.float32))


# -- files -----------------------------------------------------------------------------------

def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """An ``.npz`` whose bytes depend on the arrays only: ``np.savez_compressed`` stamps every
    entry with the current time, so the same predictions would differ on every publish."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as archive:
            for name in sorted(arrays):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(arrays[name], order="C"), allow_pickle=False)
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, buffer.getvalue(), compresslevel=9)
        os.replace(tmp, path)  # a reader never sees half a file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All members of an ``.npz`` (never unpickling anything)."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def check_format(arrays: Mapping[str, np.ndarray], expected: str, path: str | Path) -> None:
    found = str(arrays["format"]) if "format" in arrays else None
    if found != expected:
        raise FuseBenchError(f"{path} is not a FuseBench predictions file ({expected}); it says format={found!r}.")


def save(predictions: Predictions, path: str | Path) -> Path:
    """Write one run's predictions as its ``predictions.npz`` artifact."""
    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT)}
    for split in SPLITS:
        part = predictions.split(split)
        arrays[f"{split}/ids"] = pack_ids(part.ids)
        arrays[f"{split}/y"] = pack_y(part.y)
        arrays[f"{split}/pred"] = np.asarray(part.pred, dtype=np.float32)
    return write_npz(path, arrays)


def read(path: str | Path, run_id: str = "") -> Predictions:
    """One run's ``predictions.npz``, as :func:`save` was given it."""
    arrays = read_npz(path)
    check_format(arrays, FORMAT, path)
    parts = {split: split_of(arrays, f"{split}/ids", f"{split}/y", f"{split}/pred") for split in SPLITS}
    return Predictions(run_id=run_id, **parts)


class PredictionStore(Protocol):
    """Where runs' predictions are stored (the MLflow :class:`~benchmark_core.tracking.Tracker`):
    this module reads through it and never imports the store, which imports this module."""

    def load_predictions(self, run_id: str) -> Predictions | None: ...


def load(tracker: PredictionStore, run_ids: Iterable[str]) -> dict[str, Predictions]:
    """run_id -> stored predictions, for the runs that have them (runs logged before
    FuseBench stored predictions have none and are left out)."""
    out = {}
    for run_id in dict.fromkeys(run_ids):
        stored = tracker.load_predictions(run_id)
        if stored is not None:
            out[run_id] = stored
    return out


# -- recomputing metrics ---------------------------------------------------------------------

def registered_metrics(registry: Registry, datasets: Iterable[str]) -> dict[str, dict[str, MetricSpec]]:
    """dataset -> {variant: MetricSpec} as registered now, for the datasets still registered."""
    known = set(registry.names("datasets"))
    return {name: {metric: registry.metric(metric) for metric in registry.dataset(name).metrics}
            for name in dict.fromkeys(datasets) if name in known}


@dataclass
class Recomputed:
    """A runs frame with recomputed metrics, and which finished runs could not be recomputed."""

    frame: pd.DataFrame
    recomputed: list[str] = field(default_factory=list)  # run ids
    without_predictions: list[str] = field(default_factory=list)  # run ids: logged before predictions were stored
    unknown_dataset: list[str] = field(default_factory=list)  # run ids: their dataset is not registered now

    def note(self) -> str:
        """One line for stderr: what the table now rests on."""
        parts = [f"recomputed the metrics of {_runs(len(self.recomputed))} from their stored predictions"]
        if self.without_predictions:
            n = len(self.without_predictions)
            parts.append(f"{without_predictions_note(n)} and keep{'s' if n == 1 else ''} the metrics logged then")
        if self.unknown_dataset:
            n = len(self.unknown_dataset)
            parts.append(f"{_runs(n)} on a dataset that is not registered now keep{'s' if n == 1 else ''} "
                         "the metrics logged then")
        return "bench: " + "; ".join(parts) + "."


def _runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def without_predictions_note(n: int) -> str:
    """'N runs have no stored predictions (...)', said the same way by every command."""
    return f"{_runs(n)} {'has' if n == 1 else 'have'} no stored predictions (logged before FuseBench stored them)"


def recompute(frame: pd.DataFrame, predictions: Mapping[str, Predictions],
              metrics: Mapping[str, Mapping[str, MetricSpec]]) -> Recomputed:
    """Recompute ``test/<metric>`` and ``val/<metric>`` of every finished run with stored
    predictions, for every metric ``metrics[dataset]`` lists, and add those variants to the
    run's ``metric_variants``; every other column, and every other run, is left as it was.

    Predictions are matched to rows by their ``run_id`` (so ``predictions`` may be keyed by
    run id or, as an export is, by spec_hash)."""
    import pandas as pd

    by_run = {p.run_id: p for p in predictions.values()}
    out = Recomputed(frame.copy())
    values: dict[str, dict[object, float]] = {}
    variants: dict[object, str] = {}
    for index, row in frame.iterrows():
        if row.get("status") != "finished":
            continue
        if row.get("dataset") not in metrics:
            out.unknown_dataset.append(row["run_id"])
            continue
        stored = by_run.get(row["run_id"])
        if stored is None:
            out.without_predictions.append(row["run_id"])
            continue
        specs = metrics[row["dataset"]]
        for split, keys in SPLIT_KEYS.items():  # test/<metric>, val/<metric>, as the run logged them
            part = stored.split(split)
            for name, spec in specs.items():
                values.setdefault(keys.key(name), {})[index] = _score(spec, part, row)
        recorded = row.get("metric_variants")
        old = str(recorded).split(",") if isinstance(recorded, str) and recorded else []
        variants[index] = ",".join(sorted({*old, *specs}))
        out.recomputed.append(row["run_id"])
    if variants:
        out.frame.loc[list(variants), "metric_variants"] = pd.Series(variants)
    new = {column: pd.Series(cells, dtype=float) for column, cells in values.items() if column not in out.frame}
    for column, cells in values.items():
        if column in out.frame:
            out.frame.loc[list(cells), column] = pd.Series(cells, dtype=float)
    if new:
        out.frame = pd.concat([out.frame, pd.DataFrame(new, index=out.frame.index)], axis=1)
    return out


def _score(spec: MetricSpec, part: SplitPredictions, row: pd.Series) -> float:
    """One metric on stored predictions, scored exactly as the run scored them (NaN for
    non-finite outputs); a metric that raises names itself and the run (a plugin's bug must not
    read as a FuseBench crash)."""
    try:
        return score(part.pred, part.y, {spec.name: spec})[spec.name]
    except Exception as exc:
        raise FuseBenchError(
            f"Metric {spec.name!r} raised {type(exc).__name__}: {' '.join(str(exc).split())} on the stored "
            f"predictions of run {row['run_id']} ({row['method']} on {row['dataset']}, seed {row['seed']}). "
            "Fix the metric, or uninstall the plugin that registers it, and run the command again."
        ) from exc


def recompute_stored(frame: pd.DataFrame, registry: Registry, *, tracker: PredictionStore | None = None,
                     runs_json: str | Path | None = None) -> Recomputed:
    """``bench leaderboard --recompute``: every metric the registry lists now for each dataset,
    recomputed from the predictions stored in MLflow (``tracker``) or, for a stored result
    (``runs_json``), from the export next to it."""
    if runs_json is not None:
        path = exported_path(runs_json)
        stored = load_exported(path)
        check_exported(frame, stored, path)
    elif tracker is not None:
        stored = load(tracker, finished_run_ids(frame))
    else:
        raise ValueError("recompute_stored needs a tracker or a runs.json")
    datasets = frame["dataset"].dropna().unique() if not frame.empty else []
    return recompute(frame, stored, registered_metrics(registry, datasets))


# -- the suite export next to runs.json (written by publish.export_predictions) --------------

def load_exported(path: str | Path) -> dict[str, Predictions]:
    """spec_hash -> Predictions (with the run_id they came from) of a suite export."""
    path = Path(path)
    if not path.exists():
        raise FuseBenchError(f"No stored predictions at {path}; `bench publish` writes them next to runs.json.")
    arrays = read_npz(path)
    check_format(arrays, EXPORT_FORMAT, path)
    hashes, run_ids = unpack_ids(arrays["spec_hash"]), unpack_ids(arrays["run_id"])
    out = {}
    for i, (spec_hash, run_id) in enumerate(zip(hashes.tolist(), run_ids.tolist(), strict=True)):
        parts = {}
        for split in SPLITS:
            block = int(arrays[f"{split}/block"][i])
            parts[split] = split_of(arrays, f"{split}/ids/{block}", f"{split}/y/{block}", f"{split}/pred/{spec_hash}")
        out[spec_hash] = Predictions(run_id=run_id, **parts)
    return out


def exported_path(runs_json: str | Path) -> Path:
    """Where ``bench publish`` keeps the predictions of a stored result: next to its runs.json."""
    return Path(runs_json).parent / ARTIFACT


def check_exported(frame: pd.DataFrame, exported: Mapping[str, Predictions], path: str | Path) -> None:
    """Refuse an export that does not belong to this runs table (e.g. left from an earlier
    publish): each of its runs must be a finished run of the table with the same spec_hash."""
    finished = frame[frame["status"] == "finished"] if not frame.empty else frame
    known = set(zip(finished.get("spec_hash", []), finished.get("run_id", [])))
    stray = sorted(h for h, p in exported.items() if (h, p.run_id) not in known)
    if stray:
        raise FuseBenchError(
            f"{path} holds predictions of {len(stray)} run(s) that are not finished runs of the stored result next "
            f"to it (spec_hash {', '.join(stray[:5])}{' ...' if len(stray) > 5 else ''}): it belongs to another "
            "publish. Re-run `bench publish` to write both files together, or delete it."
        )


def finished_run_ids(frame: pd.DataFrame) -> Sequence[str]:
    """The run ids of the frame's finished runs (whose predictions --recompute loads)."""
    if frame.empty:
        return []
    return frame.loc[frame["status"] == "finished", "run_id"].tolist()
