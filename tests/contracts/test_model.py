"""Loading the contract: the committed file, malformed YAML, and files that are not valid ODCS."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gitops_ml.contracts.model import load_contract
from gitops_ml.errors import ContractError
from tests.contracts.conftest import prop

SCHEMA_ORDER = [
    "customer_id", "signup_date", "snapshot_date", "tenure_months", "plan", "contract_type",
    "payment_method", "region", "monthly_charges", "total_charges", "support_calls", "usage_minutes",
    "late_payments", "churned",
]  # fmt: skip


def test_committed_contract_matches_the_schema(contract):
    assert contract.column_names == SCHEMA_ORDER
    assert (contract.api_version, contract.name, contract.table) == ("v3.1.0", "churn", "churn")
    assert contract.primary_key == ["customer_id"]
    assert contract.additional_columns == "forbid"
    cid = contract.column("customer_id")
    assert cid.required and cid.unique and cid.pattern == "^CUST-[0-9]{7}$"
    assert contract.column("plan").valid_values == ("basic", "standard", "premium")
    assert contract.column("churned").valid_values == (0, 1)
    tenure = contract.column("tenure_months")
    assert (tenure.logical_type, tenure.minimum, tenure.maximum) == ("integer", 0, 120)
    nullable = {c.name for c in contract.columns if c.nullable}
    assert nullable == {"payment_method", "total_charges", "usage_minutes"}
    assert contract.column("signup_date").format == "yyyy-MM-dd"
    assert [r.metric for r in contract.quality] == ["rowCount", "duplicateValues"]


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "c.odcs.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_missing_file_is_a_contract_error(tmp_path):
    with pytest.raises(ContractError, match="nope.yaml"):
        load_contract(tmp_path / "nope.yaml")


def test_malformed_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, "apiVersion: v3.1.0\nschema: [\n  - name: churn\n   bad indent: {")
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert str(path) in str(err.value) and "not valid YAML" in str(err.value)


def _mutate(contract_dict, fn):
    import copy

    data = copy.deepcopy(contract_dict)
    fn(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "key_path", "words"),
    [
        (lambda d: d.update(apiVersion="v9.0.0"), "apiVersion", "v9.0.0"),
        (lambda d: d.update(kind="DataProduct"), "kind", "DataProduct"),
        (lambda d: d.pop("schema"), "schema", "is required"),
        (lambda d: d.pop("version"), "version", "is required"),
        (lambda d: prop(d, "plan").update(logicalType="text"), "schema[churn].properties[plan].logicalType", "'text'"),
        (lambda d: prop(d, "plan").pop("name"), "schema[churn].properties[4].name", "is required"),
        (
            lambda d: prop(d, "plan").update(logicalTypeOptions={"enum": ["basic"]}),
            "schema[churn].properties[plan].logicalTypeOptions",
            "invalidValues",
        ),
        (
            lambda d: prop(d, "tenure_months")["logicalTypeOptions"].update(minimum="zero"),
            "schema[churn].properties[tenure_months].logicalTypeOptions.minimum",
            "'zero'",
        ),
        (
            lambda d: prop(d, "region")["quality"][0].update(metric="notAMetric"),
            "schema[churn].properties[region].quality[0].metric",
            "notAMetric",
        ),
        (
            lambda d: prop(d, "region")["quality"][0].pop("mustBe"),
            "schema[churn].properties[region].quality[0]",
            "operator",
        ),
        (
            lambda d: d["schema"][0]["customProperties"][0].update(value="sometimes"),
            "schema[churn].customProperties[0].value",
            "sometimes",
        ),
        (lambda d: prop(d, "customer_id").update(required="yes"), "properties[customer_id].required", "'yes'"),
    ],
    ids=[
        "apiVersion", "kind", "no-schema", "no-version", "unknown-logicalType", "property-without-name",
        "enum-option", "non-numeric-minimum", "unknown-metric", "rule-without-operator", "bad-policy",
        "non-boolean-required",
    ],
)  # fmt: skip
def test_not_valid_odcs_names_file_and_key_path(tmp_path, contract_dict, mutate, key_path, words):
    path = _write(tmp_path, _mutate(contract_dict, mutate))
    with pytest.raises(ContractError) as err:
        load_contract(path)
    message = str(err.value)
    assert str(path) in message
    assert key_path in message
    assert words in message


def test_contract_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ContractError, match="expected a mapping"):
        load_contract(_write(tmp_path, "- just\n- a list\n"))


def _datacontract_cli() -> str | None:
    beside = Path(sys.executable).parent / "datacontract"
    return str(beside) if beside.exists() else shutil.which("datacontract")


def test_committed_contract_passes_datacontract_lint(contract_path):
    cli = _datacontract_cli()
    if cli is None:
        pytest.skip("datacontract-cli (dev dependency) is not installed")
    result = subprocess.run([cli, "lint", str(contract_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout.lower()
