"""The benchmark scripts run end to end (tiny ``--quick`` mode) and print their ratios.

Behaviour only, never timing: the figures themselves come from ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"fusebench_bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBENCH_CACHE_DIR", str(tmp_path / "cache"))


def test_mosi_shaped_pickle_goes_through_the_real_loader(tmp_path):
    common = _load("_common")
    from benchmark_core.engine.data import load_tensors
    from benchmark_core.plugins import get_registry

    common.write_mosi_pickle(tmp_path / "mosi", {"text": 7, "audio": 3, "vision": 2},
                             {"train": 8, "valid": 4, "test": 4}, steps=12)
    data = load_tensors(get_registry().dataset("mosi"), {"data_dir": str(tmp_path / "mosi")})
    assert data.report["sizes"] == {"train": 8, "validation": 4, "test": 4}
    assert data.train.x["text"].shape == (8, 12, 7)
    assert data.report["loader"]["padding"] == "left"
    assert bool(data.train.mask["text"][0].all())  # every 4th sample is full length


def test_throughput_quick(capsys):
    out = _load("throughput").run(["--quick", "--methods", "tensor,lmf", "--shapes", "300/5/20"])
    rows = out["shapes"]["300/5/20"]["methods"]
    assert set(rows) == {"tensor", "lmf"}
    assert all(r["train_sps"] > 0 and r["infer_sps"] > 0 and r["params"] > 0 for r in rows.values())
    assert "train samples/s" in capsys.readouterr().out


def test_tfn_vs_lmf_quick(capsys):
    out = _load("tfn_vs_lmf").run(["--quick", "--shapes", "300/5/20"])
    assert len(out["rows"]) == 4
    paper = next(r for r in out["rows"] if r["config"] == "full model, paper setting")
    assert paper["tfn"]["params"] > paper["lmf"]["params"]  # TFN's full tensor is the larger model
    assert "params x" in capsys.readouterr().out


def test_harness_overhead_quick(capsys):
    out = _load("harness_overhead").run(["--quick", "--no-cli"])
    assert out["ratio"] > 0 and out["repeats"]
    assert "harness / hand loop wall time" in capsys.readouterr().out
