"""Promotion gates: policy (`config/gates.yaml`) applied to a comparison, one result per rule.

Every gate ends as pass, fail or skipped, with a reason a reviewer can act on. A skipped gate
(no production model yet, nothing to compare segments on, a check switched off) does not
block promotion but is listed, so nothing passes silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from gitops_ml.config import DeepchecksConfig, GatesConfig, SuiteConfig, Task
from gitops_ml.errors import ConfigError
from gitops_ml.evaluation.compare import Comparison, MetricComparison
from gitops_ml.evaluation.metrics import TASK_METRICS, direction_sign
from gitops_ml.evaluation.segments import judge_segment

GateStatus = Literal["pass", "fail", "skipped"]
NO_PRODUCTION = "skipped: no production model yet"
_TOL = 1e-12  # float noise must not fail a gate set at exactly the observed value


@dataclass(frozen=True)
class GateResult:
    """One rule. `passed` is False only for status "fail" (a skipped gate does not block)."""

    name: str  # config path of the rule, e.g. "max_regression.roc_auc"
    passed: bool
    reason: str
    metric: str | None = None
    threshold: float | None = None
    observed: float | None = None
    status: GateStatus = "pass"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    status: Literal["pass", "fail"]
    gates: list[GateResult] = field(default_factory=list)
    headline: str = ""

    @property
    def failures(self) -> list[GateResult]:
        return [g for g in self.gates if g.status == "fail"]

    @property
    def skipped(self) -> list[GateResult]:
        return [g for g in self.gates if g.status == "skipped"]


def validate_gate_metrics(gates_cfg: GatesConfig, task: Task, primary_metric: str) -> None:
    """Raise ConfigError for any metric the task does not have; cheap, so call it before training."""
    available = TASK_METRICS[task]
    problems = []
    if primary_metric not in available:
        problems.append(f"evaluation.primary_metric: '{primary_metric}'")
    for section in ("minimums", "maximums", "max_regression", "required_improvement"):
        for metric in getattr(gates_cfg, section):
            if metric not in available:
                problems.append(f"gates.{section}.{metric}")
    if problems:
        raise ConfigError(
            f"metric not available for a {task} task: {', '.join(problems)} (available: {', '.join(available)})"
        )


def evaluate_gates(
    comparison: Comparison,
    gates_cfg: GatesConfig,
    *,
    primary_metric: str,
    segment_rows: pd.DataFrame | None = None,
    contract_passed: bool,
    contract_failures: Sequence[str] = (),
    blocking_deepchecks: Sequence[str] = (),
    blocking_not_run: Sequence[str] = (),
    blocking_configured: int = 0,
) -> Verdict:
    """Apply every configured gate; the verdict fails if any gate fails.

    segment_rows: the output of `segment_comparison` on `primary_metric` (None = no segments).
    blocking_deepchecks: names of failed deepchecks conditions marked `blocking` in config.
    blocking_not_run: blocking checks that did not run (not run is never a pass: they fail too).
    blocking_configured: how many checks config marks blocking (0: the gate is skipped, not passed).
    See `blocking_deepchecks_outcome` for all three.
    """
    validate_gate_metrics(gates_cfg, comparison.task, primary_metric)
    for section in ("minimums", "maximums", "max_regression", "required_improvement"):
        for metric in getattr(gates_cfg, section):
            if metric == "expected_cost" and metric not in comparison.metrics:
                raise ConfigError(
                    f"gates.{section}.expected_cost: needs evaluation.costs (what a decision costs)"
                )
            if metric not in comparison.metrics:
                raise ConfigError(
                    f"gates.{section}.{metric}: not computed; add it to evaluation.metrics "
                    f"(computed: {', '.join(comparison.metrics)})"
                )
    gates: list[GateResult] = []
    for metric, floor in gates_cfg.minimums.items():
        gates.append(_bound(comparison[metric], floor, "minimums"))
    for metric, ceiling in gates_cfg.maximums.items():
        gates.append(_bound(comparison[metric], ceiling, "maximums"))
    for metric, allowed in gates_cfg.max_regression.items():
        gates.append(_max_regression(comparison, comparison[metric], allowed))
    for metric, amount in gates_cfg.required_improvement.items():
        gates.append(_required_improvement(comparison, comparison[metric], amount))
    if gates_cfg.max_segment_regression is not None:
        gates.append(_segments(comparison, segment_rows, gates_cfg.max_segment_regression, primary_metric))
    gates.append(_contract(gates_cfg.fail_on_contract_violation, contract_passed, list(contract_failures)))
    gates.append(
        _deepchecks(
            gates_cfg.fail_on_blocking_deepchecks,
            list(blocking_deepchecks),
            list(blocking_not_run),
            blocking_configured,
        )
    )
    return _verdict(gates)


def _bound(m: MetricComparison, limit: float, section: str) -> GateResult:
    name = f"{section}.{m.metric}"
    lower = section == "minimums"
    word = "minimum" if lower else "maximum"
    if math.isnan(m.candidate):
        return _fail(
            name,
            f"{m.metric} could not be computed ({m.note or 'undefined'}); {word} is {limit:g}",
            m.metric,
            limit,
            None,
        )
    ok = m.candidate >= limit - _TOL if lower else m.candidate <= limit + _TOL
    ci = _ci(m.candidate_ci, "candidate")
    if ok:
        return _pass(
            name,
            f"{m.metric} {m.candidate:.4f} {'meets' if lower else 'is within'} the {word} {limit:g} {ci}",
            m.metric,
            limit,
            m.candidate,
        )
    side = "below the minimum" if lower else "above the maximum"
    return _fail(name, f"{m.metric} {m.candidate:.4f} is {side} {limit:g} {ci}", m.metric, limit, m.candidate)


def _max_regression(comparison: Comparison, m: MetricComparison, allowed: float) -> GateResult:
    name = f"max_regression.{m.metric}"
    if not comparison.has_production:
        return _skip(name, NO_PRODUCTION, m.metric, allowed)
    if m.delta is None or math.isnan(m.delta):
        return _fail(
            name,
            f"{m.metric} change vs production could not be computed ({m.note or 'undefined'})",
            m.metric,
            allowed,
            None,
        )
    worsening = -direction_sign(m.metric) * m.delta  # > 0 means the candidate is worse
    change = (
        f"{m.metric} {m.production:.4f} -> {m.candidate:.4f}, delta {m.delta:+.4f}, "
        f"{_pct(comparison)} CI of the delta [{m.ci_low:+.4f}, {m.ci_high:+.4f}]"
    )
    if worsening > allowed + _TOL:
        return _fail(
            name,
            f"{m.metric} worse than production by {worsening:.4f} ({change}); "
            f"allowed worsening is {allowed:g}",
            m.metric,
            allowed,
            m.delta,
        )
    return _pass(name, f"{change}; allowed worsening {allowed:g}", m.metric, allowed, m.delta)


def _required_improvement(comparison: Comparison, m: MetricComparison, amount: float) -> GateResult:
    name = f"required_improvement.{m.metric}"
    if not comparison.has_production:
        return _skip(name, NO_PRODUCTION, m.metric, amount)
    if m.ci_low is None or math.isnan(m.ci_low) or m.ci_high is None or math.isnan(m.ci_high):
        return _fail(
            name,
            f"{m.metric} improvement could not be computed ({m.note or 'undefined'})",
            m.metric,
            amount,
            None,
        )
    assert m.delta is not None  # a production exists, so the delta was computed
    sign = direction_sign(m.metric)
    # lower confidence bound of the improvement (sign-adjusted delta)
    lower_bound = m.ci_low if sign > 0 else -m.ci_high
    text = (
        f"{m.metric} improvement {sign * m.delta:+.4f}, {_pct(comparison)} CI lower bound {lower_bound:+.4f}; "
        f"required more than {amount:g}"
    )
    if lower_bound > amount:
        return _pass(name, text, m.metric, amount, lower_bound)
    return _fail(name, f"improvement not shown: {text}", m.metric, amount, lower_bound)


def _segments(comparison: Comparison, rows: pd.DataFrame | None, allowed: float, metric: str) -> GateResult:
    name = "max_segment_regression"
    if not comparison.has_production:
        return _skip(name, NO_PRODUCTION, metric, allowed)
    if rows is None or len(rows) == 0:
        return _skip(name, "skipped: no segment metrics (evaluation.segments is empty)", metric, allowed)
    if "delta" not in rows.columns:
        raise ValueError("segment_rows must come from segment_comparison (it has no 'delta' column)")
    used = rows[rows["metric"] == metric]
    if len(used) == 0:
        raise ValueError(
            f"segment rows were computed for {sorted(set(rows['metric']))}, not the primary metric {metric}"
        )
    evaluated = used[used["delta"].notna()]
    n_skipped = len(used) - len(evaluated)
    skipped_text = f"; {n_skipped} segment(s) too small or undefined, not judged" if n_skipped else ""
    if len(evaluated) == 0:
        return _skip(
            name, f"skipped: every segment was too small or undefined{skipped_text}", metric, allowed
        )
    if "ci_low" not in evaluated.columns:
        raise ValueError("segment_rows must come from segment_comparison (it has no 'ci_low' column)")
    worsening = -direction_sign(metric) * evaluated["delta"].astype(float)
    judged = [
        judge_segment(metric, float(r.delta), float(r.ci_low), float(r.ci_high), allowed)
        for r in evaluated.itertuples()
    ]
    beyond = np.array([b for b, _ in judged], dtype=bool)
    significant = np.array([s for _, s in judged], dtype=bool)
    bad = evaluated[beyond & significant]
    n_noise = int((beyond & ~significant).sum())
    if n_noise:
        skipped_text += (
            f"; {n_noise} segment(s) worse than allowed by the point estimate but not significantly "
            f"(interval includes no change), not failed"
        )
    worst = float(worsening.max())
    if len(bad):
        shown = ", ".join(
            f"{r.column}={r.value} (n={r.n}, {r.production:.4f} -> {r.candidate:.4f}, "
            f"CI of the delta [{r.ci_low:+.4f}, {r.ci_high:+.4f}])"
            for r in bad.assign(w=worsening[bad.index]).sort_values("w", ascending=False).head(5).itertuples()
        )
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        return _fail(
            name,
            f"{metric} worse than production by more than {allowed:g} in {len(bad)} segment(s): "
            f"{shown}{more}{skipped_text}",
            metric,
            allowed,
            worst,
        )
    return _pass(
        name,
        f"{len(evaluated)} segment(s) within {allowed:g} of production on {metric} "
        f"(largest worsening {max(worst, 0.0):.4f}){skipped_text}",
        metric,
        allowed,
        worst,
    )


def _contract(enforced: bool, passed: bool, failures: list[str]) -> GateResult:
    shown = "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
    if passed:
        return _pass("contract", "data contract validation passed")
    if not enforced:
        return _skip(
            "contract",
            f"skipped: contract violations not enforced (gates.fail_on_contract_violation "
            f"is false): {shown or 'violations reported'}",
        )
    return _fail("contract", f"data contract violated: {shown or 'see the contract section'}")


def blocking_deepchecks_outcome(
    cfg: DeepchecksConfig, suites: Mapping[str, Any]
) -> tuple[list[str], list[str], int]:
    """(failed, not run, configured) over the checks config marks `blocking`, as `suite/Check`.

    `suites` maps a suite name to what ran (objects with `.checks` of outcomes having `.check`,
    `.status` and `.blocks`, i.e. quality's SuiteSummary). A blocking check with no outcome at all
    (deepchecks or its suite switched off, the step skipped) or with status not_run is "not run";
    one whose outcome blocks is "failed". Neither ever counts as passed.
    """
    configured = [
        (name, spec.check)
        for name in type(cfg).model_fields
        if isinstance(suite := getattr(cfg, name), SuiteConfig)
        for spec in suite.checks
        if spec.blocking
    ]
    failed: list[str] = []
    not_run: list[str] = []
    for suite_name, check in configured:
        ran = suites.get(suite_name)
        outcomes = [c for c in getattr(ran, "checks", ()) if c.check == check]
        label = f"{suite_name}/{check}"
        if not outcomes or all(c.status == "not_run" for c in outcomes):
            not_run.append(label)
        elif any(c.blocks for c in outcomes):
            failed.append(label)
    return failed, not_run, len(configured)


def _deepchecks(enforced: bool, failures: list[str], not_run: list[str], configured: int) -> GateResult:
    problems = [*failures, *(f"{name} (did not run)" for name in not_run)]
    if not problems:
        if configured == 0:
            return _skip("deepchecks", "skipped: no deepchecks check is marked blocking")
        return _pass("deepchecks", f"all {configured} blocking deepchecks check(s) ran and held")
    shown = ", ".join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
    if not enforced:
        return _skip(
            "deepchecks",
            f"skipped: blocking checks not enforced (gates.fail_on_blocking_deepchecks is false): {shown}",
        )
    if not failures:
        return _fail(
            "deepchecks", f"blocking deepchecks check(s) did not run, and not run is never a pass: {shown}"
        )
    return _fail("deepchecks", f"blocking deepchecks condition(s) failed: {shown}")


def _verdict(gates: list[GateResult]) -> Verdict:
    failed = [g for g in gates if g.status == "fail"]
    skipped = [g for g in gates if g.status == "skipped"]
    skipped_text = f" ({len(skipped)} skipped)" if skipped else ""
    if failed:
        # names only: the reasons follow in the gate table, and a headline must stay one line
        headline = f"FAIL: {len(failed)} of {len(gates)} gates failed{skipped_text}: " + ", ".join(
            g.name for g in failed
        )
    else:
        headline = f"PASS: {len(gates) - len(skipped)} of {len(gates)} gates passed{skipped_text}"
        if any(g.reason == NO_PRODUCTION for g in skipped):
            headline += "; no production model yet, so nothing was compared"
    return Verdict(passed=not failed, status="fail" if failed else "pass", gates=gates, headline=headline)


def _pct(comparison: Comparison) -> str:
    return f"{comparison.confidence:.0%}"


def _ci(pair: tuple[float, float], who: str) -> str:
    if math.isnan(pair[0]):
        return ""
    return f"({who} CI [{pair[0]:.4f}, {pair[1]:.4f}])"


def _decided(
    passed: bool,
    name: str,
    reason: str,
    metric: str | None = None,
    threshold: float | None = None,
    observed: float | None = None,
) -> GateResult:
    return GateResult(name, passed, reason, metric, threshold, observed, "pass" if passed else "fail")


_pass = partial(_decided, True)
_fail = partial(_decided, False)


def _skip(name: str, reason: str, metric: str | None = None, threshold: float | None = None) -> GateResult:
    return GateResult(name, True, reason, metric, threshold, None, "skipped")
