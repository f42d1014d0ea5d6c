"""The driver: plan (methods x datasets x seeds under one Budget), skip what is finished,
hand the rest to an executor, and record every result in MLflow as it arrives."""

from __future__ import annotations

import contextlib
import difflib
import json
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark_core import __version__
from benchmark_core.engine.data import DatasetTensors, load_tensors
from benchmark_core.errors import FuseBenchError
from benchmark_core.plugins import Registry
from benchmark_core.provenance import git_sha, plugin_versions
from benchmark_core.record import RunResult
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.store import sqlite_path
from benchmark_core.suite.claims import Claims
from benchmark_core.suite.runner import resolve_hparams
from benchmark_core.tracking import Tracker


def parse_assignments(items: Sequence[str], flag: str, shape: str) -> dict[str, dict[str, Any]]:
    """``["lr=1", "tensor.rank=4"]`` -> {"*": {"lr": 1}, "tensor": {"rank": 4}} (JSON values, else
    the text); ``flag`` and ``shape`` (e.g. ``method.key=value``) name what a bad item was given to."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        owner, _, name = key.strip().rpartition(".")
        if not eq or not name:
            raise FuseBenchError(f"{flag} {item!r} must look like {shape}.")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(owner or "*", {})[name] = value
    return out


def parse_hparams(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--hparam`` items: ``key=value`` (every selected method with ``key``) or ``method.key=value``."""
    return parse_assignments(items, "--hparam", "key=value or method.key=value (e.g. tensor.tensor_dim=8)")


def parse_dataset_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--dataset-option`` items, each ``dataset.key=value`` (an option belongs to one dataset)."""
    example = "DATASET.KEY=VALUE (e.g. synthetic-xor.n=300 or mosi.data_dir=/data)"
    parsed = parse_assignments(items, "--dataset-option", example)
    if "*" in parsed:
        keys = ", ".join(sorted(parsed["*"]))
        raise FuseBenchError(f"--dataset-option {keys} names no dataset: use {example}.")
    return parsed


def canonical_keys(registry: Registry, kind: str,
                   values: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``values`` keyed by registered name: an alias or another case of a name (``TFN.rank``) is
    the entry of the name it stands for, merged with it; ``*`` and unknown keys stay as given
    (the caller says what is wrong with them)."""
    out: dict[str, dict[str, Any]] = {}
    for key, entries in values.items():
        name = key if key == "*" else registry.canonical(kind, key) or key
        out.setdefault(name, {}).update(entries)
    return out


def check_dataset_options(registry: Registry, datasets: Sequence[str],
                          options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``--dataset-option`` values keyed by registered dataset name, checked before anything is
    planned or written: each names a selected dataset and one of the options it declares (its
    ``defaults``; a dataset that declares none is left to check its own)."""
    options = canonical_keys(registry, "datasets", options)
    for name, values in options.items():
        if name not in datasets:
            registry.resolve("datasets", name, "--dataset-option")  # unknown anywhere: did-you-mean
            raise FuseBenchError(f"--dataset-option names dataset {name!r}, which is not in --datasets "
                                 f"{list(datasets)}; add it to --datasets or drop the option.")
        accepted = sorted(registry.dataset(name).defaults)
        unknown = sorted(set(values) - set(accepted))
        if accepted and unknown:
            close = {k: difflib.get_close_matches(k, accepted, n=1, cutoff=0.6) for k in unknown}
            hints = "".join(f" Did you mean {name}.{c[0]}?" for c in close.values() if c)
            raise FuseBenchError(
                f"--dataset-option {', '.join(f'{name}.{k}' for k in unknown)}: dataset {name!r} has no such "
                f"option.{hints} It accepts: {', '.join(accepted)} (--dataset-option {name}.KEY=VALUE). "
                "Nothing was run or recorded."
            )
    return options


# Reference methods every analysed suite contains: ``additive`` (what EMAP and every family are
# compared with) and ``late`` (the reference curve of effective robustness).
BASELINES = ("additive", "late")


def with_baselines(registry: Registry, methods: Sequence[str]) -> list[str]:
    """``methods`` plus the registered baselines it lacks (appended, order kept)."""
    return list(methods) + [b for b in BASELINES if b not in methods and b in registry.names("methods")]


class PreflightError(FuseBenchError):
    """A selected dataset cannot be loaded: the command stops before anything is written."""


def preflight(registry: Registry, datasets: Sequence[str],
              dataset_options: Mapping[str, Mapping[str, Any]] | None = None,
              on_note: Callable[[str], None] | None = None) -> dict[str, tuple[dict[str, Any], DatasetTensors]]:
    """Load (or find in the cache) every selected dataset once, before any run is planned.

    A dataset that cannot load stops the command with its own paragraph (all of them, if
    several fail), instead of failing each of its runs one by one; data notes (non-finite
    feature values replaced) are reported here, once per dataset.  Returns each dataset's
    resolved options and tensors.
    """
    loaded, problems = {}, []
    for name in datasets:
        dataset = registry.dataset(name)
        options = {**dataset.defaults, **(dataset_options or {}).get(name, {})}
        try:
            tensors = load_tensors(dataset, options, reload=True)
        except FuseBenchError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:
            origin = registry.dist_version("datasets", name)
            problems.append(f"dataset {name!r} could not be loaded: {type(exc).__name__}: {exc}. Fix the data or "
                            f"the dataset plugin ({origin}), or leave {name} out of --datasets.")
            continue
        loaded[name] = (options, tensors)
        replaced = {m: n for m, n in tensors.report.get("nonfinite_replaced", {}).items() if n}
        if replaced and on_note:
            on_note(f"{name}: replaced non-finite feature values with 0 (count per modality: {replaced}); "
                    "every run logs them as data/nonfinite_replaced/*")
    if problems:
        raise PreflightError("\n\n".join(problems) + (
            "\n\nNothing was run or recorded." if len(problems) > 1 else " Nothing was run or recorded."))
    return loaded


def make_plan(registry: Registry, methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int],
              budget: Budget, hparams: Mapping[str, Mapping[str, Any]] | None = None,
              dataset_options: Mapping[str, Mapping[str, Any]] | None = None,
              evaluation: Mapping[str, Any] | None = None,
              on_skip: Callable[[str], None] | None = None,
              pinned: Collection[str] | None = None) -> list[RunSpec]:
    """Every supported (dataset, method, seed) as a RunSpec with resolved hyper-parameters.

    ``pinned`` names the budget fields the user set; every other field takes the dataset's
    budget defaults (``DatasetSpec.budget``), the same for every method on that dataset.
    ``None`` (the library default) uses ``budget`` exactly as given everywhere.

    Every dataset is loaded first (:func:`preflight`: one that cannot load stops the plan),
    to check each method supports its modalities (an unsupported pair is reported through
    ``on_skip`` and left out) and to fix the run's data identity: the resolved loader options
    and the content hash of what they loaded.  Repeated seeds are planned once.
    """
    if not seeds:
        raise FuseBenchError("The seed list is empty; pass --seeds 0 or --seeds 0,1,2.")
    # Aliases and other spellings become registered names here, so a run records one name.
    methods = list(dict.fromkeys(registry.resolve("methods", m) for m in methods))
    datasets = list(dict.fromkeys(registry.resolve("datasets", d) for d in datasets))
    dataset_options = canonical_keys(registry, "datasets", dataset_options or {})
    hparams = canonical_keys(registry, "methods", hparams or {})
    unknown = sorted(set(hparams) - {"*"} - set(methods))
    if unknown:
        raise FuseBenchError(f"--hparam names method(s) {unknown} that are not in --methods {list(methods)}.")
    shared = dict(hparams.get("*", {}))
    unused_shared = set(shared)
    loaded = preflight(registry, datasets, dataset_options, on_skip)
    specs = []
    for dataset_name in datasets:
        options, tensors = loaded[dataset_name]
        dataset_budget = budget if pinned is None else budget.with_defaults(
            registry.dataset(dataset_name).budget, pinned)
        for method_name in methods:
            method = registry.method(method_name)
            reason = method.supports(tensors.task)
            if reason:
                if on_skip:
                    on_skip(f"{method_name} on {dataset_name}: {reason}")
                continue
            accepted = resolve_hparams(method, {})  # every hyper-parameter the method takes
            overrides = {k: v for k, v in shared.items() if k in accepted}
            unused_shared -= set(overrides)
            resolved = resolve_hparams(method, {**overrides, **hparams.get(method_name, {})})
            versions = {
                "fusebench": __version__,
                "method": registry.dist_version("methods", method_name),
                "dataset": registry.dist_version("datasets", dataset_name),
            }
            for seed in seeds:
                specs.append(RunSpec(method_name, dataset_name, int(seed), dataset_budget, resolved, options,
                                     evaluation or {}, versions, tensors.data_hash))
    if unused_shared and specs:
        raise FuseBenchError(f"--hparam {sorted(unused_shared)}: no selected method has such a hyper-parameter.")
    return unique_specs(specs, on_skip)


def unique_specs(specs: Sequence[RunSpec], on_skip: Callable[[str], None] | None = None) -> list[RunSpec]:
    """The specs with repeats (same ``spec_hash``, e.g. ``--seeds 0,0``) removed, order kept: a
    run is one unit of work and one MLflow record, never trained twice in one plan."""
    seen: dict[str, RunSpec] = {}
    repeats: list[str] = []
    for spec in specs:
        if spec.spec_hash in seen:
            repeats.append(spec.label)
        else:
            seen[spec.spec_hash] = spec
    if repeats and on_skip:
        on_skip(f"{len(repeats)} repeated run(s) planned once (identical spec, e.g. a seed listed twice): "
                f"{', '.join(dict.fromkeys(repeats))}")
    return list(seen.values())


@contextlib.contextmanager
def deferred_interrupts():
    """Hold Ctrl-C/SIGTERM until an MLflow write completes, so an interrupt never leaves a run
    half-recorded (e.g. created but not yet known to the driver, hence never closed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {sig: signal.signal(sig, lambda s, f: received.append(s)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            raise KeyboardInterrupt


@dataclass
class SuiteReport:
    planned: int
    skipped: list[RunSpec] = field(default_factory=list)
    results: list[RunResult] = field(default_factory=list)
    # runs another live driver claimed on the same store: it trains them, this one does not
    busy: list[RunSpec] = field(default_factory=list)
    parent_run_id: str | None = None  # the MLflow parent run of this call (None: nothing was left to train)

    @property
    def failures(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]


class SuiteAborted(FuseBenchError):
    """The driver could not go on (e.g. the store became unwritable); finished runs are kept."""

    exit_code = 1


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain (a sqlite error under SQLAlchemy under MLflow)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _aborted(tracker: Tracker, exc: BaseException, finished: int) -> SuiteAborted:
    """One paragraph for a driver that stopped on an error: the real cause, not 'interrupted'."""
    root = _root_cause(exc)
    cause = _first_line(root) if root is exc else f"{_first_line(root)} (under {type(exc).__name__})"
    hint = ""
    text = f"{exc} {root}".lower()
    if isinstance(root, OSError) or any(w in text for w in ("disk", "full", "readonly", "read-only", "i/o")):
        path = sqlite_path(tracker.uri)
        where = path.parent if path is not None else Path.cwd()
        try:
            free = f"{shutil.disk_usage(where).free / 2**20:.0f} MiB free"
        except OSError:
            free = "free space unknown"
        hint = (f" Writing to the store failed: check the disk holding {where} ({free}), a file-size limit "
                "(`ulimit -f`) and write permission.")
    return SuiteAborted(
        f"The suite stopped: {cause}.{hint} The {finished} run(s) finished before are kept in "
        f"{tracker.uri}; fix the cause and re-run the same command to resume."
    )


def run_suite(registry: Registry, specs: Sequence[RunSpec], tracker: Tracker, executor,
              command: str = "bench run", echo: Callable[[str], None] = print,
              progress=None, on_result: Callable[[RunResult], None] | None = None,
              claims: Claims | None = None) -> SuiteReport:
    """Execute the specs not already finished in the tracker; log each result as it arrives.

    Runs are claimed before they are handed to the executor (:mod:`benchmark_core.suite.claims`), so
    a second driver on the same store trains only what this one did not claim."""
    specs = unique_specs(specs, echo)
    report = SuiteReport(planned=len(specs))
    finished = tracker.finished_hashes()
    candidates = [spec for spec in specs if spec.spec_hash not in finished]
    report.skipped = [spec for spec in specs if spec.spec_hash in finished]
    claims = claims or Claims(tracker.uri)
    try:
        with deferred_interrupts():
            taken = claims.acquire([(spec.spec_hash, spec.label) for spec in candidates]) if candidates else {}
        finished = tracker.finished_hashes() if candidates else finished  # another driver may just have finished some
        todo = []
        for spec in candidates:
            if spec.spec_hash in taken:
                report.busy.append(spec)
            elif spec.spec_hash in finished:
                report.skipped.append(spec)
            else:
                todo.append(spec)
        claims.release([spec.spec_hash for spec in report.skipped])
        if report.skipped:
            echo(f"Skipping {len(report.skipped)} of {len(specs)} runs already finished in "
                 f"{tracker.uri} (same spec_hash); nothing to retrain for them.")
        if report.busy:
            holders = sorted({f"driver pid {h.pid} on {h.host}" for h in (taken[s.spec_hash] for s in report.busy)})
            echo(f"Leaving {len(report.busy)} run(s) to another `bench run` on this store that claimed them "
                 f"({'; '.join(holders)}); re-run this command after it stops to pick up any it did not finish.")
        if todo:
            _execute(registry, todo, specs, tracker, executor, command, echo, progress, on_result, report, claims)
    finally:
        with deferred_interrupts():
            claims.release_all()
    return report


def _execute(registry, todo, planned, tracker, executor, command, echo, progress, on_result, report, claims) -> None:
    closed = tracker.recover_interrupted()
    if closed:
        echo(f"Marked {len(closed)} run(s) interrupted by an earlier killed `bench run` as KILLED: "
             f"{', '.join(closed)}; they will be run again now.")
    with deferred_interrupts():
        parent = tracker.start_parent(command, {"fusebench.version.fusebench": __version__,
                                                "fusebench.git_sha": git_sha() or "unknown",
                                                "fusebench.plugins": json.dumps(plugin_versions(registry))[:5000]})
        report.parent_run_id = parent
        tracker.log_plan(parent, [{"spec_hash": s.spec_hash, "method": s.method, "dataset": s.dataset,
                                   "seed": s.seed, "family": registry.method(s.method).family} for s in planned])
    children: dict[str, str] = {}

    def on_start(spec: RunSpec) -> None:
        family = registry.method(spec.method).family
        with deferred_interrupts():
            children[spec.spec_hash] = tracker.start_child(parent, spec, family)

    status, reason, error = "FINISHED", "", None
    try:
        for result in executor.run(todo, on_start, progress):
            if result.spec.spec_hash not in children:  # executor did not announce the start
                on_start(result.spec)
            with deferred_interrupts():
                tracker.log_result(children[result.spec.spec_hash], result)
                del children[result.spec.spec_hash]
                claims.release([result.spec.spec_hash])
            report.results.append(result)
            if on_result:
                on_result(result)
    except KeyboardInterrupt:
        status, reason = "KILLED", "interrupted (Ctrl-C/SIGTERM) before the run finished"
        raise
    except Exception as exc:
        status = "FAILED"
        error = _aborted(tracker, exc, sum(r.ok for r in report.results))
        reason = f"the driver stopped before the run finished: {type(exc).__name__}: {str(exc).strip()[-300:]}"
        raise error from exc
    finally:
        with deferred_interrupts():
            try:
                for run_id in children.values():  # started but never finished
                    try:
                        (tracker.mark_killed if status == "KILLED" else tracker.mark_failed)(run_id, reason)
                    except Exception:
                        if error is None:
                            raise
                if report.failures and status == "FINISHED":
                    status = "FAILED"
                tracker.end_run(parent, status)
            except Exception:
                if error is None:
                    raise
            finally:
                executor.shutdown()


def print_failures(report: SuiteReport, echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> None:
    if not report.failures:
        return
    echo(f"{len(report.failures)} of {len(report.results)} runs did not finish:")
    for r in report.failures:
        echo(f"  [{r.status}] {r.spec.label}: {r.error}")
