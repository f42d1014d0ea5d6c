"""Converted datasets cached on disk as Hugging Face ``datasets``, keyed by content.

Converting a research pickle or a set of ``.csd`` files takes seconds to minutes; the
result is saved once with ``DatasetDict.save_to_disk`` and memory-mapped on later runs.
The cache key is a SHA-256 over the *contents* of every source file plus the conversion
options and reader version — never over paths or the ``datasets`` fingerprint, which
``from_generator`` computes from its arguments and so returns stale data after a source
file is rewritten (harness-anchors §6).  Re-hashing multi-GB files on every run is avoided
by remembering each file's digest next to its (size, mtime, inode).

Location: ``$FUSEBENCH_CACHE_DIR`` or ``~/.fusebench/cache``; delete it to reclaim space.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

log = logging.getLogger("fusebench.data")

META = "fusebench.json"
_DIGESTS = "file-digests.json"


def cache_root() -> Path:
    return Path(os.environ.get("FUSEBENCH_CACHE_DIR") or Path.home() / ".fusebench" / "cache")


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_digest(path: str | os.PathLike[str], root: Path | None = None) -> str:
    """SHA-256 of a file's content, memoised by (size, mtime_ns, inode) under ``root``."""
    path = Path(path).resolve()
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    memo_file = (root or cache_root()) / _DIGESTS
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(str(path))
    if entry and entry.get("stamp") == stamp:
        return entry["sha256"]
    value = _hash_file(path)
    memo[str(path)] = {"stamp": stamp, "sha256": value}
    _atomic_write(memo_file, json.dumps(memo, indent=0, sort_keys=True))
    return value


def _atomic_write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, target)


def fingerprint(key: Mapping[str, Any], files: Sequence[str | os.PathLike[str]], root: Path | None = None) -> str:
    """Content fingerprint of a conversion: its options plus every source file's digest."""
    payload = {"key": dict(key), "files": sorted(file_digest(f, root) for f in files)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """Saving is an implementation detail; its progress bars would clutter ``bench run``."""
    was_enabled = datasets.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


@dataclass
class CachedDataset:
    """A loaded DatasetDict plus what the conversion reported when it was built."""

    data: datasets.DatasetDict
    fingerprint: str
    path: Path
    reused: bool
    report: dict[str, Any] = field(default_factory=dict)


def cached(
    name: str,
    key: Mapping[str, Any],
    files: Sequence[str | os.PathLike[str]],
    build: Callable[[], tuple[datasets.DatasetDict, Mapping[str, Any]]],
    root: Path | None = None,
) -> CachedDataset:
    """Return the cached conversion for (``key``, contents of ``files``) or build and save it.

    ``build()`` returns the DatasetDict and a JSON-able report (e.g. rows dropped); the
    report is stored with the data so a cache hit logs the same facts as the first build.
    """
    root = root or cache_root()
    fp = fingerprint(key, files, root)
    target = root / "datasets" / name / fp[:16]
    meta_file = target / META
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        log.info("%s: reusing converted data %s", name, target)
        return CachedDataset(datasets.load_from_disk(str(target)), fp, target, True, meta.get("report", {}))
    data, report = build()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{fp[:16]}."))
    try:
        with _quiet_progress():
            data.save_to_disk(str(tmp))
        meta = {"dataset": name, "fingerprint": fp, "key": dict(key),
                "files": [str(Path(f).resolve()) for f in files], "report": dict(report)}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same conversion first
            if not meta_file.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: converted data saved to %s", name, target)
    return CachedDataset(datasets.load_from_disk(str(target)), fp, target, False, dict(report))
