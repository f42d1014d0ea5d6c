"""MLflow tracking, written by the driver only.

Layout: one experiment per suite (``fusebench/<suite>``), a parent run per ``bench run``
invocation, a child run per RunSpec carrying params, ``fusebench.*`` tags, metrics,
per-epoch curves and the resolved spec as a JSON artifact.  Finished children are found
again by their ``fusebench.spec_hash`` tag, which is how a re-run skips work.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from benchmark_core.errors import FuseBenchError
from benchmark_core.processes import process_alive
from benchmark_core.record import TAG, RunResult, child_params, child_tags, flat_params, result_metrics, result_tags
from benchmark_core.specs import RunSpec
from benchmark_core.store import check_store, ensure_sqlite_store

if TYPE_CHECKING:
    from benchmark_core.predictions import Predictions

PLAN_ARTIFACT = "plan.json"
DEFAULT_SUITE = "default"


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def experiment_name(suite: str) -> str:
    return f"{TAG}/{suite}"


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a progress bar per artifact download; loading the predictions of a few
    hundred runs would fill the terminal with them."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


class Tracker:
    """Thin driver-side wrapper over ``MlflowClient`` for one suite's experiment."""

    def __init__(self, tracking_uri: str | None = None, suite: str = DEFAULT_SUITE):
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri or default_tracking_uri()
        self.suite = suite
        self._parent_tags: dict[str, str] = {}
        self._studies: dict[str, str] = {}  # study hash -> its run (parent of its trials and tuned runs)
        check_store(self.uri)
        try:
            ensure_sqlite_store(self.uri, self._artifact_location())
            self.client = MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._ensure_experiment(experiment_name(suite))
        except FuseBenchError:
            raise
        except Exception as exc:
            raise FuseBenchError(
                f"Cannot use the MLflow tracking URI {self.uri!r}: {type(exc).__name__}: {exc}. "
                "Point --tracking-uri (or MLFLOW_TRACKING_URI) at a writable sqlite:///path.db or a "
                "running `mlflow server` (http://host:port)."
            ) from exc

    def _artifact_location(self) -> str | None:
        parsed = urlparse(self.uri)
        if parsed.scheme == "sqlite":
            db = Path(self.uri[len("sqlite:///"):])
            return (db.parent / "mlruns").resolve().as_uri()
        return None

    def _ensure_experiment(self, name: str) -> str:
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            if existing.lifecycle_stage == "deleted":
                self.client.restore_experiment(existing.experiment_id)
            return existing.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=self._artifact_location())
        except Exception:
            existing = self.client.get_experiment_by_name(name)
            if existing is None:
                raise
            return existing.experiment_id

    # -- runs ------------------------------------------------------------------------------

    def start_parent(self, command: str, tags: Mapping[str, str] | None = None) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"bench run {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={f"{TAG}.kind": "parent", f"{TAG}.command": command[:5000],
                  f"{TAG}.driver_host": socket.gethostname(), f"{TAG}.driver_pid": str(os.getpid()),
                  **self._parent_tags, **(tags or {})},
        )
        return run.info.run_id

    @contextmanager
    def tagged_parents(self, tags: Mapping[str, str]) -> Iterator[None]:
        """Parent runs started inside get ``tags`` too (``bench tune`` marks its trial rounds, so
        their plans never count as missing runs of the default leaderboard)."""
        before = self._parent_tags
        self._parent_tags = {**before, **tags}
        try:
            yield
        finally:
            self._parent_tags = before

    # -- tuning studies (bench tune) ---------------------------------------------------------

    def open_study(self, record: Mapping[str, Any], n_trials: int) -> str:
        """The MLflow run of a tuning study (created, or reopened by a resumed search): the parent
        of its trial runs and of the runs of its chosen configuration.  Params: the study's
        identity (space, sampler, seeds); it is RUNNING while a driver searches it."""
        study = str(record["study"])
        found = self._search(f"tags.`{TAG}.kind` = 'study' and tags.`{TAG}.study` = '{study}'")
        tags = {f"{TAG}.driver_host": socket.gethostname(), f"{TAG}.driver_pid": str(os.getpid()),
                f"{TAG}.n_trials": str(n_trials)}
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            self._log_batch(run_id, tags=tags)
        else:
            run = self.client.create_run(
                self.experiment_id, run_name=f"study {record['method']}/{record['dataset']}",
                tags={f"{TAG}.kind": "study", f"{TAG}.study": study, f"{TAG}.method": str(record["method"]),
                      f"{TAG}.dataset": str(record["dataset"]), **tags})
            run_id = run.info.run_id
            params = flat_params({k: v for k, v in record.items() if k != "space"})
            params["space"] = json.dumps(record["space"], sort_keys=True)
            self._log_batch(run_id, params=params)
        self._studies[study] = run_id
        return run_id

    def close_study(self, run_id: str, summary: Mapping[str, Any], status: str = "FINISHED") -> None:
        """Store the search (``study.json``: every trial, its parameters and score, the choice)
        and end the study run."""
        self.client.log_dict(run_id, dict(summary), "study.json")
        chosen = summary.get("chosen_trial")
        tags = {f"{TAG}.chosen_trial": "none" if chosen is None else str(chosen),
                f"{TAG}.chosen_params": json.dumps(summary.get("chosen_params"), sort_keys=True)[:5000]}
        self._log_batch(run_id, tags=tags)
        self.end_run(run_id, status)

    def finished_trials(self) -> dict[str, dict[str, float]]:
        """spec_hash -> metrics of every finished trial run of the suite (what a resumed search
        tells its sampler instead of training again)."""
        runs = self._search(f"tags.`{TAG}.kind` = 'child' and tags.`{TAG}.view` = 'trial' "
                            "and attributes.status = 'FINISHED'")
        return {r.data.tags.get(f"{TAG}.spec_hash"): dict(r.data.metrics) for r in runs}

    def recover_interrupted(self) -> list[str]:
        """Close runs left RUNNING by a driver that was killed (SIGKILL, power loss) or that
        stopped when it could no longer write (a full disk).

        A parent run is stale when its driver ran on this host and that process is gone; it
        and its still-RUNNING children are marked KILLED (never FINISHED, so a re-run redoes
        them).  A RUNNING child whose parent run has ended is stale too: its driver closed the
        parent but could not close the child.  Parents of other hosts are left alone: we cannot
        tell whether they still run.  Returns the labels of the children that were closed.
        """
        closed = []
        parents = [run for kind in ("parent", "study")  # a tuning study parents its trial runs
                   for run in self._search(f"tags.`{TAG}.kind` = '{kind}' and attributes.status = 'RUNNING'")]
        for parent in parents:
            tags = parent.data.tags
            if tags.get(f"{TAG}.driver_host") != socket.gethostname():
                continue
            pid = int(tags.get(f"{TAG}.driver_pid", "0") or 0)
            if pid == os.getpid() or process_alive(pid):
                continue
            children = self._search(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' "
                                    "and attributes.status = 'RUNNING'")
            for child in children:
                self.mark_killed(child.info.run_id, f"driver process {pid} died before the run finished")
                closed.append(child.info.run_name)
            self.end_run(parent.info.run_id, "KILLED")
        for child in self._search(f"tags.`{TAG}.kind` = 'child' and attributes.status = 'RUNNING'"):
            parent_id = child.data.tags.get("mlflow.parentRunId")
            if parent_id and self.client.get_run(parent_id).info.status != "RUNNING":
                self.mark_killed(child.info.run_id, "its driver ended before it could close this run")
                closed.append(child.info.run_name)
        return closed

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def mark_killed(self, run_id: str, reason: str) -> None:
        """Close an interrupted run as KILLED (so a re-run does it again) and say why."""
        self.end_run(run_id, "KILLED")  # the status first: an in-place update, it succeeds even on a full disk
        self._log_batch(run_id, tags={f"{TAG}.status": "killed", f"{TAG}.error": reason})

    def mark_failed(self, run_id: str, reason: str) -> None:
        """Close a run the driver could not finish because of an error (not an interrupt)."""
        self.end_run(run_id, "FAILED")
        self._log_batch(run_id, tags={f"{TAG}.status": "failed", f"{TAG}.error": reason[:4900]})

    def finished_hashes(self) -> dict[str, str]:
        """spec_hash -> run_id of every finished child run of the suite."""
        runs = self._search(f"tags.`{TAG}.kind` = 'child' and attributes.status = 'FINISHED'")
        return {r.data.tags.get(f"{TAG}.spec_hash"): r.info.run_id for r in runs}

    def start_child(self, parent_id: str, spec: RunSpec, family: str) -> str:
        """The child run of one RunSpec (tags and params: :mod:`benchmark_core.record`); a trial
        or tuned run of ``bench tune`` is a child of its study's run."""
        tags = {"mlflow.parentRunId": parent_id, **child_tags(spec, family)}
        if spec.tuning:
            tags["mlflow.parentRunId"] = self._studies.get(str(spec.tuning["study"]), parent_id)
        run = self.client.create_run(self.experiment_id, run_name=spec.label, tags=tags)
        run_id = run.info.run_id
        self._log_batch(run_id, params=child_params(spec))
        self.client.log_dict(run_id, spec.to_dict(), "spec.json")
        return run_id

    def log_result(self, run_id: str, result: RunResult) -> None:
        """Record a RunResult on its child run and close it (FAILED unless finished)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value, step in result_metrics(result)]
        self._log_batch(run_id, metrics=metrics, tags=result_tags(result))
        self.client.log_dict(run_id, dict(result.info), "info.json")
        if result.traceback:
            self.client.log_text(run_id, result.traceback, "traceback.txt")
        if result.predictions is not None:
            self._log_predictions(run_id, result.predictions)
        self.end_run(run_id, "FINISHED" if result.ok else "FAILED")

    def _log_predictions(self, run_id: str, predictions: Predictions) -> None:
        """The run's ``predictions.npz``, logged before the run is closed: a FINISHED run
        written by this version always has it, so its metrics can be recomputed later."""
        from benchmark_core.predictions import ARTIFACT, save

        with tempfile.TemporaryDirectory(prefix="fusebench-pred-") as folder:
            self.client.log_artifact(run_id, str(save(predictions, Path(folder) / ARTIFACT)))

    def log_plan(self, parent_id: str, planned: Iterable[Mapping[str, Any]]) -> None:
        """Store a ``bench run``'s whole plan on its parent run (``plan.json``: spec_hash, method,
        dataset, seed, family per run), so runs that never started are still known."""
        self.client.log_dict(parent_id, {"runs": list(planned)}, PLAN_ARTIFACT)

    def planned_runs(self) -> list[dict[str, Any]]:
        """Every run any ``bench run`` of the suite planned (from the parents' plans), with the
        planning parent's start time."""
        out = []
        for parent in self._search(f"tags.`{TAG}.kind` = 'parent'"):
            run_id = parent.info.run_id
            if PLAN_ARTIFACT not in {a.path for a in self.client.list_artifacts(run_id)}:
                continue  # a parent of an older FuseBench, or a publish run
            with tempfile.TemporaryDirectory(prefix="fusebench-plan-") as folder, _no_progress_bar(), \
                    open(self.client.download_artifacts(run_id, PLAN_ARTIFACT, folder), encoding="utf-8") as fh:
                runs = json.load(fh).get("runs", [])
            view = parent.data.tags.get(f"{TAG}.view")  # bench tune's trial rounds and chosen runs
            out += [{**run, "start_time": parent.info.start_time, **({"view": view} if view else {})} for run in runs]
        return out

    def load_predictions(self, run_id: str) -> Predictions | None:
        """A run's stored :class:`~benchmark_core.predictions.Predictions`, or None for a run
        logged before FuseBench stored them (or one that did not finish)."""
        from benchmark_core.predictions import ARTIFACT, read

        if ARTIFACT not in {a.path for a in self.client.list_artifacts(run_id)}:
            return None
        with tempfile.TemporaryDirectory(prefix="fusebench-pred-") as folder, _no_progress_bar():
            return read(self.client.download_artifacts(run_id, ARTIFACT, folder), run_id)

    def _log_batch(self, run_id: str, metrics: list | None = None, params: Mapping[str, str] | None = None,
                   tags: Mapping[str, str] | None = None) -> None:
        from mlflow.entities import Param, RunTag

        for chunk in _chunks(metrics or [], 1000):
            self.client.log_batch(run_id, metrics=chunk)
        for chunk in _chunks([Param(k, v[:6000]) for k, v in (params or {}).items()], 100):
            self.client.log_batch(run_id, params=chunk)
        for chunk in _chunks([RunTag(k, v) for k, v in (tags or {}).items()], 100):
            self.client.log_batch(run_id, tags=chunk)

    def _search(self, filter_string: str) -> list:
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string,
                                           max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def child_runs(self) -> list:
        """All child runs of the suite (any status)."""
        return self._search(f"tags.`{TAG}.kind` = 'child'")
