"""The relay's configuration: one JSON file written by the lab.

Keys (``*`` required)::

    host*           control and HTTP address, e.g. "127.0.0.1" (loopback only in the lab)
    control_port*   UDP port of the JSON control protocol the proxy talks to
    http_port*      TCP port of GET /health and GET /sessions
    port_min*       first media port (an even port; RTP takes even ports, RTCP the next odd one)
    port_max*       last media port
    media_address   address media sockets bind to and the proxy writes into SDP (default: host)
    idle_timeout    seconds without media or control traffic after which a session is deleted (default 60)
    name            label in logs and /health (default "rtprelay")
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED = ("host", "control_port", "http_port", "port_min", "port_max")
OPTIONAL = ("media_address", "idle_timeout", "name")


class ConfigError(ValueError):
    """The configuration file is missing, unreadable, or has a value the relay cannot use."""


@dataclass(frozen=True)
class RelayConfig:
    host: str
    control_port: int
    http_port: int
    port_min: int
    port_max: int
    media_address: str
    idle_timeout: float = 60.0
    name: str = "rtprelay"

    @property
    def port_pairs(self) -> int:
        """How many RTP/RTCP port pairs the range holds (a call takes two per media stream)."""
        first = self.port_min + (self.port_min % 2)
        return max(0, (self.port_max - first + 1) // 2)


def load(path: str | Path) -> RelayConfig:
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Configuration file '{file}' does not exist.") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read configuration file '{file}': {error}") from None
    return parse(data, str(file))


def parse(data: Any, source: str = "configuration") -> RelayConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object.")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{source} lacks {', '.join(missing)}.")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ConfigError(f"{source} has unknown key(s) {', '.join(unknown)}; known: {', '.join(REQUIRED + OPTIONAL)}.")
    host = _address(data["host"], "host", source)
    media = _address(data.get("media_address", host), "media_address", source)
    ports = {key: _port(data[key], key, source) for key in ("control_port", "http_port", "port_min", "port_max")}
    config = RelayConfig(
        host=host,
        media_address=media,
        idle_timeout=_positive(data.get("idle_timeout", 60.0), "idle_timeout", source),
        name=str(data.get("name", "rtprelay")),
        **ports,
    )
    if config.port_pairs < 2:
        raise ConfigError(
            f"{source}: port_min {config.port_min}..port_max {config.port_max} must hold at least two RTP/RTCP pairs."
        )
    return config


def _address(value: Any, key: str, source: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ConfigError(f"{source}: '{key}' must be an IP address such as 127.0.0.1, not {value!r}.") from None


def _port(value: Any, key: str, source: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ConfigError(f"{source}: '{key}' must be a port number 1..65535, not {value!r}.")
    return value


def _positive(value: Any, key: str, source: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{source}: '{key}' must be a positive number of seconds, not {value!r}.")
    return float(value)
