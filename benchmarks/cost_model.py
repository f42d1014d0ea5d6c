"""Fit the shipped per-method cost model (``benchmark_core/suite/cost_model.json``) on measured runs.

    python benchmarks/cost_model.py                          # fit on leaderboards/runs.json, write the model
    python benchmarks/cost_model.py --runs other/runs.json --no-write

The measurements are the per-run wall times (``info/wall_time_s``: training, validation,
stress grid and EMAP) of a stored suite, by default the published one, which ran every method
on every embedded dataset with 3 seeds.  Each dataset's shape (train/test size, modalities,
sequence length) is read by loading it with its default options.  The script prints, per
method and for the whole suite, measured against predicted seconds, so the fit's quality is
visible next to the numbers it produced.  ``benchmarks/run_all.py`` runs it after a publish.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmark_core.engine.data import load_tensors  # noqa: E402
from benchmark_core.plugins import get_registry  # noqa: E402
from benchmark_core.reporting.publish import load_runs  # noqa: E402
from benchmark_core.suite.estimate import Observation, fit, model_path, shape_of  # noqa: E402


def observations(runs_json: Path, source: str | None = None) -> tuple[list[Observation], str]:
    frame, suite = load_runs(runs_json)
    done = frame[frame["status"] == "finished"]
    registry = get_registry()
    shapes = {d: shape_of(load_tensors(registry.dataset(d), {})) for d in sorted(done["dataset"].unique())
              if d in registry.names("datasets")}
    rows = [Observation(r["method"], shapes[r["dataset"]], int(r["epochs"]), float(r["info/wall_time_s"]))
            for _, r in done.iterrows() if r["dataset"] in shapes]
    shas = sorted({str(s) for s in done["git_sha"].dropna()})
    shown = runs_json.resolve()
    # never a machine's path in the shipped file: relative to the checkout, else the file's name
    shown = shown.relative_to(HERE.parent) if shown.is_relative_to(HERE.parent) else Path(shown.name)
    return rows, f"suite {suite!r} in {source or shown} (git {', '.join(shas)}), {len(rows)} finished runs"


def report(rows: list[Observation], model) -> list[str]:
    by_method: dict[str, list[float]] = {}
    for o in rows:
        pair = by_method.setdefault(o.method, [0.0, 0.0])
        pair[0] += o.seconds
        pair[1] += model.predict(o.method, o.shape, o.epochs)
    lines = ["| method | measured s (all runs) | predicted s | predicted / measured |", "|---|---|---|---|"]
    for method, (measured, predicted) in sorted(by_method.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {method} | {measured:,.0f} | {predicted:,.0f} | {predicted / measured:.2f} |")
    measured = sum(v[0] for v in by_method.values())
    predicted = sum(v[1] for v in by_method.values())
    lines.append(f"| **suite** | {measured:,.0f} | {predicted:,.0f} | {predicted / measured:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(HERE.parent / "leaderboards" / "runs.json"))
    parser.add_argument("--source", default=None, help="how to name the runs file in the model (default: its path)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the shipped model alone")
    args = parser.parse_args(argv)
    rows, source = observations(Path(args.runs), args.source)
    model = fit(rows, measured_on=source)
    print("\n".join(report(rows, model)))
    if not args.no_write:
        model_path().write_text(model.to_json())
        print(f"Wrote {model_path()} ({len(model.methods)} methods, {model.fitted_runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
