"""Output that cannot be hijacked (issue 15 §4): names and descriptions from a real installed
plugin carry table separators, newlines, HTML, spreadsheet formulas and terminal escapes; every
output format shows them as text."""

from __future__ import annotations

import csv
import io

import pytest

from benchmark_core.cli import main
from benchmark_core.plugins import get_registry

HOSTILE = '''
from benchmark_core import MethodSpec, hookimpl
from plugins.methods.additive import build


@hookimpl
def register_methods(register):
    register(MethodSpec(name="pipe|name", family="fam\\nily", build=build,
                        description="turns the terminal red: \\x1b[31mRED\\x1b[0m and a\\nfake row"))
    register(MethodSpec(name="<script>alert(1)</script>", family="<b>bold</b>", build=build))
    register(MethodSpec(name="=HYPERLINK(\\"http://evil\\")", family="@SUM(1)", build=build))
    register(MethodSpec(name="[click](http://evil)", family="-1+1", build=build))
'''
NAMES = ["pipe|name", "<script>alert(1)</script>", '=HYPERLINK("http://evil")', "[click](http://evil)"]


@pytest.fixture(scope="module")
def hostile_suite(tmp_path_factory):
    """A suite of the hostile methods, trained once (1 epoch, tiny data)."""
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture
def hostile(hostile_suite, install_plugin, monkeypatch, capsys):
    install_plugin("fusebench-hostile", "0.1", "fusebench_hostile", HOSTILE)
    get_registry.cache_clear()
    monkeypatch.chdir(hostile_suite)
    if not (hostile_suite / "mlflow.db").exists():
        assert main(["run", "--methods", ",".join(NAMES), "--datasets", "synthetic-xor", "--seeds", "0",
                     "--epochs", "1", "--dataset-option", "synthetic-xor.n=200", "--no-stress", "--no-emap"]) == 0
    capsys.readouterr()
    yield hostile_suite
    get_registry.cache_clear()


def _render(capsys, fmt: str) -> str:
    assert main(["leaderboard", "--format", fmt]) == 0
    return capsys.readouterr().out


def test_markdown_table_keeps_its_shape_and_emits_no_html(hostile, capsys):
    text = _render(capsys, "md")
    table = [line for line in text.split("\n\n")[0].splitlines()]
    separators = {line.replace("\\|", "").count("|") for line in table}
    assert len(separators) == 1, table  # a name with '|' or a newline did not add a column or a row
    assert len(table) == 2 + len(NAMES)
    assert "<script>" not in text and "&lt;script&gt;" in text and "<b>" not in text
    assert "[click]\\(http://evil)" in text and "](http" not in text


def test_csv_cells_are_never_formulas(hostile, capsys):
    rows = list(csv.DictReader(io.StringIO("".join(line + "\n" for line in _render(capsys, "csv").splitlines()
                                                   if not line.startswith("# ")))))
    methods = {row["method"] for row in rows}
    assert "'=HYPERLINK(\"http://evil\")" in methods and not any(m.startswith(("=", "+", "-", "@")) for m in methods)
    assert {row["family"] for row in rows} >= {"'@SUM(1)", "'-1+1"}
    assert all(not row["mean"].startswith("'") for row in rows)  # numbers stay numbers


def test_html_and_latex_escape_everything(hostile, capsys):
    html = _render(capsys, "html")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    latex = _render(capsys, "latex")
    assert "<script>" in latex or "script" in latex  # plain text in LaTeX is harmless ...
    assert "pipe|name" in latex and "fam ily" in latex  # ... but a newline must not end a table row


def test_bench_list_shows_control_characters_as_escapes(hostile, capsys):
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mRED" in out
    assert "a\\nfake row" in out
