"""What a pickle's top level looks like, from its first opcodes, without unpickling it.

Two unrelated layouts share the name ``mosi.pkl``: MAG's dict of split *lists* and LMF's dict
of split *dicts* (MAG's own Dropbox link served the LMF file, BERT_multimodal_transformer#12).
Telling them apart by loading would read up to GBs twice; the first opcodes already say it:
the top-level container, its first key, the container that key maps to and that container's
first key.  ``pickletools.genops`` only decodes opcodes, so nothing in the file runs.
"""

from __future__ import annotations

import pickle
import pickletools
from pathlib import Path
from typing import IO, Literal, cast

from fusebench import BoundedReader

from .convert import SPLIT_ALIASES

Layout = Literal["list", "split lists", "split fields", "emotion splits"]

LMF_FIELDS = ("covarep", "facet", "glove", "label")
LMF_EMOTIONS = ("happy", "sad", "angry", "neutral")
_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
            "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"}
_DICT, _LIST = {"EMPTY_DICT", "DICT"}, {"EMPTY_LIST", "LIST"}
_OPCODES = 256  # the outline is decided within the first few dozen opcodes of a real file
_KEY_LENGTH = 32  # keys are short names; longer strings are data and never read


def _decide(events: list[str | tuple[str]]) -> Layout | Literal[False] | None:
    """The layout, None for "not one of these", or False while undecided.  ``events``: "dict",
    "list" and (key,) for strings, in file order; a bytes key pickled by Python 3 with protocol
    2 reads ``_codecs.encode('key', 'latin1')``, so only the first string after a container
    counts as its key."""
    if not events:
        return False
    if events[0] == "list":
        return "list"
    if events[0] != "dict":
        return None
    keys = [i for i, e in enumerate(events) if isinstance(e, tuple)]
    if not keys:
        return False
    first = events[keys[0]][0]
    inner = next((i for i in range(keys[0] + 1, len(events)) if not isinstance(events[i], tuple)), None)
    if inner is None:
        return False
    if events[inner] == "list":
        return "split lists" if first in SPLIT_ALIASES else None
    second = next((e[0] for e in events[inner + 1:] if isinstance(e, tuple)), None)
    if second is None:
        return False
    if first in SPLIT_ALIASES and second in LMF_FIELDS:
        return "split fields"
    if first in LMF_EMOTIONS and second in SPLIT_ALIASES:
        return "emotion splits"
    return None


def outline(path: Path) -> Layout | None:
    """``list`` (MISA split file), ``split lists`` (MAG), ``split fields`` (LMF MOSI),
    ``emotion splits`` (LMF IEMOCAP), or None (something else, or not a pickle)."""
    events: list[str | tuple[str]] = []
    try:
        with path.open("rb") as fh:  # bounded: a lying length field must not allocate it
            opcodes = pickletools.genops(cast(IO[bytes], BoundedReader(fh, path.stat().st_size)))
            for count, (op, arg, _) in enumerate(opcodes):
                if count >= _OPCODES:
                    return None
                if op.name in _DICT:
                    events.append("dict")
                elif op.name in _LIST:
                    events.append("list")
                elif op.name in _STRINGS and isinstance(arg, (str, bytes)) and len(arg) <= _KEY_LENGTH:
                    events.append((arg.decode("latin-1") if isinstance(arg, bytes) else arg,))
                else:
                    continue
                decided = _decide(events)
                if decided is not False:
                    return decided
    except (ValueError, EOFError, OSError, pickle.UnpicklingError):  # not a pickle, or cut short
        return None
    return None
