"""An example FuseBench plugin: one fusion method, one dataset and one metric.

FuseBench finds this module through the entry point declared in ``pyproject.toml``::

    [project.entry-points.fusebench]
    example = "fusebench_example"

and calls the ``@hookimpl`` functions below, each with a ``register`` callback.

Every name registered here starts with ``example`` so that none can clash with FuseBench's
built-ins or another plugin's (a name registered twice is refused and one plugin is left
out).  When you copy this package, replace the prefix with your own.
"""

from __future__ import annotations

from fusebench import DatasetSpec, MethodSpec, MetricSpec, hookimpl

from . import dataset, method, metric

__version__ = "0.1.0"


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="example-maxpool",
        family="pooling",  # a family of its own; the leaderboard lists unknown families last
        build=method.build,
        defaults={"layer_norm": True},  # plus the shared ones (hidden, dropout, ...)
        reference="Element-wise max over modalities; Zaheer et al., Deep Sets, NeurIPS 2017",
        description="Shared unimodal encodings -> element-wise max over present modalities -> MLP head.",
        min_modalities=2,
    ))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="example-parity3",
        load=dataset.load,
        target=dataset.TARGET,
        modalities=("a", "b", "c"),
        # "accuracy" and "balanced_accuracy" are FuseBench built-ins; "example_worst_recall" is ours
        metrics=("accuracy", "balanced_accuracy", "example_worst_recall"),
        primary_metric="balanced_accuracy",
        reference="FuseBench example plugin (synthetic)",
        how_to_obtain="Generated on the fly; nothing to download.",
        description="Three modalities (two vectors, one sequence) with a noisy bit each; label = parity of the bits.",
        defaults=dataset.DEFAULTS,
    ))


@hookimpl
def register_metrics(register):
    register(MetricSpec(
        name="example_worst_recall",
        fn=metric.worst_class_recall,
        higher_is_better=True,
        target_kinds=("multiclass",),
        description="Recall of the worst-served class (min over classes; NaN if a class is absent).",
    ))
