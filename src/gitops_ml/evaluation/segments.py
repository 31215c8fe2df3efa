"""Per-segment metrics: a model that is better on average can still be worse for one group.

`segments_frame` is row-aligned with the predictions (same length, same order; its index is
ignored). Groups smaller than `min_size` are listed with a note instead of a noisy number.

A segment's delta comes with the paired bootstrap interval of the whole comparison (same
resamples, confidence and seed, drawn within the segment). A segment is flagged only when it is
worse than allowed AND the interval says it is worse at all: a few hundred rows give AUC deltas
of several hundredths by chance, and a gate on the point estimate alone fails on that noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.config import BootstrapConfig
from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.bootstrap import paired_bootstrap, percentile_interval
from gitops_ml.evaluation.metrics import (
    Predictions,
    compute_metrics,
    direction_sign,
    metric_notes,
    resolve_metrics,
)

MISSING = "<missing>"

SEGMENT_COLUMNS = ["column", "value", "n", "metric", "candidate", "note"]
COMPARISON_COLUMNS = [
    "column",
    "value",
    "n",
    "metric",
    "production",
    "candidate",
    "delta",
    "ci_low",
    "ci_high",
    "flagged",
    "note",
]


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
    bootstrap: BootstrapConfig,
    max_regression: float | None = None,
) -> pd.DataFrame:
    """Candidate vs production per segment, with the paired bootstrap interval of each delta.

    `flagged` when the candidate is worse by more than `max_regression` in the metric's bad
    direction and the interval excludes "no worse" (never flagged when max_regression is None).
    """
    if len(candidate) != len(production) or not np.array_equal(candidate.y_true, production.y_true):
        raise ValueError("candidate and production were not scored on the same rows; cannot compare segments")
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
                    ci_low=math.nan,
                    ci_high=math.nan,
                    flagged=False,
                    note=skip,
                )
            )
            continue
        cand_sub, prod_sub = candidate.subset(mask), production.subset(mask)
        cand, prod = _value(cand_sub, metric), _value(prod_sub, metric)
        delta = cand - prod
        ci_low, ci_high = _delta_interval(cand_sub, prod_sub, metric, bootstrap)
        beyond, significant = judge_segment(metric, delta, ci_low, ci_high, max_regression)
        note = metric_notes(cand_sub, [metric]).get(metric)
        if beyond:
            interval = f"{_pct(bootstrap)} CI of the delta [{ci_low:+.4f}, {ci_high:+.4f}]"
            note = (
                f"{metric} worse by {abs(delta):.4f} (allowed {max_regression:g}), {interval}"
                if significant
                else f"{metric} worse by {abs(delta):.4f} (allowed {max_regression:g}) but not "
                f"significantly: {interval} includes no change; not flagged"
            )
        rows.append(
            _row(
                column,
                value,
                n,
                metric,
                production=prod,
                candidate=cand,
                delta=delta,
                ci_low=ci_low,
                ci_high=ci_high,
                flagged=bool(beyond and significant),
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


def judge_segment(
    metric: str, delta: float, ci_low: float, ci_high: float, allowed: float | None
) -> tuple[bool, bool]:
    """(worse than `allowed` by the point estimate, worse at all by the interval).

    The segment gate fails a segment only when both hold; the one rule for table and gate.
    """
    sign = direction_sign(metric)
    beyond = allowed is not None and not math.isnan(delta) and -sign * delta > allowed + 1e-12
    # the interval's bound on the "candidate is better" side: below zero means worse at that confidence
    best_case = sign * (ci_high if sign > 0 else ci_low)
    significant = not math.isnan(best_case) and best_case < 0
    return beyond, significant


def _delta_interval(
    candidate: Predictions, production: Predictions, metric: str, bootstrap: BootstrapConfig
) -> tuple[float, float]:
    cand, prod = paired_bootstrap([candidate, production], [metric], bootstrap.n_resamples, bootstrap.seed)
    return percentile_interval(cand[metric] - prod[metric], bootstrap.confidence)


def _pct(bootstrap: BootstrapConfig) -> str:
    return f"{bootstrap.confidence:.0%}"


def _skip_note(n: int, min_size: int) -> str | None:
    return f"skipped: n={n} < min_segment_size={min_size}" if n < min_size else None


def _value(preds: Predictions, metric: str) -> float:
    return compute_metrics(preds, [metric])[metric]


def _row(column: str, value: Any, n: int, metric: str, **fields: Any) -> dict[str, Any]:
    return {"column": column, "value": value, "n": n, "metric": metric, **fields}
