"""Gradient Blending (Wang, Tran & Feiszli, CVPR 2020) as a training option for any method.

Joint training can be worse than the best single modality because modalities overfit
and generalise at different rates.  G-Blend adds one prediction head per modality on top
of the method's own per-modality encodings and trains with

    L = sum_m w_m L_m + w_fused L_fused,

where each weight is the branch's generalisation gain per squared overfitting gain
between two checkpoints N and N+n (held-out V carved out of the training split):

    O = L^V - L^T,  dO = O_{N+n} - O_N,  dG = L^V_N - L^V_{N+n},  w_k ∝ dG_k / dO_k^2

(dG clipped at 0, dO^2 floored at 1e-8, weights normalised to sum 1 — the paper's
normaliser only rescales the loss).  Estimation trains a *copy* of the model, all branches
with equal weights, for ``gblend_epochs`` epochs on T' = train minus V and measures the
branch losses before and after; the real model is untouched.  ``gblend_online: false``
(offline G-Blend) estimates once before the first epoch; ``true`` re-estimates every
``gblend_epochs`` epochs from the current checkpoint (the paper's super-epochs).  Inference
uses the fused output only.

The unimodal heads read ``encode``'s output: the shared (B, hidden) encodings of
representation-level methods (so the unimodal losses also shape the shared encoders, the
point of the method), masked-mean pooled if an encoding is a sequence.  For methods whose
``encode`` is the identity (early fusion, MulT) the heads read the pooled *raw* inputs and
share no parameters with the fused model: G-Blend then only rescales the fused loss by
w_fused (the unimodal branches are trained for the estimate but cannot regularise the fused
model).  The method's own ``before_epoch`` still runs; its ``training_loss`` (if any) is the
fused branch's loss.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .data import Batch
from .encoders import masked_mean, mlp_head
from .models import FusionModel, Output
from .training import TrainingContext, task_loss

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FLOOR = 1e-8


def blend_weights(before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]) -> list[float]:
    """Weights from per-branch (train loss, held-out loss) at checkpoints N and N+n."""
    raw = []
    for (train0, held0), (train1, held1) in zip(before, after, strict=True):
        d_overfit = (held1 - train1) - (held0 - train0)
        d_gain = max(held0 - held1, 0.0)
        raw.append(max(d_gain / max(d_overfit ** 2, FLOOR), FLOOR))
    total = sum(raw)
    return [w / total for w in raw]


def _dummy_batch(model: FusionModel) -> Batch:
    x, mask = {}, {}
    for m in model.task.modalities:
        sequence = m.kind == "sequence"
        x[m.name] = torch.zeros((2, 2, m.dim) if sequence else (2, m.dim))
        mask[m.name] = torch.ones(2, 2, dtype=torch.bool) if sequence else None
    return Batch(x=x, mask=mask, present={m: torch.ones(2, dtype=torch.bool) for m in x})


class GradientBlend(FusionModel):
    """Wraps a built model: same ``encode``/``fuse``, blended training loss."""

    def __init__(self, model: FusionModel):
        super().__init__(model.task, model.hparams)
        self.model = model
        hidden, dropout = int(self.hparams["hidden"]), float(self.hparams["dropout"])
        was_training = model.training
        model.eval()
        with torch.no_grad():
            widths = {m: t.shape[-1] for m, t in model.encode(_dummy_batch(model)).x.items()}
        model.train(was_training)
        self.heads = nn.ModuleDict({m: mlp_head(widths[m], self.task.target.n_outputs, hidden, dropout)
                                    for m in self.modalities})
        n = len(self.modalities) + 1
        self.register_buffer("weights", torch.full((n,), 1.0 / n))

    def encode(self, batch: Batch) -> Batch:
        return self.model.encode(batch)

    def fuse(self, encoded: Batch) -> Output:
        return self.model.fuse(encoded)

    def branch_losses(self, batch: Batch, loss_fn: LossFn, task_only: bool = False) -> torch.Tensor:
        """(M + 1,) losses: one per unimodal head, then the fused model's."""
        encoded = self.model.encode(batch)
        losses = []
        for m in self.modalities:
            rep = encoded.x[m]
            if rep.dim() == 3:
                rep = masked_mean(rep, encoded.mask[m])
            losses.append(loss_fn(self.heads[m](rep), batch.y))
        objective = getattr(self.model, "training_loss", None)
        if objective is not None and not task_only:
            losses.append(objective(batch, loss_fn))
        else:
            out = self.model.fuse(encoded)
            losses.append(loss_fn(out.pred, batch.y) + (0.0 if task_only else out.aux_loss))
        return torch.stack(losses)

    def training_loss(self, batch: Batch, loss_fn: LossFn) -> torch.Tensor:
        return (self.weights * self.branch_losses(batch, loss_fn)).sum()

    def before_epoch(self, ctx: TrainingContext) -> None:
        hook = getattr(self.model, "before_epoch", None)
        if hook is not None:
            hook(ctx)
        every = int(self.hparams["gblend_epochs"])
        if ctx.epoch == 0 or (self.hparams["gblend_online"] and ctx.epoch % every == 0):
            self.weights.copy_(torch.tensor(estimate_weights(self, ctx)))


@torch.no_grad()
def _mean_losses(model: GradientBlend, split, index: torch.Tensor, batch_size: int, loss_fn: LossFn,
                 device: str) -> torch.Tensor:
    model.eval()
    total = torch.zeros(len(model.modalities) + 1)
    for start in range(0, len(index), batch_size):
        rows = index[start:start + batch_size]
        total += model.branch_losses(split.batch(rows).to(device), loss_fn, task_only=True).cpu() * len(rows)
    return total / len(index)


def estimate_weights(model: GradientBlend, ctx: TrainingContext) -> list[float]:
    """Train a copy for ``gblend_epochs`` epochs on T' and turn the branch losses into weights."""
    hp, budget, split = model.hparams, ctx.budget, ctx.data.train
    loss_fn = lambda p, y: task_loss(p, y, model.task.target)  # noqa: E731
    order = torch.randperm(split.size, generator=ctx.generator)
    n_held = min(max(1, int(hp["gblend_holdout"] * split.size)), split.size - 1)
    held, train = order[:n_held], order[n_held:]
    probe = copy.deepcopy(model)
    probe.weights.fill_(1.0)
    optimizer = torch.optim.Adam(probe.heads.parameters(), lr=budget.lr, weight_decay=budget.weight_decay)
    optimizer.add_param_group({"params": probe.model.parameters()})

    def checkpoint() -> list[tuple[float, float]]:
        fit = _mean_losses(probe, split, train, budget.batch_size, loss_fn, ctx.device)
        out = _mean_losses(probe, split, held, budget.batch_size, loss_fn, ctx.device)
        return list(zip(fit.tolist(), out.tolist(), strict=True))

    before = checkpoint()
    for _ in range(int(hp["gblend_epochs"])):
        probe.train()
        shuffled = train[torch.randperm(len(train), generator=ctx.generator)]
        for start in range(0, len(shuffled), budget.batch_size):
            batch = split.batch(shuffled[start:start + budget.batch_size]).to(ctx.device)
            loss = probe.training_loss(batch, loss_fn)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if budget.grad_clip > 0:
                nn.utils.clip_grad_norm_(probe.parameters(), budget.grad_clip)
            optimizer.step()
    return blend_weights(before, checkpoint())
