"""Evaluation: metrics, per-segment metrics, candidate vs production comparison, gates, plots.

Pure functions over predictions; the caller scores the models and writes the report.
"""

from __future__ import annotations

from gitops_ml.evaluation.compare import (
    Comparison,
    MetricComparison,
    bootstrap_distribution,
    compare_models,
    resampled_metrics,
)
from gitops_ml.evaluation.gates import GateResult, Verdict, evaluate_gates, validate_gate_metrics
from gitops_ml.evaluation.metrics import (
    METRIC_DIRECTION,
    TASK_METRICS,
    Predictions,
    compute_metrics,
    direction_sign,
    metric_notes,
    predict,
    resolve_metrics,
)
from gitops_ml.evaluation.plots import permutation_importance_series, write_plots
from gitops_ml.evaluation.segments import segment_comparison, segment_metrics

__all__ = [
    "METRIC_DIRECTION",
    "TASK_METRICS",
    "Comparison",
    "GateResult",
    "MetricComparison",
    "Predictions",
    "Verdict",
    "bootstrap_distribution",
    "compare_models",
    "compute_metrics",
    "direction_sign",
    "evaluate_gates",
    "metric_notes",
    "permutation_importance_series",
    "predict",
    "resampled_metrics",
    "resolve_metrics",
    "segment_comparison",
    "segment_metrics",
    "validate_gate_metrics",
    "write_plots",
]
