"""``bench run --data-dir`` reaches third-party datasets through ``fusebench.data_path``.

A real plugin distribution (dist-info + entry point, as pip leaves it) registers a dataset
that reads a CSV file found with ``data_path``; ``bench run`` must find it under
``--data-dir``, ``$FUSEBENCH_DATA_DIR`` and ``~/.fusebench/data``, and a missing file must be
one paragraph naming where it looked and the flags that fix it.  ``--data-dir`` is not part
of a run's identity (moving the data does not retrain); a ``data_dir`` dataset option is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_paragraph

from benchmark_core.plugins import get_registry
from fusebench import DataError, data_dirs, data_path
from fusebench.testing import run_cli

pytest_plugins = ["pytester"]

PLUGIN = '''
import datasets
import numpy as np

from fusebench import DatasetSpec, TargetSpec, data_path, dataset_from_arrays, hookimpl

TARGET = TargetSpec("multiclass", 2)
HOW = "write csvpair/pairs.csv (a0,a1,b0,b1,label,split) yourself; it is a test file."


def load(options):
    path = data_path("csvpair", "pairs.csv", option=options.get("data_dir"), how_to_obtain=HOW)
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    splits = {}
    for code, split in enumerate(("train", "validation", "test")):
        rows = table[table[:, 5] == code]
        splits[split] = dataset_from_arrays({"a": ("vector", rows[:, 0:2].astype(np.float32)),
                                             "b": ("vector", rows[:, 2:4].astype(np.float32))},
                                            rows[:, 4].astype(np.int64), TARGET)
    return datasets.DatasetDict(splits), {"file": path.name}


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="csvpair", load=load, target=TARGET, modalities=("a", "b"),
                         metrics=("accuracy",), primary_metric="accuracy",
                         defaults={"data_dir": None}, how_to_obtain=HOW))
'''


def write_csv(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n = 60
    a, b = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    label = (a[:, 0] + b[:, 0] > 0).astype(int)
    split = np.repeat([0, 1, 2], [36, 12, 12])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pairs.csv"
    np.savetxt(path, np.column_stack([a, b, label, split]), delimiter=",", header="a0,a1,b0,b1,label,split",
               comments="")
    return path


@pytest.fixture
def env(isolated_data, monkeypatch, tmp_path):
    """No ambient data root (restored after the test, also after `bench run --data-dir` set one)."""
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", "")
    monkeypatch.delenv("FUSEBENCH_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def csvpair(install_plugin, env):
    install_plugin("fusebench-csvpair", "0.1.0", "fusebench_csvpair", PLUGIN, entry_name="csvpair")
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()


RUN = ("run", "--methods", "additive", "--datasets", "csvpair", "--seeds", "0", "--epochs", "1",
       "--no-stress", "--no-emap")


# -- the helper --------------------------------------------------------------------------------

def test_search_order_is_option_then_env_then_home(env, monkeypatch):
    home = Path(os.environ["HOME"])
    assert data_dirs("mine") == [home / ".fusebench" / "data" / "mine"]
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(env / "root"))
    assert data_dirs("mine") == [env / "root" / "mine", home / ".fusebench" / "data" / "mine"]
    assert data_dirs("mine", option=str(env / "exact")) == [env / "exact"]  # a named folder is the only one
    assert data_dirs("mine", option="") == data_dirs("mine")  # an empty option means "not given"

    write_csv(home / ".fusebench" / "data" / "mine")
    assert data_path("mine", "pairs.csv") == home / ".fusebench" / "data" / "mine" / "pairs.csv"
    write_csv(env / "root" / "mine")
    assert data_path("mine", "pairs.csv") == env / "root" / "mine" / "pairs.csv"  # $FUSEBENCH_DATA_DIR first
    assert data_path("mine") == env / "root" / "mine"  # no parts: the folder itself


def test_a_miss_names_every_place_and_the_flags(env, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(env / "root"))
    with pytest.raises(DataError) as err:
        data_path("mine", "pairs.csv", how_to_obtain="Ask the authors.")
    message = one_paragraph(err.value)
    for text in (str(env / "root" / "mine" / "pairs.csv"),
                 str(Path(os.environ["HOME"]) / ".fusebench" / "data" / "mine" / "pairs.csv"),
                 "--data-dir DIR", "FUSEBENCH_DATA_DIR", "--dataset-option mine.data_dir=DIR",
                 "never downloads", "Ask the authors."):
        assert text in message, (text, message)


def test_a_given_option_is_the_only_place_searched(env, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(env / "root"))
    write_csv(env / "root" / "mine")
    with pytest.raises(DataError) as err:
        data_path("mine", "pairs.csv", option=str(env / "elsewhere"))
    message = one_paragraph(err.value)
    assert str(env / "elsewhere" / "pairs.csv") in message and str(env / "root") not in message
    assert "mine.data_dir" in message
    with pytest.raises(DataError) as err:  # a dataset without such an option is not told to use one
        data_path("mine", "other.csv", option_name=None)
    assert "--dataset-option" not in str(err.value)


# -- through bench run, with a real plugin distribution -----------------------------------------

def test_bench_run_data_dir_reaches_a_third_party_dataset(csvpair, env):
    missing = run_cli(*RUN)
    assert missing.code == 2
    assert "csvpair: data file 'pairs.csv' not found" in missing.err and "--data-dir DIR" in missing.err

    write_csv(env / "data" / "csvpair")
    found = run_cli(*RUN, "--data-dir", str(env / "data"))
    assert found.code == 0, found.out + found.err
    assert "1 trained" in found.out

    # the same files elsewhere: --data-dir is not part of the run identity, the data hash is
    shutil.copytree(env / "data", env / "moved")
    moved = run_cli(*RUN, "--data-dir", str(env / "moved"))
    assert moved.code == 0 and "Skipping 1 of 1 runs already finished" in moved.out, moved.out

    # a data_dir dataset option is a run option: part of the spec_hash, so the run is new
    option = run_cli(*RUN, "--dataset-option", f"csvpair.data_dir={env / 'moved' / 'csvpair'}")
    assert option.code == 0 and "1 trained" in option.out, option.out + option.err


def test_fusebench_data_dir_env_and_home_work_without_the_flag(csvpair, env, monkeypatch):
    write_csv(Path(os.environ["HOME"]) / ".fusebench" / "data" / "csvpair")
    assert run_cli(*RUN).code == 0
    write_csv(env / "envroot" / "csvpair", seed=1)  # different data: $FUSEBENCH_DATA_DIR wins over ~
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(env / "envroot"))
    second = run_cli(*RUN)
    assert second.code == 0 and "1 trained" in second.out, second.out + second.err


def test_the_plugin_kit_fixture_is_a_data_root(fusebench_data_dir):
    """What a plugin author's test gets: write files under it, data_path finds them."""
    assert os.environ["FUSEBENCH_DATA_DIR"] == str(fusebench_data_dir)
    write_csv(fusebench_data_dir / "mine")
    assert data_path("mine", "pairs.csv") == fusebench_data_dir / "mine" / "pairs.csv"


def test_fusebench_env_restores_a_data_dir_that_bench_run_set(pytester):
    """A plugin author's suite (no FuseBench conftest): a test that sets FUSEBENCH_DATA_DIR, as
    `bench run --data-dir` does in-process, must not leak it into the next test."""
    pytester.makeconftest('pytest_plugins = ["fusebench.testing"]')  # as docs/plugins.md says
    pytester.makepyfile(test_inner="""
        import os

        def test_sets(fusebench_env):
            os.environ["FUSEBENCH_DATA_DIR"] = "/somewhere"

        def test_next():
            assert "FUSEBENCH_DATA_DIR" not in os.environ
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
