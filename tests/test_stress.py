"""The stress grid: built-in corruptions, the full condition grid, seeding and encoder reuse."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from benchmark_core import DatasetSpec, StressSpec, TargetSpec, hookimpl
from benchmark_core.engine.data import dataset_from_arrays, load_tensors
from benchmark_core.engine.training import predict, seed_everything
from benchmark_core.evaluation.robustness import Condition
from benchmark_core.evaluation.stress import GridEvaluator, condition_generator, corrupt
from benchmark_core.plugins import build_registry
from benchmark_core.record import parse_stress_key, stress_key
from benchmark_core.scoring import score
from benchmark_core.specs import Budget, RunSpec, SpecError
from benchmark_core.suite.runner import build_model, execute, resolve_hparams
from plugins.stress import drop_steps, gaussian_noise, missing_conditions, remove

TARGET = TargetSpec("multiclass", 2)
RECORDED: dict[str, list[torch.Tensor]] = {}


def _load_trimodal(options) -> datasets.DatasetDict:
    rng = np.random.default_rng(0)

    def split(n):
        lengths = rng.integers(2, 7, size=n)
        seq = [rng.normal(size=(t, 3)).astype(np.float32) for t in lengths]
        a, b = rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)
        y = (a[:, 0] + b[:, 0] > 0).astype(np.int64)
        return dataset_from_arrays({"a": ("vector", a), "b": ("vector", b), "s": ("sequence", seq)}, y, TARGET)

    return datasets.DatasetDict({"train": split(60), "validation": split(20), "test": split(30)})


def _record(batch, target, level, generator, stats):
    out = gaussian_noise(batch, target, level, generator, stats)
    RECORDED.setdefault(target, []).append(out.x["a"].clone())
    return out


class TriModal:
    @hookimpl
    def register_datasets(self, register):
        register(DatasetSpec("stress-trimodal", _load_trimodal, TARGET, ("a", "b", "s"),
                             ("accuracy",), "accuracy"))

    @hookimpl
    def register_stress_tests(self, register):
        register(StressSpec("recorded", _record, lambda task: [("a", 0.5)],
                            "test-only: noise on 'a', remembering the inputs"))


@pytest.fixture(scope="module")
def trimodal():
    return build_registry(plugins=[TriModal()])


def _run(registry, method, seed=0, evaluation=None):
    spec = RunSpec(method, "stress-trimodal", seed, Budget(epochs=2, batch_size=16),
                   resolve_hparams(registry.method(method), {}),
                   evaluation=evaluation or {"stress": True, "emap": False})
    result = execute(spec, registry)
    assert result.ok, result.traceback
    return result.metrics


def test_missing_evaluates_every_subset_that_leaves_one_modality(trimodal):
    metrics = _run(trimodal, "tensor")
    subsets = {key.split("/")[2] for key in metrics if key.startswith("stress/missing/")}
    assert subsets == {"a", "b", "s", "a.b", "a.s", "b.s"}  # '+' is written '.' in MLflow keys
    assert all(f"stress/missing/{s}/1/accuracy" in metrics for s in subsets)
    assert {"robustness/missing/mean/accuracy", "robustness/missing/worst_drop/accuracy",
            "robustness/relative/accuracy", "robustness/noise/all/relative/accuracy"} <= set(metrics)
    mean = np.mean([metrics[f"stress/missing/{s}/1/accuracy"] for s in subsets])
    assert metrics["robustness/missing/mean/accuracy"] == pytest.approx(mean)
    # noise: each modality and all, ten levels; timedrop only on the sequence modality
    noise = {parse_stress_key(k)[1:3] for k in metrics if k.startswith("stress/noise/")}
    levels = [round(0.1 * i, 1) for i in range(1, 11)]
    assert noise == {(t, lv) for t in ("a", "b", "s", "all") for lv in levels}
    drops = {parse_stress_key(k)[1] for k in metrics if k.startswith("stress/timedrop/")}
    assert drops == {"s"}


def test_missing_zeroes_masks_and_flags_absent(trimodal):
    data = load_tensors(trimodal.dataset("stress-trimodal"))
    clean = data.test.all()
    out = remove(clean, "a+s", 1.0, torch.Generator(), {})
    assert not out.present["a"].any() and not out.present["s"].any() and out.present["b"].all()
    assert out.x["a"].abs().sum() == 0 and out.x["s"].abs().sum() == 0 and not out.mask["s"].any()
    assert out.x["s"].shape[1] == 1  # a removed sequence is one masked zero step
    assert out.x["b"] is clean.x["b"] and out.mask["b"] is clean.mask["b"]  # untouched: same tensors
    assert [t for t, _ in missing_conditions(data.task)] == ["a", "b", "s", "a+b", "a+s", "b+s"]


def test_noise_level_zero_equals_clean_evaluation(trimodal):
    data = load_tensors(trimodal.dataset("stress-trimodal"))
    seeds = seed_everything(0, 1)
    model = build_model(trimodal.method("tensor"), data, resolve_hparams(trimodal.method("tensor"), {}), seeds)
    clean_pred = predict(model, data.test, 16)
    clean = data.test.all()
    corrupted = corrupt(trimodal.stress_test("noise"), clean, Condition("noise", "all", 0.0),
                        seeds.streams["stress"], data.feature_std())
    stressed = GridEvaluator(model, clean).predict(corrupted)
    assert torch.allclose(stressed, clean_pred, atol=1e-6)
    assert score(stressed, data.test.y, {"accuracy": trimodal.metric("accuracy")}) == \
        score(clean_pred, data.test.y, {"accuracy": trimodal.metric("accuracy")})


def test_noise_is_scaled_by_the_train_std_and_spares_padding():
    x = torch.zeros(2000, 4, 2)
    mask = torch.zeros(2000, 4, dtype=torch.bool)
    mask[:, :3] = True
    from benchmark_core.engine.data import Batch

    batch = Batch({"s": x}, {"s": mask}, {"s": torch.ones(2000, dtype=torch.bool)})
    out = gaussian_noise(batch, "s", 0.5, torch.Generator().manual_seed(0), {"s": torch.tensor([1.0, 4.0])})
    assert out.x["s"][:, 3].abs().sum() == 0
    std = out.x["s"][:, :3].reshape(-1, 2).std(dim=0)
    assert torch.allclose(std, torch.tensor([0.5, 2.0]), rtol=0.05)


def test_timedrop_keeps_at_least_one_step_in_order_and_right_padded(trimodal):
    data = load_tensors(trimodal.dataset("stress-trimodal"))
    clean = data.test.all()
    for level in (0.5, 1.0):
        out = drop_steps(clean, "all", level, torch.Generator().manual_seed(0), {})
        lengths, old = out.mask["s"].sum(1), clean.mask["s"].sum(1)
        assert (lengths >= 1).all() and (lengths <= old).all()
        assert torch.equal(out.mask["s"], torch.arange(out.mask["s"].shape[1]) < lengths[:, None])
        assert out.x["a"] is clean.x["a"]
        # each kept step is one of the row's original steps (order preserved)
        for row in range(5):
            kept = out.x["s"][row, :lengths[row]]
            original = clean.x["s"][row, :old[row]]
            positions = [int((original == step).all(1).nonzero()[0]) for step in kept]
            assert positions == sorted(positions)
    assert (drop_steps(clean, "s", 1.0, torch.Generator(), {}).mask["s"].sum(1) == 1).all()


def test_same_seed_same_corrupted_inputs_for_every_method(trimodal):
    RECORDED.clear()
    for method in ("additive", "tensor", "early"):
        _run(trimodal, method, evaluation={"stress": True, "emap": False, "stress_tests": "recorded"})
    first, *others = RECORDED["a"]
    assert len(others) == 2 and all(torch.equal(first, other) for other in others)
    RECORDED.clear()
    _run(trimodal, "additive", seed=1, evaluation={"stress": True, "emap": False, "stress_tests": "recorded"})
    assert not torch.equal(first, RECORDED["a"][0])  # another run seed, other draws


def test_condition_generators_depend_on_test_and_target_and_share_draws_across_levels():
    draw = lambda *c: torch.rand(4, generator=condition_generator(7, Condition(*c)))
    assert torch.equal(draw("noise", "a", 0.5), draw("noise", "a", 0.5))
    assert torch.equal(draw("noise", "a", 0.5), draw("noise", "a", 0.6))  # common random numbers
    assert not torch.equal(draw("noise", "a", 0.5), draw("noise", "b", 0.5))
    assert not torch.equal(draw("noise", "a", 0.5), draw("timedrop", "a", 0.5))
    other_seed = torch.rand(4, generator=condition_generator(8, Condition("noise", "a", 0.5)))
    assert not torch.equal(draw("noise", "a", 0.5), other_seed)


def test_timedrop_levels_are_nested(trimodal):
    data = load_tensors(trimodal.dataset("stress-trimodal"))
    clean = data.test.all()
    lengths = [drop_steps(clean, "s", level, condition_generator(0, Condition("timedrop", "s", level)), {})
               .mask["s"].sum(1) for level in (0.2, 0.5, 0.9)]
    assert (lengths[0] >= lengths[1]).all() and (lengths[1] >= lengths[2]).all()


@pytest.mark.parametrize("method", ["tensor", "early", "late"])
def test_encoder_reuse_matches_a_full_forward_pass(trimodal, method):
    data = load_tensors(trimodal.dataset("stress-trimodal"))
    seeds = seed_everything(0, 1)
    model = build_model(trimodal.method(method), data, resolve_hparams(trimodal.method(method), {}), seeds)
    model.eval()
    clean = data.test.all()
    evaluator = GridEvaluator(model, clean)
    assert evaluator.reuse == (method != "early")  # early fusion's encode is the identity
    for target in ("a", "s", "a+b", "all"):
        corrupted = gaussian_noise(clean, target, 0.7, torch.Generator().manual_seed(1), data.feature_std())
        with torch.no_grad():
            full = model(corrupted).pred
        assert torch.allclose(evaluator.predict(corrupted), full, atol=1e-5)


def test_stress_keys_round_trip_and_are_valid_mlflow_names():
    from mlflow.utils.validation import _validate_metric_name

    key = stress_key("missing", "text+audio", 1.0, "acc2_nonzero")
    assert key == "stress/missing/text.audio/1/acc2_nonzero"
    _validate_metric_name(key)
    assert parse_stress_key(stress_key("noise", "all", 0.3, "mae")) == ("noise", "all", 0.3, "mae")


def test_stress_spec_validates_its_callables():
    with pytest.raises(SpecError):
        StressSpec("bad", apply=None, conditions=lambda task: [])
    with pytest.raises(SpecError):
        StressSpec("a/b", apply=remove, conditions=lambda task: [])


@pytest.mark.parametrize("method", ["tensor", "early"])
def test_subset_conditions_are_the_union_of_single_modality_corruptions(trimodal, method):
    from benchmark_core.evaluation.stress import run_grid

    data = load_tensors(trimodal.dataset("stress-trimodal"))
    seeds = seed_everything(0, 1)
    model = build_model(trimodal.method(method), data, resolve_hparams(trimodal.method(method), {}), seeds).eval()
    clean, stats, seed = data.test.all(), data.feature_std(), seeds.streams["stress"]
    noise, missing = trimodal.stress_test("noise"), trimodal.stress_test("missing")
    singles = {m: corrupt(noise, clean, Condition("noise", m, 0.3), seed, stats) for m in "abs"}
    union = clean.replace(x={m: singles[m].x[m] for m in "abs"})
    dropped = corrupt(missing, clean, Condition("missing", "a", 1.0), seed, stats)
    both = corrupt(missing, clean, Condition("missing", "b", 1.0), seed, stats)
    subset = dropped.replace(x={**dropped.x, "b": both.x["b"]}, present={**dropped.present, "b": both.present["b"]})
    metrics = {"accuracy": trimodal.metric("accuracy")}
    results = run_grid(model, data, [noise, missing], seed, metrics)
    with torch.no_grad():
        expected_all = score(model(union).pred, data.test.y, metrics)["accuracy"]
        expected_ab = score(model(subset).pred, data.test.y, metrics)["accuracy"]
    assert results["stress/noise/all/0.3/accuracy"] == expected_all
    assert results["stress/missing/a.b/1/accuracy"] == expected_ab
    evaluator = GridEvaluator(model, clean)
    pred = evaluator.predict_union(Condition("noise", "all", 0.3), list("abs"), lambda m: singles[m])
    with torch.no_grad():
        assert torch.allclose(pred, model(union).pred, atol=1e-5)


# -- the missing-modality subset design (issue 17) -------------------------------------------------

def _names(m: int) -> tuple[str, ...]:
    return tuple(f"m{i}" for i in range(m))


def _vector_task(m: int):
    from benchmark_core.specs import ModalitySpec, TaskSpec

    return TaskSpec(tuple(ModalitySpec(n, 2, "vector") for n in _names(m)), TARGET)


@pytest.mark.parametrize("m", [2, 3, 6, 8])
def test_missing_grid_is_every_subset_up_to_eight_modalities(m):
    from itertools import combinations

    from benchmark_core.evaluation.robustness import subset_design

    design = subset_design(m, seed=123)
    assert design.full and design.sampled == 0 and len(design.subsets) == 2 ** m - 2 == design.total
    names = _names(m)
    expected = ["+".join(s) for size in range(1, m) for s in combinations(names, size)]
    assert [t for t, _ in missing_conditions(_vector_task(m), seed=123)] == expected  # the old order


@pytest.mark.parametrize("m", [9, 12, 23])
def test_above_eight_modalities_the_design_grows_polynomially(m):
    """Leave-one-out and keep-one subsets always, plus 3 M^2 subsets drawn from the stress seed
    (the old grid listed all 2^M - 2: 8,388,606 at M = 23)."""
    from benchmark_core.evaluation.robustness import SAMPLE_FACTOR, subset_design

    design = subset_design(m, seed=7)
    sizes = [len(s) for s in design.subsets]
    assert sizes.count(1) == m and sizes.count(m - 1) == m
    assert design.sampled == min(2 ** m - 2 - 2 * m, SAMPLE_FACTOR * m * m) == len(design.subsets) - 2 * m
    assert len(set(design.subsets)) == len(design.subsets) and not design.full
    assert all(list(s) == sorted(set(s)) and 1 <= len(s) <= m - 1 for s in design.subsets)
    assert design.subsets == subset_design(m, seed=7).subsets  # the same for every method of a seed
    assert design.subsets != subset_design(m, seed=8).subsets  # another run seed, another sample
    conditions = missing_conditions(_vector_task(m), seed=7)
    assert [t for t, _ in conditions] == design.targets(_names(m)) and len(conditions) == 2 * m + 3 * m * m


def test_sampled_design_mean_is_unbiased_and_its_standard_error_is_honest():
    """Horvitz-Thompson over many stress seeds: the estimates centre on the mean over all
    2^M - 2 subsets and scatter as much as the reported standard error says."""
    from itertools import combinations

    from benchmark_core.evaluation.robustness import design_mean, subset_design

    m = 10
    score = lambda s: 1.0 - 0.08 * len(s) + 0.05 * ((sum(s) * 7) % 5)
    every = [score(s) for size in range(1, m) for s in combinations(range(m), size)]
    estimates, errors = [], []
    for seed in range(120):
        design = subset_design(m, seed)
        estimate, se = design_mean(design, [score(s) for s in design.subsets])
        estimates.append(estimate)
        errors.append(se)
    truth, spread = float(np.mean(every)), float(np.std(estimates, ddof=1))
    assert abs(np.mean(estimates) - truth) < 4 * spread / np.sqrt(len(estimates))
    assert 0.75 < np.mean(errors) / spread < 1.33
    full = subset_design(6)
    assert design_mean(full, [score(s) for s in full.subsets]) == (pytest.approx(np.mean(
        [score(s) for s in full.subsets])), 0.0)


class NineModal:
    @hookimpl
    def register_datasets(self, register):
        def load(options):
            rng = np.random.default_rng(0)

            def split(n):
                xs = {name: ("vector", rng.normal(size=(n, 2)).astype(np.float32)) for name in _names(9)}
                y = (xs["m0"][1][:, 0] > 0).astype(np.int64)
                return dataset_from_arrays(xs, y, TARGET)

            return datasets.DatasetDict({"train": split(40), "validation": split(10), "test": split(20)})

        register(DatasetSpec("stress-nine", load, TARGET, _names(9), ("accuracy",), "accuracy"))


def test_sampled_subsets_are_the_same_for_every_method_and_recorded():
    from benchmark_core.engine.training import seed_everything as seeds_of
    from benchmark_core.evaluation.robustness import design_mean, subset_design
    from benchmark_core.record import key_target

    registry = build_registry(plugins=[NineModal()])
    design = subset_design(9, seeds_of(0, 1).streams["stress"])
    evaluated = {}
    for method in ("additive", "late"):
        spec = RunSpec(method, "stress-nine", 0, Budget(epochs=1, batch_size=16),
                       resolve_hparams(registry.method(method), {}),
                       evaluation={"stress": True, "emap": False, "stress_tests": "missing"})
        result = execute(spec, registry)
        assert result.ok, result.traceback
        m = result.metrics
        evaluated[method] = {parse_stress_key(k)[1] for k in m if k.startswith("stress/missing/")}
        assert evaluated[method] == {key_target(t) for t in design.targets(_names(9))}
        assert (m["robustness/missing/n_subsets"], m["robustness/missing/n_sampled"],
                m["robustness/missing/n_total"]) == (261, 243, 510)
        scores = [m[stress_key("missing", t, 1.0, "accuracy")] for t in design.targets(_names(9))]
        mean, se = design_mean(design, scores)
        assert m["robustness/missing/mean/accuracy"] == pytest.approx(mean)
        assert m["robustness/missing/mean_se/accuracy"] == pytest.approx(se)
    assert evaluated["additive"] == evaluated["late"]
