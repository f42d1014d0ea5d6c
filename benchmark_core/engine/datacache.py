"""Converted datasets cached on disk, keyed by content: the Hugging Face Arrow form a dataset
plugin returns, and the dense tensors the engine builds from it.

Converting a research pickle or a set of ``.csd`` files takes seconds to minutes; the
result is saved once and memory-mapped on later runs.
The cache key is a SHA-256 over the *contents* of every source file plus the conversion
options and reader version — never over paths or the ``datasets`` fingerprint, which
``from_generator`` computes from the generator and its arguments, not from the files they
read, and so returns stale data after a source file is rewritten (Hugging Face ``datasets``,
"The cache" in its documentation; the same trap is reported in huggingface/datasets#7448).
Re-hashing multi-GB files on every run is avoided by remembering each file's digest next to
its (size, mtime, ctime, inode) *and* a sampled content check (16 blocks of 64 KiB spread
over the file): an in-place edit that restores size, mtime and inode still changes the
ctime, and a copy whose timestamps were carried over still fails the sample, so a memoised
digest is trusted only when both agree.

Layout (:data:`FORMAT` 2).  An entry ``datasets/<name>/<key>/`` holds one Arrow stream file
per split, written record batch by record batch as the converter produces rows
(:class:`SplitRows`), so a converter frees each split's source arrays once they are written
and never holds a second full copy of the data; the splits open memory-mapped, with a
``datasets`` fingerprint derived from the content key (:func:`split_fingerprint`), so the
library never serialises a table to fingerprint it.  Under ``tensors/<key>/`` the engine
keeps the dense tensors it built from the entry (one ``.npy`` file per array, written in
place through a memory map, with the data hash): a warm run opens them memory-mapped,
copy-on-write, instead of converting and hashing again (:class:`ArrayWriter`,
:func:`open_arrays`).

Every entry and tensor folder records the size and sampled digest of every file it saved; one
whose files no longer match (a truncated or overwritten file, a half-deleted folder) or that
fails to open is rebuilt from the sources, and if it cannot be removed the error names the
folder to delete.  Entries of another cache format are never read (the format is part of the
key), so an upgrade rebuilds them.

Location: ``$FUSEBENCH_CACHE_DIR`` or ``~/.fusebench/cache``; delete it to reclaim space.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import datasets
import numpy as np
import pyarrow as pa
from datasets.table import MemoryMappedTable

from benchmark_core.errors import DataError

log = logging.getLogger("fusebench.data")

FORMAT = 2  # the on-disk layout; part of every key, so entries of another layout are never read
META = "fusebench.json"
TENSORS = "tensors"
_DIGESTS = "file-digests.json"
# Rows of one Arrow record batch a converter writes: about this many bytes, so a batch of
# MOSEI's 500-step sequences is a small, fixed share of memory however large the split.
BATCH_BYTES = 16 * 2**20
_SPLIT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


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
    """Content fingerprint of a conversion: the cache format, its options and every source
    file's digest."""
    payload = {"format": FORMAT, "key": dict(key), "files": sorted(file_digest(f, root) for f in files)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()



def split_fingerprint(fp: str, split: str) -> str:
    """The ``datasets`` fingerprint of split ``split`` of the entry with content key ``fp``:
    derived from the key, so the library never hashes (and first serialises) the table."""
    return hashlib.sha256(f"{fp}/{split}".encode()).hexdigest()[:32]


@dataclass
class SplitRows:
    """One split to save: its features and its rows as Arrow tables, produced lazily (a
    generator), so the converter can release the split's source arrays once it has yielded
    them; each table is written as it comes and then dropped."""

    features: datasets.Features
    tables: Iterable[pa.Table]


def batch_rows(bytes_per_row: float) -> int:
    """Rows per record batch for rows of this size: about :data:`BATCH_BYTES` per batch."""
    return max(1, int(BATCH_BYTES // max(bytes_per_row, 1.0)))


def release_arrow_memory() -> None:
    """Hand back to the system the memory pyarrow's allocator keeps for reuse once a pass over a
    split is done (after streaming a multi-GB split it holds a few batches' worth)."""
    pa.default_memory_pool().release_unused()


def _write_split(path: Path, rows: datasets.Dataset | SplitRows) -> int:
    """Write one split as an Arrow stream file, batch by batch; returns its number of rows."""
    if isinstance(rows, datasets.Dataset):
        step = batch_rows(rows.data.nbytes / max(len(rows), 1))
        rows = SplitRows(rows.features, rows.with_format("arrow").iter(batch_size=step))
    schema = rows.features.arrow_schema
    count = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for table in rows.tables:
            if not table.schema.equals(schema):
                table = table.cast(schema)
            writer.write_table(table)
            count += table.num_rows
            del table  # before the next one is built
    release_arrow_memory()
    return count


def _open_split(folder: Path, split: str, fp: str) -> datasets.Dataset:
    return datasets.Dataset(MemoryMappedTable.from_file(str(folder / f"{split}.arrow")),
                            split=datasets.NamedSplit(split), fingerprint=split_fingerprint(fp, split))


def read_batches(entry: Path, split: str) -> Iterator[pa.RecordBatch]:
    """The record batches of one split of an entry, read with plain file reads, not through a
    memory map: a pass over a split that does not fit twice in memory keeps one batch in RAM
    (the pages of a memory map would stay in this process's resident set until it closes)."""
    with pa.OSFile(str(entry / f"{split}.arrow")) as source:
        yield from pa.ipc.open_stream(source)


@dataclass
class CachedDataset:
    """A loaded DatasetDict plus what the conversion reported when it was built."""

    data: datasets.DatasetDict
    fingerprint: str
    path: Path
    reused: bool
    report: dict[str, Any] = field(default_factory=dict)


def _manifest(folder: Path) -> dict[str, list]:
    """Every saved file of the folder itself (but the metadata; sub-folders are checked on
    their own) -> [size, sampled digest]: a cheap fingerprint of the entry, checked on every hit."""
    return {p.name: [p.stat().st_size, content_sample(p)]
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != META}


def _read_meta(folder: Path) -> dict[str, Any] | str:
    """The folder's metadata once its format and files check out, or why it cannot be trusted."""
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError) as exc:
        return f"its {META} is unreadable ({type(exc).__name__})"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "manifest" not in meta:
        return f"it was written in another cache format (this FuseBench reads format {FORMAT})"
    found = _manifest(folder)
    expected = meta["manifest"]
    if found != expected:
        changed = sorted(set(found) ^ set(expected) | {k for k in found if k in expected and found[k] != expected[k]})
        return f"its files changed since they were written ({', '.join(changed[:5])})"
    return meta


def _open_entry(target: Path) -> tuple[datasets.DatasetDict, dict[str, Any]] | str:
    """The saved DatasetDict and its metadata, or why the entry cannot be trusted."""
    meta = _read_meta(target)
    if isinstance(meta, str):
        return meta
    try:
        data = datasets.DatasetDict({s: _open_split(target, s, meta["fingerprint"]) for s in meta["splits"]})
    except Exception as exc:
        return f"it cannot be opened ({type(exc).__name__}: {exc})"
    rows = {s: len(d) for s, d in data.items()}
    if rows != meta.get("rows"):
        return f"its splits hold {rows} rows, it recorded {meta.get('rows')}"
    return data, meta


def discard(target: Path, reason: str) -> None:
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


def _publish(tmp: Path, target: Path) -> None:
    """Move a finished folder into place; if another process got there first, keep theirs."""
    try:
        os.replace(tmp, target)
    except OSError:
        if not (target / META).exists():
            raise


def cached(
    name: str,
    key: Mapping[str, Any],
    files: Sequence[str | os.PathLike[str]],
    build: Callable[[], tuple[Mapping[str, datasets.Dataset | SplitRows], Mapping[str, Any]]],
    root: Path | None = None,
) -> CachedDataset:
    """Return the cached conversion for (``key``, contents of ``files``) or build and save it.

    ``build()`` returns the splits - ``datasets.Dataset`` objects, or :class:`SplitRows` whose
    tables are written one at a time, split after split, so a converter can release each
    split's sources as it goes - and a JSON-able report (e.g. rows dropped), stored with the
    data so a cache hit logs the same facts as the first build.
    """
    root = root or cache_root()
    fp = fingerprint(key, files, root)
    target = root / "datasets" / name / fp[:16]
    if target.exists():
        opened = _open_entry(target)
        if not isinstance(opened, str):
            log.info("%s: reusing converted data %s", name, target)
            return CachedDataset(opened[0], fp, target, True, opened[1].get("report", {}))
        discard(target, opened)
    splits, report = build()
    bad = [s for s in splits if not _SPLIT_NAME.fullmatch(str(s))]
    if bad:
        raise DataError(f"dataset {name!r}: split names {bad} cannot name cache files; use letters, digits, '_', "
                        "'-' and '.' (train, validation, test).")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{fp[:16]}."))
    try:
        rows = {}
        for split in list(splits):
            rows[split] = _write_split(tmp / f"{split}.arrow", splits[split])
        del splits  # every split's sources can go now, before the entry is opened
        # ... also those a converter's generators and closures keep in reference cycles, which
        # only the cyclic collector frees: left to its schedule (which varies with the hash
        # seed), a whole copy of the source sometimes lived on beside the tensors built next.
        gc.collect()
        meta = {"format": FORMAT, "dataset": name, "fingerprint": fp, "key": dict(key),
                "files": [str(Path(f).resolve()) for f in files], "report": dict(report),
                "splits": list(rows), "rows": rows, "manifest": _manifest(tmp)}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: converted data saved to %s", name, target)
    opened = _open_entry(target)
    if isinstance(opened, str):
        raise DataError(f"The converted data just saved to {target} cannot be read back: {opened}. Check the "
                        "disk (space, errors) and run the command again.")
    return CachedDataset(opened[0], fp, target, False, dict(report))


def entry_of(data: Mapping[str, Any]) -> Path | None:
    """The cache entry ``data`` was opened from, when it is exactly that entry's content (every
    split backed by the entry's own file, no row selection, the fingerprint :func:`cached`
    gave it - any ``datasets`` transform changes it); None otherwise."""
    folders = set()
    for split, ds in data.items():
        if not isinstance(ds, datasets.Dataset) or ds._indices is not None:
            return None
        files = [Path(f["filename"]) for f in ds.cache_files]
        if len(files) != 1 or files[0].name != f"{split}.arrow":
            return None
        folders.add(files[0].parent)
    if len(folders) != 1:
        return None
    folder = folders.pop()
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or sorted(meta.get("splits", ())) != sorted(data):
        return None
    fp = str(meta.get("fingerprint", ""))
    if any(ds._fingerprint != split_fingerprint(fp, split) for split, ds in data.items()):
        return None
    return folder


# -- dense tensors kept with an entry ----------------------------------------------------------

def tensor_folder(entry: Path, key: str) -> Path:
    return entry / TENSORS / key


class ArrayWriter:
    """The arrays of one tensor folder, allocated as zero-filled ``.npy`` files in a private
    folder and filled in place through a memory map (the data never exist twice in memory);
    :meth:`commit` publishes them with their metadata atomically, leaving the context without
    committing deletes them."""

    def __init__(self, target: Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        self.target = target
        self.tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        self.names: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def array(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        self.names.append(name)
        path = self.tmp / f"{name}.npy"
        if int(np.prod(shape)) * np.dtype(dtype).itemsize == 0:  # an empty map is impossible
            out = np.zeros(shape, dtype)
            np.save(path, out)
            return out
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

    def keep(self, name: str, values: np.ndarray) -> np.ndarray:
        out = self.array(name, values.shape, values.dtype)
        out[...] = values
        return out

    def commit(self, meta: Mapping[str, Any]) -> None:
        full = {**meta, "format": FORMAT, "arrays": self.names, "manifest": _manifest(self.tmp)}
        (self.tmp / META).write_text(json.dumps(full, indent=2, sort_keys=True, default=str))
        _publish(self.tmp, self.target)


def open_arrays(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | str:
    """A tensor folder's arrays, memory-mapped copy-on-write (pages are read when first used
    and can be dropped again by the kernel; writing to one changes this process's copy, never
    the file), and its metadata; or why the folder cannot be trusted."""
    meta = _read_meta(folder)
    if isinstance(meta, str):
        return meta
    arrays = {}
    try:
        for name in meta["arrays"]:
            path = folder / f"{name}.npy"
            try:
                arrays[name] = np.load(path, mmap_mode="c", allow_pickle=False)
            except ValueError:  # numpy cannot map an empty array
                arrays[name] = np.load(path, allow_pickle=False)
    except Exception as exc:
        return f"it cannot be opened ({type(exc).__name__}: {exc})"
    return arrays, meta
