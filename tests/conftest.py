"""Shared fixtures.  The plugin kit (``fusebench.testing``, loaded below as a plugin author
loads it) provides the throw-away MLflow store (``fusebench_tracking_uri``), the registry
factory and the in-process CLI; this file adds only what the kit has no equivalent for:
session-wide hermetic caches, one registry shared by the session, a small RunSpec builder,
a helper that installs a real plugin distribution (dist-info + entry point) on sys.path,
and private data folders."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

from benchmark_core.specs import Budget, RunSpec

pytest_plugins = ["fusebench.testing"]  # the plugin kit's fixtures, as a plugin author gets them

TINY_XOR = {"n": 400}


@pytest.fixture(autouse=True, scope="session")
def _hermetic_caches(tmp_path_factory):
    cache = tmp_path_factory.mktemp("caches")
    os.environ["HF_DATASETS_CACHE"] = str(cache / "hf")
    os.environ["FUSEBENCH_CACHE_DIR"] = str(cache / "fusebench")
    os.environ.pop("FUSEBENCH_DATA_DIR", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield


@pytest.fixture(autouse=True)
def _no_data_dir_between_tests(monkeypatch):
    """`bench run --data-dir` sets FUSEBENCH_DATA_DIR in-process (plugins read it); undo that
    after every test so no test finds data through another test's folder."""
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", "")  # set, then delete: restored as unset afterwards
    monkeypatch.delenv("FUSEBENCH_DATA_DIR")
    yield


@pytest.fixture(scope="session")
def registry():
    """Everything installed, built once per session (the kit's ``fusebench_registry`` is fresh
    per test and clears the data cache, which the many tests that only read it do not need)."""
    from fusebench.testing import make_registry  # imported by pytest_plugins first, so pytest can rewrite it

    return make_registry()


def tiny_spec(method="additive", dataset="synthetic-xor", seed=0, epochs=2, **kwargs) -> RunSpec:
    from benchmark_core.plugins import get_registry
    from benchmark_core.suite.runner import resolve_hparams

    hparams = resolve_hparams(get_registry().method(method), kwargs.pop("hparams", {}))
    return RunSpec(method, dataset, seed, Budget(epochs=epochs, batch_size=32), hparams,
                   kwargs.pop("dataset_options", TINY_XOR),
                   kwargs.pop("evaluation", {"stress": False, "emap": False}), **kwargs)


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a plugin *distribution* the way pip leaves it on disk (module + dist-info with
    an entry point in the ``fusebench`` group) and put it on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))

    installed: list[str] = []

    def install(dist: str, version: str, module: str, source: str, entry_name: str | None = None) -> Path:
        sys.modules.pop(module, None)  # another test may have imported a module of that name
        installed.append(module)
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[fusebench]\n{entry_name or module} = {module}\n")
        (info / "RECORD").write_text("")
        return site

    yield install
    for module in installed:
        sys.modules.pop(module, None)


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """A private converted-data cache and home, and no data root from the environment."""
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FUSEBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def one_paragraph(error: BaseException) -> str:
    """An error's message, asserting it is one paragraph (what every user-facing error must be)."""
    message = str(error)
    assert "\n" not in message.strip(), message
    return message
