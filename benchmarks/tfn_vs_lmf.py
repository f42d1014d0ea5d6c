"""TFN vs LMF: the LMF paper's efficiency claim (Liu, Shen et al., ACL 2018) as ratios.

Not a test: run on demand, e.g.

    python benchmarks/tfn_vs_lmf.py                       # both MOSI shapes, CPU, 2 threads
    python benchmarks/tfn_vs_lmf.py --shapes 300/5/20 --rank 4

The LMF paper claims that replacing TFN's full weight tensor by modality-specific low-rank
factors cuts parameters and trains/infers faster.  Measured here on the same MOSI-shaped
data (random MulT pickles read through the ``mosi`` plugin, as in ``throughput.py``), with the
harness's step and batches, three ways:

* ``full model, harness defaults``: ``tensor`` (each encoding projected so the fused outer
  product has at most 4096 units) vs ``lmf`` (rank 4), both on the shared LSTM encoders;
* ``full model, paper setting``: TFN fusing the *full* 32-unit encodings (``tensor_dim=32``:
  33^3 = 35,937 fused units, as the TFN reference does) vs LMF on the same encodings;
* ``fusion + head only``: the same two pairs with the encoders removed (random 32-unit
  encodings), which isolates what the paper's claim is about.

TFN and LMF steps are timed one at a time, alternately (ABBA), and samples/s is the batch size
over the median step time, so bursts of load from other processes hit both models alike.

Ratios are LMF / TFN for samples/s (> 1: LMF faster) and TFN / LMF for parameters.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common
import throughput

CONFIGS = {"harness defaults": {"tensor": {}, "lmf": {}},
           "paper setting": {"tensor": {"tensor_dim": 32}, "lmf": {}}}


def _full_model(registry, method_name: str, data, hparams: dict, budget):
    """(params, train_step, infer_step) of the whole model with the harness's step and batches."""
    import torch

    from benchmark_core.engine.models import count_parameters
    from benchmark_core.engine.training import make_optimizer, seed_everything
    from benchmark_core.suite.runner import build_model, resolve_hparams

    method = registry.method(method_name)
    seeds = seed_everything(0, budget.threads)
    model = build_model(method, data, resolve_hparams(method, hparams), seeds)
    step = throughput._step_fn(model, make_optimizer(model, budget), budget, data.task.target)
    batches = throughput._cycle_batches(data.train, budget.batch_size, seeds.generator("shuffle"))
    test = data.test.batch(slice(0, budget.batch_size))

    def train_step():
        model.train()
        step(next(batches))

    def infer_step():
        model.eval()
        with torch.no_grad():
            model(test).pred.float()

    return count_parameters(model), train_step, infer_step


def _fusion_only(registry, method_name: str, data, hparams: dict, budget):
    """(params, train_step, infer_step) of ``fusion`` + ``head`` alone on random encodings."""
    import torch
    import torch.nn.functional as F

    from benchmark_core.engine.models import count_parameters
    from benchmark_core.engine.training import seed_everything
    from benchmark_core.suite.runner import build_model, resolve_hparams

    method = registry.method(method_name)
    resolved = resolve_hparams(method, hparams)
    seeds = seed_everything(0, budget.threads)
    model = build_model(method, data, resolved, seeds)
    net = torch.nn.ModuleDict({"fusion": model.fusion, "head": model.head})
    gen = torch.Generator().manual_seed(0)
    reps = [torch.randn(budget.batch_size, int(resolved["hidden"]), generator=gen) for _ in data.task.modalities]
    y = torch.randn(budget.batch_size, generator=gen)
    optimizer = torch.optim.Adam(net.parameters(), lr=budget.lr)

    def train_step():
        net.train()
        loss = F.l1_loss(net["head"](net["fusion"](reps)).reshape(-1), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer_step():
        net.eval()
        with torch.no_grad():
            net["head"](net["fusion"](reps))

    return count_parameters(net), train_step, infer_step


def interleaved(builders: dict, batch_size: int, steps: int, max_seconds: float) -> dict[str, dict]:
    """Time single steps of several models alternately (ABBA order), so bursts of machine load
    hit every model alike; samples/s = batch size / median step time."""
    built = {name: build() for name, build in builders.items()}
    out = {name: {"params": params} for name, (params, _, _) in built.items()}
    for kind, index in (("train", 1), ("infer", 2)):
        times = {name: [] for name in built}
        for name in built:  # warm-up
            built[name][index]()
        started = time.perf_counter()
        for i in range(steps):
            order = list(built) if i % 2 == 0 else list(reversed(built))
            for name in order:
                t = time.perf_counter()
                built[name][index]()
                times[name].append(time.perf_counter() - t)
            if time.perf_counter() - started > max_seconds:
                break
        for name in built:
            out[name][f"{kind}_sps"] = batch_size / common.median(times[name])
            out[name][f"{kind}_steps"] = len(times[name])
    return out


def _ratios(tfn: dict, lmf: dict) -> dict[str, float]:
    return {"train": lmf["train_sps"] / tfn["train_sps"], "infer": lmf["infer_sps"] / tfn["infer_sps"],
            "params": tfn["params"] / lmf["params"]}


def run(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(common.SHAPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rank", type=int, default=4, help="LMF rank")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--fusion-steps", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="tiny data and few steps (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.fusion_steps, args.max_seconds = 2, 3, 2.0

    from benchmark_core.engine.data import load_tensors
    from benchmark_core.plugins import get_registry
    from benchmark_core.specs import Budget

    command = common.command_line("tfn_vs_lmf.py", argv)
    print("command:", command)
    print("machine:", common.machine())
    registry = get_registry()
    budget = Budget(batch_size=args.batch_size, threads=args.threads)
    common.pin_threads(args.threads)
    shapes = [s for s in args.shapes.split(",") if s]
    store = common.MosiShapedData(shapes, quick=args.quick)
    out: dict = {"command": command, "machine": common.machine(), "threads": args.threads, "rank": args.rank,
                 "rows": []}
    try:
        for shape in shapes:
            data = load_tensors(registry.dataset("mosi"), store.options(shape))
            print(f"\nMOSI-shaped {shape} {data.report['sizes']}, batch {args.batch_size}, {args.threads} threads, "
                  f"LMF rank {args.rank}")
            print(f"{'configuration':30} {'TFN params':>11} {'LMF params':>11} {'TFN train/s':>12} {'LMF train/s':>12} "
                  f"{'TFN infer/s':>12} {'LMF infer/s':>12} {'train x':>8} {'infer x':>8} {'params x':>9}")
            for config, hps in CONFIGS.items():
                hps = {"tensor": hps["tensor"], "lmf": {**hps["lmf"], "rank": args.rank}}
                for scope in ("full model", "fusion + head"):
                    make = _full_model if scope == "full model" else _fusion_only
                    builders = {m: (lambda m=m, make=make, hps=hps, data=data:
                                    make(registry, m, data, hps[m], budget)) for m in ("tensor", "lmf")}
                    res = interleaved(builders,
                                      args.batch_size, args.steps if scope == "full model" else args.fusion_steps,
                                      args.max_seconds)
                    ratio = _ratios(res["tensor"], res["lmf"])
                    label = f"{scope}, {config}"
                    out["rows"].append({"shape": shape, "config": label, "tfn": res["tensor"], "lmf": res["lmf"],
                                        "ratio": ratio})
                    t, lmf = res["tensor"], res["lmf"]
                    print(f"{label:30} {t['params']:11,d} {lmf['params']:11,d} {t['train_sps']:12,.0f} "
                          f"{lmf['train_sps']:12,.0f} {t['infer_sps']:12,.0f} {lmf['infer_sps']:12,.0f} "
                          f"{ratio['train']:8.2f} {ratio['infer']:8.2f} {ratio['params']:9.1f}")
        print("\nratios: train/infer = LMF samples/s / TFN samples/s; params = TFN / LMF")
    finally:
        store.cleanup()
    return out


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
