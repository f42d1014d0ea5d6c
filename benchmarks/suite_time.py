"""Time the default suite exactly as a user starts it: ``bench run`` with no arguments.

    python benchmarks/suite_time.py                      # the full default suite (about 25 min on 2 cores)
    python benchmarks/suite_time.py --seeds 0            # the one-seed proxy (about a third of that)
    python benchmarks/suite_time.py --keep DIR           # keep the store and runs.json in DIR

It runs ``python -m benchmark_core.cli run`` in a fresh folder with a fresh SQLite MLflow store
(default executor, so parallel over the cores when there are 2+), measures the wall time from
process start to exit, then exports the stored runs to ``runs.json`` with ``bench publish
--no-run`` (not timed) and prints, per method, the summed per-run wall time next to the time
``bench run`` predicted before starting.  ``--refit`` then refits the shipped cost model
(``benchmark_core/suite/cost_model.json``) on these runs with ``benchmarks/cost_model.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import _common as common  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default=None, help="seeds for bench run (default: its own default, 0,1,2)")
    parser.add_argument("--keep", default=None, help="folder for the store and runs.json (default: a temp dir)")
    parser.add_argument("--refit", action="store_true", help="refit benchmark_core/suite/cost_model.json on these runs")
    parser.add_argument("--json", default=None, help="also write the measurements here as JSON")
    args = parser.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fusebench-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri}
    command = [sys.executable, "-m", "benchmark_core.cli", "run", *(["--seeds", args.seeds] if args.seeds else [])]
    print(f"Running: {' '.join(command[1:])}  (in {work}, store {uri})", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    (work / "bench-run.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        print(f"bench run exited {proc.returncode}")
        return proc.returncode
    estimate = re.search(r"^Estimated time:.*$", proc.stdout, re.M)
    done = re.search(r"^Done:.*$", proc.stdout, re.M)

    export = subprocess.run([sys.executable, "-m", "benchmark_core.cli", "publish", "--no-run", "--no-plots",
                             "--no-log", "--suite", "default", "--out", str(work / "published"),
                             "--tracking-uri", uri], cwd=work, env=env, capture_output=True, text=True)
    if export.returncode != 0:
        print(export.stdout[-2000:], export.stderr[-2000:], sep="\n")
        return export.returncode
    runs_json = work / "published" / "runs.json"
    from benchmark_core.reporting.publish import load_runs

    runs, _ = load_runs(runs_json)
    finished = runs[runs["status"] == "finished"]
    per_method = {str(m): float(s) for m, s in finished.groupby("method")["info/wall_time_s"].sum().items()}
    total = sum(per_method.values())
    print(f"\nMachine: {common.machine()}")
    print(f"{estimate.group(0) if estimate else 'no estimate line'}")
    print(f"{done.group(0) if done else 'no Done line'}")
    print(f"Wall time of `bench run`: {wall / 60:.1f} min ({wall:.0f} s) for {len(runs)} runs; "
          f"per-run wall times sum to {total / 60:.1f} min (parallelism {total / wall:.2f}x)")
    print("\n| method | summed per-run s | share |\n|---|---|---|")
    for method, seconds in sorted(per_method.items(), key=lambda kv: -kv[1]):
        print(f"| {method} | {seconds:,.0f} | {seconds / total:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"wall_s": wall, "runs": len(runs), "summed_run_s": total,
                                               "per_method_s": per_method, "machine": common.machine(),
                                               "estimate": estimate.group(0) if estimate else None,
                                               "seeds": args.seeds or "0,1,2"}, indent=2))
    if args.refit:
        subprocess.run([sys.executable, str(HERE / "cost_model.py"), "--runs", str(runs_json),
                        "--source", "runs.json of `python benchmarks/suite_time.py`"], check=True)
    print(f"\nStore and runs.json kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
