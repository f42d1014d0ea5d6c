"""Specs: validation messages, JSON round-trips, stable spec hashes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmark_core.specs import Budget, ModalitySpec, RunSpec, SpecError, TargetSpec, TaskSpec


def make(seed=0, **budget):
    return RunSpec("tensor", "synthetic-xor", seed, Budget(**budget), {"hidden": 32, "dropout": 0.1},
                   {"n": 400}, {"stress": False}, {"fusebench": "0.1.0"})


def test_spec_hash_is_stable_and_sensitive():
    assert make().spec_hash == make().spec_hash
    assert make(seed=1).spec_hash != make().spec_hash
    assert make(epochs=3).spec_hash != make().spec_hash
    other_order = RunSpec("tensor", "synthetic-xor", 0, Budget(), {"dropout": 0.1, "hidden": 32},
                          {"n": 400}, {"stress": False}, {"fusebench": "0.1.0"})
    assert other_order.spec_hash == make().spec_hash


def test_spec_hash_is_the_same_in_a_fresh_interpreter():
    code = ("from benchmark_core.specs import *;"
            "print(RunSpec('tensor','synthetic-xor',0,Budget(),{'hidden':32,'dropout':0.1},"
            "{'n':400},{'stress':False},{'fusebench':'0.1.0'}).spec_hash)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert out.stdout.strip() == make().spec_hash


def test_runspec_json_round_trip():
    spec = make(epochs=7, lr=0.01)
    data = json.loads(spec.to_json())
    assert data["budget"]["epochs"] == 7
    assert RunSpec.from_dict(data) == spec
    assert RunSpec.from_dict(data).spec_hash == spec.spec_hash


def test_task_spec_serialises():
    task = TaskSpec((ModalitySpec("a", 3, "sequence"), ModalitySpec("b", 2)), TargetSpec("multiclass", 4))
    data = task.to_dict()
    assert data["modalities"][0] == {"name": "a", "dim": 3, "kind": "sequence"}
    assert data["target"]["loss"] == "cross_entropy"
    assert task.modality_names == ("a", "b")


def test_method_spec_serialises_callables_as_import_paths(registry):
    data = registry.method("tensor").to_dict()
    assert data["build"] == "plugins.methods.tensor:build"
    json.dumps(data)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"batch_size": -1}, "batch_size"),
    ({"lr": 0.0}, "lr must be a positive"),
    ({"optimizer": "rmsprop"}, "adam|adamw|sgd"),
    ({"patience": -1}, "patience"),
])
def test_invalid_budget_messages(kwargs, fragment):
    with pytest.raises(SpecError, match=fragment):
        Budget(**kwargs)


def test_invalid_specs():
    with pytest.raises(SpecError, match="dim must be a positive"):
        ModalitySpec("a", 0)
    with pytest.raises(SpecError, match="whitespace"):
        ModalitySpec("a b", 3)
    with pytest.raises(SpecError, match="2 labels but n_outputs=3"):
        TargetSpec("multiclass", 3, ("x", "y"))
    with pytest.raises(SpecError, match="unique"):
        TaskSpec((ModalitySpec("a", 1), ModalitySpec("a", 2)), TargetSpec("regression", 1))
    with pytest.raises(SpecError, match="seed"):
        RunSpec("m", "d", -1, Budget())
