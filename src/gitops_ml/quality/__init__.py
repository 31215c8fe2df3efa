"""Statistical data and model quality checks (deepchecks), soft next to the hard contract rules."""

from __future__ import annotations

from gitops_ml.quality.deepchecks_suites import (
    STATUSES,
    SUITES,
    CheckOutcome,
    ConditionOutcome,
    SuiteSummary,
    run_data_integrity,
    run_model_evaluation,
    run_train_test_validation,
    validate_deepchecks_config,
)

__all__ = [
    "STATUSES",
    "SUITES",
    "CheckOutcome",
    "ConditionOutcome",
    "SuiteSummary",
    "run_data_integrity",
    "run_model_evaluation",
    "run_train_test_validation",
    "validate_deepchecks_config",
]
