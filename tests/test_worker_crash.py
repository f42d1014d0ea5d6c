"""A run that kills its worker process (SIGKILL, os._exit, a segfault) fails alone, with the
reason; the process executor rebuilds its pool and the rest of the plan finishes (issue 13 §2)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import TINY_XOR

from benchmark_core.plugins import build_registry
from benchmark_core.specs import Budget, RunSpec
from benchmark_core.suite.executors import ProcessExecutor, describe_exit
from benchmark_core.suite.plan import run_suite
from benchmark_core.suite.runner import resolve_hparams
from benchmark_core.tracking import Tracker

CRASHING = '''
import os
import signal

import torch

from benchmark_core import MethodSpec, hookimpl
from benchmark_core.engine.models import FusionModel, Output


class KillsItsProcess(FusionModel):
    """Trains like a tiny linear model, except that the first forward pass kills the process."""

    def __init__(self, task, hparams):
        super().__init__(task, hparams)
        self.head = torch.nn.Linear(sum(m.dim for m in task.modalities), task.target.n_outputs)

    def fuse(self, batch):
        if self.hparams["kill"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return Output(self.head(torch.cat([batch.x[m] for m in self.modalities], dim=-1)))


@hookimpl
def register_methods(register):
    register(MethodSpec(name="killer", family="early", build=KillsItsProcess, defaults={"kill": False},
                        modality_kinds=("vector",)))
'''


def _spec(registry, method: str, seed: int, **hparams) -> RunSpec:
    return RunSpec(method, "synthetic-xor", seed, Budget(epochs=1, batch_size=32),
                   resolve_hparams(registry.method(method), hparams), TINY_XOR, {"stress": False, "emap": False})


def test_the_run_that_kills_its_worker_fails_alone_and_the_plan_finishes(install_plugin, fusebench_tracking_uri):
    install_plugin("fusebench-killer", "0.1", "fusebench_killer", CRASHING)  # workers see it via PYTHONPATH
    registry = build_registry()
    killer = _spec(registry, "killer", 1, kill=True)
    plan = [_spec(registry, "additive", 0), killer, _spec(registry, "killer", 0), _spec(registry, "late", 0)]
    tracker = Tracker(fusebench_tracking_uri, "crash")

    # two workers: whatever shared the pool with the killer when it died is re-run, not failed
    report = run_suite(registry, plan, tracker, ProcessExecutor(workers=2), echo=lambda s: None)

    by_label = {r.spec.label: r for r in report.results}
    assert sorted(by_label) == sorted(s.label for s in plan)  # one result per run, none twice
    crashed = by_label.pop(killer.label)
    assert crashed.status == "failed"
    assert "the worker process running this run died (killed by signal 9, SIGKILL)" in crashed.error
    assert "\n" not in crashed.error
    assert "BrokenProcessPool" not in crashed.error
    assert all(r.status == "finished" for r in by_label.values()), {k: r.error for k, r in by_label.items()}
    children = tracker.child_runs()
    assert len(children) == len(plan)  # each run was announced (MLflow child run) exactly once
    statuses = {r.data.tags["fusebench.spec_hash"]: r.info.status for r in children}
    assert statuses.pop(killer.spec_hash) == "FAILED"
    assert set(statuses.values()) == {"FINISHED"}


@pytest.mark.parametrize("code, words", [
    ("import os; os._exit(3)", "exit code 3"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by signal 9, SIGKILL"),
    ("import ctypes; ctypes.string_at(0)", "killed by signal 11, SIGSEGV"),
])
def test_how_a_dead_worker_ended_is_said_in_words(code, words):
    status = subprocess.run([sys.executable, "-c", code], capture_output=True).returncode
    assert describe_exit(status) == words
