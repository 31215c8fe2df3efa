"""ASGI middleware of the serving app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gitops_ml.serving.schemas import error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


def too_large_message(limit: int) -> str:
    return f"request body exceeds the limit of {limit} bytes"


def declared_too_large(scope: Scope, max_bytes: int) -> str | None:
    """The 413 message for a Content-Length over the limit, else None."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = 0
            if declared > max_bytes:
                return f"request body of {declared} bytes exceeds the limit of {max_bytes} bytes"
            return None
    return None


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
        declared = declared_too_large(scope, self.max_bytes)
        if declared is not None:
            await error_response(413, declared)(scope, receive, send)
            return
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
