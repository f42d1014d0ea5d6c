"""What every ``bench`` command shares: the environment it reads, the tracking flags, seed
parsing, name matching and safe terminal output."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable

from benchmark_core.specs import SpecError, check_seed

FORMATTER = argparse.RawDescriptionHelpFormatter  # keeps the epilog's one-variable-per-line layout

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


def add_tracking(p: argparse.ArgumentParser) -> None:
    """``--suite`` and ``--tracking-uri``: which MLflow store and experiment a command uses."""
    p.add_argument("--suite", default="default",
                   help="suite name; one MLflow experiment per suite (default: default)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")


def seed_list(text: str) -> list[int]:
    """``--seeds``: refused here, by argparse, so a bad list fails before anything is loaded or created."""
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


def one_seed(text: str) -> int:
    """``--tune-seed``: one seed, refused like a bad ``--seeds`` item."""
    values = seed_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one seed, got {text!r}")
    return values[0]


def comma_list(text: str | None) -> list[str] | None:
    """A comma-list flag's items (``None`` when it names nothing)."""
    return [item for item in (text or "").split(",") if item] or None


def match_names(given: Iterable[str], known: Iterable[str]) -> list[str]:
    """``given`` names spelled as in ``known`` where they match ignoring case (``MFEAT`` ->
    ``mfeat``), like ``--methods``; a name ``known`` lacks is kept as given, so the caller's
    error names what the user typed."""
    by_fold: dict[str, list[str]] = {}
    for name in dict.fromkeys(known):
        by_fold.setdefault(str(name).casefold(), []).append(str(name))
    out = []
    for name in given:
        if name in by_fold.get(name.casefold(), ()):
            out.append(name)  # exact spelling wins (two recorded names differing only in case)
        else:
            matches = by_fold.get(name.casefold(), [])
            out.append(matches[0] if len(matches) == 1 else name)
    return out


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def command_line() -> str:
    """This process's command as a user typed it (recorded on MLflow runs)."""
    return "bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def terminal_safe(text: object) -> str:
    """Plugin-supplied text without control characters (escape sequences could rewrite the
    terminal, a newline could fake rows): each becomes its visible escape, e.g. '\\x1b'."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))
