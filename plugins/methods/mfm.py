"""MFM — Multimodal Factorization Model (Tsai, Liang et al., ICLR 2019).

The joint code is factorised into a *multimodal discriminative* code z_y (from all
modalities; the only input of the label head) and *modality-specific generative* codes
z_m (from modality m alone).  Factors F = ReLU(L2 Drop(ReLU(L1 z))) feed per-modality
decoders that reconstruct x_m from [F_y; F_m]; codes are pulled to N(0, I) by MMD (a
Wasserstein auto-encoder, deterministic codes).  Loss:

    L = task(yhat, y) + lambda_recon * sum_m MSE(xhat_m, x_m) + lambda_mmd * sum_{z in z_y, z_1..z_M} MMD(z)

MMD is the biased V-statistic with the reference code's kernel k(x, y) = exp(-||x-y||^2 / D^2)
(the code averages over dimensions *and* divides by D again: bandwidth D^2, not D).
Missing modalities (``MFM_missing``): per modality m a surrogate network infers
(z_m, z_y) from the *other* modalities' encodings, trained by MSE to the full-data codes
plus the task loss of the prediction made from the surrogate z_y; at inference, rows whose
``present[m]`` is False use the surrogate z_y (the label head reads z_y only).

Harness choices: the shared unimodal encoders replace the reference LSTMs (z_m is a
linear map of the modality's encoding) and an MLP on the concatenated encodings replaces
MFN as the multimodal encoder of z_y (the paper allows any); sequence decoders are the
reference ``LSTMCell`` fed the factor at step 0 and its own hidden state afterwards, and
reconstruction MSE counts real steps only.  Surrogate targets are detached (the reference
does not detach them, which lets the surrogate loss pull the full-data codes towards what
the remaining modalities can predict); the surrogates' reconstruction terms of the
reference are left out.  With several modalities missing in a row, the surrogate of the
first missing one is used (exact for one missing modality).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fusebench import (
    Batch,
    Choice,
    Float,
    FusionModel,
    MethodSpec,
    ModalitySpec,
    Output,
    TaskSpec,
    UnimodalEncoders,
    hookimpl,
    mlp_head,
)

from .common import project_each


def mmd_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, D), (K, D) -> (N, K) with k(x, y) = exp(-||x - y||^2 / D^2)."""
    return torch.exp(-torch.cdist(x, y).pow(2) / x.shape[-1] ** 2)


def mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Biased (V-statistic) squared MMD between two samples, diagonal pairs included."""
    return mmd_kernel(x, x).mean() + mmd_kernel(y, y).mean() - 2 * mmd_kernel(x, y).mean()


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return F.mse_loss(pred, target)
    weights = mask.unsqueeze(-1).to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * weights).sum() / weights.sum().clamp(min=1.0)


def factor_net(in_dim: int, out_dim: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(out_dim, out_dim), nn.ReLU())


class Decoder(nn.Module):
    """[F_y; F_m] -> x_m: an MLP for vectors, the reference LSTMCell unroll for sequences."""

    def __init__(self, in_dim: int, modality: ModalitySpec, hidden: int):
        super().__init__()
        self.sequence = modality.kind == "sequence"
        if self.sequence:
            self.cell = nn.LSTMCell(in_dim, in_dim)
            self.out = nn.Linear(in_dim, modality.dim)
        else:
            self.out = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, modality.dim))

    def forward(self, factor: torch.Tensor, steps: int) -> torch.Tensor:
        if not self.sequence:
            return self.out(factor)
        h, c = torch.zeros_like(factor), torch.zeros_like(factor)
        inputs, outputs = factor, []
        for _ in range(steps):
            h, c = self.cell(inputs, (h, c))
            outputs.append(h)
            inputs = h
        return self.out(torch.stack(outputs, dim=1))


class MFM(FusionModel):
    def __init__(self, task: TaskSpec, hparams):
        super().__init__(task, hparams)
        hp = self.hparams
        hidden, dropout, n = hp["hidden"], hp["dropout"], len(task.modalities)
        code = hp["code_dim"] or hidden
        self.encoders = UnimodalEncoders(task, hidden, dropout)
        self.specific = project_each(n, hidden, code)
        self.discriminative = nn.Sequential(nn.Linear(n * hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                            nn.Linear(hidden, code))
        self.factor_y = factor_net(code, code, dropout)
        self.factors = nn.ModuleList(factor_net(code, code, dropout) for _ in range(n))
        self.decoders = nn.ModuleList(Decoder(2 * code, m, hidden) for m in task.modalities)
        self.head = mlp_head(code, task.target.n_outputs, hidden, dropout)
        self.surrogates = nn.ModuleList(
            nn.Sequential(nn.Linear((n - 1) * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * code))
            for _ in range(n))

    def encode(self, batch: Batch) -> Batch:
        x = {m: self.encoders.encode(m, batch.x[m], batch.mask[m]) for m in self.modalities}
        return batch.replace(x=x, mask={m: None for m in self.modalities})

    def surrogate(self, reps: list[torch.Tensor], m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_m, z_y) inferred without modality m."""
        others = torch.cat([r for j, r in enumerate(reps) if j != m], dim=-1)
        return self.surrogates[m](others).chunk(2, dim=-1)

    def predict(self, z_y: torch.Tensor) -> torch.Tensor:
        return self.head(self.factor_y(z_y))

    def fuse(self, encoded: Batch) -> Output:
        reps = [encoded.x[m] for m in self.modalities]
        z_y = self.discriminative(torch.cat(reps, dim=-1))
        for i in reversed(range(len(reps))):  # reversed: the first missing modality wins
            absent = ~encoded.present[self.modalities[i]].to(z_y.device)
            if absent.any():
                z_y = torch.where(absent.unsqueeze(-1), self.surrogate(reps, i)[1], z_y)
        return Output(self.predict(z_y), extras={"z_y": z_y})

    def training_loss(self, batch: Batch,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        hp = self.hparams
        reps = [self.encode(batch).x[m] for m in self.modalities]
        z_y = self.discriminative(torch.cat(reps, dim=-1))
        z = self.specific(reps)
        f_y = self.factor_y(z_y)
        loss = loss_fn(self.head(f_y), batch.y)
        for m, (name, z_m) in enumerate(zip(self.modalities, z, strict=True)):
            target = batch.x[name]
            steps = target.shape[1] if target.dim() == 3 else 0
            recon = self.decoders[m](torch.cat([f_y, self.factors[m](z_m)], dim=-1), steps)
            loss = loss + hp["lambda_recon"] * masked_mse(recon, target, batch.mask[name])
        loss = loss + hp["lambda_mmd"] * sum(mmd(torch.randn_like(c), c) for c in [z_y, *z])
        if hp["surrogate_weight"] and len(reps) > 1:
            for m in range(len(reps)):
                z_m_hat, z_y_hat = self.surrogate(reps, m)
                miss = (F.mse_loss(z_m_hat, z[m].detach()) + F.mse_loss(z_y_hat, z_y.detach())
                        + loss_fn(self.predict(z_y_hat), batch.y))
                loss = loss + hp["surrogate_weight"] * miss
        return loss


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="mfm", family="factorized", build=MFM,
        defaults={"code_dim": 0, "lambda_recon": 0.5, "lambda_mmd": 100.0, "surrogate_weight": 1.0},
        search_space={"code_dim": Choice((0, 16, 32, 64)), "lambda_recon": Float(0.05, 5.0, log=True),
                      "lambda_mmd": Float(1.0, 1000.0, log=True)},
        reference="Tsai, Liang et al., Learning Factorized Multimodal Representations, ICLR 2019",
        description="Discriminative z_y + modality-specific z_m codes, reconstruction + MMD "
                    "(kernel exp(-|x-y|^2/D^2)); surrogate inference for missing modalities.",
        min_modalities=2,
    ))
