"""Model performance on the labelled part of a monitoring window, against the production baseline.

Labels arrive late, so `y_true` may hold None/NaN for rows not labelled yet: they count in the label
coverage and are left out of the metric. The metric itself (name, direction, definition, bootstrap)
is the evaluation engine's, so the window value is comparable with the holdout value the production
pointer recorded under the same name.

Decay rule (conservative, explainable): with drop = baseline - window value, oriented so that a
positive drop is always worse (for losses it is window - baseline),

    decayed = lower bound of the bootstrap CI of the drop > max_performance_drop

i.e. only when we are confident the model lost more than the allowed margin. A window with fewer than
`min_labelled` labels (or where the metric is undefined, e.g. ROC AUC on a single class) has status
"insufficient labels" and is never decayed. The baseline is the production model's holdout value,
taken as fixed, so the CI of the drop is the CI of the window value, mirrored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from gitops_ml.config import Task
from gitops_ml.errors import ConfigError, DataError
from gitops_ml.evaluation.bootstrap import bootstrap_distribution, percentile_interval
from gitops_ml.evaluation.metrics import (
    Predictions,
    compute_metrics,
    direction_sign,
    metric_notes,
    metric_spec,
    positive_class,
)
from gitops_ml.jsonable import to_jsonable

Status = Literal["ok", "insufficient labels"]
FIELD = "monitoring.performance_metric"


def check_monitor_metric(task: Task, metric: str) -> None:
    """ConfigError unless the monitor can compute `metric` for `task` from what serving logs.

    The prediction store keeps P(positive) for binary models but only the top probability for
    multiclass, so a multiclass monitor can use only the metrics that need labels alone.
    """
    spec = metric_spec(task, metric, field=FIELD)
    if task == "multiclass" and spec.needs_probabilities:
        raise ConfigError(
            f"{FIELD}: '{metric}' needs class probabilities, which the prediction store does not keep "
            "for multiclass models; use one that needs labels only (e.g. f1_macro, accuracy)"
        )


@dataclass(frozen=True)
class PerformanceResult:
    metric: str
    status: Status
    rows: int
    labelled: int
    label_coverage: float
    value: float  # NaN when status is "insufficient labels"
    ci_low: float
    ci_high: float
    baseline: float | None
    drop: float  # positive = worse than baseline, in metric units
    drop_ci_low: float
    drop_ci_high: float
    max_drop: float
    confidence: float
    decayed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = to_jsonable(asdict(self))
        return cleaned

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceResult:
        floats = {"label_coverage", "value", "ci_low", "ci_high", "drop", "drop_ci_low", "drop_ci_high"}
        fields: dict[str, Any] = {k: (math.nan if v is None and k in floats else v) for k, v in data.items()}
        return cls(**fields)


def labelled_predictions(
    task: Task,
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray | None,
    y_score: Sequence[float] | np.ndarray | None,
    *,
    classes: Sequence[Any] | np.ndarray | None = None,
    positive_label: Any = None,
) -> tuple[Predictions, int]:
    """The labelled rows of a window as `Predictions`, and how many rows the window had.

    y_true: one label per row, None/NaN where none arrived yet; any label type the model learned
    (0/1, "yes"/"no", class names). y_pred: the served prediction per row (for regression the
    served value; None = the score). y_score: binary P(positive) per row; ignored otherwise.
    classes / positive_label: the production model's classes and positive class (classification).
    """
    labels = np.asarray(y_true, dtype=object)
    n = labels.size
    if labels.ndim != 1:
        raise DataError(f"window performance: expected one label per row, got shape {labels.shape}")
    scores = None if y_score is None else np.asarray(y_score, dtype="float64")
    if scores is not None and scores.shape != (n,):
        raise DataError(f"window performance: {n} labels but {scores.size} scores")
    if y_pred is None and task != "regression":
        raise ValueError(f"{task} window performance needs the served predictions")
    served = scores if y_pred is None else np.asarray(y_pred, dtype=object)
    if served is None or served.shape != (n,):
        raise DataError(
            f"window performance: {n} labels but {0 if served is None else served.size} predictions"
        )
    import pandas as pd  # here, not at import: `config check` imports this module for one name check

    mask = ~pd.isna(labels)
    if task == "regression":
        y = _numbers(labels[mask], "labels")
        predicted = _numbers(served[mask], "predictions")
        return Predictions(y, predicted, None, task), n
    if classes is None:
        raise ValueError(f"{task} window performance needs the model's classes")
    classes_arr = np.asarray(classes)
    truth = as_class_labels(labels[mask], classes_arr, "labels")
    predicted = as_class_labels(served[mask], classes_arr, "predictions")
    if task == "binary":
        score = None if scores is None else scores[mask]
        if score is not None and np.isnan(score).any():
            raise DataError(f"window performance: {int(np.isnan(score).sum())} labelled rows have no score")
        positive = classes_arr[positive_class(classes_arr, positive_label)]
        return Predictions(truth, predicted, score, task, classes=classes_arr, positive_label=positive), n
    return Predictions(truth, predicted, None, task, classes=classes_arr), n


def window_performance(
    preds: Predictions,
    metric: str,
    baseline_value: float | None,
    *,
    rows: int | None = None,
    n_resamples: int = 500,
    seed: int = 0,
    confidence: float = 0.95,
    max_drop: float = 0.05,
    min_labelled: int = 200,
) -> PerformanceResult:
    """Metric on the labelled rows `preds`, with a bootstrap CI and the drop vs the baseline.

    rows: how many rows the window had, labelled or not (default: the labelled ones).
    """
    check_monitor_metric(preds.task, metric)
    labelled = len(preds)
    rows = labelled if rows is None else rows
    coverage = labelled / rows if rows else math.nan
    nan = math.nan

    def result(
        status: Status,
        value: float,
        lo: float,
        hi: float,
        drop: float,
        dlo: float,
        dhi: float,
        decayed: bool,
        reason: str,
    ) -> PerformanceResult:
        return PerformanceResult(
            metric=metric,
            status=status,
            rows=rows,
            labelled=labelled,
            label_coverage=coverage,
            value=value,
            ci_low=lo,
            ci_high=hi,
            baseline=baseline_value,
            drop=drop,
            drop_ci_low=dlo,
            drop_ci_high=dhi,
            max_drop=max_drop,
            confidence=confidence,
            decayed=decayed,
            reason=reason,
        )

    def insufficient(reason: str) -> PerformanceResult:
        return result("insufficient labels", nan, nan, nan, nan, nan, nan, False, reason)

    if labelled < min_labelled:
        return insufficient(f"{labelled} labelled rows < min_labelled_rows {min_labelled}")
    note = metric_notes(preds, [metric]).get(metric)
    if note:
        return insufficient(f"{metric} on {labelled} labelled rows: {note}")

    value = compute_metrics(preds, [metric])[metric]
    replicates = bootstrap_distribution(preds, [metric], n_resamples, seed)[metric]
    lo, hi = percentile_interval(replicates, confidence)
    if baseline_value is None:
        return result("ok", value, lo, hi, nan, nan, nan, False, "no baseline value: decay not assessed")
    sign = direction_sign(metric)
    drop = sign * (baseline_value - value)
    dlo, dhi = sorted((sign * (baseline_value - lo), sign * (baseline_value - hi)))
    pct = round(confidence * 100)
    if dlo > max_drop:
        reason = (
            f"{metric} {value:.4f} vs baseline {baseline_value:.4f}: drop {drop:.4f}, "
            f"{pct}% CI [{dlo:.4f}, {dhi:.4f}] entirely above max_performance_drop {max_drop:g}"
        )
        return result("ok", value, lo, hi, drop, dlo, dhi, True, reason)
    reason = (
        f"{metric} {value:.4f} vs baseline {baseline_value:.4f}: drop {drop:.4f}, "
        f"{pct}% CI lower bound {dlo:.4f} <= max_performance_drop {max_drop:g}"
    )
    return result("ok", value, lo, hi, drop, dlo, dhi, False, reason)


def _numbers(values: np.ndarray, what: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        bad = [v for v in values.tolist() if not isinstance(v, int | float)][:5]
        raise DataError(f"window performance: regression {what} must be numbers, got e.g. {bad}") from None
    if np.isnan(out).any():
        raise DataError(f"window performance: {int(np.isnan(out).sum())} labelled rows have no {what[:-1]}")
    return out


def as_class_labels(values: np.ndarray, classes: np.ndarray, what: str) -> np.ndarray:
    """Labels as the model's class values; a value the model never learned is a DataError."""
    known = {c: c for c in classes.tolist()}
    # JSON and CSV round trips turn 1 into 1.0 (or "1" is stored as 1); match by value, keep the class.
    out = []
    unknown = []
    for value in values.tolist():
        if value in known:
            out.append(known[value])
        else:
            unknown.append(value)
    if unknown:
        shown = sorted({repr(v) for v in unknown})[:5]
        raise DataError(
            f"window performance: {len(unknown)} {what} are not classes of the model "
            f"{classes.tolist()[:10]}, e.g. {', '.join(shown)}"
        )
    return np.asarray(out, dtype=classes.dtype)
