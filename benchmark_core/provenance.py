"""Where a result came from: code version (git sha when run from a checkout), plugin
distributions, library versions.  Computed once per process."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


@functools.cache
def git_sha() -> str | None:
    """HEAD of the checkout the engine runs from (``+dirty`` with local changes), else None."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "") if sha else None


def plugin_versions(registry) -> dict[str, str]:
    """Distribution -> version for every plugin that registered something."""
    out = {}
    for entry in registry.plugin_report():
        if entry["distribution"]:
            out[entry["distribution"]] = entry["version"]
        else:
            out[f"local:{entry['name']}"] = "-"
    return dict(sorted(out.items()))
