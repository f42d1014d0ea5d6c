"""End-to-end CLI runs on tiny data, in a temporary working directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmark_core.cli import main

TINY = ["--dataset-option", "synthetic-xor.n=300", "--no-stress", "--no-emap"]


def test_run_leaderboard_and_rerun(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--methods", "additive,tensor", "--datasets", "synthetic-xor", "--seeds", "0,1",
            "--epochs", "1", *TINY]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Planned 4 runs" in out and "4 trained" in out
    assert (tmp_path / "mlflow.db").exists()  # default tracking store in the working directory

    assert main(["leaderboard", "--out", "board.md"]) == 0
    board = (tmp_path / "board.md").read_text()
    assert "| tensor " in board and "| additive " in board and "±" in board

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Skipping 4 of 4 runs already finished" in out and "0 trained" in out


def test_unknown_names_exit_2_with_did_you_mean(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--methods", "tensr", "--datasets", "synthetic-xor", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "Unknown method 'tensr'" in err and "Did you mean 'tensor'?" in err
    assert main(["run", "--datasets", "synthetic-xr"]) == 2
    assert "Did you mean 'synthetic-xor'?" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, fragment", [
    ("--epochs", "0", "epochs must be a positive integer"),
])
def test_invalid_budget_flags(tmp_path, monkeypatch, capsys, flag, value, fragment):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--methods", "additive", "--datasets", "synthetic-xor", flag, value, *TINY])
    assert code == 2
    assert fragment in capsys.readouterr().err


def test_tracking_uri_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert main(["run", "--methods", "additive", "--datasets", "synthetic-xor", "--seeds", "0", "--epochs", "1",
                 "--tracking-uri", uri, *TINY]) == 0
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_list_and_plugins(capsys):
    assert main(["list", "methods"]) == 0
    listing = capsys.readouterr().out
    assert "tensor" in listing and "fusebench" in listing
    assert main(["plugins"]) == 0
    plugins = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in plugins}
    assert by_name["method_tensor"]["distribution"] == "fusebench"
    assert by_name["method_tensor"]["registered"] == {"methods": ["tensor"]}


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "benchmark_core.cli", "list", "executors"], capture_output=True,
                         text=True, check=True)
    assert "serial" in out.stdout
