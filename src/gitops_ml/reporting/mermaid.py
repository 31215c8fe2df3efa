"""Mermaid charts: GitHub renders them natively, so the report reads well with no images."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _label(text: str, width: int = 18) -> str:
    text = str(text).replace('"', "'")
    return f'"{text[:width]}"'


def _num(value: float | None) -> str:
    return "0" if value is None or not math.isfinite(value) else f"{value:.4f}"


def xychart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], *,
            y_label: str = "", kind: Sequence[str] | None = None, y_min: float | None = None,
            y_max: float | None = None) -> str:
    """An `xychart-beta` block; the first series is drawn as bars, the rest as lines (or per `kind`)."""
    values = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    lo = y_min if y_min is not None else (min(values) if values else 0.0)
    hi = y_max if y_max is not None else (max(values) if values else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    pad = (hi - lo) * 0.05
    lines = ["```mermaid", "xychart-beta", f'  title "{title}"',
             f"  x-axis [{', '.join(_label(x) for x in labels)}]",
             f'  y-axis "{y_label}" {lo - pad:.3f} --> {hi + pad:.3f}']
    kinds = list(kind) if kind else ["bar"] + ["line"] * (len(series) - 1)
    for k, values_ in zip(kinds, series.values(), strict=True):
        lines.append(f"  {k} [{', '.join(_num(v) for v in values_)}]")
    lines.append("```")
    return "\n".join(lines)
