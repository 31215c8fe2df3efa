"""Per-segment metrics: a model that is better on average can still be worse for one group.

`segments_frame` is row-aligned with the predictions (same length, same order; its index is
ignored). Groups smaller than `min_size` are listed with a note instead of a noisy number.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.metrics import (
    Predictions,
    compute_metrics,
    direction_sign,
    metric_notes,
    resolve_metrics,
)

MISSING = "<missing>"

SEGMENT_COLUMNS = ["column", "value", "n", "metric", "candidate", "note"]
COMPARISON_COLUMNS = ["column", "value", "n", "metric", "production", "candidate", "delta", "flagged", "note"]


def segment_metrics(
    preds: Predictions,
    segments_frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    min_size: int,
    metric: str,
) -> pd.DataFrame:
    """One row per (column, value): n and the candidate's `metric` (NaN + note when skipped)."""
    rows = []
    for column, value, mask, n in _groups(preds, segments_frame, columns, metric):
        skip = _skip_note(n, min_size)
        if skip:
            rows.append(_row(column, value, n, metric, candidate=math.nan, note=skip))
            continue
        sub = preds.subset(mask)
        rows.append(
            _row(
                column,
                value,
                n,
                metric,
                candidate=_value(sub, metric),
                note=metric_notes(sub, [metric]).get(metric),
            )
        )
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)


def segment_comparison(
    candidate: Predictions,
    production: Predictions,
    segments_frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    min_size: int,
    metric: str,
    max_regression: float | None = None,
) -> pd.DataFrame:
    """Candidate vs production per segment; `flagged` when the candidate is worse by more than
    `max_regression` in the metric's bad direction (never flagged when max_regression is None)."""
    if len(candidate) != len(production) or not np.array_equal(candidate.y_true, production.y_true):
        raise ValueError("candidate and production were not scored on the same rows; cannot compare segments")
    sign = direction_sign(metric)
    rows = []
    for column, value, mask, n in _groups(candidate, segments_frame, columns, metric):
        skip = _skip_note(n, min_size)
        if skip:
            rows.append(
                _row(
                    column,
                    value,
                    n,
                    metric,
                    production=math.nan,
                    candidate=math.nan,
                    delta=math.nan,
                    flagged=False,
                    note=skip,
                )
            )
            continue
        cand_sub, prod_sub = candidate.subset(mask), production.subset(mask)
        cand, prod = _value(cand_sub, metric), _value(prod_sub, metric)
        delta = cand - prod
        flagged = (
            max_regression is not None and not math.isnan(delta) and -sign * delta > max_regression + 1e-12
        )
        note = metric_notes(cand_sub, [metric]).get(metric)
        if flagged:
            note = f"{metric} worse by {abs(delta):.4f} (allowed {max_regression:g})"
        rows.append(
            _row(
                column,
                value,
                n,
                metric,
                production=prod,
                candidate=cand,
                delta=delta,
                flagged=bool(flagged),
                note=note,
            )
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _groups(
    preds: Predictions, frame: pd.DataFrame, columns: Sequence[str], metric: str
) -> Iterator[tuple[str, Any, np.ndarray, int]]:
    resolve_metrics(preds.task, [metric], field="evaluation.primary_metric")
    if len(frame) != len(preds):
        raise ValueError(f"segments frame has {len(frame)} rows but the predictions have {len(preds)}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"evaluation.segments: columns {missing} not in the holdout frame")
    for column in columns:
        values = frame[column].astype(object).where(frame[column].notna(), MISSING).to_numpy()
        _uniques, inverse, counts = np.unique(values.astype(str), return_inverse=True, return_counts=True)
        for code in np.argsort(-counts, kind="stable"):
            mask = inverse == code
            yield column, values[mask][0], mask, int(counts[code])


def _skip_note(n: int, min_size: int) -> str | None:
    return f"skipped: n={n} < min_segment_size={min_size}" if n < min_size else None


def _value(preds: Predictions, metric: str) -> float:
    return compute_metrics(preds, [metric])[metric]


def _row(column: str, value: Any, n: int, metric: str, **fields: Any) -> dict[str, Any]:
    return {"column": column, "value": value, "n": n, "metric": metric, **fields}
