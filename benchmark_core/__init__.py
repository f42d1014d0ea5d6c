"""FuseBench's engine: the ground floor (specs, errors, hooks, registry, run record, tracking)
and one sub-package per stage of a run (engine, evaluation, suite, reporting, cli); see
docs/architecture.md.

Plugin authors import from the public facade ``fusebench``, never from here: this package's
layout may change between versions, the facade's names do not.  ``hookimpl`` and the spec
classes are re-exported here for the engine's own convenience.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fusebench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from benchmark_core.hookspecs import hookimpl
from benchmark_core.specs import (
    Budget,
    DatasetSpec,
    ExecutorSpec,
    MethodSpec,
    MetricSpec,
    ModalitySpec,
    RunSpec,
    StressSpec,
    TargetSpec,
    TaskSpec,
)

__all__ = [
    "Budget", "DatasetSpec", "ExecutorSpec", "MethodSpec", "MetricSpec", "ModalitySpec",
    "RunSpec", "StressSpec", "TargetSpec", "TaskSpec", "hookimpl", "__version__",
]
