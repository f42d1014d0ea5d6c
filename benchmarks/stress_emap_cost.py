"""Cost of the evaluation extensions (full stress grid + EMAP) relative to training.

Not a test: run on demand, e.g.

    python benchmarks/stress_emap_cost.py                          # every method x the embedded datasets
    python benchmarks/stress_emap_cost.py --methods tensor,lmf --datasets mfeat,mosi-shaped
    python benchmarks/stress_emap_cost.py --json after.json --baseline before.json

Each (method, dataset) is trained once (seed 0) under the **default budget** -- ``Budget()``
with the dataset's own budget defaults (BasicMotions: batch 8, 50 epochs, patience 20), exactly
what ``bench run`` plans -- unless ``--epochs``/``--batch-size``/``--patience`` pin a field.
Then the stress grid and EMAP run as in ``bench run`` and are timed.  Target: stress + EMAP
<= 0.25 x training time (training includes its per-epoch validation passes) for every
built-in method on every embedded dataset.

Datasets: ``embedded`` (the default) is every embedded dataset: the six of the default suite
(mfeat: six vector modalities, 300 test samples; BasicMotions: two 100-step sequences, 40 test
recordings; the four two-vector synthetic tasks, 600 test samples) and the four ``-seq``
synthetic variants.  Two benchmark-only datasets are available by name: ``mosi-shaped``
(1284 / 229 / 686 samples, text / audio / vision sequences of 300 / 5 / 20 features and up to
50 steps, MAE) and ``mosi6-shaped`` (the same with six sequence modalities).

``--baseline FILE`` reads the ``--json`` output of an earlier run (e.g. of the code before a
change; default ``benchmarks/stress_emap_baseline.json``, the run at commit c4c2a11 before
issue 17, when present) and ends with a method x dataset table of both ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import torch

from benchmark_core import DatasetSpec, TargetSpec, hookimpl
from benchmark_core.engine.data import dataset_from_arrays, load_tensors
from benchmark_core.engine.training import fit, predict, seed_everything
from benchmark_core.evaluation.evaluators import EvaluationContext, evaluate_emap, evaluate_stress
from benchmark_core.plugins import build_registry
from benchmark_core.scoring import score
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.suite.runner import build_model, resolve_hparams

SIZES = {"train": 1284, "validation": 229, "test": 686}
DIMS = {"text": 300, "audio": 5, "vision": 20}
# The 6-modality case: MOSI's three streams plus three more (e.g. pose, gaze, prosody).
DIMS6 = {**DIMS, "pose": 12, "gaze": 8, "prosody": 16}
TARGET = TargetSpec("regression", 1)
EMBEDDED = ("mfeat", "basicmotions", "synthetic-redundant", "synthetic-unique", "synthetic-mixed",
            "synthetic-xor", "synthetic-redundant-seq", "synthetic-unique-seq", "synthetic-mixed-seq",
            "synthetic-xor-seq")
TARGET_RATIO = 0.25
BASELINE = Path(__file__).resolve().parent / "stress_emap_baseline.json"


def make_loader(dims: dict[str, int]):
    """MOSI-shaped random sequences whose target has a main effect and an interaction."""

    def load(options) -> datasets.DatasetDict:
        rng = np.random.default_rng(0)
        weights = {m: rng.normal(size=d) / np.sqrt(d) for m, d in dims.items()}

        def split(n: int) -> datasets.Dataset:
            lengths = rng.integers(20, 51, size=n)
            seqs = {m: [rng.normal(size=(t, d)).astype(np.float32) for t in lengths] for m, d in dims.items()}
            score = {m: np.array([s.mean(0) @ weights[m] for s in seqs[m]]) for m in dims}
            y = np.clip(3 * score["text"] + score["audio"] * score["vision"], -3, 3).astype(np.float32)
            return dataset_from_arrays({m: ("sequence", seqs[m]) for m in dims}, y, TARGET)

        return datasets.DatasetDict({name: split(n) for name, n in SIZES.items()})

    return load


class MosiShaped:
    @hookimpl
    def register_datasets(self, register):
        register(DatasetSpec("mosi-shaped", make_loader(DIMS), TARGET, tuple(DIMS), ("mae", "corr"), "mae",
                             description="MOSI-shaped random sequences (benchmark only)"))
        register(DatasetSpec("mosi6-shaped", make_loader(DIMS6), TARGET, tuple(DIMS6), ("mae", "corr"), "mae",
                             description="MOSI-shaped random sequences, six modalities (benchmark only)"))


def budget_for(dataset: DatasetSpec, pinned: dict[str, int], threads: int) -> Budget:
    """The budget ``bench run`` plans: defaults < the dataset's budget < flags set here."""
    return Budget(threads=threads, **pinned).with_defaults(dataset.budget, set(pinned))


def measure(registry, method: str, dataset_name: str, budget: Budget, evaluation: dict) -> dict:
    spec = RunSpec(method, dataset_name, 0, budget, resolve_hparams(registry.method(method), {}),
                   evaluation=evaluation)
    seeds = seed_everything(spec.seed, budget.threads)
    dataset = registry.dataset(dataset_name)
    data = load_tensors(dataset)
    metrics = {name: registry.metric(name) for name in dataset.metrics}
    primary = dataset.primary_metric
    model = build_model(registry.method(method), data, spec.hparams, seeds)
    cpu = time.process_time()
    fitted = fit(model, data, budget, metrics[primary], seeds)
    train_cpu = time.process_time() - cpu
    clean = score(predict(model, data.test), data.test.y, metrics)
    ctx = EvaluationContext(spec, model, data, registry, seeds, metrics, clean, primary)  # encodes on first use
    started, cpu = time.perf_counter(), time.process_time()
    stress = evaluate_stress(ctx)
    stress_s = time.perf_counter() - started
    started = time.perf_counter()
    emap = evaluate_emap(ctx)
    emap_s = time.perf_counter() - started
    eval_cpu = time.process_time() - cpu
    conditions = len([k for k in stress if k.startswith("stress/") and k.endswith(f"/{primary}")])
    return {"dataset": dataset_name, "method": method, "train_s": fitted.train_time_s, "epochs": fitted.epochs_run,
            "stress_s": stress_s, "emap_s": emap_s, "conditions": conditions,
            "emap_partners": emap["emap/n_partners"], "emap_evaluations": emap["emap/evaluations"],
            "emap_samples": emap["emap/n_samples"], "primary": primary, "clean": clean[primary],
            "emap_gap": emap[f"emap/gap/{primary}"], "emap_gap_se": emap[f"emap/gap_se/{primary}"],
            "ratio": (stress_s + emap_s) / fitted.train_time_s, "cpu_ratio": eval_cpu / train_cpu}


def _datasets(value: str) -> list[str]:
    names = [d for d in value.split(",") if d]
    return [d for name in names for d in (EMBEDDED if name == "embedded" else (name,))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="all",
                        help="comma list or 'all' (every method of `bench run --methods all`)")
    parser.add_argument("--datasets", default="embedded", help="comma list; 'embedded' = " + ",".join(EMBEDDED))
    parser.add_argument("--epochs", type=int, default=None,
                        help="pin the epochs (default: each dataset's default budget)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--threads", type=int, default=Budget().threads)
    parser.add_argument("--emap-samples", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write every row to this JSON file")
    parser.add_argument("--baseline", default=str(BASELINE),
                        help="a --json file of an earlier run to compare with ('none': no comparison)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    registry = build_registry(plugins=[MosiShaped()])
    methods = registry.select("methods", args.methods, "--methods")
    pinned = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                ("patience", args.patience)) if v is not None}
    evaluation = {} if args.emap_samples is None else {"emap_samples": args.emap_samples}
    script = "benchmarks/" + Path(sys.argv[0]).name
    command = "python " + " ".join(shlex.quote(a) for a in [script, *(argv if argv is not None else sys.argv[1:])])
    print("command:", command)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s)")
    print(f"budget: the default Budget() with each dataset's budget defaults{f', pinned {pinned}' if pinned else ''}; "
          "seed 0; times in seconds (wall clock)")
    print(f"{'dataset':23} {'method':13} {'train':>6} {'ep':>3} {'stress':>7} {'conds':>5} {'EMAP':>6} "
          f"{'how':>9} {'gap ± MC se':>17} {'ratio':>6} {'CPU':>6}")
    rows, skipped = [], []
    for dataset in _datasets(args.datasets):
        spec = registry.dataset(dataset)
        budget = budget_for(spec, pinned, args.threads)
        task = load_tensors(spec).task
        for method in methods:
            if registry.method(method).supports(task):
                skipped.append(f"{method} on {dataset}")
                continue
            row = measure(registry, method, dataset, budget, evaluation)
            rows.append(row)
            how = "exact" if row["emap_partners"] == 0 else f"MC {int(row['emap_partners'])}"
            gap = f"{row['emap_gap']:.4f} ± {row['emap_gap_se']:.4f}"
            print(f"{dataset:23} {method:13} {row['train_s']:6.1f} {row['epochs']:3d} {row['stress_s']:7.2f} "
                  f"{row['conditions']:5d} {row['emap_s']:6.2f} {how:>9} {gap:>17} {row['ratio']:6.3f} "
                  f"{row['cpu_ratio']:6.3f}", flush=True)
    worst = max(rows, key=lambda r: r["ratio"]) if rows else None
    over = [r for r in rows if r["ratio"] > TARGET_RATIO]
    print(f"target: (stress + EMAP) / train <= {TARGET_RATIO} (wall clock); "
          + (f"worst {worst['ratio']:.3f} ({worst['method']} on {worst['dataset']}); " if worst else "")
          + f"{len(rows) - len(over)} of {len(rows)} runs meet it"
          + ("; over: " + ", ".join(f"{r['method']}/{r['dataset']} {r['ratio']:.2f}" for r in over) if over else "")
          + ".")
    print("ep: epochs trained (early stopping); conds: stress conditions; how: EMAP exact, or Monte Carlo "
          "with K partners per sample; gap: EMAP gap of the primary metric ± its Monte-Carlo standard error; "
          "CPU: the ratio in process CPU time, less sensitive to other load on a shared machine.")
    if skipped:
        print("not supported (skipped): " + ", ".join(skipped))
    if args.json is not None:
        args.json.write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    if args.baseline != "none" and Path(args.baseline).is_file():
        compare(json.loads(Path(args.baseline).read_text()), rows)
    return 0


def compare(baseline: dict, rows: list[dict]) -> None:
    """Before -> after, per method x dataset: the wall-clock ratio and, in brackets, the CPU-time
    ratio (the robust one when other work shares the machine)."""
    before = {(r["dataset"], r["method"]): r for r in baseline["rows"]}
    paired = [(before[(r["dataset"], r["method"])], r) for r in rows if (r["dataset"], r["method"]) in before]
    if not paired:
        return
    datasets = list(dict.fromkeys(r["dataset"] for _, r in paired))
    methods = list(dict.fromkeys(r["method"] for _, r in paired))
    cells = {(r["dataset"], r["method"]):
             f"{b['ratio']:.2f}→{r['ratio']:.2f} ({b['cpu_ratio']:.2f}→{r['cpu_ratio']:.2f})"
             for b, r in paired}
    print(f"\nbefore → after: (stress + EMAP) / train, wall clock (CPU time); before = `{baseline['command']}` "
          "at commit c4c2a11")
    for start in range(0, len(datasets), 5):
        block = datasets[start:start + 5]
        print(f"{'method':13} " + " ".join(f"{d:>25}" for d in block))
        for method in methods:
            print(f"{method:13} " + " ".join(f"{cells.get((d, method), '-'):>25}" for d in block))
    wall, cpu = (np.array([[b[k], r[k]] for b, r in paired]).T for k in ("ratio", "cpu_ratio"))
    summary = []
    for name, (was, now) in (("wall clock", wall), ("CPU time", cpu)):
        summary.append(f"{name}: worst {was.max():.2f} → {now.max():.2f}, median {np.median(was):.2f} → "
                       f"{np.median(now):.2f}, meeting the target {int((was <= TARGET_RATIO).sum())} → "
                       f"{int((now <= TARGET_RATIO).sum())} of {len(paired)}")
    print("; ".join(summary) + ".")


if __name__ == "__main__":
    sys.exit(main())
