"""EMAP: the formula, its streaming/sampled computation, and what it says about real models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from benchmark_core.engine.data import Batch, SplitTensors
from benchmark_core.evaluation.emap import emap, project_grid
from benchmark_core.specs import Budget, ModalitySpec, RunSpec, TargetSpec, TaskSpec
from benchmark_core.suite.runner import execute, resolve_hparams


def test_reproduces_the_papers_worked_example():
    grid = torch.tensor([[-1.3, 0.3, -0.2], [0.8, 3.0, 1.1], [1.1, -0.1, 0.7]], dtype=torch.float64)
    projected = project_grid(grid, 2)
    assert torch.allclose(projected, torch.tensor([-0.8, 2.1, 0.5], dtype=torch.float64), atol=1e-9)
    assert torch.allclose(grid.diagonal(), torch.tensor([-1.3, 3.0, 0.7], dtype=torch.float64))


def test_three_modal_formula_is_the_least_squares_additive_projection():
    rng = np.random.default_rng(0)
    n, c = 4, 2
    grid = rng.normal(size=(n, n, n, c))
    # least squares over all n^3 cells: F[i,j,k] ~ a[i] + b[j] + d[k] (per output column)
    cells = list(itertools.product(range(n), repeat=3))
    design = np.zeros((len(cells), 3 * n))
    for row, (i, j, k) in enumerate(cells):
        design[row, [i, n + j, 2 * n + k]] = 1.0
    coef, *_ = np.linalg.lstsq(design, grid.reshape(len(cells), c), rcond=None)
    fitted = design @ coef
    diagonal = np.stack([fitted[cells.index((i, i, i))] for i in range(n)])
    projected = project_grid(torch.from_numpy(grid), 3).numpy()
    assert np.abs(projected - diagonal).max() < 1e-10
    # subtracting the grand mean only once (MultiViz) is off by (M - 2) * mu
    once = projected + grid.mean(axis=(0, 1, 2))
    assert np.abs(once - diagonal).max() > 1e-3


def _task(m: int, n_outputs: int = 3) -> TaskSpec:
    mods = tuple(ModalitySpec(f"m{k}", 4 + k, "vector") for k in range(m))
    return TaskSpec(mods, TargetSpec("multiclass", n_outputs))


def _split(task: TaskSpec, n: int, seed: int = 0) -> SplitTensors:
    g = torch.Generator().manual_seed(seed)
    x = {mod.name: torch.randn(n, mod.dim, generator=g) for mod in task.modalities}
    return SplitTensors(x=x, mask={k: None for k in x}, y=torch.randint(3, (n,), generator=g))


def _build(registry, method: str, task: TaskSpec):
    torch.manual_seed(0)
    model = registry.method(method).build(task, resolve_hparams(registry.method(method), {}))
    return model.eval()


def _full_grid(model, split: SplitTensors, m: int) -> torch.Tensor:
    """F over every index tuple, by brute force through model.forward (no encoder reuse)."""
    n = split.size
    tuples = torch.tensor(list(itertools.product(range(n), repeat=m)))
    batch = split.all().select({f"m{k}": tuples[:, k] for k in range(m)})
    with torch.no_grad():
        out = model(batch).pred.double()
    return out.reshape(*(n,) * m, -1)


@pytest.mark.parametrize("m", [2, 3])
def test_emap_of_the_additive_method_equals_the_model(registry, m):
    task = _task(m)
    split = _split(task, 12)
    model = _build(registry, "additive", task)
    result = emap(model, split, generator=torch.Generator().manual_seed(0), partners=0)  # forced exact
    assert result.partners == 0 and result.evaluations == 12 ** m
    assert torch.allclose(result.projection, result.original.double(), atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(result.original, model(split.all()).pred, atol=1e-6)
    # chosen by cost: exact for M = 2 (144 cells < 12 * 3 * 16), Monte Carlo for M = 3; equal either way
    auto = emap(model, split, generator=torch.Generator().manual_seed(0))
    assert auto.exact == (m == 2)
    assert torch.allclose(auto.projection, result.original.double(), atol=1e-5)


@pytest.mark.parametrize("m", [2, 3])
def test_streaming_with_encoder_reuse_matches_the_brute_force_grid(registry, m):
    task = _task(m)
    split = _split(task, 7)
    model = _build(registry, "tensor", task)
    expected = project_grid(_full_grid(model, split, m), m)
    result = emap(model, split, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(result.projection, expected, atol=1e-5)
    assert not torch.allclose(result.projection, result.original.double(), atol=1e-3)  # interactions


def test_monte_carlo_estimate_converges_to_the_exact_projection(registry):
    task = _task(3)
    split = _split(task, 10)
    model = _build(registry, "tensor", task)
    exact = emap(model, split, generator=torch.Generator().manual_seed(0), partners=0).projection
    sampled = emap(model, split, generator=torch.Generator().manual_seed(1), partners=2000)
    assert sampled.partners == 2000 and sampled.evaluations == 10 * (3 + 1) * 2000
    spread = exact.std().item()
    assert (sampled.projection - exact).abs().max().item() < 0.1 * spread


def test_monte_carlo_agrees_with_the_exact_branch_within_its_standard_error(registry):
    """Three modalities: the Monte-Carlo projection's error against the exact one is of the
    size its partner groups say (per sample and output, |z| rarely > 4)."""
    task = _task(3)
    split = _split(task, 12)
    model = _build(registry, "tensor", task)
    exact = emap(model, split, generator=torch.Generator().manual_seed(0), partners=0)
    assert exact.exact and exact.precision(lambda p: float(p.mean())) == (0.0, 0.0)
    sampled = emap(model, split, generator=torch.Generator().manual_seed(3), partners=256)
    means = sampled.group_means()
    se = means.std(dim=0) / means.shape[0] ** 0.5
    z = (sampled.projection - exact.projection) / se
    assert (z.abs() < 4).float().mean() > 0.97 and z.abs().max() < 6
    assert 0.5 < z.std().item() < 1.6  # the standard error is neither far too small nor far too large
    # the bootstrap standard error of a smooth statistic matches the error it makes
    statistic = lambda p: float(p[:, 0].mean())
    boot_se, _ = sampled.precision(statistic)
    group_se = float(means[:, :, 0].mean(dim=1).std() / means.shape[0] ** 0.5)
    assert 0.6 < boot_se / group_se < 1.4
    assert abs(statistic(sampled.projection) - statistic(exact.projection)) < 4 * boot_se


@pytest.mark.parametrize("method", ["additive", "late", "unimodal-1"])
def test_monte_carlo_emap_is_exact_for_additive_models_on_mfeat(registry, method):
    """Issue 12 §3: six modalities force Monte Carlo; with common random numbers every
    additive model's projection equals its own outputs (the published board showed gaps of
    0.014-0.139 for these), whatever the number of partners: every group agrees."""
    from benchmark_core.engine.data import load_tensors
    from benchmark_core.evaluation.emap import GROUPS

    data = load_tensors(registry.dataset("mfeat"))
    model = _build(registry, method, data.task)
    result = emap(model, data.test, generator=torch.Generator().manual_seed(0))
    assert result.partners == GROUPS  # Monte Carlo, smallest round
    assert torch.allclose(result.projection, result.original.double(), atol=1e-5)
    for group in result.group_means():
        assert torch.allclose(group, result.original.double(), atol=1e-5)


def test_emap_metrics_of_an_additive_model_on_mfeat_have_zero_gap_and_se(registry):
    hparams = resolve_hparams(registry.method("additive"), {})
    spec = RunSpec("additive", "mfeat", 0, Budget(epochs=1, batch_size=64), hparams, {},
                   {"stress": False, "emap": True})
    result = execute(spec, registry)
    assert result.ok, result.traceback
    m = result.metrics
    assert m["emap/n_partners"] == 16 and m["emap/se_reached"] == 1.0  # converged at once
    assert abs(m["emap/gap/accuracy"]) < 1e-9
    assert m["emap/gap_se/accuracy"] < 1e-12 and m["emap/gap_drift/accuracy"] < 1e-12


def test_partners_double_until_converged_or_the_budget_is_spent(registry):
    from benchmark_core.evaluation.emap import GROUPS

    task = _task(3)
    split = _split(task, 70)  # 70^3 cells: Monte Carlo is cheaper
    model = _build(registry, "tensor", task)
    seen = []

    def reached_at(partners):
        def precision(result):
            seen.append(result.partners)
            return (0.0, 0.0) if result.partners >= partners else (0.02, 0.0)
        return precision

    result = emap(model, split, generator=torch.Generator().manual_seed(0), precision=reached_at(64))
    assert seen == [GROUPS, 2 * GROUPS, 4 * GROUPS] and result.partners == 64 and not result.exact
    assert result.evaluations == (3 + 1) * int(result.sample_partners.sum())
    assert int(result.sample_partners.min()) >= GROUPS
    # never reaching the target stops at the evaluation budget (the exact grid does not fit it)
    budget = 70 * 4 * 40
    capped = emap(model, split, generator=torch.Generator().manual_seed(0), precision=reached_at(10**9),
                  max_evals=budget)
    assert not capped.exact and capped.evaluations <= budget and capped.partners >= 2 * GROUPS


def test_only_unsettled_predictions_get_more_partners(registry):
    """Adaptive Monte Carlo spends further partners on samples whose predicted class could
    still change; the projection stays an unbiased estimate (checked against the exact grid)."""
    task = _task(3)
    split = _split(task, 40)  # 64,000 cells
    model = _build(registry, "tensor", task)
    y = split.y
    accuracy = lambda p: float((p.argmax(dim=1) == y).double().mean())
    exact = emap(model, split, generator=torch.Generator().manual_seed(0), partners=0)
    auto = emap(model, split, generator=torch.Generator().manual_seed(2), precision=lambda r: r.precision(accuracy),
                target_se=0.005)
    assert not auto.exact and auto.sample_partners is not None
    assert auto.sample_partners.min() < auto.sample_partners.max()  # not every sample was refined
    se, _ = auto.precision(accuracy)
    assert se <= 0.005 and abs(accuracy(auto.projection) - accuracy(exact.projection)) <= 0.05
    assert auto.evaluations < exact.evaluations / 2  # far cheaper than the grid it estimates
    means = auto.group_means()
    z = (auto.projection - exact.projection) / (means.std(dim=0) / means.shape[0] ** 0.5).clamp(min=1e-12)
    assert (z.abs() < 4).float().mean() > 0.95


def test_unsettled_reads_margins_in_standard_errors():
    from benchmark_core.evaluation.emap import EmapResult

    groups = torch.zeros(16, 3, 2, dtype=torch.float64)
    groups[:, 0] = torch.tensor([2.0, 0.0])          # no noise: settled
    groups[:, 1, 0] = torch.linspace(-1, 1.2, 16)     # margin 0.1 with a spread of 0.7: unsettled
    groups[:, 2, 0] = 5 + 0.01 * torch.randn(16)      # margin 5, tiny noise: settled
    k = torch.full((3,), 16)
    result = EmapResult(groups.sum(0) / 16, torch.zeros(3, 2), torch.arange(3), 16, 3 * 4 * 16, groups, 0, k)
    assert result.unsettled("multiclass").tolist() == [False, True, False]
    assert result.unsettled("multilabel").tolist() == [False, True, False]  # label 2 is 0 without noise
    assert result.unsettled("regression").all()  # every error counts: never settled


def test_the_choice_of_exact_or_monte_carlo_follows_cost():
    from benchmark_core.evaluation.emap import GROUPS, EmapCost, first_step, next_step, rounds_cost

    # exact exactly when the grid is no dearer than the first Monte-Carlo round
    for n, m in [(12, 2), (48, 2), (49, 2), (8, 3), (9, 3), (300, 2), (300, 6), (3, 6)]:
        cost = EmapCost(n, m)
        assert (first_step(cost) == "exact") == (n ** m <= n * (m + 1) * GROUPS)
    cost = EmapCost(300, 2)  # 90,000 cells; the first round costs 14,400
    assert first_step(cost) == "more"
    assert next_step(cost, 14_400, 14_400, 0.0, 2**20) == "stop"      # target reached
    assert next_step(cost, 14_400, 14_400, None, 2**20) == "stop"     # undefined: more cannot help
    assert next_step(cost, 14_400, 14_400, 43_200, 2**20) == "more"   # Monte Carlo to target is cheaper
    assert rounds_cost(14_400, 1.0) == 0 and rounds_cost(14_400, None) is None
    assert rounds_cost(14_400, 1.5) == 14_400 and rounds_cost(14_400, 4.47) == 7 * 14_400  # doubling rounds
    assert next_step(cost, 60_000, 40_000, 50_000, 2**20) == "exact"  # Monte Carlo would pass the grid's cost
    assert next_step(cost, 60_000, 40_000, 30_000, 2**20) == "more"   # ... unless this round is the last
    assert next_step(cost, 14_400, 100_000, 10**9, 110_000) == "exact"  # only the grid fits the budget
    assert next_step(cost, 14_400, 100_000, 10**9, 100_000) == "stop"   # nothing more fits


def _policy_cost(n: int, m: int, sigma: float, target: float = 0.01, budget: int = 10**15) -> int:
    """Evaluations automatic EMAP spends when the Monte-Carlo standard error is sigma / sqrt(K)."""
    from benchmark_core.evaluation.emap import (
        GROUPS,
        EmapCost,
        first_step,
        next_step,
        partners_needed,
        rounds_cost,
    )

    cost = EmapCost(n, m)
    if first_step(cost) == "exact":
        return cost.exact
    partners = GROUPS
    while True:
        spent = cost.monte_carlo(partners)
        factor = partners_needed(sigma / partners ** 0.5, 0.0, target)
        action = next_step(cost, spent, spent, rounds_cost(spent, factor), budget)
        if action == "stop":
            return spent
        if action == "exact":
            return spent + cost.exact
        partners *= 2


@pytest.mark.parametrize("sigma", [0.0, 0.05, 0.2, 1.0])
def test_emap_cost_grows_with_n_without_a_cliff(sigma):
    """Issue 17: exact EMAP on 300 samples (90,000 evaluations at M = 2) used to cost as much as
    Monte Carlo on 1,200.  Chosen by cost, the evaluations grow with N, never beyond the first
    round plus twice the cheaper way to the target, and the cheaper way is taken."""
    from benchmark_core.evaluation.emap import GROUPS, EmapCost

    costs = [_policy_cost(n, 2, sigma) for n in range(2, 2001)]
    assert all(b >= a for a, b in itertools.pairwise(costs))  # monotone in N
    for n in (10, 48, 49, 100, 300, 512, 1200, 2000):
        cost = EmapCost(n, 2)
        partners = GROUPS
        while sigma / partners ** 0.5 > 0.01:
            partners *= 2
        best = min(cost.exact, cost.monte_carlo(partners))
        assert _policy_cost(n, 2, sigma) <= cost.monte_carlo(GROUPS) + 2 * best
    # the case: 300 samples now cost a quarter of 1,200 (linear in N), not the 90,000 of the grid
    assert 4 * _policy_cost(300, 2, 0.05) == _policy_cost(1200, 2, 0.05) and _policy_cost(300, 2, 0.05) < 90_000
    # a finite evaluation budget is never exceeded (precision is then what the budget bought)
    assert all(_policy_cost(n, 2, sigma, budget=2**20) <= 2**20 for n in range(100, 3001, 100))


def test_precision_shrinks_with_partners_and_is_reproducible(registry):
    task = _task(3)
    split = _split(task, 70)
    model = _build(registry, "tensor", task)
    y = split.y
    accuracy = lambda p: float((p.argmax(dim=1) == y).double().mean())
    small = emap(model, split, generator=torch.Generator().manual_seed(0), partners=16)
    large = emap(model, split, generator=torch.Generator().manual_seed(0), partners=512)
    se_small, _ = small.precision(accuracy)
    se_large, _ = large.precision(accuracy)
    assert 0 < se_large < se_small
    assert small.precision(accuracy) == small.precision(accuracy)  # reproducible resamples


def test_large_grids_fall_back_to_seeded_sampling_and_subsets_are_seeded(registry):
    task = _task(3)
    split = _split(task, 70)  # 70^3 cells: Monte Carlo is far cheaper
    model = _build(registry, "tensor", task)
    a = emap(model, split, generator=torch.Generator().manual_seed(5))
    b = emap(model, split, generator=torch.Generator().manual_seed(5))
    assert a.partners > 0 and torch.equal(a.projection, b.projection)
    sub = emap(model, split, generator=torch.Generator().manual_seed(5), samples=20, partners=0)
    sub2 = emap(model, split, generator=torch.Generator().manual_seed(5), samples=20, partners=0)
    assert sub.partners == 0 and sub.index.numel() == 20 and torch.equal(sub.index, sub2.index)
    assert a.group_sums is not None and torch.equal(a.group_sums, b.group_sums)
    assert torch.equal(sub.projection, sub2.projection)


def test_pure_centred_interaction_projects_to_zero():
    n = 5
    a = torch.randn(n, dtype=torch.float64)
    b = torch.randn(n, dtype=torch.float64)
    grid = torch.outer(a - a.mean(), b - b.mean())
    assert project_grid(grid, 2).abs().max() < 1e-12


def _xor_run(registry, method: str):
    hparams = resolve_hparams(registry.method(method), {})
    spec = RunSpec(method, "synthetic-xor", 0, Budget(epochs=20, batch_size=64, lr=1e-2), hparams,
                   {"n": 2000}, {"stress": False, "emap": True})
    result = execute(spec, registry)
    assert result.ok, result.traceback
    return result.metrics


def test_xor_tensor_fusion_has_a_large_emap_gap_and_additive_none(registry):
    tensor, additive = _xor_run(registry, "tensor"), _xor_run(registry, "additive")
    assert tensor["test/accuracy"] > 0.75
    assert tensor["emap/gap/accuracy"] > 0.3
    assert tensor["emap/accuracy"] < 0.6  # the additive part of an XOR solution is at chance
    assert abs(additive["emap/gap/accuracy"]) < 1e-9
    assert additive["emap/accuracy"] == pytest.approx(additive["test/accuracy"])
    assert tensor["emap/n_samples"] == 300 and tensor["emap/se_reached"] == 1.0
    assert tensor["emap/gap_se/accuracy"] <= 0.01 and tensor["emap/gap_drift/accuracy"] <= 0.01
    # chosen by cost: never much more than the 300^2 = 90,000 evaluations of the exact grid
    assert tensor["emap/evaluations"] <= 2 * 90_000


def test_batch_select_pairs_modalities_of_different_samples():
    batch = Batch(x={"a": torch.arange(3.0).view(3, 1), "b": 10 * torch.arange(3.0).view(3, 1)},
                  mask={"a": None, "b": None}, present={"a": torch.ones(3, dtype=torch.bool),
                                                        "b": torch.ones(3, dtype=torch.bool)})
    picked = batch.select({"a": torch.tensor([0, 2]), "b": torch.tensor([1, 1])})
    assert picked.x["a"].flatten().tolist() == [0.0, 2.0] and picked.x["b"].flatten().tolist() == [10.0, 10.0]


def test_three_hundred_samples_no_longer_pay_the_exact_grid_when_monte_carlo_is_enough(registry):
    """Issue 17: at N = 300, M = 2 the old threshold (N^M <= 2^18) always paid the 90,000-cell
    grid; chosen by cost, a model whose estimate meets the target at once costs one round."""
    task = _task(2)
    split = _split(task, 300)
    model = _build(registry, "additive", task)
    accuracy = lambda p: float((p.argmax(dim=1) == split.y).double().mean())
    result = emap(model, split, generator=torch.Generator().manual_seed(0), precision=lambda r: r.precision(accuracy))
    assert not result.exact and result.evaluations == 300 * 3 * 16  # not 300 ** 2 = 90,000
    assert torch.allclose(result.projection, result.original.double(), atol=1e-5)
