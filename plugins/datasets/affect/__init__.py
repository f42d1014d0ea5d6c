"""CMU-MOSI, CMU-MOSEI and IEMOCAP from the files researchers actually hold.

One reader per on-disk format (:mod:`.mult`, :mod:`.mmsa`, :mod:`.csd`), one profile per
dataset (:mod:`.profiles`), one DatasetSpec factory (:mod:`.loader`).  Pickles are opened
with ``fusebench.safe_pickle_load`` (no code runs, no allocation bombs); conversions are
cached by content with ``fusebench.cached_dataset``.
"""

from fusebench import hookimpl

from .loader import make_spec
from .profiles import PROFILES


@hookimpl
def register_datasets(register):
    for profile in PROFILES:
        register(make_spec(profile))
