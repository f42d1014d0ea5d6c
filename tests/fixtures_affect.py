"""Builders for tiny files in the exact on-disk formats researchers hold (docs/datasets.md).

Each writer returns what a correct reader must recover (real lengths, labels, counts of
non-finite values), so tests compare against ground truth rather than against the reader.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

SPLITS = {"train": "train", "valid": "validation", "test": "test"}
DIMS = {"text": 6, "audio": 3, "vision": 4}


@dataclass
class Expected:
    lengths: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # split -> modality -> (N,)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    first_steps: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # split -> mod -> sample 0 real steps
    ids: dict[str, list[str]] = field(default_factory=dict)
    nonfinite: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMS, 0))  # kept (real steps)
    dropped_nonfinite: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMS, 0))  # in padding
    junk_samples: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMS, 0))  # non-zero beyond lengths


def real_region(lengths: np.ndarray, steps: int, side: str) -> np.ndarray:
    """(N, T) True on the real steps of ``side``-padded sequences with these lengths."""
    t = np.arange(steps)[None, :]
    lengths = np.asarray(lengths)[:, None]
    return t >= steps - lengths if side == "left" else t < lengths


def _real_steps(rng: np.random.Generator, length: int, dim: int) -> np.ndarray:
    return rng.normal(size=(length, dim)).astype(np.float32) + 0.5  # never an all-zero step


def _sentiment(rng: np.random.Generator, n: int) -> np.ndarray:
    labels = np.round(rng.uniform(-3, 3, size=n) * 2) / 2  # includes exact halves
    labels[::4] = 0.0  # exact zeros, as in MOSI
    labels[1::4] = np.abs(labels[1::4]) + 0.5  # both signs present in every split
    return labels.astype(np.float32)


def write_mult(folder: Path, stem: str = "mosi", *, aligned: bool = True, n: tuple[int, int, int] = (12, 6, 6),
               seed: int = 0, iemocap: bool = False, sides: Mapping[str, str] | None = None) -> Expected:
    """MulT pickle: zero padding (left, as MulT's files, unless ``sides`` says otherwise per
    modality), -inf in audio, 3-D labels, per-sample bytes ids."""
    sides = {**dict.fromkeys(DIMS, "left"), **(sides or {})}
    rng = np.random.default_rng(seed)
    steps = {"text": 8, "audio": 8, "vision": 8} if aligned else {"text": 8, "audio": 12, "vision": 10}
    data, expected = {}, Expected()
    for (key, split), size in zip(SPLITS.items(), n, strict=True):
        fields, lengths, first = {}, {}, {}
        shared = rng.integers(1, steps["text"] + 1, size=size)
        shared[0] = steps["text"]  # one unpadded sample
        for m, dim in DIMS.items():
            t = steps[m]
            lens = shared if aligned else rng.integers(1, t + 1, size=size)
            array = np.zeros((size, t, dim), dtype=np.float32)
            real = real_region(lens, t, sides[m])
            for i, length in enumerate(lens):
                array[i, real[i]] = _real_steps(rng, length, dim)
            if m == "audio":  # COVAREP -inf, on the real step next to the padding
                for i, column in ((0, 0), (size - 1, 1)):
                    array[i, t - 1 if sides[m] == "left" else lens[i] - 1, column] = -np.inf
                expected.nonfinite[m] += 2
            fields[m] = array
            lengths[m] = np.asarray(lens)
            first[m] = array[0, real[0]]
        if iemocap:
            hot = rng.integers(0, 2, size=(size, 4))
            fields["labels"] = np.eye(2, dtype=np.float32)[hot]  # (N, 4, 2)
            expected.labels[split] = hot
        else:
            labels = _sentiment(rng, size)
            fields["labels"] = labels.reshape(size, 1, 1)
            expected.labels[split] = labels
        fields["id"] = np.array([[f"vid{i % 3}".encode(), str(i).encode(), b"0"] for i in range(size)])
        expected.ids[split] = [f"vid{i % 3}|{i}|0" for i in range(size)]
        data[key] = fields
        expected.lengths[split], expected.first_steps[split] = lengths, first
    name = f"{stem}_data.pkl" if aligned else f"{stem}_data_noalign.pkl"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    return expected


def write_mmsa(folder: Path, *, aligned: bool = False, n: tuple[int, int, int] = (10, 5, 5), seed: int = 1,
               sides: Mapping[str, str] | None = None, junk_every: int = 1, nonfinite: bool = False) -> Expected:
    """MMSA pickle: *_lengths, a BERT mask for text, padding at the back unless ``sides`` says
    otherwise per modality (CMU-derived arrays are padded at the front).  Audio and vision
    keep non-zero garbage beyond their lengths in every ``junk_every``-th sample (0: none);
    text is zero beyond its mask.  ``nonfinite``: -inf on two real audio steps and on one
    garbage step (which must be dropped and reported)."""
    sides = {**dict.fromkeys(DIMS, "right"), **(sides or {})}
    rng = np.random.default_rng(seed)
    steps = {"text": 7, "audio": 9, "vision": 11} if not aligned else dict.fromkeys(DIMS, 7)
    data, expected = {}, Expected()
    for (key, split), size in zip(SPLITS.items(), n, strict=True):
        fields, lengths, first = {}, {}, {}
        for m, dim in DIMS.items():
            t = steps[m]
            lens = rng.integers(1, t + 1, size=size)
            lens[0] = max(1, t - 2)
            array = rng.normal(size=(size, t, dim)).astype(np.float64) * 100  # garbage everywhere
            real = real_region(lens, t, sides[m])
            junk = np.zeros(size, bool) if m == "text" or not junk_every else np.arange(size) % junk_every == 0
            junk &= lens < t
            array[~real & ~junk[:, None]] = 0.0  # padding is zero except in the junk samples
            expected.junk_samples[m] += int(junk.sum())
            if nonfinite and m == "audio":
                for i, column in ((0, 0), (size - 1, 1)):
                    array[i, t - 1 if sides[m] == "left" else lens[i] - 1, column] = -np.inf
                expected.nonfinite[m] += 2
                if junk.any():
                    i = int(np.flatnonzero(junk)[0])
                    array[i, 0 if sides[m] == "left" else t - 1, 2] = -np.inf
                    expected.dropped_nonfinite[m] += 1
            fields[m] = array
            lengths[m] = lens
            first[m] = array[0, real[0]].astype(np.float32)
        mask = real_region(lengths["text"], steps["text"], sides["text"]).astype(np.float64)
        fields["text_bert"] = np.stack([mask * 101, mask, np.zeros_like(mask)], axis=1)
        fields["audio_lengths"], fields["vision_lengths"] = list(lengths["audio"]), list(lengths["vision"])
        labels = _sentiment(rng, size)
        fields["regression_labels"] = labels.astype(np.float64)
        fields["id"] = np.array([f"vid{i}$_${i + 1}" for i in range(size)], dtype=object)
        fields["raw_text"] = np.array([f"words {i}" for i in range(size)], dtype=object)
        data[key] = fields
        expected.lengths[split], expected.labels[split] = lengths, labels
        expected.first_steps[split], expected.ids[split] = first, [f"vid{i}$_${i + 1}" for i in range(size)]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ("aligned_50.pkl" if aligned else "unaligned_50.pkl"), "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return expected


def write_csd(path: Path, root: str, entries: dict[str, tuple[np.ndarray, np.ndarray]],
              metadata: dict[str, object] | None = None) -> Path:
    """A computational sequence in the SDK layout: <root>/data/<vid>/{features,intervals},
    <root>/metadata/<key> as one JSON-encoded variable-length string each, gzip."""
    metadata = {"root name": root, "computational sequence description": "test sequence",
                "dimension names": None, "computational sequence version": "1.0",
                "alignment compatible": True, "dataset name": "CMU-MOSI", "dataset version": "1.0",
                "creator": "FuseBench tests", "contact": "none", "featureset bib citation": "",
                "dataset bib citation": "", "uuid": "00000000-0000-0000-0000-000000000000",
                "md5": None, **(metadata or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        group = fh.create_group(root)
        data = group.create_group("data")
        for vid, (features, intervals) in entries.items():
            entry = data.create_group(vid)
            entry.create_dataset("features", data=features, compression="gzip", compression_opts=9)
            entry.create_dataset("intervals", data=intervals, compression="gzip", compression_opts=9)
        meta = group.create_group("metadata")
        for key, value in metadata.items():
            meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str), data=[json.dumps(value)])
    return path


def feature_stream(rng: np.random.Generator, end: float, dim: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows every ``step`` seconds covering [0, end + step)."""
    starts = np.arange(0.0, end + step, step)
    intervals = np.stack([starts, starts + step], axis=1)
    return rng.normal(size=(len(starts), dim)).astype(np.float32), intervals


def write_feature_csds(folder: Path, labels: dict[str, tuple[np.ndarray, np.ndarray]], seed: int = 0,
                       prefix: str = "CMU_MOSI") -> dict[str, Path]:
    """Numeric text/audio/vision csds covering every labelled video, named as the SDK names them."""
    rng = np.random.default_rng(seed)
    spec = {"text": (f"{prefix}_TimestampedWordVectors", 5, 0.4),
            "audio": (f"{prefix}_COVAREP", 3, 0.1),
            "vision": (f"{prefix}_Visual_Facet_41", 4, 0.2)}
    out = {}
    for m, (name, dim, step) in spec.items():
        entries = {vid: feature_stream(rng, float(iv.max()), dim, step) for vid, (_, iv) in labels.items()}
        out[m] = write_csd(folder / f"{name}.csd", name, entries)
    return out


def label_entries(videos: int = 6, segments: int = 4, seed: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Label csd entries: contiguous 2-second segments, sentiment in [-3, 3] with zeros."""
    rng = np.random.default_rng(seed)
    out = {}
    for v in range(videos):
        starts = np.arange(segments) * 2.0 + 1.0
        intervals = np.stack([starts, starts + 2.0], axis=1).astype(np.float32)
        values = np.round(rng.uniform(-3, 3, size=(segments, 1)), 1).astype(np.float32)
        values[0] = 0.0
        out[f"video{v:02d}"] = (values, intervals)
    return out


def redirect_features(csd: Path, video: str, how: str, elsewhere: Path) -> np.ndarray:
    """Make ``<root>/data/<video>/features`` of ``csd`` take its values from outside the
    dataset, as a hostile file would: ``external`` raw storage in ``elsewhere`` (any local
    file), an ``external_link`` or a ``virtual`` dataset into the HDF5 file ``elsewhere``, or a
    ``soft_link`` to another place in the same file.  Returns the values a reader that
    follows the redirection gets (a marker no real feature has)."""
    with h5py.File(csd, "r+") as fh:
        entry = fh[next(iter(fh))]["data"][video]
        shape, dtype = entry["features"].shape, entry["features"].dtype
        secret = np.full(shape, 1234.5, dtype=dtype)
        del entry["features"]
        if how == "external":
            secret.tofile(elsewhere)
            entry.create_dataset("features", shape, dtype, external=[(str(elsewhere), 0, secret.nbytes)])
        elif how == "soft_link":
            fh.create_dataset("elsewhere", data=secret)
            entry["features"] = h5py.SoftLink("/elsewhere")
        else:
            with h5py.File(elsewhere, "w") as other:
                other.create_dataset("secret", data=secret)
            if how == "external_link":
                entry["features"] = h5py.ExternalLink(str(elsewhere), "/secret")
            else:
                layout = h5py.VirtualLayout(shape, dtype)
                layout[:] = h5py.VirtualSource(str(elsewhere), "secret", shape)
                entry.create_virtual_dataset("features", layout)
    return secret
