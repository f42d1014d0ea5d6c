"""Cost of the data path at the size of the largest standard datasets (issue 17).

Writes MMSA pickles (``aligned_50.pkl`` / ``unaligned_50.pkl``) with the shapes of the real
CMU-MOSI and CMU-MOSEI files - real split sizes, real steps per modality, BERT 768 / COVAREP
74 (MOSI: 5) / Facet 35 (MOSI: 20) features, random float32 values, every step real - and
reads them through the real ``mosi`` / ``mosei`` dataset plugins, each measurement in a fresh
Python process:

* **cold**: an empty ``FUSEBENCH_CACHE_DIR``, then ``load_tensors`` (unpickle, padding
  detection, conversion cache, dense tensors and the data hash): wall time and peak RSS;
* **warm**: a new process on the filled cache: ``load_tensors`` (the warm reload), then one
  epoch of ``additive`` through ``runner.execute`` (stress grid and EMAP off): reload time,
  the epoch's training-step time, and peak RSS of the whole process.

Peak RSS is the kernel's high-water mark of the measuring process's resident set (``VmHWM``,
file-backed memory-mapped pages it touched included), read after each phase: not
``getrusage().ru_maxrss``, which in a child process also counts the high-water mark its parent
had when it forked (Linux keeps the larger of the two across ``exec``), so after this script
has generated a 4 GiB file every child would report at least that.  *Data share* subtracts
the process's RSS after its imports, before loading: the part that grows with the dataset.  ``SHAPE@F`` scales
every split to the fraction F of its samples (steps and dimensions unchanged), so the
scaling with dataset size can be read off at sizes that fit a small machine.

    python benchmarks/data_scale.py --root /work/scale_data \\
        --shapes mosi-aligned,mosei-aligned,mosei-unaligned@0.125,mosei-unaligned@0.25,mosei-unaligned

Generated files are kept under ``--root`` (re-used when present; ``--clean`` deletes them at
the end).  Peak memory needs the machine to itself: run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as common  # noqa: E402 - a sibling script, importable once its folder is on the path

GIB = 2**30
DIMS_MOSI = {"text": 768, "audio": 5, "vision": 20}
DIMS_MOSEI = {"text": 768, "audio": 74, "vision": 35}


@dataclass(frozen=True)
class Shape:
    """One standard dataset's MMSA file: split sizes (train/valid/test), steps and dimensions."""

    dataset: str
    aligned: bool
    sizes: tuple[int, int, int]
    steps: dict[str, int]
    dims: dict[str, int]


SHAPES = {
    "mosi-aligned": Shape("mosi", True, (1284, 229, 686), dict.fromkeys(DIMS_MOSI, 50), DIMS_MOSI),
    "mosei-aligned": Shape("mosei", True, (16326, 1871, 4659), dict.fromkeys(DIMS_MOSEI, 50), DIMS_MOSEI),
    "mosei-unaligned": Shape("mosei", False, (16326, 1871, 4659), {"text": 50, "audio": 500, "vision": 500},
                             DIMS_MOSEI),
}
BEFORE = HERE / "data_scale_before.json"  # the same benchmark on the code before issue 17 (--json, --label)
DEFAULT = "mosi-aligned,mosei-aligned,mosei-unaligned@0.125,mosei-unaligned@0.25,mosei-unaligned"
QUICK = "mosi-aligned@0.01,mosei-unaligned@0.002"


def parse(item: str) -> tuple[str, float]:
    name, _, fraction = item.partition("@")
    if name not in SHAPES:
        raise SystemExit(f"--shapes: unknown shape {name!r}; choose from {', '.join(SHAPES)} (optionally @FRACTION)")
    value = float(fraction) if fraction else 1.0
    if not 0 < value <= 1:
        raise SystemExit(f"--shapes {item}: the fraction must lie in (0, 1]")
    return name, value


def label(name: str, fraction: float) -> str:
    return name if fraction == 1 else f"{name}@{fraction:g}"


def write_mmsa(path: Path, shape: Shape, fraction: float, seed: int = 0) -> Path:
    """An MMSA pickle (protocol 4, as MMSA's files): (N, T, D) float32 features, every step
    real (lengths = T: random values leave no padding), ``audio_lengths``/``vision_lengths``,
    a ``text_bert`` whose attention mask covers every step, float32 regression labels in
    [-3, 3] and string ids."""
    rng = np.random.default_rng(seed)
    data = {}
    for key, size in zip(("train", "valid", "test"), shape.sizes, strict=True):
        n = max(3, round(size * fraction))
        fields: dict[str, object] = {}
        for m, dim in shape.dims.items():
            fields[m] = rng.random((n, shape.steps[m], dim), dtype=np.float32) - np.float32(0.5)
        fields["audio_lengths"] = np.full(n, shape.steps["audio"], dtype=np.int64)
        fields["vision_lengths"] = np.full(n, shape.steps["vision"], dtype=np.int64)
        bert = np.zeros((n, 3, shape.steps["text"]), dtype=np.float32)
        bert[:, 1] = 1.0
        fields["text_bert"] = bert
        fields["regression_labels"] = (rng.random(n, dtype=np.float32) * 6 - 3).astype(np.float32)
        fields["id"] = np.array([f"{key}{i // 10}$_${i % 10}" for i in range(n)], dtype=object)
        data[key] = fields
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    os.replace(tmp, path)
    return path


def source_file(root: Path, name: str, fraction: float) -> Path:
    """The generated file for (shape, fraction), written once and re-used."""
    shape = SHAPES[name]
    path = root / label(name, fraction).replace("@", "-") / ("aligned_50.pkl" if shape.aligned else "unaligned_50.pkl")
    if not path.exists():
        started = time.perf_counter()
        write_mmsa(path, shape, fraction)
        print(f"  wrote {path} ({path.stat().st_size / GIB:.2f} GiB) in {time.perf_counter() - started:.0f} s",
              flush=True)
    return path


def _status_mb(field: str) -> float:
    """A field of /proc/self/status (VmRSS: resident now; VmHWM: its high-water mark), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _resident_mb() -> dict[str, float]:
    """The resident set now, split into anonymous memory (the process's own: must fit in RAM)
    and the rest - pages of mapped files, which the kernel can drop and read again."""
    values = {}
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Anonymous"):
                values[key] = int(rest.split()[0]) / 1024
    return {"rss_mb": values.get("Rss", float("nan")), "anonymous_mb": values.get("Anonymous", float("nan"))}


def _peak_mb() -> float:
    """This process's resident high-water mark (VmHWM), MiB."""
    return _status_mb("VmHWM")


def _reset_peak() -> None:
    """Start the high-water mark afresh at the current RSS (Linux ``clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def child(kind: str, folder: str, dataset_name: str, aligned: bool, threads: int) -> dict:
    """One measurement in this (fresh) process; the cache folder comes from the environment."""
    import torch

    torch.set_num_threads(threads)
    from benchmark_core.engine.data import load_tensors
    from benchmark_core.plugins import get_registry
    from benchmark_core.specs import Budget, RunSpec
    from benchmark_core.suite.runner import execute, resolve_hparams

    registry = get_registry()
    dataset = registry.dataset(dataset_name)
    options = {**dataset.defaults, "data_dir": folder, "format": "mmsa", "aligned": aligned}
    base = _rss_mb()
    _reset_peak()
    started = time.perf_counter()
    data = load_tensors(dataset, options)
    out = {"load_s": time.perf_counter() - started, "base_mb": base, "load_peak_mb": _peak_mb(),
           "data_hash": data.data_hash, "sizes": data.report["sizes"],
           "tensor_mb": sum(t.numel() * t.element_size() for s in data.splits.values()
                            for t in [*s.x.values(), *(m for m in s.mask.values() if m is not None), s.y]) / 2**20}
    if kind == "warm":
        budget = Budget(epochs=1, threads=threads).with_defaults(dataset.budget or {}, {"epochs", "threads"})
        method = registry.method("additive")
        spec = RunSpec("additive", dataset_name, 0, budget, resolve_hparams(method, {}), options,
                       evaluation={"stress": False, "emap": False}, data_hash=data.data_hash)
        result = execute(spec, registry)
        if not result.ok:
            raise SystemExit(f"the additive run failed: {result.error}\n{result.traceback}")
        info = result.info
        out.update(epoch_s=info["train_time_s"] - info["validation_time_s"], fit_s=info["train_time_s"],
                   run_peak_mb=info.get("peak_memory_run_mb"), train_peak_mb=info.get("peak_memory_mb"),
                   load_info=info.get("data_load"), load_in_run=getattr(data, "load", None),
                   end=_resident_mb())
    # peak-memory measurements inside a run reset the high-water mark (the run's own record,
    # where present, is the max over its spans), so keep the largest reading
    out["peak_mb"] = max(out["load_peak_mb"], _peak_mb(), out.get("run_peak_mb") or 0.0)
    return out


def measure(kind: str, folder: Path, cache: Path, shape: Shape, threads: int) -> dict:
    env = {**os.environ, "FUSEBENCH_CACHE_DIR": str(cache), "PYTHONPATH": str(HERE.parent)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--folder", str(folder),
           "--dataset", shape.dataset, "--aligned", str(shape.aligned).lower(), "--threads", str(threads)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{kind} measurement of {folder} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="folder for the generated files and caches "
                        "(default: a temporary folder, deleted at the end)")
    parser.add_argument("--shapes", default=None, help=f"comma list of SHAPE[@FRACTION] of {', '.join(SHAPES)} "
                        f"(default: {DEFAULT})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a `bench run` run)")
    parser.add_argument("--warm-repeats", type=int, default=2, help="warm processes per shape (the median is kept)")
    parser.add_argument("--quick", action="store_true", help=f"tiny smoke run ({QUICK})")
    parser.add_argument("--clean", action="store_true", help="delete the generated files at the end")
    parser.add_argument("--json", default=None, help="also write the result as JSON to this file")
    parser.add_argument("--label", default="", help="what was measured (e.g. a commit), kept in the JSON")
    args = parser.parse_args(argv)
    items = [parse(s) for s in (args.shapes or (QUICK if args.quick else DEFAULT)).split(",") if s]
    temporary = args.root is None
    root = Path(args.root) if args.root else Path(__import__("tempfile").mkdtemp(prefix="fusebench-scale-"))
    rows = []
    try:
        for name, fraction in items:
            shape = SHAPES[name]
            print(f"{label(name, fraction)}:", flush=True)
            path = source_file(root, name, fraction)
            cache = root / f"cache-{label(name, fraction).replace('@', '-')}"
            shutil.rmtree(cache, ignore_errors=True)
            cold = measure("cold", path.parent, cache, shape, args.threads)
            warm = [measure("warm", path.parent, cache, shape, args.threads) for _ in range(max(1, args.warm_repeats))]
            warm.sort(key=lambda w: w["load_s"])
            best = warm[len(warm) // 2]
            row = {"shape": label(name, fraction), "sizes": cold["sizes"], "file_bytes": path.stat().st_size,
                   "cache_bytes": _du(cache), "cold": cold, "warm": best,
                   "warm_load_s_all": [w["load_s"] for w in warm]}
            if cold["data_hash"] != best["data_hash"]:
                raise SystemExit(f"{row['shape']}: the warm data hash {best['data_hash']} differs from the cold "
                                 f"one {cold['data_hash']}")
            rows.append(row)
            print("  " + summary(row), flush=True)
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        if temporary or args.clean:
            shutil.rmtree(root, ignore_errors=True)
    result = {"machine": common.machine(), "command": common.command_line("data_scale.py", argv),
              "threads": args.threads, "label": args.label, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print("\n".join(render(result)))
    return result


def summary(row: dict) -> str:
    cold, warm, size = row["cold"], row["warm"], row["file_bytes"]
    return (f"file {size / GIB:.2f} GiB; cold {cold['load_s']:.1f} s, peak {cold['peak_mb'] / 1024:.2f} GiB "
            f"({(cold['peak_mb'] - cold['base_mb']) * 2**20 / size:.2f} x file); warm reload {warm['load_s']:.2f} s, "
            f"peak {warm['peak_mb'] / 1024:.2f} GiB ({(warm['peak_mb'] - warm['base_mb']) * 2**20 / size:.2f} x file); "
            f"additive epoch {warm['epoch_s']:.1f} s")


def render(result: dict, title: str | None = None) -> list[str]:
    """The README table: one row per shape."""
    lines = ([f"#### {title}", ""] if title else []) + [
        f"Command: `{result['command']}` (torch threads: {result['threads']}) on: {result['machine']}.", "",
        ("| shape (MMSA file) | samples | file GiB | cold conversion s | peak RSS cold / warm GiB | data share "
         "cold / warm (x file) | warm reload s | additive epoch s | reload / epoch | warm run's end: file-backed "
         "/ anonymous GiB | cache on disk GiB |"),
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        cold, warm, size, end = row["cold"], row["warm"], row["file_bytes"], row["warm"]["end"]
        share = [(r["peak_mb"] - r["base_mb"]) * 2**20 / size for r in (cold, warm)]
        sizes = "/".join(str(row["sizes"][s]) for s in ("train", "validation", "test"))
        lines.append(f"| {row['shape']} | {sizes} | {size / GIB:.2f} | {cold['load_s']:.1f} | "
                     f"{cold['peak_mb'] / 1024:.2f} / {warm['peak_mb'] / 1024:.2f} | {share[0]:.2f} / {share[1]:.2f} | "
                     f"{warm['load_s']:.2f} | {warm['epoch_s']:.1f} | {warm['load_s'] / warm['epoch_s']:.3f} | "
                     f"{(end['rss_mb'] - end['anonymous_mb']) / 1024:.2f} / {end['anonymous_mb'] / 1024:.2f} | "
                     f"{row['cache_bytes'] / GIB:.2f} |")
    fits = scaling(result)
    return lines + (["", *fits] if fits else [])


def scaling(result: dict) -> list[str]:
    """For a shape measured at two or more fractions: each cost as a straight line in the file
    size (least squares) and where that line puts the full-size file."""
    lines = []
    for name, shape in SHAPES.items():
        rows = [r for r in result["rows"] if r["shape"].split("@")[0] == name and "@" in r["shape"]]
        if len(rows) < 2:
            continue
        full = sum(shape.sizes) / sum(rows[-1]["sizes"].values()) * rows[-1]["file_bytes"] / GIB
        size = np.array([r["file_bytes"] / GIB for r in rows])
        parts = []
        for what, unit, get in (("peak RSS cold", "GiB", lambda r: r["cold"]["peak_mb"] / 1024),
                                ("peak RSS warm", "GiB", lambda r: r["warm"]["peak_mb"] / 1024),
                                ("cold conversion", "s", lambda r: r["cold"]["load_s"]),
                                ("warm reload", "s", lambda r: r["warm"]["load_s"])):
            slope, intercept = np.polyfit(size, [get(r) for r in rows], 1)
            parts.append(f"{what} {intercept:.2f} + {slope:.2f} x GiB of file ({intercept + slope * full:.1f} {unit} "
                         f"at full size)")
        shapes, gib = ", ".join(r["shape"] for r in rows), ", ".join(f"{x:.2f}" for x in size)
        lines.append(f"Linear fit over {shapes} (file GiB {gib};"
                     f" full size {full:.2f} GiB): " + "; ".join(parts) + ".")
    return lines


def render_block(result: dict) -> list[str]:
    """The README block: this measurement, then the recorded one of the code before issue 17."""
    legend = ("*Data share*: peak RSS above the process's RSS after its imports, over the file size. *Warm run*: a "
              "new process on the filled cache, load + one epoch of `additive` (stress grid and EMAP off). "
              "*File-backed*: pages of memory-mapped files (the tensor cache among them), which the kernel can "
              "drop and re-read; *anonymous*: the process's own memory.")
    lines = [legend, "", *render(result, "This version")]
    if BEFORE.exists():
        before = json.loads(BEFORE.read_text())
        lines += ["", *render(before, f"Before issue 17 ({before.get('label') or 'recorded'})")]
    return lines


def main() -> int:
    if "--child" in sys.argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--child", choices=("cold", "warm"))
        parser.add_argument("--folder")
        parser.add_argument("--dataset")
        parser.add_argument("--aligned", choices=("true", "false"))
        parser.add_argument("--threads", type=int)
        args = parser.parse_args()
        print(json.dumps(child(args.child, args.folder, args.dataset, args.aligned == "true", args.threads)))
        return 0
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
