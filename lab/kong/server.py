"""HTTP/1.1 plumbing: a threaded server (one thread per connection, keep-alive) around a plain handler function.

The Admin API and the proxy are functions from `Request` to `Response`, so they can be tested without a
socket; this module only moves bytes. decK opens 15 connections at once, so the server must not serialise them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from lab.kong.schema import KONG_VERSION

log = logging.getLogger("lab.kong")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
KEEPALIVE_TIMEOUT = 60.0


@dataclass
class Request:
    """A request as the handlers see it: ``path`` without the query string, headers in arrival order."""

    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    client: tuple[str, int] = ("127.0.0.1", 0)
    scheme: str = "http"
    server_port: int = 0

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def query_args(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        wanted = name.lower()
        self.headers = [(key, item) for key, item in self.headers if key.lower() != wanted]
        self.headers.append((name, value))


Handler = Callable[[Request], Response]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"kong/{KONG_VERSION}"
    sys_version = ""
    timeout = KEEPALIVE_TIMEOUT
    disable_nagle_algorithm = True
    server: HttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError as error:
            self.send_error(400, str(error))
            return
        path, _, query = self.path.partition("?")
        request = Request(
            method=self.command,
            path=path,
            query=query,
            headers=list(self.headers.items()),
            body=body,
            client=(str(self.client_address[0]), int(self.client_address[1])),
            server_port=self.server.server_address[1],
        )
        try:
            response = self.server.handler(request)
        except Exception:
            log.exception("%s %s failed", self.command, path)
            response = Response(
                500,
                [("Content-Type", "application/json; charset=utf-8")],
                b'{"message":"An unexpected error occurred"}',
            )
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537).split(b";", 1)[0].strip()
                size = int(size_line or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit():
            raise ValueError(f"bad Content-Length {length!r}")
        return self.rfile.read(int(length))

    def _write(self, response: Response) -> None:
        self.send_response_only(response.status)
        names = {key.lower() for key, _value in response.headers}
        if "date" not in names:
            self.send_header("Date", formatdate(usegmt=True))
        for key, value in response.headers:
            if key.lower() in HOP_BY_HOP or key.lower() == "content-length":
                continue
            self.send_header(key, value)
        if response.status >= 200 and response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.status not in (204, 304):
            self.wfile.write(response.body)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class HttpServer(ThreadingHTTPServer):
    """A listening socket served by one thread per connection."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, host: str, port: int, handler: Handler) -> None:
        self.handler = handler
        super().__init__((host, port), _RequestHandler)

    def start(self, name: str) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True)
        thread.start()
        return thread


def json_response(status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    return Response(
        status,
        [("Content-Type", "application/json; charset=utf-8"), *headers],
        payload,
    )
