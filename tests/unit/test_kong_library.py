"""KongLibrary against a small fake of Kong's Admin API and proxy (in this file), and the lab's stand-in.

The fake answers Kong 3.x's documented shapes and records every request, so these tests pin what the library
sends (paths, bodies, the admin token header), how it reads answers (paging by ``offset``, error bodies,
health, rate-limit headers) and the failure texts users rely on. Tests marked ``standin`` run against
``python -m lab.kong`` and are skipped (with the reason) when it cannot be started.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from assertionengine import AssertionOperator
from KongLibrary import KongApiError, KongDeckError, KongLibrary, KongToolMissingError, KongUnreachableError
from KongLibrary.errors import kong_error_detail
from KongLibrary.keywords.declarative import DeclarativeKeywords
from KongLibrary.keywords.plugins import sum_samples
from KongLibrary.tokens import decode_jwt, sign_jwt

TOKEN = "admin-token-7c1d2e"
SHORT = timedelta(milliseconds=400)
NO_ROUTE = {"message": "no Route matched with those values"}


# --- a fake Kong: Admin API and proxy ----------------------------------------------------------------
class FakeKong:
    """Kong's Admin API and proxy in memory: enough of both to exercise every keyword."""

    NAMES = {"services": "name", "routes": "name", "consumers": "username", "upstreams": "name"}

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, dict[str, Any]]] = {
            kind: {} for kind in ("services", "routes", "consumers", "plugins", "upstreams", "targets")
        }
        self.credentials: dict[str, dict[str, dict[str, Any]]] = {"key-auth": {}, "jwt": {}, "acls": {}}
        self.requests: list[dict[str, Any]] = []
        self.page_size = 1000
        self.route_delay = 0.0  # seconds a new route keeps answering "no Route matched"
        self.ignore_tag_filter = False
        self.health: dict[str, str] = {}  # target id -> health
        self.health_delay = 0.0
        self.metrics = ""
        self.rate_counts: dict[str, int] = {}
        self.patch_targets = True
        self.lock = threading.Lock()
        self.admin_url = ""  # set by the fixture once both servers listen
        self.proxy_url = ""

    # -- admin --
    def admin(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [unquote(part) for part in path.strip("/").split("/") if part]
        if method == "GET" and not parts:
            return 200, {"version": "3.4.0", "tagline": "Welcome to kong"}
        if parts == ["metrics"]:
            return (200, self.metrics) if self.metrics else (404, {"message": "Not found"})
        if parts[0] in ("key-auths", "jwts", "acls") and len(parts) == 1:
            sub = {"key-auths": "key-auth", "jwts": "jwt", "acls": "acls"}[parts[0]]
            return 200, self._page(list(self.credentials[sub].values()), query)
        if parts[0] in ("basic-auths", "hmac-auths"):
            return 404, {"message": "Not found"}
        kind = parts[0]
        if kind not in self.entities:
            return 404, {"message": "Not found"}
        if len(parts) == 1:
            if method == "POST":
                return self._create(kind, body)
            return 200, self._page(list(self.entities[kind].values()), query)
        entity = self._find(kind, parts[1])
        if entity is None:
            return 404, {"message": "Not found"}
        if len(parts) == 2:
            return self._one(kind, entity, method, body)
        sub = parts[2]
        if kind == "services" and sub == "routes":
            if method == "POST":
                return self._create("routes", {**body, "service": {"id": entity["id"]}})
            routes = [r for r in self.entities["routes"].values() if r["service"]["id"] == entity["id"]]
            return 200, self._page(routes, query)
        if kind == "consumers" and sub in self.credentials:
            return self._credential(sub, entity, parts[3] if len(parts) > 3 else None, method, body, query)
        if kind == "upstreams" and sub == "targets":
            return self._target(entity, parts[3:], method, body, query)
        if kind == "upstreams" and sub == "health":
            return self._health(entity, query)
        return 404, {"message": "Not found"}

    def _page(self, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        if "tags" in query and not self.ignore_tag_filter:
            wanted = query["tags"].split(",")
            items = [item for item in items if all(tag in (item.get("tags") or []) for tag in wanted)]
        size = min(int(query.get("size", 100)), self.page_size)
        start = int(base64.b64decode(query["offset"]).decode()) if "offset" in query else 0
        page: dict[str, Any] = {"data": items[start : start + size], "next": None}
        if start + size < len(items):
            page["offset"] = base64.b64encode(str(start + size).encode()).decode()
        return page

    def _find(self, kind: str, key: str) -> dict[str, Any] | None:
        for entity in self.entities[kind].values():
            if key in (entity["id"], entity.get(self.NAMES.get(kind, "id")), entity.get("instance_name")):
                return entity
        return None

    def _create(self, kind: str, body: dict[str, Any]) -> tuple[int, Any]:
        if kind == "routes":
            bad = [p for p in body.get("paths") or [] if not p.startswith("/")]
            if bad:
                fields = {"paths": ["must start with /"]}
                return 400, {"code": 2, "name": "schema violation", "message": "schema violation", "fields": fields}
        name_field = self.NAMES.get(kind)
        if name_field and body.get(name_field) and self._find(kind, body[name_field]):
            key = f'{{{name_field}="{body[name_field]}"}}'
            message = f"UNIQUE violation detected on '{key}'"
            return 409, {"code": 5, "name": "unique constraint violation", "message": message, "fields": {}}
        entity = {"id": str(uuid.uuid4()), "created_at": int(time.time()), **body}
        if kind == "routes":
            entity["_ready_at"] = time.monotonic() + self.route_delay
        self.entities[kind][entity["id"]] = entity
        return 201, _public(entity)

    def _one(self, kind: str, entity: dict[str, Any], method: str, body: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, _public(entity)
        if method == "PATCH":
            if kind == "plugins" and "config" in body:
                entity["config"] = {**entity.get("config", {}), **body.pop("config")}
            entity.update(body)
            return 200, _public(entity)
        if method == "DELETE":
            if kind == "services" and any(r["service"]["id"] == entity["id"] for r in self.entities["routes"].values()):
                message = "an existing 'routes' entity references this 'services' entity"
                return 400, {"code": 4, "name": "foreign key violation", "message": message, "fields": {}}
            del self.entities[kind][entity["id"]]
            return 204, None
        return 405, {"message": "Method not allowed"}

    def _credential(
        self, sub: str, consumer: dict[str, Any], key: str | None, method: str, body: Any, query: dict[str, str]
    ) -> tuple[int, Any]:
        store = self.credentials[sub]
        if key is None and method == "POST":
            credential = {"id": str(uuid.uuid4()), "consumer": {"id": consumer["id"]}, **body}
            if sub == "key-auth":
                credential.setdefault("key", uuid.uuid4().hex)
            if sub == "jwt":
                credential.setdefault("key", uuid.uuid4().hex)
                credential.setdefault("secret", uuid.uuid4().hex)
            store[credential["id"]] = credential
            return 201, credential
        mine = [c for c in store.values() if c["consumer"]["id"] == consumer["id"]]
        if key is None:
            return 200, self._page(mine, query)
        found = next((c for c in mine if key in (c["id"], c.get("key"))), None)
        if found is None:
            return 404, {"message": "Not found"}
        if method == "DELETE":
            del store[found["id"]]
            return 204, None
        if method == "PATCH":
            found.update(body)
        return 200, found

    def _target(
        self, upstream: dict[str, Any], rest: list[str], method: str, body: Any, query: dict[str, str]
    ) -> tuple[int, Any]:
        mine = [t for t in self.entities["targets"].values() if t["upstream"]["id"] == upstream["id"]]
        if not rest:
            if method == "POST":
                target = {"id": str(uuid.uuid4()), "upstream": {"id": upstream["id"]}, **body}
                self.entities["targets"][target["id"]] = target
                self.health[target["id"]] = "HEALTHY"
                return 201, target
            return 200, self._page(mine, query)
        found = next((t for t in mine if rest[0] in (t["id"], t["target"])), None)
        if found is None:
            return 404, {"message": "Not found"}
        if len(rest) == 2 and method == "PUT" and rest[1] in ("healthy", "unhealthy"):
            state = rest[1].upper()
            if self.health_delay:
                threading.Timer(self.health_delay, self.health.__setitem__, (found["id"], state)).start()
            else:
                self.health[found["id"]] = state
            return 204, None
        if method == "DELETE":
            del self.entities["targets"][found["id"]]
            return 204, None
        if method == "PATCH":
            if not self.patch_targets:
                return 405, {"message": "Method not allowed"}
            found.update(body)
        return 200, found

    def _health(self, upstream: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
        mine = [t for t in self.entities["targets"].values() if t["upstream"]["id"] == upstream["id"]]
        if query.get("balancer_health"):
            healthy = any(self.health.get(t["id"]) == "HEALTHY" for t in mine)
            return 200, {"data": {"health": "HEALTHY" if healthy else "UNHEALTHY", "id": upstream["id"]}}
        entries = [{**t, "health": self.health.get(t["id"], "HEALTHCHECKS_OFF")} for t in mine]
        return 200, self._page(entries, query)

    # -- proxy --
    def proxy(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        route = next(
            (
                r
                for r in self.entities["routes"].values()
                if any(path.startswith(p) for p in r.get("paths") or [])
                and (not r.get("hosts") or headers.get("host", "").split(":")[0] in r["hosts"])
            ),
            None,
        )
        if route is None or time.monotonic() < route["_ready_at"]:
            return 404, NO_ROUTE, {}
        plugins = [
            p
            for p in self.entities["plugins"].values()
            if p.get("enabled", True)
            and (p.get("route", {}).get("id") in (None, route["id"]))
            and (p.get("service", {}).get("id") in (None, route["service"]["id"]))
        ]
        names = {p["name"]: p for p in plugins}
        if "key-auth" in names:
            key = headers.get("apikey")
            if not key:
                return 401, {"message": "No API key found in request"}, {}
            if not any(c["key"] == key for c in self.credentials["key-auth"].values()):
                return 401, {"message": "Invalid authentication credentials"}, {}
        if "jwt" in names and not self._jwt_ok(headers.get("authorization", "")):
            return 401, {"message": "Invalid signature"}, {}
        extra: dict[str, str] = {}
        if "rate-limiting" in names:
            limit = int(names["rate-limiting"]["config"]["minute"])
            with self.lock:
                used = self.rate_counts[route["id"]] = self.rate_counts.get(route["id"], 0) + 1
            remaining = max(0, limit - used)
            extra = {
                "X-RateLimit-Limit-Minute": str(limit),
                "X-RateLimit-Remaining-Minute": str(remaining),
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": "42",
            }
            if used > limit:
                return 429, {"message": "API rate limit exceeded"}, {**extra, "Retry-After": "42"}
        return 200, {"path": path, "method": method, "headers": headers}, extra

    def _jwt_ok(self, authorization: str) -> bool:
        """Kong's check, written independently of the library: find the secret by ``iss``, compare HMACs."""
        if not authorization.startswith("Bearer "):
            return False
        head, payload, signature = authorization[7:].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        credential = next((c for c in self.credentials["jwt"].values() if c["key"] == claims.get("iss")), None)
        if credential is None or claims.get("exp", 0) < time.time():
            return False
        mac = hmac.new(credential["secret"].encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
        return hmac.compare_digest(base64.urlsafe_b64encode(mac).rstrip(b"=").decode(), signature)


def _public(entity: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entity.items() if not key.startswith("_")}


def _serve(fake: FakeKong, role: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {name.lower(): value for name, value in self.headers.items()}
            fake.requests.append(
                {
                    "role": role,
                    "method": self.command,
                    "path": url.path,
                    "query": query,
                    "headers": headers,
                    "json": body,
                }
            )
            extra: dict[str, str] = {}
            if role == "admin" and headers.get("kong-admin-token") != TOKEN:
                status, answer = 401, {"message": "Invalid credentials. Token or User credentials required"}
            elif role == "admin":
                with fake.lock:
                    status, answer = fake.admin(self.command, url.path, query, body or {})
            else:
                status, answer, extra = fake.proxy(self.command, url.path, headers)
            data = b"" if answer is None else (answer if isinstance(answer, str) else json.dumps(answer)).encode()
            self.send_response(status)
            content_type = "text/plain" if isinstance(answer, str) else "application/json"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


@pytest.fixture
def fake() -> Iterator[FakeKong]:
    kong = FakeKong()
    admin, proxy = _serve(kong, "admin"), _serve(kong, "proxy")
    kong.admin_url = f"http://127.0.0.1:{admin.server_address[1]}"
    kong.proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    yield kong
    for server in (admin, proxy):
        server.shutdown()
        server.server_close()


@pytest.fixture
def library(fake: FakeKong) -> KongLibrary:
    return KongLibrary(
        admin_url=fake.admin_url,
        proxy_url=fake.proxy_url,
        admin_token=TOKEN,
        timeout=timedelta(seconds=2),
    )


@pytest.fixture
def robot_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Outside a Robot run, robot.api.logger writes to the ``RobotFramework`` Python logger."""
    caplog.set_level(logging.DEBUG, logger="RobotFramework")
    return caplog


def run(library: KongLibrary, keyword: str, /, *args: Any, **kwargs: Any) -> Any:
    """Call a keyword as Robot does (through the dynamic API), so failure texts carry the keyword's name."""
    return library.run_keyword(keyword, list(args), kwargs)


def sent(fake: FakeKong, method: str, path: str) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["method"] == method and r["path"] == path]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- import and keyword names ------------------------------------------------------------------------
def test_import_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match=r"admin_url '127.0.0.1:8001' is not an HTTP URL.*KONG_ADMIN_URL"):
        KongLibrary(admin_url="127.0.0.1:8001")
    with pytest.raises(ValueError, match=r"proxy_url 'localhost' is not an HTTP URL.*KONG_PROXY_URL"):
        KongLibrary(admin_url="http://127.0.0.1:8001", proxy_url="localhost")
    with pytest.raises(ValueError, match="timeout must be positive"):
        KongLibrary(admin_url="http://127.0.0.1:8001", timeout=timedelta(0))


def test_keywords_read_as_sentences() -> None:
    names = set(KongLibrary(admin_url="http://127.0.0.1:8001").get_keyword_names())
    for wanted in (
        "create_service",
        "create_route",
        "Create Key Auth Credential",
        "Create JWT Credential",
        "Sign JWT",
        "Add Consumer To ACL Group",
        "add_plugin",
        "set_target_health",
        "get_target_health",
        "apply_declarative_config",
        "call_through_gateway",
        "gateway_response_status_should_be",
        "rate_limit_headers_should_show",
        "wait_until_route_answers",
        "delete_all_entities_tagged",
    ):
        assert wanted in names


# --- request building, the token, errors -------------------------------------------------------------
def test_create_service_sends_kongs_fields_with_the_admin_token(library: KongLibrary, fake: FakeKong) -> None:
    run(library, "set_default_kong_tags", "ns-w1")
    service = run(
        library,
        "create_service",
        "billing",
        "http://127.0.0.1:18080/api/v1",
        tags=["billing"],
        retries=2,
        connect_timeout=timedelta(seconds=1.5),
    )
    request = sent(fake, "POST", "/services")[0]
    assert request["json"] == {
        "name": "billing",
        "url": "http://127.0.0.1:18080/api/v1",
        "retries": 2,
        "connect_timeout": 1500,
        "tags": ["billing", "ns-w1"],
    }
    assert request["headers"]["kong-admin-token"] == TOKEN
    assert run(library, "get_service", "billing")["id"] == service["id"]
    assert run(library, "update_service", "billing", retries=0)["retries"] == 0
    assert sent(fake, "PATCH", "/services/billing")[0]["json"] == {"retries": 0}


def test_schema_violation_is_quoted_with_the_keyword_name(library: KongLibrary) -> None:
    run(library, "create_service", "billing", "http://127.0.0.1:18080")
    with pytest.raises(KongApiError) as caught:
        run(library, "create_route", "billing", paths=["billing"])
    assert str(caught.value) == "Create Route failed with HTTP 400 (schema violation): paths: must start with /"
    assert caught.value.as_dict()["fields"] == {"paths": ["must start with /"]}


def test_not_found_and_unique_violation_texts(library: KongLibrary) -> None:
    with pytest.raises(KongApiError) as missing:
        run(library, "get_service", "nope")
    assert str(missing.value) == "Get Service failed with HTTP 404: Not found (GET /services/nope)"
    run(library, "create_consumer", "acme")
    with pytest.raises(KongApiError) as taken:
        run(library, "create_consumer", "acme")
    assert str(taken.value) == (
        "Create Consumer failed with HTTP 409 (unique constraint violation): "
        "UNIQUE violation detected on '{username=\"acme\"}'"
    )


def test_error_detail_flattens_kong_fields() -> None:
    body = {
        "code": 2,
        "name": "schema violation",
        "message": "3 schema violations",
        "fields": {
            "paths": [None, "should start with: / (fixed path) or ~/ (regex path)"],
            "config": {"minute": "expected a number"},
            "@entity": ["at least one of these fields must be non-empty: 'methods', 'hosts', 'paths'"],
        },
    }
    assert kong_error_detail(body) == (
        "paths.2: should start with: / (fixed path) or ~/ (regex path); config.minute: expected a number; "
        "at least one of these fields must be non-empty: 'methods', 'hosts', 'paths'"
    )
    assert kong_error_detail({"message": "an existing 'routes' entity references this 'services' entity"}) == (
        "an existing 'routes' entity references this 'services' entity"
    )
    assert kong_error_detail(None) == "(empty body)"


def test_wrong_admin_token_is_refused_and_never_shown(fake: FakeKong) -> None:
    library = KongLibrary(admin_url=fake.admin_url, admin_token="wrong-token-123")
    with pytest.raises(KongApiError) as caught:
        run(library, "get_services")
    assert str(caught.value) == (
        "Get Services failed with HTTP 401: Invalid credentials. Token or User credentials required"
    )


def test_secrets_are_masked_in_every_log_line(
    library: KongLibrary, fake: FakeKong, robot_log: pytest.LogCaptureFixture
) -> None:
    run(library, "create_service", "billing", "http://127.0.0.1:18080")
    run(library, "create_route", "billing", paths=["/billing"])
    run(library, "create_consumer", "acme")
    key = run(library, "Create Key Auth Credential", "acme", "key-4f5e6d")["key"]
    credential = run(library, "Create JWT Credential", "acme", secret="jwt-secret-9a8b")
    token = run(library, "Sign JWT", credential)
    run(library, "Get Key Auth Credential", "acme", key)
    run(library, "call_through_gateway", "GET", "/billing", consumer_key=key, jwt=token)
    text = "\n".join(record.getMessage() for record in robot_log.records)
    assert "GET /consumers/acme/key-auth/*** -> 200" in text
    assert "'kong-admin-token': '***'" in text.lower()
    for secret in (TOKEN, key.value, "jwt-secret-9a8b", token):
        assert secret not in text


def test_unreachable_admin_api_names_the_url_and_the_fix() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    library = KongLibrary(admin_url=url, admin_token=TOKEN, timeout=timedelta(seconds=2))
    started = time.monotonic()
    with pytest.raises(KongUnreachableError) as caught:
        run(library, "get_services")
    assert time.monotonic() - started < 2
    assert str(caught.value) == (
        f"Get Services (GET /services): cannot connect to Kong's Admin API at {url} (Connection refused). "
        "Start the lab (`make lab-up`) or fix KONG_ADMIN_URL in the variables file."
    )


def test_gateway_keywords_need_a_proxy_url(fake: FakeKong) -> None:
    library = KongLibrary(admin_url=fake.admin_url)
    with pytest.raises(ValueError, match=r"imported without proxy_url\. Import it with proxy_url=\$\{KONG_PROXY_URL\}"):
        run(library, "call_through_gateway", "GET", "/x")


# --- lists and teardown ------------------------------------------------------------------------------
def test_lists_follow_kongs_offset_to_the_last_page(library: KongLibrary, fake: FakeKong) -> None:
    fake.page_size = 2
    for number in range(5):
        run(library, "create_service", f"svc-{number}", "http://127.0.0.1:1", tags=["paged"])
    run(library, "create_service", "other", "http://127.0.0.1:1", tags=["else"])
    names = [service["name"] for service in run(library, "get_services", tags=["paged"])]
    assert names == [f"svc-{number}" for number in range(5)]
    pages = sent(fake, "GET", "/services")
    assert [page["query"].get("offset") is not None for page in pages] == [False, True, True]
    assert all(page["query"]["tags"] == "paged" and page["query"]["size"] == "1000" for page in pages)


def test_delete_all_entities_tagged_removes_only_that_tag(library: KongLibrary, fake: FakeKong) -> None:
    fake.ignore_tag_filter = True  # even an Admin API that ignores ?tags= must not cost others their data
    for tag in ("mine", "theirs"):
        run(library, "create_service", f"svc-{tag}", "http://127.0.0.1:1", tags=[tag])
        run(library, "create_route", f"svc-{tag}", paths=[f"/{tag}"])  # untagged route of a tagged service
        run(library, "create_consumer", f"user-{tag}", tags=[tag])
        run(library, "add_plugin", "key-auth", service=f"svc-{tag}", tags=[tag])
        run(library, "create_upstream", f"up-{tag}", tags=[tag])
    counts = run(library, "delete_all_entities_tagged", "mine")
    assert counts == {"plugins": 1, "routes": 1, "services": 1, "consumers": 1, "upstreams": 1}
    left = {kind: [e.get("name") or e.get("username") for e in items.values()] for kind, items in fake.entities.items()}
    assert left["services"] == ["svc-theirs"]
    assert left["consumers"] == ["user-theirs"]
    assert len(left["routes"]) == len(left["plugins"]) == len(left["upstreams"]) == 1
    with pytest.raises(ValueError, match="Tag 'a b' is not valid for Kong"):
        run(library, "delete_all_entities_tagged", "a b")


def test_kong_should_reject_checks_the_status(library: KongLibrary) -> None:
    run(library, "create_service", "billing", "http://127.0.0.1:1")
    with pytest.raises(KongApiError):
        run(library, "create_route", "billing", paths=["nope"])
    error = library.ctx.last_error
    assert error is not None
    from KongLibrary.keywords.operations import check_rejection

    assert check_rejection("Create Route", error, 400)["name"] == "schema violation"
    with pytest.raises(AssertionError) as caught:
        check_rejection("Create Route", error, 409)
    assert str(caught.value) == (
        "'Create Route' should have been rejected with HTTP 409 but got HTTP 400: paths: must start with /"
    )


# --- consumers, credentials, ACLs, plugins -----------------------------------------------------------
def test_jwt_signing_matches_the_rfc_example() -> None:
    token = sign_jwt({"sub": "1234567890", "name": "John Doe", "iat": 1516239022}, "your-256-bit-secret")
    assert token == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )
    with pytest.raises(ValueError, match="Cannot sign a JWT with algorithm 'RS256'"):
        sign_jwt({}, "secret", "RS256")


def test_signed_jwt_passes_the_gateways_check(library: KongLibrary, fake: FakeKong) -> None:
    run(library, "create_service", "sms", "http://127.0.0.1:1")
    run(library, "create_route", "sms", paths=["/sms"])
    run(library, "add_plugin", "jwt", service="sms")
    run(library, "create_consumer", "acme")
    credential = run(library, "Create JWT Credential", "acme")
    token = run(library, "Sign JWT", credential, claims={"sub": "acme"}, expires_in=timedelta(minutes=1))
    header, claims = decode_jwt(token)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims["iss"] == credential["key"] and claims["sub"] == "acme" and claims["exp"] - claims["iat"] == 60
    ok = run(library, "call_through_gateway", "GET", "/sms/send", jwt=token, expected_status=200)
    assert ok.json()["headers"]["authorization"] == f"Bearer {token}"
    expired = run(library, "Sign JWT", credential, expires_in=timedelta(minutes=-1))
    refused = run(library, "call_through_gateway", "GET", "/sms/send", jwt=expired)
    run(library, "gateway_response_status_should_be", refused, 401)
    with pytest.raises(ValueError, match="Sign JWT needs a JWT credential with 'key' and 'secret', but secret is"):
        run(library, "Sign JWT", {"key": "k"})


def test_key_auth_through_the_gateway_and_status_failure_text(library: KongLibrary, fake: FakeKong) -> None:
    run(library, "create_service", "billing", "http://127.0.0.1:1")
    run(library, "create_route", "billing", name="billing", paths=["/billing"], hosts=["api.example.com"])
    run(library, "add_plugin", "key-auth", route="billing")
    run(library, "create_consumer", "acme")
    key = run(library, "Create Key Auth Credential", "acme")["key"]
    response = run(library, "call_through_gateway", "GET", "/billing/health", consumer_key=key, host="api.example.com")
    assert response.status_code == 200
    assert response.json()["headers"]["apikey"] == key.value
    anonymous = run(library, "call_through_gateway", "GET", "/billing/health", host="api.example.com")
    with pytest.raises(AssertionError) as caught:
        run(library, "gateway_response_status_should_be", anonymous, 200)
    assert str(caught.value) == (
        "GET /billing/health through the gateway should have answered HTTP 200 but answered "
        "HTTP 401: No API key found in request"
    )
    assert [c["key"].value for c in run(library, "Get Key Auth Credentials", "acme")] == [key.value]
    run(library, "Delete Key Auth Credential", "acme", key)
    assert run(library, "Get Key Auth Credentials", "acme") == []


def test_acl_groups(library: KongLibrary) -> None:
    run(library, "create_consumer", "acme")
    run(library, "Add Consumer To ACL Group", "acme", "sms-senders")
    run(library, "Add Consumer To ACL Group", "acme", "billing-readers")
    groups = run(library, "Get Consumer ACL Groups", "acme", AssertionOperator["contains"], "sms-senders")
    assert groups == ["sms-senders", "billing-readers"]
    run(library, "Remove Consumer From ACL Group", "acme", "sms-senders")
    with pytest.raises(AssertionError) as caught:
        run(library, "Remove Consumer From ACL Group", "acme", "sms-senders")
    assert str(caught.value) == (
        "Consumer 'acme' should have been in ACL group 'sms-senders' but it is not. Its groups: billing-readers."
    )


def test_plugins_at_each_scope_are_enabled_disabled_and_reconfigured(library: KongLibrary, fake: FakeKong) -> None:
    service = run(library, "create_service", "billing", "http://127.0.0.1:1")
    consumer = run(library, "create_consumer", "acme")
    run(library, "add_plugin", "prometheus")
    limit = run(library, "add_plugin", "rate-limiting", service="billing", consumer="acme", config={"minute": 5})
    posted = [r["json"] for r in sent(fake, "POST", "/plugins")]
    assert posted[0] == {"name": "prometheus", "enabled": True}
    assert posted[1] == {
        "name": "rate-limiting",
        "config": {"minute": 5},
        "enabled": True,
        "service": {"id": service["id"]},
        "consumer": {"id": consumer["id"]},
    }
    assert run(library, "disable_plugin", limit["id"])["enabled"] is False
    assert run(library, "enable_plugin", limit["id"])["enabled"] is True
    assert run(library, "update_plugin_config", limit["id"], {"hour": 100})["config"] == {"minute": 5, "hour": 100}
    assert [p["id"] for p in run(library, "get_plugins", name="rate-limiting", consumer="acme")] == [limit["id"]]
    assert [p["name"] for p in run(library, "get_plugins", service=service["id"])] == ["rate-limiting"]
    run(library, "delete_plugin", limit["id"])
    run(library, "delete_plugin", limit["id"], missing_ok=True)


def test_gateway_metric_sums_matching_prometheus_samples(library: KongLibrary, fake: FakeKong) -> None:
    fake.metrics = (
        "# HELP kong_http_requests_total HTTP status codes\n"
        "# TYPE kong_http_requests_total counter\n"
        'kong_http_requests_total{service="billing",route="b1",code="200",source="service"} 3\n'
        'kong_http_requests_total{service="billing",route="b2",code="200",source="service"} 2\n'
        'kong_http_requests_total{service="billing",route="b1",code="429",source="kong"} 1\n'
        'kong_http_requests_total{service="sms",route="s1",code="200",source="service"} 7\n'
    )
    assert run(library, "get_gateway_metric", "kong_http_requests_total", labels={"service": "billing"}) == 6
    run(
        library,
        "get_gateway_metric",
        "kong_http_requests_total",
        AssertionOperator["=="],
        "1",
        labels={"code": "429"},
    )
    assert sum_samples(fake.metrics, "kong_nginx_connections_total", {}) == 0


# --- upstreams, targets, health ----------------------------------------------------------------------
def test_targets_weights_and_health(library: KongLibrary, fake: FakeKong) -> None:
    run(library, "create_upstream", "sms-gateways", algorithm="round-robin")
    run(library, "add_target", "sms-gateways", "127.0.0.1:11401")
    run(library, "add_target", "sms-gateways", "127.0.0.1:11402", weight=50)
    assert run(library, "set_target_weight", "sms-gateways", "127.0.0.1:11402", 0)["weight"] == 0
    assert sent(fake, "PATCH", "/upstreams/sms-gateways/targets/127.0.0.1:11402")[0]["json"] == {"weight": 0}
    fake.health_delay = 0.2  # health changes asynchronously, as Kong's health checker does
    run(library, "set_target_health", "sms-gateways", "127.0.0.1:11401", "unhealthy")
    assert sent(fake, "PUT", "/upstreams/sms-gateways/targets/127.0.0.1:11401/unhealthy")
    state = run(
        library,
        "get_target_health",
        "sms-gateways",
        "127.0.0.1:11401",
        AssertionOperator["=="],
        "UNHEALTHY",
        timeout=timedelta(seconds=3),
    )
    assert state == "UNHEALTHY"
    health = run(library, "get_upstream_health", "sms-gateways")
    assert health["127.0.0.1:11401"] == "UNHEALTHY" and health["127.0.0.1:11402"] == "HEALTHY"
    run(library, "get_upstream_balancer_health", "sms-gateways", AssertionOperator["=="], "HEALTHY")
    with pytest.raises(AssertionError) as caught:
        run(
            library,
            "get_target_health",
            "sms-gateways",
            "127.0.0.1:11402",
            AssertionOperator["=="],
            "UNHEALTHY",
            timeout=SHORT,
        )
    assert str(caught.value) == (
        "Health of target '127.0.0.1:11402' in upstream 'sms-gateways' 'HEALTHY' (str) should be "
        "'UNHEALTHY' (str) (retried for 0.4 s)"
    )
    with pytest.raises(AssertionError, match=r"has no target '10.0.0.1:1' in its health report\. Its targets: "):
        run(library, "get_target_health", "sms-gateways", "10.0.0.1:1")
    run(library, "remove_target", "sms-gateways", "127.0.0.1:11402")
    assert [t["target"] for t in run(library, "get_targets", "sms-gateways")] == ["127.0.0.1:11401"]


def test_target_weight_falls_back_to_replace_where_patch_is_missing(library: KongLibrary, fake: FakeKong) -> None:
    fake.patch_targets = False
    run(library, "create_upstream", "up")
    run(library, "add_target", "up", "127.0.0.1:9", weight=100)
    assert run(library, "set_target_weight", "up", "127.0.0.1:9", 10)["weight"] == 10
    assert [(t["target"], t["weight"]) for t in run(library, "get_targets", "up")] == [("127.0.0.1:9", 10)]


# --- the proxy: waiting for routes, rate limits ------------------------------------------------------
def test_wait_until_route_answers_retries_through_no_route_matched(library: KongLibrary, fake: FakeKong) -> None:
    fake.route_delay = 0.6  # Kong rebuilds its router asynchronously
    run(library, "create_service", "billing", "http://127.0.0.1:1")
    run(library, "create_route", "billing", paths=["/billing"])
    run(library, "add_plugin", "key-auth", service="billing")
    started = time.monotonic()
    response = run(library, "wait_until_route_answers", "/billing/health", expected_status=401)
    assert response.status_code == 401  # a 4xx answer is still an answer (a Response is falsy for 4xx)
    assert time.monotonic() - started >= 0.5
    proxied = [r for r in fake.requests if r["role"] == "proxy"]
    assert len(proxied) >= 2


def test_wait_until_route_answers_failure_quotes_the_last_answer(library: KongLibrary) -> None:
    with pytest.raises(AssertionError) as caught:
        run(library, "wait_until_route_answers", "/nowhere", timeout=SHORT)
    assert str(caught.value) == (
        "Route GET /nowhere should have answered through the gateway (waited 0.4 s). "
        "Last answer: HTTP 404: no Route matched with those values."
    )


def test_wait_until_route_answers_retries_a_gateway_that_is_not_up_yet(fake: FakeKong) -> None:
    library = KongLibrary(admin_url=fake.admin_url, proxy_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(AssertionError) as caught:
        run(library, "wait_until_route_answers", "/x", timeout=SHORT, expected_status=200)
    assert str(caught.value).startswith(
        "Route GET /x should have answered through the gateway with HTTP 200 (waited 0.4 s). Last error: "
        "Wait Until Route Answers (GET /x): cannot connect to the gateway at"
    )


def test_rate_limit_headers(library: KongLibrary) -> None:
    run(library, "create_service", "billing", "http://127.0.0.1:1")
    run(library, "create_route", "billing", paths=["/billing"])
    run(library, "add_plugin", "rate-limiting", service="billing", config={"minute": 2, "policy": "local"})
    first = run(library, "call_through_gateway", "GET", "/billing")
    shown = run(library, "rate_limit_headers_should_show", first, limit=2, remaining=1, window="minute")
    assert shown == {"limit": {"minute": 2}, "remaining": {"minute": 1}, "reset": 42, "retry_after": None}
    run(library, "call_through_gateway", "GET", "/billing")
    third = run(library, "call_through_gateway", "GET", "/billing", expected_status=429)
    assert run(library, "get_rate_limit_headers", third)["retry_after"] == 42
    with pytest.raises(AssertionError) as wrong:
        run(library, "rate_limit_headers_should_show", first, limit=5, remaining=1)
    assert str(wrong.value) == "Rate-limit header X-RateLimit-Limit-Minute should have been 5 but it was 2."
    with pytest.raises(AssertionError) as missing:
        run(library, "rate_limit_headers_should_show", first, remaining=1, window="hour")
    assert str(missing.value) == (
        "The gateway's answer has no X-RateLimit-Remaining-Hour header (rate-limit headers present: "
        "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-RateLimit-Limit-Minute, "
        "X-RateLimit-Remaining-Minute). Is the rate-limiting plugin enabled with a 'hour' limit for this call?"
    )
    with pytest.raises(AssertionError) as status:
        run(library, "call_through_gateway", "GET", "/billing", expected_status=200)
    assert str(status.value) == (
        "GET /billing through the gateway should have answered HTTP 200 but answered HTTP 429: API rate limit exceeded"
    )


def test_every_call_is_timed_under_its_keyword(library: KongLibrary) -> None:
    run(library, "create_service", "billing", "http://127.0.0.1:1")
    run(library, "call_through_gateway", "GET", "/none")
    timings = run(library, "get_kong_operation_timings")
    assert [(t["keyword"], t["api"], t["method"], t["path"], t["status"]) for t in timings] == [
        ("Create Service", "admin", "POST", "/services", 201),
        ("Call Through Gateway", "proxy", "GET", "/none", 404),
    ]
    assert all(t["ms"] >= 0 for t in timings)
    library.start_test(None, None)
    assert run(library, "get_kong_operation_timings") == []


# --- decK ----------------------------------------------------------------------------------------------
class Runner:
    """Stands in for ``subprocess.run``: answers ``deck version`` and records the other command lines."""

    def __init__(self, version: str, returncode: int = 0, output: str = "", hang: bool = False) -> None:
        self.version, self.returncode, self.output, self.hang = version, returncode, output, hang
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if command[-1] == "version":
            return subprocess.CompletedProcess(command, 0, f"decK {self.version} (abc)\n", "")
        self.commands.append(command)
        if self.hang:
            raise subprocess.TimeoutExpired(command, kwargs["timeout"])
        return subprocess.CompletedProcess(command, self.returncode, self.output, "")


@pytest.fixture
def fake_deck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable named ``deck`` on PATH (never run: the Runner answers instead)."""
    executable = tmp_path / "bin" / "deck"
    executable.parent.mkdir()
    executable.write_text("#!/bin/sh\nexit 0\n")
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{executable.parent}{os.pathsep}{os.environ['PATH']}")
    state = tmp_path / "kong.yaml"
    state.write_text("_format_version: '3.0'\nservices: []\n")
    return state


def _declarative(library: KongLibrary, runner: Runner) -> DeclarativeKeywords:
    keywords = library.keywords["apply_declarative_config"].__self__
    assert isinstance(keywords, DeclarativeKeywords)
    keywords.runner = runner
    return keywords


@pytest.mark.parametrize(
    ("version", "head"),
    [("1.4.0", ["sync", "-s", "STATE"]), ("1.40.2", ["gateway", "sync", "STATE"])],
)
def test_deck_sync_command_per_installed_version(
    library: KongLibrary, fake_deck: Path, robot_log: pytest.LogCaptureFixture, version: str, head: list[str]
) -> None:
    runner = Runner(version, output="creating service billing\nSummary:\n  Created: 3\n  Updated: 1\n  Deleted: 0\n")
    _declarative(library, runner)
    summary = run(library, "apply_declarative_config", fake_deck, select_tags=["ns-w1"])
    assert summary == {"created": 3, "updated": 1, "deleted": 0}
    command = runner.commands[0]
    assert Path(command[0]).name == "deck"
    assert command[1:] == [
        *(str(fake_deck) if part == "STATE" else part for part in head),
        "--kong-addr",
        library.ctx.admin_url,
        "--no-color",
        "--headers",
        f"Kong-Admin-Token:{TOKEN}",
        "--select-tag",
        "ns-w1",
    ]
    text = "\n".join(record.getMessage() for record in robot_log.records)
    assert "--headers Kong-Admin-Token:***" in text
    assert TOKEN not in text


def test_deck_failures_are_quoted_and_a_hang_is_killed(library: KongLibrary, fake_deck: Path) -> None:
    _declarative(
        library, Runner("1.4.0", returncode=1, output=f"Error: 1 errors occurred:\n\tcall with {TOKEN} failed")
    )
    with pytest.raises(KongDeckError) as failed:
        run(library, "apply_declarative_config", fake_deck)
    assert str(failed.value) == (
        f"decK sync of '{fake_deck}' failed with exit code 1:\n  Error: 1 errors occurred:\n  \tcall with *** failed"
    )
    _declarative(library, Runner("1.4.0", hang=True))
    with pytest.raises(
        KongDeckError, match=r"^decK did not finish within 0\.4 s and was killed: .*Kong-Admin-Token:\*\*\*"
    ):
        run(library, "apply_declarative_config", fake_deck, timeout=SHORT)
    _declarative(library, Runner("1.4.0", returncode=2, output="updating service billing {retries: 3}"))
    with pytest.raises(AssertionError, match=r"should have matched .* but decK found differences:\n  updating service"):
        run(library, "declarative_config_should_be_applied", fake_deck)


def test_missing_deck_is_named(library: KongLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    state = tmp_path / "kong.yaml"
    state.write_text("_format_version: '3.0'\n")
    with pytest.raises(KongToolMissingError) as caught:
        run(library, "apply_declarative_config", state)
    assert str(caught.value) == (
        "Apply Declarative Config needs decK ('deck'), which is not on PATH. Install it (Debian package 'deck', "
        "or a release of Kong's decK) or configure Kong with the entity keywords instead."
    )
    with pytest.raises(ValueError, match=r"Declarative config file '.*missing\.yaml' does not exist"):
        run(library, "apply_declarative_config", tmp_path / "missing.yaml")


def test_gateway_calls_never_carry_the_admin_token(library: KongLibrary) -> None:
    run(library, "create_service", "billing", "http://127.0.0.1:1")
    route = run(library, "create_route", "billing", name="billing", paths=["/billing"])
    response = run(library, "call_through_gateway", "GET", "/billing", headers={"X-Trace": "t1"})
    assert isinstance(response, requests.Response)
    assert "kong-admin-token" not in response.json()["headers"]
    assert response.json()["headers"]["x-trace"] == "t1"
    assert run(library, "get_route", "billing")["id"] == route["id"]
    assert run(library, "update_route", "billing", strip_path=False)["strip_path"] is False
    run(library, "delete_route", route["id"])
    run(library, "delete_route", route["id"], missing_ok=True)


# --- through Robot itself: argument conversion, Kong Should Reject, the listener ---------------------------
SUITE = """\
*** Settings ***
Library    KongLibrary    admin_url=${ADMIN}    proxy_url=${PROXY}    admin_token=${TOKEN}    timeout=2 s

*** Test Cases ***
Kong Refusals Are Quoted
    Create Service    billing    http://127.0.0.1:1    connect_timeout=1.5 s    tags=robot
    ${error}=    Kong Should Reject    400    Create Route    billing    paths=${{ ['billing'] }}
    Should Be Equal    ${error}[name]    schema violation
    Run Keyword And Expect Error
    ...    'Create Service' should have been rejected by Kong with HTTP 400, but it succeeded.
    ...    Kong Should Reject    400    Create Service    other    http://127.0.0.1:1

A Route Is Called Once Kong Routes It
    Create Route    billing    name=billing    paths=${{ ['/billing'] }}
    Add Plugin    rate-limiting    route=billing    config=${{ {'minute': 3} }}
    ${response}=    Wait Until Route Answers    /billing/health    timeout=3s    expected_status=200
    Rate Limit Headers Should Show    ${response}    limit=3    remaining=2    window=minute
    ${timings}=    Get Kong Operation Timings
    Should Be Equal    ${timings}[0][keyword]    Create Route
    [Teardown]    Delete All Entities Tagged    robot
"""


def test_keywords_run_in_robot(fake: FakeKong, tmp_path: Path) -> None:
    import io

    import robot

    suite = tmp_path / "kong.robot"
    suite.write_text(SUITE)
    fake.route_delay = 0.3
    stdout = io.StringIO()
    rc = robot.run(
        str(suite),
        variable=[f"ADMIN:{fake.admin_url}", f"PROXY:{fake.proxy_url}", f"TOKEN:{TOKEN}"],
        outputdir=str(tmp_path),
        output="output.xml",
        log="NONE",
        report="NONE",
        stdout=stdout,
        stderr=stdout,
        pythonpath=[str(Path(__file__).parents[2] / "libraries")],
    )
    assert rc == 0, stdout.getvalue()
    assert TOKEN not in (tmp_path / "output.xml").read_text()
    assert [service["name"] for service in fake.entities["services"].values()] == ["other"]  # the untagged one


# --- against the lab's Kong stand-in (``python -m lab.kong``) -------------------------------------------
# Every test below takes the ``standin`` fixture: it starts the stand-in as a subprocess on free ports and
# skips the test, with the reason, when lab/kong is missing or does not come up.
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if not (ROOT / "lab" / "kong" / "__main__.py").is_file():
        pytest.skip("the lab's Kong stand-in (lab/kong) is not there")
    folder = tmp_path_factory.mktemp("kong")
    admin_port, proxy_port = _free_port(), _free_port()
    config = folder / "kong.json"
    config.write_text(
        json.dumps(
            {
                "admin_port": admin_port,
                "proxy_port": proxy_port,
                "database": f"sqlite:///{folder / 'kong.db'}",
                "admin_token": TOKEN,
            }
        )
    )
    config.chmod(0o600)
    log = (folder / "kong.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.kong", "--config", str(config)], cwd=ROOT, stdout=log, stderr=log
    )
    admin_url = f"http://127.0.0.1:{admin_port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if requests.get(f"{admin_url}/", headers={"Kong-Admin-Token": TOKEN}, timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.skip(f"the Kong stand-in did not start: {(folder / 'kong.log').read_text()[-800:]}")
        time.sleep(0.05)
    yield {"admin_url": admin_url, "proxy_url": f"http://127.0.0.1:{proxy_port}"}
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture(scope="module")
def echo() -> Iterator[list[str]]:
    """Two upstream HTTP servers that answer 200 with their own name, the path and the headers they got."""

    def server(name: str) -> ThreadingHTTPServer:
        class Echo(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = json.dumps(
                    {"upstream": name, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return httpd

    servers = [server("one"), server("two")]
    yield [f"127.0.0.1:{httpd.server_address[1]}" for httpd in servers]
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def kong(standin: dict[str, str]) -> Iterator[tuple[KongLibrary, str]]:
    """The library on the stand-in, with a per-test tag on everything it creates, removed afterwards."""
    library = KongLibrary(admin_url=standin["admin_url"], proxy_url=standin["proxy_url"], admin_token=TOKEN)
    tag = f"t{uuid.uuid4().hex[:8]}"
    run(library, "set_default_kong_tags", tag)
    yield library, tag
    run(library, "delete_all_entities_tagged", tag)


def test_standin_key_auth_and_rate_limit_journey(kong: tuple[KongLibrary, str], echo: list[str]) -> None:
    library, tag = kong
    run(library, "create_service", f"billing-{tag}", f"http://{echo[0]}")
    run(library, "create_route", f"billing-{tag}", name=f"billing-{tag}", paths=[f"/billing-{tag}"])
    run(library, "add_plugin", "key-auth", route=f"billing-{tag}")
    run(library, "add_plugin", "rate-limiting", service=f"billing-{tag}", config={"minute": 3, "policy": "local"})
    run(library, "create_consumer", f"acme-{tag}")
    key = run(library, "Create Key Auth Credential", f"acme-{tag}")["key"]
    refused = run(library, "wait_until_route_answers", f"/billing-{tag}/health", expected_status=401)
    assert refused.json()["message"] == "No API key found in request"
    response = run(library, "call_through_gateway", "GET", f"/billing-{tag}/health", consumer_key=key)
    run(library, "gateway_response_status_should_be", response, 200)
    assert response.json()["upstream"] == "one"
    run(library, "rate_limit_headers_should_show", response, limit=3, remaining=2, window="minute")
    counts = run(library, "delete_all_entities_tagged", tag)
    assert counts == {"plugins": 2, "routes": 1, "services": 1, "key-auths": 1, "consumers": 1}


def test_standin_refusals_are_quoted(kong: tuple[KongLibrary, str]) -> None:
    library, tag = kong
    run(library, "create_service", f"svc-{tag}", "http://127.0.0.1:9")
    with pytest.raises(KongApiError) as caught:
        run(library, "create_route", f"svc-{tag}", paths=["billing"])
    assert str(caught.value) == (
        "Create Route failed with HTTP 400 (schema violation): paths: should start with: / (fixed path) or ~/ "
        "(regex path)"
    )
    with pytest.raises(KongApiError) as taken:
        run(library, "create_service", f"svc-{tag}", "http://127.0.0.1:9")
    assert str(taken.value) == (
        f"Create Service failed with HTTP 409 (unique constraint violation): "
        f"UNIQUE violation detected on '{{name=\"svc-{tag}\"}}'"
    )


def test_standin_acl_groups(kong: tuple[KongLibrary, str], echo: list[str]) -> None:
    library, tag = kong
    run(library, "create_service", f"sms-{tag}", f"http://{echo[0]}")
    run(library, "create_route", f"sms-{tag}", paths=[f"/sms-{tag}"])
    run(library, "add_plugin", "key-auth", service=f"sms-{tag}")
    run(library, "add_plugin", "acl", service=f"sms-{tag}", config={"allow": [f"senders-{tag}"]})
    keys = {}
    for who in ("ann", "bob"):
        run(library, "create_consumer", f"{who}-{tag}")
        keys[who] = run(library, "Create Key Auth Credential", f"{who}-{tag}")["key"]
    run(library, "Add Consumer To ACL Group", f"ann-{tag}", f"senders-{tag}")
    assert run(library, "Get Consumer ACL Groups", f"ann-{tag}") == [f"senders-{tag}"]
    run(library, "wait_until_route_answers", f"/sms-{tag}/send", consumer_key=keys["ann"], expected_status=200)
    forbidden = run(library, "call_through_gateway", "GET", f"/sms-{tag}/send", consumer_key=keys["bob"])
    run(library, "gateway_response_status_should_be", forbidden, 403)
    run(library, "Remove Consumer From ACL Group", f"ann-{tag}", f"senders-{tag}")
    run(library, "wait_until_route_answers", f"/sms-{tag}/send", consumer_key=keys["ann"], expected_status=403)


def test_standin_jwt(kong: tuple[KongLibrary, str], echo: list[str]) -> None:
    library, tag = kong
    enabled = library.ctx.admin("GET", "/plugins/enabled").get("enabled_plugins", [])
    if "jwt" not in enabled:
        pytest.skip("the Kong stand-in has no jwt plugin (GET /plugins/enabled)")
    run(library, "create_service", f"jwt-{tag}", f"http://{echo[0]}")
    run(library, "create_route", f"jwt-{tag}", paths=[f"/jwt-{tag}"])
    run(library, "add_plugin", "jwt", service=f"jwt-{tag}")
    run(library, "create_consumer", f"ann-{tag}")
    token = run(library, "Sign JWT", run(library, "Create JWT Credential", f"ann-{tag}"))
    run(library, "wait_until_route_answers", f"/jwt-{tag}/send", jwt=token, expected_status=200)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    run(library, "call_through_gateway", "GET", f"/jwt-{tag}/send", jwt=forged, expected_status=401)


def test_standin_targets_weights_and_health(kong: tuple[KongLibrary, str], echo: list[str]) -> None:
    library, tag = kong
    upstream = f"gw-{tag}"
    run(library, "create_upstream", upstream)
    for target in echo:
        run(library, "add_target", upstream, target)
    run(library, "create_service", f"lb-{tag}", f"http://{upstream}")
    run(library, "create_route", f"lb-{tag}", paths=[f"/lb-{tag}"])
    run(library, "wait_until_route_answers", f"/lb-{tag}", expected_status=200)
    assert run(library, "set_target_weight", upstream, echo[1], 0)["weight"] == 0
    answers = {run(library, "call_through_gateway", "GET", f"/lb-{tag}").json()["upstream"] for _ in range(6)}
    assert answers == {"one"}
    run(library, "set_target_weight", upstream, echo[1], 100)
    run(library, "set_target_health", upstream, echo[0], "unhealthy")
    run(library, "get_target_health", upstream, echo[0], AssertionOperator["=="], "UNHEALTHY", timeout=SHORT * 10)
    answers = {run(library, "call_through_gateway", "GET", f"/lb-{tag}").json()["upstream"] for _ in range(6)}
    assert answers == {"two"}
    health = run(library, "get_upstream_health", upstream)
    assert (health[echo[0]], health[echo[1]]) == ("UNHEALTHY", "HEALTHCHECKS_OFF")  # no active checks configured
    run(library, "set_target_health", upstream, echo[0], "healthy")
    run(library, "get_target_health", upstream, echo[0], AssertionOperator["=="], "HEALTHY", timeout=SHORT * 10)


def test_standin_lists_follow_offset(kong: tuple[KongLibrary, str]) -> None:
    library, tag = kong
    for number in range(3):
        run(library, "create_consumer", f"c{number}-{tag}")
    paged = library.ctx.list_all("/consumers", {"tags": tag, "size": 1})
    assert sorted(consumer["username"] for consumer in paged) == [f"c{number}-{tag}" for number in range(3)]
    assert len(run(library, "get_consumers", tags=[tag])) == 3


def test_standin_deck_sync(kong: tuple[KongLibrary, str], echo: list[str], tmp_path: Path) -> None:
    library, tag = kong
    if not shutil.which("deck"):
        pytest.skip("decK (deck) is not on PATH")
    state = tmp_path / "kong.yaml"
    state.write_text(
        f"""_format_version: "1.1"
services:
- name: deck-{tag}
  url: http://{echo[1]}
  tags: [{tag}]
  routes:
  - name: deck-{tag}
    paths: [/deck-{tag}]
    tags: [{tag}]
"""
    )
    summary = run(library, "apply_declarative_config", state, select_tags=[tag], timeout=timedelta(seconds=60))
    assert summary["created"] == 2
    run(library, "declarative_config_should_be_applied", state, select_tags=[tag])
    response = run(library, "wait_until_route_answers", f"/deck-{tag}/x", expected_status=200)
    assert response.json()["upstream"] == "two"


def test_standin_updates_and_plugin_switches(kong: tuple[KongLibrary, str], echo: list[str]) -> None:
    library, tag = kong
    run(library, "create_service", f"up-{tag}", f"http://{echo[0]}", retries=1)
    assert run(library, "update_service", f"up-{tag}", retries=3)["retries"] == 3
    route = run(library, "create_route", f"up-{tag}", name=f"up-{tag}", paths=[f"/up-{tag}"])
    assert run(library, "update_route", route["id"], strip_path=False)["strip_path"] is False
    run(library, "create_consumer", f"ann-{tag}")
    assert run(library, "update_consumer", f"ann-{tag}", custom_id=f"c-{tag}")["custom_id"] == f"c-{tag}"
    credential = run(library, "Create Key Auth Credential", f"ann-{tag}", f"key-{tag}")
    assert run(library, "Get Key Auth Credential", f"ann-{tag}", credential["id"])["key"].value == f"key-{tag}"
    limit = run(library, "add_plugin", "rate-limiting", route=f"up-{tag}", config={"minute": 5, "policy": "local"})
    assert run(library, "update_plugin_config", limit["id"], {"minute": 7})["config"]["minute"] == 7
    response = run(library, "wait_until_route_answers", f"/up-{tag}", expected_status=200)
    run(library, "rate_limit_headers_should_show", response, limit=7)
    assert run(library, "disable_plugin", limit["id"])["enabled"] is False
    assert run(library, "get_plugins", route=f"up-{tag}")[0]["enabled"] is False
    assert run(library, "enable_plugin", limit["id"])["enabled"] is True
    run(library, "delete_plugin", limit["id"])
    assert run(library, "get_plugins", route=f"up-{tag}") == []
