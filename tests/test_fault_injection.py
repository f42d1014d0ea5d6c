"""Fault injection that stays in CI (issue 13 §4): real `bench run` drivers are killed at a
sweep of moments — while creating a new store, right after a run is opened, right after a
result is logged — and the same command is then run to completion.  Whatever the moment and
the signal, the store must hold every planned run finished exactly once, nothing RUNNING,
and pass SQLite's integrity check."""

from __future__ import annotations

import signal

import pytest
from store_checks import assert_store_invariants, child_statuses, start_driver, stop, wait_for

from benchmark_core.cli import main

ARGS = ["run", "--methods", "additive,late", "--datasets", "synthetic-xor", "--seeds", "0", "--epochs", "1",
        "--dataset-option", "synthetic-xor.n=200", "--no-stress", "--no-emap"]
PLANNED = 2


def _store_being_created(tmp_path) -> bool:
    """The moment a new store appears: FuseBench's private build file, or the store itself."""
    return any(p.name.startswith(".mlflow.db") or p.name == "mlflow.db" for p in tmp_path.iterdir())


def _resume_and_check(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(ARGS)
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert_store_invariants(tmp_path / "mlflow.db", PLANNED)


# (signal, seconds after the store starts to appear): inside MLflow's schema creation and
# migrations, which take about a second here, and just after it.
CREATION = [(signal.SIGKILL, 0.0), (signal.SIGTERM, 0.2), (signal.SIGINT, 0.5)]


@pytest.mark.parametrize("sig,delay", CREATION, ids=[f"{signal.Signals(s).name}+{d}s" for s, d in CREATION])
def test_killed_while_creating_the_store(tmp_path, monkeypatch, capsys, sig, delay):
    driver = start_driver(tmp_path, ARGS)
    assert wait_for(lambda: _store_being_created(tmp_path)), driver.communicate()[1][-2000:]
    wait_for(lambda: False, timeout=delay)
    stop(driver, sig)
    _resume_and_check(tmp_path, monkeypatch, capsys)


def _opened(tmp_path, n: int):
    return lambda: len(child_statuses(tmp_path / "mlflow.db")) >= n


def _finished(tmp_path, n: int):
    return lambda: sum(s == "FINISHED" for s, _ in child_statuses(tmp_path / "mlflow.db")) >= n


# (moment, signal); SIGKILL and SIGINT right after the first result are in test_resume_and_isolation.
MID_SUITE = [("run-opened", signal.SIGKILL), ("second-run-opened", signal.SIGTERM), ("result-logged", signal.SIGTERM)]
MOMENTS = {"run-opened": lambda p: _opened(p, 1), "second-run-opened": lambda p: _opened(p, 2),
           "result-logged": lambda p: _finished(p, 1)}


@pytest.mark.parametrize("moment,sig", MID_SUITE, ids=[f"{m}-{signal.Signals(s).name}" for m, s in MID_SUITE])
def test_killed_mid_suite(tmp_path, monkeypatch, capsys, moment, sig):
    driver = start_driver(tmp_path, ARGS)
    reached = wait_for(MOMENTS[moment](tmp_path))
    stop(driver, sig)
    if not reached:  # the driver ended first; it must have finished cleanly then
        assert driver.returncode == 0, driver.stderr.read()[-2000:]
    _resume_and_check(tmp_path, monkeypatch, capsys)
