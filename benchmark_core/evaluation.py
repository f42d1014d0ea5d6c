"""The two evaluation extensions every trained model gets: the stress grid and EMAP.

Importing this module (``benchmark_core.runner`` does) registers them in
``runner.EVALUATORS`` under ``stress`` and ``emap``; a RunSpec's ``evaluation`` mapping turns
them off (``{"stress": False}``) or tunes them:

* ``stress_tests``: names (list or comma string) of the registered stress tests to run
  (default: all);
* ``emap_samples``: EMAP on a seeded random subset of that many test samples (default: all);
* ``emap_partners``: 0 forces exact EMAP, K > 0 Monte Carlo with K partners per sample
  (default: chosen by cost for the precision target, see ``benchmark_core.emap.next_step``);
* ``emap_target_se``: the standard error and drift of the primary metric aimed at (0.01);
* ``emap_max_evals``: the evaluation budget (default ``emap.MAX_EVALS``/``IDENTITY_MAX_EVALS``).
"""

from __future__ import annotations

import weakref

from .data import Batch
from .emap import TARGET_SE, EmapResult, emap, encode_split
from .models import FusionModel
from .robustness import drop, subset_design
from .runner import EVALUATORS, EvaluationContext
from .stress import run_grid, score, summarise

# model -> (data hash, encoded clean test split), shared by both evaluators of one run
_ENCODED: weakref.WeakKeyDictionary[FusionModel, tuple[str, Batch]] = weakref.WeakKeyDictionary()


def clean_encoding(ctx: EvaluationContext) -> Batch:
    cached = _ENCODED.get(ctx.model)
    if cached is None or cached[0] != ctx.data.data_hash:
        cached = (ctx.data.data_hash, encode_split(ctx.model, ctx.data.test, ctx.spec.budget.device))
        _ENCODED[ctx.model] = cached
    return cached[1]


def _selected_tests(ctx: EvaluationContext) -> list:
    wanted = ctx.spec.evaluation.get("stress_tests")
    if wanted is None:
        return [reg.spec for reg in ctx.registry.items("stress")]
    names = wanted.split(",") if isinstance(wanted, str) else list(wanted)
    return [ctx.registry.stress_test(name.strip()) for name in names if name.strip()]


def evaluate_stress(ctx: EvaluationContext) -> dict[str, float]:
    """Every condition of every selected stress test, plus the per-run robustness summaries."""
    specs = _selected_tests(ctx)
    seed, names = ctx.seeds.streams["stress"], ctx.data.task.modality_names
    results = run_grid(ctx.model, ctx.data, specs, seed, ctx.metrics, ctx.spec.budget.device, clean_encoding(ctx))
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
    target = float(options.get("emap_target_se", TARGET_SE))

    def precision(result: EmapResult, name: str) -> tuple[float, float]:
        rows, spec = ctx.data.test.y[result.index], {name: ctx.metrics[name]}
        return result.precision(lambda projection: score(projection.float(), rows, spec)[name])

    result = emap(ctx.model, ctx.data.test, generator=ctx.seeds.generator("emap"),
                  samples=options.get("emap_samples"), partners=options.get("emap_partners"),
                  device=ctx.spec.budget.device, encoded=clean_encoding(ctx),
                  precision=lambda r: precision(r, primary), target_se=target,
                  max_evals=options.get("emap_max_evals"))
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


EVALUATORS["stress"] = evaluate_stress
EVALUATORS["emap"] = evaluate_emap
