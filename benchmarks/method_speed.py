"""MulT and MutualFormer: per-pair implementation (before) vs batched (now), side by side.

Not a test: run on demand, e.g.

    python benchmarks/method_speed.py                        # both methods, all three shapes, 1 thread
    python benchmarks/method_speed.py --methods mult --shapes mfeat --threads 2
    python benchmarks/method_speed.py --quick                # smoke run

The *old* side is the frozen per-pair code (``_legacy_mult.py``, ``_legacy_mutualformer.py``:
a Python loop over the M(M-1) directed pairs), the *new* side the registered method.  Both get
the same initial weights (the old model's, copied into the new layout), the same batches,
optimiser and the harness's own training step (``throughput._step_fn``: loss, backward, grad
clipping, Adam step), so they do the same work.  Shapes, read through the real dataset
plugins:

* ``mosi``: MOSI-shaped 300/5/20, 50-step sequences (``_common.MosiShapedData``), batch 64;
* ``mfeat``: the bundled mfeat, six vector modalities 76/216/64/240/47/6 (30 directed pairs), batch 64;
* ``basicmotions``: the bundled BasicMotions, two 100-step sequences of 3 dims, in batches of 8
  (the batch size the dataset declares, so what ``bench run`` trains with);
* ``synthetic``: ``synthetic-xor``, two 16-dim vectors (one directed pair each way) — the shape
  of all four synthetic datasets of the default suite.

Inference samples/s (eval mode, no grad, evaluation batches of 256 over the test split) are
timed too.  Each side trains on the same fixed list of batches (``--samples`` samples), repeated
until ``--min-seconds`` have passed.  Each of ``--rounds`` rounds times both sides, alternating
which goes first; the table gives median samples/s and the median of the per-round ratios
new / old, which holds on a shared machine where absolute numbers drift with load.  The
default is 1 thread, the harness's default ``Budget.threads``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

SHAPES = ("mosi", "mfeat", "basicmotions", "synthetic")
DATASETS = {"mosi": "mosi", "mfeat": "mfeat", "basicmotions": "basicmotions", "synthetic": "synthetic-xor"}
METHODS = ("mult", "mutualformer")


def legacy_modules() -> dict:
    """method -> (legacy model class, copy_weights(legacy, new))."""
    import _legacy_mult
    import _legacy_mutualformer

    return {"mult": (_legacy_mult.MulT, _legacy_mult.copy_weights),
            "mutualformer": (_legacy_mutualformer.MutualFormer, _legacy_mutualformer.copy_weights)}


def load_shape(registry, shape: str, store) -> object:
    from benchmark_core.engine.data import load_tensors

    options = store.options("300/5/20") if shape == "mosi" else {}
    return load_tensors(registry.dataset(DATASETS[shape]), options)


def build_pair(registry, method_name: str, data, hparams: dict, threads: int):
    """(old, new) models with identical weights, both built as ``bench run`` builds one."""
    import torch

    from benchmark_core.engine.training import seed_everything
    from benchmark_core.suite.runner import build_model, resolve_hparams

    legacy_cls, copy_weights = legacy_modules()[method_name]
    method = registry.method(method_name)
    hp = resolve_hparams(method, hparams)
    seeds = seed_everything(0, threads)
    new = build_model(method, data, hp, seeds)
    torch.manual_seed(seeds.streams["init"])
    old = legacy_cls(data.task, dict(hp))
    copy_weights(old, new)
    return old, new


class Side:
    """One implementation: its model, optimiser and harness training step."""

    def __init__(self, model, budget, target, device: str):
        from throughput import _step_fn

        from benchmark_core.engine.training import make_optimizer

        self.model = model.to(device)
        self.step = _step_fn(self.model, make_optimizer(self.model, budget), budget, target)
        self.device = device

    def train_sps(self, batches, min_seconds: float = 0.0) -> float:
        self.model.train()
        return _samples_per_second(self.step, batches, min_seconds, self.device)

    def infer_sps(self, batches, min_seconds: float = 0.0) -> float:
        import torch

        self.model.eval()
        with torch.no_grad():
            return _samples_per_second(lambda b: self.model(b).pred.float().cpu(), batches, min_seconds, self.device)


def _samples_per_second(fn, batches, min_seconds: float, device: str) -> float:
    """Passes over ``batches`` (at least one) until ``min_seconds`` have passed."""
    common.sync(device)
    started, seen = time.perf_counter(), 0
    while True:
        for batch in batches:
            fn(batch)
            seen += batch.size
        common.sync(device)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return seen / elapsed


def measure(registry, method_name: str, data, args) -> dict:
    """Median train/infer samples/s of old and new and the median per-round ratios."""
    import torch

    from benchmark_core.engine.models import count_parameters
    from benchmark_core.engine.training import EVAL_BATCH_SIZE
    from benchmark_core.specs import Budget

    declared = registry.dataset(data.name).budget.get("batch_size")  # e.g. BasicMotions: 8
    batch_size = min(declared or args.batch_size, data.train.size)
    budget = Budget(batch_size=batch_size, threads=args.threads, device=args.device)
    old, new = build_pair(registry, method_name, data, {}, args.threads)
    sides = {"old": Side(old, budget, data.task.target, args.device),
             "new": Side(new, budget, data.task.target, args.device)}
    generator = torch.Generator().manual_seed(0)
    train = []
    steps = -(-args.samples // batch_size)
    while len(train) < steps:  # full batches only, the same ones for both sides
        train += [b.to(args.device) for b in data.train.batches(batch_size, generator) if b.size == batch_size]
    train = train[:steps]
    test = [b.to(args.device) for b in data.test.batches(EVAL_BATCH_SIZE)][:args.infer_batches]
    for side in sides.values():  # warm-up, untimed
        side.train_sps(train[:args.warmup])
        side.infer_sps(test[:1])
    rounds: dict[str, list[float]] = {k: [] for k in ("old_train", "new_train", "old_infer", "new_infer")}
    for r in range(args.rounds):
        for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
            rounds[f"{name}_train"].append(sides[name].train_sps(train, args.min_seconds))
            rounds[f"{name}_infer"].append(sides[name].infer_sps(test, args.min_seconds))
    med = {k: statistics.median(v) for k, v in rounds.items()}
    ratio = {kind: statistics.median(n / o for n, o in zip(rounds[f"new_{kind}"], rounds[f"old_{kind}"], strict=True))
             for kind in ("train", "infer")}
    params = {k: count_parameters(s.model) for k, s in sides.items()}
    if params["old"] != params["new"]:
        raise RuntimeError(f"{method_name}: parameter counts differ, old {params['old']} vs new {params['new']}")
    return {"params": params["new"], "batch_size": batch_size, "steps": len(train), "rounds": rounds,
            **med, "train_x": ratio["train"], "infer_x": ratio["infer"]}


def render(results: dict) -> list[str]:
    """The markdown table (also what ``run_all.py`` writes into the README)."""
    fmt = lambda x: f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"
    lines = [f"Command: `{results['command']}`", "", f"Machine: {results['machine']}; device {results['device']}, "
             f"{results['threads']} thread(s); {results['rounds']} alternating rounds, each timing both sides for at "
             f"least {results['min_seconds']:g} s on the same {results['samples']} training samples (after warm-up) "
             f"and up to {results['infer_batches']} evaluation batches of 256; medians; ratio = median of the "
             "per-round new / old.",
             "", "| shape | method | params | batch | old train/s | new train/s | **train x** | old infer/s | "
             "new infer/s | **infer x** |", "|---" * 10 + "|"]
    for shape, rows in results["shapes"].items():
        for method, r in rows.items():
            if "error" in r:
                lines.append(f"| {shape} | {method} | failed: {r['error']} |" + " |" * 7)
                continue
            lines.append(f"| {shape} | {method} | {r['params']:,d} | {r['batch_size']} | {fmt(r['old_train'])} | "
                         f"{fmt(r['new_train'])} | **{r['train_x']:.2f}** | {fmt(r['old_infer'])} | "
                         f"{fmt(r['new_infer'])} | **{r['infer_x']:.2f}** |")
    return lines


def run(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma list of {', '.join(SHAPES)}")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (harness default: 1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=256, help="training samples in the fixed batch list")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="time each side at least this long per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported)")
    parser.add_argument("--infer-batches", type=int, default=2, help="evaluation batches of 256 per round")
    parser.add_argument("--quick", action="store_true", help="tiny data and one short round (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.min_seconds, args.warmup, args.rounds, args.infer_batches = 16, 0.0, 1, 1, 1
    methods = [m for m in args.methods.split(",") if m]
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = sorted(set(methods) - set(METHODS)) + sorted(set(shapes) - set(SHAPES))
    if unknown:
        parser.error(f"unknown method(s)/shape(s) {unknown}")

    from benchmark_core.plugins import get_registry

    registry = get_registry()
    common.pin_threads(args.threads)
    command = common.command_line("method_speed.py", argv)
    print("command:", command)
    print("machine:", common.machine())
    results = {"command": command, "machine": common.machine(), "device": args.device, "threads": args.threads,
               "rounds": args.rounds, "samples": args.samples, "min_seconds": args.min_seconds,
               "infer_batches": args.infer_batches, "shapes": {}}
    store = common.MosiShapedData(["300/5/20"], quick=args.quick) if "mosi" in shapes else None
    try:
        for shape in shapes:
            data = load_shape(registry, shape, store)
            results["shapes"][shape] = rows = {}
            for method in methods:
                try:
                    rows[method] = row = measure(registry, method, data, args)
                except Exception as exc:
                    rows[method] = {"error": f"{type(exc).__name__}: {exc}"}
                    print(f"{shape} {method} failed: {rows[method]['error']}")
                    continue
                print(f"{shape:13} {method:13} train old {row['old_train']:8.1f} new {row['new_train']:8.1f} "
                      f"x{row['train_x']:.2f} | infer old {row['old_infer']:8.1f} new {row['new_infer']:8.1f} "
                      f"x{row['infer_x']:.2f}", flush=True)
    finally:
        if store is not None:
            store.cleanup()
    results["lines"] = render(results)
    print("\n" + "\n".join(results["lines"]))
    return results


def main(argv: list[str] | None = None) -> int:
    results = run(argv)
    return 1 if any("error" in r for rows in results["shapes"].values() for r in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
