"""The application server's configuration: one JSON file written by the lab (mode 600: it holds the SMPP password).

Keys (``*`` required; times in seconds)::

    sip*            {"host": "127.0.0.1", "port": 15100, "proxy": "sip:127.0.0.1:15060", "domain": optional}
                    the UDP address the services listen on (``sip:<service>@host:port``) and the proxy that
                    outgoing calls (callback, queue agents) go through. ``domain`` (default: the proxy's
                    host:port) is the host part of the users' URIs; when it is not the proxy's address the
                    proxy becomes the outbound proxy (a Route header).
    smpp*           {"host", "port", "system_id", "password", "short_code"}: the transceiver bind to the SMS
                    gateway; SMS leave from ``short_code`` and MO keywords are taken when sent to it.
    subscribers*    {"1001": "254700001001", ...}: SIP user -> MSISDN, both ways.
    recordings*     directory of the voicemail recordings ``<call-id>.wav`` (created if missing).
    http_port*      GET /health, /events, /calls on the SIP host (0: a free port, logged).
    forwarding_rpc  Kamailio-style JSON-RPC URL (``htable.sets``/``htable.delete`` on table ``fwd``);
                    absent: "FWD" keywords are answered with an SMS saying forwarding is unavailable.
    queues          {"sales": ["2001"], "support": ["2002", "2003"]}: call queues and their agents (SIP users).
    ivr             {"menu": {"1": "sales", "2": "support"}, "operator": "1000"}: the IVR's keys -> queues;
                    ``0`` reaches ``operator`` (a SIP user) when it is set.
    twofa_digits    length of the 2FA code (default 4, 4..10)
    twofa_timeout   seconds to enter it (default 20)
    voicemail_max_seconds    recording limit (default 60)
    callback_ring_timeout    a call-back that is not answered within this is cancelled (default 30)
    agent_ring_timeout       a queue agent who does not answer within this is skipped (default 15)
    agent_retry_delay        an agent who did not answer is not rung again for this long (default 5)
    queue_max_wait           a caller waiting longer is told so and hung up (default 600)
    ivr_timeout              seconds to wait for a menu key (default 10; the menu is played twice)
    smpp_reconnect_max       upper bound of the SMPP reconnect back-off (default 5)
    smpp_response_timeout    for a bind_resp, submit_sm_resp or enquire_link_resp (default 10)
    smpp_enquire_link_interval    idle time before an enquire_link (default 30)
    rpc_timeout              of a JSON-RPC request (default 5)
"""

from __future__ import annotations

import json
import logging
import re
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger("lab.voiceapps")

SERVICES = ("voicemail", "callback", "twofa", "ivr", "queue")
REQUIRED = ("sip", "smpp", "subscribers", "recordings", "http_port")
OPTIONAL = ("forwarding_rpc", "queues", "ivr")
USER = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
URI = re.compile(r"^sips?:(?:(?P<user>[^@;>]+)@)?(?P<host>\[[^\]]+\]|[^:;>]+)(?::(?P<port>\d+))?(?P<params>;[^>]*)?$")


class ConfigError(ValueError):
    """The configuration file is missing, unreadable, or has a value the server cannot use."""


@dataclass(frozen=True)
class SipSettings:
    host: str
    port: int
    proxy: str  # a SIP URI without user, e.g. sip:127.0.0.1:15060
    proxy_address: str  # host:port of the proxy
    domain: str  # host[:port] of the users' URIs

    @property
    def outbound_proxy(self) -> str | None:
        """The proxy as a loose route when the users' domain is not the proxy's own address."""
        return None if self.domain == self.proxy_address else self.proxy

    def user_uri(self, user: str) -> str:
        return f"sip:{user}@{self.domain}"

    def service_uri(self, service: str) -> str:
        return f"sip:{service}@{self.host}:{self.port}"


@dataclass(frozen=True)
class SmppSettings:
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    short_code: str = ""


@dataclass(frozen=True)
class Settings:
    """Optional top-level tuning keys and their defaults."""

    twofa_digits: int = 4
    twofa_timeout: float = 20.0
    voicemail_max_seconds: float = 60.0
    callback_ring_timeout: float = 30.0
    agent_ring_timeout: float = 15.0
    agent_retry_delay: float = 5.0
    queue_max_wait: float = 600.0
    ivr_timeout: float = 10.0
    smpp_reconnect_max: float = 5.0
    smpp_response_timeout: float = 10.0
    smpp_enquire_link_interval: float = 30.0
    rpc_timeout: float = 5.0


INTEGER_SETTINGS = frozenset({"twofa_digits"})


@dataclass(frozen=True)
class IvrSettings:
    menu: dict[str, str] = field(default_factory=dict)  # key -> queue
    operator: str | None = None


@dataclass(frozen=True)
class AppConfig:
    sip: SipSettings
    smpp: SmppSettings
    subscribers: dict[str, str]  # user -> MSISDN
    recordings: Path
    http_port: int
    forwarding_rpc: str | None = None
    queues: dict[str, list[str]] = field(default_factory=dict)
    ivr: IvrSettings = field(default_factory=IvrSettings)
    settings: Settings = field(default_factory=Settings)

    def msisdn_of(self, user: str) -> str | None:
        """The MSISDN of a SIP user; a caller that already presents a subscriber's MSISDN keeps it."""
        if user in self.subscribers:
            return self.subscribers[user]
        number = user.lstrip("+")
        return number if number in self.subscribers.values() else None

    def user_of(self, msisdn: str) -> str | None:
        """The SIP user of an MSISDN (``+`` and a leading ``00`` ignored)."""
        number = msisdn.strip().lstrip("+")
        if number.startswith("00"):
            number = number[2:]
        for user, value in self.subscribers.items():
            if value.lstrip("+") == number:
                return user
        return None

    def number_for_display(self, user: str) -> str:
        """How a caller is named in an SMS: the MSISDN when the user is a subscriber, else the user as is."""
        return self.msisdn_of(user) or user


def load(path: str | Path) -> AppConfig:
    file = Path(path)
    try:
        mode = file.stat().st_mode
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Configuration file '{file}' does not exist.") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read configuration file '{file}': {error}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("configuration file %s holds a password but is readable by others (chmod 600 it)", file)
    return parse(data, str(file))


def parse(data: Any, source: str = "configuration") -> AppConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object.")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{source} lacks {', '.join(missing)}.")
    tuning = {item.name for item in fields(Settings)}
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL) - tuning)
    if unknown:
        log.warning("%s: ignoring unknown key(s) %s", source, ", ".join(unknown))
    given: dict[str, Any] = {}
    for key in tuning & set(data):
        value = _number(data[key], key, source)
        given[key] = int(value) if key in INTEGER_SETTINGS else float(value)
    settings = Settings(**given)
    if not 4 <= settings.twofa_digits <= 10:
        raise ConfigError(f"{source}: twofa_digits must be 4 to 10, got {settings.twofa_digits}.")
    subscribers = _subscribers(data["subscribers"], source)
    queues = _queues(data.get("queues", {}), source)
    rpc = data.get("forwarding_rpc")
    if rpc is not None and (not isinstance(rpc, str) or not rpc.startswith(("http://", "https://"))):
        raise ConfigError(f"{source}: forwarding_rpc must be an http:// URL such as http://127.0.0.1:15061/RPC.")
    return AppConfig(
        sip=_sip(data["sip"], source),
        smpp=_smpp(data["smpp"], source),
        subscribers=subscribers,
        recordings=Path(_text(data["recordings"], "recordings", source)).expanduser(),
        http_port=_port(data["http_port"], "http_port", source),
        forwarding_rpc=rpc or None,
        queues=queues,
        ivr=_ivr(data.get("ivr"), queues, source),
        settings=settings,
    )


def _sip(value: Any, source: str) -> SipSettings:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: sip must be an object with host, port and proxy.")
    absent = [key for key in ("host", "port", "proxy") if key not in value]
    if absent:
        raise ConfigError(f"{source}: sip lacks {', '.join(absent)}.")
    proxy = _text(value["proxy"], "sip.proxy", source)
    match = URI.match(proxy)
    if match is None or match.group("user"):
        raise ConfigError(
            f"{source}: sip.proxy must be a SIP URI without a user, e.g. sip:127.0.0.1:15060, not {proxy!r}."
        )
    address = f"{match.group('host')}:{match.group('port') or 5060}"
    domain = value.get("domain")
    if domain is not None:
        domain = _text(domain, "sip.domain", source)
        if "@" in domain or domain.startswith("sip:"):
            raise ConfigError(f"{source}: sip.domain is a host[:port] such as lab.example, not {domain!r}.")
    return SipSettings(
        host=_text(value["host"], "sip.host", source),
        port=_port(value["port"], "sip.port", source),
        proxy=f"sip:{address}",
        proxy_address=address,
        domain=domain or address,
    )


def _smpp(value: Any, source: str) -> SmppSettings:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: smpp must be an object with host, port, system_id, password, short_code.")
    absent = [key for key in ("host", "port", "system_id", "password", "short_code") if key not in value]
    if absent:
        raise ConfigError(f"{source}: smpp lacks {', '.join(absent)}.")
    system_id = _text(value["system_id"], "smpp.system_id", source)
    if len(system_id) > 15:
        raise ConfigError(f"{source}: smpp.system_id '{system_id}' is longer than SMPP's 15 characters.")
    password = value["password"]
    if not isinstance(password, str) or not 1 <= len(password) <= 8:
        raise ConfigError(f"{source}: smpp.password must be 1 to 8 characters (SMPP 3.4).")
    short_code = _text(str(value["short_code"]), "smpp.short_code", source)
    if not short_code.isdigit():
        raise ConfigError(f"{source}: smpp.short_code must be digits, not {short_code!r}.")
    return SmppSettings(
        host=_text(value["host"], "smpp.host", source),
        port=_port(value["port"], "smpp.port", source, allow_zero=False),
        system_id=system_id,
        password=password,
        short_code=short_code,
    )


def _subscribers(value: Any, source: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{source}: subscribers must be a non-empty object of SIP user to MSISDN.")
    subscribers: dict[str, str] = {}
    for user, number in value.items():
        if not USER.match(str(user)):
            raise ConfigError(f"{source}: subscriber '{user}' is not a SIP user name (letters, digits, _.+-).")
        if not isinstance(number, str | int) or not NUMBER.match(str(number)):
            raise ConfigError(f"{source}: subscribers.{user} must be an MSISDN of digits, not {number!r}.")
        subscribers[str(user)] = str(number).lstrip("+")
    if len(set(subscribers.values())) != len(subscribers):
        raise ConfigError(f"{source}: two subscribers share an MSISDN; each MSISDN must name one SIP user.")
    return subscribers


def _queues(value: Any, source: str) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ConfigError(f'{source}: queues must be an object such as {{"sales": ["2001"]}}.')
    queues: dict[str, list[str]] = {}
    for name, agents in value.items():
        if not USER.match(str(name)):
            raise ConfigError(f"{source}: queue name '{name}' must be letters, digits or _.+-.")
        if not isinstance(agents, list) or not agents or not all(USER.match(str(agent)) for agent in agents):
            raise ConfigError(f"{source}: queues.{name} must be a non-empty list of agent SIP users.")
        queues[str(name)] = [str(agent) for agent in agents]
    return queues


def _ivr(value: Any, queues: dict[str, list[str]], source: str) -> IvrSettings:
    if value is None:
        return IvrSettings(menu={key: name for key, name in (("1", "sales"), ("2", "support")) if name in queues})
    if not isinstance(value, dict):
        raise ConfigError(f'{source}: ivr must be an object such as {{"menu": {{"1": "sales"}}, "operator": "1000"}}.')
    menu_value = value.get("menu", {})
    if not isinstance(menu_value, dict):
        raise ConfigError(f"{source}: ivr.menu must be an object of key to queue name.")
    menu: dict[str, str] = {}
    for key, name in menu_value.items():
        if str(key) not in "123456789*#" or len(str(key)) != 1:
            raise ConfigError(f"{source}: ivr.menu key '{key}' must be one of 1-9, * or # (0 is the operator).")
        if name not in queues:
            raise ConfigError(f"{source}: ivr.menu.{key} names queue '{name}', which is not in queues.")
        menu[str(key)] = str(name)
    operator = value.get("operator")
    if operator is not None and not USER.match(str(operator)):
        raise ConfigError(f"{source}: ivr.operator must be a SIP user, not {operator!r}.")
    return IvrSettings(menu=menu, operator=str(operator) if operator is not None else None)


def _text(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: {key} must be a non-empty string.")
    return value.strip()


def _port(value: Any, key: str, source: str, *, allow_zero: bool = True) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not (0 if allow_zero else 1) <= value <= 65535:
        raise ConfigError(f"{source}: {key} must be a port number, got {value!r}.")
    return value


def _number(value: Any, key: str, source: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}.")
    if value <= 0:
        raise ConfigError(f"{source}: {key} must be more than 0, got {value}.")
    return value
