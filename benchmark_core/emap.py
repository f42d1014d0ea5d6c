"""EMAP: the empirical multimodally-additive projection of a trained model (Hessel & Lee 2020).

For an evaluation set of N samples and M modalities, F[i_1..i_M] = f(x_1^{i_1}, ..., x_M^{i_M})
(raw outputs: logits or regression values, per output dimension).  The projection is

    f_hat(x^i) = sum_m  mean(F | i_m = i)  -  (M - 1) * mean(F)

(the first-order functional-ANOVA term under the product of the empirical marginals;
methods-math.md §3.2).  If metric(f_hat) ~ metric(f), the model's gains cannot come from
cross-modal interactions.

Cost control: each modality is encoded once (``model.encode``) and only ``model.fuse`` runs
on index-broadcast combinations; row/column sums are streamed, so the N^M grid is never
materialised.  When N^M exceeds ``max_exact`` the marginals are estimated by Monte Carlo:
for every sample i and modality m, ``partners`` index tuples for the *other* modalities
are drawn independently per modality (product measure), which is unbiased for each
marginal and costs N * M * partners evaluations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .data import Batch, SplitTensors
from .models import FusionModel
from .training import EVAL_BATCH_SIZE

# Exact EMAP while the grid has at most this many cells (M=2: N <= 512, M=3: N <= 64); a
# model whose ``encode`` is the identity pays a full forward pass per cell, so its exact
# limit is 16 times smaller (M=2: N <= 128).
EXACT_MAX_EVALS = 2**18
IDENTITY_EXACT_DIVISOR = 16
# Monte-Carlo partners per (sample, modality) beyond that: fewer when ``encode`` is the
# identity, since each evaluation is then a full forward pass (sequence-level methods).
DEFAULT_PARTNERS = 16
IDENTITY_PARTNERS = 8
# Rows per encode call, and the input size (floats) one fuse call may gather.  Moderate
# chunks are faster than one huge batch on CPU (they stay in cache) and bound memory.
ENCODE_CHUNK = EVAL_BATCH_SIZE
FUSE_FLOATS = 2**21
MAX_FUSE_ROWS = 2048


@dataclass(frozen=True)
class EmapResult:
    """The projection ``f_hat`` and the model's own outputs ``f`` on the evaluation rows."""

    projection: torch.Tensor  # (S, C) float64
    original: torch.Tensor    # (S, C) float32
    index: torch.Tensor       # (S,) rows of the split that formed the evaluation set
    partners: int             # 0: exact; else Monte-Carlo partners per (sample, modality)
    evaluations: int          # fuse evaluations spent


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


def _sampled_tuples(n: int, m: int, partners: int, rows: int,
                    generator: torch.Generator) -> Iterator[tuple[int, tuple[torch.Tensor, ...]]]:
    """For each modality k: every sample i repeated ``partners`` times at position k, the
    other positions drawn uniformly and independently.  Yields (k, tuple) blocks."""
    own = torch.arange(n).repeat_interleave(partners)
    for k in range(m):
        others = [own if j == k else torch.randint(n, own.shape, generator=generator) for j in range(m)]
        for start in range(0, own.numel(), rows):
            yield k, tuple(t[start:start + rows] for t in others)


@torch.no_grad()
def emap(model: FusionModel, split: SplitTensors, *, generator: torch.Generator,
         samples: int | None = None, partners: int | None = None, device: str = "cpu",
         max_exact: int = EXACT_MAX_EVALS, encoded: Batch | None = None) -> EmapResult:
    """EMAP of ``model`` on ``split`` (or on a seeded random subset of ``samples`` rows).

    Exact when (rows)^M <= ``max_exact`` and ``partners`` is not given, else Monte Carlo with
    ``partners`` draws per (sample, modality): by default ``DEFAULT_PARTNERS``, or
    ``IDENTITY_PARTNERS`` for models whose ``encode`` is the identity.  ``encoded`` may
    pass the split's clean encodings when the caller already has them.
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
    if partners is None and n ** m <= (max_exact // IDENTITY_EXACT_DIVISOR if identity else max_exact):
        partners = 0
    elif partners is None:
        partners = IDENTITY_PARTNERS if identity else DEFAULT_PARTNERS
    original = fuse_batch(model, encoded)
    n_out = original.shape[1]
    sums = torch.zeros(m, n, n_out, dtype=torch.float64)
    total = torch.zeros(n_out, dtype=torch.float64)
    step, dev = fuse_rows(encoded), _device(encoded)
    evaluations = 0

    def evaluate(tuple_index: tuple[torch.Tensor, ...]) -> torch.Tensor:
        nonlocal evaluations, total
        picked = encoded.select({mod: t.to(dev) for mod, t in zip(mods, tuple_index, strict=True)})
        out = model.fuse(picked).pred.detach().to("cpu", torch.float64)
        evaluations += out.shape[0]
        total += out.sum(dim=0)
        return out

    if partners == 0:
        for tuple_index in _exact_tuples(n, m, step):
            out = evaluate(tuple_index)
            for k in range(m):
                sums[k].index_add_(0, tuple_index[k], out)
        marginals = sums / n ** (m - 1)
    else:
        for k, tuple_index in _sampled_tuples(n, m, partners, step, generator):
            sums[k].index_add_(0, tuple_index[k], evaluate(tuple_index))
        marginals = sums / partners
    mu = total / evaluations
    projection = marginals.sum(dim=0) - (m - 1) * mu
    return EmapResult(projection, original, index, partners, evaluations)
