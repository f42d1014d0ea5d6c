"""Names and messages of the command line (issue 16 §2 and the CLI parts of §1): method aliases,
case-insensitive names with a did-you-mean for every kind, `--help`/`--version`, quiet first
use of a store, a closed pipe, `bench list` columns, the closing count, `--dataset-option`
checks and one line per finished run when output is not a terminal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from store_checks import child_runs

from benchmark_core import __version__
from benchmark_core.cli import ENVIRONMENT, ENVIRONMENT_DEFAULTS, main
from benchmark_core.errors import DataError, DuplicateRegistrationError, FuseBenchError, UnknownNameError
from benchmark_core.plugins import build_registry, get_registry
from benchmark_core.specs import MethodSpec, SpecError
from plugins.methods.additive import build as additive_build

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--seeds", "0", "--epochs", "1", "--dataset-option", "synthetic-xor.n=120"]


def _main(*args: str) -> int:
    try:
        return main(list(args))
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code or 0)


# -- 1. aliases, case, did-you-mean ----------------------------------------------------------------

def test_method_aliases_resolve_to_the_registered_name_in_any_case(registry):
    chosen = registry.select("methods", "TFN,tensor,Tensor_Fusion,gated,EF,early_fusion,LF,late_fusion,LowRank"
                             "TensorFusion,MulT", "--methods")
    assert chosen == ["tensor", "gmu", "early", "late", "lmf", "mult"]  # one entry per method
    assert registry.method("TFN").name == "tensor"
    assert registry.aliases("methods")["tfn"] == "tensor"


@pytest.mark.parametrize("kind, spelled, name", [
    ("methods", "ADDITIVE", "additive"),
    ("datasets", "Synthetic-XOR", "synthetic-xor"),
    ("metrics", "F1_Macro", "f1_macro"),
    ("stress", "NOISE", "noise"),
    ("executors", "Serial", "serial"),
])
def test_every_kind_matches_case_insensitively(registry, kind, spelled, name):
    assert registry.select(kind, spelled) == [name]
    assert registry.get(kind, spelled).name == name


@pytest.mark.parametrize("kind, typo, hint", [
    ("methods", "TENSR", "'tensor'"),
    ("methods", "tnf", "'tfn' (an alias of 'tensor')"),
    ("datasets", "Synthetic-XR", "'synthetic-xor'"),
    ("metrics", "f1_marco", "'f1_macro'"),
    ("stress", "Noize", "'noise'"),
    ("executors", "seriall", "'serial'"),
])
def test_every_kind_suggests_the_closest_name(registry, kind, typo, hint):
    with pytest.raises(UnknownNameError) as info:
        registry.select(kind, typo, "--flag")
    text = str(info.value)
    assert f"Did you mean {hint}?" in text and "(given to --flag)" in text
    assert f"`bench list {kind}`" in text  # a command that exists (not `bench list stress tests`)


def test_the_cli_names_the_flag_for_executors_and_accepts_aliases_in_hparams(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _main("run", "--methods", "additive", "--datasets", "synthetic-xor", "--executor", "seriall", *TINY) == 2
    err = capsys.readouterr().err
    assert "Unknown executor 'seriall' (given to --executor). Did you mean 'serial'?" in err
    assert _main("run", "--methods", "TFN", "--datasets", "synthetic-xor", "--hparam", "tnsor.rank=2", *TINY) == 2
    assert "--hparam names method(s) ['tnsor']" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def test_validate_plugin_suggests_and_ignores_case(capsys):
    assert _main("validate-plugin", "method_tensr") == 2
    err = capsys.readouterr().err
    assert "No plugin named 'method_tensr' is loaded. Did you mean 'method_tensor'?" in err
    assert get_registry().plugin_name("METHOD_TENSOR") == "method_tensor"
    assert get_registry().plugin_name("FuseBench") == "FuseBench"  # a distribution name, any case


CLASH = '''
from benchmark_core import MethodSpec, hookimpl
from plugins.methods.additive import build

@hookimpl
def register_methods(register):
    register(MethodSpec(name="{name}", family="tensor", build=build, aliases={aliases}))
'''


@pytest.mark.parametrize("name, aliases, words", [
    ("my-tensor", ("TFN",), ["alias 'tfn'", "'my-tensor'", "'tensor'"]),
    ("my-tensor", ("Tensor",), ["'my-tensor'", "alias 'tensor'"]),
    ("TENSOR", (), ["name 'tensor'", "the method 'tensor'"]),
])
def test_an_alias_or_name_clash_names_both_plugins(install_plugin, name, aliases, words):
    install_plugin("fusebench-clash", "0.1", "fusebench_clash", CLASH.format(name=name, aliases=aliases))
    with pytest.raises(DuplicateRegistrationError) as info:
        build_registry()
    text = str(info.value)
    assert "fusebench-clash 0.1" in text and f"fusebench {__version__}" in text, text
    assert all(word in text.lower() for word in words), text  # either plugin may load first
    assert "case-insensitively" in text and "\n" not in text


@pytest.mark.parametrize("aliases, fragment", [
    ("tfn", "aliases must be a tuple of names"),
    (("my tfn",), "alias 'my tfn' is invalid"),
    (("X", "x"), "alias 'x' repeats the alias 'X'"),
    (("M",), "alias 'M' repeats the method name 'm'"),
    (("ALL",), "alias 'all' is reserved"),
])
def test_aliases_are_validated(aliases, fragment):
    with pytest.raises(SpecError, match=re.escape(fragment)):
        MethodSpec(name="m", family="additive", build=additive_build, aliases=aliases)
    assert MethodSpec(name="m", family="additive", build=additive_build, aliases=["a", "b"]).aliases == ("a", "b")


# -- 2. help, version, environment ------------------------------------------------------------------

def test_run_help_shows_defaults_and_the_environment(capsys):
    assert _main("run", "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--methods METHODS 'all' or a comma list of names or aliases, any case (default: all;" in text
    assert "(default: the embedded suite mfeat," in text
    assert "--seeds SEEDS comma list of run seeds (default: 0,1,2)" in text
    assert "--epochs EPOCHS training epochs (default: 20," in text
    assert "--batch-size BATCH_SIZE batch size (default: 64," in text
    assert "--lr LR learning rate (default: 0.001," in text
    for name, _ in ENVIRONMENT:
        assert name in text
    for name, value, _ in ENVIRONMENT_DEFAULTS:
        assert f"{name}={value}" in text


def test_every_environment_variable_the_code_reads_is_listed():
    listed = {name for name, _ in ENVIRONMENT} | {name for name, _, _ in ENVIRONMENT_DEFAULTS}
    pattern = re.compile(r"""(?:environ(?:\.get|\.setdefault)?[(\[]|_split_env\()\s*["']([A-Z][A-Z0-9_]+)["']""")
    ours = re.compile(r"""["'](FUSEBENCH_[A-Z0-9_]+)["']""")  # also read through a constant (ENV_VAR = ...)
    read = set()
    for folder in ("benchmark_core", "plugins"):  # what `bench` runs
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            read |= set(pattern.findall(source)) | set(ours.findall(source))
    assert read and read <= listed, f"not in `bench --help`: {sorted(read - listed)}"


def test_version(capsys):
    assert _main("--version") == 0
    assert capsys.readouterr().out.strip() == f"bench (fusebench) {__version__}"


# -- 3. quiet store, closed pipe, list columns, counts, baselines -------------------------------------

def test_first_run_on_a_fresh_store_prints_no_info_lines(tmp_path):
    """MLflow announces the schema it creates on a new store ("Creating initial MLflow database
    tables...", "Updating database tables", alembic's migration steps) at INFO on stderr."""
    proc = subprocess.run([sys.executable, "-m", "benchmark_core.cli", "run", "--methods", "additive", "--datasets",
                           "synthetic-xor", "--no-stress", "--no-emap", *TINY],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "mlflow.db").exists()
    assert "INFO" not in proc.stderr, proc.stderr
    for noise in ("Creating initial MLflow database tables", "Updating database tables", "Context impl"):
        assert noise not in proc.stderr + proc.stdout


def test_a_reader_that_closes_the_pipe_gets_no_traceback(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "benchmark_core.cli", "list", "methods"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # closed before the table is written: every write meets a broken pipe
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141
    head = subprocess.run(f"{sys.executable} -m benchmark_core.cli list methods | head -1", shell=True,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert head.stdout.split() == ["name", "family", "aliases", "description", "from"]
    assert "Traceback" not in head.stderr, head.stderr


@pytest.mark.parametrize("kind, columns", [
    ("methods", ["name", "family", "aliases", "description", "from"]),
    ("datasets", ["name", "primary metric", "description", "from"]),
    ("metrics", ["name", "description", "from"]),
    ("stress", ["name", "description", "from"]),
    ("executors", ["name", "description", "from"]),
])
def test_list_has_no_unnamed_column(capsys, kind, columns):
    assert _main("list", kind) == 0
    header, rule, *rows = capsys.readouterr().out.splitlines()
    assert len(rule.split()) == len(columns), f"{header}\n{rule}"  # one dash group per named column
    assert [h for h in re.split(r"\s{2,}", header.strip())] == columns
    if kind == "methods":
        tensor = next(row for row in rows if row.startswith("tensor "))
        assert "tfn, tensor_fusion, tensorfusion" in tensor


BROKEN = '''
from benchmark_core import MethodSpec, hookimpl
from benchmark_core.engine.models import FusionModel
import torch


class Exploding(FusionModel):
    def __init__(self, task, hparams):
        super().__init__(task, hparams)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def fuse(self, batch):
        raise RuntimeError("boom")


@hookimpl
def register_methods(register):
    register(MethodSpec(name="exploding", family="nonlinear", build=Exploding))
'''


def test_done_counts_failed_runs_as_failed_not_trained(tmp_path, monkeypatch, capsys, install_plugin):
    install_plugin("fusebench-exploding", "0.1", "fusebench_exploding", BROKEN)
    get_registry.cache_clear()
    monkeypatch.chdir(tmp_path)
    try:
        code = _main("run", "--methods", "exploding,additive", "--datasets", "synthetic-xor", "--no-stress",
                     "--no-emap", *TINY)
    finally:
        get_registry.cache_clear()
    out = capsys.readouterr().out
    assert code == 1
    assert "Done: 1 trained, 0 skipped as already finished, 1 failed." in out, out


def test_aliases_plan_once_record_the_name_and_print_one_line_per_run(tmp_path, monkeypatch, capsys):
    """Aliases and spellings of one method are one method; the baseline a user named by alias
    is not added again and the one added is announced once; runs record registered names; the
    output (not a terminal under capsys) has one line per finished run."""
    monkeypatch.chdir(tmp_path)
    code = _main("run", "--methods", "TFN,tensor,LF", "--datasets", "Synthetic-XOR", "--executor", "Serial",
                 "--hparam", "tfn.tensor_dim=4", "--seeds", "0", "--epochs", "1",
                 "--dataset-option", "SYNTHETIC-xor.n=120", "--emap-samples", "8")
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert out.count("Adding baseline(s)") == 1 and "Adding baseline(s) ['additive']:" in out
    assert "Planned 3 runs (3 methods x 1 datasets x 1 seeds)" in out
    lines = [line for line in out.splitlines() if line.startswith("[finished] ")]
    assert len(lines) == 3, out
    for line in lines:
        assert re.fullmatch(r"\[finished\] (tensor|late|additive)/synthetic-xor/seed0: test accuracy "
                            r"[01]\.\d{4} in \d+\.\d s", line), line
    assert "Done: 3 trained, 0 skipped as already finished, 0 failed." in out
    runs = child_runs(tmp_path / "mlflow.db")
    assert sorted(r.data.tags["fusebench.method"] for r in runs) == ["additive", "late", "tensor"]
    assert sorted(r.data.tags["fusebench.dataset"] for r in runs) == ["synthetic-xor"] * 3
    tensor = next(r for r in runs if r.data.tags["fusebench.method"] == "tensor")
    assert tensor.data.params["hparams.tensor_dim"] == "4" and tensor.data.params["dataset_options.n"] == "120"


# -- 4. --dataset-option ----------------------------------------------------------------------------

@pytest.mark.parametrize("item, fragment", [
    ("synthetic-xor.n", "--dataset-option 'synthetic-xor.n' must look like DATASET.KEY=VALUE"),
    ("n=300", "--dataset-option n names no dataset: use DATASET.KEY=VALUE"),
    ("synthetic-xor.=3", "--dataset-option 'synthetic-xor.=3' must look like DATASET.KEY=VALUE"),
])
def test_dataset_option_parse_errors_name_the_flag(tmp_path, monkeypatch, capsys, item, fragment):
    monkeypatch.chdir(tmp_path)
    assert _main("run", "--methods", "additive", "--datasets", "synthetic-xor", "--dataset-option", item) == 2
    err = capsys.readouterr().err
    assert fragment in err and "--hparam" not in err, err
    assert not (tmp_path / "mlflow.db").exists()


def _builtin_datasets() -> list[str]:
    return [reg.spec.name for reg in build_registry().items("datasets") if reg.distribution == "fusebench"]


@pytest.mark.parametrize("dataset", _builtin_datasets())
def test_unknown_dataset_option_keys_are_refused_before_anything_is_written(tmp_path, monkeypatch, capsys,
                                                                             isolated_data, dataset):
    monkeypatch.chdir(tmp_path)
    code = _main("run", "--methods", "additive", "--datasets", dataset, "--seeds", "0",
                 "--dataset-option", f"{dataset}.no_such_option=1")
    err = capsys.readouterr().err
    assert code == 2
    [line] = [line for line in err.splitlines() if "error:" in line]
    assert f"--dataset-option {dataset}.no_such_option: dataset {dataset!r} has no such option." in line
    accepted = sorted(get_registry().dataset(dataset).defaults)
    assert f"It accepts: {', '.join(accepted)} (--dataset-option {dataset}.KEY=VALUE)" in line
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "cache").exists()  # nothing loaded or written


def test_unknown_option_suggests_the_close_key_and_the_vector_variant_has_no_seq_len(tmp_path, monkeypatch,
                                                                                     capsys):
    monkeypatch.chdir(tmp_path)
    assert _main("run", "--methods", "additive", "--datasets", "synthetic-xor", "--dataset-option",
                 "synthetic-xor.nosie=0.1") == 2
    assert "Did you mean synthetic-xor.noise?" in capsys.readouterr().err
    assert _main("run", "--methods", "additive", "--datasets", "synthetic-xor", "--dataset-option",
                 "synthetic-xor.seq_len=4") == 2
    assert "--dataset-option synthetic-xor.seq_len: dataset 'synthetic-xor' has no such option" in \
        capsys.readouterr().err
    assert _main("run", "--methods", "additive", "--datasets", "synthetic-xor", "--dataset-option",
                 "mfeat.views=fou") == 2
    assert "--dataset-option names dataset 'mfeat', which is not in --datasets" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def test_the_synthetic_loader_refuses_unknown_options():
    from plugins.datasets.synthetic import make_loader

    with pytest.raises(DataError) as info:
        make_loader("xor", False)({"n": 60, "size": 3})
    text = str(info.value)
    assert "dataset 'synthetic-xor' has no option(s) ['size']" in text and "data_seed" in text
    assert isinstance(info.value, FuseBenchError)


def test_the_alias_table_in_docs_cli_lists_every_builtin_alias(registry):
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("### Method aliases", 1)[1].split("\n\n")[2]  # heading, intro, table
    documented = {}
    for row in table.splitlines()[2:]:
        aliases, method = (cell.strip() for cell in row.strip("|").split("|")[:2])
        if method != "same name":
            documented.update({alias: method.strip("`") for alias in re.findall(r"`([^`]+)`", aliases)})
    builtin = {alias: name for alias, name in registry.aliases("methods").items()
               if registry.registration("methods", name).distribution == "fusebench"}
    assert documented == builtin
