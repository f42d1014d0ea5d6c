"""Find a dataset's files, pick the format, convert once (cached) and build the DatasetSpec.

Search order: ``data_dir`` option > ``$FUSEBENCH_DATA_DIR/<dataset>`` (and, for MulT files,
whose names say which dataset they hold, ``$FUSEBENCH_DATA_DIR`` itself) >
``~/.fusebench/data/<dataset>``; in each folder also ``Processed/`` (MMSA's layout).
Within a folder: MulT, then MMSA, then ``.csd``; aligned before unaligned unless the
``aligned`` option says otherwise.  Nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from benchmark_core import DatasetSpec, datacache
from benchmark_core.errors import DataError

from . import csd, mmsa, mult
from .convert import to_dataset_dict
from .profiles import MODALITIES, AffectProfile

log = logging.getLogger("fusebench.data")

READER_VERSION = 2  # bump when a reader's output changes, so caches rebuild
COMMON_OPTIONS: dict[str, Any] = {"data_dir": None, "format": "auto", "aligned": "auto", "padding": "auto"}
CSD_OPTIONS: dict[str, Any] = {"csd_labels": None, "csd_text": None, "csd_audio": None, "csd_vision": None,
                               "folds": "standard", "label_column": 0}


@dataclass(frozen=True)
class Source:
    """Where a dataset's data were found: the format, the files that define it."""

    format: str
    aligned: bool | None
    files: Mapping[str, Path]


def option_defaults(profile: AffectProfile) -> dict[str, Any]:
    return {**COMMON_OPTIONS, **(CSD_OPTIONS if "csd" in profile.formats else {})}


def search_dirs(profile: AffectProfile, options: Mapping[str, Any]) -> list[tuple[Path, bool]]:
    """(folder, holds only this dataset) in priority order."""
    if options.get("data_dir"):
        return [(Path(str(options["data_dir"])).expanduser(), True)]
    dirs: list[tuple[Path, bool]] = []
    env = os.environ.get("FUSEBENCH_DATA_DIR")
    if env:
        root = Path(env).expanduser()
        dirs += [(root / profile.name, True), (root / profile.name.upper(), True), (root, False)]
    dirs.append((Path.home() / ".fusebench" / "data" / profile.name, True))
    return dirs


def _aligned_choices(value: Any, profile: AffectProfile) -> tuple[bool, ...]:
    if value in ("auto", None):
        return (True, False)
    if isinstance(value, bool):
        return (value,)
    if str(value).lower() in ("true", "false"):
        return (str(value).lower() == "true",)
    raise DataError(f"--dataset-option {profile.name}.aligned={value!r}: use true, false or auto.")


def find_source(profile: AffectProfile, options: Mapping[str, Any]) -> Source:
    fmt = options.get("format") or "auto"
    if fmt != "auto" and fmt not in profile.formats:
        raise DataError(f"--dataset-option {profile.name}.format={fmt!r}: {profile.title} can be read "
                        f"from {', '.join(profile.formats)} (or auto).")
    formats = profile.formats if fmt == "auto" else (fmt,)
    aligned = _aligned_choices(options.get("aligned"), profile)
    looked = []
    for base, specific in search_dirs(profile, options):
        for folder in (base, base / "Processed"):
            looked.append(folder)
            if not folder.is_dir():
                continue
            for f in formats:
                if f == "csd":
                    if specific and csd.pick(csd.discover(folder), "labels", profile, {}, folder):
                        return Source("csd", None, csd.select_files(folder, profile, options))
                    continue
                if f == "mmsa" and not specific:
                    continue
                names = mult.file_names(profile) if f == "mult" else mmsa.FILE_NAMES
                for a in aligned:
                    if (folder / names[a]).is_file():
                        return Source(f, a, {"pickle": folder / names[a]})
    raise missing_error(profile, looked, formats)


def missing_error(profile: AffectProfile, looked: list[Path], formats: tuple[str, ...]) -> DataError:
    accepted = []
    if "mult" in formats:
        names = mult.file_names(profile)
        accepted.append(f"MulT pickles {names[True]} (aligned) or {names[False]} (unaligned)")
    if "mmsa" in formats:
        accepted.append("MMSA pickles aligned_50.pkl or unaligned_50.pkl")
    if "csd" in formats:
        accepted.append("CMU-MultimodalSDK .csd files (a labels .csd plus numeric text, audio and "
                        "vision .csd, e.g. *_TimestampedWordVectors, *_COVAREP, *_Facet_41)")
    return DataError(
        f"{profile.title} data not found. Looked in: {', '.join(map(str, dict.fromkeys(looked)))}. "
        f"Accepted files: {'; '.join(accepted)}. Put them in ~/.fusebench/data/{profile.name}/, "
        f"or pass --data-dir DIR (searched as DIR/{profile.name}/), or --dataset-option "
        f"{profile.name}.data_dir=DIR. Where to obtain them: {profile.how_to_obtain} FuseBench "
        "never downloads datasets; see docs/datasets.md."
    )


def _validate(profile: AffectProfile, options: Mapping[str, Any]) -> dict[str, Any]:
    accepted = option_defaults(profile)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DataError(f"dataset {profile.name!r} has no option(s) {unknown}; it accepts "
                        f"{', '.join(sorted(accepted))} (--dataset-option {profile.name}.KEY=VALUE).")
    opts = {**accepted, **options}
    if opts["padding"] not in ("auto", "left", "right"):
        raise DataError(f"--dataset-option {profile.name}.padding={opts['padding']!r}: use auto, left or right.")
    return opts


def load(profile: AffectProfile, options: Mapping[str, Any]) -> tuple[datasets.DatasetDict, dict[str, Any]]:
    """Locate, convert (or reuse the cached conversion) and return train/validation/test plus
    the conversion report (padding side, length source, dropped segments, cache use), which
    the engine records with every run."""
    opts = _validate(profile, options)
    source = find_source(profile, opts)
    key = {"dataset": profile.name, "reader": READER_VERSION, "format": source.format,
           "aligned": source.aligned, "padding": opts["padding"]}
    files = list(source.files.values())
    if source.format == "csd":
        key.update(label_column=opts["label_column"], folds=opts["folds"])
        if isinstance(opts["folds"], str) and opts["folds"] != "standard":
            files.append(Path(opts["folds"]).expanduser())

    def build() -> tuple[datasets.DatasetDict, dict[str, Any]]:
        if source.format == "csd":
            splits, report = csd.read(source.files, profile, opts)
        else:
            reader = mult.read if source.format == "mult" else mmsa.read
            splits, report = reader(source.files["pickle"], profile, source.aligned, opts["padding"])
        return to_dataset_dict(splits, profile.target), report

    result = datacache.cached(profile.name, key, files, build)
    log.info("%s: %s data from %s (%s); conversion report: %s", profile.name, source.format,
             ", ".join(str(p) for p in files), "cached" if result.reused else "converted", result.report)
    return result.data, {**result.report, "cache": "reused" if result.reused else "converted"}


def make_spec(profile: AffectProfile) -> DatasetSpec:
    return DatasetSpec(
        name=profile.name,
        load=lambda options: load(profile, options),
        target=profile.target,
        modalities=MODALITIES,
        metrics=profile.metrics,
        primary_metric=profile.primary_metric,
        reference=profile.reference,
        how_to_obtain=profile.how_to_obtain,
        description=f"{profile.title}: text/audio/vision sequences from "
                    f"{' / '.join(profile.formats)} files (docs/datasets.md).",
        defaults=option_defaults(profile),
    )
