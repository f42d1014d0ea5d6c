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
