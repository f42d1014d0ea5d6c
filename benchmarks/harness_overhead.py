"""Harness overhead: ``bench run`` for one method / dataset / seed vs a minimal hand-written
PyTorch loop training the same model for the same steps on the same tensors.

Not a test: run on demand, e.g.

    python benchmarks/harness_overhead.py                     # tensor on MOSI-shaped 300/5/20, 5 epochs
    python benchmarks/harness_overhead.py --method lmf --epochs 10 --repeats 5

What is compared (side by side after one untimed warm-up of each, alternating which goes first,
``--repeats`` times; the median ratio is reported):

* harness: ``Tracker`` (existing MLflow sqlite store, a new experiment per repeat) ->
  ``make_plan`` -> ``run_suite`` with the serial executor, i.e. planning, ``execute`` (seeding,
  model build, ``fit`` with per-epoch validation and best-checkpoint bookkeeping, clean
  test + validation metrics, provenance) and MLflow logging of params, tags, metrics, curves
  and artifacts.  Stress grid and EMAP are off here (``--no-stress --no-emap``); their cost is
  measured relative to training by ``benchmarks/stress_emap_cost.py``.
* hand loop: seed, ``method.build`` (the same model class), Adam with the same lr, the same
  grad clipping, ``randperm`` + index slices of the same tensors for the same number of
  optimiser steps and batch size, then one evaluation of the test set (MAE).

Both run in this process with the same torch thread count (``--threads``), on tensors that
are already in memory (the one-off dataset conversion and its cache reuse are reported
separately), and the hand loop's per-epoch training loss is checked to equal the harness's
bit for bit, which proves both did the same work.  The wall time of the ``bench run`` CLI
process is reported too: it adds Python start-up and the imports of torch, MLflow and
``datasets`` (shown separately), a fixed cost independent of the benchmark.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common


def hand_loop(method, data, hparams: dict, epochs: int, batch_size: int, lr: float, grad_clip: float,
              seed: int, threads: int) -> tuple[float, list[float], float]:
    """The minimal research-style loop; returns (test MAE, per-epoch train losses, seconds)."""
    import torch
    import torch.nn.functional as F

    from benchmark_core.engine.data import Batch
    from benchmark_core.engine.training import EVAL_BATCH_SIZE, seed_everything

    started, cpu = time.perf_counter(), time.process_time()
    seeds = seed_everything(seed, threads)  # same global seeding and thread pinning as a run
    torch.manual_seed(seeds.streams["init"])
    model = method.build(data.task, dict(hparams))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seeds.streams["shuffle"])
    train, test = data.train, data.test
    n = train.size
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=shuffle)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            batch = Batch(x={m: t.index_select(0, idx) for m, t in train.x.items()},
                          mask={m: t.index_select(0, idx) for m, t in train.mask.items()},
                          present={m: torch.ones(idx.numel(), dtype=torch.bool) for m in train.x},
                          y=train.y.index_select(0, idx))
            loss = F.l1_loss(model(batch).pred.reshape(-1), batch.y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += loss.item() * idx.numel()
        losses.append(total / n)
    model.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, test.size, EVAL_BATCH_SIZE):  # the harness's eval batch, for like-for-like
            sl = slice(start, start + EVAL_BATCH_SIZE)
            batch = Batch(x={m: t[sl] for m, t in test.x.items()}, mask={m: t[sl] for m, t in test.mask.items()},
                          present={m: torch.ones(t[sl].shape[0], dtype=torch.bool) for m, t in test.x.items()})
            preds.append(model(batch).pred.reshape(-1))
    mae = float((torch.cat(preds) - test.y).abs().mean())
    return mae, losses, time.perf_counter() - started, time.process_time() - cpu


def harness_run(registry, uri: str, suite: str, method: str, options: dict, budget, seed: int):
    """In-process ``bench run``: tracker + plan + run_suite (serial); returns (result, seconds)."""
    from benchmark_core.suite.executors import SerialExecutor
    from benchmark_core.suite.plan import make_plan, run_suite
    from benchmark_core.tracking import Tracker

    started, cpu = time.perf_counter(), time.process_time()
    tracker = Tracker(uri, suite)
    specs = make_plan(registry, [method], ["mosi"], [seed], budget, {}, {"mosi": options},
                      {"stress": False, "emap": False})
    report = run_suite(registry, specs, tracker, SerialExecutor(registry=registry), "bench run (benchmark)",
                       echo=lambda s: None)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    (result,) = report.results
    if not result.ok:
        raise RuntimeError(f"harness run failed: {result.error}\n{result.traceback}")
    return result, elapsed, cpu


def cli_run(store, shape: str, method: str, args, uri: str) -> tuple[float, float]:
    """Wall time of a ``bench run`` process, and of a process that only imports what it needs."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "benchmark_core.cli", "run", "--methods", method, "--datasets", "mosi",
           "--dataset-option", f"mosi.data_dir={store.folder(shape)}", "--seeds", "0",
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--patience", "0",
           "--threads", str(args.threads), "--no-stress", "--no-emap", "--tracking-uri", uri, "--suite", "cli"]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    cli_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"bench run failed ({done.returncode}): {done.stderr[-2000:]}")
    imports = ("import torch, mlflow, datasets, benchmark_core.cli, benchmark_core.suite.runner, "
               "benchmark_core.suite.plan")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", imports], env=env, check=True, capture_output=True)
    return cli_s, time.perf_counter() - started


def run(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="tensor")
    parser.add_argument("--shape", default="300/5/20", choices=sorted(common.SHAPES))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="skip the separate CLI-process timing")
    parser.add_argument("--quick", action="store_true", help="tiny data, 1 epoch, 1 repeat (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 1, 1

    from benchmark_core.engine.data import load_tensors
    from benchmark_core.plugins import get_registry
    from benchmark_core.specs import Budget
    from benchmark_core.suite.runner import resolve_hparams
    from benchmark_core.tracking import Tracker

    command = common.command_line("harness_overhead.py", argv)
    print("command:", command)
    print("machine:", common.machine())
    registry = get_registry()
    method = registry.method(args.method)
    hparams = resolve_hparams(method, {})
    budget = Budget(epochs=args.epochs, batch_size=args.batch_size, patience=0, threads=args.threads)
    common.pin_threads(args.threads)
    store = common.MosiShapedData([args.shape], quick=args.quick)
    try:
        options = store.options(args.shape)
        spec = registry.dataset("mosi")
        from benchmark_core.engine import data as data_module

        cold_s, data = common.timed(lambda: load_tensors(spec, options))  # pickle -> HF cache -> tensors
        data_module._CACHE.clear()
        warm_s, data = common.timed(lambda: load_tensors(spec, options))  # HF cache reused -> tensors
        uri = f"sqlite:///{store.root / 'mlflow.db'}"
        fresh_db_s, _ = common.timed(lambda: Tracker(uri, "warm-up"))  # creates the schema once
        steps = args.epochs * -(-data.train.size // args.batch_size)
        print(f"data: MOSI-shaped {args.shape} {data.report['sizes']} through the mosi plugin (cold "
              f"conversion {cold_s:.2f} s, cached re-load {warm_s:.2f} s; both excluded below)")
        print(f"run: {args.method}, {args.epochs} epochs x {steps // args.epochs} steps = {steps} Adam steps, batch "
              f"{args.batch_size}, lr {budget.lr}, grad clip {budget.grad_clip}, {args.threads} threads; "
              "harness with per-epoch validation + MLflow, stress/EMAP off")
        # Untimed warm-up of both paths (first-call costs: kernels, lazy imports, sqlite pages).
        warm = Budget(epochs=1, batch_size=args.batch_size, patience=0, threads=args.threads)
        hand_loop(method, data, hparams, 1, args.batch_size, budget.lr, budget.grad_clip, 0, args.threads)
        harness_run(registry, uri, "overhead-warm-up", args.method, options, warm, 0)
        hand_times, harness_times, ratios, rows = [], [], [], []
        for repeat in range(args.repeats):
            def hand():
                return hand_loop(method, data, hparams, args.epochs, args.batch_size, budget.lr,
                                 budget.grad_clip, 0, args.threads)

            def harness(repeat=repeat):
                return harness_run(registry, uri, f"overhead-{repeat}", args.method, options, budget, 0)

            if repeat % 2:  # alternate the order so drift in machine load hits both sides alike
                result, harness_s, harness_cpu = harness()
                mae, losses, hand_s, hand_cpu = hand()
            else:
                mae, losses, hand_s, hand_cpu = hand()
                result, harness_s, harness_cpu = harness()
            harness_losses = [row["train_loss"] for row in result.history]
            same = harness_losses == losses
            if not same:
                raise RuntimeError(f"hand loop and harness did different work: train losses {losses} vs "
                                   f"{harness_losses}")
            hand_times.append(hand_s)
            harness_times.append(harness_s)
            ratios.append(harness_s / hand_s)
            info = result.info
            # The harness's own extra work, timed inside the same run: per-epoch validation,
            # everything in execute after fit (test/val metrics, hashes, provenance), and
            # planning + MLflow.  Relative to the run's optimiser steps (fit minus validation)
            # it is an overhead estimate free of the run-to-run noise of a shared machine.
            steps_s = info["train_time_s"] - info["validation_time_s"]
            extra_s = harness_s - steps_s
            rows.append({"hand_s": hand_s, "harness_s": harness_s, "train_s": info["train_time_s"],
                         "validation_s": info["validation_time_s"], "execute_s": info["wall_time_s"],
                         "ratio": harness_s / hand_s, "cpu_ratio": harness_cpu / hand_cpu,
                         "extra_s": extra_s, "within_run_ratio": harness_s / steps_s})
            print(f"  repeat {repeat + 1}: hand loop {hand_s:6.2f} s | harness {harness_s:6.2f} s "
                  f"(fit {info['train_time_s']:.2f} s of which validation {info['validation_time_s']:.2f} s, "
                  f"execute {info['wall_time_s']:.2f} s, planning+MLflow {harness_s - info['wall_time_s']:.2f} s) "
                  f"| ratio {harness_s / hand_s:.3f} (CPU time {harness_cpu / hand_cpu:.3f}; within the run "
                  f"{harness_s / steps_s:.3f}) | same train losses: {same}; test MAE hand {mae:.4f}, harness "
                  f"{result.metrics['test/mae']:.4f}")
        ratio = common.median(ratios)
        out = {"command": command, "machine": common.machine(), "method": args.method, "shape": args.shape,
               "epochs": args.epochs, "steps": steps, "threads": args.threads, "hand_s": common.median(hand_times),
               "harness_s": common.median(harness_times), "ratio": ratio, "repeats": rows,
               "min_ratio": min(harness_times) / min(hand_times),
               "within_run_ratio": common.median([r["within_run_ratio"] for r in rows]),
               "extra_s": common.median([r["extra_s"] for r in rows]),
               "validation_s": common.median([r["validation_s"] for r in rows]),
               "cpu_ratio": common.median([r["cpu_ratio"] for r in rows]), "cold_load_s": cold_s,
               "cached_load_s": warm_s, "fresh_db_s": fresh_db_s}
        print(f"harness / hand loop wall time (median of {args.repeats} paired ratios): {ratio:.3f}  (target <= 1.10); "
              f"fastest harness / fastest hand loop {out['min_ratio']:.3f}; process CPU time ratio "
              f"{out['cpu_ratio']:.3f}")
        print(f"harness extra work timed inside the run (median): {out['extra_s']:.2f} s, of which per-epoch "
              f"validation {out['validation_s']:.2f} s; harness wall / its own optimiser steps "
              f"{out['within_run_ratio']:.3f}")
        print(f"one-off costs not in the ratio: dataset conversion {cold_s:.2f} s (cached afterwards: "
              f"{warm_s:.2f} s), creating a fresh MLflow sqlite store {fresh_db_s:.2f} s")
        if not args.no_cli:
            cli_s, import_s = cli_run(store, args.shape, args.method, args, uri)
            out.update(cli_s=cli_s, import_s=import_s, cli_ratio=cli_s / out["hand_s"])
            print(f"`bench run` CLI process: {cli_s:.2f} s wall ({cli_s / out['hand_s']:.3f} x the in-process hand "
                  f"loop), of which {import_s:.2f} s is Python start-up + importing torch/mlflow/datasets/"
                  "benchmark_core (a hand-written script importing torch pays part of this too)")
    finally:
        store.cleanup()
    return out


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
