"""Where the Jasmin real stack lives on disk, which ports it uses, and what `configure` provisions.

Values come from three places, later ones winning: the defaults here, a variables file
(``variables/realstack.yaml``, the same keys the suites read) and command-line options.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from realstack.jasmin.errors import RealStackError

JASMIN_VERSION = "0.11.0"
TEMPLATE = Path(__file__).with_name("jasmin.cfg.template")
REPO_ROOT = Path(__file__).resolve().parents[2]

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_S = TypeVar("_S", "JasminSettings", "GatewaySettings")


@dataclass(frozen=True)
class Paths:
    """Every file and folder of the Jasmin real stack, derived from the repository root."""

    root: Path = REPO_ROOT

    @property
    def state(self) -> Path:
        return self.root / ".realstack"

    @property
    def venv(self) -> Path:
        return self.state / "jasmin-venv"

    @property
    def venv_python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def jasmind(self) -> Path:
        return self.venv / "bin" / "jasmind.py"

    @property
    def install_stamp(self) -> Path:
        return self.venv / f".realstack-installed-jasmin-{JASMIN_VERSION}"

    @property
    def jasmin_root(self) -> Path:
        """Jasmin's ``ROOT_PATH``: it reads ``etc/jasmin/`` and logs to ``var/log/jasmin/`` below it."""
        return self.state / "jasmin"

    @property
    def amqp_spec(self) -> Path:
        return self.jasmin_root / "amqp0-9-1.xml"

    @property
    def etc(self) -> Path:
        return self.jasmin_root / "etc" / "jasmin"

    @property
    def config_file(self) -> Path:
        return self.etc / "jasmin.cfg"

    @property
    def store(self) -> Path:
        return self.etc / "store"

    @property
    def jasmin_logs(self) -> Path:
        return self.jasmin_root / "var" / "log" / "jasmin"

    @property
    def run(self) -> Path:
        """PID records of the processes this tool started."""
        return self.state / "run"

    @property
    def results(self) -> Path:
        return self.root / "results" / "realstack"

    @property
    def jasmind_log(self) -> Path:
        return self.results / "jasmin.log"

    @property
    def wrapper(self) -> Path:
        return Path(__file__).with_name("nodelay.py")


@dataclass(frozen=True)
class JasminSettings:
    """The ports and peers of jasmind; every listener binds to ``host`` (loopback)."""

    host: str = "127.0.0.1"
    smpp_port: int = 2775
    http_port: int = 1401
    jcli_port: int = 8990
    router_pb_port: int = 8988
    client_manager_pb_port: int = 8989
    smpp_server_pb_port: int = 14000
    jcli_username: str = "jcliadmin"
    jcli_password: str = "jclipwd"
    amqp_host: str = "127.0.0.1"
    amqp_port: int = 5672
    amqp_vhost: str = "/"
    amqp_username: str = "guest"
    amqp_password: str = "guest"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    dlr_lookup_retry_delay: int = 1
    dlr_lookup_max_retries: int = 5
    dlr_pdu: str = "deliver_sm"
    submit_retrial_delay_not_ready: int = 3
    log_level: str = "INFO"

    def validate(self) -> JasminSettings:
        for name in (
            "smpp_port",
            "http_port",
            "jcli_port",
            "router_pb_port",
            "client_manager_pb_port",
            "smpp_server_pb_port",
            "amqp_port",
            "redis_port",
        ):
            _check_port(name, getattr(self, name))
        ports = [
            self.smpp_port,
            self.http_port,
            self.jcli_port,
            self.router_pb_port,
            self.client_manager_pb_port,
            self.smpp_server_pb_port,
        ]
        if len(set(ports)) != len(ports):
            raise RealStackError(f"Jasmin's ports must differ from each other, got {ports}.")
        if self.dlr_pdu not in ("deliver_sm", "data_sm"):
            raise RealStackError(f"dlr_pdu must be 'deliver_sm' or 'data_sm', got '{self.dlr_pdu}'.")
        if self.dlr_lookup_retry_delay < 1:
            raise RealStackError(f"dlr_lookup_retry_delay must be at least 1 s, got {self.dlr_lookup_retry_delay}.")
        return self


@dataclass(frozen=True)
class Account:
    """A customer of the gateway: a Jasmin user whose username is the SMPP system_id (and HTTP username)."""

    system_id: str
    password: str
    numbers: str | None = None  # MO SMS to numbers starting with this reach this account
    throughput: float | None = None  # msg/s over SMPP and HTTP before ESME_RTHROTTLED; None: unlimited
    uid: str | None = None  # Jasmin's user id; the system_id when not given

    @property
    def user_id(self) -> str:
        return self.uid or self.system_id

    def validate(self) -> Account:
        _check_id("system_id", self.system_id, 15, minimum=3)
        _check_id("uid", self.user_id, 16)
        _check_secret(f"password of '{self.system_id}'", self.password, 16)
        if self.numbers is not None and not self.numbers.isdigit():
            raise RealStackError(
                f"numbers of '{self.system_id}' must be digits (a number prefix), got '{self.numbers}'."
            )
        if self.throughput is not None and self.throughput <= 0:
            raise RealStackError(f"throughput of '{self.system_id}' must be above 0 msg/s, got {self.throughput}.")
        return self


@dataclass(frozen=True)
class GatewaySettings:
    """What `configure` provisions through jCli: customers, carrier connectors and routes.

    MT: default route to ``connector``; with ``outage_port`` and ``outage_prefix``, destinations starting with
    the prefix go to a second connector (``outage_connector``). MO: default route to the first account; an
    account with ``numbers`` gets MO for destinations starting with them.
    """

    group: str = "customers"
    accounts: tuple[Account, ...] = (Account("customer1", "cust-pw1"),)
    connector: str = "carrier"
    carrier_host: str = "127.0.0.1"
    carrier_port: int = 2776
    carrier_username: str = "jasmin"
    carrier_password: str = "carr-pw1"
    outage_connector: str = "outage"
    outage_port: int | None = None
    outage_prefix: str | None = None
    submit_throughput: int = 0
    reconnect_delay: int = 2
    dlr_expiry: int = 3600

    def validate(self) -> GatewaySettings:
        _check_id("group", self.group, 16)
        if not self.accounts:
            raise RealStackError("At least one customer account is needed (SMPP_ACCOUNTS or --username/--password).")
        for account in self.accounts:
            account.validate()
        ids = [account.system_id for account in self.accounts]
        if len(set(ids)) != len(ids):
            raise RealStackError(f"Customer system_ids must differ, got {ids}.")
        _check_id("connector", self.connector, 25, minimum=3)
        _check_id("outage_connector", self.outage_connector, 25, minimum=3)
        _check_id("carrier_username", self.carrier_username, 15)
        _check_secret("carrier_password", self.carrier_password, 16)
        _check_port("carrier_port", self.carrier_port)
        if (self.outage_port is None) != (self.outage_prefix is None):
            raise RealStackError("An outage carrier needs both its port and its number prefix (SMS_OUTAGE_PREFIX).")
        if self.outage_port is not None:
            _check_port("outage_port", self.outage_port)
        if self.outage_prefix is not None and not self.outage_prefix.isdigit():
            raise RealStackError(f"The outage prefix must be digits, got '{self.outage_prefix}'.")
        if self.submit_throughput < 0:
            raise RealStackError(f"submit_throughput must be 0 (unlimited) or more, got {self.submit_throughput}.")
        if self.reconnect_delay < 1 or self.dlr_expiry < 1:
            raise RealStackError("reconnect_delay and dlr_expiry must be at least 1 s.")
        return self


def _check_port(name: str, value: int) -> None:
    if not 0 < value < 65536:
        raise RealStackError(f"{name} must be a TCP port (1-65535), got {value}.")


def _check_id(name: str, value: str, maximum: int, *, minimum: int = 1) -> None:
    if not (minimum <= len(value) <= maximum and _ID.match(value)):
        raise RealStackError(
            f"{name} '{value}' is not valid for Jasmin: use {minimum}-{maximum} letters, digits, '_' or '-'."
        )


def _check_secret(name: str, value: str, maximum: int) -> None:
    if not 0 < len(value) <= maximum or any(ch.isspace() for ch in value) or not value.isascii():
        raise RealStackError(f"{name} must be 1-{maximum} ASCII characters without spaces (Jasmin's limit).")


# Keys of the variables file (variables/realstack.yaml): the suites' own keys (SMPP_PORT, SMS_HTTP_URL,
# SMPP_ACCOUNTS, SMPP_THROTTLED_*, SMS_OUTAGE_PREFIX), the lab's keys for the carrier simulators it runs
# (LAB_CARRIER_*: Jasmin binds to them) and REALSTACK_JASMIN_* keys that only this tool reads.
JASMIN_VARIABLES = {
    "SMPP_PORT": "smpp_port",
    "REALSTACK_JASMIN_JCLI_PORT": "jcli_port",
    "REALSTACK_JASMIN_AMQP_PORT": "amqp_port",
    "REALSTACK_JASMIN_REDIS_PORT": "redis_port",
}
GATEWAY_VARIABLES = {
    "LAB_CARRIER_SMPP_PORT": "carrier_port",
    "LAB_CARRIER_SYSTEM_ID": "carrier_username",
    "LAB_CARRIER_PASSWORD": "carrier_password",
    "LAB_OUTAGE_CARRIER_SMPP_PORT": "outage_port",
    "SMS_OUTAGE_PREFIX": "outage_prefix",
}


def from_variables(variables: Mapping[str, Any]) -> tuple[JasminSettings, GatewaySettings]:
    """Settings from a variables file's mapping; keys it does not have keep their defaults."""
    jasmin: dict[str, Any] = {name: variables[key] for key, name in JASMIN_VARIABLES.items() if key in variables}
    gateway: dict[str, Any] = {name: variables[key] for key, name in GATEWAY_VARIABLES.items() if key in variables}
    if "SMS_HTTP_URL" in variables:
        url = urlsplit(str(variables["SMS_HTTP_URL"]))
        if url.port is None:
            raise RealStackError(f"SMS_HTTP_URL '{url.geturl()}' must name a port, e.g. http://127.0.0.1:1401.")
        jasmin["http_port"] = url.port
    settings = coerce(GatewaySettings(), gateway)
    accounts = list(settings.accounts)
    if "SMPP_ACCOUNTS" in variables:
        accounts = [_account(entry) for entry in variables["SMPP_ACCOUNTS"] or []]
    if variables.get("LAB_APPS_SMPP_ACCOUNT"):  # the platform's own account (platform API, voice apps)
        accounts.append(_account(variables["LAB_APPS_SMPP_ACCOUNT"]))
    if "SMPP_THROTTLED_SYSTEM_ID" in variables:
        accounts.append(
            Account(
                system_id=str(variables["SMPP_THROTTLED_SYSTEM_ID"]),
                password=str(variables.get("SMPP_THROTTLED_PASSWORD", "")),
                throughput=float(variables.get("SMPP_THROTTLED_RATE", 1)),
            )
        )
    return coerce(JasminSettings(), jasmin), replace(settings, accounts=tuple(accounts))


def _account(entry: Any) -> Account:
    if not isinstance(entry, Mapping) or "system_id" not in entry or "password" not in entry:
        raise RealStackError(f"Each SMPP_ACCOUNTS entry needs system_id and password, got {entry!r}.")
    numbers = entry.get("numbers")
    return Account(str(entry["system_id"]), str(entry["password"]), str(numbers) if numbers is not None else None)


def coerce(settings: _S, changes: Mapping[str, Any]) -> _S:
    """`settings` with `changes` applied, each converted to the field's type (``None`` values skipped)."""
    types = {field.name: field.type for field in fields(settings)}
    converted: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name not in types:
            raise RealStackError(f"Unknown setting '{name}'.")
        try:
            converted[name] = int(value) if types[name] in ("int", "int | None") else str(value)
        except ValueError as error:
            raise RealStackError(f"Setting '{name}' must be a number, got '{value}'.") from error
    return replace(settings, **converted)


def render_config(settings: JasminSettings, paths: Paths, template: str | None = None) -> str:
    """jasmin.cfg from the template in this package, with ports, credentials and paths filled in."""
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    values = {field.name: str(getattr(settings, field.name)) for field in fields(settings)}
    values["jcli_password_md5"] = hashlib.md5(settings.jcli_password.encode("ascii")).hexdigest()
    values["amqp_spec"] = str(paths.amqp_spec)
    values["store_path"] = str(paths.store)
    values["log_path"] = str(paths.jasmin_logs)
    values.pop("jcli_password")
    try:
        return string.Template(text).substitute(values)
    except (KeyError, ValueError) as error:
        raise RealStackError(f"The jasmin.cfg template has an unknown placeholder: {error}.") from error


def write_config(settings: JasminSettings, paths: Paths) -> Path:
    """Render jasmin.cfg into ``.realstack/jasmin/etc/jasmin/`` and create the folders Jasmin writes to."""
    for folder in (paths.etc, paths.store, paths.jasmin_logs, paths.results, paths.run):
        folder.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(render_config(settings, paths), encoding="utf-8")
    return paths.config_file
