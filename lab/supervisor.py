"""Run the lab's stand-ins under supervisord and control them through its XML-RPC interface.

``supervisord`` (the well-kept process manager) owns every stand-in as its own OS process; this module
writes its configuration, starts it, waits for each stand-in's health check, and tears everything down
again — including processes left behind by a run that crashed.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from lab.config import ROOT, HealthCheck, LabConfig, Program

RUN_MARKER = "TELCO_LAB_RUN_DIR"


class LabError(RuntimeError):
    """The lab could not be brought to the state asked for; the message says what and where to look."""


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection


class Lab:
    """The lab's processes: ``up``, ``down``, ``status`` and per-program ``start``/``stop``/``kill``/``restart``."""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.run_dir = config.run_dir
        self.conf_file = self.run_dir / "supervisord.conf"
        self.pid_file = self.run_dir / "supervisord.pid"

    # -- life cycle --------------------------------------------------------------------------------
    def up(self, timeout: timedelta = timedelta(seconds=60)) -> list[dict[str, Any]]:
        """Start supervisord (unless it already runs) and every program; return once all are healthy."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_databases()
        self._write_program_files()
        marker = self.run_dir / "variables-file"
        if self._rpc_answers():
            running = marker.read_text(encoding="utf-8").strip() if marker.exists() else "an unknown variables file"
            if running != str(self.config.variables_file):
                raise LabError(
                    f"The lab already runs, started from {running}, not {self.config.variables_file}. "
                    "Stop it first: python -m lab down"
                )
        else:
            self._stop_orphans()
            self._check_port_free(self.config.supervisor_host, self.config.supervisor_port, "supervisord")
            self._write_conf()
            self._start_supervisord(timeout)
            marker.write_text(str(self.config.variables_file), encoding="utf-8")
        rpc = self._rpc()
        deferred = {program.name for program in self.config.programs if not program.autostart}
        for info in rpc.supervisor.getAllProcessInfo():
            if info["statename"] not in ("RUNNING", "STARTING") and info["name"] not in deferred:
                self._start_program(info["name"])
        for program in self.config.programs:
            if program.autostart:
                self._wait_healthy(program, timeout)
        return self.status()

    def down(self, timeout: timedelta = timedelta(seconds=20)) -> list[int]:
        """Stop every program and supervisord; kill whatever is left. Returns the PIDs that were stopped."""
        pids: list[int] = []
        supervisord = self._supervisord_pid()
        if self._rpc_answers():
            rpc = self._rpc()
            with contextlib.suppress(OSError, xmlrpc.client.Fault, http.client.HTTPException):
                supervisord = supervisord or int(rpc.supervisor.getPID())
            pids = [info["pid"] for info in rpc.supervisor.getAllProcessInfo() if info["pid"]]
            with contextlib.suppress(OSError, xmlrpc.client.Fault, http.client.HTTPException):
                rpc.supervisor.stopAllProcesses(True)
            with contextlib.suppress(OSError, xmlrpc.client.Fault, http.client.HTTPException):
                rpc.supervisor.shutdown()
        if supervisord:
            pids.append(supervisord)
            if not _wait_for(lambda: not _alive(supervisord), timeout):
                _kill(supervisord)
        pids.extend(self._stop_orphans())
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        return pids

    def status(self) -> list[dict[str, Any]]:
        """One row per program: name, state, pid, uptime description; empty when supervisord is not running."""
        if not self._rpc_answers():
            return []
        rows = []
        for info in self._rpc().supervisor.getAllProcessInfo():
            rows.append(
                {
                    "name": info["name"],
                    "state": info["statename"],
                    "pid": info["pid"],
                    "description": info["description"],
                }
            )
        return rows

    # -- per program -------------------------------------------------------------------------------
    def start(self, name: str, timeout: timedelta = timedelta(seconds=30)) -> None:
        program = self.config.program(name)
        self._start_program(name)
        self._wait_healthy(program, timeout)

    def stop(self, name: str) -> None:
        self.config.program(name)
        with contextlib.suppress(xmlrpc.client.Fault):
            self._rpc().supervisor.stopProcess(name, True)

    def kill(self, name: str) -> int:
        """SIGKILL a program (no clean shutdown); supervisord does not restart it. Returns the killed PID."""
        self.config.program(name)
        pid = int(self._rpc().supervisor.getProcessInfo(name)["pid"])
        if not pid:
            raise LabError(f"Program '{name}' is not running; there is nothing to kill.")
        self._rpc().supervisor.signalProcess(name, "KILL")
        if not _wait_for(lambda: not _alive(pid), timedelta(seconds=10)):
            raise LabError(f"Program '{name}' (PID {pid}) survived SIGKILL for 10 s.")
        # supervisord reaps the child on its next tick; report the kill once it has seen it
        _wait_for(lambda: self._rpc().supervisor.getProcessInfo(name)["statename"] != "RUNNING", timedelta(seconds=5))
        return pid

    def restart(self, name: str, timeout: timedelta = timedelta(seconds=30)) -> None:
        self.stop(name)
        self.start(name, timeout)

    # -- internals ---------------------------------------------------------------------------------
    def _rpc(self, timeout: float = 10.0) -> Any:
        return xmlrpc.client.ServerProxy(self.config.supervisor_url, transport=_TimeoutTransport(timeout))

    def _rpc_answers(self) -> bool:
        try:
            state = self._rpc(timeout=2.0).supervisor.getState()
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            return False
        return bool(state.get("statename") == "RUNNING")

    def _start_program(self, name: str) -> None:
        try:
            self._rpc().supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                log = self.run_dir / f"{name}.log"
                raise LabError(f"Program '{name}' did not start ({fault.faultString}). See {_tail(log)}") from None

    def _start_supervisord(self, timeout: timedelta) -> None:
        command = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf_file)]
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        if completed.returncode != 0:
            raise LabError(f"supervisord failed to start: {completed.stderr.strip() or completed.stdout.strip()}")
        if not _wait_for(self._rpc_answers, timeout):
            raise LabError(
                f"supervisord did not answer on {self.config.supervisor_url} within "
                f"{timeout.total_seconds():g} s. See {_tail(self.run_dir / 'supervisord.log')}"
            )

    def _wait_healthy(self, program: Program, timeout: timedelta) -> None:
        def ready() -> bool:
            state = self._rpc().supervisor.getProcessInfo(program.name)["statename"]
            if state in ("FATAL", "EXITED", "BACKOFF", "STOPPED"):
                raise LabError(
                    f"Program '{program.name}' is {state}. See {_tail(self.run_dir / (program.name + '.log'))}"
                )
            return state == "RUNNING" and _healthy(program.health)

        if not _wait_for(ready, timeout):
            log = self.run_dir / f"{program.name}.log"
            raise LabError(
                f"Program '{program.name}' did not become healthy ({program.health.describe()}) within "
                f"{timeout.total_seconds():g} s. See {_tail(log)}"
            )

    def _supervisord_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) and b"supervisord" in _cmdline(pid) else None

    def _stop_orphans(self) -> list[int]:
        """Kill processes started by this lab (found by their environment marker) that outlived supervisord."""
        killed = []
        for pid in _marked_processes(RUN_MARKER, str(self.run_dir)):
            if pid != os.getpid():
                _kill(pid)
                killed.append(pid)
        return killed

    def _check_port_free(self, host: str, port: int, what: str) -> None:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                raise LabError(
                    f"Port {host}:{port} for {what} is taken by another process. Stop it, or change "
                    f"the port in {self.config.variables_file}."
                )

    def _prepare_databases(self) -> None:
        for url in {url for program in self.config.programs for url in program.databases}:
            if url.startswith("postgresql"):
                ensure_postgres_database(url)

    def _write_program_files(self) -> None:
        for program in self.config.programs:
            for name, content in program.files.items():
                target = self.run_dir / name
                target.write_text(content, encoding="utf-8")
                target.chmod(0o600)  # may hold passwords

    def _write_conf(self) -> None:
        lines = [
            "[supervisord]",
            f"logfile={self.run_dir / 'supervisord.log'}",
            f"pidfile={self.pid_file}",
            f"childlogdir={self.run_dir}",
            f"directory={ROOT}",
            "nodaemon=false",
            "identifier=telco-robot-lab",
            "",
            "[inet_http_server]",
            f"port={self.config.supervisor_host}:{self.config.supervisor_port}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
        ]
        for program in self.config.programs:
            environment = {**program.environment, RUN_MARKER: str(self.run_dir), "PYTHONUNBUFFERED": "1"}
            lines += [
                f"[program:{program.name}]",
                "command=" + " ".join(_quote(part.replace("{run_dir}", str(self.run_dir))) for part in program.command),
                f"directory={ROOT}",
                "environment=" + ",".join(f'{key}="{_escape(value)}"' for key, value in environment.items()),
                f"autostart={'true' if program.autostart else 'false'}",
                "autorestart=false",
                "startsecs=1",
                "startretries=0",
                "stopsignal=TERM",
                "stopwaitsecs=10",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={self.run_dir / (program.name + '.log')}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=1",
                "",
            ]
        self.conf_file.write_text("\n".join(lines), encoding="utf-8")
        self.conf_file.chmod(0o600)  # holds the lab's tokens


def ensure_postgres_database(url: str) -> None:
    """Create the database named in a PostgreSQL URL if it does not exist yet."""
    import psycopg2
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    try:
        connection = psycopg2.connect(
            dbname="postgres",
            user=parsed.username,
            password=parsed.password,
            host=parsed.host,
            port=parsed.port or 5432,
            connect_timeout=5,
        )
    except psycopg2.OperationalError as error:
        raise LabError(
            f"PostgreSQL at {parsed.host}:{parsed.port or 5432} is not reachable ({error}). Start it, "
            "or use the default SQLite lab (variables/lab.yaml)."
        ) from None
    connection.autocommit = True  # CREATE DATABASE cannot run in a transaction block
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        connection.close()


def _healthy(check: HealthCheck) -> bool:
    if check.http:
        try:
            with urllib.request.urlopen(check.http, timeout=2) as response:
                return bool(200 <= response.status < 300)
        except (OSError, urllib.error.URLError, http.client.HTTPException):
            return False
    if check.tcp:
        with socket.socket() as probe:
            probe.settimeout(1)
            return probe.connect_ex(check.tcp) == 0
    return True


def _wait_for(condition: Callable[[], bool], timeout: timedelta, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout.total_seconds()
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _kill(pid: int, grace: timedelta = timedelta(seconds=5)) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_for(lambda: not _alive(pid), grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: not _alive(pid), grace)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _marked_processes(marker: str, value: str) -> Iterator[int]:
    needle = f"{marker}={value}".encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if needle in environ and _alive(int(entry.name)):
            yield int(entry.name)


def _quote(part: str) -> str:
    return f'"{part}"' if " " in part else part


def _escape(value: str) -> str:
    return value.replace("%", "%%").replace('"', '\\"')


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"{log} (not written)"
    return f"{log}; its last lines:\n" + "\n".join(text)
