"""Find a dataset's files, pick the format, convert once (cached) and build the DatasetSpec.

Search order: ``data_dir`` option > ``$FUSEBENCH_DATA_DIR/<dataset>`` (and, for MulT files,
whose names say which dataset they hold, ``$FUSEBENCH_DATA_DIR`` itself) >
``~/.fusebench/data/<dataset>``; in each folder also ``Processed/`` (MMSA's layout).
Within a folder: the formats the dataset's profile lists, in order (:mod:`.formats`);
aligned before unaligned unless the ``aligned`` option says otherwise.  Nothing is ever
downloaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from fusebench import DataError, DatasetSpec, SplitRows, cached_dataset

from .convert import to_split_rows
from .formats import FORMATS, Format, Found, aligned_choices
from .profiles import MODALITIES, AffectProfile

log = logging.getLogger("fusebench.data")

READER_VERSION = 3  # bump when a reader's output changes, so caches rebuild
COMMON_OPTIONS: dict[str, Any] = {"data_dir": None, "format": "auto", "aligned": "auto", "padding": "auto"}


@dataclass(frozen=True)
class Source:
    """Where a dataset's data were found: the format and what its find returned."""

    format: Format
    found: Found

    @property
    def files(self) -> Mapping[str, Path]:
        return self.found.files


def option_defaults(profile: AffectProfile) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for name in profile.formats:
        extra.update(FORMATS[name].options)
    return {**COMMON_OPTIONS, **extra}


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


def find_source(profile: AffectProfile, options: Mapping[str, Any]) -> Source:
    fmt = options.get("format") or "auto"
    if fmt != "auto" and fmt not in profile.formats:
        raise DataError(f"--dataset-option {profile.name}.format={fmt!r}: {profile.title} can be read "
                        f"from {', '.join(profile.formats)} (or auto).")
    formats = [FORMATS[name] for name in (profile.formats if fmt == "auto" else (fmt,))]
    aligned_choices(options.get("aligned"), profile)  # a bad value is an error even if nothing is found
    looked = []
    for base, specific in search_dirs(profile, options):
        for folder in (base, base / "Processed"):
            looked.append(folder)
            if not folder.is_dir():
                continue
            for format_ in formats:
                if not (specific or format_.shared_folder):
                    continue
                found = format_.find(folder, profile, options)
                if found is not None:
                    return Source(format_, found)
    raise missing_error(profile, looked, formats)


def missing_error(profile: AffectProfile, looked: list[Path], formats: list[Format]) -> DataError:
    accepted = [f.accepted(profile) for f in formats]
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
    fmt = source.format
    key = {"dataset": profile.name, "reader": READER_VERSION, "format": fmt.name, **source.found.facts,
           "padding": opts["padding"], **{name: opts[name] for name in fmt.options}}
    files = list(source.files.values())
    folds = opts.get("folds")
    if isinstance(folds, str) and folds != "standard":
        files.append(Path(folds).expanduser())

    def build() -> tuple[dict[str, SplitRows], dict[str, Any]]:
        splits, report = fmt.read(source.found, profile, opts)
        return to_split_rows(splits, profile.target), report

    result = cached_dataset(profile.name, key, files, build)
    log.info("%s: %s data from %s (%s); conversion report: %s", profile.name, fmt.name,
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
        description=f"{profile.title}: text/audio/vision from {' / '.join(profile.formats)} files "
                    "(docs/datasets.md; `bench data inspect PATH` names a file's format).",
        defaults=option_defaults(profile),
        inspect=inspect_path,
    )


def inspect_path(path: str | Path) -> dict[str, Any]:
    """``bench data inspect``: shared by every affect dataset (one inspector for all formats)."""
    from .inspect import inspect

    return inspect(path)
