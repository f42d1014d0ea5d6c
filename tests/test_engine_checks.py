"""The engine refuses to score output that cannot be right (issue 12 §4): wrong-shaped
predictions fail the run in the engine's own step, and an undefined correlation is reported
as undefined, never as 0."""

from __future__ import annotations

import math

import datasets
import numpy as np
import pytest
import torch
from torch import nn

from benchmark_core import DatasetSpec, MethodSpec, TargetSpec, hookimpl
from benchmark_core.engine.data import dataset_from_arrays
from benchmark_core.engine.models import FusionModel, Output, RepresentationFusion
from benchmark_core.plugins import build_registry
from benchmark_core.reporting.leaderboard import render_markdown
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.suite.executors import SerialExecutor
from benchmark_core.suite.plan import make_plan, run_suite
from benchmark_core.suite.runner import execute, resolve_hparams
from benchmark_core.suite.validate import check_method
from benchmark_core.tracking import Tracker
from plugins.metrics import pearson


class _Concat(nn.Module):
    def __init__(self, dim: int, n: int):
        super().__init__()
        self.out_dim = dim * n

    def forward(self, reps):
        return torch.cat(reps, dim=-1)


def build_too_wide(task, hp):
    """Sizes its output layer for three classes whatever the task says."""
    fusion = _Concat(hp["hidden"], len(task.modalities))
    model = RepresentationFusion(task, hp, fusion, head="linear")
    model.head = nn.Linear(fusion.out_dim, 3)
    return model


class Constant(FusionModel):
    """Predicts the same value for every sample: a collapsed model."""

    def __init__(self, task, hp):
        super().__init__(task, hp)
        self.bias = nn.Parameter(torch.zeros(task.target.n_outputs))

    def fuse(self, encoded):
        size = next(iter(encoded.x.values())).shape[0]
        return Output(self.bias.expand(size, -1))


def _regression(options):
    rng = np.random.default_rng(0)

    def split(n):
        x = rng.normal(size=(n, 3)).astype(np.float32)
        y = (x[:, 0] - 0.5 * x[:, 1]).astype(np.float32)
        return dataset_from_arrays({"a": ("vector", x[:, :2]), "b": ("vector", x[:, 2:])}, y,
                                   TargetSpec("regression", 1))

    return datasets.DatasetDict({"train": split(64), "validation": split(32), "test": split(32)})


class ToyPlugin:
    @hookimpl
    def register_methods(self, register):
        register(MethodSpec("too-wide", "early", build_too_wide))
        register(MethodSpec("constant", "early", Constant))

    @hookimpl
    def register_datasets(self, register):
        register(DatasetSpec("toy-corr", _regression, TargetSpec("regression", 1), ("a", "b"), ("corr", "mae"),
                             "corr"))


@pytest.fixture(scope="module")
def toy_registry():
    return build_registry(plugins=[ToyPlugin()])


def test_wrong_shaped_output_fails_the_run_instead_of_ranking(toy_registry):
    spec = RunSpec("too-wide", "synthetic-xor", 0, Budget(epochs=1, batch_size=32),
                   resolve_hparams(toy_registry.method("too-wide"), {}), {"n": 200}, {"stress": False, "emap": False})
    result = execute(spec, toy_registry)
    assert result.status == "failed", result.metrics  # before issue 12: finished, accuracy ~0.5 ranked
    assert "output pred has shape (32, 3); expected (32, 2) = (batch size, target n_outputs)" in result.error
    assert "test/accuracy" not in result.metrics
    # the same sentence as the conformance check
    problems = check_method(toy_registry.method("too-wide"))
    assert any("output pred has shape" in p and "expected" in p for p in problems)


def test_wrong_shaped_prediction_is_caught_at_inference_too(toy_registry):
    from benchmark_core.engine.data import load_tensors
    from benchmark_core.engine.training import predict
    from benchmark_core.errors import OutputError

    data = load_tensors(toy_registry.dataset("synthetic-xor"), {"n": 200})
    model = build_too_wide(data.task, resolve_hparams(toy_registry.method("too-wide"), {}))
    with pytest.raises(OutputError, match=r"output pred has shape \(\d+, 3\)"):
        predict(model, data.test)


def test_pearson_of_a_constant_prediction_is_undefined():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    assert math.isnan(pearson(y, np.full((4, 1), 0.7)))
    assert math.isnan(pearson(np.ones(4), np.arange(4.0).reshape(4, 1)))
    assert pearson(y, -y.reshape(4, 1)) == pytest.approx(-1.0)


def test_collapsed_model_is_shown_undefined_and_not_ranked_above_others(toy_registry, fusebench_tracking_uri):
    tracker = Tracker(fusebench_tracking_uri, "corr")
    specs = make_plan(toy_registry, ["constant", "additive"], ["toy-corr"], [0, 1], Budget(epochs=2, batch_size=16),
                      evaluation={"stress": False, "emap": False})
    report = run_suite(toy_registry, specs, tracker, SerialExecutor(toy_registry), echo=lambda s: None)
    assert not report.failures
    constant = [r for r in report.results if r.spec.method == "constant"]
    assert all(math.isnan(r.metrics["test/corr"]) for r in constant)
    text = render_markdown(Tracker(fusebench_tracking_uri, "corr"))
    row = next(line for line in text.splitlines() if "| constant " in line)
    assert "— (undefined)" in row and "0.0000" not in row.split("|")[3]
    assert "the metric is undefined for at least one seed" in text
    additive = next(line for line in text.splitlines() if "| additive " in line)
    assert additive.rstrip(" |").endswith("1.00 (1/1)") or additive.rstrip(" |").endswith("1.00")
    assert row.rstrip(" |").endswith("—")  # not ranked
