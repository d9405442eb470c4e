"""A tiny read-only JSON-over-HTTP/1.1 server for the health and introspection endpoints of the lab's UDP servers.

Only ``GET`` (and ``HEAD``); one request per connection (``Connection: close``); the request head is capped at
8 KiB and must arrive within 5 s. A route is a callable taking the parsed query string and returning an HTTP
status and a JSON-serialisable value. The SIP proxy (``lab.sip``) uses it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

log = logging.getLogger("lab.httpd")

MAX_HEAD = 8 * 1024
HEAD_TIMEOUT = 5.0

Query = dict[str, list[str]]
Route = Callable[[Query], tuple[int, Any]]


class JsonHttpServer:
    """Serves ``routes`` (path to `Route`) on ``host:port`` once `start` has run."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self.host = host
        self.port = port
        self.routes = routes
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            status, value = self._dispatch(head)
            await self._respond(writer, status, value, head.startswith(b"HEAD "))
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except Exception:  # a bug in a route must not take the server down
            log.exception("HTTP request failed")
            with contextlib.suppress(Exception):
                await self._respond(writer, 500, {"error": "internal error"}, False)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _dispatch(self, head: bytes) -> tuple[int, Any]:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, {"error": "bad request line"}
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return 405, {"error": f"method {method} not allowed; use GET"}
        split = urllib.parse.urlsplit(target)
        route = self.routes.get(split.path.rstrip("/") or "/")
        if route is None:
            return 404, {"error": f"no such path {split.path}", "paths": sorted(self.routes)}
        return route(urllib.parse.parse_qs(split.query))

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, value: Any, head_only: bool) -> None:
        body = json.dumps(value, indent=1, default=str).encode() + b"\n"
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
        )
        if not head_only:
            writer.write(body)
        await writer.drain()
