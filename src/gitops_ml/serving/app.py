"""The serving app: predictions validated by the data contract, every one logged for monitoring.

Wiring only; the parts live beside it: `routes` (handlers), `body` (the /predict body parser),
`schemas` (shapes and error bodies), `middleware` (body size limit), `fast_predict` (POST /predict as
a raw ASGI endpoint in front of FastAPI, answering through the route's own code), `scheduler` (micro-batching),
`model_holder` (the served model, the challenger and their hot reload), `fast_path` (the compiled
pipeline), `log_worker` (the child process that writes the prediction log and scores the shadow).
Logging only enqueues; the database is written, and the shadow scored, in another process.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from gitops_ml.config import Settings, prediction_store_url
from gitops_ml.prediction_store import PredictionStore
from gitops_ml.prediction_store.access import configured_labels_token
from gitops_ml.serving import routes
from gitops_ml.serving.fast_predict import PredictEndpoint
from gitops_ml.serving.log_worker import LogWorker, WorkerConfig, preload_shadow_models
from gitops_ml.serving.middleware import BodySizeLimit, BodyTooLarge
from gitops_ml.serving.model_holder import DEFAULT_CACHE_DIR, ModelHolder, build_request_model
from gitops_ml.serving.scheduler import PredictionScheduler
from gitops_ml.serving.schemas import (
    BatchPredictionOut,
    ErrorOut,
    FeedbackOut,
    RequestProblem,
    SinglePredictionOut,
    openapi_request_body,
)

log = logging.getLogger(__name__)

# `gitops-ml serve --workers N` starts each worker process from these (uvicorn needs an import
# string, not an app object, to start several).
ENV_CONFIG_DIR = "GITOPS_ML_SERVE_CONFIG_DIR"
ENV_POINTER = "GITOPS_ML_SERVE_POINTER"
ENV_STORE_URL = "GITOPS_ML_SERVE_STORE_URL"

# FastAPI's native OpenTelemetry (0.150+) asks for the global providers on every request: ~10% of
# a single-record request's CPU (py-spy, docs/benchmarks.md). This app exports no telemetry.
NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def create_app(
    settings: Settings,
    *,
    pointer_path: Path | str | None = None,
    store_url: str | None = None,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    raw_predict: bool = True,
) -> FastAPI:
    """The FastAPI app. Nothing is opened until startup (lifespan): the store, the logger, the model.

    The contract is read here, so a broken contract fails before the server listens.
    `raw_predict`: POST /predict answered by `fast_predict.PredictEndpoint` in front of FastAPI
    (the default; same bytes, a fraction of the CPU); False serves it from the FastAPI route.
    """
    serving = settings.serving
    pointer = Path(pointer_path) if pointer_path is not None else settings.registry.pointer
    # A pointer given by path has its history beside it; the configured one, the configured history.
    history = (
        pointer.parent / Path(settings.registry.history).name
        if pointer_path is not None
        else (settings.registry.history)
    )
    url = prediction_store_url(serving, store_url)
    docs_request_model = build_request_model(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from threadpoolctl import threadpool_limits

        # One BLAS/OpenMP thread: requests are small, and spinning OpenMP threads on a shared
        # CPU cost far more than they save (measured: single-row predict 4x slower without).
        limits = threadpool_limits(limits=1)
        store = PredictionStore(url)  # created or migrated here, before the log worker opens it
        logger = LogWorker(
            WorkerConfig(url, settings, cache_dir, serving.log_batch_size, serving.log_flush_interval_s)
        )
        holder = ModelHolder(
            pointer,
            settings,
            reload_interval_s=serving.reload_interval_s,
            cache_dir=cache_dir,
            history_path=history,
        )
        holder.on_challenger = partial(preload_shadow_models, logger)
        loop = asyncio.get_running_loop()
        # the worker process starts (~1 s of imports) while the model loads
        await asyncio.gather(
            loop.run_in_executor(None, logger.start), loop.run_in_executor(None, holder.check)
        )
        # The p99 tail: a full (generation 2) collection walks every object the libraries and the
        # model hold, 200-800 ms measured under load, once every few thousand requests. Frozen
        # objects are skipped by the collector (still freed by reference counting), so after the
        # load a full collection costs a few ms (measured; docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        holder.start()
        scheduler = PredictionScheduler()
        scheduler.start()
        app.state.store, app.state.logger, app.state.holder = store, logger, holder
        app.state.scheduler, app.state.settings = scheduler, settings
        app.state.challenger_failures = 0  # canary rows production answered because the challenger failed
        app.state.max_batch_rows = serving.max_batch_rows
        app.state.labels_token = configured_labels_token()
        app.state.served = 0  # predictions answered by this process (compare: prediction_log.written)
        try:
            yield
        finally:
            await scheduler.stop()
            holder.stop()
            logger.close()  # the worker writes everything sent and scores its shadow rows, then stops
            # one line per process: with --workers N the sum over the lines is the server's count
            log.info(
                "prediction log at shutdown: served %d, written %d, dropped %d (pid %d)",
                app.state.served,
                logger.written,
                logger.dropped,
                os.getpid(),
            )
            store.dispose()
            limits.restore_original_limits()
            gc.unfreeze()

    app = FastAPI(
        **NO_TELEMETRY,
        title="gitops-ml serving",
        description="Predictions from the production model named by the GitOps pointer; every prediction "
        "is logged for monitoring. Requests are validated against the data contract.",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=serving.max_body_bytes)
    if raw_predict:  # added last: outermost, so /predict skips the middleware and routing below
        app.add_middleware(PredictEndpoint, max_bytes=serving.max_body_bytes)
    app.add_exception_handler(BodyTooLarge, routes.on_too_large)
    app.add_exception_handler(RequestProblem, routes.on_problem)
    app.add_exception_handler(RequestValidationError, routes.on_invalid)
    errors = {
        400: {"model": ErrorOut},
        413: {"model": ErrorOut},
        422: {"model": ErrorOut},
        503: {"model": ErrorOut},
    }
    app.add_api_route(
        "/predict",
        routes.predict,
        methods=["POST"],
        summary="Predict one record or a batch",
        response_model=SinglePredictionOut | BatchPredictionOut,
        responses=errors,  # type: ignore[arg-type]
        openapi_extra=openapi_request_body(docs_request_model.model_json_schema(), serving.max_batch_rows),
    )
    app.add_api_route("/health", routes.health, methods=["GET"], summary="The process is alive")
    app.add_api_route(
        "/ready",
        routes.ready,
        methods=["GET"],
        summary="200 with the model version when a model is loaded, 503 otherwise",
        responses={503: {"description": "no model loaded; `reason` says why"}},
    )
    app.add_api_route(
        "/model",
        routes.model_info,
        methods=["GET"],
        summary="The production pointer of the model being served, and how it is served",
        responses={503: {"model": ErrorOut}},
    )
    app.add_api_route(
        "/feedback",
        routes.feedback,
        methods=["POST"],
        response_model=FeedbackOut,
        summary="Attach a late label to a served prediction",
        responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    return app


def app_from_environment() -> FastAPI:
    """The app of one `serve --workers N` worker process (factory named to uvicorn)."""
    from gitops_ml.config import load_settings

    settings = load_settings(Path(os.environ.get(ENV_CONFIG_DIR, "config")))
    return create_app(
        settings,
        pointer_path=os.environ.get(ENV_POINTER) or None,
        store_url=os.environ.get(ENV_STORE_URL) or None,
    )
