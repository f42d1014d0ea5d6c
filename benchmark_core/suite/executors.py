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
import signal
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from benchmark_core.errors import FuseBenchError
from benchmark_core.record import RunResult
from benchmark_core.specs import RunSpec
from benchmark_core.suite.runner import execute

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

    A worker that dies (SIGKILL from the out-of-memory killer, a segfault, ``os._exit``) breaks
    the whole pool and every run it holds.  Those runs are not failed: the pool is rebuilt and
    each is re-run alone, in a pool of one worker, where a death can only be its own; a run
    that kills its worker there fails with how the worker ended, the others finish, and the
    rest of the plan goes on in parallel again.
    """

    name = "process"

    def __init__(self, workers: int | None = None, **_: Any):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0

    def run(self, specs, on_start, progress=None):
        if not specs:
            return
        threads = max(s.budget.threads for s in specs)
        workers = min(self.workers or max(1, (os.cpu_count() or 1) // threads), len(specs))
        todo: deque[RunSpec] = deque(specs)
        lost: deque[RunSpec] = deque()  # in the pool when a worker died: re-run one at a time
        alone: set[str] = set()  # spec hashes re-run alone: their worker's death is their own
        started: set[str] = set()
        in_flight: dict[Future, RunSpec] = {}

        def submit(spec: RunSpec, size: int) -> bool:
            if self._pool is None or self._size != size:  # resized only while idle
                self.shutdown()
                self._start_pool(size)
            if spec.spec_hash not in started:  # a re-run is the same MLflow run
                started.add(spec.spec_hash)
                on_start(spec)
            try:
                in_flight[self._pool.submit(_execute_in_worker, spec)] = spec
            except BrokenProcessPool:  # a worker died since the last wait; nothing of this run ran
                return False
            return True

        def fill() -> None:
            # At most one run per worker, so the runs in flight are exactly those a death can take.
            while not any(spec.spec_hash in alone for spec in in_flight.values()):
                if lost:
                    queue, size = lost, 1
                    alone.add(lost[0].spec_hash)
                elif todo and len(in_flight) < workers:
                    queue, size = todo, workers
                else:
                    return
                if submit(queue[0], size):
                    queue.popleft()
                elif in_flight:
                    return  # the next wait finds the broken pool through the runs in flight
                else:
                    self.shutdown()  # an idle pool broke, with none of our runs in it: start afresh

        fill()
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            results = []
            if any(isinstance(future.exception(), BrokenProcessPool) for future in done):
                wait(in_flight)  # the broken pool fails every run it still holds
                status = self._discard_broken_pool()
                for future, spec in in_flight.items():
                    if not isinstance(future.exception(), BrokenProcessPool):
                        results.append(_result_of(future, spec))  # finished before the death
                    elif spec.spec_hash in alone:
                        results.append(RunResult(spec, "failed", error=_crash_reason(status)))
                    else:
                        lost.append(spec)
                in_flight.clear()
            else:
                results = [_result_of(future, in_flight.pop(future)) for future in done]
            fill()  # keep the workers busy while the driver records the results
            yield from results

    def _start_pool(self, size: int) -> None:
        self._pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_worker_init)
        self._size = size

    def _discard_broken_pool(self) -> str:
        """Shut the broken pool down and say how its dead worker ended (the pool terminates the
        survivors with SIGTERM once one dies)."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=True)
        self._pool = None
        codes = [p.exitcode for p in processes if p.exitcode is not None]
        dead = [code for code in codes if code != -signal.SIGTERM] or codes
        return describe_exit(dead[0]) if dead else "exit status unknown"

    def shutdown(self) -> None:
        if self._pool is None:
            return
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # interrupted suites must not leave workers training
            if process.is_alive():
                process.terminate()
        self._pool = None


def describe_exit(code: int) -> str:
    """A process's exit status in words (negative: the signal that killed it)."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"killed by signal {-code}"
    return f"killed by signal {-code}, {name}"


def _crash_reason(status: str) -> str:
    return (f"the worker process running this run died ({status}), also when the run was re-run alone "
            "in a fresh worker, so the run itself kills its process: a crash in native code (segfault, "
            "abort), os._exit in the method or dataset code, or the out-of-memory killer (SIGKILL; try a "
            "smaller --batch-size or fewer --workers). The other runs of the plan went on.")


def _result_of(future: Future, spec: RunSpec) -> RunResult:
    """A result the worker could not hand back (e.g. it does not pickle) is a failed run."""
    try:
        return future.result()
    except Exception as exc:
        return RunResult(spec, "failed",
                         error=f"the worker could not hand the result back: {type(exc).__name__}: {exc}")


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
                except Exception as exc:
                    yield RunResult(spec, "failed", error=f"ray task failed: {type(exc).__name__}: {exc}")

    def shutdown(self) -> None:
        if self._owns_cluster and self.ray.is_initialized():
            self.ray.shutdown()
