"""The state SipLoadLibrary's components share: the SIPp instances by alias, defaults, where files go."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from robot.api import logger

from SipLoadLibrary.errors import SippError, SippTargetError
from SipLoadLibrary.process import SippProcess, SippSpec, free_udp_port, target_refuses, udp_port_taken


class SippContext:
    """Shared by every keyword component. Only the keyword thread touches it."""

    def __init__(
        self,
        *,
        sipp: str,
        host: str,
        timeout: timedelta,
        output_dir: str | None,
        max_lifetime: timedelta,
    ) -> None:
        self.sipp_setting = sipp
        self.host = host
        self.timeout = timeout
        self.output_dir_setting = output_dir
        self.max_lifetime = max_lifetime
        self.instances: dict[str, SippProcess] = {}
        self.last_alias: str | None = None
        self._numbers = itertools.count(1)
        self._roles: dict[str, itertools.count[int]] = {}

    # --- settings ------------------------------------------------------------------------------------------

    def sipp(self) -> str:
        found = shutil.which(self.sipp_setting)
        if found is None:
            raise SippError(
                f"SIPp ('{self.sipp_setting}') is not installed or not on PATH: install it (Debian: "
                "`apt-get install sip-tester`) or give the library's sipp= import argument."
            )
        return found

    def seconds(self, timeout: timedelta | None) -> float:
        value = self.timeout if timeout is None else timeout
        return max(0.0, value.total_seconds())

    def output_dir(self) -> Path:
        """Where instance folders go: ``output_dir``, else ``${OUTPUT DIR}/sipp`` in a Robot run, else a temp dir."""
        if self.output_dir_setting:
            return Path(self.output_dir_setting)
        try:
            from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

            try:
                return Path(BuiltIn().get_variable_value("${OUTPUT DIR}")) / "sipp"
            except RobotNotRunningError:
                pass
        except ImportError:  # pragma: no cover - Robot is a dependency
            pass
        return Path(tempfile.gettempdir()) / "sipp"

    # --- instances -----------------------------------------------------------------------------------------

    def new_alias(self, role: str, alias: str | None) -> str:
        if alias is None:
            numbers = self._roles.setdefault(role, itertools.count(1))
            while True:
                alias = f"{role}{next(numbers)}"
                if alias not in self.instances:
                    break
        current = self.instances.get(alias)
        if current is not None and current.running():
            raise ValueError(f"SIPp '{alias}' is still running; stop it first or choose another alias.")
        return alias

    def ports(self, port: int | None) -> tuple[int, int, int]:
        """(SIP port, control port, media port) for a new instance: given or free ones, never in use."""
        taken = {p for instance in self.instances.values() for p in _ports(instance)}
        if port is None:
            port = free_udp_port(self.host, exclude=taken)
        elif not 0 < port < 65536:
            raise ValueError(f"port must be 1-65535, got {port}.")
        elif udp_port_taken(self.host, port) or port in taken:
            raise ValueError(
                f"UDP port {self.host}:{port} is already in use (`ss -lunp 'sport = :{port}'` shows by what); "
                "give another port or none for a free one."
            )
        control = free_udp_port("0.0.0.0", exclude=taken | {port})
        media = free_udp_port(self.host, exclude=taken | {port, control}, span=4, even=True)
        return port, control, media

    def start(self, spec: SippSpec) -> SippProcess:
        folder = self.output_dir() / f"{spec.alias}-{time.strftime('%H%M%S')}-{next(self._numbers)}"
        instance = SippProcess(spec, folder, self.sipp())
        logger.info(f"Starting SIPp '{spec.alias}' ({spec.role}) in {folder}: {spec.masked(instance.sipp)}")
        self.instances[spec.alias] = instance
        self.last_alias = spec.alias
        instance.start()
        logger.info(f"SIPp '{spec.alias}' runs (pid {instance.pid}) on UDP {instance.address}.")
        return instance

    def get(self, alias: str | None) -> SippProcess:
        if alias is None:
            if self.last_alias is None:
                raise SippError("No SIPp instance was started yet. Start one with `Start SIPp UAS` or `Run SIPp UAC`.")
            alias = self.last_alias
        try:
            return self.instances[alias]
        except KeyError:
            known = ", ".join(
                f"'{a}' ({i.spec.role}, {'running' if i.running() else 'ended'})" for a, i in self.instances.items()
            )
            raise SippError(f"No SIPp instance has alias '{alias}'. Known: {known or 'none'}.") from None

    def check_target(self, target: str) -> tuple[str, int]:
        host, _, port_text = target.rpartition(":")
        if not host or not port_text.isdigit():
            raise ValueError(f"target must be host:port, e.g. 127.0.0.1:5060, got '{target}'.")
        port = int(port_text)
        try:
            address = socket.gethostbyname(host)
        except OSError as error:
            raise SippTargetError(f"Cannot resolve the SIP target host '{host}': {error}.") from None
        if target_refuses(address, port):
            raise SippTargetError(
                f"Nothing listens on UDP {target} (the host answered 'port unreachable'): start the proxy or "
                "UAS first, or check the target's port."
            )
        return address, port

    def stop_all(self, grace: float) -> list[str]:
        """Kill every instance that still runs (control-port 'q' first when ``grace`` > 0); what happened, per alias."""
        said = []
        running = [instance for instance in self.instances.values() if instance.running()]
        if grace > 0:
            for instance in running:
                with contextlib.suppress(OSError):
                    instance.control("q")
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(instance.running() for instance in running):
                time.sleep(0.05)
        for instance in running:
            if instance.running():
                instance.kill()
                said.append(f"'{instance.alias}' (pid {instance.pid}) killed")
            else:
                instance.stopped_by = instance.stopped_by or "stopped"
                said.append(f"'{instance.alias}' (pid {instance.pid}) stopped")
        left = [instance for instance in running if instance.alive()]
        if left:
            raise SippError(f"SIPp {', '.join(i.alias for i in left)} survived SIGKILL (pids {[i.pid for i in left]}).")
        return said


def _ports(instance: SippProcess) -> list[int]:
    spec = instance.spec
    return [spec.port, spec.control_port, *range(spec.media_port, spec.media_port + 4)]
