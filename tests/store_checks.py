"""Shared helpers for the tests that fault real `bench run` processes: start a driver, read
the store with plain read-only SQL (never through MLflow, which would race the driver), and
check the invariants a store must keep whatever happened to its drivers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

BENCH = [sys.executable, "-m", "benchmark_core.cli"]


def start_driver(cwd: Path, args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*BENCH, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)


def query(db: Path, sql: str) -> list[tuple]:
    """Read-only SQL on the store; [] while it does not exist or is being written."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []


CHILDREN = ("SELECT runs.status, spec.value FROM runs "
            "JOIN tags kind ON kind.run_uuid = runs.run_uuid AND kind.key = 'fusebench.kind' AND kind.value = 'child' "
            "JOIN tags spec ON spec.run_uuid = runs.run_uuid AND spec.key = 'fusebench.spec_hash'")


def child_statuses(db: Path) -> list[tuple[str, str]]:
    return [(status, spec_hash) for status, spec_hash in query(db, CHILDREN)]


def child_runs(db: Path) -> list:
    """Every child run of the default suite through MLflow: only once the drivers have exited."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("fusebench/default")
    if exp is None:
        return []
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("fusebench.kind") == "child"]


def wait_for(predicate, timeout: float = 180.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def assert_store_invariants(db: Path, planned: int) -> None:
    """Every planned run finished exactly once, nothing left RUNNING, SQLite integrity ok."""
    rows = child_statuses(db)
    assert rows, "no child runs recorded"
    finished = Counter(spec_hash for status, spec_hash in rows if status == "FINISHED")
    assert len(finished) == planned, f"{len(finished)} of {planned} planned runs finished: {rows}"
    assert set(finished.values()) == {1}, f"a run finished more than once: {finished}"
    assert not [r for r in rows if r[0] == "RUNNING"], f"runs left RUNNING: {rows}"
    assert not query(db, "SELECT run_uuid FROM runs WHERE status = 'RUNNING'"), "a parent run was left RUNNING"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


def killed_by(sig: int) -> str:
    return signal.Signals(sig).name
