"""`gitops-ml pr-check` and `gitops-ml promote` as real Prefect flow runs on a small real repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml

from gitops_ml.cli import main
from gitops_ml.reporting.markdown import GITHUB_COMMENT_LIMIT
from tests.flows.conftest import git, update_config


def read_summary(root: Path, out: str = "reports/pr") -> dict:
    return json.loads((root / out / "summary.json").read_text())


def test_pr_check_without_production_passes_and_writes_one_report(mini_repo: Path):
    code = main(["pr-check", "--no-deepchecks"])
    report = (mini_repo / "reports/pr/report.md").read_text()
    assert code == 0, report[:2000]
    assert report.splitlines()[0].startswith("# ✅") and "PASS" in report.splitlines()[0]
    assert "none yet" in report
    assert "| roc_auc ↑ |" in report and "95% CI" in report
    assert "```mermaid" in report
    assert len(report) < GITHUB_COMMENT_LIMIT
    summary = read_summary(mini_repo)
    assert summary["status"] == "pass" and summary["exit_code"] == 0
    assert summary["comparison"]["has_production"] is False
    ci = summary["comparison"]["metrics"][0]["candidate_ci"]
    assert ci[0] <= summary["comparison"]["metrics"][0]["candidate"] <= ci[1]
    for name in ("model.skops", "metadata.json", "reference.json"):
        assert (mini_repo / "reports/pr/candidate" / name).exists()
    for png in summary["plots"].values():
        assert (mini_repo / "reports/pr" / png).read_bytes()[:4] == b"\x89PNG"
    # the model card preview, linked from the report
    card = (mini_repo / "reports/pr/model-card.md").read_text()
    assert "[model-card.md](model-card.md)" in report
    assert card.startswith(f"# Model card: `{summary['candidate_version']}`")
    assert "## Metrics on the holdout" in card and "## Known limitations" in card


def test_degraded_model_fails_its_gate_against_production(mini_repo: Path):
    assert main(["promote", "--no-deepchecks", "--commit"]) == 0
    pointer = yaml.safe_load((mini_repo / "deploy/production.yaml").read_text())
    assert "Promote model" in git(mini_repo, "log", "-1", "--format=%B")
    # a config PR that degrades the model: a 2-leaf tree
    update_config(
        mini_repo,
        "estimator",
        {
            "class_path": "sklearn.tree.DecisionTreeClassifier",
            "params": {
                "max_leaf_nodes": 2,
                "random_state": 0,
                "max_iter": None,
                "learning_rate": None,
                "l2_regularization": None,
            },
        },
    )
    code = main(["pr-check", "--no-deepchecks"])
    report = (mini_repo / "reports/pr/report.md").read_text()
    assert code == 1, report[:2000]
    assert report.splitlines()[0].startswith("# ❌")
    assert "`max_regression.roc_auc`" in report.split("## Gates")[0]  # named among the failed gates, up top
    summary = read_summary(mini_repo)
    assert summary["production_version"] == pointer["version"]
    roc = next(m for m in summary["comparison"]["metrics"] if m["metric"] == "roc_auc")
    assert roc["delta"] < 0 and roc["ci_low"] <= roc["delta"] <= roc["ci_high"]
    # promotion refuses the degraded candidate and leaves the pointer alone
    assert main(["promote", "--no-deepchecks"]) == 1
    assert yaml.safe_load((mini_repo / "deploy/production.yaml").read_text())["version"] == pointer["version"]


def test_promote_is_idempotent_and_rollback_moves_the_pointer(mini_repo: Path):
    assert main(["promote", "--no-deepchecks"]) == 0
    first = yaml.safe_load((mini_repo / "deploy/production.yaml").read_text())["version"]
    assert main(["promote", "--no-deepchecks"]) == 0  # same commit, data and config: same version, a no-op
    assert len(yaml.safe_load((mini_repo / "deploy/history.yaml").read_text())) == 1
    update_config(mini_repo, "estimator", {"params": {"max_iter": 80}})
    git(mini_repo, "commit", "-qam", "more boosting rounds")
    assert main(["promote", "--no-deepchecks", "--commit"]) == 0
    second = yaml.safe_load((mini_repo / "deploy/production.yaml").read_text())["version"]
    assert second != first
    # the model card is in the pointer commit, one per version
    assert "deploy/model-card.md" in git(mini_repo, "show", "--name-only", "--format=", "HEAD").split()
    card = (mini_repo / "deploy/model-card.md").read_text()
    assert card.startswith(f"# Model card: `{second}`")
    assert main(["rollback", "--commit"]) == 0
    assert yaml.safe_load((mini_repo / "deploy/production.yaml").read_text())["version"] == first
    assert f"Roll back production to {first}" in git(mini_repo, "log", "-1", "--format=%s")
    # the rolled-back version's card (kept with its artifact) comes back in the rollback commit
    assert (mini_repo / "deploy/model-card.md").read_text().startswith(f"# Model card: `{first}`")
    assert "deploy/model-card.md" in git(mini_repo, "show", "--name-only", "--format=", "HEAD").split()
    shown = git(mini_repo, "show", "HEAD~1:deploy/model-card.md")
    assert shown.startswith(f"# Model card: `{second}`")  # the history keeps the card of each version


def test_logistic_regression_from_config_alone(mini_repo: Path):
    update_config(
        mini_repo,
        "estimator",
        {
            "class_path": "sklearn.linear_model.LogisticRegression",
            "params": {
                "max_iter": 1000,
                "C": 0.5,
                "learning_rate": None,
                "max_leaf_nodes": None,
                "l2_regularization": None,
                "random_state": None,
            },
        },
    )
    assert main(["pr-check", "--no-deepchecks"]) == 0
    assert (
        read_summary(mini_repo)["reproducibility"]["estimator"] == "sklearn.linear_model.LogisticRegression"
    )


def test_bad_data_exits_2_with_the_report_naming_column_and_rule(mini_repo: Path):
    batch = max((mini_repo / "data/batches").glob("*.csv"))
    frame = pd.read_csv(batch)
    frame.loc[3, "tenure_months"] = 999
    frame.to_csv(batch, index=False)
    manifest = yaml.safe_load((mini_repo / "data/manifest.yaml").read_text())
    import hashlib

    for entry in manifest["batches"]:
        if entry["uri"].endswith(batch.name):
            entry["sha256"] = hashlib.sha256(batch.read_bytes()).hexdigest()
    (mini_repo / "data/manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    code = main(["pr-check", "--no-deepchecks"])
    report = (mini_repo / "reports/pr/report.md").read_text()
    assert code == 2
    assert report.startswith("# ⛔")
    assert "tenure_months" in report and "maximum" in report and "999" in report
    assert not (mini_repo / "reports/pr/candidate").exists()


def test_sha256_mismatch_is_bad_input(mini_repo: Path):
    batch = min((mini_repo / "data/batches").glob("*.csv"))
    batch.write_bytes(batch.read_bytes().replace(b"basic", b"BASIC", 1))
    code = main(["pr-check", "--no-deepchecks"])
    report = (mini_repo / "reports/pr/report.md").read_text()
    assert code == 2
    assert "sha256" in report and batch.name in report


def _retarget(
    root: Path,
    *,
    target: str,
    task: str,
    class_path: str,
    params: dict,
    gates: dict,
    primary: str,
    drop: list[str],
) -> None:
    """A different task on the same contract: config only, no code."""
    features = yaml.safe_load((root / "config/features.yaml").read_text())
    features["numeric"] = [c for c in features["numeric"] if c not in drop]
    features["categorical"] = [c for c in features["categorical"] if c not in drop]
    (root / "config/features.yaml").write_text(yaml.safe_dump(features, sort_keys=False))
    update_config(root, "dataset", {"target": target, "task": task, "positive_label": None})
    (root / "config/estimator.yaml").write_text(yaml.safe_dump({"class_path": class_path, "params": params}))
    # run with --no-deepchecks, like the fixture: its blocking checks did not run, so waive them
    (root / "config/gates.yaml").write_text(yaml.safe_dump({**gates, "fail_on_blocking_deepchecks": False}))
    segments = [s for s in ("contract_type", "region") if s not in drop]
    # the churn example's deepchecks lists are binary ones, refused by config check for other tasks
    update_config(
        root,
        "evaluation",
        {"primary_metric": primary, "segments": segments, "deepchecks": {"enabled": False}},
    )
    update_config(root, "monitoring", {"performance_metric": primary})


def test_regression_task_from_contract_and_config_only(mini_repo: Path):
    _retarget(
        mini_repo,
        target="monthly_charges",
        task="regression",
        class_path="sklearn.ensemble.HistGradientBoostingRegressor",
        params={"max_iter": 60, "random_state": 0},
        gates={"minimums": {"r2": 0.3}, "maximums": {"rmse": 60.0}, "max_regression": {"rmse": 2.0}},
        primary="rmse",
        drop=["monthly_charges", "total_charges"],
    )
    code = main(["pr-check", "--no-deepchecks"])
    report = (mini_repo / "reports/pr/report.md").read_text()
    assert code == 0, report[:3000]
    assert "| rmse ↓ |" in report and "| r2 ↑ |" in report
    summary = read_summary(mini_repo)
    # every regression metric: the target (monthly charges) is positive, so MAPE is defined
    assert [m["metric"] for m in summary["comparison"]["metrics"]] == [
        "rmse",
        "mae",
        "r2",
        "mape",
        "median_ae",
    ]
    assert "residuals" in summary["plots"]
    assert summary["per_class"] is None
    assert [c["name"] for c in summary["curves"]] == ["residuals", "predicted_vs_actual"]
    assert "## Curves" in report


def test_multiclass_task_from_contract_and_config_only(mini_repo: Path):
    _retarget(
        mini_repo,
        target="plan",
        task="multiclass",
        class_path="sklearn.ensemble.RandomForestClassifier",
        params={"n_estimators": 30, "max_depth": 8, "random_state": 0},
        gates={"minimums": {"accuracy": 0.5}, "maximums": {"expected_cost": 100_000.0}},
        primary="f1_macro",
        drop=["plan"],
    )
    # every error costs; premium customers treated as basic cost most
    matrix = {
        "premium": {"basic": 3, "standard": 1},
        "standard": {"basic": 1, "premium": 1},
        "basic": {"standard": 1, "premium": 1},
    }
    update_config(mini_repo, "evaluation", {"costs": {"matrix": matrix, "unit": "EUR"}})
    code = main(["pr-check", "--no-deepchecks"])
    report = (mini_repo / "reports/pr/report.md").read_text()
    assert code == 0, report[:3000]
    assert "| f1_macro ↑ |" in report and "| roc_auc_ovr ↑ |" in report
    per_class = read_summary(mini_repo)["per_class"]
    assert {row["label"] for row in per_class} <= {"basic", "standard", "premium"} and len(per_class) >= 2
    assert "## Per class (candidate)" in report
    summary = read_summary(mini_repo)
    cost = next(m for m in summary["comparison"]["metrics"] if m["metric"] == "expected_cost")
    assert cost["candidate_ci"][0] <= cost["candidate"] <= cost["candidate_ci"][1]
    assert summary["costs"]["matrix"] == matrix
    assert "premium→basic 3, premium→standard 1, standard→basic 1" in report
    assert any(g["name"] == "maximums.expected_cost" and g["status"] == "pass" for g in summary["gates"])
    assert [c["name"] for c in summary["curves"]] == ["class_recall"]
    # the candidate decides by minimum expected cost, recorded in its metadata for serving
    assert summary["decision"]["kind"] == "min_expected_cost"
    meta = json.loads((mini_repo / "reports/pr/candidate/metadata.json").read_text())
    assert meta["decision"]["cost_matrix"] == matrix
    assert "candidate decides: the class of minimum expected cost" in report


def test_binary_costs_choose_the_threshold_the_artifact_serves_with(mini_repo: Path):
    update_config(mini_repo, "evaluation", {"costs": {"false_positive": 1.0, "false_negative": 9.0}})
    code = main(["pr-check", "--no-deepchecks"])
    report = (mini_repo / "reports/pr/report.md").read_text()
    assert code == 0, report[:3000]
    summary = read_summary(mini_repo)
    rule = summary["decision"]
    assert rule["kind"] == "threshold" and 0 <= rule["threshold"] < 0.5  # a miss costs 9 false alarms
    train_rows = int(re.search(r"train ([\d,]+) rows", summary["data"]["split"]).group(1).replace(",", ""))
    assert rule["validation_rows"] == round(train_rows * 0.2)  # carved from the training rows
    meta = json.loads((mini_repo / "reports/pr/candidate/metadata.json").read_text())
    assert meta["decision"] == rule
    assert f"candidate decides: P(1) >= {rule['threshold']:.3f}, chosen by cost on" in report
    cost = next(c for c in summary["curves"] if c["name"] == "cost")
    assert any(f"decides at {rule['threshold']:.3f}" in name for name in cost["series"])


def test_costs_for_another_task_are_bad_input_before_any_data_is_read(mini_repo: Path):
    update_config(mini_repo, "evaluation", {"costs": {"under_prediction": 2.0}})  # a binary dataset
    code = main(["pr-check", "--no-deepchecks"])
    report = (mini_repo / "reports/pr/report.md").read_text()
    assert code == 2 and report.startswith("# ⛔")
    assert "evaluation.costs.under_prediction: not a cost of a binary task" in report
    assert "no binary costs given" in report
    assert not (mini_repo / "reports/pr/candidate").exists()
    assert read_summary(mini_repo)["data"] == {}  # stopped before acquiring the data
