"""Opening an MLflow tracking store so that no fault can leave it unusable.

MLflow builds a new SQLite store in place: it creates the tables, then runs its schema
migrations.  A driver killed in between (Ctrl-C in the first second of the very first
``bench run``) leaves a half-built schema on which every later command fails with "table ...
already exists".  So a new SQLite store is built *aside*, in a private file in the same
folder, and hard-linked into place only once complete: ``link`` fails if the name exists,
so two drivers creating the same store at once cannot clobber each other, and the store
either does not exist or is whole.  A half-built store left by an older FuseBench is rebuilt
when it holds no runs, and reported otherwise.

Everything here runs *before* MLflow is imported for the store: an HTTP server is probed once
with a short timeout and a SQLite folder is checked for write access, so an unreachable or
read-only store fails in seconds with one paragraph instead of minutes of client retries.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from benchmark_core.errors import FuseBenchError
from benchmark_core.processes import process_alive

log = logging.getLogger("fusebench")

PROBE_TIMEOUT_S = 5.0
_BUILDING = ".building-"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def _unusable(uri: str, reason: str) -> FuseBenchError:
    return FuseBenchError(
        f"Cannot use the MLflow tracking URI {uri!r}: {reason}. Point --tracking-uri (or "
        "MLFLOW_TRACKING_URI) at a writable sqlite:///path.db or a running `mlflow server` "
        "(http://host:port)."
    )


def check_store(uri: str) -> None:
    """Fail fast, creating nothing, when the store cannot be used: an HTTP server that does
    not answer within ``PROBE_TIMEOUT_S``, or a SQLite file or folder that is not writable."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        _probe_http(uri)
        return
    path = sqlite_path(uri)
    if path is None:
        return
    folder = path.parent
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise _unusable(uri, f"{existing or folder} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _unusable(uri, f"the folder {existing} is not writable")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise _unusable(uri, f"the file {path} is not readable and writable")


def _probe_http(uri: str) -> None:
    """One GET with a short timeout: any HTTP answer means a server is there."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answered (e.g. 404 from a proxy in front of the API): the client will say more
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _unusable(uri, f"no server answered at {url} within {PROBE_TIMEOUT_S:.0f} s ({reason})") from None


# -- SQLite stores --------------------------------------------------------------------------------

def schema_problem(path: Path) -> str | None:
    """Why the SQLite store at ``path`` is not a complete MLflow schema, or None.

    Complete means: MLflow's own tables exist and the migration stamp is MLflow's head
    revision (it is written last, so a store killed mid-migration never has it)."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "alembic_version" not in tables:
                return "it has no schema version (its creation was interrupted)"
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        return f"it is not a readable SQLite database ({exc})"
    head = _get_latest_schema_revision()
    if version is None or version[0] != head:
        found = version[0] if version else "none"
        return f"its schema version is {found}, not {head} (its creation or migration did not finish)"
    return None


def _run_count(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.DatabaseError:
        return 0


def _remove_stale_builds(path: Path) -> None:
    """Delete private build files whose builder process is gone (killed mid-build)."""
    for leftover in path.parent.glob(f".{path.name}{_BUILDING}*"):
        host_pid = leftover.name.rsplit(_BUILDING, 1)[-1].split(".")[0]
        host, _, pid = host_pid.rpartition("-")
        if host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _build_aside(path: Path, artifact_root: str | None) -> None:
    """Create a complete store in a private file, then link it into place (if still free)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    tmp = path.with_name(f".{path.name}{_BUILDING}{socket.gethostname()}-{os.getpid()}.{time.monotonic_ns()}")
    try:
        store = SqlAlchemyStore(f"sqlite:///{tmp}", artifact_root or tmp.parent.resolve().as_uri())
        store.engine.dispose()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another driver created the store first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def ensure_sqlite_store(uri: str, artifact_root: str | None = None) -> None:
    """Make sure the SQLite store of ``uri`` exists with a complete schema (see module doc)."""
    path = sqlite_path(uri)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(path)
    if path.exists():
        problem = schema_problem(path)
        if problem is None:
            return
        runs = _run_count(path)
        if runs:
            raise FuseBenchError(
                f"The MLflow store {path} is damaged: {problem}, and it holds {runs} run record(s), so "
                "FuseBench will not rebuild it. Move it aside and re-run to start a new store, or repair it "
                f"with `mlflow db upgrade {uri}`."
            )
        aside = path.with_name(f"{path.name}.incomplete-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            pass  # another driver moved it first
        log.warning("%s was an incomplete MLflow store (%s) holding no runs; moved it to %s and created a new one.",
                    path, problem, aside.name)
    _build_aside(path, artifact_root)
