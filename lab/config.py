"""The lab's configuration, read from a variables file (``variables/lab.yaml`` by default).

The lab takes its ports from the same entries the suites use (``BILLING_URL`` and so on), so one file
decides both where a stand-in listens and where the tests look for it.
"""

from __future__ import annotations

import os
import sys
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
    """One stand-in: its command, environment and readiness check."""

    name: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    health: HealthCheck = field(default_factory=HealthCheck)


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
    return LabConfig(
        variables_file=path,
        supervisor_host=supervisor_host,
        supervisor_port=supervisor_port,
        programs=[_billing(values, path)],
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
    )


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
