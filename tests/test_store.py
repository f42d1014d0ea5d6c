"""The tracking store cannot be bricked, and drivers on one store never train a run twice
(issue 13 §1), tested with real `bench run` processes and real SQLite/MLflow stores."""

from __future__ import annotations

import os
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from store_checks import BENCH, assert_store_invariants, child_statuses, start_driver

from benchmark_core.cli import main
from benchmark_core.store import schema_problem
from benchmark_core.tracking import Tracker

PLAN = ["--datasets", "synthetic-xor", "--seeds", "0", "--epochs", "1", "--dataset-option", "synthetic-xor.n=200",
        "--no-stress", "--no-emap"]


def run_args(methods: str) -> list[str]:
    return ["run", "--methods", methods, *PLAN]


def _half_built(path: Path, with_run: bool = False) -> None:
    """What a driver killed inside MLflow's schema creation leaves: MLflow's initial tables,
    no migration stamp (MLflow writes it last)."""
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    InitialBase.metadata.create_all(engine)  # MLflow's first step; its migrations never ran
    if with_run:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
                                 "VALUES (1, 'x', 'active')")
            conn.exec_driver_sql("INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage, status) "
                                 "VALUES ('r1', 1, 'active', 'FINISHED')")
    engine.dispose()


def test_half_built_store_without_runs_is_rebuilt(tmp_path, monkeypatch, capsys):
    db = tmp_path / "mlflow.db"
    _half_built(db)
    assert schema_problem(db) is not None
    monkeypatch.chdir(tmp_path)
    assert main(run_args("additive")) == 0  # before issue 13: "table ... already exists" on every run
    assert schema_problem(db) is None
    assert list(tmp_path.glob("mlflow.db.incomplete-*")), "the incomplete store is kept aside, not deleted"
    assert_store_invariants(db, planned=1)


def test_half_built_store_with_runs_is_reported_not_rebuilt(tmp_path, monkeypatch, capsys):
    db = tmp_path / "mlflow.db"
    _half_built(db, with_run=True)
    before = db.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(run_args("additive")) == 2
    err = capsys.readouterr().err
    assert f"The MLflow store {db} is damaged" in err and "holds 1 run record(s)" in err
    assert "mlflow db upgrade" in err and err.count("\n") <= 2  # one paragraph
    assert db.read_bytes() == before


def _overlapping_drivers(tmp_path: Path) -> list[subprocess.Popen]:
    first = start_driver(tmp_path, run_args("additive,late,tensor"))
    second = start_driver(tmp_path, run_args("late,tensor,early"))
    return [first, second]


@pytest.mark.parametrize("initialised", [False, True], ids=["fresh-store", "initialised-store"])
def test_two_drivers_at_once_never_crash_or_train_a_run_twice(tmp_path, initialised):
    db = tmp_path / "mlflow.db"
    if initialised:
        Tracker(f"sqlite:///{db}")
    drivers = _overlapping_drivers(tmp_path)
    outputs = [d.communicate(timeout=600) for d in drivers]
    for driver, (_out, err) in zip(drivers, outputs, strict=True):
        # before issue 13: on a fresh store one crashed ("Online migration expected"); on an
        # initialised one both trained late and tensor
        assert driver.returncode == 0, err[-2000:]
    assert_store_invariants(db, planned=4)  # additive, late, tensor, early: each trained once
    text = "".join(out for out, _ in outputs)
    trained = sum(int(part.split(" trained")[0].rsplit(" ", 1)[-1]) for part in text.split("Done:")[1:])
    assert trained == 4


def test_full_disk_reports_the_real_cause_and_keeps_finished_runs(tmp_path, monkeypatch, capsys):
    db = tmp_path / "mlflow.db"
    Tracker(f"sqlite:///{db}")
    limit = db.stat().st_size + 40_000  # room for the first run or two, then writes fail

    def limited() -> None:  # a file-size limit makes SQLite's writes fail as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = run_args("additive,late,tensor,early")
    driver = start_driver(tmp_path, args, preexec_fn=limited)
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 1, err[-2000:]
    assert "Traceback" not in err and "interrupted (Ctrl-C/SIGTERM)" not in err  # before: 200 lines, wrong reason
    message = next(line for line in err.splitlines() if line.startswith("bench: error:"))
    assert "The suite stopped: OperationalError" in message and "file-size limit" in message
    assert "re-run the same command to resume" in message
    finished_before = {h for status, h in child_statuses(db) if status == "FINISHED"}
    assert finished_before, "some runs finished before the store filled up"

    monkeypatch.chdir(tmp_path)
    assert main(args) == 0
    assert f"Skipping {len(finished_before)} of 4 runs already finished" in capsys.readouterr().out
    assert_store_invariants(db, planned=4)


class _SilentServer:
    """A TCP server that accepts connections and never answers (a hung tracking server)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_unresponsive_http_store_fails_in_seconds_before_anything_is_created(tmp_path):
    server = _SilentServer()
    try:
        driver = subprocess.run([*BENCH, *run_args("additive"), "--tracking-uri", f"http://127.0.0.1:{server.port}"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)  # before: 258 s
    finally:
        server.close()
    assert driver.returncode == 2
    assert f"no server answered at http://127.0.0.1:{server.port}/health within 5 s" in driver.stderr
    assert not list(tmp_path.iterdir())


def test_store_under_a_file_is_refused_at_once(tmp_path, capsys, monkeypatch):
    (tmp_path / "notadir").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert main([*run_args("additive"), "--tracking-uri", f"sqlite:///{tmp_path}/notadir/mlflow.db"]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root bypasses directory permissions")
def test_read_only_folder_is_refused_at_once(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    monkeypatch.chdir(tmp_path)
    try:
        assert main([*run_args("additive"), "--tracking-uri", f"sqlite:///{folder}/mlflow.db"]) == 2
    finally:
        folder.chmod(0o755)
    assert "is not writable" in capsys.readouterr().err


def test_claims_of_a_dead_driver_are_taken_over(tmp_path):
    from benchmark_core.suite.claims import Claims

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = Claims(store).path
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO claims VALUES ('abc', ?, ?, 'x/y/seed0', 0)",
                     (socket.gethostname(), int(dead.stdout)))
        conn.execute("INSERT INTO claims VALUES ('def', 'another-host', 1, 'x/y/seed1', 0)")
    mine = Claims(store)
    taken = mine.acquire([("abc", "x/y/seed0"), ("def", "x/y/seed1"), ("ghi", "x/y/seed2")])
    assert set(taken) == {"def"} and mine.held == {"abc", "ghi"}  # another host's claim is respected
    other = Claims(store)
    other.pid = os.getpid() + 10**6  # a second live driver would see this one's claims as held
    assert set(other.acquire([("abc", "x")])) == {"abc"}
    mine.release_all()
    assert Claims(store).acquire([("abc", "x")]) == {}
