"""Request and response shapes of the serving API, and the error bodies every 4xx carries.

Every client error is a `RequestProblem`: a status, a message that names the record and field,
and `detail` items `{loc, record, field, msg, type, input}`. Bodies are encoded with orjson; a
value that JSON cannot hold (NaN, an object) is shown as text, never allowed to fail the encoder.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictStr, ValidationError

from gitops_ml.contracts.requests import REQUEST_ID_MAX_LENGTH

MAX_REPORTED_ERRORS = 50


class PredictionOut(BaseModel):
    request_id: str
    prediction: int | float | str
    score: float | None = Field(
        None,
        description="positive-class probability (binary), top probability "
        "(multiclass) or predicted value (regression)",
    )
    probabilities: dict[str, float] | None = Field(None, description="class -> probability (classifiers)")


class SinglePredictionOut(PredictionOut):
    model_version: str


class BatchPredictionOut(BaseModel):
    model_version: str
    predictions: list[PredictionOut]


class FeedbackIn(BaseModel):
    request_id: StrictStr = Field(min_length=1, max_length=REQUEST_ID_MAX_LENGTH)
    # Checked by coerce_label for the task ("1" and 1 are the same class), so one clear error, not three.
    label: Any = Field(description="the true outcome: a class (int or string) or a number (regression)")


class FeedbackOut(BaseModel):
    request_id: str
    label: int | float | str
    status: str = "stored"


class ErrorItem(BaseModel):
    loc: list[str | int]
    record: int | None = Field(None, description="index of the record in the request (0 for one record)")
    field: str | None = None
    msg: str
    type: str
    input: Any = None


class ErrorOut(BaseModel):
    message: str
    detail: list[ErrorItem] = Field(default_factory=list)


class RequestProblem(Exception):
    """A bad request, with its HTTP status and the field-level details to return."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or []


def encode_json(body: Any) -> bytes:
    """The one response encoder (the FastAPI routes and the raw /predict endpoint alike)."""
    return orjson.dumps(body, default=_shown, option=orjson.OPT_NON_STR_KEYS)


def error_body(message: str, detail: list[dict[str, Any]] | None = None) -> bytes:
    return encode_json({"message": message, "detail": detail or []})


def json_response(body: Any, status: int = 200) -> Response:
    return Response(encode_json(body), status_code=status, media_type="application/json")


def error_response(status: int, message: str, detail: list[dict[str, Any]] | None = None) -> Response:
    return Response(error_body(message, detail), status_code=status, media_type="application/json")


def _shown(value: Any) -> str:
    return repr(value)


def jsonable_input(value: Any) -> Any:
    """A client's value as it can be echoed in an error body (non-finite floats and objects as text)."""
    if (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
        return repr(value)
    try:
        orjson.dumps(value)
        return value
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)


def validation_details(exc: ValidationError, *, batch: bool, offset: int = 0) -> list[dict[str, Any]]:
    """pydantic errors -> [{loc, record, field, msg, type, input}] naming record and field."""
    items = []
    for error in exc.errors(include_url=False)[:MAX_REPORTED_ERRORS]:
        loc = list(error["loc"])
        record = offset
        first = loc[0] if loc else None
        if batch and isinstance(first, int):
            loc.pop(0)
            record = first + offset
        field_name = ".".join(str(p) for p in loc) or None
        body_loc: list[str | int] = ["body", "records", record, *loc] if batch else ["body", *loc]
        missing = error["type"] == "missing"  # its "input" is the whole record: noise in the answer
        items.append(
            {
                "loc": body_loc,
                "record": record,
                "field": field_name,
                "msg": error["msg"],
                "type": error["type"],
                "input": None if missing else jsonable_input(error.get("input")),
            }
        )
    return items


def summarize(detail: list[dict[str, Any]], total: int | None = None) -> str:
    parts = []
    for item in detail[:5]:
        where = f"record {item['record']}: " if item.get("record") is not None else ""
        field_name = f"field '{item['field']}': " if item.get("field") else ""
        shown = (
            ""
            if item["type"] == "missing"
            else f" (got {orjson.dumps(item.get('input'), default=_shown).decode()[:60]})"
        )
        parts.append(f"{where}{field_name}{item['msg']}{shown}")
    count = total if total is not None else len(detail)
    more = f"; and {count - 5} more" if count > 5 else ""
    return f"invalid request: {count} error(s): " + "; ".join(parts) + more


def openapi_request_body(request_schema: dict[str, Any], max_rows: int) -> dict[str, Any]:
    """The documented /predict body: one record, {"records": [...]}, or a bare list of records."""
    defs = request_schema.pop("$defs", None)
    record = dict(request_schema)
    records = {"type": "array", "minItems": 1, "maxItems": max_rows, "items": record}
    batch = {
        "title": "Batch",
        "type": "object",
        "additionalProperties": False,
        "required": ["records"],
        "properties": {"records": records},
    }
    schema: dict[str, Any] = {"oneOf": [record, batch, {**records, "title": "Bare list"}]}
    if defs:
        schema["$defs"] = defs
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
