"""The lab platform API (``lab/platform``) with FastAPI's TestClient, against fakes of its peers.

The SIP proxies are fake Kamailio JSON-RPC endpoints that record every call; the SMS gateway is a fake
Jasmin ``/send``; the customer's webhook endpoint is a recording HTTP server. Delivery receipts are posted to the
platform's own ``dlr-url`` exactly as the gateway would. Every test runs on SQLite (new files per test) and, when
``BILLING_TEST_POSTGRES_URL`` names a PostgreSQL server (as ``make unit`` does), on PostgreSQL too (a new database
per module, emptied before each test).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import sqlalchemy as sa
from starlette.exceptions import StarletteDeprecationWarning

from lab.platform import create_app
from lab.platform.cdrs import metadata as cdr_metadata
from lab.platform.config import ConfigError, parse
from lab.platform.models import Base, SmsMessage

with warnings.catch_warnings():  # starlette prefers httpx2; the venv pins httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

ACME = {"X-Consumer-Username": "acme", "X-Consumer-ID": "0b5a0d7e-0000-4000-8000-000000000001"}
GLOBEX = {"X-Consumer-Username": "globex", "X-Consumer-ID": "0b5a0d7e-0000-4000-8000-000000000002"}
SMS_PASSWORD = "apps-secret-1"


# --- fakes of the platform's peers ------------------------------------------------------------------------


class _Server:
    """A threaded HTTP server on a free loopback port whose requests go to ``handle``."""

    def __init__(self, handle: Callable[[str, str, dict[str, str], bytes], tuple[int, str, bytes]]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, content_type, payload = handle(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        outer.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class FakeKamailio:
    """A SIP proxy's JSON-RPC endpoint: records calls; ``fail`` maps a method to an error; ``dialogs`` for dlg.list."""

    name: str
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)
    dialogs: list[dict[str, Any]] = field(default_factory=list)
    server: _Server | None = None

    def start(self) -> FakeKamailio:
        self.server = _Server(self._handle)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/RPC"

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        request = json.loads(body)
        self.calls.append((request["method"], request["params"]))
        if request["method"] in self.fail:
            answer = {
                "jsonrpc": "2.0",
                "error": {"code": 500, "message": self.fail[request["method"]]},
                "id": request["id"],
            }
        elif request["method"] == "dlg.list":
            answer = {"jsonrpc": "2.0", "result": self.dialogs, "id": request["id"]}
        else:
            answer = {"jsonrpc": "2.0", "result": {}, "id": request["id"]}
        return 200, "application/json", json.dumps(answer).encode()

    def htable_calls(self) -> list[tuple[str, list[Any]]]:
        return [call for call in self.calls if call[0].startswith("htable.")]


@dataclass
class FakeJasmin:
    """Jasmin's HTTP ``/send``: records the form of each submit; ``refuse`` answers (status, Error text)."""

    sends: list[dict[str, str]] = field(default_factory=list)
    refuse: tuple[int, str] | None = None
    server: _Server | None = None

    def start(self) -> FakeJasmin:
        self.server = _Server(self._handle)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        form = {key: values[-1] for key, values in parse_qs(body.decode()).items()}
        if self.refuse is not None:
            return self.refuse[0], "text/plain", f'Error "{self.refuse[1]}"'.encode()
        form["_id"] = str(uuid.uuid4())
        self.sends.append(form)
        return 200, "text/plain", f'Success "{form["_id"]}"'.encode()


@dataclass
class Receiver:
    """The customer's webhook endpoint: records (headers, body); answers ``status``."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200
    server: _Server | None = None

    def start(self) -> Receiver:
        self.server = _Server(self._handle)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/hooks"

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        self.requests.append(({key.lower(): value for key, value in headers.items()}, body))
        return self.status, "text/plain", b"ok"

    def events(self, event: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(headers, json.loads(body)) for headers, body in self.requests if json.loads(body)["event"] == event]


def wait_for(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- fixtures ---------------------------------------------------------------------------------------------


@contextmanager
def _postgres_database(server_url: str) -> Iterator[str]:
    """A new database ``platform_test_<random>`` on the server of ``server_url``; dropped afterwards."""
    name = f"platform_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """``sqlite``, or the URL of a PostgreSQL database of this module."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    server_url = os.environ.get("BILLING_TEST_POSTGRES_URL", "")
    if not server_url:
        reason = "BILLING_TEST_POSTGRES_URL is not set (e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/postgres)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL platform tests are required under CI=true: {reason}")
        pytest.skip(reason)
    with _postgres_database(server_url) as url:
        yield url


def _databases(backend: str, folder: Path) -> tuple[str, str]:
    """The platform's and the CDR database of one test: new SQLite files, or the emptied PostgreSQL one."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'platform.db'}", f"sqlite:///{folder / 'cdr.db'}"
    engine = sa.create_engine(backend)
    try:
        Base.metadata.drop_all(engine)
        cdr_metadata.drop_all(engine)
    finally:
        engine.dispose()
    return backend, backend


@dataclass
class Lab:
    client: TestClient
    proxies: list[FakeKamailio]
    jasmin: FakeJasmin
    receiver: Receiver
    cdr_url: str
    app: Any


@pytest.fixture
def lab(backend: str, tmp_path: Path) -> Iterator[Lab]:
    database, cdr_url = _databases(backend, tmp_path)
    proxies = [FakeKamailio("kamailio-a").start(), FakeKamailio("kamailio-b").start()]
    jasmin = FakeJasmin().start()
    receiver = Receiver().start()
    config = parse(
        {
            "host": "127.0.0.1",
            "port": 1,
            "database": database,
            "sms": {"http_url": jasmin.url, "username": "apps", "password": SMS_PASSWORD},
            "voice_rpc": [proxy.url for proxy in proxies],
            "cdr_database": cdr_url,
            "webhook_timeout": 2,
            "webhook_retry_delay": 0.05,
            "webhook_max_attempts": 3,
            "cdr_poll_interval": 0.05,
            "campaign_tick": 0.01,
            "sip_domain": "lab.example",
        }
    )
    app = create_app(config)
    with TestClient(app) as client:
        yield Lab(client, proxies, jasmin, receiver, cdr_url, app)
    for server in (*proxies, jasmin, receiver):
        assert server.server is not None
        server.server.close()


def _error(response: Any, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    assert body["error"]["field"] == field, body
    assert body["error"]["message"]
    return body["error"]


def _dlr(lab: Lab, send: dict[str, str], level: int, status: str, err: str = "000") -> Any:
    """Post a DLR to the platform's dlr-url as Jasmin's thrower does (form body)."""
    parts = urlsplit(send["dlr-url"])
    form = {"id": send["_id"], "level": str(level), "message_status": status, "connector": "carrier-a"}
    if level == 2:
        form.update({"id_smsc": "abc", "sub": "001", "dlvrd": "001" if status == "DELIVRD" else "000", "err": err})
    return lab.client.post(f"{parts.path}?{parts.query}", data=form)


def _onboard(lab: Lab, headers: dict[str, str], phone: str = "+254700000001", email: str = "ann@acme.example") -> dict:
    started = lab.client.post(
        "/api/v1/onboarding", json={"name": "Ann", "email": email, "phone": phone}, headers=headers
    )
    assert started.status_code == 201, started.text
    code = re.search(r"\b(\d{6})\b", lab.jasmin.sends[-1]["content"]).group(1)  # type: ignore[union-attr]
    verified = lab.client.post(
        f"/api/v1/onboarding/{started.json()['id']}/verify", json={"code": code}, headers=headers
    )
    assert verified.status_code == 200, verified.text
    return verified.json()


def _trunk(lab: Lab, headers: dict[str, str] = ACME, **fields: Any) -> dict[str, Any]:
    body = {"name": "main", "number": "+254711000001", **fields}
    response = lab.client.post("/api/v1/trunks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _webhook(lab: Lab, events: list[str], headers: dict[str, str] = ACME) -> dict[str, Any]:
    response = lab.client.post("/api/v1/webhooks", json={"url": lab.receiver.url, "events": events}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _signature_ok(headers: dict[str, str], body: bytes, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-platform-signature"], expected)


# --- auth, health, contract -------------------------------------------------------------------------------


def test_health_needs_no_consumer_but_the_api_does(lab: Lab) -> None:
    assert lab.client.get("/health").json() == {"status": "ok", "database": lab.app.state.database}
    error = _error(lab.client.get("/api/v1/trunks"), 401, "x_consumer_username")
    assert error["code"] == "unauthorized"
    assert "gateway" in error["message"]
    anonymous = {"X-Consumer-Username": "anonymous", "X-Anonymous-Consumer": "true"}
    _error(lab.client.get("/api/v1/trunks", headers=anonymous), 401, "x_consumer_username")
    # refused before the body is read: nothing written
    _error(lab.client.post("/api/v1/templates", json={"name": "x", "body": "y"}), 401, "x_consumer_username")
    assert lab.client.get("/api/v1/templates", headers=ACME).json() == {"data": []}


def test_openapi_documents_every_resource(lab: Lab) -> None:
    paths = lab.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/trunks",
        "/api/v1/routing-rules",
        "/api/v1/caller-ids",
        "/api/v1/calls",
        "/api/v1/calls/{call_id}/transfer",
        "/api/v1/cdrs",
        "/api/v1/sms",
        "/api/v1/sms/{sms_id}",
        "/api/v1/templates/{template_id}/render",
        "/api/v1/campaigns/{campaign_id}/contacts",
        "/api/v1/analytics/sms",
        "/api/v1/webhooks",
        "/api/v1/onboarding/{onboarding_id}/verify",
        "/internal/dlr/{sms_id}",
        "/health",
    ):
        assert path in paths, path


def test_malformed_json_schema_violations_and_unknown_ids_name_the_field(lab: Lab) -> None:
    bad_json = lab.client.post(
        "/api/v1/templates", content=b'{"name": "x",', headers={**ACME, "Content-Type": "application/json"}
    )
    assert _error(bad_json, 400, "body")["code"] == "bad_request"
    not_json = lab.client.post("/api/v1/templates", content=b"name=x", headers={**ACME, "Content-Type": "text/plain"})
    _error(not_json, 400, "body")
    _error(lab.client.post("/api/v1/templates", json=[1], headers=ACME), 422, "body")
    _error(lab.client.post("/api/v1/templates", json={"name": "x"}, headers=ACME), 422, "body")
    _error(
        lab.client.post("/api/v1/templates", json={"name": "x", "body": "y", "colour": 1}, headers=ACME), 422, "colour"
    )
    missing = lab.client.post("/api/v1/sms", json={"to": "+254700000001", "text": "hi"}, headers=ACME)
    assert _error(missing, 422, "from")["message"] == "from is required"
    _error(lab.client.post("/api/v1/sms", json={"to": "12", "from": "Acme", "text": "x"}, headers=ACME), 422, "to")
    hook = lab.client.post("/api/v1/webhooks", json={"url": "ftp://x", "events": ["sms.delivered"]}, headers=ACME)
    _error(hook, 422, "url")
    bad_event = lab.client.post(
        "/api/v1/webhooks", json={"url": lab.receiver.url, "events": ["sms.lost"]}, headers=ACME
    )
    _error(bad_event, 422, "events.0")
    _error(lab.client.get("/api/v1/trunks/99", headers=ACME), 404, "trunk_id")
    _error(lab.client.get("/api/v1/templates/7", headers=ACME), 404, "template_id")
    _error(lab.client.get("/api/v1/sms/nope", headers=ACME), 404, "sms_id")
    _error(lab.client.get("/api/v1/campaigns/3", headers=ACME), 404, "campaign_id")
    _error(lab.client.delete("/api/v1/webhooks/5", headers=ACME), 404, "webhook_id")
    _error(lab.client.get("/api/v1/cdrs?since=yesterday", headers=ACME), 422, "since")
    _error(lab.client.get("/api/v1/nowhere", headers=ACME), 404, "path")
    # nothing of it was written
    assert lab.client.get("/api/v1/templates", headers=ACME).json() == {"data": []}
    assert lab.client.get("/api/v1/webhooks", headers=ACME).json() == {"data": []}


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="lacks voice_rpc"):
        parse({"host": "127.0.0.1", "port": 1, "database": "sqlite://", "sms": {}, "cdr_database": "sqlite://"})
    with pytest.raises(ConfigError, match="'sms' must have"):
        parse(
            {"host": "h", "port": 1, "database": "d", "sms": {"http_url": "x"}, "voice_rpc": ["x"], "cdr_database": "c"}
        )
    good = {
        "host": "127.0.0.1",
        "port": 18090,
        "database": "sqlite://",
        "sms": {"http_url": "http://127.0.0.1:11401", "username": "apps", "password": "pw"},
        "voice_rpc": "http://127.0.0.1:15061/RPC",
        "cdr_database": "sqlite://",
    }
    config = parse(good)
    assert config.voice_rpc == ["http://127.0.0.1:15061/RPC"]
    assert config.public_url == "http://127.0.0.1:18090"
    assert "pw" not in repr(config)
    with pytest.raises(ConfigError, match="webhook_timeout"):
        parse({**good, "webhook_timeout": 0})


# --- onboarding -------------------------------------------------------------------------------------------


def test_onboarding_texts_a_code_and_verifying_it_activates_the_account(lab: Lab) -> None:
    _error(
        lab.client.post("/api/v1/trunks", json={"name": "t", "number": "+254711000001"}, headers=ACME), 403, "account"
    )
    hooks = _webhook(lab, ["onboarding.verified"])
    started = lab.client.post(
        "/api/v1/onboarding", json={"name": "Ann", "email": "Ann@Acme.example", "phone": "+254700000001"}, headers=ACME
    )
    assert started.status_code == 201, started.text
    onboarding = started.json()
    assert onboarding["status"] == "pending"
    assert onboarding["attempts_left"] == 5
    assert onboarding["account"]["status"] == "unverified"
    send = lab.jasmin.sends[-1]
    assert send["to"] == "254700000001"
    assert send["username"] == "apps"
    assert send["password"] == SMS_PASSWORD
    code = re.search(r"\b(\d{6})\b", send["content"]).group(1)  # type: ignore[union-attr]
    wrong = "000000" if code != "000000" else "111111"
    error = _error(
        lab.client.post(f"/api/v1/onboarding/{onboarding['id']}/verify", json={"code": wrong}, headers=ACME),
        422,
        "code",
    )
    assert "4 attempt(s) left" in error["message"]
    _error(
        lab.client.post(f"/api/v1/onboarding/{onboarding['id']}/verify", json={"code": "12"}, headers=ACME), 422, "code"
    )
    _error(
        lab.client.post(f"/api/v1/onboarding/{onboarding['id']}/verify", json={"code": code}, headers=GLOBEX),
        404,
        "onboarding_id",
    )
    verified = lab.client.post(f"/api/v1/onboarding/{onboarding['id']}/verify", json={"code": code}, headers=ACME)
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "verified"
    account = lab.client.get("/api/v1/account", headers=ACME).json()
    assert account["status"] == "active"
    assert account["email"] == "ann@acme.example"
    assert account["phone"] == "+254700000001"
    assert account["consumer_id"] == ACME["X-Consumer-ID"]
    _trunk(lab)  # an active account can provision a trunk
    _error(
        lab.client.post(f"/api/v1/onboarding/{onboarding['id']}/verify", json={"code": code}, headers=ACME),
        409,
        "onboarding_id",
    )
    headers, payload = wait_for(lambda: lab.receiver.events("onboarding.verified"), what="onboarding webhook")[0]
    assert payload["data"]["account"]["username"] == "acme"
    assert _signature_ok(headers, lab.receiver.requests[0][1], hooks["secret"])


def test_five_wrong_codes_lock_the_onboarding(lab: Lab) -> None:
    started = lab.client.post(
        "/api/v1/onboarding",
        json={"name": "Bo", "email": "bo@globex.example", "phone": "+254700000002"},
        headers=GLOBEX,
    ).json()
    code = re.search(r"\b(\d{6})\b", lab.jasmin.sends[-1]["content"]).group(1)  # type: ignore[union-attr]
    wrong = "000000" if code != "000000" else "111111"
    url = f"/api/v1/onboarding/{started['id']}/verify"
    for left in (4, 3, 2, 1):
        assert (
            f"{left} attempt(s) left"
            in _error(lab.client.post(url, json={"code": wrong}, headers=GLOBEX), 422, "code")["message"]
        )
    assert "locked" in _error(lab.client.post(url, json={"code": wrong}, headers=GLOBEX), 422, "code")["message"]
    assert "locked" in _error(lab.client.post(url, json={"code": code}, headers=GLOBEX), 409, "code")["message"]
    assert lab.client.get("/api/v1/account", headers=GLOBEX).json()["status"] == "unverified"


def test_onboarding_writes_nothing_when_the_code_cannot_be_sent(lab: Lab) -> None:
    lab.jasmin.refuse = (403, "Authentication failure for username:apps")
    response = lab.client.post(
        "/api/v1/onboarding", json={"name": "Cy", "email": "cy@x.example", "phone": "+254700000003"}, headers=ACME
    )
    error = _error(response, 502, "sms_gateway")
    assert "Authentication failure" in error["message"]
    with lab.app.state.platform.sessions() as session:
        assert session.scalar(sa.text("SELECT COUNT(*) FROM accounts")) == 0
        assert session.scalar(sa.text("SELECT COUNT(*) FROM onboardings")) == 0
        assert session.scalar(sa.text("SELECT COUNT(*) FROM sms_messages")) == 0


# --- trunks, routing, caller ID: what reaches the proxies -------------------------------------------------


def test_trunk_is_pushed_to_every_proxy_with_exact_json_rpc(lab: Lab) -> None:
    _onboard(lab, ACME)
    trunk = _trunk(lab, allowed_ips=["203.0.113.7", "198.51.100.0/24"])
    user, password = trunk["sip"]["username"], trunk["sip"]["password"]
    assert password and trunk["sip"]["domain"] == "lab.example"
    assert trunk["caller_id"] == "+254711000001"
    assert trunk["allowed_ips"] == ["203.0.113.7/32", "198.51.100.0/24"]
    for proxy in lab.proxies:
        assert proxy.htable_calls() == [
            ("htable.sets", ["cli", user, "+254711000001"]),
            ("htable.sets", ["trunks", user, password]),
        ]
    assert lab.client.get(f"/api/v1/trunks/{trunk['id']}", headers=ACME).json()["sip"]["password"] is None
    _error(
        lab.client.post("/api/v1/trunks", json={"name": "main", "number": "+254711000002"}, headers=ACME), 409, "name"
    )
    # passthrough removes the cli entry; rotating the password sets the new one
    for proxy in lab.proxies:
        proxy.calls.clear()
    changed = lab.client.patch(f"/api/v1/trunks/{trunk['id']}", json={"caller_id_policy": "passthrough"}, headers=ACME)
    assert changed.json()["caller_id"] is None
    rotated = lab.client.post(f"/api/v1/trunks/{trunk['id']}/credentials", headers=ACME).json()
    assert rotated["sip"]["password"] not in (None, password)
    assert lab.proxies[1].htable_calls() == [
        ("htable.delete", ["cli", user]),
        ("htable.sets", ["trunks", user, rotated["sip"]["password"]]),
    ]
    for proxy in lab.proxies:
        proxy.calls.clear()
    assert lab.client.delete(f"/api/v1/trunks/{trunk['id']}", headers=ACME).status_code == 204
    assert lab.proxies[0].htable_calls() == [("htable.delete", ["trunks", user])]


def test_a_proxy_refusing_rolls_the_change_back_everywhere(lab: Lab) -> None:
    _onboard(lab, ACME)
    lab.proxies[1].fail["htable.sets"] = "table not found"
    response = lab.client.post("/api/v1/trunks", json={"name": "main", "number": "+254711000001"}, headers=ACME)
    error = _error(response, 502, "voice_rpc")
    assert lab.proxies[1].url in error["message"]
    assert "table not found" in error["message"]
    assert lab.client.get("/api/v1/trunks", headers=ACME).json() == {"data": []}
    applied = lab.proxies[0].htable_calls()
    user = applied[0][1][1]
    assert applied == [
        ("htable.sets", ["cli", user, "+254711000001"]),
        ("htable.sets", ["trunks", user, applied[1][1][2]]),
        ("htable.delete", ["trunks", user]),  # undone in reverse order
        ("htable.delete", ["cli", user]),
    ]
    # a proxy that is down counts the same
    lab.proxies[1].fail.clear()
    assert lab.proxies[1].server is not None
    lab.proxies[1].server.close()
    _error(
        lab.client.post("/api/v1/trunks", json={"name": "main", "number": "+254711000001"}, headers=ACME),
        502,
        "voice_rpc",
    )
    assert lab.client.get("/api/v1/trunks", headers=ACME).json() == {"data": []}


def test_routing_rules_push_the_rule_in_force_per_prefix(lab: Lab) -> None:
    _onboard(lab, ACME)
    trunk = _trunk(lab)
    for proxy in lab.proxies:
        proxy.calls.clear()
    low = lab.client.post(
        "/api/v1/routing-rules",
        json={"prefix": "+25420", "target_type": "trunk", "trunk_id": trunk["id"]},
        headers=ACME,
    ).json()
    assert low["target"] == f"sip:{trunk['sip']['username']}@lab.example"
    assert low["active"] is True
    high = lab.client.post(
        "/api/v1/routing-rules",
        json={"prefix": "25420", "target_type": "application", "uri": "sip:ivr@apps.lab.example", "priority": 10},
        headers=ACME,
    ).json()
    assert high["active"] is True
    assert lab.client.get(f"/api/v1/routing-rules/{low['id']}", headers=ACME).json()["active"] is False
    assert lab.client.delete(f"/api/v1/routing-rules/{high['id']}", headers=ACME).status_code == 204
    assert lab.client.delete(f"/api/v1/routing-rules/{low['id']}", headers=ACME).status_code == 204
    assert lab.proxies[1].htable_calls() == [
        ("htable.sets", ["routes", "25420", f"sip:{trunk['sip']['username']}@lab.example"]),
        ("htable.sets", ["routes", "25420", "sip:ivr@apps.lab.example"]),
        ("htable.sets", ["routes", "25420", f"sip:{trunk['sip']['username']}@lab.example"]),
        ("htable.delete", ["routes", "25420"]),
    ]
    user_rule = lab.client.post(
        "/api/v1/routing-rules", json={"prefix": "25421", "target_type": "user", "user": "alice"}, headers=ACME
    ).json()
    patched = lab.client.patch(f"/api/v1/routing-rules/{user_rule['id']}", json={"user": "bob"}, headers=ACME).json()
    assert patched["target"] == "sip:bob@lab.example"
    _error(
        lab.client.post("/api/v1/routing-rules", json={"prefix": "1", "target_type": "user"}, headers=ACME), 422, "user"
    )
    _error(
        lab.client.post(
            "/api/v1/routing-rules",
            json={"prefix": "1", "target_type": "user", "user": "a", "uri": "sip:x@y"},
            headers=ACME,
        ),
        422,
        "uri",
    )
    _error(
        lab.client.post(
            "/api/v1/routing-rules", json={"prefix": "1", "target_type": "trunk", "trunk_id": 99}, headers=ACME
        ),
        404,
        "trunk_id",
    )
    taken = lab.client.post(
        "/api/v1/routing-rules", json={"prefix": "25421", "target_type": "user", "user": "x"}, headers=GLOBEX
    )
    _error(taken, 409, "prefix")
    lab.client.post(
        "/api/v1/routing-rules", json={"prefix": "25422", "target_type": "trunk", "trunk_id": trunk["id"]}, headers=ACME
    )
    _error(lab.client.delete(f"/api/v1/trunks/{trunk['id']}", headers=ACME), 409, "trunk_id")


def test_dynamic_caller_id_sets_the_cli_table(lab: Lab) -> None:
    _onboard(lab, ACME)
    pooled = _trunk(lab, name="pool", caller_id_policy="from_pool", caller_id_pool=["+254711000002", "+254711000003"])
    fixed = _trunk(lab, name="fixed", number="+254711000009")
    user = pooled["sip"]["username"]
    for proxy in lab.proxies:
        proxy.calls.clear()
    created = lab.client.post(
        "/api/v1/caller-ids", json={"trunk_id": pooled["id"], "number": "+254711000003"}, headers=ACME
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["subject"] == user
    assert lab.client.get(f"/api/v1/trunks/{pooled['id']}", headers=ACME).json()["caller_id"] == "+254711000003"
    changed = lab.client.patch(f"/api/v1/caller-ids/{entry['id']}", json={"number": "+254711000002"}, headers=ACME)
    assert changed.json()["number"] == "+254711000002"
    person = lab.client.post(
        "/api/v1/caller-ids", json={"user": "alice", "number": "+254711000009"}, headers=ACME
    ).json()
    assert lab.proxies[0].htable_calls() == [
        ("htable.sets", ["cli", user, "+254711000003"]),
        ("htable.sets", ["cli", user, "+254711000002"]),
        ("htable.sets", ["cli", "alice", "+254711000009"]),
    ]
    _error(
        lab.client.post("/api/v1/caller-ids", json={"trunk_id": fixed["id"], "number": "+254711000009"}, headers=ACME),
        409,
        "trunk_id",
    )
    _error(
        lab.client.patch(f"/api/v1/caller-ids/{entry['id']}", json={"number": "+254799999999"}, headers=ACME),
        422,
        "number",
    )
    _error(
        lab.client.post("/api/v1/caller-ids", json={"user": "bob", "number": "+254799999999"}, headers=ACME),
        422,
        "number",
    )
    _error(
        lab.client.post("/api/v1/caller-ids", json={"user": "alice", "number": "+254711000009"}, headers=ACME),
        409,
        "user",
    )
    assert lab.client.delete(f"/api/v1/caller-ids/{person['id']}", headers=ACME).status_code == 204
    assert lab.proxies[1].htable_calls()[-1] == ("htable.delete", ["cli", "alice"])


# --- call control -----------------------------------------------------------------------------------------


def _dialog(call_id: str, caller: str, callee: str, h_entry: int, h_id: int, state: int = 4) -> dict[str, Any]:
    return {
        "h_entry": h_entry,
        "h_id": h_id,
        "ref": 2,
        "call-id": call_id,
        "from_uri": f"sip:{caller}@lab.example",
        "to_uri": f"sip:{callee}@lab.example",
        "state": state,
        "start_ts": 1_700_000_000,
        "init_ts": 1_699_999_998,
        "end_ts": 0,
        "caller": {
            "tag": "a1",
            "contact": f"sip:{caller}@127.0.0.1:5070",
            "cseq": 1,
            "route_set": "",
            "socket": "udp:x",
        },
        "callee": {
            "tag": "b2",
            "contact": f"sip:{callee}@127.0.0.1:5080",
            "cseq": 0,
            "route_set": "",
            "socket": "udp:x",
        },
    }


def test_call_control_lists_hangs_up_and_transfers_through_the_right_proxy(lab: Lab) -> None:
    _onboard(lab, ACME)
    trunk = _trunk(lab)
    user = trunk["sip"]["username"]
    lab.proxies[0].dialogs = [_dialog("other-call@x", "mallory", "254799000000", 10, 20)]
    lab.proxies[1].dialogs = [_dialog("call-1@127.0.0.1", user, "254733000001", 1234, 5678)]
    calls = lab.client.get("/api/v1/calls", headers=ACME).json()
    assert calls == {
        "data": [
            {
                "call_id": "call-1@127.0.0.1",
                "from": f"sip:{user}@lab.example",
                "to": "sip:254733000001@lab.example",
                "state": "answered",
                "start": "2023-11-14T22:13:20.000Z",
                "proxy": lab.proxies[1].url,
            }
        ],
        "unreachable": [],
    }
    hung_up = lab.client.delete(f"/api/v1/calls/{quote('call-1@127.0.0.1')}", headers=ACME)
    assert hung_up.status_code == 202, hung_up.text
    assert hung_up.json()["proxy"] == lab.proxies[1].url
    assert ("dlg.end_dlg", [1234, 5678]) in lab.proxies[1].calls
    assert not [call for call in lab.proxies[0].calls if call[0] == "dlg.end_dlg"]
    moved = lab.client.post("/api/v1/calls/call-1@127.0.0.1/transfer", json={"target": "254733000002"}, headers=ACME)
    assert moved.status_code == 202, moved.text
    assert ("telco.transfer", ["call-1@127.0.0.1", "sip:254733000002@lab.example"]) in lab.proxies[1].calls
    lab.client.post("/api/v1/calls/call-1@127.0.0.1/transfer", json={"target": "sip:q@apps.lab.example"}, headers=ACME)
    assert lab.proxies[1].calls[-1] == ("telco.transfer", ["call-1@127.0.0.1", "sip:q@apps.lab.example"])
    _error(lab.client.delete("/api/v1/calls/other-call@x", headers=ACME), 404, "call_id")  # not this account's
    lab.proxies[1].fail["telco.transfer"] = "no such dialog"
    error = _error(
        lab.client.post("/api/v1/calls/call-1@127.0.0.1/transfer", json={"target": "x"}, headers=ACME), 502, "voice_rpc"
    )
    assert "no such dialog" in error["message"]
    lab.proxies[0].fail["dlg.list"] = "dialog module not loaded"
    partial = lab.client.get("/api/v1/calls", headers=ACME).json()
    assert len(partial["data"]) == 1
    assert partial["unreachable"][0]["proxy"] == lab.proxies[0].url


# --- CDRs and the completion webhook ----------------------------------------------------------------------


def _seed_cdr(lab: Lab, call_id: str, caller: str, callee: str, start: datetime, seconds: float = 30.0) -> None:
    engine = sa.create_engine(lab.cdr_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO cdrs (call_id, from_uri, to_uri, caller, callee, start_time, answer_time, end_time, "
                "duration_s, disposition, sip_code, proxy) VALUES (:call_id, :f, :t, :caller, :callee, :start, "
                ":answer, :end, :duration, 'ANSWERED', 200, 'kamailio-a')"
            ),
            {
                "call_id": call_id,
                "f": f"sip:{caller}@lab.example",
                "t": f"sip:{callee}@lab.example",
                "caller": caller,
                "callee": callee,
                "start": start.replace(tzinfo=None),
                "answer": (start + timedelta(seconds=2)).replace(tzinfo=None),
                "end": (start + timedelta(seconds=2 + seconds)).replace(tzinfo=None),
                "duration": seconds,
            },
        )
    engine.dispose()


def test_cdrs_are_queried_by_account_and_announced_by_signed_webhook(lab: Lab) -> None:
    _onboard(lab, ACME)
    trunk = _trunk(lab)
    user = trunk["sip"]["username"]
    lab.client.post(
        "/api/v1/routing-rules", json={"prefix": "25455", "target_type": "user", "user": "alice"}, headers=ACME
    )
    hook = _webhook(lab, ["cdr.completed"])
    time.sleep(0.2)  # the poller has set its cursor; rows from here on are new
    start = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    _seed_cdr(lab, "c1", user, "254733000001", start)
    _seed_cdr(lab, "c2", "254799000000", "254550001", start + timedelta(hours=1))  # inbound by the route prefix
    _seed_cdr(lab, "c3", "mallory", "254799000001", start + timedelta(hours=2))  # another account's
    cdrs = lab.client.get("/api/v1/cdrs", headers=ACME).json()["data"]
    assert [row["call_id"] for row in cdrs] == ["c1", "c2"]
    assert cdrs[0]["start_time"] == "2025-03-01T10:00:00.000Z"
    assert cdrs[0]["duration_s"] == 30.0
    assert [r["call_id"] for r in lab.client.get("/api/v1/cdrs?call_id=c2", headers=ACME).json()["data"]] == ["c2"]
    assert [r["call_id"] for r in lab.client.get(f"/api/v1/cdrs?from={user}", headers=ACME).json()["data"]] == ["c1"]
    assert [r["call_id"] for r in lab.client.get("/api/v1/cdrs?to=%2B254733000001", headers=ACME).json()["data"]] == [
        "c1"
    ]
    assert [r["call_id"] for r in lab.client.get("/api/v1/cdrs?customer=main", headers=ACME).json()["data"]] == ["c1"]
    since = quote("2025-03-01T10:30:00Z")
    assert [r["call_id"] for r in lab.client.get(f"/api/v1/cdrs?since={since}", headers=ACME).json()["data"]] == ["c2"]
    _error(
        lab.client.get("/api/v1/cdrs?since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z", headers=ACME), 422, "until"
    )
    assert lab.client.get("/api/v1/cdrs", headers=GLOBEX).json() == {"data": []}
    announced = wait_for(
        lambda: len(lab.receiver.events("cdr.completed")) >= 2 and lab.receiver.events("cdr.completed")
    )
    assert sorted(payload["data"]["call_id"] for _, payload in announced) == ["c1", "c2"]
    for headers, body in lab.receiver.requests:
        assert headers["x-platform-event"] == "cdr.completed"
        assert _signature_ok(headers, body, hook["secret"])
    time.sleep(0.2)
    assert len(lab.receiver.requests) == 2  # each CDR announced once


# --- SMS, DLRs and their webhooks -------------------------------------------------------------------------


def test_sms_goes_through_the_gateway_and_dlrs_drive_status_and_signed_webhooks(lab: Lab) -> None:
    hook = _webhook(lab, ["sms.delivered", "sms.failed"])
    response = lab.client.post(
        "/api/v1/sms", json={"to": "+254700000009", "from": "Acme", "text": "Hello Ann"}, headers=ACME
    )
    assert response.status_code == 202, response.text
    sms = response.json()
    assert sms["status"] == "queued"
    assert sms["from"] == "Acme"
    assert sms["coding"] == "gsm7"
    send = lab.jasmin.sends[-1]
    assert {key: send[key] for key in ("to", "from", "content", "coding", "dlr", "dlr-level", "dlr-method")} == {
        "to": "254700000009",
        "from": "Acme",
        "content": "Hello Ann",
        "coding": "0",
        "dlr": "yes",
        "dlr-level": "3",
        "dlr-method": "POST",
    }
    assert send["dlr-url"].startswith(f"http://127.0.0.1:1/internal/dlr/{sms['id']}?token=")
    assert lab.client.get(f"/api/v1/sms/{sms['id']}", headers=ACME).json()["gateway_message_id"] == send["_id"]
    ack = _dlr(lab, send, 1, "ESME_ROK")
    assert ack.status_code == 200
    assert ack.text == "ACK/Jasmin"
    assert lab.client.get(f"/api/v1/sms/{sms['id']}", headers=ACME).json()["status"] == "accepted"
    _dlr(lab, send, 2, "DELIVRD")
    final = lab.client.get(f"/api/v1/sms/{sms['id']}", headers=ACME).json()
    assert final["status"] == "delivered"
    assert final["done_at"] is not None
    _dlr(lab, send, 2, "UNDELIV")  # a late receipt changes nothing
    assert lab.client.get(f"/api/v1/sms/{sms['id']}", headers=ACME).json()["status"] == "delivered"
    headers, payload = wait_for(lambda: lab.receiver.events("sms.delivered"), what="sms.delivered")[0]
    assert payload["data"]["id"] == sms["id"]
    assert payload["data"]["status"] == "delivered"
    assert payload["account"] == "acme"
    assert _signature_ok(headers, lab.receiver.requests[0][1], hook["secret"])
    assert not _signature_ok(headers, lab.receiver.requests[0][1], "not-the-secret")
    # a failed one
    lab.client.post("/api/v1/sms", json={"to": "254700000010", "from": "Acme", "text": "Ünïcode ✓"}, headers=ACME)
    failing = lab.jasmin.sends[-1]
    assert failing["coding"] == "8"
    _dlr(lab, failing, 2, "UNDELIV", err="001")
    headers, payload = wait_for(lambda: lab.receiver.events("sms.failed"), what="sms.failed")[0]
    assert payload["data"]["status"] == "failed"
    assert "UNDELIV" in payload["data"]["error"]
    assert [item["status"] for item in lab.client.get("/api/v1/sms", headers=ACME).json()["data"]] == [
        "delivered",
        "failed",
    ]
    _error(lab.client.get(f"/api/v1/sms/{sms['id']}", headers=GLOBEX), 404, "sms_id")


def test_dlr_callbacks_need_the_message_token(lab: Lab) -> None:
    sms = lab.client.post("/api/v1/sms", json={"to": "+254700000009", "from": "Acme", "text": "x"}, headers=ACME).json()
    forged = lab.client.post(f"/internal/dlr/{sms['id']}?token=0000", data={"level": "2", "message_status": "DELIVRD"})
    _error(forged, 403, "token")
    _error(
        lab.client.post(f"/internal/dlr/{sms['id']}", data={"level": "2", "message_status": "DELIVRD"}), 403, "token"
    )
    assert lab.client.get(f"/api/v1/sms/{sms['id']}", headers=ACME).json()["status"] == "queued"


def test_gateway_refusals_map_to_the_api_and_write_nothing(lab: Lab) -> None:
    lab.jasmin.refuse = (412, "No route found")
    _error(
        lab.client.post("/api/v1/sms", json={"to": "+999700000009", "from": "Acme", "text": "x"}, headers=ACME),
        422,
        "to",
    )
    lab.jasmin.refuse = (403, "User throughput exceeded")
    assert (
        _error(
            lab.client.post("/api/v1/sms", json={"to": "+254700000009", "from": "Acme", "text": "x"}, headers=ACME),
            429,
            None,
        )["code"]
        == "rate_limited"
    )
    lab.jasmin.refuse = None
    assert lab.jasmin.server is not None
    lab.jasmin.server.close()
    error = _error(
        lab.client.post("/api/v1/sms", json={"to": "+254700000009", "from": "Acme", "text": "x"}, headers=ACME),
        502,
        "sms_gateway",
    )
    assert lab.jasmin.url in error["message"]
    assert lab.client.get("/api/v1/sms", headers=ACME).json() == {"data": []}
    with lab.app.state.platform.sessions() as session:
        assert session.scalar(sa.text("SELECT COUNT(*) FROM accounts")) == 0
    _error(
        lab.client.post(
            "/api/v1/sms",
            json={"to": "+254700000009", "from": "Acme", "text": "x", "coding": "gsm7", "template_id": 1},
            headers=ACME,
        ),
        422,
        "template_id",
    )
    _error(
        lab.client.post(
            "/api/v1/sms", json={"to": "+254700000009", "from": "Acme", "text": "✓", "coding": "gsm7"}, headers=ACME
        ),
        422,
        "text",
    )


# --- templates --------------------------------------------------------------------------------------------


def test_templates_render_and_name_a_missing_variable(lab: Lab) -> None:
    created = lab.client.post(
        "/api/v1/templates", json={"name": "otp", "body": "Hi {{name}}, your code is {{ code }}."}, headers=ACME
    )
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["variables"] == ["name", "code"]
    rendered = lab.client.post(
        f"/api/v1/templates/{template['id']}/render", json={"variables": {"name": "Ann", "code": 1234}}, headers=ACME
    )
    assert rendered.json() == {"template_id": template["id"], "text": "Hi Ann, your code is 1234.", "coding": "gsm7"}
    missing = lab.client.post(
        f"/api/v1/templates/{template['id']}/render", json={"variables": {"name": "Ann"}}, headers=ACME
    )
    assert _error(missing, 422, "variables.code")["message"] == "variables.code is required by the template"
    _error(lab.client.post("/api/v1/templates", json={"name": "otp", "body": "x"}, headers=ACME), 409, "name")
    _error(lab.client.post("/api/v1/templates", json={"name": "bad", "body": "Hi {{name"}, headers=ACME), 422, "body")
    _error(
        lab.client.post(
            f"/api/v1/templates/{template['id']}/render", json={"variables": {"bad-name": "x"}}, headers=ACME
        ),
        422,
        "variables.bad-name",
    )
    sent = lab.client.post(
        "/api/v1/sms",
        json={
            "to": "+254700000009",
            "from": "Acme",
            "template_id": template["id"],
            "variables": {"name": "Bo", "code": "9"},
        },
        headers=ACME,
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["text"] == "Hi Bo, your code is 9."
    assert lab.jasmin.sends[-1]["content"] == "Hi Bo, your code is 9."
    _error(
        lab.client.post(
            "/api/v1/sms", json={"to": "+254700000009", "from": "Acme", "template_id": template["id"]}, headers=ACME
        ),
        422,
        "variables.name",
    )
    updated = lab.client.patch(f"/api/v1/templates/{template['id']}", json={"body": "Yo {{name}}"}, headers=ACME).json()
    assert updated["variables"] == ["name"]
    _error(lab.client.get(f"/api/v1/templates/{template['id']}", headers=GLOBEX), 404, "template_id")
    assert lab.client.delete(f"/api/v1/templates/{template['id']}", headers=ACME).status_code == 204


# --- campaigns --------------------------------------------------------------------------------------------


def test_campaign_sends_paced_through_the_gateway_and_completes_with_the_receipts(lab: Lab) -> None:
    template = lab.client.post("/api/v1/templates", json={"name": "promo", "body": "Hi {{name}}!"}, headers=ACME).json()
    campaign = lab.client.post(
        "/api/v1/campaigns",
        json={"name": "spring", "from": "Acme", "template_id": template["id"], "rate_per_second": 20},
        headers=ACME,
    ).json()
    assert campaign["status"] == "draft"
    url = f"/api/v1/campaigns/{campaign['id']}"
    uploaded = lab.client.post(
        f"{url}/contacts",
        json=[
            {"to": "+254700000101", "variables": {"name": "Ann"}},
            {"to": "254700000102", "variables": {"name": "Bo"}},
        ],
        headers=ACME,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json() == {"campaign_id": campaign["id"], "added": 2, "total": 2}
    csv_body = "to,name\n+254700000103,Cy\n+254700000104,Di\n"
    from_csv = lab.client.post(
        f"{url}/contacts", content=csv_body.encode(), headers={**ACME, "Content-Type": "text/csv"}
    )
    assert from_csv.json()["total"] == 4
    _error(
        lab.client.post(f"{url}/contacts", json=[{"to": "+254700000101", "variables": {"name": "A"}}], headers=ACME),
        422,
        "contacts.0.to",
    )
    _error(
        lab.client.post(f"{url}/contacts", json=[{"to": "+254700000201", "variables": {}}], headers=ACME),
        422,
        "contacts.0.variables.name",
    )
    _error(
        lab.client.post(
            f"{url}/contacts", json=[{"to": "+254700000201", "variables": {"name": "x"}}, {"to": "nope"}], headers=ACME
        ),
        422,
        "contacts.1.to",
    )
    _error(
        lab.client.post(f"{url}/contacts", content=b"phone_no\n1\n", headers={**ACME, "Content-Type": "text/csv"}),
        422,
        "contacts",
    )
    assert lab.client.get(url, headers=ACME).json()["progress"]["total"] == 4
    started = lab.client.post(f"{url}/start", headers=ACME)
    assert started.status_code == 200, started.text
    _error(lab.client.post(f"{url}/start", headers=ACME), 409, "status")
    _error(
        lab.client.post(f"{url}/contacts", json=[{"to": "+254700000301", "variables": {"name": "x"}}], headers=ACME),
        409,
        "status",
    )
    sends = wait_for(lambda: len(lab.jasmin.sends) >= 4 and lab.jasmin.sends, what="4 campaign sends")
    assert [send["content"] for send in sends] == ["Hi Ann!", "Hi Bo!", "Hi Cy!", "Hi Di!"]
    assert [send["to"] for send in sends] == ["254700000101", "254700000102", "254700000103", "254700000104"]
    progress = wait_for(
        lambda: (
            lab.client.get(url, headers=ACME).json()["progress"]["sent"] == 4
            and lab.client.get(url, headers=ACME).json()
        )
    )
    assert progress["status"] == "running"
    assert progress["progress"] == {"total": 4, "pending": 0, "sent": 4, "delivered": 0, "failed": 0, "cancelled": 0}
    for send in sends[:3]:
        _dlr(lab, send, 2, "DELIVRD")
    _dlr(lab, sends[3], 2, "REJECTD")
    done = lab.client.get(url, headers=ACME).json()
    assert done["status"] == "completed"
    assert done["progress"] == {"total": 4, "pending": 0, "sent": 4, "delivered": 3, "failed": 1, "cancelled": 0}
    recipients = lab.client.get(f"{url}/recipients", headers=ACME).json()["data"]
    assert [r["status"] for r in recipients] == ["delivered", "delivered", "delivered", "failed"]
    assert lab.client.get(f"{url}/recipients?status=failed", headers=ACME).json()["data"][0]["to"] == "+254700000104"


def test_campaign_pacing_and_gateway_refusals(lab: Lab) -> None:
    campaign = lab.client.post(
        "/api/v1/campaigns", json={"name": "slow", "from": "Acme", "text": "Sale!", "rate_per_second": 5}, headers=ACME
    ).json()
    url = f"/api/v1/campaigns/{campaign['id']}"
    lab.client.post(f"{url}/contacts", json=[{"to": f"+2547000002{n:02d}"} for n in range(3)], headers=ACME)
    _error(lab.client.post("/api/v1/campaigns/999/start", headers=ACME), 404, "campaign_id")
    started = time.monotonic()
    lab.client.post(f"{url}/start", headers=ACME)
    wait_for(lambda: len(lab.jasmin.sends) >= 3, what="3 sends")
    assert time.monotonic() - started >= 0.35  # 3 messages at 5/s: 0.4 s between the first and the third
    empty = lab.client.post("/api/v1/campaigns", json={"name": "e", "from": "Acme", "text": "x"}, headers=ACME).json()
    _error(lab.client.post(f"/api/v1/campaigns/{empty['id']}/start", headers=ACME), 422, "contacts")
    refused = lab.client.post("/api/v1/campaigns", json={"name": "r", "from": "Acme", "text": "x"}, headers=ACME).json()
    lab.client.post(f"/api/v1/campaigns/{refused['id']}/contacts", json=[{"to": "+999700000001"}], headers=ACME)
    lab.jasmin.refuse = (412, "No route found")
    lab.client.post(f"/api/v1/campaigns/{refused['id']}/start", headers=ACME)
    done = wait_for(
        lambda: (
            (body := lab.client.get(f"/api/v1/campaigns/{refused['id']}", headers=ACME).json())["status"] == "completed"
            and body
        )
    )
    assert done["progress"] == {"total": 1, "pending": 0, "sent": 0, "delivered": 0, "failed": 1, "cancelled": 0}
    recipient = lab.client.get(f"/api/v1/campaigns/{refused['id']}/recipients", headers=ACME).json()["data"][0]
    assert "No route found" in recipient["error"]


# --- analytics --------------------------------------------------------------------------------------------


def test_sms_analytics_from_seeded_messages(lab: Lab) -> None:
    lab.client.post("/api/v1/templates", json={"name": "seed", "body": "x"}, headers=ACME)  # makes the account
    platform = lab.app.state.platform
    base = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    with platform.sessions() as session:
        account_id = session.scalar(sa.text("SELECT id FROM accounts WHERE username = 'acme'"))
        for n in range(10):  # delivered after 100, 200, ... 1000 ms
            sent = base + timedelta(minutes=n)
            session.add(
                SmsMessage(
                    id=f"d{n}",
                    account_id=account_id,
                    to="+1",
                    sender="A",
                    text="x",
                    coding="gsm7",
                    status="delivered",
                    gateway_id=f"g{n}",
                    created_at=sent,
                    sent_at=sent,
                    done_at=sent + timedelta(milliseconds=100 * (n + 1)),
                )
            )
        for n in range(3):
            session.add(
                SmsMessage(
                    id=f"f{n}",
                    account_id=account_id,
                    to="+1",
                    sender="A",
                    text="x",
                    coding="gsm7",
                    status="failed",
                    gateway_id=f"h{n}",
                    created_at=base,
                    sent_at=base,
                    done_at=base,
                )
            )
        session.add(
            SmsMessage(
                id="q0",
                account_id=account_id,
                to="+1",
                sender="A",
                text="x",
                coding="gsm7",
                status="accepted",
                gateway_id="k0",
                created_at=base,
                sent_at=base,
            )
        )
        session.add(
            SmsMessage(
                id="old",
                account_id=account_id,
                to="+1",
                sender="A",
                text="x",
                coding="gsm7",
                status="delivered",
                gateway_id="o",
                created_at=base - timedelta(days=30),
                sent_at=base - timedelta(days=30),
                done_at=base - timedelta(days=30),
            )
        )
        session.commit()
    figures = lab.client.get(
        f"/api/v1/analytics/sms?since={quote('2025-01-10T00:00:00Z')}&until={quote('2025-01-11T00:00:00Z')}",
        headers=ACME,
    ).json()
    assert figures == {
        "since": "2025-01-10T00:00:00.000Z",
        "until": "2025-01-11T00:00:00.000Z",
        "sent": 14,
        "delivered": 10,
        "failed": 3,
        "pending": 1,
        "delivery_rate": 0.7143,
        "latency_ms": {"p50": 500.0, "p95": 1000.0, "samples": 10},
    }
    everything = lab.client.get("/api/v1/analytics/sms", headers=ACME).json()
    assert everything["sent"] == 15
    assert lab.client.get("/api/v1/analytics/sms", headers=GLOBEX).json()["sent"] == 0
    _error(lab.client.get("/api/v1/analytics/sms?since=2025-01-11&until=2025-01-10", headers=ACME), 422, "until")


# --- webhooks ---------------------------------------------------------------------------------------------


def test_webhooks_are_registered_per_account_and_retried_with_back_off(lab: Lab) -> None:
    hook = lab.client.post(
        "/api/v1/webhooks", json={"url": lab.receiver.url, "events": ["sms.failed"], "secret": "s" * 20}, headers=ACME
    ).json()
    assert hook["secret"] == "s" * 20
    assert lab.client.get("/api/v1/webhooks", headers=ACME).json()["data"][0]["secret"] is None
    assert lab.client.get("/api/v1/webhooks", headers=GLOBEX).json() == {"data": []}
    _error(lab.client.get(f"/api/v1/webhooks/{hook['id']}", headers=GLOBEX), 404, "webhook_id")
    lab.receiver.status = 500
    lab.client.post("/api/v1/sms", json={"to": "+254700000009", "from": "Acme", "text": "x"}, headers=ACME)
    _dlr(lab, lab.jasmin.sends[-1], 2, "EXPIRED")
    deliveries = wait_for(
        lambda: (
            (rows := lab.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=ACME).json()["data"])
            and rows[0]["status"] == "failed"
            and rows
        ),
        what="the delivery to be given up",
    )
    assert deliveries[0]["attempts"] == 3
    assert deliveries[0]["last_status"] == 500
    assert len(lab.receiver.requests) == 3
    assert len({headers["x-platform-delivery"] for headers, _ in lab.receiver.requests}) == 1
    assert lab.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=ACME).status_code == 204
    assert lab.client.get("/api/v1/webhooks", headers=ACME).json() == {"data": []}
