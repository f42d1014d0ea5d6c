"""Open files written by ``torch.save`` without torch and without running their code.

Research code ships embedding matrices this way - MISA's ``embedding_and_mapping.pt`` is
``torch.save((embedding_matrix, word2id))`` with ``word2id`` a ``collections.defaultdict``
whose default factory is MISA's own ``create_dataset.return_unk``.  ``torch.load`` runs
the pickle (any code), and ``torch.load(weights_only=True)`` refuses that foreign factory,
so this module reads both container formats itself:

* **zip** (torch >= 1.6 default): ``<archive>/data.pkl`` plus one raw entry
  ``<archive>/data/<key>`` per storage;
* **legacy** (torch < 1.6, or ``_use_new_zipfile_serialization=False``): five pickles in a
  row - magic number, protocol version 1001, system info, the object, the sorted storage keys -
  then each storage as an 8-byte little-endian element count and its raw bytes.

The pickles run on :mod:`.safe_pickle`'s restricted unpickler (same allow-list, guards and
size budget, computed from the whole file) plus exactly: tensors rebuilt by
``torch._utils._rebuild_tensor_v2`` from ``torch.<Type>Storage`` records (persistent ids),
returned as numpy arrays; ``collections.defaultdict`` whose factory is MISA's
``create_dataset.return_unk``, returned as a plain dict (the factory only answers unknown
words, which readers count themselves; the module named in the file is never imported).
Anything else is refused naming the file.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np

from benchmark_core.engine.safe_pickle import RestrictedUnpickler, UnsafePickleError, read_errors
from benchmark_core.errors import DataError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001  # torch.serialization.PROTOCOL_VERSION
# torch.<Type>Storage -> the numpy dtype of its raw bytes (always little-endian on disk here).
STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
                  "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
                  "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}
FACTORY = ("create_dataset", "return_unk")  # MISA's word2id default factory
_FIX = ("FuseBench reads torch files holding tensors, numpy arrays, plain containers and MISA's "
        "word2id, and never runs code from them. If the file is genuine, save its data again as "
        "plain objects (e.g. torch.save((matrix, dict(word2id)), path)); if you did not create it, "
        "delete it.")


class _Named:
    """A global the file may name but never call: a storage type or MISA's factory."""

    def __init__(self, name: str, refuse: Callable[[str], UnsafePickleError], dtype: str | None = None):
        self.name, self._refuse = name, refuse
        self.dtype = np.dtype(dtype) if dtype else None

    def __call__(self, *args: Any) -> NoReturn:
        raise self._refuse(f"calls {self.name}, which torch.save never writes")


@dataclass(eq=False)
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None  # the raw elements, once read from the file


@dataclass(eq=False)
class _Tensor:
    """A tensor whose storage bytes may still be ahead in the file (legacy format)."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        item = self.storage.dtype.itemsize
        assert self.storage.data is not None
        view = np.lib.stride_tricks.as_strided(self.storage.data[self.offset:], shape=self.size,
                                               strides=tuple(s * item for s in self.stride), writeable=False)
        return np.array(view)


def _text(value: Any) -> Any:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _sizes(value: Any) -> bool:
    return isinstance(value, tuple) and all(type(d) is int and d >= 0 for d in value)


class _TorchUnpickler(RestrictedUnpickler):
    def __init__(self, fh: BinaryIO, source: str, size: int, *, budget_size: int | None = None):
        super().__init__(fh, source, size, budget_size=budget_size, encoding="latin1")
        self.storages: dict[str, _Storage] = {}
        self._factory = _Named(".".join(FACTORY), self.refuse)
        self._globals.update({("torch", name): _Named(f"torch.{name}", self.refuse, dtype)
                              for name, dtype in STORAGE_DTYPES.items()})
        self._globals.update({FACTORY: self._factory,
                              ("collections", "defaultdict"): self._defaultdict,
                              ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor})

    def refuse(self, reason: str) -> UnsafePickleError:
        return self._refuse(reason, _FIX)

    def charge(self, size: int, what: str) -> None:
        self._charge(size, what)

    def persistent_load(self, pid: Any) -> _Storage:
        """torch.save's storage records: ('storage', torch.<Type>Storage, key, location, numel)
        plus, in the legacy format, a view record that is None for whole storages."""
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and _text(pid[0]) == "storage"):
            raise self.refuse(f"uses a persistent id {str(pid)[:80]!r}, not a torch storage record")
        _, kind, key, _location, numel, *view = pid
        key = _text(key)
        if not (isinstance(kind, _Named) and kind.dtype is not None and isinstance(key, str)
                and type(numel) is int and numel >= 0):
            raise self.refuse(f"gives a storage record of {str(pid)[:120]!r}; torch writes "
                              "(storage type, key, location, element count)")
        if view and view[0] is not None:
            raise self.refuse("holds a storage view (written by torch < 0.4), which FuseBench does not read")
        storage = self.storages.setdefault(key, _Storage(key, kind.dtype, numel))
        if (storage.dtype, storage.numel) != (kind.dtype, numel):
            raise self.refuse(f"declares storage {key!r} twice with different types or sizes")
        return storage

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                        hooks: Any = None, *metadata: Any) -> _Tensor:
        """Check what torch would index before anything is read: a tensor must lie inside its
        storage, whose bytes must be in the file."""
        if not (isinstance(storage, _Storage) and type(offset) is int and offset >= 0 and _sizes(size)
                and _sizes(stride) and len(size) == len(stride) and isinstance(requires_grad, bool)
                and (hooks is None or (isinstance(hooks, dict) and not hooks)) and not any(metadata)):
            raise self.refuse("rebuilds a tensor from arguments torch.save does not write (storage, "
                              "offset, size, stride, requires_grad, no hooks)")
        last = offset + sum((d - 1) * s for d, s in zip(size, stride, strict=True)) if math.prod(size) else offset - 1
        if last >= storage.numel:
            raise self.refuse(f"places a tensor of size {size} at offset {offset} in a storage of "
                              f"{storage.numel} elements")
        self.charge(math.prod(size) * storage.dtype.itemsize, f"a tensor of size {size}")
        return _Tensor(storage, offset, size, stride)

    def _defaultdict(self, factory: Any = None, *rest: Any) -> dict:
        if factory is not self._factory or rest:
            raise self.refuse("builds a collections.defaultdict whose default factory is not MISA's "
                              "create_dataset.return_unk, the only one admitted")
        return {}

    def materialise(self, root: Any) -> Any:
        """``root`` with every tensor replaced by its numpy array (containers rebuilt once each)."""
        done: dict[int, Any] = {}

        def walk(value: Any) -> Any:
            if id(value) in done:
                return done[id(value)]
            if isinstance(value, _Tensor):
                out: Any = value.array()
            elif type(value) in (tuple, list):
                out = type(value)(walk(v) for v in value)
            elif isinstance(value, dict):
                out = type(value)((k, walk(v)) for k, v in value.items())
            else:
                return value
            done[id(value)] = out
            return out

        return walk(root)


def _storage_bytes(unpickler: _TorchUnpickler, storage: _Storage, data: bytes, where: str) -> None:
    expected = storage.numel * storage.dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{where}: storage {storage.key!r} should hold {storage.numel} elements of "
                        f"{storage.dtype} ({expected} bytes), found {len(data)} bytes. The file is truncated "
                        "or damaged; save it again with torch.save or take it again from its source.")
    unpickler.charge(expected, f"storage {storage.key!r}")
    storage.data = np.frombuffer(data, dtype=storage.dtype)


def _legacy(fh: BinaryIO, source: str, size: int) -> Any:
    unpickler = _TorchUnpickler(fh, source, size)
    with read_errors(source, size):
        magic = unpickler.load()
        if type(magic) is not int or magic != MAGIC_NUMBER:
            raise DataError(f"{source} is not a file written by torch.save: it is neither a torch zip archive "
                            "nor starts with torch's magic number (the legacy format). Point FuseBench at the "
                            "file torch.save wrote.")
        protocol, info = unpickler.load(), unpickler.load()
        if type(protocol) is not int or protocol != LEGACY_PROTOCOL or not isinstance(info, dict):
            raise DataError(f"{source} is a torch file of legacy protocol {protocol!r}; FuseBench reads protocol "
                            f"{LEGACY_PROTOCOL} (torch 0.4-1.5) and zip archives. Load it with torch and save it "
                            "again with a current one.")
        if info.get("little_endian") is not True:
            raise DataError(f"{source} was saved on a big-endian machine; FuseBench reads little-endian "
                            "torch files. Load and save it again with torch on a little-endian machine.")
        root, keys = unpickler.load(), unpickler.load()
        if not (isinstance(keys, list) and sorted(map(str, keys)) == sorted(unpickler.storages)):
            raise unpickler.refuse("lists storage keys that do not match the storages its tensors use")
        for key in keys:
            storage = unpickler.storages[key]
            count = int.from_bytes(fh.read(8), "little", signed=True)
            if count != storage.numel:
                raise DataError(f"{source}: storage {key!r} declares {count} elements after the pickles, "
                                f"{storage.numel} in them. The file is truncated or damaged; take it again.")
            remaining = size - fh.tell()
            _storage_bytes(unpickler, storage, fh.read(min(count * storage.dtype.itemsize, remaining)), source)
        unpickler.check_expansion(root)  # before walking it (tensors are leaves, already charged)
        return unpickler.materialise(root)


def _archive(fh: BinaryIO, source: str, size: int) -> Any:
    try:
        archive = zipfile.ZipFile(fh)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{source} is not a readable torch zip archive ({exc}). The file is damaged; "
                        "save it again with torch.save or take it again from its source.") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise DataError(f"{source} is a zip file but not one torch.save wrote: it should hold exactly one "
                            f"<archive>/data.pkl, found {pickles or 'none'}. Point FuseBench at the .pt file "
                            "torch.save wrote.")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise DataError(f"{source} was saved on a big-endian machine; FuseBench reads little-endian "
                            "torch files. Load and save it again with torch on a little-endian machine.")

        def entry(name: str, expected: int | None = None) -> bytes:
            """An entry's bytes, refusing before decompression what cannot be genuine: torch
            stores entries uncompressed, so none is larger than the archive."""
            info = archive.getinfo(name)
            if info.file_size > size or (expected is not None and info.file_size != expected):
                raise DataError(f"{source}: entry {name} declares {info.file_size} bytes"
                                + (f", its storage needs {expected}" if expected is not None else
                                   f" in a {size}-byte archive")
                                + ". The file is damaged or was not written by torch.save; take it again.")
            return archive.read(name)

        data = entry(pickles[0])
        where = f"{source} ({pickles[0]})"
        unpickler = _TorchUnpickler(io.BytesIO(data), where, len(data), budget_size=size)
        with read_errors(where, len(data)):
            root = unpickler.load()
            for key, storage in unpickler.storages.items():
                name = f"{prefix}data/{key}"
                if name not in archive.namelist():
                    raise DataError(f"{source}: the tensor data entry {name} is missing. The archive is "
                                    "incomplete; save it again with torch.save or take it again.")
                _storage_bytes(unpickler, storage, entry(name, storage.numel * storage.dtype.itemsize), source)
            unpickler.check_expansion(root)  # before walking it (tensors are leaves, already charged)
            return unpickler.materialise(root)


def load(path: str | PathLike[str]) -> Any:
    """What ``torch.save`` wrote to ``path``, tensors as numpy arrays; refuses code."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(512)
        fh.seek(0)
        if head.startswith(b"PK\x03\x04"):
            try:
                return _archive(fh, str(path), size)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
                raise DataError(f"{path} is a damaged zip archive ({exc}); torch.save writes plain "
                                "uncompressed entries. Save it again with torch.save or take it again "
                                "from its source.") from None
        if head[257:262] == b"ustar":
            raise DataError(f"{path} is a tar archive, torch's format before version 0.1.10, which "
                            "FuseBench does not read. Load it with that torch and save it again with a "
                            "current one (torch.save writes a zip archive).")
        return _legacy(fh, str(path), size)
