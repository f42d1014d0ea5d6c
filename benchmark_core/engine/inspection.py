"""``bench data inspect PATH``: which registered dataset can read a file or folder, and what it holds.

Dataset plugins opt in with ``DatasetSpec.inspect(path)``; each distinct inspector is asked
once.  The answer is rendered as text (or, by the command, JSON): per recognised file set, the format,
splits, modalities, padding evidence, labels, non-finite values, the datasets it serves
and the ``bench run`` command line; for an unknown path, every layout the plugins accept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark_core.errors import FuseBenchError


def inspect_path(path: str | Path) -> dict[str, Any]:
    """Merge what every registered inspector says about ``path``."""
    from benchmark_core.plugins import get_registry

    target = Path(path).expanduser()
    if not target.exists():
        raise FuseBenchError(f"bench data inspect: {target} does not exist.")
    seen, merged = set(), {"path": str(target.resolve()), "recognised": [], "rejected": [], "layouts": []}
    for registration in get_registry().items("datasets"):
        inspector = registration.spec.inspect
        if inspector is None or inspector in seen:
            continue
        seen.add(inspector)
        answer = inspector(target)
        for key in ("recognised", "rejected", "layouts"):
            merged[key].extend(answer.get(key, []))
    return merged


def _modality_line(name: str, m: dict[str, Any]) -> str:
    steps = m.get("steps")
    shape = f"{m['kind']}, dim {m['dim']}" + (f", steps {steps['min']}–{steps['max']} (median {steps['median']:g})"
                                              if steps else "")
    return f"    {name}: {shape}, {m['dtype']}, non-finite values {m['nonfinite']}"


def render(answer: dict[str, Any]) -> str:
    lines = [f"{answer['path']}:"]
    if not answer["recognised"]:
        lines.append("  no registered dataset recognises this path.")
        for item in answer["rejected"]:
            lines.append(f"  - looks like {item['format']} for {item['dataset']}, but: {item['reason']}")
        lines.append("  Supported layouts:")
        lines += [f"    - {layout}" for layout in answer["layouts"]]
        return "\n".join(lines) + "\n"
    for found in answer["recognised"]:
        facts = f" (aligned: {found['aligned']})" if "aligned" in found else ""
        lines.append(f"  format: {found['format_title']} [{found['format']}]{facts}")
        lines.append("  files: " + ", ".join(f"{role}={p}" for role, p in found["files"].items()))
        lines.append("  splits: " + ", ".join(f"{s} {n}" for s, n in found["splits"].items()))
        lines.append("  modalities:")
        lines += [_modality_line(name, m) for name, m in found["modalities"].items()]
        report = found["conversion_report"]
        for modality, padding in (report.get("padding_by_modality") or {}).items():
            lines.append(f"    padding of {modality}: {padding.get('side')} ({padding.get('decided_by')}; "
                         f"length source: {padding.get('length_source')}; votes {padding.get('support')})")
        labels = found["labels"]
        detail = {k: v for k, v in labels.items() if k not in ("shape", "min", "max")}
        lines.append(f"  labels: range [{labels['min']:g}, {labels['max']:g}], {json.dumps(detail)}")
        for warning in report.get("warnings", []):
            lines.append(f"  warning: {warning}")
        for key in ("release", "dropped_segments"):
            if key in report:
                lines.append(f"  {key.replace('_', ' ')}: {report[key]}")
        lines.append(f"  serves: {', '.join(found['datasets'])}")
        lines.append(f"  use it: {found['command']}")
        lines.append("")
    return "\n".join(lines)
