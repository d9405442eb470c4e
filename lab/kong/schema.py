"""Kong 3.4's entities as the Admin API validates them, and the defaults the proxy applies when it reads them.

The store keeps exactly what a client wrote (decK compares field by field, so any default written back would
make every later ``deck diff`` report changes); `with_defaults` fills Kong's defaults only where the proxy
needs them. Validation returns Kong's nested error tables (``{"config": {"minute": "expected a number"}}``)
that `errors.schema_violation` turns into Kong's message.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

KONG_VERSION = "3.4.2"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HOST_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
HOST_RE = re.compile(rf"^{HOST_LABEL}(\.{HOST_LABEL})*\.?$")
NAME_RE = re.compile(r"^[\w.\-~]+$")
METHOD_RE = re.compile(r"^[A-Z]+$")
PROTOCOLS = ("grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp", "ws", "wss")
HTTP_STATUSES_HEALTHY = [200, 302]
HTTP_STATUSES_UNHEALTHY = [429, 404, 500, 501, 502, 503, 504, 505]
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Field:
    """One field of Kong's schema DSL: ``type`` plus the constraints this stand-in enforces."""

    type: str
    required: bool = False
    one_of: tuple[Any, ...] | None = None
    between: tuple[float, float] | None = None
    gt: float | None = None
    elements: Field | None = None
    values: Field | None = None
    fields: Mapping[str, Field] | None = None
    check: Check | None = None
    reference: str | None = None


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(UUID_RE.match(value))


def new_id() -> str:
    return str(uuid.uuid4())


# --- value checks ----------------------------------------------------------------------------------------------


def _host(value: str) -> str | None:
    return None if _valid_host(value) else f"invalid value: {value}"


def _valid_host(value: str) -> bool:
    if value.startswith("[") and value.endswith("]"):
        return ":" in value
    return bool(HOST_RE.match(value))


def _wildcard_host(value: str) -> str | None:
    bare = value.split(":", 1)[0] if value.count(":") == 1 else value
    if bare.startswith("*."):
        bare = bare[2:]
    elif bare.endswith(".*"):
        bare = bare[:-2]
    return None if "*" not in bare and _valid_host(bare) else f"invalid hostname: {value}"


def _name(value: str) -> str | None:
    if NAME_RE.match(value):
        return None
    return f"invalid value '{value}': it must only contain alphanumeric and '., -, _, ~' characters"


def _path(value: str) -> str | None:
    if value.startswith("~"):
        try:
            re.compile(kong_regex(value[1:]))
        except re.error:
            return f"invalid regex: '{value[1:]}'"
        return None
    if value.startswith("/"):
        return None
    return "should start with: / (fixed path) or ~/ (regex path)"


def _service_path(value: str) -> str | None:
    return None if value.startswith("/") else "should start with: /"


def _method(value: str) -> str | None:
    return None if METHOD_RE.match(value) else f"invalid value: {value}"


def _target(value: str) -> str | None:
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"Invalid target ('{value}'); not a valid hostname or ip address"
    return None if _valid_host(host or value) else f"Invalid target ('{value}'); not a valid hostname or ip address"


def _upstream_name(value: str) -> str | None:
    return None if _valid_host(value) else f"Invalid name ('{value}'); must be a valid hostname"


def _uuid(value: str) -> str | None:
    return None if is_uuid(value) else "expected a valid UUID"


def kong_regex(pattern: str) -> str:
    """A Kong (PCRE) route regex as Python's ``re`` spells it: ``(?<name>...)`` becomes ``(?P<name>...)``."""
    return re.sub(r"\(\?<(?![=!])", "(?P<", pattern)


# --- field shorthands ------------------------------------------------------------------------------------------


def _string(*, required: bool = False, one_of: tuple[Any, ...] | None = None, check: Check | None = None) -> Field:
    return Field("string", required=required, one_of=one_of, check=check)


def _integer(low: float | None = None, high: float | None = None, *, one_of: tuple[Any, ...] | None = None) -> Field:
    return Field("integer", between=(low, high) if low is not None and high is not None else None, one_of=one_of)


def _number(low: float | None = None, high: float | None = None, *, gt: float | None = None) -> Field:
    return Field("number", between=(low, high) if low is not None and high is not None else None, gt=gt)


BOOLEAN = Field("boolean")
STRING = Field("string")
ANY = Field("any")
ID = Field("string", check=_uuid)
TIMESTAMP = Field("integer")
TAGS = Field("set", elements=STRING)
STRINGS = Field("array", elements=STRING)


def _foreign(reference: str, *, required: bool = False) -> Field:
    return Field("foreign", reference=reference, required=required)


def _record(fields: Mapping[str, Field], *, required: bool = False) -> Field:
    return Field("record", fields=fields, required=required)


STATUSES = Field("array", elements=_integer(100, 999))
HEALTHCHECKS = _record(
    {
        "active": _record(
            {
                "type": _string(one_of=("tcp", "http", "https", "grpc", "grpcs")),
                "timeout": _number(0, 65535),
                "concurrency": _integer(1, 2147483648),
                "http_path": _string(check=_service_path),
                "https_sni": STRING,
                "https_verify_certificate": BOOLEAN,
                "headers": Field("map", values=STRINGS),
                "healthy": _record(
                    {"interval": _number(0, 65535), "http_statuses": STATUSES, "successes": _integer(0, 255)}
                ),
                "unhealthy": _record(
                    {
                        "interval": _number(0, 65535),
                        "http_statuses": STATUSES,
                        "tcp_failures": _integer(0, 255),
                        "timeouts": _integer(0, 255),
                        "http_failures": _integer(0, 255),
                    }
                ),
            }
        ),
        "passive": _record(
            {
                "type": _string(one_of=("tcp", "http", "https", "grpc", "grpcs")),
                "healthy": _record({"http_statuses": STATUSES, "successes": _integer(0, 255)}),
                "unhealthy": _record(
                    {
                        "http_statuses": STATUSES,
                        "tcp_failures": _integer(0, 255),
                        "timeouts": _integer(0, 255),
                        "http_failures": _integer(0, 255),
                    }
                ),
            }
        ),
        "threshold": _number(0, 100),
    }
)


# --- entities --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """An entity type: its collection name, fields, the key a path may name it by, and its constraints."""

    name: str
    fields: Mapping[str, Field]
    endpoint_key: str | None = None
    uniques: tuple[str, ...] = ()
    cache_key: tuple[str, ...] = ()
    updated_at: bool = True
    entity_check: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    foreign: Mapping[str, str] = field(default_factory=dict)


def _common(*, updated: bool = True) -> dict[str, Field]:
    fields = {"id": ID, "created_at": TIMESTAMP, "tags": TAGS}
    if updated:
        fields["updated_at"] = TIMESTAMP
    return fields


def _at_least_one(names: tuple[str, ...], prefix: str = "") -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Kong's ``at_least_one_of`` entity check over ``names`` (of a plugin's config when ``prefix`` is given)."""

    def check(values: dict[str, Any]) -> dict[str, Any]:
        if any(values.get(name) not in (None, "", [], {}) for name in names):
            return {}
        listed = ", ".join(f"'{prefix}{name}'" for name in names)
        return {"@entity": [f"at least one of these fields must be non-empty: {listed}"]}

    return check


def _route_check(route: dict[str, Any]) -> dict[str, Any]:
    protocols = route.get("protocols") or ["http", "https"]
    secure = any(protocol in ("https", "grpcs", "tls", "tls_passthrough") for protocol in protocols)
    names = ("methods", "hosts", "headers", "paths", "snis") if secure else ("methods", "hosts", "headers", "paths")
    if not any(route.get(name) for name in names):
        listed = ", ".join(f"'{name}'" for name in names)
        return {"@entity": [f"must set one of {listed} when 'protocols' is '{'https' if secure else 'http'}'"]}
    return {}


SERVICE_FIELDS: dict[str, Field] = {
    **_common(),
    "name": _string(check=_name),
    "retries": _integer(0, 32767),
    "protocol": _string(one_of=PROTOCOLS),
    "host": _string(required=True, check=_host),
    "port": _integer(0, 65535),
    "path": _string(check=_service_path),
    "connect_timeout": _integer(1, 2147483646),
    "write_timeout": _integer(1, 2147483646),
    "read_timeout": _integer(1, 2147483646),
    "client_certificate": _foreign("certificates"),
    "tls_verify": BOOLEAN,
    "tls_verify_depth": _integer(0, 64),
    "ca_certificates": Field("array", elements=ID),
    "enabled": BOOLEAN,
}
ROUTE_FIELDS: dict[str, Field] = {
    **_common(),
    "name": _string(check=_name),
    "protocols": Field("set", elements=_string(one_of=PROTOCOLS)),
    "methods": Field("set", elements=_string(check=_method)),
    "hosts": Field("array", elements=_string(check=_wildcard_host)),
    "paths": Field("array", elements=_string(check=_path)),
    "headers": Field("map", values=STRINGS),
    "https_redirect_status_code": _integer(one_of=(426, 301, 302, 307, 308)),
    "regex_priority": Field("integer"),
    "strip_path": BOOLEAN,
    "path_handling": _string(one_of=("v0", "v1")),
    "preserve_host": BOOLEAN,
    "request_buffering": BOOLEAN,
    "response_buffering": BOOLEAN,
    "snis": Field("set", elements=STRING),
    "sources": Field("set", elements=Field("record", fields={"ip": STRING, "port": _integer(0, 65535)})),
    "destinations": Field("set", elements=Field("record", fields={"ip": STRING, "port": _integer(0, 65535)})),
    "service": _foreign("services"),
}
UPSTREAM_FIELDS: dict[str, Field] = {
    **_common(),
    "name": _string(required=True, check=_upstream_name),
    "algorithm": _string(one_of=("consistent-hashing", "least-connections", "round-robin", "latency")),
    "hash_on": _string(one_of=("none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture")),
    "hash_fallback": _string(one_of=("none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture")),
    "hash_on_header": STRING,
    "hash_fallback_header": STRING,
    "hash_on_cookie": STRING,
    "hash_on_cookie_path": STRING,
    "hash_on_query_arg": STRING,
    "hash_fallback_query_arg": STRING,
    "hash_on_uri_capture": STRING,
    "hash_fallback_uri_capture": STRING,
    "slots": _integer(10, 65536),
    "healthchecks": HEALTHCHECKS,
    "host_header": _string(check=_host),
    "client_certificate": _foreign("certificates"),
    "use_srv_name": BOOLEAN,
}


def _credential(fields: dict[str, Field]) -> dict[str, Field]:
    return {**_common(updated=False), "consumer": _foreign("consumers", required=True), **fields}


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("services", SERVICE_FIELDS, endpoint_key="name", uniques=("name",)),
        Kind("routes", ROUTE_FIELDS, endpoint_key="name", uniques=("name",), entity_check=_route_check),
        Kind(
            "consumers",
            {**_common(), "username": STRING, "custom_id": STRING},
            endpoint_key="username",
            uniques=("username", "custom_id"),
            entity_check=_at_least_one(("custom_id", "username")),
        ),
        Kind(
            "plugins",
            {
                **_common(),
                "name": _string(required=True),
                "instance_name": _string(check=_name),
                "route": _foreign("routes"),
                "service": _foreign("services"),
                "consumer": _foreign("consumers"),
                "config": Field("record"),
                "protocols": Field("set", elements=_string(one_of=PROTOCOLS)),
                "enabled": BOOLEAN,
                "ordering": Field("record"),
            },
            cache_key=("name", "route", "service", "consumer"),
        ),
        Kind("upstreams", UPSTREAM_FIELDS, endpoint_key="name", uniques=("name",)),
        Kind(
            "targets",
            {
                **_common(),
                "upstream": _foreign("upstreams", required=True),
                "target": _string(required=True, check=_target),
                "weight": _integer(0, 65535),
            },
            endpoint_key="target",
            cache_key=("upstream", "target"),
        ),
        Kind(
            "certificates",
            {
                **_common(updated=False),
                "cert": _string(required=True),
                "key": _string(required=True),
                "cert_alt": STRING,
                "key_alt": STRING,
            },
        ),
        Kind(
            "ca_certificates",
            {**_common(updated=False), "cert": _string(required=True), "cert_digest": STRING},
        ),
        Kind(
            "snis",
            {
                **_common(updated=False),
                "name": _string(required=True, check=_wildcard_host),
                "certificate": _foreign("certificates", required=True),
            },
            endpoint_key="name",
            uniques=("name",),
        ),
        Kind(
            "key-auths",
            _credential({"key": STRING, "ttl": Field("integer")}),
            endpoint_key="key",
            uniques=("key",),
            updated_at=False,
        ),
        Kind("acls", _credential({"group": _string(required=True)}), cache_key=("consumer", "group"), updated_at=False),
        Kind(
            "jwts",
            _credential(
                {
                    "key": STRING,
                    "secret": STRING,
                    "rsa_public_key": STRING,
                    "algorithm": _string(
                        one_of=("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
                    ),
                }
            ),
            endpoint_key="key",
            uniques=("key",),
            updated_at=False,
        ),
        Kind(
            "basic-auths",
            _credential({"username": _string(required=True), "password": _string(required=True)}),
            endpoint_key="username",
            uniques=("username",),
            updated_at=False,
        ),
        Kind(
            "hmac-auths",
            _credential({"username": _string(required=True), "secret": STRING}),
            endpoint_key="username",
            uniques=("username",),
            updated_at=False,
        ),
        Kind(
            "oauth2",
            _credential(
                {
                    "name": _string(required=True),
                    "client_id": STRING,
                    "client_secret": STRING,
                    "client_type": _string(one_of=("confidential", "public")),
                    "hash_secret": BOOLEAN,
                    "redirect_uris": STRINGS,
                }
            ),
            endpoint_key="client_id",
            uniques=("client_id",),
            updated_at=False,
        ),
        Kind(
            "mtls-auths",
            _credential({"subject_name": _string(required=True), "ca_certificate": _foreign("ca_certificates")}),
            updated_at=False,
        ),
    )
}
for _kind in KINDS.values():
    object.__setattr__(
        _kind,
        "foreign",
        {name: spec.reference for name, spec in _kind.fields.items() if spec.type == "foreign" and spec.reference},
    )

# The singular credential paths under /consumers/{consumer}/ (the lists are plural top-level paths).
CREDENTIAL_PATHS = {
    "key-auth": "key-auths",
    "acls": "acls",
    "jwt": "jwts",
    "basic-auth": "basic-auths",
    "hmac-auth": "hmac-auths",
    "oauth2": "oauth2",
    "mtls-auth": "mtls-auths",
}
CREDENTIALS = tuple(CREDENTIAL_PATHS.values())
# Children listed and created under a parent's path: (parent kind, path segment) -> (child kind, foreign field).
NESTED: dict[tuple[str, str], tuple[str, str]] = {
    ("services", "routes"): ("routes", "service"),
    ("services", "plugins"): ("plugins", "service"),
    ("routes", "plugins"): ("plugins", "route"),
    ("consumers", "plugins"): ("plugins", "consumer"),
    ("upstreams", "targets"): ("targets", "upstream"),
    ("certificates", "snis"): ("snis", "certificate"),
    **{("consumers", path): (kind, "consumer") for path, kind in CREDENTIAL_PATHS.items()},
}
# What goes with a deleted parent (Kong's on_delete = "cascade"), and what forbids the delete ("restrict").
CASCADE: dict[str, tuple[tuple[str, str], ...]] = {
    "services": (("plugins", "service"),),
    "routes": (("plugins", "route"),),
    "consumers": (("plugins", "consumer"), *((kind, "consumer") for kind in CREDENTIALS)),
    "upstreams": (("targets", "upstream"),),
    "certificates": (("snis", "certificate"),),
}
RESTRICT: dict[str, tuple[tuple[str, str], ...]] = {"services": (("routes", "service"),)}


# --- plugins ---------------------------------------------------------------------------------------------------


def _rate_limit_order(config: dict[str, Any]) -> dict[str, Any]:
    periods = ("second", "minute", "hour", "day", "month", "year")
    previous: tuple[str, float] | None = None
    for period in periods:
        value = config.get(period)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if previous and value < previous[1]:
                message = (
                    f"The limit for {period}({float(value):.1f}) cannot be lower than the limit "
                    f"for {previous[0]}({float(previous[1]):.1f})"
                )
                return {"config": message}
            previous = (period, value)
    return {}


def _acl_check(config: dict[str, Any]) -> dict[str, Any]:
    allow, deny = config.get("allow"), config.get("deny")
    if allow and deny:
        return {"@entity": ["only one of these fields must be non-empty: 'config.allow', 'config.deny'"]}
    if not allow and not deny:
        return {"@entity": ["at least one of these fields must be non-empty: 'config.allow', 'config.deny'"]}
    return {}


@dataclass(frozen=True)
class PluginSchema:
    """A plugin the stand-in runs: its ``config`` fields and defaults, priority, and scope limits."""

    name: str
    priority: int
    config: Mapping[str, Field]
    defaults: Mapping[str, Any]
    no_consumer: bool = False
    checks: tuple[Callable[[dict[str, Any]], dict[str, Any]], ...] = ()


_LIMIT = _number(gt=0)
PLUGINS: dict[str, PluginSchema] = {
    plugin.name: plugin
    for plugin in (
        PluginSchema(
            "correlation-id",
            100001,
            {
                "header_name": STRING,
                "generator": _string(one_of=("uuid", "uuid#counter", "tracker")),
                "echo_downstream": BOOLEAN,
            },
            {"header_name": "Kong-Request-ID", "generator": "uuid#counter", "echo_downstream": False},
        ),
        PluginSchema(
            "key-auth",
            1250,
            {
                "key_names": Field(
                    "array", elements=_string(check=lambda value: None if value else "expected a string")
                ),
                "hide_credentials": BOOLEAN,
                "anonymous": STRING,
                "key_in_header": BOOLEAN,
                "key_in_query": BOOLEAN,
                "key_in_body": BOOLEAN,
                "run_on_preflight": BOOLEAN,
            },
            {
                "key_names": ["apikey"],
                "hide_credentials": False,
                "anonymous": None,
                "key_in_header": True,
                "key_in_query": True,
                "key_in_body": False,
                "run_on_preflight": True,
            },
            no_consumer=True,
        ),
        PluginSchema(
            "acl",
            950,
            {
                "allow": Field("set", elements=STRING),
                "deny": Field("set", elements=STRING),
                "hide_groups_header": BOOLEAN,
                "include_consumer_groups": BOOLEAN,
                "always_use_authenticated_groups": BOOLEAN,
            },
            {"allow": None, "deny": None, "hide_groups_header": False},
            no_consumer=True,
            checks=(_acl_check,),
        ),
        PluginSchema(
            "rate-limiting",
            910,
            {
                "second": _LIMIT,
                "minute": _LIMIT,
                "hour": _LIMIT,
                "day": _LIMIT,
                "month": _LIMIT,
                "year": _LIMIT,
                "limit_by": _string(one_of=("consumer", "credential", "ip", "service", "header", "path")),
                "header_name": STRING,
                "path": _string(check=_service_path),
                "policy": _string(one_of=("local", "cluster", "redis")),
                "fault_tolerant": BOOLEAN,
                "hide_client_headers": BOOLEAN,
                "error_code": _number(gt=0),
                "error_message": STRING,
                "sync_rate": Field("number"),
                "redis": Field("record"),
                **{
                    name: ANY
                    for name in (
                        "redis_host",
                        "redis_port",
                        "redis_password",
                        "redis_username",
                        "redis_ssl",
                        "redis_ssl_verify",
                        "redis_server_name",
                        "redis_timeout",
                        "redis_database",
                    )
                },
            },
            {
                "limit_by": "consumer",
                "policy": "local",
                "fault_tolerant": True,
                "hide_client_headers": False,
                "error_code": 429,
                "error_message": "API rate limit exceeded",
            },
            checks=(
                _at_least_one(("second", "minute", "hour", "day", "month", "year"), "config."),
                _rate_limit_order,
            ),
        ),
    )
}


# --- validation ------------------------------------------------------------------------------------------------


def validate_entity(kind: Kind, entity: dict[str, Any]) -> dict[str, Any]:
    """Kong's error table for ``entity`` (empty when valid); ``foreign`` fields are only checked for shape."""
    errors = _record_errors(kind.fields, entity)
    if kind.name == "plugins":
        errors.update(_plugin_errors(entity))
    if not errors and kind.entity_check:
        errors.update(kind.entity_check(entity))
    return errors


def _plugin_errors(plugin: dict[str, Any]) -> dict[str, Any]:
    name = plugin.get("name")
    if not isinstance(name, str):
        return {}
    schema = PLUGINS.get(name)
    if schema is None:
        return {"name": f"plugin '{name}' not enabled; add it to the 'plugins' configuration property"}
    errors: dict[str, Any] = {}
    config = plugin.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        return errors
    config_errors = _record_errors(schema.config, config)
    if config_errors:
        errors["config"] = config_errors
    if schema.no_consumer and plugin.get("consumer") is not None:
        errors["consumer"] = "value must be null"
    if not errors:
        for check in schema.checks:
            errors.update(check(config))
            if errors:
                break
    return errors


def _record_errors(fields: Mapping[str, Field], values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    for name, value in values.items():
        spec = fields.get(name)
        if spec is None:
            errors[name] = "unknown field"
            continue
        error = validate_value(spec, value)
        if error is not None:
            errors[name] = error
    for name, spec in fields.items():
        if spec.required and values.get(name) is None and name not in errors:
            errors[name] = "required field missing"
    return errors


def validate_value(spec: Field, value: Any) -> Any:
    """``None`` when ``value`` fits ``spec``; otherwise Kong's message (a string, or a table for nested values)."""
    if value is None:
        return "required field missing" if spec.required else None
    kind = spec.type
    if kind == "any":
        return None
    if kind == "string":
        if not isinstance(value, str):
            return "expected a string"
        if value == "":
            return "length must be at least 1"
    elif kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "expected an integer" if kind == "integer" else "expected a number"
        if kind == "integer" and isinstance(value, float) and not value.is_integer():
            return "expected an integer"
        if spec.between and not spec.between[0] <= value <= spec.between[1]:
            return f"value should be between {_number_text(spec.between[0])} and {_number_text(spec.between[1])}"
        if spec.gt is not None and not value > spec.gt:
            return f"value must be greater than {_number_text(spec.gt)}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return "expected a boolean"
    elif kind in ("array", "set"):
        if not isinstance(value, list):
            return "expected an array" if kind == "array" else "expected a set"
        if spec.elements:
            element_errors = [validate_value(spec.elements, item) for item in value]
            if any(error is not None for error in element_errors):
                return element_errors
    elif kind == "map":
        if not isinstance(value, dict):
            return "expected a map"
        if spec.values:
            value_errors = {key: validate_value(spec.values, item) for key, item in value.items()}
            value_errors = {key: error for key, error in value_errors.items() if error is not None}
            if value_errors:
                return value_errors
    elif kind == "record":
        if not isinstance(value, dict):
            return "expected a record"
        if spec.fields is not None:
            return _record_errors(spec.fields, value) or None
    elif kind == "foreign":
        if not isinstance(value, dict) or not value:
            return "expected a record"
        if "id" in value and not is_uuid(value["id"]):
            return {"id": "expected a valid UUID"}
    if spec.one_of is not None and value not in spec.one_of:
        return "expected one of: " + ", ".join(str(option) for option in spec.one_of)
    if spec.check is not None:
        return spec.check(value)
    return None


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- form bodies -----------------------------------------------------------------------------------------------


def coerce(spec: Field | None, value: Any) -> Any:
    """A form-encoded value (always text) converted the way Kong's argument parser does for ``spec``."""
    if spec is None or not isinstance(value, str | list | dict):
        return value
    if spec.type in ("array", "set") and not isinstance(value, list):
        value = [value] if not isinstance(value, dict) else [value[key] for key in sorted(value, key=_index)]
    if isinstance(value, list):
        return [coerce(spec.elements, item) for item in value] if spec.type in ("array", "set") else value
    if isinstance(value, dict):
        nested = spec.fields or {}
        return {key: coerce(nested.get(key) or spec.values, item) for key, item in value.items()}
    if spec.type == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if spec.type == "number" and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value) if "." in value else int(value)
    if spec.type == "boolean" and value in ("true", "false"):
        return value == "true"
    if spec.type == "foreign":
        return {"id": value}
    return value


def _index(key: str) -> int:
    return int(key) if key.isdigit() else 0


def config_field(plugin_name: str | None) -> Field:
    schema = PLUGINS.get(plugin_name or "")
    return Field("record", fields=schema.config if schema else None)


# --- defaults, for the proxy -----------------------------------------------------------------------------------

SERVICE_DEFAULTS: dict[str, Any] = {
    "protocol": "http",
    "port": 80,
    "path": None,
    "retries": 5,
    "connect_timeout": 60000,
    "read_timeout": 60000,
    "write_timeout": 60000,
    "enabled": True,
}
ROUTE_DEFAULTS: dict[str, Any] = {
    "protocols": ["http", "https"],
    "strip_path": True,
    "preserve_host": False,
    "regex_priority": 0,
    "path_handling": "v0",
    "https_redirect_status_code": 426,
}
HEALTHCHECK_DEFAULTS: dict[str, Any] = {
    "active": {
        "type": "http",
        "timeout": 1,
        "concurrency": 10,
        "http_path": "/",
        "headers": None,
        "healthy": {"interval": 0, "http_statuses": HTTP_STATUSES_HEALTHY, "successes": 0},
        "unhealthy": {
            "interval": 0,
            "http_statuses": HTTP_STATUSES_UNHEALTHY,
            "tcp_failures": 0,
            "timeouts": 0,
            "http_failures": 0,
        },
    },
    "passive": {
        "type": "http",
        "healthy": {
            "http_statuses": [*range(200, 209), 226, *range(300, 309)],
            "successes": 0,
        },
        "unhealthy": {"http_statuses": [429, 500, 503], "tcp_failures": 0, "timeouts": 0, "http_failures": 0},
    },
    "threshold": 0,
}
UPSTREAM_DEFAULTS: dict[str, Any] = {"algorithm": "round-robin", "slots": 10000, "healthchecks": HEALTHCHECK_DEFAULTS}
TARGET_DEFAULTS: dict[str, Any] = {"weight": 100}
PLUGIN_DEFAULTS: dict[str, Any] = {"enabled": True, "config": {}}


def with_defaults(defaults: Mapping[str, Any], values: Mapping[str, Any] | None) -> dict[str, Any]:
    """``values`` with Kong's ``defaults`` filled in where a field is absent or null, records merged deeply."""
    merged = copy.deepcopy(dict(values or {}))
    for key, default in defaults.items():
        current = merged.get(key)
        if current is None:
            merged[key] = copy.deepcopy(default)
        elif isinstance(default, Mapping) and isinstance(current, dict):
            merged[key] = with_defaults(default, current)
    return merged


def plugin_config(plugin: Mapping[str, Any]) -> dict[str, Any]:
    schema = PLUGINS.get(str(plugin.get("name")))
    return with_defaults(schema.defaults if schema else {}, plugin.get("config"))
