"""Gradient Blending (Wang, Tran & Feiszli, CVPR 2020) as a training option for any method.

Joint training can be worse than the best single modality because modalities overfit
and generalise at different rates.  G-Blend adds one prediction head per modality on top
of the method's own per-modality encodings and trains with

    L = sum_m w_m L_m + w_fused L_fused,

where each weight is the branch's generalisation gain per squared overfitting gain
between two checkpoints N and N+n, measured on a held-out part V of the training split:

    O = L^V - L^T,  dO = O_{N+n} - O_N,  dG = L^V_N - L^V_{N+n},  w_k ∝ dG_k / dO_k^2

(dG clipped at 0, dO^2 floored at 1e-8, weights normalised to sum 1 — the paper's
normaliser only rescales the loss).  Inference uses the fused output only.

Held-out part.  V must stay unseen for the whole run, or it stops measuring overfitting: a
V redrawn at every estimate from rows the model already trained on gives O ~ 0 from the
second estimate on.  So ``training_data`` carves V once per run (``gblend_holdout`` of the
train split, drawn from the run's ``holdout`` stream) and ``fit`` trains on what it returns:
the train split minus V (T'), with V riding along as the extra split ``gblend_holdout`` that
no training step reads.  The real model, the method's own ``before_epoch`` and every
estimation probe train on T' only — as MultiBench holds out its first 8 % of train for the
whole run (training_structures/gradient_blend.py, ``train``).

Estimate (``gblend_probe``), from the current checkpoint, ``gblend_epochs`` epochs on T'
with the run's optimiser, batch size and clipping:

* ``"separate"`` (default; the paper's estimator and MultiBench's ``gb_estimate``): each
  unimodal model (the method's encoder of modality m + head m) is copied and trained alone
  on its own loss L_m; the fused model is copied and trained alone exactly as the method
  trains (its own objective and ``before_epoch``).  Each branch's losses come from its own
  probe, so a branch's weight depends only on that branch.  Costs M + 1 probe trainings.
* ``"joint"``: one copy with every branch trained together at equal weights — cheaper, but
  through shared encoders and the common gradient clip a branch's estimate depends on the
  other branches.  Not the paper's estimator; kept as a named variant.

``gblend_online: false`` (offline G-Blend) estimates once before the first epoch; ``true``
re-estimates every ``gblend_epochs`` epochs (the paper's super-epochs).  Every estimate is
kept in ``estimates`` (losses at both checkpoints, weights).

The unimodal heads read ``encode``'s output: the shared (B, hidden) encodings of
representation-level methods (so the unimodal losses also shape the shared encoders, the
point of the method), masked-mean pooled if an encoding is a sequence.  For methods whose
``encode`` is the identity (early fusion, MulT) the heads read the pooled *raw* inputs and
share no parameters with the fused model: G-Blend then only rescales the fused loss by
w_fused.  The method's own ``before_epoch`` still runs; its ``training_loss`` (if any) is the
fused branch's loss.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from benchmark_core.engine.data import Batch, DatasetTensors, SplitTensors
from benchmark_core.engine.encoders import masked_mean, mlp_head
from benchmark_core.engine.models import FusionModel, LossFn, Output, TrainingContext, overrides
from benchmark_core.engine.training import EVAL_BATCH_SIZE, apply_gradients, batch_loss, make_optimizer, task_loss
from benchmark_core.errors import FuseBenchError

FLOOR = 1e-8
HOLDOUT = "gblend_holdout"  # the extra split that carries V through fit to before_epoch
PROBES = ("separate", "joint")


def blend_weights(before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]) -> list[float]:
    """Weights from per-branch (train loss, held-out loss) at checkpoints N and N+n."""
    raw = []
    for (train0, held0), (train1, held1) in zip(before, after, strict=True):
        d_overfit = (held1 - train1) - (held0 - train0)
        d_gain = max(held0 - held1, 0.0)
        raw.append(max(d_gain / max(d_overfit ** 2, FLOOR), FLOOR))
    total = sum(raw)
    return [w / total for w in raw]


@dataclass(frozen=True)
class BlendEstimate:
    """One weight estimate at epoch ``epoch``: per branch (unimodal heads in task order, then
    the fused model) the (loss on T', loss on V) at the checkpoint and after the probes."""

    epoch: int
    before: tuple[tuple[float, float], ...]
    after: tuple[tuple[float, float], ...]
    weights: tuple[float, ...]

    @property
    def overfitting(self) -> tuple[float, ...]:
        """O_N = L^V_N - L^T_N per branch at the checkpoint (stays > 0 only if V is unseen)."""
        return tuple(held - fit for fit, held in self.before)


def _dummy_batch(model: FusionModel) -> Batch:
    x, mask = {}, {}
    for m in model.task.modalities:
        sequence = m.kind == "sequence"
        x[m.name] = torch.zeros((2, 2, m.dim) if sequence else (2, m.dim))
        mask[m.name] = torch.ones(2, 2, dtype=torch.bool) if sequence else None
    return Batch(x=x, mask=mask, present={m: torch.ones(2, dtype=torch.bool) for m in x})


def _rows(split: SplitTensors, rows: torch.Tensor) -> SplitTensors:
    """Some rows of a split as a split of their own."""
    batch = split.batch(rows)
    return SplitTensors(x=batch.x, mask=batch.mask, y=batch.y)


class GradientBlend(FusionModel):
    """Wraps a built model: same ``encode``/``fuse``, blended training loss, held-out rows."""

    def __init__(self, model: FusionModel):
        super().__init__(model.task, model.hparams)
        hp = self.hparams
        if hp["gblend_probe"] not in PROBES:
            raise FuseBenchError(f"--hparam gblend_probe={hp['gblend_probe']!r}: use one of {', '.join(PROBES)}.")
        if not 0.0 < float(hp["gblend_holdout"]) < 1.0:
            raise FuseBenchError(f"--hparam gblend_holdout={hp['gblend_holdout']!r}: the held-out share of the "
                                 "train split must lie strictly between 0 and 1 (default 0.1).")
        if int(hp["gblend_epochs"]) < 1:
            raise FuseBenchError(f"--hparam gblend_epochs={hp['gblend_epochs']!r}: must be at least 1 (default 2).")
        self.model = model
        hidden, dropout = int(hp["hidden"]), float(hp["dropout"])
        was_training = model.training
        model.eval()
        with torch.no_grad():
            widths = {m: t.shape[-1] for m, t in model.encode(_dummy_batch(model)).x.items()}
        model.train(was_training)
        self.heads = nn.ModuleDict({m: mlp_head(widths[m], self.task.target.n_outputs, hidden, dropout)
                                    for m in self.modalities})
        n = len(self.modalities) + 1
        self.register_buffer("weights", torch.full((n,), 1.0 / n))
        self.held_out_rows: torch.Tensor | None = None  # V, as rows of the train split
        self.estimates: list[BlendEstimate] = []

    def encode(self, batch: Batch) -> Batch:
        return self.model.encode(batch)

    def fuse(self, encoded: Batch) -> Output:
        return self.model.fuse(encoded)

    def training_data(self, data: DatasetTensors, generator: torch.Generator) -> DatasetTensors:
        """Carve V once per run: ``data`` with train = train minus V and V as split ``gblend_holdout``.
        ``fit`` trains on (and passes to ``before_epoch``) what this returns."""
        n = data.train.size
        if n < 2:
            raise FuseBenchError(f"Gradient Blending holds out part of the train split; it has only {n} row(s), "
                                 "too few to split.")
        n_held = min(max(1, int(float(self.hparams["gblend_holdout"]) * n)), n - 1)
        order = torch.randperm(n, generator=generator)
        self.held_out_rows = order[:n_held].sort().values
        self.estimates = []
        kept = order[n_held:].sort().values
        return replace(data, splits={**data.splits, "train": _rows(data.train, kept),
                                     HOLDOUT: _rows(data.train, self.held_out_rows)})

    def head_loss(self, encoded: Batch, modality: str, y: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
        """Unimodal head ``modality``'s loss on ``encode``'s output (sequences masked-mean pooled)."""
        rep = encoded.x[modality]
        if rep.dim() == 3:
            rep = masked_mean(rep, encoded.mask[modality])
        return loss_fn(self.heads[modality](rep), y)

    def branch_losses(self, batch: Batch, loss_fn: LossFn, task_only: bool = False) -> torch.Tensor:
        """(M + 1,) losses: one per unimodal head, then the fused model's."""
        encoded = self.model.encode(batch)
        losses = [self.head_loss(encoded, m, batch.y, loss_fn) for m in self.modalities]
        if overrides(self.model, "training_loss") and not task_only:
            losses.append(self.model.training_loss(batch, loss_fn))
        else:  # the default objective, on the encoding computed above (encode runs once)
            out = self.model.fuse(encoded)
            losses.append(loss_fn(out.pred, batch.y) + (0.0 if task_only else out.aux_loss))
        return torch.stack(losses)

    def training_loss(self, batch: Batch, loss_fn: LossFn) -> torch.Tensor:
        return (self.weights * self.branch_losses(batch, loss_fn)).sum()

    def before_epoch(self, ctx: TrainingContext) -> None:
        if HOLDOUT not in ctx.data.splits:
            raise RuntimeError(
                "Gradient Blending must be trained on GradientBlend.training_data(data, generator) "
                "(benchmark_core.engine.training.fit does this), so that its held-out rows are never trained on"
            )
        self.model.before_epoch(ctx)
        every = int(self.hparams["gblend_epochs"])
        if ctx.epoch == 0 or (self.hparams["gblend_online"] and ctx.epoch % every == 0):
            estimate = estimate_weights(self, ctx)
            self.estimates.append(estimate)
            self.weights.copy_(torch.tensor(estimate.weights))


@torch.no_grad()
def _measure(module: nn.Module, losses_of: Callable[[Batch], torch.Tensor],
             ctx: TrainingContext) -> list[tuple[float, float]]:
    """(mean loss on T', mean loss on V) for each entry of ``losses_of(batch)``, in eval mode."""
    module.eval()
    means = []
    for split in (ctx.data.train, ctx.data.splits[HOLDOUT]):
        total = torch.zeros((), dtype=torch.float64)
        for batch in split.batches(EVAL_BATCH_SIZE):
            total = total + losses_of(batch.to(ctx.device)).double().cpu() * batch.size
        means.append((total / split.size).reshape(-1).tolist())
    return list(zip(*means, strict=True))


def _train_probe(probe: nn.Module, objective: Callable[[Batch], torch.Tensor], ctx: TrainingContext,
                 epochs: int, method: FusionModel | None = None) -> None:
    """``epochs`` epochs on T' with the run's optimiser and clipping; the method's own
    ``before_epoch`` runs first in each epoch when ``method`` is given (the fused model)."""
    optimizer = make_optimizer(probe, ctx.budget)
    for epoch in range(epochs):
        probe.train()
        if method is not None:
            method.before_epoch(replace(ctx, epoch=epoch, optimizer=optimizer))
            probe.train()
        for batch in ctx.data.train.batches(ctx.budget.batch_size, ctx.generator):
            apply_gradients(probe, optimizer, objective(batch.to(ctx.device)), ctx.budget.grad_clip)


def estimate_weights(model: GradientBlend, ctx: TrainingContext) -> BlendEstimate:
    """Branch losses on T' and V now and after training probes (``gblend_probe``) for
    ``gblend_epochs`` epochs on T', turned into weights; the real model is untouched."""
    target, epochs = model.task.target, int(model.hparams["gblend_epochs"])
    loss_fn = lambda p, y: task_loss(p, y, target)
    before = _measure(model, lambda b: model.branch_losses(b, loss_fn, task_only=True), ctx)
    if model.hparams["gblend_probe"] == "joint":
        probe = copy.deepcopy(model)
        probe.weights.fill_(1.0)
        _train_probe(probe, lambda b: probe.training_loss(b, loss_fn), ctx, epochs, probe.model)
        after = _measure(probe, lambda b: probe.branch_losses(b, loss_fn, task_only=True), ctx)
    else:
        after = []
        for m in model.modalities:
            probe = copy.deepcopy(model)

            def own_loss(b: Batch, probe: GradientBlend = probe, m: str = m) -> torch.Tensor:
                return probe.head_loss(probe.model.encode(b), m, b.y, loss_fn)

            _train_probe(probe, own_loss, ctx, epochs)
            after += _measure(probe, own_loss, ctx)
        fused = copy.deepcopy(model.model)
        _train_probe(fused, lambda b: batch_loss(fused, b, target), ctx, epochs, fused)
        after += _measure(fused, lambda b: loss_fn(fused(b).pred, b.y), ctx)
    return BlendEstimate(ctx.epoch, tuple(before), tuple(after), tuple(blend_weights(before, after)))
