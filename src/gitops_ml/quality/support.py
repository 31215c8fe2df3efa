"""Which deepchecks checks apply to which task and work with our pinned versions (data, no import).

A check listed here is refused by `config check` with the reason, before anything is trained:
otherwise it errors 30 s into a PR check and, when blocking, turns the verdict to FAIL.
"""

from __future__ import annotations

_CLASSIFICATION_ONLY = "applies to classification only"
_REGRESSION_ONLY = "applies to regression only"

# check -> task -> reason it cannot run. Measured with deepchecks 0.19.1 + scikit-learn 1.7.
UNSUPPORTED: dict[str, dict[str, str]] = {
    "NewLabelTrainTest": {"regression": "irrelevant for regression tasks (deepchecks)"},
    "ConflictingLabels": {"regression": "irrelevant for regression tasks (deepchecks)"},
    "RocReport": {"regression": _CLASSIFICATION_ONLY},
    "ConfusionMatrixReport": {"regression": _CLASSIFICATION_ONLY},
    "CalibrationScore": {"regression": _CLASSIFICATION_ONLY},
    "TrainTestPerformance": {
        "regression": "errors: its dummy model is not a regressor (deepchecks 0.19.1)",
        "multiclass": "errors on string class labels: pos_label=1 is not a valid label (deepchecks 0.19.1)",
    },
    "SimpleModelComparison": {
        "regression": "errors: its dummy model is not a regressor (deepchecks 0.19.1)",
        "multiclass": "errors on string class labels: pos_label=1 is not a valid label (deepchecks 0.19.1)",
    },
    "RegressionErrorDistribution": {
        "regression": "errors: calls mean_squared_error(squared=...), removed in scikit-learn 1.6",
        "binary": _REGRESSION_ONLY,
        "multiclass": _REGRESSION_ONLY,
    },
    "RegressionSystematicError": {
        "regression": "errors: calls mean_squared_error(squared=...), removed in scikit-learn 1.6",
        "binary": _REGRESSION_ONLY,
        "multiclass": _REGRESSION_ONLY,
    },
}


def check_support(check: str, task: str) -> str | None:
    """Why `check` cannot run for `task`, or None when it can (unknown names are checked elsewhere)."""
    return UNSUPPORTED.get(check, {}).get(task)
