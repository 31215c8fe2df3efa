"""What a wrong (or right) decision costs: `evaluation.costs`, checked against the task, as row costs.

The expected cost per 1,000 decisions is the mean of the per-row cost times 1,000: a plain mean,
so it goes through the same paired bootstrap as every other metric (`bootstrap.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gitops_ml.config import CostsConfig, Task
from gitops_ml.errors import ConfigError

FIELD = "evaluation.costs"
PER = 1_000  # decisions: the unit the report and the gates speak in
_BINARY = ("false_positive", "false_negative", "true_positive", "true_negative")
_REGRESSION = ("under_prediction", "over_prediction")
_KEYS: dict[str, tuple[str, ...]] = {"binary": _BINARY, "multiclass": ("matrix",), "regression": _REGRESSION}


def cost_problems(task: Task, costs: CostsConfig, classes: Sequence[Any] | None = None) -> list[str]:
    """Every problem of `costs` for `task` (each naming its key path); [] when they are usable.

    classes: the labels the target may take (the contract's allowed values, or the model's
    classes); when given, a cost matrix naming any other class is refused.
    """
    given = {k for k, v in costs.model_dump(exclude={"unit"}).items() if v is not None}
    problems = [
        f"{FIELD}.{key}: not a cost of a {task} task (use {', '.join(_KEYS[task])})"
        for key in sorted(given - set(_KEYS[task]))
    ]
    if not given & set(_KEYS[task]):
        problems.append(f"{FIELD}: no {task} costs given (use {', '.join(_KEYS[task])})")
        return problems
    if task == "multiclass":
        matrix = costs.matrix or {}
        known = None if classes is None else {str(c) for c in classes}
        if known is not None:
            for true, row in matrix.items():
                if str(true) not in known:
                    problems.append(f"{FIELD}.matrix.{true}: not a class of the target ({_shown(known)})")
                for pred in row:
                    if str(pred) not in known:
                        problems.append(
                            f"{FIELD}.matrix.{true}.{pred}: not a class of the target ({_shown(known)})"
                        )
        values = [v for row in matrix.values() for v in row.values()]
    else:
        values = [getattr(costs, key) or 0.0 for key in _KEYS[task]]
    if not any(v != 0 for v in values):
        problems.append(
            f"{FIELD}: every cost is zero, so every model would cost nothing; give the costs of errors"
        )
    if any(not np.isfinite(v) for v in values):
        problems.append(f"{FIELD}: costs must be finite numbers")
    return problems


def check_costs(task: Task, costs: CostsConfig | None, classes: Sequence[Any] | None = None) -> None:
    """ConfigError listing every problem at once; nothing to check when no costs are configured."""
    if costs is None:
        return
    problems = cost_problems(task, costs, classes)
    if problems:
        raise ConfigError("; ".join(problems))


def row_costs(
    task: Task, costs: CostsConfig, y_true: np.ndarray, y_pred: np.ndarray, positive_label: Any = None
) -> np.ndarray:
    """The cost of each row's decision (a negative value is a gain)."""
    if task == "binary":
        truth, decided = y_true == positive_label, y_pred == positive_label
        c = {k: float(getattr(costs, k) or 0.0) for k in _BINARY}
        return np.where(
            truth,
            np.where(decided, c["true_positive"], c["false_negative"]),
            np.where(decided, c["false_positive"], c["true_negative"]),
        )
    if task == "multiclass":
        matrix = {
            str(t): {str(p): float(v) for p, v in row.items()} for t, row in (costs.matrix or {}).items()
        }
        true_values, true_idx = np.unique(np.asarray(y_true).astype(str), return_inverse=True)
        pred_values, pred_idx = np.unique(np.asarray(y_pred).astype(str), return_inverse=True)
        table = np.array([[matrix.get(t, {}).get(p, 0.0) for p in pred_values] for t in true_values])
        return table[true_idx, pred_idx] if len(true_values) else np.zeros(0)
    error = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return float(costs.over_prediction or 0.0) * np.maximum(error, 0.0) + float(
        costs.under_prediction or 0.0
    ) * np.maximum(-error, 0.0)


def describe_costs(task: Task, costs: CostsConfig) -> str:
    """One line for the report: the costs the expected cost was computed with."""
    if task == "multiclass":
        cells = [f"{t}→{p} {v:g}" for t, row in (costs.matrix or {}).items() for p, v in row.items() if v]
        body = ", ".join(cells[:12]) + (f" and {len(cells) - 12} more" if len(cells) > 12 else "")
    else:
        body = ", ".join(
            f"{k.replace('_', ' ')} {getattr(costs, k):g}"
            for k in _KEYS[task]
            if getattr(costs, k) is not None
        )
    return f"{body} ({costs.unit} per decision{'' if task != 'regression' else ' per unit of error'})"


def _shown(known: set[str]) -> str:
    items = sorted(known)
    return ", ".join(items[:10]) + (", ..." if len(items) > 10 else "")
