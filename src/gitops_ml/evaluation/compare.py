"""Candidate vs production on the same holdout: a paired, seeded, vectorised bootstrap.

Paired means both models are scored on the SAME resampled rows in every resample, so the
noise they share (an easy or hard draw of rows) cancels in the delta and its interval is
much narrower than comparing two independent intervals.

A resample is represented by row counts (how often each row was drawn), which turns every
metric into weighted sums: a matrix product for the threshold and loss metrics, and a
cumulative sum over score-sorted tie groups for ROC AUC and average precision. No Python
loop over resamples and no per-resample scikit-learn call.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gitops_ml.config import BootstrapConfig, Task
from gitops_ml.evaluation.metrics import (
    METRIC_DIRECTION,
    Direction,
    Predictions,
    compute_metrics,
    direction_sign,
    metric_notes,
    resolve_metrics,
)

Outcome = Literal["better", "worse", "inconclusive"]

# Elements per (resamples x rows) block; a few such float64 blocks stay around 100 MB at most.
_BLOCK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class MetricComparison:
    """One metric, candidate vs production. Production fields are None when there is none yet."""

    metric: str
    direction: Direction
    candidate: float
    candidate_ci: tuple[float, float]
    production: float | None = None
    production_ci: tuple[float, float] | None = None
    delta: float | None = None  # candidate - production
    ci_low: float | None = None  # of the delta
    ci_high: float | None = None
    outcome: Outcome | None = None  # None when there is no production model
    note: str | None = None  # why a value is NaN, or how many resamples were undefined

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN -> None)."""
        return {
            "metric": self.metric,
            "direction": self.direction,
            "candidate": _clean(self.candidate),
            "candidate_ci": _clean_pair(self.candidate_ci),
            "production": _clean(self.production),
            "production_ci": _clean_pair(self.production_ci),
            "delta": _clean(self.delta),
            "ci_low": _clean(self.ci_low),
            "ci_high": _clean(self.ci_high),
            "outcome": self.outcome,
            "note": self.note,
        }


@dataclass(frozen=True)
class Comparison:
    """Per-metric comparison plus how it was computed (for the report's reproducibility block)."""

    task: Task
    metrics: Mapping[str, MetricComparison]
    n_rows: int
    n_resamples: int
    confidence: float
    seed: int
    has_production: bool
    method: str = field(default="paired percentile bootstrap")

    def __getitem__(self, metric: str) -> MetricComparison:
        return self.metrics[metric]

    def __iter__(self) -> Iterator[MetricComparison]:
        return iter(self.metrics.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "n_rows": self.n_rows,
            "n_resamples": self.n_resamples,
            "confidence": self.confidence,
            "seed": self.seed,
            "has_production": self.has_production,
            "method": self.method,
            "metrics": [m.to_dict() for m in self.metrics.values()],
        }


def compare_models(
    candidate: Predictions,
    production: Predictions | None,
    metrics: Sequence[str] | None,
    cfg: BootstrapConfig,
) -> Comparison:
    """Point estimates (scikit-learn) plus paired bootstrap percentile intervals.

    `metrics=None` means every metric of the task. Both models must have been scored on the
    same rows in the same order (checked on y_true).
    """
    names = resolve_metrics(candidate.task, metrics)
    if production is not None:
        _check_paired(candidate, production)
    cand_point = compute_metrics(candidate, names)
    cand_notes = metric_notes(candidate, names)
    prod_point = compute_metrics(production, names) if production is not None else None
    prod_notes = metric_notes(production, names) if production is not None else {}

    models = [candidate] if production is None else [candidate, production]
    draws = _paired_draws(models, names, cfg.n_resamples, cfg.seed)
    alpha = 1.0 - cfg.confidence
    q = (alpha / 2, 1 - alpha / 2)

    rows: dict[str, MetricComparison] = {}
    for name in names:
        cand_b = draws[0][name]
        note = cand_notes.get(name) or _undefined_note(cand_b, "candidate")
        candidate_ci = _interval(cand_b, q)
        if production is None:
            rows[name] = MetricComparison(
                metric=name,
                direction=METRIC_DIRECTION[name],
                candidate=cand_point[name],
                candidate_ci=candidate_ci,
                note=note,
            )
            continue
        prod_b = draws[1][name]
        delta_b = cand_b - prod_b
        delta = cand_point[name] - prod_point[name]
        low, high = _interval(delta_b, q)
        prod_note = prod_notes.get(name) or _undefined_note(prod_b, "production")
        rows[name] = MetricComparison(
            metric=name,
            direction=METRIC_DIRECTION[name],
            candidate=cand_point[name],
            candidate_ci=candidate_ci,
            production=prod_point[name],
            production_ci=_interval(prod_b, q),
            delta=delta,
            ci_low=low,
            ci_high=high,
            outcome=_outcome(name, low, high),
            note="; ".join(n for n in (note, prod_note) if n) or None,
        )
    return Comparison(
        task=candidate.task,
        metrics=rows,
        n_rows=len(candidate),
        n_resamples=cfg.n_resamples,
        confidence=cfg.confidence,
        seed=cfg.seed,
        has_production=production is not None,
    )


def bootstrap_distribution(
    preds: Predictions, metrics: Sequence[str] | None, n_resamples: int, seed: int
) -> dict[str, np.ndarray]:
    """Metric name -> its value in each of `n_resamples` seeded resamples (NaN where undefined)."""
    names = resolve_metrics(preds.task, metrics)
    return _paired_draws([preds], names, n_resamples, seed)[0]


def resampled_metrics(
    preds: Predictions, counts: np.ndarray, metrics: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Metrics on rows drawn `counts[b, i]` times in resample b; counts has shape (B, n_rows).

    Exposed so tests can check it against scikit-learn on explicitly resampled rows.
    """
    names = resolve_metrics(preds.task, metrics)
    return _Kernel(preds, names)(np.asarray(counts, dtype=float))


def _paired_draws(
    models: list[Predictions], names: list[str], n_resamples: int, seed: int
) -> list[dict[str, np.ndarray]]:
    n = len(models[0])
    out = [{name: np.full(n_resamples, np.nan) for name in names} for _ in models]
    if n == 0:
        return out
    kernels = [_Kernel(m, names) for m in models]
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _BLOCK_ELEMENTS // n))
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        counts = draw_counts(rng, size, n)
        for kernel, dest in zip(kernels, out, strict=True):
            for name, values in kernel(counts).items():
                dest[name][start : start + size] = values
    return out


def draw_counts(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(size, n) matrix: how often each row was drawn in each resample (rows with replacement).

    The one resampler of the project: the holdout comparison and the monitor's window CI both use it.
    """
    idx = rng.integers(0, n, size=(size, n))
    idx += (np.arange(size) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(float)


class _Kernel:
    """Per-model work done once (sorting, per-row losses); __call__ maps counts -> metrics."""

    def __init__(self, preds: Predictions, names: list[str]):
        self.names = names
        self.task = preds.task
        columns: dict[str, np.ndarray] = {}
        if preds.task == "binary":
            pos = preds.is_positive.astype(float)
            hit = preds.predicted_positive.astype(float)
            columns = {
                "tp": pos * hit,
                "fp": (1 - pos) * hit,
                "fn": pos * (1 - hit),
                "tn": (1 - pos) * (1 - hit),
                "log_loss": _clipped_log_loss(np.where(pos == 1, preds.y_score, 1 - preds.y_score)),
                "brier": (preds.y_score - pos) ** 2,
            }
            if {"roc_auc", "pr_auc"} & set(names):
                order = np.argsort(preds.y_score, kind="stable")
                sorted_scores = preds.y_score[order]
                self.order = order
                self.group_starts = np.flatnonzero(np.r_[True, np.diff(sorted_scores) != 0])
                self.pos_sorted = pos[order]
        elif preds.task == "multiclass":
            classes = preds.classes
            true_idx = _positions(classes, preds.y_true)
            pred_idx = _positions(classes, preds.y_pred)
            k = len(classes)
            true_1h = np.eye(k)[true_idx]
            pred_1h = np.eye(k)[pred_idx]
            self.k = k
            for j in range(k):
                columns[f"tp{j}"] = true_1h[:, j] * pred_1h[:, j]
                columns[f"pred{j}"] = pred_1h[:, j]
                columns[f"true{j}"] = true_1h[:, j]
            columns["correct"] = (true_idx == pred_idx).astype(float)
            columns["log_loss"] = _clipped_log_loss(preds.y_score[np.arange(len(preds)), true_idx])
        else:
            err = preds.y_pred - preds.y_true
            centred = preds.y_true - preds.y_true.mean()  # variance is shift-invariant; avoids cancellation
            columns = {"se": err**2, "ae": np.abs(err), "y": centred, "y2": centred**2}
        self.column_index = {name: j for j, name in enumerate(columns)}
        self.matrix = np.column_stack(list(columns.values())) if columns else np.empty((len(preds), 0))

    def __call__(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        sums = counts @ self.matrix
        total = counts.sum(axis=1)
        s = {name: sums[:, j] for name, j in self.column_index.items()}
        out: dict[str, np.ndarray] = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.task == "binary":
                tp, fp, fn, tn = s["tp"], s["fp"], s["fn"], s["tn"]
                values = {
                    "accuracy": lambda: (tp + tn) / total,
                    "precision": lambda: _ratio(tp, tp + fp),
                    "recall": lambda: _ratio(tp, tp + fn),
                    "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
                    "log_loss": lambda: s["log_loss"] / total,
                    "brier": lambda: s["brier"] / total,
                }
                for name in self.names:
                    if name in values:
                        out[name] = values[name]()
                if {"roc_auc", "pr_auc"} & set(self.names):
                    out.update(self._ranking(counts))
            elif self.task == "multiclass":
                tp = np.column_stack([s[f"tp{j}"] for j in range(self.k)])
                pred = np.column_stack([s[f"pred{j}"] for j in range(self.k)])
                true = np.column_stack([s[f"true{j}"] for j in range(self.k)])
                present = (pred + true) > 0  # scikit-learn averages over labels seen in y_true or y_pred
                f1 = _ratio(2 * tp, pred + true)
                values = {
                    "f1_macro": lambda: (f1 * present).sum(axis=1) / present.sum(axis=1),
                    "accuracy": lambda: s["correct"] / total,
                    "log_loss": lambda: s["log_loss"] / total,
                }
                out = {name: values[name]() for name in self.names}
            else:
                ss_tot = s["y2"] - s["y"] ** 2 / total
                values = {
                    "rmse": lambda: np.sqrt(s["se"] / total),
                    "mae": lambda: s["ae"] / total,
                    "r2": lambda: np.where(
                        ss_tot > 1e-12 * np.maximum(s["y2"], 1e-300), 1 - s["se"] / ss_tot, np.nan
                    ),
                }
                out = {name: values[name]() for name in self.names}
        return {name: out[name] for name in self.names}

    def _ranking(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """ROC AUC (Mann-Whitney with ties counted half) and average precision from tie groups."""
        w = counts[:, self.order]
        pos_w = np.add.reduceat(w * self.pos_sorted, self.group_starts, axis=1)
        neg_w = np.add.reduceat(w, self.group_starts, axis=1) - pos_w
        n_pos = pos_w.sum(axis=1)
        n_neg = neg_w.sum(axis=1)
        out = {}
        if "roc_auc" in self.names:
            neg_below = np.cumsum(neg_w, axis=1) - neg_w
            wins = (pos_w * (neg_below + 0.5 * neg_w)).sum(axis=1)
            out["roc_auc"] = np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)
        if "pr_auc" in self.names:
            # descending thresholds: precision at each distinct score, weighted by the recall gained there
            tp = np.cumsum(pos_w[:, ::-1], axis=1)
            fp = np.cumsum(neg_w[:, ::-1], axis=1)
            precision = _ratio(tp, tp + fp)
            ap = (pos_w[:, ::-1] * precision).sum(axis=1)
            out["pr_auc"] = np.where(n_pos > 0, ap / n_pos, np.nan)
        return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's zero_division=0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _clipped_log_loss(p_true: np.ndarray) -> np.ndarray:
    eps = np.finfo(float).eps  # the clipping scikit-learn's log_loss applies
    return -np.log(np.clip(p_true, eps, 1 - eps))


def _positions(classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    order = np.argsort(classes, kind="stable")
    found = np.searchsorted(classes[order], labels)
    found = np.clip(found, 0, len(classes) - 1)
    idx = order[found]
    bad = classes[idx] != labels
    if bad.any():
        raise ValueError(f"labels not among the model's classes: {np.unique(labels[bad])[:5].tolist()}")
    return idx


def _check_paired(candidate: Predictions, production: Predictions) -> None:
    if candidate.task != production.task:
        raise ValueError(f"candidate is {candidate.task} but production is {production.task}")
    if len(candidate) != len(production) or not np.array_equal(candidate.y_true, production.y_true):
        raise ValueError(
            "candidate and production were not scored on the same holdout rows "
            f"({len(candidate)} vs {len(production)} rows, or y_true differs); a paired comparison needs both"
        )


def _interval(values: np.ndarray, q: tuple[float, float]) -> tuple[float, float]:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return (math.nan, math.nan)
    low, high = np.quantile(finite, q)
    return (float(low), float(high))


def _undefined_note(values: np.ndarray, who: str) -> str | None:
    bad = int(np.isnan(values).sum())
    if bad == 0:
        return None
    return f"{who}: undefined in {bad} of {values.size} resamples (one class drawn); interval from the rest"


def _outcome(metric: str, low: float, high: float) -> Outcome:
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    sign = direction_sign(metric)
    worst, best = sorted((sign * low, sign * high))
    if worst > 0:
        return "better"
    if best < 0:
        return "worse"
    return "inconclusive"


def _clean(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _clean_pair(pair: tuple[float, float] | None) -> list[float | None] | None:
    return None if pair is None else [_clean(pair[0]), _clean(pair[1])]
