"""Plugin manager factory and the registry built from the registration hooks.

Built-in plugins (``plugins/``) are listed as entry points of the ``fusebench`` distribution,
so they load through the very same path as a third party's.  Environment variables
``FUSEBENCH_LOAD_PLUGINS`` (only these entry-point names) and ``FUSEBENCH_BLOCK_PLUGINS``
(all but these) select what loads, as llm/datasette/tox do.

One broken installed plugin must not take FuseBench down for everyone: entry points are loaded
one at a time, and one that fails to import, to validate or in a registration hook is recorded
as a ``PluginFailure`` (all of its registrations dropped) while the others load.  Plugin objects
passed in-process (tests, ``fusebench.testing.make_registry(my_plugin)``) still raise: whoever
passes them is their author and wants the traceback.
"""

from __future__ import annotations

import difflib
import functools
import multiprocessing
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from benchmark_core import hookspecs
from benchmark_core.errors import DuplicateRegistrationError, FuseBenchError, UnknownNameError
from benchmark_core.specs import DatasetSpec, ExecutorSpec, MethodSpec, MetricSpec, SpecError, StressSpec

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


def _last_line(exc: BaseException) -> str:
    """The exception's type and the last line of its message: one line a user can act on."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1].strip()}" if lines else type(exc).__name__


def _normalise(distribution: str) -> str:
    """PEP 503 form of a distribution name (``Fusebench_Demo`` is ``fusebench-demo``)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def suggestion(name: str, keys: Iterable[str]) -> str | None:
    """The closest of ``keys`` (casefolded names) to ``name``, case ignored: the did-you-mean."""
    match = difflib.get_close_matches(name.strip().casefold(), list(keys), n=1, cutoff=0.5)
    return match[0] if match else None


@dataclass(frozen=True)
class PluginFailure:
    """An installed plugin that could not be loaded: which one, where from, and why."""

    plugin: str  # entry-point name (what FUSEBENCH_BLOCK_PLUGINS takes)
    distribution: str | None
    version: str | None
    stage: str  # what raised: "importing it", "its register_methods hook", ...
    error: str  # _last_line of the exception

    @property
    def who(self) -> str:
        return f"{self.plugin!r} ({self.distribution} {self.version})" if self.distribution else repr(self.plugin)

    @property
    def message(self) -> str:
        return (f"The installed plugin {self.who} failed to load: "
                f"{self.stage} raised {self.error}. Everything it registers is unavailable and the other "
                f"plugins work without it; fix or uninstall it, or set FUSEBENCH_BLOCK_PLUGINS={self.plugin} "
                "to skip it.")


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus, per installed plugin, its distribution, and the ones that failed."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        # entry-point name -> (distribution, version) of every installed plugin that loaded
        self.distributions: dict[str, tuple[str | None, str | None]] = {}
        self.failures: list[PluginFailure] = []

    def load_entry_points(self, only: Iterable[str] = ()) -> None:
        """Import and register each entry point of the group on its own (``only``: these names);
        one that raises, or implements a hook FuseBench does not define, is recorded and skipped."""
        only = set(only)
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (only and ep.name not in only) or self.has_plugin(ep.name) or self.is_blocked(ep.name):
                continue
            dist = ep.dist
            origin = (dist.metadata["Name"], dist.version) if dist is not None else (None, None)
            stage = "importing it"
            try:
                plugin = ep.load()
                stage = "registering its hooks"
                self.register(plugin, name=ep.name)
                self.check_pending()  # the plugins before it passed: a misspelt hook is this one's
            except Exception as exc:
                if self.get_plugin(ep.name) is not None:
                    self.unregister(name=ep.name)
                self.failures.append(PluginFailure(ep.name, *origin, stage, _last_line(exc)))
                continue
            self.distributions[ep.name] = origin


def make_plugin_manager(
    *, entrypoints: bool = True, plugins: Iterable[Any] = (), load: Iterable[str] | None = None,
    block: Iterable[str] | None = None,
) -> PluginManager:
    """Build a fresh plugin manager.

    ``entrypoints`` loads the ``fusebench`` entry-point group (built-ins included);
    ``plugins`` are extra in-process plugin objects (modules or classes with hookimpls);
    ``load``/``block`` restrict entry points by name (default: the environment variables).
    """
    pm = PluginManager()
    load = list(load) if load is not None else _split_env("FUSEBENCH_LOAD_PLUGINS")
    block = list(block) if block is not None else _split_env("FUSEBENCH_BLOCK_PLUGINS")
    for name in block:
        pm.set_blocked(name)
    if entrypoints:
        pm.load_entry_points(load)
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
    """Everything the plugins registered, keyed by kind then name (built once per pm), and the
    installed plugins that failed to load (``failures``)."""

    def __init__(self, pm: PluginManager):
        self.pm = pm
        self.failures: list[PluginFailure] = list(pm.failures)
        self._items: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        # kind -> casefolded name or alias -> registered name: what the command line matches
        self._keys: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        for name, plugin in pm.list_name_plugin():  # registration order
            if plugin is not None:  # None: blocked
                self._register_plugin(name, plugin)

    def _register_plugin(self, name: str, plugin: Any) -> None:
        """Call the plugin's hooks and keep all it registered, or (an installed plugin whose hook
        raises) none of it: half a plugin would fail later, and more obscurely."""
        distribution, version = self.pm.distributions.get(name, (None, None))
        origin = dict(plugin=name, distribution=distribution, version=version)
        staged: list[tuple[str, Registration]] = []
        for kind, (hook_name, spec_cls, noun) in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                register = functools.partial(self._stage, staged, kind, spec_cls, noun, origin)
                try:
                    impl.function(**{arg: register for arg in impl.argnames})
                except Exception as exc:
                    if name not in self.pm.distributions:
                        raise
                    self.failures.append(PluginFailure(name, distribution, version, f"its {hook_name} hook",
                                                       _last_line(exc)))
                    return
        for kind, registration in staged:
            self._add(kind, registration)

    @staticmethod
    def _stage(staged: list[tuple[str, Registration]], kind: str, spec_cls: type, noun: str,
               origin: Mapping[str, Any], spec: Any) -> None:
        if not isinstance(spec, spec_cls):
            raise SpecError(
                f"plugin {origin['plugin']!r} passed {type(spec).__name__} to the {noun} register "
                f"callback; it accepts {spec_cls.__name__} objects."
            )
        staged.append((kind, Registration(spec=spec, **origin)))

    def _add(self, kind: str, new: Registration) -> None:
        """Keep ``new`` unless its name or an alias matches (case-insensitively) a name or alias
        already registered: the command line could not tell the two apart."""
        noun, name = KINDS[kind][2], new.spec.name
        existing = self._items[kind].get(name)
        if existing is not None:
            raise DuplicateRegistrationError(
                f"The {noun} name {name!r} is registered twice: by {existing.origin} and by "
                f"{new.origin}. Names must be unique; uninstall one of the two distributions or "
                f"block one plugin with FUSEBENCH_BLOCK_PLUGINS=<entry point name>."
            )
        for key in (name, *getattr(new.spec, "aliases", ())):
            owner_name = self._keys[kind].get(key.casefold())
            if owner_name is None:
                continue
            owner = self._items[kind][owner_name]
            theirs = repr(owner_name) if key.casefold() == owner_name.casefold() else \
                f"{owner_name!r} (its alias {self._alias_for(kind, key)!r})"
            ours = f"name {name!r}" if key == name else f"alias {key!r} of {name!r}"
            raise DuplicateRegistrationError(
                f"The {noun} {ours}, registered by {new.origin}, clashes with the {noun} {theirs} registered by "
                f"{owner.origin}: names and aliases are matched case-insensitively on the command line, so "
                f"they must be unique. Rename or drop the alias in one of the two plugins, or block one with "
                f"FUSEBENCH_BLOCK_PLUGINS=<entry point name>."
            )
        self._items[kind][name] = new
        for key in (name, *getattr(new.spec, "aliases", ())):
            self._keys[kind][key.casefold()] = name

    def _alias_for(self, kind: str, key: str) -> str:
        owner = self._items[kind][self._keys[kind][key.casefold()]].spec
        return next((a for a in getattr(owner, "aliases", ()) if a.casefold() == key.casefold()), key)

    # -- lookups ---------------------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        return sorted(self._items[kind])

    def aliases(self, kind: str) -> dict[str, str]:
        """alias -> registered name, for every alias of ``kind`` (``bench list``, docs)."""
        return {alias: reg.spec.name for reg in self.items(kind) for alias in getattr(reg.spec, "aliases", ())}

    def canonical(self, kind: str, name: str) -> str | None:
        """The registered name ``name`` stands for (itself, another case, or an alias), or None."""
        if not isinstance(name, str):
            return None
        if name in self._items[kind]:
            return name
        return self._keys[kind].get(name.strip().casefold())

    def resolve(self, kind: str, name: str, flag: str | None = None) -> str:
        """:meth:`canonical`, raising the did-you-mean error for a name nothing registered."""
        canonical = self.canonical(kind, name)
        if canonical is not None:
            return canonical
        raise self._unknown(kind, name, flag)

    def _unknown(self, kind: str, name: str, flag: str | None) -> UnknownNameError:
        noun = KINDS[kind][2]
        error = UnknownNameError(noun, name, self._items[kind], flag)
        hint = suggestion(name, self._keys[kind])
        if hint is not None:
            target = self._keys[kind][hint]
            hint = repr(target) if hint == target.casefold() else \
                f"{self._alias_for(kind, hint)!r} (an alias of {target!r})"
        where = f" (given to {flag})" if flag else ""
        aliases = self.aliases(kind)
        known = ", ".join(self.names(kind)) or "(none)"
        error.message = (
            f"Unknown {noun} {name!r}{where}.{f' Did you mean {hint}?' if hint else ''} Valid {noun}s: {known}"
            + (f"; aliases: {', '.join(f'{a} ({n})' for a, n in sorted(aliases.items()))}" if aliases else "")
            + f". Names are matched case-insensitively. Run `bench list {kind}` to see them with descriptions."
        )
        if self.failures:  # what a broken plugin would have registered is unknowable: say it may be one
            broken = "; ".join(f"{f.who}, which failed to load ({f.error})" for f in self.failures)
            error.message += (f" It may come from the installed plugin {broken}: fix or reinstall it to use "
                              "what it registers.")
        return error

    def registration(self, kind: str, name: str, flag: str | None = None) -> Registration:
        return self._items[kind][self.resolve(kind, name, flag)]

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

    def executor(self, name: str, flag: str | None = None) -> ExecutorSpec:
        return self.get("executors", name, flag)

    def items(self, kind: str) -> list[Registration]:
        return [self._items[kind][name] for name in self.names(kind)]

    def select(self, kind: str, csv: str | Iterable[str], flag: str | None = None) -> list[str]:
        """Resolve ``all`` or a comma list to registered names: aliases and other spellings (case)
        become the name they stand for, repeats go (order kept), unknown names raise."""
        names = [n.strip() for n in csv.split(",")] if isinstance(csv, str) else list(csv)
        names = [n for n in names if n]
        if [n.casefold() for n in names] == ["all"]:  # generic methods whose presets are registered are left out
            return [n for n in self.names(kind) if getattr(self.get(kind, n), "in_all", True)]
        return list(dict.fromkeys(self.resolve(kind, name, flag) for name in names))

    def plugin_name(self, name: str) -> str:
        """The loaded (or failed) plugin ``name`` stands for: an entry-point name in any case, or a
        distribution name (returned as given); anything else raises with a did-you-mean."""
        report = self.plugin_report()
        plugins = {entry["name"].casefold(): entry["name"] for entry in report}
        dists = {_normalise(entry["distribution"]): entry["distribution"] for entry in report if entry["distribution"]}
        if name in plugins.values() or _normalise(name) in dists:
            return name
        if name.casefold() in plugins:
            return plugins[name.casefold()]
        candidates = {**dists, **plugins}
        hint = suggestion(name, candidates)
        hint = f" Did you mean {candidates[hint]!r}?" if hint else ""
        error = UnknownNameError("plugin", name, plugins.values())
        error.message = (f"No plugin named {name!r} is loaded.{hint} Plugins (entry-point names): "
                         f"{', '.join(sorted(plugins.values())) or '(none)'}; distributions: "
                         f"{', '.join(sorted(dists.values())) or '(none)'}. Names are matched case-insensitively; "
                         "`bench plugins` lists what each registered.")
        raise error

    def plugin_report(self) -> list[dict[str, Any]]:
        """What each plugin registered, for ``bench plugins``; a plugin that failed to load has
        ``"error"`` (the paragraph saying why) and registered nothing."""
        report: dict[str, dict[str, Any]] = {}
        for name, plugin in self.pm.list_name_plugin():
            if plugin is not None:
                distribution, version = self.pm.distributions.get(name, (None, None))
                report[name] = {"name": name, "distribution": distribution, "version": version, "registered": {}}
        for kind in KINDS:
            for reg in self.items(kind):
                report[reg.plugin]["registered"].setdefault(kind, []).append(reg.spec.name)
        for failure in self.failures:
            report[failure.plugin] = {"name": failure.plugin, "distribution": failure.distribution,
                                      "version": failure.version, "registered": {}, "error": failure.message}
        return sorted(report.values(), key=lambda e: e["name"])

    def dist_version(self, kind: str, name: str) -> str:
        reg = self.registration(kind, name)
        return f"{reg.distribution}=={reg.version}" if reg.distribution else f"local:{reg.plugin}"


def build_registry(**kwargs: Any) -> Registry:
    """A fresh registry from a fresh plugin manager (tests use this)."""
    return Registry(make_plugin_manager(**kwargs))


@functools.cache
def get_registry() -> Registry:
    """The process-wide registry used by the CLI and workers (built once).  Plugins that failed
    to load are reported here, so every command says so; only by the driver: workers re-read
    the entry points and would repeat it once per process."""
    registry = build_registry()
    if multiprocessing.parent_process() is None:
        for failure in registry.failures:
            print(f"bench: warning: {failure.message}", file=sys.stderr)
    return registry
