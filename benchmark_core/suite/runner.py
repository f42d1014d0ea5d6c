"""``execute(RunSpec) -> RunResult``: the pure unit of work every executor runs.

Load data -> build model -> train (seeded, budgeted) -> evaluate clean -> run the
evaluation extensions (stress grid, EMAP) -> a plain, picklable result
(:class:`~benchmark_core.record.RunResult`, its info a :class:`~benchmark_core.record.RunInfo`).
It never writes to MLflow (only the driver does) and never raises: a failure becomes a result
with status ``failed`` or ``diverged``, the reason and the traceback, so one broken method
cannot sink a suite.
"""

from __future__ import annotations

import hashlib
import math
import platform
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from benchmark_core import __version__
from benchmark_core.engine.data import DatasetTensors, SplitTensors, load_tensors
from benchmark_core.engine.memory import PeakMemory
from benchmark_core.engine.models import COMMON_DEFAULTS, FusionModel, count_parameters
from benchmark_core.engine.training import (
    DivergedError,
    RunSeeds,
    fit,
    predict,
    seed_everything,
)
from benchmark_core.errors import FuseBenchError
from benchmark_core.evaluation.evaluators import EvaluationContext, evaluate
from benchmark_core.plugins import Registry, get_registry
from benchmark_core.predictions import Predictions, SplitPredictions
from benchmark_core.provenance import git_sha, plugin_versions
from benchmark_core.record import TEST, VAL, RunInfo, RunResult
from benchmark_core.scoring import score
from benchmark_core.specs import MethodSpec, RunSpec


def resolve_hparams(method: MethodSpec, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Common defaults < method defaults < user overrides (unknown keys are refused)."""
    resolved = {**COMMON_DEFAULTS, **method.defaults}
    unknown = sorted(set(overrides) - set(resolved))
    if unknown:
        raise FuseBenchError(
            f"Unknown hyper-parameter(s) {unknown} for method {method.name!r} (--hparam). "
            f"It accepts: {', '.join(sorted(resolved))}."
        )
    resolved.update(overrides)
    return resolved


def state_hash(model: torch.nn.Module) -> str:
    """SHA-256 of all weights, to check bitwise reproducibility across executors."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def build_model(method: MethodSpec, data: DatasetTensors, hparams: Mapping[str, Any], seeds: RunSeeds) -> FusionModel:
    reason = method.supports(data.task)
    if reason:
        raise FuseBenchError(f"method {method.name!r} cannot run on dataset {data.name!r}: {reason}")
    torch.manual_seed(seeds.streams["init"])
    model = method.build(data.task, dict(hparams))
    if not isinstance(model, FusionModel):
        raise FuseBenchError(
            f"method {method.name!r}: build() returned {type(model).__name__}; it must return a "
            "benchmark_core.engine.models.FusionModel."
        )
    if hparams.get("gradient_blend"):
        from benchmark_core.engine.blending import GradientBlend

        model = GradientBlend(model)
    return model


def execute(spec: RunSpec, registry: Registry | None = None,
            progress: Callable[[int, dict[str, float]], None] | None = None) -> RunResult:
    """Run one spec end to end; never raises (failures are recorded in the result)."""
    started = time.perf_counter()
    try:
        return _execute(spec, registry or get_registry(), progress, started)
    except DivergedError as exc:
        return RunResult(spec, "diverged", error=str(exc), traceback=traceback.format_exc(),
                         info=RunInfo(wall_time_s=time.perf_counter() - started))
    except Exception as exc:
        return RunResult(spec, "failed", error=f"{type(exc).__name__}: {exc}",
                         traceback=traceback.format_exc(),
                         info=RunInfo(wall_time_s=time.perf_counter() - started))


def _execute(spec: RunSpec, registry: Registry, progress, started: float) -> RunResult:
    method = registry.method(spec.method)
    dataset = registry.dataset(spec.dataset)
    seeds = seed_everything(spec.seed, spec.budget.threads)
    # Host peak memory of the whole run, in three back-to-back spans (the training span is also
    # measured on the run's device, as before): data and model, training, evaluation.
    with PeakMemory() as loading:
        data = load_tensors(dataset, spec.dataset_options)
        if spec.data_hash and data.data_hash != spec.data_hash:
            raise FuseBenchError(
                f"dataset {spec.dataset!r} changed after this run was planned: the plan was made on data "
                f"with content hash {spec.data_hash}, the files now give {data.data_hash}. The result would "
                "not belong to its plan, so the run stops here; re-run the same command to plan (and "
                "train) on the current data."
            )
        metrics = {name: registry.metric(name) for name in dataset.metrics}
        primary = metrics[dataset.primary_metric]
        model = build_model(method, data, spec.hparams, seeds)
    with PeakMemory() as host_training, PeakMemory(spec.budget.device) as memory:
        fitted = fit(model, data, spec.budget, primary, seeds, progress)
    device = spec.budget.device
    with PeakMemory() as evaluating:
        test_pred = predict(model, data.test, device=device)
        val_pred = fitted.best_val_pred
        if val_pred is None:
            val_pred = predict(model, data.validation, device=device)
        clean = score(test_pred, data.test.y, metrics)
        results = {TEST.key(k): v for k, v in clean.items()}
        results.update({VAL.key(k): v for k, v in score(val_pred, data.validation.y, metrics).items()})
        eval_started = time.perf_counter()
        context = EvaluationContext(spec, model, data, registry, seeds, metrics, clean, dataset.primary_metric)
        results.update(evaluate(context))
    info = RunInfo(
        params=count_parameters(model),
        train_time_s=fitted.train_time_s,
        validation_time_s=fitted.validation_time_s,
        eval_time_s=time.perf_counter() - eval_started,
        wall_time_s=time.perf_counter() - started,
        peak_memory_mb=memory.peak_mb,
        peak_memory_run_mb=whole_run_peak_mb(data, loading, host_training, evaluating),
        data_load=dict(data.load),
        best_epoch=fitted.best_epoch,
        epochs_run=fitted.epochs_run,
        optimizer_steps=fitted.steps,
        state_hash=state_hash(model),
        data_hash=data.data_hash,
        data_report=data.report,
        family=method.family,
        primary_metric=dataset.primary_metric,
        higher_is_better=primary.higher_is_better,
        metric_variants=sorted(metrics),
        task=data.task.to_dict(),
        torch_version=torch.__version__,
        torch_threads=torch.get_num_threads(),
        python=platform.python_version(),
        harness_version=__version__,
        git_sha=git_sha(),
        plugin_versions=plugin_versions(registry),
    )
    predictions = Predictions(test=_stored(data.test, test_pred), validation=_stored(data.validation, val_pred))
    return RunResult(spec, "finished", results, fitted.history, info, predictions=predictions)


def whole_run_peak_mb(data: DatasetTensors, *spans: PeakMemory) -> float:
    """Peak resident memory (MiB) of the run's process over the whole run: the largest of its
    back-to-back spans and of loading its data, also when that load (a conversion included)
    happened earlier in this process and the run reuses the tensors it made."""
    values = [span.peak_mb for span in spans] + [float(data.load.get("peak_memory_mb", float("nan")))]
    values = [v for v in values if not math.isnan(v)]
    return max(values) if values else float("nan")


def _stored(split: SplitTensors, pred: torch.Tensor) -> SplitPredictions:
    """What the split's metrics were computed on, as numpy (the ids come along)."""
    return SplitPredictions(ids=np.asarray(split.ids, dtype=str), y=split.y.numpy(),
                            pred=pred.numpy().astype(np.float32, copy=False))
