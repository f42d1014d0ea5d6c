"""Where a dataset plugin finds the files a user obtained (``bench run --data-dir``).

``bench run --data-dir DIR`` is not a RunSpec field: the same data sit at different paths on
different machines, and the content hash of what was loaded (``fusebench.data_hash``) is what
identifies the data.  The CLI therefore hands it to loaders through ``$FUSEBENCH_DATA_DIR``
(inherited by ``process`` workers and a local Ray cluster); a dataset plugin resolves its
files here, in the order the built-in affect loaders search, so ``--data-dir`` means the same
thing for every dataset.

Search order, first hit wins:

1. the dataset's own ``data_dir`` option (``--dataset-option NAME.data_dir=DIR``), alone: a
   user who names the folder means that folder.  Being an option, it is part of every run's
   ``spec_hash``;
2. ``$FUSEBENCH_DATA_DIR/<dataset>`` (what ``--data-dir DIR`` sets);
3. ``~/.fusebench/data/<dataset>``.

Nothing is ever downloaded; a miss is a :class:`~benchmark_core.errors.DataError` that names
every place looked in and the flags that fix it.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark_core.errors import DataError

ENV_VAR = "FUSEBENCH_DATA_DIR"
OPTION = "data_dir"


def default_root() -> Path:
    """``~/.fusebench/data``, resolved when called (so a changed ``HOME`` is honoured)."""
    return Path.home() / ".fusebench" / "data"


def data_roots() -> list[Path]:
    """The roots holding one folder per dataset: ``$FUSEBENCH_DATA_DIR`` (if set), then
    ``~/.fusebench/data``."""
    roots = []
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        roots.append(Path(env).expanduser())
    roots.append(default_root())
    return list(dict.fromkeys(roots))


def data_dirs(dataset: str, option: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders to search for ``dataset``'s files, in priority order.

    ``option`` is the value of the dataset's ``data_dir`` option (``None`` or ``""``: not
    given); when given it is the only folder searched.  For a loader that needs its own
    search (several file layouts, sub-folders); most plugins want :func:`data_path`.
    """
    if option not in (None, ""):
        return [Path(os.fspath(option)).expanduser()]
    return [root / dataset for root in data_roots()]


def data_path(dataset: str, *parts: str, option: str | os.PathLike[str] | None = None,
              option_name: str | None = OPTION, how_to_obtain: str = "") -> Path:
    """The first existing ``<folder>/<parts...>`` over :func:`data_dirs`, or a ``DataError``.

    ``data_path("my-data")`` finds the dataset's folder; ``data_path("my-data", "train.csv",
    option=options.get("data_dir"))`` one file in it.  The error names every path looked at
    and how to point FuseBench at the files (``option_name``: the dataset option that names
    the folder, mentioned in the error; ``None`` if the dataset has none), followed by
    ``how_to_obtain``.
    """
    looked = []
    for folder in data_dirs(dataset, option):
        candidate = folder.joinpath(*parts)
        looked.append(candidate)
        if candidate.exists() if parts else candidate.is_dir():
            return candidate
    raise missing_data_error(dataset, looked, parts, option_name=option_name,
                             option_given=option not in (None, ""), how_to_obtain=how_to_obtain)


def missing_data_error(dataset: str, looked: list[Path], parts: tuple[str, ...] = (), *,
                       option_name: str | None = OPTION, option_given: bool = False,
                       how_to_obtain: str = "") -> DataError:
    """One paragraph: what is missing, where it was looked for, and the flags that fix it."""
    what = f"file {'/'.join(parts)!r}" if parts else "folder"
    where = ", ".join(str(p) for p in dict.fromkeys(looked))
    if option_given:
        fix = (f"The --dataset-option {dataset}.{option_name}=... folder is the only place searched "
               "when it is given; correct it, or leave it out to search --data-dir and ~/.fusebench/data.")
    else:
        fix = (f"Pass `bench run --data-dir DIR` (searched as DIR/{dataset}/), set ${ENV_VAR}, or put "
               f"the files in {default_root() / dataset}/")
        fix += f", or name the folder with --dataset-option {dataset}.{option_name}=DIR." if option_name else "."
    text = f"{dataset}: data {what} not found. Looked in: {where}. {fix} FuseBench never downloads datasets."
    if how_to_obtain:
        text += f" Where to obtain them: {how_to_obtain}"
    return DataError(text)
