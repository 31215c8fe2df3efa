"""Evaluation curves as a few dozen points on an even grid, for charts GitHub renders itself.

A Mermaid `xychart-beta` line spreads its values evenly over the x-axis range, so every curve here
is sampled on an evenly spaced grid (at most ~50 points), candidate and production on the same
grid so they share one chart. The PNG plots (`plots.py`) stay in the artifact for the full detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics as skm

from gitops_ml.evaluation.costs import PER, row_costs
from gitops_ml.evaluation.metrics import Predictions, per_class_metrics

GRID_POINTS = 41  # 0, 0.025, ..., 1
BINS = 20
MAX_CLASSES = 30


@dataclass(frozen=True)
class Curve:
    """One chart: y series over an even x grid (`x_min` to `x_max`) or over category labels."""

    name: str
    title: str
    x_label: str
    y_label: str
    series: dict[str, list[float | None]]
    x_min: float = 0.0
    x_max: float = 1.0
    categories: list[str] | None = None  # a bar chart over these instead of an x range
    y_min: float | None = None
    y_max: float | None = None
    note: str | None = None
    kinds: list[str] = field(default_factory=list)  # per series: "line" (default) or "bar"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "x_label": self.x_label,
            "y_label": self.y_label,
            "x_min": self.x_min,
            "x_max": self.x_max,
            "categories": self.categories,
            "series": self.series,
            "note": self.note,
        }


def task_curves(
    candidate: Predictions,
    production: Predictions | None,
    *,
    thresholds: dict[str, float | None] | None = None,
) -> list[Curve]:
    """The curves of the task: ROC, precision-recall, calibration and (with costs) cost for
    binary; per-class recall for multiclass; residuals and predicted-vs-actual for regression.

    thresholds: the decision threshold each model serves with ("candidate", "production"),
    named on the cost curve."""
    models = {"candidate": candidate, **({"production": production} if production is not None else {})}
    if len(candidate) == 0:
        return []
    if candidate.task == "binary":
        if candidate.y_score is None or not _both_classes(candidate):
            return []
        out = [_roc(models), _pr(models), _calibration(models)]
        if candidate.costs is not None and candidate.classes is not None:
            out.append(_cost(models, thresholds or {}))
        return [c for c in out if c is not None]
    if candidate.task == "multiclass":
        return [_class_recall(models)]
    return [c for c in (_residuals(models), _predicted_vs_actual(models)) if c is not None]


def _grid() -> np.ndarray:
    return np.linspace(0.0, 1.0, GRID_POINTS)


def _both_classes(p: Predictions) -> bool:
    positives = int(p.is_positive.sum())
    return 0 < positives < len(p)


def _rounded(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in values]


def _roc(models: dict[str, Predictions]) -> Curve:
    grid = _grid()
    series: dict[str, list[float | None]] = {}
    for name, p in models.items():
        if p.y_score is None or not _both_classes(p):
            continue
        fpr, tpr, _ = skm.roc_curve(p.is_positive, p.y_score)
        # the best true-positive rate reached at or below each false-positive rate of the grid
        reached = np.maximum.accumulate(tpr)[np.searchsorted(fpr, grid, side="right") - 1]
        auc = skm.roc_auc_score(p.is_positive, p.y_score)
        series[f"{name} (AUC {auc:.3f})"] = _rounded(reached)
    series["chance"] = _rounded(grid)
    return Curve(
        "roc", "ROC curve", "false positive rate", "true positive rate", series, y_min=0.0, y_max=1.0
    )


def _pr(models: dict[str, Predictions]) -> Curve:
    grid = _grid()
    series: dict[str, list[float | None]] = {}
    for name, p in models.items():
        if p.y_score is None or not _both_classes(p):
            continue
        precision, recall, _ = skm.precision_recall_curve(p.is_positive, p.y_score)
        order = np.argsort(recall, kind="stable")
        recall, precision = recall[order], precision[order]
        # interpolated precision: the best precision at this recall or more
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.clip(np.searchsorted(recall, grid, side="left"), 0, len(recall) - 1)
        ap = skm.average_precision_score(p.is_positive, p.y_score)
        series[f"{name} (AP {ap:.3f})"] = _rounded(envelope[at])
    first = next(iter(models.values()))
    series["positive rate"] = _rounded(np.full(len(grid), float(first.is_positive.mean())))
    return Curve(
        "pr", "Precision-recall curve", "recall", "precision (interpolated)", series, y_min=0.0, y_max=1.0
    )


def _calibration(models: dict[str, Predictions]) -> Curve | None:
    edges = np.linspace(0.0, 1.0, 11)
    centres = (edges[:-1] + edges[1:]) / 2
    series: dict[str, list[float | None]] = {}
    for name, p in models.items():
        if p.y_score is None:
            continue
        observed = _binned_mean(p.y_score, p.is_positive.astype(float), edges)
        if observed is not None:
            series[name] = _rounded(observed)
    if not series:
        return None
    series["perfect"] = _rounded(centres)
    return Curve(
        "calibration",
        "Calibration (observed positive rate per predicted-probability bin)",
        "mean predicted probability",
        "observed positive rate",
        series,
        x_min=float(centres[0]),
        x_max=float(centres[-1]),
        y_min=0.0,
        y_max=1.0,
        note="10 equal-width bins; a bin with no row is interpolated from its neighbours",
    )


def _cost(models: dict[str, Predictions], thresholds: dict[str, float | None]) -> Curve:
    grid = _grid()
    series: dict[str, list[float | None]] = {}
    for name, p in models.items():
        if p.costs is None or p.y_score is None or p.classes is None:
            continue
        negative = p.classes[p.classes != p.positive_label][0]
        values = [
            PER
            * float(
                np.mean(
                    row_costs(
                        "binary",
                        p.costs,
                        p.y_true,
                        np.where(p.y_score >= t, p.positive_label, negative),
                        p.positive_label,
                    )
                )
            )
            for t in grid
        ]
        best = int(np.argmin(values))
        served = thresholds.get(name)
        at = "" if served is None else f", decides at {served:.3f}"
        series[f"{name} (lowest at {grid[best]:.3f}{at})"] = _rounded(np.asarray(values))
    return Curve(
        "cost",
        f"Expected cost per {PER:,} decisions by decision threshold",
        "threshold on P(positive)",
        "expected cost",
        series,
        note="each model serves at its own threshold (named in the legend; chosen by cost on a validation "
        "split of its training rows); the curve shows what another threshold would cost on this holdout",
    )


def _class_recall(models: dict[str, Predictions]) -> Curve:
    rows = per_class_metrics(models["candidate"])[:MAX_CLASSES]
    labels = [str(r.label) for r in rows]
    series: dict[str, list[float | None]] = {
        "candidate": [None if np.isnan(r.recall) else r.recall for r in rows]
    }
    kinds = ["bar"]
    if "production" in models:
        prod = {str(r.label): r.recall for r in per_class_metrics(models["production"])}
        series["production"] = [None if np.isnan(prod.get(lab, np.nan)) else prod[lab] for lab in labels]
        kinds.append("line")
    more = len(per_class_metrics(models["candidate"])) - len(rows)
    return Curve(
        "class_recall",
        "Recall per class",
        "class (largest first)",
        "recall",
        series,
        categories=labels,
        y_min=0.0,
        y_max=1.0,
        kinds=kinds,
        note=f"the {MAX_CLASSES} largest classes; {more} more in summary.json" if more > 0 else None,
    )


def _value_range(models: dict[str, Predictions], which: str) -> tuple[float, float] | None:
    values = np.concatenate([getattr(p, which) for p in models.values()])
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    low, high = np.quantile(values, [0.01, 0.99])  # a few extreme rows would squash the rest
    return (float(low), float(high)) if high > low else None


def _residuals(models: dict[str, Predictions]) -> Curve | None:
    span = _value_range(models, "y_pred")
    if span is None:
        return None
    edges = np.linspace(span[0], span[1], BINS + 1)
    series: dict[str, list[float | None]] = {}
    for name, p in models.items():
        mean = _binned_mean(p.y_pred, p.y_true - p.y_pred, edges)
        if mean is not None:
            series[name] = _rounded(mean)
    series["zero"] = [0.0] * BINS
    centres = (edges[:-1] + edges[1:]) / 2
    return Curve(
        "residuals",
        "Mean residual (actual - predicted) by predicted value",
        "predicted",
        "mean residual",
        series,
        x_min=float(centres[0]),
        x_max=float(centres[-1]),
        note=f"{BINS} equal-width bins over the 1st-99th percentile of the predictions",
    )


def _predicted_vs_actual(models: dict[str, Predictions]) -> Curve | None:
    span = _value_range(models, "y_true")
    if span is None:
        return None
    edges = np.linspace(span[0], span[1], BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    series: dict[str, list[float | None]] = {}
    for name, p in models.items():
        mean = _binned_mean(p.y_true, p.y_pred, edges)
        if mean is not None:
            series[name] = _rounded(mean)
    series["perfect"] = _rounded(centres)
    return Curve(
        "predicted_vs_actual",
        "Mean prediction by actual value",
        "actual",
        "mean predicted",
        series,
        x_min=float(centres[0]),
        x_max=float(centres[-1]),
        note=f"{BINS} equal-width bins over the 1st-99th percentile of the actual values",
    )


def _binned_mean(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> np.ndarray | None:
    """Mean of y per x bin; empty bins interpolated from their neighbours (None if < 2 bins have rows)."""
    inside = (x >= edges[0]) & (x <= edges[-1])
    index = np.clip(np.searchsorted(edges, x[inside], side="right") - 1, 0, len(edges) - 2)
    sums = np.bincount(index, weights=y[inside], minlength=len(edges) - 1)
    counts = np.bincount(index, minlength=len(edges) - 1)
    filled = counts > 0
    if filled.sum() < 2:
        return None
    centres = (edges[:-1] + edges[1:]) / 2
    means = np.where(filled, sums / np.maximum(counts, 1), np.nan)
    return np.interp(centres, centres[filled], means[filled])
