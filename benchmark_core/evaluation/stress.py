"""The stress grid: every registered corruption x condition, evaluated without retraining.

Seeding: each condition gets its own generator derived from the run's ``stress`` stream and
the condition's name, never from the model, so every method of a seed sees bit-identical
corrupted inputs and adding a stress test does not shift any other one.

Cost: the clean test split is encoded once; a condition re-encodes only the modalities it
changed (plugins return untouched modalities as the same tensors) and reuses the clean
encodings of the rest, then runs ``fuse`` on large batches.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from benchmark_core.engine.data import Batch, DatasetTensors
from benchmark_core.engine.models import FusionModel
from benchmark_core.evaluation.emap import ENCODE_CHUNK, cat_batches, encode_batch, eval_mode, fuse_batch, rows
from benchmark_core.evaluation.robustness import (
    HEADLINE,
    Condition,
    SubsetDesign,
    area_under_curve,
    curve,
    design_mean,
    worst_drop,
)
from benchmark_core.record import key_target, parse_stress_key, stress_key
from benchmark_core.scoring import score
from benchmark_core.specs import MetricSpec, StressSpec


def condition_generator(stress_seed: int, condition: Condition, device: str = "cpu") -> torch.Generator:
    """A generator that depends only on the run's stress seed, the test and the target.

    The levels of one target share their draws (common random numbers): level 0.2 adds the
    same noise as level 0.1, twice as large, and time-step drops are nested, so a curve
    measures severity rather than resampling noise.
    """
    name = f"{condition.test}|{condition.target}".encode()
    seed = np.random.SeedSequence([stress_seed, zlib.crc32(name)]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(seed % 2**63))


def corrupt(spec: StressSpec, batch: Batch, condition: Condition, stress_seed: int,
            stats: Mapping[str, torch.Tensor]) -> Batch:
    """The corrupted inputs of one condition (the whole split at once, so the draws do not
    depend on any batch size)."""
    generator = condition_generator(stress_seed, condition)
    return spec.apply(batch, condition.target, condition.level, generator, stats)


def conditions_of(spec: StressSpec, task, seed: int) -> list[tuple[str, float]]:
    """``spec.conditions(task, seed=...)`` for a test whose conditions are a seeded design (its
    ``conditions`` takes a ``seed`` parameter, like the built-in ``missing`` above eight
    modalities), else ``spec.conditions(task)``.  ``seed`` is the run's stress seed, so the
    design is the same for every method of a seed."""
    try:
        params = inspect.signature(spec.conditions).parameters.values()
    except (TypeError, ValueError):
        params = ()
    if any(p.name == "seed" or p.kind is p.VAR_KEYWORD for p in params):
        return list(spec.conditions(task, seed=seed))
    return list(spec.conditions(task))


def grid(specs: Iterable[StressSpec], task, seed: int = 0) -> list[tuple[StressSpec, Condition]]:
    return [(spec, Condition(spec.name, target, float(level)))
            for spec in specs for target, level in conditions_of(spec, task, seed)]


# -- evaluation with encoder reuse -------------------------------------------------------------

def _changed(clean: Batch, corrupted: Batch) -> list[str]:
    return [m for m in clean.x
            if corrupted.x[m] is not clean.x[m] or corrupted.mask[m] is not clean.mask[m]
            or corrupted.present[m] is not clean.present[m]]


def _encodes_identity(model: FusionModel) -> bool:
    return type(model).encode is FusionModel.encode


def _encode_some(model: FusionModel, batch: Batch, changed: Sequence[str], device: str) -> Batch:
    """Encode only ``changed`` modalities: the others get a one-row stand-in whose encoding
    is discarded (valid because ``encode`` treats modalities independently)."""
    eval_mode(model)
    parts = []
    for start in range(0, batch.size, ENCODE_CHUNK):
        chunk, stub = rows(batch, start, start + ENCODE_CHUNK), rows(batch, start, start + 1)
        mixed = _combine({m: chunk if m in changed else stub for m in batch.x})
        with torch.no_grad():
            encoded = model.encode(mixed.to(device))
        parts.append(_combine({m: encoded for m in changed}))
    return parts[0] if len(parts) == 1 else cat_batches(parts)


def _combine(sources: Mapping[str, Batch]) -> Batch:
    """A batch taking each modality (inputs, mask, presence) from its own source batch."""
    return Batch(x={m: b.x[m] for m, b in sources.items()}, mask={m: b.mask[m] for m, b in sources.items()},
                 present={m: b.present[m] for m, b in sources.items()})


def partial_encoding_ok(model: FusionModel, batch: Batch, device: str = "cpu", n: int = 8) -> bool:
    """Check once per model that encoding a single modality alongside one-row stand-ins gives
    the same encoding as a full ``encode`` (it fails only for an ``encode`` that, against the
    contract, mixes modalities or relies on one batch size)."""
    if len(batch.x) < 2:
        return False
    sample = rows(batch, 0, n)
    try:
        full = encode_batch(model, sample, device)
        for m in sample.x:
            some = _encode_some(model, sample, [m], device)
            if not torch.allclose(some.x[m], full.x[m], rtol=1e-4, atol=1e-5):
                return False
    except Exception:
        return False
    return True


class GridEvaluator:
    """Evaluates corrupted copies of one split, reusing the clean encodings it can, and the
    encodings of single-modality corruptions that subset conditions are made of."""

    def __init__(self, model: FusionModel, clean: Batch, device: str = "cpu",
                 clean_encoded: Batch | None = None):
        self.model, self.clean, self.device = model, clean, device
        self.identity = _encodes_identity(model)
        self.encoded = clean_encoded if clean_encoded is not None else encode_batch(model, clean, device)
        self.reuse = not self.identity and partial_encoding_ok(model, clean, device)
        self._pieces: dict[tuple[str, str, float], Batch] = {}

    def encode(self, corrupted: Batch) -> Batch:
        if self.identity:
            return corrupted.to(self.device)
        changed = _changed(self.clean, corrupted)
        if not changed:
            return self.encoded
        if not self.reuse or len(changed) == len(corrupted.x):
            return encode_batch(self.model, corrupted, self.device)
        some = _encode_some(self.model, corrupted, changed, self.device)
        return _combine({m: some if m in changed else self.encoded for m in self.encoded.x})

    def predict(self, corrupted: Batch) -> torch.Tensor:
        """Raw outputs (N, C) on CPU for a corrupted copy of the split."""
        return fuse_batch(self.model, self.encode(corrupted))

    def predict_union(self, condition: Condition, modalities: Sequence[str],
                      corrupt_one: Callable[[str], Batch]) -> torch.Tensor:
        """Outputs when each of ``modalities`` is corrupted on its own (``corrupt_one(m)``)
        and the results are combined.  With encoder reuse, each modality's encoding is
        computed once per (test, modality, level) and shared by every subset containing it."""
        if not self.reuse:
            pieces = {m: corrupt_one(m) for m in modalities}
            return self.predict(_combine({m: pieces.get(m, self.clean) for m in self.clean.x}))
        for m in modalities:
            key = (condition.test, m, condition.level)
            if key not in self._pieces:
                self._pieces[key] = _encode_some(self.model, corrupt_one(m), [m], self.device)
        pieces = {m: self._pieces[(condition.test, m, condition.level)] for m in modalities}
        return fuse_batch(self.model, _combine({m: pieces.get(m, self.encoded) for m in self.encoded.x}))


def single_targets(conditions: Iterable[Condition], modalities: Iterable[str]) -> dict[float, list[str]]:
    """level -> the single-modality targets among one test's conditions, in their order: what
    :func:`union_of` assembles a modality-wise test's ``all`` condition from."""
    names = set(modalities)
    singles: dict[float, list[str]] = {}
    for c in conditions:
        if c.target in names:
            singles.setdefault(c.level, []).append(c.target)
    return singles


def union_of(spec: StressSpec, condition: Condition, singles: Mapping[float, list[str]]) -> list[str] | None:
    """The single modalities a modality-wise condition is the union of (None: evaluate the
    condition as a whole).  ``all`` means every single modality the test lists at that level."""
    if not spec.modality_wise:
        return None
    if condition.target == "all":
        return singles.get(condition.level) or None
    return condition.target.split("+")


def run_grid(model: FusionModel, data: DatasetTensors, specs: Iterable[StressSpec], stress_seed: int,
             metrics: Mapping[str, MetricSpec], device: str = "cpu",
             clean_encoded: Batch | None = None) -> dict[str, float]:
    """``stress/<test>/<target>/<level>/<metric>`` for every condition of every spec."""
    clean = data.test.all()
    stats = data.feature_std()
    evaluator = GridEvaluator(model, clean, device, clean_encoded)
    results: dict[str, float] = {}
    cells = grid(specs, data.task, stress_seed)
    singles = {name: single_targets((c for s, c in cells if s.name == name), clean.x)
               for name in dict.fromkeys(s.name for s, _ in cells)}
    for spec, condition in cells:
        modalities = union_of(spec, condition, singles.get(spec.name, {}))
        if modalities is None:
            pred = evaluator.predict(corrupt(spec, clean, condition, stress_seed, stats))
        else:  # each modality corrupted alone, with its own generator (used right here)
            pred = evaluator.predict_union(condition, modalities, lambda m, spec=spec, c=condition: corrupt(
                spec, clean, Condition(c.test, m, c.level), stress_seed, stats))
        for name, value in score(pred, data.test.y, metrics).items():
            results[stress_key(condition.test, condition.target, condition.level, name)] = value
    return results


# -- per-run summaries -------------------------------------------------------------------------

def summarise(results: Mapping[str, float], clean: Mapping[str, float],
              metrics: Mapping[str, MetricSpec], specs: Iterable[StressSpec],
              design: SubsetDesign | None = None, names: Sequence[str] = ()) -> dict[str, float]:
    """``robustness/*`` keys from a run's stress results.

    * ``robustness/<test>/<target>/relative/<metric>``: area under each severity curve
      (clean score at level 0), divided by the level range;
    * ``robustness/relative/<metric>``: the same for the headline curve (noise on all);
    * ``robustness/missing/mean/<metric>`` and ``robustness/missing/worst_drop/<metric>``:
      mean score over every missing-modality subset and the largest drop from clean.  When
      the results hold exactly the subsets of a sampled ``design`` (over modalities
      ``names``), the mean is its design-weighted estimate of the mean over all 2^M - 2
      subsets, with ``robustness/missing/mean_se/<metric>``, its sampling standard error;
      the worst drop is then over the evaluated subsets;
    * with a ``design``: ``robustness/missing/n_subsets`` (evaluated), ``n_sampled`` (of which
      drawn at random; 0 = the full grid) and ``n_total`` (2^M - 2).
    """
    curve_tests = {spec.name for spec in specs if spec.curve}
    targets: dict[str, set[str]] = {}
    for key in results:
        parsed = parse_stress_key(key)
        if parsed:
            targets.setdefault(parsed[0], set()).add(parsed[1])
    designed = None
    if design is not None and not design.full and targets.get("missing") == {
            key_target(t) for t in design.targets(names)}:
        designed = design.targets(names)
    out: dict[str, float] = {}
    for name, spec in metrics.items():
        for test in sorted(curve_tests & set(targets)):
            for target in sorted(targets[test]):
                levels, scores = curve(results, test, target, name, clean[name])
                out[f"robustness/{test}/{target}/relative/{name}"] = area_under_curve(levels, scores)
        headline = f"robustness/{HEADLINE[0]}/{HEADLINE[1]}/relative/{name}"
        if headline in out:
            out[f"robustness/relative/{name}"] = out[headline]
        missing = [v for k, v in results.items()
                   if (p := parse_stress_key(k)) and p[0] == "missing" and p[3] == name]
        if missing:
            if designed is not None:
                ordered = [results[stress_key("missing", t, 1.0, name)] for t in designed]
                mean, se = design_mean(design, ordered)
                out[f"robustness/missing/mean_se/{name}"] = se
            else:
                mean = float(np.mean(missing))
            out[f"robustness/missing/mean/{name}"] = mean
            out[f"robustness/missing/worst_drop/{name}"] = worst_drop(clean[name], missing,
                                                                      spec.higher_is_better)
    if design is not None and "missing" in targets:  # the design, in the run record
        out.update({"robustness/missing/n_subsets": float(len(targets["missing"])),
                    "robustness/missing/n_sampled": float(design.sampled if designed is not None else 0),
                    "robustness/missing/n_total": float(design.total)})
    return out
