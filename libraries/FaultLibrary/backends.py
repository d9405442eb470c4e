"""Ways to stop and start a platform process. Today: supervisord's XML-RPC (the lab, or any supervisord)."""

from __future__ import annotations

import http.client
import os
import time
import xmlrpc.client
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from telco_common import TelcoError


class FaultError(TelcoError):
    """A process could not be stopped, killed or started as asked."""


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    state: str
    pid: int

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"


class Backend(Protocol):
    def info(self, name: str) -> ProcessInfo: ...
    def stop(self, name: str) -> None: ...
    def kill(self, name: str) -> int: ...
    def start(self, name: str) -> None: ...


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection


class SupervisorBackend:
    """supervisord's XML-RPC interface (``[inet_http_server]``): what the lab runs its stand-ins under."""

    def __init__(self, url: str, timeout: timedelta) -> None:
        self.url = url
        self.timeout = timeout

    def _rpc(self) -> Any:
        return xmlrpc.client.ServerProxy(self.url, transport=_TimeoutTransport(self.timeout.total_seconds()))

    def _call(self, what: str, name: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self._rpc().supervisor, method)(name, *args)
        except xmlrpc.client.Fault as fault:
            if "BAD_NAME" in fault.faultString:
                raise FaultError(
                    f"supervisord at {self.url} has no process '{name}'. Check the process name in the variables file."
                ) from None
            raise FaultError(f"Cannot {what} '{name}': supervisord answered {fault.faultString}.") from None
        except (OSError, http.client.HTTPException) as error:
            raise FaultError(
                f"Cannot {what} '{name}': supervisord at {self.url} does not answer ({error}). "
                "Is the lab up (make lab-up) and FAULT_URL right?"
            ) from None

    def info(self, name: str) -> ProcessInfo:
        row = self._call("read", name, "getProcessInfo")
        return ProcessInfo(name=name, state=str(row["statename"]), pid=int(row["pid"]))

    def stop(self, name: str) -> None:
        if self.info(name).running:
            self._call("stop", name, "stopProcess", True)

    def kill(self, name: str) -> int:
        before = self.info(name)
        if not before.running:
            raise FaultError(f"Process '{name}' is {before.state}, not running: there is nothing to kill.")
        self._call("kill", name, "signalProcess", "KILL")
        deadline = time.monotonic() + self.timeout.total_seconds()
        while time.monotonic() < deadline:
            if not _alive(before.pid) and not self.info(name).running:
                return before.pid
            time.sleep(0.05)
        raise FaultError(
            f"Process '{name}' (PID {before.pid}) was still running {self.timeout.total_seconds():g} s after SIGKILL."
        )

    def start(self, name: str) -> None:
        if not self.info(name).running:
            self._call("start", name, "startProcess", True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
