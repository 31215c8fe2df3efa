"""`config check` on decision costs and on the monitor's metric (the metric registry's rules)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
    assert any("gates.yaml: gates.required_improvement: 'expected_cost' needs evaluation.costs" in p
               for p in problems), problems


def test_a_cost_matrix_class_the_contract_does_not_allow_is_refused(project: Path):
    from gitops_ml.contracts.model import load_contract

    allowed = load_contract(next((project / "data_contracts").glob("*.yaml"))).column("plan").valid_values
    edit(project / "config" / "dataset.yaml", task="multiclass", target="plan", positive_label=None)
    features = yaml.safe_load((project / "config" / "features.yaml").read_text())
    features["categorical"] = [c for c in features["categorical"] if c != "plan"]
    (project / "config" / "features.yaml").write_text(yaml.safe_dump(features))
    edit(project / "config" / "evaluation.yaml", primary_metric="f1_macro",
         costs={"matrix": {allowed[0]: {"platinum": 7, allowed[1]: 2}}})
    edit(project / "config" / "monitoring.yaml", performance_metric="log_loss")
    (project / "config" / "gates.yaml").write_text(yaml.safe_dump({"minimums": {"accuracy": 0.5}}))
    problems = check_config("config").problems
    assert any(f"evaluation.costs.matrix.{allowed[0]}.platinum: not a class of the target" in p
               for p in problems), problems
    assert not any(f"matrix.{allowed[0]}.{allowed[1]}" in p for p in problems)
    assert any("monitoring.yaml: monitoring.performance_metric: 'log_loss' needs class probabilities" in p
               for p in problems), problems
