"""The serving app: predictions validated by the data contract, every one logged for monitoring.

Design choices that matter for speed and safety:
- `/predict` reads and parses the body itself: it enforces `max_body_bytes` while streaming
  and turns every bad input into a 4xx that names the record and field (never a 500).
- Concurrent single-record requests are scored together: a scheduler task collects whatever
  requests are waiting while the previous batch is being predicted and runs them as one
  pipeline call (the fixed cost of a scikit-learn Pipeline call dominates at one row). It adds
  no waiting time: an idle server predicts a lone request immediately.
- Logging only enqueues (`BatchingLogger`); the database is written off the request path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StrictStr, ValidationError

from gitops_ml.config import Settings
from gitops_ml.serving.model_holder import DEFAULT_CACHE_DIR, LoadedModel, ModelHolder, build_request_model
from gitops_ml.store.predictions import BatchingLogger, PredictionStore, coerce_label

log = logging.getLogger(__name__)

# Rows merged into one pipeline call from concurrent small requests; bigger requests run alone.
MICRO_BATCH_MAX_ROWS = 256
# Calls up to this many rows run on the event loop itself; bigger ones in the worker thread.
INLINE_MAX_ROWS = 1000
MAX_REPORTED_ERRORS = 50
REQUEST_ID_MAX_LENGTH = 128

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- request/response shapes (documentation and /feedback validation) ---------------------------


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


# -- errors ------------------------------------------------------------------------------------------


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


class RequestProblem(Exception):
    """A bad request, with its HTTP status and the field-level details to return."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or []


def _error_response(status: int, message: str, detail: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "detail": detail or []}, status_code=status)


def _jsonable_input(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def validation_details(exc: ValidationError, *, batch: bool) -> list[dict[str, Any]]:
    """pydantic errors -> [{loc, record, field, msg, type, input}] naming record and field."""
    items = []
    for error in exc.errors(include_url=False)[:MAX_REPORTED_ERRORS]:
        loc = list(error["loc"])
        record = 0
        if batch and loc and isinstance(loc[0], int):
            record = int(loc.pop(0))
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
                "input": None if missing else _jsonable_input(error.get("input")),
            }
        )
    return items


def summarize(detail: list[dict[str, Any]], total: int | None = None) -> str:
    parts = []
    for item in detail[:5]:
        where = f"record {item['record']}: " if item.get("record") is not None else ""
        field_name = f"field '{item['field']}': " if item.get("field") else ""
        shown = "" if item["type"] == "missing" else f" (got {json.dumps(item.get('input'))[:60]})"
        parts.append(f"{where}{field_name}{item['msg']}{shown}")
    count = total if total is not None else len(detail)
    more = f"; and {count - 5} more" if count > 5 else ""
    return f"invalid request: {count} error(s): " + "; ".join(parts) + more


# -- body size limit ---------------------------------------------------------------------------------


class BodySizeLimit:
    """ASGI middleware: 413 on a Content-Length over the limit, and a byte count while streaming
    (chunked bodies have no Content-Length) that stops reading at the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    response = _error_response(
                        413, f"request body of {declared} bytes exceeds the limit of {self.max_bytes} bytes"
                    )
                    await response(scope, receive, send)
                    return
                break
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


# -- micro-batching scheduler ---------------------------------------------------------------------


@dataclass
class _Job:
    model: LoadedModel
    records: list[dict[str, Any]]
    future: asyncio.Future[list[dict[str, Any]]]


class PredictionScheduler:
    """Runs one prediction call at a time, merging the requests that queued up meanwhile."""

    def __init__(self, max_rows: int = MICRO_BATCH_MAX_ROWS, inline_max_rows: int = INLINE_MAX_ROWS):
        self.max_rows = max_rows
        self.inline_max_rows = inline_max_rows
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="prediction-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def predict(self, model: LoadedModel, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert self._queue is not None, "scheduler not started"
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(model, records, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            rows = len(jobs[0].records)
            while rows < self.max_rows and not self._queue.empty():
                job = self._queue.get_nowait()
                jobs.append(job)
                rows += len(job.records)
            by_model: dict[int, list[_Job]] = {}
            for job in jobs:
                by_model.setdefault(id(job.model), []).append(job)
            for group in by_model.values():
                await self._run_group(loop, group)

    async def _call(
        self, loop: asyncio.AbstractEventLoop, model: LoadedModel, records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        # Small calls run on the event loop: handing them to a thread costs more in GIL
        # hand-offs than it saves (measured ~25% more single-record throughput inline). Big
        # batches go to the worker thread so /health and request parsing stay responsive.
        if len(records) <= self.inline_max_rows:
            return model.predict(records)
        return await loop.run_in_executor(self._executor, model.predict, records)

    async def _run_group(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        model = jobs[0].model
        records = [r for job in jobs for r in job.records]
        try:
            outputs = await self._call(loop, model, records)
        except Exception as exc:  # noqa: BLE001 - isolate: one bad request must not fail its neighbours
            if len(jobs) == 1:
                _settle(jobs[0].future, error=exc)
                return
            for job in jobs:
                try:
                    result = await self._call(loop, model, job.records)
                except Exception as job_exc:  # noqa: BLE001
                    _settle(job.future, error=job_exc)
                else:
                    _settle(job.future, result=result)
            return
        start = 0
        for job in jobs:
            end = start + len(job.records)
            _settle(job.future, result=outputs[start:end])
            start = end


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


# -- the app ----------------------------------------------------------------------------------------


def _parse_body(raw: bytes, max_rows: int) -> tuple[list[Any], bool]:
    """(records, is_batch) from a JSON body, or RequestProblem (400 malformed, 422 wrong shape)."""
    if not raw.strip():
        raise RequestProblem(400, 'request body is empty: send one record {...} or {"records": [...]}')
    try:
        body = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise RequestProblem(400, f"request body is not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise RequestProblem(
            400,
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            [
                {
                    "loc": ["body", exc.pos],
                    "record": None,
                    "field": None,
                    "msg": f"JSON decode error: {exc.msg}",
                    "type": "json_invalid",
                }
            ],
        ) from exc
    if not isinstance(body, dict):
        raise RequestProblem(
            422,
            f'request body must be a JSON object (one record or {{"records": [...]}}), '
            f"got {type(body).__name__}",
        )
    if "records" not in body:
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
            "'records' is empty: send at least one record",
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
            f"'records' has {len(records)} records; at most {max_rows} per request",
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
    return records, True


def _request_ids(validated: list[BaseModel], is_batch: bool) -> list[str]:
    """Client ids where given (checked for duplicates), else one random prefix + the record index:
    unique, and one uuid per request instead of one per record."""
    ids = []
    seen: dict[str, int] = {}
    duplicates = []
    prefix = uuid.uuid4().hex
    for index, item in enumerate(validated):
        given = getattr(item, "request_id", None)
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


def _openapi_request_body(request_schema: dict[str, Any], max_rows: int) -> dict[str, Any]:
    defs = request_schema.pop("$defs", None)
    record = dict(request_schema)
    batch = {
        "title": "Batch",
        "type": "object",
        "additionalProperties": False,
        "required": ["records"],
        "properties": {"records": {"type": "array", "minItems": 1, "maxItems": max_rows, "items": record}},
    }
    schema: dict[str, Any] = {"oneOf": [record, batch]}
    if defs:
        schema["$defs"] = defs
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def create_app(
    settings: Settings,
    *,
    pointer_path: Path | str | None = None,
    store_url: str | None = None,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> FastAPI:
    """The FastAPI app. Nothing is opened until startup (lifespan): the store, the logger, the model.

    The contract is read here, so a broken contract fails before the server listens.
    """
    serving = settings.serving
    pointer = Path(pointer_path) if pointer_path is not None else settings.registry.pointer
    url = store_url or serving.prediction_store_url
    docs_request_model = build_request_model(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from threadpoolctl import threadpool_limits

        # One BLAS/OpenMP thread: requests are small, and spinning OpenMP threads on a shared
        # CPU cost far more than they save (measured: single-row predict 4x slower without).
        limits = threadpool_limits(limits=1)
        store = PredictionStore(url)
        logger = BatchingLogger(store, serving.log_batch_size, serving.log_flush_interval_s).start()
        holder = ModelHolder(
            pointer, settings, reload_interval_s=serving.reload_interval_s, cache_dir=cache_dir
        )
        await asyncio.get_running_loop().run_in_executor(None, holder.check)
        holder.start()
        scheduler = PredictionScheduler()
        scheduler.start()
        app.state.store, app.state.logger, app.state.holder = store, logger, holder
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            await scheduler.stop()
            holder.stop()
            logger.close()
            store.dispose()
            limits.restore_original_limits()

    app = FastAPI(
        title="gitops-ml serving",
        description="Predictions from the production model named by the GitOps pointer; every prediction "
        "is logged for monitoring. Requests are validated against the data contract.",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=serving.max_body_bytes)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _error_response(413, f"request body exceeds the limit of {exc.limit} bytes")

    @app.exception_handler(RequestProblem)
    async def _problem(_request: Request, exc: RequestProblem) -> JSONResponse:
        return _error_response(exc.status, exc.message, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
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
                    "input": _jsonable_input(error.get("input")),
                }
            )
        if any(d["type"] == "json_invalid" for d in detail):
            return _error_response(400, "request body is not valid JSON", detail)
        return _error_response(422, summarize(detail), detail)

    def _model_or_503(request: Request) -> LoadedModel:
        holder: ModelHolder = request.app.state.holder
        model = holder.current
        if model is None:
            raise RequestProblem(503, f"no model is loaded: {holder.not_ready_reason}")
        return model

    @app.post(
        "/predict",
        summary="Predict one record or a batch",
        response_model=SinglePredictionOut | BatchPredictionOut,
        responses={
            400: {"model": ErrorOut},
            413: {"model": ErrorOut},
            422: {"model": ErrorOut},
            503: {"model": ErrorOut},
        },
        openapi_extra=_openapi_request_body(docs_request_model.model_json_schema(), serving.max_batch_rows),
    )
    async def predict(request: Request) -> Response:
        """One record `{...}` or a batch `{"records": [...]}`; fields as in the data contract, plus an
        optional `request_id` (generated when absent) to join labels later via /feedback."""
        started = time.perf_counter()
        created_at = datetime.now(UTC)
        raw = await request.body()
        model = _model_or_503(request)
        records, is_batch = _parse_body(raw, serving.max_batch_rows)
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
        ids = _request_ids(validated, is_batch)
        if is_batch:
            inputs = model.batch_adapter.dump_python(
                validated, mode="json", exclude={"__all__": {"request_id"}}
            )
        else:
            inputs = [validated[0].model_dump(mode="json", exclude={"request_id"})]
        try:
            outputs = await request.app.state.scheduler.predict(model, inputs)
        except Exception as exc:  # noqa: BLE001 - valid input the model cannot score: a server error, said plainly
            log.exception("prediction failed for model %s", model.version)
            raise RequestProblem(
                500, f"prediction failed with model {model.version}: {type(exc).__name__}: {exc}"
            ) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        results = [{"request_id": rid, **out} for rid, out in zip(ids, outputs, strict=True)]
        request.app.state.logger.log_many(
            [
                {
                    "request_id": rid,
                    "created_at": created_at,
                    "model_version": model.version,
                    "inputs": row,
                    "output": out,
                    "score": out["score"],
                    "prediction": out["prediction"],
                    "latency_ms": latency_ms,
                }
                for rid, row, out in zip(ids, inputs, outputs, strict=True)
            ]
        )
        body = (
            {"model_version": model.version, "predictions": results}
            if is_batch
            else {**results[0], "model_version": model.version}
        )
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")

    @app.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="200 with the model version when a model is loaded, 503 otherwise",
        responses={503: {"description": "no model loaded; `reason` says why"}},
    )
    async def ready(request: Request) -> JSONResponse:
        holder: ModelHolder = request.app.state.holder
        logger: BatchingLogger = request.app.state.logger
        model = holder.current
        logging_state = {
            "written": logger.written,
            "dropped": logger.dropped,
            "last_error": logger.last_error,
        }
        if model is None:
            return JSONResponse(
                {"status": "not_ready", "reason": holder.not_ready_reason, "prediction_log": logging_state},
                status_code=503,
            )
        return JSONResponse(
            {
                "status": "ready",
                "model_version": model.version,
                "loaded_at": model.loaded_at.isoformat(),
                "reload_error": holder.reload_error,
                "prediction_log": logging_state,
            }
        )

    @app.get(
        "/model",
        summary="The production pointer of the model being served",
        responses={503: {"model": ErrorOut}},
    )
    async def model_info(request: Request) -> dict[str, Any]:
        model = _model_or_503(request)
        holder: ModelHolder = request.app.state.holder
        return {
            **model.pointer,
            "loaded_at": model.loaded_at.isoformat(),
            "pointer_path": str(holder.pointer_path),
            "reload_error": holder.reload_error,
            "features": model.feature_columns,
            "task": model.settings.dataset.task,
        }

    @app.post(
        "/feedback",
        summary="Attach a late label to a served prediction",
        response_model=FeedbackOut,
        responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    def feedback(item: FeedbackIn, request: Request) -> FeedbackOut:
        try:
            label = coerce_label(item.label, settings.dataset.task)
        except ValueError as exc:
            detail = [
                {
                    "loc": ["body", "label"],
                    "record": None,
                    "field": "label",
                    "msg": str(exc),
                    "type": "value_error",
                    "input": item.label,
                }
            ]
            raise RequestProblem(422, f"field 'label': {exc}", detail) from None
        store: PredictionStore = request.app.state.store
        matched, _unknown = store.add_labels([(item.request_id, label)])
        if not matched:
            request.app.state.logger.flush()  # the prediction may still be queued for writing
            matched, _unknown = store.add_labels([(item.request_id, label)])
        if not matched:
            raise RequestProblem(
                404, f"unknown request_id {item.request_id!r}: no prediction was logged with it"
            )
        return FeedbackOut(request_id=item.request_id, label=label)

    return app
