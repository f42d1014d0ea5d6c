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


# -- RunSpec.evaluation, a typed spec; SpecError, a usage error ----------------------------------

# spec hashes computed before RunSpec.evaluation was typed (a plain mapping then): runs keep them
EVALUATION_HASHES = [
    ({}, "e0dcb4cd1babdcaa"),
    ({"stress": True, "emap": True}, "65619493c1f8adad"),
    ({"emap": True, "stress": True, "emap_samples": 200}, "b439e6622089b270"),
    ({"stress": True, "emap": False, "stress_tests": "missing"}, "04eff108ecbaf940"),
    ({"stress": True, "emap": False, "stress_tests": ["missing", "noise"]}, "784e6036f40b93b9"),
]


@pytest.mark.parametrize("evaluation, spec_hash", EVALUATION_HASHES)
def test_a_typed_evaluation_keeps_every_spec_hash(evaluation, spec_hash):
    from benchmark_core.specs import EvaluationSpec

    spec = RunSpec("late", "synthetic-xor", 0, Budget(epochs=2), {"hidden": 32, "dropout": 0.1}, {"n": 300},
                   evaluation, {"fusebench": "0.2.0", "method": "fusebench 0.2.0", "dataset": "fusebench 0.2.0"},
                   "abc123")
    assert isinstance(spec.evaluation, EvaluationSpec) and spec.spec_hash == spec_hash
    assert spec.to_dict()["evaluation"] == json.loads(json.dumps(dict(sorted(evaluation.items()))))
    assert RunSpec.from_dict(spec.to_dict()) == spec
    typed = RunSpec(spec.method, spec.dataset, 0, spec.budget, spec.hparams, spec.dataset_options,
                    EvaluationSpec(**evaluation), spec.versions, spec.data_hash)
    assert typed == spec and typed.spec_hash == spec_hash


def test_evaluation_options_are_typed_and_checked():
    from benchmark_core.specs import EvaluationSpec

    off = EvaluationSpec.of({"stress": False, "emap": False})
    assert not off.enabled("stress") and not off.enabled("emap")
    assert EvaluationSpec().enabled("stress") and EvaluationSpec(emap=False).enabled("stress")
    assert EvaluationSpec(stress_tests=" noise, missing ").stress_test_names == ["noise", "missing"]
    assert EvaluationSpec(stress_tests=["noise"]).stress_tests == ("noise",)
    assert EvaluationSpec().stress_test_names is None
    with pytest.raises(SpecError, match=r"unknown evaluation option\(s\) \['emap_sample'\]; the options are: stress, "):
        RunSpec("m", "d", 0, Budget(), evaluation={"emap_sample": 100})
    for bad, fragment in (({"stress": "no"}, "stress must be True or False"),
                          ({"emap_samples": 1}, r"emap_samples must be an integer >= 2 \(--emap-samples\)"),
                          ({"emap_partners": -1}, "emap_partners must be an integer >= 0"),
                          ({"emap_target_se": 0.0}, "emap_target_se must be a positive finite number"),
                          ({"stress_tests": [""]}, "stress_tests must name stress tests")):
        with pytest.raises(SpecError, match=fragment):
            EvaluationSpec.of(bad)
    assert EvaluationSpec(emap_partners="auto").emap_partners == "auto"


def test_a_spec_error_is_a_usage_error():
    """Every SpecError is a FuseBenchError: the CLI shows its one paragraph and exits 2 (it used
    to be a bare ValueError, a traceback and exit 1 wherever no caller converted it)."""
    from benchmark_core.errors import FuseBenchError

    with pytest.raises(FuseBenchError) as caught:
        RunSpec("m", "d", -1, Budget())
    assert isinstance(caught.value, SpecError) and isinstance(caught.value, ValueError)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_a_spec_error_from_the_command_line_exits_2_with_one_paragraph(tmp_path, capsys):
    from benchmark_core.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["run", "--methods", "late", "--datasets", "synthetic-xor", "--epochs", "0",
                 "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "bench: error: budget epochs must be a positive integer, got 0 (set it with --epochs N, N >= 1)"
    assert not (tmp_path / "mlflow.db").exists()
