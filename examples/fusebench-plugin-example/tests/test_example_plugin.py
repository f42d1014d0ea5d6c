"""Tests for the example plugin, written the way a plugin author would, with fusebench.testing.

They work both before installing (the plugin module is registered explicitly) and after
(`pip install -e .`: the entry point loads it and make_registry does not register it twice).
"""

import math

import fusebench_example
import numpy as np
import pytest
import torch
from fusebench_example.metric import worst_class_recall

from fusebench.testing import (
    assert_run_ok,
    check_dataset,
    check_method,
    check_metric,
    make_registry,
    run_once,
    tiny_batch,
    tiny_task,
)


@pytest.fixture
def registry(fusebench_env):
    return make_registry(fusebench_example)


def test_registers_one_method_dataset_and_metric(registry):
    assert registry.method("example-maxpool").family == "pooling"
    assert registry.dataset("example-parity3").primary_metric == "balanced_accuracy"  # a FuseBench built-in
    assert registry.metric("example_worst_recall").target_kinds == ("multiclass",)


def test_our_names_cannot_clash_with_fusebench_built_ins(fusebench_env):
    ours = make_registry(fusebench_example, entrypoints=False)  # this plugin alone
    others = make_registry(block=["example"])  # FuseBench's built-ins and every other installed plugin
    for kind in ("methods", "datasets", "metrics"):
        assert ours.names(kind) and all(name.startswith("example") for name in ours.names(kind))
        assert not set(ours.names(kind)) & set(others.names(kind))


def test_method_passes_the_validate_plugin_checks(registry):
    assert check_method(registry.method("example-maxpool")) == []


def test_dataset_and_metric_pass_the_validate_plugin_checks(registry):
    assert check_dataset(registry.dataset("example-parity3"), registry) == []
    assert check_metric(registry.metric("example_worst_recall")) == []


def test_missing_modality_is_left_out_of_the_max(registry):
    task = tiny_task(3, "vector")
    torch.manual_seed(0)
    model = registry.method("example-maxpool").build(task, {"hidden": 8, "dropout": 0.0, "layer_norm": True}).eval()
    batch = tiny_batch(task)
    encoded = model.encode(batch)
    without = encoded.replace(present={**encoded.present, "m2": torch.zeros(batch.size, dtype=torch.bool)})
    scrambled = without.replace(x={**without.x, "m2": torch.full_like(without.x["m2"], 1e6)})
    # whatever the missing modality's encoding holds, it cannot win the max
    assert torch.equal(model.fuse(without).pred, model.fuse(scrambled).pred)
    assert not torch.equal(model.fuse(encoded).pred, model.fuse(without).pred)


def test_worst_class_recall_exposes_an_ignored_class():
    y = np.array([0] * 9 + [1])
    always_zero = np.tile([1.0, 0.0], (10, 1))
    assert worst_class_recall(y, always_zero) == 0.0
    assert worst_class_recall(y, np.eye(2)[y]) == 1.0
    assert math.isnan(worst_class_recall(np.zeros(4, dtype=int), np.eye(2)[[0, 0, 1, 0]]))  # class 1 absent


def test_one_tiny_run_end_to_end(registry, fusebench_budget):
    result = assert_run_ok(run_once("example-maxpool", "example-parity3", registry=registry,
                                    budget=fusebench_budget, dataset_options={"n": 120}))
    assert math.isfinite(result.metrics["test/balanced_accuracy"])
    assert 0.0 <= result.metrics["test/example_worst_recall"] <= 1.0
    assert result.info["data_report"]["loader"]["rule"] == "parity"
