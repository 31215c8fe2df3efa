"""The column-wise batch check against the request model it must agree with, value for value."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from gitops_ml.contracts.batch_validation import batch_validator
from gitops_ml.contracts.model import Contract, parse_contract
from gitops_ml.contracts.requests import request_model


def _prop(name: str, logical: str, *, required: bool = False, options: Any = None, valid: Any = None) -> Any:
    prop: dict[str, Any] = {"name": name, "logicalType": logical, "required": required}
    if options:
        prop["logicalTypeOptions"] = options
    if valid is not None:
        prop["quality"] = [{"metric": "invalidValues", "arguments": {"validValues": valid}, "mustBe": 0}]
    return prop


PROPERTIES = [
    _prop("amount", "number", required=True, options={"minimum": 0, "maximum": 100}),
    _prop("ratio", "number", options={"exclusiveMinimum": 0, "exclusiveMaximum": 1}),
    _prop("count", "integer", required=True, options={"minimum": -5, "maximum": 5}),
    _prop("visits", "integer"),
    _prop("plan", "string", required=True, valid=["basic", "premium"]),
    _prop("city", "string"),
    _prop("code", "string", options={"pattern": "^[A-Z]{2}$"}),
    _prop("grade", "number", valid=[1.0, 2.5]),
    _prop("level", "integer", valid=[1, 2, 3]),
    _prop("active", "boolean"),
    _prop("day", "date"),
    _prop("seen_at", "timestamp"),
    _prop("opens", "time"),
    _prop("note", "string"),  # not a feature: an optional column
]
FEATURES = [p["name"] for p in PROPERTIES if p["name"] != "note"]
OPTIONAL = ["note"]

# Per field kind, values that are valid and values pydantic changes or refuses (of every JSON type).
POOL: dict[str, list[Any]] = {
    "amount": [0, 0.0, 100, 100.0, 55.5, 7, -0.1, 100.5, 1e300, True, "5", None, float("nan")],
    "ratio": [0.5, 0.999, 0, 1, 1.0, 0.0, 2, None, "0.5", False],
    "count": [-5, 5, 0, 3, 6, -6, 2.0, 2.5, True, "3", None, 10**20],
    "visits": [0, 12, None, 1.5, 3.0, "7", False, 2**63],
    "plan": ["basic", "premium", "gold", 1, None, "Basic", True],
    "city": ["Oslo", "", None, 5, 2.5, False, "x" * 300],
    "code": ["NO", "no", "NOR", None, 3],
    "grade": [1.0, 1, 2.5, 2, None, "1.0", True],
    "level": [1, 2, 3, 4, 1.0, None, "2", True],
    "active": [True, False, None, 1, 0, "true", "yes", 2],
    "day": ["2026-01-31", "2026-02-30", 20260101, None, "2026-01-01T00:00:00"],
    "seen_at": ["2026-01-31T10:00:00", "2026-01-31T10:00:00Z", "2026-01-31", 0, None, "soon"],
    "opens": ["08:30:00", "08:30", "25:00", None, 3600],
    "note": ["hello", None, 7],
    "request_id": ["r-1", "r-2", "", None, 5, "i" * 129],
}


@pytest.fixture(scope="module")
def contract() -> Contract:
    data = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "urn:test:batch",
        "name": "batch_test",
        "version": "1.0.0",
        "status": "active",
        "schema": [{"name": "t", "properties": PROPERTIES}],
    }
    return parse_contract(data, source="batch_test.odcs.yaml")


@pytest.fixture(scope="module")
def both(contract: Contract) -> tuple[Any, Any]:
    model = request_model(contract, FEATURES, optional_columns=OPTIONAL)
    return batch_validator(contract, FEATURES, optional_columns=OPTIONAL), TypeAdapter(list[model])  # type: ignore[valid-type]


def _pydantic(adapter: Any, records: list[Any]) -> tuple[list[Any], list[dict[str, Any]]] | None:
    try:
        validated = adapter.validate_python(records)
    except ValidationError:
        return None
    dumped = [v.model_dump(mode="json") for v in validated]
    return [d.pop("request_id") for d in dumped], dumped


def _valid_record() -> dict[str, Any]:
    return {"amount": 5.5, "count": 1, "plan": "basic"}


def _json(value: Any) -> bytes:
    # 1 and 1.0 compare equal in Python: the JSON text tells an int from a float
    return orjson.dumps(value)


def test_agrees_with_the_request_model_on_random_batches(both: tuple[Any, Any]) -> None:
    validator, adapter = both
    rng = random.Random(7)
    accepted = refused = 0
    for _ in range(600):
        records = []
        for _ in range(rng.randint(1, 4)):
            record = _valid_record()
            for name in rng.sample(sorted(POOL), rng.randint(0, 4)):
                record[name] = rng.choice(POOL[name])
            if rng.random() < 0.1:
                record.pop(rng.choice(sorted(record)))
            if rng.random() < 0.03:
                record["unknown_field"] = 1
            records.append(record)
        if rng.random() < 0.02:
            records.append(["not", "a", "record"])
        expected = _pydantic(adapter, records)
        got = validator.validate(records)
        if expected is None:
            assert got is None, records
            refused += 1
            continue
        assert got is not None, records
        accepted += 1
        ids, rows = expected
        assert got.request_ids == ids
        assert _json(list(got.records)) == _json(rows), records
    assert accepted > 100 and refused > 100  # both sides of the check were exercised


def test_an_integer_in_a_number_field_becomes_a_float(both: tuple[Any, Any]) -> None:
    validator, _ = both
    got = validator.validate([{**_valid_record(), "amount": 7}])
    assert got is not None and type(got.records.column("amount")[0]) is float


def test_omitted_and_null_optional_fields_are_none(both: tuple[Any, Any]) -> None:
    validator, _ = both
    got = validator.validate([_valid_record(), {**_valid_record(), "city": None, "note": "x"}])
    assert got is not None
    assert got.records.column("city") == [None, None]
    assert got.records.column("note") == [None, "x"]
    assert got.request_ids == [None, None]


def test_dates_come_back_as_their_json_text(both: tuple[Any, Any]) -> None:
    validator, _ = both
    got = validator.validate([{**_valid_record(), "day": "2026-01-31", "seen_at": "2026-01-31T10:00:00Z"}])
    assert got is not None
    assert got.records[0]["day"] == "2026-01-31"
    assert got.records[0]["seen_at"] == "2026-01-31T10:00:00Z"


@pytest.mark.parametrize(
    "change",
    [
        {"amount": float("nan")},
        {"amount": float("inf")},
        {"amount": -1},
        {"count": 6},
        {"count": None},
        {"plan": "gold"},
        {"unknown": 1},
        {"request_id": "i" * 129},
    ],
)
def test_an_invalid_value_leaves_the_batch_to_the_request_model(both: tuple[Any, Any], change: Any) -> None:
    validator, adapter = both
    records = [_valid_record(), {**_valid_record(), **change}]
    assert validator.validate(records) is None
    assert _pydantic(adapter, records) is None


def test_a_missing_required_field_or_a_non_object_is_refused(both: tuple[Any, Any]) -> None:
    validator, _ = both
    assert validator.validate([{"amount": 1.0, "count": 1}]) is None
    assert validator.validate([_valid_record(), "x"]) is None
    assert validator.validate([]) is None


def test_ignored_fields_are_dropped_unchecked(both: tuple[Any, Any]) -> None:
    validator, _ = both
    # "note" stands for a configured feature the served model does not use: any value is dropped
    got = validator.validate([{**_valid_record(), "note": 12345}], ignored=frozenset({"note"}))
    assert got is not None and got.records.column("note") == [None]
    assert validator.validate([{**_valid_record(), "gone": 1}], ignored=frozenset({"gone"})) is not None
