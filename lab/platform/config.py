"""The platform API's configuration: one JSON file (mode 600, it holds the SMS gateway password).

Required keys::

    {"host": "127.0.0.1", "port": 18090, "database": "sqlite:////abs/results/lab/platform.db",
     "sms": {"http_url": "http://127.0.0.1:11401", "username": "apps", "password": "..."},
     "voice_rpc": ["http://127.0.0.1:15061/RPC", "http://127.0.0.1:15063/RPC"],
     "cdr_database": "sqlite:////abs/results/lab/billing.db", "webhook_timeout": 5}

``database`` and ``cdr_database`` are SQLAlchemy URLs (``sqlite:///`` or ``postgresql+psycopg2://``); a relative
SQLite path is taken from the current directory. ``voice_rpc`` lists the SIP proxies' JSON-RPC endpoints
(Kamailio's ``jsonrpcs`` over ``xhttp``); every provisioning change is pushed to all of them. Optional keys and
their defaults are in `Tuning`. Passwords are kept out of every ``repr``.
"""

from __future__ import annotations

import json
import logging
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("lab.platform")

REQUIRED = ("host", "port", "database", "sms", "voice_rpc", "cdr_database")


class ConfigError(ValueError):
    """The configuration file is missing, unreadable, or has a value the platform cannot use."""


@dataclass(frozen=True)
class SmsGateway:
    """The SMS gateway's HTTP API (Jasmin's ``/send``) and the platform's account there."""

    http_url: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Tuning:
    """Optional top-level keys of the file (seconds unless said otherwise)."""

    webhook_timeout: float = 5.0  # connect/read timeout of one webhook call
    webhook_max_attempts: int = 6  # tries of one webhook delivery before it is given up
    webhook_retry_delay: float = 1.0  # pause before the second try; it doubles after each failure
    rpc_timeout: float = 3.0  # one JSON-RPC call to a SIP proxy
    sms_timeout: float = 5.0  # one call to the SMS gateway's /send
    cdr_poll_interval: float = 1.0  # how often new CDR rows are looked for
    campaign_tick: float = 0.05  # how often the campaign sender looks for due recipients
    onboarding_code_ttl: float = 600.0  # how long an onboarding verification code is valid
    onboarding_sender: str = "Platform"  # the SMS sender of verification codes
    sip_domain: str = "127.0.0.1"  # the domain of the SIP URIs pushed to the proxies' ``routes`` table
    public_url: str = ""  # where the SMS gateway reaches this service (dlr-url); default http://host:port


@dataclass(frozen=True)
class PlatformConfig:
    host: str
    port: int
    database: str
    sms: SmsGateway
    voice_rpc: list[str]
    cdr_database: str
    tuning: Tuning = field(default_factory=Tuning)

    @property
    def public_url(self) -> str:
        """The base URL the SMS gateway's DLR callbacks go to (``public_url``, else ``http://host:port``)."""
        return (self.tuning.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def load(path: str | Path) -> PlatformConfig:
    """Read and check the configuration file; warn when others may read it (it holds a password)."""
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


def parse(data: Any, source: str = "the configuration") -> PlatformConfig:
    """Build a `PlatformConfig` from the decoded JSON ``data``; ``source`` names it in error messages."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a JSON object.")
    missing = [key for key in REQUIRED if data.get(key) in (None, "", [])]
    if missing:
        raise ConfigError(f"{source} lacks {', '.join(missing)}; see lab/platform/config.py for the keys.")
    sms = data["sms"]
    if not isinstance(sms, dict) or any(not str(sms.get(key) or "") for key in ("http_url", "username", "password")):
        raise ConfigError(f"{source}: 'sms' must have http_url, username and password.")
    _http_url(str(sms["http_url"]), "sms.http_url", source)
    voice = data["voice_rpc"]
    if isinstance(voice, str):
        voice = [voice]
    if not isinstance(voice, list) or not voice:
        raise ConfigError(f"{source}: 'voice_rpc' must be a list of JSON-RPC URLs.")
    for url in voice:
        _http_url(str(url), "voice_rpc", source)
    try:
        port = int(data["port"])
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: 'port' must be a number, got {data['port']!r}.") from None
    return PlatformConfig(
        host=str(data["host"]),
        port=port,
        database=str(data["database"]),
        sms=SmsGateway(str(sms["http_url"]).rstrip("/"), str(sms["username"]), str(sms["password"])),
        voice_rpc=[str(url) for url in voice],
        cdr_database=str(data["cdr_database"]),
        tuning=_tuning(data, source),
    )


def _tuning(data: dict[str, Any], source: str) -> Tuning:
    values: dict[str, Any] = {}
    for item in fields(Tuning):
        if item.name not in data:
            continue
        raw = data[item.name]
        kind = type(getattr(Tuning(), item.name))
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: '{item.name}' must be a {kind.__name__}, got {raw!r}.") from None
        if isinstance(value, int | float) and value <= 0:
            raise ConfigError(f"{source}: '{item.name}' must be positive, got {raw!r}.")
        values[item.name] = value
    if values.get("public_url"):
        _http_url(values["public_url"], "public_url", source)
    return Tuning(**values)


def _http_url(url: str, key: str, source: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source}: '{key}' must be an http:// URL with a host, got '{url}'.")
