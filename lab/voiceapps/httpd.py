"""GET /health, /events and /calls of the application server (stdlib ``ThreadingHTTPServer``, own thread).

| GET /health | 200 when the SIP transport is pumped and the SMPP bind is up, else 503; JSON either way |
| GET /events | what happened, oldest first: ``?type=sms_sent,dtmf_detected`` and ``?since=<seq>`` filter |
| GET /calls  | the calls in progress                                                                  |
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


class StatusSource(Protocol):
    events: Any

    def health(self) -> dict[str, Any]: ...

    def calls(self) -> list[dict[str, Any]]: ...


class StatusServer:
    def __init__(self, app: StatusSource, *, host: str, port: int) -> None:
        handler = type("VoiceAppsHandler", (_Handler,), {"app": app})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="voiceapps-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    app: StatusSource
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        args = {key: values[-1] for key, values in urllib.parse.parse_qs(query).items()}
        try:
            if path.rstrip("/") == "/health":
                health = self.app.health()
                self._send(HTTPStatus.OK if health["ok"] else HTTPStatus.SERVICE_UNAVAILABLE, health)
            elif path.rstrip("/") == "/events":
                since = int(args.get("since") or 0)
                self._send(HTTPStatus.OK, self.app.events.list(kind=args.get("type"), since=since))
            elif path.rstrip("/") == "/calls":
                self._send(HTTPStatus.OK, self.app.calls())
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": f"No GET {path}; try /health, /events or /calls."})
        except ValueError as error:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except Exception as error:  # the status API must answer, never die
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"})

    def _send(self, status: HTTPStatus, body: Any) -> None:
        data = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
