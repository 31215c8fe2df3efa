"""Model performance on the labelled part of a monitoring window, against the production baseline.

Labels arrive late, so `y_true` may hold NaN for rows not labelled yet: they count in the label
coverage and are left out of the metric.

Decay rule (conservative, explainable): with drop = baseline - window value, oriented so that a
positive drop is always worse (for losses it is window - baseline),

    decayed = lower bound of the bootstrap CI of the drop > max_performance_drop

i.e. only when we are confident the model lost more than the allowed margin. A window with fewer than
`min_labelled` labels (or a single class) has status "insufficient labels" and is never decayed.
The baseline is the production model's holdout value, taken as fixed, so the CI of the drop is the
CI of the window value, mirrored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from gitops_ml.errors import ConfigError, DataError
from gitops_ml.evaluation.compare import draw_counts

Status = Literal["ok", "insufficient labels"]
_CHUNK_CELLS = 4_000_000  # bootstrap weights held at once (resamples x rows), ~32 MB of float64
_EPS = 1e-15


# Each metric maps (weights [B, n], y [n], s [n]) -> values [B]. Weights are resample counts that sum to n
# per row, so one code path gives the point estimate (weights of 1) and every bootstrap replicate.
def _auc(w: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # tied scores form one group
    ws = w[:, order]
    pos = np.add.reduceat(ws * y[order], starts, axis=1)
    neg = np.add.reduceat(ws * (1 - y[order]), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    num = np.sum(pos * (below + 0.5 * neg), axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _average_precision(w: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    ws = w[:, order]
    tp = np.cumsum(np.add.reduceat(ws * y[order], starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(ws * (1 - y[order]), starts, axis=1), axis=1)
    total = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / total
        ap = np.sum(np.diff(recall, axis=1, prepend=0.0) * precision, axis=1)
    return np.where(total[:, 0] > 0, ap, np.nan)


def _mean_of(loss: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def metric(w: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
        return w @ loss(y, s) / y.size

    return metric


def _confusion(kind: str) -> Callable[..., np.ndarray]:
    def metric(w: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
        pred = (s >= 0.5).astype("float64")
        tp = w @ (pred * y)
        fp = w @ (pred * (1 - y))
        fn = w @ ((1 - pred) * y)
        with np.errstate(invalid="ignore", divide="ignore"):
            if kind == "precision":
                return np.where(tp + fp > 0, tp / (tp + fp), 0.0)
            if kind == "recall":
                return np.where(tp + fn > 0, tp / (tp + fn), np.nan)
            return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)

    return metric


def _rmse(w: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.sqrt(w @ (s - y) ** 2 / y.size)


def _r2(w: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    n = y.size
    ss_res = w @ (s - y) ** 2
    ss_tot = w @ y**2 - (w @ y) ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.nan)


def _log_loss(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    p = np.clip(s, _EPS, 1 - _EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


# name -> (function, higher is better, needs binary labels)
METRICS: dict[str, tuple[Callable[..., np.ndarray], bool, bool]] = {
    "roc_auc": (_auc, True, True),
    "average_precision": (_average_precision, True, True),
    "accuracy": (_mean_of(lambda y, s: ((s >= 0.5) == (y == 1)).astype("float64")), True, True),
    "precision": (_confusion("precision"), True, True),
    "recall": (_confusion("recall"), True, True),
    "f1": (_confusion("f1"), True, True),
    "brier": (_mean_of(lambda y, s: (s - y) ** 2), False, True),
    "log_loss": (_mean_of(_log_loss), False, True),
    "mae": (_mean_of(lambda y, s: np.abs(s - y)), False, False),
    "rmse": (_rmse, False, False),
    "r2": (_r2, True, False),
}
# "pr_auc" is what evaluation (and so the production pointer's metrics) calls average precision.
_ALIASES = {"auc": "roc_auc", "pr_auc": "average_precision", "brier_score_loss": "brier", "brier_score": "brier",
            "logloss": "log_loss"}


def metric_spec(metric: str) -> tuple[str, bool]:
    """Canonical name and whether higher is better; unknown names are a config error."""
    name = _ALIASES.get(metric, metric)
    if name not in METRICS:
        raise ConfigError(
            f"monitoring.performance_metric: unknown metric '{metric}' (known: {', '.join(sorted(METRICS))})"
        )
    return name, METRICS[name][1]


def baseline_value(model_metrics: dict[str, float], metric: str) -> float | None:
    """The model's holdout value of `metric` under whichever alias it was recorded
    (the pointer keeps evaluation's names: pr_auc, not average_precision)."""
    canonical, _ = metric_spec(metric)
    for name, value in model_metrics.items():
        if _ALIASES.get(name, name) == canonical:
            return value
    return None


@dataclass(frozen=True)
class PerformanceResult:
    metric: str
    status: Status
    rows: int
    labelled: int
    label_coverage: float
    value: float  # NaN when status is "insufficient labels"
    ci_low: float
    ci_high: float
    baseline: float | None
    drop: float  # positive = worse than baseline, in metric units
    drop_ci_low: float
    drop_ci_high: float
    max_drop: float
    confidence: float
    decayed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceResult:
        floats = {"label_coverage", "value", "ci_low", "ci_high", "drop", "drop_ci_low", "drop_ci_high"}
        return cls(**{k: (math.nan if v is None and k in floats else v) for k, v in data.items()})


def _bootstrap(fn: Callable[..., np.ndarray], y: np.ndarray, s: np.ndarray, n_resamples: int,
               seed: int) -> np.ndarray:
    n = y.size
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    out = []
    for start in range(0, n_resamples, chunk):
        out.append(fn(draw_counts(rng, min(chunk, n_resamples - start), n), y, s))
    return np.concatenate(out)


def _as_1d(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype="float64")
    if arr.ndim == 2 and arr.shape[1] == 2:  # binary predict_proba
        arr = arr[:, 1]
    if arr.ndim != 1:
        raise DataError(f"{what}: expected one value per row, got shape {arr.shape}")
    return arr


def window_performance(
    y_true: Sequence[float] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    metric: str,
    baseline_value: float | None,
    *,
    n_resamples: int = 500,
    seed: int = 0,
    confidence: float = 0.95,
    max_drop: float = 0.05,
    min_labelled: int = 200,
) -> PerformanceResult:
    """Metric on the labelled rows of a window, with a bootstrap CI and the drop vs the baseline.

    `y_true` has one entry per window row, NaN where the label has not arrived; binary labels are
    0/1 (positive class = 1). `y_score` is the positive-class score (or the prediction, regression).
    """
    name, higher_is_better = metric_spec(metric)
    fn, _, binary = METRICS[name]
    y_all = _as_1d(y_true, "labels")
    s_all = _as_1d(y_score, "scores")
    if y_all.size != s_all.size:
        raise DataError(f"window performance: {y_all.size} labels but {s_all.size} scores")
    labelled_mask = ~np.isnan(y_all)
    y, s = y_all[labelled_mask], s_all[labelled_mask]
    if np.isnan(s).any():
        raise DataError(f"window performance: {int(np.isnan(s).sum())} labelled rows have no score")
    if binary:
        bad = np.unique(y[(y != 0) & (y != 1)])
        if bad.size:
            raise DataError(f"window performance: metric '{name}' needs 0/1 labels, got e.g. {bad[:5].tolist()}")
    rows, labelled = int(y_all.size), int(y.size)
    coverage = labelled / rows if rows else math.nan
    nan = math.nan

    def result(status: Status, value: float, lo: float, hi: float, drop: float, dlo: float, dhi: float,
               decayed: bool, reason: str) -> PerformanceResult:
        return PerformanceResult(
            metric=name, status=status, rows=rows, labelled=labelled, label_coverage=coverage, value=value,
            ci_low=lo, ci_high=hi, baseline=baseline_value, drop=drop, drop_ci_low=dlo, drop_ci_high=dhi,
            max_drop=max_drop, confidence=confidence, decayed=decayed, reason=reason,
        )

    if labelled < min_labelled:
        return result("insufficient labels", nan, nan, nan, nan, nan, nan, False,
                      f"{labelled} labelled rows < min_labelled_rows {min_labelled}")
    if binary and np.unique(y).size < 2:
        return result("insufficient labels", nan, nan, nan, nan, nan, nan, False,
                      f"all {labelled} labelled rows are class {int(y[0])}: '{name}' is undefined")

    value = float(fn(np.ones((1, labelled)), y, s)[0])
    replicates = _bootstrap(fn, y, s, n_resamples, seed)
    alpha = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.nanquantile(replicates, [alpha, 1 - alpha]))
    if baseline_value is None:
        return result("ok", value, lo, hi, nan, nan, nan, False, "no baseline value: decay not assessed")
    sign = 1.0 if higher_is_better else -1.0
    drop = sign * (baseline_value - value)
    dlo, dhi = sorted((sign * (baseline_value - lo), sign * (baseline_value - hi)))
    pct = round(confidence * 100)
    if dlo > max_drop:
        reason = (f"{name} {value:.4f} vs baseline {baseline_value:.4f}: drop {drop:.4f}, "
                  f"{pct}% CI [{dlo:.4f}, {dhi:.4f}] entirely above max_performance_drop {max_drop:g}")
        return result("ok", value, lo, hi, drop, dlo, dhi, True, reason)
    reason = (f"{name} {value:.4f} vs baseline {baseline_value:.4f}: drop {drop:.4f}, "
              f"{pct}% CI lower bound {dlo:.4f} <= max_performance_drop {max_drop:g}")
    return result("ok", value, lo, hi, drop, dlo, dhi, False, reason)
