"""The documentation stands alone: users get the repository and nothing beside it.

* no doc, docstring or comment points at the research notes the project was built from
  (their content lives in docs/, with the papers and reference code they cite);
* every relative link in README.md and the other Markdown files resolves to a file in the
  repository (and a ``#anchor`` to a heading of it);
* every name a documented code block imports from ``fusebench`` exists, so the public facade
  and the docs cannot drift apart.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".json", ".cfg", ".yaml", ".yml"}

# The research notes kept outside the repository, and paths into that outside folder.
OUTSIDE_NOTES = re.compile(r"methods-math|harness-anchors|data-formats\.md|statistics-and-tuning|"
                           r"shared/research|shared/DESIGN")
OUTSIDE_PATHS = re.compile(r"\.\./shared|shared/data|/work/shared")

PRODUCT = ["README.md", "pyproject.toml", "docs", "benchmark_core", "plugins", "fusebench", "examples",
           "benchmarks"]


def text_files(*roots: str) -> list[Path]:
    files = []
    for name in roots:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        files += [p for p in candidates if p.is_file() and p.suffix in TEXT_SUFFIXES
                  and not {"__pycache__", "build", ".pytest_cache"} & set(p.parts)
                  and not any(part.endswith(".egg-info") for part in p.parts)]
    return files


def markdown_files() -> list[Path]:
    return [p for p in text_files("README.md", "docs", "examples", "benchmarks", "leaderboards", "plugins")
            if p.suffix == ".md"]


def offending_lines(path: Path, pattern: re.Pattern) -> list[str]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [f"{path.relative_to(ROOT)}:{i}: {line.strip()}" for i, line in enumerate(lines, 1)
            if pattern.search(line)]


def test_product_files_do_not_point_outside_the_repository():
    hits = [hit for path in text_files(*PRODUCT)
            for pattern in (OUTSIDE_NOTES, OUTSIDE_PATHS) for hit in offending_lines(path, pattern)]
    assert not hits, ("these lines refer to files outside the repository; bring the content into docs/ "
                      "(citing its paper or reference code) and point there:\n" + "\n".join(hits))


def test_tests_do_not_cite_the_outside_research_notes():
    me = Path(__file__).resolve()
    hits = [hit for path in text_files("tests") if path.resolve() != me
            for hit in offending_lines(path, OUTSIDE_NOTES)]
    assert not hits, "cite docs/ instead:\n" + "\n".join(hits)


# -- links -------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def without_code(text: str) -> str:
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchor(heading: str) -> str:
    """GitHub's heading id: lower case, punctuation dropped (``-`` and ``_`` kept), spaces -> ``-``."""
    text = re.sub(r"[`*]", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen = set(), {}
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = github_anchor(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(without_code(path.read_text(encoding="utf-8")))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)]  # http:, https:, mailto:, ...


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(path):
    problems = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: leaves the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file ({resolved.relative_to(ROOT)})")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading with anchor #{anchor} in {resolved.relative_to(ROOT)}")
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_the_readme_links_the_docs_that_explain_the_architecture_and_plugins():
    links = relative_links(ROOT / "README.md")
    assert "docs/architecture.md" in links and "docs/plugins.md" in links


# -- the public facade --------------------------------------------------------------------------

PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
IMPORT = re.compile(r"^\s*from\s+(fusebench(?:\.\w+)*)\s+import\s+(\([^)]*\)|[^\n]+)", re.M)


def documented_imports() -> list[tuple[str, str, str]]:
    """(markdown file, module, name) for every ``from fusebench... import name`` in a python block."""
    found = []
    for path in markdown_files():
        for block in PYTHON_BLOCK.findall(path.read_text(encoding="utf-8")):
            for module, names in IMPORT.findall(block):
                statement = ast.parse(f"from {module} import {names.split('#')[0] if '(' not in names else names}")
                for alias in statement.body[0].names:
                    found.append((str(path.relative_to(ROOT)), module, alias.name))
    return found


def test_the_docs_import_from_fusebench_at_all():
    modules = {module for _, module, _ in documented_imports()}
    assert {"fusebench", "fusebench.testing"} <= modules


@pytest.mark.parametrize("where, module, name", documented_imports())
def test_every_name_the_docs_import_from_fusebench_exists(where, module, name):
    assert hasattr(importlib.import_module(module), name), (
        f"{where} imports {name!r} from {module}, which does not export it: add it to "
        f"{module.replace('.', '/')}{'/__init__' if module == 'fusebench' else ''}.py (and __all__) "
        "or fix the docs")


def test_fusebench_all_lists_only_existing_names():
    import fusebench
    import fusebench.testing

    for module in (fusebench, fusebench.testing):
        assert [n for n in module.__all__ if not hasattr(module, n)] == []


def test_the_readme_plugin_snippet_uses_the_facade():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippets = PYTHON_BLOCK.findall(text)
    assert any("from fusebench import" in s for s in snippets)
    assert not [s for s in snippets if re.search(r"^\s*(from|import)\s+benchmark_core", s, re.M)], (
        "the README's plugin snippet imports benchmark_core; plugins import from fusebench")
