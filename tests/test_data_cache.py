"""The on-disk cache: keyed by file content and conversion options; entries written split by
split with our fingerprint; the dense tensors and their data hash kept with an entry and
opened memory-mapped on a warm load, bitwise equal to an in-memory conversion."""

import datasets
import numpy as np
import pytest

from benchmark_core import TargetSpec
from benchmark_core.engine import datacache
from benchmark_core.engine.data import dataset_from_arrays

TARGET = TargetSpec("regression", 1)


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "source.bin"
    path.write_bytes(b"version 1")
    return path


def _builder(calls, path):
    def build():
        calls.append(path.read_bytes())
        value = float(len(calls))
        ds = dataset_from_arrays({"x": ("vector", np.full((2, 3), value))}, np.array([0.0, 1.0]), TARGET)
        return datasets.DatasetDict({"train": ds}), {"builds": len(calls)}
    return build


def test_second_load_reuses_the_saved_conversion(source):
    calls = []
    first = datacache.cached("toy", {"opt": 1}, [source], _builder(calls, source))
    second = datacache.cached("toy", {"opt": 1}, [source], _builder(calls, source))
    assert len(calls) == 1 and not first.reused and second.reused
    assert second.path == first.path and second.report == {"builds": 1}
    assert second.data["train"]["x"][0] == [1.0, 1.0, 1.0]


def test_changed_source_content_rebuilds(source):
    calls = []
    first = datacache.cached("toy", {}, [source], _builder(calls, source))
    source.write_bytes(b"version 2")
    second = datacache.cached("toy", {}, [source], _builder(calls, source))
    assert len(calls) == 2 and not second.reused and second.fingerprint != first.fingerprint
    assert second.data["train"]["x"][0] == [2.0, 2.0, 2.0]


def test_options_are_part_of_the_key(source):
    calls = []
    datacache.cached("toy", {"aligned": True}, [source], _builder(calls, source))
    datacache.cached("toy", {"aligned": False}, [source], _builder(calls, source))
    assert len(calls) == 2


def test_digest_is_memoised_but_follows_content(source, tmp_path):
    root = tmp_path / "cache"
    first = datacache.file_digest(source, root)
    assert (root / "file-digests.json").exists()
    assert datacache.file_digest(source, root) == first
    source.write_bytes(b"version 22")
    assert datacache.file_digest(source, root) != first


def test_in_place_edit_keeping_size_mtime_and_inode_is_seen(source, tmp_path):
    """Issue 12: an edit that restores size, mtime and inode used to return the old digest."""
    import os

    root = tmp_path / "cache"
    first = datacache.file_digest(source, root)
    before = os.stat(source)
    with open(source, "r+b") as fh:  # same size, same inode
        fh.write(b"VERSION 1")
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(source)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert datacache.file_digest(source, root) != first


def test_memo_with_matching_stamp_but_other_content_is_not_trusted(source, tmp_path):
    """The sampled content check stands on its own: a memo entry whose stamp was carried over
    (a restored backup, a copied cache) is rehashed when the sampled content differs."""
    import json

    root = tmp_path / "cache"
    datacache.file_digest(source, root)
    source.write_bytes(b"version 2")
    memo_file = root / "file-digests.json"
    memo = json.loads(memo_file.read_text())
    entry = memo[str(source.resolve())]
    entry["stamp"] = datacache._stamp(source.resolve())  # pretend nothing about the file's stat changed
    memo_file.write_text(json.dumps(memo))
    assert datacache.file_digest(source, root) == datacache._hash_file(source)


def test_large_file_sample_reads_spread_blocks(tmp_path):
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, size=5 * 2**20, dtype=np.uint8).tobytes())
    path.write_bytes(bytes(data))
    first = datacache.content_sample(path)
    data[-1] ^= 0xFF  # the last byte lies in the always-sampled tail block
    path.write_bytes(bytes(data))
    assert datacache.content_sample(path) != first


def _arrow_files(entry):
    return sorted(p for p in entry.rglob("*.arrow"))


def test_corrupted_cache_entry_is_rebuilt(source, caplog):
    calls = []
    first = datacache.cached("toy", {}, [source], _builder(calls, source))
    arrow = _arrow_files(first.path)[0]
    raw = bytearray(arrow.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip a byte inside the saved table: same size, other content
    arrow.write_bytes(bytes(raw))
    with caplog.at_level("WARNING", logger="fusebench.data"):
        again = datacache.cached("toy", {}, [source], _builder(calls, source))
    assert len(calls) == 2 and not again.reused
    assert "discarded and rebuilt" in caplog.text and str(first.path) in caplog.text
    assert again.data["train"]["x"][0] == [2.0, 2.0, 2.0]


def test_truncated_or_unreadable_entry_is_rebuilt(source):
    calls = []
    first = datacache.cached("toy", {}, [source], _builder(calls, source))
    arrow = _arrow_files(first.path)[0]
    arrow.write_bytes(arrow.read_bytes()[:20])
    datacache.cached("toy", {}, [source], _builder(calls, source))
    (first.path / datacache.META).write_text("{not json")
    third = datacache.cached("toy", {}, [source], _builder(calls, source))
    assert len(calls) == 3 and not third.reused


def test_entry_that_cannot_be_removed_names_the_folder(source, monkeypatch):
    from benchmark_core.errors import DataError

    calls = []
    first = datacache.cached("toy", {}, [source], _builder(calls, source))
    (first.path / datacache.META).write_text("{not json")
    real_replace = datacache.os.replace

    def refuse(src, dst):
        if str(src) == str(first.path):
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(datacache.os, "replace", refuse)
    with pytest.raises(DataError, match=r"Delete that folder \(rm -r '.*" + first.path.name):
        datacache.cached("toy", {}, [source], _builder(calls, source))


# -- format 2: fingerprints, streaming, the tensor cache (issue 17) ------------------------------

def test_datasets_never_hashes_a_table(source, monkeypatch):
    """Building and opening an entry passes our fingerprint: ``datasets`` would otherwise
    serialise and hash the whole table (+2.7 GiB for a 0.69 GiB column on MOSEI)."""
    import datasets.arrow_dataset

    def refuse(dataset):
        raise AssertionError("datasets computed a fingerprint by hashing the table")

    monkeypatch.setattr(datasets.arrow_dataset, "generate_fingerprint", refuse)
    calls = []
    first = datacache.cached("toy", {}, [source], _builder(calls, source))
    again = datacache.cached("toy", {}, [source], _builder(calls, source))
    for result in (first, again):
        assert result.data["train"]._fingerprint == datacache.split_fingerprint(result.fingerprint, "train")
    assert datacache.entry_of(again.data) == again.path


def test_a_transformed_split_is_not_taken_for_the_entry(source):
    calls = []
    entry = datacache.cached("toy", {}, [source], _builder(calls, source))
    assert datacache.entry_of(entry.data) == entry.path
    changed = datasets.DatasetDict({"train": entry.data["train"].map(lambda row: {"label": row["label"] + 1})})
    assert datacache.entry_of(changed) is None
    picked = datasets.DatasetDict({"train": entry.data["train"].select([1])})
    assert datacache.entry_of(picked) is None


def test_entries_of_another_cache_format_are_rebuilt(source, monkeypatch):
    calls = []
    monkeypatch.setattr(datacache, "FORMAT", 1)
    datacache.cached("toy", {}, [source], _builder(calls, source))
    monkeypatch.setattr(datacache, "FORMAT", 2)
    again = datacache.cached("toy", {}, [source], _builder(calls, source))
    assert len(calls) == 2 and not again.reused


def test_each_split_is_written_and_released_before_the_next(source):
    """The converter's source arrays of a split are gone once it is written (weakref), before
    the next split's rows are produced: conversion never holds all sources plus their copy."""
    import gc
    import weakref

    from plugins.datasets.affect.convert import SplitArrays, to_split_rows

    def split(n):
        base = np.random.default_rng(n).random((n, 4, 3), dtype=np.float32)
        return SplitArrays({"x": [base[i, : 1 + i % 4] for i in range(n)]}, np.zeros(n, np.float32),
                           [str(i) for i in range(n)]), weakref.ref(base)

    train, train_source = split(40)
    test, _ = split(8)
    rows = to_split_rows({"train": train, "test": test}, TARGET)
    del train, test
    seen = []

    def checked(tables):
        gc.collect()
        seen.append(train_source() is None)
        yield from tables

    rows["test"] = datacache.SplitRows(rows["test"].features, checked(rows["test"].tables))
    entry = datacache.cached("toy", {}, [source], lambda: (rows, {}))
    assert seen == [True]
    assert [len(s) for s in entry.data["train"]["x"][:5]] == [1, 2, 3, 4, 1]


# -- the tensor cache ------------------------------------------------------------------------------

@pytest.fixture
def mosi(tmp_path, monkeypatch):
    from fixtures_affect import write_mmsa

    from benchmark_core.engine.data import _CACHE
    from benchmark_core.plugins import get_registry

    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    write_mmsa(tmp_path / "mosi", aligned=False, n=(120, 40, 40), nonfinite=True)
    _CACHE.clear()
    yield get_registry().dataset("mosi"), {"data_dir": str(tmp_path / "mosi")}
    _CACHE.clear()


def _arrays(data):
    return {f"{s}.{kind}.{m}": t for s, split in data.splits.items()
            for kind, group in (("x", split.x), ("mask", split.mask)) for m, t in group.items() if t is not None} | \
        {f"{s}.y": split.y for s, split in data.splits.items()}


def _same(a, b):
    left, right = _arrays(a), _arrays(b)
    assert left.keys() == right.keys()
    for name in left:
        assert left[name].dtype == right[name].dtype and left[name].shape == right[name].shape, name
        assert left[name].numpy().tobytes() == right[name].numpy().tobytes(), name
    assert a.data_hash == b.data_hash
    assert {k: v for k, v in a.report.items() if k != "loader"} == {k: v for k, v in b.report.items() if k != "loader"}
    assert all(np.array_equal(a.splits[s].ids, b.splits[s].ids) for s in a.splits)


def _mapping(tensor) -> str:
    """The file mapped at the tensor's data address ('' for anonymous memory)."""
    address = tensor.data_ptr()
    with open("/proc/self/maps") as fh:
        for line in fh:
            fields = line.split(maxsplit=5)
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= address < high:
                return fields[5].strip() if len(fields) > 5 else ""
    return ""


class _CountingSha:
    """hashlib.sha256 that counts the bytes it is fed."""

    fed = 0

    def __init__(self, data=b""):
        import hashlib

        self._inner = hashlib.sha256()
        self.update(data)

    def update(self, data):
        _CountingSha.fed += memoryview(data).nbytes
        self._inner.update(data)

    def hexdigest(self):
        return self._inner.hexdigest()


def test_warm_load_reads_the_data_hash_kept_with_the_cache(mosi, monkeypatch):
    """The data hash is computed once, when the tensors are written, and kept with them; a
    warm load (a new process: the in-process cache emptied) hashes no data at all."""
    import types

    from benchmark_core.engine import data as data_module

    spec, options = mosi
    monkeypatch.setattr(data_module, "hashlib", types.SimpleNamespace(sha256=_CountingSha))
    cold = data_module.load_tensors(spec, options)
    tensor_bytes = sum(t.numel() * t.element_size() for t in _arrays(cold).values())
    assert cold.load["tensors"] == "converted to the tensor cache"
    assert _CountingSha.fed >= tensor_bytes  # the cold load hashed every array once
    data_module._CACHE.clear()
    _CountingSha.fed = 0
    warm = data_module.load_tensors(spec, options)
    assert warm.load["tensors"] == "tensor cache"
    assert _CountingSha.fed < 1000 < tensor_bytes  # only the cache key (a short JSON), no data
    _same(cold, warm)


def test_warm_tensors_are_the_memory_mapped_cache_files(mosi, tmp_path):
    """No copy: every tensor of a warm load lies in a memory map of its ``.npy`` file in the
    cache (so data larger than memory page in and out batch by batch)."""
    from benchmark_core.engine.data import _CACHE, load_tensors

    spec, options = mosi
    load_tensors(spec, options)
    _CACHE.clear()
    warm = load_tensors(spec, options)
    cache = str(tmp_path / "cache")
    for name, tensor in _arrays(warm).items():
        mapped = _mapping(tensor)
        assert mapped.startswith(cache) and mapped.endswith(".npy"), (name, mapped)
    before = warm.train.x["audio"][0, 0, 0].item()
    warm.train.x["audio"][0, 0, 0] = before + 1  # copy-on-write: the file never changes
    _CACHE.clear()
    assert load_tensors(spec, options).train.x["audio"][0, 0, 0].item() == before


def test_cached_tensors_equal_the_in_memory_conversion(mosi, monkeypatch):
    """Bitwise the same tensors, hash and report whichever way they were built: in memory from
    the DatasetDict, through the tensor cache, and with record batches of a few rows each."""
    from benchmark_core.engine.data import _CACHE, load_tensors, to_tensors

    spec, options = mosi
    cached_tensors = load_tensors(spec, options)
    dsd, _ = spec.load({**spec.defaults, **options})
    in_memory = to_tensors(spec, dsd)
    _same(in_memory, cached_tensors)
    monkeypatch.setattr(datacache, "BATCH_BYTES", 600)  # a few rows per record batch
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(datacache.cache_root()) + "-small-batches")
    _CACHE.clear()
    small = load_tensors(spec, options)
    assert small.load["tensors"] == "converted to the tensor cache"
    _same(in_memory, small)
    assert to_tensors(spec, dsd).data_hash == in_memory.data_hash


def test_a_damaged_tensor_file_is_rebuilt(mosi, caplog):
    from benchmark_core.engine.data import _CACHE, load_tensors, to_tensors

    spec, options = mosi
    load_tensors(spec, options)
    expected = to_tensors(spec, spec.load({**spec.defaults, **options})[0])
    files = sorted((datacache.cache_root() / "datasets").rglob("*.npy"))
    target = next(f for f in files if "train.x" in f.name)
    raw = bytearray(target.read_bytes())
    raw[-5] ^= 0xFF  # inside the always-sampled tail
    target.write_bytes(bytes(raw))
    _CACHE.clear()
    with caplog.at_level("WARNING", logger="fusebench.data"):
        again = load_tensors(spec, options)
    assert "discarded and rebuilt" in caplog.text
    assert again.load["tensors"] == "converted to the tensor cache"
    _same(expected, again)
