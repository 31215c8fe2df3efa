"""Promotion runs every blocking check the PR check runs, deepchecks included, or refuses.

The attack (H3): with a blocking deepchecks condition that fails, pr-check exited 1 while
`promote` (which defaulted to --no-deepchecks, and whose gate turned "nothing ran" into a pass)
exited 0 reporting "deepchecks: pass", so a red PR merged anyway reached production.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_ml.cli import main
from tests.flows.conftest import git, update_config

# pps < 0 never holds: the blocking condition fails on any data
FAILING_BLOCKING_CHECK = {
    "check": "FeatureLabelCorrelation",
    "blocking": True,
    "conditions": {"add_condition_feature_pps_less_than": {"threshold": 0.0}},
}


def _deepchecks_gate(report_dir: Path) -> dict:
    summary = json.loads((report_dir / "summary.json").read_text())
    return next(g for g in summary["gates"] if g["name"] == "deepchecks")


@pytest.mark.slow  # deepchecks runs three times
def test_a_failing_blocking_deepchecks_condition_refuses_promotion(mini_repo: Path) -> None:
    update_config(
        mini_repo,
        "evaluation",
        {
            "deepchecks": {
                "data_integrity": {"checks": [FAILING_BLOCKING_CHECK]},
                "train_test_validation": {"checks": []},
                "model_evaluation": {"checks": []},
            }
        },
    )
    update_config(mini_repo, "gates", {"fail_on_blocking_deepchecks": True})
    git(mini_repo, "commit", "-qam", "a blocking check that fails")

    assert main(["pr-check"]) == 1
    assert _deepchecks_gate(mini_repo / "reports/pr")["status"] == "fail"

    # promotion re-runs the same checks and refuses; nothing is published, no pointer is written
    assert main(["promote", "--commit"]) == 1
    gate = _deepchecks_gate(mini_repo / "reports/promote")
    assert gate["status"] == "fail" and "FeatureLabelCorrelation" in gate["reason"]
    assert not (mini_repo / "deploy/production.yaml").exists()
    report = (mini_repo / "reports/promote/report.md").read_text()
    assert "❌" in report.splitlines()[0]

    # skipping deepchecks cannot make it pass: a blocking check that did not run fails the gate
    assert main(["promote", "--no-deepchecks", "--commit"]) == 1
    gate = _deepchecks_gate(mini_repo / "reports/promote")
    assert gate["status"] == "fail" and "did not run" in gate["reason"]
    assert "Not run" in (mini_repo / "reports/promote/report.md").read_text()
    assert not (mini_repo / "deploy/production.yaml").exists()

    # the unprivileged half of the deploy workflow refuses the same way
    assert main(["promote", "--check-only", "--no-deepchecks"]) == 1
    assert "Promote model" not in git(mini_repo, "log", "-1", "--format=%s")
