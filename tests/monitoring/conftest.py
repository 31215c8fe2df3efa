"""Builders for monitoring tests: hand-made drift/performance results, so policy and report tests do
not depend on the statistics."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from gitops_ml.config import MonitoringConfig
from gitops_ml.monitoring.drift import DriftResult, FeatureDrift
from gitops_ml.monitoring.performance import PerformanceResult
from gitops_ml.monitoring.policy import WindowResult

T0 = datetime(2026, 7, 1, tzinfo=UTC)
THRESHOLDS = {"psi": 0.2, "ks_pvalue": 0.01, "chi2_pvalue": 0.01, "prediction_psi": 0.2, "min_effect": 0.1}


def feature(name: str, psi: float, *, kind: str = "numeric") -> FeatureDrift:
    drifted = psi > 0.2
    return FeatureDrift(
        feature=name,
        kind=kind,
        test="ks" if kind != "categorical" else "chi2",
        psi=psi,
        statistic=0.3 if drifted else 0.01,
        pvalue=1e-9 if drifted else 0.5,
        effect=0.3 if drifted else 0.01,
        null_rate_reference=0.0,
        null_rate_window=0.0,
        drifted=drifted,
        reason=f"PSI {psi:.3f} > 0.2" if drifted else f"PSI {psi:.3f} <= 0.2",
    )


def performance(
    value: float, *, baseline: float = 0.80, decayed: bool = False, labelled: int = 1000, status: str = "ok"
) -> PerformanceResult:
    insufficient = status != "ok"
    return PerformanceResult(
        metric="roc_auc",
        status=status,
        rows=2000,
        labelled=labelled,
        label_coverage=labelled / 2000,
        value=math.nan if insufficient else value,
        ci_low=math.nan if insufficient else value - 0.02,
        ci_high=math.nan if insufficient else value + 0.02,
        baseline=baseline,
        drop=math.nan if insufficient else baseline - value,
        drop_ci_low=math.nan if insufficient else baseline - value - 0.02,
        drop_ci_high=math.nan if insufficient else baseline - value + 0.02,
        max_drop=0.05,
        confidence=0.95,
        decayed=decayed,
        reason="decayed" if decayed else "fine",
    )


@pytest.fixture
def cfg() -> MonitoringConfig:
    return MonitoringConfig()


@pytest.fixture
def make_window() -> Callable[..., WindowResult]:
    """make_window(i, drifted=0, prediction_psi=0.01, decayed=False, rows=2000, model_version="v1")."""

    def build(
        i: int,
        *,
        drifted: int = 0,
        prediction_psi: float = 0.01,
        decayed: bool = False,
        rows: int = 2000,
        model_version: str = "v1",
        metric: float | None = None,
    ) -> WindowResult:
        feats = [feature(f"f{j}", 0.5 if j < drifted else 0.01) for j in range(6)]
        feats.append(feature("plan", 0.02, kind="categorical"))
        pred = feature("prediction", prediction_psi, kind="prediction")
        value = metric if metric is not None else (0.70 if decayed else 0.80)
        return WindowResult(
            window_start=T0 + timedelta(days=7 * i),
            window_end=T0 + timedelta(days=7 * (i + 1)),
            rows=rows,
            drift=DriftResult(window_rows=rows, features=feats, prediction=pred, thresholds=dict(THRESHOLDS)),
            performance=performance(value, decayed=decayed),
            model_version=model_version,
        )

    return build
