"""``bench validate-plugin NAME``: exercise everything one plugin registered on tiny inputs.

For each registration of the plugin:

* methods: build on tiny synthetic tasks (vector, sequence and mixed modalities; 2 and 3
  modalities, or the method's minimum; multiclass and regression targets) wherever
  ``spec.supports(task)`` allows; one training step (forward + backward) on a tiny batch;
  the output must be (batch, n_outputs) and finite, every gradient finite; ``encode`` must
  keep modalities independent (changing one modality's input may not change another's
  encoding), which EMAP and the stress grid rely on; in eval mode a sample's output must not
  depend on the other rows of its batch (evaluation batches are not the training batches);
* datasets: load with their defaults, convert with ``benchmark_core.data.to_tensors``, check
  the declared metrics exist, accept the target kind and score random predictions;
* metrics: a finite float on random inputs for each declared target kind;
* stress tests: every condition on tiny tasks; apply to a tiny batch keeping batch size,
  feature dims and modalities, deterministic given the generator, untouched modalities
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

from .data import Batch, to_tensors
from .errors import DataError, FuseBenchError
from .plugins import ENTRY_POINT_GROUP, KINDS, Registry, build_registry
from .specs import MethodSpec, ModalitySpec, TargetSpec, TaskSpec

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
    from .models import FusionModel

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


def check_method(spec: MethodSpec, tasks: Iterable[TaskSpec] | None = None) -> list[str]:
    """Problems with one method (empty list: it builds, trains a step and encodes correctly)."""
    from .models import FusionModel, Output, prediction_problem
    from .runner import resolve_hparams
    from .training import task_loss

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
                            "benchmark_core.models.FusionModel (subclass it or RepresentationFusion)")
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
                            "benchmark_core.models.Output(pred=...)")
            continue
        shape_problem = prediction_problem(out.pred, batch.size, task.target)
        if shape_problem:
            problems.append(f"{on}: {shape_problem}")
            continue
        if not _finite(out.pred):
            problems.append(f"{on}: the output contains NaN or infinite values")
            continue
        try:
            loss = task_loss(out.pred, batch.y, task.target) + out.aux_loss
            model.zero_grad(set_to_none=True)
            loss.backward()
        except Exception as exc:
            problems.append(f"{on}: backward pass failed ({_err(exc)})")
            continue
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not params:
            problems.append(f"{on}: the model has no trainable parameters")
            continue
        grads = [(n, p.grad) for n, p in params if p.grad is not None]
        if not grads:
            problems.append(f"{on}: no parameter received a gradient from the loss (is the output "
                            "detached from the parameters?)")
            continue
        bad = [n for n, g in grads if not _finite(g)]
        if bad:
            problems.append(f"{on}: non-finite gradients in {', '.join(bad[:3])}")
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

def _apply_stress(spec, batch: Batch, target: str, level: float, seed: int, stats):
    generator = torch.Generator().manual_seed(seed)
    try:
        n_args = len([p for p in inspect.signature(spec.apply).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        varargs = any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(spec.apply).parameters.values())
    except (TypeError, ValueError):
        n_args, varargs = 5, False
    if n_args >= 5 or varargs:
        return spec.apply(batch, target, level, generator, stats)
    return spec.apply(batch, target, level, generator)


def _conditions(spec, task: TaskSpec) -> list[tuple[str, float]]:
    if callable(getattr(spec, "conditions", None)):
        return [(str(t), float(lv)) for t, lv in spec.conditions(task)]
    levels = getattr(spec, "levels", (1.0,))  # older StressSpec shape: one curve per modality
    return [(m, float(lv)) for m in task.modality_names for lv in levels]


def _targeted(target: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return names if target == "all" else tuple(target.split("+"))


def check_stress(spec, tasks: Iterable[TaskSpec] | None = None) -> list[str]:
    where = f"stress test {spec.name!r}"
    problems: list[str] = []
    any_condition = False
    tasks = list(tasks or (tiny_task(2, "vector"), tiny_task(2, "sequence"), tiny_task(3, "mixed")))
    for task in tasks:
        on = f"{where} on {describe_task(task)}"
        try:
            conditions = _conditions(spec, task)
        except Exception as exc:
            problems.append(f"{on}: conditions(task) raised {_err(exc)}")
            continue
        if not conditions:
            continue  # e.g. a sequence-only corruption on vector modalities
        any_condition = True
        batch = tiny_batch(task)
        stats = {m.name: torch.ones(m.dim) for m in task.modalities}
        names = task.modality_names
        bad_targets = sorted({m for target, _ in conditions for m in _targeted(target, names) if m not in names})
        if bad_targets:
            problems.append(f"{on}: conditions(task) names unknown modalities {bad_targets}; a target is a "
                            "modality name, a '+'-joined subset or 'all'")
            continue
        if getattr(spec, "modality_wise", False):  # the engine applies it one modality at a time
            conditions = list(dict.fromkeys((m, level) for target, level in conditions
                                            for m in _targeted(target, names)))
        for target, level in conditions:
            cond = f"{on}, condition ({target!r}, {level:g})"
            if not (0 < level <= 1):
                problems.append(f"{cond}: level must lie in (0, 1]")
                break
            try:
                out = _apply_stress(spec, batch, target, level, 7, stats)
                again = _apply_stress(spec, batch, target, level, 7, stats)
            except Exception as exc:
                problems.append(f"{cond}: apply raised {_err(exc)}")
                break
            issue = _stress_output_problem(batch, out, again, _targeted(target, names))
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
