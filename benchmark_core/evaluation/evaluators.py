"""Evaluation of a trained model after its clean metrics: the stress grid and EMAP.

``runner.execute`` builds an :class:`EvaluationContext` and calls :func:`evaluate`, which runs
the evaluators of :data:`EVALUATORS` in order; a RunSpec's ``evaluation``
(:class:`~benchmark_core.specs.EvaluationSpec`; a plain mapping of its options is accepted) turns
them off (``{"stress": False}``) or tunes them:

* ``stress_tests``: names (list or comma string) of the registered stress tests to run
  (default: all);
* ``emap_samples``: EMAP on a seeded random subset of that many test samples (default: all);
* ``emap_partners``: 0 forces exact EMAP, K > 0 Monte Carlo with K partners per sample
  (default: chosen by cost for the precision target, see ``benchmark_core.evaluation.emap.next_step``);
* ``emap_target_se``: the standard error and drift of the primary metric aimed at (0.01);
* ``emap_max_evals``: the evaluation budget (default ``emap.MAX_EVALS``/``IDENTITY_MAX_EVALS``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from benchmark_core.engine.data import Batch, DatasetTensors
from benchmark_core.engine.models import FusionModel
from benchmark_core.engine.training import RunSeeds
from benchmark_core.evaluation.emap import TARGET_SE, EmapResult, emap, encode_split
from benchmark_core.evaluation.robustness import drop, subset_design
from benchmark_core.evaluation.stress import run_grid, summarise
from benchmark_core.plugins import Registry
from benchmark_core.scoring import score
from benchmark_core.specs import MetricSpec, RunSpec


@dataclass
class EvaluationContext:
    """One trained model of one run and what its evaluators share.  It owns the clean test
    split's encoding, computed once on first use (by the stress grid, or by EMAP when the grid
    is off), so a context is made per run and never outlives it."""

    spec: RunSpec
    model: FusionModel
    data: DatasetTensors
    registry: Registry
    seeds: RunSeeds
    metrics: Mapping[str, MetricSpec]
    clean: Mapping[str, float]
    primary: str = ""  # the dataset's primary metric (EMAP's precision target is set on it)
    _encoded: Batch | None = field(default=None, init=False, repr=False, compare=False)

    def clean_encoding(self) -> Batch:
        """``model.encode`` of the clean test split, on the run's device (cached)."""
        if self._encoded is None:
            self._encoded = encode_split(self.model, self.data.test, self.spec.budget.device)
        return self._encoded


def _selected_tests(ctx: EvaluationContext) -> list:
    names = ctx.spec.evaluation.stress_test_names
    if names is None:
        return [reg.spec for reg in ctx.registry.items("stress")]
    return [ctx.registry.stress_test(name) for name in names]


def evaluate_stress(ctx: EvaluationContext) -> dict[str, float]:
    """Every condition of every selected stress test, plus the per-run robustness summaries."""
    specs = _selected_tests(ctx)
    seed, names = ctx.seeds.streams["stress"], ctx.data.task.modality_names
    results = run_grid(ctx.model, ctx.data, specs, seed, ctx.metrics, ctx.spec.budget.device, ctx.clean_encoding())
    results.update(summarise(results, ctx.clean, ctx.metrics, specs, subset_design(len(names), seed), names))
    return results


def evaluate_emap(ctx: EvaluationContext) -> dict[str, float]:
    """``emap/<metric>`` (metric of the projection), ``emap/gap/<metric>`` (how much worse the
    projection is than the model on the same samples; > 0: the model uses interactions),
    ``emap/gap_se/<metric>`` (Monte-Carlo standard error of both; 0 when exact) and
    ``emap/gap_drift/<metric>`` (whole estimate vs its halves).  Exact or Monte Carlo is
    chosen by cost for the target ``emap_target_se`` (default 0.01) on the primary metric's
    standard error and drift (``emap.next_step``); ``emap/exact`` records which ran,
    ``emap/se_reached`` whether the target was met (always, when exact)."""
    options = ctx.spec.evaluation
    primary = ctx.primary if ctx.primary in ctx.metrics else next(iter(ctx.metrics))
    target = float(TARGET_SE if options.emap_target_se is None else options.emap_target_se)

    def precision(result: EmapResult, name: str) -> tuple[float, float]:
        rows, spec = ctx.data.test.y[result.index], {name: ctx.metrics[name]}
        return result.precision(lambda projection: score(projection.float(), rows, spec)[name])

    result = emap(ctx.model, ctx.data.test, generator=ctx.seeds.generator("emap"),
                  samples=options.emap_samples, partners=options.emap_partners,
                  device=ctx.spec.budget.device, encoded=ctx.clean_encoding(),
                  precision=lambda r: precision(r, primary), target_se=target,
                  max_evals=options.emap_max_evals)
    y = ctx.data.test.y[result.index]
    projected = score(result.projection.float(), y, ctx.metrics)
    model = score(result.original, y, ctx.metrics)
    out = {f"emap/{name}": value for name, value in projected.items()}
    for name, spec in ctx.metrics.items():
        out[f"emap/gap/{name}"] = drop(model[name], projected[name], spec.higher_is_better)
        out[f"emap/gap_se/{name}"], out[f"emap/gap_drift/{name}"] = precision(result, name)
    se, drift = out[f"emap/gap_se/{primary}"], out[f"emap/gap_drift/{primary}"]
    out.update({"emap/n_samples": float(result.index.numel()), "emap/n_partners": float(result.partners),
                "emap/exact": float(result.exact), "emap/evaluations": float(result.evaluations),
                "emap/se_reached": float(not (se > target or drift > target))})
    return out


Evaluator = Callable[[EvaluationContext], dict[str, float]]

#: The evaluators every trained model gets, in the order they run: (name, evaluator).  The name
#: is the key of ``RunSpec.evaluation`` that turns it off (``{"emap": False}``).
EVALUATORS: tuple[tuple[str, Evaluator], ...] = (("stress", evaluate_stress), ("emap", evaluate_emap))


def evaluate(ctx: EvaluationContext) -> dict[str, float]:
    """The metrics of every evaluator the run's ``evaluation`` options leave on, in table order."""
    results: dict[str, float] = {}
    for name, evaluator in EVALUATORS:
        if ctx.spec.evaluation.enabled(name):
            results.update(evaluator(ctx))
    return results
