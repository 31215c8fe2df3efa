"""The route handlers: module-level functions over `request.app.state` (see app.create_app).

`/predict` does per request only what cannot be done at load: one orjson parse, the request
model compiled from the contract at load, the model call (micro-batched), one orjson encode and
an O(1) enqueue of the log records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from gitops_ml.contracts.requests import REQUEST_ID_FIELD
from gitops_ml.prediction_store import PredictionStore, coerce_label
from gitops_ml.prediction_store.access import LabelsRefused, check_labels_token
from gitops_ml.prediction_store.codecs import PredictionRows
from gitops_ml.prediction_store.schema import CHALLENGER, PRODUCTION
from gitops_ml.record_columns import ModelAnswers
from gitops_ml.serving.body import parse_body, request_ids
from gitops_ml.serving.log_worker import LogWorker, ShadowOrder
from gitops_ml.serving.middleware import BodyTooLarge, too_large_message
from gitops_ml.serving.model_holder import ModelHolder, ServedChallenger, ServedModel
from gitops_ml.serving.schemas import (
    FeedbackIn,
    FeedbackOut,
    RequestProblem,
    encode_json,
    error_body,
    error_response,
    json_response,
    jsonable_input,
    summarize,
    validation_details,
)

log = logging.getLogger(__name__)


def model_or_503(request: Request) -> ServedModel:
    return current_model(request.app.state.holder)


def current_model(holder: ModelHolder) -> ServedModel:
    model = holder.current
    if model is None:
        raise RequestProblem(503, f"no model is loaded: {holder.not_ready_reason}")
    return model


def validate_records(
    model: ServedModel, records: list[Any], is_batch: bool
) -> tuple[list[str | None], Sequence[Mapping[str, Any]]]:
    """(the request ids as given, the records as JSON values without request_id), or a 422 naming
    record and field. A batch is checked column by column (`contracts.batch_validation`); the
    request model validates single records, and any batch that check does not pass, so every
    error is the request model's own."""
    if is_batch and model.batch_validator is not None:
        checked = model.batch_validator.validate(records, model.ignored_inputs)
        if checked is not None:
            return checked.request_ids, checked.records
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
    return [getattr(v, REQUEST_ID_FIELD) for v in validated], model.json_inputs(validated)


async def predict(request: Request) -> Response:
    """One record `{...}`, a batch `{"records": [...]}` or a list `[{...}, ...]`; fields as in the data
    contract, plus an optional `request_id` (generated when absent) to join labels later via /feedback.

    Served by `fast_predict.PredictEndpoint` in front of the app unless that is turned off; both
    answer through `predict_bytes`, so bodies and errors are the same bytes."""
    started = time.perf_counter()
    raw = await request.body()
    status, body = await predict_bytes(request.app.state, raw, started)
    return Response(body, status_code=status, media_type="application/json")


async def predict_bytes(state: Any, raw: bytes, started: float) -> tuple[int, bytes]:
    """(status, JSON body) of a /predict request body: the answer, or the error body of a 4xx/5xx."""
    try:
        return 200, encode_json(await _predict(state, raw, started))
    except RequestProblem as exc:
        return exc.status, error_body(exc.message, exc.detail)


async def _predict(state: Any, raw: bytes, started: float) -> dict[str, Any]:
    created_at = datetime.now(UTC)
    model = current_model(state.holder)
    records, is_batch = parse_body(raw, state.max_batch_rows)
    given_ids, inputs = validate_records(model, records, is_batch)
    ids = request_ids(given_ids, is_batch)
    holder: ModelHolder = state.holder
    challenger = holder.challenger
    if challenger is None:
        outputs = await score(state, model, inputs)
        versions = [model.version] * len(outputs)
        roles = [PRODUCTION] * len(outputs)
    else:
        outputs, versions, roles = await score_with_challenger(state, model, challenger, records, ids, inputs)
    if not is_batch:
        outputs = [outputs[0]]  # its dict is the answer anyway; a list pickles smaller for the log
    latency_ms = (time.perf_counter() - started) * 1000
    state.served += len(outputs)  # one event loop: no lock needed
    n = len(outputs)
    logger: LogWorker = state.logger
    shadow: list[ShadowOrder] = []
    if challenger is not None:
        for role, other in ((PRODUCTION, challenger.served), (CHALLENGER, model)):
            # the model that did not answer these rows scores them, in the log worker
            picked = tuple(i for i, r in enumerate(roles) if r == role)
            if picked:
                shadow_role = CHALLENGER if role == PRODUCTION else PRODUCTION
                shadow.append(ShadowOrder(logger.model_ref(other.pointer), shadow_role, picked))
    logger.log_rows(
        PredictionRows(ids, [created_at] * n, versions, roles, inputs, outputs, [latency_ms] * n), shadow
    )
    if is_batch:
        if isinstance(outputs, ModelAnswers):  # production answered every row
            return {"model_version": model.version, "predictions": outputs.with_ids(ids)}
        return {
            "model_version": model.version,
            "predictions": [
                {"request_id": rid, **out, **({"model_version": v} if v != model.version else {})}
                for rid, out, v in zip(ids, outputs, versions, strict=True)
            ],
        }
    return {"request_id": ids[0], **outputs[0], "model_version": versions[0]}


async def score(
    state: Any, model: ServedModel, inputs: Sequence[Mapping[str, Any]]
) -> Sequence[dict[str, Any]]:
    try:
        return await state.scheduler.predict(model, inputs)
    except ValueError as exc:
        # Valid for the contract but not for the estimator (e.g. beyond float32 for a forest):
        # the client can change the input, so a 422 saying so, not a server error.
        raise RequestProblem(422, f"model {model.version} cannot score this input: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - valid input the model cannot score: a server error, said plainly
        log.exception("prediction failed for model %s", model.version)
        raise RequestProblem(
            500, f"prediction failed with model {model.version}: {type(exc).__name__}"
        ) from exc


async def score_with_challenger(
    state: Any,
    model: ServedModel,
    challenger: ServedChallenger,
    records: list[Any],
    ids: list[str],
    inputs: Sequence[Mapping[str, Any]],
) -> tuple[Sequence[dict[str, Any]], list[str], list[str]]:
    """(outputs, versions, roles): canary callers answered by the challenger, the rest by production.

    The canary draw is sticky: the caller's `sticky_field` value (from the request as sent), or the
    request id when none is configured. Should the challenger fail on its rows, production answers
    them: a challenger never costs a caller an answer.
    """
    pointer = challenger.pointer
    field_name = pointer.sticky_field
    if pointer.mode == "canary":
        canary = [
            pointer.answers(raw.get(field_name) if field_name and isinstance(raw, dict) else rid)
            for raw, rid in zip(records, ids, strict=True)
        ]
    else:
        canary = [False] * len(ids)
    picked = [i for i, c in enumerate(canary) if c]
    if not picked:
        outputs = await score(state, model, inputs)
        return outputs, [model.version] * len(outputs), [PRODUCTION] * len(outputs)
    rest = [i for i, c in enumerate(canary) if not c]
    answers: list[dict[str, Any] | None] = [None] * len(ids)
    versions = [model.version] * len(ids)
    roles = [PRODUCTION] * len(ids)
    try:
        canary_outputs = await state.scheduler.predict(challenger.served, [inputs[i] for i in picked])
    except Exception as exc:  # noqa: BLE001 - production answers instead
        if not state.challenger_failures:  # once, not per request
            log.error("challenger %s failed on canary rows, production answers: %s", challenger.version, exc)
        state.challenger_failures += len(picked)
        rest = list(range(len(ids)))
    else:
        for i, out in zip(picked, canary_outputs, strict=True):
            answers[i], versions[i], roles[i] = out, challenger.version, CHALLENGER
    if rest:
        for i, out in zip(rest, await score(state, model, [inputs[i] for i in rest]), strict=True):
            answers[i], versions[i], roles[i] = out, model.version, PRODUCTION
    return [a for a in answers if a is not None], versions, roles


async def health() -> dict[str, str]:
    return {"status": "ok"}


async def ready(request: Request) -> Response:
    holder: ModelHolder = request.app.state.holder
    logger: LogWorker = request.app.state.logger
    model = holder.current
    counts = logger.counts
    logging_state = {
        "served": request.app.state.served,
        "written": counts.written,
        "dropped": counts.dropped,
        "last_error": counts.last_error,
        "shadow_scored": counts.shadow_scored,
        "shadow_queued": logger.shadow_queued,
        "shadow_dropped": counts.shadow_dropped,
        "shadow_failed": counts.shadow_failed,
        "shadow_written": counts.shadow_written,
        "shadow_models_ready": list(counts.shadow_ready),
        "challenger_failures": request.app.state.challenger_failures,
        "log_worker": {"pid": logger.pid, "restarts": logger.restarts},
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
            "challenger": challenger_info(holder, brief=True),
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
        "decision": decision_info(model),
        "challenger": challenger_info(holder),
    }


def decision_info(model: ServedModel) -> dict[str, Any] | None:
    """How `prediction` is decided from the probabilities (None: regression decides nothing)."""
    if model.settings.dataset.task == "regression":
        return None
    rule = model.model.decision
    if rule is None:
        return {"kind": "most_probable", "text": "the most probable class"}
    return {**rule.model_dump(mode="json", exclude_none=True), "text": rule.describe()}


def challenger_info(holder: ModelHolder, *, brief: bool = False) -> dict[str, Any] | None:
    """The challenger being served beside production, or why the challenger file was refused."""
    challenger = holder.challenger
    if challenger is None:
        error = holder.challenger_error
        return None if error is None else {"version": None, "error": error}
    if brief:
        return {"version": challenger.version, "mode": challenger.pointer.mode, "error": None}
    return {
        **challenger.pointer.model_dump(mode="json"),
        "loaded_at": challenger.served.loaded_at.isoformat(),
        "pointer_path": str(holder.challenger_path),
        "serving_path": challenger.served.serving_path,
        "fast_path": challenger.served.compiled is not None,
        "decision": decision_info(challenger.served),
        "error": None,
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
        request.app.state.logger.flush(shadow=False)  # the prediction may still be queued for writing
        matched, _unknown = store.add_labels([(item.request_id, label)])
    if not matched:
        raise RequestProblem(404, f"unknown request_id {item.request_id!r}: no prediction was logged with it")
    return FeedbackOut(request_id=item.request_id, label=label)


async def on_too_large(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return error_response(413, too_large_message(exc.limit))


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
