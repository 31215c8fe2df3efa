"""The /predict body: parsed once, with orjson, into records; every malformed body is a 4xx.

Accepted shapes: one record `{...}`, a batch `{"records": [...]}`, or a bare list `[{...}, ...]`
(a batch too). orjson refuses what strict JSON refuses (NaN, Infinity, numbers beyond float64,
invalid UTF-8, nesting deeper than 1024); when it does, the body is read once more by the standard
library, only to say which record and field hold the offending value. Duplicate keys are refused
too (a client that sends a field twice does not know which one was scored); a cheap count of
`"...":` in the raw bytes rules them out for nearly every body without a second parse.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from gitops_ml.contracts.requests import REQUEST_ID_MAX_LENGTH
from gitops_ml.serving.schemas import RequestProblem, summarize

SHAPES = 'one record {...}, {"records": [...]} or a list of records [...]'
_KEY_END = re.compile(rb'"\s*:')
_KEY_END_SPACED = re.compile(rb'"\s+:')
_FLOAT_MAX_DIGITS = 309  # an integer with more digits is beyond float64


class _NotANumber:
    """Stands for a number JSON cannot carry (NaN, Infinity, 1e309) while the body is diagnosed."""

    def __init__(self, text: str):
        self.text = text


class _Pairs(dict[str, Any]):
    """An object as parsed by the diagnosis, remembering keys given twice."""

    duplicates: list[str]


def parse_body(raw: bytes, max_rows: int) -> tuple[list[Any], bool]:
    """(records, is_batch), or RequestProblem (400 malformed JSON, 422 wrong shape or values)."""
    if not raw.strip():
        raise RequestProblem(400, f"request body is empty: send {SHAPES}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _diagnose(raw, exc) from None
    if isinstance(body, dict):
        if "records" not in body:
            _check_duplicates(raw, len(body), is_batch=False)
            return [body], False
        records = body["records"]
        extra = sorted(set(body) - {"records"})
        if extra:
            raise RequestProblem(
                422,
                f"a batch request has only 'records'; unexpected keys {extra}",
                [
                    {
                        "loc": ["body", k],
                        "record": None,
                        "field": k,
                        "msg": "Extra inputs are not permitted",
                        "type": "extra_forbidden",
                    }
                    for k in extra
                ],
            )
    elif isinstance(body, list):
        records = body
    else:
        raise RequestProblem(
            422,
            f"request body must be {SHAPES}, got a JSON {type(body).__name__}",
            [
                {
                    "loc": ["body"],
                    "record": None,
                    "field": None,
                    "msg": f"expected {SHAPES}",
                    "type": "model_type",
                }
            ],
        )
    if not isinstance(records, list):
        raise RequestProblem(
            422,
            f"'records' must be a list of records, got {type(records).__name__}",
            [
                {
                    "loc": ["body", "records"],
                    "record": None,
                    "field": "records",
                    "msg": "Input should be a valid list",
                    "type": "list_type",
                }
            ],
        )
    if not records:
        raise RequestProblem(
            422,
            "no records: send at least one record",
            [
                {
                    "loc": ["body", "records"],
                    "record": None,
                    "field": "records",
                    "msg": "List should have at least 1 item",
                    "type": "too_short",
                }
            ],
        )
    if len(records) > max_rows:
        raise RequestProblem(
            422,
            f"{len(records)} records; at most {max_rows} per request",
            [
                {
                    "loc": ["body", "records"],
                    "record": None,
                    "field": "records",
                    "msg": f"List should have at most {max_rows} items",
                    "type": "too_long",
                }
            ],
        )
    keys = (len(body) if isinstance(body, dict) else 0) + sum(len(r) for r in records if isinstance(r, dict))
    _check_duplicates(raw, keys, is_batch=True)
    return records, True


def _check_duplicates(raw: bytes, parsed_keys: int, *, is_batch: bool) -> None:
    # Every key in the bytes ends with `"` + optional blanks + `:`, so a count of those no larger
    # than the keys parsed means no key was given twice; more (a string value holding `":`, a
    # nested object) needs the exact check.
    # bytes.count is C speed; the regex (a list of every match) only for a body with `"  :`.
    key_ends = len(_KEY_END.findall(raw)) if _KEY_END_SPACED.search(raw) else raw.count(b'":')
    if key_ends <= parsed_keys:
        return
    problems = _find_bad_values(_strict_parse(raw), batch=is_batch)
    if problems:
        raise RequestProblem(422, summarize(problems), problems)


def _diagnose(raw: bytes, exc: orjson.JSONDecodeError) -> RequestProblem:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return RequestProblem(
            400,
            f"request body is not UTF-8 text: invalid byte at position {bad.start}",
            [
                {
                    "loc": ["body", bad.start],
                    "record": None,
                    "field": None,
                    "msg": "invalid UTF-8",
                    "type": "json_invalid",
                }
            ],
        )
    try:
        body = _strict_parse(raw)
    except RecursionError:
        return RequestProblem(
            400,
            "request body is not valid JSON: nested too deeply",
            [
                {
                    "loc": ["body"],
                    "record": None,
                    "field": None,
                    "msg": "JSON nested too deeply",
                    "type": "json_invalid",
                }
            ],
        )
    except ValueError:
        return RequestProblem(
            400,
            f"request body is not valid JSON: {exc}",
            [
                {
                    "loc": ["body", exc.pos],
                    "record": None,
                    "field": None,
                    "msg": f"JSON decode error: {exc.msg}",
                    "type": "json_invalid",
                }
            ],
        )
    is_batch = isinstance(body, list) or (isinstance(body, dict) and "records" in body)
    problems = _find_bad_values(body, batch=is_batch)
    if problems:
        return RequestProblem(422, summarize(problems), problems)
    return RequestProblem(400, f"request body is not valid JSON: {exc}")


def _strict_parse(raw: bytes) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> _Pairs:
        out = _Pairs(items)
        out.duplicates = (
            []
            if len(out) == len(items)
            else [key for key, count in Counter(k for k, _ in items).items() if count > 1]
        )
        return out

    def number(text: str) -> Any:
        value = float(text)
        return value if value not in (float("inf"), float("-inf")) else _NotANumber(text)

    def integer(text: str) -> Any:
        return _NotANumber(text) if len(text.lstrip("-")) >= _FLOAT_MAX_DIGITS else int(text)

    return json.loads(
        raw.decode("utf-8"),
        object_pairs_hook=pairs,
        parse_constant=_NotANumber,
        parse_float=number,
        parse_int=integer,
    )


def _find_bad_values(body: Any, *, batch: bool) -> list[dict[str, Any]]:
    """Record and field of every non-finite number and duplicated key in a diagnosed body."""
    if isinstance(body, dict) and "records" in body:
        records = body.get("records")
        records = records if isinstance(records, list) else []
    elif isinstance(body, list):
        records = body
    else:
        records = [body]
    problems = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            continue
        loc: list[str | int] = ["body", "records", index] if batch else ["body"]
        for key in getattr(record, "duplicates", []):
            problems.append(
                {
                    "loc": [*loc, key],
                    "record": index,
                    "field": key,
                    "type": "duplicate_key",
                    "msg": "field given more than once",
                    "input": None,
                }
            )
        for key, value in record.items():
            if isinstance(value, _NotANumber):
                problems.append(
                    {
                        "loc": [*loc, key],
                        "record": index,
                        "field": key,
                        "type": "finite_number",
                        "msg": "not a finite number that fits a float64",
                        "input": value.text[:40],
                    }
                )
    if isinstance(body, _Pairs) and body.duplicates and batch:
        problems.extend(
            {
                "loc": ["body", key],
                "record": None,
                "field": key,
                "type": "duplicate_key",
                "msg": "field given more than once",
                "input": None,
            }
            for key in body.duplicates
        )
    return problems


def request_ids(given_ids: Sequence[str | None], is_batch: bool) -> list[str]:
    """Client ids where given (checked for duplicates), else one random prefix + the record index:
    unique, and one random id per request instead of one per record (32 hex digits, as a uuid4's
    hex; os.urandom directly: 0.5 us against uuid4's 2.4)."""
    prefix = os.urandom(16).hex()
    if given_ids.count(None) == len(given_ids):  # no client ids: nothing to check
        return [f"{prefix}-{index}" for index in range(len(given_ids))] if is_batch else [prefix]
    ids = []
    seen: dict[str, int] = {}
    duplicates = []
    for index, given in enumerate(given_ids):
        if given is None:
            ids.append(f"{prefix}-{index}" if is_batch else prefix)
            continue
        if not given or len(given) > REQUEST_ID_MAX_LENGTH:
            raise RequestProblem(
                422, f"record {index}: field 'request_id' must be 1..{REQUEST_ID_MAX_LENGTH} characters"
            )
        if given in seen:
            duplicates.append(
                {
                    "loc": ["body", "records", index, "request_id"] if is_batch else ["body", "request_id"],
                    "record": index,
                    "field": "request_id",
                    "msg": f"duplicate of record {seen[given]}",
                    "type": "duplicate",
                    "input": given,
                }
            )
        seen[given] = index
        ids.append(given)
    if duplicates:
        raise RequestProblem(422, summarize(duplicates), duplicates)
    return ids
