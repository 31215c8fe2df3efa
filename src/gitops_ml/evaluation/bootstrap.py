"""The one bootstrap: seeded, paired, vectorised; used by the PR comparison and the monitor.

Paired means every model is scored on the SAME resampled rows in every resample, so the noise
they share (an easy or hard draw of rows) cancels in a delta. A resample is represented by row
counts (how often each row was drawn), which turns every metric into weighted sums: a matrix
product for the threshold and loss metrics, a cumulative sum over score-sorted tie groups for
the ranking metrics, a weighted median for the median absolute error. No Python loop over
resamples and no per-resample scikit-learn call; `metrics.py` holds the definitions these match.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from gitops_ml.evaluation.costs import PER
from gitops_ml.evaluation.metrics import Predictions, require_probabilities, resolve_metrics

# Elements per (resamples x rows) block; a few such float64 blocks stay around 100 MB at most.
_BLOCK_ELEMENTS = 2_000_000


def draw_counts(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(size, n) matrix: how often each row was drawn in each resample (rows with replacement)."""
    idx = rng.integers(0, n, size=(size, n))
    idx += (np.arange(size) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(float)


def paired_bootstrap(
    models: Sequence[Predictions], names: Sequence[str], n_resamples: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Per model, metric name -> its value in each of `n_resamples` resamples shared by all models."""
    names = list(names)
    n = len(models[0])
    out = [{name: np.full(n_resamples, np.nan) for name in names} for _ in models]
    if n == 0:
        return out
    kernels = [MetricKernel(m, names) for m in models]
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _BLOCK_ELEMENTS // n))
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        counts = draw_counts(rng, size, n)
        for kernel, dest in zip(kernels, out, strict=True):
            for name, values in kernel(counts).items():
                dest[name][start : start + size] = values
    return out


def bootstrap_distribution(
    preds: Predictions, metrics: Sequence[str] | None, n_resamples: int, seed: int
) -> dict[str, np.ndarray]:
    """Metric name -> its value in each of `n_resamples` seeded resamples (NaN where undefined)."""
    names = resolve_metrics(preds.task, metrics)
    return paired_bootstrap([preds], names, n_resamples, seed)[0]


def resampled_metrics(
    preds: Predictions, counts: np.ndarray, metrics: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Metrics on rows drawn `counts[b, i]` times in resample b; counts has shape (B, n_rows).

    Exposed so tests can check it against scikit-learn on explicitly resampled rows.
    """
    names = resolve_metrics(preds.task, metrics)
    return MetricKernel(preds, names)(np.asarray(counts, dtype=float))


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the finite values (NaN, NaN when there are none)."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(finite, (alpha, 1 - alpha))
    return (float(low), float(high))


def undefined_note(values: np.ndarray, who: str) -> str | None:
    """How many resamples had no value (e.g. one class drawn), or None when all had one."""
    bad = int(np.isnan(values).sum())
    if bad == 0:
        return None
    return f"{who}: undefined in {bad} of {values.size} resamples; interval from the rest"


class _Ranking:
    """Rows sorted once by score, tied scores grouped, for ROC AUC and average precision."""

    def __init__(self, score: np.ndarray, positive: np.ndarray):
        self.order = np.argsort(score, kind="stable")
        sorted_scores = score[self.order]
        self.group_starts = np.flatnonzero(np.r_[True, np.diff(sorted_scores) != 0])
        self.pos_sorted = positive[self.order].astype(float)
        self._cached: tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None = None

    def weights(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative weight per tie group, ascending score (kept for the next metric
        on the same block: ROC AUC and average precision share it)."""
        if self._cached is not None and self._cached[0] is counts:
            return self._cached[1]
        w = counts[:, self.order]
        pos_w = np.add.reduceat(w * self.pos_sorted, self.group_starts, axis=1)
        neg_w = np.add.reduceat(w, self.group_starts, axis=1) - pos_w
        self._cached = (counts, (pos_w, neg_w))
        return pos_w, neg_w

    def roc_auc(self, counts: np.ndarray) -> np.ndarray:
        """Mann-Whitney with ties counted half."""
        pos_w, neg_w = self.weights(counts)
        n_pos, n_neg = pos_w.sum(axis=1), neg_w.sum(axis=1)
        neg_below = np.cumsum(neg_w, axis=1) - neg_w
        wins = (pos_w * (neg_below + 0.5 * neg_w)).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)

    def average_precision(self, counts: np.ndarray) -> np.ndarray:
        """Precision at each distinct score (descending), weighted by the recall gained there."""
        pos_w, neg_w = self.weights(counts)
        n_pos = pos_w.sum(axis=1)
        tp = np.cumsum(pos_w[:, ::-1], axis=1)
        fp = np.cumsum(neg_w[:, ::-1], axis=1)
        ap = (pos_w[:, ::-1] * _ratio(tp, tp + fp)).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n_pos > 0, ap / n_pos, np.nan)


class MetricKernel:
    """Per-model work done once (sorting, per-row losses); `__call__` maps counts -> metrics."""

    def __init__(self, preds: Predictions, names: Sequence[str]):
        self.names = list(names)
        require_probabilities(preds, self.names)
        self.task = preds.task
        wanted = set(self.names)
        columns: dict[str, np.ndarray] = {}
        self.rankings: list[_Ranking] = []
        if preds.task == "binary":
            pos = preds.is_positive.astype(float)
            hit = preds.predicted_positive.astype(float)
            columns = {
                "tp": pos * hit,
                "fp": (1 - pos) * hit,
                "fn": pos * (1 - hit),
                "tn": (1 - pos) * (1 - hit),
            }
            if preds.y_score is not None:
                columns["log_loss"] = _clipped_log_loss(np.where(pos == 1, preds.y_score, 1 - preds.y_score))
                columns["brier"] = (preds.y_score - pos) ** 2
                if {"roc_auc", "pr_auc"} & wanted:
                    self.rankings = [_Ranking(preds.y_score, pos)]
        elif preds.task == "multiclass":
            classes = np.asarray(preds.classes)
            true_idx = _positions(classes, preds.y_true)
            pred_idx = _positions(classes, preds.y_pred)
            self.k = k = len(classes)
            true_1h, pred_1h = np.eye(k)[true_idx], np.eye(k)[pred_idx]
            for j in range(k):
                columns[f"tp{j}"] = true_1h[:, j] * pred_1h[:, j]
                columns[f"pred{j}"] = pred_1h[:, j]
                columns[f"true{j}"] = true_1h[:, j]
            columns["correct"] = (true_idx == pred_idx).astype(float)
            if preds.y_score is not None:
                columns["log_loss"] = _clipped_log_loss(preds.y_score[np.arange(len(preds)), true_idx])
                if "roc_auc_ovr" in wanted:
                    self.rankings = [_Ranking(preds.y_score[:, j], true_1h[:, j]) for j in range(k)]
        else:
            err = preds.y_pred - preds.y_true
            centred = preds.y_true - preds.y_true.mean()  # variance is shift-invariant; avoids cancellation
            columns = {"se": err**2, "ae": np.abs(err), "y": centred, "y2": centred**2}
            with np.errstate(divide="ignore", invalid="ignore"):
                columns["ape"] = np.abs(err) / np.abs(preds.y_true)
            self.non_positive = bool(np.any(preds.y_true <= 0))
            if "median_ae" in wanted:
                self.ae_order = np.argsort(columns["ae"], kind="stable")
                self.ae_sorted = columns["ae"][self.ae_order]
            if self.non_positive:  # MAPE is NaN then; keep inf/NaN out of the matrix product
                columns["ape"] = np.zeros(len(preds))
        if preds.costs is not None:
            columns["cost"] = preds.row_costs()
        self.column_index = {name: j for j, name in enumerate(columns)}
        self.matrix = np.column_stack(list(columns.values())) if columns else np.empty((len(preds), 0))

    def __call__(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        sums = counts @ self.matrix
        total = counts.sum(axis=1)
        s = {name: sums[:, j] for name, j in self.column_index.items()}
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.task == "binary":
                values = self._binary(s, total, counts)
            elif self.task == "multiclass":
                values = self._multiclass(s, total, counts)
            else:
                values = self._regression(s, total, counts)
            values["expected_cost"] = lambda: (
                PER * s["cost"] / total if "cost" in s else np.full(len(total), np.nan)
            )
            return {name: values[name]() for name in self.names}

    def _binary(
        self, s: dict[str, np.ndarray], total: np.ndarray, counts: np.ndarray
    ) -> dict[str, Callable[[], np.ndarray]]:
        tp, fp, fn, tn = s["tp"], s["fp"], s["fn"], s["tn"]
        recall_pos, recall_neg = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
        n_pos, n_neg = tp + fn, tn + fp
        return {
            "accuracy": lambda: (tp + tn) / total,
            "precision": lambda: _ratio(tp, tp + fp),
            "recall": lambda: np.where(n_pos > 0, recall_pos, np.nan),
            "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
            "balanced_accuracy": lambda: (
                (recall_pos * (n_pos > 0) + recall_neg * (n_neg > 0))
                / ((n_pos > 0).astype(float) + (n_neg > 0))
            ),
            "log_loss": lambda: s["log_loss"] / total,
            "brier": lambda: s["brier"] / total,
            "roc_auc": lambda: self.rankings[0].roc_auc(counts),
            "pr_auc": lambda: self.rankings[0].average_precision(counts),
        }

    def _multiclass(
        self, s: dict[str, np.ndarray], total: np.ndarray, counts: np.ndarray
    ) -> dict[str, Callable[[], np.ndarray]]:
        tp = np.column_stack([s[f"tp{j}"] for j in range(self.k)])
        pred = np.column_stack([s[f"pred{j}"] for j in range(self.k)])
        true = np.column_stack([s[f"true{j}"] for j in range(self.k)])
        precision, recall, f1 = _ratio(tp, pred), _ratio(tp, true), _ratio(2 * tp, pred + true)
        present = (pred + true) > 0  # scikit-learn averages over labels seen in y_true or y_pred
        in_truth = true > 0

        def macro(x: np.ndarray) -> np.ndarray:
            return (x * present).sum(axis=1) / present.sum(axis=1)

        def weighted(x: np.ndarray) -> np.ndarray:
            return (x * true).sum(axis=1) / true.sum(axis=1)

        def ovr_auc() -> np.ndarray:
            return np.mean(np.column_stack([r.roc_auc(counts) for r in self.rankings]), axis=1)

        return {
            "f1_macro": lambda: macro(f1),
            "precision_macro": lambda: macro(precision),
            "recall_macro": lambda: macro(recall),
            "f1_weighted": lambda: weighted(f1),
            "precision_weighted": lambda: weighted(precision),
            "recall_weighted": lambda: weighted(recall),
            "balanced_accuracy": lambda: (recall * in_truth).sum(axis=1) / in_truth.sum(axis=1),
            "accuracy": lambda: s["correct"] / total,
            "log_loss": lambda: s["log_loss"] / total,
            "roc_auc_ovr": ovr_auc,  # NaN in a resample that misses a class, as scikit-learn refuses it
        }

    def _regression(
        self, s: dict[str, np.ndarray], total: np.ndarray, counts: np.ndarray
    ) -> dict[str, Callable[[], np.ndarray]]:
        ss_tot = s["y2"] - s["y"] ** 2 / total
        return {
            "rmse": lambda: np.sqrt(s["se"] / total),
            "mae": lambda: s["ae"] / total,
            "r2": lambda: np.where(
                ss_tot > 1e-12 * np.maximum(s["y2"], 1e-300), 1 - s["se"] / ss_tot, np.nan
            ),
            "mape": lambda: np.full(len(total), np.nan) if self.non_positive else s["ape"] / total,
            "median_ae": lambda: self._weighted_median(counts),
        }

    def _weighted_median(self, counts: np.ndarray) -> np.ndarray:
        """np.median of the absolute errors of the drawn rows (mean of the two middle ones when even)."""
        cum = np.cumsum(counts[:, self.ae_order], axis=1)
        total = cum[:, -1:]
        low = (cum > np.floor((total - 1) / 2)).argmax(axis=1)
        high = (cum > np.floor(total / 2)).argmax(axis=1)
        return (self.ae_sorted[low] + self.ae_sorted[high]) / 2


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
