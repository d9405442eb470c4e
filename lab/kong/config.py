"""The node's configuration: one JSON file written by the lab (mode 600, as it holds the admin token).

Keys: ``admin_port``, ``proxy_port`` and ``database`` (a SQLAlchemy URL; both nodes of a pair name the same one)
are required; ``admin_host`` (default ``127.0.0.1``), ``proxy_host`` (default: ``admin_host``), ``admin_token``
(the ``Kong-Admin-Token`` every Admin API call but ``GET /status`` must carry; null or absent: no token needed)
and ``node`` (the node's name, ``hostname`` in ``GET /``; default ``kong``) are optional. The stand-in listens
on loopback addresses only. The token is kept out of every ``repr``.
"""

from __future__ import annotations

import json
import logging
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("lab.kong")
REQUIRED = ("admin_port", "proxy_port", "database")
OPTIONAL = ("admin_host", "proxy_host", "admin_token", "node")


class ConfigError(ValueError):
    """The configuration file is missing, unreadable, or has a value the stand-in cannot use."""


@dataclass(frozen=True)
class KongConfig:
    admin_host: str
    admin_port: int
    proxy_host: str
    proxy_port: int
    database: str = field(repr=False)
    admin_token: str | None = field(default=None, repr=False)
    node: str = "kong"

    @property
    def node_id(self) -> str:
        """Stable across restarts: derived from the node's name and ports."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lab-kong://{self.node}/{self.admin_port}/{self.proxy_port}"))


def load(path: str | Path) -> KongConfig:
    file = Path(path)
    try:
        mode = file.stat().st_mode
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Configuration file '{file}' does not exist.") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read configuration file '{file}': {error}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("configuration file %s holds the admin token but is readable by others (chmod 600 it)", file)
    return parse(data, str(file))


def parse(data: Any, source: str = "configuration") -> KongConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object.")
    missing = [key for key in REQUIRED if data.get(key) in (None, "")]
    if missing:
        raise ConfigError(f"{source} lacks {', '.join(missing)} (see lab/kong/config.py).")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        log.warning("%s: ignoring unknown key(s) %s", source, ", ".join(unknown))
    admin_host = _host(data.get("admin_host", "127.0.0.1"), "admin_host", source)
    proxy_host = _host(data.get("proxy_host", admin_host), "proxy_host", source)
    admin_port = _port(data["admin_port"], "admin_port", source)
    proxy_port = _port(data["proxy_port"], "proxy_port", source)
    if admin_port == proxy_port and admin_host == proxy_host:
        raise ConfigError(f"{source}: admin_port and proxy_port are both {admin_port}; give each its own port.")
    token = data.get("admin_token")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ConfigError(f"{source}: admin_token must be a non-empty string, or null for no token.")
    database = data["database"]
    if not isinstance(database, str):
        raise ConfigError(f"{source}: database must be a SQLAlchemy URL such as sqlite:////abs/path/kong.db.")
    node = data.get("node", "kong")
    if not isinstance(node, str) or not node:
        raise ConfigError(f"{source}: node must be a non-empty string such as 'kong-a'.")
    return KongConfig(
        admin_host=admin_host,
        admin_port=admin_port,
        proxy_host=proxy_host,
        proxy_port=proxy_port,
        database=database,
        admin_token=token,
        node=node,
    )


def _host(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str) or not (value.startswith("127.") or value in ("localhost", "::1")):
        raise ConfigError(f"{source}: {key} must be a loopback address such as 127.0.0.1, got {value!r}.")
    return value


def _port(value: Any, key: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(f"{source}: {key} must be a TCP port number (1-65535), got {value!r}.")
    return value
