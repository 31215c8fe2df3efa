"""Contract diff: breaking / non-breaking classification, rendering, reading a contract from git."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gitops_ml.contracts.diff import diff_contracts
from gitops_ml.errors import ContractError
from gitops_ml.jobs.contract_diff import load_contract_at_ref
from tests.contracts.conftest import prop


def _props(d):
    return d["schema"][0]["properties"]


def _set_option(column, key, value):
    def fn(d):
        prop(d, column).setdefault("logicalTypeOptions", {})[key] = value

    return fn


def _valid_values(column, values):
    def fn(d):
        prop(d, column)["quality"][0]["arguments"]["validValues"] = values

    return fn


CASES = [
    # (id, mutation, expected [(kind, column, field)])
    ("removed-column", lambda d: _props(d).remove(prop(d, "region")), [("breaking", "region", "column")]),
    (
        "added-required-column",
        lambda d: _props(d).append({"name": "age", "logicalType": "integer", "required": True}),
        [("breaking", "age", "column")],
    ),
    (
        "added-nullable-column",
        lambda d: _props(d).append({"name": "age", "logicalType": "integer"}),
        [("non-breaking", "age", "column")],
    ),
    (
        "type-changed",
        lambda d: prop(d, "support_calls").update(logicalType="number"),
        [("breaking", "support_calls", "logicalType")],
    ),
    (
        "maximum-narrowed",
        _set_option("tenure_months", "maximum", 60),
        [("breaking", "tenure_months", "maximum")],
    ),
    (
        "minimum-raised",
        _set_option("monthly_charges", "minimum", 5),
        [("breaking", "monthly_charges", "minimum")],
    ),
    (
        "maximum-widened",
        _set_option("tenure_months", "maximum", 240),
        [("non-breaking", "tenure_months", "maximum")],
    ),
    (
        "bound-removed",
        lambda d: prop(d, "tenure_months")["logicalTypeOptions"].pop("maximum"),
        [("non-breaking", "tenure_months", "maximum")],
    ),
    ("bound-added", _set_option("plan", "pattern", "^[a-z]+$"), [("breaking", "plan", "pattern")]),
    (
        "allowed-value-removed",
        _valid_values("plan", ["basic", "premium"]),
        [("breaking", "plan", "validValues")],
    ),
    (
        "allowed-value-added",
        _valid_values("plan", ["basic", "standard", "premium", "gold"]),
        [("non-breaking", "plan", "validValues")],
    ),
    (
        "allowed-values-swapped",
        _valid_values("region", ["north", "south", "east", "central"]),
        [("breaking", "region", "validValues"), ("non-breaking", "region", "validValues")],
    ),
    (
        "became-required",
        lambda d: prop(d, "usage_minutes").update(required=True),
        [("breaking", "usage_minutes", "required")],
    ),
    (
        "became-nullable",
        lambda d: prop(d, "support_calls").update(required=False),
        [("non-breaking", "support_calls", "required")],
    ),
    (
        "became-unique",
        lambda d: prop(d, "usage_minutes").update(unique=True),
        [("breaking", "usage_minutes", "unique")],
    ),
    (
        "version-and-description-only",
        lambda d: (d.update(version="1.1.0"), d["description"].update(purpose="Something else.")),
        [("non-breaking", None, "version"), ("non-breaking", None, "description")],
    ),
    (
        "extra-columns-now-allowed",
        lambda d: d["schema"][0]["customProperties"][0].update(value="allow"),
        [("non-breaking", None, "additionalColumns")],
    ),
    (
        "row-count-tightened",
        lambda d: d["schema"][0]["quality"][0].update(mustBeGreaterThan=1000),
        [("breaking", None, "rowCount")],
    ),
    (
        "warning-threshold-tightened",
        lambda d: prop(d, "usage_minutes")["quality"][0].update(mustBeLessThan=5),
        [("non-breaking", "usage_minutes", "nullValues")],
    ),
    (
        "date-pattern-changed",
        lambda d: prop(d, "snapshot_date")["quality"][0]["arguments"].update(
            pattern="^[0-9]{4}-[0-9]{2}-15$"
        ),
        [("breaking", "snapshot_date", "invalidValues")],
    ),
]


@pytest.mark.parametrize(("mutation", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classification(contract, edited, mutation, expected):
    result = diff_contracts(contract, edited(mutation))
    got = sorted((c.kind, c.column, c.field) for c in result.changes)
    assert got == sorted(expected), result.to_text()
    assert result.has_breaking == any(kind == "breaking" for kind, _, _ in expected)
    assert all(c.message for c in result.changes)


def test_reverse_of_a_breaking_change_is_non_breaking(contract, edited):
    narrowed = edited(_set_option("tenure_months", "maximum", 60))
    assert diff_contracts(contract, narrowed).has_breaking
    assert not diff_contracts(narrowed, contract).has_breaking


def test_identical_contracts_have_no_changes(contract):
    result = diff_contracts(contract, contract)
    assert result.changes == [] and not result.has_breaking
    assert "no changes" in result.to_markdown()


def test_renderings(contract, edited):
    def change(d):
        _props(d).remove(prop(d, "region"))
        d["version"] = "2.0.0"

    result = diff_contracts(contract, edited(change))
    md = result.to_markdown()
    assert "1.0.0 → 2.0.0" in md and "| ❌ breaking | `region` |" in md
    assert md.index("breaking") < md.index("non-breaking")  # breaking rows first
    data = json.loads(result.to_json())
    assert data["breaking"] == 1 and data["non_breaking"] == 1
    assert "[breaking] region: column 'region' was removed" in result.to_text()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path, contract_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "data_contracts").mkdir()
    shutil.copy(contract_path, tmp_path / "data_contracts" / "churn.odcs.yaml")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "contract")
    return tmp_path


def test_load_contract_at_ref(repo, contract):
    path = repo / "data_contracts" / "churn.odcs.yaml"
    path.write_text(path.read_text().replace("maximum: 120", "maximum: 60"))  # working tree differs from HEAD
    at_head = load_contract_at_ref("data_contracts/churn.odcs.yaml", "main", repo)
    assert at_head is not None and at_head.column("tenure_months").maximum == 120
    assert at_head.path == "main:data_contracts/churn.odcs.yaml"
    absolute = load_contract_at_ref(path, "HEAD", repo)
    assert absolute is not None and absolute.column_names == contract.column_names


def test_contract_absent_at_ref_is_none(repo):
    assert load_contract_at_ref("data_contracts/other.odcs.yaml", "main", repo) is None


def test_unknown_ref_is_an_error(repo):
    with pytest.raises(ContractError, match="no-such-branch"):
        load_contract_at_ref("data_contracts/churn.odcs.yaml", "no-such-branch", repo)
