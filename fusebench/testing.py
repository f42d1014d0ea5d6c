"""Test helpers and pytest fixtures for FuseBench plugin authors.

Load the fixtures in your plugin's ``tests/conftest.py``::

    pytest_plugins = ["fusebench.testing"]

Helpers (plain functions, usable without pytest):

* ``make_registry(*plugins)`` — a fresh registry from the installed entry points plus the
  given plugin objects (modules or classes with ``@hookimpl`` functions), so a plugin can be
  tested from a source checkout before it is installed;
* ``run_once(method, dataset, ...)`` — one tiny end-to-end run (train, evaluate) returning
  the ``RunResult``; ``assert_run_ok(result)`` fails with the run's traceback;
* ``check_plugin(name)`` / ``check_method(spec)`` / ``check_dataset(spec, registry)`` /
  ``check_metric(spec)`` / ``check_stress(spec)`` / ``check_executor(spec)`` — the checks
  behind ``bench validate-plugin``, returning a list of problems (empty when clean);
* ``tiny_task(...)``, ``tiny_batch(task)``, ``tiny_data(task)`` (train/validation/test splits as
  the training loop takes them), ``random_metric_inputs(kind)`` — small inputs.

Fixtures (all prefixed ``fusebench_`` so they never shadow yours):

* ``fusebench_env`` — hermetic caches and environment for one test (offline Hugging Face,
  temporary caches, no ambient ``MLFLOW_TRACKING_URI``/``FUSEBENCH_*`` selection variables,
  the CLI's cached registry cleared before and after); it blocks the entry points that
  ``fusebench_block_plugins`` lists;
* ``fusebench_block_plugins`` — the explicit block list (default: none); override it in your
  ``conftest.py`` to skip an installed plugin that is broken or in the way;
* ``fusebench_registry`` — a fresh registry of everything installed;
* ``fusebench_make_registry`` — the ``make_registry`` factory (clears the CLI cache on teardown);
* ``fusebench_data_dir`` — an empty data root set as ``$FUSEBENCH_DATA_DIR`` (what
  ``bench run --data-dir`` sets), for testing a dataset that reads files via ``data_path``;
* ``fusebench_budget`` — ``TINY_BUDGET`` (one epoch, batch 32);
* ``fusebench_tracking_uri`` — a throw-away SQLite MLflow store, also set as
  ``MLFLOW_TRACKING_URI`` for the test;
* ``fusebench_cli`` — run ``bench ...`` in-process in a temporary working directory:
  ``result = fusebench_cli("list", "methods")`` gives ``result.code``, ``.out``, ``.err``.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmark_core.engine import data as _data
from benchmark_core.plugins import Registry, get_registry, make_plugin_manager
from benchmark_core.record import RunResult
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.suite.runner import execute, resolve_hparams
from benchmark_core.suite.validate import (
    ValidationReport,
    check_dataset,
    check_executor,
    check_method,
    check_metric,
    check_stress,
    random_metric_inputs,
    tiny_batch,
    tiny_data,
    tiny_target,
    tiny_task,
    validate_plugin,
)

__all__ = [
    "TINY_BUDGET", "CliResult", "ValidationReport", "assert_run_ok", "check_dataset", "check_executor",
    "check_method", "check_metric", "check_plugin", "check_stress", "make_registry",
    "random_metric_inputs", "run_cli", "run_once", "tiny_batch", "tiny_data", "tiny_target", "tiny_task",
    "validate_plugin",
]

#: One epoch, small batches, no early stopping: enough to prove a run works end to end.
TINY_BUDGET = Budget(epochs=1, batch_size=32, patience=0)


# -- helpers -----------------------------------------------------------------------------------

def make_registry(*plugins: Any, entrypoints: bool = True, load: Iterable[str] | None = None,
                  block: Iterable[str] | None = None) -> Registry:
    """A fresh registry: installed entry points (FuseBench's built-ins and every installed
    plugin, unless ``entrypoints=False``) plus ``plugins``.  A plugin object already loaded
    through its entry point (your package, once installed) is not registered twice."""
    pm = make_plugin_manager(entrypoints=entrypoints, load=load, block=block)
    for plugin in plugins:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    pm.check_pending()
    return Registry(pm)


def run_once(method: str, dataset: str, *, registry: Registry | None = None, seed: int = 0,
             budget: Budget | None = None, hparams: Mapping[str, Any] | None = None,
             dataset_options: Mapping[str, Any] | None = None, stress: bool = False,
             emap: bool = False, evaluation: Mapping[str, Any] | None = None) -> RunResult:
    """Train and evaluate ``method`` on ``dataset`` once (never raises: check ``result.ok``
    or call ``assert_run_ok``).  Stress tests and EMAP are off unless asked for."""
    registry = registry or get_registry()
    spec = RunSpec(
        method=method, dataset=dataset, seed=seed, budget=budget or TINY_BUDGET,
        hparams=resolve_hparams(registry.method(method), dict(hparams or {})),
        dataset_options=dict(dataset_options or {}),
        evaluation={"stress": stress, "emap": emap, **dict(evaluation or {})},
    )
    return execute(spec, registry)


def assert_run_ok(result: RunResult) -> RunResult:
    """Fail with the run's own error and traceback unless it finished."""
    if not result.ok:
        pytest.fail(f"{result.spec.label} {result.status}: {result.error}\n{result.traceback or ''}",
                    pytrace=False)
    return result


def check_plugin(name: str, registry: Registry | None = None) -> list[str]:
    """The problems ``bench validate-plugin NAME`` would report (empty list: clean)."""
    return validate_plugin(name, registry).problems


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    """Run ``bench ARGS`` in-process with a freshly built registry; capture its output."""
    from benchmark_core.cli import main

    get_registry.cache_clear()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        get_registry.cache_clear()
    return CliResult(code, out.getvalue(), err.getvalue())


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def fusebench_block_plugins() -> list[str]:
    """Entry-point names ``fusebench_env`` blocks (FUSEBENCH_BLOCK_PLUGINS).  The ambient variable
    is cleared, for tests that do not depend on the machine; override this fixture to skip an
    installed plugin explicitly, e.g. ``return ["broken_plugin"]``."""
    return []


@pytest.fixture
def fusebench_env(tmp_path_factory, monkeypatch, fusebench_block_plugins):
    """Hermetic environment for one test: offline Hugging Face, temporary caches, no ambient
    tracking URI or plugin selection (only the explicit ``fusebench_block_plugins``), fresh CLI
    registry and in-process data cache."""
    cache = tmp_path_factory.mktemp("fusebench-cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "hf"))
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(cache / "fusebench"))
    for name in ("MLFLOW_TRACKING_URI", "FUSEBENCH_DATA_DIR", "FUSEBENCH_LOAD_PLUGINS", "FUSEBENCH_BLOCK_PLUGINS"):
        # set, then delete: monkeypatch then restores the variable after the test even when it was
        # unset before and the test set it (``bench run --data-dir`` sets FUSEBENCH_DATA_DIR)
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    if fusebench_block_plugins:
        monkeypatch.setenv("FUSEBENCH_BLOCK_PLUGINS", ",".join(fusebench_block_plugins))
    get_registry.cache_clear()
    _data._CACHE.clear()
    yield cache
    get_registry.cache_clear()
    _data._CACHE.clear()


@pytest.fixture
def fusebench_registry(fusebench_env) -> Registry:
    """A fresh registry of everything installed (built-ins and plugins)."""
    return make_registry()


@pytest.fixture
def fusebench_make_registry(fusebench_env):
    """``make_registry(*plugins, entrypoints=True, load=None, block=None)`` for this test."""
    return make_registry


@pytest.fixture
def fusebench_data_dir(fusebench_env, tmp_path, monkeypatch) -> Path:
    """An empty data root, set as ``$FUSEBENCH_DATA_DIR`` as ``bench run --data-dir`` would:
    put a dataset's test files in ``fusebench_data_dir / "<dataset>"`` and its loader finds
    them through ``fusebench.data_path``."""
    root = tmp_path / "fusebench-data"
    root.mkdir()
    monkeypatch.setenv("FUSEBENCH_DATA_DIR", str(root))
    return root


@pytest.fixture
def fusebench_budget() -> Budget:
    return TINY_BUDGET


@pytest.fixture
def fusebench_tracking_uri(tmp_path, monkeypatch) -> str:
    """A throw-away MLflow store (SQLite in the test's tmp dir), also in MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def fusebench_cli(fusebench_env, tmp_path, monkeypatch):
    """``fusebench_cli("run", "--methods", ...)`` -> CliResult, run in a temporary directory
    (so ``bench run`` writes its default ``mlflow.db`` there)."""
    workdir = tmp_path / "bench-cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return run_cli


def _set_env_default() -> None:
    # importing the module (e.g. through pytest_plugins) must not need network access
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


_set_env_default()
