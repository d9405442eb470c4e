"""``python -m realstack.voice install|up|down|status|smoke``: Kamailio + RTPEngine for the real-stack profile.

| install | apt-get install the Debian packages (kamailio and its extra/utils/postgres modules, rtpengine-daemon,    |
|         | sip-tester); nothing happens when they are installed                                                    |
| up      | the accounting tables and the ``cdrs`` view in PostgreSQL; two RTPEngines, then two Kamailios, each       |
|         | config rendered from kamailio.cfg.template and checked with ``kamailio -c``; waits (bounded) until each |
|         | answers (rtpengine-ctl, kamcmd). Instances already running are kept. Each Kamailio takes JSON-RPC 2.0  |
|         | over HTTP at http://127.0.0.1:<SIP port + 1>/RPC (htable.*, dlg.*, telco.transfer), like the lab proxy  |
| down    | stop the instances up started, by their recorded PIDs                                                    |
| status  | which instances run and answer, registered users, media sessions, CDR count                              |
| smoke   | a proof call through the stack with two pjsua2 phones (smoke.py, in a subprocess)                       |

Values: defaults < ``--variables FILE`` (REALSTACK_VOICE_* keys) < ``--routing FILE`` (the lab proxy's JSON
config). Logs: results/realstack/kamailio-a.log, rtpengine-a.log, .... Exit 0 on success, 1 on an error (the
message names the thing and the fix), 3 from ``status`` when an instance does not run or answer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from realstack.voice import daemons, database, install
from realstack.voice.errors import RealStackError
from realstack.voice.settings import (
    Paths,
    VoiceSettings,
    from_variables,
    load_routing_file,
    load_state,
    save_state,
    state_file,
)

PREFIX = "realstack.voice"


def say(message: str) -> None:
    try:
        sys.stdout.write(f"{PREFIX}: {message}\n")
        sys.stdout.flush()
    except BrokenPipeError:  # a reader such as `| head` left: finish the work without output
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--variables", type=Path, help="a variables file (YAML), e.g. variables/realstack.yaml")
    common.add_argument("--routing", type=Path, help="users/services/trunks as the lab proxy's JSON config")
    common.add_argument("--no-accounting", action="store_true", help="up: no CDRs (runs without PostgreSQL)")
    waits = common.add_argument_group("bounded waits (seconds)")
    waits.add_argument("--start-timeout", type=float, default=20.0, help="each instance until it answers (20)")
    waits.add_argument("--stop-timeout", type=float, default=10.0, help="SIGTERM before SIGKILL (10)")
    waits.add_argument("--smoke-timeout", type=float, default=60.0, help="smoke: the whole proof call (60)")
    common.add_argument(
        "--with-no-answer", action="store_true", help="smoke: also a call nobody answers (waits no_answer_timeout)"
    )
    parser = argparse.ArgumentParser(prog=f"python -m {PREFIX}", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("install", "apt-get install the Debian packages (idempotent)"),
        ("up", "start two RTPEngines and two Kamailios"),
        ("down", "stop what up started"),
        ("status", "show what runs"),
        ("smoke", "a proof call through the running stack (pjsua2, SIPp-free)"),
    ):
        commands.add_parser(name, parents=[common], help=text, description=text)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> VoiceSettings:
    variables: dict[str, Any] = {}
    if args.variables is not None:
        import yaml

        try:
            loaded = yaml.safe_load(args.variables.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise RealStackError(f"Cannot read the variables file {args.variables}: {error}") from error
        variables = loaded if isinstance(loaded, dict) else {}
    settings = from_variables(variables)
    if args.routing is not None:
        settings = replace(settings, routing=load_routing_file(args.routing))
    if args.no_accounting:
        settings = replace(settings, accounting=False)
    return settings.validate()


def running_settings(settings: VoiceSettings, paths: Paths) -> VoiceSettings:
    """The settings the running stack was started with (``.realstack/voice.json``), else ``settings``."""
    return load_state(paths) or settings


def up(settings: VoiceSettings, paths: Paths, args: argparse.Namespace) -> None:
    began = time.monotonic()
    for name in ("kamailio", "kamcmd", "rtpengine", "rtpengine-ctl"):
        daemons.binary(name)
    earlier = load_state(paths)
    names = [proxy.name for proxy in settings.proxies] + [relay.name for relay in settings.relays]
    if earlier is not None and any(daemons.ours(name, paths) for name in names):
        if earlier != settings:
            say("note: the stack runs with its earlier settings; `down` then `up` applies the new ones")
        settings = earlier
    else:
        save_state(settings, paths)
    daemons.check_ports(settings, paths)
    if settings.accounting:
        database.ensure(settings.database, report=say)
    for relay in settings.relays:
        mine = daemons.ours(relay.name, paths)
        if mine is not None:
            say(f"{relay.name}: already running (pid {mine.pid})")
            continue
        record, took = daemons.start_relay(settings, relay, paths, timeout=args.start_timeout)
        say(
            f"{relay.name}: started (pid {record.pid}), answering after {took:.2f} s: ng udp "
            f"{settings.host}:{relay.ng_port}, CLI {relay.cli_port}, RTP {relay.port_min}-{relay.port_max}"
        )
    for proxy in settings.proxies:
        mine = daemons.ours(proxy.name, paths)
        if mine is not None:
            say(f"{proxy.name}: already running (pid {mine.pid}); `down` then `up` applies a changed config")
            continue
        record, took = daemons.start_proxy(settings, proxy, paths, timeout=args.start_timeout)
        say(
            f"{proxy.name}: started (pid {record.pid}), answering after {took:.2f} s: sip:{settings.host}:"
            f"{proxy.sip_port} (udp), JSON-RPC {proxy.rpc_url(settings.host)}, "
            f"config {paths.config_file(proxy.name).relative_to(paths.root)}"
        )
    accounting = (
        f"CDRs in {settings.database.name}.public.{settings.database.view}" if settings.accounting else "no CDRs"
    )
    say(
        f"up in {time.monotonic() - began:.1f} s: {len(settings.proxies)} Kamailio, {len(settings.relays)} RTPEngine, "
        f"{len(settings.routing.users)} users, {accounting}; logs in {paths.results.relative_to(paths.root)}/"
    )


def down(settings: VoiceSettings, paths: Paths, args: argparse.Namespace) -> None:
    settings = running_settings(settings, paths)
    for proxy in settings.proxies:
        say(daemons.stop(proxy.name, paths, grace=args.stop_timeout))
        paths.ctl_socket(proxy.name).unlink(missing_ok=True)
    for relay in settings.relays:
        say(daemons.stop(relay.name, paths, grace=args.stop_timeout))
    state_file(paths).unlink(missing_ok=True)


def status(settings: VoiceSettings, paths: Paths) -> int:
    settings = running_settings(settings, paths)
    healthy = True
    for relay in settings.relays:
        mine = daemons.ours(relay.name, paths)
        sessions = daemons.relay_sessions(settings, relay)
        if mine is None or sessions is None:
            healthy = False
        state = f"running (pid {mine.pid})" if mine else "not running"
        say(f"{relay.name}: {state}; ng {relay.ng_port}, CLI {relay.cli_port}: {sessions or 'not answering'}")
    for proxy in settings.proxies:
        mine = daemons.ours(proxy.name, paths)
        version = daemons.proxy_version(paths, proxy)
        if mine is None or version is None:
            healthy = False
        state = f"running (pid {mine.pid})" if mine else "not running"
        details = ""
        if version is not None:
            details = (
                f", {daemons.registered(paths, proxy)} registered users, {daemons.unanchored(paths, proxy)} unanchored"
            )
        say(
            f"{proxy.name}: {state}; sip {settings.host}:{proxy.sip_port}, JSON-RPC {proxy.rpc_url(settings.host)}: "
            f"{version or 'not answering'}{details}"
        )
    if settings.accounting:
        try:
            say(f"CDRs: {database.cdr_count(settings.database)} in {settings.database.name}.public.cdrs")
        except RealStackError as error:
            say(f"CDRs: unknown ({error})")
    return 0 if healthy else 3


def smoke(settings: VoiceSettings, paths: Paths, args: argparse.Namespace) -> None:
    """Run smoke.py in its own process (pjsua2 asserts abort a process; one Endpoint per process), then the CDRs."""
    settings = running_settings(settings, paths)
    if daemons.proxy_version(paths, settings.proxies[0]) is None:
        raise RealStackError(
            f"{settings.proxies[0].name} does not answer: start the stack with `python -m {PREFIX} up`."
        )
    routing = settings.routing
    proxy = settings.proxies[0]
    users = list(routing.users.items())
    if len(users) < 2:
        raise RealStackError("smoke needs two users in the routing data.")
    command = [
        sys.executable,
        str(Path(__file__).with_name("smoke.py")),
        "--proxy",
        f"{settings.host}:{proxy.sip_port}",
        "--caller",
        f"{users[0][0]}:{users[0][1]}",
        "--callee",
        f"{users[1][0]}:{users[1][1]}",
        "--rtp-ranges",
        ",".join(f"{relay.port_min}-{relay.port_max}" for relay in settings.relays),
        "--timeout",
        "10",
    ]
    rule = next((r for r in routing.on_failure if r.users is None or users[1][0] in r.users), None)
    if rule is not None:
        command += ["--voicemail", routing.services[rule.service]]
        if 404 in rule.codes and len(users) > 2:
            command += ["--unregistered", users[2][0]]
        if args.with_no_answer and rule.codes & {408, 480}:
            command += ["--no-answer", str(routing.no_answer_timeout)]
    limit = args.smoke_timeout + (routing.no_answer_timeout if args.with_no_answer else 0)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as error:
        raise RealStackError(f"the smoke call did not finish within {limit:g} s") from error
    result: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
        elif not line[:2].isdigit():  # pjsip's own start-up lines begin with a time
            say(f"smoke: {line}")
    if done.returncode != 0:
        raise RealStackError(f"the smoke call failed (exit {done.returncode}):\n{done.stderr.strip()[-2000:]}")
    if settings.accounting:
        for case, call in result.get("calls", {}).items():
            cdr = wait_for_cdr(settings, call["call_id"], timeout=5.0)
            if cdr["disposition"] != "ANSWERED" or not cdr["duration_s"] or cdr["duration_s"] <= 0:
                raise RealStackError(f"the {case} call's CDR should be ANSWERED with a duration, it is {cdr}")
            say(
                f"smoke: CDR {cdr['id']} for the {case} call: {cdr['disposition']} {cdr['sip_code']}, "
                f"{cdr['caller']} -> {cdr['callee']}, {cdr['duration_s']} s, {cdr['proxy']}"
            )


def wait_for_cdr(settings: VoiceSettings, call_id: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = database.cdrs(settings.database, call_id=call_id, limit=1)
        if rows:
            return rows[0]
        if time.monotonic() >= deadline:
            raise RealStackError(f"no CDR for call {call_id} in {settings.database.view} within {timeout:g} s")
        time.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    paths = Paths()
    try:
        settings = settings_from(args)
        if args.command == "install":
            install.install(report=say)
        elif args.command == "up":
            up(settings, paths, args)
        elif args.command == "down":
            down(settings, paths, args)
        elif args.command == "status":
            return status(settings, paths)
        elif args.command == "smoke":
            smoke(settings, paths, args)
    except RealStackError as error:
        sys.stderr.write(f"{PREFIX}: ERROR: {error}\n")
        if args.command == "up":
            sys.stderr.write(f"{PREFIX}: `python -m {PREFIX} down` stops whatever up started.\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
