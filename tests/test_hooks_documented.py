"""Guard rails for the hook surface (after datasette's test_plugin_hooks_are_documented and
test_plugin_hooks_have_tests): every hook in benchmark_core/hookspecs.py must appear with
its exact signature in docs/plugins.md and have a ``test_hook_<name>`` test; the
``test_hook_*`` tests below register something through each hook and find it in a registry."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch

from benchmark_core import hookspecs
from benchmark_core.plugins import KINDS, build_registry
from fusebench import (
    DatasetSpec,
    ExecutorSpec,
    MethodSpec,
    MetricSpec,
    StressSpec,
    TargetSpec,
    hookimpl,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugins.md"


def hook_specs() -> dict[str, str]:
    """name -> ``name(args)`` for every function marked as a hookspec."""
    marker = f"{hookspecs.PROJECT}_spec"
    return {name: f"{name}{inspect.signature(fn)}"
            for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker)}


def test_there_are_hooks_and_the_registry_knows_them_all():
    assert set(hook_specs()) == {hook for hook, _, _ in KINDS.values()}


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_plugin_hooks_are_documented(hook):
    docs = DOCS.read_text(encoding="utf-8")
    signature = hook_specs()[hook]
    assert re.search(rf"^#+ .*`{re.escape(signature)}`", docs, re.M), (
        f"docs/plugins.md needs a heading with the exact signature `{signature}` of hook {hook}")


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_plugin_hooks_have_tests(hook):
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"^\s*def test_hook_{hook}\b", tests, re.M), (
        f"no test named test_hook_{hook} under tests/: add one that registers something through the hook")


# -- one test per hook -------------------------------------------------------------------------

def _only(plugin):
    """A registry holding only ``plugin`` (no entry points)."""
    return build_registry(entrypoints=False, plugins=[plugin], load=[], block=[])


def test_hook_register_methods():
    from plugins.methods.additive import build

    class Plugin:
        @staticmethod
        @hookimpl
        def register_methods(register):
            register(MethodSpec(name="hook-method", family="additive", build=build, defaults={"k": 2}))

    registry = _only(Plugin)
    reg = registry.registration("methods", "hook-method")
    assert reg.spec.defaults == {"k": 2} and reg.distribution is None
    assert registry.plugin_report()[0]["registered"] == {"methods": ["hook-method"]}


def test_hook_register_datasets():
    target = TargetSpec("regression", 1)

    class Plugin:
        @staticmethod
        @hookimpl
        def register_datasets(register):
            register(DatasetSpec(name="hook-data", load=lambda options: None, target=target,
                                 modalities=("a", "b"), metrics=("mae",), primary_metric="mae"))

    spec = _only(Plugin).dataset("hook-data")
    assert spec.modalities == ("a", "b") and spec.target is target and spec.primary_metric == "mae"


def test_hook_register_metrics():
    class Plugin:
        @staticmethod
        @hookimpl
        def register_metrics(register):
            register(MetricSpec("hook-metric", lambda y, p: 0.25, higher_is_better=False,
                                target_kinds=("regression",)))

    spec = _only(Plugin).metric("hook-metric")
    assert spec.fn(None, None) == 0.25 and spec.higher_is_better is False


def test_hook_register_stress_tests():
    def zero(batch, target, level, generator, stats):
        return batch.replace(x={**batch.x, target: batch.x[target] * (1 - level)})

    class Plugin:
        @staticmethod
        @hookimpl
        def register_stress_tests(register):
            register(StressSpec(name="hook-zero", apply=zero,
                                conditions=lambda task: [(m, 1.0) for m in task.modality_names]))

    from benchmark_core.suite.validate import check_stress, tiny_batch, tiny_task

    spec = _only(Plugin).stress_test("hook-zero")
    task = tiny_task(2)
    assert spec.conditions(task) == [("m0", 1.0), ("m1", 1.0)]
    out = spec.apply(tiny_batch(task), "m0", 1.0, torch.Generator(), {})
    assert torch.count_nonzero(out.x["m0"]) == 0
    assert check_stress(spec) == []


def test_hook_register_executors():
    from benchmark_core.suite.executors import SerialExecutor

    class Plugin:
        @staticmethod
        @hookimpl
        def register_executors(register):
            register(ExecutorSpec(name="hook-serial", factory=SerialExecutor, description="test"))

    spec = _only(Plugin).executor("hook-serial")
    assert spec.factory is SerialExecutor
    assert hasattr(spec.factory(registry=None, workers=None, address=None, gpus=0.0), "run")
