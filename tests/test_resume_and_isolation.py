"""Killing `bench run` mid-suite and re-running it; one broken method or dataset does not sink
the suite."""

from __future__ import annotations

import signal

import pytest
from mlflow.tracking import MlflowClient
from store_checks import child_runs, child_statuses, start_driver, stop, wait_for

from benchmark_core.cli import main
from benchmark_core.plugins import get_registry

ARGS = ["run", "--methods", "additive,late,tensor,early", "--datasets", "synthetic-xor", "--seeds", "0",
        "--epochs", "3", "--dataset-option", "synthetic-xor.n=600", "--no-stress", "--no-emap"]


def _start_and_kill_after_first_result(tmp_path, sig):
    """Signal the driver once a first run has finished *and* a later one is open, so the interrupt
    always lands on a run in progress (between runs there would be no child to close)."""
    proc = start_driver(tmp_path, ARGS)
    db = tmp_path / "mlflow.db"
    open_at_signal: list[str] = []

    def a_run_open_after_a_finished_one() -> bool:
        statuses = [status for status, _ in child_statuses(db)]
        if "FINISHED" in statuses and "RUNNING" in statuses:
            open_at_signal[:] = [h for status, h in child_statuses(db) if status == "RUNNING"]
            return bool(open_at_signal)
        return False

    try:
        if not wait_for(a_run_open_after_a_finished_one, timeout=120, step=0.05):
            pytest.fail("the suite never had a run open after finishing a first one")
    finally:
        stop(proc, sig)
    return proc, db, open_at_signal


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_suite_resumes_only_missing_runs(tmp_path, monkeypatch, capsys, sig):
    proc, db, open_at_signal = _start_and_kill_after_first_result(tmp_path, sig)
    before = child_runs(db)
    finished_before = {r.data.tags["fusebench.spec_hash"] for r in before if r.info.status == "FINISHED"}
    assert 1 <= len(finished_before) < 4
    if sig == signal.SIGINT:
        assert proc.returncode == 130, proc.stderr.read()[-2000:]
        # a clean interrupt closes its open runs itself: nothing stays RUNNING
        assert all(r.info.status != "RUNNING" for r in before)
        # the run open when the signal came is closed as KILLED (or had just finished, with its metrics)
        status_of = {r.data.tags["fusebench.spec_hash"]: r for r in before}
        for spec_hash in open_at_signal:
            run = status_of[spec_hash]
            assert run.info.status in ("KILLED", "FINISHED"), run.info.status
            if run.info.status == "FINISHED":
                assert run.data.metrics

    monkeypatch.chdir(tmp_path)
    assert main(ARGS) == 0
    out = capsys.readouterr().out
    assert f"Skipping {len(finished_before)} of 4 runs already finished" in out
    assert f"{4 - len(finished_before)} trained" in out
    if sig == signal.SIGKILL:
        assert "interrupted by an earlier killed `bench run` as KILLED" in out

    after = child_runs(db)
    assert not [r for r in after if r.info.status == "RUNNING"]
    finished = {r.data.tags["fusebench.spec_hash"] for r in after if r.info.status == "FINISHED"}
    assert len(finished) == 4 and finished_before <= finished
    # finished runs were not trained again: exactly one FINISHED child per spec
    assert sum(r.info.status == "FINISHED" for r in after) == 4
    assert all(r.data.tags["fusebench.status"] in ("finished", "killed") for r in after)


BROKEN = '''
import torch
from benchmark_core import DatasetSpec, MethodSpec, TargetSpec, hookimpl
from benchmark_core.engine.models import FusionModel, Output


class Exploding(FusionModel):
    def __init__(self, task, hparams):
        super().__init__(task, hparams)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def fuse(self, batch):
        raise RuntimeError("boom from the broken method")


def unreadable(options):
    raise OSError("cannot read /nowhere/broken.pkl")


@hookimpl
def register_methods(register):
    register(MethodSpec(name="broken", family="nonlinear", build=Exploding))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="broken-data", load=unreadable, target=TargetSpec("regression", 1),
                         modalities=("a",), metrics=("mae",), primary_metric="mae"))
'''


def test_a_broken_method_does_not_sink_the_suite(tmp_path, monkeypatch, capsys, install_plugin):
    install_plugin("fusebench-broken", "0.1", "fusebench_broken", BROKEN)
    get_registry.cache_clear()
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["run", "--methods", "broken,additive", "--datasets", "synthetic-xor",
                     "--seeds", "0", "--epochs", "1", "--dataset-option", "synthetic-xor.n=300",
                     "--no-stress", "--no-emap"])
    finally:
        get_registry.cache_clear()
    captured = capsys.readouterr()
    assert code == 1, captured.err[-1500:]
    assert "1 of 2 runs did not finish" in captured.err
    assert "boom from the broken method" in captured.err
    children = {(r.data.tags["fusebench.method"], r.data.tags["fusebench.dataset"]): r
                for r in child_runs(tmp_path / "mlflow.db")}
    assert children[("additive", "synthetic-xor")].info.status == "FINISHED"
    failed = children[("broken", "synthetic-xor")]
    assert failed.info.status == "FAILED" and "boom" in failed.data.tags["fusebench.error"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    trace = open(client.download_artifacts(failed.info.run_id, "traceback.txt")).read()
    assert "RuntimeError: boom from the broken method" in trace


def test_a_dataset_that_cannot_load_stops_the_command_before_anything_is_written(tmp_path, monkeypatch, capsys,
                                                                                 install_plugin):
    """Issue 14 §3 (pre-flight): before, every run of the dataset failed one by one and was recorded."""
    install_plugin("fusebench-broken", "0.1", "fusebench_broken", BROKEN)
    get_registry.cache_clear()
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["run", "--methods", "broken,additive", "--datasets", "synthetic-xor,broken-data",
                     "--seeds", "0", "--epochs", "1", "--dataset-option", "synthetic-xor.n=300",
                     "--no-stress", "--no-emap"])
    finally:
        get_registry.cache_clear()
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("cannot read /nowhere/broken.pkl") == 1
    assert "dataset 'broken-data' could not be loaded: OSError" in captured.err and "fusebench-broken" in captured.err
    assert not (tmp_path / "mlflow.db").exists() and "Planned" not in captured.out
