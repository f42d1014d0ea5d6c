"""FuseBench: a plugin-based benchmarking harness for multimodal fusion.

The public API plugin authors need lives here: ``hookimpl`` and the spec classes.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fusebench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .hookspecs import hookimpl
from .specs import (
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
