"""The model contract every method implements, and the shared representation-fusion model.

A model is split into ``encode`` (per modality, never mixing modalities) and ``fuse``
(everything after), so evaluators can encode each modality once and recombine encodings
freely: EMAP pairs modality a of sample i with modality b of sample j without re-running
encoders N^2 times, and missing-modality tests act on the same inputs for every method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from benchmark_core.engine.data import Batch, DatasetTensors
from benchmark_core.engine.encoders import UnimodalEncoders, mlp_head
from benchmark_core.errors import OutputError
from benchmark_core.specs import Budget, TaskSpec

# ``loss_fn(pred, y)``: the target's loss (cross-entropy, BCE, L1 or MSE) on raw outputs.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Hyper-parameters every method shares unless it overrides them (recorded per run).
COMMON_DEFAULTS: dict[str, Any] = {
    "hidden": 32, "dropout": 0.1,
    # Gradient Blending (benchmark_core.engine.blending), available to every method.
    "gradient_blend": False, "gblend_epochs": 2, "gblend_online": False, "gblend_holdout": 0.1,
    "gblend_probe": "separate",
}


@dataclass
class Output:
    """``pred``: (B, n_outputs) logits or regression values; ``aux_loss``: method-specific
    training objective added to the task loss; ``extras``: anything a method wants to expose."""

    pred: torch.Tensor
    aux_loss: torch.Tensor | float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingContext:
    """What ``FusionModel.before_epoch(ctx)`` sees: the epoch (0-based), the data the run trains
    on (after ``training_data``), the budget, the run's shuffle generator (draw batches from
    it, so the run stays reproducible), the run's optimiser and the device."""

    epoch: int
    data: DatasetTensors
    budget: Budget
    generator: torch.Generator
    optimizer: torch.optim.Optimizer
    device: str


class FusionModel(nn.Module):
    """Base class: ``forward(batch) == fuse(encode(batch))``.

    ``encode`` must treat each modality independently (its output for modality m may depend
    only on ``x[m]``, ``mask[m]``, ``present[m]``); the default is the identity, which is
    always correct (sequence-level and early-fusion methods do all work in ``fuse``).

    The training loop (``benchmark_core.engine.training.fit``) also calls three hooks, each with a
    default that does what a plain method needs; override one only to change that step:
    ``training_data`` once per run, ``before_epoch`` at the start of every epoch and
    ``training_loss`` for every training batch.
    """

    def __init__(self, task: TaskSpec, hparams: Mapping[str, Any]):
        super().__init__()
        self.task = task
        self.hparams = dict(hparams)
        self.modalities = task.modality_names

    def encode(self, batch: Batch) -> Batch:
        """Per-modality encoding; the identity by default.  Must keep modalities independent
        (EMAP and the stress grid recombine and reuse encodings per modality)."""
        return batch

    def fuse(self, encoded: Batch) -> Output:  # pragma: no cover - abstract
        """Everything cross-modal: ``encode``'s output -> ``Output(pred (B, n_outputs))``.

        What arrives, in training and in every evaluation:

        * ``encoded.x[m]`` for every modality of the task, in ``self.modalities`` order: what
          ``encode`` returned (with the default identity ``encode``, the raw input: (B, D)
          vectors, (B, T, D) right-padded sequences);
        * ``encoded.mask[m]``: (B, T) bool, True = real step, for a sequence ``encode`` left
          as a sequence; ``None`` for vectors (and after ``RepresentationFusion.encode``);
        * ``encoded.present[m]``: (B,) bool.  Always True while training and on clean
          validation/test data; False only where an evaluation-time stress test removed the
          modality (built-in ``missing``: inputs zeroed, a removed sequence reduced to one
          masked zero step, so its mask is (B, 1) all False).  A method that can impute reads
          it; one that ignores it sees the encoding of that empty input;
        * ``encoded.y``: the targets while training and on clean evaluation; ``None`` during
          EMAP and the stress grid, so never read it to predict.

        Rows may be recombinations of different samples' modalities (EMAP) and batches may
        be up to 2048 rows under ``torch.no_grad()`` in eval mode, so in eval mode a row's
        output must depend on that row alone.
        """
        raise NotImplementedError

    def forward(self, batch: Batch) -> Output:
        return self.fuse(self.encode(batch))

    # -- training hooks (called by the training loop; the defaults suit most methods) ----------

    def training_loss(self, batch: Batch, loss_fn: LossFn) -> torch.Tensor:
        """The scalar to minimise on one training batch (train mode, gradients on).

        Called once per training step with the batch (on the run's device, targets in
        ``batch.y``) and ``loss_fn(pred, y)``, the target's loss.  The default is
        ``loss_fn(pred, y) + aux_loss`` of ``forward(batch)``, after checking that ``pred`` is
        (batch size, n_outputs).  Override it for an objective that is more than one forward
        pass (MFM: reconstruction, MMD and surrogate-inference terms); an override owns its
        outputs' shapes.  The loop then back-propagates, clips and steps the optimiser.
        """
        out = self(batch)
        check_prediction(out.pred, batch.size, self.task.target, self)
        return loss_fn(out.pred, batch.y) + out.aux_loss

    def before_epoch(self, ctx: TrainingContext) -> None:
        """Runs at the start of every epoch, before its first training step (the model is in
        train mode, and is put back in train mode afterwards).  Does nothing by default.

        ``ctx`` (:class:`TrainingContext`) holds the epoch, the training data, budget,
        shuffle generator, optimiser and device.  Override it for a stage that is not one
        loss per batch (MMIM's stage 0 trains its mutual-information estimators over the
        train split with its own optimiser).
        """

    def training_data(self, data: DatasetTensors, generator: torch.Generator) -> DatasetTensors:
        """The data to train on, asked once per run before the first epoch; ``data`` unchanged
        by default.  ``generator`` is the run's ``holdout`` stream.  Override it to hold rows
        out of training for the whole run (Gradient Blending keeps its held-out split here);
        validation and test must stay as they are.
        """
        return data


class RepresentationFusion(FusionModel):
    """Shared unimodal encoders -> a method's ``fusion`` module -> a prediction head.

    ``fusion`` maps the list of per-modality vectors (task order) to one vector and exposes
    ``out_dim``.  ``head`` is ``"mlp"`` (shared head), ``"linear"`` (keeps an additive fusion
    additive) or ``"none"`` (the fusion already produces predictions).
    """

    def __init__(self, task: TaskSpec, hparams: Mapping[str, Any], fusion: nn.Module, head: str = "mlp"):
        super().__init__(task, hparams)
        hidden, dropout = int(self.hparams["hidden"]), float(self.hparams["dropout"])
        self.encoders = UnimodalEncoders(task, hidden, dropout)
        self.fusion = fusion
        n_out = task.target.n_outputs
        if head == "mlp":
            self.head = mlp_head(fusion.out_dim, n_out, hidden, dropout)
        elif head == "linear":
            self.head = nn.Linear(fusion.out_dim, n_out)
        elif head == "none":
            self.head = nn.Identity()
        else:
            raise ValueError(f"head must be mlp|linear|none, got {head!r}")

    def encode(self, batch: Batch) -> Batch:
        x = {m: self.encoders.encode(m, batch.x[m], batch.mask[m]) for m in self.modalities}
        return batch.replace(x=x, mask={m: None for m in self.modalities})

    def fuse(self, encoded: Batch) -> Output:
        """``head(fusion([x[m] (B, hidden) for m in task order]))``.

        The default reads only the encodings: ``encoded.mask`` is all ``None`` here (the
        encoders consumed the masks), and ``encoded.present`` is ignored, so a modality the
        ``missing`` stress test removed contributes its encoder's output for the empty
        (zeroed, fully masked) input.  Override ``fuse`` to use ``present`` (leave the
        modality out, impute it); see ``FusionModel.fuse`` for everything a batch holds.
        """
        reps = [encoded.x[m] for m in self.modalities]
        return Output(self.head(self.fusion(reps)))


def overrides(model: FusionModel, hook: str) -> bool:
    """Whether ``model``'s class replaces ``FusionModel``'s default ``hook`` (Gradient Blending
    reuses one encoding for every branch unless the method has its own ``training_loss``)."""
    return getattr(type(model), hook) is not getattr(FusionModel, hook)


def prediction_problem(pred: Any, rows: int, target: Any) -> str | None:
    """Why ``pred`` is not a valid model output for ``rows`` samples of ``target``, or None.

    One sentence shared by the engine (every training step and every prediction) and
    ``bench validate-plugin``, so a plugin author sees the same words in both places.
    """
    expected = (rows, target.n_outputs)
    if isinstance(pred, torch.Tensor) and tuple(pred.shape) == expected:
        return None
    shape = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
    return f"output pred has shape {shape}; expected {expected} = (batch size, target n_outputs)"


def check_prediction(pred: Any, rows: int, target: Any, model: nn.Module) -> None:
    """Raise :class:`OutputError` (the run fails and is not ranked) on a wrong-shaped output:
    a (B, 3) output for a 2-class task would otherwise train and score as if valid."""
    problem = prediction_problem(pred, rows, target)
    if problem:
        raise OutputError(
            f"{type(model).__name__}: {problem}. The run is stopped rather than scored; make the "
            "method's build() size its output layer from task.target.n_outputs (check it with "
            "`bench validate-plugin`)."
        )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
