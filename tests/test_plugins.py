"""Plugin discovery through real installed entry points, registration rules, did-you-mean."""

from __future__ import annotations

import pytest

import benchmark_core
from benchmark_core.errors import DuplicateRegistrationError, FuseBenchError, UnknownNameError
from benchmark_core.plugins import build_registry, make_plugin_manager

DEMO_PLUGIN = '''
from benchmark_core import MethodSpec, MetricSpec, hookimpl
from plugins.methods.additive import build


@hookimpl
def register_methods(register):
    register(MethodSpec(name="demo-sum", family="additive", build=build, reference="demo"))


@hookimpl
def register_metrics(register):
    register(MetricSpec("demo-zero", lambda y, p: 0.0))
'''


def test_builtins_come_from_our_own_entry_points(registry):
    reg = registry.registration("methods", "tensor")
    assert reg.distribution == "fusebench"
    assert reg.plugin == "method_tensor"
    assert {"early", "late", "additive", "tensor"} <= set(registry.names("methods"))
    assert "synthetic-xor" in registry.names("datasets")
    assert "serial" in registry.names("executors")


def test_third_party_plugin_discovered_through_installed_entry_point(install_plugin):
    install_plugin("fusebench-demo", "1.2.3", "fusebench_demo", DEMO_PLUGIN, entry_name="demo")
    registry = build_registry()
    reg = registry.registration("methods", "demo-sum")
    assert (reg.distribution, reg.version, reg.plugin) == ("fusebench-demo", "1.2.3", "demo")
    assert registry.metric("demo-zero").fn(None, None) == 0.0
    report = {entry["name"]: entry for entry in registry.plugin_report()}
    assert report["demo"]["distribution"] == "fusebench-demo"
    assert report["demo"]["registered"] == {"methods": ["demo-sum"], "metrics": ["demo-zero"]}
    assert registry.dist_version("methods", "demo-sum") == "fusebench-demo==1.2.3"


def test_load_and_block_select_entry_points(install_plugin):
    install_plugin("fusebench-demo", "1.2.3", "fusebench_demo", DEMO_PLUGIN, entry_name="demo")
    assert "demo-sum" not in build_registry(block=["demo"]).names("methods")
    only = build_registry(load=["demo", "metrics"])
    assert only.names("methods") == ["demo-sum"]


def test_duplicate_name_names_both_distributions(install_plugin):
    install_plugin("fusebench-dup", "0.0.1", "fusebench_dup", '''
        from benchmark_core import MethodSpec, hookimpl
        from plugins.methods.additive import build

        @hookimpl
        def register_methods(register):
            register(MethodSpec(name="additive", family="additive", build=build))
    ''')
    with pytest.raises(DuplicateRegistrationError) as info:
        build_registry()
    message = str(info.value)
    assert "'additive'" in message
    assert f"fusebench {benchmark_core.__version__}" in message and "fusebench-dup 0.0.1" in message


def test_misspelt_hook_fails_loudly():
    class Typo:
        @staticmethod
        def register_method(register):  # missing "s"
            pass

    from benchmark_core.hookspecs import hookimpl

    Typo.register_method = hookimpl(Typo.register_method)
    with pytest.raises(FuseBenchError, match="register_method"):
        make_plugin_manager(entrypoints=False, plugins=[Typo])


def test_wrong_spec_type_is_refused():
    from benchmark_core.hookspecs import hookimpl
    from benchmark_core.specs import SpecError

    class Wrong:
        @staticmethod
        @hookimpl
        def register_methods(register):
            register({"name": "x"})

    with pytest.raises(SpecError, match="MethodSpec"):
        build_registry(entrypoints=False, plugins=[Wrong])


def test_unknown_name_suggests_closest(registry):
    with pytest.raises(UnknownNameError) as info:
        registry.select("methods", "tensr,late", "--methods")
    text = str(info.value)
    assert "Did you mean 'tensor'?" in text
    assert "--methods" in text and "additive" in text


def test_select_all_and_dedupe(registry):
    every = registry.names("methods")
    # `all` leaves out generic methods whose presets are registered (unimodal = unimodal-1)
    assert registry.select("methods", "all") == [m for m in every if m != "unimodal"]
    assert "unimodal" in every and "unimodal-1" in registry.select("methods", "all")
    assert registry.select("methods", "late,late, additive") == ["late", "additive"]
