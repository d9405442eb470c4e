"""``python -m realstack.jasmin install|up|down|status|configure``: real Jasmin 0.11.0 for the real-stack profile.

| install   | Jasmin 0.11.0 in .realstack/jasmin-venv and the AMQP spec from its sdist (once; a stamp file)   |
| up        | install if needed; RabbitMQ and Redis (the machine's, else started on loopback); jasmin.cfg;   |
|           | jasmind through the TCP_NODELAY wrapper; wait for jCli; configure                               |
| configure | group, user, carrier connector (started), MT/MO default routes, persist — idempotent            |
| status    | what runs: jasmind, its ports, the connector's state, RabbitMQ, Redis                           |
| down      | stop jasmind, and RabbitMQ/Redis only if `up` started them — by their recorded PIDs             |

Values: defaults < ``--variables FILE`` (e.g. variables/realstack.yaml) < options. From the variables file:
SMPP_PORT, SMS_HTTP_URL, SMPP_ACCOUNTS, SMPP_THROTTLED_SYSTEM_ID/PASSWORD/RATE, SMS_OUTAGE_PREFIX (the suites'
keys), LAB_CARRIER_SMPP_PORT, LAB_OUTAGE_CARRIER_SMPP_PORT, LAB_CARRIER_SYSTEM_ID/PASSWORD (the carrier
simulators the lab runs) and REALSTACK_JASMIN_JCLI_PORT/AMQP_PORT/REDIS_PORT. Exit 0 on success, 1 on an
error (the message names the thing and the fix), 3 from ``status`` when jasmind does not run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from realstack.jasmin import daemon, install, processes, provision, services
from realstack.jasmin.errors import JCliConnectionError, RealStackError
from realstack.jasmin.jcli import JCli
from realstack.jasmin.settings import (
    JASMIN_VERSION,
    Account,
    GatewaySettings,
    JasminSettings,
    Paths,
    coerce,
    from_variables,
    write_config,
)

PREFIX = "realstack.jasmin"


def say(message: str) -> None:
    try:
        sys.stdout.write(f"{PREFIX}: {message}\n")
        sys.stdout.flush()
    except BrokenPipeError:  # a reader such as `| head` left: finish the work without output
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--variables", type=Path, help="a variables file (YAML), e.g. variables/realstack.yaml")
    ports = common.add_argument_group("Jasmin (defaults: SMPP 2775, HTTP 1401, jCli 8990, AMQP 5672, Redis 6379)")
    ports.add_argument("--smpp-port", type=int)
    ports.add_argument("--http-port", type=int)
    ports.add_argument("--jcli-port", type=int)
    ports.add_argument("--amqp-port", type=int)
    ports.add_argument("--redis-port", type=int)
    gateway = common.add_argument_group("what configure provisions")
    gateway.add_argument("--group", help="group id (default customers)")
    gateway.add_argument(
        "--username", help="one customer's SMPP system_id and HTTP username, instead of SMPP_ACCOUNTS (customer1)"
    )
    gateway.add_argument("--password", help="that customer's password")
    gateway.add_argument("--uid", help="that customer's Jasmin user id (default: the username)")
    gateway.add_argument("--connector", help="SMPP client connector id (default carrier)")
    gateway.add_argument("--carrier-host", help="the carrier simulator's host (default 127.0.0.1)")
    gateway.add_argument("--carrier-port", type=int, help="the carrier simulator's SMPP port (default 2776)")
    gateway.add_argument("--carrier-username", help="system_id Jasmin binds to the carriers with (default jasmin)")
    gateway.add_argument("--carrier-password", help="its password")
    gateway.add_argument("--outage-port", type=int, help="SMPP port of a second carrier for --outage-prefix numbers")
    gateway.add_argument("--outage-prefix", help="destinations starting with these digits go to the second carrier")
    common.add_argument(
        "--no-nodelay", action="store_true", help="up: run stock jasmind without the TCP_NODELAY wrapper (slower)"
    )
    waits = common.add_argument_group("bounded waits (seconds)")
    waits.add_argument("--start-timeout", type=float, default=60.0, help="jasmind until jCli answers (60)")
    waits.add_argument("--service-timeout", type=float, default=60.0, help="RabbitMQ/Redis we start (60)")
    waits.add_argument("--bind-timeout", type=float, default=20.0, help="connector bound to the carrier; 0: skip (20)")
    waits.add_argument("--stop-timeout", type=float, default=15.0, help="SIGTERM before SIGKILL (15)")
    parser = argparse.ArgumentParser(prog=f"python -m {PREFIX}", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("install", f"install Jasmin {JASMIN_VERSION} into .realstack/jasmin-venv"),
        ("up", "start RabbitMQ/Redis if needed, jasmind, and configure it"),
        ("down", "stop what up started"),
        ("status", "show what runs"),
        ("configure", "provision Jasmin through jCli (idempotent)"),
    ):
        commands.add_parser(name, parents=[common], help=text, description=text)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> tuple[JasminSettings, GatewaySettings]:
    variables: dict[str, Any] = {}
    if args.variables is not None:
        import yaml

        try:
            loaded = yaml.safe_load(args.variables.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise RealStackError(f"Cannot read the variables file {args.variables}: {error}") from error
        variables = loaded if isinstance(loaded, dict) else {}
    jasmin, gateway = from_variables(variables)
    jasmin = coerce(
        jasmin,
        {
            "smpp_port": args.smpp_port,
            "http_port": args.http_port,
            "jcli_port": args.jcli_port,
            "amqp_port": args.amqp_port,
            "redis_port": args.redis_port,
        },
    )
    gateway = coerce(
        gateway,
        {
            "group": args.group,
            "connector": args.connector,
            "carrier_host": args.carrier_host,
            "carrier_port": args.carrier_port,
            "carrier_username": args.carrier_username,
            "carrier_password": args.carrier_password,
            "outage_port": args.outage_port,
            "outage_prefix": args.outage_prefix,
        },
    )
    if args.username is not None or args.password is not None:
        if args.username is None or args.password is None:
            raise RealStackError("--username and --password go together.")
        gateway = replace(gateway, accounts=(Account(args.username, args.password, uid=args.uid),))
    return jasmin.validate(), gateway.validate()


def open_jcli(settings: JasminSettings, gateway: GatewaySettings, *, timeout: float) -> JCli:
    """Log in to jCli, retrying while jasmind is still starting (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        jcli = JCli(
            settings.host,
            settings.jcli_port,
            username=settings.jcli_username,
            password=settings.jcli_password,
            timeout=10.0,
            secrets=(gateway.carrier_password, *(account.password for account in gateway.accounts)),
        )
        try:
            return jcli.open()
        except JCliConnectionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def configure(settings: JasminSettings, gateway: GatewaySettings, paths: Paths, args: argparse.Namespace) -> None:
    started = time.monotonic()
    with open_jcli(settings, gateway, timeout=args.start_timeout) as jcli:
        provision.configure(jcli, gateway, report=say)
        say(f"configured through jCli {settings.host}:{settings.jcli_port} in {time.monotonic() - started:.1f} s")
        if args.bind_timeout > 0:
            for cid, port in carriers(gateway):
                wait_bound(jcli, gateway, cid, port, paths=paths, timeout=args.bind_timeout)


def carriers(gateway: GatewaySettings) -> list[tuple[str, int]]:
    """(connector id, carrier SMPP port) of every carrier connector."""
    found = [(gateway.connector, gateway.carrier_port)]
    if gateway.outage_port is not None:
        found.append((gateway.outage_connector, gateway.outage_port))
    return found


def wait_bound(jcli: JCli, gateway: GatewaySettings, cid: str, port: int, *, paths: Paths, timeout: float) -> None:
    carrier = f"{gateway.carrier_host}:{port}"
    if not processes.tcp_answers(gateway.carrier_host, port):
        say(
            f"carrier {carrier} is not listening yet: connector {cid} binds when it starts "
            f"(Jasmin retries every {gateway.reconnect_delay} s)"
        )
        return
    waited = time.monotonic()
    state = provision.wait_until_bound(jcli, cid, timeout=timeout)
    if not state.startswith("BOUND"):
        raise RealStackError(
            f"Connector {cid} did not bind to the carrier at {carrier} within {timeout:g} s (state {state}): "
            f"check the carrier's account '{gateway.carrier_username}' and its log, and "
            f"{paths.jasmin_logs}/default-{cid}.log."
        )
    say(f"connector {cid}: {state} to {carrier} after {time.monotonic() - waited:.1f} s")


def up(settings: JasminSettings, gateway: GatewaySettings, paths: Paths, args: argparse.Namespace) -> None:
    began = time.monotonic()
    install.install(paths, report=say)
    mine = daemon.ours(paths)
    if mine is not None:
        say(f"jasmind: already running (pid {mine.pid}); configuring it")
    else:
        services.ensure_rabbitmq(settings, paths, report=say, timeout=args.service_timeout)
        services.ensure_redis(settings, paths, report=say, timeout=args.service_timeout)
        daemon.check_can_start(settings, paths, report=say)
        config = write_config(settings, paths)
        say(f"wrote {config.relative_to(paths.root)}")
        record, took = daemon.start(settings, paths, timeout=args.start_timeout, nodelay=not args.no_nodelay)
        wrapper = "stock, without the TCP_NODELAY wrapper" if args.no_nodelay else "TCP_NODELAY wrapper"
        say(
            f"jasmind {JASMIN_VERSION}: started (pid {record.pid}, {wrapper}), jCli answered after "
            f"{took:.1f} s; log {paths.jasmind_log.relative_to(paths.root)}"
        )
    configure(settings, gateway, paths, args)
    say(
        f"up in {time.monotonic() - began:.1f} s: SMPP {settings.host}:{settings.smpp_port}, "
        f"HTTP http://{settings.host}:{settings.http_port}/send, jCli {settings.host}:{settings.jcli_port}, "
        f"customers {', '.join(account.system_id for account in gateway.accounts)}"
    )


def down(paths: Paths, args: argparse.Namespace) -> None:
    daemon.stop(paths, grace=args.stop_timeout, report=say)
    services.stop_managed(paths, report=say)
    others = daemon.jasmind_pids()
    if others:
        say(f"note: a jasmind not started by realstack still runs (pid {', '.join(map(str, others))})")


def status(settings: JasminSettings, gateway: GatewaySettings, paths: Paths) -> int:
    mine = daemon.ours(paths)
    pids = daemon.jasmind_pids()
    if mine is not None:
        say(f"jasmind: running (pid {mine.pid}, started by realstack)")
    elif pids:
        say(f"jasmind: running (pid {', '.join(map(str, pids))}, not started by realstack)")
    else:
        say("jasmind: not running")
    for what, port in (("SMPP", settings.smpp_port), ("HTTP", settings.http_port), ("jCli", settings.jcli_port)):
        state = "open" if processes.tcp_answers(settings.host, port) else "closed"
        say(f"  {what} {settings.host}:{port}: {state}")
    if processes.tcp_answers(settings.host, settings.jcli_port):
        try:
            with open_jcli(settings, gateway, timeout=0) as jcli:
                for cid, port in carriers(gateway):
                    say(f"  connector {cid} (carrier port {port}): {provision.connector_state(jcli, cid)}")
        except RealStackError as error:
            say(f"  connectors: unknown ({error})")
    checks = (
        (
            "RabbitMQ",
            settings.amqp_host,
            settings.amqp_port,
            services.amqp_answers(settings.amqp_host, settings.amqp_port),
        ),
        (
            "Redis",
            settings.redis_host,
            settings.redis_port,
            services.redis_reply(settings.redis_host, settings.redis_port),
        ),
    )
    for name, host, port, answer in checks:
        record = processes.load(name.lower(), paths.run)
        owner = f"started by realstack, pid {record.pid}" if record and processes.alive(record) else "the machine's"
        answering = answer is True or (isinstance(answer, str) and answer.startswith("+PONG"))
        say(f"{name} {host}:{port}: {f'answering ({owner})' if answering else 'not answering'}")
    return 0 if mine is not None or pids else 3


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    paths = Paths()
    try:
        settings, gateway = settings_from(args)
        if args.command == "install":
            install.install(paths, report=say)
        elif args.command == "up":
            up(settings, gateway, paths, args)
        elif args.command == "down":
            down(paths, args)
        elif args.command == "status":
            return status(settings, gateway, paths)
        elif args.command == "configure":
            if not processes.tcp_answers(settings.host, settings.jcli_port):
                raise RealStackError(
                    f"jCli at {settings.host}:{settings.jcli_port} does not answer: start Jasmin with "
                    f"`python -m {PREFIX} up` (it configures too), or give the right --jcli-port."
                )
            configure(settings, gateway, paths, args)
    except RealStackError as error:
        sys.stderr.write(f"{PREFIX}: ERROR: {error}\n")
        if args.command == "up":
            sys.stderr.write(f"{PREFIX}: `python -m {PREFIX} down` stops whatever up started.\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
