"""The plugin contract the built-ins obey (issue 20 §3).

* ``plugins/`` imports FuseBench only through the public facade ``fusebench``, as a third
  party must, and every name ``fusebench.__all__`` lists imports and is documented;
* ``FusionModel`` declares the training hooks the loop calls (``training_loss``,
  ``before_epoch``, ``training_data``), the loop calls them directly, and one public
  ``training_step`` is the step that ``fit``, ``bench validate-plugin`` and the tests take;
* ``bench validate-plugin`` runs the engine's own training loop, hooks and stress application,
  so a plugin that passes it does not fail every run.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fusebench
from benchmark_core.engine.training import DivergedError, fit, make_optimizer, seed_everything, task_loss, training_step
from benchmark_core.plugins import build_registry
from benchmark_core.suite.runner import resolve_hparams
from fusebench import Budget, FusionModel, MetricSpec
from fusebench.testing import check_method, check_stress, run_cli, tiny_batch, tiny_data, tiny_task

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = sorted((ROOT / "plugins").rglob("*.py"))
HOOKS = ("training_loss", "before_epoch", "training_data")
REGISTRY = build_registry()


# -- plugins import only the facade ----------------------------------------------------------------

def core_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: statement`` for every import of ``benchmark_core`` in ``path`` (module level
    or inside a function alike)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if module == "benchmark_core" or module.startswith("benchmark_core."):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_there_are_plugin_modules_to_check():
    assert len(PLUGINS) > 30 and ROOT / "plugins" / "methods" / "mfm.py" in PLUGINS


def test_plugins_import_fusebench_never_benchmark_core():
    hits = [hit for path in PLUGINS for hit in core_imports(path)]
    assert not hits, ("the built-in plugins must import FuseBench only as `from fusebench import ...` (what a "
                      "third party can rely on); export what they need from fusebench/__init__.py:\n"
                      + "\n".join(hits))


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from fusebench import Batch\nfrom .common import x\n\n"
                      "def f():\n    from benchmark_core.engine.data import Batch\n    import benchmark_core.specs\n")
    assert core_imports(sample, tmp_path) == ["x.py:5: from benchmark_core.engine.data import Batch",
                                              "x.py:6: import benchmark_core.specs"]


def test_what_the_plugins_import_from_fusebench_is_public():
    private = []
    for path in PLUGINS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "fusebench":
                private += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names
                            if a.name not in fusebench.__all__]
    assert not private, "list these in fusebench.__all__ (and docs/plugins.md):\n" + "\n".join(private)


def test_public_names_are_unique():
    assert len(fusebench.__all__) == len(set(fusebench.__all__))


@pytest.mark.parametrize("name", fusebench.__all__)
def test_every_public_name_imports_from_fusebench(name):
    namespace: dict = {}
    exec(f"from fusebench import {name}", namespace)
    assert namespace[name] is getattr(fusebench, name)


def public_api_section() -> str:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    start = text.index("## The public API: `fusebench`")
    return text[start:text.index("\n## ", start + 1)]


@pytest.mark.parametrize("name", fusebench.__all__)
def test_every_public_name_is_in_the_documented_list(name):
    assert re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", public_api_section()), (
        f"fusebench.{name} is public: add it to the list under 'The public API' in docs/plugins.md")


def test_every_plugin_module_imports_first_in_a_fresh_interpreter():
    """A worker process loads plugins before anything else: importing a plugin (hence
    ``fusebench``, hence the engine) first must not hit an import cycle."""
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in PLUGINS]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint(len(sys.argv) - 1)"
    proc = subprocess.run([sys.executable, "-c", code, "plugins.datasets.affect.sniff", *modules], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(len(modules) + 1)]


# -- the training hooks --------------------------------------------------------------------------

def hook_lookups(path: Path) -> list[str]:
    """``getattr(x, "<hook>")`` / ``hasattr(x, "<hook>")`` calls: the loop must call the hooks
    ``FusionModel`` declares, not probe for them."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in HOOKS):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_fusion_model_declares_each_training_hook_with_a_docstring():
    for hook in HOOKS:
        method = getattr(FusionModel, hook)
        assert callable(method) and method.__doc__ and len(method.__doc__.split()) > 30, hook


def test_the_engine_calls_the_hooks_instead_of_looking_them_up():
    hits = [hit for path in sorted((ROOT / "benchmark_core").rglob("*.py")) for hit in hook_lookups(path)]
    assert not hits, "call the FusionModel hook directly (it has a default):\n" + "\n".join(hits)


@pytest.mark.parametrize("hook", HOOKS)
def test_docs_describe_each_hook_with_its_parameters(hook):
    params = list(inspect.signature(getattr(FusionModel, hook)).parameters)[1:]  # without self
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert f"`{hook}({', '.join(params)})" in docs


def test_the_built_in_hook_users_override_them():
    assert REGISTRY.method("mfm").build.training_loss is not FusionModel.training_loss
    assert REGISTRY.method("mmim").build.before_epoch is not FusionModel.before_epoch


def _built(name: str, task, **hparams):
    torch.manual_seed(0)
    spec = REGISTRY.method(name)
    return spec.build(task, resolve_hparams(spec, hparams))


def test_the_default_training_loss_is_the_task_loss_plus_the_auxiliary_loss():
    task = tiny_task(2, "vector")
    model = _built("mmim", task).train()  # train mode: MMIM adds its CPC/MI terms
    twin = copy.deepcopy(model)  # MMIM's forward updates state (the entropy estimate's memory of earlier batches)
    batch = tiny_batch(task, 6)
    torch.manual_seed(3)  # the same dropout masks on both sides
    out = model(batch)
    assert torch.is_tensor(out.aux_loss) and out.aux_loss.item() != 0
    torch.manual_seed(3)
    loss = twin.training_loss(batch, lambda p, y: task_loss(p, y, task.target))
    assert torch.equal(loss, task_loss(out.pred, batch.y, task.target) + out.aux_loss)


class Sum(torch.nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.out_dim = hidden

    def forward(self, reps):
        return torch.stack(reps).sum(0)


class SumFusion(fusebench.RepresentationFusion):
    def __init__(self, task, hparams):
        super().__init__(task, hparams, Sum(int(hparams["hidden"])))


@pytest.mark.parametrize("clip", [0.0, 1e-3])
def test_training_step_is_one_optimiser_step_on_the_training_loss(clip):
    """With SGD the first step is p - lr * g, g the gradient of ``training_loss`` (rescaled to
    norm ``clip`` when clipping); MFM's own objective is what is differentiated."""
    task = tiny_task(2, "vector")
    model = _built("mfm", task).eval()  # eval: dropout off, so the reference sees the same loss
    reference = copy.deepcopy(model)
    batch = tiny_batch(task, 6)
    torch.manual_seed(1)  # MFM's MMD term draws its prior samples from the global generator
    expected_loss = reference.training_loss(batch, lambda p, y: task_loss(p, y, task.target))
    grads = torch.autograd.grad(expected_loss, list(reference.parameters()), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(reference.parameters(), grads, strict=True)]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = min(1.0, clip / (float(norm) + 1e-6)) if clip > 0 else 1.0
    budget = Budget(optimizer="sgd", lr=0.1, grad_clip=clip)
    torch.manual_seed(1)
    loss = training_step(model, batch, make_optimizer(model, budget), budget.grad_clip)
    assert torch.equal(loss, expected_loss.detach()) and not loss.requires_grad
    for (name, p), p0, g in zip(model.named_parameters(), reference.parameters(), grads, strict=True):
        assert torch.allclose(p, p0 - 0.1 * scale * g, atol=1e-6), name
    assert clip == 0 or scale < 1  # the clipped case really clipped


def test_a_non_finite_loss_stops_the_step_before_any_update():
    task = tiny_task(2, "vector")
    model = _built("additive", task)
    before = copy.deepcopy(model.state_dict())
    batch = tiny_batch(task)
    batch = batch.replace(x={**batch.x, "m0": torch.full_like(batch.x["m0"], float("nan"))})
    with pytest.raises(DivergedError, match=r"^training loss became nan at step 3; lower --lr"):
        training_step(model, batch, make_optimizer(model, Budget()), 1.0, where=" at step 3")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fit_calls_every_hook_where_the_docs_say():
    """``training_data`` once (with the holdout stream), ``before_epoch`` at each epoch start
    before its steps, ``training_loss`` once per step, all on the data ``training_data`` returned."""
    task = tiny_task(2, "vector")
    calls: list[tuple] = []

    class Recording(SumFusion):
        def training_data(self, data, generator):
            calls.append(("training_data",))
            return dataclasses.replace(data, name="narrowed")

        def before_epoch(self, ctx):
            calls.append(("before_epoch", ctx.epoch, ctx.data.name, self.training))

        def training_loss(self, batch, loss_fn):
            calls.append(("training_loss", batch.size))
            return super().training_loss(batch, loss_fn)

    model = Recording(task, resolve_hparams(REGISTRY.method("additive"), {}))  # hidden, dropout
    data = tiny_data(task, rows=10)
    primary = MetricSpec("neg_loss", lambda y, p: 0.0, True, ("multiclass",))
    result = fit(model, data, Budget(epochs=2, batch_size=4, patience=0), primary, seed_everything(0, 1))
    epoch = [("before_epoch", 0, "narrowed", True)] + [("training_loss", n) for n in (4, 4, 2)]
    assert calls == [("training_data",), *epoch, ("before_epoch", 1, "narrowed", True), *epoch[1:]]
    assert result.steps == 6


# -- validate-plugin runs the engine's own code ---------------------------------------------------

CONTRACT_PLUGIN = '''
import torch

from fusebench import MethodSpec, RepresentationFusion, StressSpec, hookimpl


class Sum(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.out_dim = hidden

    def forward(self, reps):
        return torch.stack(reps).sum(0)


class SumFusion(RepresentationFusion):
    def __init__(self, task, hparams):
        super().__init__(task, hparams, Sum(int(hparams["hidden"])))


class LossRaises(SumFusion):
    def training_loss(self, batch, loss_fn):
        raise RuntimeError("the objective is broken")


class EpochRaises(SumFusion):
    def before_epoch(self, ctx):
        raise RuntimeError("stage 0 is broken")


def drop_first(batch, target, level, generator):
    return batch


@hookimpl
def register_methods(register):
    register(MethodSpec(name="contract-loss", family="additive", build=LossRaises))
    register(MethodSpec(name="contract-epoch", family="additive", build=EpochRaises))


@hookimpl
def register_stress_tests(register):
    register(StressSpec(name="contract-four", apply=drop_first, conditions=lambda task: [("all", 1.0)]))
'''


def test_validate_plugin_runs_the_hooks_and_the_engines_stress_call(install_plugin, tmp_path, monkeypatch):
    """Before: all three passed validation, and every run of them failed."""
    install_plugin("fusebench-contract", "0.1", "fusebench_contract", CONTRACT_PLUGIN, entry_name="contract")
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate-plugin", "contract")
    assert result.code == 1, result.out + result.err
    problems = [line for line in result.out.splitlines() if line.startswith("problem: ")]
    assert any(p.startswith("problem: method 'contract-loss' on 2 vector modalities") and
               "raised RuntimeError: the objective is broken in training_loss()" in p for p in problems), problems
    assert any(p.startswith("problem: method 'contract-epoch'") and
               "raised RuntimeError: stage 0 is broken in before_epoch()" in p for p in problems), problems
    assert ("problem: stress test 'contract-four': its apply function drop_first(batch, target, level, generator) "
            "cannot be called the way the engine calls it, apply(batch, target, level, generator, stats)") \
        in "\n".join(problems)


def test_the_engine_does_call_apply_with_five_arguments():
    """What the signature check protects: the stress grid's own call."""
    from benchmark_core.evaluation.robustness import Condition
    from benchmark_core.evaluation.stress import corrupt

    task = tiny_task(2)
    four = fusebench.StressSpec(name="four", apply=lambda batch, target, level, generator: batch,
                                conditions=lambda task: [("m0", 1.0)])
    with pytest.raises(TypeError, match="positional argument"):
        corrupt(four, tiny_batch(task), Condition("four", "m0", 1.0), 0, {})
    assert check_stress(four) and "cannot be called the way the engine calls it" in check_stress(four)[0]


def training_loss(self, batch, loss_fn):
    raise RuntimeError("training_loss ran")


def before_epoch(self, ctx):
    raise RuntimeError("before_epoch ran")


RAISING = {"training_loss": training_loss, "before_epoch": before_epoch}


@pytest.mark.parametrize("name, hook", [("mfm", "training_loss"), ("mmim", "before_epoch")])
def test_validating_a_method_runs_its_own_hook(name, hook):
    spec = REGISTRY.method(name)
    method = spec.build
    calls: list[str] = []

    def recording(self, *args):
        calls.append(type(args[-1]).__name__ if hook == "before_epoch" else "batch")
        return getattr(method, hook)(self, *args)

    spec_recording = dataclasses.replace(spec, build=type(f"Recording{method.__name__}", (method,), {hook: recording}))
    assert check_method(spec_recording) == []
    assert calls, f"bench validate-plugin never called {name}'s {hook}"
    if hook == "before_epoch":
        assert set(calls) == {"TrainingContext"}
    spec_raising = dataclasses.replace(spec, build=type(f"Raising{method.__name__}", (method,), {hook: RAISING[hook]}))
    problems = check_method(spec_raising)
    assert problems and all(f"raised RuntimeError: {hook} ran in {hook}()" in p for p in problems), problems
