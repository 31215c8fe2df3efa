"""The /predict body parser: duplicate keys found however the JSON is spaced."""

from __future__ import annotations

import json

import pytest

from gitops_ml.serving.body import parse_body
from gitops_ml.serving.schemas import RequestProblem


@pytest.mark.parametrize(
    "raw",
    [
        b'{"plan": "basic", "plan": "premium"}',
        b'{"plan" : "basic", "plan" : "premium"}',
        b'{"plan"\t: "basic",\n"plan"\r\n: "premium"}',
        json.dumps({"records": [{"a": 1}]}, indent=2).replace('"a": 1', '"a": 1, "a" : 2').encode(),
    ],
    ids=["compact", "space before colon", "tab and newlines", "indented batch"],
)
def test_a_key_given_twice_is_a_422_naming_it(raw: bytes) -> None:
    with pytest.raises(RequestProblem) as problem:
        parse_body(raw, 10)
    assert problem.value.status == 422
    assert any(d["type"] == "duplicate_key" for d in problem.value.detail)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"plan": "basic", "note": "a \\" : b"}',  # `" :` inside a string value, no key twice
        json.dumps({"records": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}, indent=2).encode(),
    ],
    ids=["quote and colon in a value", "indented batch"],
)
def test_no_duplicate_no_error(raw: bytes) -> None:
    records, _ = parse_body(raw, 10)
    assert records
