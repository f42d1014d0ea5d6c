"""Typed, frozen specifications: the vocabulary every plugin and the engine share.

Descriptive specs (methods, datasets, metrics, stress tests, executors) hold callables and
serialise them as ``module:qualname`` strings; run-level specs (``Budget``, ``RunSpec``)
hold only plain data so they can be pickled to workers and hashed stably.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from benchmark_core.errors import FuseBenchError

ModalityKind = Literal["sequence", "vector"]
TargetKind = Literal["regression", "multiclass", "multilabel"]

# Families a method may declare.  Third-party plugins may add their own; this list is what
# the leaderboard uses to order groups (unknown families sort last).
KNOWN_FAMILIES = (
    "unimodal",
    "early",
    "late",
    "additive",
    "multiplicative",
    "bilinear",
    "nonlinear",
    "tensor",
    "low-rank",
    "gated",
    "modality-shift",
    "attention",
    "factorized",
    "infomax",
    "diffusion-attention",
)


class SpecError(FuseBenchError, ValueError):
    """A spec is malformed; the message names the field and the fix.  A usage error (exit 2),
    shown as its one paragraph like every other FuseBenchError."""


def _callable_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qualname}"


def _jsonable(value: Any) -> Any:
    """Convert a spec field to JSON-compatible data (callables become import paths)."""
    if isinstance(value, EvaluationSpec):  # only the options it sets (see EvaluationSpec)
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if callable(value):
        return _callable_name(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class _Spec:
    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name) or "," in name:
        raise SpecError(
            f"{kind} name {name!r} is invalid: names must be non-empty strings without "
            "whitespace or commas (they are used on the command line, e.g. --methods a,b)."
        )


def _check_aliases(kind: str, name: str, aliases: Any) -> tuple[str, ...]:
    """Aliases as a tuple, each a valid name, none repeating ``name`` or another alias (case
    ignored: the command line matches names case-insensitively)."""
    if isinstance(aliases, str) or not isinstance(aliases, (tuple, list)):
        raise SpecError(f"{kind} {name!r}: aliases must be a tuple of names, e.g. aliases=('tfn',), "
                        f"got {aliases!r}")
    seen = {name.casefold(): f"the {kind} name {name!r}"}
    for alias in aliases:
        if not isinstance(alias, str) or not alias or any(c.isspace() for c in alias) or "," in alias:
            raise SpecError(f"{kind} {name!r}: alias {alias!r} is invalid: aliases are non-empty strings without "
                            "whitespace or commas, like names (they are typed on the command line).")
        if alias.casefold() == "all":
            raise SpecError(f"{kind} {name!r}: alias 'all' is reserved (--methods all selects every method); "
                            "remove it from aliases.")
        if alias.casefold() in seen:
            raise SpecError(f"{kind} {name!r}: alias {alias!r} repeats {seen[alias.casefold()]} (names and "
                            "aliases are matched case-insensitively); remove it from aliases.")
        seen[alias.casefold()] = f"the alias {alias!r}"
    return tuple(aliases)


@dataclass(frozen=True)
class ModalitySpec(_Spec):
    """One input modality: ``sequence`` tensors are (B, T, dim), ``vector`` ones (B, dim)."""

    name: str
    dim: int
    kind: ModalityKind = "vector"

    def __post_init__(self) -> None:
        _check_name("modality", self.name)
        if not isinstance(self.dim, int) or self.dim <= 0:
            raise SpecError(f"modality {self.name!r}: dim must be a positive int, got {self.dim!r}")
        if self.kind not in ("sequence", "vector"):
            raise SpecError(
                f"modality {self.name!r}: kind must be 'sequence' or 'vector', got {self.kind!r}"
            )


@dataclass(frozen=True)
class TargetSpec(_Spec):
    """What is predicted.  ``n_outputs`` is the width of the model's output layer.

    regression: ``n_outputs`` real values (L1 loss by default, the MOSI/MOSEI convention);
    multiclass: ``n_outputs`` logits, labels are class indices (cross-entropy);
    multilabel: one logit per label, labels are 0/1 (binary cross-entropy).
    """

    kind: TargetKind
    n_outputs: int
    labels: tuple[str, ...] = ()
    loss: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("regression", "multiclass", "multilabel"):
            raise SpecError(f"target kind must be regression|multiclass|multilabel, got {self.kind!r}")
        if not isinstance(self.n_outputs, int) or self.n_outputs <= 0:
            raise SpecError(f"target n_outputs must be a positive int, got {self.n_outputs!r}")
        if self.labels and len(self.labels) != self.n_outputs:
            raise SpecError(
                f"target has {len(self.labels)} labels but n_outputs={self.n_outputs}; "
                "give one label name per output"
            )
        if not self.loss:
            default = {"regression": "l1", "multiclass": "cross_entropy", "multilabel": "bce"}
            object.__setattr__(self, "loss", default[self.kind])
        if self.loss not in ("l1", "mse", "cross_entropy", "bce"):
            raise SpecError(f"target loss must be l1|mse|cross_entropy|bce, got {self.loss!r}")


@dataclass(frozen=True)
class TaskSpec(_Spec):
    """Modalities in a fixed order plus the target; models are built from this alone."""

    modalities: tuple[ModalitySpec, ...]
    target: TargetSpec

    def __post_init__(self) -> None:
        if not self.modalities:
            raise SpecError("a task needs at least one modality")
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names):
            raise SpecError(f"modality names must be unique, got {names}")

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def modality(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(name)


# -- search spaces (``bench tune``) ------------------------------------------------------------

def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Float(_Spec):
    """A real hyper-parameter in [low, high]; ``log=True`` samples it on a log scale (low > 0)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (_number(self.low) and _number(self.high)) or not self.low < self.high:
            raise SpecError(f"Float({self.low!r}, {self.high!r}): low and high must be finite numbers with "
                            "low < high")
        if self.log and self.low <= 0:
            raise SpecError(f"Float({self.low!r}, {self.high!r}, log=True): a log scale needs low > 0")
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))

    def contains(self, value: Any) -> bool:
        return _number(value) and self.low <= value <= self.high

    def value(self, value: Any) -> float:
        return float(value)

    def describe(self) -> str:
        return f"float in [{self.low:g}, {self.high:g}]" + (" (log scale)" if self.log else "")


@dataclass(frozen=True)
class Int(_Spec):
    """An integer hyper-parameter in [low, high] (both included); ``log=True``: log scale (low >= 1)."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high))
        if not whole or not self.low < self.high:
            raise SpecError(f"Int({self.low!r}, {self.high!r}): low and high must be integers with low < high")
        if self.log and self.low < 1:
            raise SpecError(f"Int({self.low!r}, {self.high!r}, log=True): a log scale needs low >= 1")

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def value(self, value: Any) -> int:
        return int(value)

    def describe(self) -> str:
        return f"integer in [{self.low}, {self.high}]" + (" (log scale)" if self.log else "")


def _same(a: Any, b: Any) -> bool:
    """Equal as hyper-parameter values: True is not 1 (Python says it is), 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return type(a) is type(b) and a == b or (_number(a) and _number(b) and a == b)


@dataclass(frozen=True)
class Choice(_Spec):
    """One of ``options`` (JSON scalars: str, int, float, bool or None), unordered to the sampler."""

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        options = self.options
        if isinstance(options, (str, bytes)) or not isinstance(options, (tuple, list)) or not options:
            raise SpecError(f"Choice({options!r}): options must be a non-empty tuple, e.g. Choice((16, 32, 64))")
        for option in options:
            if option is not None and not isinstance(option, (str, int, float, bool)) or (
                    isinstance(option, float) and not math.isfinite(option)):
                raise SpecError(f"Choice({options!r}): option {option!r} is not a JSON scalar (str, int, "
                                "finite float, bool or None)")
        if any(isinstance(o, bool) for o in options) and not all(isinstance(o, bool) for o in options):
            raise SpecError(f"Choice({options!r}): do not mix True/False with other options (Python counts "
                            "True as 1); use (False, True) or numbers")
        for i, option in enumerate(options):
            if any(_same(option, other) for other in options[:i]):
                raise SpecError(f"Choice({options!r}): option {option!r} is listed twice")
        object.__setattr__(self, "options", tuple(options))

    def contains(self, value: Any) -> bool:
        return any(_same(value, option) for option in self.options)

    def value(self, value: Any) -> Any:
        """The option equal to ``value`` (so 0 becomes the listed 0.0)."""
        return next(option for option in self.options if _same(value, option))

    def describe(self) -> str:
        return "one of " + ", ".join(json.dumps(o) for o in self.options)


Param = Float | Int | Choice

# The hyper-parameters every method is tuned over, with one range for all (equal budgets): the
# optimiser's learning rate and weight decay (Budget fields) and the shared encoders' width and
# dropout (hyper-parameters every built-in reads).  Weight decay is a choice so that 0, the
# default, is a value the sampler can return (a log scale cannot hold 0).
SHARED_SPACE: dict[str, Param] = {
    "lr": Float(1e-4, 1e-2, log=True),
    "weight_decay": Choice((0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)),
    "dropout": Float(0.0, 0.5),
    "hidden": Choice((16, 32, 64, 128)),
}
# Shared knobs that are Budget fields; the others are hyper-parameters (``hparams``).
BUDGET_KNOBS = ("lr", "weight_decay")


@dataclass(frozen=True)
class SearchSpace(_Spec):
    """What ``bench tune`` searches for one method: the shared knobs (:data:`SHARED_SPACE`) minus
    ``exclude`` (shared knobs the method does not read), plus ``params``, the method's own
    hyper-parameters (each a key of its ``defaults``, the default inside the range).

    ``MethodSpec(search_space={...})`` is short for ``SearchSpace(params={...})``.
    """

    params: Mapping[str, Param] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.params, Mapping):
            raise SpecError(f"search space params must be a dict name -> Float/Int/Choice, got {self.params!r}")
        for name, param in self.params.items():
            if not isinstance(param, (Float, Int, Choice)):
                raise SpecError(f"search space parameter {name!r} must be Float(low, high), Int(low, high) or "
                                f"Choice(options), got {param!r}")
            if name in SHARED_SPACE:
                raise SpecError(f"search space parameter {name!r} is a shared knob: every method is tuned over "
                                f"the same {name} range ({SHARED_SPACE[name].describe()}); leave it out of params "
                                f"(or put it in exclude if the method does not use it)")
        if isinstance(self.exclude, str) or not isinstance(self.exclude, (tuple, list)):
            raise SpecError(f"search space exclude must be a tuple of shared knob names, got {self.exclude!r}")
        unknown = sorted(set(self.exclude) - set(SHARED_SPACE))
        if unknown:
            raise SpecError(f"search space exclude names {unknown}, which are not shared knobs; the shared knobs "
                            f"are {', '.join(SHARED_SPACE)}")
        object.__setattr__(self, "params", dict(sorted(self.params.items())))
        object.__setattr__(self, "exclude", tuple(sorted(set(self.exclude))))

    def effective(self) -> dict[str, Param]:
        """The whole space searched: shared knobs (fixed order) not excluded, then the method's own."""
        shared = {k: v for k, v in SHARED_SPACE.items() if k not in self.exclude}
        return {**shared, **self.params}


@dataclass(frozen=True)
class MethodSpec(_Spec):
    """A fusion method.  ``build(task, hparams)`` returns a ``benchmark_core.engine.models.FusionModel``.

    ``defaults`` are the method's hyper-parameters; the run's resolved values are recorded.
    ``min_modalities``/``max_modalities`` and ``modality_kinds`` say where it applies.
    """

    name: str
    family: str
    build: Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""
    description: str = ""
    min_modalities: int = 1
    max_modalities: int | None = None
    modality_kinds: tuple[str, ...] = ("sequence", "vector")
    # False for a generic method whose presets are registered too (``unimodal`` is
    # ``unimodal-1`` by default): ``--methods all`` then plans the presets only, so the
    # leaderboard never shows one model twice under two names.
    in_all: bool = True
    # Other names users know the method by (papers, MultiBench, MMSA: ``tfn`` for ``tensor``).
    # ``--methods`` accepts them, case-insensitively, and the registry resolves them to
    # ``name`` before planning, so runs record one name and the leaderboard has one row.
    aliases: tuple[str, ...] = ()
    # What ``bench tune`` searches (SearchSpace; a plain dict is its ``params``).  Left out: the
    # shared knobs only (learning rate, weight decay, dropout, hidden), which every method gets.
    search_space: SearchSpace | Mapping[str, Param] = field(default_factory=SearchSpace)

    def __post_init__(self) -> None:
        _check_name("method", self.name)
        object.__setattr__(self, "aliases", _check_aliases("method", self.name, self.aliases))
        if not isinstance(self.family, str) or not self.family:
            raise SpecError(f"method {self.name!r}: family must be a non-empty string")
        if not callable(self.build):
            raise SpecError(f"method {self.name!r}: build must be callable(task, hparams)")
        object.__setattr__(self, "defaults", dict(self.defaults))
        try:
            json.dumps(self.defaults)
        except TypeError as exc:
            raise SpecError(f"method {self.name!r}: defaults must be JSON-serialisable ({exc})") from exc
        object.__setattr__(self, "search_space", self._checked_space())

    def _checked_space(self) -> SearchSpace:
        """The search space, each own parameter a hyper-parameter of ``defaults`` whose default
        lies inside its range (trial 0 of a study is the default configuration)."""
        space = self.search_space
        try:
            if not isinstance(space, SearchSpace):
                space = SearchSpace(params=space)
        except SpecError as exc:
            raise SpecError(f"method {self.name!r}: {exc}") from None
        for name, param in space.params.items():
            if name not in self.defaults:
                raise SpecError(f"method {self.name!r}: search space parameter {name!r} is not one of its "
                                f"hyper-parameters (defaults: {', '.join(sorted(self.defaults)) or 'none'}); "
                                "add it to defaults or remove it from search_space")
            if not param.contains(self.defaults[name]):
                raise SpecError(f"method {self.name!r}: the default {name}={self.defaults[name]!r} is outside its "
                                f"search space ({param.describe()}); trial 0 of every study is the default "
                                "configuration, so widen the range or change the default")
        return space

    def supports(self, task: TaskSpec) -> str | None:
        """Return None if the method can run on ``task``, else the reason it cannot."""
        n = len(task.modalities)
        if n < self.min_modalities:
            return f"needs at least {self.min_modalities} modalities, task has {n}"
        if self.max_modalities is not None and n > self.max_modalities:
            return f"supports at most {self.max_modalities} modalities, task has {n}"
        for m in task.modalities:
            if m.kind not in self.modality_kinds:
                return f"does not support {m.kind} modality {m.name!r}"
        return None


@dataclass(frozen=True)
class DatasetSpec(_Spec):
    """A dataset.  ``load(options)`` returns a ``datasets.DatasetDict`` with the splits
    ``train``, ``validation`` and ``test`` (or a ``(DatasetDict, report)`` pair, the report
    being a JSON-able dict of what the conversion did, recorded with every run); one column per modality (vector:
    ``List(float32, length=D)``, sequence: ``List(List(float32, length=D))``) and a
    ``label`` column.  Modality shapes are derived from the loaded data, never declared.
    """

    name: str
    load: Callable[..., Any]
    target: TargetSpec
    modalities: tuple[str, ...]
    metrics: tuple[str, ...]
    primary_metric: str
    reference: str = ""
    how_to_obtain: str = "Bundled with FuseBench; nothing to download."
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # Optional: ``inspect(path) -> {"recognised": [...], "rejected": [...], "layouts": [...]}``
    # describes the files at ``path`` this dataset could be read from (``bench data inspect``).
    inspect: Callable[..., Any] | None = None
    # Optional: ``specialise(options) -> DatasetSpec`` for generic readers (``uea``) whose
    # modalities and classes come from the file the options name; the engine loads through
    # the returned spec, so ``modalities`` and ``target`` above are only placeholders.
    specialise: Callable[..., Any] | None = None
    # Optional budget defaults for this dataset (``Budget`` field -> value), e.g. a smaller
    # batch for a 32-sample training set.  Every method on the dataset gets the same budget;
    # a budget flag the user sets on the command line wins over these.
    budget: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("dataset", self.name)
        settable = [f.name for f in dataclasses.fields(Budget) if f.name not in ("threads", "device")]
        unknown = sorted(set(self.budget) - set(settable))
        if unknown:
            raise SpecError(f"dataset {self.name!r}: budget names {unknown}; a dataset may set "
                            f"{', '.join(settable)} (threads and device belong to the machine)")
        try:
            Budget(**self.budget)
        except SpecError as exc:
            raise SpecError(f"dataset {self.name!r}: {exc}") from None
        object.__setattr__(self, "budget", dict(self.budget))
        if self.specialise is not None and not callable(self.specialise):
            raise SpecError(f"dataset {self.name!r}: specialise must be callable(options) or None")
        if self.inspect is not None and not callable(self.inspect):
            raise SpecError(f"dataset {self.name!r}: inspect must be callable(path) or None")
        if not callable(self.load):
            raise SpecError(f"dataset {self.name!r}: load must be callable(options)")
        if not self.modalities:
            raise SpecError(f"dataset {self.name!r}: list its modality column names")
        if self.primary_metric not in self.metrics:
            raise SpecError(
                f"dataset {self.name!r}: primary_metric {self.primary_metric!r} must be one of "
                f"its metrics {list(self.metrics)}"
            )
        object.__setattr__(self, "defaults", dict(self.defaults))


@dataclass(frozen=True)
class MetricSpec(_Spec):
    """A metric ``fn(y_true, y_pred) -> float`` on numpy arrays.

    ``y_pred`` is the raw model output (logits for classification, values for
    regression), shape (N, n_outputs); ``y_true`` is (N,) for regression/multiclass and
    (N, n_outputs) for multilabel.  The name is the *variant* (e.g. ``acc2_nonzero``) and
    is recorded with every result.
    """

    name: str
    fn: Callable[..., float]
    higher_is_better: bool = True
    target_kinds: tuple[str, ...] = ("regression", "multiclass", "multilabel")
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("metric", self.name)
        if not callable(self.fn):
            raise SpecError(f"metric {self.name!r}: fn must be callable(y_true, y_pred)")


@dataclass(frozen=True)
class StressSpec(_Spec):
    """A corruption applied at evaluation time, without retraining.

    ``conditions(task)`` lists the ``(target, level)`` pairs to evaluate: ``target`` is a
    modality name, a '+'-joined subset (``"text+audio"``) or ``"all"``; ``level`` is a
    severity in (0, 1].  ``apply(batch, target, level, generator, stats)`` returns the
    corrupted batch, drawing randomness only from ``generator`` (seeded per test and target,
    so every method sees the same corrupted inputs); ``stats`` maps each modality to its
    per-feature train-set standard deviation.  Modalities it leaves alone must stay the
    *same* tensor objects (use ``batch.replace``): the engine then reuses their encodings.

    ``curve``: the levels of one target form a severity curve that starts from the clean
    score at level 0 (relative/effective robustness are computed on it); ``False`` for
    categorical conditions such as removing a modality (summarised by mean and worst drop).

    ``modality_wise``: corrupting a subset (or ``all``: every single modality the test lists
    at that level) is corrupting each of its modalities on its own.  The engine then calls
    ``apply`` with single modalities only, each with that modality's own generator, so a
    subset condition is exactly the union of the single-modality ones and reuses their
    encodings (only the fusion runs again).
    """

    name: str
    apply: Callable[..., Any]
    conditions: Callable[..., Any]
    description: str = ""
    curve: bool = True
    modality_wise: bool = False

    def __post_init__(self) -> None:
        _check_name("stress test", self.name)
        if "/" in self.name:
            raise SpecError(f"stress test {self.name!r}: '/' is reserved for metric keys")
        if not callable(self.apply):
            raise SpecError(f"stress test {self.name!r}: apply must be callable(batch, target, "
                            "level, generator, stats)")
        if not callable(self.conditions):
            raise SpecError(f"stress test {self.name!r}: conditions must be callable(task)")


@dataclass(frozen=True)
class ExecutorSpec(_Spec):
    """A way to run RunSpecs: ``factory(**options)`` returns a ``benchmark_core.suite.executors.Executor``."""

    name: str
    factory: Callable[..., Any]
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("executor", self.name)


# Seeds are stored as signed 64-bit integers (MLflow's SQLite store, pandas) and must seed
# torch and numpy: 0 <= seed <= 2**63 - 1 holds everywhere.
MAX_SEED = 2**63 - 1

# What ``--device`` accepts: the CPU or a CUDA device (torch's default one, or by index).
_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")


def check_seed(seed: Any) -> None:
    """One rule for RunSpec and ``--seeds``: out-of-range seeds fail before any run starts
    instead of inside torch/numpy (a traceback per run) or the result store."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise SpecError(f"seed {seed!r} is out of range: seeds are integers from 0 to {MAX_SEED} "
                        "(2**63 - 1, what torch, numpy and the result store all hold)")


def _check_number(name: str, value: Any, *, positive: bool) -> None:
    # NaN compares False with everything, so "value < 0" would let it through: test what is allowed.
    allowed = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
        value > 0 if positive else value >= 0)
    if not allowed:
        bound = "a positive finite number" if positive else "a finite number >= 0"
        raise SpecError(f"budget {name} must be {bound}, got {value!r} (--{name.replace('_', '-')})")


@dataclass(frozen=True)
class Budget(_Spec):
    """The training budget, identical for every method of a suite."""

    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    grad_clip: float = 1.0
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise SpecError(
                    f"budget {name} must be a positive integer, got {value!r} "
                    f"(set it with --{name.replace('_', '-')} N, N >= 1)"
                )
        if not isinstance(self.patience, int) or self.patience < 0:
            raise SpecError(f"budget patience must be an integer >= 0, got {self.patience!r}")
        _check_number("lr", self.lr, positive=True)
        _check_number("weight_decay", self.weight_decay, positive=False)  # 0: no weight decay
        _check_number("grad_clip", self.grad_clip, positive=False)  # 0: no clipping
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise SpecError(
                f"budget optimizer must be adam|adamw|sgd, got {self.optimizer!r} (--optimizer)"
            )
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise SpecError(f"--device {self.device!r} is not a device: use cpu, cuda or cuda:N "
                            "(N a CUDA device index, e.g. cuda:0).")

    def with_defaults(self, defaults: Mapping[str, Any], pinned: Collection[str]) -> Budget:
        """This budget with ``defaults`` (a dataset's budget) for every field not in ``pinned``."""
        changes = {k: v for k, v in defaults.items() if k not in pinned}
        return dataclasses.replace(self, **changes) if changes else self

    def check_device(self) -> None:
        """Refuse a CUDA device this machine lacks, before anything runs: torch would only fail
        inside every run.  Not part of validation: a stored spec must load on any machine."""
        if self.device == "cpu":
            return
        import torch  # lazily: specs are imported by torch-free commands (leaderboard)

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SpecError(f"--device {self.device}: no CUDA device is available on this machine (torch "
                            f"{torch.__version__} finds no GPU, or is a CPU-only build); use --device cpu.")
        index = int(self.device.partition(":")[2] or 0)
        if index >= count:
            raise SpecError(f"--device {self.device}: this machine has {count} CUDA device"
                            f"{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1}); pick one of "
                            "them or use --device cpu.")


def _check_int(name: str, value: Any, low: int, flag: str = "") -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
        raise SpecError(f"evaluation option {name} must be an integer >= {low}{flag}, got {value!r}.")


@dataclass(frozen=True)
class EvaluationSpec(_Spec):
    """What runs after a run's clean evaluation: the stress grid and EMAP, and their options
    (``benchmark_core.evaluation.evaluators`` reads them; docs/stress.md).

    An option left None is not set: its default applies and it stays out of the run's identity
    (``to_dict`` lists only the options set), so a spec keeps the ``spec_hash`` it had when
    its evaluation was a plain mapping of exactly those options.  A RunSpec accepts that
    mapping (``{"stress": False, "emap": False}``) and turns it into this spec.
    """

    stress: bool | None = None        # the stress grid (default on)
    emap: bool | None = None          # EMAP (default on)
    stress_tests: str | tuple[str, ...] | None = None  # names, or one comma string (default: every test)
    emap_samples: int | None = None   # EMAP on a seeded subset of that many test samples (default: all)
    emap_partners: int | str | None = None  # 0: exact; K > 0: Monte Carlo with K partners; "auto" (default)
    emap_target_se: float | None = None  # precision target on the primary metric (default emap.TARGET_SE)
    emap_max_evals: int | None = None    # evaluation budget (default emap.MAX_EVALS / IDENTITY_MAX_EVALS)

    def __post_init__(self) -> None:
        for name in ("stress", "emap"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise SpecError(f"evaluation option {name} must be True or False, got {value!r} "
                                f"(--no-{name.replace('_', '-')} turns it off).")
        tests = self.stress_tests
        if isinstance(tests, (list, tuple)):
            if not all(isinstance(t, str) and t.strip() for t in tests):
                raise SpecError(f"evaluation option stress_tests must name stress tests, got {tests!r}; "
                                "give a list of names or one comma-separated string.")
            object.__setattr__(self, "stress_tests", tuple(tests))
        elif tests is not None and not isinstance(tests, str):
            raise SpecError(f"evaluation option stress_tests must be a list of stress-test names or a "
                            f"comma-separated string, got {tests!r}.")
        _check_int("emap_samples", self.emap_samples, 2, " (--emap-samples)")
        _check_int("emap_max_evals", self.emap_max_evals, 1)
        if self.emap_partners != "auto":
            _check_int("emap_partners", self.emap_partners, 0, " (or \"auto\")")
        target = self.emap_target_se
        if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))
                                   or not math.isfinite(target) or target <= 0):
            raise SpecError(f"evaluation option emap_target_se must be a positive finite number, got {target!r}.")

    @classmethod
    def of(cls, value: EvaluationSpec | Mapping[str, Any] | None) -> EvaluationSpec:
        """The spec itself, or the spec of a mapping of its options (unknown options are
        refused: a misspelt option would otherwise be ignored and change the run's identity)."""
        if isinstance(value, EvaluationSpec):
            return value
        if value is not None and not isinstance(value, Mapping):
            raise SpecError(f"a run's evaluation must be an EvaluationSpec or a mapping of its options, "
                            f"got {type(value).__name__}.")
        options = dict(value or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SpecError(f"unknown evaluation option(s) {unknown}; the options are: {', '.join(known)}.")
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        """The options set, by name (sorted, as the mapping it replaced was)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in sorted(dataclasses.fields(self), key=lambda f: f.name)
                if getattr(self, f.name) is not None}

    def enabled(self, evaluator: str) -> bool:
        """Whether an evaluator (``stress``, ``emap``) runs: yes unless its option is False."""
        return getattr(self, evaluator, None) is not False

    @property
    def stress_test_names(self) -> list[str] | None:
        """The selected stress tests (None: every registered one)."""
        tests = self.stress_tests
        if tests is None:
            return None
        names = tests.split(",") if isinstance(tests, str) else list(tests)
        return [name.strip() for name in names if name.strip()]


@dataclass(frozen=True)
class RunSpec(_Spec):
    """One unit of work: train ``method`` on ``dataset`` with ``seed`` under ``budget``.

    Plain data only, so it pickles to any worker; ``spec_hash`` identifies the run across
    invocations (a finished run with the same hash is skipped).  The identity covers
    everything that determines the numbers: the resolved ``dataset_options`` (every
    conversion option, defaults included) and ``data_hash``, the content hash of the data the
    planner loaded, so a changed data file is a different run, never a stale skip.
    """

    method: str
    dataset: str
    seed: int
    budget: Budget
    hparams: Mapping[str, Any] = field(default_factory=dict)
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)  # a mapping of its options is accepted
    versions: Mapping[str, str] = field(default_factory=dict)
    data_hash: str = ""
    # ``bench tune`` only: a trial records its study and number ({"role": "trial", "study", "trial"}),
    # a tuned run the study that chose its configuration ({"role": "tuned", "study", "space",
    # "n_trials", "sampler", "tune_seed", "trial", "params"}).  Empty for every other run, and then
    # left out of the canonical JSON, so untuned runs keep the spec_hash they always had.
    tuning: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_seed(self.seed)
        for name in ("hparams", "dataset_options", "versions", "tuning"):
            object.__setattr__(self, name, dict(sorted(getattr(self, name).items())))
        object.__setattr__(self, "evaluation", EvaluationSpec.of(self.evaluation))

    def to_dict(self) -> dict[str, Any]:
        data = _jsonable(self)
        if not self.tuning:
            del data["tuning"]
        return data

    @property
    def spec_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of the spec."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        role = self.tuning.get("role")
        if role == "trial":
            return f"{self.method}/{self.dataset}/trial{self.tuning.get('trial')}"
        return f"{self.method}/{self.dataset}/seed{self.seed}" + ("/tuned" if role == "tuned" else "")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        data = dict(data)
        data["budget"] = Budget(**data["budget"])
        return cls(**data)
