"""Plugin manager factory and the registry built from the registration hooks.

Built-in plugins (``plugins/``) are listed as entry points of the ``fusebench`` distribution,
so they load through the very same path as a third party's.  Environment variables
``FUSEBENCH_LOAD_PLUGINS`` (only these entry-point names) and ``FUSEBENCH_BLOCK_PLUGINS``
(all but these) select what loads, as llm/datasette/tox do.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import DuplicateRegistrationError, FuseBenchError, UnknownNameError
from .specs import DatasetSpec, ExecutorSpec, MethodSpec, MetricSpec, SpecError, StressSpec

ENTRY_POINT_GROUP = hookspecs.PROJECT

# kind -> (hook name, spec class, singular noun used in messages)
KINDS: dict[str, tuple[str, type, str]] = {
    "methods": ("register_methods", MethodSpec, "method"),
    "datasets": ("register_datasets", DatasetSpec, "dataset"),
    "metrics": ("register_metrics", MetricSpec, "metric"),
    "stress": ("register_stress_tests", StressSpec, "stress test"),
    "executors": ("register_executors", ExecutorSpec, "executor"),
}


def _split_env(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


def make_plugin_manager(
    *, entrypoints: bool = True, plugins: Iterable[Any] = (), load: Iterable[str] | None = None,
    block: Iterable[str] | None = None,
) -> pluggy.PluginManager:
    """Build a fresh plugin manager.

    ``entrypoints`` loads the ``fusebench`` entry-point group (built-ins included);
    ``plugins`` are extra in-process plugin objects (modules or classes with hookimpls);
    ``load``/``block`` restrict entry points by name (default: the environment variables).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    load = list(load) if load is not None else _split_env("FUSEBENCH_LOAD_PLUGINS")
    block = list(block) if block is not None else _split_env("FUSEBENCH_BLOCK_PLUGINS")
    for name in block:
        pm.set_blocked(name)
    if entrypoints:
        if load:
            for name in load:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        else:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise FuseBenchError(
            f"A plugin implements a hook FuseBench does not define: {exc}. Valid hooks: "
            f"{', '.join(h for h, _, _ in KINDS.values())}. Fix the function name in that plugin."
        ) from exc
    return pm


@dataclass(frozen=True)
class Registration:
    """A registered spec and where it came from."""

    spec: Any
    plugin: str
    distribution: str | None
    version: str | None

    @property
    def origin(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version} ({self.plugin})"
        return f"in-process plugin {self.plugin}"


class Registry:
    """Everything the plugins registered, keyed by kind then name (built once per pm)."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
        self._items: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        for kind, (hook_name, spec_cls, noun) in KINDS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                dist = dists.get(id(impl.plugin))
                origin = dict(
                    plugin=impl.plugin_name,
                    distribution=dist.project_name if dist else None,
                    version=dist.version if dist else None,
                )
                register = functools.partial(self._add, kind, spec_cls, noun, origin)
                kwargs = {name: register for name in impl.argnames}
                impl.function(**kwargs)

    def _add(self, kind: str, spec_cls: type, noun: str, origin: Mapping[str, Any], spec: Any) -> None:
        if not isinstance(spec, spec_cls):
            raise SpecError(
                f"plugin {origin['plugin']!r} passed {type(spec).__name__} to the {noun} register "
                f"callback; it accepts {spec_cls.__name__} objects."
            )
        new = Registration(spec=spec, **origin)
        existing = self._items[kind].get(spec.name)
        if existing is not None:
            raise DuplicateRegistrationError(
                f"The {noun} name {spec.name!r} is registered twice: by {existing.origin} and by "
                f"{new.origin}. Names must be unique; uninstall one of the two distributions or "
                f"block one plugin with FUSEBENCH_BLOCK_PLUGINS=<entry point name>."
            )
        self._items[kind][spec.name] = new

    # -- lookups ---------------------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        return sorted(self._items[kind])

    def registration(self, kind: str, name: str, flag: str | None = None) -> Registration:
        try:
            return self._items[kind][name]
        except KeyError:
            raise UnknownNameError(KINDS[kind][2], name, self._items[kind], flag) from None

    def get(self, kind: str, name: str, flag: str | None = None) -> Any:
        return self.registration(kind, name, flag).spec

    def method(self, name: str) -> MethodSpec:
        return self.get("methods", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("datasets", name)

    def metric(self, name: str) -> MetricSpec:
        return self.get("metrics", name)

    def stress_test(self, name: str) -> StressSpec:
        return self.get("stress", name)

    def executor(self, name: str) -> ExecutorSpec:
        return self.get("executors", name)

    def items(self, kind: str) -> list[Registration]:
        return [self._items[kind][name] for name in self.names(kind)]

    def select(self, kind: str, csv: str | Iterable[str], flag: str | None = None) -> list[str]:
        """Resolve ``all`` or a comma list to validated names (unknown names raise)."""
        names = [n.strip() for n in csv.split(",")] if isinstance(csv, str) else list(csv)
        names = [n for n in names if n]
        if names == ["all"]:
            return self.names(kind)
        for name in names:
            self.registration(kind, name, flag)
        return list(dict.fromkeys(names))

    def plugin_report(self) -> list[dict[str, Any]]:
        """What each plugin registered, for ``bench plugins``."""
        report: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            for reg in self.items(kind):
                entry = report.setdefault(
                    reg.plugin,
                    {"name": reg.plugin, "distribution": reg.distribution, "version": reg.version,
                     "registered": {}},
                )
                entry["registered"].setdefault(kind, []).append(reg.spec.name)
        for plugin_name, plugin in self.pm.list_name_plugin():
            if plugin is not None and plugin_name not in report:
                dist = dict((id(p), d) for p, d in self.pm.list_plugin_distinfo()).get(id(plugin))
                report[plugin_name] = {
                    "name": plugin_name, "distribution": dist.project_name if dist else None,
                    "version": dist.version if dist else None, "registered": {},
                }
        return sorted(report.values(), key=lambda e: e["name"])

    def dist_version(self, kind: str, name: str) -> str:
        reg = self.registration(kind, name)
        return f"{reg.distribution}=={reg.version}" if reg.distribution else f"local:{reg.plugin}"


def build_registry(**kwargs: Any) -> Registry:
    """A fresh registry from a fresh plugin manager (tests use this)."""
    return Registry(make_plugin_manager(**kwargs))


@functools.cache
def get_registry() -> Registry:
    """The process-wide registry used by the CLI and workers (built once)."""
    return build_registry()
