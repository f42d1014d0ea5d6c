"""Open research pickles without running their code or letting them exhaust the machine.

A pickle is a program that ``pickle.load`` runs.  Research data need numpy arrays and plain
containers, so :func:`load` runs it on a restricted interpreter (pickle's pure-Python one:
the C one cannot be hooked at BUILD, where numpy arrays get their data):

* **Code**: only the globals in :data:`ALLOWED` exist, each callable behind a guard that
  checks its arguments before anything is built.
* **Allocation bombs** (``numpy.ndarray((4000, 1000, 1000), 'i1')``: a few hundred bytes,
  3.7 GiB): arrays are built only as numpy pickles them - ``_reconstruct`` of an empty array,
  then ``__setstate__`` with data whose size matches the shape - length fields may not exceed
  the file, and what constructors materialise is charged to a budget of :data:`EXPANSION` x
  the file size + :data:`ALLOWANCE`.
* **Expansion bombs** (a list holding one child 1,000 times, nested: KBs in the file, 10^9
  elements to ``np.asarray``): the result's size as a tree - shared references counted each
  time - must fit the same budget and nest at most :data:`MAX_DEPTH` deep; the check visits
  each object once.  Dict keys and set members are scalars or short flat tuples, so hashing
  cannot walk a shared structure either.

The budget never refuses a real file because real files store their data: an array's bytes
are in the file (protocol 2 as latin-1 strings that ``_codecs.encode`` turns back into bytes,
once more the same size) and a list element takes at least a byte for its 8-byte slot.  Real
files come to 1-3x their size, lists of small ints and splits stored twice to under 16x;
bombs to millions of times.  Array-heavy files load at close to C speed, millions of Python
floats in lists ~20x slower.  Python-2 pickles load too: ``encoding="latin1"`` keeps their
numpy buffers intact and their str keys arrive as ``str``.
"""

from __future__ import annotations

import builtins
import codecs
import io
import math
import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np

from benchmark_core.errors import DataError

try:  # numpy moved its internals from numpy.core to numpy._core in 2.0
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

EXPANSION = 16  # a pickle may materialise / expand to 16x its size ...
ALLOWANCE = 64 * 2**20  # ... plus 64 MiB, so tiny files are never squeezed
MAX_DEPTH = 100  # containers nest at most this deep (research data: < 10)
KEY_TUPLE = 16  # a tuple used as a dict key or set member holds at most 16 scalars

_SCALARS = (str, bytes, bytearray, int, float, complex, type(None), np.generic)
_SLOTS = {float, int, bool, type(None)}  # the common leaves, sized without a call
# Bytes per character at most, for the text encodings data pickles use (numpy buffers are
# latin-1); others ('hex', 'zlib', 'unicode_escape') can expand or chain without bound.
_TEXT_ENCODINGS = {"iso8859-1": 1, "ascii": 1, "utf-8": 4}
_CORES = ("numpy.core", "numpy._core")
_PY2_NAMES = {"unicode": "str", "long": "int"}
_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float",
             "complex", "bool"}
# (module, name) pairs a data pickle may reference; numpy >= 2 files say numpy._core.
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {(f"{core}.multiarray", name) for core in _CORES for name in ("_reconstruct", "scalar")}
    | {(f"{core}.numeric", "_frombuffer") for core in _CORES}
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"), ("_codecs", "encode")}
    | {(module, name) for module in ("builtins", "__builtin__") for name in _BUILTINS}
    | {("__builtin__", name) for name in _PY2_NAMES}  # protocol < 3 spells builtins __builtin__
)
_BOMB_FIX = (
    "A data pickle stores its arrays, lists and strings in the file, so it never comes near "
    "this; the file is corrupt or built to exhaust memory or time (a 'pickle bomb'). If you "
    "created it, save the arrays again (pickle.dump of plain dicts of numpy arrays, or "
    "np.savez); if you did not, delete it. See docs/datasets.md, 'Safety and caching'."
)


class UnsafePickleError(DataError):
    """The pickle asks for something data never need: code, or far more memory or time than
    its size can justify."""


def _numpy_dtype_class(module: str, name: str) -> bool:
    # numpy >= 1.25 pickles some dtypes by their class, e.g. numpy.dtypes.Float32DType.
    return module == "numpy.dtypes" and name.endswith("DType")


def _human(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _length(value: Any) -> int:
    """Bytes (arrays, strings) or items a constructor will copy from ``value``."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    try:
        return len(value)
    except TypeError:
        return 0  # numbers, None: nothing to copy


def _is_key(value: Any) -> bool:
    """Keys must hash in time proportional to their bytes in the file: a tuple of tuples that
    share one child through the memo hashes in 2**depth steps."""
    if isinstance(value, _SCALARS):
        return True
    return type(value) is tuple and len(value) <= KEY_TUPLE and all(isinstance(v, _SCALARS) for v in value)


def _leaf_size(value: Any) -> int | None:
    """Bytes a leaf stands for (an 8-byte slot, a string's length, an array's data); None for
    containers, which the expansion walk descends into."""
    if isinstance(value, (str, bytes, bytearray)):
        return 8 + len(value)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return None
        # A zero in the shape makes nbytes 0, but iterating still yields every row: count them.
        return 8 + max(value.itemsize, 1) * math.prod(max(d, 1) for d in value.shape)
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return None
    return 8


def _children(value: Any) -> tuple[int, list[Any]]:
    """A container's own size plus its leaves' sizes, and the children that are containers."""
    if isinstance(value, np.ndarray):  # object dtype (other arrays are leaves)
        own = 8 * math.prod(max(d, 1) for d in value.shape)
        items: Iterable[Any] = ([value[name] for name in value.dtype.names] if value.dtype.names
                                else value.reshape(-1).tolist())
    elif isinstance(value, dict):
        own, items = 8, [*value.keys(), *value.values()]
    else:
        own, items = 8, value
    children = []
    for item in items:
        if type(item) in _SLOTS:
            own += 8
            continue
        size = _leaf_size(item)
        if size is None:
            children.append(item)
        else:
            own += size
    return own, children


class BoundedReader:
    """The file as the unpickler reads it.  A read longer than what is left comes from a cut
    file or a lying length field; either way it must fail before allocating that length.
    Public (``fusebench.BoundedReader``) for code that walks a pickle's opcodes without
    loading it (``pickletools.genops(BoundedReader(fh, size))``), which needs the same guard."""

    def __init__(self, fh: BinaryIO, size: int):
        self._fh, self._left = fh, size - fh.tell()

    def read(self, n: int) -> bytes:
        if n > self._left:
            raise pickle.UnpicklingError(f"an object of {_human(n)} is declared but only "
                                         f"{_human(self._left)} of the file follow")
        data = self._fh.read(n)
        self._left -= len(data)
        return data

    def readline(self) -> bytes:
        data = self._fh.readline()
        self._left -= len(data)
        return data


class _NdarrayType:
    """``numpy.ndarray`` as a pickle names it: the type argument of ``_reconstruct``, never
    called (a direct call allocates uninitialised memory of any shape)."""

    def __init__(self, refuse: Callable[[str], UnsafePickleError]):
        self._refuse = refuse

    def __call__(self, *args: Any) -> NoReturn:
        raise self._refuse("calls numpy.ndarray(shape, dtype) directly, which allocates memory of "
                           "any size without data; numpy's own pickles never do")


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """The allow-listing, size-bounded unpickler behind :func:`load`; public because the torch
    checkpoint reader (:mod:`benchmark_core.engine.safe_torch`) extends it for torch's storages."""

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, fh: BinaryIO, source: str, size: int, *, budget_size: int | None = None, **kwargs: Any):
        """``size``: the bytes ``fh`` holds from here on; ``budget_size``: the size the budget is
        computed from when the pickle is one part of a larger file (a torch archive's data.pkl,
        whose tensors' bytes sit beside it), else ``size``."""
        super().__init__(BoundedReader(fh, size), **kwargs)
        self._source, self._size = source, size
        self._limit, self._spent = EXPANSION * (budget_size or size) + ALLOWANCE, 0
        self._ndarray = _NdarrayType(self._refuse)
        numpy_guards = {"_reconstruct": self._reconstruct, "scalar": self._scalar, "_frombuffer": self._frombuffer}
        self._globals: dict[tuple[str, str], Any] = {
            ("numpy", "ndarray"): self._ndarray,
            ("numpy", "dtype"): np.dtype,  # builds no data; arrays of it are checked at BUILD
            ("_codecs", "encode"): self._codecs_encode,
            ("collections", "OrderedDict"): self._container(OrderedDict, 16, pairs=True),
        }
        for module, name in ALLOWED - self._globals.keys():
            self._globals[module, name] = (numpy_guards[name] if module.startswith(_CORES)
                                           else self._builtin(getattr(builtins, _PY2_NAMES.get(name, name))))

    # -- refusals and the budget -------------------------------------------------------------

    def _refuse(self, reason: str, fix: str = _BOMB_FIX) -> UnsafePickleError:
        return UnsafePickleError(f"Refused to unpickle {self._source}: it {reason}. {fix}")

    def _over_limit(self, what: str) -> UnsafePickleError:
        return self._refuse(f"{what}, more than a {_human(self._size)} pickle may: {EXPANSION}x its "
                            f"size + {_human(ALLOWANCE)} = {_human(self._limit)}")

    def _charge(self, size: int, what: str) -> None:
        self._spent += size
        if self._spent > self._limit:
            raise self._over_limit(f"would materialise {_human(self._spent)} (at {what})")

    def _key(self, value: Any) -> Any:
        if not _is_key(value):
            raise self._refuse(f"uses a {type(value).__name__} as a dict key or set member; data use "
                               f"numbers, strings or tuples of at most {KEY_TUPLE} of them")
        return value

    def _target(self, kind: type | tuple[type, ...], opcode: str) -> Any:
        target = self.stack[-1]
        if not isinstance(target, kind):
            raise self._refuse(f"applies {opcode} to a {type(target).__name__}, which data pickles never do")
        return target

    def _encoding(self, name: Any, errors: Any = "strict") -> int:
        """Bytes per character of ``name``; refuses encodings that expand, decompress or chain."""
        try:
            canonical = codecs.lookup(name).name
        except LookupError:
            raise self._refuse(f"names the text encoding {name!r}, which Python does not know") from None
        if canonical not in _TEXT_ENCODINGS or errors != "strict":
            raise self._refuse(f"encodes with {name!r} (errors={errors!r}); data pickles use latin-1, "
                               "ascii or utf-8, strictly")
        return _TEXT_ENCODINGS[canonical]

    # -- globals: the allow-list, each callable behind a guard --------------------------------

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._globals:
            return self._globals[module, name]
        if _numpy_dtype_class(module, name):
            return getattr(np.dtypes, name)
        raise self._refuse(
            f"references {module}.{name}, which is not a numpy array or a plain container (dict, "
            "list, tuple, str, bytes, numbers)",
            "FuseBench never runs code from data files. If the file is genuine, re-save its arrays "
            "with numpy (np.savez) or as plain dicts of numpy arrays; if you did not create it, delete it.")

    def _builtin(self, kind: type) -> Callable:
        if kind in (list, tuple, set, frozenset, dict):
            return self._container(kind, 16 if kind is dict else 8, keys=kind in (set, frozenset),
                                   pairs=kind is dict)
        return self._binary(kind) if kind in (bytes, bytearray) else self._scalar_type(kind)

    def _container(self, kind: type, per_item: int, *, keys: bool = False, pairs: bool = False) -> Callable:
        def guarded(items: Any = ()) -> Any:
            self._charge(per_item * _length(items), kind.__name__)
            if pairs and not isinstance(items, dict):
                for pair in items:
                    if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                        raise self._refuse(f"builds a {kind.__name__} from a {type(pair).__name__} "
                                           "instead of key-value pairs")
                    self._key(pair[0])
            elif keys:
                for item in items:
                    self._key(item)
            return kind(items)
        return guarded

    def _binary(self, kind: type) -> Callable:
        def guarded(source: Any = b"", *encoding: Any) -> Any:
            if isinstance(source, str):
                size = len(source) * self._encoding(*encoding) if encoding else 0
            elif isinstance(source, (int, np.integer)):  # bytes(n): n zero bytes
                size = int(source)
            else:
                size = _length(source)
            self._charge(size, kind.__name__)
            return kind(source, *encoding)
        return guarded

    def _scalar_type(self, kind: type) -> Callable:
        def guarded(*args: Any) -> Any:
            if not all(isinstance(a, _SCALARS) for a in args):
                raise self._refuse(f"calls {kind.__name__} on a {type(args[0]).__name__}; data pickles "
                                   "only convert numbers and strings")
            if kind is str and len(args) > 1:
                self._encoding(*args[1:])
            self._charge(4 * sum(_length(a) for a in args), kind.__name__)
            return kind(*args)
        return guarded

    def _codecs_encode(self, text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        if not isinstance(text, str):
            raise self._refuse(f"calls _codecs.encode on a {type(text).__name__}; data pickles encode "
                               "strings (protocol-2 bytes)")
        self._charge(len(text) * self._encoding(encoding, errors), "_codecs.encode")
        return codecs.encode(text, encoding, errors)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not self._ndarray or self._count(shape) != 0:
            raise self._refuse(f"calls numpy _reconstruct with shape {shape!r}; numpy's pickles "
                               "reconstruct an empty array and give it its data at BUILD")
        return _multiarray._reconstruct(np.ndarray, shape, dtype)

    def _scalar(self, dtype: Any, *data: Any) -> Any:
        if not isinstance(dtype, np.dtype):
            raise self._refuse(f"calls numpy scalar with a {type(dtype).__name__} for its dtype")
        self._charge(dtype.itemsize, "a numpy scalar")
        return _multiarray.scalar(dtype, *data)

    def _frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        self._count(shape)
        self._charge(_length(buffer), "a numpy array")
        return _numeric._frombuffer(buffer, dtype, shape, order)

    def _count(self, shape: Any) -> int:
        if not (isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise self._refuse(f"gives an array the shape {shape!r}, not a tuple of sizes")
        return math.prod(shape)

    # -- opcodes that act on objects ---------------------------------------------------------

    def load_build(self) -> None:
        """Numpy arrays get their data here; nothing else needs state."""
        state = self.stack.pop()
        target = self._target((np.ndarray, np.dtype), "BUILD (set state)")
        if isinstance(target, np.ndarray):
            self._array_state(state)
        target.__setstate__(state)

    def _array_state(self, state: Any) -> None:
        """numpy allocates shape x itemsize before it checks the data (an object array of shape
        (400, 1000, 1000) and a one-item list: 3 GiB), so check and charge first."""
        if not (isinstance(state, tuple) and len(state) in (4, 5) and isinstance(state[-3], np.dtype)):
            raise self._refuse("gives a numpy array a state that is not (shape, dtype, fortran, data)")
        shape, dtype, _, data = state[-4:]
        count = self._count(shape)
        # Object arrays pickle their items as a list, the others their bytes.
        kinds, expected = ((list,), count) if dtype.hasobject else ((bytes, bytearray, str), count * dtype.itemsize)
        if not isinstance(data, kinds) or len(data) != expected:
            raise self._refuse(f"gives a numpy array of shape {shape} and dtype {dtype} a "
                               f"{type(data).__name__} of length {_length(data)} as its data, not "
                               f"{expected} {'items' if dtype.hasobject else 'bytes'}")
        self._charge(count * dtype.itemsize, f"a numpy array of shape {shape}")

    def load_append(self) -> None:
        value = self.stack.pop()
        self._target(list, "APPEND").append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._target(list, "APPENDS").extend(items)

    def load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self._target(dict, "SETITEM")[self._key(key)] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._target(dict, "SETITEMS")
        for i in range(0, len(items), 2):
            target[self._key(items[i])] = items[i + 1]

    def load_dict(self) -> None:
        items = self.pop_mark()
        self.append({self._key(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._target(set, "ADDITEMS").update(self._key(item) for item in items)

    def load_frozenset(self) -> None:
        self.append(frozenset(self._key(item) for item in self.pop_mark()))

    def load_bytearray8(self) -> None:
        (length,) = struct.unpack("<Q", self.read(8))
        if length > self._size:
            raise pickle.UnpicklingError(f"a bytearray of {_human(length)} is declared in a "
                                         f"{_human(self._size)} file")
        buffer = bytearray(length)
        self.readinto(buffer)
        self.append(buffer)

    def load_arbitrary_object(self) -> NoReturn:
        raise self._refuse("uses an opcode that creates instances of arbitrary classes (NEWOBJ, INST "
                           "or OBJ), which data pickles never do")

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8
    for _opcode in (pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.INST, pickle.OBJ):
        dispatch[_opcode[0]] = load_arbitrary_object

    # -- the result as a tree ------------------------------------------------------------------

    def check_expansion(self, root: Any) -> None:
        """Refuse a result that stands for more than the budget, or nests deeper than
        :data:`MAX_DEPTH`, when walked as a tree.  Sizes and heights are memoised per object,
        so shared children are added again without being walked again."""
        done: dict[int, tuple[int, int]] = {}  # id -> (size, height)
        path: set[int] = set()
        alive: list[Any] = []  # temporaries (field views) keep their ids while ``done`` holds them
        frames: list[list[Any]] = [[[root], None]]
        while frames:
            frame = frames[-1]
            value, parts = frame
            if id(value) in done:
                frames.pop()
            elif parts is None:
                frame[1] = parts = _children(value)
                alive.append(parts)
                path.add(id(value))
                for child in parts[1]:
                    if id(child) in path:
                        raise self._refuse("contains itself (a reference cycle), which no data structure does")
                    if id(child) not in done:
                        frames.append([child, None])
            else:
                below = [done[id(child)] for child in parts[1]]
                size = parts[0] + sum(s for s, _ in below)
                height = 1 + max((h for _, h in below), default=0)
                if size > self._limit:
                    raise self._over_limit(f"expands to {_human(size)} when its shared references are "
                                           "walked (e.g. by np.asarray)")
                if height > MAX_DEPTH:
                    raise self._refuse(f"nests containers {height} deep; data nest fewer than "
                                       f"{MAX_DEPTH} levels")
                done[id(value)] = (size, height)
                path.discard(id(value))
                frames.pop()


def _load(fh: BinaryIO, source: str, size: int, encoding: str) -> Any:
    unpickler = RestrictedUnpickler(fh, source, size, encoding=encoding)
    with read_errors(source, size):
        data = unpickler.load()
        unpickler.check_expansion(data)
        return data


@contextmanager
def read_errors(source: str, size: int) -> Iterator[None]:
    """Turn what a broken (not hostile) pickle raises into one DataError naming ``source``;
    shared with :mod:`.safe_torch`, whose files are pickles too."""
    try:
        yield
    except UnsafePickleError:
        raise
    except MemoryError:
        raise DataError(
            f"Ran out of memory reading the pickle {source} ({_human(size)}): converting it needs about "
            "2-3x its size in free memory (once; later runs read the converted cache). Free memory or "
            "convert it on a larger machine."
        ) from None
    except RecursionError:
        raise DataError(f"Could not read the pickle {source}: its objects nest too deeply to read "
                        f"(RecursionError). {_BOMB_FIX}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, LookupError,
            struct.error, ArithmeticError) as exc:
        raise DataError(
            f"Could not read the pickle {source}: {type(exc).__name__}: {exc}. The file is "
            "truncated or not a pickle; download it again (compare its size/SHA-256 with the "
            "source) or point FuseBench at another copy."
        ) from exc


def load(path: str | PathLike[str], *, encoding: str = "latin1") -> Any:
    """Unpickle ``path`` admitting only numpy arrays and plain containers, within the budget."""
    path = Path(path)
    with path.open("rb") as fh:
        return _load(fh, str(path), path.stat().st_size, encoding)


def loads(data: bytes, *, source: str = "<bytes>", encoding: str = "latin1") -> Any:
    """:func:`load` for in-memory bytes."""
    return _load(io.BytesIO(data), source, len(data), encoding)
