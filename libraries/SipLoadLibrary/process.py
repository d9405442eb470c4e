"""One SIPp process: its command line, its files, start, wait, control-port commands, kill by PID.

Each instance runs in its own folder (``-trace_stat``, ``-trace_err``, ``-trace_screen`` and ``-trace_rtt``
files are written there) and its own session, so killing its process group takes nothing else down.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from SipLoadLibrary.errors import SippError
from SipLoadLibrary.stats import SippStats, parse_rtt, parse_stat_rows, summarize

SCENARIOS = Path(__file__).with_name("scenarios")
Role = Literal["uac", "uas"]
STAT_FILE = "stats.csv"
ERROR_FILE = "errors.log"
SCREEN_FILE = "screen.log"
STDERR_FILE = "stderr.log"
EXIT_CODES = {
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "stopped by a command (control port)",
    99: "normal exit without calls processed",
    255: "fatal error",
    254: "fatal error binding a socket",
}


def scenario_arguments(scenario: str) -> list[str]:
    """``-sf FILE`` for a project scenario name (``uac``, ``uas``) or an XML path, ``-sn NAME`` for ``sipp:NAME``."""
    if scenario.startswith("sipp:"):
        return ["-sn", scenario[len("sipp:") :]]
    own = SCENARIOS / f"{scenario}.xml"
    if own.is_file():
        return ["-sf", str(own)]
    path = Path(scenario)
    if path.suffix == ".xml" and path.is_file():
        return ["-sf", str(path.resolve())]
    known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.xml")))
    raise ValueError(
        f"Scenario '{scenario}' is neither one of this library's ({known}), nor an existing .xml file, nor a "
        "SIPp built-in written as 'sipp:uac'."
    )


@dataclass(frozen=True)
class SippSpec:
    """What one SIPp instance does; `command` turns it into a command line."""

    alias: str
    role: Role
    scenario: str
    host: str
    port: int
    control_port: int
    media_port: int
    target: str | None = None
    service: str = "service"
    rate: float | None = None
    count: int | None = None
    hold_ms: int = 0
    max_concurrent: int | None = None
    caller: str = "sipp"
    auth_user: str | None = field(default=None)
    auth_password: str | None = field(default=None, repr=False)
    recv_timeout_ms: int | None = None
    lifetime_s: int = 3600
    response_times: bool = True
    trace_messages: bool = False
    rtp_echo: bool = False
    options: tuple[str, ...] = ()

    def command(self, sipp: str) -> list[str]:
        command = [sipp]
        if self.role == "uac":
            if not self.target:
                raise ValueError("A SIPp UAC needs a target host:port.")
            command.append(self.target)
        command += scenario_arguments(self.scenario)
        if self.role == "uac":
            command += ["-s", self.service, "-key", "caller", self.caller]
        command += ["-i", self.host, "-p", str(self.port), "-mi", self.host, "-mp", str(self.media_port)]
        command += ["-cp", str(self.control_port), "-nostdin", "-timeout", f"{self.lifetime_s}s"]
        command += ["-trace_stat", "-stf", STAT_FILE, "-fd", "1"]
        command += ["-trace_err", "-error_file", ERROR_FILE, "-trace_screen", "-screen_file", SCREEN_FILE]
        if self.role == "uac":
            if self.rate is not None:
                command += ["-r", f"{self.rate:g}", "-rp", "1000"]
            if self.count is not None:
                command += ["-m", str(self.count)]
            command += ["-d", str(self.hold_ms)]
            if self.max_concurrent is not None:
                command += ["-l", str(self.max_concurrent)]
            if self.auth_user is not None:
                command += ["-au", self.auth_user, "-ap", self.auth_password or ""]
            if self.recv_timeout_ms is not None:
                command += ["-recv_timeout", str(self.recv_timeout_ms)]
            if self.response_times:
                command += ["-trace_rtt", "-rtt_freq", "1"]
        if self.trace_messages:
            command += ["-trace_msg", "-message_file", "messages.log"]
        if self.rtp_echo:
            command.append("-rtp_echo")
        return command + list(self.options)

    def masked(self, sipp: str) -> str:
        """The command line for the log, with the digest password as ``***``."""
        words = self.command(sipp)
        for index, word in enumerate(words[:-1]):
            if word == "-ap":
                words[index + 1] = "***"
        return " ".join(words)


class SippProcess:
    """A started SIPp instance; only the keyword thread touches it."""

    def __init__(self, spec: SippSpec, folder: Path, sipp: str) -> None:
        self.spec = spec
        self.folder = folder
        self.sipp = sipp
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.ended: float | None = None
        self.stopped_by: str | None = None

    @property
    def alias(self) -> str:
        return self.spec.alias

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def address(self) -> str:
        return f"{self.spec.host}:{self.spec.port}"

    def start(self, *, ready_timeout: float = 5.0) -> None:
        """Start SIPp and wait until it holds its SIP port; a SIPp that exits at once raises with its stderr."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stderr = (self.folder / STDERR_FILE).open("wb")
        try:
            self.process = subprocess.Popen(
                self.spec.command(self.sipp),
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        except OSError as error:
            raise SippError(
                f"Cannot start SIPp '{self.sipp}': {error.strerror}. Install it (Debian: apt-get install sip-tester) "
                "or give the library's sipp= import argument."
            ) from error
        finally:
            stderr.close()
        self.started = time.monotonic()
        deadline = self.started + ready_timeout
        while not udp_port_taken(self.spec.host, self.spec.port):
            if self.process.poll() is not None:
                self.ended = time.monotonic()
                raise SippError(
                    f"SIPp '{self.alias}' exited at once (exit {self.process.returncode}):\n{self.error_text()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise SippError(
                    f"SIPp '{self.alias}' did not open UDP {self.address} within {ready_timeout:g} s:\n"
                    f"{self.error_text()}"
                )
            time.sleep(0.01)

    def running(self) -> bool:
        if self.process is None:
            return False
        if self.process.poll() is None:
            return True
        if self.ended is None:
            self.ended = time.monotonic()
        return False

    def wait(self, timeout: float) -> bool:
        """True when SIPp exited within ``timeout`` seconds."""
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return not self.running()

    def control(self, command: str) -> None:
        """Send a remote-control command (``q``, ``cset rate 50``, ...) to the control port."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(command.encode("ascii"), ("127.0.0.1", self.spec.control_port))

    def kill(self) -> None:
        """SIGKILL the instance's process group (its own session) and reap it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.stopped_by = self.stopped_by or "killed"
        self.running()

    def alive(self) -> bool:
        """True while the PID still exists (not reaped, not a zombie)."""
        if self.process is None:
            return False
        return self.process.poll() is None

    # --- results ---------------------------------------------------------------------------------------

    def stats(self) -> SippStats:
        rows = parse_stat_rows(_read(self.folder / STAT_FILE))
        rtt: dict[str, list[float]] = {}
        for path in sorted(self.folder.glob("*_rtt.csv")):
            for name, values in parse_rtt(_read(path)).items():
                rtt.setdefault(name, []).extend(values)
        return summarize(rows, rtt)

    def error_text(self, lines: int = 12) -> str:
        """The last lines SIPp wrote to stderr and to its error trace, for failure messages."""
        text = [line for line in _read(self.folder / STDERR_FILE).splitlines() if not line.startswith("Resolving")]
        text += _read(self.folder / ERROR_FILE).splitlines()
        return "\n".join(line[:300] for line in text[-lines:]) or "(SIPp wrote no error)"

    def result(self) -> dict[str, Any]:
        """Everything known about the instance: its state, exit code and the figures of its statistics."""
        running = self.running()
        code = None if running or self.process is None else self.process.returncode
        if running:
            state = "running"
        elif self.stopped_by is not None:
            state = self.stopped_by
        else:
            state = "finished"
        result: dict[str, Any] = {
            "alias": self.alias,
            "role": self.spec.role,
            "scenario": self.spec.scenario,
            "state": state,
            "pid": self.pid,
            "exit_code": code,
            "exit_reason": EXIT_CODES.get(code, "killed" if code is not None and code < 0 else "")
            if code is not None
            else "",
            "address": self.address,
            "target": self.spec.target,
            "run_s": round((self.ended or time.monotonic()) - self.started, 3) if self.started else 0.0,
            "folder": str(self.folder),
        }
        result.update(self.stats().as_dict())
        return result


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# --- ports ------------------------------------------------------------------------------------------------


def udp_port_taken(host: str, port: int) -> bool:
    """True when a UDP bind to host:port fails because something holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def free_udp_port(host: str, *, exclude: set[int] | None = None, span: int = 1, even: bool = False) -> int:
    """A UDP port on ``host`` that is free now, with ``span - 1`` free ports above it (e.g. SIPp's media ports)."""
    exclude = exclude or set()
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if even and port % 2:
            port += 1
        candidates = range(port, port + span)
        if port + span > 65535 or any(p in exclude for p in candidates):
            continue
        if not any(udp_port_taken(host, p) or udp_port_taken("0.0.0.0", p) for p in candidates):
            return port
    raise SippError(f"Found no free UDP port on {host} (tried 200).")


def target_refuses(host: str, port: int, *, wait: float = 0.3) -> bool:
    """True when ``host:port`` answers UDP with ICMP port unreachable (nothing listens there).

    A CRLF keep-alive is sent on a connected socket: SIP servers ignore it, a closed port makes the kernel
    report ECONNREFUSED. No answer at all (a remote host that filters ICMP) counts as "not refused".
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(wait)
            sock.connect((host, port))
            sock.send(b"\r\n\r\n")
            sock.recv(2048)
    except ConnectionRefusedError:
        return True
    except (TimeoutError, OSError):
        return False
    return False
