"""RabbitMQ and Redis for Jasmin: use the machine's when they answer, else start them on loopback.

What this tool starts is recorded by PID (``.realstack/run/``) and stopped by `down`; the machine's own
servers are never touched.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

from realstack.jasmin import processes
from realstack.jasmin.errors import RealStackError
from realstack.jasmin.settings import JasminSettings, Paths

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # Debian: the real script; /usr/sbin's su's
EPMD_PORT = 4369
# Started by this tool, stopped by `down` in this order.
MANAGED = ("rabbitmq", "epmd", "redis")


def amqp_answers(host: str, port: int, *, timeout: float = 2.0) -> bool:
    """True when an AMQP 0-9-1 broker answers the protocol header with a Connection.Start frame."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(8)[:1] == b"\x01"
    except OSError:
        return False


def redis_reply(host: str, port: int, *, timeout: float = 2.0) -> str:
    """Redis's answer to PING (``+PONG``, ``-NOAUTH …``), or "" when nothing answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(256).decode("latin-1").strip()
    except OSError:
        return ""


def ensure_redis(settings: JasminSettings, paths: Paths, *, report: Callable[[str], None], timeout: float) -> None:
    address = f"{settings.redis_host}:{settings.redis_port}"
    reply = redis_reply(settings.redis_host, settings.redis_port)
    if reply.startswith("+PONG"):
        record = processes.load("redis", paths.run)
        owner = f"started by realstack, pid {record.pid}" if record and processes.alive(record) else "the machine's"
        report(f"Redis {address}: answering ({owner})")
        return
    if reply:
        raise RealStackError(
            f"Redis at {address} answered PING with '{reply[:80]}' (a password?); Jasmin is configured without "
            "one: use a Redis without requirepass, or another port with --redis-port."
        )
    exe = shutil.which("redis-server")
    if exe is None:
        raise RealStackError(
            f"Redis at {address} did not answer and redis-server is not installed: install it with "
            "`apt-get update && apt-get install -y redis-server`, or point --redis-port at a running Redis."
        )
    folder = paths.state / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        exe,
        "--bind",
        settings.redis_host,
        "--port",
        str(settings.redis_port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(folder),
    ]
    log = paths.results / "redis.log"
    record = processes.spawn("redis", command, run_dir=paths.run, log=log)
    try:
        took = processes.wait_for(
            f"Redis at {address}",
            lambda: redis_reply(settings.redis_host, settings.redis_port).startswith("+PONG"),
            timeout=timeout,
            record=record,
        )
    except RealStackError as error:
        processes.stop(record, grace=5)
        processes.forget("redis", paths.run)
        raise RealStackError(
            f"Redis at {address} did not come up after starting it ({error}); see {log}, "
            "or start the machine's own with `service redis-server start`."
        ) from error
    report(f"Redis {address}: started (pid {record.pid}, {took:.1f} s)")


def ensure_rabbitmq(settings: JasminSettings, paths: Paths, *, report: Callable[[str], None], timeout: float) -> None:
    address = f"{settings.amqp_host}:{settings.amqp_port}"
    if amqp_answers(settings.amqp_host, settings.amqp_port):
        record = processes.load("rabbitmq", paths.run)
        owner = f"started by realstack, pid {record.pid}" if record and processes.alive(record) else "the machine's"
        report(f"RabbitMQ {address}: answering ({owner})")
        return
    if processes.tcp_answers(settings.amqp_host, settings.amqp_port):
        raise RealStackError(
            f"Something listens on {address} but does not speak AMQP 0-9-1; stop it or use --amqp-port."
        )
    server = str(RABBITMQ_SERVER) if RABBITMQ_SERVER.exists() else shutil.which("rabbitmq-server")
    if server is None:
        raise RealStackError(
            f"RabbitMQ at {address} did not answer and rabbitmq-server is not installed: install it with "
            "`apt-get update && apt-get install -y rabbitmq-server`, or point --amqp-port at a running broker."
        )
    base = paths.state / "rabbitmq"
    for folder in (base / "mnesia", base / "log"):
        folder.mkdir(parents=True, exist_ok=True)
    if not processes.tcp_answers("127.0.0.1", EPMD_PORT):
        epmd = shutil.which("epmd")
        if epmd is None:
            raise RealStackError("epmd (Erlang's port mapper) is missing: reinstall rabbitmq-server and erlang-base.")
        record = processes.spawn(
            "epmd", [epmd, "-address", "127.0.0.1", "-port", str(EPMD_PORT)], run_dir=paths.run, log=base / "epmd.log"
        )
        processes.wait_for("epmd", lambda: processes.tcp_answers("127.0.0.1", EPMD_PORT), timeout=10, record=record)
        report(f"epmd 127.0.0.1:{EPMD_PORT}: started (pid {record.pid})")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = {settings.amqp_host}:{settings.amqp_port}\n", encoding="utf-8"
    )
    (base / "enabled_plugins").write_text("[].\n", encoding="utf-8")
    (base / "rabbitmq-env.conf").write_text("", encoding="utf-8")
    env = dict(os.environ)
    env.update(
        {
            "HOME": str(base),  # its own Erlang cookie
            "RABBITMQ_NODENAME": f"realstack{settings.amqp_port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": settings.amqp_host,
            "RABBITMQ_NODE_PORT": str(settings.amqp_port),
            "RABBITMQ_DIST_PORT": str(settings.amqp_port + 20000),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        }
    )
    log = paths.results / "rabbitmq.log"
    record = processes.spawn("rabbitmq", [server], run_dir=paths.run, log=log, env=env, cwd=base)
    try:
        took = processes.wait_for(
            f"RabbitMQ at {address}",
            lambda: amqp_answers(settings.amqp_host, settings.amqp_port),
            timeout=timeout,
            record=record,
            interval=0.5,
        )
    except RealStackError as error:
        stop_managed(paths, report=report, names=("rabbitmq", "epmd"))
        raise RealStackError(
            f"RabbitMQ at {address} did not come up after starting it ({error}); see {log} "
            f"and {base / 'log'}, or start the machine's own with `service rabbitmq-server start`."
        ) from error
    report(f"RabbitMQ {address}: started (pid {record.pid}, {took:.1f} s)")


def stop_managed(
    paths: Paths, *, report: Callable[[str], None], names: tuple[str, ...] = MANAGED, grace: float = 30.0
) -> None:
    """Stop the servers this tool started (by their recorded PIDs), never the machine's own."""
    for name in names:
        record = processes.load(name, paths.run)
        if record is None:
            continue
        report(processes.stop(record, grace=grace))
        processes.forget(name, paths.run)
