"""The on-disk HF cache is keyed by file content and conversion options."""

import datasets
import numpy as np
import pytest

from benchmark_core import TargetSpec, datacache
from benchmark_core.data import dataset_from_arrays

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
