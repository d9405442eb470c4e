"""The proxy: route the request, run the plugins, forward it to the service (or an upstream's targets).

Each node reads the configuration from the shared database: one small read per request checks the version
counter, and the routes, services, plugins, upstreams and targets are reloaded when another write (on either
node) changed it. Consumers and credentials are looked up when a request needs them, cached until the next change.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from lab.kong import plugins
from lab.kong.balancer import (
    SUCCESS,
    TCP_FAILURE,
    TIMEOUT,
    Balancer,
    Health,
    healthchecks,
    split_target,
)
from lab.kong.router import CompiledRoute, Router, compile_route, upstream_path
from lab.kong.schema import KONG_VERSION, PLUGINS, SERVICE_DEFAULTS, plugin_config, with_defaults
from lab.kong.server import HOP_BY_HOP, Request, Response, json_response
from lab.kong.store import Store

log = logging.getLogger("lab.kong.proxy")
VIA = f"kong/{KONG_VERSION}"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
UNVERIFIED_TLS = ssl.create_default_context()
UNVERIFIED_TLS.check_hostname = False
UNVERIFIED_TLS.verify_mode = ssl.CERT_NONE
PLUGIN_ORDER = tuple(sorted(PLUGINS, key=lambda name: -PLUGINS[name].priority))


@dataclass
class Snapshot:
    """One version of the configuration, as the proxy reads it."""

    store: Store
    version: int
    router: Router
    services: dict[str, dict[str, Any]]
    upstreams: dict[str, dict[str, Any]]  # by name
    targets: dict[str, list[dict[str, Any]]]  # by upstream id
    plugins: dict[str, dict[tuple[str | None, str | None, str | None], dict[str, Any]]]
    checks: dict[str, dict[str, Any]]  # each upstream's healthchecks with Kong's defaults, by upstream id
    _credentials: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _consumers: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _groups: dict[str, list[str]] = field(default_factory=dict)

    def credential_by_key(self, key: str) -> dict[str, Any] | None:
        if key not in self._credentials:
            with self.store.reading() as connection:
                entity_id = self.store.find_unique(connection, "key-auths", "key", key)
                credential = self.store.get(connection, "key-auths", entity_id) if entity_id else None
            if credential is not None and credential.get("ttl"):
                expires = int(credential.get("created_at") or 0) + int(credential["ttl"])
                credential = credential if time.time() < expires else None
            self._credentials[key] = credential
        return self._credentials[key]

    def consumer(self, id_or_username: str) -> dict[str, Any] | None:
        if id_or_username not in self._consumers:
            with self.store.reading() as connection:
                consumer = self.store.get(connection, "consumers", id_or_username)
                if consumer is None:
                    entity_id = self.store.find_unique(connection, "consumers", "username", id_or_username)
                    consumer = self.store.get(connection, "consumers", entity_id) if entity_id else None
            self._consumers[id_or_username] = consumer
        return self._consumers[id_or_username]

    def consumer_groups(self, consumer_id: str) -> list[str]:
        if consumer_id not in self._groups:
            with self.store.reading() as connection:
                acls = self.store.all(connection, "acls", ("consumer", consumer_id))
            self._groups[consumer_id] = [str(acl["group"]) for acl in acls]
        return self._groups[consumer_id]

    def plugin(self, name: str, route: str | None, service: str | None, consumer: str | None) -> dict[str, Any] | None:
        """The most specific ``name`` plugin for this route/service/consumer, in Kong's precedence order."""
        configured = self.plugins.get(name)
        if not configured:
            return None
        combos: list[tuple[str | None, str | None, str | None]] = []
        if consumer is not None:
            combos += [(route, service, consumer), (route, None, consumer), (None, service, consumer)]
        combos.append((route, service, None))
        if consumer is not None:
            combos.append((None, None, consumer))
        combos += [(route, None, None), (None, service, None), (None, None, None)]
        for combo in combos:
            found = configured.get(combo)
            if found is not None:
                return found
        return None


class ConfigCache:
    """The node's current `Snapshot`, rebuilt when the database's version moves; replays manual health changes."""

    def __init__(self, store: Store, health: Health) -> None:
        self.store = store
        self.health = health
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._health_seq = store.last_health_seq()

    def current(self) -> Snapshot:
        version, health_seq = self.store.versions()
        snapshot = self._snapshot
        if health_seq != self._health_seq:
            self._replay_health()
        if snapshot is not None and snapshot.version == version:
            return snapshot
        with self._lock:
            if self._snapshot is None or self._snapshot.version != version:
                self._snapshot = self._build(version)
            return self._snapshot

    def upstreams_with_targets(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        snapshot = self.current()
        return [(upstream, snapshot.targets.get(str(upstream["id"]), [])) for upstream in snapshot.upstreams.values()]

    def _replay_health(self) -> None:
        with self._lock:
            for seq, upstream_id, target, _address, healthy in self.store.health_events_after(self._health_seq):
                self.health.set(upstream_id, target, healthy)
                self._health_seq = seq

    def _build(self, version: int) -> Snapshot:
        with self.store.reading() as connection:
            services = {str(s["id"]): s for s in self.store.all(connection, "services")}
            routes = self.store.all(connection, "routes")
            plugin_rows = self.store.all(connection, "plugins")
            upstreams = self.store.all(connection, "upstreams")
            targets = self.store.all(connection, "targets")
        compiled: list[CompiledRoute] = []
        for seq, route in enumerate(routes):
            service = services.get(str((route.get("service") or {}).get("id")))
            if service is not None and service.get("enabled") is False:
                continue
            try:
                compiled.append(compile_route(route, seq))
            except Exception:
                log.exception("route %s cannot be compiled; skipped", route.get("id"))
        by_name: dict[str, dict[tuple[str | None, str | None, str | None], dict[str, Any]]] = defaultdict(dict)
        for plugin in plugin_rows:
            if plugin.get("enabled") is False or "http" not in (plugin.get("protocols") or ["http"]):
                continue
            combo = (_ref(plugin.get("route")), _ref(plugin.get("service")), _ref(plugin.get("consumer")))
            by_name[str(plugin.get("name"))][combo] = {**plugin, "config": plugin_config(plugin)}
        by_upstream: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for target in targets:
            by_upstream[str((target.get("upstream") or {}).get("id"))].append(target)
        return Snapshot(
            store=self.store,
            version=version,
            router=Router(compiled),
            services={key: with_defaults(SERVICE_DEFAULTS, value) for key, value in services.items()},
            upstreams={str(u["name"]): u for u in upstreams},
            targets=dict(by_upstream),
            plugins=dict(by_name),
            checks={str(u["id"]): healthchecks(u) for u in upstreams},
        )


def _ref(value: Any) -> str | None:
    return str(value["id"]) if isinstance(value, dict) and value.get("id") else None


class UpstreamError(Exception):
    def __init__(self, outcome: str, sent: bool, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.sent = sent


class ConnectionPool:
    """Idle keep-alive connections to upstream servers, per ``(host, port)``."""

    def __init__(self, per_host: int = 32) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = defaultdict(list)
        self.per_host = per_host

    def take(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get((scheme, host, port))
            return idle.pop() if idle else None

    def give(self, scheme: str, host: str, port: int, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle[(scheme, host, port)]
            if len(idle) < self.per_host:
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                for connection in idle:
                    connection.close()
            self._idle.clear()


@dataclass
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def send(
    pool: ConnectionPool,
    scheme: str,
    host: str,
    port: int,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    connect_timeout: float,
    read_timeout: float,
) -> UpstreamResponse:
    """One HTTP/1.1 exchange; a pooled connection the server closed meanwhile is replaced once, silently."""
    for attempt in range(2):
        connection = pool.take(scheme, host, port) if attempt == 0 else None
        reused = connection is not None
        if connection is None:
            if scheme == "https":  # Kong does not verify upstream certificates unless tls_verify is set
                connection = http.client.HTTPSConnection(host, port, timeout=connect_timeout, context=UNVERIFIED_TLS)
            else:
                connection = http.client.HTTPConnection(host, port, timeout=connect_timeout)
            try:
                connection.connect()
            except TimeoutError as error:
                connection.close()
                raise UpstreamError(TIMEOUT, False, f"connect timeout: {error}") from None
            except OSError as error:
                connection.close()
                raise UpstreamError(TCP_FAILURE, False, f"connect failed: {error}") from None
        assert connection.sock is not None
        connection.sock.settimeout(read_timeout)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            data = response.read()
        except TimeoutError as error:
            connection.close()
            raise UpstreamError(TIMEOUT, True, f"read timeout: {error}") from None
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            if reused:
                continue
            raise UpstreamError(TCP_FAILURE, True, f"upstream failed: {error!r}") from None
        if response.will_close:
            connection.close()
        else:
            pool.give(scheme, host, port, connection)
        return UpstreamResponse(response.status, list(response.getheaders()), data)
    raise UpstreamError(TCP_FAILURE, True, "upstream closed the connection")


class Proxy:
    """``Proxy(cache, balancer, store)(request) -> response``."""

    def __init__(self, cache: ConfigCache, balancer: Balancer, store: Store, proxy_port: int) -> None:
        self.cache = cache
        self.balancer = balancer
        self.pool = ConnectionPool()
        self.proxy_port = proxy_port
        self.counter = plugins.CorrelationCounter()
        self.local_counters = plugins.LocalCounters()
        self.store = store

    def __call__(self, request: Request) -> Response:
        started = time.monotonic()
        snapshot = self.cache.current()
        headers_by_name: dict[str, list[str]] = defaultdict(list)
        for name, value in request.headers:
            headers_by_name[name.lower()].append(value)
        host_header = request.header("Host") or ""
        match = snapshot.router.match(request.method, host_header, request.path, headers_by_name)
        if match is None:
            return self._kong_response(404, {"message": "no Route matched with those values"}, started)
        route = match.route.route
        if "http" not in (route.get("protocols") or ["http", "https"]):
            return self._kong_response(426, {"message": "Please use HTTPS protocol"}, started)
        service = snapshot.services.get(match.route.service_id or "")
        if service is None:
            return self._kong_response(503, {"message": "no Service found with those values"}, started)
        context = plugins.Context(request=request, route=route, service=service, query=request.query_args())
        original_query = list(context.query)
        refusal = self._run_plugins(snapshot, context)
        if refusal is not None:
            for name, value in context.response_headers:
                refusal.set_header(name, value)
            return self._finish_kong_response(refusal, started)
        path = upstream_path(service.get("path"), request.path, match)
        query = request.query if context.query == original_query else plugins.query_string(context.query)
        target_path = path + ("?" + query if query else "")
        response = self._forward(snapshot, request, context, match.matched_path, service, target_path, started)
        for name, value in context.response_headers:
            response.set_header(name, value)
        return response

    # --- plugins -----------------------------------------------------------------------------------------------

    def _run_plugins(self, snapshot: Snapshot, context: plugins.Context) -> Response | None:
        route_id = str(context.route.get("id"))
        service_id = str(context.service["id"]) if context.service else None
        for name in PLUGIN_ORDER:
            consumer_id = str(context.consumer["id"]) if context.consumer else None
            plugin = snapshot.plugin(name, route_id, service_id, consumer_id)
            if plugin is None:
                continue
            config = plugin["config"]
            result: Response | None
            if name == "correlation-id":
                result = plugins.correlation_id(self.counter)(context, config)
            elif name == "key-auth":
                result = plugins.key_auth(snapshot)(context, config)
            elif name == "acl":
                result = plugins.acl(snapshot)(context, config)
            elif name == "rate-limiting":
                result = plugins.rate_limiting(self.local_counters, self.store)(context, config, plugin)
            else:
                result = None
            if result is not None:
                return result
        return None

    # --- forwarding --------------------------------------------------------------------------------------------

    def _forward(
        self,
        snapshot: Snapshot,
        request: Request,
        context: plugins.Context,
        matched_path: str,
        service: dict[str, Any],
        target_path: str,
        started: float,
    ) -> Response:
        upstream = snapshot.upstreams.get(str(service.get("host")))
        retries = int(service["retries"])
        connect_timeout = int(service["connect_timeout"]) / 1000
        read_timeout = int(service["read_timeout"]) / 1000
        tried: set[str] = set()
        last_error: UpstreamError | None = None
        for _attempt in range(retries + 1):
            if upstream is not None:
                upstream_id = str(upstream["id"])
                target = self.balancer.pick(upstream_id, snapshot.targets.get(upstream_id, []), tried)
                if target is None:
                    if last_error is not None:
                        break
                    return self._kong_response(
                        503, {"message": "failure to get a peer from the ring-balancer"}, started
                    )
                tried.add(target)
                host, port = split_target(target)
            else:
                target = None
                host, port = str(service["host"]), int(service["port"])
            headers = self._upstream_headers(request, context, matched_path, service, upstream, host, port)
            sent_at = time.monotonic()
            try:
                result = send(
                    self.pool,
                    "https" if service.get("protocol") == "https" else "http",
                    host,
                    port,
                    request.method,
                    target_path,
                    headers,
                    request.body,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                )
            except UpstreamError as error:
                last_error = error
                log.info("%s %s -> %s:%d failed: %s", request.method, request.path, host, port, error)
                if upstream is not None and target is not None:
                    self.balancer.health.report(
                        str(upstream["id"]), target, snapshot.checks[str(upstream["id"])]["passive"], error.outcome
                    )
                if error.sent and request.method not in IDEMPOTENT:
                    break
                continue
            if upstream is not None and target is not None:
                passive = snapshot.checks[str(upstream["id"])]["passive"]
                outcome = self.balancer.health.classify(passive, result.status)
                if outcome is not None:
                    self.balancer.health.report(str(upstream["id"]), target, passive, outcome)
            upstream_ms = int((time.monotonic() - sent_at) * 1000)
            proxy_ms = int((sent_at - started) * 1000)
            response_headers = [(k, v) for k, v in result.headers if k.lower() not in HOP_BY_HOP]
            response_headers = [(k, v) for k, v in response_headers if k.lower() != "content-length"]
            response_headers += [
                ("X-Kong-Upstream-Latency", str(upstream_ms)),
                ("X-Kong-Proxy-Latency", str(proxy_ms)),
                ("Via", VIA),
            ]
            return Response(result.status, response_headers, result.body)
        if last_error is not None and last_error.outcome == TIMEOUT:
            return self._kong_response(504, {"message": "The upstream server is timing out"}, started)
        return self._kong_response(
            502, {"message": "An invalid response was received from the upstream server"}, started
        )

    def _upstream_headers(
        self,
        request: Request,
        context: plugins.Context,
        matched_path: str,
        service: dict[str, Any],
        upstream: dict[str, Any] | None,
        host: str,
        port: int,
    ) -> list[tuple[str, str]]:
        route = context.route
        changes = {name.lower(): (name, value) for name, value in context.upstream_set.items()}
        skip = set(HOP_BY_HOP) | {"host", "content-length", "x-forwarded-for", "x-real-ip"} | set(changes)
        skip |= {f"x-forwarded-{part}" for part in ("proto", "host", "port", "path", "prefix")}
        headers = [(name, value) for name, value in request.headers if name.lower() not in skip]
        for name, value in changes.values():
            if value is not None:
                headers.append((name, value))
        request_host = request.header("Host") or ""
        if route.get("preserve_host") and request_host:
            upstream_host = request_host
        elif upstream is not None and upstream.get("host_header"):
            upstream_host = str(upstream["host_header"])
        else:
            default_port = 443 if service.get("protocol") == "https" else 80
            upstream_host = host if port == default_port else f"{host}:{port}"
        client_ip = request.client[0]
        headers += [
            ("Host", upstream_host),
            ("X-Forwarded-For", client_ip),
            ("X-Forwarded-Proto", request.scheme),
            ("X-Forwarded-Host", request_host.rsplit(":", 1)[0] if request_host.count(":") == 1 else request_host),
            ("X-Forwarded-Port", str(self.proxy_port)),
            ("X-Forwarded-Path", request.path),
            ("X-Real-IP", client_ip),
        ]
        if route.get("strip_path") and matched_path and matched_path != "/":
            headers.append(("X-Forwarded-Prefix", matched_path.rstrip("/") or "/"))
        return headers

    def _kong_response(self, status: int, body: dict[str, Any], started: float) -> Response:
        return self._finish_kong_response(json_response(status, body), started)

    def _finish_kong_response(self, response: Response, started: float) -> Response:
        response.set_header("Server", VIA)
        response.set_header("X-Kong-Response-Latency", str(int((time.monotonic() - started) * 1000)))
        return response

    def close(self) -> None:
        self.pool.close()


__all__ = ["SUCCESS", "ConfigCache", "Proxy", "Snapshot"]
