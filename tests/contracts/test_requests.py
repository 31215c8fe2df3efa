"""The serving request model built from the contract."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gitops_ml.contracts.requests import request_model
from gitops_ml.errors import ContractError

FEATURES = [
    "tenure_months", "monthly_charges", "total_charges", "support_calls", "usage_minutes", "late_payments",
    "plan", "contract_type", "payment_method", "region",
]  # fmt: skip

GOOD = {
    "tenure_months": 12,
    "monthly_charges": 70.5,
    "total_charges": 846.0,
    "support_calls": 1,
    "usage_minutes": 300.0,
    "late_payments": 0,
    "plan": "standard",
    "contract_type": "one-year",
    "payment_method": "credit-card",
    "region": "west",
}


@pytest.fixture(scope="module")
def model_cls(contract):
    return request_model(contract, FEATURES)


def error_fields(exc: ValidationError) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["type"] for e in exc.errors()}


def test_valid_request(model_cls):
    row = model_cls(**GOOD, request_id="r-1")
    assert row.plan == "standard" and row.request_id == "r-1"
    assert set(model_cls.model_fields) == {*FEATURES, "request_id"}


def test_nullable_fields_may_be_null_or_omitted(model_cls):
    row = model_cls(**{**GOOD, "total_charges": None, "payment_method": None}).model_dump()
    assert row["total_charges"] is None
    omitted = {k: v for k, v in GOOD.items() if k != "usage_minutes"}
    assert model_cls(**omitted).usage_minutes is None


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("tenure_months", 121, "less_than_equal"),
        ("monthly_charges", -0.01, "greater_than_equal"),
        ("support_calls", 2.5, "int_from_float"),
        ("plan", "gold", "literal_error"),
        ("region", "North", "literal_error"),
        ("usage_minutes", float("inf"), "finite_number"),
        ("plan", None, "literal_error"),
    ],
)
def test_bad_value_names_the_field(model_cls, field, value, error):
    with pytest.raises(ValidationError) as err:
        model_cls(**{**GOOD, field: value})
    assert error_fields(err.value) == {field: error}


def test_unknown_category_message_lists_allowed_values(model_cls):
    with pytest.raises(ValidationError) as err:
        model_cls(**{**GOOD, "contract_type": "three-year"})
    assert "contract_type" in str(err.value) and "'month-to-month'" in str(err.value)


def test_required_field_missing(model_cls):
    with pytest.raises(ValidationError) as err:
        model_cls(**{k: v for k, v in GOOD.items() if k != "plan"})
    assert error_fields(err.value) == {"plan": "missing"}


def test_extra_fields_are_forbidden(model_cls):
    with pytest.raises(ValidationError) as err:
        model_cls(**GOOD, churned=1)
    assert error_fields(err.value) == {"churned": "extra_forbidden"}


def test_pattern_from_contract(contract):
    model_cls = request_model(contract, ["customer_id", "plan"])
    model_cls(customer_id="CUST-0000001", plan="basic")
    with pytest.raises(ValidationError) as err:
        model_cls(customer_id="C-1", plan="basic")
    assert error_fields(err.value) == {"customer_id": "string_pattern_mismatch"}


def test_unknown_feature_column_is_a_contract_error(contract):
    with pytest.raises(ContractError, match="not_a_column"):
        request_model(contract, ["plan", "not_a_column"])


def test_model_follows_the_contract(edited):
    """One source of truth: widening the range in the contract widens the request model."""
    from tests.contracts.conftest import prop

    def widen(d):
        prop(d, "tenure_months")["logicalTypeOptions"]["maximum"] = 240
        prop(d, "plan")["quality"][0]["arguments"]["validValues"].append("gold")

    model_cls = request_model(edited(widen), FEATURES)
    row = model_cls(**{**GOOD, "tenure_months": 200, "plan": "gold"})
    assert (row.tenure_months, row.plan) == (200, "gold")
