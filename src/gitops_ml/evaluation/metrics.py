"""The metric registry and the point estimates: ONE set of names, directions and definitions.

Every metric the project knows is declared once in `METRICS`, per task: its direction, whether it
needs predicted probabilities, and when it is defined at all. The PR check, the gates, promotion
(which records these values in the production pointer) and the monitor all read this registry,
so a name means the same number everywhere. Point estimates come straight from scikit-learn so
every reported number is the familiar one; `bootstrap.py` re-implements them vectorised for the
resamples and is tested against these.

Undefined values are NaN with a reason (see `metric_notes`), never an exception, and follow one
rule: when the DATA make a metric meaningless (no positive rows for recall or PR AUC, one class
for ROC AUC, a constant target for R², a non-positive target for MAPE) it is NaN; when the MODEL
is degenerate (it predicts no positive row, so precision is 0/0) it is 0, scikit-learn's
`zero_division=0`, so a gate reads it as bad rather than as missing.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gitops_ml.config import CostsConfig, Task
from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.costs import PER, check_costs, row_costs
from gitops_ml.evaluation.decision import DecisionRule, decide

if TYPE_CHECKING:
    import pandas as pd


class _SklearnMetrics:
    """sklearn.metrics, imported on first use: `config check` reads this registry and must stay
    well under a second, while importing scikit-learn alone takes seconds on a busy machine."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("sklearn.metrics"), name)


skm = _SklearnMetrics()

Direction = Literal["higher", "lower"]
# The range a metric lives in, so a chart never mixes ranges on one axis or draws R² above 1:
# unit = [0, 1]; at_most_one = (-inf, 1]; non_negative = [0, inf); target = the target's units;
# cost = the unit of evaluation.costs, either sign.
Scale = Literal["unit", "at_most_one", "non_negative", "target", "cost"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class MetricSpec:
    """One metric of one task, as `config check`, the report and the gates need to know it."""

    name: str
    direction: Direction
    description: str
    scale: Scale = "unit"
    needs_probabilities: bool = False
    needs_positive_target: bool = False  # MAPE: divides by the target
    needs_costs: bool = False  # expected_cost: only with evaluation.costs

    @property
    def valid_when(self) -> str:
        """When the metric has a value, in words (for docs and `config check` messages)."""
        conditions = []
        if self.needs_probabilities:
            conditions.append("the model gives probabilities")
        if self.needs_positive_target:
            conditions.append("every target value is > 0")
        if self.needs_costs:
            conditions.append("`evaluation.costs` is set")
        return " and ".join(conditions) or "always"


def _spec(
    name: str, direction: Direction, description: str, scale: Scale = "unit", **kwargs: bool
) -> tuple[str, MetricSpec]:
    return name, MetricSpec(name, direction, description, scale, **kwargs)


_COST_TEXT = "cost of the decisions per 1,000 rows, from `evaluation.costs`"

# `pr_auc` is average precision (scikit-learn's step-wise area under the precision-recall curve,
# no interpolation). It keeps this name because every recorded production pointer and gate uses it.
METRICS: Mapping[Task, Mapping[str, MetricSpec]] = {
    "binary": dict(
        [
            _spec("roc_auc", "higher", "area under the ROC curve", needs_probabilities=True),
            _spec("pr_auc", "higher", "average precision of the positive class", needs_probabilities=True),
            _spec("f1", "higher", "F1 of the positive class"),
            _spec("precision", "higher", "precision of the positive class"),
            _spec("recall", "higher", "recall of the positive class"),
            _spec(
                "log_loss", "lower", "cross-entropy of P(positive)", "non_negative", needs_probabilities=True
            ),
            _spec("brier", "lower", "mean squared error of P(positive)", needs_probabilities=True),
            _spec("accuracy", "higher", "share of rows predicted right"),
            _spec("balanced_accuracy", "higher", "mean of the recall of both classes"),
            _spec("expected_cost", "lower", _COST_TEXT, "cost", needs_costs=True),
        ]
    ),
    "multiclass": dict(
        [
            _spec("f1_macro", "higher", "F1 averaged over classes"),
            _spec("accuracy", "higher", "share of rows predicted right"),
            _spec(
                "log_loss",
                "lower",
                "cross-entropy of the class probabilities",
                "non_negative",
                needs_probabilities=True,
            ),
            _spec(
                "roc_auc_ovr",
                "higher",
                "ROC AUC one-vs-rest, averaged over classes",
                needs_probabilities=True,
            ),
            _spec("balanced_accuracy", "higher", "recall averaged over the classes in y_true"),
            _spec("precision_macro", "higher", "precision averaged over classes"),
            _spec("recall_macro", "higher", "recall averaged over classes"),
            _spec("precision_weighted", "higher", "precision averaged over classes, weighted by support"),
            _spec("recall_weighted", "higher", "recall averaged over classes, weighted by support"),
            _spec("f1_weighted", "higher", "F1 averaged over classes, weighted by support"),
            _spec("expected_cost", "lower", _COST_TEXT, "cost", needs_costs=True),
        ]
    ),
    "regression": dict(
        [
            _spec("rmse", "lower", "root mean squared error", "target"),
            _spec("mae", "lower", "mean absolute error", "target"),
            _spec("r2", "higher", "coefficient of determination (at most 1)", "at_most_one"),
            _spec(
                "mape",
                "lower",
                "mean absolute percentage error (a fraction)",
                "non_negative",
                needs_positive_target=True,
            ),
            _spec("median_ae", "lower", "median absolute error", "target"),
            _spec("expected_cost", "lower", _COST_TEXT, "cost", needs_costs=True),
        ]
    ),
}

# Read-only views of the registry for callers that only need names or directions.
TASK_METRICS: Mapping[Task, tuple[str, ...]] = {task: tuple(specs) for task, specs in METRICS.items()}
METRIC_DIRECTION: Mapping[str, Direction] = {
    name: spec.direction for specs in METRICS.values() for name, spec in specs.items()
}
METRIC_SCALE: Mapping[str, Scale] = {
    name: spec.scale for specs in METRICS.values() for name, spec in specs.items()
}


def metric_names(task: Task) -> list[str]:
    """Every metric name valid for `task`, in report order (what `config check` lists)."""
    if task not in METRICS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    return list(METRICS[task])


def metric_spec(task: Task, name: str, *, field: str = "evaluation.metrics") -> MetricSpec:
    """The spec of one metric; a name the task does not have is a ConfigError naming `field`."""
    try:
        return METRICS[task][name]
    except KeyError:
        raise ConfigError(
            f"{field}: '{name}' is not a {task} metric (valid: {', '.join(metric_names(task))})"
        ) from None


def direction_sign(metric: str) -> float:
    """+1 when higher is better, -1 when lower is better: `sign * delta > 0` means improvement."""
    return 1.0 if METRIC_DIRECTION[metric] == "higher" else -1.0


@dataclass(frozen=True, eq=False)
class Predictions:
    """One model's output on one set of rows, row-aligned with `y_true`.

    y_score: binary -> P(positive) as a 1-D array; multiclass -> 2-D probabilities whose
    columns follow `classes`; regression -> None. A classifier's y_score may be None when only
    the predicted labels are known (the monitor for multiclass): metrics that need
    probabilities then refuse to compute.
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None
    task: Task
    classes: np.ndarray | None = None
    positive_label: Any = None
    costs: CostsConfig | None = None  # enables expected_cost

    def __post_init__(self) -> None:
        if self.task not in METRICS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {list(TASKS)}")
        y_true = np.asarray(self.y_true)
        y_pred = np.asarray(self.y_pred)
        object.__setattr__(self, "y_true", y_true)
        object.__setattr__(self, "y_pred", y_pred)
        n = len(y_true)
        if y_true.ndim != 1 or y_pred.shape != (n,):
            raise ValueError(
                f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}"
            )
        if self.task == "regression":
            if self.y_score is not None:
                raise ValueError("regression predictions carry no y_score")
            object.__setattr__(self, "y_true", y_true.astype(float))
            object.__setattr__(self, "y_pred", y_pred.astype(float))
            return
        if self.classes is not None:
            object.__setattr__(self, "classes", np.asarray(self.classes))
        score = None if self.y_score is None else np.asarray(self.y_score, dtype=float)
        object.__setattr__(self, "y_score", score)
        if self.task == "binary":
            if score is not None and score.shape != (n,):
                raise ValueError(f"binary y_score must be 1-D P(positive) of length {n}, got {score.shape}")
            if self.positive_label is None:
                raise ValueError("binary predictions need positive_label")
            return
        if self.classes is None:
            raise ValueError("multiclass predictions need classes")
        if score is not None and score.shape != (n, len(self.classes)):
            raise ValueError(
                f"multiclass y_score must be (n_rows, n_classes) = ({n}, {len(self.classes)}), got {score.shape}"
            )
        known = set(self.classes.tolist())
        for what, labels in (("y_true", y_true), ("y_pred", y_pred)):
            unknown = sorted(set(np.unique(labels).tolist()) - known, key=str)
            if unknown:
                raise ValueError(f"{what} has labels the model never saw: {unknown[:5]}")

    def __len__(self) -> int:
        return len(self.y_true)

    @property
    def is_positive(self) -> np.ndarray:
        """Binary only: boolean truth vector (y_true == positive_label)."""
        return self.y_true == self.positive_label

    @property
    def predicted_positive(self) -> np.ndarray:
        return self.y_pred == self.positive_label

    def subset(self, mask_or_index: np.ndarray) -> Predictions:
        """The same predictions restricted to some rows (a boolean mask or integer positions)."""
        return Predictions(
            y_true=self.y_true[mask_or_index],
            y_pred=self.y_pred[mask_or_index],
            y_score=None if self.y_score is None else self.y_score[mask_or_index],
            task=self.task,
            classes=self.classes,
            positive_label=self.positive_label,
            costs=self.costs,
        )

    def with_costs(self, costs: CostsConfig | None) -> Predictions:
        """The same predictions, priced with `costs` (None removes them); costs that do not fit
        the task or name a class the model does not know are a ConfigError."""
        check_costs(self.task, costs, None if self.classes is None else self.classes.tolist())
        return replace(self, costs=costs)

    def row_costs(self) -> np.ndarray:
        """What each row's decision cost under `costs` (ValueError when there are none)."""
        if self.costs is None:
            raise ValueError("these predictions carry no costs")
        return row_costs(self.task, self.costs, self.y_true, self.y_pred, self.positive_label)


def positive_class(classes: np.ndarray, positive_label: Any) -> int:
    """Column of the positive class among a binary model's classes (matched by value).

    `positive_label=None` means the second class, scikit-learn's own convention.
    """
    classes = np.asarray(classes)
    if len(classes) != 2:
        raise ConfigError(
            f"dataset.task: 'binary' but the model learned {len(classes)} classes: {classes.tolist()[:10]}"
        )
    if positive_label is None:
        return 1
    matches = np.flatnonzero(classes == positive_label)
    if len(matches) != 1:
        raise ConfigError(
            f"dataset.positive_label: {positive_label!r} is not one of the model's classes {classes.tolist()}"
        )
    return int(matches[0])


def predict(
    pipeline: Any,
    X: pd.DataFrame,
    y_true: Any,
    task: Task,
    positive_label: Any = None,
    decision: DecisionRule | None = None,
) -> Predictions:
    """Score a fitted pipeline on X; for binary, take the probability column of `positive_label`.

    Classifiers decide with `decision` (the model's stored rule; None = the most probable class).
    """
    y_true = np.asarray(y_true)
    if task == "regression":
        return Predictions(y_true=y_true, y_pred=np.asarray(pipeline.predict(X)), y_score=None, task=task)
    proba = np.asarray(pipeline.predict_proba(X), dtype=float)
    classes = np.asarray(pipeline.classes_)
    y_pred = decide(proba, classes, decision)
    if task == "multiclass":
        return Predictions(y_true=y_true, y_pred=y_pred, y_score=proba, task=task, classes=classes)
    column = positive_class(classes, positive_label)
    return Predictions(
        y_true=y_true,
        y_pred=y_pred,
        y_score=proba[:, column],
        task=task,
        classes=classes,
        positive_label=classes[column],
    )


def resolve_metrics(
    task: Task, metrics: Sequence[str] | None, *, field: str = "evaluation.metrics"
) -> list[str]:
    """The metric names to compute; unknown names (all of them at once) are a ConfigError naming `field`."""
    available = metric_names(task)
    if metrics is None:
        return available
    unknown = [m for m in metrics if m not in METRICS[task]]
    if unknown:
        raise ConfigError(
            f"{field}: {unknown} not available for a {task} task (valid: {', '.join(available)})"
        )
    return list(dict.fromkeys(metrics))


def applicable_metrics(preds: Predictions, metrics: Sequence[str] | None) -> list[str]:
    """The names to compute for these predictions: the ones asked for, or when none were asked
    for, every metric of the task that these rows can have (no MAPE for a target <= 0, nothing
    that needs probabilities when there are none)."""
    names = resolve_metrics(preds.task, metrics)
    if metrics is not None:
        return names
    specs = METRICS[preds.task]
    return [
        m
        for m in names
        if not (specs[m].needs_probabilities and preds.y_score is None)
        and not (specs[m].needs_positive_target and _has_non_positive(preds.y_true))
        and not (specs[m].needs_costs and preds.costs is None)
    ]


def metric_notes(preds: Predictions, metrics: Sequence[str] | None = None) -> dict[str, str]:
    """Why a metric is undefined (NaN) on these rows; metrics that are fine are absent."""
    names = resolve_metrics(preds.task, metrics)
    n = len(preds)
    if n == 0:
        return dict.fromkeys(names, "no rows")
    wanted = set(names)
    notes: dict[str, str] = {}
    if preds.costs is None:
        notes["expected_cost"] = "undefined: evaluation.costs is not set"
    if preds.task == "binary":
        n_pos = int(preds.is_positive.sum())
        n_neg = n - n_pos
        if n_pos == 0 or n_neg == 0:
            notes["roc_auc"] = f"undefined: y_true has one class only ({n_pos} positive, {n_neg} negative)"
        if n_pos == 0:
            notes["pr_auc"] = "undefined: y_true has no positive rows"
            notes["recall"] = "undefined: y_true has no positive rows"
    elif preds.task == "multiclass":
        assert preds.classes is not None  # multiclass predictions always carry their classes
        absent = [c for c in preds.classes.tolist() if not np.any(preds.y_true == c)]
        if absent:
            shown = ", ".join(map(str, absent[:5]))
            notes["roc_auc_ovr"] = f"undefined: class(es) {shown} absent from y_true"
    else:
        if np.ptp(preds.y_true) == 0:
            notes["r2"] = "undefined: y_true is constant"
        if _has_non_positive(preds.y_true):
            low = float(np.min(preds.y_true))
            notes["mape"] = f"undefined: the target has values <= 0 (min {low:g}); MAPE divides by it"
    return {m: note for m, note in notes.items() if m in wanted}


def compute_metrics(preds: Predictions, metrics: Sequence[str] | None = None) -> dict[str, float]:
    """Metric name -> value (scikit-learn definitions); undefined metrics are NaN, see `metric_notes`.

    `metrics=None` means every metric these predictions can have (`applicable_metrics`).
    """
    names = applicable_metrics(preds, metrics)
    require_probabilities(preds, names)
    notes = metric_notes(preds, names)
    out: dict[str, float] = {}
    with warnings.catch_warnings():
        # scikit-learn warns where this module's rule already decided (zero_division, a class
        # only in y_pred); the decision is documented above, a warning per segment is noise.
        warnings.simplefilter("ignore", UserWarning)
        for name in names:
            out[name] = float("nan") if name in notes else float(_SKLEARN[preds.task][name](preds))
    return out


@dataclass(frozen=True)
class ClassMetrics:
    """One row of the per-class table (classification)."""

    label: Any
    support: int
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN (recall of a class with no row) is None."""
        label = self.label.item() if isinstance(self.label, np.generic) else self.label
        values = {"precision": self.precision, "recall": self.recall, "f1": self.f1}
        return {
            "label": label,
            "support": self.support,
            **{k: None if np.isnan(v) else v for k, v in values.items()},
        }


def per_class_metrics(preds: Predictions) -> list[ClassMetrics]:
    """Support, precision, recall and F1 of every class the model knows (largest support first).

    A class with no row in y_true has support 0 and recall NaN (nothing to recall), per the rule
    in the module docstring.
    """
    if preds.task == "regression":
        raise ValueError("per-class metrics are for classification tasks")
    classes = (
        np.asarray(preds.classes)
        if preds.classes is not None
        else np.unique(np.r_[preds.y_true, preds.y_pred])
    )
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        preds.y_true, preds.y_pred, labels=classes, zero_division=0
    )
    rows = [
        ClassMetrics(
            label=label,
            support=int(n),
            precision=float(p),
            recall=float(r) if n > 0 else float("nan"),
            f1=float(f),
        )
        for label, p, r, f, n in zip(classes, precision, recall, f1, support, strict=True)
    ]
    return sorted(rows, key=lambda row: -row.support)


def _has_non_positive(y: np.ndarray) -> bool:
    return bool(len(y)) and bool(np.any(np.asarray(y, dtype=float) <= 0))


def require_probabilities(preds: Predictions, names: Sequence[str]) -> None:
    if preds.y_score is not None:
        return
    needing = [m for m in names if METRICS[preds.task][m].needs_probabilities]
    if needing:
        raise ConfigError(
            f"{', '.join(needing)} need predicted probabilities, and these {preds.task} predictions carry "
            "only labels; choose a metric that needs none"
        )


def _sorted_proba(p: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) with the columns in sorted label order."""
    assert p.classes is not None and p.y_score is not None  # callers check the task has probabilities
    order = np.argsort(p.classes, kind="stable")
    return p.y_score[:, order], p.classes[order]


def _binary(name: str, **kwargs: Any) -> Any:
    return lambda p: getattr(skm, name)(p.is_positive, p.predicted_positive, **kwargs)


def _multi(name: str, **kwargs: Any) -> Any:
    return lambda p: getattr(skm, name)(p.y_true, p.y_pred, **kwargs)


_SKLEARN: dict[str, dict[str, Any]] = {
    "binary": {
        "roc_auc": lambda p: skm.roc_auc_score(p.is_positive, p.y_score),
        "pr_auc": lambda p: skm.average_precision_score(p.is_positive, p.y_score),
        "f1": _binary("f1_score", zero_division=0),
        "precision": _binary("precision_score", zero_division=0),
        "recall": _binary("recall_score", zero_division=0),
        "accuracy": _binary("accuracy_score"),
        "balanced_accuracy": _binary("balanced_accuracy_score"),
        "log_loss": lambda p: skm.log_loss(p.is_positive, p.y_score, labels=[False, True]),
        "brier": lambda p: skm.brier_score_loss(p.is_positive, p.y_score, pos_label=True),
        "expected_cost": lambda p: PER * float(np.mean(p.row_costs())),
    },
    "multiclass": {
        "f1_macro": _multi("f1_score", average="macro", zero_division=0),
        "accuracy": _multi("accuracy_score"),
        # scikit-learn reads probability columns in sorted label order: sort ours to match
        "log_loss": lambda p: skm.log_loss(p.y_true, _sorted_proba(p)[0], labels=_sorted_proba(p)[1]),
        "roc_auc_ovr": lambda p: skm.roc_auc_score(
            p.y_true, _sorted_proba(p)[0], multi_class="ovr", average="macro", labels=_sorted_proba(p)[1]
        ),
        "balanced_accuracy": _multi("balanced_accuracy_score"),
        "precision_macro": _multi("precision_score", average="macro", zero_division=0),
        "recall_macro": _multi("recall_score", average="macro", zero_division=0),
        "precision_weighted": _multi("precision_score", average="weighted", zero_division=0),
        "recall_weighted": _multi("recall_score", average="weighted", zero_division=0),
        "f1_weighted": _multi("f1_score", average="weighted", zero_division=0),
        "expected_cost": lambda p: PER * float(np.mean(p.row_costs())),
    },
    "regression": {
        "rmse": lambda p: skm.root_mean_squared_error(p.y_true, p.y_pred),
        "mae": lambda p: skm.mean_absolute_error(p.y_true, p.y_pred),
        "r2": lambda p: skm.r2_score(p.y_true, p.y_pred),
        "mape": lambda p: skm.mean_absolute_percentage_error(p.y_true, p.y_pred),
        "median_ae": lambda p: skm.median_absolute_error(p.y_true, p.y_pred),
        "expected_cost": lambda p: PER * float(np.mean(p.row_costs())),
    },
}


def metrics_table_markdown(task: Task) -> str:
    """The task's metrics as a markdown table (docs and `config check` messages show this)."""
    rows = ["| metric | better | valid when | what |", "| --- | --- | --- | --- |"]
    for spec in METRICS[task].values():
        rows.append(f"| `{spec.name}` | {spec.direction} | {spec.valid_when} | {spec.description} |")
    return "\n".join(rows)
