"""Monitoring logic (pure): drift against a stored reference profile, performance on late labels,
the retraining policy and the monitor report. Prefect, the prediction store and the forge call these.
"""

from __future__ import annotations

from gitops_ml.monitoring.drift import (
    CategoricalProfile,
    DriftResult,
    FeatureDrift,
    NumericProfile,
    ReferenceProfile,
    build_reference,
    compute_drift,
    read_reference,
    write_reference,
)
from gitops_ml.monitoring.performance import PerformanceResult, window_performance
from gitops_ml.monitoring.policy import (
    Decision,
    WindowRecord,
    WindowResult,
    assess_window,
    decide,
    make_record,
)
from gitops_ml.monitoring.report import render_monitor_report, write_monitor_plots

__all__ = [
    "CategoricalProfile",
    "Decision",
    "DriftResult",
    "FeatureDrift",
    "NumericProfile",
    "PerformanceResult",
    "ReferenceProfile",
    "WindowRecord",
    "WindowResult",
    "assess_window",
    "build_reference",
    "compute_drift",
    "decide",
    "make_record",
    "read_reference",
    "render_monitor_report",
    "window_performance",
    "write_monitor_plots",
    "write_reference",
]
