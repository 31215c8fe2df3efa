"""Evaluation plots as small PNGs for the PR report (which must also read well without them).

Figures are built with matplotlib's object API on an Agg canvas created here, so nothing
touches pyplot's global state or backend and nothing is drawn at import time. Each PNG is
rendered in memory and written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.evaluation.metrics import Predictions
from gitops_ml.io_utils import atomic_write_bytes

DPI = 100
_CANDIDATE, _PRODUCTION = "candidate", "production"


def write_plots(
    candidate: Predictions,
    production: Predictions | None,
    out_dir: Path | str,
    *,
    feature_importance: pd.Series | None = None,
) -> dict[str, Path]:
    """Write the task's plots to `out_dir`; returns plot name -> file path.

    binary: roc, pr, confusion_matrix, calibration; multiclass: confusion_matrix;
    regression: residuals, predicted_vs_actual; any task: feature_importance when given.
    """
    out_dir = Path(out_dir)
    models = [(_CANDIDATE, candidate)] + ([(_PRODUCTION, production)] if production is not None else [])
    plots: dict[str, Any] = {}
    if candidate.task == "binary":
        plots["roc"] = lambda ax: _roc(ax, models)
        plots["pr"] = lambda ax: _pr(ax, models)
        plots["confusion_matrix"] = lambda ax: _confusion(ax, candidate)
        plots["calibration"] = lambda ax: _calibration(ax, models)
    elif candidate.task == "multiclass":
        plots["confusion_matrix"] = lambda ax: _confusion(ax, candidate)
    else:
        plots["residuals"] = lambda ax: _residuals(ax, models)
        plots["predicted_vs_actual"] = lambda ax: _predicted_vs_actual(ax, models)
    if feature_importance is not None and len(feature_importance):
        plots["feature_importance"] = lambda ax: _importance(ax, feature_importance)
    return {name: _save(draw, out_dir / f"{name}.png") for name, draw in plots.items()}


def permutation_importance_series(
    pipeline: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    scoring: str | None,
    n_repeats: int = 3,
    seed: int = 0,
    max_rows: int = 2000,
) -> pd.Series:
    """Mean drop in `scoring` when each input column is shuffled, on a seeded sample of rows.

    Works on the raw input columns (before the pipeline's encoding), which is what a reviewer
    recognises. Sorted, largest first.
    """
    from sklearn.inspection import permutation_importance

    y = np.asarray(y)
    if len(X) > max_rows:
        rows = np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False)
        X, y = X.iloc[np.sort(rows)], y[np.sort(rows)]
    result = permutation_importance(pipeline, X, y, scoring=scoring, n_repeats=n_repeats, random_state=seed)
    return pd.Series(result.importances_mean, index=list(X.columns), name="importance").sort_values(
        ascending=False
    )


def _save(draw: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clear()
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _roc(ax: Any, models: list[tuple[str, Predictions]]) -> None:
    from sklearn.metrics import auc, roc_curve

    for label, p in models:
        if _one_class(p):
            continue
        fpr, tpr, _ = roc_curve(p.is_positive, p.y_score)
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    _labels(ax, "ROC curve", "false positive rate", "true positive rate")


def _pr(ax: Any, models: list[tuple[str, Predictions]]) -> None:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    for label, p in models:
        if not p.is_positive.any():
            continue
        precision, recall, _ = precision_recall_curve(p.is_positive, p.y_score)
        ap = average_precision_score(p.is_positive, p.y_score)
        ax.step(recall, precision, where="post", label=f"{label} (AP {ap:.3f})")
    if len(models[0][1]):
        ax.axhline(models[0][1].is_positive.mean(), linestyle="--", color="grey", linewidth=0.8)
    _labels(ax, "Precision-recall curve", "recall", "precision")


def _calibration(ax: Any, models: list[tuple[str, Predictions]]) -> None:
    from sklearn.calibration import calibration_curve

    for label, p in models:
        if _one_class(p):
            continue
        observed, predicted = calibration_curve(p.is_positive, p.y_score, n_bins=10, strategy="quantile")
        ax.plot(predicted, observed, marker="o", markersize=3, label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    _labels(ax, "Calibration (reliability)", "mean predicted probability", "observed positive rate")


def _confusion(ax: Any, p: Predictions) -> None:
    from sklearn.metrics import confusion_matrix

    labels = p.classes if p.classes is not None else np.unique(np.r_[p.y_true, p.y_pred])
    matrix = confusion_matrix(p.y_true, p.y_pred, labels=labels)
    ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(labels))
    names = [str(v) for v in labels]
    ax.set_xticks(ticks, names, rotation=45 if len(names) > 4 else 0)
    ax.set_yticks(ticks, names)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    ax.set_title("Confusion matrix (candidate)")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")


def _residuals(ax: Any, models: list[tuple[str, Predictions]]) -> None:
    for label, p in models:
        p = _thin(p)
        ax.scatter(p.y_pred, p.y_true - p.y_pred, s=4, alpha=0.4, label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    _labels(ax, "Residuals", "predicted", "actual - predicted")


def _predicted_vs_actual(ax: Any, models: list[tuple[str, Predictions]]) -> None:
    for label, p in models:
        p = _thin(p)
        ax.scatter(p.y_true, p.y_pred, s=4, alpha=0.4, label=label)
    values = np.concatenate([np.r_[p.y_true, p.y_pred] for _, p in models])
    if values.size:
        low, high = float(values.min()), float(values.max())
        ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=0.8)
    _labels(ax, "Predicted vs actual", "actual", "predicted")


def _importance(ax: Any, importance: pd.Series, top: int = 15) -> None:
    shown = importance.sort_values(ascending=False).head(top)[::-1]
    ax.barh([str(i) for i in shown.index], shown.to_numpy())
    ax.set_title("Permutation importance (candidate)")
    ax.set_xlabel("mean score drop when shuffled")


def _labels(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")


def _thin(p: Predictions, max_points: int = 5000) -> Predictions:
    """A seeded sample of rows: a scatter of 5,000 points shows the same picture as a million."""
    if len(p) <= max_points:
        return p
    return p.subset(np.sort(np.random.default_rng(0).choice(len(p), size=max_points, replace=False)))


def _one_class(p: Predictions) -> bool:
    positives = int(p.is_positive.sum())
    return positives == 0 or positives == len(p)
