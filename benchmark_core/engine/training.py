"""The one training loop every method shares, and the seeding that makes runs repeatable.

All randomness of a run is derived from its seed: a ``SeedSequence`` spawns independent
streams for model initialisation, batch shuffling, stress corruptions, EMAP sampling and
held-out rows (Gradient Blending), so e.g. adding a stress test never changes the trained
weights.  New streams go at the end: ``generate_state`` is prefix-stable, so the existing
streams keep their seeds.  Deterministic algorithms are on and intra-op threads are pinned
to the budget's ``threads``.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from benchmark_core.engine.data import Batch, DatasetTensors, SplitTensors
from benchmark_core.engine.models import FusionModel, TrainingContext, check_prediction
from benchmark_core.specs import Budget, MetricSpec, TargetSpec

STREAMS = ("init", "shuffle", "stress", "emap", "holdout")
# Rows per eval-mode forward pass (validation, test, stress, EMAP), independent of the
# training --batch-size: a sample's prediction in eval mode must not depend on the other rows
# of its batch (``bench validate-plugin`` checks it; on CPU the built-ins give bit-identical
# outputs for any batch of 2+ rows), so bigger eval batches only save per-call overhead.
# 256 rows stay cache-friendly on CPU and bound memory.
EVAL_BATCH_SIZE = 256


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class RunSeeds:
    """Independent integer seeds for each purpose, derived from the run seed."""

    seed: int
    streams: Mapping[str, int]

    def generator(self, purpose: str, device: str = "cpu") -> torch.Generator:
        return torch.Generator(device=device).manual_seed(self.streams[purpose])


def seed_everything(seed: int, threads: int) -> RunSeeds:
    """Seed every global RNG, pin threads, enable deterministic algorithms."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    state = np.random.SeedSequence(seed).generate_state(len(STREAMS), dtype=np.uint64)
    return RunSeeds(seed, {name: int(s % 2**63) for name, s in zip(STREAMS, state, strict=True)})


def task_loss(pred: torch.Tensor, y: torch.Tensor, target: TargetSpec) -> torch.Tensor:
    """The target's loss on raw model outputs."""
    if target.loss == "cross_entropy":
        return F.cross_entropy(pred, y)
    if target.loss == "bce":
        return F.binary_cross_entropy_with_logits(pred, y.to(pred.dtype))
    if target.n_outputs == 1:
        pred = pred.reshape(-1)
    if target.loss == "l1":
        return F.l1_loss(pred, y)
    return F.mse_loss(pred, y)


def make_optimizer(model: torch.nn.Module, budget: Budget) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if budget.optimizer == "sgd":
        return torch.optim.SGD(params, lr=budget.lr, momentum=0.9, weight_decay=budget.weight_decay)
    cls = torch.optim.AdamW if budget.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=budget.lr, weight_decay=budget.weight_decay)


def batch_loss(model: FusionModel, batch: Batch, target: TargetSpec) -> torch.Tensor:
    """The training objective of one batch: the model's ``training_loss`` hook given the
    target's loss (by default the task loss plus the model's auxiliary loss)."""
    return model.training_loss(batch, lambda p, y: task_loss(p, y, target))


def apply_gradients(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                    grad_clip: float) -> None:
    """Backward, optional grad-norm clipping, optimiser step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def training_step(model: FusionModel, batch: Batch, optimizer: torch.optim.Optimizer, grad_clip: float,
                  where: str = "") -> torch.Tensor:
    """One optimiser step of the loop every method shares: the model's ``training_loss`` on
    ``batch`` (already on the model's device), a stop on a non-finite loss, backward, optional
    grad-norm clipping, ``optimizer.step()``.  Returns the (detached) loss.  ``fit``, ``bench
    validate-plugin`` and the tests all step through here, so they train alike; ``where``
    (e.g. " at epoch 2, step 7") locates a divergence in its message."""
    loss = batch_loss(model, batch, model.task.target)
    if not torch.isfinite(loss):
        raise DivergedError(
            f"training loss became {loss.item()}{where}; "
            "lower --lr, raise --grad-clip strength, or check the inputs for extreme values"
        )
    apply_gradients(model, optimizer, loss, grad_clip)
    return loss.detach()


@dataclass(frozen=True)
class EpochStats:
    """One pass over the train split: the mean training loss per sample and the steps taken."""

    train_loss: float
    steps: int


def train_epoch(model: FusionModel, data: DatasetTensors, budget: Budget, optimizer: torch.optim.Optimizer,
                generator: torch.Generator, epoch: int) -> EpochStats:
    """One epoch: the model's ``before_epoch`` hook, then a ``training_step`` per batch of
    ``data.train`` shuffled by ``generator`` (the run's shuffle stream), on ``budget.device``."""
    device = budget.device
    model.train()
    model.before_epoch(TrainingContext(epoch, data, budget, generator, optimizer, device))
    model.train()
    total, seen, steps = 0.0, 0, 0
    for step, batch in enumerate(data.train.batches(budget.batch_size, generator)):
        batch = batch.to(device)
        loss = training_step(model, batch, optimizer, budget.grad_clip,
                             where=f" at epoch {epoch + 1}, step {step + 1}")
        steps += 1
        total += loss.item() * batch.size
        seen += batch.size
    return EpochStats(total / max(seen, 1), steps)


@torch.no_grad()
def predict(model: FusionModel, split: SplitTensors, batch_size: int = EVAL_BATCH_SIZE,
            device: str = "cpu") -> torch.Tensor:
    """Raw outputs (N, n_outputs) in eval mode, ``batch_size`` rows at a time."""
    model.eval()
    outputs = []
    for start in range(0, split.size, batch_size):
        batch = split.batch(slice(start, start + batch_size))
        pred = model(batch.to(device)).pred
        check_prediction(pred, batch.size, model.task.target, model)
        outputs.append(pred.float().cpu())
    return torch.cat(outputs)


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    train_time_s: float = 0.0
    # The part of ``train_time_s`` spent on the per-epoch validation passes.
    validation_time_s: float = 0.0
    # Validation outputs of the restored best checkpoint (None if no epoch scored), so the
    # caller need not predict the validation split again.
    best_val_pred: torch.Tensor | None = None
    # Optimiser steps taken by the main loop (a leaderboard warns when a budget allows very few).
    steps: int = 0


def _better(score: float, best: float, higher: bool) -> bool:
    if math.isnan(score):
        return False
    if math.isnan(best):
        return True
    return score > best if higher else score < best


def fit(model: FusionModel, data: DatasetTensors, budget: Budget, primary: MetricSpec,
        seeds: RunSeeds, progress: Callable[[int, dict[str, float]], None] | None = None) -> FitResult:
    """Train with early stopping on the validation primary metric; restores the best weights.

    The model's hooks run here: ``training_data(data, generator)`` once, with the run's
    ``holdout`` stream (Gradient Blending narrows the train split to hold rows out for the
    whole run; the default returns ``data``), and every epoch (``train_epoch``) trains on what
    it returned: ``before_epoch`` sees that data too, then ``training_loss`` per batch."""
    data = model.training_data(data, seeds.generator("holdout"))
    device, target = budget.device, data.task.target
    model.to(device)
    optimizer = make_optimizer(model, budget)
    shuffle = seeds.generator("shuffle")
    best_state = copy.deepcopy(model.state_dict())
    best_score, best_epoch, bad_epochs = float("nan"), -1, 0
    best_val_pred = None
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    validation_s = 0.0
    steps = 0
    epoch = -1
    for epoch in range(budget.epochs):
        trained = train_epoch(model, data, budget, optimizer, shuffle, epoch)
        steps += trained.steps
        validating = time.perf_counter()
        val_pred = predict(model, data.validation, device=device)
        val_loss = task_loss(val_pred, data.validation.y, target).item()
        score = float(primary.fn(data.validation.y.numpy(), val_pred.numpy()))
        validation_s += time.perf_counter() - validating
        row = {"train_loss": trained.train_loss, "val_loss": val_loss, f"val_{primary.name}": score}
        history.append(row)
        if progress is not None:
            progress(epoch, row)
        if _better(score, best_score, primary.higher_is_better):
            best_score, best_epoch, bad_epochs = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            best_val_pred = val_pred
        else:
            bad_epochs += 1
            if budget.patience and bad_epochs >= budget.patience:
                break
    model.load_state_dict(best_state)
    return FitResult(best_epoch + 1, best_score, epoch + 1, history, time.perf_counter() - started,
                     validation_s, best_val_pred, steps)
