"""POST /predict as a raw ASGI endpoint in front of the FastAPI app.

FastAPI's own per-request machinery (routing, the Request object, the exception middleware,
dependency solving, the Response class) costs ~127 us of server CPU per request, measured against
a raw ASGI echo doing the same parse at ~33 us (docs/benchmarks.md): more than the whole
single-record prediction. The hot path therefore answers POST /predict itself, as the outermost
middleware of the app; everything else (/model, /ready, /feedback, docs, OpenAPI, other methods on
/predict) goes to FastAPI unchanged.

It shares everything that decides an answer with the FastAPI route (`routes.predict_bytes`: one
body parser, one validation, the scheduler, the logger, one encoder) and the body limit's
messages with `middleware.BodySizeLimit`, so both give the same bytes for every input (tested).
"""

from __future__ import annotations

import time

from gitops_ml.serving.middleware import ASGIApp, Receive, Scope, Send, declared_too_large, too_large_message
from gitops_ml.serving.routes import predict_bytes
from gitops_ml.serving.schemas import error_body

_JSON = (b"content-type", b"application/json")


class PredictEndpoint:
    """ASGI middleware: answers `POST /predict` from the app's state, passes the rest to `app`."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        declared = declared_too_large(scope, self.max_bytes)
        if declared is not None:
            await _answer(send, 413, error_body(declared))
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, 413, error_body(too_large_message(self.max_bytes)))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        # Starlette puts the app in the scope before its middleware: its state (set at startup)
        status, body = await predict_bytes(scope["app"].state, raw, started)
        await _answer(send, status, body)


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), _JSON],
        }
    )
    await send({"type": "http.response.body", "body": body})
