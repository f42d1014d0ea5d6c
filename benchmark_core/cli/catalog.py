"""What is installed and what a file holds: ``bench list``, ``bench plugins``,
``bench validate-plugin`` and ``bench data inspect``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from benchmark_core.cli.common import terminal_safe

LIST_KINDS = {"methods": "methods", "datasets": "datasets", "metrics": "metrics", "stress": "stress",
              "executors": "executors"}


def add_catalog_parsers(sub: Any) -> None:
    """Register ``bench list``, ``bench plugins`` and ``bench validate-plugin``."""
    lst = sub.add_parser("list", help="list registered methods (with aliases), datasets, metrics, stress tests "
                                      "or executors")
    lst.add_argument("kind", choices=sorted(LIST_KINDS))

    sub.add_parser("plugins", help="JSON: every plugin, its distribution, version and registrations")

    check = sub.add_parser("validate-plugin", help="check one plugin's registrations on tiny inputs")
    check.add_argument("name", help="plugin (entry-point) name as `bench plugins` shows it, or a distribution name")


def add_data_parser(sub: Any) -> None:
    """Register ``bench data inspect``."""
    data = sub.add_parser("data", help="look at data files before running anything")
    actions = data.add_subparsers(dest="data_command", required=True)
    inspect = actions.add_parser("inspect", help="name the format of a file or folder and describe what it holds")
    inspect.add_argument("path", help="a data file or a folder of them")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark_core.plugins import get_registry

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
    from benchmark_core.plugins import get_registry

    print(json.dumps(get_registry().plugin_report(), indent=2))
    return 0


def cmd_validate_plugin(args: argparse.Namespace) -> int:
    from benchmark_core.plugins import build_registry, get_registry
    from benchmark_core.suite.validate import validate_plugin

    try:
        registry = get_registry()
    except Exception:
        registry = None
    # Any case, or a distribution name; an unknown name fails here with a did-you-mean.
    name = registry.plugin_name(args.name) if registry is not None else args.name
    report = validate_plugin(name, registry, build_registry)
    print(report.render())
    return 0 if report.ok else 1


def cmd_data(args: argparse.Namespace) -> int:
    from benchmark_core.engine.inspection import inspect_path, render

    answer = inspect_path(args.path)
    print(json.dumps(answer, indent=2, default=str) if args.json else render(answer), end="" if not args.json else "\n")
    return 0 if answer["recognised"] else 1
