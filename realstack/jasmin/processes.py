"""Processes this tool starts: spawn in their own session, record by PID, stop by that PID only.

A record (``.realstack/run/NAME.json``) keeps the PID and the process's start time from ``/proc``, so a
PID reused by an unrelated process is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from realstack.jasmin.errors import RealStackError


@dataclass(frozen=True)
class Record:
    name: str
    pid: int
    start_ticks: int
    command: list[str]
    log: str


def start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 else None


def alive(record: Record) -> bool:
    """True while the recorded process runs (and is not a zombie)."""
    ticks = start_ticks(record.pid)
    if ticks is None or ticks != record.start_ticks:
        return False
    try:
        state = Path(f"/proc/{record.pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def spawn(
    name: str,
    command: Sequence[str],
    *,
    run_dir: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Record:
    """Start ``command`` in a new session (its own process group), output appended to ``log``; record it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: {' '.join(command)}\n".encode())
        out.flush()
        try:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as error:
            raise RealStackError(f"Cannot start {name} ({command[0]}): {error}.") from error
    ticks = start_ticks(process.pid) or 0
    record = Record(name=name, pid=process.pid, start_ticks=ticks, command=list(command), log=str(log))
    (run_dir / f"{name}.json").write_text(json.dumps(asdict(record), indent=2), encoding="utf-8")
    return record


def load(name: str, run_dir: Path) -> Record | None:
    path = run_dir / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Record(**data)
    except (OSError, ValueError, TypeError):
        return None


def forget(name: str, run_dir: Path) -> None:
    (run_dir / f"{name}.json").unlink(missing_ok=True)


def exited(record: Record) -> bool:
    """Reap the process if it is our child and has exited; True when it no longer runs."""
    try:
        pid, _ = os.waitpid(record.pid, os.WNOHANG)
        if pid == record.pid:
            return True
    except ChildProcessError:
        pass
    return not alive(record)


def stop(record: Record, *, grace: float = 15.0) -> str:
    """SIGTERM the recorded process's group, SIGKILL the group after ``grace`` seconds; returns what happened.

    The process was spawned in a new session, so its process group id is its PID: signalling the group also
    reaches what it started (e.g. RabbitMQ's shell script and its Erlang VM).
    """
    if not alive(record):
        return f"{record.name} (pid {record.pid}) was not running"
    _killpg(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if exited(record):
            _killpg(record.pid, signal.SIGKILL)  # whatever of its group is left
            return f"{record.name} (pid {record.pid}) stopped"
        time.sleep(0.1)
    _killpg(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and not exited(record):
        time.sleep(0.1)
    if not exited(record):
        raise RealStackError(f"{record.name} (pid {record.pid}) survived SIGKILL; check it with `ps -p {record.pid}`.")
    return f"{record.name} (pid {record.pid}) did not stop within {grace:g} s of SIGTERM: killed"


def _killpg(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def tcp_answers(host: str, port: int, *, timeout: float = 1.0) -> bool:
    """True when something accepts a TCP connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(
    check_name: str,
    probe: Callable[[], bool],
    *,
    timeout: float,
    record: Record | None = None,
    interval: float = 0.2,
) -> float:
    """Poll ``probe()`` until it is true; returns the seconds it took.

    Raises `RealStackError` after ``timeout`` seconds, or as soon as ``record``'s process exits.
    """
    started = time.monotonic()
    while True:
        if probe():
            return time.monotonic() - started
        if record is not None and exited(record):
            raise RealStackError(f"{record.name} exited while waiting for {check_name}; see {record.log}")
        if time.monotonic() - started > timeout:
            raise RealStackError(f"no answer from {check_name} within {timeout:g} s")
        time.sleep(interval)
