"""``bench data inspect PATH`` for the affect datasets: what a file or folder holds.

Every known format is asked whether ``PATH`` is (or holds) one of its file sets, for every
dataset that can be read from it; a match is read exactly as ``bench run`` would read it (no
cache) and described: splits and sizes, per-modality kind, width and steps, the padding
decision with its evidence and length source, label range and distribution, non-finite
values, the datasets it can serve and the command line that uses it.  The field issue
trackers are full of "which mosi.pkl is this"; this answers it before anything is trained.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fusebench import DataError

from .convert import SplitArrays
from .formats import FORMATS, Found
from .loader import option_defaults
from .profiles import PROFILES, AffectProfile


def _modality_summary(splits: Mapping[str, SplitArrays], modality: str) -> dict[str, Any]:
    parts = [split.modalities[modality] for split in splits.values()]
    if all(isinstance(p, np.ndarray) and p.ndim == 2 for p in parts):
        stacked = np.concatenate(parts)
        return {"kind": "vector", "dim": int(stacked.shape[1]), "dtype": str(stacked.dtype),
                "nonfinite": int((~np.isfinite(stacked)).sum())}
    sequences = [seq for part in parts for seq in part]
    steps = np.array([len(seq) for seq in sequences])
    return {"kind": "sequence", "dim": int(sequences[0].shape[-1]), "dtype": str(sequences[0].dtype),
            "steps": {"min": int(steps.min()), "median": float(np.median(steps)), "max": int(steps.max())},
            "nonfinite": int(sum((~np.isfinite(seq)).sum() for seq in sequences))}


def _label_summary(splits: Mapping[str, SplitArrays], profile: AffectProfile) -> dict[str, Any]:
    labels = np.concatenate([np.asarray(s.labels) for s in splits.values()])
    out: dict[str, Any] = {"shape": list(labels.shape[1:]), "min": float(labels.min()), "max": float(labels.max())}
    if profile.target.kind == "regression":
        flat = labels.reshape(-1)
        out.update(negative=int((flat < 0).sum()), zero=int((flat == 0).sum()), positive=int((flat > 0).sum()),
                   mean=round(float(flat.mean()), 4))
    elif profile.target.kind == "multilabel":
        names = profile.target.labels or tuple(map(str, range(labels.shape[1])))
        out["positives"] = {name: int(labels[:, k].sum()) for k, name in enumerate(names)}
    else:
        values, counts = np.unique(labels, return_counts=True)
        names = profile.target.labels
        out["classes"] = {(names[int(v)] if names else str(int(v))): int(c)
                          for v, c in zip(values, counts, strict=True)}
    return out


def _command(profile: AffectProfile, folder: Path) -> str:
    root = folder.parent if folder.name in (profile.name, profile.name.upper()) else None
    where = f"--data-dir {root}" if root else f"--dataset-option {profile.name}.data_dir={folder}"
    return f"bench run --datasets {profile.name} {where}"


def _describe(found: Found, format_name: str, profile: AffectProfile, folder: Path) -> dict[str, Any]:
    fmt = FORMATS[format_name]
    splits, report = fmt.read(found, profile, option_defaults(profile))
    modalities = list(next(iter(splits.values())).modalities)
    return {
        "format": fmt.name, "format_title": fmt.title,
        "files": {role: str(path) for role, path in found.files.items()}, **dict(found.facts),
        "splits": {name: len(split) for name, split in splits.items()},
        "modalities": {m: _modality_summary(splits, m) for m in modalities},
        "labels": _label_summary(splits, profile),
        "conversion_report": report,
        "command": _command(profile, folder),
    }


@contextmanager
def _quiet_readers() -> Iterator[None]:
    """The readers log their warnings; here they are part of the answer, so not printed twice."""
    logger = logging.getLogger("fusebench.data")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def inspect(path: str | Path) -> dict[str, Any]:
    with _quiet_readers():
        return _inspect(path)


def _inspect(path: str | Path) -> dict[str, Any]:
    """{'recognised': [finding, ...], 'rejected': [...], 'layouts': [...]} for ``path``.

    A finding describes one (format, files) match and lists every dataset it serves; a
    format whose files are there but do not read as that dataset is listed under
    ``rejected`` with the reason (its one-paragraph data error)."""
    path = Path(path).expanduser().resolve()
    folders = [path] if path.is_dir() else [path.parent]
    if path.is_dir() and (path / "Processed").is_dir():
        folders.append(path / "Processed")  # MMSA's layout
    found_sets: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    rejected: list[dict[str, str]] = []
    for folder in folders:
        for profile in PROFILES:
            for name in profile.formats:
                try:
                    found = FORMATS[name].find(folder, profile, {"aligned": "auto"})
                except DataError as exc:
                    rejected.append({"format": name, "dataset": profile.name, "reason": str(exc)})
                    continue
                if found is None or (path.is_file() and path not in {p.resolve() for p in found.files.values()}):
                    continue
                key = (name, tuple(sorted(str(p) for p in found.files.values())))
                entry = found_sets.get(key)
                try:
                    if entry is None:
                        entry = found_sets[key] = {**_describe(found, name, profile, folder), "datasets": []}
                    else:
                        FORMATS[name].read(found, profile, option_defaults(profile))
                except DataError as exc:
                    rejected.append({"format": name, "dataset": profile.name, "reason": str(exc)})
                    continue
                entry["datasets"].append(profile.name)
    serves: dict[str, list[str]] = {}
    for p in PROFILES:
        for n in p.formats:
            serves.setdefault(f"{FORMATS[n].title}: {FORMATS[n].accepted(p)}", []).append(p.name)
    layouts = [f"{layout} (for {', '.join(names)})" for layout, names in sorted(serves.items())]
    return {"path": str(path), "recognised": list(found_sets.values()), "rejected": rejected, "layouts": layouts}
