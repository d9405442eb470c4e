"""jasmind itself: find one already running, start ours through the TCP_NODELAY wrapper, stop it by PID.

``jasmind.py`` takes a file lock at ``/tmp/jasmind`` (``/tmp/jasmind.lock``, a hard link to a per-process
file): one jasmind per host. A second one waits 2 s, prints "Lock not acquired ! exiting" and exits 0.
A jasmind killed with SIGKILL leaves the lock behind, and every later start fails the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from realstack.jasmin import processes
from realstack.jasmin.errors import RealStackError
from realstack.jasmin.settings import JasminSettings, Paths

LOCK = Path("/tmp/jasmind.lock")
NAME = "jasmind"


def jasmind_pids() -> list[int]:
    """PIDs of every process on this host whose command line runs ``jasmind.py``."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(argument.endswith(b"jasmind.py") for argument in arguments[:3]):
            found.append(int(entry.name))
    return sorted(found)


def ours(paths: Paths) -> processes.Record | None:
    """The jasmind this tool started, if it still runs."""
    record = processes.load(NAME, paths.run)
    return record if record is not None and processes.alive(record) else None


def clear_stale_lock(*, report: Callable[[str], None], lock: Path = LOCK) -> bool:
    """Remove a ``/tmp/jasmind.lock`` that no running jasmind holds (and its hard-linked twin)."""
    if not lock.exists() or jasmind_pids():
        return False
    inode = lock.stat().st_ino
    for sibling in lock.parent.iterdir():
        try:
            if sibling != lock and sibling.is_file() and sibling.stat().st_ino == inode:
                sibling.unlink()
        except OSError:
            continue
    lock.unlink(missing_ok=True)
    report(f"removed a stale {lock} left by a jasmind that did not exit cleanly")
    return True


def check_can_start(settings: JasminSettings, paths: Paths, *, report: Callable[[str], None]) -> None:
    """Refuse to start when another jasmind runs or a port Jasmin needs is taken."""
    mine = ours(paths)
    others = [pid for pid in jasmind_pids() if mine is None or pid != mine.pid]
    if others:
        listed = ", ".join(str(pid) for pid in others)
        raise RealStackError(
            f"Another jasmind runs on this host (pid {listed}): jasmind.py locks /tmp/jasmind, so only one can run "
            f"per host. Stop it (`kill {others[0]}`), or use it as it is with `python -m realstack.jasmin configure`."
        )
    clear_stale_lock(report=report)
    ports = {
        "SMPP server": settings.smpp_port,
        "HTTP API": settings.http_port,
        "jCli": settings.jcli_port,
        "router PB": settings.router_pb_port,
        "client manager PB": settings.client_manager_pb_port,
        "SMPP server PB": settings.smpp_server_pb_port,
    }
    for what, port in ports.items():
        if processes.tcp_answers(settings.host, port, timeout=0.5):
            raise RealStackError(
                f"Port {settings.host}:{port} ({what}) is already in use by another process; stop it "
                f"(`ss -ltnp 'sport = :{port}'` shows which) or choose another port."
            )


def start(
    settings: JasminSettings, paths: Paths, *, timeout: float, nodelay: bool = True
) -> tuple[processes.Record, float]:
    """Start jasmind in the background and wait until jCli accepts connections; returns (record, seconds).

    ``nodelay=False`` runs stock jasmind without the TCP_NODELAY wrapper (to measure the difference).
    """
    if not paths.jasmind.exists():
        raise RealStackError(f"{paths.jasmind} is missing: run `python -m realstack.jasmin install` first.")
    command = [
        str(paths.venv_python),
        *([str(paths.wrapper)] if nodelay else []),
        str(paths.jasmind),
        "-c",
        str(paths.config_file),
        "--enable-dlr-lookup",
        "--enable-dlr-thrower",
    ]
    env = dict(os.environ)
    env.update({"ROOT_PATH": str(paths.jasmin_root), "LOG_PATH": str(paths.jasmin_logs), "PYTHONUNBUFFERED": "1"})
    started = time.monotonic()
    record = processes.spawn(NAME, command, run_dir=paths.run, log=paths.jasmind_log, env=env, cwd=paths.jasmin_root)
    try:
        processes.wait_for(
            f"jCli at {settings.host}:{settings.jcli_port}",
            lambda: processes.tcp_answers(settings.host, settings.jcli_port, timeout=0.5),
            timeout=timeout,
            record=record,
            interval=0.1,
        )
    except RealStackError as error:
        processes.stop(record, grace=10)
        processes.forget(NAME, paths.run)
        raise RealStackError(
            f"jasmind did not open jCli on {settings.host}:{settings.jcli_port} ({error}).\n"
            f"Last lines of {paths.jasmind_log}:\n{tail(paths.jasmind_log)}\n"
            f"Jasmin's own logs: {paths.jasmin_logs}"
        ) from error
    return record, time.monotonic() - started


def stop(paths: Paths, *, grace: float, report: Callable[[str], None]) -> None:
    record = processes.load(NAME, paths.run)
    if record is None:
        report("jasmind: not started by realstack (nothing to stop)")
        return
    report(processes.stop(record, grace=grace))
    processes.forget(NAME, paths.run)
    clear_stale_lock(report=report)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
