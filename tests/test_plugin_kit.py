"""The third-party plugin kit, end to end: the example package is *really* pip-installed
(built by its own build backend from its pyproject.toml) and then used through the CLI:
``bench plugins``, ``bench list``, ``bench run`` and ``bench validate-plugin``."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark_core.plugins import get_registry
from fusebench.testing import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fusebench-plugin-example"
DIST = "fusebench-plugin-example"


def _can_build_in_this_env() -> bool:
    """setuptools >= 70.1 builds wheels on its own; older ones need the ``wheel`` package.
    (A fresh Python 3.11 venv has setuptools 65 and no wheel; 3.12+ venvs have neither.)"""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _pip_install(source: Path, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir",
           "--disable-pip-version-check", "--no-input", "-q", "--target", str(target), str(source)]
    if _can_build_in_this_env():
        cmd.insert(4, "--no-build-isolation")  # offline and fast: build with the setuptools we have
    else:  # no (recent enough) setuptools here: pip fetches the backend into an isolated build env
        cmd.remove("--no-index")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"pip could not install the example plugin ({' '.join(cmd)}):\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install the example into a private --target folder and put it on sys.path (and
    PYTHONPATH for subprocesses) for this module's tests only."""
    work = tmp_path_factory.mktemp("plugin-kit")
    source = work / "src"
    # build from a copy: pip builds in-tree and would leave build/ and *.egg-info in the checkout
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                                                      ".pytest_cache"))
    site = work / "site"
    _pip_install(source, site)
    assert (site / "fusebench_example" / "__init__.py").exists()
    infos = list(site.glob("fusebench_plugin_example-*.dist-info"))
    assert infos and "[fusebench]" in (infos[0] / "entry_points.txt").read_text()
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
        for name in ("FUSEBENCH_LOAD_PLUGINS", "FUSEBENCH_BLOCK_PLUGINS", "MLFLOW_TRACKING_URI"):
            mp.delenv(name, raising=False)
        importlib.invalidate_caches()
        get_registry.cache_clear()
        yield site
    for module in [m for m in sys.modules if m == "fusebench_example" or m.startswith("fusebench_example.")]:
        del sys.modules[module]
    importlib.invalidate_caches()
    get_registry.cache_clear()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_bench_plugins_shows_the_installed_distribution(installed_example, workdir):
    result = run_cli("plugins")
    assert result.code == 0, result.err
    entry = {e["name"]: e for e in json.loads(result.out)}["example"]
    assert entry["distribution"] == DIST and entry["version"] == "0.1.0"
    assert entry["registered"] == {"methods": ["example-maxpool"], "datasets": ["example-parity3"],
                                   "metrics": ["example_worst_recall"]}
    import fusebench_example

    assert Path(fusebench_example.__file__).is_relative_to(installed_example)  # the installed copy


@pytest.mark.parametrize("kind, name", [("methods", "example-maxpool"), ("datasets", "example-parity3"),
                                        ("metrics", "example_worst_recall")])
def test_bench_list_shows_its_registrations(installed_example, workdir, kind, name):
    result = run_cli("list", kind)
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines()]
    row = next(r for r in rows if r and r[0] == name)
    assert row[-1] == DIST  # the "from" column names the distribution


def test_bench_run_uses_its_method_dataset_and_metric(installed_example, workdir):
    result = run_cli("run", "--methods", "example-maxpool,additive", "--datasets", "example-parity3",
                     "--seeds", "0", "--epochs", "1", "--no-stress", "--no-emap",
                     "--dataset-option", "example-parity3.n=200")
    assert result.code == 0, result.out + result.err
    assert "Planned 2 runs" in result.out and "2 trained" in result.out

    from benchmark_core.tracking import Tracker

    runs = Tracker(f"sqlite:///{workdir / 'mlflow.db'}", "default").child_runs()
    by_method = {r.data.tags["fusebench.method"]: r for r in runs}
    assert set(by_method) == {"example-maxpool", "additive"}
    for run in by_method.values():
        assert run.info.status == "FINISHED"
        assert run.data.tags["fusebench.dataset"] == "example-parity3"
        # a built-in metric and the plugin's both reach the record, and agree: the worst class's
        # recall is at most the mean recall over the classes (balanced accuracy)
        mean, worst = (run.data.metrics[f"test/{m}"] for m in ("balanced_accuracy", "example_worst_recall"))
        assert math.isfinite(worst) and 0.0 <= worst <= mean
    assert by_method["example-maxpool"].data.tags["fusebench.family"] == "pooling"


def test_the_examples_names_and_the_built_ins_are_disjoint(installed_example, workdir):
    """Copying the example must not clash with FuseBench: its names are prefixed, and the common
    metrics (balanced_accuracy, ...) are built in rather than left to each plugin."""
    from benchmark_core.plugins import build_registry

    everything = build_registry()
    builtin = build_registry(block=["example"])
    assert {"balanced_accuracy", "auroc", "mcc", "rmse", "r2"} <= set(builtin.names("metrics"))
    for kind in ("methods", "datasets", "metrics"):
        # a clash would leave the whole example out (with a warning), so this set would be empty
        example = {name for name in everything.names(kind) if everything.dist_version(kind, name) == f"{DIST}==0.1.0"}
        assert example and all(name.startswith("example") for name in example), (kind, example)
        assert not example & set(builtin.names(kind)), (kind, example & set(builtin.names(kind)))


def test_validate_plugin_is_clean_for_the_example(installed_example, workdir):
    by_entry_point = run_cli("validate-plugin", "example")
    assert by_entry_point.code == 0, by_entry_point.out + by_entry_point.err
    assert "No problems found." in by_entry_point.out
    assert f"({DIST} 0.1.0): 1 method, 1 dataset, 1 metric." in by_entry_point.out
    by_distribution = run_cli("validate-plugin", DIST)
    assert by_distribution.code == 0 and "No problems found." in by_distribution.out



def test_the_built_in_common_metrics_are_valid_and_are_scikit_learn():
    """The metrics plugin authors used to register themselves are built in: they pass the
    validate-plugin checks, agree with scikit-learn, and are NaN exactly where undefined."""
    import numpy as np
    from sklearn import metrics as skm

    from benchmark_core.suite.validate import check_metric

    registry = get_registry()
    for name in ("balanced_accuracy", "precision_macro", "recall_macro", "mcc", "auroc",
                 "f1_micro_multilabel", "f1_macro_multilabel", "rmse", "r2"):
        assert check_metric(registry.metric(name)) == [], name
    fn = {name: registry.metric(name).fn for name in registry.names("metrics")}
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    logits = np.eye(3)[[0, 1, 0, 1, 2, 2, 0, 2]] + 0.1 * np.arange(24).reshape(8, 3) / 24
    pred = logits.argmax(1)
    assert fn["balanced_accuracy"](y, logits) == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert fn["mcc"](y, logits) == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert fn["recall_macro"](y, logits) == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert 0.5 < fn["auroc"](y, logits) <= 1.0
    assert math.isnan(fn["mcc"](y, np.tile([1.0, 0.0, 0.0], (8, 1))))  # a constant prediction: 0/0
    assert math.isnan(fn["auroc"](np.zeros(8, dtype=int), logits))  # classes without positives
    truth, values = np.array([1.0, 2.0, 3.0, 4.0]), np.array([[1.5], [2.0], [2.5], [4.5]])
    assert fn["rmse"](truth, values) == pytest.approx(skm.mean_squared_error(truth, values[:, 0]) ** 0.5)
    assert fn["r2"](truth, values) == pytest.approx(skm.r2_score(truth, values[:, 0]))
    assert math.isnan(fn["r2"](np.ones(4), values))

BROKEN_PLUGIN = '''
import torch
from torch import nn

from fusebench import FusionModel, MethodSpec, MetricSpec, Output, hookimpl


class WrongWidth(FusionModel):
    """Mixes modalities in encode and returns one output column whatever the target."""

    def __init__(self, task, hparams):
        super().__init__(task, hparams)
        self.proj = nn.ModuleDict({m.name: nn.Linear(m.dim, 4) for m in task.modalities})

    def encode(self, batch):
        pooled = {m: self.proj[m](batch.x[m].mean(1) if batch.x[m].ndim == 3 else batch.x[m])
                  for m in self.modalities}
        total = sum(pooled.values())
        return batch.replace(x={m: total for m in self.modalities})

    def fuse(self, encoded):
        return Output(encoded.x[self.modalities[0]].sum(1, keepdim=True))


@hookimpl
def register_methods(register):
    register(MethodSpec(name="broken-width", family="early", build=WrongWidth, modality_kinds=("vector",)))


@hookimpl
def register_metrics(register):
    register(MetricSpec("broken-nan", lambda y, p: float("nan"), target_kinds=("regression",)))
    register(MetricSpec("broken-raises", lambda y, p: 1 / 0, target_kinds=("multiclass",)))
'''


def test_validate_plugin_reports_problems_and_exits_1(install_plugin, workdir):
    install_plugin("fusebench-broken", "0.0.1", "fusebench_broken", BROKEN_PLUGIN, entry_name="broken")
    try:
        result = run_cli("validate-plugin", "broken")
    finally:
        sys.modules.pop("fusebench_broken", None)
    assert result.code == 1, result.out + result.err
    problems = [line for line in result.out.splitlines() if line.startswith("problem: ")]
    text = "\n".join(problems)
    assert "method 'broken-width' on 2 vector modalities, multiclass (3 classes): output pred has shape (4, 1); " \
           "expected (4, 3)" in text
    assert "metric 'broken-nan' returned nan; it must be finite (random regression inputs)" in text
    assert "metric 'broken-raises' raised ZeroDivisionError" in text
    assert len(problems) >= 3 and "problems found." in result.out
    # a plugin nobody installed is a usage error, not a crash
    missing = run_cli("validate-plugin", "no-such-plugin")
    assert missing.code == 2 and "No plugin named 'no-such-plugin'" in missing.err


def test_validate_plugin_catches_encode_mixing_modalities():
    from benchmark_core.suite.validate import check_method
    from fusebench import MethodSpec

    namespace: dict = {}
    exec(compile(BROKEN_PLUGIN, "broken_plugin", "exec"), namespace)
    wrong = namespace["WrongWidth"]

    class RightWidth(wrong):
        def fuse(self, encoded):
            pred = encoded.x[self.modalities[0]][:, :1].repeat(1, self.task.target.n_outputs)
            return namespace["Output"](pred)

    problems = check_method(MethodSpec(name="mixer", family="early", build=RightWidth,
                                       modality_kinds=("vector",)))
    assert len(problems) == 1, problems
    assert "encode() mixes modalities: changing the input of 'm0' changed the encoding of 'm1'" in problems[0]


def test_validate_plugin_catches_eval_outputs_that_depend_on_the_batch():
    from torch import nn

    from benchmark_core.suite.validate import check_method
    from fusebench import FusionModel, MethodSpec, Output

    class BatchNormalised(FusionModel):
        """Standardises with the statistics of whatever batch it is given, even in eval mode."""

        def __init__(self, task, hparams):
            super().__init__(task, hparams)
            self.head = nn.Linear(sum(m.dim for m in task.modalities), task.target.n_outputs)

        def fuse(self, encoded):
            h = torch.cat([encoded.x[m] for m in self.modalities], dim=-1)
            return Output(self.head((h - h.mean(0)) / (h.std(0) + 1e-5)))

    spec = MethodSpec(name="batch-stats", family="early", build=BatchNormalised, modality_kinds=("vector",))
    problems = check_method(spec)
    assert problems and all("depend on which other samples share the batch" in p for p in problems), problems
    assert problems[0].startswith("method 'batch-stats' on 2 vector modalities")


def test_the_example_plugins_own_tests_pass(installed_example):
    """The example's tests/ (written with fusebench.testing) pass against the installed copy."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True, text=True, timeout=300, cwd=EXAMPLE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "7 passed" in proc.stdout
