"""The UEA/sktime ``.ts`` format, and the ``uea`` dataset that reads any multivariate file in it.

A ``.ts`` file (Bagnall et al., "The UEA multivariate time series classification archive,
2018", arXiv:1811.00075; format as written by sktime's ``write_dataframe_to_tsfile``) is text:
``#`` comment lines, ``@key value`` header lines up to ``@data``, then one case per line with
its channels separated by ``:``, each channel's values by ``,``, and the class label last.
``?`` marks a missing value; ``@timeStamps true`` files write ``(t,value)`` pairs.

FuseBench reads classification files without time stamps.  Channels are grouped into
*modalities* by a ``name:first-last`` grouping (channel numbers 1-based, as the archive's
documentation counts them), so two sensors of one recording become two modalities of one
event.  Missing values and time-stamped files are refused with the reason: imputing a sensor
reading would change the benchmark's data silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import datasets
import numpy as np

from fusebench import DataError, DatasetSpec, TargetSpec, dataset_from_arrays, hookimpl

MAX_FILE_BYTES = 2 * 1024**3  # the largest UEA archive file is ~1 GB of text


@dataclass(frozen=True)
class TsFile:
    """One parsed ``.ts`` file: ``series[i]`` is case i as a (channels, steps) array."""

    path: str
    problem: str
    class_labels: tuple[str, ...]
    series: list[np.ndarray]
    labels: np.ndarray  # the class label strings, one per case

    @property
    def n_channels(self) -> int:
        return self.series[0].shape[0]

    @property
    def equal_length(self) -> bool:
        return len({s.shape[1] for s in self.series}) == 1


def _bool(value: str, where: str, key: str) -> bool:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise DataError(f"{where}: header @{key} must be true or false, found {value!r}.")


def read_ts(path: str | Path) -> TsFile:
    """Parse a UEA ``.ts`` classification file; every malformed line is one clear error."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise DataError(f"{where}: no such file. Point the dataset option at a UEA .ts file "
                        "(e.g. --dataset-option uea.train=/data/NATOPS_TRAIN.ts).")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DataError(f"{where}: {path.stat().st_size} bytes is larger than any UEA archive file "
                        f"({MAX_FILE_BYTES} bytes allowed); is this the right file?")
    header: dict[str, str] = {}
    class_labels: tuple[str, ...] = ()
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    with path.open(encoding="utf-8", errors="strict") as fh:
        try:
            lines = list(enumerate(fh, start=1))
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            "a .ts file is plain text.") from None
    for number, raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        at = f"{where}, line {number}"
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{at}: expected a header line (@key value) or @data before the "
                                f"cases, found {line[:40]!r}.")
            key, _, value = line[1:].partition(" ")
            key, value = key.lower(), value.strip()
            if key == "data":
                in_data = True
                _check_header(header, where)
                continue
            if key == "classlabel":
                words = value.split()
                if not words or not _bool(words[0], at, "classLabel"):
                    raise DataError(f"{at}: @classLabel false - this is not a classification file; "
                                    "FuseBench's uea reader reads classification files only.")
                class_labels = tuple(words[1:])
                if not class_labels or len(set(class_labels)) != len(class_labels):
                    raise DataError(f"{at}: @classLabel true must list each class label once, "
                                    f"found {class_labels}.")
            elif key == "targetlabel":
                raise DataError(f"{at}: @targetLabel marks a regression file; the uea reader "
                                "reads classification files (@classLabel true ...).")
            header[key] = value
            continue
        fields = line.split(":")
        if len(fields) < 2:
            raise DataError(f"{at}: a case needs at least one channel and a class label "
                            "separated by ':'.")
        label = fields[-1].strip()
        if label not in class_labels:
            raise DataError(f"{at}: class label {label!r} is not among @classLabel "
                            f"{list(class_labels)}.")
        channels = []
        for c, text in enumerate(fields[:-1], start=1):
            if "?" in text:
                raise DataError(f"{at}, channel {c}: missing value '?'. FuseBench does not impute "
                                "sensor readings; fill or drop this case in the file first.")
            if "(" in text:
                raise DataError(f"{at}, channel {c}: time-stamped values '(t,v)' are not supported; "
                                "write the file with @timeStamps false.")
            try:
                values = np.array([float(v) for v in text.split(",")], dtype=np.float64)
            except ValueError:
                raise DataError(f"{at}, channel {c}: values must be numbers separated by ',', "
                                f"found {text[:40]!r}.") from None
            if not np.isfinite(values).all():
                raise DataError(f"{at}, channel {c}: non-finite value (nan/inf) in the series.")
            channels.append(values)
        lengths = {len(v) for v in channels}
        if len(lengths) != 1:
            raise DataError(f"{at}: channels have different lengths {sorted(lengths)}; every "
                            "channel of one case must have the same number of steps.")
        if series and len(channels) != series[0].shape[0]:
            raise DataError(f"{at}: {len(channels)} channels, but earlier cases have "
                            f"{series[0].shape[0]}.")
        series.append(np.stack(channels).astype(np.float32))
        labels.append(label)
    if not in_data:
        raise DataError(f"{where}: no @data line; is this a UEA .ts file?")
    if not series:
        raise DataError(f"{where}: no cases after @data.")
    ts = TsFile(str(path), header.get("problemname", path.stem), class_labels, series, np.array(labels))
    _check_declared(ts, header)
    return ts


def _check_header(header: Mapping[str, str], where: str) -> None:
    if "classlabel" not in header:
        raise DataError(f"{where}: header has no @classLabel line before @data; the reader needs "
                        "the list of class labels.")
    if header.get("timestamps", "false").lower() == "true":
        raise DataError(f"{where}: @timeStamps true is not supported; write the file with "
                        "@timeStamps false.")
    if header.get("missing", "false").lower() == "true":
        raise DataError(f"{where}: @missing true - the file contains missing values, which "
                        "FuseBench does not impute; fill or drop them first.")


def _check_declared(ts: TsFile, header: Mapping[str, str]) -> None:
    """The header's @dimensions, @equalLength and @seriesLength must match the cases."""
    if "dimensions" in header and header["dimensions"].isdigit() and int(header["dimensions"]) != ts.n_channels:
        raise DataError(f"{ts.path}: @dimensions {header['dimensions']} but the cases have "
                        f"{ts.n_channels} channels.")
    if header.get("equallength", "").lower() == "true":
        if not ts.equal_length:
            raise DataError(f"{ts.path}: @equalLength true but the cases have lengths "
                            f"{sorted({s.shape[1] for s in ts.series})[:5]}.")
        declared = header.get("serieslength", "")
        if declared.isdigit() and int(declared) != ts.series[0].shape[1]:
            raise DataError(f"{ts.path}: @seriesLength {declared} but the cases have "
                            f"{ts.series[0].shape[1]} steps.")


def parse_grouping(text: str, n_channels: int, where: str) -> dict[str, list[int]]:
    """``"acc:1-3,gyro:4-6"`` -> {"acc": [0, 1, 2], "gyro": [3, 4, 5]} (0-based indices)."""
    groups: dict[str, list[int]] = {}
    used: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        match = re.fullmatch(r"([A-Za-z_][\w\-]*):(\d+)(?:-(\d+))?", part)
        if not match:
            raise DataError(f"{where}: modality group {part!r} must look like name:first-last "
                            "(1-based channel numbers), e.g. modalities=acc:1-3,gyro:4-6.")
        name, first, last = match.group(1), int(match.group(2)), int(match.group(3) or match.group(2))
        if not 1 <= first <= last <= n_channels:
            raise DataError(f"{where}: modality {name!r} names channels {first}-{last}; the file "
                            f"has channels 1-{n_channels}.")
        channels = list(range(first - 1, last))
        if name in groups or used & set(channels):
            raise DataError(f"{where}: modality {name!r} repeats a name or a channel; each channel "
                            "belongs to at most one modality.")
        groups[name] = channels
        used |= set(channels)
    if not groups:
        raise DataError(f"{where}: give the channel-to-modality grouping, e.g. "
                        "--dataset-option uea.modalities=acc:1-3,gyro:4-6.")
    return groups


def stratified_validation(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: per class, ``round(fraction * n_class)`` cases (at least one)
    drawn with ``seed`` go to validation, so both parts keep the class balance."""
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        if len(idx) < 2:
            raise DataError(f"class {cls!r} has {len(idx)} training case(s); at least 2 are needed "
                            "to carve a validation case from train.")
        k = min(max(1, round(fraction * len(idx))), len(idx) - 1)
        validation.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


DEFAULTS = {"train": "", "test": "", "modalities": "", "validation_fraction": 0.2,
            "data_seed": 0, "standardize": True}


def resolve_test_path(train: str, test: str) -> str:
    if test:
        return test
    if "_TRAIN" not in Path(train).name:
        raise DataError(f"{train}: cannot guess the test file (no _TRAIN in the name); give "
                        "--dataset-option uea.test=PATH.")
    return str(Path(train).with_name(Path(train).name.replace("_TRAIN", "_TEST")))


def load_files(options: Mapping[str, object], name: str) -> tuple[TsFile, TsFile, dict[str, list[int]]]:
    opts = {**DEFAULTS, **options}
    unknown = sorted(set(opts) - set(DEFAULTS))
    if unknown:
        raise DataError(f"dataset {name!r} has no option(s) {unknown}; it accepts "
                        f"{', '.join(sorted(DEFAULTS))} (--dataset-option {name}.KEY=VALUE).")
    if not opts["train"]:
        raise DataError(f"dataset {name!r} needs the training file: --dataset-option "
                        f"{name}.train=/path/NAME_TRAIN.ts (and {name}.modalities=acc:1-3,gyro:4-6).")
    train = read_ts(str(opts["train"]))
    test = read_ts(resolve_test_path(str(opts["train"]), str(opts["test"])))
    if test.class_labels != train.class_labels or test.n_channels != train.n_channels:
        raise DataError(f"{test.path}: its classes {list(test.class_labels)} / {test.n_channels} "
                        f"channels differ from {train.path} ({list(train.class_labels)} / "
                        f"{train.n_channels}); train and test must come from one problem.")
    groups = parse_grouping(str(opts["modalities"]), train.n_channels, f"dataset {name!r}")
    return train, test, groups


Parsed = tuple[TsFile, TsFile, dict[str, list[int]]]


def build(options: Mapping[str, object], name: str, target: TargetSpec,
          parsed: Parsed | None = None) -> tuple[datasets.DatasetDict, dict]:
    """Read the files (unless ``parsed`` already holds them for these options), carve
    validation from train, standardise per channel, group channels."""
    opts = {**DEFAULTS, **options}
    train_file, test_file, groups = parsed or load_files(opts, name)
    fraction = float(opts["validation_fraction"])
    if not 0 < fraction < 1:
        raise DataError(f"dataset {name!r}: validation_fraction must lie in (0, 1), got {fraction}.")
    classes = {c: i for i, c in enumerate(train_file.class_labels)}
    y_train = np.array([classes[c] for c in train_file.labels], dtype=np.int64)
    y_test = np.array([classes[c] for c in test_file.labels], dtype=np.int64)
    fit, validation = stratified_validation(y_train, fraction, int(opts["data_seed"]))
    series = {"train": [train_file.series[i] for i in fit],
              "validation": [train_file.series[i] for i in validation],
              "test": test_file.series}
    labels = {"train": y_train[fit], "validation": y_train[validation], "test": y_test}
    if opts["standardize"]:
        steps = np.concatenate(series["train"], axis=1)  # (channels, all training steps)
        mean, std = steps.mean(axis=1, keepdims=True), steps.std(axis=1, keepdims=True)
        std = np.where(std > 0, std, 1.0)
        series = {s: [(x - mean) / std for x in cases] for s, cases in series.items()}
    dsd = datasets.DatasetDict({
        split: dataset_from_arrays(
            {m: ("sequence", [np.ascontiguousarray(x[chans].T, dtype=np.float32) for x in cases])
             for m, chans in groups.items()},
            labels[split], target)
        for split, cases in series.items()
    })
    report = {"files": [train_file.path, test_file.path], "problem": train_file.problem,
              "modalities": {m: [c + 1 for c in chans] for m, chans in groups.items()},
              "validation": f"{len(validation)} of {len(y_train)} training cases, stratified, "
                            f"data_seed {int(opts['data_seed'])}",
              "sizes": {s: len(v) for s, v in labels.items()}}
    return dsd, report


def specialise(options: Mapping[str, object]) -> DatasetSpec:
    """The ``uea`` spec for one file: its modalities and classes come from the file itself."""
    opts = {**DEFAULTS, **options}
    parsed = load_files(opts, "uea")
    train, _, groups = parsed
    target = TargetSpec("multiclass", len(train.class_labels), train.class_labels)

    def load(o: Mapping[str, object]) -> tuple[datasets.DatasetDict, dict]:
        # the files were parsed once to learn the spec; reuse them when loading the same options
        return build(o, "uea", target, parsed if {**DEFAULTS, **o} == opts else None)

    return replace(UEA, modalities=tuple(groups), target=target, specialise=None, load=load)


def _load_generic(options):
    return specialise(options).load(options)


UEA = DatasetSpec(
    name="uea",
    load=_load_generic,
    target=TargetSpec("multiclass", 2, ("read", "from file")),
    modalities=("from-file",),
    metrics=("accuracy", "f1_macro"),
    primary_metric="accuracy",
    reference="A. Bagnall et al., 'The UEA multivariate time series classification archive, 2018', "
              "arXiv:1811.00075",
    how_to_obtain="Any UEA/sktime multivariate .ts classification file: --dataset-option "
                  "uea.train=PATH_TRAIN.ts --dataset-option uea.modalities=name:1-3,other:4-6.",
    description="Any UEA multivariate .ts classification file; channels grouped into modalities "
                "by the modalities option; validation carved from train (stratified).",
    defaults=DEFAULTS,
    specialise=specialise,
)


@hookimpl
def register_datasets(register):
    register(UEA)
