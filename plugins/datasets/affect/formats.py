"""The on-disk formats the affect datasets can be read from, as one table.

A :class:`Format` knows how to *find* its files in a folder for a dataset (a profile) and how
to *read* them into the reader-neutral splits of :mod:`.convert`.  The loader searches the
folders in order and, in each, tries the formats a profile lists; ``bench data inspect`` asks
every format whether a path is one of its files.  Adding a format is one module defining a
``Format`` and one line in :data:`FORMATS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusebench import DataError

from . import csd, dialoguernn, lmf, misa, mmsa, mult, multibench
from .convert import Converted
from .profiles import AffectProfile


@dataclass(frozen=True)
class Found:
    """The files that define one dataset in one format (role -> path), and what the find
    decided on the way (e.g. ``aligned``); both become part of the conversion's cache key."""

    files: Mapping[str, Path]
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Format:
    """``find(folder, profile, options)`` -> :class:`Found` or None; ``read(found, profile,
    options)`` -> (splits, report); ``accepted(profile)`` names the files for error messages;
    ``options``: the dataset options the format adds (with their defaults); ``shared_folder``:
    its file names say which dataset they hold, so it may sit in ``$FUSEBENCH_DATA_DIR`` itself."""

    name: str
    title: str
    find: Callable[[Path, AffectProfile, Mapping[str, Any]], Found | None]
    read: Callable[[Found, AffectProfile, Mapping[str, Any]], Converted]
    accepted: Callable[[AffectProfile], str]
    options: Mapping[str, Any] = field(default_factory=dict)
    shared_folder: bool = False


def aligned_choices(value: Any, profile: AffectProfile) -> tuple[bool, ...]:
    """The ``aligned`` option as the variants to look for, preferred first."""
    if value in ("auto", None):
        return (True, False)
    if isinstance(value, bool):
        return (value,)
    if str(value).lower() in ("true", "false"):
        return (str(value).lower() == "true",)
    raise DataError(f"--dataset-option {profile.name}.aligned={value!r}: use true, false or auto.")


def _pickle_pair(names: Callable[[AffectProfile], Mapping[bool, str]]):
    """find() for formats with one pickle per variant (aligned / unaligned)."""

    def find(folder: Path, profile: AffectProfile, options: Mapping[str, Any]) -> Found | None:
        for aligned in aligned_choices(options.get("aligned"), profile):
            path = folder / names(profile)[aligned]
            if path.is_file():
                return Found({"pickle": path}, {"aligned": aligned})
        return None

    return find


def _find_csd(folder: Path, profile: AffectProfile, options: Mapping[str, Any]) -> Found | None:
    if not csd.pick(csd.discover(folder), "labels", profile, {}, folder):
        return None
    return Found(csd.select_files(folder, profile, options))


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("mult", "MulT / CMU seq_length_50 pickles", _pickle_pair(mult.file_names),
           lambda found, profile, opts: mult.read(found.files["pickle"], profile, found.facts["aligned"],
                                                  opts["padding"]),
           lambda p: (f"MulT pickles {mult.file_names(p)[True]} (aligned) or {mult.file_names(p)[False]} "
                      "(unaligned)"),
           shared_folder=True),
    Format("mmsa", "MMSA pickles", _pickle_pair(lambda p: mmsa.FILE_NAMES),
           lambda found, profile, opts: mmsa.read(found.files["pickle"], profile, found.facts["aligned"],
                                                  opts["padding"]),
           lambda p: "MMSA pickles aligned_50.pkl or unaligned_50.pkl"),
    Format("csd", "CMU-MultimodalSDK computational sequences", _find_csd,
           lambda found, profile, opts: csd.read(found.files, profile, opts),
           lambda p: ("CMU-MultimodalSDK .csd files (a labels .csd plus numeric text, audio and vision .csd, "
                      "e.g. *_TimestampedWordVectors, *_COVAREP, *_Facet_41)"),
           options={"csd_labels": None, "csd_text": None, "csd_audio": None, "csd_vision": None,
                    "folds": "standard", "label_column": 0}),
    Format("multibench", "MultiBench affect pickles", multibench.find,
           lambda found, profile, opts: multibench.read(found.files["pickle"], profile, opts["padding"]),
           multibench.accepted, shared_folder=True),
    Format("dialoguernn", "DialogueRNN / conv-emotion IEMOCAP features pickle", dialoguernn.find,
           lambda found, profile, opts: dialoguernn.read(found.files["pickle"], profile),
           dialoguernn.accepted, shared_folder=True),
    Format("misa", "MISA per-split pickles", misa.find_misa, misa.read_misa, misa.accepted_misa, misa.OPTIONS),
    Format("mag", "MAG (BERT_multimodal_transformer) pickle", misa.find_mag, misa.read_mag, misa.accepted_mag,
           misa.OPTIONS, shared_folder=True),
    Format("lmf", "LMF / early CMU pickle", lmf.find, lmf.read, lmf.accepted, shared_folder=True),
)}
