"""Every method builds, runs forward+backward on vector, sequence and 3+-modality tasks,
and honours the model contract (per-modality encode, missing-modality handling)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark_core.engine.data import Batch
from benchmark_core.engine.training import make_optimizer, training_step
from benchmark_core.plugins import build_registry
from benchmark_core.specs import Budget, ModalitySpec, RunSpec, TargetSpec, TaskSpec
from benchmark_core.suite.runner import execute, resolve_hparams

REGISTRY = build_registry()
ZOO = sorted(REGISTRY.names("methods"))
TASK3 = TaskSpec((ModalitySpec("text", 6, "sequence"), ModalitySpec("audio", 5, "sequence"),
                  ModalitySpec("video", 4, "vector")), TargetSpec("multiclass", 3))
CHEAP = {"mult": {"layers": 1}}  # depth only changes cost, not what is tested
BUDGET = Budget()  # the default optimiser and clipping of `bench run`


def random_batch(task: TaskSpec, n: int = 6, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x, mask = {}, {}
    for i, m in enumerate(task.modalities):
        if m.kind == "sequence":
            steps = 5 + i
            lengths = torch.randint(1, steps + 1, (n,), generator=g)
            mask[m.name] = torch.arange(steps)[None] < lengths[:, None]
            x[m.name] = torch.randn(n, steps, m.dim, generator=g) * mask[m.name].unsqueeze(-1)
        else:
            x[m.name], mask[m.name] = torch.randn(n, m.dim, generator=g), None
    present = {m: torch.ones(n, dtype=torch.bool) for m in x}
    return Batch(x, mask, present, torch.randint(task.target.n_outputs, (n,), generator=g))


def build(name: str, task: TaskSpec, **overrides):
    spec = REGISTRY.method(name)
    torch.manual_seed(0)
    return spec.build(task, resolve_hparams(spec, {**CHEAP.get(name, {}), **overrides}))


def train_step(model, batch: Batch) -> torch.Tensor:
    """One step of the engine's own training loop (the model's training_loss, backward,
    clipping, an optimiser step); the gradients stay on the parameters for inspection."""
    model.train()
    return training_step(model, batch, make_optimizer(model, BUDGET), BUDGET.grad_clip)


def test_every_method_has_family_reference_and_is_in_the_readme():
    from benchmark_core.specs import KNOWN_FAMILIES
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in ZOO:
        spec = REGISTRY.method(name)
        assert spec.family in KNOWN_FAMILIES and spec.reference
        assert f"`{name}`" in readme, f"{name} missing from the README methods table"


@pytest.mark.parametrize("name", ZOO)
def test_forward_backward_on_three_mixed_modalities(name):
    spec = REGISTRY.method(name)
    if spec.supports(TASK3):
        pytest.skip(spec.supports(TASK3))
    model = build(name, TASK3)
    batch = random_batch(TASK3)
    loss = train_step(model, batch)
    assert torch.isfinite(loss)
    trained = [p for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert trained, "no parameter received a gradient"
    model.eval()
    with torch.no_grad():
        pred = model(batch).pred
    assert pred.shape == (6, 3) and torch.isfinite(pred).all()


@pytest.mark.parametrize("name", ZOO)
def test_encode_treats_modalities_independently(name):
    model = build(name, TASK3).eval()
    a, b = random_batch(TASK3, seed=1), random_batch(TASK3, seed=2)
    mixed = a.replace(x={**a.x, "text": b.x["text"]}, mask={**a.mask, "text": b.mask["text"]})
    with torch.no_grad():
        ea, em = model.encode(a), model.encode(mixed)
    for m in ("audio", "video"):
        assert torch.allclose(ea.x[m], em.x[m]), f"{name}: encoding of {m} depends on text"


@pytest.mark.parametrize("name", ZOO)
def test_eval_outputs_do_not_depend_on_the_eval_batch(name):
    """Validation/test/stress/EMAP evaluate in EVAL_BATCH_SIZE rows, not the training batch
    size, so a sample's output may not depend on the rows it shares a batch with.  (Equal up
    to float rounding: a 1-row batch takes a different BLAS kernel; for 2+ rows the CPU
    outputs are bit-identical on the machines we measured, see docs/performance.md.)"""
    from benchmark_core.engine.data import SplitTensors
    from benchmark_core.engine.training import predict

    spec = REGISTRY.method(name)
    task = TASK3 if spec.supports(TASK3) is None else TaskSpec(TASK3.modalities[:2], TASK3.target)
    model = build(name, task)
    batch = random_batch(task, n=23, seed=3)
    split = SplitTensors(x=batch.x, mask=batch.mask, y=batch.y)
    whole = predict(model, split)
    for size in (1, 4, 16):
        assert torch.allclose(predict(model, split, size), whole, rtol=1e-5, atol=1e-6), \
            f"{name}: eval batch {size} changes outputs"


@pytest.mark.parametrize("name", ["early", "tensor", "lmf", "mult", "mutualformer", "mfm", "mmim", "mag"])
def test_runs_on_sequence_dataset(name):
    result = execute(RunSpec(name, "synthetic-xor-seq", 0, Budget(epochs=1, batch_size=32),
                             hparams=resolve_hparams(REGISTRY.method(name), CHEAP.get(name, {})),
                             dataset_options={"n": 120}, evaluation={"stress": False, "emap": False}),
                     REGISTRY)
    assert result.status == "finished", result.traceback


def test_padding_does_not_change_sequence_level_predictions():
    """Extra right padding (masked) must not change MulT / MutualFormer / early / MAG outputs."""
    batch = random_batch(TASK3)
    padded = batch.replace(
        x={m: torch.cat([t, torch.randn(6, 3, t.shape[-1])], 1) if t.dim() == 3 else t for m, t in batch.x.items()},
        mask={m: None if k is None else torch.cat([k, torch.zeros(6, 3, dtype=torch.bool)], 1)
              for m, k in batch.mask.items()})
    for name in ("early", "mult", "mutualformer", "mag"):
        model = build(name, TASK3).eval()
        with torch.no_grad():
            assert torch.allclose(model(batch).pred, model(padded).pred, atol=1e-5), name


@pytest.mark.parametrize("name", ZOO)
def test_removed_modality_gives_finite_predictions(name):
    """The stress tests' "missing": zero input, one fully masked step, present False."""
    spec = REGISTRY.method(name)
    if spec.supports(TASK3):
        pytest.skip(spec.supports(TASK3))
    batch = random_batch(TASK3)
    gone = batch.replace(x={**batch.x, "audio": torch.zeros(6, 1, 5)},
                         mask={**batch.mask, "audio": torch.zeros(6, 1, dtype=torch.bool)},
                         present={**batch.present, "audio": torch.zeros(6, dtype=torch.bool)})
    model = build(name, TASK3).eval()
    with torch.no_grad():
        assert torch.isfinite(model(gone).pred).all()


def test_mult_has_all_directed_pairs():
    model = build("mult", TASK3)
    assert sorted(model.crossmodal) == sorted(f"{s}->{t}" for s in TASK3.modality_names
                                              for t in TASK3.modality_names if s != t)


def test_mag_defaults_to_first_sequence_as_primary():
    task = TaskSpec((ModalitySpec("v", 3), ModalitySpec("t", 4, "sequence")), TargetSpec("multiclass", 2))
    assert build("mag", task).primary == "t"
    assert build("mag", task, primary="v").primary == "v"


def test_mfm_uses_surrogate_inference_for_missing_rows():
    model = build("mfm", TASK3).eval()
    batch = random_batch(TASK3)
    absent = torch.tensor([True, False, True, False, False, False])
    missing = batch.replace(present={**batch.present, "audio": ~absent})
    with torch.no_grad():
        full, partial = model(batch).extras["z_y"], model(missing).extras["z_y"]
        reps = [model.encode(batch).x[m] for m in model.modalities]
        surrogate = model.surrogate(reps, 1)[1]
    assert torch.allclose(partial[~absent], full[~absent])
    assert torch.allclose(partial[absent], surrogate[absent])


def test_mmim_stage1_leaves_the_predictor_alone_and_stage0_trains_only_it():
    from types import SimpleNamespace

    model = build("mmim", TASK3)
    batch = random_batch(TASK3, n=8)
    train_step(model, batch)
    assert all(p.grad is None for p in model.mmilb.parameters())
    assert any(p.grad is not None for p in model.encoders.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = SimpleNamespace(batches=lambda size, gen: iter([batch]))
    ctx = SimpleNamespace(data=SimpleNamespace(train=split), budget=Budget(batch_size=8), generator=None,
                          device="cpu", epoch=0)
    model.before_epoch(ctx)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("mmilb.") for k in changed)


def test_unimodal_ignores_other_modalities():
    model = build("unimodal-2", TASK3).eval()
    a, b = random_batch(TASK3, seed=1), random_batch(TASK3, seed=2)
    mixed = b.replace(x={**b.x, "audio": a.x["audio"]}, mask={**b.mask, "audio": a.mask["audio"]})
    with torch.no_grad():
        assert torch.allclose(model(a).pred, model(mixed).pred)
    assert build("unimodal", TASK3, modality="video").modality == "video"


@pytest.mark.parametrize("name", ["nonlinear", "mult", "mfm"])
def test_gradient_blend_is_a_training_option(name):
    spec = REGISTRY.method(name)
    hp = resolve_hparams(spec, {"gradient_blend": True, "gblend_epochs": 1, **CHEAP.get(name, {})})
    result = execute(RunSpec(name, "synthetic-xor", 0, Budget(epochs=2, batch_size=64), hparams=hp,
                             dataset_options={"n": 200}, evaluation={"stress": False, "emap": False}),
                     REGISTRY)
    assert result.status == "finished", result.traceback
    from benchmark_core.engine.blending import GradientBlend

    model = GradientBlend(build(name, TASK3))
    assert torch.isfinite(train_step(model, random_batch(TASK3)))
    assert model.weights.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["additive", "late"])
def test_registered_additive_models_have_no_interaction_terms(name):
    """f(a, b, c) - f(a', b, c) must not depend on (b, c): checked on the full built model."""
    model = build(name, TASK3).double().eval()
    one, two = random_batch(TASK3, seed=3), random_batch(TASK3, seed=4)

    def f(text_from, rest_from):
        x = {**{m: t.double() for m, t in rest_from.x.items()}, "text": text_from.x["text"].double()}
        batch = rest_from.replace(x=x, mask={**rest_from.mask, "text": text_from.mask["text"]})
        with torch.no_grad():
            return model(batch).pred

    assert torch.allclose(f(one, one) - f(two, one), f(one, two) - f(two, two), atol=1e-10)
