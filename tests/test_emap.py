"""EMAP: the formula, its streaming/sampled computation, and what it says about real models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from benchmark_core.data import Batch, SplitTensors
from benchmark_core.emap import emap, project_grid
from benchmark_core.runner import execute, resolve_hparams
from benchmark_core.specs import Budget, ModalitySpec, RunSpec, TargetSpec, TaskSpec


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
    result = emap(model, split, generator=torch.Generator().manual_seed(0))
    assert result.partners == 0 and result.evaluations == 12 ** m
    assert torch.allclose(result.projection, result.original.double(), atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(result.original, model(split.all()).pred, atol=1e-6)


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
    exact = emap(model, split, generator=torch.Generator().manual_seed(0)).projection
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
    exact = emap(model, split, generator=torch.Generator().manual_seed(0))
    assert exact.exact and exact.precision(lambda p: float(p.mean())) == (0.0, 0.0)
    sampled = emap(model, split, generator=torch.Generator().manual_seed(3), partners=256)
    means = sampled.group_means()
    se = means.std(dim=0) / means.shape[0] ** 0.5
    z = (sampled.projection - exact.projection) / se
    assert (z.abs() < 4).float().mean() > 0.97 and z.abs().max() < 6
    assert 0.5 < z.std().item() < 1.6  # the standard error is neither far too small nor far too large
    # the bootstrap standard error of a smooth statistic matches the error it makes
    statistic = lambda p: float(p[:, 0].mean())  # noqa: E731
    boot_se, _ = sampled.precision(statistic)
    group_se = float(means[:, :, 0].mean(dim=1).std() / means.shape[0] ** 0.5)
    assert 0.6 < boot_se / group_se < 1.4
    assert abs(statistic(sampled.projection) - statistic(exact.projection)) < 4 * boot_se


@pytest.mark.parametrize("method", ["additive", "late", "unimodal-1"])
def test_monte_carlo_emap_is_exact_for_additive_models_on_mfeat(registry, method):
    """Issue 12 §3: six modalities force Monte Carlo; with common random numbers every
    additive model's projection equals its own outputs (the published board showed gaps of
    0.014-0.139 for these), whatever the number of partners: every group agrees."""
    from benchmark_core.data import load_tensors
    from benchmark_core.emap import GROUPS

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
    from benchmark_core.emap import GROUPS

    task = _task(3)
    split = _split(task, 70)  # 70^3 cells: Monte Carlo
    model = _build(registry, "tensor", task)
    seen = []

    def converged_at(partners):
        def check(result):
            seen.append(result.partners)
            return result.partners >= partners
        return check

    result = emap(model, split, generator=torch.Generator().manual_seed(0), converged=converged_at(64))
    assert seen == [GROUPS, 2 * GROUPS, 4 * GROUPS] and result.partners == 64
    assert result.evaluations == 70 * (3 + 1) * 64
    # never converging stops at the evaluation budget
    seen.clear()
    capped = emap(model, split, generator=torch.Generator().manual_seed(0), converged=converged_at(10**9),
                  max_evals=70 * 4 * 40)
    assert capped.partners == 32 and seen == [GROUPS]  # 64 partners would exceed the budget


def test_precision_shrinks_with_partners_and_is_reproducible(registry):
    task = _task(3)
    split = _split(task, 70)
    model = _build(registry, "tensor", task)
    y = split.y
    accuracy = lambda p: float((p.argmax(dim=1) == y).double().mean())  # noqa: E731
    small = emap(model, split, generator=torch.Generator().manual_seed(0), partners=16)
    large = emap(model, split, generator=torch.Generator().manual_seed(0), partners=512)
    se_small, _ = small.precision(accuracy)
    se_large, _ = large.precision(accuracy)
    assert 0 < se_large < se_small
    assert small.precision(accuracy) == small.precision(accuracy)  # reproducible resamples


def test_large_grids_fall_back_to_seeded_sampling_and_subsets_are_seeded(registry):
    task = _task(3)
    split = _split(task, 70)  # 70^3 > EXACT_MAX_EVALS
    model = _build(registry, "tensor", task)
    a = emap(model, split, generator=torch.Generator().manual_seed(5))
    b = emap(model, split, generator=torch.Generator().manual_seed(5))
    assert a.partners > 0 and torch.equal(a.projection, b.projection)
    sub = emap(model, split, generator=torch.Generator().manual_seed(5), samples=20)
    sub2 = emap(model, split, generator=torch.Generator().manual_seed(5), samples=20)
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
    assert tensor["emap/n_samples"] == 300 and tensor["emap/n_partners"] == 0


def test_batch_select_pairs_modalities_of_different_samples():
    batch = Batch(x={"a": torch.arange(3.0).view(3, 1), "b": 10 * torch.arange(3.0).view(3, 1)},
                  mask={"a": None, "b": None}, present={"a": torch.ones(3, dtype=torch.bool),
                                                        "b": torch.ones(3, dtype=torch.bool)})
    picked = batch.select({"a": torch.tensor([0, 2]), "b": torch.tensor([1, 1])})
    assert picked.x["a"].flatten().tolist() == [0.0, 2.0] and picked.x["b"].flatten().tolist() == [10.0, 10.0]
