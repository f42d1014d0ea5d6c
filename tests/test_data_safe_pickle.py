"""The restricted unpickler admits numpy arrays and plain containers, nothing else."""

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from benchmark_core.engine import safe_pickle
from benchmark_core.errors import DataError


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_and_containers_round_trip(protocol):
    data = {"train": {"x": np.arange(12, dtype=np.float32).reshape(2, 3, 2), "id": np.array([[b"v", b"1"]]),
                      "raw": np.array(["a", "bb"], dtype=object), "y": np.float64(-0.5),
                      "meta": OrderedDict(n=2), "tags": {1, 2}, "pair": (1, 2.5, None)}}
    back = safe_pickle.loads(pickle.dumps(data, protocol=protocol))
    assert np.array_equal(back["train"]["x"], data["train"]["x"])
    assert back["train"]["id"][0, 0] == b"v"
    assert back["train"]["raw"].tolist() == ["a", "bb"]
    assert back["train"]["y"] == -0.5 and back["train"]["tags"] == {1, 2}


def test_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "mosi_data.pkl"
    path.write_bytes(pickle.dumps({"train": {"labels": _RunsCode()}}))
    with pytest.raises(safe_pickle.UnsafePickleError) as info:
        safe_pickle.load(path)
    message = str(info.value)
    assert str(path) in message and "system" in message and "never runs code" in message
    assert isinstance(info.value, DataError)


def test_arbitrary_class_is_refused():
    with pytest.raises(safe_pickle.UnsafePickleError, match="collections.Counter"):
        from collections import Counter
        safe_pickle.loads(pickle.dumps(Counter("ab")))


def test_python2_style_pickle_with_bytes_loads(tmp_path):
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps({b"train": {b"label": np.zeros((2, 1))}}, protocol=2))
    assert safe_pickle.load(path)[b"train"][b"label"].shape == (2, 1)


def test_truncated_file_gives_clear_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.ones(100)})[:50])
    with pytest.raises(DataError, match="truncated or not a pickle"):
        safe_pickle.load(path)


def test_protocol2_builtins_load():
    """Protocol < 3 spells every builtin ``__builtin__.X``: an empty bytes is
    ``__builtin__.bytes()``, which the allow-list used to refuse."""
    data = {"empty": b"", "z": 1 + 2j, "ba": bytearray(b"xy"), "fs": frozenset({1}), "s": {"a"}}
    assert safe_pickle.loads(pickle.dumps(data, protocol=2)) == data


def test_shared_splits_and_lists_of_small_numbers_stay_within_the_budget():
    """What real files do that costs most per byte: the same split stored under two names, and
    lists of small ints (2 bytes in the file, an 8-byte slot each)."""
    split = {"x": np.ones((50, 20, 8), dtype=np.float32), "audio_lengths": [7] * 200_000}
    back = safe_pickle.loads(pickle.dumps({"train": split, "valid": split, "test": split}, protocol=2))
    assert back["valid"] is back["test"] and len(back["train"]["audio_lengths"]) == 200_000


def test_instances_of_arbitrary_classes_are_refused():
    """NEWOBJ/INST/OBJ build instances of any class; data pickles use none of them."""
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"file\.pkl.*arbitrary classes"):
        safe_pickle.loads(b"\x80\x04N)\x81.", source="file.pkl")
