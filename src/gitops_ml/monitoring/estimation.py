"""Early warning before labels: a classifier's performance estimated from its own probabilities.

If the model is calibrated (of the rows it scores 0.3, about 30% are positive), its probabilities
say how its labels will turn out, so the metric it will reach on a window can be estimated before
any label arrives (confidence-based performance estimation). Here by simulation: the labels are
drawn `draws` times from the served probabilities (binary: positive with probability P(positive);
multiclass: the served class right with the probability the model gave it) and the metric is
computed on each draw with the one metrics engine. The estimate is the mean of the draws, the
interval their percentile interval: where the realized metric should land if the model is
calibrated. It does not cover a calibration error, hence the check on the reference data:

- the reference is a sample of the model's holdout (scores, truths, decisions), stored with the
  model (`reference.json`, key `calibration`);
- calibrated = expected calibration error (10 equal-count bins) <= `max_calibration_error` AND the
  realized holdout metric inside the interval estimated from the holdout's own probabilities.
  Otherwise the window's estimate is computed but marked "not valid" and never warns.

Warning rule, mirroring the decay rule of `performance.py`: with the estimated drop oriented so that
positive is worse, warn when the lower bound of its interval is above `max_performance_drop`.

What is estimated: binary, any metric of the task that needs no costs; multiclass, accuracy only
(the prediction store keeps the probability of the served class, not the whole vector, and the
served class is assumed to be the most probable one); regression, nothing (a point prediction
carries no predictive distribution, so an expected error cannot be derived from outputs alone;
feature and prediction drift are the warnings before labels there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from gitops_ml.config import Task
from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.bootstrap import percentile_interval
from gitops_ml.evaluation.metrics import Predictions, compute_metrics, direction_sign, metric_spec
from gitops_ml.jsonable import to_jsonable

Status = Literal["estimated", "not valid", "not estimated"]
FIELD = "monitoring.early_warning.metric"
SAMPLE_ROWS = 5000  # reference rows kept with the model: enough for 10 bins, small in reference.json
BINS = 10
_BOOL = np.array([False, True])  # binary truths/decisions as "is positive": every binary metric's view


def estimation_metric(task: Task, metric: str | None, performance_metric: str) -> str | None:
    """The metric the early warning estimates for `task`, or None when nothing is estimated.

    metric: `monitoring.early_warning.metric` (None = the monitor's performance metric for binary,
    accuracy for multiclass). A metric that cannot be estimated is a ConfigError naming the key.
    """
    if task == "regression":
        return None
    if task == "multiclass":
        if metric not in (None, "accuracy"):
            raise ConfigError(
                f"{FIELD}: '{metric}' cannot be estimated for multiclass: the prediction store keeps only the "
                "probability of the served class, which estimates accuracy alone (use accuracy or leave it unset)"
            )
        return "accuracy"
    name = metric or performance_metric
    spec = metric_spec(task, name, field=FIELD if metric else "monitoring.performance_metric")
    if spec.needs_costs:
        raise ConfigError(f"{FIELD}: '{name}' needs costs per decision, which probabilities cannot estimate")
    return name


# --------------------------------------------------------------------------------------------------
# the reference sample, stored with the model


@dataclass(frozen=True)
class CalibrationSample:
    """The model's holdout as the early warning needs it.

    score: binary P(positive), multiclass the probability of the predicted class; hit: binary the
    truth is positive, multiclass the prediction was right; decided: binary the decision was
    positive (None for multiclass).
    """

    task: Task
    score: np.ndarray
    hit: np.ndarray
    decided: np.ndarray | None
    rows: int  # holdout rows the sample was drawn from

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "rows": self.rows,
            "score": [round(float(s), 6) for s in self.score],
            "hit": self.hit.astype(int).tolist(),
            "decided": None if self.decided is None else self.decided.astype(int).tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationSample:
        decided = data.get("decided")
        return cls(
            task=data["task"],
            score=np.asarray(data["score"], dtype=float),
            hit=np.asarray(data["hit"], dtype=bool),
            decided=None if decided is None else np.asarray(decided, dtype=bool),
            rows=int(data["rows"]),
        )


def calibration_sample(preds: Predictions, *, seed: int = 0) -> CalibrationSample | None:
    """A seeded sample (at most SAMPLE_ROWS rows) of a classifier's holdout predictions; None for
    regression or when the probabilities are unknown."""
    if preds.task == "regression" or preds.y_score is None or len(preds) == 0:
        return None
    n = len(preds)
    rows = np.arange(n)
    if n > SAMPLE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(n, SAMPLE_ROWS, replace=False))
    if preds.task == "binary":
        return CalibrationSample(
            "binary",
            preds.y_score[rows],
            preds.is_positive[rows],
            preds.predicted_positive[rows],
            n,
        )
    assert preds.classes is not None
    proba = preds.y_score[rows]
    served = proba.max(axis=1)  # what serving logs as the multiclass score
    hit = preds.classes[proba.argmax(axis=1)] == preds.y_true[rows]
    return CalibrationSample("multiclass", served, np.asarray(hit, dtype=bool), None, n)


# --------------------------------------------------------------------------------------------------
# estimation


def _draw_metric(
    task: Task, metric: str, score: np.ndarray, decided: np.ndarray | None, draws: int, seed: int
) -> np.ndarray:
    """The metric on `draws` label vectors drawn from the probabilities (NaN where undefined).

    Vectorised through the bootstrap's metric kernels: every row appears twice, once positive and
    once negative, and a draw is the row-count vector that keeps one of the two copies per row.
    """
    rng = np.random.default_rng(seed)
    n = score.size
    if n == 0:
        return np.full(draws, np.nan)
    if task == "multiclass":  # accuracy: the served class right with the probability it was given
        return np.concatenate([(rng.random((size, n)) < score).mean(axis=1) for size in _blocks(draws, n)])
    assert decided is not None
    from gitops_ml.evaluation.bootstrap import MetricKernel

    both = Predictions(
        np.r_[np.ones(n, dtype=bool), np.zeros(n, dtype=bool)],
        np.r_[decided, decided],
        np.r_[score, score],
        "binary",
        classes=_BOOL,
        positive_label=True,
    )
    kernel = MetricKernel(both, [metric])
    out = []
    for size in _blocks(draws, 2 * n):
        positive = rng.random((size, n)) < score
        out.append(kernel(np.concatenate([positive, ~positive], axis=1).astype(float))[metric])
    return np.concatenate(out)


def _blocks(draws: int, width: int) -> list[int]:
    """Draw counts per block, so one (draws x width) block stays near 2 million elements."""
    block = max(1, min(draws, 2_000_000 // width))
    return [min(block, draws - start) for start in range(0, draws, block)]


def realized(
    task: Task, metric: str, score: np.ndarray, hit: np.ndarray, decided: np.ndarray | None
) -> float:
    """The metric on known outcomes (the reference's, or a window's labelled rows)."""
    if task == "multiclass":
        return float(np.mean(hit)) if hit.size else math.nan
    assert decided is not None
    if hit.all() or not hit.any():
        return math.nan
    preds = Predictions(hit, decided, score, "binary", classes=_BOOL, positive_label=True)
    return compute_metrics(preds, [metric])[metric]


def expected_calibration_error(
    score: np.ndarray, hit: np.ndarray, bins: int = BINS
) -> tuple[float, list[dict]]:
    """ECE over equal-count bins of the score, and the bins (mean score, observed rate, rows)."""
    if score.size == 0:
        return math.nan, []
    order = np.argsort(score, kind="stable")
    table = []
    ece = 0.0
    for part in np.array_split(order, min(bins, score.size)):
        mean_score, observed = float(score[part].mean()), float(hit[part].mean())
        ece += part.size / score.size * abs(mean_score - observed)
        table.append({"mean_score": mean_score, "observed": observed, "rows": int(part.size)})
    return ece, table


@dataclass(frozen=True)
class Calibration:
    """The calibration check of the reference data, for one metric."""

    ece: float
    max_ece: float
    reference_rows: int
    reference_estimate: float
    reference_ci_low: float
    reference_ci_high: float
    reference_realized: float
    calibrated: bool
    reason: str
    bins: list[dict] = field(default_factory=list)


def check_calibration(
    sample: CalibrationSample, metric: str, *, max_ece: float, draws: int, confidence: float, seed: int = 0
) -> Calibration:
    ece, bins = expected_calibration_error(sample.score, sample.hit)
    draws_ = _draw_metric(sample.task, metric, sample.score, sample.decided, draws, seed)
    estimate = float(np.nanmean(draws_)) if np.isfinite(draws_).any() else math.nan
    lo, hi = percentile_interval(draws_, confidence)
    real = realized(sample.task, metric, sample.score, sample.hit, sample.decided)
    pct = round(confidence * 100)
    inside = math.isfinite(real) and lo <= real <= hi
    what = "P(positive)" if sample.task == "binary" else "the served class's probability"
    facts = (
        f"on the reference ({sample.score.size:,} holdout rows): expected calibration error of {what} "
        f"{ece:.4f} (max {max_ece:g}); {metric} estimated {estimate:.4f}, {pct}% [{lo:.4f}, {hi:.4f}], "
        f"realized {real:.4f}"
    )
    if ece > max_ece:
        reason = f"not calibrated {facts}: calibration error above the maximum"
    elif not inside:
        reason = f"not calibrated {facts}: the realized value is outside the estimated interval"
    else:
        reason = f"calibrated {facts}"
    return Calibration(
        ece=ece,
        max_ece=max_ece,
        reference_rows=int(sample.score.size),
        reference_estimate=estimate,
        reference_ci_low=lo,
        reference_ci_high=hi,
        reference_realized=real,
        calibrated=ece <= max_ece and inside,
        reason=reason,
        bins=bins,
    )


@dataclass(frozen=True)
class EstimateResult:
    """One window's estimated performance, the warning, and the realized value once labels arrived."""

    metric: str | None
    status: Status
    reason: str
    rows: int
    value: float
    ci_low: float
    ci_high: float
    baseline: float | None
    drop: float
    drop_ci_low: float
    drop_ci_high: float
    max_drop: float
    confidence: float
    warning: bool
    calibration: Calibration | None = None
    # side by side once labels arrive: the estimate on the labelled rows and the realized metric there
    labelled: int = 0
    labelled_estimate: float = math.nan
    labelled_ci_low: float = math.nan
    labelled_ci_high: float = math.nan
    realized: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = to_jsonable(asdict(self))
        return cleaned

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EstimateResult:
        def num(value: Any) -> Any:
            return math.nan if value is None else value

        fields = dict(data)
        for key in (
            "value",
            "ci_low",
            "ci_high",
            "drop",
            "drop_ci_low",
            "drop_ci_high",
            "labelled_estimate",
            "labelled_ci_low",
            "labelled_ci_high",
            "realized",
        ):
            fields[key] = num(fields.get(key))
        cal = fields.get("calibration")
        if cal is not None:
            fields["calibration"] = Calibration(
                **{k: (num(v) if k.startswith(("ece", "reference_")) else v) for k, v in cal.items()}
            )
        return cls(**fields)


def not_estimated(task: Task, reason: str, rows: int) -> EstimateResult:
    nan = math.nan
    return EstimateResult(
        None, "not estimated", reason, rows, nan, nan, nan, None, nan, nan, nan, nan, nan, False
    )


def estimate_window(
    task: Task,
    metric: str | None,
    score: np.ndarray,
    decided: np.ndarray | None,
    sample: CalibrationSample | None,
    baseline: float | None,
    *,
    labelled_mask: np.ndarray | None = None,
    labelled_hit: np.ndarray | None = None,
    max_ece: float = 0.05,
    max_drop: float = 0.05,
    draws: int = 300,
    confidence: float = 0.95,
    min_rows: int = 1,
    seed: int = 0,
) -> EstimateResult:
    """The early warning for one window of served scores (module docstring).

    score/decided: every row of the window (as in CalibrationSample); labelled_mask/labelled_hit: the
    rows whose label arrived and their truths (binary "is positive", multiclass "served class right").
    baseline: the holdout value the production pointer recorded (None = the reference's realized value).
    """
    rows = int(score.size)
    if metric is None:
        why = (
            "regression: nothing is estimated before labels (a point prediction carries no predictive "
            "distribution); feature and prediction drift are the warning"
            if task == "regression"
            else "early warning disabled"
        )
        return not_estimated(task, why, rows)
    if sample is None:
        return not_estimated(
            task,
            "the model's reference has no calibration sample (trained before early warnings existed): "
            "retrain to get one",
            rows,
        )
    if rows < min_rows:
        return not_estimated(task, f"{rows} rows < min_window_rows {min_rows}", rows)
    if np.isnan(score).any():
        return not_estimated(task, f"{int(np.isnan(score).sum())} rows have no score", rows)
    cal = check_calibration(sample, metric, max_ece=max_ece, draws=draws, confidence=confidence, seed=seed)
    chosen = baseline if baseline is not None else cal.reference_realized
    base = float(chosen) if math.isfinite(chosen) else None
    values = _draw_metric(task, metric, score, decided, draws, seed + 1)
    value = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    lo, hi = percentile_interval(values, confidence)
    nan = math.nan
    drop = dlo = dhi = nan
    if base is not None and math.isfinite(value):
        sign = direction_sign(metric)
        drop = sign * (base - value)
        dlo, dhi = sorted((sign * (base - lo), sign * (base - hi)))
    pct = round(confidence * 100)
    if not cal.calibrated:
        status: Status = "not valid"
        warning = False
        reason = f"estimate not valid: the model is {cal.reason}"
    elif not math.isfinite(dlo):
        status, warning = "estimated", False
        reason = f"{metric} estimated {value:.4f}; no baseline to compare with"
    else:
        status, warning = "estimated", dlo > max_drop
        relation = "entirely above" if warning else "lower bound not above"
        reason = (
            f"{metric} estimated {value:.4f} vs baseline {base:.4f}: estimated drop {drop:.4f}, "
            f"{pct}% [{dlo:.4f}, {dhi:.4f}] {relation} max_performance_drop {max_drop:g}"
        )
    side: dict[str, Any] = {}
    if labelled_mask is not None and labelled_hit is not None and labelled_mask.any():
        sub_decided = None if decided is None else decided[labelled_mask]
        sub = _draw_metric(task, metric, score[labelled_mask], sub_decided, draws, seed + 2)
        sub_lo, sub_hi = percentile_interval(sub, confidence)
        side = {
            "labelled": int(labelled_mask.sum()),
            "labelled_estimate": float(np.nanmean(sub)) if np.isfinite(sub).any() else nan,
            "labelled_ci_low": sub_lo,
            "labelled_ci_high": sub_hi,
            "realized": realized(task, metric, score[labelled_mask], labelled_hit, sub_decided),
        }
    return EstimateResult(
        metric=metric,
        status=status,
        reason=reason,
        rows=rows,
        value=value,
        ci_low=lo,
        ci_high=hi,
        baseline=base,
        drop=drop,
        drop_ci_low=dlo,
        drop_ci_high=dhi,
        max_drop=max_drop,
        confidence=confidence,
        warning=warning,
        calibration=cal,
        **side,
    )


def served_outcomes(
    task: Task,
    predictions: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    positive_label: Any,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """From a window's served predictions and (partly missing) labels: the binary decisions as
    "is positive" (None for multiclass), which rows are labelled, and their truths as `hit`."""
    import pandas as pd  # here, not at import: `config check` imports this module for one name check

    from gitops_ml.evaluation.metrics import positive_class
    from gitops_ml.monitoring.performance import as_class_labels

    served = as_class_labels(np.asarray(predictions, dtype=object), classes, "predictions")
    labels = np.asarray(labels, dtype=object)
    mask = ~pd.isna(labels)
    truth = as_class_labels(labels[mask], classes, "labels")
    if task == "binary":
        positive = classes[positive_class(classes, positive_label)]
        return served == positive, mask, truth == positive
    return None, mask, truth == served[mask]
