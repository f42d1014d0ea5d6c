"""How long a planned suite will take, before it starts.

A run's wall time is modelled per method as a fixed overhead plus terms proportional to the
work the run does: training, ``n_train x epochs x modalities x steps`` (steps: mean sequence length,
1 for vectors), crossmodal pairs (training x (M - 1), for methods whose cost grows with the
directed modality pairs), and evaluation, ``n_test x subsets x steps`` (the missing-modality grid grows
with the number of modality subsets it scores: 2^M - 2 up to M = 8, then about 3 M^2, see
:func:`~benchmark_core.evaluation.robustness.design_size`).  The coefficients of every method are
fitted (non-negative least squares) on measured runs by ``benchmarks/cost_model.py`` and
shipped as ``cost_model.json``; ``benchmarks/run_all.py`` refreshes them.  Planned runs of a
method the model does not know get the median coefficients.  The estimate is only as good as
the similarity between this machine and the measuring one; the progress bar weights each
finished run by its predicted cost, so the ETA does not swing when one slow run lands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from benchmark_core.evaluation.robustness import design_size

MODEL_FILE = "cost_model.json"


@dataclass(frozen=True)
class Shape:
    """What a run's cost depends on, read from the loaded dataset."""

    n_train: int
    n_test: int
    modalities: int
    steps: float  # mean steps per modality; 1 for vectors

    def train_units(self, epochs: int) -> float:
        return self.n_train * epochs * self.modalities * self.steps

    def pair_units(self, epochs: int) -> float:
        return self.train_units(epochs) * (self.modalities - 1)

    def eval_units(self) -> float:
        # the subsets the stress grid's ``missing`` test scores, polynomial in M above the full
        # grid, as the cost is; at least 1 (one modality: the clean evaluation alone)
        return self.n_test * max(design_size(self.modalities), 1) * self.steps


def shape_of(tensors) -> Shape:
    """The shape of a loaded :class:`benchmark_core.engine.data.DatasetTensors`."""
    steps = []
    for modality in tensors.task.modalities:
        x = tensors.train.x[modality.name]
        steps.append(float(x.shape[1]) if modality.kind == "sequence" else 1.0)
    return Shape(len(tensors.train.y), len(tensors.test.y), len(steps), sum(steps) / len(steps))


@dataclass(frozen=True)
class MethodCost:
    """Seconds per training unit, per pair unit and per evaluation unit, plus a fixed overhead."""

    train: float
    evaluate: float
    overhead: float = 0.0
    pairs: float = 0.0

    def predict(self, shape: Shape, epochs: int, evaluate: bool = True) -> float:
        """``evaluate=False``: a run without the stress grid and EMAP."""
        return (self.overhead + self.train * shape.train_units(epochs) + self.pairs * shape.pair_units(epochs)
                + (self.evaluate * shape.eval_units() if evaluate else 0.0))


@dataclass
class CostModel:
    methods: dict[str, MethodCost]
    measured_on: str = ""  # machine and source of the measurements
    fitted_runs: int = 0

    def cost(self, method: str) -> MethodCost:
        if method in self.methods:
            return self.methods[method]
        if not self.methods:
            return MethodCost(1e-5, 1e-6, 1.0)
        values = sorted(self.methods.values(), key=lambda c: c.train)
        middle = values[len(values) // 2]
        return middle

    def predict(self, method: str, shape: Shape, epochs: int, evaluate: bool = True) -> float:
        return self.cost(method).predict(shape, epochs, evaluate)

    def to_json(self) -> str:
        doc = {"measured_on": self.measured_on, "fitted_runs": self.fitted_runs,
               "methods": {m: asdict(c) for m, c in sorted(self.methods.items())}}
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CostModel:
        doc = json.loads(text)
        return cls({m: MethodCost(**c) for m, c in doc["methods"].items()},
                   doc.get("measured_on", ""), int(doc.get("fitted_runs", 0)))

    @classmethod
    def shipped(cls) -> CostModel:
        path = resources.files("benchmark_core.suite") / MODEL_FILE
        try:
            return cls.from_json(path.read_text())
        except (FileNotFoundError, KeyError, ValueError):
            return cls({})


@dataclass(frozen=True)
class Observation:
    """One measured run: its method, shape, budget epochs and wall seconds."""

    method: str
    shape: Shape
    epochs: int
    seconds: float


def fit(observations: Iterable[Observation], measured_on: str = "") -> CostModel:
    """Per method, non-negative least squares of wall seconds on (1, train units, pair units,
    eval units), unweighted: the long runs, which make up a suite's time, are fitted best."""
    import numpy as np
    from scipy.optimize import nnls

    by_method: dict[str, list[Observation]] = {}
    for obs in observations:
        if obs.seconds > 0 and math.isfinite(obs.seconds):
            by_method.setdefault(obs.method, []).append(obs)
    methods, count = {}, 0
    for method, rows in sorted(by_method.items()):
        design = np.array([[1.0, o.shape.train_units(o.epochs), o.shape.pair_units(o.epochs), o.shape.eval_units()]
                           for o in rows])
        target = np.array([o.seconds for o in rows])
        scale = design.max(axis=0)
        scale[scale == 0] = 1.0
        coef, _ = nnls(design / scale, target)
        coef = coef / scale
        methods[method] = MethodCost(train=float(coef[1]), evaluate=float(coef[3]), overhead=float(coef[0]),
                                     pairs=float(coef[2]))
        count += len(rows)
    return CostModel(methods, measured_on, count)


@dataclass
class Estimate:
    """Predicted seconds per planned run and the suite's wall time on ``workers`` workers."""

    per_run: list[float] = field(default_factory=list)
    workers: int = 1

    @property
    def total(self) -> float:
        return float(sum(self.per_run))

    @property
    def wall(self) -> float:
        """Longest-first greedy schedule on ``workers`` slots (what a pool roughly does)."""
        slots = [0.0] * max(1, self.workers)
        for cost in sorted(self.per_run, reverse=True):
            slots[slots.index(min(slots))] += cost
        return max(slots) if self.per_run else 0.0


def estimate(specs: Sequence, shapes: Mapping[str, Shape], model: CostModel, workers: int = 1) -> Estimate:
    """Predicted cost of each planned ``RunSpec`` (``shapes`` by dataset name)."""
    return Estimate([model.predict(s.method, shapes[s.dataset], s.budget.epochs, evaluates(s)) for s in specs],
                    workers)


def evaluates(spec) -> bool:
    """Whether a planned run evaluates beyond the test split (stress grid or EMAP)."""
    return spec.evaluation.enabled("stress") or spec.evaluation.enabled("emap")


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def model_path() -> Path:
    return Path(str(resources.files("benchmark_core.suite") / MODEL_FILE))
