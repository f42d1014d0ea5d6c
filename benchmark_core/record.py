"""The run record: what one run records, the names of its metric keys, and its two stored forms.

A run's record is written once (the runner builds a :class:`RunResult`, the driver logs it to
MLflow) and read back as one row of the *runs table* (:func:`runs_table`), the pandas frame
every leaderboard, plot and export is a pure function of.  That table comes from MLflow
(:meth:`RunRecord.from_mlflow`) or from a stored ``runs.json`` (:func:`runs_json` /
:func:`from_runs_json`) and is the same either way: same columns in the same order, same values,
same rows in the same order (``tests/test_run_record.py`` checks the whole round trip).

Owning every form here keeps writers and readers from drifting apart: the budget columns
are the fields of :class:`~benchmark_core.specs.Budget` (a new field reaches the table and the
provenance footer without another edit), and each family of metric keys (``test/``,
``val/``, ``stress/``, ``emap/``, ``robustness/``, ``info/``, ``epoch/``,
``data/nonfinite_replaced/``) has one builder and one parser.

Torch-free, and free of the rest of the engine (it imports only ``specs``, and through it
``errors``), so the runner, the tracker, the leaderboard and the export can all depend on it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from benchmark_core.specs import Budget, RunSpec

if TYPE_CHECKING:
    import pandas as pd

TAG = "fusebench"  # MLflow tag prefix: fusebench.method, fusebench.spec_hash, ...
RUNS_FORMAT = "fusebench-runs/1"


# -- missing values ----------------------------------------------------------------------------

def is_missing(value: Any) -> bool:
    """None, or a NaN of any float type: a value the record does not have."""
    if value is None:
        return True
    try:
        return math.isnan(value)
    except (TypeError, ValueError, OverflowError):  # text, containers, huge ints: present
        return False


def json_value(value: Any) -> Any:
    """A table cell as plain JSON data: numpy scalars become Python ones, NaN and None become
    None (JSON has no NaN).  The one NaN -> None conversion of the record and of every JSON
    rendering built from it."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    return None if is_missing(value) else value


# -- metric keys ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyFamily:
    """Metric keys ``<prefix>/<part>/...``: the one builder (:meth:`key`) and parser
    (:meth:`parse`) of a family, so no reader re-spells a prefix."""

    prefix: str

    def key(self, *parts: Any) -> str:
        return "/".join((self.prefix, *(str(p) for p in parts)))

    def owns(self, key: Any) -> bool:
        return isinstance(key, str) and key.startswith(self.prefix + "/")

    def parse(self, key: Any) -> str | None:
        """What follows the prefix (``test/accuracy`` -> ``accuracy``), or None for another family."""
        return key[len(self.prefix) + 1:] if self.owns(key) else None


TEST = KeyFamily("test")              # clean test-split metrics: test/<metric>
VAL = KeyFamily("val")                # validation-split metrics: val/<metric>
EMAP = KeyFamily("emap")              # emap/<metric>, emap/gap/<metric>, emap/n_partners, ...
ROBUSTNESS = KeyFamily("robustness")  # per-run summaries of the stress grid
INFO = KeyFamily("info")              # info/<RunInfo metric field>
EPOCH = KeyFamily("epoch")            # per-epoch curves, step = epoch
DATA = KeyFamily("data")              # data-cleaning counts
NONFINITE = KeyFamily(DATA.key("nonfinite_replaced"))  # data/nonfinite_replaced/<modality>
SPLIT_KEYS = {"test": TEST, "validation": VAL}  # split -> the family of its metrics
# Per-epoch curves and data-cleaning counts stay in MLflow (curves as metric histories); the runs
# table holds one value per key and run, so it leaves them out.
NOT_IN_TABLE = (EPOCH, DATA)

STRESS_PREFIX = "stress"


def key_target(target: str) -> str:
    """MLflow keys allow neither '+' nor ','; a subset target ``a+b`` is written ``a.b`` in keys."""
    return target.replace("+", ".")


class StressKey(NamedTuple):
    """``stress/<test>/<target>/<level>/<metric>``: one metric of one cell of the stress grid.
    ``target`` is in key form (``a.b`` for the subset ``a+b``) once parsed."""

    test: str
    target: str
    level: float
    metric: str

    @property
    def key(self) -> str:
        return f"{STRESS_PREFIX}/{self.test}/{key_target(self.target)}/{self.level:g}/{self.metric}"

    @classmethod
    def parse(cls, key: Any) -> StressKey | None:
        if not isinstance(key, str):
            return None
        parts = key.split("/", 4)
        if len(parts) != 5 or parts[0] != STRESS_PREFIX:
            return None
        try:
            return cls(parts[1], parts[2], float(parts[3]), parts[4])
        except ValueError:
            return None


def stress_key(test: str, target: str, level: float, metric: str) -> str:
    """The key of one stress-grid metric (the builder every writer uses)."""
    return StressKey(test, target, level, metric).key


def parse_stress_key(key: Any) -> StressKey | None:
    """``stress/<test>/<target>/<level>/<metric>`` -> StressKey (target in key form), else None."""
    return StressKey.parse(key)


def stress_points(values: Mapping[str, Any], test: str, target: str, metric: str) -> dict[float, Any]:
    """level -> value of one stress curve (test on target, scored by metric) among ``values``
    (a run's metrics, or a runs-table row), levels ascending; missing values included, so each
    reader decides what a missing point means."""
    wanted = (test, key_target(target))
    points = {}
    for key, value in values.items():
        parsed = StressKey.parse(key)
        if parsed is not None and parsed[:2] == wanted and parsed.metric == metric:
            points[parsed.level] = value
    return dict(sorted(points.items()))


# -- what a run records ------------------------------------------------------------------------

def _logged(how: str) -> dict[str, str]:
    return {"mlflow": how}


@dataclass
class RunInfo(Mapping[str, Any]):
    """What a run measured and ran on, besides its metrics.  A field left None was not recorded
    (a failed run records only its wall time).  Read it as attributes or, as ``info.json``
    holds it, as a mapping of the recorded fields.

    ``mlflow`` metadata says where MLflow keeps a field besides ``info.json``: ``metric``
    (``info/<name>``) or ``tag`` (``fusebench.<name>``)."""

    params: int | None = field(default=None, metadata=_logged("metric"))
    train_time_s: float | None = field(default=None, metadata=_logged("metric"))
    validation_time_s: float | None = field(default=None, metadata=_logged("metric"))
    eval_time_s: float | None = field(default=None, metadata=_logged("metric"))
    wall_time_s: float | None = field(default=None, metadata=_logged("metric"))
    peak_memory_mb: float | None = field(default=None, metadata=_logged("metric"))  # training, run's device
    peak_memory_run_mb: float | None = field(default=None, metadata=_logged("metric"))  # whole run, host
    data_load: dict[str, Any] | None = None  # how the data were loaded (cache, conversion, seconds, memory)
    best_epoch: int | None = field(default=None, metadata=_logged("metric"))
    epochs_run: int | None = field(default=None, metadata=_logged("metric"))
    optimizer_steps: int | None = field(default=None, metadata=_logged("metric"))
    state_hash: str | None = field(default=None, metadata=_logged("tag"))  # SHA-256 of the trained weights
    data_hash: str | None = field(default=None, metadata=_logged("tag"))
    data_report: dict[str, Any] | None = None  # nonfinite_replaced per modality -> data/nonfinite_replaced/*
    family: str | None = None
    primary_metric: str | None = field(default=None, metadata=_logged("tag"))
    higher_is_better: bool | None = field(default=None, metadata=_logged("tag"))
    metric_variants: list[str] | None = None  # tag fusebench.metric_variants, comma-joined
    task: dict[str, Any] | None = None
    torch_version: str | None = field(default=None, metadata=_logged("tag"))
    torch_threads: int | None = field(default=None, metadata=_logged("tag"))
    python: str | None = None
    harness_version: str | None = field(default=None, metadata=_logged("tag"))
    git_sha: str | None = field(default=None, metadata=_logged("tag"))
    plugin_versions: dict[str, Any] | None = None

    @classmethod
    def of(cls, info: RunInfo | Mapping[str, Any] | None) -> RunInfo:
        """A RunInfo from itself or a mapping of its field names (unknown names are refused:
        they would be silently lost on the way to MLflow)."""
        if isinstance(info, RunInfo):
            return info
        info = dict(info or {})
        unknown = sorted(set(info) - set(INFO_FIELDS))
        if unknown:
            raise ValueError(f"RunInfo has no field(s) {unknown}; it records: {', '.join(INFO_FIELDS)}.")
        return cls(**info)

    def __getitem__(self, name: str) -> Any:
        value = getattr(self, name, None) if name in INFO_FIELDS else None
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name in INFO_FIELDS if getattr(self, name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"RunInfo({', '.join(f'{name}={value!r}' for name, value in self.items())})"

    def nonfinite_replaced(self) -> dict[str, int]:
        """modality -> how many non-finite feature values the data load replaced."""
        return dict((self.data_report or {}).get("nonfinite_replaced", {}))


INFO_FIELDS = tuple(f.name for f in dataclasses.fields(RunInfo))
INFO_METRICS = tuple(f.name for f in dataclasses.fields(RunInfo) if f.metadata.get("mlflow") == "metric")
INFO_TAGS = tuple(f.name for f in dataclasses.fields(RunInfo) if f.metadata.get("mlflow") == "tag")
RUN_STATUSES = ("finished", "failed", "diverged")  # what execute() returns


@dataclass
class RunResult:
    """What ``execute(RunSpec)`` returns: a plain, picklable result that never holds torch
    tensors.  ``info`` is a :class:`RunInfo` (a mapping of its recorded fields is accepted)."""

    spec: RunSpec
    status: str  # finished | failed | diverged
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: train_loss, val_loss, ...
    info: RunInfo = field(default_factory=RunInfo)
    error: str | None = None
    traceback: str | None = None
    # benchmark_core.predictions.Predictions (numpy): the test/validation ids, targets and raw
    # outputs the metrics were computed on (finished runs)
    predictions: Any = None

    def __post_init__(self) -> None:
        self.info = RunInfo.of(self.info)

    @property
    def ok(self) -> bool:
        return self.status == "finished"


# -- the runs table ----------------------------------------------------------------------------

# Budget fields as table columns: the six the published tables always showed, in their order, then
# every other field of Budget in its own order (so a new Budget field is a new column by itself).
_FIRST_BUDGET_COLUMNS = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "patience")
BUDGET_COLUMNS = _FIRST_BUDGET_COLUMNS + tuple(
    f.name for f in dataclasses.fields(Budget) if f.name not in _FIRST_BUDGET_COLUMNS)
# identity columns of the runs table, in the table's (and runs.json's) order; every other column
# is a metric key
IDENTITY_COLUMNS = ("run_id", "status", "mlflow_status", "method", "dataset", "seed", "family", "spec_hash",
                    "data_hash", "primary_metric", "higher_is_better", "metric_variants", "harness_version",
                    "git_sha", "torch_version", "versions", *BUDGET_COLUMNS, "start_time", "error")
# identity columns of the runs of `bench tune` (trials and tuned runs): present only in a table that
# holds such runs, so the table (and the export) of a suite without them is what it always was
TUNING_COLUMNS = ("view", "study", "trial", "n_trials", "tuned_params")
ROW_ORDER = ("dataset", "method", "seed", "start_time", "run_id")


@dataclass
class TuningRecord:
    """Where a run of ``bench tune`` belongs: ``view`` trial or tuned, its study, its trial
    number, and for a tuned run the search's size and the chosen parameters (JSON)."""

    view: str
    study: str | None = None
    trial: int | None = None
    n_trials: int | None = None
    tuned_params: str | None = None


@dataclass
class RunRecord:
    """One row of the runs table: a run as MLflow (or runs.json) holds it.

    Identity values are the MLflow tag and param texts (``budget`` maps every Budget field to
    its param text, e.g. ``{"epochs": "20", "lr": "0.001", ...}``; None where the run's record
    lacks it); ``metrics`` are every logged metric the table keeps (not ``epoch/*`` or
    ``data/*``)."""

    run_id: str
    status: str
    mlflow_status: str
    method: str | None
    dataset: str | None
    seed: int
    family: str | None
    spec_hash: str | None
    data_hash: str | None = None
    primary_metric: str | None = None
    higher_is_better: bool | None = None
    metric_variants: str | None = None
    harness_version: str | None = None
    git_sha: str | None = None
    torch_version: str | None = None
    versions: str | None = None  # JSON object: name -> version, keys sorted
    budget: dict[str, str | None] = field(default_factory=dict)
    start_time: int | None = None  # ms since the epoch
    error: str | None = None
    tuning: TuningRecord | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_mlflow(cls, run: Any) -> RunRecord:
        """A child run of an MLflow experiment (as ``MlflowClient.search_runs`` returns it)."""
        tags, params = run.data.tags, run.data.params
        versions = {k[len(f"{TAG}.version."):]: v for k, v in tags.items() if k.startswith(f"{TAG}.version.")}
        tuning = None
        if f"{TAG}.view" in tags:  # a trial or tuned run of `bench tune`
            tuning = TuningRecord(tags[f"{TAG}.view"], tags.get(f"{TAG}.study"), int(tags.get(f"{TAG}.trial", -1)),
                                  int(tags[f"{TAG}.n_trials"]) if f"{TAG}.n_trials" in tags else None,
                                  tags.get(f"{TAG}.tuned_params"))
        return cls(
            run_id=run.info.run_id,
            status=tags.get(f"{TAG}.status", run.info.status.lower()),
            mlflow_status=run.info.status,
            method=tags.get(f"{TAG}.method"),
            dataset=tags.get(f"{TAG}.dataset"),
            seed=int(tags.get(f"{TAG}.seed", -1)),
            family=tags.get(f"{TAG}.family", ""),
            spec_hash=tags.get(f"{TAG}.spec_hash"),
            data_hash=tags.get(f"{TAG}.data_hash"),
            primary_metric=tags.get(f"{TAG}.primary_metric"),
            higher_is_better=tags.get(f"{TAG}.higher_is_better", "True") == "True",
            metric_variants=tags.get(f"{TAG}.metric_variants", ""),
            harness_version=tags.get(f"{TAG}.version.fusebench"),
            git_sha=tags.get(f"{TAG}.git_sha"),
            torch_version=tags.get(f"{TAG}.torch_version"),
            versions=json.dumps(versions, sort_keys=True),
            budget={name: params.get(f"budget.{name}") for name in BUDGET_COLUMNS},
            start_time=run.info.start_time,
            error=tags.get(f"{TAG}.error"),
            tuning=tuning,
            metrics={k: v for k, v in run.data.metrics.items() if in_table(k)},
        )

    @classmethod
    def missing(cls, planned: Mapping[str, Any]) -> RunRecord:
        """A run a ``bench run`` planned (its parent's ``plan.json`` entry) but never started."""
        view = planned.get("view")
        return cls(run_id="", status="missing", mlflow_status="", method=planned["method"],
                   dataset=planned["dataset"], seed=int(planned["seed"]), family=planned["family"],
                   spec_hash=planned["spec_hash"], start_time=planned["start_time"],
                   error="planned, but its bench run stopped before starting it",
                   tuning=TuningRecord(view) if view else None)

    def row(self) -> dict[str, Any]:
        """The record as a table row: identity columns, the tuning ones if any, then metrics."""
        row = {name: self.budget.get(name) if name in BUDGET_COLUMNS else getattr(self, name)
               for name in IDENTITY_COLUMNS}
        if self.tuning is not None:
            row.update(dataclasses.asdict(self.tuning))
        row.update(self.metrics)
        return row


def in_table(key: str) -> bool:
    """Whether a metric key is a column of the runs table (per-epoch curves and data-cleaning
    counts are not: they stay in MLflow)."""
    return not any(family.owns(key) for family in NOT_IN_TABLE)


def _metric_columns(columns: Iterable[Any]) -> list[str]:
    named = {*IDENTITY_COLUMNS, *TUNING_COLUMNS}
    return sorted(str(c) for c in columns if c not in named and in_table(str(c)))


def table_columns(columns: Iterable[Any]) -> list[str]:
    """The runs table's column order: identity columns (those present) in their fixed order, the
    tuning ones (if present), then the metric keys sorted."""
    columns = list(columns)
    present = set(columns)
    return [c for c in (*IDENTITY_COLUMNS, *TUNING_COLUMNS) if c in present] + _metric_columns(columns)


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows in a fixed order, whatever store they came from (MLflow or an export)."""
    if frame.empty:
        return frame
    return frame.sort_values(list(ROW_ORDER), kind="stable").reset_index(drop=True)


def runs_table(records: Sequence[RunRecord]) -> pd.DataFrame:
    """The runs table of some records: every identity column (None where a record lacks it),
    the tuning columns when any record is a ``bench tune`` run, every metric key the records
    hold (NaN where a run lacks it), in :func:`table_columns` order and :func:`canonical` rows."""
    import pandas as pd

    if not records:
        return pd.DataFrame(columns=list(IDENTITY_COLUMNS))
    rows = [record.row() for record in records]
    if any(record.tuning is not None for record in records):
        rows = [{**dict.fromkeys(TUNING_COLUMNS), **row} for row in rows]
    frame = pd.DataFrame(rows)
    return canonical(frame[table_columns(frame.columns)])


# -- MLflow: what the driver logs for a run ----------------------------------------------------

def flat_params(value: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings as MLflow params: ``{"budget": {"lr": 0.001}}`` -> ``{"budget.lr": "0.001"}``;
    lists and dicts at the leaves as JSON."""
    out: dict[str, str] = {}

    def walk(key: str, item: Any) -> None:
        if isinstance(item, Mapping):
            for sub, inner in item.items():
                walk(f"{key}.{sub}" if key else str(sub), inner)
        else:
            out[key] = json.dumps(item) if isinstance(item, (list, tuple, dict)) else str(item)

    walk(prefix, value)
    return out


def child_tags(spec: RunSpec, family: str) -> dict[str, str]:
    """The identity tags of a run's MLflow child run (``mlflow.parentRunId`` is the tracker's)."""
    tags = {
        f"{TAG}.kind": "child",
        f"{TAG}.method": spec.method,
        f"{TAG}.dataset": spec.dataset,
        f"{TAG}.seed": str(spec.seed),
        f"{TAG}.family": family,
        f"{TAG}.spec_hash": spec.spec_hash,
        f"{TAG}.status": "running",
    }
    tags.update({f"{TAG}.version.{k}": v for k, v in spec.versions.items()})
    tuning = dict(spec.tuning)
    if tuning:  # a trial or a tuned run of `bench tune`
        tags.update({f"{TAG}.view": str(tuning["role"]), f"{TAG}.study": str(tuning["study"]),
                     f"{TAG}.trial": str(tuning["trial"])})
        if tuning["role"] == "tuned":
            tags.update({f"{TAG}.n_trials": str(tuning["n_trials"]),
                         f"{TAG}.tuned_params": json.dumps(tuning["params"], sort_keys=True)[:5000]})
    return tags


def child_params(spec: RunSpec) -> dict[str, str]:
    """The run's spec as MLflow params: ``method``, ``dataset``, ``seed``, ``budget.*``,
    ``hparams.*``, ``dataset_options.*``, ``evaluation.*`` (and ``tuning.*``)."""
    tuning = dict(spec.tuning)
    return flat_params({"method": spec.method, "dataset": spec.dataset, "seed": spec.seed,
                        "budget": spec.budget.to_dict(), "hparams": spec.hparams,
                        "dataset_options": spec.dataset_options, "evaluation": spec.evaluation.to_dict(),
                        **({"tuning": tuning} if tuning else {})})


def result_metrics(result: RunResult) -> list[tuple[str, float, int]]:
    """(key, value, step) of every metric a result logs: its metrics (step 0), its per-epoch
    curves ``epoch/<name>`` (step = epoch), the info fields kept as ``info/<name>`` and the
    data-cleaning counts ``data/nonfinite_replaced/<modality>``."""
    out = [(k, float(v), 0) for k, v in sorted(result.metrics.items())]
    for step, row in enumerate(result.history, start=1):
        out += [(EPOCH.key(k), float(v), step) for k, v in row.items()]
    info = result.info
    out += [(INFO.key(name), float(info[name]), 0) for name in INFO_METRICS if name in info]
    out += [(NONFINITE.key(m), float(n), 0) for m, n in sorted(info.nonfinite_replaced().items())]
    return out


def result_tags(result: RunResult) -> dict[str, str]:
    """The tags a result adds to its child run: status, the info fields kept as tags, the
    metric variants and the error."""
    info = result.info
    tags = {f"{TAG}.status": result.status}
    tags.update({f"{TAG}.{name}": str(info[name]) for name in INFO_TAGS if name in info})
    if info.metric_variants is not None:
        tags[f"{TAG}.metric_variants"] = ",".join(info.metric_variants)
    if result.error:
        tags[f"{TAG}.error"] = result.error[:4900]
    return tags


# -- runs.json: the stored runs table ----------------------------------------------------------

def runs_json(frame: pd.DataFrame, suite: str) -> str:
    """A runs table as the stored result: a header (format, suite, column list) and one JSON
    array per run and line, rows in canonical order.  The same runs give the same bytes."""
    frame = canonical(frame)
    columns = table_columns(frame.columns)
    lines = [json.dumps([json_value(v) for v in row], ensure_ascii=False, allow_nan=False, separators=(",", ":"))
             for row in frame[columns].itertuples(index=False)]
    header = json.dumps({"format": RUNS_FORMAT, "suite": suite, "columns": columns}, ensure_ascii=False,
                        separators=(",", ":"))
    return '{"meta":' + header + ',\n"runs":[\n' + ",\n".join(lines) + "\n]}\n"


def from_runs_json(doc: Mapping[str, Any]) -> tuple[pd.DataFrame, str]:
    """(runs table, suite) of a parsed runs.json: the columns it lists, in its order (identity
    values as stored, metrics as floats, NaN where null).  ``doc`` must be of RUNS_FORMAT."""
    import pandas as pd

    meta = doc["meta"]
    columns = list(meta["columns"])
    named = {*IDENTITY_COLUMNS, *TUNING_COLUMNS}
    metrics = [c for c in columns if c not in named]
    rows = []
    for values in doc["runs"]:
        row = {}
        for name, value in zip(columns, values, strict=True):
            if name in named:
                row[name] = value
            elif value is not None:
                row[name] = float(value)
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=list(IDENTITY_COLUMNS)), meta.get("suite", "default")
    frame = pd.DataFrame(rows, columns=columns)
    if metrics:  # a metric null in every row is a column of NaN, as in a table read from MLflow
        frame[metrics] = frame[metrics].astype(float)
    return frame, meta.get("suite", "default")
