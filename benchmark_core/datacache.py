"""Converted datasets cached on disk as Hugging Face ``datasets``, keyed by content.

Converting a research pickle or a set of ``.csd`` files takes seconds to minutes; the
result is saved once with ``DatasetDict.save_to_disk`` and memory-mapped on later runs.
The cache key is a SHA-256 over the *contents* of every source file plus the conversion
options and reader version — never over paths or the ``datasets`` fingerprint, which
``from_generator`` computes from the generator and its arguments, not from the files they
read, and so returns stale data after a source file is rewritten (Hugging Face ``datasets``,
"The cache" in its documentation; the same trap is reported in huggingface/datasets#7448).  Re-hashing multi-GB files on every run is avoided
by remembering each file's digest next to its (size, mtime, ctime, inode) *and* a sampled
content check (16 blocks of 64 KiB spread over the file): an in-place edit that restores
size, mtime and inode still changes the ctime, and a copy whose timestamps were carried
over still fails the sample, so a memoised digest is trusted only when both agree.

A cache entry records the size and sampled digest of every file it saved; an entry whose
files no longer match (a truncated or overwritten Arrow file, a half-deleted folder) or that
fails to open is rebuilt from the sources, and if it cannot be removed the error names the
folder to delete.

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

from .errors import DataError

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


SAMPLE_BLOCK = 1 << 16
SAMPLE_BLOCKS = 16


def content_sample(path: Path) -> str:
    """SHA-256 of the size plus 16 blocks of 64 KiB spread evenly over the file (the first
    and last included): at most 1 MiB read whatever the file size, so it can run on every
    load, and it changes with any edit that touches a sampled block."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        if size <= SAMPLE_BLOCK * SAMPLE_BLOCKS:
            digest.update(fh.read())
        else:
            last = size - SAMPLE_BLOCK
            for k in range(SAMPLE_BLOCKS):
                fh.seek(last * k // (SAMPLE_BLOCKS - 1))
                digest.update(fh.read(SAMPLE_BLOCK))
    return digest.hexdigest()


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def file_digest(path: str | os.PathLike[str], root: Path | None = None) -> str:
    """SHA-256 of a file's content, memoised under ``root``; the memo is used only while the
    file's (size, mtime, ctime, inode) and its sampled content both still match."""
    path = Path(path).resolve()
    stamp = _stamp(path)
    memo_file = (root or cache_root()) / _DIGESTS
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(str(path))
    sample = content_sample(path)
    if entry and entry.get("stamp") == stamp and entry.get("sample") == sample:
        return entry["sha256"]
    value = _hash_file(path)
    memo[str(path)] = {"stamp": stamp, "sample": sample, "sha256": value}
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


def _manifest(folder: Path) -> dict[str, list]:
    """Every saved file (but the metadata) -> [size, sampled digest]: a cheap fingerprint of
    the entry itself, checked on every hit."""
    return {str(p.relative_to(folder)): [p.stat().st_size, content_sample(p)]
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != META}


def _open_entry(target: Path) -> tuple[datasets.DatasetDict, dict[str, Any]] | str:
    """The saved DatasetDict and its report, or why the entry cannot be trusted."""
    try:
        meta = json.loads((target / META).read_text())
    except (OSError, ValueError) as exc:
        return f"its {META} is unreadable ({type(exc).__name__})"
    expected = meta.get("manifest")
    if expected is None:
        return "it was written by an older FuseBench without a file manifest"
    found = _manifest(target)
    if found != expected:
        changed = sorted(set(found) ^ set(expected) | {k for k in found if k in expected and found[k] != expected[k]})
        return f"its files changed since they were written ({', '.join(changed[:5])})"
    try:
        return datasets.load_from_disk(str(target)), meta.get("report", {})
    except Exception as exc:  # noqa: BLE001 - any failure to open means: rebuild
        return f"it cannot be opened ({type(exc).__name__}: {exc})"


def _discard(target: Path, reason: str) -> None:
    """Move a bad entry aside and delete it; if that is impossible, say which folder to delete."""
    log.warning("converted-data cache entry %s is discarded and rebuilt: %s", target, reason)
    aside = target.with_name(f".{target.name}.discarded.{os.getpid()}")
    try:
        os.replace(target, aside)
    except FileNotFoundError:  # another process discarded it first
        return
    except OSError as exc:
        raise DataError(
            f"The converted-data cache entry {target} is unusable ({reason}) and cannot be removed "
            f"({exc}). Delete that folder (rm -r '{target}') and run the command again; it is rebuilt "
            "from the source files."
        ) from None
    shutil.rmtree(aside, ignore_errors=True)


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
    if target.exists():
        opened = _open_entry(target)
        if not isinstance(opened, str):
            log.info("%s: reusing converted data %s", name, target)
            return CachedDataset(opened[0], fp, target, True, opened[1])
        _discard(target, opened)
    data, report = build()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{fp[:16]}."))
    try:
        with _quiet_progress():
            data.save_to_disk(str(tmp))
        meta = {"dataset": name, "fingerprint": fp, "key": dict(key),
                "files": [str(Path(f).resolve()) for f in files], "report": dict(report),
                "manifest": _manifest(tmp)}
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
