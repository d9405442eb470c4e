"""What the lab's REST stand-ins (billing, platform) share: the contract's error body and two ASGI middlewares.

Every 4xx/5xx answers ``{"error": {"status", "code", "field", "message"}}``; empty query parameters mean "no
filter"; an unhandled exception becomes a ``500 internal_error`` body with the traceback in the service's log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def error_body(status: int, code: str, field: str | None, message: str) -> dict[str, dict[str, Any]]:
    """The contract's error body: ``{"error": {"status", "code", "field", "message"}}``."""
    return {"error": {"status": status, "code": code, "field": field, "message": message}}


def error_response(
    status: int, code: str, field: str | None, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error body as a response with ``status`` (and ``headers``)."""
    return JSONResponse(error_body(status, code, field, message), status_code=status, headers=headers)


class BlankQueryMiddleware:
    """Drops query parameters with an empty value, so ``?site=&status=`` means "no filter", not a bad value."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if query:
            kept = [pair for pair in query.split(b"&") if pair.partition(b"=")[2]]
            scope = {**scope, "query_string": b"&".join(kept)}
        await self.app(scope, receive, send)


class InternalErrorMiddleware:
    """Turns any unhandled exception into the contract's ``500 internal_error`` body; the traceback goes to ``log``."""

    def __init__(self, app: ASGIApp, log: logging.Logger) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            self.log.exception("Unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal_error", None, "internal error; the service log has the details")
            await response(scope, receive, send)
