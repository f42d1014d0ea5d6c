"""Open research pickles without running their code.

A pickle can name any importable callable (``os.system``, ``subprocess.Popen``...) and
``pickle.load`` will call it.  Dataset pickles only need numpy arrays and plain containers,
so :func:`load` admits exactly those globals and refuses everything else *before* calling
it.  Python-2 pickles (LMF, the CMU "seq_length_50" files) load too: ``encoding="latin1"``
keeps their numpy buffers intact and their str keys arrive as ``str``.
"""

from __future__ import annotations

import io
import pickle
from os import PathLike
from pathlib import Path
from typing import Any

from .errors import DataError

# (module, name) pairs a data pickle may reference.  numpy moved its internals from
# ``numpy.core`` to ``numpy._core`` in 2.0; files written by either version must load.
_NUMPY = {
    (core, name)
    for core in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    (numeric, "_frombuffer") for numeric in ("numpy.core.numeric", "numpy._core.numeric")
} | {("numpy", "ndarray"), ("numpy", "dtype")}
_CONTAINERS = {
    ("builtins", name)
    for name in ("dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "str",
                 "int", "float", "complex", "bool")
} | {
    ("__builtin__", name) for name in ("set", "frozenset", "bytearray", "unicode", "long")
} | {("collections", "OrderedDict"), ("_codecs", "encode")}
ALLOWED: frozenset[tuple[str, str]] = frozenset(_NUMPY | _CONTAINERS)


class UnsafePickleError(DataError):
    """The pickle references a global outside :data:`ALLOWED`."""


def _numpy_dtype_class(module: str, name: str) -> bool:
    # numpy >= 1.25 pickles some dtypes by their class, e.g. numpy.dtypes.Float32DType.
    return module == "numpy.dtypes" and name.endswith("DType")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str, **kwargs: Any):
        super().__init__(file, **kwargs)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED or _numpy_dtype_class(module, name):
            if module == "__builtin__":
                module = "builtins"
                name = {"unicode": "str", "long": "int"}.get(name, name)
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"Refused to unpickle {self._source}: it references {module}.{name}, which is not "
            "a numpy array or a plain container (dict, list, tuple, str, bytes, numbers). "
            "FuseBench never runs code from data files. If the file is genuine, re-save its "
            "arrays with numpy (np.savez) or as plain dicts of numpy arrays; if you did not "
            "create it, delete it."
        )


def load(path: str | PathLike[str], *, encoding: str = "latin1") -> Any:
    """Unpickle ``path`` admitting only numpy arrays and plain containers."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return _RestrictedUnpickler(fh, str(path), encoding=encoding).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"Could not read the pickle {path}: {type(exc).__name__}: {exc}. The file is "
            "truncated or not a pickle; download it again (compare its size/SHA-256 with the "
            "source) or point FuseBench at another copy."
        ) from exc


def loads(data: bytes, *, source: str = "<bytes>", encoding: str = "latin1") -> Any:
    """:func:`load` for in-memory bytes."""
    return _RestrictedUnpickler(io.BytesIO(data), source, encoding=encoding).load()
