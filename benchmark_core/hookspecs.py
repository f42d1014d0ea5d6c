"""The FuseBench hook specifications: the whole plugin surface in one place.

Every hook receives a ``register`` callback; a plugin calls it once per thing it adds.  The
host validates each spec, records which distribution registered it and refuses duplicate
names.  Built-in plugins in ``plugins/`` use exactly these hooks.
"""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

PROJECT = "fusebench"

hookspec = HookspecMarker(PROJECT)
hookimpl = HookimplMarker(PROJECT)


@hookspec
def register_methods(register):
    """Register fusion methods: ``register(MethodSpec(...))``."""


@hookspec
def register_datasets(register):
    """Register datasets: ``register(DatasetSpec(...))``."""


@hookspec
def register_metrics(register):
    """Register metrics: ``register(MetricSpec(...))``."""


@hookspec
def register_stress_tests(register):
    """Register evaluation-time corruptions: ``register(StressSpec(...))``."""


@hookspec
def register_executors(register):
    """Register ways to execute runs: ``register(ExecutorSpec(...))``."""
