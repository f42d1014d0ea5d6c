"""Shared pieces of the benchmark scripts (not a benchmark itself).

* MOSI-shaped data written as a MulT ``mosi_data.pkl`` (left zero padding, 50 steps,
  (N, 1, 1) labels, per-sample ids) into a temporary folder and read back through the REAL
  ``mosi`` dataset plugin (safe pickle reader -> padding detection -> HF datasets cache ->
  dense right-padded tensors), so the benchmarks exercise the same data path as
  ``bench run --datasets mosi --data-dir DIR``.
* Machine description, thread pinning, timing helpers.
"""

from __future__ import annotations

import os
import pickle
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Offline, quiet, and no MLflow background threads, exactly like the CLI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

# CMU-MOSI standard split sizes (train / valid / test), 50-step sequences (MulT/CMU files).
MOSI_SIZES = {"train": 1284, "valid": 229, "test": 686}
QUICK_SIZES = {"train": 48, "valid": 16, "test": 16}
STEPS = 50
# The two feature layouts of the MulT/CMU seq_length_50 files: MOSI (GloVe 300 / COVAREP 5 /
# Facet 20) and MOSEI-style features (GloVe 300 / COVAREP 74 / Facet 35).
SHAPES = {"300/5/20": {"text": 300, "audio": 5, "vision": 20},
          "300/74/35": {"text": 300, "audio": 74, "vision": 35}}


def write_mosi_pickle(folder: Path, dims: dict[str, int], sizes: dict[str, int] = MOSI_SIZES,
                      steps: int = STEPS, seed: int = 0) -> Path:
    """A MulT ``mosi_data.pkl`` with random features: aligned, left zero-padded, lengths
    10..``steps`` (a quarter of the samples full length), sentiment labels in [-3, 3]."""
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in sizes.items():
        lengths = rng.integers(min(10, steps), steps + 1, size=n)
        lengths[::4] = steps
        pad = np.arange(steps)[None, :] >= (steps - lengths)[:, None]  # left padding: real steps last
        fields = {}
        for m, d in dims.items():
            x = rng.normal(size=(n, steps, d)).astype(np.float32) + 0.5
            x[~pad] = 0.0
            fields[m] = x
        fields["labels"] = np.clip(rng.normal(size=(n, 1, 1)) * 1.5, -3, 3).astype(np.float32)
        fields["id"] = np.array([[f"vid{i // 10}".encode(), str(i).encode(), b"0"] for i in range(n)])
        data[split] = fields
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mosi_data.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return path


class MosiShapedData:
    """Temporary MOSI-shaped MulT pickles (one folder per shape) and a private conversion
    cache; ``options(shape)`` are the ``mosi`` dataset options that read them."""

    def __init__(self, shapes: list[str], quick: bool = False, root: str | None = None):
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="fusebench-bench-")
        self.root = Path(root or self._tmp.name)
        self._old_cache = os.environ.get("FUSEBENCH_CACHE_DIR")
        os.environ["FUSEBENCH_CACHE_DIR"] = str(self.root / "cache")  # never touch the user's cache
        self.sizes = QUICK_SIZES if quick else MOSI_SIZES
        self.write_s = {}
        for shape in shapes:
            started = time.perf_counter()
            write_mosi_pickle(self.folder(shape), SHAPES[shape], self.sizes)
            self.write_s[shape] = time.perf_counter() - started

    def folder(self, shape: str) -> Path:
        return self.root / ("mosi-" + shape.replace("/", "-"))

    def options(self, shape: str) -> dict[str, object]:
        return {"data_dir": str(self.folder(shape))}

    def cleanup(self) -> None:
        if self._old_cache is None:
            os.environ.pop("FUSEBENCH_CACHE_DIR", None)
        else:
            os.environ["FUSEBENCH_CACHE_DIR"] = self._old_cache
        if self._tmp is not None:
            self._tmp.cleanup()


def pin_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cuda = ""
    if torch.cuda.is_available():
        cuda = f", CUDA {torch.version.cuda} on {torch.cuda.get_device_name(0)}"
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} logical CPUs, "
            f"Python {platform.python_version()}, torch {torch.__version__}{cuda}")


def command_line(script: str, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return "python " + " ".join(shlex.quote(a) for a in [f"benchmarks/{script}", *args])


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def median(values: list[float]) -> float:
    return statistics.median(values)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
