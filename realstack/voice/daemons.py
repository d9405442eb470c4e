"""Kamailio and RTPEngine instances: start in the foreground, record by PID, wait until they answer, stop by PID.

- RTPEngine: ``--config-file=none`` (the default config binds every interface), loopback only, its own ng/CLI
  ports and RTP range, ``--delete-delay=0`` (ports back at once after a BYE). Ready when ``rtpengine-ctl
  list totals`` answers on its CLI port.
- Kamailio: ``-DD -E`` (foreground, log to stderr: ``results/realstack/kamailio-a.log``), ``-m`` shared and
  ``-M`` private memory in MB, ``-Y``/``-P`` in its own folder; the config is checked with ``kamailio -c``
  first. Ready when ``kamcmd core.version`` answers over its ctl socket. Its JSON-RPC over HTTP (``/RPC``,
  the control surface the platform drives) listens on TCP SIP port + 1.
Killing the master PID's process group stops all of an instance's children within about a second.
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from realstack.jasmin import processes
from realstack.voice.errors import RealStackError
from realstack.voice.settings import Paths, Proxy, Relay, VoiceSettings, write_config

BINARIES = {
    "kamailio": ("/usr/sbin/kamailio", "kamailio"),
    "kamcmd": ("/usr/sbin/kamcmd", "kamailio"),
    "rtpengine": ("/usr/bin/rtpengine", "rtpengine-daemon"),
    "rtpengine-ctl": ("/usr/bin/rtpengine-ctl", "rtpengine-daemon"),
}


def binary(name: str) -> str:
    """The path of one of the stack's programs; a missing one names the package to install."""
    default, package = BINARIES[name]
    found = shutil.which(name) or (default if Path(default).exists() else None)
    if found is None:
        raise RealStackError(
            f"'{name}' is not installed (Debian package {package}): run `python -m realstack.voice install`."
        )
    return found


def run(command: Sequence[str], *, timeout: float = 5.0) -> tuple[int, str]:
    """Run a short command; (exit code, stdout+stderr). A missing program or a timeout is exit code -1."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return -1, str(error)
    return done.returncode, (done.stdout + done.stderr).strip()


def udp_port_taken(host: str, port: int) -> bool:
    """True when something on this host already has UDP ``host:port`` (a bind there fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def tcp_port_taken(host: str, port: int) -> bool:
    """True when something on this host already listens on TCP ``host:port`` (a bind there fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def _taken_message(what: str, port: int, protocol: str) -> str:
    flag = "u" if protocol == "udp" else "t"
    return (
        f"{protocol.upper()} port 127.0.0.1:{port} ({what}) is already in use: `ss -l{flag}np 'sport = :{port}'` "
        "shows which process (a Debian kamailio/rtpengine service? `systemctl stop kamailio "
        "rtpengine-daemon`), or give other ports."
    )


def check_ports(settings: VoiceSettings, paths: Paths) -> None:
    """Before anything starts: every port an instance not yet running needs must be free."""
    for relay in settings.relays:
        if ours(relay.name, paths) is None:
            if udp_port_taken(settings.host, relay.ng_port):
                raise RealStackError(_taken_message(f"{relay.name} ng", relay.ng_port, "udp"))
            if processes.tcp_answers(settings.host, relay.cli_port, timeout=0.5):
                raise RealStackError(_taken_message(f"{relay.name} CLI", relay.cli_port, "tcp"))
    for proxy in settings.proxies:
        if ours(proxy.name, paths) is None:
            _check_proxy_ports(settings, proxy)


def _check_proxy_ports(settings: VoiceSettings, proxy: Proxy) -> None:
    if udp_port_taken(settings.host, proxy.sip_port):
        raise RealStackError(_taken_message(f"{proxy.name} SIP", proxy.sip_port, "udp"))
    if tcp_port_taken(settings.host, proxy.rpc_port):
        raise RealStackError(_taken_message(f"{proxy.name} JSON-RPC", proxy.rpc_port, "tcp"))


# --- RTPEngine -----------------------------------------------------------------------------------------


def relay_command(settings: VoiceSettings, relay: Relay, paths: Paths) -> list[str]:
    host = settings.host
    return [
        binary("rtpengine"),
        "--config-file=none",
        "--foreground",
        "--log-stderr",
        "--log-level=5",
        "--table=-1",
        f"--interface={host}",
        f"--listen-ng={host}:{relay.ng_port}",
        f"--listen-cli={host}:{relay.cli_port}",
        f"--port-min={relay.port_min}",
        f"--port-max={relay.port_max}",
        "--delete-delay=0",
        f"--timeout={settings.rtpengine_timeout}",
        f"--num-threads={settings.rtpengine_threads}",
        f"--pidfile={paths.instance_dir(relay.name) / 'rtpengine.pid'}",
    ]


def relay_totals(settings: VoiceSettings, relay: Relay) -> str | None:
    """``rtpengine-ctl list totals`` from the relay's CLI, or None when it does not answer."""
    code, output = run(
        [binary("rtpengine-ctl"), "-ip", settings.host, "-port", str(relay.cli_port), "list", "totals"], timeout=3
    )
    return output if code == 0 and "Total" in output else None


def relay_sessions(settings: VoiceSettings, relay: Relay) -> str | None:
    code, output = run(
        [binary("rtpengine-ctl"), "-ip", settings.host, "-port", str(relay.cli_port), "list", "numsessions"],
        timeout=3,
    )
    if code != 0:
        return None
    for line in output.splitlines():
        if line.strip().startswith("Current sessions total:"):
            return f"{line.rsplit(':', 1)[1].strip()} media sessions"
    return output.replace("\n", "; ")


def start_relay(
    settings: VoiceSettings, relay: Relay, paths: Paths, *, timeout: float
) -> tuple[processes.Record, float]:
    """Start one RTPEngine and wait until its CLI answers; returns (record, seconds)."""
    if udp_port_taken(settings.host, relay.ng_port):
        raise RealStackError(_taken_message(f"{relay.name} ng", relay.ng_port, "udp"))
    if processes.tcp_answers(settings.host, relay.cli_port, timeout=0.5):
        raise RealStackError(_taken_message(f"{relay.name} CLI", relay.cli_port, "tcp"))
    paths.instance_dir(relay.name).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    record = processes.spawn(
        relay.name, relay_command(settings, relay, paths), run_dir=paths.run, log=paths.log(relay.name)
    )
    _wait(
        record,
        f"{relay.name}'s CLI on {settings.host}:{relay.cli_port}",
        lambda: relay_totals(settings, relay) is not None,
        paths,
        timeout,
    )
    return record, time.monotonic() - started


# --- Kamailio ------------------------------------------------------------------------------------------


def proxy_command(settings: VoiceSettings, proxy: Proxy, paths: Paths) -> list[str]:
    folder = paths.instance_dir(proxy.name)
    return [
        binary("kamailio"),
        "-f",
        str(paths.config_file(proxy.name)),
        "-DD",
        "-E",
        "-m",
        str(settings.shm_mb),
        "-M",
        str(settings.pkg_mb),
        "-Y",
        str(folder),
        "-P",
        str(folder / "kamailio.pid"),
    ]


def kamcmd(paths: Paths, proxy: Proxy, *arguments: str, timeout: float = 3.0) -> tuple[int, str]:
    """An RPC command over the instance's ctl socket, e.g. ``kamcmd(paths, proxy, "core.version")``."""
    return run([binary("kamcmd"), "-s", f"unix:{paths.ctl_socket(proxy.name)}", *arguments], timeout=timeout)


def proxy_version(paths: Paths, proxy: Proxy) -> str | None:
    code, output = kamcmd(paths, proxy, "core.version")
    return output if code == 0 and output else None


def registered(paths: Paths, proxy: Proxy) -> str:
    """How many users are registered at the instance ("?" when it does not say)."""
    code, output = kamcmd(paths, proxy, "stats.get_statistics", "usrloc:")
    for line in output.splitlines() if code == 0 else []:
        if line.strip().startswith("usrloc:registered_users"):
            return line.rsplit("=", 1)[-1].strip()
    return "?"


def unanchored(paths: Paths, proxy: Proxy) -> str:
    """How many SDPs went on without a media relay (the config's $shv(unanchored)), "?" when unknown."""
    code, output = kamcmd(paths, proxy, "pv.shvGet", "unanchored")
    if code != 0:
        return "?"
    found = [line.split(":", 1)[1].strip().rstrip(",") for line in output.splitlines() if "value" in line]
    return found[0] if found else "?"


def check_config(settings: VoiceSettings, proxy: Proxy, paths: Paths) -> Path:
    """Render the instance's kamailio.cfg and check it with ``kamailio -c``."""
    config = write_config(settings, proxy, paths)
    code, output = run([binary("kamailio"), "-c", "-f", str(config)], timeout=30)
    if code != 0 or "config file ok" not in output:
        errors = [line for line in output.splitlines() if "ERROR" in line or "error" in line] or output.splitlines()
        detail = "\n".join(errors[-15:])
        raise RealStackError(f"`kamailio -c -f {config}` refused the rendered config (exit {code}):\n{detail}")
    return config


def start_proxy(
    settings: VoiceSettings, proxy: Proxy, paths: Paths, *, timeout: float
) -> tuple[processes.Record, float]:
    """Check the config, start one Kamailio and wait until it answers RPC; returns (record, seconds)."""
    _check_proxy_ports(settings, proxy)
    check_config(settings, proxy, paths)
    paths.ctl_socket(proxy.name).unlink(missing_ok=True)
    started = time.monotonic()
    record = processes.spawn(
        proxy.name, proxy_command(settings, proxy, paths), run_dir=paths.run, log=paths.log(proxy.name)
    )
    _wait(
        record,
        f"{proxy.name}'s RPC (kamcmd core.version)",
        lambda: proxy_version(paths, proxy) is not None,
        paths,
        timeout,
    )
    return record, time.monotonic() - started


# --- both ------------------------------------------------------------------------------------------------


def _wait(record: processes.Record, what: str, probe: Callable[[], bool], paths: Paths, timeout: float) -> None:
    try:
        processes.wait_for(what, probe, timeout=timeout, record=record, interval=0.05)
    except RealStackError as error:
        processes.stop(record, grace=5)
        processes.forget(record.name, paths.run)
        raise RealStackError(
            f"{record.name} did not come up ({error}).\nLast lines of {record.log}:\n{tail(Path(record.log))}"
        ) from error


def ours(name: str, paths: Paths) -> processes.Record | None:
    """The instance this tool started under ``name``, if it still runs."""
    record = processes.load(name, paths.run)
    return record if record is not None and processes.alive(record) else None


def stop(name: str, paths: Paths, *, grace: float) -> str:
    record = processes.load(name, paths.run)
    if record is None:
        return f"{name}: not started by realstack (nothing to stop)"
    said = processes.stop(record, grace=grace)
    processes.forget(name, paths.run)
    return said


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
