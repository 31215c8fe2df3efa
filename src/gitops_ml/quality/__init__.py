"""Statistical data and model quality checks (deepchecks, in its own environment), soft next to the
hard contract rules."""

from __future__ import annotations

from gitops_ml.quality.deepchecks_suites import (
    STATUSES,
    SUITES,
    CheckOutcome,
    ConditionOutcome,
    SuiteSummary,
    deepchecks_session,
    run_data_integrity,
    run_model_evaluation,
    run_train_test_validation,
    validate_deepchecks_config,
)
from gitops_ml.quality.support import CheckSupport, check_support, support_table

__all__ = [
    "STATUSES",
    "SUITES",
    "CheckOutcome",
    "CheckSupport",
    "ConditionOutcome",
    "SuiteSummary",
    "check_support",
    "deepchecks_session",
    "run_data_integrity",
    "run_model_evaluation",
    "run_train_test_validation",
    "support_table",
    "validate_deepchecks_config",
]
