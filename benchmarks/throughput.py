"""Training and inference throughput (samples/s) of every method on MOSI-shaped data.

Not a test: run on demand, e.g.

    python benchmarks/throughput.py                          # all methods, both shapes, CPU, 2 threads
    python benchmarks/throughput.py --methods tensor,lmf --shapes 300/5/20
    python benchmarks/throughput.py --device cuda            # where a GPU is available

The data are random MulT-format ``mosi_data.pkl`` files (1284 / 229 / 686 samples, aligned
50-step sequences, left zero padding, feature dims text/audio/vision 300/5/20 and 300/74/35)
read through the real ``mosi`` dataset plugin, so batches come from the harness's pre-padded
tensors exactly as in ``bench run``: one ``randperm`` per epoch and index slices, no
per-sample Python work.  Every method is timed with the harness's own step (same loss,
optimiser, grad clipping as ``benchmark_core.engine.training.fit``) after warm-up steps; the data
path alone (producing the batches) is timed too, to show it is never the bottleneck.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common


def _step_fn(model, optimizer, budget, target):
    """The harness's own training step, ``benchmark_core.engine.training.training_step`` (what ``fit``
    takes per batch); ``target`` is the model's own (``model.task.target``)."""
    from benchmark_core.engine.training import training_step

    def step(batch):
        return training_step(model, batch, optimizer, budget.grad_clip)

    return step


def _cycle_batches(split, batch_size, generator):
    while True:
        yield from split.batches(batch_size, generator)


def measure_method(registry, method_name: str, data, budget, steps: int, warmup: int,
                   max_seconds: float, device: str, hparams: dict | None = None) -> dict[str, float]:
    """Train and inference samples/s of one method on ``data`` (harness step, harness batches)."""
    import torch

    from benchmark_core.engine.models import count_parameters
    from benchmark_core.engine.training import EVAL_BATCH_SIZE, make_optimizer, seed_everything
    from benchmark_core.suite.runner import build_model, resolve_hparams

    method = registry.method(method_name)
    seeds = seed_everything(0, budget.threads)
    model = build_model(method, data, resolve_hparams(method, hparams or {}), seeds).to(device)
    optimizer = make_optimizer(model, budget)
    step = _step_fn(model, optimizer, budget, data.task.target)
    batches = _cycle_batches(data.train, budget.batch_size, seeds.generator("shuffle"))
    model.train()
    for _ in range(warmup):
        step(next(batches).to(device))
    common.sync(device)
    seen, done, started = 0, 0, time.perf_counter()
    while done < steps:
        batch = next(batches)
        loss = step(batch.to(device))
        seen += batch.size
        done += 1
        if time.perf_counter() - started > max_seconds:
            break
    common.sync(device)
    train_s = time.perf_counter() - started
    if not torch.isfinite(loss):
        raise RuntimeError(f"{method_name}: non-finite loss during the throughput run")

    test = data.test
    model.eval()
    with torch.no_grad():
        model(test.batch(slice(0, EVAL_BATCH_SIZE)).to(device))  # warm-up
        common.sync(device)
        inferred, started = 0, time.perf_counter()
        for start in range(0, test.size, EVAL_BATCH_SIZE):  # == training.predict
            batch = test.batch(slice(start, start + EVAL_BATCH_SIZE))
            model(batch.to(device)).pred.float().cpu()
            inferred += batch.size
            if time.perf_counter() - started > max_seconds:
                break
        common.sync(device)
        infer_s = time.perf_counter() - started
    return {"params": count_parameters(model), "train_sps": seen / train_s, "train_steps": done,
            "infer_sps": inferred / infer_s, "infer_samples": inferred}


def data_path_sps(data, batch_size: int, seconds: float = 1.0) -> float:
    """Samples/s of producing shuffled training batches alone (no model)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    seen, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for batch in data.train.batches(batch_size, generator):
            seen += batch.size
    return seen / (time.perf_counter() - started)


def run(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="all", help="'all' or a comma list")
    parser.add_argument("--shapes", default=",".join(common.SHAPES), help="comma list of text/audio/vision dims")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per method")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    parser.add_argument("--max-seconds", type=float, default=5.0,
                        help="stop a method's timed training/inference loop after this long")
    parser.add_argument("--quick", action="store_true", help="tiny data and few steps (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.max_seconds = 2, 1, 2.0

    from benchmark_core.engine.data import load_tensors
    from benchmark_core.engine.training import EVAL_BATCH_SIZE
    from benchmark_core.plugins import get_registry
    from benchmark_core.specs import Budget

    registry = get_registry()
    methods = registry.select("methods", args.methods, "--methods")
    shapes = [s for s in args.shapes.split(",") if s]
    budget = Budget(batch_size=args.batch_size, threads=args.threads, device=args.device)
    common.pin_threads(args.threads)
    print("command:", common.command_line("throughput.py", argv))
    print("machine:", common.machine())
    store = common.MosiShapedData(shapes, quick=args.quick)
    results: dict = {"command": common.command_line("throughput.py", argv), "machine": common.machine(),
                     "device": args.device, "threads": args.threads, "batch_size": args.batch_size,
                     "eval_batch_size": EVAL_BATCH_SIZE, "shapes": {}}
    try:
        for shape in shapes:
            load_s, data = common.timed(lambda shape=shape: load_tensors(registry.dataset("mosi"),
                                                                         store.options(shape)))
            path_sps = data_path_sps(data, args.batch_size, 0.2 if args.quick else 1.0)
            print(f"\nMOSI-shaped {shape} ({data.report['sizes']}, {common.STEPS} steps; loaded through the mosi "
                  f"plugin in {load_s:.1f} s); device {args.device}, {args.threads} threads, training batch "
                  f"{args.batch_size}, inference batch {EVAL_BATCH_SIZE} (as in the harness)")
            print(f"data path alone (shuffled batches from pre-padded tensors): {path_sps:,.0f} samples/s")
            print(f"{'method':14} {'params':>9} {'train samples/s':>16} {'infer samples/s':>16} {'steps':>6}")
            rows = {}
            for name in methods:
                try:
                    row = measure_method(registry, name, data, budget, args.steps, args.warmup,
                                         args.max_seconds, args.device)
                except Exception as exc:
                    print(f"{name:14} failed: {type(exc).__name__}: {exc}")
                    rows[name] = {"error": f"{type(exc).__name__}: {exc}"}
                    continue
                rows[name] = row
                print(f"{name:14} {row['params']:9,d} {row['train_sps']:16,.0f} {row['infer_sps']:16,.0f} "
                      f"{row['train_steps']:6d}")
            results["shapes"][shape] = {"load_s": load_s, "data_path_sps": path_sps, "methods": rows}
    finally:
        store.cleanup()
    return results


def main(argv: list[str] | None = None) -> int:
    results = run(argv)
    failed = [f"{s}:{m}" for s, r in results["shapes"].items() for m, row in r["methods"].items() if "error" in row]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
