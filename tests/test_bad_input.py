"""Bad input gets a clear, single-paragraph error naming the file/flag and the fix."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from fixtures_affect import write_mmsa, write_mult

from benchmark_core.cli import main
from benchmark_core.errors import DataError
from plugins.datasets.affect.loader import load
from plugins.datasets.affect.profiles import MOSI


def _edit_pickle(path, edit):
    data = pickle.loads(path.read_bytes())
    edit(data)
    path.write_bytes(pickle.dumps(data))


def _single_paragraph(message: str) -> str:
    assert "\n" not in message.strip(), message
    return message


def test_wrong_keys_name_file_field_and_fix(tmp_path):
    write_mult(tmp_path)
    _edit_pickle(tmp_path / "mosi_data.pkl", lambda d: d["train"].pop("audio"))
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path)})
    text = _single_paragraph(str(info.value))
    assert "mosi_data.pkl" in text and "'audio'" in text and "'vision', 'audio', 'text', 'labels'" in text


def test_shape_mismatch_between_modalities(tmp_path):
    write_mult(tmp_path)
    _edit_pickle(tmp_path / "mosi_data.pkl", lambda d: d["valid"].update(vision=d["valid"]["vision"][:-2]))
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path)})
    text = _single_paragraph(str(info.value))
    assert "mosi_data.pkl" in text and "'validation'" in text and "'vision': 4" in text


def test_labels_missing(tmp_path):
    write_mmsa(tmp_path / "Processed")
    path = next((tmp_path / "Processed").glob("*.pkl"))
    _edit_pickle(path, lambda d: d["test"].pop("regression_labels"))
    with pytest.raises(DataError) as info:
        load(MOSI, {"data_dir": str(tmp_path)})
    text = _single_paragraph(str(info.value))
    assert path.name in text and "regression_labels" in text


def test_pickle_that_runs_code_is_refused_by_the_cli_before_anything_runs(tmp_path, monkeypatch, capsys):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "mosi_data.pkl").write_bytes(pickle.dumps({"train": Exploit()}))
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--methods", "additive", "--datasets", "mosi,synthetic-xor", "--seeds", "0",
                 "--epochs", "1", "--data-dir", str(data_dir), "--dataset-option", "synthetic-xor.n=300",
                 "--no-stress", "--no-emap"])
    captured = capsys.readouterr()
    assert code == 2  # the pre-flight stops the command: nothing trains, nothing is recorded
    assert "pwned" not in captured.out
    assert "mosi_data.pkl" in captured.err and "builtins" in captured.err
    assert not (tmp_path / "mlflow.db").exists()


def test_non_finite_values_are_counted_not_hidden(tmp_path):
    write_mult(tmp_path)
    _edit_pickle(tmp_path / "mosi_data.pkl",
                 lambda d: d["test"]["vision"].__setitem__((0, -1, 0), np.nan))
    from benchmark_core.engine.data import load_tensors
    from benchmark_core.plugins import get_registry

    tensors = load_tensors(get_registry().dataset("mosi"), {"data_dir": str(tmp_path)})
    assert tensors.report["nonfinite_replaced"]["vision"] == 1
    assert bool(tensors.test.x["vision"].isfinite().all())
