"""The lab's Kong stand-in (``lab/kong``): Admin API shapes, the proxy, two nodes on one database, and decK.

Every node runs as its own process (``python -m lab.kong --config FILE``) on free loopback ports, as the lab runs
it; upstream services are small HTTP servers started here. Tests share one two-node cluster and keep apart by
giving everything they create a unique name. decK gets a node and a database of its own, since ``deck reset``
removes everything.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "unit-test-kong-token"
log = logging.getLogger(__name__)


# --- processes and servers -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class KongNode:
    name: str
    admin_url: str
    proxy_url: str
    process: subprocess.Popen[bytes]
    log_file: Path
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.headers["kong-admin-token"] = TOKEN  # sent in lower case on purpose

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.admin_url + path, timeout=10, **kwargs)

    def post(self, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        return self.session.post(self.admin_url + path, json=body, timeout=10, **kwargs)

    def put(self, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        return self.session.put(self.admin_url + path, json=body, timeout=10, **kwargs)

    def patch(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.patch(self.admin_url + path, json=body, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.admin_url + path, timeout=10)

    def created(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(path, body)
        assert response.status_code == 201, f"POST {path} {body} answered {response.status_code}: {response.text}"
        return dict(response.json())

    def proxy(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.proxy_url + path, timeout=10, **kwargs)


def _start_node(directory: Path, name: str, database: str) -> KongNode:
    admin_port, proxy_port = _free_port(), _free_port()
    config = directory / f"{name}.json"
    config.write_text(
        json.dumps(
            {
                "admin_host": "127.0.0.1",
                "admin_port": admin_port,
                "proxy_port": proxy_port,
                "database": database,
                "admin_token": TOKEN,
                "node": name,
            }
        ),
        encoding="utf-8",
    )
    config.chmod(0o600)
    log_file = directory / f"{name}.log"
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "lab.kong", "--config", str(config)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    node = KongNode(name, f"http://127.0.0.1:{admin_port}", f"http://127.0.0.1:{proxy_port}", process, log_file)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}: {log_file.read_text()}")
        try:
            if requests.get(node.admin_url + "/status", timeout=1).status_code == 200:
                return node
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    _stop_node(node)
    pytest.fail(f"{name} did not answer GET /status within 20 s: {log_file.read_text()}")


def _stop_node(node: KongNode) -> int:
    node.session.close()
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGTERM)
        try:
            node.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(timeout=5)
    return int(node.process.returncode)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KongNode, KongNode]]:
    directory = tmp_path_factory.mktemp("kong-cluster")
    database = f"sqlite:///{directory / 'kong.db'}"
    first = _start_node(directory, "kong-a", database)
    try:
        second = _start_node(directory, "kong-b", database)
    except BaseException:
        _stop_node(first)
        raise
    yield first, second
    codes = (_stop_node(first), _stop_node(second))
    assert codes == (0, 0), f"nodes exited with {codes}: {first.log_file.read_text()[-2000:]}"


class Upstream:
    """An upstream HTTP server: echoes each request as JSON with its own name; ``status`` and
    ``health_status`` (for ``GET /health``) can be changed while it runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = 200
        self.health_status = 200
        self.delay = 0.0
        self.seen: list[dict[str, Any]] = []
        self.health_probes = 0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                if upstream.delay and self.path != "/health":
                    time.sleep(upstream.delay)
                if self.path == "/health":
                    upstream.health_probes += 1
                    status, payload = upstream.health_status, {"upstream": upstream.name, "health": True}
                else:
                    record = {
                        "method": self.command,
                        "path": self.path,
                        "headers": {key.lower(): value for key, value in self.headers.items()},
                        "body": body,
                    }
                    upstream.seen.append(record)
                    status, payload = upstream.status, {"upstream": upstream.name, **record}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstreams() -> Iterator[Callable[[str], Upstream]]:
    started: list[Upstream] = []

    def start(name: str) -> Upstream:
        server = Upstream(name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _without_meta(entity: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entity.items() if key not in ("id", "created_at", "updated_at")}


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _health(node: KongNode, upstream: str) -> dict[str, str]:
    body = node.get(f"/upstreams/{upstream}/health").json()
    return {entry["target"]: entry["health"] for entry in body["data"]}


# --- Admin API --------------------------------------------------------------------------------------------------


def test_admin_api_needs_the_token_and_answers_kong_3_shapes(cluster: tuple[KongNode, KongNode]) -> None:
    node, _ = cluster
    refused = requests.get(node.admin_url + "/services", timeout=5)
    assert refused.status_code == 401
    assert refused.json() == {"message": "Invalid credentials. Token or User credentials required"}
    wrong = requests.get(node.admin_url + "/", headers={"Kong-Admin-Token": "nope"}, timeout=5)
    assert wrong.status_code == 401

    root = node.get("/")
    assert root.status_code == 200
    info = root.json()
    assert info["version"] == "3.4.2"
    assert info["hostname"] == "kong-a"
    assert re.fullmatch(r"[0-9a-f-]{36}", info["node_id"])
    assert {"key-auth", "acl", "rate-limiting", "correlation-id"} <= set(info["plugins"]["available_on_server"])

    status = requests.get(node.admin_url + "/status", timeout=5)  # the lab's health check: no token
    assert status.status_code == 200
    assert status.json()["database"] == {"reachable": True}

    assert node.get("/no-such-thing").json() == {"message": "Not found"}
    assert node.get("/services").json()["next"] is None


def test_entities_are_echoed_exactly_as_written(cluster: tuple[KongNode, KongNode]) -> None:
    node, _ = cluster
    name = _unique("svc")
    written = {"name": name, "host": "billing.internal", "port": 8080, "protocol": "http", "tags": ["unit"]}
    created = node.created("/services", written)
    assert _without_meta(created) == written  # no retries, timeouts or other defaults added
    assert re.fullmatch(r"[0-9a-f-]{36}", created["id"])
    assert isinstance(created["created_at"], int)
    assert isinstance(created["updated_at"], int)
    assert node.get(f"/services/{name}").json() == created
    assert node.get(f"/services/{created['id']}").json() == created

    patched = node.patch(f"/services/{name}", {"port": 9090, "path": "/v2"})
    assert patched.status_code == 200
    assert _without_meta(patched.json()) == {**written, "port": 9090, "path": "/v2"}
    assert patched.json()["id"] == created["id"]

    replaced = node.put(f"/services/{name}", {"host": "other.internal"})
    assert replaced.status_code == 200
    assert _without_meta(replaced.json()) == {"name": name, "host": "other.internal"}
    assert replaced.json()["id"] == created["id"]

    other = _unique("svc")
    upserted = node.put(f"/services/{other}", {"url": "https://api.example.com:8443/base"})
    assert upserted.status_code == 200
    assert _without_meta(upserted.json()) == {
        "name": other,
        "protocol": "https",
        "host": "api.example.com",
        "port": 8443,
        "path": "/base",
    }

    client_id = str(uuid.uuid4())
    by_id = node.put(f"/consumers/{client_id}", {"username": _unique("user")})
    assert by_id.status_code == 200
    assert by_id.json()["id"] == client_id
    posted_id = str(uuid.uuid4())
    assert node.created("/consumers", {"id": posted_id, "custom_id": _unique("c")})["id"] == posted_id
    duplicate = node.post("/consumers", {"id": posted_id, "username": _unique("user")})
    assert duplicate.status_code == 400
    assert duplicate.json()["code"] == 3
    assert duplicate.json()["name"] == "primary key violation"

    assert node.delete(f"/services/{name}").status_code == 204
    gone = node.get(f"/services/{name}")
    assert (gone.status_code, gone.json()) == (404, {"message": "Not found"})
    assert node.delete(f"/services/{name}").status_code == 204  # Kong's DELETE is idempotent


def test_nested_paths_create_and_list_children(cluster: tuple[KongNode, KongNode]) -> None:
    node, _ = cluster
    service = node.created("/services", {"name": _unique("svc"), "host": "example.com"})
    route_name = _unique("route")
    route = node.created(f"/services/{service['name']}/routes", {"name": route_name, "paths": ["/nested"]})
    assert route["service"] == {"id": service["id"]}
    assert [r["id"] for r in node.get(f"/services/{service['id']}/routes").json()["data"]] == [route["id"]]
    assert node.get(f"/routes/{route_name}/service").json()["id"] == service["id"]
    assert node.get(f"/services/{service['name']}/routes/{route_name}").json()["id"] == route["id"]

    route_plugin = node.created(f"/routes/{route_name}/plugins", {"name": "correlation-id"})
    assert route_plugin["route"] == {"id": route["id"]}
    form = node.session.post(
        f"{node.admin_url}/services/{service['name']}/plugins",
        data={"name": "rate-limiting", "config.minute": "7", "config.policy": "local"},
        timeout=10,
    )
    assert form.status_code == 201, form.text
    assert form.json()["config"] == {"minute": 7, "policy": "local"}
    assert [p["id"] for p in node.get(f"/services/{service['id']}/plugins").json()["data"]] == [form.json()["id"]]
    assert [p["id"] for p in node.get(f"/routes/{route['id']}/plugins").json()["data"]] == [route_plugin["id"]]

    username = _unique("user")
    consumer = node.created("/consumers", {"username": username})
    key = node.created(f"/consumers/{username}/key-auth", {"key": _unique("key")})
    generated = node.created(f"/consumers/{username}/key-auth", {})
    assert re.fullmatch(r"[0-9a-f]{32}", generated["key"])
    acl = node.created(f"/consumers/{username}/acls", {"group": "gold"})
    assert acl["consumer"] == {"id": consumer["id"]}
    assert node.get(f"/consumers/{username}/key-auth/{key['key']}").json()["id"] == key["id"]
    assert node.get(f"/consumers/{username}/acls/gold").json()["id"] == acl["id"]
    assert len(node.get(f"/consumers/{username}/key-auth").json()["data"]) == 2
    assert key["id"] in [k["id"] for k in node.get("/key-auths", params={"size": 1000}).json()["data"]]
    assert node.get(f"/consumers/{username}/jwt").json() == {"data": [], "next": None}
    consumer_plugin = node.created(f"/consumers/{username}/plugins", {"name": "rate-limiting", "config": {"hour": 9}})
    assert consumer_plugin["consumer"] == {"id": consumer["id"]}
    for collection in ("basic-auths", "hmac-auths", "oauth2", "mtls-auths", "jwts", "certificates", "snis"):
        assert node.get(f"/{collection}").status_code == 200, collection

    upstream = node.created("/upstreams", {"name": _unique("up") + ".internal"})
    target = node.created(f"/upstreams/{upstream['name']}/targets", {"target": "127.0.0.1:9", "weight": 5})
    assert target["upstream"] == {"id": upstream["id"]}
    assert node.get(f"/upstreams/{upstream['id']}/targets/127.0.0.1:9").json()["id"] == target["id"]
    other_user = node.created("/consumers", {"username": _unique("user")})
    assert node.get(f"/consumers/{other_user['id']}/key-auth/{key['id']}").status_code == 404


def test_collections_page_with_offset(cluster: tuple[KongNode, KongNode]) -> None:
    node, _ = cluster
    tag = _unique("page")
    made = [node.created("/consumers", {"username": _unique("pager"), "tags": [tag]})["id"] for _ in range(5)]
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"size": 2, "tags": tag}
    while True:
        body = node.get("/consumers", params=params).json()
        pages += 1
        seen += [consumer["id"] for consumer in body["data"]]
        if not body.get("offset"):
            assert body["next"] is None
            break
        assert "offset=" in body["next"]
        params = {"size": 2, "tags": tag, "offset": body["offset"]}
    assert seen == made
    assert pages == 3

    bad_size = node.get("/consumers", params={"size": 0})
    assert bad_size.status_code == 400
    assert bad_size.json()["code"] == 9
    bad_offset = node.get("/consumers", params={"offset": "!!!"})
    assert bad_offset.status_code == 400
    assert bad_offset.json() == {
        "code": 7,
        "name": "invalid offset",
        "message": "'!!!' is not a valid offset: bad base64 encoding",
    }


def test_unique_conflicts_answer_409_in_kongs_shape(cluster: tuple[KongNode, KongNode]) -> None:
    node, _ = cluster
    name = _unique("svc")
    service = node.created("/services", {"name": name, "host": "example.com"})
    conflict = node.post("/services", {"name": name, "host": "other.com"})
    assert conflict.status_code == 409
    assert conflict.json() == {
        "code": 5,
        "name": "unique constraint violation",
        "message": f"UNIQUE violation detected on '{{name=\"{name}\"}}'",
        "fields": {"name": name},
    }

    key = _unique("key")
    first, second = (node.created("/consumers", {"username": _unique("user")}) for _ in range(2))
    node.created(f"/consumers/{first['id']}/key-auth", {"key": key})
    clash = node.post(f"/consumers/{second['id']}/key-auth", {"key": key})
    assert clash.status_code == 409
    assert clash.json()["fields"] == {"key": key}

    node.created(f"/services/{name}/plugins", {"name": "rate-limiting", "config": {"minute": 1}})
    twice = node.post(f"/services/{name}/plugins", {"name": "rate-limiting", "config": {"minute": 2}})
    assert twice.status_code == 409
    assert twice.json()["fields"] == {
        "name": "rate-limiting",
        "service": {"id": service["id"]},
        "route": None,
        "consumer": None,
    }
    renamed = node.patch(f"/services/{_unique('none')}", {"name": name})
    assert renamed.status_code == 404


ROUTE_FIELDS = "'methods', 'hosts', 'headers', 'paths', 'snis'"
NOT_ENABLED = "not enabled; add it to the 'plugins' configuration property"


@pytest.mark.parametrize(
    ("path", "body", "fields", "message"),
    [
        (
            "/services",
            {"name": "no-host"},
            {"host": "required field missing"},
            "schema violation (host: required field missing)",
        ),
        (
            "/services",
            {"host": "example.com", "port": 70000, "retries": "five"},
            {"port": "value should be between 0 and 65535", "retries": "expected an integer"},
            "2 schema violations (port: value should be between 0 and 65535; retries: expected an integer)",
        ),
        (
            "/services",
            {"host": "example.com", "colour": "blue"},
            {"colour": "unknown field"},
            "schema violation (colour: unknown field)",
        ),
        (
            "/routes",
            {"paths": ["api"]},
            {"paths": ["should start with: / (fixed path) or ~/ (regex path)"]},
            "schema violation (paths.1: should start with: / (fixed path) or ~/ (regex path))",
        ),
        (
            "/routes",
            {"name": "nothing-to-match"},
            {"@entity": [f"must set one of {ROUTE_FIELDS} when 'protocols' is 'https'"]},
            f"schema violation (must set one of {ROUTE_FIELDS} when 'protocols' is 'https')",
        ),
        (
            "/consumers",
            {"tags": ["nobody"]},
            {"@entity": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]},
            "schema violation (at least one of these fields must be non-empty: 'custom_id', 'username')",
        ),
        (
            "/plugins",
            {"name": "no-such-plugin"},
            {"name": f"plugin 'no-such-plugin' {NOT_ENABLED}"},
            f"schema violation (name: plugin 'no-such-plugin' {NOT_ENABLED})",
        ),
        (
            "/plugins",
            {"name": "rate-limiting", "config": {"policy": "local"}},
            {
                "@entity": [
                    "at least one of these fields must be non-empty: 'config.second', 'config.minute', "
                    "'config.hour', 'config.day', 'config.month', 'config.year'"
                ]
            },
            "schema violation (at least one of these fields must be non-empty: 'config.second', 'config.minute', "
            "'config.hour', 'config.day', 'config.month', 'config.year')",
        ),
        (
            "/plugins",
            {"name": "rate-limiting", "config": {"minute": "many"}},
            {"config": {"minute": "expected a number"}},
            "schema violation (config.minute: expected a number)",
        ),
        (
            "/upstreams",
            {"name": "not a host"},
            {"name": "Invalid name ('not a host'); must be a valid hostname"},
            "schema violation (name: Invalid name ('not a host'); must be a valid hostname)",
        ),
    ],
)
def test_invalid_entities_answer_400_schema_violation(
    cluster: tuple[KongNode, KongNode], path: str, body: dict[str, Any], fields: dict[str, Any], message: str
) -> None:
    node, _ = cluster
    response = node.post(path, body)
    assert response.status_code == 400
    assert response.json() == {"code": 2, "name": "schema violation", "message": message, "fields": fields}


def test_references_to_missing_entities_answer_400_foreign_key_violation(cluster: tuple[KongNode, KongNode]) -> None:
    node, _ = cluster
    missing = str(uuid.uuid4())
    response = node.post("/routes", {"paths": ["/x"], "service": {"id": missing}})
    assert response.status_code == 400
    assert response.json() == {
        "code": 4,
        "name": "foreign key violation",
        "message": f"the foreign key '{{id=\"{missing}\"}}' does not reference an existing 'services' entity.",
        "fields": {"service": {"id": missing}},
    }
    assert node.get(f"/consumers/{missing}/key-auth").status_code == 404


def test_deletes_cascade_like_kong(cluster: tuple[KongNode, KongNode]) -> None:
    node, _ = cluster
    consumer = node.created("/consumers", {"username": _unique("user")})
    key = node.created(f"/consumers/{consumer['id']}/key-auth", {})
    acl = node.created(f"/consumers/{consumer['id']}/acls", {"group": "gold"})
    plugin = node.created(f"/consumers/{consumer['id']}/plugins", {"name": "rate-limiting", "config": {"second": 5}})
    assert node.delete(f"/consumers/{consumer['id']}").status_code == 204
    for path in (f"/key-auths/{key['id']}", f"/acls/{acl['id']}", f"/plugins/{plugin['id']}"):
        assert node.get(path).status_code == 404, path

    service = node.created("/services", {"name": _unique("svc"), "host": "example.com"})
    route = node.created(f"/services/{service['id']}/routes", {"paths": ["/cascade"]})
    route_plugin = node.created(f"/routes/{route['id']}/plugins", {"name": "correlation-id"})
    service_plugin = node.created(f"/services/{service['id']}/plugins", {"name": "correlation-id"})
    restricted = node.delete(f"/services/{service['id']}")  # Kong refuses while routes reference the service
    assert restricted.status_code == 400
    assert restricted.json() == {
        "code": 4,
        "name": "foreign key violation",
        "message": "an existing 'routes' entity references this 'services' entity",
        "fields": {"@referenced_by": "routes"},
    }
    assert node.delete(f"/routes/{route['id']}").status_code == 204
    assert node.get(f"/plugins/{route_plugin['id']}").status_code == 404
    assert node.delete(f"/services/{service['id']}").status_code == 204
    assert node.get(f"/plugins/{service_plugin['id']}").status_code == 404

    upstream = node.created("/upstreams", {"name": _unique("up") + ".internal"})
    node.created(f"/upstreams/{upstream['id']}/targets", {"target": "127.0.0.1:1"})
    assert node.delete(f"/upstreams/{upstream['name']}").status_code == 204
    node.put(f"/upstreams/{upstream['id']}", {"name": upstream["name"]})
    assert node.get(f"/upstreams/{upstream['id']}/targets").json()["data"] == []


def test_two_nodes_share_one_database(cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]) -> None:
    first, second = cluster
    backend = upstreams("shared")
    service = first.created("/services", {"name": _unique("svc"), "url": backend.url})
    assert second.get(f"/services/{service['name']}").json() == service
    path = "/" + _unique("shared")
    first.created(f"/services/{service['id']}/routes", {"paths": [path]})
    via_second = second.proxy("GET", path + "/hello")
    assert via_second.status_code == 200
    assert via_second.json()["path"] == "/hello"
    for route in second.get(f"/services/{service['id']}/routes").json()["data"]:
        assert second.delete(f"/routes/{route['id']}").status_code == 204
    assert first.proxy("GET", path + "/hello").status_code == 404


# --- proxy -------------------------------------------------------------------------------------------------------


def test_proxy_matches_routes_like_kong(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    node, _ = cluster
    backend = upstreams("routing")
    service = node.created("/services", {"name": _unique("svc"), "url": backend.url + "/base"})
    prefix = "/" + _unique("p")
    host = _unique("h") + ".example.com"
    node.created(f"/services/{service['id']}/routes", {"paths": [prefix], "strip_path": True})
    node.created(
        f"/services/{service['id']}/routes",
        {"paths": [prefix + "/deeper"], "strip_path": False, "methods": ["GET"]},
    )
    node.created(f"/services/{service['id']}/routes", {"hosts": [host]})

    longest = node.proxy("GET", prefix + "/deeper/item?x=1")
    assert longest.status_code == 200
    assert longest.json()["path"] == f"/base{prefix}/deeper/item?x=1"
    stripped = node.proxy("POST", prefix + "/deeper/item", data="payload")
    assert stripped.json()["path"] == "/base/deeper/item"
    assert stripped.json()["body"] == "payload"
    seen = stripped.json()["headers"]
    assert seen["x-forwarded-prefix"] == prefix
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["host"] == backend.address
    assert node.proxy("GET", prefix).json()["path"] == "/base"
    by_host = node.proxy("GET", "/anything", headers={"Host": host})
    assert by_host.json()["path"] == "/base/anything"

    assert longest.headers["Via"] == "kong/3.4.2"
    assert int(longest.headers["X-Kong-Upstream-Latency"]) >= 0
    assert int(longest.headers["X-Kong-Proxy-Latency"]) >= 0
    missing = node.proxy("GET", "/" + _unique("nowhere"))
    assert missing.status_code == 404
    assert missing.json() == {"message": "no Route matched with those values"}


def _protected_service(node: KongNode, backend: Upstream) -> str:
    service = node.created("/services", {"name": _unique("svc"), "url": backend.url})
    path = "/" + _unique("secure")
    node.created(f"/services/{service['id']}/routes", {"paths": [path]})
    node.created(f"/services/{service['id']}/plugins", {"name": "key-auth"})
    node.created(f"/services/{service['id']}/plugins", {"name": "acl", "config": {"allow": ["gold"]}})
    return path


def _consumer(node: KongNode, group: str) -> tuple[dict[str, Any], str]:
    consumer = node.created("/consumers", {"username": _unique("user")})
    key = node.created(f"/consumers/{consumer['id']}/key-auth", {})["key"]
    node.created(f"/consumers/{consumer['id']}/acls", {"group": group})
    return consumer, key


def test_key_auth_and_acl_guard_a_service(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    node, _ = cluster
    backend = upstreams("guarded")
    path = _protected_service(node, backend)
    gold, gold_key = _consumer(node, "gold")
    _silver, silver_key = _consumer(node, "silver")

    missing = node.proxy("GET", path)
    assert (missing.status_code, missing.json()) == (401, {"message": "No API key found in request"})
    assert missing.headers["WWW-Authenticate"] == 'Key realm="kong"'
    invalid = node.proxy("GET", path, headers={"apikey": "not-a-key"})
    assert (invalid.status_code, invalid.json()) == (401, {"message": "Invalid authentication credentials"})
    denied = node.proxy("GET", path, headers={"apikey": silver_key})
    assert (denied.status_code, denied.json()) == (403, {"message": "You cannot consume this service"})
    assert backend.seen == []

    allowed = node.proxy("GET", path, headers={"apikey": gold_key})
    assert allowed.status_code == 200
    headers = allowed.json()["headers"]
    assert headers["x-consumer-username"] == gold["username"]
    assert headers["x-consumer-id"] == gold["id"]
    assert headers["x-consumer-groups"] == "gold"
    assert headers["apikey"] == gold_key
    in_query = node.proxy("GET", path, params={"apikey": gold_key})
    assert in_query.status_code == 200


def _wait_for_next_second() -> None:
    """Sleep into the first milliseconds of the next clock second: a fresh window for per-second limits."""
    time.sleep(1.0 - time.time() % 1 + 0.01)


def test_rate_limiting_counts_across_both_nodes(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    first, second = cluster
    backend = upstreams("limited")
    service = first.created("/services", {"name": _unique("svc"), "url": backend.url})
    path = "/" + _unique("limited")
    route = first.created(f"/services/{service['id']}/routes", {"paths": [path]})
    first.created(
        f"/routes/{route['id']}/plugins",
        {"name": "rate-limiting", "config": {"second": 3, "hour": 1000, "policy": "cluster", "limit_by": "ip"}},
    )
    second.proxy("GET", path)  # both nodes have loaded the configuration
    _wait_for_next_second()
    answers = [node.proxy("GET", path) for node in (first, second, first, second)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert [answer.headers["X-RateLimit-Remaining-Second"] for answer in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["X-RateLimit-Limit-Second"] == "3"
    assert answers[0].headers["X-RateLimit-Limit-Hour"] == "1000"
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert answers[0].headers["RateLimit-Remaining"] == "2"
    assert answers[0].headers["RateLimit-Reset"] == "1"
    limited = answers[3]
    assert limited.json() == {"message": "API rate limit exceeded"}
    assert limited.headers["Retry-After"] == "1"
    _wait_for_next_second()
    again = second.proxy("GET", path)
    assert again.status_code == 200
    assert again.headers["X-RateLimit-Remaining-Second"] == "2"


def test_rate_limiting_local_policy_counts_per_node_and_per_consumer(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    first, second = cluster
    backend = upstreams("local")
    service = first.created("/services", {"name": _unique("svc"), "url": backend.url})
    path = "/" + _unique("local")
    first.created(f"/services/{service['id']}/routes", {"paths": [path]})
    first.created(f"/services/{service['id']}/plugins", {"name": "key-auth"})
    first.created(f"/services/{service['id']}/plugins", {"name": "rate-limiting", "config": {"minute": 50}})
    consumer, key = _consumer(first, "any")
    first.created(f"/consumers/{consumer['id']}/plugins", {"name": "rate-limiting", "config": {"minute": 2}})
    _other, other_key = _consumer(first, "any")

    assert first.proxy("GET", path, headers={"apikey": other_key}).headers["X-RateLimit-Limit-Minute"] == "50"
    codes = [first.proxy("GET", path, headers={"apikey": key}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # the consumer's own plugin outranks the service's
    assert first.proxy("GET", path, headers={"apikey": key}).headers["X-RateLimit-Limit-Minute"] == "2"
    assert second.proxy("GET", path, headers={"apikey": key}).status_code == 200  # policy local: per node


def test_upstream_round_robin_follows_weights(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    node, _ = cluster
    heavy, light, off = upstreams("heavy"), upstreams("light"), upstreams("off")
    name = _unique("rr") + ".internal"
    node.created("/upstreams", {"name": name})
    node.created(f"/upstreams/{name}/targets", {"target": heavy.address, "weight": 300})
    node.created(f"/upstreams/{name}/targets", {"target": light.address, "weight": 100})
    node.created(f"/upstreams/{name}/targets", {"target": off.address, "weight": 0})
    service = node.created("/services", {"name": _unique("svc"), "host": name, "port": 80})
    path = "/" + _unique("rr")
    node.created(f"/services/{service['id']}/routes", {"paths": [path]})
    answered = Counter(node.proxy("GET", path).json()["upstream"] for _ in range(40))
    assert answered == {"heavy": 30, "light": 10}
    assert heavy.seen[0]["headers"]["host"] == heavy.address


def test_passive_health_checks_fail_over(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    node, _ = cluster
    failing, healthy = upstreams("failing"), upstreams("healthy")
    failing.status = 500
    closed_port = _free_port()
    name = _unique("passive") + ".internal"
    node.created(
        "/upstreams",
        {"name": name, "healthchecks": {"passive": {"unhealthy": {"http_failures": 2, "tcp_failures": 1}}}},
    )
    for address in (failing.address, healthy.address, f"127.0.0.1:{closed_port}"):
        node.created(f"/upstreams/{name}/targets", {"target": address})
    service = node.created("/services", {"name": _unique("svc"), "host": name})
    path = "/" + _unique("passive")
    node.created(f"/services/{service['id']}/routes", {"paths": [path]})

    statuses = [node.proxy("GET", path).status_code for _ in range(12)]
    assert statuses.count(500) == 2  # the failing target answers twice, then it is out
    assert statuses[-6:] == [200] * 6
    assert len(failing.seen) == 2
    health = _health(node, name)
    assert health == {
        failing.address: "UNHEALTHY",
        healthy.address: "HEALTHY",
        f"127.0.0.1:{closed_port}": "UNHEALTHY",
    }


def test_active_health_checks_take_a_target_out_and_back(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    node, _ = cluster
    flaky, steady = upstreams("flaky"), upstreams("steady")
    name = _unique("active") + ".internal"
    node.created(
        "/upstreams",
        {
            "name": name,
            "healthchecks": {
                "active": {
                    "http_path": "/health",
                    "timeout": 1,
                    "healthy": {"interval": 0.1, "successes": 2},
                    "unhealthy": {"interval": 0.1, "http_failures": 2, "tcp_failures": 2, "timeouts": 2},
                }
            },
        },
    )
    node.created(f"/upstreams/{name}/targets", {"target": flaky.address})
    node.created(f"/upstreams/{name}/targets", {"target": steady.address})
    service = node.created("/services", {"name": _unique("svc"), "host": name})
    path = "/" + _unique("active")
    node.created(f"/services/{service['id']}/routes", {"paths": [path]})
    _wait_for(lambda: flaky.health_probes >= 2, 5, "active probes of the flaky target")

    flaky.health_status = 503
    _wait_for(lambda: _health(node, name)[flaky.address] == "UNHEALTHY", 5, "the flaky target to be UNHEALTHY")
    assert {node.proxy("GET", path).json()["upstream"] for _ in range(6)} == {"steady"}
    flaky.health_status = 200
    _wait_for(lambda: _health(node, name)[flaky.address] == "HEALTHY", 5, "the flaky target to be HEALTHY again")
    assert {node.proxy("GET", path).json()["upstream"] for _ in range(6)} == {"steady", "flaky"}


def test_manual_health_changes_reach_both_nodes(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    first, second = cluster
    one, two = upstreams("one"), upstreams("two")
    name = _unique("manual") + ".internal"
    first.created("/upstreams", {"name": name})
    first.created(f"/upstreams/{name}/targets", {"target": one.address})
    first.created(f"/upstreams/{name}/targets", {"target": two.address})
    service = first.created("/services", {"name": _unique("svc"), "host": name})
    path = "/" + _unique("manual")
    first.created(f"/services/{service['id']}/routes", {"paths": [path]})
    assert _health(second, name) == {one.address: "HEALTHCHECKS_OFF", two.address: "HEALTHCHECKS_OFF"}

    marked = first.put(f"/upstreams/{name}/targets/{one.address}/unhealthy")
    assert (marked.status_code, marked.text) == (204, "")
    assert _health(second, name)[one.address] == "UNHEALTHY"
    assert second.get(f"/upstreams/{name}/targets/{one.address}/healthy").json()["health"] == "UNHEALTHY"
    assert {second.proxy("GET", path).json()["upstream"] for _ in range(4)} == {"two"}
    assert second.put(f"/upstreams/{name}/targets/{one.address}/healthy").status_code == 204
    assert _health(first, name)[one.address] == "HEALTHY"
    assert {first.proxy("GET", path).json()["upstream"] for _ in range(4)} == {"one", "two"}


def test_correlation_id_and_plugin_precedence(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    node, _ = cluster
    backend = upstreams("traced")
    service = node.created("/services", {"name": _unique("svc"), "url": backend.url})
    path = "/" + _unique("traced")
    route = node.created(f"/services/{service['id']}/routes", {"paths": [path]})
    node.created(f"/services/{service['id']}/plugins", {"name": "correlation-id", "config": {"header_name": "X-Svc"}})
    node.created(
        f"/routes/{route['id']}/plugins",
        {"name": "correlation-id", "config": {"header_name": "X-Trace", "echo_downstream": True}},
    )
    first, second = node.proxy("GET", path), node.proxy("GET", path)
    ids = [response.headers["X-Trace"] for response in (first, second)]
    assert all(re.fullmatch(r"[0-9a-f-]{36}#\d+", value) for value in ids)
    assert int(ids[1].split("#")[1]) > int(ids[0].split("#")[1])
    assert first.json()["headers"]["x-trace"] == ids[0]
    assert "x-svc" not in first.json()["headers"]  # the route's plugin outranks the service's
    kept = node.proxy("GET", path, headers={"X-Trace": "from-client"})
    assert kept.headers["X-Trace"] == "from-client"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_proxy_adds_little_latency(
    cluster: tuple[KongNode, KongNode],
    upstreams: Callable[[str], Upstream],
    record_property: Callable[[str, Any], None],
) -> None:
    node, _ = cluster
    backend = upstreams("fast")
    service = node.created("/services", {"name": _unique("svc"), "url": backend.url})
    path = "/" + _unique("fast")
    node.created(f"/services/{service['id']}/routes", {"paths": [path]})
    direct_session, proxy_session = requests.Session(), requests.Session()
    timings: dict[str, list[float]] = {"direct": [], "proxied": []}
    for _ in range(20):  # warm up both keep-alive connections
        direct_session.get(backend.url + "/x", timeout=5)
        proxy_session.get(node.proxy_url + path + "/x", timeout=5)
    for _ in range(200):
        for label, session, url in (
            ("direct", direct_session, backend.url + "/x"),
            ("proxied", proxy_session, node.proxy_url + path + "/x"),
        ):
            started = time.perf_counter()
            assert session.get(url, timeout=5).status_code == 200
            timings[label].append((time.perf_counter() - started) * 1000)
    figures = {
        f"{label}_{name}_ms": round(_percentile(values, fraction), 2)
        for label, values in timings.items()
        for name, fraction in (("p50", 0.5), ("p95", 0.95))
    }
    figures["proxied_mean_ms"] = round(statistics.fmean(timings["proxied"]), 2)
    for name, value in figures.items():
        record_property(name, value)
    log.info("latency: %s", figures)
    if os.environ.get("KONG_LATENCY_REPORT"):
        Path(os.environ["KONG_LATENCY_REPORT"]).write_text(json.dumps(figures), encoding="utf-8")
    assert figures["proxied_p95_ms"] < 50, figures


def test_a_target_created_again_gets_its_old_id(cluster: tuple[KongNode, KongNode]) -> None:
    node, _ = cluster
    upstream = node.created("/upstreams", {"name": _unique("reuse") + ".internal"})
    target = node.created(f"/upstreams/{upstream['id']}/targets", {"target": "127.0.0.1:7001", "weight": 50})
    assert node.delete(f"/upstreams/{upstream['id']}/targets/{target['id']}").status_code == 204
    again = node.created(f"/upstreams/{upstream['id']}/targets", {"target": "127.0.0.1:7001", "weight": 10})
    assert again["id"] == target["id"]  # decK changes a weight with DELETE + POST and expects the old id
    assert again["weight"] == 10
    clash = node.post(f"/upstreams/{upstream['id']}/targets", {"target": "127.0.0.1:7001"})
    assert clash.status_code == 409


def test_unreachable_and_slow_upstreams_answer_502_and_504(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    node, _ = cluster
    slow = upstreams("slow")
    slow.delay = 0.5
    closed = node.created(
        "/services", {"name": _unique("svc"), "url": f"http://127.0.0.1:{_free_port()}", "retries": 1}
    )
    late = node.created("/services", {"name": _unique("svc"), "url": slow.url, "read_timeout": 100, "retries": 0})
    refused_path, slow_path = "/" + _unique("refused"), "/" + _unique("slow")
    node.created(f"/services/{closed['id']}/routes", {"paths": [refused_path]})
    node.created(f"/services/{late['id']}/routes", {"paths": [slow_path]})
    refused = node.proxy("GET", refused_path)
    assert (refused.status_code, refused.json()) == (
        502,
        {"message": "An invalid response was received from the upstream server"},
    )
    timed_out = node.proxy("GET", slow_path)
    assert (timed_out.status_code, timed_out.json()) == (504, {"message": "The upstream server is timing out"})
    assert int(timed_out.headers["X-Kong-Response-Latency"]) >= 100


def test_a_global_plugin_applies_to_every_route(
    cluster: tuple[KongNode, KongNode], upstreams: Callable[[str], Upstream]
) -> None:
    node, _ = cluster
    backend = upstreams("global")
    service = node.created("/services", {"name": _unique("svc"), "url": backend.url})
    path = "/" + _unique("global")
    node.created(f"/services/{service['id']}/routes", {"paths": [path]})
    header = "X-" + _unique("Global")
    plugin = node.created("/plugins", {"name": "correlation-id", "config": {"header_name": header}})
    try:
        assert header.lower() in node.proxy("GET", path).json()["headers"]
    finally:
        assert node.delete(f"/plugins/{plugin['id']}").status_code == 204
    assert header.lower() not in node.proxy("GET", path).json()["headers"]


def _postgres_server_url() -> str:
    return os.environ.get("KONG_TEST_POSTGRES_URL") or os.environ.get("BILLING_TEST_POSTGRES_URL") or ""


def test_two_nodes_share_a_postgresql_database(tmp_path: Path, upstreams: Callable[[str], Upstream]) -> None:
    server_url = _postgres_server_url()
    if not server_url:
        pytest.skip("KONG_TEST_POSTGRES_URL (or BILLING_TEST_POSTGRES_URL, set by `make unit`) is not set")
    import sqlalchemy as sa

    name = f"kong_unit_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    nodes: list[KongNode] = []
    try:
        database = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        nodes = [_start_node(tmp_path, "pg-a", database), _start_node(tmp_path, "pg-b", database)]
        first, second = nodes
        backend = upstreams("pg")
        service = first.created("/services", {"name": "pg-service", "url": backend.url})
        route = first.created(f"/services/{service['id']}/routes", {"paths": ["/pg"]})
        first.created(
            f"/routes/{route['id']}/plugins", {"name": "rate-limiting", "config": {"hour": 2, "policy": "cluster"}}
        )
        assert second.get("/services/pg-service").json() == service
        assert first.created("/consumers", {"username": "pg-user"})["username"] == "pg-user"
        assert second.post("/consumers", {"username": "pg-user"}).status_code == 409
        codes = [node.proxy("GET", "/pg/x").status_code for node in (first, second, second)]
        assert codes == [200, 200, 429]
        assert second.delete(f"/routes/{route['id']}").status_code == 204
        assert first.get(f"/routes/{route['id']}/plugins").status_code == 404
        assert first.get("/plugins").json()["data"] == []
    finally:
        for node in nodes:
            _stop_node(node)
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


# --- decK ---------------------------------------------------------------------------------------------------------

DECK = shutil.which("deck")
KONG_YAML = """\
_format_version: "1.1"
services:
- name: billing-api
  protocol: http
  host: 127.0.0.1
  port: 18123
  path: /api
  routes:
  - name: billing-route
    paths:
    - /billing
    strip_path: true
  plugins:
  - name: rate-limiting
    config:
      minute: 5
      policy: local
consumers:
- username: acme
  keyauth_credentials:
  - key: acme-secret-key
  acls:
  - group: billing-users
upstreams:
- name: platform-api.upstream
  targets:
  - target: 127.0.0.1:18124
    weight: 100
  - target: 127.0.0.1:18125
    weight: 50
"""
# What decK 1.4 itself adds to a file before sending it (it has no schema look-up; measured with --verbose 2).
DECK_DEFAULTS: dict[str, dict[str, Any]] = {
    "services": {"connect_timeout": 60000, "read_timeout": 60000, "write_timeout": 60000},
    "routes": {"preserve_host": False, "protocols": ["http", "https"], "regex_priority": 0},
    "upstreams": {
        "slots": 10000,
        "hash_on": "none",
        "hash_fallback": "none",
        "hash_on_cookie_path": "/",
        "healthchecks": {
            "active": {
                "concurrency": 10,
                "healthy": {"http_statuses": [200, 302], "interval": 0, "successes": 0},
                "http_path": "/",
                "type": "http",
                "timeout": 1,
                "unhealthy": {
                    "http_failures": 0,
                    "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                    "tcp_failures": 0,
                    "timeouts": 0,
                    "interval": 0,
                },
            },
            "passive": {
                "healthy": {
                    "http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, *range(300, 309)],
                    "successes": 0,
                },
                "unhealthy": {"http_failures": 0, "http_statuses": [429, 500, 503], "tcp_failures": 0, "timeouts": 0},
            },
        },
    },
}


@pytest.fixture(scope="module")
def deck_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KongNode]:
    if DECK is None:
        pytest.skip("decK is not installed (Debian package 'deck'); the decK conformance tests need it")
    directory = tmp_path_factory.mktemp("kong-deck")
    node = _start_node(directory, "kong-deck", f"sqlite:///{directory / 'kong.db'}")
    yield node
    assert _stop_node(node) == 0


def _deck(node: KongNode, directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    assert DECK is not None
    command = ["timeout", "-k", "5", "60", DECK, *arguments]
    command += ["--kong-addr", node.admin_url, "--headers", f"Kong-Admin-Token:{TOKEN}", "--no-color"]
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=90, check=False)


def _expected_dump(state: dict[str, Any]) -> dict[str, Any]:
    expected = json.loads(json.dumps(state))
    for service in expected["services"]:
        service.update({**DECK_DEFAULTS["services"], **service})
        for route in service.get("routes", []):
            route.update({**DECK_DEFAULTS["routes"], **route})
    for upstream in expected["upstreams"]:
        upstream.update({**DECK_DEFAULTS["upstreams"], **upstream})
    return expected


def test_deck_ping_sync_diff_dump_and_reset(deck_node: KongNode, tmp_path: Path) -> None:
    node = deck_node
    (tmp_path / "kong.yaml").write_text(KONG_YAML, encoding="utf-8")

    ping = _deck(node, tmp_path, "ping")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "Successfully connected to Kong" in ping.stdout

    sync = _deck(node, tmp_path, "sync", "-s", "kong.yaml")
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert "Created: 9" in sync.stdout, sync.stdout
    diff = _deck(node, tmp_path, "diff", "-s", "kong.yaml", "--non-zero-exit-code")
    assert diff.returncode == 0, diff.stdout + diff.stderr

    dump = _deck(node, tmp_path, "dump", "-o", str(tmp_path / "dumped.yaml"))
    assert dump.returncode == 0, dump.stdout + dump.stderr
    dumped = yaml.safe_load((tmp_path / "dumped.yaml").read_text(encoding="utf-8"))
    assert dumped == _expected_dump(yaml.safe_load(KONG_YAML))

    heavier = KONG_YAML.replace("weight: 50", "weight: 10")  # decK: DELETE + POST of the target
    (tmp_path / "heavier.yaml").write_text(heavier, encoding="utf-8")
    resync = _deck(node, tmp_path, "sync", "-s", "heavier.yaml")
    assert resync.returncode == 0, resync.stdout + resync.stderr
    assert "Updated: 1" in resync.stdout, resync.stdout
    rediff = _deck(node, tmp_path, "diff", "-s", "heavier.yaml", "--non-zero-exit-code")
    assert rediff.returncode == 0, rediff.stdout + rediff.stderr
    stale = _deck(node, tmp_path, "diff", "-s", "kong.yaml", "--non-zero-exit-code")
    assert stale.returncode == 2, stale.stdout + stale.stderr

    reset = _deck(node, tmp_path, "reset", "-f")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    for collection in ("services", "routes", "plugins", "consumers", "upstreams", "key-auths", "acls"):
        assert node.get(f"/{collection}").json()["data"] == [], collection
    again = _deck(node, tmp_path, "dump", "-o", str(tmp_path / "empty.yaml"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert yaml.safe_load((tmp_path / "empty.yaml").read_text(encoding="utf-8")) == {"_format_version": "1.1"}
