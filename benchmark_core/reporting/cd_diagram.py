"""The critical-difference diagram of Demšar (2006): average ranks across datasets at a glance.

An axis of ranks 1..k (best on the left), each method's name joined to its average rank, the
Nemenyi critical difference drawn above the axis, and thick bars joining the groups of methods
that are not significantly different (:func:`benchmark_core.reporting.statistics.cliques`).

matplotlib is an optional extra (``fusebench[plot]``), so it is imported only when drawing; the
figure is a bare :class:`matplotlib.figure.Figure` rendered by Agg, never pyplot, so drawing
touches no global state.  Output is byte-stable: fixed size and dpi, and no timestamp or
software-version metadata, so a published diagram only changes when the ranks do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark_core.errors import FuseBenchError
from benchmark_core.reporting.statistics import cliques

FORMATS = (".png", ".svg", ".pdf")
DPI = 150
AXIS_IN = 3.6            # length of the rank axis, inches (at least 0.45 in per rank)
CHAR_IN = 0.08           # width of one 9-pt label character, generously: names are never clipped
ROW_IN = 0.26            # vertical step between method labels
BAR_STEP_IN = 0.11       # vertical step between clique bars
TOP_IN = 0.95            # title, CD bar and axis
FONT = "DejaVu Sans"     # bundled with matplotlib: the same glyphs on every machine
# Metadata entries matplotlib would otherwise fill with the date or its version string.
_NO_STAMPS = {".png": {"Software": None}, ".svg": {"Date": None, "Creator": None},
              ".pdf": {"CreationDate": None, "Creator": None, "Producer": None}}


def draw_cd(avg_ranks: Mapping[str, float], cd: float, out: str | Path, title: str = "") -> Path:
    """Draw the CD diagram of ``avg_ranks`` (method -> average rank, 1 = best) to ``out``
    (.png, .svg or .pdf) and return its path.  ``cd``: the critical difference in rank units
    (:func:`benchmark_core.reporting.statistics.nemenyi_cd`)."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"draw_cd writes {', '.join(FORMATS)}; got {out.name!r}")
    if len(avg_ranks) < 2:
        raise ValueError(f"a CD diagram needs at least 2 methods, got {len(avg_ranks)}")
    if not (math.isfinite(cd) and cd > 0):
        raise ValueError(f"the critical difference must be a positive number, got {cd}")
    if not all(math.isfinite(r) for r in avg_ranks.values()):
        raise ValueError(f"average ranks must be finite, got {dict(avg_ranks)}")
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise FuseBenchError("the CD diagram needs matplotlib: pip install 'fusebench[plot]'.") from None

    order = sorted(avg_ranks, key=lambda m: (avg_ranks[m], m))
    groups = cliques(avg_ranks, cd)
    k = len(order)
    low, high = 1, max(k, math.ceil(max(avg_ranks.values())))
    left_n = (k + 1) // 2
    bars_in = BAR_STEP_IN * (len(groups) + 1)
    height = TOP_IN + bars_in + ROW_IN * (max(left_n, k - left_n) + 0.6)

    labels = {m: f"{m} ({avg_ranks[m]:.2f})" for m in order}
    text_space = max(1.2, CHAR_IN * max(len(t) for t in labels.values()) + 0.35)
    width = 2 * text_space + max(AXIS_IN, 0.45 * (high - low))
    axis_left, axis_right = text_space, width - text_space
    axis_y = TOP_IN - 0.15

    def x_of(rank: float) -> float:
        return axis_left + (rank - low) / (high - low) * (axis_right - axis_left)

    with matplotlib.rc_context({"svg.hashsalt": "fusebench-cd", "font.family": FONT, "path.simplify": False}):
        fig = Figure(figsize=(width, height), dpi=DPI)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_xlim(0.0, width)
        ax.set_ylim(height, 0.0)  # inches, top down
        ax.set_axis_off()
        line: dict[str, Any] = {"color": "black", "linewidth": 1.0, "solid_capstyle": "butt"}

        if title:
            ax.text(width / 2, 0.12, title, ha="center", va="center", fontsize=10)
        # rank axis with integer ticks; half-ticks between them
        ax.plot([x_of(low), x_of(high)], [axis_y, axis_y], **line)
        for tick in range(low, high + 1):
            ax.plot([x_of(tick)] * 2, [axis_y - 0.08, axis_y], **line)
            ax.text(x_of(tick), axis_y - 0.11, str(tick), ha="center", va="bottom", fontsize=9)
            if tick < high:
                ax.plot([x_of(tick + 0.5)] * 2, [axis_y - 0.04, axis_y], **line)
        # the critical difference, as a span from rank 1, above the axis
        cd_y = axis_y - 0.42
        cd_end = x_of(low + cd)
        ax.plot([x_of(low), cd_end], [cd_y, cd_y], color="black", linewidth=1.5, solid_capstyle="butt")
        for x in (x_of(low), cd_end):
            ax.plot([x, x], [cd_y - 0.05, cd_y + 0.05], **line)
        ax.text((x_of(low) + cd_end) / 2, cd_y - 0.07, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
        # method labels: the better half on the left, the rest on the right
        label_top = axis_y + bars_in + 0.2
        for i, method in enumerate(order):
            x = x_of(avg_ranks[method])
            if i < left_n:
                y, end, ha = label_top + ROW_IN * i, axis_left - 0.12, "right"
                text = labels[method]
            else:
                y, end, ha = label_top + ROW_IN * (k - 1 - i), axis_right + 0.12, "left"
                text = f"({avg_ranks[method]:.2f}) {method}"
            ax.plot([x, x, end], [axis_y, y, y], **line)
            ax.text(end + (-0.05 if ha == "right" else 0.05), y, text, ha=ha, va="center", fontsize=9)
        # cliques: thick bars just under the axis, one row each
        for j, group in enumerate(groups):
            y = axis_y + BAR_STEP_IN * (j + 1)
            first, last = avg_ranks[group[0]], avg_ranks[group[-1]]
            ax.plot([x_of(first) - 0.04, x_of(last) + 0.04], [y, y], color="black", linewidth=3.0,
                    solid_capstyle="butt")

        out.parent.mkdir(parents=True, exist_ok=True)
        suffix = out.suffix.lower()
        fig.savefig(out, format=suffix[1:], dpi=DPI, metadata=_NO_STAMPS[suffix])
    return out
