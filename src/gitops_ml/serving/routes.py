"""The route handlers: module-level functions over `request.app.state` (see app.create_app).

`/predict` does per request only what cannot be done at load: one orjson parse, the request
model compiled from the contract at load, the model call (micro-batched), one orjson encode and
an O(1) enqueue of the log records.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from gitops_ml.prediction_store import BatchingLogger, PredictionStore, coerce_label
from gitops_ml.prediction_store.access import LabelsRefused, check_labels_token
from gitops_ml.serving.body import parse_body, request_ids
from gitops_ml.serving.middleware import BodyTooLarge
from gitops_ml.serving.model_holder import ModelHolder, ServedModel
from gitops_ml.serving.schemas import (
    FeedbackIn,
    FeedbackOut,
    RequestProblem,
    error_response,
    json_response,
    jsonable_input,
    summarize,
    validation_details,
)

log = logging.getLogger(__name__)


def model_or_503(request: Request) -> ServedModel:
    holder: ModelHolder = request.app.state.holder
    model = holder.current
    if model is None:
        raise RequestProblem(503, f"no model is loaded: {holder.not_ready_reason}")
    return model


def validate_records(
    model: ServedModel, records: list[Any], is_batch: bool
) -> tuple[list[Any], list[dict[str, Any]]]:
    """(validated models, their JSON inputs without request_id) or a 422 naming record and field."""
    if model.ignored_inputs:
        records = [model.without_ignored(r) for r in records]
    try:
        if is_batch:
            validated = model.batch_adapter.validate_python(records)
        else:
            validated = [model.request_model.model_validate(records[0])]
    except ValidationError as exc:
        detail = validation_details(exc, batch=is_batch)
        raise RequestProblem(422, summarize(detail, exc.error_count()), detail) from None
    if is_batch:
        inputs = model.batch_adapter.dump_python(validated, mode="json", exclude={"__all__": {"request_id"}})
    else:
        inputs = [validated[0].model_dump(mode="json", exclude={"request_id"})]
    return validated, inputs


async def predict(request: Request) -> Response:
    """One record `{...}`, a batch `{"records": [...]}` or a list `[{...}, ...]`; fields as in the data
    contract, plus an optional `request_id` (generated when absent) to join labels later via /feedback."""
    started = time.perf_counter()
    created_at = datetime.now(UTC)
    raw = await request.body()
    state = request.app.state
    model = model_or_503(request)
    records, is_batch = parse_body(raw, state.max_batch_rows)
    validated, inputs = validate_records(model, records, is_batch)
    ids = request_ids(validated, is_batch)
    try:
        outputs = await state.scheduler.predict(model, inputs)
    except ValueError as exc:
        # Valid for the contract but not for the estimator (e.g. beyond float32 for a forest):
        # the client can change the input, so a 422 saying so, not a server error.
        raise RequestProblem(422, f"model {model.version} cannot score this input: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - valid input the model cannot score: a server error, said plainly
        log.exception("prediction failed for model %s", model.version)
        raise RequestProblem(
            500, f"prediction failed with model {model.version}: {type(exc).__name__}"
        ) from exc
    latency_ms = (time.perf_counter() - started) * 1000
    version = model.version
    state.served += len(outputs)  # one event loop: no lock needed
    state.logger.log_many(
        [
            {
                "request_id": rid,
                "created_at": created_at,
                "model_version": version,
                "inputs": row,
                "output": out,
                "score": out["score"],
                "prediction": out["prediction"],
                "latency_ms": latency_ms,
            }
            for rid, row, out in zip(ids, inputs, outputs, strict=True)
        ]
    )
    if is_batch:
        return json_response(
            {
                "model_version": version,
                "predictions": [{"request_id": rid, **out} for rid, out in zip(ids, outputs, strict=True)],
            }
        )
    return json_response({"request_id": ids[0], **outputs[0], "model_version": version})


async def health() -> dict[str, str]:
    return {"status": "ok"}


async def ready(request: Request) -> Response:
    holder: ModelHolder = request.app.state.holder
    logger: BatchingLogger = request.app.state.logger
    model = holder.current
    logging_state = {
        "served": request.app.state.served,
        "written": logger.written,
        "dropped": logger.dropped,
        "last_error": logger.last_error,
    }
    if model is None:
        return json_response(
            {"status": "not_ready", "reason": holder.not_ready_reason, "prediction_log": logging_state}, 503
        )
    return json_response(
        {
            "status": "ready",
            "model_version": model.version,
            "loaded_at": model.loaded_at.isoformat(),
            "reload_error": holder.reload_error,
            "serving_path": model.serving_path,
            "prediction_log": logging_state,
        }
    )


async def model_info(request: Request) -> dict[str, Any]:
    model = model_or_503(request)
    holder: ModelHolder = request.app.state.holder
    return {
        **model.pointer.model_dump(mode="json"),
        "loaded_at": model.loaded_at.isoformat(),
        "pointer_path": str(holder.pointer_path),
        "reload_error": holder.reload_error,
        "features": model.feature_columns,
        "task": model.settings.dataset.task,
        "serving_path": model.serving_path,
        "fast_path": model.compiled is not None,
    }


def feedback(item: FeedbackIn, request: Request) -> FeedbackOut:
    """Labels become retraining data: with GITOPS_ML_LABELS_TOKEN set, only holders of it may write."""
    header = request.headers.get("authorization", "")
    given = header[7:] if header[:7].lower() == "bearer " else None
    try:
        check_labels_token(request.app.state.labels_token, given, how="Authorization: Bearer <token>")
    except LabelsRefused as exc:
        raise RequestProblem(401, str(exc)) from None
    task = request.app.state.settings.dataset.task
    try:
        label = coerce_label(item.label, task)
    except ValueError as exc:
        detail = [
            {
                "loc": ["body", "label"],
                "record": None,
                "field": "label",
                "msg": str(exc),
                "type": "value_error",
                "input": jsonable_input(item.label),
            }
        ]
        raise RequestProblem(422, f"field 'label': {exc}", detail) from None
    store: PredictionStore = request.app.state.store
    matched, _unknown = store.add_labels([(item.request_id, label)])
    if not matched:
        request.app.state.logger.flush()  # the prediction may still be queued for writing
        matched, _unknown = store.add_labels([(item.request_id, label)])
    if not matched:
        raise RequestProblem(404, f"unknown request_id {item.request_id!r}: no prediction was logged with it")
    return FeedbackOut(request_id=item.request_id, label=label)


async def on_too_large(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return error_response(413, f"request body exceeds the limit of {exc.limit} bytes")


async def on_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestProblem)
    return error_response(exc.status, exc.message, exc.detail)


async def on_invalid(_request: Request, exc: Exception) -> Response:
    """FastAPI's own body validation (/feedback): the same error shape as /predict."""
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        loc = list(error.get("loc", ()))
        field_name = ".".join(str(p) for p in loc[1:]) or None
        detail.append(
            {
                "loc": loc,
                "record": None,
                "field": field_name,
                "msg": error.get("msg", ""),
                "type": error.get("type", ""),
                "input": jsonable_input(error.get("input")),
            }
        )
    if any(d["type"] == "json_invalid" for d in detail):
        return error_response(400, "request body is not valid JSON", detail)
    return error_response(422, summarize(detail), detail)
