"""The evaluation stage (issue 20 §2 and §4): an explicit, ordered table of evaluators behind
one call that does not need the runner, a context that owns the clean test encoding (no
module-global cache), and one scoring function for clean metrics, the stress grid and EMAP."""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_XOR

from benchmark_core.engine.data import load_tensors
from benchmark_core.engine.models import Output, RepresentationFusion
from benchmark_core.engine.training import predict, seed_everything
from benchmark_core.evaluation import evaluators as evaluation
from benchmark_core.evaluation.evaluators import EVALUATORS, EvaluationContext, evaluate
from benchmark_core.scoring import score
from benchmark_core.specs import Budget, MethodSpec, RunSpec
from benchmark_core.suite.runner import build_model, execute, resolve_hparams
from fusebench import hookimpl
from fusebench.testing import make_registry
from plugins.methods.additive import SumFusion

EVALUATION = {"stress_tests": "missing,noise", "emap_samples": 24}


def _context(registry, model=None, evaluation=EVALUATION) -> EvaluationContext:
    """An untrained additive model on tiny XOR (``model``: another one on the same task)."""
    method, dataset = registry.method("additive"), registry.dataset("synthetic-xor")
    spec = RunSpec("additive", "synthetic-xor", 0, Budget(epochs=1, batch_size=32),
                   resolve_hparams(method, {}), TINY_XOR, dict(evaluation))
    data = load_tensors(dataset, TINY_XOR)
    seeds = seed_everything(spec.seed, spec.budget.threads)
    metrics = {name: registry.metric(name) for name in dataset.metrics}
    if model is None:
        model = build_model(method, data, spec.hparams, seeds)
    clean = score(predict(model, data.test), data.test.y, metrics)
    return EvaluationContext(spec, model, data, registry, seeds, metrics, clean, dataset.primary_metric)


def test_the_evaluators_are_an_ordered_table_that_does_not_import_the_runner():
    """Before: ``runner.EVALUATORS`` was a dict filled by importing ``evaluation``, which imported
    the runner back (an import circle)."""
    assert [name for name, _ in EVALUATORS] == ["stress", "emap"]
    probe = "import sys, benchmark_core.evaluation.evaluators; print('benchmark_core.suite.runner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_evaluate_runs_what_the_options_leave_on_in_table_order(registry):
    both = evaluate(_context(registry))
    stress_keys = [k for k in both if not k.startswith("emap/")]
    assert stress_keys and all(k.startswith(("stress/", "robustness/")) for k in stress_keys)
    assert list(both) == stress_keys + [k for k in both if k.startswith("emap/")]  # stress first, then EMAP
    emap_only = evaluate(_context(registry, evaluation={**EVALUATION, "stress": False}))
    np.testing.assert_equal(emap_only, {k: v for k, v in both.items() if k.startswith("emap/")})
    assert evaluate(_context(registry, evaluation={**EVALUATION, "stress": False, "emap": False})) == {}


def test_a_context_encodes_the_clean_split_once_for_both_evaluators(registry, monkeypatch):
    calls = []
    encode_split = evaluation.encode_split
    monkeypatch.setattr(evaluation, "encode_split", lambda *a, **k: calls.append(a[0]) or encode_split(*a, **k))
    ctx = _context(registry)
    results = evaluate(ctx)
    assert "stress/noise/all/0.1/accuracy" in results and "emap/accuracy" in results
    assert calls == [ctx.model]


def test_the_clean_encoding_never_outlives_its_context(registry):
    """A model evaluated, changed and evaluated again is evaluated with its new weights, exactly
    like a fresh copy of it.  Before, a module-global cache keyed on the model object (and the
    data hash) handed the second evaluation the first one's clean encodings."""
    first = _context(registry)
    evaluate(first)
    draw = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in first.model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=draw))
    again, copied = _context(registry, first.model), _context(registry, copy.deepcopy(first.model))
    np.testing.assert_equal(evaluate(again), evaluate(copied))


class NanAtEval(RepresentationFusion):
    """Additive fusion that trains normally but outputs NaN in eval mode."""

    def fuse(self, encoded):
        out = super().fuse(encoded)
        return out if self.training else Output(torch.full_like(out.pred, math.nan))


class NanPlugin:
    @hookimpl
    def register_methods(self, register):
        register(MethodSpec("nan-at-eval", "additive",
                            lambda task, hp: NanAtEval(task, hp, SumFusion(hp["hidden"]), head="linear")))


def test_non_finite_outputs_score_undefined_in_every_evaluation():
    """One scoring function: clean test and validation metrics, every stress condition and EMAP
    treat non-finite outputs alike (undefined, NaN).  Before, clean metrics scored the argmax
    of NaN logits as class 0 (a number that ranked) while the stress grid said undefined."""
    registry = make_registry(NanPlugin())
    spec = RunSpec("nan-at-eval", "synthetic-xor", 0, Budget(epochs=1, batch_size=32),
                   resolve_hparams(registry.method("nan-at-eval"), {}), TINY_XOR, EVALUATION)
    result = execute(spec, registry)
    assert result.ok, result.traceback
    emap = {f"emap/{part}{name}" for part in ("", "gap/") for name in ("accuracy", "f1_macro")}
    scored = {k: v for k, v in result.metrics.items() if k.startswith(("test/", "val/", "stress/")) or k in emap}
    assert {"test/accuracy", "val/f1_macro", "stress/missing/x1/1/accuracy", *emap} <= set(scored)
    assert all(math.isnan(v) for v in scored.values()), {k: v for k, v in scored.items() if not math.isnan(v)}


def test_score_is_each_metrics_own_value_on_tensors_and_arrays(registry):
    metrics = {name: registry.metric(name) for name in ("accuracy", "f1_macro")}
    y = torch.tensor([0, 1, 1, 0, 1])
    pred = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.2, 0.1], [-1.0, 1.0]])
    expected = {"accuracy": 4 / 5, "f1_macro": pytest.approx((0.8 + 0.8) / 2)}
    assert score(pred, y, metrics) == score(pred.numpy(), y.numpy(), metrics) == expected
    for bad in (math.nan, math.inf):
        pred[2, 1] = bad
        assert all(math.isnan(v) for v in score(pred, y, metrics).values())
