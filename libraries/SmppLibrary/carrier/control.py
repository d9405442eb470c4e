"""The carrier's HTTP/JSON control API, and a client for it that reads like a local `CarrierSmsc`.

Endpoints (all JSON):

| GET    /status     | port, binds, behaviour, counters                                          |
| GET    /submits    | every submit_sm/data_sm recorded                                          |
| DELETE /submits    | forget recorded submits and deliveries                                    |
| GET    /deliveries | every deliver_sm sent or queued (receipts and MO)                         |
| GET    /binds      | current binds                                                             |
| GET    /behaviour  | how the carrier answers (``?destination=N``: what a submit to N gets)     |
| PUT    /behaviour  | change it: submit_status, latency, dlr_state, dlr_delay, dlr_error, ...  |
|                    | with ``destination``: a rule for destinations starting with that prefix   |
| DELETE /behaviour  | ``destination``: remove that rule; none: every rule, default restored     |
| GET    /behaviour/rules | the destination rules                                               |
| POST   /mo         | inject an MO SMS: source, destination, text, coding, system_id            |
| POST   /dlr        | send a receipt: message_id, state, error                                  |
| POST   /drop       | close every ESME connection (a fault)                                     |
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from SmppLibrary.carrier.server import CarrierSmsc
from SmppLibrary.errors import CarrierError


class CarrierApi(Protocol):
    """What the carrier keywords need; `CarrierSmsc` (in-process) and `RemoteCarrier` (HTTP) provide it."""

    def submits(self) -> list[dict[str, Any]]: ...

    def deliveries(self) -> list[dict[str, Any]]: ...

    def clear(self) -> int: ...

    def behaviour(self, *, destination: str | None = None) -> dict[str, Any]: ...

    def set_behaviour(self, *, destination: str | None = None, **changes: Any) -> dict[str, Any]: ...

    def clear_behaviour(self, *, destination: str | None = None) -> dict[str, Any]: ...

    def behaviour_rules(self) -> list[dict[str, Any]]: ...

    def binds(self) -> list[dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...

    def send_mo(
        self, source: str, destination: str, text: str, *, coding: str = "auto", system_id: str | None = None
    ) -> dict[str, Any]: ...

    def send_dlr(self, message_id: str, *, state: str = "DELIVRD", error: int | None = None) -> dict[str, Any]: ...

    def drop_connections(self) -> int: ...


class ControlServer:
    """Serves the control API for one carrier on its own thread (stdlib ``ThreadingHTTPServer``)."""

    def __init__(self, carrier: CarrierSmsc, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.carrier = carrier
        handler = type("CarrierControlHandler", (_Handler,), {"carrier": carrier})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"carrier-control-{self.port}")
        self._thread.daemon = True
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    carrier: CarrierSmsc
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the supervisor keeps stderr for real problems

    def do_GET(self) -> None:
        routes = {
            "/status": self.carrier.status,
            "/health": lambda: {"ok": True, "port": self.carrier.port},
            "/submits": self.carrier.submits,
            "/deliveries": self.carrier.deliveries,
            "/binds": self.carrier.binds,
            "/behaviour": lambda: self.carrier.behaviour(destination=self._query().get("destination")),
            "/behaviour/rules": self.carrier.behaviour_rules,
        }
        self._route(routes)

    def do_DELETE(self) -> None:
        routes = {
            "/submits": lambda: {"cleared": self.carrier.clear()},
            "/behaviour": lambda: self.carrier.clear_behaviour(destination=self._destination()),
        }
        self._route(routes)

    def do_PUT(self) -> None:
        self._route({"/behaviour": lambda: self.carrier.set_behaviour(**self._body())})

    def do_POST(self) -> None:
        routes = {
            "/behaviour": lambda: self.carrier.set_behaviour(**self._body()),
            "/mo": self._mo,
            "/dlr": self._dlr,
            "/drop": lambda: {"dropped": self.carrier.drop_connections()},
        }
        self._route(routes)

    def _mo(self) -> dict[str, Any]:
        body = self._body()
        missing = [name for name in ("source", "destination", "text") if name not in body]
        if missing:
            raise ValueError(f"POST /mo needs {', '.join(missing)}.")
        return self.carrier.send_mo(
            str(body["source"]),
            str(body["destination"]),
            str(body["text"]),
            coding=str(body.get("coding") or "auto"),
            system_id=body.get("system_id"),
        )

    def _dlr(self) -> dict[str, Any]:
        body = self._body()
        if "message_id" not in body:
            raise ValueError("POST /dlr needs message_id.")
        error = body.get("error")
        return self.carrier.send_dlr(
            str(body["message_id"]),
            state=str(body.get("state") or "DELIVRD"),
            error=int(error) if error is not None else None,
        )

    def _query(self) -> dict[str, str]:
        query = urllib.parse.parse_qs(self.path.partition("?")[2])
        return {key: values[-1] for key, values in query.items()}

    def _destination(self) -> str | None:
        """``destination`` from the JSON body or the query string (DELETE bodies are unusual)."""
        value = self._body().get("destination") or self._query().get("destination")
        return str(value) if value not in (None, "") else None

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data = json.loads(self.rfile.read(length))
        if not isinstance(data, dict):
            raise ValueError("The request body must be a JSON object.")
        return data

    def _route(self, routes: dict[str, Any]) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        action = routes.get(path)
        if action is None:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"No {self.command} {path}."})
            return
        try:
            result = action()
        except (ValueError, TypeError) as error:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except CarrierError as error:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)})
        except Exception as error:  # the control API must answer, never die
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"})
        else:
            self._send(HTTPStatus.OK, result)

    def _send(self, status: HTTPStatus, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class RemoteCarrier:
    """A carrier SMSC run elsewhere (the lab supervisor's), driven through its control API."""

    def __init__(self, control_url: str, *, timeout: float = 10.0) -> None:
        if not control_url.startswith(("http://", "https://")):
            raise ValueError(f"Control URL '{control_url}' must start with http:// (e.g. http://127.0.0.1:8776).")
        self.url = control_url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            try:
                detail = json.loads(error.read()).get("error", error.reason)
            except ValueError:
                detail = error.reason
            raise CarrierError(f"Carrier control API {method} {path} answered {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CarrierError(
                f"Cannot reach the carrier control API at {self.url} ({reason}). "
                "Check that the carrier runs (lab supervisor) and the control URL in the variables file."
            ) from None

    def submits(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/submits"))

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/deliveries"))

    def clear(self) -> int:
        return int(self._request("DELETE", "/submits")["cleared"])

    def behaviour(self, *, destination: str | None = None) -> dict[str, Any]:
        query = f"?{urllib.parse.urlencode({'destination': destination})}" if destination is not None else ""
        return dict(self._request("GET", f"/behaviour{query}"))

    def set_behaviour(self, *, destination: str | None = None, **changes: Any) -> dict[str, Any]:
        body = {**changes, "destination": destination} if destination is not None else changes
        return dict(self._request("PUT", "/behaviour", body))

    def clear_behaviour(self, *, destination: str | None = None) -> dict[str, Any]:
        return dict(self._request("DELETE", "/behaviour", {"destination": destination}))

    def behaviour_rules(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/behaviour/rules"))

    def binds(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/binds"))

    def status(self) -> dict[str, Any]:
        return dict(self._request("GET", "/status"))

    def send_mo(
        self, source: str, destination: str, text: str, *, coding: str = "auto", system_id: str | None = None
    ) -> dict[str, Any]:
        body = {"source": source, "destination": destination, "text": text, "coding": coding, "system_id": system_id}
        return dict(self._request("POST", "/mo", body))

    def send_dlr(self, message_id: str, *, state: str = "DELIVRD", error: int | None = None) -> dict[str, Any]:
        return dict(self._request("POST", "/dlr", {"message_id": message_id, "state": state, "error": error}))

    def drop_connections(self) -> int:
        return int(self._request("POST", "/drop", {})["dropped"])
