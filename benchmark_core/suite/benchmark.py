"""Run a benchmark from Python: the one entry that ``bench run``, ``bench tune`` and ``bench publish`` call.

:func:`run_benchmark` does what ``bench run`` does once its flags are read: check every option
(budget, names, dataset options, evaluation, executor, store) before anything is loaded or
written, plan methods x datasets x seeds, estimate the time, choose the executor, run the suite
(finished runs are skipped) and return a :class:`BenchmarkSummary`.  :func:`tune_benchmark` does
the same for ``bench tune``.  Neither prints: what they have to say goes to a :class:`Reporter`
(the command line passes one that prints and draws progress bars; the default one logs to the
``fusebench`` logger), so a notebook, a script or ``bench publish`` can run a suite without
building a command line.

The heavy stack (torch, MLflow, pandas) is imported only when a benchmark runs, so importing
this module (as the command line does at start-up) stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmark_core.errors import FuseBenchError
from benchmark_core.specs import Budget, SpecError, check_seed

if TYPE_CHECKING:
    from benchmark_core.plugins import Registry
    from benchmark_core.record import RunResult
    from benchmark_core.specs import RunSpec
    from benchmark_core.suite.plan import SuiteReport
    from benchmark_core.suite.tuning import TuningReport

logger = logging.getLogger("fusebench")

# The embedded suite: what a benchmark runs when no datasets are named.
DEFAULT_DATASETS = ("mfeat", "basicmotions", "synthetic-redundant", "synthetic-unique", "synthetic-mixed",
                    "synthetic-xor")
DEFAULT_SEEDS = (0, 1, 2)
# bench tune trains its trials on this seed: not one of the run seeds, so the chosen configuration's
# reported runs are fresh trainings, not the trial that won the selection.
DEFAULT_TUNE_SEED = 1000
# Below this predicted suite time, spawning worker processes (a few seconds each, to import
# torch) costs more than it saves: the automatic executor stays serial.
AUTO_PARALLEL_SECONDS = 60.0


@dataclass(frozen=True)
class BenchmarkOptions:
    """Everything ``bench run`` reads from its flags, as values.  Names are matched like the flags
    (any case, aliases, ``"all"``); errors name the flag a user of the command line would fix."""

    methods: str | Sequence[str] = "all"            # --methods: "all", a comma list or a list
    datasets: str | Sequence[str] | None = None     # --datasets (None: DEFAULT_DATASETS that are registered)
    seeds: Sequence[int] = DEFAULT_SEEDS            # --seeds
    # The Budget fields set explicitly (--epochs, --lr, ...): they win over a dataset's own budget
    # defaults (DatasetSpec.budget); the fields left out take the dataset's, then Budget's defaults.
    budget: Mapping[str, Any] = field(default_factory=dict)
    # --hparam: method (or "*" for every method that has the key) -> {key: value}
    hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # --dataset-option: dataset -> {option: value}
    dataset_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    data_dir: str | None = None                     # --data-dir (exported as $FUSEBENCH_DATA_DIR)
    stress: bool = True                             # not --no-stress
    emap: bool = True                               # not --no-emap
    emap_samples: int | None = None                 # --emap-samples
    executor: str | None = None                     # --executor (None: chosen from the estimate)
    workers: int | None = None                      # --workers
    address: str | None = None                      # --address (ray)
    gpus: float = 0.0                               # --gpus (ray)
    tracking_uri: str | None = None                 # --tracking-uri (None: $MLFLOW_TRACKING_URI, then sqlite)
    suite: str = "default"                          # --suite
    command: str | None = None                      # recorded on the parent runs (None: "bench run"/"bench tune")


class Reporter:
    """Hears what a benchmark has to say while it runs.  This default one logs the messages and
    notes (logger ``fusebench``) and draws nothing; subclass it to print or draw progress.

    ``start`` opens the run phase (``seconds``: the predicted run time of everything planned,
    ``runs``: how many); then every run ends in ``finished`` (trained, ok or not) or ``skipped``
    (found finished, or left to another driver), each with its predicted ``cost`` in seconds;
    ``close`` ends the phase, also when the suite stops on an error."""

    def message(self, text: str) -> None:
        """A line of the benchmark's account (the plan, the estimate, what was skipped)."""
        logger.info(text)

    def note(self, text: str) -> None:
        """A side remark (a method that cannot run on a dataset, a repeated seed)."""
        logger.info("note: %s", text)

    def start(self, seconds: float, runs: int) -> None:
        pass

    def epochs(self, spec: RunSpec) -> Callable[[int, dict[str, float]], None] | None:
        """A per-epoch callback for one training run (``None``: no per-epoch progress)."""
        return None

    def finished(self, result: RunResult, cost: float) -> None:
        if not result.ok:
            logger.warning("[%s] %s: %s", result.status, result.spec.label, result.error)

    def skipped(self, spec: RunSpec, cost: float) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class BenchmarkSummary:
    """What :func:`run_benchmark` did.  ``report`` holds every result (``report.failures`` the
    runs that did not finish)."""

    suite: str
    tracking_uri: str
    planned: int
    finished: int               # trained to the end by this call
    failed: int                 # failed or diverged
    skipped: int                # found finished in the store (same spec_hash): not retrained
    busy: int                   # claimed by another driver on the same store: left to it
    parent_run_id: str | None   # the MLflow parent run of this call (None: nothing was left to train)
    report: SuiteReport

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass(frozen=True)
class TuneSummary:
    """What :func:`tune_benchmark` did: the searches, their choices and the chosen configurations'
    runs (``report.finals``)."""

    suite: str
    tracking_uri: str
    trials: int
    seeds: tuple[int, ...]
    report: TuningReport

    @property
    def exit_code(self) -> int:
        return 1 if self.report.finals.failures or self.report.failed_studies else 0


@dataclass
class _Request:
    """The checked options: resolved names, the budget and the fields it pins, the store."""

    registry: Registry
    budget: Budget
    pinned: set[str]
    methods: list[str]
    datasets: list[str]
    dataset_options: dict[str, dict[str, Any]]
    hparams: dict[str, dict[str, Any]]
    evaluation: dict[str, Any]
    executor_spec: Any  # None: chosen from the estimate
    uri: str


def _prepare(options: BenchmarkOptions, reporter: Reporter) -> _Request:
    """Validate the options: budget, names, dataset options, evaluation, executor, store — all
    before anything is loaded or written.  Adds (and says so) the baselines the stress and EMAP
    columns need."""
    from benchmark_core.plugins import get_registry
    from benchmark_core.store import check_store
    from benchmark_core.suite.plan import check_dataset_options, with_baselines
    from benchmark_core.tracking import default_tracking_uri

    registry = get_registry()
    try:
        for seed in options.seeds:
            check_seed(seed)
        explicit = {k: v for k, v in options.budget.items() if v is not None}
        budget = Budget(**explicit)
        if not options.address:  # with an address the runs execute on a cluster, whose GPUs this machine cannot see
            budget.check_device()
    except SpecError as exc:
        raise FuseBenchError(str(exc)) from None
    methods = registry.select("methods", options.methods, "--methods")
    if options.datasets:
        datasets = registry.select("datasets", options.datasets, "--datasets")
    else:
        datasets = [d for d in DEFAULT_DATASETS if d in registry.names("datasets")]
    # Options are checked before anything is planned, loaded or written (no store is created).
    dataset_options = check_dataset_options(registry, datasets,
                                            {k: dict(v) for k, v in options.dataset_options.items()})
    hparams = {k: dict(v) for k, v in options.hparams.items()}
    if options.data_dir:
        # An environment variable, not a RunSpec field: the path differs between machines,
        # the data content hash (recorded per run) is what identifies the data.
        os.environ["FUSEBENCH_DATA_DIR"] = os.path.abspath(options.data_dir)
    evaluation: dict[str, Any] = {"stress": options.stress, "emap": options.emap}
    if options.emap_samples is not None:
        if options.emap_samples < 2:
            raise FuseBenchError(f"--emap-samples must be at least 2, got {options.emap_samples}.")
        evaluation["emap_samples"] = options.emap_samples
    executor_spec = registry.executor(options.executor, "--executor") if options.executor else None
    if options.workers is not None and options.workers < 1:
        raise FuseBenchError(f"--workers must be at least 1, got {options.workers}.")
    if evaluation["stress"] or evaluation["emap"]:
        extended = with_baselines(registry, methods)
        if extended != methods:  # the one place this is said: make_plan and run_suite take the list as is
            reporter.message(f"Adding baseline(s) {extended[len(methods):]}: the stress and EMAP columns compare "
                             "every method with them (use --no-stress --no-emap to skip).")
        methods = extended
    # Everything is validated (and the store probed) before anything is created on disk.
    uri = options.tracking_uri or default_tracking_uri()
    check_store(uri)
    return _Request(registry, budget, set(explicit), methods, datasets, dataset_options, hparams, evaluation,
                    executor_spec, uri)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_executor(predicted_seconds: float, runs: int, threads: int) -> str:
    """``process`` when several runs fit side by side and the suite is long enough to repay
    the workers' start-up, else ``serial`` (the results are identical either way)."""
    parallel = usable_cores() // max(1, threads) >= 2 and runs >= 2 and predicted_seconds >= AUTO_PARALLEL_SECONDS
    return "process" if parallel else "serial"


def _make_executor(request: _Request, options: BenchmarkOptions, predicted_seconds: float, runs: int):
    """The executor (chosen from the estimate unless named) and its worker count."""
    spec = request.executor_spec or request.registry.executor(
        auto_executor(predicted_seconds, runs, request.budget.threads))
    workers = 1 if spec.name == "serial" else (options.workers or usable_cores() // request.budget.threads or 1)
    executor = spec.factory(registry=request.registry, workers=options.workers, address=options.address,
                            gpus=options.gpus)
    return executor, spec.name, workers


def planned_costs(registry: Registry, specs: Sequence[RunSpec]) -> dict[str, float]:
    """Predicted seconds of every planned run (by spec hash), from the shipped cost model."""
    from benchmark_core.engine.data import load_tensors
    from benchmark_core.suite.estimate import CostModel, evaluates, shape_of

    model, shapes = CostModel.shipped(), {}
    costs = {}
    for spec in specs:
        key = (spec.dataset, json.dumps(spec.dataset_options, sort_keys=True, default=str))
        if key not in shapes:  # loaded and cached by the planner already
            shapes[key] = shape_of(load_tensors(registry.dataset(spec.dataset), spec.dataset_options))
        costs[spec.spec_hash] = model.predict(spec.method, shapes[key], spec.budget.epochs, evaluates(spec))
    return costs


def estimate_line(costs: Mapping[str, float], workers: int, executor: str) -> str:
    from benchmark_core.suite.estimate import Estimate, format_duration

    estimate = Estimate(list(costs.values()), workers)
    where = f"{executor} executor, {workers} worker{'s' if workers != 1 else ''}"
    return (f"Estimated time: about {format_duration(estimate.wall)} ({where}; "
            f"{format_duration(estimate.total)} of run time, from the shipped per-method cost model, "
            "measured on a 2-core machine — runs already finished are skipped and take no time).")


def run_benchmark(options: BenchmarkOptions, reporter: Reporter | None = None) -> BenchmarkSummary:
    """Check, plan, estimate and run a benchmark suite; results go to MLflow as they arrive.

    Raises :class:`~benchmark_core.errors.FuseBenchError` (one paragraph naming the option) for
    bad options before anything is written; runs that fail are counted, not raised."""
    from benchmark_core.suite.plan import make_plan, run_suite
    from benchmark_core.tracking import Tracker

    reporter = reporter or Reporter()
    request = _prepare(options, reporter)
    registry = request.registry
    specs = make_plan(registry, request.methods, request.datasets, options.seeds, request.budget, request.hparams,
                      request.dataset_options, request.evaluation, on_skip=reporter.note, pinned=request.pinned)
    tracker = Tracker(request.uri, options.suite)
    reporter.message(f"Planned {len(specs)} runs ({len(request.methods)} methods x {len(request.datasets)} "
                     f"datasets x {len(set(options.seeds))} seeds); tracking at {tracker.uri}, experiment "
                     f"fusebench/{options.suite}.")
    costs = planned_costs(registry, specs)
    executor, name, workers = _make_executor(request, options, sum(costs.values()), len(specs))
    reporter.message(estimate_line(costs, workers, name))
    reporter.start(sum(costs.values()), len(specs))
    try:
        report = run_suite(registry, specs, tracker, executor, options.command or "bench run", echo=reporter.message,
                           progress=reporter.epochs,
                           on_result=lambda result: reporter.finished(result, costs.get(result.spec.spec_hash, 0.0)))
        for spec in (*report.skipped, *report.busy):
            reporter.skipped(spec, costs.get(spec.spec_hash, 0.0))
    finally:
        reporter.close()
    return BenchmarkSummary(
        suite=options.suite, tracking_uri=tracker.uri, planned=report.planned,
        finished=sum(result.ok for result in report.results),  # a failed or diverged run is counted as failed
        failed=len(report.failures), skipped=len(report.skipped), busy=len(report.busy),
        parent_run_id=report.parent_run_id, report=report)


def tune_benchmark(options: BenchmarkOptions, trials: int, tune_seed: int = DEFAULT_TUNE_SEED,
                   reporter: Reporter | None = None) -> TuneSummary:
    """Equal tuning budgets: ``trials`` configurations of every method x dataset trained on
    ``tune_seed`` without stress/EMAP, the best (validation primary metric) then trained on
    ``options.seeds`` with the normal evaluation.  Resumable, like :func:`run_benchmark`."""
    from benchmark_core.suite.estimate import Estimate, format_duration
    from benchmark_core.suite.plan import make_plan
    from benchmark_core.suite.tuning import NO_EVALUATION, make_studies, run_tuning
    from benchmark_core.tracking import Tracker

    if trials < 1:
        raise FuseBenchError(f"--trials must be at least 1, got {trials}: every method gets that many trials "
                             "(trial 0 is its default configuration). Nothing was run or recorded.")
    reporter = reporter or Reporter()
    try:
        check_seed(tune_seed)
    except SpecError as exc:
        raise FuseBenchError(f"--tune-seed: {exc}") from None
    request = _prepare(options, reporter)
    registry = request.registry
    base = make_plan(registry, request.methods, request.datasets, [tune_seed], request.budget,
                     request.hparams, request.dataset_options, NO_EVALUATION, on_skip=reporter.note,
                     pinned=request.pinned)
    studies = make_studies(registry, base, tune_seed)
    seeds = list(dict.fromkeys(options.seeds))
    if tune_seed in seeds:
        reporter.note(f"--tune-seed {tune_seed} is also a run seed: that tuned run retrains the winning trial itself; "
                      "a seed outside --seeds gives fresh runs")
    tracker = Tracker(request.uri, options.suite)
    n = trials
    reporter.message(
        f"Tuning {len(studies)} (method, dataset) pairs ({len(request.methods)} methods x {len(request.datasets)} "
        f"datasets) with {n} trial{'s' * (n != 1)} each ({len(studies) * n} trial runs on seed {tune_seed}, "
        f"no stress/EMAP), then the chosen configurations on seeds {seeds} ({len(studies) * len(seeds)} runs); "
        f"tracking at {tracker.uri}, experiment fusebench/{options.suite}.")
    trial_costs = planned_costs(registry, base)
    finals = [dataclasses.replace(spec, seed=seed, evaluation=request.evaluation) for spec in base for seed in seeds]
    final_costs = planned_costs(registry, finals)
    per_round = list(trial_costs.values())
    predicted = n * sum(per_round) + sum(final_costs.values())
    executor, name, workers = _make_executor(request, options, predicted, len(studies) * (n + len(seeds)))
    wall = n * Estimate(per_round, workers).wall + Estimate(list(final_costs.values()), workers).wall
    reporter.message(
        f"Estimated time: about {format_duration(wall)} ({name} executor, {workers} worker{'s' * (workers != 1)}; "
        f"{format_duration(predicted)} of run time in {n} trial rounds and one round of chosen configurations, "
        "from the shipped per-method cost model at the default configurations — trials with other widths or "
        "depths take longer or shorter, finished trials and runs are skipped and take no time).")
    by_pair = {(s.method, s.dataset): c for s, c in zip(base, per_round, strict=True)}
    final_by_pair = {(s.method, s.dataset): c for s, c in zip(finals, final_costs.values(), strict=True)}

    def cost(spec: RunSpec) -> float:
        table = final_by_pair if spec.tuning.get("role") == "tuned" else by_pair
        return table.get((spec.method, spec.dataset), 0.0)

    reporter.start(predicted, len(studies) * (n + len(seeds)))
    try:
        report = run_tuning(registry, studies, n, seeds, request.evaluation, tracker, executor,
                            options.command or "bench tune",
                            echo=reporter.message, progress=reporter.epochs,
                            on_result=lambda result: reporter.finished(result, cost(result.spec)), cost=cost,
                            on_skipped=lambda spec: reporter.skipped(spec, cost(spec)))
    finally:
        reporter.close()
    return TuneSummary(suite=options.suite, tracking_uri=tracker.uri, trials=n, seeds=tuple(seeds), report=report)
