"""The public import package for FuseBench plugin authors.

Everything a plugin needs, under one stable name::

    from fusebench import hookimpl, MethodSpec, DatasetSpec, MetricSpec, RepresentationFusion

The implementation lives in ``benchmark_core``; this module only re-exports its public
API, so a plugin written against ``fusebench`` keeps working while the engine's internals
move (``tests/test_docs_standalone.py`` checks that every name the documentation imports
from here exists).  ``fusebench.testing`` holds pytest fixtures and helpers for testing a
plugin; ``data_path`` is how a dataset plugin honours ``bench run --data-dir``.
"""

from __future__ import annotations

from benchmark_core import (
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
    __version__,
    hookimpl,
)
from benchmark_core.data import (
    Batch,
    dataset_from_arrays,
    label_feature,
    make_features,
    modality_feature,
)
from benchmark_core.datadir import ENV_VAR as DATA_DIR_ENV_VAR
from benchmark_core.datadir import data_dirs, data_path
from benchmark_core.errors import DataError, FuseBenchError
from benchmark_core.hookspecs import PROJECT as ENTRY_POINT_GROUP
from benchmark_core.models import (
    COMMON_DEFAULTS,
    FusionModel,
    Output,
    RepresentationFusion,
)
from benchmark_core.runner import RunResult, execute
from benchmark_core.specs import (
    KNOWN_FAMILIES,
    SHARED_SPACE,
    Choice,
    Float,
    Int,
    SearchSpace,
    SpecError,
)

__all__ = [
    "COMMON_DEFAULTS", "DATA_DIR_ENV_VAR", "ENTRY_POINT_GROUP", "KNOWN_FAMILIES", "SHARED_SPACE",
    "Batch", "Budget", "Choice", "DataError", "DatasetSpec", "ExecutorSpec", "Float", "FuseBenchError",
    "FusionModel", "Int",
    "MethodSpec", "MetricSpec", "ModalitySpec", "Output", "RepresentationFusion", "RunResult", "RunSpec",
    "SearchSpace", "SpecError", "StressSpec", "TargetSpec", "TaskSpec",
    "__version__", "data_dirs", "data_path", "dataset_from_arrays", "execute", "hookimpl",
    "label_feature", "make_features", "modality_feature",
]
