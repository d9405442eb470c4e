"""The gateway's configuration: one JSON file written by the lab (mode 600, as it holds passwords).

Required keys: ``host``, ``smpp_port``, ``http_port``, ``users`` (name to ``password`` and ``throughput``),
``connectors`` (name to ``host``, ``port``, ``system_id``, ``password``), ``mt_routes`` (ordered
``prefix``/``connector`` pairs; the first prefix the destination starts with wins; ``""`` matches all) and
``queue`` (the SQLite file). MO goes to the user of the first of the optional ``mo_routes`` (ordered
``prefix``/``user`` pairs) whose prefix the MO's destination starts with, else to ``mo_user`` (optional; without
it such an MO is dropped and logged). Optional tuning keys, with their defaults, are in `Settings`. Passwords are
kept out of every ``repr``.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger("lab.smsgw")

MAX_SYSTEM_ID = 15  # SMPP 3.4: system_id is a C-Octet String of at most 16 octets
MAX_PASSWORD = 8  # SMPP 3.4: password of at most 9 octets
INTEGER_SETTINGS = frozenset({"window", "dlr_retries", "deliver_window"})
REQUIRED = ("host", "smpp_port", "http_port", "users", "connectors", "mt_routes", "queue")


class ConfigError(ValueError):
    """The configuration file is missing, unreadable, or has a value the gateway cannot use."""


@dataclass(frozen=True)
class User:
    """A customer account, for SMPP binds and the HTTP API alike; ``throughput`` in messages/s, 0: unlimited."""

    name: str
    password: str = field(repr=False)
    throughput: float = 0.0


@dataclass(frozen=True)
class Connector:
    """An upstream carrier SMSC the gateway binds to as a transceiver."""

    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Route:
    prefix: str
    connector: str


@dataclass(frozen=True)
class MoRoute:
    prefix: str
    user: str


@dataclass(frozen=True)
class Settings:
    """Tuning, all optional top-level keys of the file (seconds unless said otherwise)."""

    window: int = 10  # outstanding submit_sm per connector
    response_timeout: float = 10.0  # for a submit_sm_resp, bind_resp, enquire_link_resp or deliver_sm_resp
    enquire_link_interval: float = 30.0  # idle time before the gateway sends enquire_link upstream
    reconnect_max: float = 5.0  # upper bound of the reconnect back-off (it starts at 0.1 s and doubles)
    dlr_retries: int = 5  # retries of an HTTP DLR callback that does not answer 2xx
    dlr_retry_delay: float = 1.0  # first pause before such a retry; it doubles
    http_timeout: float = 5.0  # connect/read timeout of an HTTP DLR callback
    deliver_window: int = 50  # outstanding deliver_sm per customer session


@dataclass(frozen=True)
class GatewayConfig:
    host: str
    smpp_port: int
    http_port: int
    users: dict[str, User]
    connectors: dict[str, Connector]
    mt_routes: list[Route]
    mo_user: str | None
    queue: Path
    settings: Settings = field(default_factory=Settings)
    mo_routes: list[MoRoute] = field(default_factory=list)

    def route(self, destination: str) -> str | None:
        """The connector for ``destination``: the first route whose prefix it starts with."""
        for route in self.mt_routes:
            if destination.startswith(route.prefix):
                return route.connector
        return None

    def mo_recipient(self, destination: str) -> str | None:
        """The user an MO to ``destination`` goes to: the first MO route it matches, else ``mo_user``."""
        number = destination.strip().lstrip("+")
        for route in self.mo_routes:
            if number.startswith(route.prefix):
                return route.user
        return self.mo_user


def load(path: str | Path) -> GatewayConfig:
    """Read and check the configuration file; warn when others may read it (it holds passwords)."""
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


def parse(data: Any, source: str = "configuration") -> GatewayConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object.")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{source} lacks {', '.join(missing)}.")
    tuning = {item.name for item in fields(Settings)}
    unknown = sorted(set(data) - set(REQUIRED) - {"mo_user", "mo_routes"} - tuning)
    if unknown:
        log.warning("%s: ignoring unknown key(s) %s", source, ", ".join(unknown))
    users = _users(data["users"], source)
    connectors = _connectors(data["connectors"], source)
    routes = _routes(data["mt_routes"], connectors, source)
    mo_user = data.get("mo_user")
    if mo_user is not None and mo_user not in users:
        raise ConfigError(f"{source}: mo_user '{mo_user}' is not one of the users ({', '.join(sorted(users))}).")
    mo_routes = _mo_routes(data.get("mo_routes", []), users, source)
    given: dict[str, Any] = {}
    for key in tuning & set(data):
        value = _number(data[key], key, source)
        given[key] = int(value) if key in INTEGER_SETTINGS else float(value)
    settings = Settings(**given)
    if settings.window < 1 or settings.deliver_window < 1:
        raise ConfigError(f"{source}: window and deliver_window must be at least 1.")
    return GatewayConfig(
        host=_text(data["host"], "host", source),
        smpp_port=_port(data["smpp_port"], "smpp_port", source),
        http_port=_port(data["http_port"], "http_port", source),
        users=users,
        connectors=connectors,
        mt_routes=routes,
        mo_user=mo_user,
        mo_routes=mo_routes,
        queue=Path(os.path.expanduser(_text(data["queue"], "queue", source))),
        settings=settings,
    )


def _users(value: Any, source: str) -> dict[str, User]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: users must be an object of name to {{password, throughput}}.")
    users = {}
    for name, entry in value.items():
        where = f"users.{name}"
        if not isinstance(entry, dict) or "password" not in entry:
            raise ConfigError(f"{source}: {where} must be an object with a password.")
        _system_id(name, where, source)
        throughput = float(_number(entry.get("throughput", 0), f"{where}.throughput", source))
        if throughput < 0:
            raise ConfigError(f"{source}: {where}.throughput must be 0 (unlimited) or more, got {throughput}.")
        users[name] = User(name, _password(entry["password"], where, source), throughput)
    return users


def _connectors(value: Any, source: str) -> dict[str, Connector]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{source}: connectors must be a non-empty object of name to {{host, port, ...}}.")
    connectors = {}
    for name, entry in value.items():
        where = f"connectors.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: {where} must be an object.")
        absent = [key for key in ("host", "port", "system_id", "password") if key not in entry]
        if absent:
            raise ConfigError(f"{source}: {where} lacks {', '.join(absent)}.")
        connectors[name] = Connector(
            name=name,
            host=_text(entry["host"], f"{where}.host", source),
            port=_port(entry["port"], f"{where}.port", source, allow_zero=False),
            system_id=_system_id(entry["system_id"], f"{where}.system_id", source),
            password=_password(entry["password"], where, source),
        )
    return connectors


def _routes(value: Any, connectors: dict[str, Connector], source: str) -> list[Route]:
    if not isinstance(value, list):
        raise ConfigError(f"{source}: mt_routes must be a list of {{prefix, connector}}.")
    routes = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or "connector" not in entry:
            raise ConfigError(f"{source}: mt_routes[{index}] must be an object with prefix and connector.")
        prefix = str(entry.get("prefix") or "").lstrip("+")
        if prefix and not prefix.isdigit():
            raise ConfigError(f"{source}: mt_routes[{index}].prefix '{prefix}' must be digits (or empty: any).")
        if entry["connector"] not in connectors:
            raise ConfigError(
                f"{source}: mt_routes[{index}] names connector '{entry['connector']}', "
                f"which is not one of {', '.join(sorted(connectors))}."
            )
        routes.append(Route(prefix, str(entry["connector"])))
    return routes


def _mo_routes(value: Any, users: dict[str, User], source: str) -> list[MoRoute]:
    if not isinstance(value, list):
        raise ConfigError(f"{source}: mo_routes must be a list of {{prefix, user}}.")
    routes = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or "user" not in entry:
            raise ConfigError(f"{source}: mo_routes[{index}] must be an object with prefix and user.")
        prefix = str(entry.get("prefix") or "").lstrip("+")
        if prefix and not prefix.isdigit():
            raise ConfigError(f"{source}: mo_routes[{index}].prefix '{prefix}' must be digits (or empty: any).")
        if entry["user"] not in users:
            raise ConfigError(
                f"{source}: mo_routes[{index}] names user '{entry['user']}', "
                f"which is not one of {', '.join(sorted(users))}."
            )
        routes.append(MoRoute(prefix, str(entry["user"])))
    return routes


def _text(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: {key} must be a non-empty string.")
    return value.strip()


def _system_id(value: Any, key: str, source: str) -> str:
    text = _text(value, key, source)
    if len(text) > MAX_SYSTEM_ID:
        raise ConfigError(f"{source}: {key} '{text}' is longer than SMPP's {MAX_SYSTEM_ID} characters.")
    return text


def _password(value: Any, where: str, source: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_PASSWORD:
        raise ConfigError(f"{source}: {where}.password must be 1 to {MAX_PASSWORD} characters (SMPP 3.4).")
    return value


def _port(value: Any, key: str, source: str, *, allow_zero: bool = True) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not (0 if allow_zero else 1) <= value <= 65535:
        raise ConfigError(f"{source}: {key} must be a port number, got {value!r}.")
    return value


def _number(value: Any, key: str, source: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}.")
    if value < 0:
        raise ConfigError(f"{source}: {key} must not be negative, got {value}.")
    return value
