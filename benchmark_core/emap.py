"""EMAP: the empirical multimodally-additive projection of a trained model (Hessel & Lee 2020).

For an evaluation set of N samples and M modalities, F[i_1..i_M] = f(x_1^{i_1}, ..., x_M^{i_M})
(raw outputs: logits or regression values, per output dimension).  The projection is

    f_hat(x^i) = sum_m  mean(F | i_m = i)  -  (M - 1) * mean(F)

(the first-order functional-ANOVA term under the product of the empirical marginals;
docs/stress.md, "EMAP", with the reference code it was checked against).  If metric(f_hat) ~ metric(f), the model's gains cannot come from
cross-modal interactions.

Cost control: each modality is encoded once (``model.encode``) and only ``model.fuse`` runs
on index-broadcast combinations; row/column sums are streamed, so the N^M grid is never
materialised.  When N^M exceeds ``max_exact`` the projection is estimated by Monte Carlo
with *common random numbers*: for each sample i, P partner index tuples J^p are drawn once
(each position uniform over the N samples, the product measure) and shared by every term,

    f_hat(i) = sum_m mean_p f(J^p with position m set to i)  -  (M - 1) * mean_p f(J^p).

Each term is unbiased for its counterpart in the formula above, and because all terms see
the same partners, the contributions of the *other* modalities cancel exactly for every
additive model (f = sum_m g_m(x_m)): the estimate equals f at any P.  It costs
N * (M + 1) * P evaluations.  The partners are split into ``GROUPS`` equal groups; a
bootstrap over the groups gives the Monte-Carlo standard error of any metric of the
projection, and the metric of the whole estimate against the mean metric of its two halves
shows whether it still drifts with P (a metric of a noisy projection is biased: noise flips
more correct predictions than wrong ones).  ``partners="auto"`` doubles the partners until
both are small enough or the evaluation budget is spent (see :func:`emap`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .data import Batch, SplitTensors
from .models import FusionModel
from .training import EVAL_BATCH_SIZE

# Exact EMAP while the grid has at most this many cells (M=2: N <= 512, M=3: N <= 64); a
# model whose ``encode`` is the identity pays a full forward pass per cell, so its exact
# limit is 16 times smaller (M=2: N <= 128).
EXACT_MAX_EVALS = 2**18
IDENTITY_EXACT_DIVISOR = 16
# Monte Carlo: partners per sample come in ``GROUPS`` equal groups (the units the bootstrap
# resamples); the first round draws ``GROUPS`` partners and each further round doubles them,
# while the estimate has not converged and the evaluation budget allows.  The budget is
# smaller when ``encode`` is the identity, since each evaluation is then a full forward pass
# (sequence-level methods).
GROUPS = 16
MAX_EVALS = 2**20
IDENTITY_MAX_EVALS = 2**17
BOOTSTRAP_RESAMPLES = 100
# Rows per encode call, and the input size (floats) one fuse call may gather.  Moderate
# chunks are faster than one huge batch on CPU (they stay in cache) and bound memory.
ENCODE_CHUNK = EVAL_BATCH_SIZE
FUSE_FLOATS = 2**21
MAX_FUSE_ROWS = 2048


Statistic = Callable[[torch.Tensor], float]


@dataclass(frozen=True)
class EmapResult:
    """The projection ``f_hat`` and the model's own outputs ``f`` on the evaluation rows.

    For a Monte-Carlo estimate, ``group_sums`` holds, per partner group g, the sum over that
    group's partners of each sample's per-partner estimate (``projection`` is their total
    divided by ``partners``); :meth:`precision` turns them into a standard error and a drift
    for any statistic of the projection.
    """

    projection: torch.Tensor  # (S, C) float64
    original: torch.Tensor    # (S, C) float32
    index: torch.Tensor       # (S,) rows of the split that formed the evaluation set
    partners: int             # 0: exact; else Monte-Carlo partners per sample
    evaluations: int          # fuse evaluations spent
    group_sums: torch.Tensor | None = None  # (GROUPS, S, C) float64, Monte Carlo only
    bootstrap_seed: int = 0   # drawn from the run's EMAP stream: resamples are reproducible

    @property
    def exact(self) -> bool:
        return self.partners == 0

    def group_means(self) -> torch.Tensor:
        """(GROUPS, S, C): each group's own estimate of the projection (independent draws)."""
        assert self.group_sums is not None, "an exact result has no partner groups"
        return self.group_sums * (self.group_sums.shape[0] / self.partners)

    def precision(self, statistic: Statistic, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
        """(standard error, drift) of ``statistic(projection)``; (0, 0) when exact.

        Standard error: the bootstrap over partner groups (groups drawn with replacement, the
        statistic recomputed on each resampled projection; Efron & Tibshirani 1993, ch. 6),
        valid also for non-smooth metrics such as accuracy, where the jackknife is not.
        Drift: |statistic of the whole estimate - mean statistic of its two halves|, the
        visible part of the bias a metric of a noisy projection has.  NaN when undefined.
        """
        if self.group_sums is None:
            return 0.0, 0.0
        groups = self.group_sums.shape[0]
        whole = statistic(self.projection)
        draw = torch.Generator().manual_seed(self.bootstrap_seed)
        picks = torch.randint(groups, (resamples, groups), generator=draw)
        values = np.array([statistic(self.group_sums[pick].sum(dim=0) / self.partners) for pick in picks])
        half = self.partners / 2
        halves = [statistic(self.group_sums[part].sum(dim=0) / half)
                  for part in (slice(0, groups // 2), slice(groups // 2, groups))]
        if not (np.isfinite(values).all() and np.isfinite(whole) and np.isfinite(halves).all()):
            return float("nan"), float("nan")
        return float(values.std(ddof=1)), float(abs(whole - (halves[0] + halves[1]) / 2))


# -- the projection on an explicit grid (reference implementation, used by tests) --------------

def project_grid(grid: torch.Tensor, n_modalities: int) -> torch.Tensor:
    """EMAP diagonal of a full grid F of shape (N,)*M + (C,) (or (N,)*M): returns (N, C)/(N,)."""
    m = n_modalities
    axes = tuple(range(m))
    mu = grid.mean(dim=axes)
    marginals = sum(grid.mean(dim=tuple(a for a in axes if a != k)) for k in axes)
    return marginals - (m - 1) * mu


# -- encoding helpers --------------------------------------------------------------------------

def cat_batches(batches: list[Batch]) -> Batch:
    """Concatenate batches row-wise (targets dropped)."""
    first = batches[0]
    cat = lambda key, m: None if getattr(first, key)[m] is None else torch.cat(  # noqa: E731
        [getattr(b, key)[m] for b in batches])
    return Batch(x={m: cat("x", m) for m in first.x}, mask={m: cat("mask", m) for m in first.mask},
                 present={m: cat("present", m) for m in first.present})


def rows(batch: Batch, start: int, stop: int) -> Batch:
    """Rows ``start:stop`` of every tensor as views (no copy, unlike ``Batch.select``)."""
    view = lambda t: None if t is None else t[start:stop]  # noqa: E731
    return Batch(x={m: view(t) for m, t in batch.x.items()},
                 mask={m: view(t) for m, t in batch.mask.items()},
                 present={m: view(t) for m, t in batch.present.items()})


@torch.no_grad()
def encode_batch(model: FusionModel, batch: Batch, device: str = "cpu",
                 chunk: int = ENCODE_CHUNK) -> Batch:
    """``model.encode`` over a whole batch in chunks, kept on ``device`` (eval mode)."""
    model.eval()
    parts = [model.encode(rows(batch, s, s + chunk).to(device)) for s in range(0, batch.size, chunk)]
    return parts[0] if len(parts) == 1 else cat_batches(parts)


def encode_split(model: FusionModel, split: SplitTensors, device: str = "cpu",
                 chunk: int = ENCODE_CHUNK) -> Batch:
    return encode_batch(model, split.all(), device, chunk)


def _row_floats(encoded: Batch) -> int:
    return max(1, sum(t[0].numel() for t in encoded.x.values()))


def fuse_rows(encoded: Batch) -> int:
    """How many rows one fuse call gathers: bounded by input floats and a row cap."""
    return int(min(MAX_FUSE_ROWS, max(64, FUSE_FLOATS // _row_floats(encoded))))


@torch.no_grad()
def fuse_batch(model: FusionModel, encoded: Batch) -> torch.Tensor:
    """``model.fuse`` over all rows of an encoded batch, in chunks; (N, C) float32 on CPU."""
    model.eval()
    step = fuse_rows(encoded)
    return torch.cat([model.fuse(rows(encoded, s, s + step)).pred.float().cpu()
                      for s in range(0, encoded.size, step)])


def _device(batch: Batch) -> torch.device:
    return next(iter(batch.x.values())).device


# -- streaming EMAP ----------------------------------------------------------------------------

def _exact_tuples(n: int, m: int, rows: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """All n^m index tuples, block by block (row-major over modalities)."""
    total = n ** m
    for start in range(0, total, rows):
        rem = torch.arange(start, min(start + rows, total))
        index = []
        for _ in range(m):
            index.append(rem % n)
            rem = rem // n
        yield tuple(reversed(index))


def _partner_tuples(n: int, m: int, partners: int, generator: torch.Generator) -> torch.Tensor:
    """(n * partners, m): for every sample (row-major, its partners consecutive), one tuple
    of partner indices, each position uniform and independent (product measure)."""
    return torch.randint(n, (n * partners, m), generator=generator)


def _default_budget(n: int, m: int, identity: bool, max_evals: int | None) -> int:
    """Most partners per sample the evaluation budget allows (at least one round)."""
    budget = max_evals if max_evals is not None else (IDENTITY_MAX_EVALS if identity else MAX_EVALS)
    return max(GROUPS, budget // (n * (m + 1)))


@torch.no_grad()
def emap(model: FusionModel, split: SplitTensors, *, generator: torch.Generator,
         samples: int | None = None, partners: int | str | None = None, device: str = "cpu",
         max_exact: int = EXACT_MAX_EVALS, encoded: Batch | None = None,
         converged: Callable[[EmapResult], bool] | None = None, max_evals: int | None = None) -> EmapResult:
    """EMAP of ``model`` on ``split`` (or on a seeded random subset of ``samples`` rows).

    Exact when (rows)^M <= ``max_exact`` and ``partners`` is not given.  Otherwise Monte
    Carlo with common random numbers: ``partners`` (an int, rounded up to a multiple of
    ``GROUPS``) fixes the number of partners per sample; ``None``/``"auto"`` starts with
    ``GROUPS`` partners and doubles them while ``converged(result)`` is False and the
    evaluation budget allows (``max_evals``; default ``MAX_EVALS``, or ``IDENTITY_MAX_EVALS``
    for models whose ``encode`` is the identity).  ``encoded`` may pass the split's clean
    encodings when the caller already has them.
    """
    model.eval()
    n_all = split.size
    if samples is not None and samples < n_all:
        index = torch.randperm(n_all, generator=generator)[:samples].sort().values
    else:
        index = torch.arange(n_all)
    if encoded is None:
        encoded = encode_split(model, split, device)
    encoded = encoded.select(index.to(_device(encoded)))
    mods = list(encoded.x)
    n, m = index.numel(), len(mods)
    identity = type(model).encode is FusionModel.encode
    original = fuse_batch(model, encoded)
    step, dev = fuse_rows(encoded), _device(encoded)

    def fuse(tuple_index: Sequence[torch.Tensor]) -> torch.Tensor:
        picked = encoded.select({mod: t.to(dev) for mod, t in zip(mods, tuple_index, strict=True)})
        return model.fuse(picked).pred.detach().to("cpu", torch.float64)

    auto = partners in (None, "auto")
    if auto and n ** m <= (max_exact // IDENTITY_EXACT_DIVISOR if identity else max_exact):
        sums = torch.zeros(m, n, original.shape[1], dtype=torch.float64)
        total = torch.zeros(original.shape[1], dtype=torch.float64)
        for tuple_index in _exact_tuples(n, m, step):
            out = fuse(tuple_index)
            total += out.sum(dim=0)
            for k in range(m):
                sums[k].index_add_(0, tuple_index[k], out)
        projection = (sums / n ** (m - 1)).sum(dim=0) - (m - 1) * total / n ** m
        return EmapResult(projection, original, index, 0, n ** m)

    limit = _default_budget(n, m, identity, max_evals)
    wanted = GROUPS if auto else int(math.ceil(int(partners) / GROUPS) * GROUPS)
    bootstrap_seed = int(torch.randint(2**62, (1,), generator=generator))
    group_sums = torch.zeros(GROUPS, n, original.shape[1], dtype=torch.float64)
    own_all = torch.arange(n)
    drawn, evaluations = 0, 0
    while True:
        new = wanted - drawn
        tuples = _partner_tuples(n, m, new, generator)
        own = own_all.repeat_interleave(new)
        group = torch.arange(new).repeat(n) // (new // GROUPS)  # a round's partners split evenly
        for start in range(0, tuples.shape[0], step):
            stop = min(start + step, tuples.shape[0])
            block, who = tuples[start:stop], own[start:stop]
            estimate = -(m - 1) * fuse(block.unbind(1))
            for k in range(m):
                swapped = block.clone()
                swapped[:, k] = who
                estimate += fuse(swapped.unbind(1))
            evaluations += (m + 1) * (stop - start)
            group_sums.view(GROUPS * n, -1).index_add_(0, group[start:stop] * n + who, estimate)
        drawn = wanted
        result = EmapResult(group_sums.sum(dim=0) / drawn, original, index, drawn, evaluations,
                            group_sums.clone(), bootstrap_seed)
        if not auto or converged is None or 2 * drawn > limit or converged(result):
            return result
        wanted = 2 * drawn
