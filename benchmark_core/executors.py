"""The executor contract: run RunSpecs somewhere, hand results back to the driver.

Executors only compute; the driver alone writes to MLflow.  ``run`` yields results in
completion order and calls ``on_start(spec)`` when a run begins (serial) or is handed to
a worker (parallel), so the driver can open its MLflow child run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

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

    def __init__(self, registry=None):
        self.registry = registry

    def run(self, specs, on_start, progress=None):
        for spec in specs:
            on_start(spec)
            yield execute(spec, self.registry, progress(spec) if progress else None)

    def shutdown(self) -> None:
        pass
