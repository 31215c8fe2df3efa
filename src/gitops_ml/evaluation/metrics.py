"""Predictions of one model on one holdout, and the metrics computed from them.

The point estimates here come straight from scikit-learn so that every reported number is the
familiar one; the bootstrap in `compare.py` re-implements them vectorised and is tested
against these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from gitops_ml.config import Task
from gitops_ml.errors import ConfigError

Direction = Literal["higher", "lower"]

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "f1", "precision", "recall", "log_loss", "brier", "accuracy"),
    "multiclass": ("f1_macro", "accuracy", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}

# Which way is "better" for each metric: gates and the bootstrap verdict both read this.
METRIC_DIRECTION: dict[str, Direction] = {
    "roc_auc": "higher",
    "pr_auc": "higher",
    "f1": "higher",
    "f1_macro": "higher",
    "precision": "higher",
    "recall": "higher",
    "accuracy": "higher",
    "r2": "higher",
    "log_loss": "lower",
    "brier": "lower",
    "rmse": "lower",
    "mae": "lower",
}


def direction_sign(metric: str) -> float:
    """+1 when higher is better, -1 when lower is better: `sign * delta > 0` means improvement."""
    return 1.0 if METRIC_DIRECTION[metric] == "higher" else -1.0


@dataclass(frozen=True, eq=False)
class Predictions:
    """One model's output on one set of rows, row-aligned with `y_true`.

    y_score: binary -> P(positive) as a 1-D array; multiclass -> 2-D probabilities whose
    columns follow `classes`; regression -> None.
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None
    task: Task
    classes: np.ndarray | None = None
    positive_label: Any = None

    def __post_init__(self) -> None:
        if self.task not in TASK_METRICS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {sorted(TASK_METRICS)}")
        y_true = np.asarray(self.y_true)
        y_pred = np.asarray(self.y_pred)
        object.__setattr__(self, "y_true", y_true)
        object.__setattr__(self, "y_pred", y_pred)
        n = len(y_true)
        if y_true.ndim != 1 or y_pred.shape != (n,):
            raise ValueError(
                f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}"
            )
        if self.task == "regression":
            if self.y_score is not None:
                raise ValueError("regression predictions carry no y_score")
            object.__setattr__(self, "y_true", y_true.astype(float))
            object.__setattr__(self, "y_pred", y_pred.astype(float))
            return
        if self.y_score is None:
            raise ValueError(f"{self.task} predictions need y_score (predicted probabilities)")
        score = np.asarray(self.y_score, dtype=float)
        object.__setattr__(self, "y_score", score)
        if self.classes is not None:
            object.__setattr__(self, "classes", np.asarray(self.classes))
        if self.task == "binary":
            if score.shape != (n,):
                raise ValueError(f"binary y_score must be 1-D P(positive) of length {n}, got {score.shape}")
            if self.positive_label is None:
                raise ValueError("binary predictions need positive_label")
        else:
            if self.classes is None or score.ndim != 2 or score.shape != (n, len(self.classes)):
                raise ValueError(
                    f"multiclass y_score must be (n_rows, n_classes) with classes given, got {score.shape}"
                )
            unknown = sorted(set(np.unique(y_true).tolist()) - set(self.classes.tolist()), key=str)
            if unknown:
                raise ValueError(f"y_true has labels the model never saw: {unknown[:5]}")

    def __len__(self) -> int:
        return len(self.y_true)

    @property
    def is_positive(self) -> np.ndarray:
        """Binary only: boolean truth vector (y_true == positive_label)."""
        return self.y_true == self.positive_label

    @property
    def predicted_positive(self) -> np.ndarray:
        return self.y_pred == self.positive_label

    def subset(self, mask_or_index: np.ndarray) -> Predictions:
        """The same predictions restricted to some rows (a boolean mask or integer positions)."""
        return Predictions(
            y_true=self.y_true[mask_or_index],
            y_pred=self.y_pred[mask_or_index],
            y_score=None if self.y_score is None else self.y_score[mask_or_index],
            task=self.task,
            classes=self.classes,
            positive_label=self.positive_label,
        )


def predict(
    pipeline: Any, X: pd.DataFrame, y_true: Any, task: Task, positive_label: Any = None
) -> Predictions:
    """Score a fitted pipeline on X; for binary, take the probability column of `positive_label`.

    `positive_label=None` on a binary task means the second entry of `pipeline.classes_`
    (scikit-learn's own convention for the positive class).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(pipeline.predict(X))
    if task == "regression":
        return Predictions(y_true=y_true, y_pred=y_pred, y_score=None, task=task)
    proba = np.asarray(pipeline.predict_proba(X), dtype=float)
    classes = np.asarray(pipeline.classes_)
    if task == "multiclass":
        return Predictions(y_true=y_true, y_pred=y_pred, y_score=proba, task=task, classes=classes)
    if len(classes) != 2:
        raise ConfigError(
            f"dataset.task: 'binary' but the model learned {len(classes)} classes: {classes.tolist()[:10]}"
        )
    positive = positive_class_index(classes, positive_label)
    return Predictions(
        y_true=y_true,
        y_pred=y_pred,
        y_score=proba[:, positive],
        task=task,
        classes=classes,
        positive_label=classes[positive],
    )


def positive_class_index(classes: np.ndarray, positive_label: Any) -> int:
    """The index of `positive_label` among a classifier's `classes_`, matched by value.

    `None` means the second class (scikit-learn's convention). By value, not by string: a
    configured `1` never silently matches a class `"1"`; evaluation and serving use this one rule.
    """
    if positive_label is None:
        return 1
    matches = np.flatnonzero(np.asarray(classes) == positive_label)
    if len(matches) != 1:
        raise ConfigError(
            f"dataset.positive_label: {positive_label!r} is not one of the model's classes {np.asarray(classes).tolist()}"
        )
    return int(matches[0])


def resolve_metrics(
    task: Task, metrics: Sequence[str] | None, *, field: str = "evaluation.metrics"
) -> list[str]:
    """The metric names to compute; unknown names are a ConfigError naming `field`."""
    available = TASK_METRICS[task]
    if metrics is None:
        return list(available)
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise ConfigError(
            f"{field}: {unknown} not available for a {task} task (available: {', '.join(available)})"
        )
    return list(dict.fromkeys(metrics))


def metric_notes(preds: Predictions, metrics: Sequence[str] | None = None) -> dict[str, str]:
    """Why a metric is undefined (NaN) on these rows; metrics that are fine are absent."""
    names = resolve_metrics(preds.task, metrics)
    n = len(preds)
    if n == 0:
        return {m: "no rows" for m in names}
    notes: dict[str, str] = {}
    if preds.task == "binary":
        n_pos = int(preds.is_positive.sum())
        n_neg = n - n_pos
        if "roc_auc" in names and (n_pos == 0 or n_neg == 0):
            notes["roc_auc"] = f"undefined: y_true has one class only ({n_pos} positive, {n_neg} negative)"
        if "pr_auc" in names and n_pos == 0:
            notes["pr_auc"] = "undefined: y_true has no positive rows"
    elif preds.task == "regression" and "r2" in names and n > 0 and np.ptp(preds.y_true) == 0:
        notes["r2"] = "undefined: y_true is constant"
    return notes


def compute_metrics(preds: Predictions, metrics: Sequence[str] | None = None) -> dict[str, float]:
    """Metric name -> value (scikit-learn definitions); undefined metrics are NaN, see `metric_notes`."""
    names = resolve_metrics(preds.task, metrics)
    notes = metric_notes(preds, names)
    out: dict[str, float] = {}
    for name in names:
        out[name] = float("nan") if name in notes else float(_SKLEARN[preds.task][name](preds))
    return out


def _binary(fn: Any, **kwargs: Any) -> Any:
    return lambda p: fn(p.is_positive, p.predicted_positive, **kwargs)


_SKLEARN: dict[str, dict[str, Any]] = {
    "binary": {
        "roc_auc": lambda p: skm.roc_auc_score(p.is_positive, p.y_score),
        "pr_auc": lambda p: skm.average_precision_score(p.is_positive, p.y_score),
        "f1": _binary(skm.f1_score, zero_division=0),
        "precision": _binary(skm.precision_score, zero_division=0),
        "recall": _binary(skm.recall_score, zero_division=0),
        "accuracy": _binary(skm.accuracy_score),
        "log_loss": lambda p: skm.log_loss(p.is_positive, p.y_score, labels=[False, True]),
        "brier": lambda p: skm.brier_score_loss(p.is_positive, p.y_score, pos_label=True),
    },
    "multiclass": {
        "f1_macro": lambda p: skm.f1_score(p.y_true, p.y_pred, average="macro", zero_division=0),
        "accuracy": lambda p: skm.accuracy_score(p.y_true, p.y_pred),
        "log_loss": lambda p: skm.log_loss(p.y_true, p.y_score, labels=p.classes),
    },
    "regression": {
        "rmse": lambda p: skm.root_mean_squared_error(p.y_true, p.y_pred),
        "mae": lambda p: skm.mean_absolute_error(p.y_true, p.y_pred),
        "r2": lambda p: skm.r2_score(p.y_true, p.y_pred),
    },
}
