"""Hostile and broken data files (issue 13 §3): each fails fast with one paragraph naming the
file (and the field or the place inside it), without reading outside the file and without
exhausting memory or time.

Memory bombs are loaded in a child process limited to 1.5 GiB of address space beyond what its
imports use (RLIMIT_AS) and 60 s of CPU (RLIMIT_CPU), so code that does try to allocate GBs
fails there instead of eating the machine; the refusal must come quickly and well under that.
"""

from __future__ import annotations

import codecs
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import one_paragraph
from fixtures_affect import label_entries, redirect_features, write_csd, write_feature_csds, write_mmsa, write_mult

from benchmark_core.errors import DataError
from plugins.datasets.affect.loader import load
from plugins.datasets.affect.profiles import IEMOCAP, MOSI

REPO = Path(__file__).resolve().parents[1]
HEADROOM = 1536 * 2**20
FOLDS = {"train": [f"video0{i}" for i in range(4)], "valid": ["video04"], "test": ["video05"]}


pytestmark = pytest.mark.usefixtures("isolated_data")


def _edit(path: Path, edit: Callable[[dict], None]) -> None:
    data = pickle.loads(path.read_bytes())  # our own fixture: trusted
    edit(data)
    path.write_bytes(pickle.dumps(data, protocol=2))


# -- .csd files that read from outside themselves ---------------------------------------------

def _csd_dir(folder: Path) -> dict[str, Path]:
    labels = label_entries()
    write_csd(folder / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    return write_feature_csds(folder, labels)


@pytest.mark.parametrize("how", ["external", "external_link", "virtual", "soft_link"])
def test_csd_reading_outside_itself_is_refused_before_anything_is_read(tmp_path, how):
    """Before: the other file's bytes became video03's vision features, and were cached."""
    paths = _csd_dir(tmp_path / "data")
    elsewhere = tmp_path / ("private.bin" if how == "external" else "private.h5")
    redirect_features(paths["vision"], "video03", how, elsewhere)
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path / "data"), "folds": FOLDS})
    message = one_paragraph(info.value)
    assert str(paths["vision"]) in message and "'/CMU_MOSI_Visual_Facet_41/data/video03/features'" in message
    assert str(elsewhere) in message if how != "soft_link" else "'/elsewhere'" in message
    assert not list((tmp_path / "cache").rglob("*.arrow"))  # nothing was converted or cached


# -- broken layouts: one paragraph naming file and field -------------------------------------

def _damage_csd(path: Path, damage: str) -> None:
    with h5py.File(path, "r+") as fh:
        data = fh[next(iter(fh))]["data"]
        if damage == "data_is_a_dataset":
            parent = data.parent
            del parent["data"]
            parent.create_dataset("data", data=np.zeros(3))
        elif damage == "first_entry_lacks_features":
            del data["video00"]["features"]
        elif damage == "entry_lacks_intervals":
            del data["video03"]["intervals"]
        else:  # entry_is_a_dataset
            del data["video02"]
            data.create_dataset("video02", data=np.zeros(3))


@pytest.mark.parametrize("damage, says", [
    ("data_is_a_dataset", "'CMU_MOSI_COVAREP/data' is a dataset of shape (3,), not a group"),
    ("first_entry_lacks_features", "CMU_MOSI_COVAREP/data/video00 has no 'features' dataset"),
    ("entry_lacks_intervals", "CMU_MOSI_COVAREP/data/video03 has no 'intervals' dataset"),
    ("entry_is_a_dataset", "CMU_MOSI_COVAREP/data/video02 has no 'features' or 'intervals' dataset"),
])
def test_csd_with_a_broken_layout_names_file_and_place(tmp_path, damage, says):
    """Before: AttributeError ('Dataset' object has no attribute 'keys') and KeyError."""
    paths = _csd_dir(tmp_path)
    _damage_csd(paths["audio"], damage)
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path), "folds": FOLDS})
    message = one_paragraph(info.value)
    assert str(paths["audio"]) in message and says in message


@pytest.mark.parametrize("fmt, raw", [("mult", np.array(b"vid")), ("mult", "abcdefghijkl"), ("mmsa", 7)],
                         ids=["mult-0d-array", "mult-str-of-12-chars", "mmsa-int"])
def test_scalar_id_names_file_split_and_field(tmp_path, fmt, raw):
    """Before: TypeError (iteration over a 0-d array, 'int' object is not iterable), and a
    12-character str silently became the ids of the 12 train samples, one letter each."""
    if fmt == "mult":
        write_mult(tmp_path)
        path, split, where = tmp_path / "mosi_data.pkl", "train", "split 'train'"
    else:
        write_mmsa(tmp_path)
        path, split, where = tmp_path / "unaligned_50.pkl", "test", "split 'test'"
    _edit(path, lambda d: d[split].update(id=raw))
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path)})
    message = one_paragraph(info.value)
    assert f"{path} {where} field 'id' is a single" in message and "one id per sample" in message


def test_empty_iemocap_split_names_file_split_and_field(tmp_path):
    """Already a DataError since the label checks of issue 12 (the issue saw an IndexError) -
    but only in protocol-4 files: in a protocol-2 file (as MulT's) an empty array's data is
    ``__builtin__.bytes()``, which the allow-list refused as code."""
    write_mult(tmp_path, stem="iemocap", iemocap=True)
    _edit(tmp_path / "iemocap_data.pkl", lambda d: d.update(test={k: v[:0] for k, v in d["test"].items()}))
    with pytest.raises(DataError) as info:
        load(IEMOCAP, {"data_dir": str(tmp_path)})
    assert f"{tmp_path / 'iemocap_data.pkl'} split 'test' field 'labels'" in one_paragraph(info.value)


def test_negative_mmsa_lengths_name_file_split_and_field(tmp_path):
    """Already a DataError (padding.given_lengths, issue 12); kept."""
    write_mmsa(tmp_path)

    def edit(data):
        lengths = list(data["train"]["audio_lengths"])
        lengths[2] = -3
        data["train"]["audio_lengths"] = lengths

    _edit(tmp_path / "unaligned_50.pkl", edit)
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path)})
    message = one_paragraph(info.value)
    assert "unaligned_50.pkl split 'train' field 'audio_lengths': 1 negative lengths at rows [2]" in message


# -- pickles: unknown encodings, deep nesting ---------------------------------------------------

class _Call:
    """Pickles as ``func(*args)``, then ``__setstate__(state)``: how a hostile file spells a call."""

    def __init__(self, func: Callable, *args: Any, state: Any = None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def test_unknown_text_encoding_names_the_file(tmp_path):
    """Before: a bare LookupError from _codecs.encode."""
    path = tmp_path / "mosi_data.pkl"
    path.write_bytes(pickle.dumps({"train": _Call(codecs.encode, "abc", "no-such-codec")}, protocol=2))
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path)})
    message = one_paragraph(info.value)
    assert str(path) in message and "'no-such-codec'" in message


def test_deeply_nested_ids_are_refused_not_a_recursion_error(tmp_path):
    """Before: RecursionError while turning the ids into strings."""
    write_mult(tmp_path)
    marker = "NESTED-IDS-GO-HERE"
    _edit(tmp_path / "mosi_data.pkl", lambda d: d["train"].update(id=marker))
    depth = 100_000  # EMPTY_LIST x depth, then APPEND each into the one below
    encoded = b"X" + len(marker).to_bytes(4, "little") + marker.encode()
    path = tmp_path / "mosi_data.pkl"
    path.write_bytes(path.read_bytes().replace(encoded, b"]" * depth + b"a" * (depth - 1)))
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path)})
    message = one_paragraph(info.value)
    assert str(path) in message and "deep" in message


# -- memory and time bombs, in a limited child process -----------------------------------------

_CHILD = """
import json, resource, sys, time
from pathlib import Path
import numpy  # imported before the limit, as any reader has it
from benchmark_core.errors import DataError
mode, path, headroom = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
if mode == "loader":
    from plugins.datasets.affect.loader import load
    from plugins.datasets.affect.profiles import MOSI
    run = lambda: load(MOSI, {"data_dir": str(path.parent)})
else:
    from benchmark_core.engine import safe_pickle
    run = lambda: safe_pickle.load(path)
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + headroom, size + headroom))
before = resource.getrusage(resource.RUSAGE_SELF)
cpu = int(before.ru_utime + before.ru_stime) + 60
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
start = time.perf_counter()
try:
    run()
    outcome = {"error": None}
except BaseException as exc:
    outcome = {"error": type(exc).__name__, "data_error": isinstance(exc, DataError), "message": str(exc)}
outcome["seconds"] = time.perf_counter() - start
outcome["rss_growth"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before.ru_maxrss) * 1024
print(json.dumps(outcome))
"""


def _load_in_child(path: Path, mode: str, headroom: int = HEADROOM) -> dict[str, Any]:
    """Load ``path`` (``pickle``: safe_pickle.load; ``loader``: the MOSI loader on its folder)
    in a child under the limits; the child's report, or a failure saying how it died."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path), str(headroom)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip(), f"the child died (exit status {proc.returncode}): {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


_reconstruct = np.array(0).__reduce__()[0]  # numpy's own, under whichever module name it has


def _shared_lists() -> bytes:
    """A 1,000-float list shared 1,000 times, that list shared 250 times: 11 KB in the file,
    2.5e8 floats (2 GB) to np.asarray - the issue's 620-byte file took 76 s and 3.7 GB."""
    leaf = [0.5] * 1000
    return pickle.dumps({"train": {"text": [[leaf] * 1000] * 250}, "valid": {}, "test": {}}, protocol=2)


def _codec_chain() -> bytes:
    """``_codecs.encode(..., 'hex')`` 40 times over: each doubles, 2**41 bytes in the end."""
    value: Any = b"ab"
    for _ in range(40):
        value = _Call(codecs.encode, value, "hex")
    return pickle.dumps(value, protocol=4)


def _tuple_key() -> bytes:
    """A dict keyed by a tuple of tuples sharing one child 40 levels deep: hashing it takes
    2**40 steps.  Written by hand - building the dict here would hash the key."""
    key: Any = (1, 2)
    for _ in range(40):
        key = (key, key)
    return b"\x80\x02}" + pickle.dumps(key, protocol=2)[2:-1] + b"K\x01s."


BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    # the 356-byte file: numpy.ndarray((4000, 1000, 1000), 'i1') allocates 3.7 GiB
    "ndarray_call": (lambda: pickle.dumps(_Call(np.ndarray, (4000, 1000, 1000), "i1"), protocol=2), "pickle"),
    "reconstruct_with_a_shape": (
        lambda: pickle.dumps(_Call(_reconstruct, np.ndarray, (4000, 1000, 1000), b"b"), protocol=4), "pickle"),
    "object_array_state": (  # numpy allocates 400e6 pointers before it looks at the 1-item list
        lambda: pickle.dumps(_Call(_reconstruct, np.ndarray, (0,), b"b",
                                   state=(1, (400, 1000, 1000), np.dtype(object), False, [None])), protocol=4),
        "pickle"),
    "bytes_of_a_size": (lambda: pickle.dumps(_Call(bytes, 4 * 10**9), protocol=4), "pickle"),
    "declared_length": (lambda: b"\x80\x05\x96" + (3 * 10**9).to_bytes(8, "little") + b"\x00" * 8, "pickle"),
    "codec_chain": (_codec_chain, "pickle"),
    "tuple_key_hash": (_tuple_key, "pickle"),
    "shared_lists": (_shared_lists, "loader"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_pickle_bomb_is_refused_fast_naming_the_file(tmp_path, name):
    build, mode = BOMBS[name]
    path = tmp_path / "data" / "mosi_data.pkl"
    path.parent.mkdir()
    path.write_bytes(build())
    outcome = _load_in_child(path, mode)
    assert outcome["error"] and outcome["data_error"], outcome
    assert str(path) in outcome["message"] and "\n" not in outcome["message"], outcome
    assert outcome["seconds"] < 10, outcome
    assert outcome["rss_growth"] < 256 * 2**20, outcome


def test_running_out_of_memory_names_the_file(tmp_path):
    """A genuine 64 MiB pickle with 16 MiB of memory to spare: before, a bare MemoryError."""
    path = tmp_path / "mosi_data.pkl"
    with path.open("wb") as fh:
        pickle.dump({"train": np.zeros(8 * 2**20)}, fh, protocol=4)
    outcome = _load_in_child(path, "pickle", headroom=16 * 2**20)
    assert outcome["data_error"], outcome
    assert str(path) in outcome["message"] and "Ran out of memory" in outcome["message"], outcome
