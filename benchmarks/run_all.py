"""Run every benchmark and rewrite the figures in ``benchmarks/README.md`` from what they measured.

    python benchmarks/run_all.py                  # full run (about 15-25 min on 2 CPU cores)
    python benchmarks/run_all.py --quick --no-write   # smoke run, README untouched
    python benchmarks/run_all.py --only suite_time    # time the whole default suite (about 25 min)

The README section between ``<!-- figures:begin -->`` and ``<!-- figures:end -->`` is generated
here and only here: numbers are never typed in.  Each part (``overhead``, ``throughput``,
``tfn_vs_lmf``, ``stress_emap``, ``method_speed``, ``suite_time``, ``data_scale``) has its own
marked block, stamped with when and where it was measured; ``--only tfn_vs_lmf`` re-measures
one part and leaves the other blocks alone.  ``benchmarks/stress_emap_cost.py`` (stress grid +
EMAP cost relative to training) is run as a separate process and its printed table is included
verbatim.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as common  # noqa: E402
import data_scale  # noqa: E402
import harness_overhead  # noqa: E402
import method_speed  # noqa: E402
import tfn_vs_lmf  # noqa: E402
import throughput  # noqa: E402

README = HERE / "README.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


PARTS = ("overhead", "throughput", "tfn_vs_lmf", "stress_emap", "method_speed", "suite_time", "data_scale")
# suite_time runs the whole default suite (about 22 min on 2 cores) and refits bench run's cost model
# (benchmark_core/suite/cost_model.json) on it, data_scale converts MOSEI-sized files (about 30 min, 25 GB of
# disk, the machine to itself): only when asked for by --only.  The cost model is refitted only on a
# timed suite of the current code: a fit on older runs (the published runs.json) predicts old speeds.
DEFAULT_PARTS = tuple(p for p in PARTS if p not in ("suite_time", "data_scale"))


def _marks(part: str) -> tuple[str, str]:
    return f"<!-- figures:{part}:begin -->", f"<!-- figures:{part}:end -->"


def _stamp(started: str, machine: str) -> list[str]:
    return [f"_Measured {started} by `python benchmarks/run_all.py` on: {machine}._", ""]


def render_overhead(overhead: dict, started: str) -> list[str]:
    lines = ["### Harness overhead", "", *_stamp(started, overhead["machine"]), f"Command: `{overhead['command']}`", "",
              "| method | data | steps | hand loop s | harness s | **harness / hand** | fastest / fastest | "
              "CPU-time ratio | harness / own optimiser steps | `bench run` process s | of which imports s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    cli = (f"{overhead['cli_s']:.1f} | {overhead['import_s']:.1f}" if "cli_s" in overhead else "- | -")
    within = overhead.get("within_run_ratio")
    lines.append(f"| {overhead['method']} | MOSI-shaped {overhead['shape']} | {overhead['steps']} | "
                 f"{overhead['hand_s']:.2f} | {overhead['harness_s']:.2f} | **{overhead['ratio']:.3f}** | "
                 f"{overhead.get('min_ratio', float('nan')):.3f} | {overhead['cpu_ratio']:.3f} | "
                 f"{'-' if within is None else f'{within:.3f}'} | {cli} |")
    lines += ["", f"**harness / hand** is the median of {len(overhead['repeats'])} paired, alternating repeats "
              "(target <= 1.10); per repeat: " + ", ".join(f"{r['ratio']:.3f}" for r in overhead["repeats"])
              + ". *fastest / fastest* is the fastest harness run over the fastest hand loop."]
    if "extra_s" in overhead:
        lines.append(f"The harness's extra work, timed inside its own runs (median): {overhead['extra_s']:.2f} s, "
                     f"of which {overhead['validation_s']:.2f} s is the per-epoch validation pass; *harness / own "
                     "optimiser steps* divides the harness run's wall time by the time of its own training steps "
                     "in the same run, which is free of run-to-run machine noise.")
    lines.append(f"One-off costs outside the ratio: dataset conversion {overhead['cold_load_s']:.1f} s "
                 f"(cached re-load {overhead['cached_load_s']:.1f} s), fresh MLflow sqlite store "
                 f"{overhead['fresh_db_s']:.1f} s.")
    return lines


def render_throughput(tput: dict, started: str) -> list[str]:
    lines = ["### Throughput (samples/s)", "", *_stamp(started, tput["machine"]), f"Command: `{tput['command']}`", "",
              f"Device {tput['device']}, {tput['threads']} threads, training batch {tput['batch_size']}, inference "
              f"batch {tput.get('eval_batch_size', tput['batch_size'])}. Data path alone "
              "(shuffled batches from pre-padded tensors): "
              + ", ".join(f"{s}: {_fmt(r['data_path_sps'])}/s" for s, r in tput["shapes"].items()) + ".", ""]
    shapes = list(tput["shapes"])
    header = "| method | params (" + shapes[0] + ") | " + " | ".join(
        f"train {s} | infer {s}" for s in shapes) + " |"
    lines += [header, "|" + "---|" * (2 + 2 * len(shapes))]
    methods = list(tput["shapes"][shapes[0]]["methods"])
    for m in methods:
        cells = []
        for s in shapes:
            row = tput["shapes"][s]["methods"].get(m, {})
            cells += ["failed", "failed"] if "error" in row else [_fmt(row["train_sps"]), _fmt(row["infer_sps"])]
        first = tput["shapes"][shapes[0]]["methods"][m]
        params = "-" if "error" in first else f"{first['params']:,d}"
        lines.append(f"| {m} | {params} | " + " | ".join(cells) + " |")
    return lines


def render_tfn_vs_lmf(tvl: dict, started: str) -> list[str]:
    lines = ["### TFN vs LMF (LMF paper efficiency claim)", "", *_stamp(started, tvl["machine"]),
             f"Command: `{tvl['command']}`", "",
              f"LMF rank {tvl['rank']}, {tvl['threads']} threads. Ratios: samples/s LMF / TFN (> 1: LMF faster), "
              "parameters TFN / LMF.", "",
              "| data | configuration | TFN params | LMF params | TFN train/s | LMF train/s | TFN infer/s | "
              "LMF infer/s | **train x** | **infer x** | **params x** |", "|---" * 11 + "|"]
    for r in tvl["rows"]:
        t, lmf, q = r["tfn"], r["lmf"], r["ratio"]
        lines.append(f"| {r['shape']} | {r['config']} | {t['params']:,d} | {lmf['params']:,d} | "
                     f"{_fmt(t['train_sps'])} | "
                     f"{_fmt(lmf['train_sps'])} | {_fmt(t['infer_sps'])} | {_fmt(lmf['infer_sps'])} | "
                     f"**{q['train']:.2f}** | **{q['infer']:.2f}** | **{q['params']:.1f}** |")
    return lines


def render_stress_emap(stress: tuple[str, str], started: str) -> list[str]:
    return ["### Stress grid + EMAP cost relative to training", "", f"_Measured {started} by `python "
            "benchmarks/run_all.py`._", "", f"Command: `{stress[0]}`", "", "```", stress[1].rstrip(), "```"]


def write_readme(sections: dict[str, list[str]]) -> None:
    """Replace each measured part's block between its markers; other parts stay as they were."""
    text = README.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README} lacks the {BEGIN} / {END} markers")
    for part, lines in sections.items():
        begin, end = _marks(part)
        block = "\n".join([begin, *lines, end])
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + block + rest.split(end, 1)[1]
        else:  # first time: append the part's block before the closing marker
            head, tail = text.split(END, 1)
            text = head + block + "\n\n" + END + tail
    README.write_text(text, encoding="utf-8")


def render_suite_time(output: str, started: str, machine: str, refit: bool = True) -> list[str]:
    """The block of ``suite_time.py [--refit]``: its wall time line and per-method table, then
    the cost model's fit on those very runs (predicted against measured seconds)."""
    lines = ["### The default suite's wall time (`bench run`, no arguments)", "", *_stamp(started, machine),
             f"Command: `python benchmarks/suite_time.py{' --refit' if refit else ''}`", ""]
    tables: list[list[str]] = [[]]
    for line in output.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
        if line.startswith(("Estimated time", "Wall time of", "Done:")):
            lines.append(line)
    tables = [t for t in tables if t]
    if tables:
        lines += ["", "Per method (summed per-run wall time):", "", *tables[0]]
    if refit and len(tables) > 1:
        lines += ["", "Cost model of `bench run`'s estimate refitted on these runs (`benchmarks/cost_model.py "
                  "--runs <their runs.json>`, written to `benchmark_core/suite/cost_model.json`):", "", *tables[1]]
    return lines


def run_stress_emap(args) -> tuple[str, str]:
    epochs = [] if args.stress_epochs is None else ["--epochs", str(args.stress_epochs)]
    argv = ["--methods", args.stress_methods, *epochs, "--threads", str(args.threads)]
    cmd = [sys.executable, str(HERE / "stress_emap_cost.py"), *argv]
    done = subprocess.run(cmd, capture_output=True, text=True)
    shown = "python benchmarks/stress_emap_cost.py " + " ".join(argv)
    if done.returncode != 0:
        return shown, f"failed with exit code {done.returncode}:\n{done.stderr[-1500:]}"
    return shown, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run of every benchmark")
    parser.add_argument("--no-write", action="store_true", help="print the figures, leave README.md alone")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="all", help="methods for the throughput table")
    parser.add_argument("--skip-stress-emap", action="store_true")
    parser.add_argument("--stress-methods", default="all")
    parser.add_argument("--stress-epochs", type=int, default=None,
                        help="training epochs of the stress/EMAP cost run (default: each dataset's default budget)")
    parser.add_argument("--overhead-epochs", type=int, default=20,
                        help="epochs of the overhead comparison (default: the default Budget's 20)")
    parser.add_argument("--overhead-repeats", type=int, default=7)
    parser.add_argument("--only", default=",".join(DEFAULT_PARTS),
                        help=f"comma list of parts to (re)measure, of {','.join(PARTS)} (default: all but "
                             "suite_time, which times the whole default suite); the README blocks of the others "
                             "are left as they are")
    args = parser.parse_args(argv)
    only = [p for p in args.only.split(",") if p]
    unknown = sorted(set(only) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    quick = ["--quick"] if args.quick else []
    threads = ["--threads", str(args.threads)]
    sections: dict[str, list[str]] = {}
    if "overhead" in only:
        sizes = [] if args.quick else ["--epochs", str(args.overhead_epochs), "--repeats", str(args.overhead_repeats)]
        overhead = harness_overhead.run([*quick, *threads, *sizes] + (["--no-cli"] if args.quick else []))
        sections["overhead"] = render_overhead(overhead, started)
    if "throughput" in only:
        sections["throughput"] = render_throughput(throughput.run([*quick, *threads, "--methods", args.methods]),
                                                   started)
    if "tfn_vs_lmf" in only:
        sections["tfn_vs_lmf"] = render_tfn_vs_lmf(tfn_vs_lmf.run([*quick, *threads]), started)
    if "method_speed" in only:  # MulT / MutualFormer, per-pair (frozen) vs batched; renders its own table
        speed = method_speed.run([*quick, *threads])
        sections["method_speed"] = ["### MulT and MutualFormer: per-pair vs batched", "",
                                    *_stamp(started, speed["machine"]), *speed["lines"]]
    if "suite_time" in only and not args.quick:  # the default suite as a user starts it; refits the cost model
        timed = [sys.executable, str(HERE / "suite_time.py"), *([] if args.no_write else ["--refit"])]
        output = subprocess.run(timed, check=True, capture_output=True, text=True).stdout
        sections["suite_time"] = render_suite_time(output, started, common.machine(), refit=not args.no_write)
    if "data_scale" in only:  # the data path at MOSI/MOSEI size, against the recorded measurement before issue 17
        sections["data_scale"] = ["### Data path at the size of MOSI and MOSEI", "", *_stamp(started, common.machine()),
                                  *data_scale.render_block(data_scale.run(["--quick"] if args.quick else []))]
    if "stress_emap" in only and not (args.skip_stress_emap or args.quick):
        sections["stress_emap"] = render_stress_emap(run_stress_emap(args), started)
    if args.no_write:
        print("\n\n".join("\n".join(lines) for lines in sections.values()))
    else:
        write_readme(sections)
        print(f"\nWrote the figures of {', '.join(sections)} to {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
