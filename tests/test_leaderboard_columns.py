"""The leaderboard's interaction/robustness table is computed from MLflow alone, with
effective robustness taken against the late-fusion run of the same dataset and seed."""

from __future__ import annotations

import pytest

from benchmark_core.evaluation.robustness import effective_robustness
from benchmark_core.record import RunResult, stress_key
from benchmark_core.reporting.leaderboard import analysis_table, finished_runs, render_markdown, runs_frame
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.tracking import Tracker

LEVELS = (0.5, 1.0)
# method -> seed -> (clean, noise curve, emap, missing scores)
RUNS = {
    "late": {0: (0.80, (0.70, 0.60), 0.80, (0.70, 0.50)), 1: (0.82, (0.72, 0.62), 0.82, (0.72, 0.52))},
    "tensor": {0: (0.90, (0.85, 0.80), 0.55, (0.50, 0.50)), 1: (0.88, (0.80, 0.70), 0.57, (0.52, 0.48))},
    "additive": {0: (0.60, (0.55, 0.50), 0.60, (0.55, 0.55))},
}
FAMILY = {"late": "late", "tensor": "tensor", "additive": "additive"}


def _result(method: str, seed: int) -> RunResult:
    clean, curve, emap, missing = RUNS[method][seed]
    metrics = {"test/accuracy": clean, "emap/accuracy": emap, "emap/gap/accuracy": clean - emap,
               "robustness/missing/mean/accuracy": sum(missing) / len(missing),
               "robustness/relative/accuracy": 0.0}
    metrics.update({stress_key("noise", "all", lv, "accuracy"): s for lv, s in zip(LEVELS, curve, strict=True)})
    metrics.update({stress_key("missing", t, 1.0, "accuracy"): s for t, s in zip(("x1", "x2"), missing, strict=True)})
    spec = RunSpec(method, "toy", seed, Budget(epochs=1))
    info = {"data_hash": "h", "primary_metric": "accuracy", "higher_is_better": True,
            "metric_variants": ["accuracy"], "harness_version": "test", "family": FAMILY[method]}
    return RunResult(spec, "finished", metrics, info=info)


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('lbcols') / 'mlflow.db'}"
    writer = Tracker(uri, "cols")
    parent = writer.start_parent("bench run (test)")
    for method, seeds in RUNS.items():
        for seed in seeds:
            result = _result(method, seed)
            writer.log_result(writer.start_child(parent, result.spec, FAMILY[method]), result)
    writer.end_run(parent)
    return Tracker(uri, "cols")  # a fresh reader: only MLflow's content is used


def _expected_er(method: str, seed: int) -> float:
    mine, ref = RUNS[method][seed], RUNS["late"][seed]
    return effective_robustness((mine[0], *mine[1]), (ref[0], *ref[1]))


def test_analysis_table_has_every_column_with_seed_statistics(tracker):
    table = analysis_table(finished_runs(runs_frame(tracker)))
    assert list(table.columns) == ["Family", "Method", "Dataset", "Metric", "Clean", "EMAP", "EMAP gap",
                                   "Missing (mean)", "Relative rob.", "Effective rob."]
    assert list(table["Method"]) == ["late", "additive", "tensor"]  # family order
    tensor = table.set_index("Method").loc["tensor"]
    assert tensor["Clean"] == "0.8900 ± 0.0141"
    assert tensor["EMAP"] == "0.5600 ± 0.0141"
    assert tensor["EMAP gap"] == "0.3300 ± 0.0283"
    assert tensor["Missing (mean)"] == "0.5000 ± 0.0000"
    ers = [_expected_er("tensor", s) for s in (0, 1)]
    mean, std = sum(ers) / 2, abs(ers[0] - ers[1]) / 2 ** 0.5
    assert tensor["Effective rob."] == f"{mean:.4f} ± {std:.4f}"
    assert table.set_index("Method").loc["late"]["Effective rob."] == "0.0000 ± 0.0000"
    additive = table.set_index("Method").loc["additive"]
    assert additive["Effective rob."] == f"{_expected_er('additive', 0):.4f}" and additive["EMAP gap"] == "0.0000"


def test_rendered_leaderboard_keeps_the_main_table_first_and_adds_the_analysis(tracker):
    text = render_markdown(tracker)
    assert text.splitlines()[0].startswith("| Family")
    assert "### Interactions and robustness" in text
    assert text.index("| late ") < text.index("### Interactions")
    header = next(line for line in text.splitlines() if "EMAP gap" in line and line.startswith("|"))
    for title in ("Clean", "EMAP", "Missing (mean)", "Relative rob.", "Effective rob."):
        assert title in header


def test_no_reference_run_means_no_effective_robustness(tracker):
    frame = finished_runs(runs_frame(tracker))
    table = analysis_table(frame[frame["method"] != "late"])
    assert set(table["Effective rob."]) == {"—"}


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_bench_plot_robustness_draws_one_panel_per_dataset(tracker, tmp_path, suffix):
    from benchmark_core.cli import main
    from benchmark_core.reporting.plots import robustness_curves

    curves = robustness_curves(finished_runs(runs_frame(tracker)))
    tensor = curves[curves["method"] == "tensor"].sort_values("level")
    assert list(tensor["level"]) == [0.0, *LEVELS]
    assert list(tensor["mean"].round(6)) == [0.89, 0.825, 0.75] and list(tensor["n"]) == [2, 2, 2]
    out = tmp_path / f"rob{suffix}"
    code = main(["plot", "robustness", "--tracking-uri", tracker.uri, "--suite", "cols", "--out", str(out)])
    assert code == 0 and out.stat().st_size > 1000
    head = out.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in out.read_bytes()[:2000]


def test_bench_plot_refuses_unknown_formats_and_empty_suites(tracker, tmp_path, capsys):
    from benchmark_core.cli import main

    assert main(["plot", "robustness", "--tracking-uri", tracker.uri, "--suite", "cols",
                 "--out", str(tmp_path / "x.pdf")]) == 2
    assert main(["plot", "robustness", "--tracking-uri", tracker.uri, "--suite", "nothing-here",
                 "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert ".png or .svg" in err and "without --no-stress" in err
