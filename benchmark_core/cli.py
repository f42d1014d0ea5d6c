"""The ``bench`` command line: run, list, plugins, leaderboard."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import FuseBenchError
from .inspection import add_data_parser, cmd_data
from .plots import add_plot_parser, cmd_plot
from .publish import add_publish_parser, cmd_publish
from .specs import Budget, SpecError

DEFAULT_DATASETS = ("mfeat", "basicmotions", "synthetic-redundant", "synthetic-unique", "synthetic-mixed",
                    "synthetic-xor")
LIST_KINDS = {"methods": "methods", "datasets": "datasets", "metrics": "metrics", "stress": "stress",
              "executors": "executors"}
DEFAULT_SEEDS = (0, 1, 2)
# bench tune trains its trials on this seed: not one of the run seeds, so the chosen configuration's
# reported runs are fresh trainings, not the trial that won the selection.
DEFAULT_TUNE_SEED = 1000

# Every environment variable the CLI reads (docs/cli.md has the same list): `bench --help` and
# `bench run --help` print them, so a setting inherited from a shell profile can be found.
ENVIRONMENT = (
    ("MLFLOW_TRACKING_URI", "store when --tracking-uri is not given (default: sqlite:///mlflow.db here)"),
    ("FUSEBENCH_DATA_DIR", "real datasets' root when --data-dir is not given (default: ~/.fusebench/data)"),
    ("FUSEBENCH_CACHE_DIR", "converted-data cache (default: ~/.fusebench/cache)"),
    ("FUSEBENCH_LOAD_PLUGINS", "comma list: load only these plugin entry points"),
    ("FUSEBENCH_BLOCK_PLUGINS", "comma list: load every plugin entry point but these"),
)
# ... and those it sets when they are not set already.
ENVIRONMENT_DEFAULTS = (
    ("HF_HUB_OFFLINE", "1", "never fetch data from a hub"),
    ("HF_DATASETS_OFFLINE", "1", "never fetch data from a hub"),
    ("MLFLOW_ENABLE_ASYNC_LOGGING", "false", "each result is stored before the next run"),
    ("OMP_NUM_THREADS", "1", "process executor workers; --threads pins torch"),
    ("MKL_NUM_THREADS", "1", "process executor workers"),
    ("CUBLAS_WORKSPACE_CONFIG", ":4096:8", "deterministic CUDA matrix products"),
)


def environment_epilog() -> str:
    width = max(len(name) for name, _ in ENVIRONMENT)
    lines = [f"  {name.ljust(width)}  {text}" for name, text in ENVIRONMENT]
    defaults = [f"{name}={value}" for name, value, _ in ENVIRONMENT_DEFAULTS]
    return ("environment variables:\n" + "\n".join(lines) + "\n  set unless given: " + " ".join(defaults[:3])
            + "\n                    " + " ".join(defaults[3:]) + "\n\nDocumentation: docs/cli.md")


def _int_list(text: str) -> list[int]:
    """``--seeds``: refused here, by argparse, so a bad list fails before anything is loaded or created."""
    from .specs import check_seed

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"no seeds given ({text!r}); pass e.g. --seeds 0 or --seeds 0,1,2")
    for value in values:
        try:
            check_seed(value)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return values


def _seed(text: str) -> int:
    """``--tune-seed``: one seed, refused like a bad ``--seeds`` item."""
    values = _int_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one seed, got {text!r}")
    return values[0]


def _add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="default",
                   help="suite name; one MLflow experiment per suite (default: default)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")


BUDGET_FLAGS = (
    ("--epochs", int, "training epochs"),
    ("--batch-size", int, "batch size"),
    ("--optimizer", str, "adam, adamw or sgd"),
    ("--lr", float, "learning rate"),
    ("--weight-decay", float, "weight decay"),
    ("--patience", int, "early-stopping patience in epochs (0: off)"),
    ("--grad-clip", float, "max gradient norm (0: off)"),
    ("--threads", int, "torch intra-op threads per run"),
    ("--device", str, "cpu or cuda[:i]"),
)


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The arguments of ``bench run``, shared by ``bench tune`` (one definition, one validation)."""
    run.add_argument("--methods", default="all",
                     help="'all' or a comma list of names or aliases, any case (default: all; "
                          "see `bench list methods`)")
    run.add_argument("--datasets", default=None,
                     help=f"comma list (default: the embedded suite {','.join(DEFAULT_DATASETS)})")
    run.add_argument("--seeds", type=_int_list, default=list(DEFAULT_SEEDS),
                     help=f"comma list of run seeds (default: {','.join(map(str, DEFAULT_SEEDS))})")
    # Budget flags default to None so that the flags a user sets can be told apart: those win
    # over a dataset's own budget defaults (DatasetSpec.budget), the others do not.
    defaults = Budget()
    for flag, kind, text in BUDGET_FLAGS:
        field_name = flag[2:].replace("-", "_")
        extra = {"choices": ["adam", "adamw", "sgd"]} if field_name == "optimizer" else {}
        run.add_argument(flag, type=kind, default=None, **extra,
                         help=f"{text} (default: {getattr(defaults, field_name)}, unless the dataset sets its own)")
    run.add_argument("--hparam", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                     help="override a method hyper-parameter (JSON value); repeatable")
    run.add_argument("--dataset-option", action="append", default=[], metavar="DATASET.KEY=VALUE",
                     help="pass an option to a dataset loader (e.g. mosi.data_dir=/data); repeatable")
    run.add_argument("--data-dir", default=None,
                     help="root folder holding real datasets (default: $FUSEBENCH_DATA_DIR, then ~/.fusebench/data)")
    run.add_argument("--no-stress", action="store_true", help="skip the stress-test grid")
    run.add_argument("--no-emap", action="store_true", help="skip the EMAP interaction analysis")
    run.add_argument("--emap-samples", type=int, default=None,
                     help="evaluate EMAP on a seeded random subset of N test samples (default: all)")
    run.add_argument("--executor", default=None,
                     help="serial, process, ray, or another registered executor (default: process with one "
                          "worker per core when the estimate is over a minute and the machine has 2+ cores, "
                          "else serial; results are bitwise identical either way)")
    run.add_argument("--workers", type=int, default=None,
                     help="process executor: worker processes (default: cores / --threads)")
    run.add_argument("--address", default=None,
                     help="ray executor: 'auto' (join this machine's cluster) or HOST:PORT (default: local Ray)")
    run.add_argument("--gpus", type=float, default=0.0, help="ray executor: GPUs requested per run (default: 0)")
    _add_tracking(run)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    formatter = argparse.RawDescriptionHelpFormatter  # keeps the epilog's one-variable-per-line layout
    parser = argparse.ArgumentParser(prog="bench", description="FuseBench: benchmark multimodal fusion methods.",
                                     epilog=environment_epilog(), formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s (fusebench) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate methods x datasets x seeds", epilog=environment_epilog(),
                         formatter_class=formatter,
                         description="Train and evaluate every method on every dataset with every seed under one "
                                     "budget; finished runs are skipped, results go to MLflow.")
    add_run_arguments(run)

    tune = sub.add_parser("tune", help="tune every method with the same number of trials, then train the chosen "
                                       "configurations on the seeds", epilog=environment_epilog(),
                                  formatter_class=formatter,
                          description="Equal tuning budgets: for every method x dataset, --trials configurations\n"
                                      "drawn by one seeded Optuna TPE sampler from the shared space plus the method's\n"
                                      "own (trial 0 = the defaults), trained on --tune-seed without stress/EMAP and\n"
                                      "selected on the validation primary metric; the chosen configuration is then\n"
                                      "trained on --seeds like bench run. Resumable. See docs/tuning.md.")
    tune.add_argument("--trials", type=int, required=True,
                      help="trials per method and dataset, the same for every method and baseline (>= 1)")
    tune.add_argument("--tune-seed", type=_seed, default=DEFAULT_TUNE_SEED,
                      help=f"seed of every trial's training and of the samplers (default: {DEFAULT_TUNE_SEED}, "
                           "apart from the run seeds, so the reported runs retrain the choice on fresh seeds)")
    add_run_arguments(tune)

    lst = sub.add_parser("list", help="list registered methods (with aliases), datasets, metrics, stress tests "
                                      "or executors")
    lst.add_argument("kind", choices=sorted(LIST_KINDS))

    sub.add_parser("plugins", help="JSON: every plugin, its distribution, version and registrations")

    check = sub.add_parser("validate-plugin", help="check one plugin's registrations on tiny inputs")
    check.add_argument("name", help="plugin (entry-point) name as `bench plugins` shows it, or a distribution name")

    board = sub.add_parser("leaderboard", help="render the leaderboard from MLflow (or a stored runs.json)")
    board.add_argument("--datasets", default=None, help="comma list to restrict columns")
    board.add_argument("--metrics", default=None, metavar="NAME|DATASET:NAME,...",
                       help="metric variants to show (default: each dataset's primary metric)")
    board.add_argument("--format", default=None, choices=["md", "latex", "html", "csv", "json"],
                       help="output format (default: from the --out suffix, else md)")
    board.add_argument("--rank", default="mean-rank", choices=["mean-rank", "borda", "none"],
                       help="cross-dataset rank column (default: %(default)s; see docs/leaderboard.md)")
    board.add_argument("--view", default="default", choices=["default", "tuned", "both"],
                       help="default: the bench run results; tuned: the configurations bench tune chose; both: the "
                            "two side by side with their ranks, Kendall's tau and the tuning compute "
                            "(default: %(default)s)")
    board.add_argument("--group", action="store_true",
                       help="group rows by fusion family (default: one list sorted by the rank column)")
    board.add_argument("--no-group", action="store_true", help=argparse.SUPPRESS)  # the default since 0.2
    board.add_argument("--from", dest="source", default=None, metavar="RUNS_JSON",
                       help="render from a stored result (bench publish) instead of MLflow")
    board.add_argument("--out", default=None, help="write to FILE instead of stdout")
    board.add_argument("--allow-mixed-data", action="store_true",
                       help="aggregate runs even if a dataset's content hash differs between them")
    board.add_argument("--allow-mixed-metrics", action="store_true",
                       help="aggregate runs even if a dataset's metric variants or primary metric differ")
    board.add_argument("--allow-mixed", action="store_true", help="both --allow-mixed-data and --allow-mixed-metrics")
    board.add_argument("--latest-data", action="store_true",
                       help="per dataset, show only runs on its newest data version (content hash)")
    board.add_argument("--recompute", action="store_true",
                       help="recompute every metric variant registered now from the runs' stored predictions "
                            "(no retraining; with --from: the predictions.npz next to RUNS_JSON)")
    _add_tracking(board)

    add_plot_parser(sub)
    add_publish_parser(sub)
    add_data_parser(sub)
    return parser


@dataclass
class RunRequest:
    """What ``bench run`` and ``bench tune`` read from their (shared) flags, all of it checked
    before anything is loaded or written."""

    registry: Any
    budget: Budget
    pinned: set[str]          # the budget fields set by a flag (they win over a dataset's budget)
    methods: list[str]
    datasets: list[str]
    dataset_options: dict[str, dict[str, Any]]
    hparams: dict[str, dict[str, Any]]
    evaluation: dict[str, Any]
    executor_spec: Any        # None: chosen from the estimate
    uri: str


def prepare_run(args: argparse.Namespace) -> RunRequest:
    """Validate the flags of ``bench run`` / ``bench tune``: budget, names, options, evaluation,
    executor, store.  Adds (and says so) the baselines the stress and EMAP columns need."""
    from .plugins import get_registry
    from .store import check_store
    from .suite import (
        check_dataset_options,
        parse_dataset_options,
        parse_hparams,
        with_baselines,
    )
    from .tracking import default_tracking_uri

    registry = get_registry()
    try:
        names = [flag[2:].replace("-", "_") for flag, _, _ in BUDGET_FLAGS]
        explicit = {name: getattr(args, name) for name in names}
        explicit = {k: v for k, v in explicit.items() if v is not None}
        budget = Budget(**explicit)
        if not args.address:  # with --address the runs execute on a cluster, whose GPUs this machine cannot see
            budget.check_device()
    except SpecError as exc:
        raise FuseBenchError(str(exc)) from None
    methods = registry.select("methods", args.methods, "--methods")
    if args.datasets:
        datasets = registry.select("datasets", args.datasets, "--datasets")
    else:
        datasets = [d for d in DEFAULT_DATASETS if d in registry.names("datasets")]
    # Options are checked before anything is planned, loaded or written (no store is created).
    dataset_options = check_dataset_options(registry, datasets, parse_dataset_options(args.dataset_option))
    hparams = parse_hparams(args.hparam)
    if args.data_dir:
        # An environment variable, not a RunSpec field: the path differs between machines,
        # the data content hash (recorded per run) is what identifies the data.
        os.environ["FUSEBENCH_DATA_DIR"] = os.path.abspath(args.data_dir)
    evaluation = {"stress": not args.no_stress, "emap": not args.no_emap}
    if args.emap_samples is not None:
        if args.emap_samples < 2:
            raise FuseBenchError(f"--emap-samples must be at least 2, got {args.emap_samples}.")
        evaluation["emap_samples"] = args.emap_samples
    executor_spec = registry.executor(args.executor, "--executor") if args.executor else None
    if args.workers is not None and args.workers < 1:
        raise FuseBenchError(f"--workers must be at least 1, got {args.workers}.")
    if evaluation["stress"] or evaluation["emap"]:
        extended = with_baselines(registry, methods)
        if extended != methods:  # the one place this is said: make_plan and run_suite take the list as is
            print(f"Adding baseline(s) {extended[len(methods):]}: the stress and EMAP columns compare every "
                  "method with them (use --no-stress --no-emap to skip).")
        methods = extended
    # Everything is validated (and the store probed) before anything is created on disk.
    uri = args.tracking_uri or default_tracking_uri()
    check_store(uri)
    return RunRequest(registry, budget, set(explicit), methods, datasets, dataset_options, hparams, evaluation,
                      executor_spec, uri)


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def make_executor(request: RunRequest, args: argparse.Namespace, predicted_seconds: float, runs: int):
    """The executor (chosen from the estimate unless --executor) and its worker count."""
    spec = request.executor_spec or request.registry.executor(
        auto_executor(predicted_seconds, runs, request.budget.threads))
    workers = 1 if spec.name == "serial" else (args.workers or usable_cores() // request.budget.threads or 1)
    executor = spec.factory(registry=request.registry, workers=args.workers, address=args.address, gpus=args.gpus)
    return executor, spec.name, workers


class RunProgress:
    """The runs bar (predicted seconds, not runs, so the ETA does not swing when a slow run lands),
    a bar per training run, and one line per finished run when the output is not a terminal."""

    def __init__(self, total_seconds: float, total_runs: int, costs: Mapping[str, float]):
        from tqdm import tqdm

        self.tqdm, self.costs, self.total, self.finished = tqdm, costs, total_runs, 0
        self.bar = tqdm(total=round(total_seconds, 1), desc="runs", file=sys.stderr, disable=None,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]")
        self.bar.set_postfix_str(f"0/{total_runs} runs")
        # No progress bar (stderr is not a terminal) or stdout goes to a file or pipe: one line per
        # finished run there instead, so a log or CI output shows progress and results as they come.
        self.per_run_lines = self.bar.disable or not _isatty(sys.stdout)

    def advance(self, spec, cost: float | None = None) -> None:
        self.finished += 1
        self.bar.set_postfix_str(f"{self.finished}/{self.total} runs", refresh=False)
        self.bar.update(round(self.costs.get(spec.spec_hash, 0.0) if cost is None else cost, 1))

    def progress(self, spec):
        bar = self.tqdm(total=spec.budget.epochs, desc=spec.label, unit="epoch", leave=False, file=sys.stderr,
                        disable=None)

        def update(epoch, row):
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in row.items()})
            if epoch + 1 >= spec.budget.epochs:
                bar.close()
        return update

    def on_result(self, result, cost: float | None = None) -> None:
        self.advance(result.spec, cost)
        if not result.ok:
            self.bar.write(f"[{result.status}] {result.spec.label}: {result.error}")
        elif self.per_run_lines:
            print(run_line(result), flush=True)

    def close(self) -> None:
        self.bar.close()


def _command_line() -> str:
    return "bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def cmd_run(args: argparse.Namespace) -> int:
    from .suite import make_plan, print_failures, run_suite
    from .tracking import Tracker

    request = prepare_run(args)
    registry = request.registry
    specs = make_plan(registry, request.methods, request.datasets, args.seeds, request.budget, request.hparams,
                      request.dataset_options, request.evaluation, on_skip=_note, pinned=request.pinned)
    tracker = Tracker(request.uri, args.suite)
    print(f"Planned {len(specs)} runs ({len(request.methods)} methods x {len(request.datasets)} datasets x "
          f"{len(set(args.seeds))} seeds); tracking at {tracker.uri}, experiment fusebench/{args.suite}.")
    costs = planned_costs(registry, specs)
    executor, name, workers = make_executor(request, args, sum(costs.values()), len(specs))
    print(estimate_line(costs, workers, name))
    bar = RunProgress(sum(costs.values()), len(specs), costs)
    report = run_suite(registry, specs, tracker, executor, _command_line(), echo=print, progress=bar.progress,
                       on_result=bar.on_result)
    for spec in (*report.skipped, *report.busy):
        bar.advance(spec)
    bar.close()
    trained = sum(result.ok for result in report.results)  # a failed or diverged run is counted as failed
    busy = f", {len(report.busy)} left to another running driver" if report.busy else ""
    print(f"Done: {trained} trained, {len(report.skipped)} skipped as already finished, "
          f"{len(report.failures)} failed{busy}. See `bench leaderboard --suite {args.suite}`.")
    print_failures(report)
    return 1 if report.failures else 0


def cmd_tune(args: argparse.Namespace) -> int:
    """``bench tune``: the same number of trials for every method, then the choices on the seeds."""
    import dataclasses

    from .estimate import Estimate, format_duration
    from .suite import make_plan, print_failures
    from .tracking import Tracker
    from .tuning import NO_EVALUATION, make_studies, run_tuning

    if args.trials < 1:
        raise FuseBenchError(f"--trials must be at least 1, got {args.trials}: every method gets that many trials "
                             "(trial 0 is its default configuration). Nothing was run or recorded.")
    request = prepare_run(args)
    registry = request.registry
    base = make_plan(registry, request.methods, request.datasets, [args.tune_seed], request.budget,
                     request.hparams, request.dataset_options, NO_EVALUATION, on_skip=_note, pinned=request.pinned)
    studies = make_studies(registry, base, args.tune_seed)
    seeds = list(dict.fromkeys(args.seeds))
    if args.tune_seed in seeds:
        _note(f"--tune-seed {args.tune_seed} is also a run seed: that tuned run retrains the winning trial itself; "
              "a seed outside --seeds gives fresh runs")
    tracker = Tracker(request.uri, args.suite)
    n = args.trials
    print(f"Tuning {len(studies)} (method, dataset) pairs ({len(request.methods)} methods x {len(request.datasets)} "
          f"datasets) with {n} trial{'s' * (n != 1)} each ({len(studies) * n} trial runs on seed {args.tune_seed}, "
          f"no stress/EMAP), then the chosen configurations on seeds {seeds} ({len(studies) * len(seeds)} runs); "
          f"tracking at {tracker.uri}, experiment fusebench/{args.suite}.")
    trial_costs = planned_costs(registry, base)
    finals = [dataclasses.replace(spec, seed=seed, evaluation=request.evaluation) for spec in base for seed in seeds]
    final_costs = planned_costs(registry, finals)
    per_round = list(trial_costs.values())
    predicted = n * sum(per_round) + sum(final_costs.values())
    executor, name, workers = make_executor(request, args, predicted, len(studies) * (n + len(seeds)))
    wall = n * Estimate(per_round, workers).wall + Estimate(list(final_costs.values()), workers).wall
    print(f"Estimated time: about {format_duration(wall)} ({name} executor, {workers} worker{'s' * (workers != 1)}; "
          f"{format_duration(predicted)} of run time in {n} trial rounds and one round of chosen configurations, "
          "from the shipped per-method cost model at the default configurations — trials with other widths or "
          "depths take longer or shorter, finished trials and runs are skipped and take no time).")
    by_pair = {(s.method, s.dataset): c for s, c in zip(base, per_round, strict=True)}
    final_by_pair = {(s.method, s.dataset): c for s, c in zip(finals, final_costs.values(), strict=True)}

    def cost(spec) -> float:
        table = final_by_pair if spec.tuning.get("role") == "tuned" else by_pair
        return table.get((spec.method, spec.dataset), 0.0)

    bar = RunProgress(predicted, len(studies) * (n + len(seeds)), {})

    def on_result(result) -> None:
        bar.on_result(result, cost(result.spec))

    def echo(message: str) -> None:
        if bar.bar.disable:
            print(message, flush=True)
        else:
            bar.bar.write(message)

    report = run_tuning(registry, studies, n, seeds, request.evaluation, tracker, executor, _command_line(),
                        echo=echo, progress=bar.progress, on_result=on_result, cost=cost,
                        on_skipped=lambda spec: bar.advance(spec, cost(spec)))
    bar.close()
    for search in report.searches:
        best = search.best()
        study = search.study
        if best is None:
            print(f"{study.label}: every trial failed; nothing chosen.", file=sys.stderr)
            continue
        changed = {k: v for k, v in best.params.items() if v != study.defaults()[k]}
        print(f"{study.label}: trial {best.number} of {n} chosen (validation {study.primary} {best.value:.4f}"
              + (f"; {', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in changed.items())}"
                 if changed else "; the defaults") + ")")
    finals_report = report.finals
    print(f"Done: {report.trained} trials trained, {report.reused} found finished; "
          f"{sum(r.ok for r in finals_report.results)} chosen-configuration runs trained, "
          f"{len(finals_report.skipped)} skipped as already finished, {len(finals_report.failures)} failed. "
          f"See `bench leaderboard --suite {args.suite} --view both` and `bench plot tuning --suite {args.suite}`.")
    print_failures(finals_report)
    return 1 if finals_report.failures or report.failed_studies else 0


# Below this predicted suite time, spawning worker processes (a few seconds each, to import
# torch) costs more than it saves: the automatic executor stays serial.
AUTO_PARALLEL_SECONDS = 60.0


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


def planned_costs(registry, specs) -> dict[str, float]:
    """Predicted seconds of every planned run (by spec hash), from the shipped cost model."""
    from .data import load_tensors
    from .estimate import CostModel, evaluates, shape_of

    model, shapes = CostModel.shipped(), {}
    costs = {}
    for spec in specs:
        key = (spec.dataset, json.dumps(spec.dataset_options, sort_keys=True, default=str))
        if key not in shapes:  # loaded and cached by the planner already
            shapes[key] = shape_of(load_tensors(registry.dataset(spec.dataset), spec.dataset_options))
        costs[spec.spec_hash] = model.predict(spec.method, shapes[key], spec.budget.epochs, evaluates(spec))
    return costs


def estimate_line(costs: Mapping[str, float], workers: int, executor: str) -> str:
    from .estimate import Estimate, format_duration

    estimate = Estimate(list(costs.values()), workers)
    where = f"{executor} executor, {workers} worker{'s' if workers != 1 else ''}"
    return (f"Estimated time: about {format_duration(estimate.wall)} ({where}; "
            f"{format_duration(estimate.total)} of run time, from the shipped per-method cost model, "
            "measured on a 2-core machine — runs already finished are skipped and take no time).")


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def run_line(result) -> str:
    """One finished run as one line, like the ``[failed] ...`` ones: method/dataset/seed, the
    test value of the dataset's primary metric, and the run's wall-clock seconds."""
    primary = result.info.get("primary_metric") or "primary metric"
    value = result.metrics.get(f"test/{primary}")
    score = f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"
    seconds = result.info.get("wall_time_s")
    took = f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "? s"
    return f"[{result.status}] {result.spec.label}: test {primary} {score} in {took}"


def terminal_safe(text: object) -> str:
    """Plugin-supplied text without control characters (escape sequences could rewrite the
    terminal, a newline could fake rows): each becomes its visible escape, e.g. '\\x1b'."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from .plugins import get_registry

    registry = get_registry()
    kind = LIST_KINDS[args.kind]
    # The second column only where the kind has one (no unnamed, empty column).
    extra = {"methods": ("family", lambda spec: spec.family),
             "datasets": ("primary metric", lambda spec: spec.primary_metric)}.get(kind)
    aliases = kind == "methods"
    headers = ["name", *([extra[0]] if extra else []), *(["aliases"] if aliases else []), "description", "from"]
    rows = []
    for reg in registry.items(kind):
        spec = reg.spec
        row = [spec.name, *([extra[1](spec)] if extra else []),
               *([", ".join(getattr(spec, "aliases", ()))] if aliases else []),
               getattr(spec, "description", ""), reg.distribution or reg.plugin]
        rows.append([terminal_safe(v) for v in row])
    print(tabulate(rows, headers=headers, tablefmt="simple"))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import get_registry

    print(json.dumps(get_registry().plugin_report(), indent=2))
    return 0


def stored_predictions(frame, runs_json: str | None, tracker) -> dict | None:
    """run_id -> stored predictions of the finished runs (the significance tests need them):
    from MLflow, or from the export next to a stored runs.json."""
    from .predictions import finished_run_ids, load
    from .publish import by_run_id, published_predictions

    if runs_json:
        return by_run_id(published_predictions(runs_json, frame))
    return load(tracker, finished_run_ids(frame)) or None


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import format_for, render, runs_frame, select_view
    from .publish import load_runs
    from .tracking import Tracker

    fmt = format_for(args.out, args.format)
    if args.source:
        frame, suite = load_runs(args.source)
    else:
        tracker = Tracker(args.tracking_uri, args.suite)
        frame, suite = runs_frame(tracker), args.suite
    if args.recompute:
        from .plugins import get_registry
        from .predictions import recompute_stored

        done = recompute_stored(frame, get_registry(), runs_json=args.source,
                                tracker=None if args.source else tracker)
        frame = done.frame
        print(done.note(), file=sys.stderr)
    datasets = [d for d in (args.datasets or "").split(",") if d] or None
    metrics = [m for m in (args.metrics or "").split(",") if m] or None
    text = render(frame, fmt, suite, datasets=datasets, metrics=metrics, rank=args.rank, group=args.group,
                  allow_mixed_data=args.allow_mixed_data or args.allow_mixed,
                  allow_mixed_metrics=args.allow_mixed_metrics or args.allow_mixed, latest_data=args.latest_data,
                  predictions=None if args.view == "both" else stored_predictions(
                      # from MLflow only the shown view's predictions (not every trial's)
                      frame if args.source else select_view(frame, args.view), args.source,
                      None if args.source else tracker), view=args.view)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"Wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_validate_plugin(args: argparse.Namespace) -> int:
    from .plugins import build_registry, get_registry
    from .validate import validate_plugin

    try:
        registry = get_registry()
    except Exception:
        registry = None
    # Any case, or a distribution name; an unknown name fails here with a did-you-mean.
    name = registry.plugin_name(args.name) if registry is not None else args.name
    report = validate_plugin(name, registry, build_registry)
    print(report.render())
    return 0 if report.ok else 1


class _BelowWarning(logging.Filter):
    """Drops INFO and DEBUG records.  A filter on the emitting logger, unlike its level, survives
    a later ``logging.config`` call (MLflow versions whose migrations run alembic's fileConfig)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


# The loggers that talk on a store's first use: MLflow's "Creating initial MLflow database
# tables..." / "Updating database tables" and alembic's migration steps.
STORE_LOGGERS = ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration", "alembic.runtime.plugins")


def quiet_store_logs() -> None:
    """Silence the store's schema-creation notes (noise on every new store).  MLflow also logs
    store errors with a full traceback before raising them; FuseBench reports those itself, in
    one paragraph, hence CRITICAL for its db utilities."""
    for name in STORE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL if name == "mlflow.store.db.utils" else logging.WARNING)
        if not any(isinstance(f, _BelowWarning) for f in logger.filters):
            logger.addFilter(_BelowWarning())


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


COMMANDS = {"run": cmd_run, "tune": cmd_tune, "list": cmd_list, "plugins": cmd_plugins, "leaderboard": cmd_leaderboard,
            "plot": cmd_plot, "validate-plugin": cmd_validate_plugin, "publish": cmd_publish, "data": cmd_data}


def main(argv: Sequence[str] | None = None) -> int:
    # Offline by default: datasets are built from local files, never fetched from a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    args = build_parser().parse_args(argv)
    quiet_store_logs()
    # SIGTERM (batch schedulers, `kill`) gets the same clean shutdown as Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, not at exit, so a reader that went away is handled below
        return code
    except BrokenPipeError:
        # `bench list methods | head -1`: the reader closed the pipe; stop quietly, as `ls` would.
        # stdout is pointed at devnull so the interpreter's final flush does not fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (tests, embedding)
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a command stopped by a closed pipe
    except FuseBenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; finished runs are saved, re-run the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
