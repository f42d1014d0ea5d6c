"""Gradient Blending (Wang, Tran & Feiszli, CVPR 2020; MultiBench gradient_blend.py): the
held-out part V is carved once per run and never trained on, by the real model or by any
estimation probe, so the overfitting signal O = L^V - L^T survives to later estimates; the
default estimate trains every branch separately."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark_core.engine.blending import HOLDOUT, GradientBlend, estimate_weights
from benchmark_core.engine.data import Batch, DatasetTensors, SplitTensors
from benchmark_core.engine.models import COMMON_DEFAULTS, FusionModel, Output
from benchmark_core.engine.training import TrainingContext, fit, make_optimizer, seed_everything
from benchmark_core.errors import FuseBenchError
from benchmark_core.plugins import build_registry
from benchmark_core.specs import Budget, ModalitySpec, TargetSpec, TaskSpec
from benchmark_core.suite.runner import resolve_hparams

REGISTRY = build_registry()
ACCURACY = REGISTRY.metric("accuracy")
BINARY = TargetSpec("multiclass", 2)


def dataset(task: TaskSpec, n_train: int, features, labels, seed: int = 0) -> DatasetTensors:
    """Vector splits: ``features(n, offset, g)`` -> x dict, ``labels(x, g)`` -> y."""
    g = torch.Generator().manual_seed(seed)
    splits = {}
    for name, n, offset in (("train", n_train, 0), ("validation", 20, 1000), ("test", 20, 2000)):
        x = features(n, offset, g)
        splits[name] = SplitTensors(x=x, mask={m: None for m in x}, y=labels(x, g))
    return DatasetTensors("gblend-test", task, splits, "test")


def random_labels(x, g):
    return torch.randint(2, (next(iter(x.values())).shape[0],), generator=g)


class SharedLog(list):
    """A list that every ``copy.deepcopy`` of its owner shares (collects the probes' steps too)."""

    def __deepcopy__(self, memo):
        return self


class RowLogger(FusionModel):
    """Per-modality linear encoders + linear head.  Column 0 of modality ``a`` holds the row id
    (never fed to the model); every forward with gradients logs the ids of its batch, in
    ``seen`` (this instance only) and in the ``log`` shared with every copy."""

    def __init__(self, task: TaskSpec, hparams, log: SharedLog):
        super().__init__(task, hparams)
        self.enc = nn.ModuleDict({"a": nn.Linear(2, 4), "b": nn.Linear(3, 4)})
        self.head = nn.Linear(8, 2)
        self.seen: list[int] = []
        self.log = log

    def encode(self, batch: Batch) -> Batch:
        if self.training and torch.is_grad_enabled():
            rows = batch.x["a"][:, 0].round().long().tolist()
            self.seen += rows
            self.log += rows
        return batch.replace(x={"a": self.enc["a"](batch.x["a"][:, 1:]), "b": self.enc["b"](batch.x["b"])})

    def fuse(self, encoded: Batch) -> Output:
        return Output(self.head(torch.cat([encoded.x["a"], encoded.x["b"]], dim=-1)))


ID_TASK = TaskSpec((ModalitySpec("a", 3), ModalitySpec("b", 3)), BINARY)


def with_row_ids(n, offset, g):
    ids = torch.arange(offset, offset + n, dtype=torch.float32)[:, None]
    return {"a": torch.cat([ids, torch.randn(n, 2, generator=g)], dim=1), "b": torch.randn(n, 3, generator=g)}


def hparams(**overrides):
    return {**COMMON_DEFAULTS, "gradient_blend": True, **overrides}


def test_held_out_rows_never_reach_a_training_step():
    """Through the real training loop, online (three estimates): the real model trains on every
    row but V, V is the wrapper's held-out set, and no probe step of any estimate touches V."""
    n = 60
    data = dataset(ID_TASK, n, with_row_ids, random_labels)
    log = SharedLog()
    model = GradientBlend(RowLogger(ID_TASK, hparams(gblend_online=True, gblend_epochs=1), log))
    fit(model, data, Budget(epochs=3, batch_size=8, patience=0), ACCURACY, seed_everything(0, 1))
    trained = set(model.model.seen)
    never = set(range(n)) - trained
    assert len(never) == int(0.1 * n), f"the real model trained on {n - len(never)} of {n} train rows"
    assert never == set(model.held_out_rows.tolist())
    assert len(model.estimates) == 3
    assert set(log) == trained  # every probe of every estimate trained on T' only


def test_held_out_part_is_carved_once_from_the_holdout_stream():
    data = dataset(ID_TASK, 50, with_row_ids, random_labels)
    model = GradientBlend(RowLogger(ID_TASK, hparams(gblend_holdout=0.2), SharedLog()))
    narrowed = model.training_data(data, torch.Generator().manual_seed(1))
    held = model.held_out_rows
    assert len(held) == 10 and narrowed.train.size == 40
    ids = lambda split: set(split.x["a"][:, 0].long().tolist())
    assert ids(narrowed.splits[HOLDOUT]) == set(held.tolist())
    assert ids(narrowed.train) == set(range(50)) - set(held.tolist())
    assert narrowed.validation is data.validation and narrowed.test is data.test
    assert data.train.size == 50 and HOLDOUT not in data.splits  # the caller's data is untouched
    model.training_data(data, torch.Generator().manual_seed(1))
    assert torch.equal(model.held_out_rows, held)  # deterministic given the stream
    model.training_data(data, torch.Generator().manual_seed(2))
    assert not torch.equal(model.held_out_rows, held)


def test_overfitting_signal_stays_positive_on_a_memorisable_task():
    """Random labels, 64 + 64 features, 108 rows: the model can only memorise.  V unseen, the
    second estimate measures O ~ 1 on every branch; with V trained on (the old behaviour)
    O stayed near 0 (measured: fused 0.04)."""
    dim = 64
    task = TaskSpec((ModalitySpec("a", dim), ModalitySpec("b", dim)), BINARY)
    noise = lambda n, offset, g: {m: torch.randn(n, dim, generator=g) for m in "ab"}
    data = dataset(task, 120, noise, random_labels)
    spec = REGISTRY.method("nonlinear")
    seeds = seed_everything(0, 1)
    torch.manual_seed(seeds.streams["init"])
    hp = resolve_hparams(spec, {"gradient_blend": True, "gblend_online": True, "gblend_epochs": 2,
                                "hidden": 64, "dropout": 0.0})
    model = GradientBlend(spec.build(task, hp))
    fit(model, data, Budget(epochs=3, batch_size=8, lr=1e-2, patience=0), ACCURACY, seeds)
    first, second = model.estimates
    assert second.epoch == 2 and len(second.overfitting) == 3
    assert min(second.overfitting) > 0.5, second.overfitting


def signal_and_noise(n, offset, g):
    """The label is a linear threshold of ``signal``; ``noise`` (64-d) can only be memorised."""
    return {"signal": torch.randn(n, 4, generator=g), "noise": torch.randn(n, 64, generator=g)}


def signal_labels(x, g):
    return (x["signal"] @ torch.tensor([1.0, -1.0, 0.5, 2.0]) > 0).long()


SN_TASK = TaskSpec((ModalitySpec("signal", 4), ModalitySpec("noise", 64)), BINARY)


def estimate(method: str, data: DatasetTensors, probe: str, perturb=None):
    """One estimate at epoch 0 from a fixed initialisation; ``perturb(model)`` edits it first."""
    spec = REGISTRY.method(method)
    torch.manual_seed(0)
    model = GradientBlend(spec.build(SN_TASK, resolve_hparams(spec, {"gradient_blend": True,
                                                                     "gblend_probe": probe})))
    if perturb is not None:
        perturb(model)
    budget = Budget(batch_size=8, lr=1e-2)
    narrowed = model.training_data(data, torch.Generator().manual_seed(0))
    ctx = TrainingContext(0, narrowed, budget, torch.Generator().manual_seed(1), make_optimizer(model, budget),
                          "cpu")
    torch.manual_seed(2)
    return estimate_weights(model, ctx)


def reinit_noise_head(model):
    torch.manual_seed(123)
    for layer in model.heads["noise"]:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()


def test_separate_probes_make_each_branch_depend_on_itself_only():
    """Paper / MultiBench gb_estimate: each unimodal model and the fused model are trained
    alone.  So the signal branch's and the fused model's losses cannot change when only the
    noise head changes; with the joint probe (shared encoders, common clip) they do."""
    data = dataset(SN_TASK, 200, signal_and_noise, signal_labels)
    base = estimate("nonlinear", data, "separate")
    other = estimate("nonlinear", data, "separate", reinit_noise_head)
    assert other.before[0] == base.before[0] and other.after[0] == base.after[0]  # signal branch
    assert other.before[2] == base.before[2] and other.after[2] == base.after[2]  # fused model
    assert other.after[1] != base.after[1]  # the noise branch itself did change
    joint = estimate("nonlinear", data, "joint")
    joint_other = estimate("nonlinear", data, "joint", reinit_noise_head)
    assert joint_other.after[0] != joint.after[0] and joint_other.after[2] != joint.after[2]


@pytest.mark.parametrize("probe", ["separate", "joint"])
def test_a_pure_noise_modality_gets_a_negligible_weight(probe):
    """The noise branch only memorises: its held-out loss rises, dG is clipped to 0 and its
    weight drops to the floor, while the signal branch generalises.  (With a noise branch that
    barely moves — too little capacity or too few epochs — dG and dO are both ~0 and the
    ratio dG / dO^2 is unstable: the estimator needs branches that visibly fit.)"""
    data = dataset(SN_TASK, 200, signal_and_noise, signal_labels)
    result = estimate("nonlinear", data, probe)
    w_signal, w_noise, w_fused = result.weights
    assert w_noise < 1e-3 and w_signal > 0.1 and sum(result.weights) == pytest.approx(1.0)
    assert result.after[0][1] < result.before[0][1]  # signal: held-out loss falls (dG > 0)
    assert result.after[1][1] > result.before[1][1]  # noise: held-out loss rises (dG = 0)


def test_probe_variant_is_validated():
    with pytest.raises(FuseBenchError, match="gblend_probe"):
        GradientBlend(RowLogger(ID_TASK, hparams(gblend_probe="both"), SharedLog()))
    with pytest.raises(FuseBenchError, match="gblend_holdout"):
        GradientBlend(RowLogger(ID_TASK, hparams(gblend_holdout=1.0), SharedLog()))


def test_estimating_without_the_carved_held_out_part_is_refused():
    """A training loop that skips ``training_data`` would train on V: refuse, do not guess."""
    data = dataset(ID_TASK, 20, with_row_ids, random_labels)
    model = GradientBlend(RowLogger(ID_TASK, hparams(), SharedLog()))
    budget = Budget(batch_size=8)
    ctx = TrainingContext(0, data, budget, torch.Generator(), make_optimizer(model, budget), "cpu")
    with pytest.raises(RuntimeError, match="training_data"):
        model.before_epoch(ctx)
