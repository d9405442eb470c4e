"""The lab's configuration, read from a variables file (``variables/lab.yaml`` by default).

The lab takes its ports from the same entries the suites use (``BILLING_URL`` and so on), so one file
decides both where a stand-in listens and where the tests look for it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VARIABLES = ROOT / "variables" / "lab.yaml"
RUN_DIR = ROOT / "results" / "lab"


class LabConfigError(ValueError):
    """The variables file lacks an entry the lab needs, or has one it cannot use."""


@dataclass(frozen=True)
class HealthCheck:
    """How to tell a stand-in is ready: an HTTP URL answering 2xx, or a TCP port accepting connections."""

    http: str | None = None
    tcp: tuple[str, int] | None = None

    def describe(self) -> str:
        if self.http:
            return f"GET {self.http}"
        if self.tcp:
            return f"TCP {self.tcp[0]}:{self.tcp[1]}"
        return "process running"


@dataclass(frozen=True)
class Program:
    """One stand-in: its command, environment, readiness check, and files the lab writes for it (mode 600).

    ``{run_dir}`` in the command stands for the lab's run directory, where those files are written.
    """

    name: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    health: HealthCheck = field(default_factory=HealthCheck)
    files: dict[str, str] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)  # SQLAlchemy URLs created before it starts (PostgreSQL)
    autostart: bool = True  # False: `up` leaves it stopped; start it later (it needs something started after the lab)


@dataclass(frozen=True)
class LabConfig:
    variables_file: Path
    supervisor_host: str
    supervisor_port: int
    programs: list[Program]
    run_dir: Path = RUN_DIR

    @property
    def supervisor_url(self) -> str:
        return f"http://{self.supervisor_host}:{self.supervisor_port}/RPC2"

    def program(self, name: str) -> Program:
        for program in self.programs:
            if program.name == name:
                return program
        known = ", ".join(p.name for p in self.programs)
        raise LabConfigError(f"The lab has no program '{name}'. Known programs: {known}.")


def load(variables_file: str | Path | None = None) -> LabConfig:
    """Read the lab's configuration from ``variables_file`` (or ``$LAB_VARIABLES``, or ``variables/lab.yaml``)."""
    path = Path(variables_file or os.environ.get("LAB_VARIABLES") or DEFAULT_VARIABLES)
    if not path.is_absolute():
        path = ROOT / path
    try:
        values: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise LabConfigError(f"Variables file '{path}' does not exist. Pass an existing file.") from None
    supervisor_host, supervisor_port = _host_port(_required(values, "LAB_SUPERVISOR_URL", path), path)
    wanted = values.get("LAB_PROGRAMS") or ["billing"]
    unknown = [name for name in wanted if name not in PROGRAMS]
    if unknown:
        raise LabConfigError(
            f"LAB_PROGRAMS in '{path}' names unknown programs {unknown}. Known: {', '.join(PROGRAMS)}."
        )
    deferred = set(values.get("LAB_DEFERRED") or [])
    return LabConfig(
        variables_file=path,
        supervisor_host=supervisor_host,
        supervisor_port=supervisor_port,
        programs=[dataclasses.replace(PROGRAMS[name](values, path), autostart=name not in deferred) for name in wanted],
    )


def _billing(values: dict[str, Any], path: Path) -> Program:
    url = _required(values, "BILLING_URL", path)
    host, port = _host_port(url, path)
    environment = {
        "BILLING_ADMIN_TOKEN": str(_required(values, "BILLING_TOKEN", path)),
        "BILLING_DATABASE_URL": str(_required(values, "LAB_BILLING_DATABASE_URL", path)),
        "BILLING_FAULT_INJECTION": "1" if values.get("LAB_BILLING_FAULT_INJECTION") else "0",
    }
    return Program(
        name="billing",
        command=[sys.executable, "-m", "lab.billing", "--host", host, "--port", str(port)],
        environment=environment,
        health=HealthCheck(http=f"http://{host}:{port}/health"),
        databases=[environment["BILLING_DATABASE_URL"]],
    )


def _carrier(name: str, port_key: str, control_key: str) -> Callable[[dict[str, Any], Path], Program]:
    """An upstream carrier SMSC simulator (SmppLibrary's carrier) that the SMS gateway binds to."""

    def build(values: dict[str, Any], path: Path) -> Program:
        control_host, control_port = _host_port(_required(values, control_key, path), path)
        port = int(_required(values, port_key, path))
        account = {
            str(_required(values, "LAB_CARRIER_SYSTEM_ID", path)): str(_required(values, "LAB_CARRIER_PASSWORD", path))
        }
        accounts_file = f"{name}-accounts.json"
        return Program(
            name=name,
            command=[
                sys.executable,
                "-m",
                "SmppLibrary.carrier",
                "--host",
                control_host,
                "--port",
                str(port),
                "--control-port",
                str(control_port),
                "--accounts-file",
                f"{{run_dir}}/{accounts_file}",
                "--system-id",
                name,
                "--dlr-delay",
                str(float(values.get("LAB_CARRIER_DLR_DELAY", 0))),
            ],
            environment={"PYTHONPATH": str(ROOT / "libraries")},
            health=HealthCheck(http=f"http://{control_host}:{control_port}/health"),
            files={accounts_file: json.dumps(account)},
        )

    return build


def _sms_gateway(values: dict[str, Any], path: Path) -> Program:
    """The SMS gateway stand-in (Jasmin's role): customer SMPP binds, HTTP send API, routes to the carriers."""
    host = str(_required(values, "SMPP_HOST", path))
    _host_port(f"smpp://{host}:1", path)
    http_host, http_port = _host_port(_required(values, "SMS_HTTP_URL", path), path)
    accounts = _required(values, "SMPP_ACCOUNTS", path)
    users: dict[str, dict[str, Any]] = {
        str(account["system_id"]): {"password": str(account["password"]), "throughput": 0} for account in accounts
    }
    apps = values.get("LAB_APPS_SMPP_ACCOUNT")
    if apps:
        users[str(apps["system_id"])] = {"password": str(apps["password"]), "throughput": 0}
    users[str(_required(values, "SMPP_THROTTLED_SYSTEM_ID", path))] = {
        "password": str(_required(values, "SMPP_THROTTLED_PASSWORD", path)),
        "throughput": float(_required(values, "SMPP_THROTTLED_RATE", path)),
    }
    upstream = {
        "host": host,
        "system_id": str(_required(values, "LAB_CARRIER_SYSTEM_ID", path)),
        "password": str(_required(values, "LAB_CARRIER_PASSWORD", path)),
    }
    config = {
        "host": host,
        "smpp_port": int(_required(values, "SMPP_PORT", path)),
        "http_port": http_port,
        "users": users,
        "connectors": {
            "carrier-a": {**upstream, "port": int(_required(values, "LAB_CARRIER_SMPP_PORT", path))},
            "carrier-b": {**upstream, "port": int(_required(values, "LAB_OUTAGE_CARRIER_SMPP_PORT", path))},
        },
        "mt_routes": [
            {"prefix": str(_required(values, "SMS_OUTAGE_PREFIX", path)), "connector": "carrier-b"},
            {"prefix": "", "connector": "carrier-a"},
        ],
        "mo_routes": [{"prefix": str(account["numbers"]), "user": str(account["system_id"])} for account in accounts]
        + ([{"prefix": str(apps["numbers"]), "user": str(apps["system_id"])}] if apps else []),
        "mo_user": str(accounts[0]["system_id"]),
        "queue": str(ROOT / str(_required(values, "LAB_SMSGW_QUEUE", path))),
    }
    return Program(
        name="smsgw",
        command=[sys.executable, "-m", "lab.smsgw", "--config", "{run_dir}/smsgw.json"],
        environment={"PYTHONPATH": str(ROOT / "libraries")},
        health=HealthCheck(http=f"http://{http_host}:{http_port}/ping"),
        files={"smsgw.json": json.dumps(config, indent=2)},
    )


def _kong(name: str, admin_key: str, proxy_key: str) -> Callable[[dict[str, Any], Path], Program]:
    """One node of the API gateway stand-in (Kong's Admin API and proxy); the nodes share one database."""

    def build(values: dict[str, Any], path: Path) -> Program:
        admin_host, admin_port = _host_port(_required(values, admin_key, path), path)
        proxy_host, proxy_port = _host_port(_required(values, proxy_key, path), path)
        database = str(_required(values, "LAB_KONG_DATABASE_URL", path))
        config = {
            "admin_host": admin_host,
            "admin_port": admin_port,
            "proxy_host": proxy_host,
            "proxy_port": proxy_port,
            "database": _absolute_sqlite(database),
            "admin_token": str(_required(values, "KONG_ADMIN_TOKEN", path)),
            "node": name,
        }
        return Program(
            name=name,
            command=[sys.executable, "-m", "lab.kong", "--config", f"{{run_dir}}/{name}.json"],
            health=HealthCheck(http=f"http://{admin_host}:{admin_port}/status"),
            files={f"{name}.json": json.dumps(config, indent=2)},
            databases=[str(config["database"])],
        )

    return build


def _absolute_sqlite(url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(ROOT / url[len(prefix) :])
    return url


def _sip_proxy(name: str, proxy_key: str, http_port_offset: int = 1) -> Callable[[dict[str, Any], Path], Program]:
    """One SIP proxy/registrar (Kamailio's role); phones register with the one they point at."""

    def build(values: dict[str, Any], path: Path) -> Program:
        host, port = _host_port(f"sip://{_required(values, proxy_key, path)}", path)
        users = {
            str(phone["user"]): str(phone["password"])
            for worker in _required(values, "SIP_ACCOUNTS", path)
            for phone in worker
        }
        relays = [f"{host}:{relay['control_port']}" for relay in _required(values, "LAB_RELAYS", path)]
        services = {
            str(number): f"sip:{service}@{values.get('LAB_VOICEAPPS_SIP', '127.0.0.1:15100')}"
            for service, number in dict(_required(values, "SIP_SERVICES", path)).items()
        }
        voicemail = str(dict(_required(values, "SIP_SERVICES", path))["voicemail"])
        config = {
            "host": host,
            "port": port,
            "http_port": port + http_port_offset,
            "name": name,
            "domain": str(_required(values, "SIP_DOMAIN", path)),
            "record_route": True,
            "users": users,
            "services": services,
            "trunks": list(values.get("LAB_SIP_TRUNKS") or []),
            "relay": {"control": relays, "timeout": 1.0, "retries": 1, "disable_for": 10},
            "no_answer_timeout": int(values.get("LAB_SIP_NO_ANSWER_TIMEOUT", 20)),
            "on_failure": {voicemail: {"codes": ["408", "480", "486", "404"], "users": sorted(users)}},
            "cdr_database": _absolute_sqlite(str(_required(values, "LAB_BILLING_DATABASE_URL", path))),
        }
        return Program(
            name=name,
            command=[sys.executable, "-m", "lab.sip", "--config", f"{{run_dir}}/{name}.json"],
            health=HealthCheck(http=f"http://{host}:{port + http_port_offset}/health"),
            files={f"{name}.json": json.dumps(config, indent=2)},
        )

    return build


def _relay(index: int) -> Callable[[dict[str, Any], Path], Program]:
    """One media relay (RTPEngine's role)."""

    def build(values: dict[str, Any], path: Path) -> Program:
        relay = dict(_required(values, "LAB_RELAYS", path)[index])
        name = str(relay["name"])
        config = {
            "host": "127.0.0.1",
            "control_port": int(relay["control_port"]),
            "http_port": int(relay["control_port"]) + 1,
            "port_min": int(relay["port_min"]),
            "port_max": int(relay["port_max"]),
            "media_address": "127.0.0.1",
            "idle_timeout": 60,
            "name": name,
        }
        return Program(
            name=name,
            command=[sys.executable, "-m", "lab.rtprelay", "--config", f"{{run_dir}}/{name}.json"],
            health=HealthCheck(http=f"http://127.0.0.1:{config['http_port']}/health"),
            files={f"{name}.json": json.dumps(config, indent=2)},
        )

    return build


def _platform(values: dict[str, Any], path: Path) -> Program:
    """The platform's provisioning API (behind the gateway)."""
    host, port = _host_port(_required(values, "PLATFORM_UPSTREAM_URL", path), path)
    apps = dict(_required(values, "LAB_APPS_SMPP_ACCOUNT", path))
    proxies = [_required(values, key, path) for key in ("SIP_PROXY", "SIP_PROXY_B")]
    config = {
        "host": host,
        "port": port,
        "database": _absolute_sqlite(str(_required(values, "LAB_PLATFORM_DATABASE_URL", path))),
        "sms": {
            "http_url": str(_required(values, "SMS_HTTP_URL", path)),
            "username": str(apps["system_id"]),
            "password": str(apps["password"]),
        },
        "voice_rpc": [f"http://{proxy.split(':')[0]}:{int(proxy.split(':')[1]) + 1}/RPC" for proxy in proxies],
        "cdr_database": _absolute_sqlite(str(_required(values, "LAB_BILLING_DATABASE_URL", path))),
        "webhook_timeout": 5,
    }
    return Program(
        name="platform",
        command=[sys.executable, "-m", "lab.platform", "--config", "{run_dir}/platform.json"],
        environment={"PYTHONPATH": str(ROOT / "libraries")},
        health=HealthCheck(http=f"http://{host}:{port}/health"),
        files={"platform.json": json.dumps(config, indent=2)},
        databases=[str(config["database"])],
    )


def _voice_apps(values: dict[str, Any], path: Path) -> Program:
    """The platform's voice applications: voicemail, callback, forwarding, two-factor codes (SIP + SMPP)."""
    sip_host, sip_port = _host_port(f"sip://{values.get('LAB_VOICEAPPS_SIP', '127.0.0.1:15100')}", path)
    proxy = str(_required(values, "SIP_PROXY", path))
    proxy_host, proxy_port = _host_port(f"sip://{proxy}", path)
    apps = dict(_required(values, "LAB_APPS_SMPP_ACCOUNT", path))
    http_port = sip_port + 1
    config = {
        "sip": {"host": sip_host, "port": sip_port, "proxy": f"sip:{proxy}", "domain": str(values["SIP_DOMAIN"])},
        "smpp": {
            "host": str(_required(values, "SMPP_HOST", path)),
            "port": int(_required(values, "SMPP_PORT", path)),
            "system_id": str(apps["system_id"]),
            "password": str(apps["password"]),
            "short_code": str(_required(values, "SMS_SHORT_CODE", path)),
        },
        "subscribers": {
            str(phone["user"]): str(phone["msisdn"])
            for worker in _required(values, "SIP_ACCOUNTS", path)
            for phone in worker
        },
        "forwarding_rpc": f"http://{proxy_host}:{proxy_port + 1}/RPC",
        "recordings": str(RUN_DIR / "voicemail"),
        "http_port": http_port,
        "voicemail_max_seconds": int(values.get("LAB_VOICEMAIL_MAX_SECONDS", 60)),
    }
    return Program(
        name="voiceapps",
        command=[sys.executable, "-m", "lab.voiceapps", "--config", "{run_dir}/voiceapps.json"],
        environment={"PYTHONPATH": f"{ROOT / 'libraries'}:{ROOT}"},
        health=HealthCheck(http=f"http://{sip_host}:{http_port}/health"),
        files={"voiceapps.json": json.dumps(config, indent=2)},
    )


PROGRAMS: dict[str, Callable[[dict[str, Any], Path], Program]] = {
    "voiceapps": _voice_apps,
    "sip-a": _sip_proxy("sip-a", "SIP_PROXY"),
    "sip-b": _sip_proxy("sip-b", "SIP_PROXY_B"),
    "relay-a": _relay(0),
    "relay-b": _relay(1),
    "platform": _platform,
    "kong-a": _kong("kong-a", "KONG_ADMIN_URL", "KONG_PROXY_URL"),
    "kong-b": _kong("kong-b", "KONG_B_ADMIN_URL", "KONG_B_PROXY_URL"),
    "billing": _billing,
    "carrier": _carrier("carrier", "LAB_CARRIER_SMPP_PORT", "CARRIER_CONTROL_URL"),
    "outage-carrier": _carrier("outage-carrier", "LAB_OUTAGE_CARRIER_SMPP_PORT", "OUTAGE_CARRIER_CONTROL_URL"),
    "smsgw": _sms_gateway,
}


def _required(values: dict[str, Any], name: str, path: Path) -> Any:
    if values.get(name) in (None, ""):
        raise LabConfigError(f"Variables file '{path}' has no '{name}'. Add it (see variables/lab.yaml).")
    return values[name]


def _host_port(url: str, path: Path) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise LabConfigError(f"'{url}' in '{path}' needs an explicit host and port, e.g. http://127.0.0.1:18080.")
    if not _is_loopback(parts.hostname):
        raise LabConfigError(f"The lab listens on loopback only; '{url}' in '{path}' names '{parts.hostname}'.")
    return parts.hostname, parts.port


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
