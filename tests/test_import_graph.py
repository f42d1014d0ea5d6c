"""The import graph of ``benchmark_core`` (issue 20 §2): no import cycle among its modules or its
sub-packages, no module importing another module's private (underscore) names, and nothing but
the command line importing the command line.

The graph is read from the source with ``ast``: every ``import`` counts, at module level or
inside a function (a deferred import still ties the two modules together) and under
``TYPE_CHECKING`` (a type-only import is still a dependency of the layering)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "benchmark_core"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# Imports that close a cycle, and private names imported across modules, tolerated for now: none
# are left (issue 20 removed the last: data <-> training, predictions <-> leaderboard and
# predictions <-> tracking, safe_torch's use of safe_pickle's private unpickler).  The test fails
# on an entry that no longer exists, so these can only shrink.  Never add to them.
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()

# The command line is the top of the stack: only its own modules import it.
CLI = "benchmark_core.cli"

# The stages of a run, bottom to top (docs/architecture.md).  A module may import its own stage
# and the stages below it, never one above: the ground floor (the modules directly in the
# package: specs, errors, hookspecs, plugins, record, tracking, ...) imports no stage at all.
STAGES = ("engine", "evaluation", "suite", "reporting", "cli")


def stage_of(module: str) -> int:
    """0 for the ground floor, else 1 + the position of the module's sub-package in STAGES."""
    parts = module.split(".")
    return STAGES.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in STAGES else 0


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


@dataclass(frozen=True)
class PrivateUse:
    source: str
    target: str
    name: str
    line: int


def module_names(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def read_imports(modules: Mapping[str, tuple[Path, bool]]) -> tuple[list[Edge], list[PrivateUse]]:
    """Every import of one package module by another, and every private name used across modules
    (``from .x import _name``, or ``x._name`` on an imported module ``x``)."""
    edges: list[Edge] = []
    private: list[PrivateUse] = []
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        bound: dict[str, str] = {}  # local name -> package module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target != PACKAGE and not target.startswith(PACKAGE + "."):
                    continue
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    if submodule in modules:  # `from . import data`: the module itself
                        edges.append(Edge(name, submodule, node.lineno))
                        bound[alias.asname or alias.name] = submodule
                        continue
                    edges.append(Edge(name, target, node.lineno))
                    if _is_private(alias.name) and target != name:
                        private.append(PrivateUse(name, target, alias.name, node.lineno))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        edges.append(Edge(name, alias.name, node.lineno))
                        if alias.asname:
                            bound[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                    and _is_private(node.attr) and bound[node.value.id] != name):
                private.append(PrivateUse(name, bound[node.value.id], node.attr, node.lineno))
    return [e for e in edges if e.source != e.target], private


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of a directed graph as a path ``[a, b, ..., a]``, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph.get(start, ())))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def graph_of(edges: Iterable[Edge], level: int | None = None) -> dict[str, set[str]]:
    """source -> targets; with ``level``, every name cut to that many dotted parts (a sub-package
    becomes one node, imports inside it are dropped)."""
    def node(name: str) -> str:
        return name if level is None else ".".join(name.split(".")[:level])

    graph: dict[str, set[str]] = {}
    for edge in edges:
        source, target = node(edge.source), node(edge.target)
        if source != target:
            graph.setdefault(source, set()).add(target)
    return graph


@pytest.fixture(scope="module")
def imports():
    modules = module_names()
    edges, private = read_imports(modules)
    return modules, edges, private


def test_the_reader_sees_the_real_graph(imports):
    """The checks below are only as good as the graph: it must hold the package's modules and
    the imports everyone knows are there."""
    modules, edges, _ = imports
    assert {"benchmark_core.cli", "benchmark_core.cli.run", "benchmark_core.suite.benchmark",
            "benchmark_core.suite.plan", "benchmark_core.reporting.publish",
            "benchmark_core.reporting.plots"} <= set(modules)
    pairs = {(e.source, e.target) for e in edges}
    assert ("benchmark_core.cli.run", "benchmark_core.suite.benchmark") in pairs  # module-level, relative `..`
    assert ("benchmark_core.suite.benchmark", "benchmark_core.suite.plan") in pairs  # deferred, inside a function
    assert ("benchmark_core.cli", "benchmark_core") in pairs  # `from .. import __version__`


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"x": {"x"}}) == ["x", "x"]


def test_the_known_cycle_edges_still_exist(imports):
    """An entry whose import is gone must leave the allow-list (it only shrinks)."""
    _, edges, _ = imports
    pairs = {(e.source, e.target) for e in edges}
    gone = sorted(KNOWN_CYCLE_EDGES - pairs)
    assert not gone, f"these imports are gone: remove them from KNOWN_CYCLE_EDGES: {gone}"


@pytest.mark.parametrize("level", [None, 2], ids=["modules", "packages"])
def test_no_import_cycle(imports, level):
    """Before issue 20: cli -> plots -> cli (plots imported the CLI's _add_tracking), cli -> publish
    -> cli (publish re-parsed a `bench run` command line to run its suite), plots <-> publish."""
    _, edges, _ = imports
    graph = graph_of([e for e in edges if (e.source, e.target) not in KNOWN_CYCLE_EDGES], level)
    cycle = find_cycle(graph)
    assert cycle is None, (
        "import cycle: " + " -> ".join(cycle) + "; lines: "
        + "; ".join(f"{e.source}:{e.line} imports {e.target}" for e in edges
                    if any(graph_of([e], level).get(a, set()) & {b} for a, b in zip(cycle, cycle[1:], strict=False))))


def test_the_package_has_the_stages_and_a_small_ground_floor(imports):
    modules, _, _ = imports
    assert {m.split(".")[1] for m in modules if m.count(".") >= 2} == set(STAGES)
    ground = sorted(m for m in modules if m.count(".") == 1 and stage_of(m) == 0)
    assert len(ground) <= 15, f"the ground floor is growing; does each of these belong there? {ground}"


def test_no_stage_imports_a_later_stage(imports):
    """Before issue 20 the layout had no stages: 27 flat modules, in which e.g. the store
    (tracking) imported the reporting side (predictions -> leaderboard)."""
    _, edges, _ = imports
    upward = sorted(f"{e.source}:{e.line} imports {e.target}" for e in edges
                    if stage_of(e.target) > stage_of(e.source))
    assert not upward, "upward imports (a lower stage importing a higher one): " + "; ".join(upward)


def test_only_the_command_line_imports_the_command_line(imports):
    _, edges, _ = imports
    outside = sorted({f"{e.source}:{e.line}" for e in edges
                      if (e.target == CLI or e.target.startswith(CLI + "."))
                      and not (e.source == CLI or e.source.startswith(CLI + "."))})
    assert not outside, f"library modules import the command line: {outside}"


def test_no_module_imports_another_modules_private_names(imports):
    _, _, private = imports
    found = {(p.source, p.target, p.name) for p in private}
    new = sorted(found - KNOWN_PRIVATE_IMPORTS)
    assert not new, "private names used across modules (make them public or move them): " + "; ".join(
        f"{p.source}:{p.line} uses {p.target}.{p.name}" for p in private if (p.source, p.target, p.name) in new)
    gone = sorted(KNOWN_PRIVATE_IMPORTS - found)
    assert not gone, f"remove these from KNOWN_PRIVATE_IMPORTS, they are gone: {gone}"
