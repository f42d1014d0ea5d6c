"""The ``bench`` command line: the parser, the commands and their exit statuses.

One module per command family: :mod:`.run` (run, tune), :mod:`.report` (leaderboard, plot,
publish), :mod:`.catalog` (list, plugins, validate-plugin, data inspect); :mod:`.common` holds
what they share.  The work is library code the commands call (e.g.
:func:`benchmark_core.suite.benchmark.run_benchmark`); nothing below the command line imports it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from benchmark_core.cli.catalog import (
    add_catalog_parsers,
    add_data_parser,
    cmd_data,
    cmd_list,
    cmd_plugins,
    cmd_validate_plugin,
)
from benchmark_core.cli.common import ENVIRONMENT, ENVIRONMENT_DEFAULTS, FORMATTER, environment_epilog
from benchmark_core.cli.report import (
    add_leaderboard_parser,
    add_plot_parser,
    add_publish_parser,
    cmd_leaderboard,
    cmd_plot,
    cmd_publish,
)
from benchmark_core.cli.run import add_run_parsers, cmd_run, cmd_tune
from benchmark_core.errors import FuseBenchError
from benchmark_core.suite.benchmark import AUTO_PARALLEL_SECONDS, DEFAULT_DATASETS, auto_executor, usable_cores

__all__ = ["AUTO_PARALLEL_SECONDS", "DEFAULT_DATASETS", "ENVIRONMENT", "ENVIRONMENT_DEFAULTS", "auto_executor",
           "build_parser", "main", "usable_cores"]


def build_parser() -> argparse.ArgumentParser:
    from benchmark_core import __version__

    parser = argparse.ArgumentParser(prog="bench", description="FuseBench: benchmark multimodal fusion methods.",
                                     epilog=environment_epilog(), formatter_class=FORMATTER)
    parser.add_argument("--version", action="version", version=f"%(prog)s (fusebench) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parsers(sub)
    add_catalog_parsers(sub)
    add_leaderboard_parser(sub)
    add_plot_parser(sub)
    add_publish_parser(sub)
    add_data_parser(sub)
    return parser


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
