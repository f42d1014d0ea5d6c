"""One broken installed plugin (it fails to import, or a registration hook raises) is reported
in one paragraph naming it, and every other plugin keeps working: ``bench list``, ``bench
plugins``, ``bench run`` and ``bench validate-plugin`` (issue 13 §2)."""

from __future__ import annotations

import json

import pytest

from benchmark_core.plugins import build_registry
from fusebench.testing import run_cli

BROKEN_IMPORT = '''
from somelib_not_installed import fuse  # the plugin's dependency is missing
'''

HOOK_RAISES = '''
from benchmark_core import MetricSpec, hookimpl


@hookimpl
def register_metrics(register):
    register(MetricSpec("half-registered", lambda y, p: 0.0))


@hookimpl
def register_methods(register):
    raise RuntimeError("cannot read ~/.hookbad.toml:\\nline 3: missing key 'width'")
'''

GOOD = '''
from benchmark_core import MethodSpec, hookimpl
from plugins.methods.additive import build


@hookimpl
def register_methods(register):
    register(MethodSpec(name="demo-sum", family="additive", build=build, reference="demo"))
'''

TINY_RUN = ["--datasets", "synthetic-xor", "--seeds", "0", "--epochs", "1",
            "--dataset-option", "synthetic-xor.n=120", "--no-stress", "--no-emap"]


@pytest.fixture
def broken_and_good(install_plugin):
    install_plugin("fusebench-badimport", "0.3.1", "fusebench_badimport", BROKEN_IMPORT, entry_name="badimport")
    install_plugin("fusebench-demo", "1.2.3", "fusebench_demo", GOOD, entry_name="demo")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("FUSEBENCH_LOAD_PLUGINS", "FUSEBENCH_BLOCK_PLUGINS", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _one_paragraph(text: str) -> str:
    assert "\n" not in text.strip(), text
    return text


def test_a_plugin_that_fails_at_import_is_reported_and_the_others_load(broken_and_good):
    registry = build_registry()
    assert "demo-sum" in registry.names("methods") and "additive" in registry.names("methods")
    [failure] = registry.failures
    message = _one_paragraph(failure.message)
    assert "'badimport'" in message and "fusebench-badimport 0.3.1" in message
    assert "ModuleNotFoundError: No module named 'somelib_not_installed'" in message
    assert "set FUSEBENCH_BLOCK_PLUGINS=badimport to skip it" in message


def test_a_raising_hook_is_isolated_and_its_plugin_registers_nothing(install_plugin):
    install_plugin("fusebench-hookbad", "2.0", "fusebench_hookbad", HOOK_RAISES, entry_name="hookbad")
    registry = build_registry()
    assert "additive" in registry.names("methods")
    assert "half-registered" not in registry.names("metrics")  # all of the plugin, or none of it
    [failure] = registry.failures
    message = _one_paragraph(failure.message)
    assert "'hookbad'" in message and "fusebench-hookbad 2.0" in message and "register_methods" in message
    assert "RuntimeError: line 3: missing key 'width'" in message  # the exception's last line
    assert "FUSEBENCH_BLOCK_PLUGINS=hookbad" in message


@pytest.mark.parametrize("source, stage, error", [
    ("""
from benchmark_core import MethodSpec, hookimpl

@hookimpl
def register_methods(register):
    register(MethodSpec(name="two words", family="early", build=print))
""", "its register_methods hook", "SpecError: method name 'two words' is invalid"),
    ("""
from benchmark_core import hookimpl

@hookimpl
def register_method(register):  # misspelt
    pass
""", "registering its hooks", "PluginValidationError: unknown hook 'register_method'"),
])
def test_an_invalid_spec_or_a_misspelt_hook_is_isolated_too(install_plugin, source, stage, error):
    install_plugin("fusebench-odd", "0.1", "fusebench_odd", source, entry_name="odd")
    registry = build_registry()
    assert "additive" in registry.names("methods")
    [failure] = registry.failures
    assert failure.plugin == "odd" and failure.stage == stage and failure.error.startswith(error)


def test_bench_list_and_plugins_keep_working_and_show_the_broken_plugin(broken_and_good, workdir):
    listed = run_cli("list", "methods")
    assert listed.code == 0, listed.err
    assert "demo-sum" in listed.out and "additive" in listed.out
    assert "bench: warning:" in listed.err and "fusebench-badimport 0.3.1" in listed.err

    shown = run_cli("plugins")
    assert shown.code == 0, shown.err
    entries = {e["name"]: e for e in json.loads(shown.out)}
    assert entries["demo"]["registered"] == {"methods": ["demo-sum"]}
    broken = entries["badimport"]
    assert (broken["distribution"], broken["version"], broken["registered"]) == ("fusebench-badimport", "0.3.1", {})
    assert "No module named 'somelib_not_installed'" in broken["error"]


def test_bench_run_all_proceeds_with_what_loaded(broken_and_good, workdir, monkeypatch):
    # only a few entry points, so that `--methods all` is one cheap run
    monkeypatch.setenv("FUSEBENCH_LOAD_PLUGINS", "badimport,demo,metrics,executors,dataset_synthetic")
    result = run_cli("run", "--methods", "all", *TINY_RUN)
    assert result.code == 0, result.err[-2000:]
    assert "1 trained" in result.out and "fusebench-badimport 0.3.1" in result.err


def test_bench_run_of_an_unknown_name_points_at_the_broken_plugin(broken_and_good, workdir):
    result = run_cli("run", "--methods", "badimport-fusion,additive", *TINY_RUN)
    assert result.code == 2
    error = next(line for line in result.err.splitlines() if line.startswith("bench: error:"))
    assert "Unknown method 'badimport-fusion' (given to --methods)" in error
    assert "It may come from the installed plugin 'badimport' (fusebench-badimport 0.3.1), which failed " \
           "to load (ModuleNotFoundError: No module named 'somelib_not_installed')" in error
    assert "Traceback" not in result.err
    assert not (workdir / "mlflow.db").exists()


def test_validate_plugin_reports_the_broken_one_and_checks_the_others(broken_and_good, workdir):
    result = run_cli("validate-plugin", "badimport")
    assert result.code == 1, result.err
    problems = [line for line in result.out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and "fusebench-badimport 0.3.1" in problems[0]
    assert "No module named 'somelib_not_installed'" in problems[0]

    good = run_cli("validate-plugin", "demo")
    assert good.code == 0, good.out + good.err
    assert "checked method demo-sum" in good.out
    assert "note: other installed plugins fail to load and were left out: badimport" in good.out


@pytest.fixture
def fusebench_block_plugins():
    """A plugin author's explicit block list for ``fusebench_env`` (overrides the kit's default)."""
    return ["badimport"]


def test_fusebench_env_honours_an_explicit_block_list(broken_and_good, fusebench_make_registry):
    registry = fusebench_make_registry()
    assert registry.failures == []
    assert "demo-sum" in registry.names("methods")
    assert "badimport" not in {e["name"] for e in registry.plugin_report()}
