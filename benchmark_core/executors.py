"""The executor contract: run RunSpecs somewhere, hand results back to the driver.

Executors only compute; the driver alone writes to MLflow (it has already created the
database, experiment and parent run before anything is handed out).  ``run`` yields results
in completion order and calls ``on_start(spec)`` when a run begins (serial) or is handed to
a worker (parallel), so the driver can open its MLflow child run.  Every worker pins torch's
intra-op threads to the run's ``budget.threads`` (``seed_everything``), so results do not
depend on where they ran.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from .errors import FuseBenchError
from .runner import RunResult, execute
from .specs import RunSpec

ProgressFactory = Callable[[RunSpec], Callable[[int, dict[str, float]], None] | None]


class Executor(Protocol):
    name: str

    def run(self, specs: Sequence[RunSpec], on_start: Callable[[RunSpec], None],
            progress: ProgressFactory | None = None) -> Iterator[RunResult]:
        ...

    def shutdown(self) -> None:
        ...


class SerialExecutor:
    """Runs specs one after another in this process (default; easiest to debug)."""

    name = "serial"

    def __init__(self, registry=None, **_: Any):
        self.registry = registry

    def run(self, specs, on_start, progress=None):
        for spec in specs:
            on_start(spec)
            yield execute(spec, self.registry, progress(spec) if progress else None)

    def shutdown(self) -> None:
        pass


def _worker_init() -> None:
    # Each worker computes with the threads its RunSpec asks for (set per run); keep
    # OpenMP/MKL from spawning a pool per core before torch's setting takes effect.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def _execute_in_worker(spec: RunSpec) -> RunResult:
    return execute(spec)


class ProcessExecutor:
    """A pool of ``spawn``-ed worker processes, one run per worker at a time.

    ``workers`` defaults to the CPU count divided by the runs' thread budget.  Workers are
    reused across runs (each run reseeds everything), so a dataset is converted once per
    worker rather than once per run.
    """

    name = "process"

    def __init__(self, workers: int | None = None, **_: Any):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def run(self, specs, on_start, progress=None):
        if not specs:
            return
        threads = max(s.budget.threads for s in specs)
        workers = self.workers or max(1, (os.cpu_count() or 1) // threads)
        self._pool = ProcessPoolExecutor(max_workers=min(workers, len(specs)),
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_worker_init)
        pending: dict[Future, RunSpec] = {}
        for spec in specs:
            on_start(spec)
            pending[self._pool.submit(_execute_in_worker, spec)] = spec
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                spec = pending.pop(future)
                yield _result_of(future, spec)

    def shutdown(self) -> None:
        if self._pool is None:
            return
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # interrupted suites must not leave workers training
            if process.is_alive():
                process.terminate()
        self._pool = None


def _result_of(future: Future, spec: RunSpec) -> RunResult:
    """A worker that died (OOM-killed, segfault) still yields a failed result."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001
        return RunResult(spec, "failed", error=f"worker crashed: {type(exc).__name__}: {exc}")


class RayExecutor:
    """Ray tasks, one per run, each requesting ``budget.threads`` CPUs (and ``gpus`` GPUs).

    ``address``: ``None`` starts a local Ray instance (``num_cpus`` CPUs); ``auto`` joins the
    cluster this machine belongs to; ``HOST:PORT`` joins a remote head.  Only the driver writes
    MLflow: with workers on several nodes use a tracking server reachable from the driver
    (``--tracking-uri http://host:5000``).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, gpus: float = 0.0, **_: Any):
        try:
            import ray
        except ImportError:
            raise FuseBenchError(
                "The ray executor needs Ray: install the extra with `pip install -e \".[ray]\"` "
                "(or `pip install fusebench[ray]`)."
            ) from None
        self.ray = ray
        self.address, self.num_cpus, self.gpus = address, num_cpus, float(gpus)
        self._owns_cluster = False

    def _connect(self) -> None:
        if self.ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "ignore_reinit_error": True}
        if self.address:
            kwargs["address"] = self.address
        else:
            kwargs["num_cpus"] = self.num_cpus or os.cpu_count()
            self._owns_cluster = True
        self.ray.init(**kwargs)

    def run(self, specs, on_start, progress=None):
        if not specs:
            return
        self._connect()
        remote = self.ray.remote(_execute_in_worker)
        pending = {}
        for spec in specs:
            on_start(spec)
            ref = remote.options(num_cpus=spec.budget.threads, num_gpus=self.gpus, max_retries=0).remote(spec)
            pending[ref] = spec
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    yield self.ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker must not sink the suite
                    yield RunResult(spec, "failed", error=f"ray task failed: {type(exc).__name__}: {exc}")

    def shutdown(self) -> None:
        if self._owns_cluster and self.ray.is_initialized():
            self.ray.shutdown()
