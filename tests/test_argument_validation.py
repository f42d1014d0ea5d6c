"""Bad ``bench run`` arguments are usage errors (exit 2, one paragraph naming the flag and the
fix) raised before anything is trained or written (issue 13 §2)."""

from __future__ import annotations

import pytest
import torch

from benchmark_core.cli import main

# every case is refused before training; should one slip through, it stays a one-run suite
RUN = ["run", "--methods", "additive", "--datasets", "synthetic-xor", "--seeds", "0", "--epochs", "1",
       "--dataset-option", "synthetic-xor.n=120", "--no-stress", "--no-emap"]


def _bench_run(tmp_path, monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        code = main([*RUN, *args])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_a_usage_error(tmp_path, monkeypatch, capsys):
    code, err = _bench_run(tmp_path, monkeypatch, capsys, "--device", "cuda")
    assert code == 2
    line = _error_line(err)
    assert "--device cuda" in line and "no CUDA device is available" in line and "--device cpu" in line


def test_a_cuda_index_beyond_the_device_count_is_a_usage_error(tmp_path, monkeypatch, capsys):
    count = torch.cuda.device_count()
    code, err = _bench_run(tmp_path, monkeypatch, capsys, "--device", f"cuda:{count}")
    assert code == 2
    line = _error_line(err)
    assert f"--device cuda:{count}" in line and "--device cpu" in line
    if count:
        assert f"{count} CUDA device" in line
    else:
        assert "no CUDA device is available" in line


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:-1", "CPU", "cuda:0,1"])
def test_a_malformed_device_is_a_usage_error(tmp_path, monkeypatch, capsys, device):
    code, err = _bench_run(tmp_path, monkeypatch, capsys, "--device", device)
    assert code == 2
    line = _error_line(err)
    assert f"--device {device!r}" in line and "cpu, cuda or cuda:N" in line


@pytest.mark.parametrize("flag", ["--weight-decay", "--grad-clip"])
@pytest.mark.parametrize("value", ["nan", "inf", "-0.5"])
def test_nan_inf_and_negative_weight_decay_and_grad_clip_are_refused(tmp_path, monkeypatch, capsys, flag, value):
    code, err = _bench_run(tmp_path, monkeypatch, capsys, flag, value)
    assert code == 2
    line = _error_line(err)
    assert f"({flag})" in line and "finite number >= 0" in line
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("seeds, words", [
    ("-1", "seed -1 is out of range"),
    ("0,-3", "seed -3 is out of range"),
    (str(2**63), f"seed {2**63} is out of range"),
    (str(2**64), f"seed {2**64} is out of range"),
    ("", "no seeds given"),
    (" , ", "no seeds given"),
    ("0,x", "expected comma-separated integers"),
])
def test_bad_seeds_are_usage_errors_before_anything_is_created(tmp_path, monkeypatch, capsys, seeds, words):
    code, err = _bench_run(tmp_path, monkeypatch, capsys, "--seeds", seeds)
    assert code == 2
    line = _error_line(err)
    assert "argument --seeds" in line and words in line
    # Nothing on disk: argparse refuses the value before `bench run` starts.  (That the MLflow
    # store is only created once every argument is validated is the other half of issue 13 §2,
    # the change that moves store creation in cmd_run; keep this assertion either way.)
    assert not (tmp_path / "mlflow.db").exists()


def test_zero_workers_is_a_usage_error_before_anything_is_created(tmp_path, monkeypatch, capsys):
    code, err = _bench_run(tmp_path, monkeypatch, capsys, "--executor", "process", "--workers", "0")
    assert code == 2
    line = _error_line(err)
    assert "--workers must be at least 1, got 0" in line
    # No MLflow store may exist after a usage error.  (This relies on the argument checks
    # running first in cmd_run, and on store creation moving after all of them: the other
    # half of issue 13 §2; keep this assertion.)
    assert not (tmp_path / "mlflow.db").exists()
