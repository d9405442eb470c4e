"""A small jCli client over a raw TCP socket (``telnetlib`` is deprecated since Python 3.11).

jCli is Jasmin's telnet console. The client strips telnet negotiation and terminal escape codes, logs in
(jCli prints "Authentication required." and waits for an Enter before it asks for the username), sends one
line at a time and reads until the next prompt, every read bounded by ``timeout``. Each reply is checked:
a refused command raises `JCliError` quoting the command (secrets masked) and jCli's answer.

| with JCli("127.0.0.1", 8990) as jcli:
|     jcli.run("smppccm -1 carrier", expect="Successfully started")
|     jcli.session("group -a", [("gid", "customers")], saved="Successfully added Group")
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterable, Sequence
from types import TracebackType

from realstack.jasmin.errors import JCliConnectionError, JCliError

PROMPT = "jcli : "
SESSION_PROMPT = "> "
_IAC, _SB, _SE = 255, 250, 240
_NEGOTIATION = (251, 252, 253, 254)  # WILL, WONT, DO, DONT
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[^\[])")
# Replies of jCli that mean "refused" (its managers answer in prose; there is no status code).
ERROR_REPLY = re.compile(
    r"^(Error|Unknown|Incorrect|Failed|You must|Invalid|Nothing to save|Permanently failed|Missing required"
    r"|This route order|Route order must|Exit session|no such option|.*option requires|.*must contain)",
    re.MULTILINE,
)
# Informational replies to a key typed inside an add/update session.
SESSION_INFO = re.compile(r"arguments:|Route order forced to 0")


def strip_telnet(data: bytes) -> tuple[bytes, bytes]:
    """Split raw bytes into (text without telnet commands, an incomplete command left for the next read).

    Negotiation requests (Twisted asks DO LINEMODE/NAWS/SGA and WILL ECHO) are ignored without a reply:
    jCli keeps working, and refusing would make Twisted log a failure for each one.
    """
    text = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte != _IAC:
            text.append(byte)
            i += 1
            continue
        if i + 1 >= len(data):
            break
        command = data[i + 1]
        if command == _IAC:
            text.append(_IAC)
            i += 2
        elif command in _NEGOTIATION:
            if i + 2 >= len(data):
                break
            i += 3
        elif command == _SB:
            end = data.find(bytes((_IAC, _SE)), i + 2)
            if end < 0:
                break
            i = end + 2
        else:
            i += 2
    return bytes(text), data[i:]


def clean(text: str) -> str:
    """Terminal output as plain text: no escape sequences, no carriage returns or NULs."""
    return _ESCAPE.sub("", text).replace("\r", "").replace("\x00", "")


class JCli:
    """One logged-in jCli connection. Every read waits at most ``timeout`` seconds."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8990,
        *,
        username: str = "jcliadmin",
        password: str = "jclipwd",
        timeout: float = 10.0,
        secrets: Iterable[str] = (),
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.timeout = timeout
        self._secrets = {password, *secrets} - {""}
        self._sock: socket.socket | None = None
        self._pending = b""
        self._text = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # --- connection -------------------------------------------------------------------------------------
    def open(self) -> JCli:
        """Connect and log in; raises `JCliConnectionError` (unreachable, no answer) or `JCliError` (refused)."""
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as error:
            raise JCliConnectionError(
                f"jCli at {self.address} is not reachable ({error}); is jasmind running? "
                "Start it with `python -m realstack.jasmin up`."
            ) from error
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._read_until(("Authentication required.", PROMPT), what="the login banner")
        if self._text.endswith(PROMPT):  # authentication disabled in jasmin.cfg
            self._text = ""
            return self
        self._text = ""
        self._send("")  # jCli waits for an Enter before it asks for the username
        self._read_until(("Username: ",), what="the username prompt")
        self._text = ""
        self._send(self.username)
        self._read_until(("Password: ",), what="the password prompt")
        self._text = ""
        self._send(self._password)
        reply = self._read_until((PROMPT, "Username: "), what="the login")
        self._text = ""
        if "Incorrect Username/Password" in reply or reply.endswith("Username: "):
            self.close()
            raise JCliError(
                f"jCli at {self.address} refused the login of '{self.username}': check the jcli credentials "
                "(jasmin.cfg [jcli] admin_username/admin_password)."
            )
        return self

    def close(self) -> None:
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            self._sock.sendall(b"quit\r\n")
        self._sock.close()
        self._sock = None

    def __enter__(self) -> JCli:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- commands -----------------------------------------------------------------------------------------
    def run(self, line: str, *, expect: str | None = None, secret: bool = False) -> str:
        """Send one line and return jCli's reply (without the echo and the prompt).

        With ``expect`` (a regular expression) the reply must match it; without, it must not read as a refusal.
        ``secret=True`` masks the line's value in errors (e.g. ``password …``).
        """
        shown = self._mask(line, secret=secret)
        self._drain()
        self._send(line)
        raw = self._read_until((PROMPT, SESSION_PROMPT), what=f"'{shown}'")
        reply = self._reply(raw, line)
        failed = not re.search(expect, reply) if expect is not None else bool(ERROR_REPLY.search(reply))
        if failed:
            raise JCliError(f"jCli command '{shown}' failed: jCli answered '{self._mask(reply)}'.")
        return reply

    def session(self, opener: str, items: Sequence[tuple[str, str]], *, saved: str) -> str:
        """Run an interactive add/update session: ``opener``, one ``key value`` line per item, then ``ok``.

        Keys named ``password`` are masked in errors. A refused line or a failed save leaves the session
        with ``ko`` (so the connection stays usable) and raises `JCliError` naming the line.
        """
        self.run(opener, expect=r"\(ok: save, ko: exit\)")
        try:
            for key, value in items:
                line = f"{key} {value}"
                secret = "password" in key
                reply = self.run(line, expect=r".*", secret=secret)
                if reply and not SESSION_INFO.search(reply):
                    raise JCliError(
                        f"jCli command '{self._mask(line, secret=secret)}' (in '{opener}') failed: "
                        f"jCli answered '{self._mask(reply)}'."
                    )
            reply = self.run("ok", expect=r".*")
            if not re.search(saved, reply):
                raise JCliError(f"jCli command 'ok' (saving '{opener}') failed: jCli answered '{self._mask(reply)}'.")
        except JCliError:
            if self._sock is not None:
                self._leave_session()
            raise
        return reply

    def _leave_session(self) -> None:
        try:
            self._text = ""
            self._send("ko")
            self._read_until((PROMPT,), what="'ko'")
        except JCliConnectionError:
            pass

    # --- I/O ------------------------------------------------------------------------------------------------
    def _send(self, line: str) -> None:
        if self._sock is None:
            raise JCliConnectionError(f"jCli at {self.address}: not connected (call open() first).")
        try:
            self._sock.sendall(line.encode("ascii") + b"\r\n")
        except OSError as error:
            raise JCliConnectionError(f"jCli at {self.address} closed the connection: {error}") from error

    def _drain(self) -> None:
        """Drop output that arrived after the last prompt (a late line of a previous command)."""
        self._text = ""
        if self._sock is None:
            return
        self._sock.setblocking(False)
        try:
            while self._sock.recv(65536):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as error:
            raise JCliConnectionError(f"jCli at {self.address} failed: {error}") from error
        finally:
            self._sock.setblocking(True)
        self._pending = b""

    def _read_until(self, markers: tuple[str, ...], *, what: str) -> str:
        """Read until the cleaned output ends with one of ``markers`` (or contains a banner marker)."""
        if self._sock is None:
            raise JCliConnectionError(f"jCli at {self.address}: not connected (call open() first).")
        deadline = time.monotonic() + self.timeout
        raw = b""
        while True:
            text = clean(raw.decode("latin-1"))
            if any(text.endswith(marker) or (marker.endswith(".") and marker in text) for marker in markers):
                self._text = text
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = self._mask(text[-200:])
                raise JCliConnectionError(
                    f"jCli at {self.address} did not answer {what} within {self.timeout:g} s (last output: {tail!r})."
                )
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as error:
                raise JCliConnectionError(f"jCli at {self.address} failed while reading {what}: {error}") from error
            if not chunk:
                raise JCliConnectionError(
                    f"jCli at {self.address} closed the connection while waiting for {what} "
                    f"(last output: {self._mask(text[-200:])!r})."
                )
            data, self._pending = strip_telnet(self._pending + chunk)
            raw += data

    def _reply(self, text: str, line: str) -> str:
        for prompt in (PROMPT, SESSION_PROMPT):
            if text.endswith(prompt):
                text = text[: -len(prompt)]
                break
        first, newline, rest = text.partition("\n")
        if first.strip() == line.strip():  # jCli echoes what it receives (except the login password)
            text = rest if newline else ""
        return "\n".join(row.rstrip() for row in text.strip().splitlines())

    def _mask(self, text: str, *, secret: bool = False) -> str:
        if secret:
            key, _, value = text.partition(" ")
            if value:
                text = f"{key} ***"
        for value in self._secrets:
            text = text.replace(value, "***")
        return text
