"""How a classifier's probabilities become decisions: ONE function, `decide`, for every caller.

The PR check (candidate and production on the holdout), the serving app and the monitor all turn
probabilities into labels here, with the rule stored in the model's artifact metadata:

- binary with `evaluation.costs`: P(positive) >= a threshold chosen by cost on a validation split
  carved from the training rows (never the holdout), see `choose_threshold`;
- multiclass with a cost matrix: the class of minimum expected cost, sum_t P(t) * cost[t][k];
- otherwise (no rule): the most probable class, as scikit-learn's `predict`.

Regression has no decision rule. `score` (P(positive)) is never changed by a rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gitops_ml.config import CostsConfig, Task
from gitops_ml.evaluation.costs import PER

DEFAULT_THRESHOLD = 0.5


class DecisionRule(BaseModel):
    """The decision rule of one model version, as recorded in its artifact metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["threshold", "min_expected_cost"]
    threshold: float | None = Field(None, description="binary: P(positive) >= threshold decides positive")
    positive_label: int | str | None = Field(None, description="binary: the class the threshold decides")
    cost_matrix: dict[str, dict[str, float]] | None = Field(
        None, description="multiclass: true class -> decided class -> cost (class names as text)"
    )
    validation_rows: int | None = Field(None, description="rows the threshold was chosen on")
    validation_cost: float | None = Field(
        None, description="cost per 1,000 decisions there, at the threshold"
    )
    default_cost: float | None = Field(None, description="cost per 1,000 there at the default 0.5")
    warning: str | None = Field(None, description="e.g. the rule decides every validation row one way")

    def describe(self) -> str:
        """One line for the report and the model card."""
        if self.kind == "min_expected_cost":
            return "the class of minimum expected cost under `evaluation.costs.matrix`"
        text = f"P({self.positive_label}) >= {self.threshold:.3f}"
        if self.validation_rows:
            text += (
                f", chosen by cost on {self.validation_rows:,} validation rows carved from the training data "
                f"(cost per {PER:,} there: {self.validation_cost:.1f} vs {self.default_cost:.1f} at 0.5)"
            )
        return text


def decide(proba: np.ndarray, classes: Sequence[Any] | np.ndarray, rule: DecisionRule | None) -> np.ndarray:
    """The decided class of each row of `proba` (n_rows, n_classes; columns follow `classes`)."""
    labels = np.asarray(classes)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != len(labels):
        raise ValueError(f"probabilities of shape {proba.shape} do not match {len(labels)} classes")
    if rule is None:
        return labels[proba.argmax(axis=1)]
    if rule.kind == "threshold":
        if len(labels) != 2 or rule.threshold is None:
            raise ValueError(f"a threshold rule needs a binary model, got classes {labels.tolist()[:10]}")
        pos = _column(labels, rule.positive_label)
        return labels[np.where(proba[:, pos] >= rule.threshold, pos, 1 - pos)]
    costs = cost_table(rule.cost_matrix or {}, labels)
    return labels[(proba @ costs).argmin(axis=1)]


def decide_binary(
    p_positive: np.ndarray,
    classes: Sequence[Any] | np.ndarray,
    positive_label: Any,
    rule: DecisionRule | None,
) -> np.ndarray:
    """`decide` when only P(positive) is known (what the prediction store keeps for binary models)."""
    labels = np.asarray(classes)
    p = np.asarray(p_positive, dtype=float)
    pos = _column(labels, positive_label)
    proba = np.empty((len(p), 2))
    proba[:, pos], proba[:, 1 - pos] = p, 1.0 - p
    return decide(proba, labels, rule)


def cost_table(matrix: dict[str, dict[str, float]], classes: Sequence[Any] | np.ndarray) -> np.ndarray:
    """cost[true][decided] as an array over `classes` (pairs not listed cost 0)."""
    names = [str(c) for c in np.asarray(classes).tolist()]
    text = {str(t): {str(p): float(v) for p, v in row.items()} for t, row in matrix.items()}
    return np.array([[text.get(t, {}).get(p, 0.0) for p in names] for t in names])


def rule_for(task: Task, costs: CostsConfig | None) -> DecisionRule | None:
    """The rule that needs no data: multiclass with a cost matrix; None for every other case."""
    if task != "multiclass" or costs is None or not costs.matrix:
        return None
    matrix = {str(t): {str(p): float(v) for p, v in row.items()} for t, row in costs.matrix.items()}
    return DecisionRule(kind="min_expected_cost", cost_matrix=matrix)


def choose_threshold(
    is_positive: np.ndarray, p_positive: np.ndarray, positive_label: Any, costs: CostsConfig
) -> DecisionRule:
    """The threshold on P(positive) of lowest total cost on these (validation) rows.

    Candidates are 0, 1 and the midpoints between neighbouring distinct scores, so the threshold
    never sits on a validation row's own score; among equally cheap thresholds the one nearest
    0.5 wins. The rule says (in `warning`) when it decides every row one way.
    """
    truth = np.asarray(is_positive, dtype=bool)
    p = np.asarray(p_positive, dtype=float)
    if len(p) == 0 or truth.all() or not truth.any():
        raise ValueError("choosing a threshold needs validation rows of both classes")
    c = {
        k: float(getattr(costs, k) or 0.0)
        for k in ("true_positive", "false_negative", "false_positive", "true_negative")
    }
    distinct = np.unique(p)
    candidates = np.unique(
        np.concatenate([[0.0, DEFAULT_THRESHOLD, 1.0], (distinct[1:] + distinct[:-1]) / 2])
    )
    totals = _total_costs(truth, p, candidates, c)
    best = np.flatnonzero(totals == totals.min())
    pick = int(best[np.argmin(np.abs(candidates[best] - DEFAULT_THRESHOLD))])
    threshold = float(candidates[pick])
    n = len(p)
    default = float(_total_costs(truth, p, np.array([DEFAULT_THRESHOLD]), c)[0])
    decided_positive = int((p >= threshold).sum())
    warning = None
    if decided_positive in (0, n):
        which = "positive" if decided_positive == n else "negative"
        warning = (
            f"the cost-chosen threshold {threshold:.3f} decides every one of the {n:,} validation rows "
            f"{which}: with these costs no threshold does better than always deciding {which}; "
            "check evaluation.costs"
        )
    return DecisionRule(
        kind="threshold",
        threshold=threshold,
        positive_label=_plain(positive_label),
        validation_rows=n,
        validation_cost=PER * float(totals[pick]) / n,
        default_cost=PER * default / n,
        warning=warning,
    )


def one_way_note(y_pred: np.ndarray, what: str) -> str | None:
    """A report line when every decision is the same class (None otherwise, or with no rows)."""
    values = np.unique(np.asarray(y_pred).astype(str))
    if len(y_pred) == 0 or len(values) != 1:
        return None
    return f"{what} decides every one of the {len(y_pred):,} rows '{values[0]}'"


def _total_costs(truth: np.ndarray, p: np.ndarray, thresholds: np.ndarray, c: dict[str, float]) -> np.ndarray:
    pos, neg = np.sort(p[truth]), np.sort(p[~truth])
    pos_decided = len(pos) - np.searchsorted(pos, thresholds, side="left")  # rows with p >= t
    neg_decided = len(neg) - np.searchsorted(neg, thresholds, side="left")
    return (
        c["true_positive"] * pos_decided
        + c["false_negative"] * (len(pos) - pos_decided)
        + c["false_positive"] * neg_decided
        + c["true_negative"] * (len(neg) - neg_decided)
    )


def _column(labels: np.ndarray, positive_label: Any) -> int:
    # matched as text: the label made a JSON round trip through the artifact metadata (a plain loop:
    # serving calls this per request, and numpy's string conversion costs ~20 us)
    wanted = str(positive_label)
    matches = [i for i, label in enumerate(labels.tolist()) if str(label) == wanted]
    if len(matches) != 1:
        raise ValueError(
            f"positive label {positive_label!r} is not one of the classes {labels.tolist()[:10]}"
        )
    return int(matches[0])


def _plain(value: Any) -> int | str:
    item = value.item() if isinstance(value, np.generic) else value
    return item if isinstance(item, int | str) and not isinstance(item, bool) else str(item)
