"""Cost of the evaluation extensions (full stress grid + EMAP) relative to training.

Not a test: run on demand, e.g.

    python benchmarks/stress_emap_cost.py                      # tensor on the three datasets below
    python benchmarks/stress_emap_cost.py --methods tensor,late,early --datasets mosi-shaped --epochs 20

Two datasets: MOSI-shaped synthetic sequences (1284 / 229 / 686 train / validation / test
samples; text, audio, vision with 300 / 5 / 20 features, up to 50 steps; regression scored
by MAE like MOSI), "what the grid costs on a MOSI-sized test set"; the same with six
sequence modalities (``mosi6-shaped``, the 6-modality case of issue 12); and the embedded mfeat
(six vector modalities, 300 test samples, 10 classes), where EMAP is always Monte Carlo
(300^6 cells) and the adaptive number of partners is exercised.
Target: stress + EMAP <= 0.25 x training time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
from pathlib import Path
import sys
import time

import datasets
import numpy as np
import torch

from benchmark_core import DatasetSpec, TargetSpec, hookimpl
from benchmark_core.data import dataset_from_arrays, load_tensors
from benchmark_core.evaluation import _ENCODED, evaluate_emap, evaluate_stress
from benchmark_core.plugins import build_registry
from benchmark_core.runner import EvaluationContext, build_model, resolve_hparams
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.training import compute_metrics, fit, predict, seed_everything

SIZES = {"train": 1284, "validation": 229, "test": 686}
DIMS = {"text": 300, "audio": 5, "vision": 20}
# The 6-modality case: MOSI's three streams plus three more (e.g. pose, gaze, prosody).
DIMS6 = {**DIMS, "pose": 12, "gaze": 8, "prosody": 16}
TARGET = TargetSpec("regression", 1)


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


def measure(registry, method: str, dataset_name: str, budget: Budget, evaluation: dict) -> dict[str, float]:
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
    clean = compute_metrics(predict(model, data.test), data.test.y, metrics)
    ctx = EvaluationContext(spec, model, data, registry, seeds, metrics, clean, primary)
    _ENCODED.clear()
    started, cpu = time.perf_counter(), time.process_time()
    stress = evaluate_stress(ctx)
    stress_s = time.perf_counter() - started
    started = time.perf_counter()
    emap = evaluate_emap(ctx)
    emap_s = time.perf_counter() - started
    eval_cpu = time.process_time() - cpu
    conditions = len([k for k in stress if k.startswith("stress/") and k.endswith(f"/{primary}")])
    return {"train_s": fitted.train_time_s, "stress_s": stress_s, "emap_s": emap_s,
            "conditions": conditions, "emap_partners": emap["emap/n_partners"],
            "emap_samples": emap["emap/n_samples"], "primary": primary, "clean": clean[primary],
            "emap_gap": emap[f"emap/gap/{primary}"], "emap_gap_se": emap[f"emap/gap_se/{primary}"],
            "ratio": (stress_s + emap_s) / fitted.train_time_s, "cpu_ratio": eval_cpu / train_cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="tensor")
    parser.add_argument("--datasets", default="mosi-shaped,mosi6-shaped,mfeat")
    parser.add_argument("--epochs", type=int, default=Budget().epochs)
    parser.add_argument("--batch-size", type=int, default=Budget().batch_size)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--emap-samples", type=int, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    registry = build_registry(plugins=[MosiShaped()])
    budget = Budget(epochs=args.epochs, batch_size=args.batch_size, patience=0, threads=args.threads)
    evaluation = {} if args.emap_samples is None else {"emap_samples": args.emap_samples}
    script = "benchmarks/" + Path(sys.argv[0]).name
    print("command:", "python " + " ".join(shlex.quote(a) for a in [script, *(argv or sys.argv[1:])]))
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s)")
    print(f"data: MOSI-shaped {SIZES}, sequences <= 50 steps, dims {DIMS} (mosi6-shaped: {DIMS6}); mfeat "
          f"1400/300/300, 6 vector modalities; budget epochs={budget.epochs}, batch={budget.batch_size}")
    print(f"{'dataset':12} {'method':10} {'train s':>8} {'stress s':>9} {'conds':>6} {'EMAP s':>7} {'K':>5} "
          f"{'gap ± MC se':>17} {'ratio':>6} {'CPU ratio':>9}")
    worst = 0.0
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            row = measure(registry, method, dataset, budget, evaluation)
            worst = max(worst, row["ratio"])
            gap = f"{row['emap_gap']:.4f} ± {row['emap_gap_se']:.4f}"
            print(f"{dataset:12} {method:10} {row['train_s']:8.1f} {row['stress_s']:9.2f} {row['conditions']:6d} "
                  f"{row['emap_s']:7.2f} {int(row['emap_partners']):5d} {gap:>17} {row['ratio']:6.3f} "
                  f"{row['cpu_ratio']:9.3f}")
    print(f"target: (stress + EMAP) / train <= 0.25 (wall clock); worst here {worst:.3f}. CPU ratio: the "
          "same with process CPU time, less sensitive to other load on a shared machine. K: Monte-Carlo "
          "partners per sample (0: exact); gap: EMAP gap of the primary metric with its Monte-Carlo "
          "standard error.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
