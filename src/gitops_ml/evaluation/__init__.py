"""Evaluation: metrics, per-segment metrics, candidate vs production comparison, gates, plots.

Pure functions over predictions; the caller scores the models and writes the report.
"""

from __future__ import annotations

from gitops_ml.evaluation.bootstrap import bootstrap_distribution, paired_bootstrap, resampled_metrics
from gitops_ml.evaluation.compare import Comparison, MetricComparison, compare_models
from gitops_ml.evaluation.gates import GateResult, Verdict, evaluate_gates, validate_gate_metrics
from gitops_ml.evaluation.metrics import (
    METRIC_DIRECTION,
    METRICS,
    TASK_METRICS,
    ClassMetrics,
    MetricSpec,
    Predictions,
    compute_metrics,
    direction_sign,
    metric_names,
    metric_notes,
    metric_spec,
    per_class_metrics,
    predict,
    resolve_metrics,
)
from gitops_ml.evaluation.plots import permutation_importance_series, write_plots
from gitops_ml.evaluation.segments import segment_comparison, segment_metrics

__all__ = [
    "METRICS",
    "METRIC_DIRECTION",
    "TASK_METRICS",
    "ClassMetrics",
    "Comparison",
    "GateResult",
    "MetricComparison",
    "MetricSpec",
    "Predictions",
    "Verdict",
    "bootstrap_distribution",
    "compare_models",
    "compute_metrics",
    "direction_sign",
    "evaluate_gates",
    "metric_names",
    "metric_notes",
    "metric_spec",
    "paired_bootstrap",
    "per_class_metrics",
    "permutation_importance_series",
    "predict",
    "resampled_metrics",
    "resolve_metrics",
    "segment_comparison",
    "segment_metrics",
    "validate_gate_metrics",
    "write_plots",
]
