"""Run claims: two ``bench run`` drivers on one store never train the same run.

Skipping finished runs by ``spec_hash`` is not enough when two drivers start at once: both
see a run as not finished and both train it.  So a driver *claims* each run before handing
it to an executor, in one SQLite transaction (``BEGIN IMMEDIATE`` serialises writers), and
releases the claim once the result is recorded or the driver stops.  A claim whose driver
is gone (same host, process no longer alive) is stale and is taken over, the same rule that
closes the MLflow runs of a killed driver.  Claims of another host are respected.

Where: next to a SQLite store (``mlflow.db`` -> ``mlflow.db.claims``); for other stores (an
``mlflow server``) in ``~/.fusebench/claims/``, which coordinates drivers on one machine.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmark_core.processes import process_alive
from benchmark_core.store import sqlite_path

_SCHEMA = """CREATE TABLE IF NOT EXISTS claims (
    spec_hash TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, label TEXT, claimed_at REAL)"""


def claims_path(uri: str) -> Path:
    db = sqlite_path(uri)
    if db is not None:
        return db.with_name(db.name + ".claims")
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return Path.home() / ".fusebench" / "claims" / f"{digest}.sqlite"


@dataclass(frozen=True)
class Holder:
    """Who holds a claim."""

    host: str
    pid: int
    label: str

    def __str__(self) -> str:
        return f"{self.label} (driver pid {self.pid} on {self.host})"


class Claims:
    """This driver's claims on runs of one tracking store."""

    def __init__(self, uri: str, path: Path | None = None):
        self.path = path or claims_path(uri)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.held: set[str] = set()
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 60000")
        return conn

    def _stale(self, host: str, pid: int) -> bool:
        return host == self.host and (pid == self.pid or not process_alive(pid))

    def acquire(self, items: Iterable[tuple[str, str]]) -> dict[str, Holder]:
        """Claim every (spec_hash, label) not held by a live driver; returns the ones another
        driver holds.  One transaction, so two drivers split an overlapping plan cleanly."""
        taken: dict[str, Holder] = {}
        claimed: list[str] = []
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for spec_hash, label in items:
                row = conn.execute("SELECT host, pid, label FROM claims WHERE spec_hash = ?", (spec_hash,)).fetchone()
                if row is not None and not self._stale(row[0], int(row[1])):
                    taken[spec_hash] = Holder(row[0], int(row[1]), row[2] or spec_hash)
                    continue
                conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                             (spec_hash, self.host, self.pid, label, time.time()))
                claimed.append(spec_hash)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        self.held.update(claimed)
        return taken

    def release(self, spec_hashes: Iterable[str]) -> None:
        """Give claims back (only this driver's own)."""
        hashes = [h for h in spec_hashes if h in self.held]
        if not hashes:
            return
        conn = self._connect()
        try:
            conn.executemany("DELETE FROM claims WHERE spec_hash = ? AND host = ? AND pid = ?",
                             [(h, self.host, self.pid) for h in hashes])
        finally:
            conn.close()
        self.held -= set(hashes)

    def release_all(self) -> None:
        self.release(list(self.held))
