"""`config check`: every problem at once, each naming file and key path, before any data is read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_ml.cli import main
from gitops_ml.jobs.config_check import check_config
from tests.fixtures.projects import make_config_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_config_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def edit(path: Path, **changes) -> None:
    data = yaml.safe_load(path.read_text()) or {}
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def as_regression(root: Path) -> None:
    """Turn the churn fixture into a regression on tenure_months, leaving every binary metric in place."""
    edit(root / "config" / "dataset.yaml", task="regression", target="tenure_months", positive_label=None)
    features = yaml.safe_load((root / "config" / "features.yaml").read_text())
    features["numeric"].remove("tenure_months")
    features["numeric"].append("churned")
    (root / "config" / "features.yaml").write_text(yaml.safe_dump(features))


def test_fixture_config_passes(project: Path, capsys):
    assert main(["config", "check"]) == 0
    assert "config ok" in capsys.readouterr().out


def test_every_wrong_metric_name_at_once_with_file_key_and_valid_names(project: Path, capsys):
    as_regression(project)
    edit(project / "config" / "evaluation.yaml", metrics=["rmse", "roc_auc", "f1"])
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    expected = [
        "evaluation.yaml: evaluation.primary_metric: 'roc_auc' not a regression metric",
        "evaluation.yaml: evaluation.metrics: 'roc_auc', 'f1' not a regression metric",
        "gates.yaml: gates.minimums: 'roc_auc', 'pr_auc' not a regression metric",
        "gates.yaml: gates.maximums: 'brier' not a regression metric",
        "gates.yaml: gates.max_regression: 'roc_auc', 'pr_auc' not a regression metric",
        "monitoring.yaml: monitoring.performance_metric: 'roc_auc' not a regression metric",
    ]
    for line in expected:
        assert line in err, err
    assert "(valid: rmse, mae, r2" in err


def test_deepchecks_checks_that_cannot_run_for_the_task_are_refused_with_reason(project: Path):
    as_regression(project)
    problems = "\n".join(check_config("config").problems)
    assert (
        "evaluation.deepchecks.train_test_validation.checks[2]: NewLabelTrainTest: does not apply: "
        "Check is irrelevant for regression tasks"
    ) in problems
    assert "evaluation.deepchecks.data_integrity.checks[3]: ConflictingLabels" in problems
    assert "RocReport: does not apply: Check is irrelevant for regression tasks" in problems
    assert "FeatureDrift" not in problems
    assert "TrainTestPerformance" not in problems  # runs for regression in the deepchecks environment


def test_positive_label_against_the_contracts_allowed_values(project: Path):
    contract = project / "data_contracts" / "churn.odcs.yaml"
    text = contract.read_text()
    assert "validValues: [0, 1]" in text
    contract.write_text(text.replace("validValues: [0, 1]", "validValues: ['No', 'Yes']"))
    problems = check_config("config").problems
    assert any(
        "dataset.yaml: dataset.positive_label: 1 is not an allowed value of 'churned'" in p
        and "'No', 'Yes'" in p
        for p in problems
    ), problems
    edit(project / "config" / "dataset.yaml", positive_label="Yes")
    assert check_config("config").ok


def test_shape_errors_and_semantic_errors_are_reported_together(project: Path):
    (project / "config" / "split.yaml").write_text("strategy: sometimes\n")
    edit(project / "config" / "evaluation.yaml", primary_metric="rmse")
    edit(project / "config" / "features.yaml", categorical=["plan", "no_such_column"])
    problems = "\n".join(check_config("config").problems)
    assert "split.yaml: split.strategy" in problems
    assert "evaluation.yaml: evaluation.primary_metric: 'rmse' not a binary metric" in problems
    assert "features.yaml: features.categorical: 'no_such_column' not a column of" in problems


def test_contract_and_manifest_problems_name_the_dataset_key(project: Path):
    (project / "data" / "manifest.yaml").unlink()
    (project / "data_contracts" / "churn.odcs.yaml").write_text("apiVersion: v9\n")
    problems = "\n".join(check_config("config").problems)
    assert "dataset.yaml: dataset.manifest: data/manifest.yaml not found" in problems
    assert "dataset.yaml: dataset.contract:" in problems


@pytest.mark.parametrize("argv", [["validate"], ["config", "show"], ["promote"], ["monitor", "--no-open-pr"]])
def test_every_command_runs_the_check_first(project: Path, capsys, argv: list[str]):
    edit(project / "config" / "evaluation.yaml", primary_metric="rmse")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "evaluation.primary_metric: 'rmse' not a binary metric" in err


@pytest.mark.parametrize("id_column", [None, "absent"])
def test_id_column_is_optional(project: Path, id_column):
    path = project / "config" / "dataset.yaml"
    data = yaml.safe_load(path.read_text())
    if id_column == "absent":
        del data["id_column"]
    else:
        data["id_column"] = None
    path.write_text(yaml.safe_dump(data))
    result = check_config("config")
    assert result.ok, result.problems
    assert result.settings is not None and result.settings.dataset.id_column is None


def test_configuration_reference_page_is_generated_from_the_models(capsys):
    page = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert main(["config", "schema", "--markdown"]) == 0
    generated = capsys.readouterr().out
    assert page.read_text(encoding="utf-8") == generated, "regenerate: gitops-ml config schema --markdown"
    for key in ("`dataset.id_column`", "`split.period`", "`gates.minimums`", "| regression | `rmse`"):
        assert key in generated


def test_time_column_must_be_declared_as_dates_or_integer_periods(project: Path):
    edit(project / "config" / "dataset.yaml", time_column="plan")
    problems = "\n".join(check_config("config").problems)
    assert "dataset.yaml: dataset.time_column: 'plan' is string" in problems
    assert "declared as date or timestamp, or as integer" in problems
    edit(project / "config" / "dataset.yaml", time_column="tenure_months")  # integer: a period number
    assert check_config("config").ok


# --- decision costs and the monitor metric (the metric registry's rules) -------------------------


def test_binary_costs_pass_and_enable_the_expected_cost_gate(project: Path):
    edit(project / "config" / "evaluation.yaml", costs={"false_positive": 5, "false_negative": 50})
    edit(project / "config" / "gates.yaml", max_regression={"expected_cost": 10.0})
    assert check_config("config").problems == ()


def test_costs_of_another_task_and_all_zero_costs_are_named(project: Path):
    edit(project / "config" / "evaluation.yaml", costs={"matrix": {"a": {"b": 1}}, "false_positive": 0})
    problems = check_config("config").problems
    assert any("evaluation.yaml: evaluation.costs.matrix: not a cost of a binary task" in p for p in problems)
    assert any("evaluation.costs: every cost is zero" in p for p in problems), problems


def test_expected_cost_without_costs_is_refused_where_it_is_named(project: Path):
    edit(project / "config" / "gates.yaml", required_improvement={"expected_cost": 1.0})
    problems = check_config("config").problems
    assert any(
        "gates.yaml: gates.required_improvement: 'expected_cost' needs evaluation.costs" in p
        for p in problems
    ), problems


def test_a_cost_matrix_class_the_contract_does_not_allow_is_refused(project: Path):
    from gitops_ml.contracts.model import load_contract

    allowed = load_contract(next((project / "data_contracts").glob("*.yaml"))).column("plan").valid_values
    edit(project / "config" / "dataset.yaml", task="multiclass", target="plan", positive_label=None)
    features = yaml.safe_load((project / "config" / "features.yaml").read_text())
    features["categorical"] = [c for c in features["categorical"] if c != "plan"]
    (project / "config" / "features.yaml").write_text(yaml.safe_dump(features))
    edit(
        project / "config" / "evaluation.yaml",
        primary_metric="f1_macro",
        costs={"matrix": {allowed[0]: {"platinum": 7, allowed[1]: 2}}},
    )
    edit(project / "config" / "monitoring.yaml", performance_metric="log_loss")
    (project / "config" / "gates.yaml").write_text(yaml.safe_dump({"minimums": {"accuracy": 0.5}}))
    problems = check_config("config").problems
    assert any(
        f"evaluation.costs.matrix.{allowed[0]}.platinum: not a class of the target" in p for p in problems
    ), problems
    assert not any(f"matrix.{allowed[0]}.{allowed[1]}" in p for p in problems)
    assert any(
        "monitoring.yaml: monitoring.performance_metric: 'log_loss' needs class probabilities" in p
        for p in problems
    ), problems


def test_early_warning_metric_that_cannot_be_estimated_is_named_with_its_key(project: Path):
    edit(project / "config" / "monitoring.yaml", early_warning={"metric": "expected_cost"})
    problems = "\n".join(check_config("config").problems)
    assert "monitoring.yaml: monitoring.early_warning.metric: 'expected_cost' needs costs" in problems
    edit(project / "config" / "monitoring.yaml", early_warning={"metric": "rmse"})
    problems = "\n".join(check_config("config").problems)
    assert "monitoring.early_warning.metric: 'rmse' not a binary metric" in problems
    edit(
        project / "config" / "monitoring.yaml",
        early_warning={"metric": "accuracy", "max_calibration_error": 2},
    )
    problems = "\n".join(check_config("config").problems)
    assert "early_warning.max_calibration_error" in problems


def test_a_malformed_or_self_challenging_challenger_pointer_fails_config_check(project: Path, capsys):
    deploy = project / "deploy"
    deploy.mkdir(exist_ok=True)
    production = {"version": "v-1", "artifact_uri": "store/v-1/model.skops", "sha256": "a" * 64}
    (deploy / "production.yaml").write_text(yaml.safe_dump(production))
    challenger = deploy / "challenger.yaml"
    challenger.write_text(
        yaml.safe_dump({**production, "version": "v-2", "sha256": "b" * 64, "fraction": 1.5})
    )
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "challenger.yaml" in err and "fraction" in err, err

    challenger.write_text(yaml.safe_dump(production))  # production itself, as a challenger
    assert main(["config", "check"]) == 2
    assert "is the production version" in capsys.readouterr().err

    challenger.write_text(yaml.safe_dump({**production, "version": "v-2", "sha256": "b" * 64}))
    assert main(["config", "check"]) == 0
