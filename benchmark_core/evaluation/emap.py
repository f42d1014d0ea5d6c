"""EMAP: the empirical multimodally-additive projection of a trained model (Hessel & Lee 2020).

For an evaluation set of N samples and M modalities, F[i_1..i_M] = f(x_1^{i_1}, ..., x_M^{i_M})
(raw outputs: logits or regression values, per output dimension).  The projection is

    f_hat(x^i) = sum_m  mean(F | i_m = i)  -  (M - 1) * mean(F)

(the first-order functional-ANOVA term under the product of the empirical marginals;
docs/stress.md, "EMAP", with the reference code it was checked against).  If metric(f_hat)
~ metric(f), the model's gains cannot come from cross-modal interactions.

Cost control: each modality is encoded once (``model.encode``) and only ``model.fuse`` runs
on index-broadcast combinations; row/column sums are streamed, so the N^M grid is never
materialised.  The projection is computed exactly (N^M evaluations) or estimated by Monte
Carlo with *common random numbers*: for each sample i, P partner index tuples J^p are drawn
once (each position uniform over the N samples, the product measure) and shared by every term,

    f_hat(i) = sum_m mean_p f(J^p with position m set to i)  -  (M - 1) * mean_p f(J^p).

Each term is unbiased for its counterpart in the formula above, and because all terms see
the same partners, the contributions of the *other* modalities cancel exactly for every
additive model (f = sum_m g_m(x_m)): the estimate equals f at any P.  It costs
N * (M + 1) * P evaluations.  The partners are split into ``GROUPS`` equal groups; a
bootstrap over the groups gives the Monte-Carlo standard error of any metric of the
projection, and the metric of the whole estimate against the mean metric of its two halves
shows whether it still drifts with P (a metric of a noisy projection is biased: noise flips
more correct predictions than wrong ones).  Which of the two runs is chosen by cost for a
precision target (:func:`next_step`), not by a size threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from benchmark_core.engine.data import Batch, SplitTensors
from benchmark_core.engine.models import FusionModel
from benchmark_core.engine.training import EVAL_BATCH_SIZE

# Monte Carlo: partners per sample come in ``GROUPS`` equal groups (the units the bootstrap
# resamples); the first round draws ``GROUPS`` partners and each further round doubles them,
# while the estimate is short of its precision target and the evaluation budget allows.  The
# budget is smaller when ``encode`` is the identity, since each evaluation is then a full
# forward pass (sequence-level methods).  Exact or Monte Carlo is chosen by cost (next_step).
GROUPS = 16
MAX_EVALS = 2**20
IDENTITY_MAX_EVALS = 2**17
BOOTSTRAP_RESAMPLES = 100
# The standard error and drift of the primary metric automatic Monte Carlo aims at.
TARGET_SE = 0.01
# Automatic Monte Carlo draws further partners only for samples whose prediction is not yet
# settled: its margin is below this many standard errors (EmapResult.unsettled).
SETTLED_Z = 3.0
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
    divided by the sample's partners, ``sample_partners``); :meth:`precision` turns them into
    a standard error and a drift for any statistic of the projection.
    """

    projection: torch.Tensor  # (S, C) float64
    original: torch.Tensor    # (S, C) float32
    index: torch.Tensor       # (S,) rows of the split that formed the evaluation set
    partners: int             # 0: exact; else the most Monte-Carlo partners any sample got
    evaluations: int          # fuse evaluations spent (a Monte-Carlo pilot included)
    group_sums: torch.Tensor | None = None  # (GROUPS, S, C) float64, Monte Carlo only
    bootstrap_seed: int = 0   # drawn from the run's EMAP stream: resamples are reproducible
    sample_partners: torch.Tensor | None = None  # (S,) partners of each sample; None: all ``partners``

    @property
    def exact(self) -> bool:
        return self.partners == 0

    def _per_sample(self) -> torch.Tensor:
        """(S, 1) float64: each sample's partners, to divide its sums by."""
        if self.sample_partners is None:
            return torch.full((self.projection.shape[0], 1), float(self.partners), dtype=torch.float64)
        return self.sample_partners.to(torch.float64).unsqueeze(1)

    def group_means(self) -> torch.Tensor:
        """(GROUPS, S, C): each group's own estimate of the projection (independent draws)."""
        assert self.group_sums is not None, "an exact result has no partner groups"
        return self.group_sums * (self.group_sums.shape[0] / self._per_sample())

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
        groups, per_sample = self.group_sums.shape[0], self._per_sample()
        whole = statistic(self.projection)
        draw = torch.Generator().manual_seed(self.bootstrap_seed)
        picks = torch.randint(groups, (resamples, groups), generator=draw)
        values = np.array([statistic(self.group_sums[pick].sum(dim=0) / per_sample) for pick in picks])
        halves = [statistic(self.group_sums[part].sum(dim=0) / (per_sample / 2))
                  for part in (slice(0, groups // 2), slice(groups // 2, groups))]
        if not (np.isfinite(values).all() and np.isfinite(whole) and np.isfinite(halves).all()):
            return float("nan"), float("nan")
        return float(values.std(ddof=1)), float(abs(whole - (halves[0] + halves[1]) / 2))

    def unsettled(self, kind: str, z: float | None = None) -> torch.Tensor:
        """(S,) bool: samples whose prediction more partners could still change.

        A multiclass prediction is its argmax: settled when the top logit exceeds every other
        by more than ``z`` standard errors (estimated from the partner groups); a multilabel
        one is the sign of each logit: settled when every |logit| exceeds ``z`` standard errors.
        Regression values are never settled (every error counts in MAE-type metrics)."""
        z = SETTLED_Z if z is None else z
        n = self.projection.shape[0]
        if self.group_sums is None:
            return torch.zeros(n, dtype=torch.bool)
        if kind not in ("multiclass", "multilabel"):
            return torch.ones(n, dtype=torch.bool)
        means, whole = self.group_means(), self.projection
        if kind == "multiclass":
            top = whole.argmax(dim=1, keepdim=True)
            means = means.gather(2, top.unsqueeze(0).expand(means.shape[0], -1, -1)) - means
            whole = whole.gather(1, top) - whole
        se = means.std(dim=0) / math.sqrt(means.shape[0])
        margin = torch.where(se > 0, whole.abs() / se, math.inf)  # no noise: nothing to settle
        if kind == "multiclass":
            margin.scatter_(1, top, math.inf)  # the top class against itself
        return ~(margin.min(dim=1).values >= z) if margin.shape[1] else torch.zeros(n, dtype=torch.bool)


# -- the projection on an explicit grid (reference implementation, used by tests) --------------

def project_grid(grid: torch.Tensor, n_modalities: int) -> torch.Tensor:
    """EMAP diagonal of a full grid F of shape (N,)*M + (C,) (or (N,)*M): returns (N, C)/(N,)."""
    m = n_modalities
    axes = tuple(range(m))
    mu = grid.mean(dim=axes)
    marginals = sum(grid.mean(dim=tuple(a for a in axes if a != k)) for k in axes)
    return marginals - (m - 1) * mu


# -- encoding helpers --------------------------------------------------------------------------

def eval_mode(model: FusionModel) -> None:
    """Put ``model`` in eval mode unless it already is: ``Module.eval()`` walks every submodule
    (about a millisecond for a small model), which adds up over hundreds of stress conditions."""
    if model.training:
        model.eval()


def cat_batches(batches: list[Batch]) -> Batch:
    """Concatenate batches row-wise (targets dropped)."""
    first = batches[0]
    cat = lambda key, m: None if getattr(first, key)[m] is None else torch.cat(
        [getattr(b, key)[m] for b in batches])
    return Batch(x={m: cat("x", m) for m in first.x}, mask={m: cat("mask", m) for m in first.mask},
                 present={m: cat("present", m) for m in first.present})


def rows(batch: Batch, start: int, stop: int) -> Batch:
    """Rows ``start:stop`` of every tensor as views (no copy, unlike ``Batch.select``)."""
    view = lambda t: None if t is None else t[start:stop]
    return Batch(x={m: view(t) for m, t in batch.x.items()},
                 mask={m: view(t) for m, t in batch.mask.items()},
                 present={m: view(t) for m, t in batch.present.items()})


@torch.no_grad()
def encode_batch(model: FusionModel, batch: Batch, device: str = "cpu",
                 chunk: int = ENCODE_CHUNK) -> Batch:
    """``model.encode`` over a whole batch in chunks, kept on ``device`` (eval mode)."""
    eval_mode(model)
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
    eval_mode(model)
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


# -- choosing exact or Monte Carlo by cost -------------------------------------------------------

@dataclass(frozen=True)
class EmapCost:
    """Fuse evaluations each way of computing EMAP of N samples and M modalities costs.  Both
    evaluate ``fuse`` on recombined encodings in the same blocks, so the time of one evaluation
    cancels from the comparison and counting evaluations is enough."""

    samples: int
    modalities: int

    @property
    def exact(self) -> int:
        return self.samples ** self.modalities

    def monte_carlo(self, partners: int) -> int:
        return self.samples * (self.modalities + 1) * partners


def partners_needed(se: float, drift: float, target: float) -> float | None:
    """The factor by which the partners of a Monte-Carlo estimate with standard error ``se``
    and drift ``drift`` must grow for both to reach ``target``: the standard error falls as
    1/sqrt(K), the drift (the visible part of a bias) as 1/K.  1 when reached; ``None`` when
    either is undefined (NaN), since more partners cannot help then."""
    if not (math.isfinite(se) and math.isfinite(drift)):
        return None
    if se <= target and drift <= target:
        return 1.0
    if target <= 0:
        return math.inf
    return max((se / target) ** 2, drift / target, 1.0)


def first_step(cost: EmapCost) -> str:
    """``exact`` when the N^M grid costs no more than the first Monte-Carlo round (``GROUPS``
    partners per sample), else ``more``: start Monte Carlo."""
    return "exact" if cost.exact <= cost.monte_carlo(GROUPS) else "more"


def rounds_cost(next_round: int, factor: float | None) -> float | None:
    """Projected further Monte-Carlo evaluations when the partners must grow by ``factor`` in
    doubling rounds, the first of which costs ``next_round``: r = ceil(log2(factor)) rounds of
    next_round, 2 next_round, ... (an upper bound when settled samples drop out).  0 when the
    target is reached, ``None`` when it is undefined."""
    if factor is None or factor <= 1:
        return None if factor is None else 0.0
    if not math.isfinite(factor):
        return math.inf
    return next_round * (2.0 ** math.ceil(math.log2(factor) - 1e-12) - 1)


def next_step(cost: EmapCost, spent: int, next_round: int, remaining: float | None, budget: int) -> str:
    """After a Monte-Carlo round that spent ``spent`` evaluations in all: ``stop``, ``exact``
    or ``more`` (the next round, ``next_round`` evaluations), chosen by cost.

    ``remaining`` is the projected number of further Monte-Carlo evaluations to the precision
    target (:func:`rounds_cost`; 0: reached; ``None``: undefined, more partners cannot help).
    The exact grid runs, if it fits the evaluation budget left, when it costs no more than that
    projection, or when the next round would take the Monte-Carlo total past the grid's own
    cost without being projected to be the last one (a ski-rental rule: where the projection
    fails, e.g. a projection whose margins are all near zero, as for XOR, EMAP still spends
    at most about three times the exact grid).  Otherwise the next round while the budget
    holds it; else the exact grid if that alone still fits; else stop with the estimate as it is.
    """
    if remaining is None or remaining <= 0:
        return "stop"
    exact_fits = spent + cost.exact <= budget
    past_grid = spent + next_round > cost.exact and remaining > next_round
    if exact_fits and (cost.exact <= remaining or past_grid):
        return "exact"
    if spent + next_round <= budget:
        return "more"
    return "exact" if exact_fits else "stop"


def default_budget(identity: bool, max_evals: int | None = None) -> int:
    """The evaluation budget of automatic EMAP: ``max_evals``, else ``MAX_EVALS``, or
    ``IDENTITY_MAX_EVALS`` for a model whose ``encode`` is the identity (every evaluation is
    then a whole forward pass)."""
    return max_evals if max_evals is not None else (IDENTITY_MAX_EVALS if identity else MAX_EVALS)


Precision = Callable[[EmapResult], tuple[float, float]]


@torch.no_grad()
def emap(model: FusionModel, split: SplitTensors, *, generator: torch.Generator,
         samples: int | None = None, partners: int | str | None = None, device: str = "cpu",
         encoded: Batch | None = None, precision: Precision | None = None, target_se: float = TARGET_SE,
         max_evals: int | None = None) -> EmapResult:
    """EMAP of ``model`` on ``split`` (or on a seeded random subset of ``samples`` rows).

    ``partners``: ``0`` forces the exact grid; an int K > 0 forces Monte Carlo with common
    random numbers and K partners for every sample (rounded up to a multiple of ``GROUPS``);
    ``None``/``"auto"`` chooses by cost (:func:`first_step`, :func:`next_step`): exact when
    the grid is no dearer than the first Monte-Carlo round, else Monte Carlo from ``GROUPS``
    partners per sample.  While ``precision(result)`` (standard error, drift) is above
    ``target_se``, the samples whose prediction is not yet settled (:meth:`EmapResult.unsettled`)
    get their partners doubled, or all samples if none is unsettled; once the exact grid is the
    cheaper way to the target it runs instead; the evaluation budget (:func:`default_budget`)
    bounds both.  Without ``precision`` one round is drawn.  ``encoded`` may pass the split's
    clean encodings when the caller already has them.
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
    cost = EmapCost(n, m)
    budget = default_budget(type(model).encode is FusionModel.encode, max_evals)
    original = fuse_batch(model, encoded)
    step, dev = fuse_rows(encoded), _device(encoded)

    def fuse(tuple_index: Sequence[torch.Tensor]) -> torch.Tensor:
        picked = encoded.select({mod: t.to(dev) for mod, t in zip(mods, tuple_index, strict=True)})
        return model.fuse(picked).pred.detach().to("cpu", torch.float64)

    def exact(spent: int) -> EmapResult:
        sums = torch.zeros(m, n, original.shape[1], dtype=torch.float64)
        total = torch.zeros(original.shape[1], dtype=torch.float64)
        for tuple_index in _exact_tuples(n, m, step):
            out = fuse(tuple_index)
            total += out.sum(dim=0)
            for k in range(m):
                sums[k].index_add_(0, tuple_index[k], out)
        projection = (sums / n ** (m - 1)).sum(dim=0) - (m - 1) * total / n ** m
        return EmapResult(projection, original, index, 0, spent + cost.exact)

    auto = partners in (None, "auto")
    if auto:
        if first_step(cost) == "exact":
            return exact(0)
        counts = torch.full((n,), GROUPS, dtype=torch.long)
    elif int(partners) == 0:
        return exact(0)
    else:
        counts = torch.full((n,), int(math.ceil(int(partners) / GROUPS) * GROUPS), dtype=torch.long)
    kind = model.task.target.kind
    bootstrap_seed = int(torch.randint(2**62, (1,), generator=generator))
    group_sums = torch.zeros(GROUPS, n, original.shape[1], dtype=torch.float64)
    drawn = torch.zeros(n, dtype=torch.long)
    evaluations = 0
    while True:
        # each sample's new partners are consecutive and split evenly over the groups
        tuples = torch.randint(n, (int(counts.sum()), m), generator=generator)
        own = torch.repeat_interleave(torch.arange(n), counts)
        offset = torch.arange(own.numel()) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        group = offset // (counts // GROUPS).clamp(min=1)[own]
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
        drawn += counts
        result = EmapResult(group_sums.sum(dim=0) / drawn.unsqueeze(1), original, index, int(drawn.max()),
                            evaluations, group_sums.clone(), bootstrap_seed, drawn.clone())
        if not auto or precision is None:
            return result
        factor = partners_needed(*precision(result), target_se)
        refine = result.unsettled(kind)
        if not refine.any():
            refine = torch.ones(n, dtype=torch.bool)
        next_round = (m + 1) * int(drawn[refine].sum())
        action = next_step(cost, evaluations, next_round, rounds_cost(next_round, factor), budget)
        if action == "stop":
            return result
        if action == "exact":
            return exact(evaluations)
        counts = torch.where(refine, drawn, 0)  # doubled where not settled
