"""The leaderboard as a pure function of a runs frame: formats, ranking, failed/missing runs,
mixing refusals.  Frames are built by hand, so every expected number is known."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from benchmark_core.errors import FuseBenchError
from benchmark_core.reporting.leaderboard import build_board, format_for, render

# dataset -> method -> per-seed scores (None: the run failed)
SCORES = {
    "synthetic_x": {"late": [0.8, 0.9, 1.0], "tensor": [0.5, 0.5, None], "early": [0.7, 0.7, 0.7]},
    "reg%set": {"late": [3.0, 3.0, 3.0], "tensor": [1.0, 2.0, 3.0], "early": [2.0, 2.0, 2.0]},
}
FAMILY = {"late": "late", "tensor": "tensor", "early": "early"}


def _frame(**override) -> pd.DataFrame:
    rows = []
    t = 0
    for dataset, methods in SCORES.items():
        lower = dataset == "reg%set"
        metric = "mse" if lower else "accuracy"
        for method, scores in methods.items():
            for seed, score in enumerate(scores):
                t += 1
                row = {"run_id": f"r{t}", "status": "finished" if score is not None else "failed",
                       "mlflow_status": "FINISHED", "method": method, "dataset": dataset, "seed": seed,
                       "family": FAMILY[method], "spec_hash": f"{dataset}-{method}-{seed}", "data_hash": f"h-{dataset}",
                       "primary_metric": metric, "higher_is_better": not lower,
                       "metric_variants": f"{metric},mae" if lower else f"{metric},f1_macro",
                       "harness_version": "0.1.0", "git_sha": "abc", "torch_version": "2.x",
                       "versions": json.dumps({"fusebench": "0.1.0"}), "epochs": "1", "batch_size": "8", "lr": "0.01",
                       "optimizer": "adam", "weight_decay": "0.0", "patience": "0", "start_time": t,
                       "error": None if score is not None else "RuntimeError: boom & 50% done"}
                if score is not None:
                    row[f"test/{metric}"] = score
                    row["test/f1_macro" if not lower else "test/mae"] = score / 2
                    row["info/train_time_s"] = 1.0 + seed
                rows.append(row)
    frame = pd.DataFrame(rows)
    for key, value in override.items():
        frame[key] = value
    return frame


def test_ranks_mean_rank_and_borda_respect_direction():
    board = build_board(_frame(), "t", rank="mean-rank")
    ranks = dict(zip(board.ranking["method"], board.ranking["value"], strict=True))
    # synthetic_x (higher better): late 0.9 > early 0.7 > tensor 0.5 -> 1, 2, 3
    # reg%set (lower better): tensor 2.0 = early 2.0 < late 3.0 -> 1.5, 1.5, 3
    assert ranks == {"late": 2.0, "early": 1.75, "tensor": 2.25}
    borda = build_board(_frame(), "t", rank="borda")
    points = dict(zip(borda.ranking["method"], borda.ranking["value"], strict=True))
    assert points == {"late": 2.0 + 0.0, "early": 1.0 + 1.5, "tensor": 0.0 + 1.5}
    text = render(_frame(), "md", "t", rank="borda", group=False)
    body = [line for line in text.splitlines() if line.startswith("| ") and "Method" not in line]
    assert [line.split("|")[2].strip() for line in body[:3]] == ["early", "late", "tensor"]  # best first
    assert "Borda ↑" in text and "half a point per tie" in text


def test_failed_and_missing_runs_are_shown_not_hidden():
    frame = _frame()
    frame = frame[~((frame["method"] == "early") & (frame["dataset"] == "synthetic_x") & (frame["seed"] == 2))]
    text = render(frame, "md", "t")
    tensor = next(line for line in text.splitlines() if line.startswith("| tensor"))
    assert "0.5000 ± 0.0000 (2/3 seeds)" in tensor
    early = next(line for line in text.splitlines() if line.startswith("| early"))
    assert "0.7000 ± 0.0000 (2/3 seeds)" in early
    failures = text[text.index("### Failed or missing runs"):]
    assert "| tensor" in failures and "failed" in failures and "RuntimeError: boom & 50% done" in failures
    assert "missing" in failures and "no run recorded" in failures
    doc = json.loads(render(frame, "json", "t"))
    assert {(f["method"], f["status"], f["seed"]) for f in doc["failures"]} == {("tensor", "failed", 2),
                                                                              ("early", "missing", 2)}


def test_a_later_finished_attempt_supersedes_a_failure():
    frame = _frame()
    retry = frame[frame["status"] == "failed"].copy()
    retry["status"], retry["error"], retry["start_time"], retry["run_id"] = "finished", None, 999, "retry"
    retry["test/accuracy"] = 0.5
    text = render(pd.concat([frame, retry], ignore_index=True), "md", "t")
    assert "None: every planned run finished." in text
    assert "(2/3 seeds)" not in text


def test_latex_is_booktabs_and_escaped():
    tex = render(_frame(), "latex", "t")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "synthetic\\_x" in tex and "reg\\%set" in tex and "50\\% done" in tex and "boom \\& 50" in tex
    assert "$\\pm$" in tex and "±" not in tex and "↑" not in tex and "$\\downarrow$" in tex
    assert "synthetic_x" not in tex.replace("synthetic\\_x", "")


def test_html_is_standalone_and_sortable():
    page = render(_frame(), "html", "t")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http" not in page and "src=" not in page and "<link" not in page
    assert '<table class="sortable">' in page and "addEventListener(\"click\"" in page and "<style>" in page
    assert "reg%set" in page and "boom &amp; 50% done" in page


def test_csv_and_json_parse_back_to_the_same_numbers():
    board = build_board(_frame(), "t")
    csv = pd.read_csv(io.StringIO(render(_frame(), "csv", "t")), comment="#")
    doc = json.loads(render(_frame(), "json", "t"))
    results = pd.DataFrame(doc["results"])
    for table in (csv, results):
        merged = table.merge(board.long, on=["method", "dataset", "metric"], suffixes=("", "_ref"))
        assert len(merged) == len(board.long) == 6
        assert (merged["mean"] - merged["mean_ref"]).abs().max() < 1e-12
        assert (merged["std"] - merged["std_ref"]).abs().max() < 1e-12
        assert list(merged["n"]) == list(merged["n_ref"])
    late_x = results[(results["method"] == "late") & (results["dataset"] == "synthetic_x")].iloc[0]
    assert late_x["mean"] == pytest.approx(0.9) and late_x["std"] == pytest.approx(0.1) and late_x["seeds"] == "0,1,2"
    assert doc["provenance"]["data_hashes"] == {"reg%set": ["h-reg%set"], "synthetic_x": ["h-synthetic_x"]}
    assert "# Suite t" in render(_frame(), "csv", "t")


def test_every_format_carries_the_provenance_footer():
    for fmt in ("md", "latex", "html", "csv", "json"):
        text = render(_frame(), fmt, "t")
        assert "data hashes" in text and "epochs=1" in text and "0.1.0" in text and "abc" in text, fmt


def test_metric_variants_are_selectable_and_checked():
    text = render(_frame(), "md", "t", metrics=["synthetic_x:f1_macro", "reg%set:mae"])
    assert "synthetic_x (f1_macro ↑)" in text and "reg%set (mae ↓)" in text
    # late f1_macro = accuracy / 2: mean 0.45, std 0.05 over 3 seeds -> t_{2,0.975} 0.05 / sqrt(3)
    assert "0.4500 ± 0.1242" in text
    with pytest.raises(FuseBenchError, match="'auroc' was not recorded for dataset 'reg%set'.*mae, mse"):
        render(_frame(), "md", "t", metrics=["auroc"])


def test_mixing_data_hashes_or_metric_variants_is_refused_unless_asked():
    frame = _frame()
    frame.loc[0, "data_hash"] = "other"
    with pytest.raises(FuseBenchError, match="different data"):
        render(frame, "md", "t")
    assert "| late" in render(frame, "md", "t", allow_mixed_data=True)
    frame = _frame()
    frame.loc[0, "metric_variants"] = "accuracy"
    with pytest.raises(FuseBenchError, match="different metric variants.*--allow-mixed-metrics"):
        render(frame, "md", "t")
    assert "| late" in render(frame, "md", "t", allow_mixed_metrics=True)


def test_format_from_suffix_and_unknown_dataset():
    assert format_for("x.tex", None) == "latex" and format_for("x.htm", None) == "html"
    assert format_for("x.tex", "md") == "md" and format_for(None, None) == "md"
    with pytest.raises(FuseBenchError, match="--format"):
        format_for("x.pdf", None)
    with pytest.raises(FuseBenchError, match="No runs for dataset"):
        render(_frame(), "md", "t", datasets=["nope"])
