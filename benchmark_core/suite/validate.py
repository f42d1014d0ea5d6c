"""``bench validate-plugin NAME``: exercise everything one plugin registered on tiny inputs.

For each registration of the plugin:

* methods: build on tiny synthetic tasks (vector, sequence and mixed modalities; 2 and 3
  modalities, or the method's minimum; multiclass and regression targets) wherever
  ``spec.supports(task)`` allows; the output must be (batch, n_outputs) and finite; one epoch
  of the engine's own training loop (``training.train_epoch``: the model's ``training_data``,
  ``before_epoch`` and ``training_loss`` hooks, backward, clipping, an optimiser step) on a
  tiny batch must run with a finite loss and finite gradients; ``encode`` must
  keep modalities independent (changing one modality's input may not change another's
  encoding), which EMAP and the stress grid rely on; in eval mode a sample's output must not
  depend on the other rows of its batch (evaluation batches are not the training batches);
* datasets: load with their defaults, convert with ``benchmark_core.engine.data.to_tensors``, check
  the declared metrics exist, accept the target kind and score random predictions;
* metrics: a finite float on random inputs for each declared target kind;
* stress tests: ``apply`` takes the five arguments the engine passes; every call the
  engine's stress grid makes on tiny tasks, through the engine's own ``corrupt``: batch size,
  feature dims and modalities kept, deterministic given the generator, untouched modalities
  unchanged;
* executors: the factory is callable with the options ``bench run`` passes.

Every problem is one plain sentence naming the registration and what to fix.  A dataset
whose files are not on this machine (its ``load`` raises ``DataError``) is reported as a
note, not a problem: that is the correct behaviour for a dataset you must obtain yourself.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import torch

from benchmark_core.engine.data import Batch, DatasetTensors, SplitTensors, to_tensors
from benchmark_core.engine.models import FusionModel, Output, prediction_problem
from benchmark_core.engine.training import DivergedError, make_optimizer, train_epoch
from benchmark_core.errors import DataError, FuseBenchError
from benchmark_core.evaluation.robustness import Condition
from benchmark_core.evaluation.stress import conditions_of, corrupt, single_targets, union_of
from benchmark_core.plugins import ENTRY_POINT_GROUP, KINDS, Registry, build_registry
from benchmark_core.specs import Budget, MethodSpec, ModalitySpec, StressSpec, TargetSpec, TaskSpec

NOUNS = {kind: noun for kind, (_, _, noun) in KINDS.items()}
BATCH = 4


# -- tiny tasks and batches (also used by fusebench.testing) -----------------------------------

def tiny_target(kind: str = "multiclass", n_outputs: int | None = None) -> TargetSpec:
    """A small target of the given kind (3 classes/labels, or 1 regression value)."""
    default = {"multiclass": 3, "multilabel": 3, "regression": 1}[kind]
    return TargetSpec(kind, n_outputs or default)


def tiny_task(n_modalities: int = 2, kind: str = "vector", target: str | TargetSpec = "multiclass",
              dims: Iterable[int] | None = None) -> TaskSpec:
    """Modalities ``m0, m1, ...`` of ``kind`` ``vector``, ``sequence`` or ``mixed`` (the first one a
    sequence, the others vectors) with small distinct dims."""
    dims = list(dims) if dims is not None else [5 + 2 * i for i in range(n_modalities)]
    if len(dims) != n_modalities:
        raise ValueError(f"give one dim per modality ({n_modalities}), got {dims}")
    if kind == "mixed":
        kinds = ["sequence"] + ["vector"] * (n_modalities - 1)
    elif kind in ("vector", "sequence"):
        kinds = [kind] * n_modalities
    else:
        raise ValueError(f"kind must be vector|sequence|mixed, got {kind!r}")
    mods = tuple(ModalitySpec(f"m{i}", d, k) for i, (d, k) in enumerate(zip(dims, kinds, strict=True)))
    tgt = target if isinstance(target, TargetSpec) else tiny_target(target)
    return TaskSpec(mods, tgt)


def tiny_targets(target: TargetSpec, n: int, generator: torch.Generator) -> torch.Tensor:
    """Random targets of the right dtype and shape for ``target`` (what the data pipeline makes)."""
    if target.kind == "multiclass":
        y = torch.randint(target.n_outputs, (n,), generator=generator)
        y[: min(n, target.n_outputs)] = torch.arange(min(n, target.n_outputs))  # every class appears
        return y
    if target.kind == "multilabel":
        return torch.randint(2, (n, target.n_outputs), generator=generator).float()
    shape = (n,) if target.n_outputs == 1 else (n, target.n_outputs)
    return torch.randn(shape, generator=generator)


def tiny_batch(task: TaskSpec, batch_size: int = BATCH, seed: int = 0, seq_len: int = 5) -> Batch:
    """A random batch for ``task``: right-padded sequences of varying length with masks,
    every modality present, targets included."""
    g = torch.Generator().manual_seed(seed)
    x, mask, present = {}, {}, {}
    for m in task.modalities:
        if m.kind == "vector":
            x[m.name], mask[m.name] = torch.randn(batch_size, m.dim, generator=g), None
        else:
            lengths = torch.randint(1, seq_len + 1, (batch_size,), generator=g)
            lengths[0] = seq_len  # the padded length is always reached
            steps = torch.arange(seq_len)[None, :] < lengths[:, None]
            x[m.name] = torch.randn(batch_size, seq_len, m.dim, generator=g) * steps[..., None]
            mask[m.name] = steps
        present[m.name] = torch.ones(batch_size, dtype=torch.bool)
    return Batch(x=x, mask=mask, present=present, y=tiny_targets(task.target, batch_size, g))


def describe_task(task: TaskSpec) -> str:
    kinds = {m.kind for m in task.modalities}
    kind = kinds.pop() if len(kinds) == 1 else "mixed sequence/vector"
    t = task.target
    target = (f"{t.kind} ({t.n_outputs} classes)" if t.kind == "multiclass"
              else f"{t.kind} ({t.n_outputs} output{'s' if t.n_outputs > 1 else ''})")
    return f"{len(task.modalities)} {kind} modalities, {target}"


def method_tasks(spec: MethodSpec) -> list[TaskSpec]:
    """The tiny tasks a method is checked on: 2 and 3 modalities (or its minimum), vector,
    sequence and mixed modalities, multiclass and regression targets, each covered at least
    once, keeping only what ``spec.supports`` allows."""
    plan = [(2, "vector", "multiclass"), (3, "vector", "regression"),
            (2, "sequence", "regression"), (3, "mixed", "multiclass")]
    if spec.min_modalities > 3:
        plan.append((spec.min_modalities, "vector", "multiclass"))
    if spec.min_modalities <= 1 and spec.max_modalities == 1:
        plan += [(1, "vector", "multiclass"), (1, "sequence", "regression")]
    tasks = [tiny_task(n, kind, target) for n, kind, target in plan]
    supported = [t for t in tasks if spec.supports(t) is None]
    if supported:
        return supported
    # nothing in the plan fits: try every combination before giving up
    counts = sorted({max(spec.min_modalities, 1), 2, 3})
    return [t for n in counts for kind in ("vector", "sequence", "mixed") if kind != "mixed" or n > 1
            for target in ("multiclass", "regression")
            if spec.supports(t := tiny_task(n, kind, target)) is None]


# -- the report --------------------------------------------------------------------------------

@dataclass
class ValidationReport:
    """What was checked, the problems (each one sentence) and notes (not failures)."""

    plugin: str
    entry_points: list[str] = field(default_factory=list)
    distribution: str | None = None
    version: str | None = None
    checked: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        origin = f" ({self.distribution} {self.version})" if self.distribution else ""
        counts = ", ".join(f"{len(names)} {NOUNS[kind]}{'s' if len(names) != 1 else ''}"
                           for kind, names in self.checked.items() if names) or "nothing"
        lines = [f"Validating plugin {self.plugin!r}{origin}: {counts}."]
        for kind, names in self.checked.items():
            for name in names:
                lines.append(f"  checked {NOUNS[kind]} {name}")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"problem: {p}" for p in self.problems]
        if self.problems:
            lines.append(f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''} found.")
        else:
            lines.append("No problems found.")
        return "\n".join(lines)


def _err(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


# -- methods -----------------------------------------------------------------------------------

def _check_encode_independent(model, task: TaskSpec, batch: Batch) -> str | None:
    """Change one modality's input; every other modality's encoding must stay the same."""
    if type(model).encode is FusionModel.encode:
        return None  # the identity: independent by construction
    model.eval()
    with torch.no_grad():
        base = model.encode(batch)
        if not isinstance(base, Batch):
            return f"encode() returned {type(base).__name__}; it must return a Batch (use batch.replace(x=...))"
        for changed in task.modality_names:
            other = tiny_batch(task, batch.size, seed=99)
            x = dict(batch.x)
            x[changed] = other.x[changed]
            mask = dict(batch.mask)
            mask[changed] = other.mask[changed]
            encoded = model.encode(batch.replace(x=x, mask=mask))
            for m in task.modality_names:
                if m == changed:
                    continue
                a, b = base.x.get(m), encoded.x.get(m)
                if a is None or b is None:
                    return f"encode() dropped modality {m!r} from the batch"
                if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
                    return (f"encode() mixes modalities: changing the input of {changed!r} changed the "
                            f"encoding of {m!r}. encode must treat each modality on its own; move "
                            "cross-modal computation into fuse() (EMAP and the stress tests rely on this)")
    return None


def _check_rows_independent(model, task: TaskSpec) -> str | None:
    """In eval mode a sample's output may not depend on the other rows of its batch: the
    engine evaluates in batches of ``EVAL_BATCH_SIZE`` whatever ``--batch-size`` is, and the
    stress grid and EMAP evaluate mixed batches."""
    model.eval()
    batch = tiny_batch(task, 2 * BATCH, seed=7)
    halves = [batch.select(torch.arange(0, BATCH)), batch.select(torch.arange(BATCH, 2 * BATCH))]
    with torch.no_grad():
        whole = model(batch).pred
        split = torch.cat([model(half).pred for half in halves])
    if whole.shape != split.shape or not torch.allclose(whole, split, rtol=1e-4, atol=1e-5):
        return ("in eval mode its outputs depend on which other samples share the batch (the same "
                f"{2 * BATCH} samples scored as one batch and as two halves differ); use running statistics "
                "in eval mode (e.g. BatchNorm, not per-batch normalisation) so evaluation is independent "
                "of the batch size")
    return None


# The hooks a training loop runs (``FusionModel``): a failure is reported with the hook it
# came from, innermost first, so the author knows which method to look at.
_HOOKS = ("training_data", "before_epoch", "training_loss", "fuse", "encode", "forward")


def _raised_in(exc: BaseException) -> str:
    """`` in <hook>()`` for the innermost model hook in ``exc``'s traceback, or ``""``."""
    import traceback

    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.name in _HOOKS:
            return f" in {frame.name}()"
    return ""


def tiny_data(task: TaskSpec, rows: int = BATCH, seed: int = 0) -> DatasetTensors:
    """Train, validation and test splits of ``rows`` random samples each (``tiny_batch``), as
    the engine's training loop takes them."""
    def split(offset: int) -> SplitTensors:
        batch = tiny_batch(task, rows, seed=seed + offset)
        return SplitTensors(x=batch.x, mask=batch.mask, y=batch.y)

    return DatasetTensors(name="validate-plugin", task=task,
                          splits={"train": split(0), "validation": split(1), "test": split(2)}, data_hash="")


def _train_one_epoch(model: FusionModel, task: TaskSpec) -> str | None:
    """One epoch of the engine's own loop (``training.train_epoch``) on one tiny batch: the
    model's ``training_data``, ``before_epoch`` and ``training_loss`` hooks, backward, clipping
    and an optimiser step, as ``bench run`` does them.  Then every gradient must be finite."""
    budget = Budget(epochs=1, batch_size=BATCH)  # one batch: the train split has BATCH rows
    generator = torch.Generator().manual_seed(0)
    try:
        data = model.training_data(tiny_data(task), generator)
        train_epoch(model, data, budget, make_optimizer(model, budget), generator, epoch=0)
    except DivergedError as exc:
        return f"the training step's loss is not finite ({str(exc).split(';')[0]})"
    except Exception as exc:
        return (f"the engine's training loop (training_data, before_epoch, then training_loss, backward "
                f"and an optimiser step) raised {_err(exc)}{_raised_in(exc)}")
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = [(n, p.grad) for n, p in params if p.grad is not None]
    if not grads:
        return "no parameter received a gradient from the loss (is the output detached from the parameters?)"
    bad = [n for n, g in grads if not _finite(g)]
    if bad:
        return f"non-finite gradients in {', '.join(bad[:3])}"
    return None


def check_method(spec: MethodSpec, tasks: Iterable[TaskSpec] | None = None) -> list[str]:
    """Problems with one method (empty list: it builds, trains an epoch of the engine's own
    loop, hooks included, and encodes correctly)."""
    from benchmark_core.suite.runner import resolve_hparams

    where = f"method {spec.name!r}"
    problems: list[str] = []
    tasks = list(tasks) if tasks is not None else method_tasks(spec)
    if not tasks:
        return [f"{where} supports none of the tiny check tasks (2-3 vector/sequence modalities); "
                f"check min_modalities={spec.min_modalities}, max_modalities={spec.max_modalities}, "
                f"modality_kinds={spec.modality_kinds}"]
    try:
        hparams = resolve_hparams(spec, {})
    except Exception as exc:
        return [f"{where}: its defaults cannot be resolved ({_err(exc)})"]
    encode_checked = False
    for task in tasks:
        on = f"{where} on {describe_task(task)}"
        torch.manual_seed(0)
        try:
            model = spec.build(task, dict(hparams))
        except Exception as exc:
            problems.append(f"{on}: build() raised {_err(exc)}")
            continue
        if not isinstance(model, FusionModel):
            problems.append(f"{on}: build() returned {type(model).__name__}; it must return a "
                            "fusebench.FusionModel (subclass it or RepresentationFusion)")
            break
        batch = tiny_batch(task)
        model.train()
        try:
            out = model(batch)
        except Exception as exc:
            problems.append(f"{on}: forward raised {_err(exc)}")
            continue
        if not isinstance(out, Output):
            problems.append(f"{on}: forward returned {type(out).__name__}; it must return "
                            "fusebench.Output(pred=...)")
            continue
        shape_problem = prediction_problem(out.pred, batch.size, task.target)
        if shape_problem:
            problems.append(f"{on}: {shape_problem}")
            continue
        if not _finite(out.pred):
            problems.append(f"{on}: the output contains NaN or infinite values")
            continue
        if not any(p.requires_grad for p in model.parameters()):
            problems.append(f"{on}: the model has no trainable parameters")
            continue
        issue = _train_one_epoch(model, task)
        if issue:
            problems.append(f"{on}: {issue}")
            continue
        if not encode_checked:
            encode_checked = True
            try:
                issue = _check_encode_independent(model, task, batch)
            except Exception as exc:
                issue = f"encode() raised {_err(exc)}"
            if issue:
                problems.append(f"{on}: {issue}")
        try:
            issue = _check_rows_independent(model, task)
        except Exception as exc:
            issue = f"eval-mode forward raised {_err(exc)}"
        if issue:
            problems.append(f"{on}: {issue}")
    return problems


# -- metrics -----------------------------------------------------------------------------------

def random_metric_inputs(kind: str, n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) as the engine passes them: y_pred raw outputs (N, n_outputs)."""
    g = torch.Generator().manual_seed(seed)
    target = tiny_target(kind)
    y = tiny_targets(target, n, g)
    pred = torch.randn(n, target.n_outputs, generator=g)
    return y.numpy(), pred.numpy()


def _metric_value_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"returned {type(value).__name__} {value!r}; it must return a float"
    if not math.isfinite(float(value)):
        return f"returned {value!r}; it must be finite"
    return None


def check_metric(spec, kinds: Iterable[str] | None = None) -> list[str]:
    where = f"metric {spec.name!r}"
    problems = []
    declared = tuple(spec.target_kinds)
    unknown = [k for k in declared if k not in ("regression", "multiclass", "multilabel")]
    if unknown:
        problems.append(f"{where}: target_kinds {unknown} are not regression|multiclass|multilabel")
    if not declared:
        problems.append(f"{where}: target_kinds is empty; list the target kinds it can score")
    for kind in kinds or [k for k in declared if k not in unknown]:
        y, pred = random_metric_inputs(kind)
        try:
            value = spec.fn(y, pred)
        except Exception as exc:
            problems.append(f"{where} raised {_err(exc)} on random {kind} inputs "
                            f"(y_true {y.shape}, y_pred {pred.shape})")
            continue
        issue = _metric_value_problem(value)
        if issue:
            problems.append(f"{where} {issue} (random {kind} inputs)")
    return problems


# -- datasets ----------------------------------------------------------------------------------

def check_dataset(spec, registry: Registry, notes: list[str] | None = None) -> list[str]:
    import datasets as hf

    where = f"dataset {spec.name!r}"
    problems = []
    for metric in spec.metrics:
        if metric not in registry.names("metrics"):
            problems.append(f"{where} lists metric {metric!r}, which no installed plugin registers "
                            "(see `bench list metrics`)")
        elif spec.target.kind not in registry.metric(metric).target_kinds:
            problems.append(f"{where} lists metric {metric!r}, which does not accept "
                            f"{spec.target.kind} targets (it accepts {list(registry.metric(metric).target_kinds)})")
    try:
        loaded = spec.load(dict(spec.defaults))
    except DataError as exc:
        if notes is not None:
            notes.append(f"{where} could not be loaded here: {exc}")
        return problems
    except Exception as exc:
        problems.append(f"{where}: load() raised {_err(exc)}; if files are missing, raise "
                        "benchmark_core.errors.DataError saying how to obtain them")
        return problems
    dsd = loaded[0] if isinstance(loaded, tuple) else loaded
    if isinstance(loaded, tuple) and (len(loaded) != 2 or not isinstance(loaded[1], Mapping | type(None))):
        problems.append(f"{where}: load() returned a tuple; it must be (DatasetDict, report dict)")
        return problems
    if not isinstance(dsd, hf.DatasetDict):
        problems.append(f"{where}: load() returned {type(dsd).__name__}; it must return a "
                        "datasets.DatasetDict with train/validation/test splits")
        return problems
    try:
        tensors = to_tensors(spec, dsd)
    except Exception as exc:
        problems.append(f"{where}: its data cannot be converted: {exc}")
        return problems
    test = tensors.test
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(test.size, spec.target.n_outputs, generator=g).numpy()
    for metric in spec.metrics:
        if metric not in registry.names("metrics"):
            continue
        try:
            value = registry.metric(metric).fn(test.y.numpy(), pred)
        except Exception as exc:
            problems.append(f"{where}: metric {metric!r} raised {_err(exc)} on its test labels")
            continue
        issue = _metric_value_problem(value)
        if issue:
            problems.append(f"{where}: metric {metric!r} {issue} on its test labels")
    return problems


# -- stress tests ------------------------------------------------------------------------------

# How the engine calls a stress test's ``apply`` (``benchmark_core.evaluation.stress.corrupt``).
APPLY_SIGNATURE = "apply(batch, target, level, generator, stats)"
STRESS_SEED = 7  # any seed: the engine derives each condition's generator from it


def _apply_signature_problem(apply: Callable[..., Any]) -> str | None:
    """The engine passes five positional arguments; an ``apply`` that cannot take them fails
    every run, so say so before calling it."""
    try:
        signature = inspect.signature(apply)
    except (TypeError, ValueError):
        return None  # no signature to read (a builtin): the calls below tell
    try:
        signature.bind(None, "m0", 1.0, None, {})
    except TypeError:
        name = getattr(apply, "__name__", "apply")
        return (f"its apply function {name}{signature} cannot be called the way the engine calls it, "
                f"{APPLY_SIGNATURE} (stats maps each modality to its per-feature train-set std); "
                "give it these five parameters")
    return None


def stress_applications(spec: StressSpec, task: TaskSpec, seed: int = 0) -> list[Condition]:
    """The calls of ``apply`` the engine's stress grid makes for ``task``: one per condition,
    or for a ``modality_wise`` test one per single modality a subset (or ``all``) is the union
    of (``benchmark_core.evaluation.stress.union_of``); each call once."""
    cells = [Condition(spec.name, str(target), float(level)) for target, level in conditions_of(spec, task, seed)]
    singles = single_targets(cells, task.modality_names)
    calls: dict[tuple[str, float], Condition] = {}
    for c in cells:
        modalities = union_of(spec, c, singles)
        for call in [c] if modalities is None else [Condition(c.test, m, c.level) for m in modalities]:
            calls.setdefault((call.target, call.level), call)
    return list(calls.values())


def _targeted(target: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return names if target == "all" else tuple(target.split("+"))


def check_stress(spec, tasks: Iterable[TaskSpec] | None = None) -> list[str]:
    """Problems with one stress test: every call of ``apply`` the engine's grid would make on
    tiny tasks, made through the engine's own ``corrupt`` (per-condition generator)."""
    where = f"stress test {spec.name!r}"
    signature_problem = _apply_signature_problem(spec.apply)
    if signature_problem:
        return [f"{where}: {signature_problem}"]
    problems: list[str] = []
    any_condition = False
    tasks = list(tasks or (tiny_task(2, "vector"), tiny_task(2, "sequence"), tiny_task(3, "mixed")))
    for task in tasks:
        on = f"{where} on {describe_task(task)}"
        try:
            conditions = conditions_of(spec, task, 0)
        except Exception as exc:
            problems.append(f"{on}: conditions(task) raised {_err(exc)}")
            continue
        if not conditions:
            continue  # e.g. a sequence-only corruption on vector modalities
        any_condition = True
        batch = tiny_batch(task)
        stats = {m.name: torch.ones(m.dim) for m in task.modalities}
        names = task.modality_names
        try:
            pairs = [(str(target), float(level)) for target, level in conditions]
        except (TypeError, ValueError) as exc:
            problems.append(f"{on}: conditions(task) must return (target, level) pairs ({_err(exc)})")
            continue
        bad_targets = sorted({m for target, _ in pairs for m in _targeted(target, names) if m not in names})
        if bad_targets:
            problems.append(f"{on}: conditions(task) names unknown modalities {bad_targets}; a target is a "
                            "modality name, a '+'-joined subset or 'all'")
            continue
        bad_levels = sorted({level for _, level in pairs if not 0 < level <= 1})
        if bad_levels:
            problems.append(f"{on}: condition levels {bad_levels} do not lie in (0, 1]")
            continue
        for condition in stress_applications(spec, task):
            cond = f"{on}, condition ({condition.target!r}, {condition.level:g})"
            try:
                out = corrupt(spec, batch, condition, STRESS_SEED, stats)
                again = corrupt(spec, batch, condition, STRESS_SEED, stats)
            except Exception as exc:
                problems.append(f"{cond}: apply raised {_err(exc)}")
                break
            issue = _stress_output_problem(batch, out, again, _targeted(condition.target, names))
            if issue:
                problems.append(f"{cond}: {issue}")
                break
    if not any_condition and not problems:
        problems.append(f"{where}: conditions(task) returned no (target, level) pairs for any of the "
                        f"tiny tasks ({'; '.join(describe_task(t) for t in tasks)})")
    return problems


def _stress_output_problem(batch: Batch, out: Any, again: Any, targeted: tuple[str, ...]) -> str | None:
    if not isinstance(out, Batch):
        return f"apply returned {type(out).__name__}; it must return a Batch (use batch.replace)"
    if set(out.x) != set(batch.x):
        return f"apply changed the modalities from {sorted(batch.x)} to {sorted(out.x)}"
    for m, clean in batch.x.items():
        x = out.x[m]
        if x.shape[0] != clean.shape[0] or x.shape[-1] != clean.shape[-1] or x.ndim != clean.ndim:
            return (f"apply changed the shape of {m!r} from {tuple(clean.shape)} to {tuple(x.shape)}; batch "
                    "size, feature dim and rank must stay (only a sequence's length may change)")
        mask = out.mask.get(m)
        if (mask is None) != (batch.mask[m] is None):
            return f"apply added or removed the step mask of {m!r}"
        if mask is not None and tuple(mask.shape) != tuple(x.shape[:2]):
            return f"the mask of {m!r} has shape {tuple(mask.shape)}, the data {tuple(x.shape)}"
        if tuple(out.present[m].shape) != (clean.shape[0],):
            return f"present[{m!r}] must have shape ({clean.shape[0]},)"
        if not _finite(x):
            return f"apply produced NaN or infinite values in {m!r}"
        if m not in targeted and (x.shape != clean.shape or not torch.equal(x, clean)):
            return f"apply changed {m!r}, which the condition does not target"
        if isinstance(again, Batch) and (again.x[m].shape != x.shape or not torch.equal(again.x[m], x)):
            return ("apply is not deterministic given the generator; draw all randomness from the "
                    "generator argument")
    return None


# -- executors ---------------------------------------------------------------------------------

def check_executor(spec) -> list[str]:
    where = f"executor {spec.name!r}"
    if not callable(spec.factory):
        return [f"{where}: factory is not callable; it must be callable(**options) returning an Executor"]
    try:
        inspect.signature(spec.factory).bind(registry=None, workers=None, address=None, gpus=0.0)
    except TypeError:
        return [f"{where}: factory does not accept the options bench run passes (registry, workers, "
                "address, gpus); add **options to its signature"]
    except ValueError:
        pass  # no signature available (builtin): nothing to check
    return []


# -- plugin resolution -------------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entry_points_of(name: str) -> list[str]:
    """Entry-point names in the ``fusebench`` group matching ``name`` as an entry-point or a
    distribution name."""
    matches = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        if ep.name == name or (dist_name and _norm(dist_name) == _norm(name)):
            matches.append(ep.name)
    return list(dict.fromkeys(matches))


def _plugins_in(registry: Registry, name: str) -> list[str]:
    names = []
    for entry in registry.plugin_report():
        if entry["name"] == name or (entry["distribution"] and _norm(entry["distribution"]) == _norm(name)):
            names.append(entry["name"])
    return names


def _fails(factory: Callable[..., Registry], **kwargs: Any) -> BaseException | None:
    try:
        factory(**kwargs)
    except Exception as exc:
        return exc
    return None


def _registry_without_broken(name: str, exc: BaseException, report: ValidationReport,
                             factory: Callable[..., Registry]) -> Registry | None:
    """The full registry failed to build: find the entry points that fail on their own.  If
    the plugin under test is one, that is its problem (returns None); otherwise validate it
    with the broken ones blocked (a note says so)."""
    eps = entry_points_of(name)
    if not eps:
        raise FuseBenchError(f"Could not load the installed plugins ({_err(exc).rstrip('.')}), and no "
                             f"plugin named {name!r} is installed.") from exc
    report.entry_points = eps
    own = _fails(factory, load=eps)
    if own is not None:
        report.problems.append(f"plugin {name!r} fails while registering: {own}")
        return None
    others = sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)} - set(eps))
    broken = [ep for ep in others if _fails(factory, load=[ep]) is not None]
    try:
        registry = factory(block=broken)
    except Exception:
        raise FuseBenchError(f"Could not load the installed plugins: {_err(exc).rstrip('.')}. Fix or block "
                             "the plugin named in that message (FUSEBENCH_BLOCK_PLUGINS).") from exc
    if broken:
        report.notes.append(f"other installed plugins fail to load and were left out: {', '.join(broken)} "
                            f"({_err(exc)})")
    return registry


def validate_plugin(name: str, registry: Registry | None = None,
                    registry_factory: Callable[..., Registry] = build_registry) -> ValidationReport:
    """Check every registration of plugin ``name`` (entry-point name as `bench plugins` shows it,
    or a distribution name).  Raises FuseBenchError when no such plugin is installed."""
    report = ValidationReport(plugin=name)
    if registry is None:
        try:
            registry = registry_factory()
        except Exception as exc:
            registry = _registry_without_broken(name, exc, report, registry_factory)
            if registry is None:
                return report
    plugins = _plugins_in(registry, name)
    if not plugins:
        known = sorted(e["name"] for e in registry.plugin_report())
        dists = sorted({e["distribution"] for e in registry.plugin_report() if e["distribution"]})
        raise FuseBenchError(f"No plugin named {name!r} is loaded. Plugins: {', '.join(known)}; "
                             f"distributions: {', '.join(dists)}. See `bench plugins`.")
    report.entry_points = plugins
    entries = [e for e in registry.plugin_report() if e["name"] in plugins]
    report.distribution, report.version = entries[0]["distribution"], entries[0]["version"]
    # The registry leaves out installed plugins that fail to load and says why.
    report.problems += [e["error"] for e in entries if "error" in e]
    others = [f.plugin for f in registry.failures if f.plugin not in plugins]
    if others:
        report.notes.append(f"other installed plugins fail to load and were left out: {', '.join(others)}")
    for kind in KINDS:
        report.checked[kind] = [reg.spec.name for reg in registry.items(kind) if reg.plugin in plugins]
    if not any(report.checked.values()):
        if not report.problems:
            report.problems.append(f"plugin {name!r} registered nothing: check that its functions are "
                                   "decorated with @hookimpl and named like the hooks (register_methods, ...)")
        return report
    for method in report.checked["methods"]:
        report.problems += check_method(registry.method(method))
    for dataset in report.checked["datasets"]:
        report.problems += check_dataset(registry.dataset(dataset), registry, report.notes)
    for metric in report.checked["metrics"]:
        report.problems += check_metric(registry.metric(metric))
    for stress in report.checked["stress"]:
        report.problems += check_stress(registry.stress_test(stress))
    for executor in report.checked["executors"]:
        report.problems += check_executor(registry.executor(executor))
    return report
