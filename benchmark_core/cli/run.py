"""``bench run`` and ``bench tune``: their flags (one definition for both), the console reporter
(progress bars, one line per run) and the closing summary.  The work itself is
:func:`benchmark_core.suite.benchmark.run_benchmark` / :func:`~benchmark_core.suite.benchmark.tune_benchmark`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmark_core.cli.common import (
    FORMATTER,
    add_tracking,
    command_line,
    environment_epilog,
    note,
    one_seed,
    seed_list,
)
from benchmark_core.specs import Budget
from benchmark_core.suite.benchmark import (
    DEFAULT_DATASETS,
    DEFAULT_SEEDS,
    DEFAULT_TUNE_SEED,
    BenchmarkOptions,
    BenchmarkSummary,
    Reporter,
    TuneSummary,
    run_benchmark,
    tune_benchmark,
)

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
    run.add_argument("--seeds", type=seed_list, default=list(DEFAULT_SEEDS),
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
    add_tracking(run)


def add_run_parsers(sub: Any) -> None:
    """Register ``bench run`` and ``bench tune`` on the CLI's subparsers."""
    run = sub.add_parser("run", help="train and evaluate methods x datasets x seeds", epilog=environment_epilog(),
                         formatter_class=FORMATTER,
                         description="Train and evaluate every method on every dataset with every seed under one "
                                     "budget; finished runs are skipped, results go to MLflow.")
    add_run_arguments(run)

    tune = sub.add_parser("tune", help="tune every method with the same number of trials, then train the chosen "
                                       "configurations on the seeds", epilog=environment_epilog(),
                          formatter_class=FORMATTER,
                          description="Equal tuning budgets: for every method x dataset, --trials configurations\n"
                                      "drawn by one seeded Optuna TPE sampler from the shared space plus the method's\n"
                                      "own (trial 0 = the defaults), trained on --tune-seed without stress/EMAP and\n"
                                      "selected on the validation primary metric; the chosen configuration is then\n"
                                      "trained on --seeds like bench run. Resumable. See docs/tuning.md.")
    tune.add_argument("--trials", type=int, required=True,
                      help="trials per method and dataset, the same for every method and baseline (>= 1)")
    tune.add_argument("--tune-seed", type=one_seed, default=DEFAULT_TUNE_SEED,
                      help=f"seed of every trial's training and of the samplers (default: {DEFAULT_TUNE_SEED}, "
                           "apart from the run seeds, so the reported runs retrain the choice on fresh seeds)")
    add_run_arguments(tune)


def options_from_args(args: argparse.Namespace) -> BenchmarkOptions:
    """The flags of ``bench run`` / ``bench tune`` as :class:`BenchmarkOptions` (the assignment
    flags parsed; everything else is checked by the library, before anything is written)."""
    from benchmark_core.suite.plan import parse_dataset_options, parse_hparams

    budget = {name: getattr(args, name) for name in (flag[2:].replace("-", "_") for flag, _, _ in BUDGET_FLAGS)}
    return BenchmarkOptions(
        methods=args.methods, datasets=args.datasets, seeds=tuple(args.seeds),
        budget={k: v for k, v in budget.items() if v is not None},
        hparams=parse_hparams(args.hparam), dataset_options=parse_dataset_options(args.dataset_option),
        data_dir=args.data_dir, stress=not args.no_stress, emap=not args.no_emap, emap_samples=args.emap_samples,
        executor=args.executor, workers=args.workers, address=args.address, gpus=args.gpus,
        tracking_uri=args.tracking_uri, suite=args.suite, command=command_line())


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


class ConsoleReporter(Reporter):
    """Messages on stdout, notes on stderr; while runs go: a bar of predicted seconds, not runs
    (so the ETA does not swing when a slow run lands), a bar per training run, and one line per
    finished run when the output is not a terminal."""

    def __init__(self) -> None:
        self.bar = None
        self.total = self.finished_runs = 0
        self.per_run_lines = True

    def message(self, text: str) -> None:
        if self.bar is not None and not self.bar.disable:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def note(self, text: str) -> None:
        note(text)

    def start(self, seconds: float, runs: int) -> None:
        from tqdm import tqdm

        self.total, self.finished_runs = runs, 0
        self.bar = tqdm(total=round(seconds, 1), desc="runs", file=sys.stderr, disable=None,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]")
        self.bar.set_postfix_str(f"0/{runs} runs")
        # No progress bar (stderr is not a terminal) or stdout goes to a file or pipe: one line per
        # finished run there instead, so a log or CI output shows progress and results as they come.
        self.per_run_lines = self.bar.disable or not _isatty(sys.stdout)

    def skipped(self, spec, cost: float) -> None:
        self.finished_runs += 1
        self.bar.set_postfix_str(f"{self.finished_runs}/{self.total} runs", refresh=False)
        self.bar.update(round(cost, 1))

    def epochs(self, spec):
        from tqdm import tqdm

        bar = tqdm(total=spec.budget.epochs, desc=spec.label, unit="epoch", leave=False, file=sys.stderr,
                   disable=None)

        def update(epoch, row):
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in row.items()})
            if epoch + 1 >= spec.budget.epochs:
                bar.close()
        return update

    def finished(self, result, cost: float) -> None:
        self.skipped(result.spec, cost)  # the bar advances the same way
        if not result.ok:
            self.bar.write(f"[{result.status}] {result.spec.label}: {result.error}")
        elif self.per_run_lines:
            print(run_line(result), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None


def _print_failures(report) -> None:
    from benchmark_core.suite.plan import print_failures

    print_failures(report, echo=lambda line: print(line, file=sys.stderr))


def report_run(summary: BenchmarkSummary) -> int:
    """The closing lines of ``bench run``; the exit status."""
    busy = f", {summary.busy} left to another running driver" if summary.busy else ""
    print(f"Done: {summary.finished} trained, {summary.skipped} skipped as already finished, "
          f"{summary.failed} failed{busy}. See `bench leaderboard --suite {summary.suite}`.")
    _print_failures(summary.report)
    return summary.exit_code


def report_tune(summary: TuneSummary) -> int:
    """The closing lines of ``bench tune``: every choice, the counts; the exit status."""
    report, n = summary.report, summary.trials
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
    finals = report.finals
    print(f"Done: {report.trained} trials trained, {report.reused} found finished; "
          f"{sum(r.ok for r in finals.results)} chosen-configuration runs trained, "
          f"{len(finals.skipped)} skipped as already finished, {len(finals.failures)} failed. "
          f"See `bench leaderboard --suite {summary.suite} --view both` and "
          f"`bench plot tuning --suite {summary.suite}`.")
    _print_failures(finals)
    return summary.exit_code


def run_and_report(options: BenchmarkOptions) -> int:
    """Run a suite with console output (``bench run``, and ``bench publish`` before it renders)."""
    return report_run(run_benchmark(options, ConsoleReporter()))


def tune_and_report(options: BenchmarkOptions, trials: int, tune_seed: int = DEFAULT_TUNE_SEED) -> int:
    """Tune with console output (``bench tune``, and ``bench publish --tuned``)."""
    return report_tune(tune_benchmark(options, trials, tune_seed, ConsoleReporter()))


def cmd_run(args: argparse.Namespace) -> int:
    return run_and_report(options_from_args(args))


def cmd_tune(args: argparse.Namespace) -> int:
    """``bench tune``: the same number of trials for every method, then the choices on the seeds."""
    return tune_and_report(options_from_args(args), args.trials, args.tune_seed)
