"""The plugins the stand-in runs on proxied requests, in Kong's priority order: correlation-id (100001),
key-auth (1250), acl (950), rate-limiting (910).

Each one reads its configuration with Kong's defaults filled in and either lets the request go on (adding
headers for the upstream or the client) or answers it as Kong would.
"""

from __future__ import annotations

import calendar
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from lab.kong.server import Request, Response, json_response

PERIODS = ("second", "minute", "hour", "day", "month", "year")
EXPIRATION = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 2592000, "year": 31536000}
NULL_UUID = "00000000-0000-0000-0000-000000000000"


class Entities(Protocol):
    """The node's configuration as the plugins read it (credentials and consumers are looked up lazily)."""

    def credential_by_key(self, key: str) -> dict[str, Any] | None: ...

    def consumer(self, id_or_username: str) -> dict[str, Any] | None: ...

    def consumer_groups(self, consumer_id: str) -> list[str]: ...


class Counters(Protocol):
    def consume(self, entries: list[tuple[str, float, int]]) -> tuple[dict[str, int], bool]: ...


@dataclass
class Context:
    """One proxied request on its way through the plugins."""

    request: Request
    route: dict[str, Any]
    service: dict[str, Any] | None
    query: list[tuple[str, str]]
    consumer: dict[str, Any] | None = None
    credential: dict[str, Any] | None = None
    upstream_set: dict[str, str | None] = field(default_factory=dict)  # header -> value (None: remove)
    response_headers: list[tuple[str, str]] = field(default_factory=list)


def correlation_id(plugin: Callable[[], str]) -> Callable[[Context, dict[str, Any]], Response | None]:
    def run(context: Context, config: dict[str, Any]) -> Response | None:
        name = str(config["header_name"])
        value = context.request.header(name)
        if not value:
            value = plugin() if config["generator"] != "uuid" else str(uuid.uuid4())
            if config["generator"] == "tracker":
                client = context.request.client
                value = f"{client[0]}-{client[1]}-{time.time():.3f}-{value.rsplit('#', 1)[-1]}"
        context.upstream_set[name] = value
        if config["echo_downstream"]:
            context.response_headers.append((name, value))
        return None

    return run


class CorrelationCounter:
    """``uuid#counter``: one UUID per node (Kong: per worker) and a counter."""

    def __init__(self) -> None:
        self.prefix = str(uuid.uuid4())
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            return f"{self.prefix}#{next(self._counter)}"


def key_auth(entities: Entities) -> Callable[[Context, dict[str, Any]], Response | None]:
    def run(context: Context, config: dict[str, Any]) -> Response | None:
        request = context.request
        if not config["run_on_preflight"] and request.method == "OPTIONS":
            return None
        if config.get("anonymous") and context.credential is not None:
            return None
        error = _authenticate(context, config, entities)
        if error is None:
            return None
        if config.get("anonymous"):
            consumer = entities.consumer(str(config["anonymous"]))
            if consumer is None:
                return json_response(500, {"message": "An unexpected error occurred"})
            _set_consumer(context, consumer, None)
            return None
        return error

    return run


def _authenticate(context: Context, config: dict[str, Any], entities: Entities) -> Response | None:
    request = context.request
    key: str | None = None
    for name in config["key_names"]:
        values = request.header_values(name) if config["key_in_header"] else []
        where = "header"
        if not values and config["key_in_query"]:
            values = [value for key_name, value in context.query if key_name == name]
            where = "query"
        if len(values) > 1:
            return json_response(401, {"message": "Duplicate API key found"})
        if values:
            key = values[0]
            if config["hide_credentials"]:
                if where == "header":
                    context.upstream_set[name] = None
                else:
                    context.query = [(k, v) for k, v in context.query if k != name]
            break
    if not key:
        return json_response(
            401, {"message": "No API key found in request"}, [("WWW-Authenticate", 'Key realm="kong"')]
        )
    credential = entities.credential_by_key(key)
    if credential is None:
        return json_response(401, {"message": "Invalid authentication credentials"})
    consumer = entities.consumer(str((credential.get("consumer") or {}).get("id")))
    if consumer is None:
        return json_response(401, {"message": "Invalid authentication credentials"})
    _set_consumer(context, consumer, credential)
    return None


def _set_consumer(context: Context, consumer: dict[str, Any], credential: dict[str, Any] | None) -> None:
    context.consumer = consumer
    context.credential = credential
    headers = context.upstream_set
    headers["X-Consumer-ID"] = str(consumer["id"])
    headers["X-Consumer-Custom-ID"] = str(consumer["custom_id"]) if consumer.get("custom_id") else None
    headers["X-Consumer-Username"] = str(consumer["username"]) if consumer.get("username") else None
    if credential is not None:
        headers["X-Credential-Identifier"] = str(credential["id"])
        headers["X-Anonymous-Consumer"] = None
    else:
        headers["X-Credential-Identifier"] = None
        headers["X-Anonymous-Consumer"] = "true"


def acl(entities: Entities) -> Callable[[Context, dict[str, Any]], Response | None]:
    def run(context: Context, config: dict[str, Any]) -> Response | None:
        if context.consumer is None:
            return json_response(403, {"message": "You cannot consume this service"})
        groups = entities.consumer_groups(str(context.consumer["id"]))
        deny = config.get("deny") or []
        allow = config.get("allow") or []
        in_group = any(group in groups for group in (deny or allow))
        blocked = in_group if deny else not in_group
        if blocked:
            return json_response(403, {"message": "You cannot consume this service"})
        if not config.get("hide_groups_header"):
            context.upstream_set["X-Consumer-Groups"] = ", ".join(groups)
        return None

    return run


class LocalCounters:
    """The ``local`` policy: this node's own counters (Kong: per node, in shared memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}

    def consume(self, entries: list[tuple[str, float, int]]) -> tuple[dict[str, int], bool]:
        now = int(time.time())
        with self._lock:
            if len(self._counts) > 10000:
                self._counts = {key: value for key, value in self._counts.items() if value[1] >= now}
            usage = {key: count for key, (count, expires) in self._counts.items() if expires >= now}
            usage = {key: usage[key] for key, _limit, _expires in entries if key in usage}
            stop = any(usage.get(key, 0) >= limit for key, limit, _expires in entries)
            if not stop:
                for key, _limit, expires in entries:
                    self._counts[key] = (usage.get(key, 0) + 1, expires)
        return usage, stop


def rate_limiting(
    local: Counters, shared: Counters
) -> Callable[[Context, dict[str, Any], dict[str, Any]], Response | None]:
    """Kong's fixed windows (aligned to the UTC clock); ``local`` counts per node, ``cluster`` (and ``redis``,
    which the stand-in serves from the database too) count in the shared database."""

    def run(context: Context, config: dict[str, Any], plugin: dict[str, Any]) -> Response | None:
        now = time.time()
        identifier = _identifier(context, config)
        scope = f"{_ref(plugin.get('route')) or NULL_UUID}:{_ref(plugin.get('service')) or NULL_UUID}"
        limits = {period: config[period] for period in PERIODS if config.get(period) is not None}
        starts = window_starts(int(now))
        entries = [
            (f"{scope}:{identifier}:{period}:{starts[period]}", float(limit), starts[period] + EXPIRATION[period])
            for period, limit in limits.items()
        ]
        counters = local if config["policy"] == "local" else shared
        try:
            usage, _stop = counters.consume(entries)
        except Exception:
            if config["fault_tolerant"]:
                return None
            return json_response(500, {"message": "An unexpected error occurred"})
        headers: list[tuple[str, str]] = []
        stop: str | None = None
        best: tuple[float, int, float, float] | None = None  # remaining, window, limit, reset
        for (key, limit, _expires), period in zip(entries, limits, strict=True):
            remaining = limit - usage.get(key, 0)
            if remaining <= 0:
                stop = period
        for (key, limit, _expires), period in zip(entries, limits, strict=True):
            remaining = limit - usage.get(key, 0)
            if stop is None or stop == period:
                remaining -= 1
            remaining = max(0.0, remaining)
            window = EXPIRATION[period]
            if best is None or remaining < best[0] or (remaining == best[0] and window > best[1]):
                reset = max(1, window - int(now - starts[period]))
                best = (remaining, window, limit, reset)
            title = period.capitalize()
            headers.append((f"X-RateLimit-Limit-{title}", _number(limit)))
            headers.append((f"X-RateLimit-Remaining-{title}", _number(remaining)))
        if best is not None:
            headers += [
                ("RateLimit-Limit", _number(best[2])),
                ("RateLimit-Remaining", _number(best[0])),
                ("RateLimit-Reset", _number(best[3])),
            ]
        if config["hide_client_headers"]:
            headers = []
        if stop is not None:
            retry = [("Retry-After", _number(best[3]))] if best is not None else []
            status = int(config.get("error_code") or 429)
            return json_response(
                status, {"message": config.get("error_message") or "API rate limit exceeded"}, [*headers, *retry]
            )
        context.response_headers.extend(headers)
        return None

    return run


def _identifier(context: Context, config: dict[str, Any]) -> str:
    limit_by = config["limit_by"]
    request = context.request
    value: str | None = None
    if limit_by == "consumer":
        value = _id(context.consumer) or _id(context.credential)
    elif limit_by == "credential":
        value = _id(context.credential)
    elif limit_by == "service":
        value = _id(context.service)
    elif limit_by == "header":
        value = request.header(str(config.get("header_name") or "")) if config.get("header_name") else None
    elif limit_by == "path":
        value = config.get("path") if request.path == config.get("path") else None
    return value or request.client[0]


def _id(entity: dict[str, Any] | None) -> str | None:
    return str(entity["id"]) if entity and entity.get("id") else None


def _ref(value: Any) -> str | None:
    return str(value["id"]) if isinstance(value, dict) and value.get("id") else None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def window_starts(now: int) -> dict[str, int]:
    moment = datetime.fromtimestamp(now, UTC)
    return {
        "second": now,
        "minute": now - now % 60,
        "hour": now - now % 3600,
        "day": now - now % 86400,
        "month": calendar.timegm((moment.year, moment.month, 1, 0, 0, 0)),
        "year": calendar.timegm((moment.year, 1, 1, 0, 0, 0)),
    }


def query_string(query: list[tuple[str, str]]) -> str:
    return urlencode(query)
