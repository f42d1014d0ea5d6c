"""The ``bench`` command line: run, list, plugins, leaderboard."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence

from .errors import FuseBenchError
from .inspection import add_data_parser, cmd_data
from .plots import add_plot_parser, cmd_plot
from .publish import add_publish_parser, cmd_publish
from .specs import Budget, SpecError

DEFAULT_DATASETS = ("mfeat", "basicmotions", "synthetic-redundant", "synthetic-unique", "synthetic-mixed", "synthetic-xor")
LIST_KINDS = {"methods": "methods", "datasets": "datasets", "metrics": "metrics", "stress": "stress",
              "executors": "executors"}


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


def _add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="default", help="suite name; one MLflow experiment per suite")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="FuseBench: benchmark multimodal fusion methods.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate methods x datasets x seeds")
    run.add_argument("--methods", default="all", help="'all' or a comma list (see `bench list methods`)")
    run.add_argument("--datasets", default=None,
                     help=f"comma list (default: the embedded suite {','.join(DEFAULT_DATASETS)})")
    run.add_argument("--seeds", type=_int_list, default=[0, 1, 2], help="comma list of run seeds")
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
    run.add_argument("--executor", default="serial",
                     help="serial (default), process, ray, or another registered executor")
    run.add_argument("--workers", type=int, default=None, help="process executor: worker processes")
    run.add_argument("--address", default=None,
                     help="ray executor: 'auto' (join this machine's cluster) or HOST:PORT (default: local Ray)")
    run.add_argument("--gpus", type=float, default=0.0, help="ray executor: GPUs requested per run")
    _add_tracking(run)

    lst = sub.add_parser("list", help="list registered methods, datasets, metrics, stress tests or executors")
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


def _dataset_options(items: Sequence[str]) -> dict[str, dict[str, object]]:
    from .suite import parse_hparams

    parsed = parse_hparams(items)
    if "*" in parsed:
        raise FuseBenchError("--dataset-option needs DATASET.KEY=VALUE (e.g. mosi.data_dir=/data).")
    return parsed


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .plugins import get_registry
    from .suite import make_plan, parse_hparams, print_failures, run_suite, with_baselines
    from .store import check_store
    from .tracking import Tracker, default_tracking_uri

    registry = get_registry()
    try:
        explicit = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_")) for flag, _, _ in BUDGET_FLAGS}
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
    if args.data_dir:
        # An environment variable, not a RunSpec field: the path differs between machines,
        # the data content hash (recorded per run) is what identifies the data.
        os.environ["FUSEBENCH_DATA_DIR"] = os.path.abspath(args.data_dir)
    evaluation = {"stress": not args.no_stress, "emap": not args.no_emap}
    if args.emap_samples is not None:
        if args.emap_samples < 2:
            raise FuseBenchError(f"--emap-samples must be at least 2, got {args.emap_samples}.")
        evaluation["emap_samples"] = args.emap_samples
    if evaluation["stress"] or evaluation["emap"]:
        extended = with_baselines(registry, methods)
        if extended != methods:
            print(f"Adding baseline(s) {extended[len(methods):]}: the stress and EMAP columns compare every "
                  "method with them (use --no-stress --no-emap to skip).")
        methods = extended
    dataset_options = _dataset_options(args.dataset_option)
    for name in dataset_options:
        if name not in datasets:
            raise FuseBenchError(f"--dataset-option names dataset {name!r}, which is not in --datasets {datasets}.")
    executor_spec = registry.executor(args.executor) if args.executor else None
    if args.workers is not None and args.workers < 1:
        raise FuseBenchError(f"--workers must be at least 1, got {args.workers}.")
    # Everything is validated (and the store probed) before anything is created on disk.
    uri = args.tracking_uri or default_tracking_uri()
    check_store(uri)
    specs = make_plan(registry, methods, datasets, args.seeds, budget, parse_hparams(args.hparam),
                      dataset_options, evaluation, on_skip=lambda msg: print(f"note: {msg}", file=sys.stderr),
                      pinned=set(explicit))
    tracker = Tracker(uri, args.suite)
    print(f"Planned {len(specs)} runs ({len(methods)} methods x {len(datasets)} datasets x "
          f"{len(set(args.seeds))} seeds); tracking at {tracker.uri}, experiment fusebench/{args.suite}.")
    runs_bar = tqdm(total=len(specs), desc="runs", unit="run", file=sys.stderr, disable=None)

    def progress(spec):
        bar = tqdm(total=spec.budget.epochs, desc=spec.label, unit="epoch", leave=False, file=sys.stderr,
                   disable=None)

        def update(epoch, row):
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in row.items()})
            if epoch + 1 >= spec.budget.epochs:
                bar.close()
        return update

    def on_result(result):
        runs_bar.update(1)
        if not result.ok:
            runs_bar.write(f"[{result.status}] {result.spec.label}: {result.error}")

    executor = executor_spec.factory(registry=registry, workers=args.workers, address=args.address, gpus=args.gpus)
    command = "bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = run_suite(registry, specs, tracker, executor, command, echo=print, progress=progress,
                       on_result=on_result)
    runs_bar.update(len(report.skipped) + len(report.busy))
    runs_bar.close()
    trained = len(report.results)
    busy = f", {len(report.busy)} left to another running driver" if report.busy else ""
    print(f"Done: {trained} trained, {len(report.skipped)} skipped as already finished, "
          f"{len(report.failures)} failed{busy}. See `bench leaderboard --suite {args.suite}`.")
    print_failures(report)
    return 1 if report.failures else 0


def terminal_safe(text: object) -> str:
    """Plugin-supplied text without control characters (escape sequences could rewrite the
    terminal, a newline could fake rows): each becomes its visible escape, e.g. '\\x1b'."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from .plugins import get_registry

    registry = get_registry()
    rows = []
    for reg in registry.items(LIST_KINDS[args.kind]):
        spec = reg.spec
        extra = getattr(spec, "family", None) or getattr(spec, "primary_metric", None) or ""
        desc = getattr(spec, "description", "")
        rows.append([terminal_safe(v) for v in (spec.name, extra, desc, reg.distribution or reg.plugin)])
    headers = {"methods": "family", "datasets": "primary metric"}.get(args.kind, "")
    print(tabulate(rows, headers=["name", headers, "description", "from"], tablefmt="simple"))
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
    from .leaderboard import format_for, render, runs_frame
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
                  predictions=stored_predictions(frame, args.source, None if args.source else tracker))
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
    except Exception:  # noqa: BLE001 - a broken plugin; validate_plugin finds out which
        registry = None
    report = validate_plugin(args.name, registry, build_registry)
    print(report.render())
    return 0 if report.ok else 1


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


COMMANDS = {"run": cmd_run, "list": cmd_list, "plugins": cmd_plugins, "leaderboard": cmd_leaderboard,
            "plot": cmd_plot, "validate-plugin": cmd_validate_plugin, "publish": cmd_publish, "data": cmd_data}


def main(argv: Sequence[str] | None = None) -> int:
    # Offline by default: datasets are built from local files, never fetched from a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    args = build_parser().parse_args(argv)
    # MLflow logs store errors with a full traceback before raising them; FuseBench reports
    # them itself, in one paragraph (and its schema-creation notes are noise on every new store).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    # SIGTERM (batch schedulers, `kill`) gets the same clean shutdown as Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return COMMANDS[args.command](args)
    except FuseBenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; finished runs are saved, re-run the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
