"""Candidate vs production on the same holdout, with the paired bootstrap of `bootstrap.py`.

Paired, both models are scored on the SAME resampled rows in every resample, so the noise they
share cancels in the delta and its interval is much narrower than two independent intervals.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gitops_ml.config import BootstrapConfig, Task
from gitops_ml.evaluation.bootstrap import paired_bootstrap, percentile_interval, undefined_note
from gitops_ml.evaluation.metrics import (
    METRIC_DIRECTION,
    Direction,
    Predictions,
    applicable_metrics,
    compute_metrics,
    direction_sign,
    metric_notes,
)
from gitops_ml.jsonable import finite_or_none

Outcome = Literal["better", "worse", "inconclusive"]


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
            "candidate": finite_or_none(self.candidate),
            "candidate_ci": _clean_pair(self.candidate_ci),
            "production": finite_or_none(self.production),
            "production_ci": _clean_pair(self.production_ci),
            "delta": finite_or_none(self.delta),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
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

    `metrics=None` means every metric of the task these rows can have. Both models must have been scored on the
    same rows in the same order (checked on y_true).
    """
    names = applicable_metrics(candidate, metrics)
    if production is not None:
        _check_paired(candidate, production)
    cand_point = compute_metrics(candidate, names)
    cand_notes = metric_notes(candidate, names)
    prod_point = compute_metrics(production, names) if production is not None else None
    prod_notes = metric_notes(production, names) if production is not None else {}

    models = [candidate] if production is None else [candidate, production]
    draws = paired_bootstrap(models, names, cfg.n_resamples, cfg.seed)

    rows: dict[str, MetricComparison] = {}
    for name in names:
        cand_b = draws[0][name]
        note = cand_notes.get(name) or undefined_note(cand_b, "candidate")
        candidate_ci = percentile_interval(cand_b, cfg.confidence)
        if production is None:
            rows[name] = MetricComparison(
                metric=name,
                direction=METRIC_DIRECTION[name],
                candidate=cand_point[name],
                candidate_ci=candidate_ci,
                note=note,
            )
            continue
        assert prod_point is not None
        prod_b = draws[1][name]
        delta_b = cand_b - prod_b
        delta = cand_point[name] - prod_point[name]
        low, high = percentile_interval(delta_b, cfg.confidence)
        prod_note = prod_notes.get(name) or undefined_note(prod_b, "production")
        rows[name] = MetricComparison(
            metric=name,
            direction=METRIC_DIRECTION[name],
            candidate=cand_point[name],
            candidate_ci=candidate_ci,
            production=prod_point[name],
            production_ci=percentile_interval(prod_b, cfg.confidence),
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


def _check_paired(candidate: Predictions, production: Predictions) -> None:
    if candidate.task != production.task:
        raise ValueError(f"candidate is {candidate.task} but production is {production.task}")
    if len(candidate) != len(production) or not np.array_equal(candidate.y_true, production.y_true):
        raise ValueError(
            "candidate and production were not scored on the same holdout rows "
            f"({len(candidate)} vs {len(production)} rows, or y_true differs); a paired comparison needs both"
        )


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


def _clean_pair(pair: tuple[float, float] | None) -> list[float | None] | None:
    return None if pair is None else [finite_or_none(pair[0]), finite_or_none(pair[1])]
