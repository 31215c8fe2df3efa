"""Mermaid charts: GitHub renders them natively, so the report reads well with no images."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def _label(text: str, width: int = 18) -> str:
    text = str(text).replace('"', "'")
    return f'"{text[:width]}"'


def _num(value: float | None) -> str:
    return "0" if value is None or not math.isfinite(value) else f"{value:.6g}" if abs(value) >= 1e-3 else "0"


def xychart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    y_label: str = "",
    kind: Sequence[str] | None = None,
    y_min: float | None = None,
    y_max: float | None = None,
    floor: float | None = None,
    ceiling: float | None = None,
    x_range: tuple[float, float] | None = None,
    x_label: str = "",
) -> str:
    """An `xychart-beta` block; the first series is drawn as bars, the rest as lines (or per `kind`).

    y_min / y_max fix the axis exactly. Otherwise it spans the data with 5% padding, never
    beyond `floor` / `ceiling` (a metric's own range: an R² axis never goes above 1).
    x_range: a numeric x-axis instead of `labels`; each series' values are spread evenly over it.
    """
    values = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    lo = min(values) if values else 0.0
    hi = max(values) if values else 1.0
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    pad = (hi - lo) * 0.05
    lo = y_min if y_min is not None else lo - pad
    hi = y_max if y_max is not None else hi + pad
    if floor is not None:
        lo = max(lo, floor)
    if ceiling is not None:
        hi = min(hi, ceiling)
    if hi <= lo:
        lo = hi - 1.0
    lines = [
        "```mermaid",
        "xychart-beta",
        f'  title "{title}"',
        (
            f'  x-axis "{x_label}" {_axis(x_range[0])} --> {_axis(x_range[1])}'
            if x_range is not None
            else f"  x-axis [{', '.join(_label(x) for x in labels)}]"
        ),
        f'  y-axis "{y_label}" {_axis(lo)} --> {_axis(hi)}',
    ]
    kinds = list(kind) if kind else ["bar"] + ["line"] * (len(series) - 1)
    for k, values_ in zip(kinds, series.values(), strict=True):
        lines.append(f"  {k} [{', '.join(_num(v) for v in values_)}]")
    lines.append("```")
    return "\n".join(lines)


def _axis(value: float) -> str:
    """Plain decimal notation (Mermaid does not read 1e-05), precise enough for small errors."""
    if abs(value) >= 1e4:
        return f"{value:.0f}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.8f}"
    return f"{value:.4g}"
