"""The public import package for FuseBench plugin authors.

Everything a plugin needs, under one stable name::

    from fusebench import hookimpl, MethodSpec, DatasetSpec, MetricSpec, RepresentationFusion

The implementation lives in ``benchmark_core``; this module only re-exports its public
API, so a plugin written against ``fusebench`` keeps working while the engine's modules
move.  FuseBench's own built-in plugins (``plugins/``) import nothing else from FuseBench
(``tests/test_plugin_contract.py`` checks it, and that every name listed here imports);
``tests/test_docs_standalone.py`` checks that every name the documentation imports from
here exists.  docs/plugins.md lists the names by group.  ``fusebench.testing`` holds pytest
fixtures and helpers for testing a plugin.
"""

from __future__ import annotations

from benchmark_core import __version__, hookimpl
from benchmark_core.datadir import ENV_VAR as DATA_DIR_ENV_VAR
from benchmark_core.datadir import data_dirs, data_path
from benchmark_core.engine.attention import GroupLayerNorm, GroupLinear, group_attention
from benchmark_core.engine.data import (
    Batch,
    DatasetTensors,
    Modalities,
    SplitTensors,
    dataset_from_arrays,
    features_from_arrays,
    label_feature,
    make_features,
    modality_feature,
    table_from_arrays,
)
from benchmark_core.engine.datacache import BATCH_BYTES, CachedDataset, SplitRows, batch_rows
from benchmark_core.engine.datacache import cached as cached_dataset
from benchmark_core.engine.encoders import (
    SequenceEncoder,
    UnimodalEncoders,
    VectorEncoder,
    last_valid,
    make_encoder,
    masked_mean,
    mlp_head,
)
from benchmark_core.engine.models import (
    COMMON_DEFAULTS,
    FusionModel,
    LossFn,
    Output,
    RepresentationFusion,
    TrainingContext,
)
from benchmark_core.engine.safe_pickle import BoundedReader, UnsafePickleError
from benchmark_core.engine.safe_pickle import load as safe_pickle_load
from benchmark_core.engine.safe_pickle import loads as safe_pickle_loads
from benchmark_core.engine.safe_torch import load as safe_torch_load
from benchmark_core.engine.training import EVAL_BATCH_SIZE
from benchmark_core.errors import (
    DataError,
    DuplicateRegistrationError,
    FuseBenchError,
    OutputError,
    UnknownNameError,
)
from benchmark_core.evaluation.robustness import FULL_GRID_MAX_MODALITIES, SubsetDesign, subset_design
from benchmark_core.hookspecs import PROJECT as ENTRY_POINT_GROUP
from benchmark_core.record import RunResult
from benchmark_core.specs import (
    KNOWN_FAMILIES,
    SHARED_SPACE,
    Budget,
    Choice,
    DatasetSpec,
    EvaluationSpec,
    ExecutorSpec,
    Float,
    Int,
    MethodSpec,
    MetricSpec,
    ModalitySpec,
    Param,
    RunSpec,
    SearchSpace,
    SpecError,
    StressSpec,
    TargetSpec,
    TaskSpec,
)
from benchmark_core.suite.executors import Executor, ProcessExecutor, ProgressFactory, RayExecutor, SerialExecutor
from benchmark_core.suite.runner import execute

__all__ = [
    "__version__",
    # hooks and specs
    "ENTRY_POINT_GROUP", "hookimpl",
    "Budget", "DatasetSpec", "EvaluationSpec", "ExecutorSpec", "MethodSpec", "MetricSpec", "ModalitySpec", "RunSpec",
    "StressSpec", "TargetSpec", "TaskSpec",
    "KNOWN_FAMILIES", "SHARED_SPACE", "Choice", "Float", "Int", "Param", "SearchSpace",
    # models
    "COMMON_DEFAULTS", "EVAL_BATCH_SIZE", "FusionModel", "LossFn", "Output", "RepresentationFusion",
    "TrainingContext",
    "SequenceEncoder", "UnimodalEncoders", "VectorEncoder", "last_valid", "make_encoder", "masked_mean",
    "mlp_head",
    "GroupLayerNorm", "GroupLinear", "group_attention",
    # data
    "Batch", "DatasetTensors", "Modalities", "SplitTensors",
    "dataset_from_arrays", "features_from_arrays", "label_feature", "make_features", "modality_feature",
    "table_from_arrays",
    "BATCH_BYTES", "CachedDataset", "SplitRows", "batch_rows", "cached_dataset",
    "DATA_DIR_ENV_VAR", "data_dirs", "data_path",
    # reading research files safely
    "BoundedReader", "UnsafePickleError", "safe_pickle_load", "safe_pickle_loads", "safe_torch_load",
    # stress tests
    "FULL_GRID_MAX_MODALITIES", "SubsetDesign", "subset_design",
    # running
    "Executor", "ProcessExecutor", "ProgressFactory", "RayExecutor", "RunResult", "SerialExecutor", "execute",
    # errors
    "DataError", "DuplicateRegistrationError", "FuseBenchError", "OutputError", "SpecError",
    "UnknownNameError",
]
