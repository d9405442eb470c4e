"""The proxy's configuration: one JSON file written by the lab (mode 600: it holds the SIP passwords).

Keys (``*`` required; times in seconds)::

    host*, port*          UDP address of the proxy, e.g. "127.0.0.1", 15060
    http_port*            TCP port of GET /health, /registrations, /dialogs and of POST /RPC (Kamailio's JSON-RPC:
                          htable.*, dlg.list, dlg.end_dlg, telco.transfer; see lab.sip.control)
    users*                {"1001": "pw1001", ...}: the subscribers and their digest passwords
    domain                the SIP domain and digest realm (default: host)
    name                  label in logs, /health and the CDRs' ``proxy`` column (default "proxy")
    record_route          add Record-Route to dialog-creating requests (default true)
    services              {"8000": "sip:voicemail@127.0.0.1:15100", ...}: numbers routed to voice applications
    trunks                [{"prefix": "00", "uri": "sip:127.0.0.1:15200", "strip": 0}]: numbers routed to PSTN
                          peers (longest prefix wins; ``strip`` digits are cut off the front)
    trusted               ["127.0.0.1:15210", ...]: extra source addresses whose requests need no digest auth
                          (the trunks' and services' own addresses are always trusted; on loopback every
                          address is 127.0.0.1, so trust is by address *and* port)
    relay                 {"control": "127.0.0.1:15300" or a list of them, "timeout": 1.0, "retries": 1,
                          "disable_for": 10}: the media relay(s); absent: no anchoring
    no_answer_timeout     ringing longer than this is cancelled and treated as 408 (default 20)
    no_response_timeout   a forwarded request without any reply is given up as 408 (default 5)
    on_failure            {"8000": ["408", "480", "486", "404"]} or {"8000": {"codes": [...], "users": [...]}}:
                          a call to a user (all users, or the listed ones) that fails with one of the codes is
                          redirected to that service number (failure_route), with a Diversion header
    cdr_database          SQLAlchemy URL of the CDR database (table ``cdrs``); absent: no CDRs
    default_expires, min_expires, max_expires   registration lifetimes (3600, 1, 3600)
    nonce_ttl             lifetime of a digest nonce (default 300)
    dialog_timeout        an answered call without a BYE is ended (CDR written) after this (default 43200, as
                          Kamailio's dialog module)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.sip.message import SipUri, parse_uri

log = logging.getLogger("lab.sip")

Addr = tuple[str, int]
REQUIRED = ("host", "port", "http_port", "users")
OPTIONAL = (
    "domain",
    "name",
    "record_route",
    "services",
    "trunks",
    "trusted",
    "relay",
    "no_answer_timeout",
    "no_response_timeout",
    "on_failure",
    "cdr_database",
    "default_expires",
    "min_expires",
    "max_expires",
    "nonce_ttl",
    "dialog_timeout",
)


class ConfigError(ValueError):
    """The configuration file is missing, unreadable, or has a value the proxy cannot use."""


@dataclass(frozen=True)
class Trunk:
    prefix: str
    uri: SipUri
    strip: int = 0


@dataclass(frozen=True)
class FailureRule:
    """Redirect failed calls to ``service`` (a number in ``services``) on ``codes``, for ``users`` (None: all)."""

    service: str
    codes: frozenset[int]
    users: frozenset[str] | None = None

    def applies(self, callee: str, code: int) -> bool:
        return code in self.codes and (self.users is None or callee in self.users)


@dataclass(frozen=True)
class RelaySettings:
    control: list[Addr]
    timeout: float = 1.0
    retries: int = 1
    disable_for: float = 10.0


@dataclass(frozen=True)
class ProxyConfig:
    host: str
    port: int
    http_port: int
    users: dict[str, str] = field(repr=False)
    domain: str
    name: str = "proxy"
    record_route: bool = True
    services: dict[str, SipUri] = field(default_factory=dict)
    trunks: list[Trunk] = field(default_factory=list)
    trusted: frozenset[Addr] = frozenset()
    relay: RelaySettings | None = None
    no_answer_timeout: float = 20.0
    no_response_timeout: float = 5.0
    on_failure: list[FailureRule] = field(default_factory=list)
    cdr_database: str | None = None
    default_expires: int = 3600
    min_expires: int = 1
    max_expires: int = 3600
    nonce_ttl: float = 300.0
    dialog_timeout: float = 43200.0

    def trunk_for(self, number: str) -> Trunk | None:
        matching = [trunk for trunk in self.trunks if number.startswith(trunk.prefix)]
        return max(matching, key=lambda trunk: len(trunk.prefix)) if matching else None

    def failure_rule(self, callee: str, code: int) -> FailureRule | None:
        return next((rule for rule in self.on_failure if rule.applies(callee, code)), None)


def load(path: str | Path) -> ProxyConfig:
    file = Path(path)
    try:
        mode = file.stat().st_mode
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Configuration file '{file}' does not exist.") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read configuration file '{file}': {error}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("configuration file %s holds passwords but is readable by others (chmod 600 it)", file)
    return parse(data, str(file))


def parse(data: Any, source: str = "configuration") -> ProxyConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object.")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{source} lacks {', '.join(missing)}.")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ConfigError(f"{source} has unknown key(s) {', '.join(unknown)}; known: {', '.join(REQUIRED + OPTIONAL)}.")
    host = _ip(data["host"], "host", source)
    users = data["users"]
    if not isinstance(users, dict) or not all(isinstance(v, str) and v for v in users.values()):
        raise ConfigError(f"{source}: 'users' must map user names to non-empty passwords.")
    services = {
        str(number): _uri(uri, f"services.{number}", source) for number, uri in _dict(data, "services", source).items()
    }
    trunks = [_trunk(item, source) for item in data.get("trunks") or []]
    trusted = {_hostport(item, "trusted", source) for item in data.get("trusted") or []}
    trusted |= {uri.address() for uri in services.values()} | {trunk.uri.address() for trunk in trunks}
    on_failure = [
        _rule(service, value, services, source) for service, value in _dict(data, "on_failure", source).items()
    ]
    return ProxyConfig(
        host=host,
        port=_port(data["port"], "port", source),
        http_port=_port(data["http_port"], "http_port", source),
        users={str(user): password for user, password in users.items()},
        domain=str(data.get("domain") or host),
        name=str(data.get("name") or "proxy"),
        record_route=bool(data.get("record_route", True)),
        services=services,
        trunks=trunks,
        trusted=frozenset(trusted),
        relay=_relay(data.get("relay"), source),
        no_answer_timeout=_seconds(data.get("no_answer_timeout", 20), "no_answer_timeout", source),
        no_response_timeout=_seconds(data.get("no_response_timeout", 5), "no_response_timeout", source),
        on_failure=on_failure,
        cdr_database=str(data["cdr_database"]) if data.get("cdr_database") else None,
        default_expires=int(_seconds(data.get("default_expires", 3600), "default_expires", source)),
        min_expires=int(_seconds(data.get("min_expires", 1), "min_expires", source)),
        max_expires=int(_seconds(data.get("max_expires", 3600), "max_expires", source)),
        nonce_ttl=_seconds(data.get("nonce_ttl", 300), "nonce_ttl", source),
        dialog_timeout=_seconds(data.get("dialog_timeout", 43200), "dialog_timeout", source),
    )


def _dict(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a JSON object.")
    return value


def _ip(value: Any, key: str, source: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ConfigError(f"{source}: '{key}' must be an IP address such as 127.0.0.1, not {value!r}.") from None


def _port(value: Any, key: str, source: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ConfigError(f"{source}: '{key}' must be a port number 1..65535, not {value!r}.")
    return value


def _seconds(value: Any, key: str, source: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{source}: '{key}' must be a positive number of seconds, not {value!r}.")
    return float(value)


def _hostport(value: Any, key: str, source: str) -> Addr:
    host, _, port = str(value).rpartition(":")
    if not port.isdigit():
        raise ConfigError(f"{source}: '{key}' entries must look like 127.0.0.1:15300, not {value!r}.")
    return _ip(host, key, source), _port(int(port), key, source)


def _uri(value: Any, key: str, source: str) -> SipUri:
    uri = parse_uri(str(value))
    if uri is None:
        raise ConfigError(f"{source}: '{key}' must be a SIP URI such as sip:voicemail@127.0.0.1:15100, not {value!r}.")
    _ip(uri.address()[0], key, source)
    return uri


def _trunk(item: Any, source: str) -> Trunk:
    if not isinstance(item, dict) or "prefix" not in item or "uri" not in item:
        raise ConfigError(f"{source}: each trunk needs 'prefix' and 'uri', e.g. {{'prefix': '00', 'uri': 'sip:...'}}.")
    strip = item.get("strip", 0)
    if not isinstance(strip, int) or strip < 0:
        raise ConfigError(f"{source}: trunk 'strip' must be a non-negative integer, not {strip!r}.")
    return Trunk(str(item["prefix"]), _uri(item["uri"], "trunks.uri", source), strip)


def _rule(service: str, value: Any, services: dict[str, SipUri], source: str) -> FailureRule:
    if service not in services:
        raise ConfigError(
            f"{source}: on_failure names '{service}', which is not in 'services' ({', '.join(services)})."
        )
    users: Any = None
    codes = value
    if isinstance(value, dict):
        codes, users = value.get("codes"), value.get("users")
    try:
        parsed = frozenset(int(code) for code in codes)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: on_failure.{service} must list status codes such as ['486', '408'].") from None
    if not parsed or not all(300 <= code < 700 for code in parsed):
        raise ConfigError(f"{source}: on_failure.{service} codes must be final failure codes 300..699.")
    if users is not None and not isinstance(users, list):
        raise ConfigError(f"{source}: on_failure.{service}.users must be a list of user names.")
    return FailureRule(service, parsed, frozenset(str(user) for user in users) if users is not None else None)


def _relay(value: Any, source: str) -> RelaySettings | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "control" not in value:
        raise ConfigError(f"{source}: 'relay' must be an object with 'control', e.g. {{'control': '127.0.0.1:15300'}}.")
    control = value["control"] if isinstance(value["control"], list) else [value["control"]]
    return RelaySettings(
        control=[_hostport(item, "relay.control", source) for item in control],
        timeout=_seconds(value.get("timeout", 1.0), "relay.timeout", source),
        retries=int(value.get("retries", 1)),
        disable_for=_seconds(value.get("disable_for", 10.0), "relay.disable_for", source),
    )
