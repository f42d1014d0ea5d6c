"""CMU-MultimodalSDK computational sequences (``.csd``, HDF5) aligned to label segments.

Layout (SDK ``file_ops``): one top-level group named after the sequence's root name (the
first key, not the file name), ``<root>/data/<video>/{features (T, D), intervals (T, 2)}``
and ``<root>/metadata/<key>`` (JSON strings in newer files, plain strings in older ones).

Alignment follows the SDK's ``align`` to the labels: for every label interval of a video,
each feature sequence contributes the rows whose intervals overlap it (variable length,
raw rows, no averaging).  The SDK skips zero-length label intervals; MOSI has one, and the
MulT/MMSA files keep it (their 1284/229/686 sizes count it), so here a zero-length segment
takes the rows that contain its instant.  A segment missing from any modality is dropped
and counted (the SDK's ``hard_unify``); ids are the SDK's ``video[i]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import h5py
import numpy as np

from fusebench import DataError

from .convert import SPLIT_ALIASES, Converted, SplitArrays
from .profiles import MODALITIES, AffectProfile, Folds

EPS = 1e-5
FIELDS = ("features", "intervals")  # the datasets of every <root>/data/<video> entry
# File-name fragments (lower case) that identify a role, best first.  Words/phones csds hold
# bytes and match none of the feature roles on purpose.
ROLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "labels": ("labelssentiment", "opinion_labels", "labels", "label"),
    "text": ("wordvectors", "word_vectors", "glove", "bert"),
    "audio": ("covarep", "opensmile", "acoustic", "audio"),
    "vision": ("facet_41", "facet41", "facet_42", "facet42", "facet", "openface_2", "openface2",
               "openface", "visual", "vision"),
}


@dataclass
class Csd:
    """An open computational sequence."""

    path: Path
    root: str
    group: h5py.Group

    @property
    def videos(self) -> list[str]:
        return sorted(self.group["data"].keys())

    def metadata(self) -> dict[str, Any]:
        out = {}
        for key, value in self.group.get("metadata", {}).items():
            raw = value[0] if value.shape else value[()]
            raw = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            try:
                out[key] = json.loads(raw)
            except ValueError:
                out[key] = raw
        return out

    def entry(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        where = f"{self.path} entry {self.root}/data/{video}"
        node = self.group["data"][video]  # layout checked by open_csd
        features, intervals = node["features"][()], node["intervals"][()]
        if features.ndim == 1:
            features = features[:, None]
        if intervals.ndim != 2 or intervals.shape[1] != 2 or len(intervals) != len(features):
            raise DataError(f"{where}: features {features.shape} and intervals {intervals.shape} "
                            "must have the same first dimension and intervals must be (T, 2) "
                            "start/end seconds (SDK integrity check).")
        return features, intervals.astype(np.float64)


@contextmanager
def open_csd(path: Path) -> Iterator[Csd]:
    """Open a .csd after checking that it reads nothing from outside itself and has the SDK
    layout, so a bad file fails here, naming the file and the place inside it."""
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path} is not a readable HDF5 .csd file ({exc}); download it again.") from exc
    with fh:
        _refuse_outside_storage(fh, path)
        root = _check_layout(fh, path)
        yield Csd(path, root, fh[root])


def _refuse_outside_storage(fh: h5py.File, path: Path) -> None:
    """Refuse soft/external links, external raw storage and virtual datasets anywhere in the
    file.  The SDK writes none of them, and through them a .csd of a few KB reads any local
    file (or another place in itself) into the features - and into the conversion cache."""
    seen: set[object] = set()  # object ids: hard links may form cycles
    groups: list[h5py.Group] = [fh]
    while groups:
        group = groups.pop()
        for name in group:
            where = f"{group.name.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                _outside(path, where, f"is an external link to {link.path!r} in {link.filename}")
            if not isinstance(link, h5py.HardLink):
                _outside(path, where, f"is a {type(link).__name__} to {getattr(link, 'path', '?')!r}")
            node = group[name]
            if node.id in seen:
                continue
            seen.add(node.id)
            if isinstance(node, h5py.Group):
                groups.append(node)
            elif isinstance(node, h5py.Dataset) and node.external:
                _outside(path, where, f"keeps its values in the external file {node.external[0][0]}")
            elif isinstance(node, h5py.Dataset) and node.is_virtual:
                sources = sorted({source.file_name for source in node.virtual_sources()})
                _outside(path, where, f"is a virtual dataset reading {', '.join(sources)}")


def _outside(path: Path, where: str, what: str) -> NoReturn:
    raise DataError(
        f"{path}: {where!r} {what}. A computational sequence keeps every dataset inside the .csd "
        "(the SDK writes no links, external storage or virtual datasets), and reading this one "
        "would copy bytes from elsewhere into the features and the conversion cache, so "
        "FuseBench refuses the file before reading it. Re-download it or re-create it with the "
        "CMU-MultimodalSDK; if you did not create it, delete it."
    )


def _check_layout(fh: h5py.File, path: Path) -> str:
    """The root name, once ``<root>/data/<video>/{features,intervals}`` are known to exist."""
    roots = list(fh.keys())
    if not roots or not isinstance(fh[roots[0]], h5py.Group) or "data" not in fh[roots[0]]:
        raise DataError(f"{path}: no '<root name>/data' group (top-level keys: {roots}); a "
                        "computational sequence stores <root>/data/<video>/{features,intervals}.")
    data = fh[roots[0]]["data"]
    if not isinstance(data, h5py.Group):
        raise DataError(f"{path}: '{roots[0]}/data' is a dataset of shape {data.shape}, not a group; a "
                        "computational sequence stores one group per video, <root>/data/<video>/"
                        "{features,intervals}. Re-download the file or re-create it with the SDK.")
    for video, node in data.items():
        missing = [field for field in FIELDS
                   if not (isinstance(node, h5py.Group) and isinstance(node.get(field), h5py.Dataset))]
        if missing:
            raise DataError(f"{path} entry {roots[0]}/data/{video} has no {' or '.join(map(repr, missing))} "
                            "dataset; a .csd entry is a group holding 'features' (T, D) and 'intervals' "
                            "(T, 2). Re-download or re-deploy the file.")
    return roots[0]


def discover(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.csd"))


def pick(files: Sequence[Path], role: str, profile: AffectProfile, options: Mapping[str, Any],
         directory: Path, exclude: Sequence[Path] = ()) -> Path | None:
    """The file for ``role`` (labels/text/audio/vision): the option ``csd_<role>`` or a name match."""
    chosen = options.get(f"csd_{role}")
    if chosen:
        path = Path(chosen).expanduser()
        path = path if path.is_absolute() else directory / path
        if not path.is_file():
            raise DataError(f"--dataset-option {profile.name}.csd_{role}={chosen}: {path} does not exist.")
        return path
    candidates = [f for f in files if f not in exclude]
    for pattern in ROLE_PATTERNS[role]:
        matches = [f for f in candidates if pattern in f.stem.lower()]
        if len(matches) > 1:
            raise DataError(
                f"{directory}: several .csd files could be the {role} sequence "
                f"({', '.join(f.name for f in matches)}); choose one with --dataset-option "
                f"{profile.name}.csd_{role}=FILE."
            )
        if matches:
            return matches[0]
    return None


def resolve_folds(profile: AffectProfile, option: Any, videos: Sequence[str]) -> dict[str, str]:
    """video id -> our split name, from 'standard', a mapping or a JSON file of id lists."""
    if option in (None, "standard"):
        if profile.std_folds is None:
            raise DataError(f"{profile.title} has no standard folds for .csd files; pass "
                            f"--dataset-option {profile.name}.folds=/path/folds.json.")
        folds: Folds = profile.std_folds(videos)
    elif isinstance(option, Mapping):
        folds = option
    else:
        path = Path(str(option)).expanduser()
        try:
            folds = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"--dataset-option {profile.name}.folds={option}: cannot read a JSON "
                            f"object of video-id lists from {path} ({exc}).") from exc
    out = {}
    for key, ids in folds.items():
        if key not in SPLIT_ALIASES:
            raise DataError(f"folds: unknown split {key!r}; use train, valid (or dev/validation) and test.")
        out.update(dict.fromkeys(ids, SPLIT_ALIASES[key]))
    return out


def _check_numeric(csd: Csd, role: str, profile: AffectProfile) -> None:
    video = csd.videos[0] if csd.videos else None
    dtype = csd.group["data"][video]["features"].dtype if video else None
    if dtype is None or dtype.kind not in "fiub":
        raise DataError(
            f"{csd.path}: features have dtype {dtype} (e.g. words or phones as bytes), so this "
            f".csd cannot be the {role} modality, which needs numeric (T, D) features. Use a "
            "numeric sequence (text: glove_vectors / TimestampedWordVectors, audio: COVAREP, "
            f"vision: FACET or OpenFace) via --dataset-option {profile.name}.csd_{role}=FILE."
        )


def select_files(directory: Path, profile: AffectProfile, options: Mapping[str, Any]) -> dict[str, Path]:
    """{'labels': path, 'text': ..., 'audio': ..., 'vision': ...} or a DataError saying what is missing."""
    files = discover(directory)
    label_path = pick(files, "labels", profile, options, directory)
    if label_path is None:
        raise DataError(f"{directory}: no labels .csd (a file name containing 'Labels'); pass "
                        f"--dataset-option {profile.name}.csd_labels=FILE.")
    chosen = {"labels": label_path}
    for m in MODALITIES:
        path = pick(files, m, profile, options, directory, exclude=[label_path])
        if path is None:
            raise DataError(
                f"{directory}: no feature .csd for the {m} modality among "
                f"{[f.name for f in files]}. Accepted names contain one of "
                f"{', '.join(ROLE_PATTERNS[m])}; or name the file with --dataset-option "
                f"{profile.name}.csd_{m}=FILE."
            )
        chosen[m] = path
    return chosen


def read(files: Mapping[str, Path], profile: AffectProfile, options: Mapping[str, Any]) -> Converted:
    column = int(options.get("label_column") or 0)
    with ExitStack() as stack:
        labels = stack.enter_context(open_csd(files["labels"]))
        feats = {m: stack.enter_context(open_csd(files[m])) for m in MODALITIES}
        for m, csd in feats.items():
            _check_numeric(csd, m, profile)
        folds = resolve_folds(profile, options.get("folds"), labels.videos)
        splits, report = _align(labels, feats, folds, column, profile)
        report.update({"format": "csd", "files": {role: p.name for role, p in files.items()},
                       "labels_dataset": labels.metadata().get("dataset name")})
        if profile.name == "mosi":
            report["release"] = mosi_release(sum(len(labels.entry(v)[0]) for v in labels.videos),
                                             sum(report["sizes"].values()))
    return splits, report


# CMU-MOSI segment counts that identify where a set of .csd files comes from.
MOSI_RELEASES = {
    2199: "the complete CMU-MOSI opinion segments (the original release, as in the MulT/MMSA files: "
          "1284/229/686 with the standard folds)",
    2183: "the CMU-MultimodalSDK high-level features: 16 of the 2199 segments have no frames in a "
          "modality and are dropped in alignment (the SDK's hard_unify), so results are not directly "
          "comparable with papers on the 2199-segment files",
    2195: "a CMU-MultimodalSDK alignment that keeps 2195 of the 2199 segments (4 lose a modality)",
}


def mosi_release(labelled: int, kept: int) -> str:
    """Which CMU-MOSI file set this is, from how many labelled segments survive alignment."""
    known = MOSI_RELEASES.get(kept)
    if known:
        return f"{kept} of {labelled} labelled segments: {known}"
    return (f"{kept} of {labelled} labelled segments: not a known CMU-MOSI release (2199 complete, 2183 "
            "SDK high-level features); check that the feature .csd files cover every video")


def _align(labels: Csd, feats: Mapping[str, Csd], fold_of: Mapping[str, str], column: int,
           profile: AffectProfile) -> Converted:
    rows: dict[str, dict[str, list]] = {s: {"ids": [], "labels": [], **{m: [] for m in feats}}
                                        for s in ("train", "validation", "test")}
    dropped = {"not_in_folds": 0, **{f"no_{m}": 0 for m in feats}}
    instants = 0
    available = {m: set(csd.videos) for m, csd in feats.items()}
    for video in labels.videos:
        values, intervals = labels.entry(video)
        if values.dtype.kind not in "fiub" or column >= values.shape[1]:
            raise DataError(f"{labels.path}: labels of {video} have dtype {values.dtype} and shape "
                            f"{values.shape}; label_column={column} must index a numeric column.")
        split = fold_of.get(video)
        if split is None:
            dropped["not_in_folds"] += len(values)
            continue
        lacking = [m for m in feats if video not in available[m]]
        if lacking:
            dropped[f"no_{lacking[0]}"] += len(values)
            continue
        streams = {m: csd.entry(video) for m, csd in feats.items()}
        for i, (start, end) in enumerate(intervals):
            point = end - start <= EPS
            instants += int(point)
            steps = {}
            for m, (f, iv) in streams.items():
                overlap = _covering(iv, start) if point else (iv[:, 0] < end - EPS) & (iv[:, 1] > start + EPS)
                if not overlap.any():
                    dropped[f"no_{m}"] += 1
                    break
                steps[m] = np.asarray(f[overlap], dtype=np.float32)
            else:
                bucket = rows[split]
                bucket["ids"].append(f"{video}[{i}]")
                bucket["labels"].append(values[i, column])
                for m, s in steps.items():
                    bucket[m].append(s)
    for split, bucket in rows.items():
        if not bucket["ids"]:
            raise DataError(f"{labels.path}: no aligned segments fall in the {split} fold "
                            f"(dropped: {dropped}); check the folds and that the feature .csd "
                            "files cover the labelled videos.")
    splits = {
        split: SplitArrays({m: b[m] for m in feats},
                           profile.labels(np.asarray(b["labels"], dtype=np.float32),
                                          f"{labels.path} split {split!r} field '{labels.root}/data/*/features' "
                                          f"column {column}", b["ids"]),
                           b["ids"])
        for split, b in rows.items()
    }
    return splits, {"dropped_segments": dropped, "zero_length_segments": instants,
                    "sizes": {s: len(a) for s, a in splits.items()}}


def _covering(intervals: np.ndarray, instant: float) -> np.ndarray:
    """Rows whose interval contains ``instant`` (for zero-length label segments)."""
    return (intervals[:, 0] <= instant + EPS) & (intervals[:, 1] >= instant - EPS)
