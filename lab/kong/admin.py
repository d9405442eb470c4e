"""Kong 3.4's Admin API over the shared store: the calls decK makes, plus what a test suite needs.

Entities are stored and echoed exactly as written (plus ``id``, ``created_at`` and, where Kong has it,
``updated_at``); the only values the stand-in fills in are the ones Kong generates and a client cannot omit
(a key-auth ``key``, a jwt ``key``/``secret``, an oauth2 ``client_id``/``client_secret``) and a service ``url``,
which Kong, too, splits into ``protocol``/``host``/``port``/``path``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from sqlalchemy import Connection

from lab.kong import errors, schema
from lab.kong.errors import KongError
from lab.kong.schema import CASCADE, KINDS, NESTED, PLUGINS, RESTRICT, Kind, is_uuid
from lab.kong.server import Request, Response, json_response
from lab.kong.store import Store

DEFAULT_SIZE = 100
MAX_SIZE = 1000
TOP_LEVEL = frozenset(name for name in KINDS if name != "targets")
# Kinds whose path key is only unique within the parent: /upstreams/{u}/targets/{target}, /consumers/{c}/acls/{group}.
SCOPED_KEYS = {"targets": "target", "acls": "group"}
UNAUTHORIZED = {"message": "Invalid credentials. Token or User credentials required"}


@dataclass(frozen=True)
class NodeInfo:
    name: str
    node_id: str
    admin_listen: str
    proxy_listen: str
    database: str


class HealthView(Protocol):
    """What the Admin API needs from the node's balancer (health is per node, as in Kong)."""

    def target_health(self, upstream: dict[str, Any], targets: list[dict[str, Any]]) -> list[str]: ...

    def set_health(self, upstream_id: str, target: str, address: str | None, healthy: bool) -> None: ...


class AdminApi:
    """``AdminApi(store, node, token, health)(request) -> response``."""

    def __init__(self, store: Store, node: NodeInfo, token: str | None, health: HealthView) -> None:
        self.store = store
        self.node = node
        self.token = token
        self.health = health
        self.requests = 0

    def __call__(self, request: Request) -> Response:
        self.requests += 1
        path = request.path.rstrip("/") or "/"
        if self.token and not (request.method == "GET" and path == "/status"):
            supplied = request.header("Kong-Admin-Token") or ""
            if not hmac.compare_digest(supplied.encode(), self.token.encode()):
                return json_response(401, UNAUTHORIZED)
        try:
            status, body = self._dispatch(request, [unquote(part) for part in path.strip("/").split("/") if part])
        except KongError as error:
            return json_response(error.status, error.body)
        if status == 204:
            return Response(204, [])
        return json_response(status, body)

    # --- routing -----------------------------------------------------------------------------------------------

    def _dispatch(self, request: Request, parts: list[str]) -> tuple[int, Any]:
        method = request.method
        if not parts:
            return _only(method, "GET", self._root)
        head = parts[0]
        if parts == ["status"]:
            return _only(method, "GET", self._status)
        if parts == ["plugins", "enabled"]:
            return _only(method, "GET", lambda: (200, {"enabled_plugins": sorted(PLUGINS)}))
        if head not in TOP_LEVEL:
            raise errors.not_found()
        kind = KINDS[head]
        if len(parts) == 1:
            return self._collection(request, kind, None)
        if len(parts) == 2:
            return self._entity(request, kind, parts[1], None)
        if head == "upstreams" and len(parts) == 3 and parts[2] == "health":
            return _only(method, "GET", lambda: self._upstream_health(request, parts[1]))
        if head == "routes" and len(parts) == 3 and parts[2] == "service":
            return _only(method, "GET", lambda: self._route_service(parts[1]))
        nested = NESTED.get((head, parts[2]))
        if nested is None:
            raise errors.not_found()
        child, field = nested
        with self.store.reading() as connection:
            parent = self._select(connection, kind, parts[1], None)
        if parent is None:
            raise errors.not_found()
        scope = (field, str(parent["id"]))
        if len(parts) == 3:
            return self._collection(request, KINDS[child], scope)
        if len(parts) == 4:
            return self._entity(request, KINDS[child], parts[3], scope)
        if child == "targets" and len(parts) in (5, 6) and parts[-1] in ("healthy", "unhealthy"):
            address = parts[4] if len(parts) == 6 else None
            return self._target_health(request, parent, parts[3], address, parts[-1] == "healthy")
        raise errors.not_found()

    def _collection(self, request: Request, kind: Kind, scope: tuple[str, str] | None) -> tuple[int, Any]:
        if request.method == "GET":
            return 200, self._list(request, kind, scope)
        if request.method == "POST":
            body = _parse_body(request, kind)
            with self.store.transaction() as connection:
                return 201, self._create(connection, kind, body, scope)
        raise KongError(405, {"message": "Method not allowed"})

    def _entity(self, request: Request, kind: Kind, key: str, scope: tuple[str, str] | None) -> tuple[int, Any]:
        method = request.method
        if method == "GET":
            with self.store.reading() as connection:
                entity = self._select(connection, kind, key, scope)
            if entity is None:
                raise errors.not_found()
            return 200, entity
        if method in ("PUT", "PATCH"):
            body = _parse_body(request, kind)
            with self.store.transaction() as connection:
                if method == "PUT":
                    return 200, self._upsert(connection, kind, key, body, scope)
                return 200, self._update(connection, kind, key, body, scope)
        if method == "DELETE":
            with self.store.transaction() as connection:
                entity = self._select(connection, kind, key, scope)
                if entity is not None:
                    self._delete(connection, kind, entity)
                    self.store.bump(connection)
            return 204, None
        raise KongError(405, {"message": "Method not allowed"})

    # --- information -------------------------------------------------------------------------------------------

    def _root(self) -> tuple[int, Any]:
        available = {
            name: {"version": schema.KONG_VERSION, "priority": plugin.priority} for name, plugin in PLUGINS.items()
        }
        with self.store.reading() as connection:
            in_use = sorted({str(plugin.get("name")) for plugin in self.store.all(connection, "plugins")})
        return 200, {
            "version": schema.KONG_VERSION,
            "edition": "community",
            "tagline": "Welcome to kong",
            "lua_version": "LuaJIT 2.1.0-20230410",
            "hostname": self.node.name,
            "node_id": self.node.node_id,
            "pids": {"master": os.getpid(), "workers": [os.getpid()]},
            "timers": {"running": 0, "pending": 0},
            "configuration": {
                "database": "postgres",
                "role": "traditional",
                "router_flavor": "traditional_compatible",
                "admin_listen": [self.node.admin_listen],
                "proxy_listen": [self.node.proxy_listen],
                "plugins": ["bundled"],
                "loaded_plugins": dict.fromkeys(PLUGINS, True),
                "lab_stand_in": True,
                "lab_database": _redacted(self.node.database),
                "node_name": socket.gethostname(),
            },
            "plugins": {"available_on_server": available, "enabled_in_cluster": in_use},
        }

    def _status(self) -> tuple[int, Any]:
        try:
            self.store.versions()
            reachable = True
        except Exception:
            reachable = False
        return 200, {
            "database": {"reachable": reachable},
            "memory": {"lua_shared_dicts": {}, "workers_lua_vms": [{"pid": os.getpid(), "http_allocated_gc": "0 MiB"}]},
            "server": {
                "connections_accepted": self.requests,
                "connections_active": 1,
                "connections_handled": self.requests,
                "connections_reading": 0,
                "connections_waiting": 0,
                "connections_writing": 1,
                "total_requests": self.requests,
            },
        }

    def _route_service(self, key: str) -> tuple[int, Any]:
        with self.store.reading() as connection:
            route = self._select(connection, KINDS["routes"], key, None)
            service_id = (route or {}).get("service") or {}
            service = self.store.get(connection, "services", str(service_id.get("id"))) if service_id else None
        if service is None:
            raise errors.not_found()
        return 200, service

    # --- health ------------------------------------------------------------------------------------------------

    def _upstream_health(self, request: Request, key: str) -> tuple[int, Any]:
        with self.store.reading() as connection:
            upstream = self._select(connection, KINDS["upstreams"], key, None)
            if upstream is None:
                raise errors.not_found()
            targets = self.store.all(connection, "targets", ("upstream", str(upstream["id"])))
        healths = self.health.target_health(upstream, targets)
        if dict(request.query_args()).get("balancer_health") in ("1", "true"):
            overall = (
                "HEALTHCHECKS_OFF"
                if all(h == "HEALTHCHECKS_OFF" for h in healths)
                else ("HEALTHY" if any(h == "HEALTHY" for h in healths) else "UNHEALTHY")
            )
            return 200, {"data": {"health": overall, "id": upstream["id"]}, "next": None}
        data = []
        for target, health in zip(targets, healths, strict=True):
            host, port = _split_target(str(target["target"]))
            weight = target.get("weight", 100)
            entry = dict(target)
            entry["health"] = health
            entry["data"] = {
                "addresses": [{"ip": _resolve(host), "port": port, "health": health, "weight": weight}],
                "dns": "A",
                "host": host,
                "port": port,
                "nodeWeight": weight,
                "totalWeight": weight,
            }
            data.append(entry)
        return 200, {"data": data, "next": None, "node_id": self.node.node_id, "total": len(data)}

    def _target_health(
        self, request: Request, upstream: dict[str, Any], key: str, address: str | None, healthy: bool
    ) -> tuple[int, Any]:
        with self.store.reading() as connection:
            target = self._select(connection, KINDS["targets"], key, ("upstream", str(upstream["id"])))
        if target is None:
            raise errors.not_found()
        if request.method == "GET":  # a stand-in extension: Kong has only PUT/POST here
            health = self.health.target_health(upstream, [target])[0]
            return 200, {**target, "health": health}
        if request.method not in ("PUT", "POST"):
            raise KongError(405, {"message": "Method not allowed"})
        self.health.set_health(str(upstream["id"]), str(target["target"]), address, healthy)
        return 204, None

    # --- reads -------------------------------------------------------------------------------------------------

    def _list(self, request: Request, kind: Kind, scope: tuple[str, str] | None) -> dict[str, Any]:
        args = dict(request.query_args())
        size = _size(args.get("size"))
        offset_token = args.get("offset")
        after = _decode_offset(offset_token) if offset_token else 0
        tags_filter = args.get("tags")
        wanted: list[str] = []
        any_of = False
        if tags_filter:
            any_of = "/" in tags_filter
            wanted = [tag for tag in (tags_filter.split("/") if any_of else tags_filter.split(",")) if tag]
        filters: dict[str, str] = {
            name: args[name] for name in ("custom_id", "username") if kind.name == "consumers" and name in args
        }
        data: list[dict[str, Any]] = []
        more = False
        last = after
        with self.store.reading() as connection:
            while True:
                rows = self.store.page(connection, kind.name, ref=scope, after=last, limit=size + 1)
                for seq, doc in rows:
                    if _matches(doc, wanted, any_of, filters):
                        if len(data) == size:
                            more = True
                            break
                        data.append(doc)
                    last = seq
                if more or len(rows) < size + 1:
                    break
        body: dict[str, Any] = {"data": data, "next": None}
        if more:
            token = _encode_offset(last)
            query = [("offset", token)]
            if "size" in args:
                query.insert(0, ("size", str(size)))
            if tags_filter:
                query.append(("tags", tags_filter))
            body["offset"] = token
            body["next"] = request.path.rstrip("/") + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
        return body

    def _select(
        self, connection: Connection, kind: Kind, key: str, scope: tuple[str, str] | None
    ) -> dict[str, Any] | None:
        entity = self.store.get(connection, kind.name, key) if is_uuid(key) else None
        if entity is None:
            if kind.name in SCOPED_KEYS:
                if scope is not None:
                    entity_id = self.store.find_unique(connection, kind.name, "cache_key", f"{scope[1]}|{key}")
                    entity = self.store.get(connection, kind.name, entity_id) if entity_id else None
            elif kind.endpoint_key:
                entity_id = self.store.find_unique(connection, kind.name, kind.endpoint_key, key)
                entity = self.store.get(connection, kind.name, entity_id) if entity_id else None
        if entity is not None and scope is not None and _ref(entity.get(scope[0])) != scope[1]:
            return None
        return entity

    # --- writes ------------------------------------------------------------------------------------------------

    def _create(
        self, connection: Connection, kind: Kind, body: dict[str, Any], scope: tuple[str, str] | None
    ) -> dict[str, Any]:
        doc = _prepare(kind, body, scope)
        _generate(kind, doc)
        _validate(kind, doc)
        self._resolve_foreign(connection, kind, doc)
        now = int(time.time())
        if doc.get("id") is None:
            reused = None
            if kind.name == "targets":
                reused = self.store.exhume(connection, "targets", _cache_value(kind, doc))
                if reused and self.store.get(connection, "targets", reused) is not None:
                    reused = None
            doc = {"id": reused or schema.new_id(), **doc}
        elif self.store.get(connection, kind.name, str(doc["id"])) is not None:
            raise errors.primary_key_violation(str(doc["id"]))
        doc.setdefault("created_at", now)
        if kind.updated_at:
            doc.setdefault("updated_at", now)
        _finish(kind, doc)
        self._save(connection, kind, doc, new=True)
        return doc

    def _upsert(
        self, connection: Connection, kind: Kind, key: str, body: dict[str, Any], scope: tuple[str, str] | None
    ) -> dict[str, Any]:
        existing = self._select(connection, kind, key, scope)
        doc = _prepare(kind, body, scope)
        if is_uuid(key) and (existing is None or existing["id"] == key):
            doc["id"] = key
        elif kind.name in SCOPED_KEYS:
            doc[SCOPED_KEYS[kind.name]] = key
        elif kind.endpoint_key:
            doc[kind.endpoint_key] = key
        else:
            raise errors.not_found()
        if existing is not None:
            doc["id"] = existing["id"]
        _generate(kind, doc)
        _validate(kind, doc)
        self._resolve_foreign(connection, kind, doc)
        now = int(time.time())
        if existing is None:
            if doc.get("id") is None:
                doc = {"id": schema.new_id(), **doc}
            elif self.store.get(connection, kind.name, str(doc["id"])) is not None:
                raise errors.primary_key_violation(str(doc["id"]))
            doc.setdefault("created_at", now)
        else:
            doc = {"id": existing["id"], **{k: v for k, v in doc.items() if k != "id"}}
            doc["created_at"] = existing.get("created_at", now)
        if kind.updated_at:
            doc["updated_at"] = now
        _finish(kind, doc)
        self._save(connection, kind, doc, new=existing is None)
        return doc

    def _update(
        self, connection: Connection, kind: Kind, key: str, body: dict[str, Any], scope: tuple[str, str] | None
    ) -> dict[str, Any]:
        existing = self._select(connection, kind, key, scope)
        if existing is None:
            raise errors.not_found()
        changes = _prepare(kind, body, scope)
        changes.pop("id", None)
        doc = _merge(existing, changes)
        if kind.name == "basic-auths" and "password" in changes:
            doc["password"] = _hash_password(str(changes["password"]), _ref(doc.get("consumer")) or "")
        _validate(kind, doc)
        self._resolve_foreign(connection, kind, doc)
        if kind.updated_at:
            doc["updated_at"] = int(time.time())
        self._save(connection, kind, doc, new=False)
        return doc

    def _save(self, connection: Connection, kind: Kind, doc: dict[str, Any], *, new: bool) -> None:
        values = _unique_values(kind, doc)
        for field, value in values.items():
            owner = self.store.find_unique(connection, kind.name, field, value)
            if owner is not None and owner != doc["id"]:
                if field == "cache_key":
                    raise errors.unique_violation({name: _key_part(doc.get(name)) for name in kind.cache_key})
                raise errors.unique_violation({field: doc.get(field)})
        self.store.save(connection, kind.name, doc, values, new=new)
        self.store.bump(connection)

    def _delete(self, connection: Connection, kind: Kind, entity: dict[str, Any]) -> None:
        entity_id = str(entity["id"])
        for child, field in RESTRICT.get(kind.name, ()):
            if self.store.referencing(connection, child, field, entity_id):
                raise errors.foreign_key_restricted(kind.name, child)
        for child, field in CASCADE.get(kind.name, ()):
            for child_id in self.store.referencing(connection, child, field, entity_id):
                child_entity = self.store.get(connection, child, child_id)
                if child_entity is not None:
                    self._delete(connection, KINDS[child], child_entity)
        if kind.name == "targets":
            self.store.bury(connection, "targets", _cache_value(kind, entity), entity_id)
        self.store.remove(connection, kind.name, entity_id)

    def _resolve_foreign(self, connection: Connection, kind: Kind, doc: dict[str, Any]) -> None:
        for field, reference in kind.foreign.items():
            value = doc.get(field)
            if not isinstance(value, dict):
                continue
            target = KINDS[reference]
            if "id" in value:
                if self.store.get(connection, reference, str(value["id"])) is None:
                    raise errors.foreign_key_missing(field, {"id": value["id"]}, reference)
                continue
            key_name = target.endpoint_key
            key = value.get(key_name) if key_name else None
            entity_id = self.store.find_unique(connection, reference, key_name, str(key)) if key_name and key else None
            if entity_id is None:
                raise errors.foreign_key_missing(field, value, reference)
            doc[field] = {"id": entity_id}


# --- helpers ---------------------------------------------------------------------------------------------------


def _only(method: str, allowed: str, action: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
    if method != allowed:
        raise KongError(405, {"message": "Method not allowed"})
    return action()


def _parse_body(request: Request, kind: Kind) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    content_type = (request.header("Content-Type") or "").lower()
    if "application/x-www-form-urlencoded" in content_type:
        return _form_body(request.body.decode("utf-8", "replace"), kind)
    if content_type and "json" not in content_type:
        raise KongError(415, {"message": f"Unsupported Content-Type '{content_type}': send JSON or a form"})
    try:
        body = json.loads(request.body)
    except ValueError:
        raise errors.bad_request("Cannot parse JSON body") from None
    if not isinstance(body, dict):
        raise errors.bad_request("Cannot parse JSON body")
    return body


def _form_body(text: str, kind: Kind) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True):
        key = raw_key[:-2] if raw_key.endswith("[]") else raw_key
        parts = [part for part in key.replace("[", ".").replace("]", "").split(".") if part]
        if not parts:
            continue
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        last = parts[-1]
        if last in node:
            existing = node[last]
            node[last] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            node[last] = [value] if raw_key.endswith("[]") else value
    coerced = {}
    for key, value in result.items():
        spec = (
            schema.config_field(result.get("name"))
            if kind.name == "plugins" and key == "config"
            else kind.fields.get(key)
        )
        coerced[key] = schema.coerce(spec, value)
    return coerced


def _prepare(kind: Kind, body: dict[str, Any], scope: tuple[str, str] | None) -> dict[str, Any]:
    doc = copy.deepcopy(body)
    if scope is not None:
        doc[scope[0]] = {"id": scope[1]}
    if kind.name == "services" and "url" in doc:
        url = doc.pop("url")
        if url is not None:
            if not isinstance(url, str):
                raise errors.schema_violation({"url": "expected a string"})
            expanded = _expand_url(url)
            if not expanded["host"]:
                raise errors.schema_violation({"url": "missing host in url"})
            doc.update(expanded)
    return doc


def _expand_url(url: str) -> dict[str, Any]:
    """Kong's ``url`` shorthand: ``protocol``, ``host``, ``port`` (80/443 by scheme) and ``path`` (null if none)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise errors.schema_violation({"url": "invalid port in url"}) from None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    return {"protocol": parts.scheme or None, "host": parts.hostname, "port": port, "path": parts.path or None}


def _generate(kind: Kind, doc: dict[str, Any]) -> None:
    """The values Kong generates when a credential omits them."""
    if kind.name == "key-auths" and doc.get("key") is None:
        doc["key"] = secrets.token_hex(16)
    elif kind.name == "jwts":
        if doc.get("key") is None:
            doc["key"] = secrets.token_hex(16)
        if doc.get("secret") is None:
            doc["secret"] = secrets.token_hex(16)
    elif kind.name == "oauth2":
        if doc.get("client_id") is None:
            doc["client_id"] = secrets.token_hex(16)
        if doc.get("client_secret") is None:
            doc["client_secret"] = secrets.token_hex(16)
    elif kind.name == "hmac-auths" and doc.get("secret") is None:
        doc["secret"] = secrets.token_hex(16)


def _finish(kind: Kind, doc: dict[str, Any]) -> None:
    if kind.name == "basic-auths" and isinstance(doc.get("password"), str):
        doc["password"] = _hash_password(doc["password"], _ref(doc.get("consumer")) or "")


def _hash_password(password: str, consumer_id: str) -> str:
    """Kong stores a basic-auth password as ``sha1(password .. consumer_id)``."""
    return hashlib.sha1(f"{password}{consumer_id}".encode()).hexdigest()


def _validate(kind: Kind, doc: dict[str, Any]) -> None:
    problems = schema.validate_entity(kind, doc)
    if problems:
        raise errors.schema_violation(problems)


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Kong's PATCH: records merge field by field, everything else (arrays too) is replaced."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if (
            isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and key not in ("service", "route", "consumer", "upstream", "certificate")
        ):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _ref(value: Any) -> str | None:
    return str(value["id"]) if isinstance(value, dict) and value.get("id") is not None else None


def _key_part(value: Any) -> Any:
    return {"id": value["id"]} if isinstance(value, dict) and "id" in value else value


def _cache_value(kind: Kind, doc: dict[str, Any]) -> str:
    parts = []
    for name in kind.cache_key:
        value = doc.get(name)
        parts.append(_ref(value) or "" if isinstance(value, dict) else "" if value is None else str(value))
    return "|".join(parts)


def _unique_values(kind: Kind, doc: dict[str, Any]) -> dict[str, str]:
    values = {name: str(doc[name]) for name in kind.uniques if isinstance(doc.get(name), str | int)}
    if kind.cache_key:
        values["cache_key"] = _cache_value(kind, doc)
    return values


def _matches(doc: dict[str, Any], wanted: list[str], any_of: bool, filters: dict[str, str]) -> bool:
    if any(doc.get(name) != value for name, value in filters.items()):
        return False
    if not wanted:
        return True
    tags = set(doc.get("tags") or [])
    return any(tag in tags for tag in wanted) if any_of else all(tag in tags for tag in wanted)


def _size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise errors.db_error(errors.INVALID_SIZE, "size must be a number") from None
    if not 1 <= size <= MAX_SIZE:
        raise errors.db_error(errors.INVALID_SIZE, f"size must be an integer between 1 and {MAX_SIZE}")
    return size


def _encode_offset(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([seq]).encode()).decode().rstrip("=")


def _decode_offset(token: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], int):
            return int(value[0])
    except (ValueError, binascii.Error):
        pass
    raise errors.db_error(errors.INVALID_OFFSET, f"'{token}' is not a valid offset: bad base64 encoding")


def _split_target(target: str) -> tuple[str, int]:
    if target.startswith("["):
        host, _, port = target[1:].partition("]:")
        return host, int(port) if port.isdigit() else 8000
    host, _, port = target.partition(":")
    return host, int(port) if port.isdigit() else 8000


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
