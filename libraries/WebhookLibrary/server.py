"""The HTTP side: a ``ThreadingHTTPServer`` per receiver, serving in a background thread.

Server threads never log: they record into the receiver's ``RequestStore`` and answer with the receiver's
current ``WebhookResponse``. Everything else happens in the keyword thread.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from WebhookLibrary.recording import RequestStore, WebhookRequest

MAX_BODY_BYTES = 10 * 1024 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class WebhookResponse:
    """What the receiver answers: ``ACK/Jasmin`` with 200 by default, as Jasmin's DLR thrower requires."""

    status: int = 200
    body: str = "ACK/Jasmin"
    delay: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 599:
            raise ValueError(f"Response status {self.status} is not an HTTP status to answer with; use 200 to 599.")
        if self.delay < timedelta(0):
            raise ValueError(f"Response delay {self.delay} is negative; use 0 s or more.")


class ResponsePlan:
    """The standing response plus one-shot responses used first (e.g. "answer 500 twice, then 200")."""

    def __init__(self, standing: WebhookResponse) -> None:
        self._lock = threading.Lock()
        self._standing = standing
        self._next: deque[WebhookResponse] = deque()

    def set(self, response: WebhookResponse, count: int | None = None) -> None:
        with self._lock:
            if count is None:
                self._standing = response
                self._next.clear()
            else:
                self._next.extend([response] * count)

    def take(self) -> WebhookResponse:
        with self._lock:
            return self._next.popleft() if self._next else self._standing


class _Handler(BaseHTTPRequestHandler):
    server_version = "telco-robot-webhook/1"
    timeout = 30  # seconds a silent client may hold a server thread

    @property
    def receiver(self) -> WebhookReceiver:
        return cast(_Server, self.server).receiver

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: server threads must not write to stderr or Robot's log."""

    def _handle(self) -> None:
        receiver = self.receiver
        path = self.path.partition("?")[0]
        if not receiver.accepts_path(path):
            receiver.store.note_rejected(f"{self.command} {self.path}")
            self._respond(404, f"Not under the webhook base path {receiver.base_path}\n")
            return
        body = self._read_body()
        if body is None:
            return
        response = receiver.responses.take()
        receiver.store.add(
            WebhookRequest.parse(
                receiver=receiver.alias,
                method=self.command,
                target=self.path,
                headers=self.headers,
                raw_body=body,
                client=f"{self.client_address[0]}:{self.client_address[1]}",
                response_status=response.status,
            )
        )
        if response.delay and receiver.stopping.wait(response.delay.total_seconds()):
            return
        with contextlib.suppress(ConnectionError):  # the caller gave up waiting (e.g. on a delayed answer)
            self._respond(response.status, response.body)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._respond(413, f"Body over {MAX_BODY_BYTES} bytes\n")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _respond(self, status: int, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops bursts of concurrent callbacks into 1 s SYN retries

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep the error for the keyword thread instead of printing a traceback from a server thread."""
        error = sys.exc_info()[1]
        self.receiver.store.note_error(f"{type(error).__name__}: {error} (client {client_address})")


class _Server6(_Server):
    address_family = socket.AF_INET6


class WebhookReceiver:
    """One listening endpoint: its server, background thread, recorded requests and response plan."""

    def __init__(
        self,
        alias: str,
        *,
        host: str,
        port: int,
        base_path: str,
        response: WebhookResponse,
    ) -> None:
        self.alias = alias
        self.host = host
        self.base_path = normalize_base_path(base_path)
        self.store = RequestStore()
        self.responses = ResponsePlan(response)
        self.stopping = threading.Event()
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), self)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"webhook-receiver-{alias}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.base_path}"

    @property
    def running(self) -> bool:
        return not self.stopping.is_set()

    def accepts_path(self, path: str) -> bool:
        return path.startswith(self.base_path) or path == self.base_path.rstrip("/")

    def stop(self) -> bool:
        """Stop serving and free the port; returns ``False`` when it was already stopped."""
        if self.stopping.is_set():
            return False
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        return True

    close = stop  # for robot.utils.ConnectionCache.close_all


def normalize_base_path(path: str) -> str:
    """``dlr`` and ``/dlr`` become ``/dlr/``; the base path always starts and ends with ``/``."""
    if "?" in path or "#" in path:
        raise ValueError(f"Base path '{path}' must be a plain path without '?' or '#', e.g. '/dlr/'.")
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"
