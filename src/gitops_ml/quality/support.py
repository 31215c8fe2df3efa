"""Which deepchecks checks apply to which task and work with our deepchecks environment (no import).

`config check` refuses a check listed here with the reason, before anything is trained: otherwise it
errors 30 s into a PR check and, when blocking, turns the verdict to FAIL.

The table is measured, not written by hand: `deepchecks_runner.py catalogue` runs every check on
small seeded data of each task, with static predictions as the PR check hands them over, in the
locked deepchecks environment, and records deepchecks' own reason for each failure
(`deepchecks_catalogue.json`, "tasks"; a test regenerates it and compares). Checks that need the
live model object are refused for every task (LIVE_MODEL_CHECKS).
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops_ml.quality.deepchecks_suites import LIVE_MODEL_CHECKS, catalogue

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class CheckSupport:
    check: str
    task: str
    reason: str | None  # None: the check applies and runs

    @property
    def supported(self) -> bool:
        return self.reason is None


def check_support(check: str, task: str) -> str | None:
    """Why `check` cannot run for `task`, or None when it can (unknown names are checked elsewhere)."""
    info = catalogue()["checks"].get(check)
    if info is None:
        return None
    if not info["in_suite"]:
        return "cannot run in a deepchecks suite (it compares several models)"
    if check in LIVE_MODEL_CHECKS:
        return (
            f"needs the live model object ({LIVE_MODEL_CHECKS[check]}); deepchecks runs in its own environment "
            "and gets predictions, probabilities and feature importances only"
        )
    reason: str | None = info.get("tasks", {}).get(task)
    return reason


def support_table() -> list[CheckSupport]:
    """Every deepchecks check, for every task."""
    return [
        CheckSupport(check, task, check_support(check, task))
        for check in sorted(catalogue()["checks"])
        for task in TASKS
    ]


def unsupported() -> dict[str, dict[str, str]]:
    """check -> task -> reason, for the checks that cannot run for some task."""
    out: dict[str, dict[str, str]] = {}
    for row in support_table():
        if row.reason is not None:
            out.setdefault(row.check, {})[row.task] = row.reason
    return out
