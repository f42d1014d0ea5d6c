"""MMIM — MultiModal InfoMax (Han, Chen, Poria, EMNLP 2021).

Two mutual-information objectives shape the unimodal encodings around a tanh-MLP fusion
F = tanh(W2 tanh(W1 Drop([z_1; ...; z_M]))), yhat = W3 F:

* CPC between the fusion result and each unimodal representation (fusion -> modality):
  NCE_m = -mean_i(s_ii - log sum_j exp s_ij), s_ij = <zbar_{m,i}, Gbar_m(F_j)> with both
  sides l2-normalised (temperature 1, negatives = the other batch items).
* A Barber-Agakov lower bound I(X; Y) >= H(Y) + E log q(y | x) between modality pairs
  (the anchor — the first modality, text in the paper — predicting each other modality),
  with a diagonal Gaussian q(y | x) = N(mu(x), diag exp(logvar(x))).  The reference "lld"
  drops the -1/2 log sigma^2 term (and the constant), so it is not a log-likelihood and is
  maximised by inflating sigma^2; by default we use the exact Gaussian log-likelihood
  (``lld_exact: false`` reproduces the reference).  H(Y) is the reference's Gaussian-mixture
  estimate: y projected by a fixed random tanh(Linear_{d -> d/4}) (the reference's
  projection is never updated either), one full covariance per label group (class, or
  sign for regression; multilabel: one group) over the batch plus the previous batch,
  H = 1/2 mean_g logdet(Sigma_g + eps I) (eps added: groups with few samples are singular).

Two-stage optimisation per epoch, as in the reference: ``before_epoch`` runs stage 0, one
pass maximising the lld with its own Adam over the predictor q only (encodings detached,
labels unused); the main loop (stage 1) minimises task + alpha NCE - beta (lld + H) with the
predictor frozen (its parameters get no gradient, so the shared optimizer skips them).
With the exact lld, stage 1 also blocks the gradient through the predicted log sigma^2(x):
otherwise the encoders maximise the unbounded -1/2 log sigma^2 by moving the anchor into
regions where the frozen predictor is (over)confident, and training collapses (observed);
the reference's lld is bounded above by 0 in stage 1 and needs no such guard.  All
matrices are xavier-normal initialised as in the reference (with PyTorch's default init
the tanh fusion starts almost linear and stalls at the XOR saddle).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from fusebench import (
    Batch,
    Choice,
    Float,
    FusionModel,
    MethodSpec,
    Output,
    TaskSpec,
    UnimodalEncoders,
    hookimpl,
)

ENTROPY_EPS = 1e-4


def cpc_nce(z: torch.Tensor, z_pred: torch.Tensor) -> torch.Tensor:
    """InfoNCE of predictions ``z_pred`` (B, D) against targets ``z`` (B, D), cosine scores."""
    z, z_pred = F.normalize(z, dim=-1), F.normalize(z_pred, dim=-1)
    scores = z @ z_pred.T
    return -(scores.diagonal() - scores.logsumexp(dim=-1)).mean()


def gaussian_lld(mu: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor, exact: bool = True) -> torch.Tensor:
    """Mean over the batch of sum over dims of log N(y; mu, exp(logvar)); ``exact=False``
    is the reference's -(mu - y)^2 / (2 sigma^2) without -1/2 log(2 pi sigma^2)."""
    quadratic = -((mu - y) ** 2) / (2 * logvar.exp())
    if exact:
        quadratic = quadratic - 0.5 * (logvar + math.log(2 * math.pi))
    return quadratic.sum(dim=-1).mean()


def mixture_entropy(groups: list[torch.Tensor], eps: float = ENTROPY_EPS) -> torch.Tensor:
    """1/2 mean_g logdet(Sigma_g + eps I) over groups with >= 2 rows (biased covariance)."""
    logdets = []
    for g in groups:
        if g.shape[0] < 2:
            continue
        centred = g - g.mean(dim=0)
        cov = centred.T @ centred / g.shape[0]
        logdets.append(torch.logdet(cov + eps * torch.eye(cov.shape[0], dtype=g.dtype, device=g.device)))
    return 0.5 * torch.stack(logdets).mean() if logdets else torch.zeros(())


class GaussianPredictor(nn.Module):
    """q(y | x): mu and log-variance heads, each Linear-ReLU-Linear."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int):
        super().__init__()
        self.mu = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim))
        self.logvar = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(x), self.logvar(x)


@contextmanager
def no_param_grad(module: nn.Module):
    """Run ``module`` so that its parameters get no gradient (inputs still do)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class MMIM(FusionModel):
    def __init__(self, task: TaskSpec, hparams):
        super().__init__(task, hparams)
        hp = self.hparams
        hidden, dropout, n, width = hp["hidden"], hp["dropout"], len(task.modalities), hp["fusion_dim"]
        self.encoders = UnimodalEncoders(task, hidden, dropout)
        self.fusion = nn.Sequential(nn.Dropout(dropout), nn.Linear(n * hidden, width), nn.Tanh(),
                                    nn.Linear(width, width), nn.Tanh())
        self.out = nn.Linear(width, task.target.n_outputs)
        self.cpc = nn.ModuleList(nn.Linear(width, hidden) for _ in range(n))
        self.pairs = [(0, m) for m in range(1, n)]
        self.mmilb = nn.ModuleList(GaussianPredictor(hidden, hidden, hidden) for _ in self.pairs)
        projection = nn.Linear(hidden, max(1, hidden // 4))
        self.register_buffer("entropy_weight", projection.weight.detach().clone())
        self.register_buffer("entropy_bias", projection.bias.detach().clone())
        for p in self.parameters():  # the reference's xavier-normal init of every matrix
            if p.dim() >= 2:
                nn.init.xavier_normal_(p)
        self._memory: dict[tuple[int, int], torch.Tensor] = {}
        self._stage0: torch.optim.Optimizer | None = None

    def encode(self, batch: Batch) -> Batch:
        x = {m: self.encoders.encode(m, batch.x[m], batch.mask[m]) for m in self.modalities}
        return batch.replace(x=x, mask={m: None for m in self.modalities})

    def lld(self, reps: list[torch.Tensor], frozen_variance: bool = False) -> torch.Tensor:
        """Sum over pairs; ``frozen_variance`` (stage 1) blocks the gradient through log sigma^2."""
        total = torch.zeros((), device=reps[0].device)
        for q, (a, b) in zip(self.mmilb, self.pairs, strict=True):
            mu, logvar = q(reps[a])
            logvar = logvar.detach() if frozen_variance else logvar
            total = total + gaussian_lld(mu, logvar, reps[b], self.hparams["lld_exact"])
        return total

    def label_groups(self, y: torch.Tensor) -> list[torch.Tensor]:
        """Boolean row masks: one per class (multiclass), y > 0 / y < 0 (regression)."""
        kind = self.task.target.kind
        if kind == "multiclass":
            return [y == c for c in range(self.task.target.n_outputs)]
        if kind == "regression":
            y = y.reshape(len(y), -1)[:, 0]
            return [y > 0, y < 0]
        return [torch.ones(len(y), dtype=torch.bool, device=y.device)]

    def entropy(self, reps: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), device=reps[0].device)
        for _, b in self.pairs:
            projected = torch.tanh(F.linear(reps[b], self.entropy_weight, self.entropy_bias))
            groups = []
            for g, rows in enumerate(self.label_groups(y)):
                current = projected[rows]
                memory = self._memory.get((b, g))
                groups.append(current if memory is None else torch.cat([current, memory]))
                self._memory[(b, g)] = current.detach()
            total = total + mixture_entropy(groups)
        return total

    def fuse(self, encoded: Batch) -> Output:
        reps = [encoded.x[m] for m in self.modalities]
        fused = self.fusion(torch.cat(reps, dim=-1))
        pred = self.out(fused)
        if not self.training or encoded.y is None:
            return Output(pred)
        nce = sum(cpc_nce(z, g(fused)) for z, g in zip(reps, self.cpc, strict=True))
        with no_param_grad(self.mmilb):
            lld = self.lld(reps, frozen_variance=True)
        mi = lld + self.entropy(reps, encoded.y)
        aux = self.hparams["cpc_weight"] * nce - self.hparams["mi_weight"] * mi
        return Output(pred, aux, extras={"nce": nce.detach(), "lld": lld.detach()})

    def before_epoch(self, ctx) -> None:
        """Stage 0: one pass maximising the lld, updating only the Gaussian predictors."""
        if self._stage0 is None:
            self._stage0 = torch.optim.Adam(self.mmilb.parameters(), lr=ctx.budget.lr,
                                            weight_decay=ctx.budget.weight_decay)
        self.train()
        for batch in ctx.data.train.batches(ctx.budget.batch_size, ctx.generator):
            with torch.no_grad():
                encoded = self.encode(batch.to(ctx.device))
            loss = -self.lld([encoded.x[m] for m in self.modalities])
            self._stage0.zero_grad(set_to_none=True)
            loss.backward()
            if ctx.budget.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.mmilb.parameters(), ctx.budget.grad_clip)
            self._stage0.step()


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="mmim", family="infomax", build=MMIM,
        defaults={"fusion_dim": 128, "cpc_weight": 0.1, "mi_weight": 0.1, "lld_exact": True},
        search_space={"fusion_dim": Choice((32, 64, 128, 256)), "cpc_weight": Float(0.01, 1.0, log=True),
                      "mi_weight": Float(0.01, 1.0, log=True)},
        reference="Han, Chen, Poria, Improving Multimodal Fusion with Hierarchical Mutual "
                  "Information Maximization for Multimodal Sentiment Analysis, EMNLP 2021",
        description="tanh-MLP fusion + CPC(fusion -> each modality) + Barber-Agakov bound "
                    "(Gaussian q, anchor -> others), two-stage optimisation.",
        min_modalities=2,
    ))
