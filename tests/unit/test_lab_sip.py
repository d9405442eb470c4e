"""The lab's SIP proxy (``python -m lab.sip``, the Kamailio stand-in) and media relay (``python -m lab.rtprelay``,
the RTPEngine stand-in), each started as its own process with a temp config, as the lab runs them.

They are driven by real user agents: raw-UDP phones written here (so every header can be checked and broken),
pjsua2 (in a subprocess: this file run as a script, one Endpoint per process) and SIPp (the edited scenarios in
``lab/sip/scenarios/``), skipped when the tool is missing. Proxy A has a relay and CDRs; proxy B (the failover
twin) points at a relay that does not answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import queue
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "lab" / "sip" / "scenarios"
HOST = "127.0.0.1"
USERS = {str(number): f"pw{number}" for number in range(1001, 1031)}  # 1016-1030: the JSON-RPC tests
RING_TIMEOUT = 2.0  # the proxies' no_answer_timeout, short for the tests
VOICEMAIL_USERS = ["1005", "1006", "1007"]  # users whose failed calls go to voicemail (8000)


# --- processes --------------------------------------------------------------------------------------------
def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.02)


@dataclass
class Server:
    """A lab stand-in running as a subprocess; stopped by PID (SIGTERM, then SIGKILL)."""

    name: str
    process: subprocess.Popen[bytes]
    http: str
    log: Path

    def health(self) -> dict[str, Any]:
        return dict(get_json(f"{self.http}/health"))

    def get(self, path: str) -> Any:
        return get_json(f"{self.http}{path}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def start_server(module: str, name: str, config: dict[str, Any], http_port: int, directory: Path) -> Server:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    path.chmod(0o600)
    log = directory / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(path)], cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(name, process, f"http://{HOST}:{http_port}", log)

    def ready() -> bool:
        assert process.poll() is None, f"{name} exited: {log.read_text()}"
        try:
            server.health()
        except OSError:
            return False
        return True

    eventually(ready, 10.0, f"{name} answering /health")
    return server


# --- a raw-UDP SIP phone --------------------------------------------------------------------------------
@dataclass
class Msg:
    """A SIP message as this test reads it (independently of lab.sip.message)."""

    start: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    @property
    def status(self) -> int:
        return int(self.start.split()[1]) if self.start.startswith("SIP/2.0 ") else 0

    @property
    def method(self) -> str:
        return "" if self.status else self.start.split()[0]

    @property
    def uri(self) -> str:
        return self.start.split()[1]

    def h(self, name: str) -> str:
        return next((value for key, value in self.headers if key == name.lower()), "")

    def all(self, name: str) -> list[str]:
        values = [value for key, value in self.headers if key == name.lower()]
        if name.lower() in ("record-route", "route", "via"):
            return [item.strip() for value in values for item in re.split(r",(?![^<]*>)", value)]
        return values

    def tag(self, name: str) -> str:
        match = re.search(r";\s*tag=([^;>\s]+)", self.h(name))
        return match.group(1) if match else ""


COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
}


def parse_msg(data: bytes) -> Msg:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    return Msg(lines[0], headers, body, data)


def digest(method: str, uri: str, user: str, password: str, challenge: str) -> str:
    """The Authorization for a challenge with qop=auth (the lab proxy) or without qop (real Kamailio's default)."""
    params = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge))
    cnonce, nc = os.urandom(4).hex(), "00000001"

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{user}:{params['realm']}:{password}")
    if "qop" not in params:
        response = md5(f"{ha1}:{params['nonce']}:{md5(f'{method}:{uri}')}")
        return (
            f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}", '
            f'response="{response}", algorithm=MD5'
        )
    assert params["qop"] == "auth", challenge
    response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{md5(f'{method}:{uri}')}")
    return (
        f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'
    )


_counter = itertools.count(1)


@dataclass
class Dialog:
    call_id: str
    from_tag: str
    to_tag: str
    to: str
    frm: str
    route: list[str]
    target: str
    cseq: int
    final: Msg
    provisional: list[Msg] = field(default_factory=list)
    invite: str = ""


class Phone:
    """A SIP UA on its own UDP port. Answers requests by ``policy`` on a thread and records them; responses
    are queued for the test. Policies for an INVITE: answer (180 then 200 with SDP), busy (486), ring (180, then
    waits for CANCEL), ignore. It owns an RTP socket whose port its SDP advertises."""

    def __init__(
        self, user: str = "", *, policy: str = "answer", proxy: tuple[str, int] | None = None, password: str = ""
    ) -> None:
        self.user = user
        self.password = password or USERS.get(user, "")
        self.policy = policy
        self.proxy = proxy
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)  # so the reader thread notices close() quickly
        self.port = int(self.sock.getsockname()[1])
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, 0))
        self.rtp.settimeout(2.0)
        self.rtp_port = int(self.rtp.getsockname()[1])
        self.responses: queue.Queue[Msg] = queue.Queue()
        self.seen: list[Msg] = []  # every response, in arrival order
        self.requests: list[Msg] = []
        self.tag = f"tag{next(_counter)}"
        self._pending_invite: Msg | None = None
        self._running = True
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self.sock.close()
        self.rtp.close()

    # --- I/O --------------------------------------------------------------------------------------------
    def send(self, text: str, addr: tuple[str, int] | None = None) -> None:
        head, _, body = text.partition("\r\n\r\n")
        if "Content-Length" not in head:
            head += f"\r\nContent-Length: {len(body.encode())}"
        self.sock.sendto(f"{head}\r\n\r\n{body}".encode(), addr or self.proxy)

    def send_raw(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        self.sock.sendto(data, addr or self.proxy)

    def expect(self, wanted: Callable[[Msg], bool] = lambda m: True, timeout: float = 3.0) -> Msg:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"{self.user or self.port}: no expected response within {timeout} s"
            try:
                message = self.responses.get(timeout=left)
            except queue.Empty:
                continue
            if wanted(message):
                return message

    def final(self, timeout: float = 3.0) -> Msg:
        return self.expect(lambda m: m.status >= 200, timeout)

    def quiet(self, seconds: float = 0.5) -> list[Msg]:
        time.sleep(seconds)
        got = []
        while not self.responses.empty():
            got.append(self.responses.get_nowait())
        return got

    def requests_of(self, method: str) -> list[Msg]:
        return [m for m in self.requests if m.method == method]

    def wait_request(self, method: str, timeout: float = 3.0) -> Msg:
        return eventually(lambda: next(iter(self.requests_of(method)), None), timeout, f"a {method} at {self.user}")

    def _loop(self) -> None:
        while self._running:
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            message = parse_msg(data)
            if message.status:
                self.seen.append(message)
                self.responses.put(message)
                continue
            self.requests.append(message)
            with contextlib.suppress(OSError):
                self._answer(message, addr)

    # --- the UAS side -----------------------------------------------------------------------------------
    def _respond(self, request: Msg, addr: tuple[str, int], status: str, extra: str = "", body: str = "") -> None:
        to = request.h("to") if request.tag("to") or status.startswith("100") else f"{request.h('to')};tag={self.tag}"
        lines = [f"SIP/2.0 {status}"]
        lines += [f"Via: {via}" for via in request.all("via")]
        lines += [f"Record-Route: {rr}" for rr in request.all("record-route")] if request.method == "INVITE" else []
        lines += [f"From: {request.h('from')}", f"To: {to}", f"Call-ID: {request.h('call-id')}"]
        lines += [f"CSeq: {request.h('cseq')}", f"Contact: <sip:{self.user or 'ua'}@{HOST}:{self.port}>"]
        if extra:
            lines.append(extra)
        if body:
            lines.append("Content-Type: application/sdp")
        self.send("\r\n".join(lines) + "\r\n\r\n" + body, addr)

    def _answer(self, request: Msg, addr: tuple[str, int]) -> None:
        method = request.method
        if method == "INVITE" and not request.tag("to"):
            self._pending_invite = request
            if self.policy == "answer":
                self._respond(request, addr, "180 Ringing")
                self._respond(request, addr, "200 OK", body=self.sdp())
            elif self.policy == "busy":
                self._respond(request, addr, "486 Busy Here")
            elif self.policy == "ring":
                self._respond(request, addr, "180 Ringing")
        elif method == "CANCEL":
            self._respond(request, addr, "200 OK")
            if self._pending_invite is not None:
                self._respond(self._pending_invite, addr, "487 Request Terminated")
        elif method == "REFER":
            self._respond(request, addr, "202 Accepted")
        elif method in ("BYE", "MESSAGE", "OPTIONS", "NOTIFY", "INFO", "INVITE"):
            self._respond(request, addr, "200 OK", body=self.sdp() if method == "INVITE" else "")

    def sdp(self) -> str:
        return (
            f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )

    # --- the UAC side -----------------------------------------------------------------------------------
    def headers(self, method: str, uri: str, to: str, call_id: str, cseq: int, *, to_tag: str = "") -> list[str]:
        return [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{os.urandom(6).hex()};rport",
            f"From: <sip:{self.user}@{HOST}>;tag={self.tag}",
            f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{HOST}:{self.port}>",
            "Max-Forwards: 70",
        ]

    def register(self, *, password: str | None = None, expires: int = 300) -> Msg:
        """REGISTER, answering the 401 with ``password`` (default: the user's); returns the final answer."""
        uri = f"sip:{HOST}:{self.proxy[1]}" if self.proxy else ""
        call_id = f"reg-{os.urandom(6).hex()}"
        lines = self.headers("REGISTER", uri, f"sip:{self.user}@{HOST}", call_id, 1)
        lines[3] = f"To: <sip:{self.user}@{HOST}>"
        self.send("\r\n".join([*lines, f"Expires: {expires}"]) + "\r\n\r\n")
        first = self.final()
        if first.status != 401:
            return first
        lines = self.headers("REGISTER", uri, f"sip:{self.user}@{HOST}", call_id, 2)
        lines[3] = f"To: <sip:{self.user}@{HOST}>"
        answer = digest("REGISTER", uri, self.user, password or self.password, first.h("www-authenticate"))
        self.send("\r\n".join([*lines, f"Expires: {expires}", f"Authorization: {answer}"]) + "\r\n\r\n")
        return self.final()

    def invite(
        self,
        number: str,
        *,
        auth: bool = True,
        sdp: bool = True,
        extra: list[str] | None = None,
        final_timeout: float = 3.0,
    ) -> Dialog:
        """Call ``number`` through the proxy (answering a 407), ACK the final answer; returns the dialog."""
        assert self.proxy is not None
        uri = f"sip:{number}@{HOST}:{self.proxy[1]}"
        call_id = f"call-{os.urandom(6).hex()}"
        body = self.sdp() if sdp else ""
        cseq = 1
        lines = self.headers("INVITE", uri, uri, call_id, cseq) + (extra or [])
        content = ["Content-Type: application/sdp"] if sdp else []
        self.send("\r\n".join(lines + content) + "\r\n\r\n" + body)
        answer = self.expect(lambda m: m.status >= 180, final_timeout)
        if answer.status == 407 and auth:
            self.send("\r\n".join(self._ack_lines(lines, answer)) + "\r\n\r\n")
            cseq = 2
            credentials = digest("INVITE", uri, self.user, self.password, answer.h("proxy-authenticate"))
            lines = self.headers("INVITE", uri, uri, call_id, cseq) + (extra or [])
            self.send("\r\n".join([*lines, *content, f"Proxy-Authorization: {credentials}"]) + "\r\n\r\n" + body)
            answer = self.expect(lambda m: m.status >= 180, final_timeout)
        provisional = []
        while answer.status < 200:
            provisional.append(answer)
            answer = self.expect(lambda m: m.status >= 180, final_timeout)
        route = list(reversed(answer.all("record-route")))
        contact = re.search(r"<([^>]+)>", answer.h("contact") or "<>")
        dialog = Dialog(
            call_id, self.tag, answer.tag("to"), uri, f"sip:{self.user}@{HOST}", route,
            contact.group(1) if contact and contact.group(1) else uri, cseq, answer, provisional, "\r\n".join(lines),
        )  # fmt: skip
        if 200 <= answer.status < 300:
            self.in_dialog(dialog, "ACK", same_cseq=True)
        elif answer.status >= 300:
            self.send("\r\n".join(self._ack_lines(lines, answer)) + "\r\n\r\n")
        return dialog

    def _ack_lines(self, invite_lines: list[str], answer: Msg) -> list[str]:
        lines = [line for line in invite_lines if not line.startswith(("Content-Type", "Proxy-Authorization"))]
        lines[0] = lines[0].replace("INVITE ", "ACK ", 1)
        lines[3] = f"To: {answer.h('to')}"
        lines[5] = lines[5].replace("INVITE", "ACK")
        return lines

    def in_dialog(self, dialog: Dialog, method: str, *, same_cseq: bool = False, body: str = "") -> None:
        """Send an in-dialog request along the route set (ACK keeps the INVITE's CSeq number)."""
        if not same_cseq:
            dialog.cseq += 1
        lines = self.headers(method, dialog.target, dialog.to, dialog.call_id, dialog.cseq, to_tag=dialog.to_tag)
        lines[4:4] = [f"Route: {route}" for route in dialog.route]
        if body:
            lines.append("Content-Type: application/sdp")
        first = re.search(r"sip:([\d.]+):(\d+)", dialog.route[0] if dialog.route else dialog.target)
        assert first is not None
        self.send("\r\n".join(lines) + "\r\n\r\n" + body, (first.group(1), int(first.group(2))))

    def reinvite(self, dialog: Dialog) -> Msg:
        """A re-INVITE moving this phone's media to a new RTP socket; returns the 200 (after ACKing it)."""
        self.rtp.close()
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, 0))
        self.rtp.settimeout(2.0)
        self.rtp_port = int(self.rtp.getsockname()[1])
        self.in_dialog(dialog, "INVITE", body=self.sdp())
        answer = self.expect(lambda m: m.status >= 200 and "INVITE" in m.h("cseq"))
        self.in_dialog(dialog, "ACK", same_cseq=True)
        return answer

    def bye(self, dialog: Dialog) -> Msg:
        self.in_dialog(dialog, "BYE")
        return self.expect(lambda m: m.status >= 200 and "BYE" in m.h("cseq"))


def sdp_media(body: bytes) -> tuple[str, int]:
    text = body.decode()
    address = re.search(r"^c=IN IP4 (\S+)", text, re.MULTILINE)
    port = re.search(r"^m=audio (\d+)", text, re.MULTILINE)
    assert address and port, text
    return address.group(1), int(port.group(1))


# --- the lab under test -----------------------------------------------------------------------------------
@dataclass
class Lab:
    proxy: Server
    twin: Server
    relay: Server
    sip: tuple[str, int]
    twin_sip: tuple[str, int]
    relay_control: tuple[str, int]
    voicemail: Phone
    ivr: Phone
    trunk: Phone
    sipp_uas_port: int
    database: Path
    media_range: tuple[int, int]
    directory: Path
    phones: list[Phone] = field(default_factory=list)

    def phone(self, user: str = "", *, policy: str = "answer", twin: bool = False, password: str = "") -> Phone:
        phone = Phone(user, policy=policy, proxy=self.twin_sip if twin else self.sip, password=password)
        self.phones.append(phone)
        return phone

    def registered(self, user: str, *, policy: str = "answer") -> Phone:
        phone = self.phone(user, policy=policy)
        assert phone.register().status == 200
        return phone

    def cdr(self, call_id: str, timeout: float = 5.0) -> dict[str, Any]:
        def read() -> dict[str, Any] | None:
            if not self.database.exists():
                return None
            with contextlib.closing(sqlite3.connect(self.database, timeout=5)) as db:
                db.row_factory = sqlite3.Row
                try:
                    row = db.execute("SELECT * FROM cdrs WHERE call_id = ?", (call_id,)).fetchone()
                except sqlite3.OperationalError:
                    return None
            return dict(row) if row else None

        return dict(eventually(read, timeout, f"a CDR for {call_id}"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("lab_sip")
    sip, twin_sip = (HOST, free_port()), (HOST, free_port())
    voicemail, ivr, trunk = Phone("voicemail"), Phone("ivr"), Phone("trunk", proxy=sip)
    relay_control = (HOST, free_port())
    base = random.randrange(40000, 58000, 2)
    media_range = (base, base + 399)
    database = directory / "billing.db"
    sipp_uas_port = free_port()
    relay_http, proxy_http, twin_http = (free_port(socket.SOCK_STREAM) for _ in range(3))
    relay = start_server(
        "lab.rtprelay",
        "relay-a",
        {
            "host": HOST,
            "control_port": relay_control[1],
            "http_port": relay_http,
            "port_min": media_range[0],
            "port_max": media_range[1],
            "idle_timeout": 3,
            "name": "relay-a",
        },
        relay_http,
        directory,
    )
    common = {
        "host": HOST,
        "domain": HOST,
        "record_route": True,
        "users": USERS,
        "services": {
            "8000": f"sip:voicemail@{HOST}:{voicemail.port}",
            "8100": f"sip:ivr@{HOST}:{ivr.port}",
        },
        "trunks": [
            {"prefix": "00", "uri": f"sip:{HOST}:{sipp_uas_port}", "strip": 0},
            {"prefix": "09", "uri": f"sip:{HOST}:{trunk.port}", "strip": 2},
        ],
        "no_answer_timeout": RING_TIMEOUT,
        "no_response_timeout": 2,
        "on_failure": {"8000": {"codes": ["408", "480", "486", "404"], "users": VOICEMAIL_USERS}},
        "cdr_database": f"sqlite:///{database}",
    }
    servers: list[Server] = [relay]
    try:
        proxy = start_server(
            "lab.sip",
            "proxy-a",
            {
                **common,
                "port": sip[1],
                "http_port": proxy_http,
                "name": "proxy-a",
                "relay": {"control": f"{HOST}:{relay_control[1]}"},
            },
            proxy_http,
            directory,
        )
        servers.append(proxy)
        dead_relay = f"{HOST}:{free_port()}"
        twin = start_server(
            "lab.sip",
            "proxy-b",
            {
                **common,
                "port": twin_sip[1],
                "http_port": twin_http,
                "name": "proxy-b",
                "relay": {"control": dead_relay, "timeout": 0.2, "retries": 0},
                "dialog_timeout": 1.5,
            },
            twin_http,
            directory,
        )
        servers.append(twin)
        the_lab = Lab(
            proxy, twin, relay, sip, twin_sip, relay_control, voicemail, ivr, trunk, sipp_uas_port, database,
            media_range, directory,
        )  # fmt: skip
        yield the_lab
        for phone in the_lab.phones:
            phone.close()
        for server in (proxy, twin):
            assert counters(server)["internal_errors"] == 0, f"{server.name} logged internal errors: see {server.log}"
    finally:
        codes = {server.name: server.stop() for server in reversed(servers)}
        for phone in (voicemail, ivr, trunk):
            phone.close()
    assert codes == dict.fromkeys(codes, 0), f"a stand-in did not stop cleanly: {codes}"


def counters(server: Server) -> dict[str, int]:
    return dict(server.health()["counters"])


# --- registrar ------------------------------------------------------------------------------------------
def test_register_is_challenged_then_accepted_with_the_right_password(lab: Lab) -> None:
    phone = lab.phone("1001")
    uri = f"sip:{HOST}:{lab.sip[1]}"
    lines = phone.headers("REGISTER", uri, f"sip:1001@{HOST}", "reg-direct", 1)
    phone.send("\r\n".join(lines) + "\r\n\r\n")
    challenge = phone.final()
    assert challenge.status == 401
    assert 'realm="127.0.0.1"' in challenge.h("www-authenticate")
    assert 'qop="auth"' in challenge.h("www-authenticate")

    ok = phone.register(expires=120)

    assert ok.status == 200
    assert f"sip:1001@{HOST}:{phone.port}" in ok.h("contact")
    assert re.search(r"expires=1[12]\d", ok.h("contact"))
    rows = lab.proxy.get("/registrations?user=1001")["registrations"]
    assert [row["contact"] for row in rows] == [f"sip:1001@{HOST}:{phone.port}"]
    assert lab.proxy.health()["registrations"] >= 1


def test_register_with_a_wrong_password_is_forbidden(lab: Lab) -> None:
    phone = lab.phone("1002")
    before = counters(lab.proxy)["auth_failures"]

    assert phone.register(password="not-the-password").status == 403
    assert counters(lab.proxy)["auth_failures"] == before + 1
    assert lab.proxy.get("/registrations?user=1002")["registrations"] == []


def test_register_of_an_unknown_user_is_not_found(lab: Lab) -> None:
    phone = lab.phone("7777")
    assert phone.register().status == 404


def test_unregister_with_expires_zero_removes_the_contact(lab: Lab) -> None:
    phone = lab.registered("1010")
    assert lab.proxy.get("/registrations?user=1010")["registrations"]

    assert phone.register(expires=0).status == 200
    assert lab.proxy.get("/registrations?user=1010")["registrations"] == []


def test_registration_expires(lab: Lab) -> None:
    phone = lab.phone("1015")
    assert phone.register(expires=1).status == 200
    assert lab.proxy.get("/registrations?user=1015")["registrations"]

    eventually(lambda: not lab.proxy.get("/registrations?user=1015")["registrations"], 3.0, "the binding to expire")
    assert lab.phone("1001").invite("1015").final.status == 404


def test_registrations_are_per_proxy_instance(lab: Lab) -> None:
    lab.registered("1011")
    assert lab.proxy.get("/registrations?user=1011")["registrations"]
    assert lab.twin.get("/registrations?user=1011")["registrations"] == []


# --- calls between users ---------------------------------------------------------------------------------
def test_call_between_registered_users_is_authenticated_record_routed_and_anchored(
    lab: Lab, record_testsuite_property: Callable[[str, object], None]
) -> None:
    callee = lab.registered("1003")
    caller = lab.phone("1001")
    before = counters(lab.proxy)
    started = time.monotonic()

    dialog = caller.invite("1003")

    setup_ms = (time.monotonic() - started) * 1000
    record_testsuite_property("raw_ua_setup_ms_with_407", round(setup_ms, 1))
    assert dialog.final.status == 200, dialog.final.start
    assert counters(lab.proxy)["challenges"] == before["challenges"] + 1  # the 407
    answers = [m.status for m in caller.seen if m.h("cseq") == "2 INVITE"]
    assert answers[0] == 100 and 180 in answers and answers[-1] == 200  # Trying at once, Ringing forwarded
    invite = callee.wait_request("INVITE")
    own_route = f"<sip:{HOST}:{lab.sip[1]};lr>"
    assert invite.all("record-route") == [own_route]
    assert dialog.final.all("record-route") == [own_route]
    assert "proxy-authorization" not in dict(invite.headers)  # consumed by the proxy
    assert invite.uri == f"sip:1003@{HOST}:{callee.port}"
    relay_at_callee = sdp_media(invite.body)
    relay_at_caller = sdp_media(dialog.final.body)
    low, high = lab.media_range
    for address, port in (relay_at_callee, relay_at_caller):
        assert address == HOST
        assert low <= port <= high, f"SDP points at {port}, not the relay's {low}-{high}"
    assert relay_at_callee != relay_at_caller

    for _ in range(5):  # RTP both ways through the relay; the relay latches onto the real sources
        caller.rtp.sendto(b"\x80\x00" + os.urandom(170), (HOST, relay_at_caller[1]))
        callee.rtp.sendto(b"\x80\x00" + os.urandom(170), (HOST, relay_at_callee[1]))
    assert len(callee.rtp.recvfrom(2048)[0]) == 172
    assert len(caller.rtp.recvfrom(2048)[0]) == 172
    session = eventually(
        lambda: next(iter(lab.relay.get(f"/sessions?call_id={dialog.call_id}")["sessions"]), None),
        what="relay session",
    )
    eventually(
        lambda: lab.relay.get(f"/sessions?call_id={dialog.call_id}")["sessions"][0]["callee_to_caller"]["packets"] == 5,
        what="5 packets each way",
    )
    session = lab.relay.get(f"/sessions?call_id={dialog.call_id}")["sessions"][0]
    assert session["caller_to_callee"] == {"packets": 5, "bytes": 860}
    assert session["callee_to_caller"] == {"packets": 5, "bytes": 860}
    assert lab.proxy.get(f"/dialogs?call_id={dialog.call_id}")["dialogs"][0]["state"] == "confirmed"
    callee.wait_request("ACK")
    time.sleep(0.3)

    assert caller.bye(dialog).status == 200

    assert callee.wait_request("BYE").h("call-id") == dialog.call_id
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["disposition"], cdr["sip_code"], cdr["caller"], cdr["callee"], cdr["proxy"]) == (
        "ANSWERED", 200, "1001", "1003", "proxy-a",
    )  # fmt: skip
    assert 0.3 <= cdr["duration_s"] < 3.0
    assert cdr["answer_time"] is not None and cdr["start_time"] <= cdr["answer_time"] <= cdr["end_time"]
    assert setup_ms < 500
    eventually(lambda: not lab.relay.get(f"/sessions?call_id={dialog.call_id}")["sessions"], what="relay release")
    assert lab.proxy.get(f"/dialogs?call_id={dialog.call_id}")["dialogs"] == []


def test_reinvite_and_refer_follow_the_route_set_and_keep_media_anchored(lab: Lab) -> None:
    callee = lab.registered("1013")
    caller = lab.phone("1001")
    dialog = caller.invite("1013")
    assert dialog.final.status == 200
    relay_at_caller = sdp_media(dialog.final.body)

    answer = caller.reinvite(dialog)

    assert answer.status == 200
    reinvites = eventually(lambda: [m for m in callee.requests_of("INVITE") if m.tag("to")], what="the re-INVITE")
    assert reinvites[0].h("route") == ""  # the proxy consumed its own Route
    assert sdp_media(answer.body) == relay_at_caller  # same relay port for the same call
    assert sdp_media(reinvites[0].body)[1] in range(*lab.media_range)
    legs = lab.relay.get(f"/sessions?call_id={dialog.call_id}")["sessions"][0]["legs"]
    assert legs[0]["advertised"] == [f"{HOST}:{caller.rtp_port}"]  # the caller's new port
    caller.rtp.sendto(b"after-reinvite", (HOST, relay_at_caller[1]))
    assert callee.rtp.recvfrom(100)[0] == b"after-reinvite"

    caller.in_dialog(dialog, "REFER")
    assert caller.expect(lambda m: "REFER" in m.h("cseq")).status == 202
    assert callee.wait_request("REFER").h("call-id") == dialog.call_id
    assert caller.bye(dialog).status == 200


def test_callee_that_never_answers_gets_retransmissions_then_408(lab: Lab) -> None:
    callee = lab.registered("1014", policy="ignore")
    started = time.monotonic()

    dialog = lab.phone("1001").invite("1014", final_timeout=5)

    assert dialog.final.status == 408
    assert 1.8 <= time.monotonic() - started < 4.0  # no_response_timeout is 2 s
    assert len(callee.requests_of("INVITE")) >= 2  # the proxy retransmitted the INVITE (timer A)
    assert counters(lab.proxy)["no_response_timeouts"] >= 1
    assert lab.cdr(dialog.call_id)["disposition"] == "NO ANSWER"


def test_invite_with_a_wrong_password_is_forbidden(lab: Lab) -> None:
    caller = lab.phone("1001")
    uri = f"sip:1003@{HOST}:{lab.sip[1]}"
    lines = caller.headers("INVITE", uri, uri, "call-wrongpw", 1)
    caller.send("\r\n".join(lines) + "\r\n\r\n")
    challenge = caller.final()
    assert challenge.status == 407
    lines = caller.headers("INVITE", uri, uri, "call-wrongpw", 2)
    bad = digest("INVITE", uri, "1001", "wrong", challenge.h("proxy-authenticate"))
    caller.send("\r\n".join([*lines, f"Proxy-Authorization: {bad}"]) + "\r\n\r\n")
    assert caller.final().status == 403


def test_call_to_a_registered_user_fails_over_to_a_second_proxy(lab: Lab) -> None:
    """Each instance routes the phones registered with it; proxy B has no relay, so SDP passes unanchored."""
    callee = lab.phone("1012", twin=True)
    assert callee.register().status == 200
    caller = lab.phone("1001", twin=True)
    before = counters(lab.twin)

    dialog = caller.invite("1012")

    assert dialog.final.status == 200
    invite = callee.wait_request("INVITE")
    assert invite.all("record-route") == [f"<sip:{HOST}:{lab.twin_sip[1]};lr>"]
    assert sdp_media(invite.body) == (HOST, caller.rtp_port)  # unanchored: the caller's own port
    assert sdp_media(dialog.final.body) == (HOST, callee.rtp_port)
    after = counters(lab.twin)
    assert after["unanchored"] >= before["unanchored"] + 1
    assert after["relay_failures"] >= before["relay_failures"] + 1
    assert caller.bye(dialog).status == 200
    assert lab.cdr(dialog.call_id)["proxy"] == "proxy-b"


def test_answered_call_whose_bye_is_lost_is_ended_after_the_dialog_timeout(lab: Lab) -> None:
    lab.phone("1012", twin=True).register()
    dialog = lab.phone("1001", twin=True).invite("1012")
    assert dialog.final.status == 200

    cdr = lab.cdr(dialog.call_id, timeout=5)  # proxy B's dialog_timeout is 1.5 s; nobody sends a BYE

    assert (cdr["disposition"], cdr["proxy"]) == ("ANSWERED", "proxy-b")
    assert 1.5 <= cdr["duration_s"] < 4
    assert counters(lab.twin)["dialog_timeouts"] >= 1


# --- failures and failure routing ----------------------------------------------------------------------------
def test_call_to_an_unregistered_user_is_not_found(lab: Lab) -> None:
    dialog = lab.phone("1001").invite("1004")

    assert dialog.final.status == 404
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["disposition"], cdr["sip_code"], cdr["duration_s"]) == ("FAILED", 404, 0.0)


def test_call_to_an_unknown_number_is_not_found(lab: Lab) -> None:
    assert lab.phone("1001").invite("55555").final.status == 404


def test_call_to_an_unregistered_user_with_voicemail_goes_to_voicemail(lab: Lab) -> None:
    caller = lab.phone("1001")

    dialog = caller.invite("1005")

    assert dialog.final.status == 200
    invite = next(m for m in lab.voicemail.requests_of("INVITE") if m.h("call-id") == dialog.call_id)
    assert invite.uri == f"sip:voicemail@{HOST}:{lab.voicemail.port}"
    assert invite.h("diversion") == f"<sip:1005@{HOST}>;reason=unavailable;counter=1"
    assert invite.h("to") == f"<sip:1005@{HOST}:{lab.sip[1]}>"
    assert caller.bye(dialog).status == 200
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["disposition"], cdr["callee"]) == ("ANSWERED", "1005")


def test_busy_callee_with_voicemail_is_diverted_to_voicemail(lab: Lab) -> None:
    callee = lab.registered("1006", policy="busy")
    caller = lab.phone("1001")

    dialog = caller.invite("1006")

    assert dialog.final.status == 200
    assert callee.wait_request("ACK")  # the proxy acknowledged the 486 itself, hop by hop
    invite = next(m for m in lab.voicemail.requests_of("INVITE") if m.h("call-id") == dialog.call_id)
    assert "reason=user-busy" in invite.h("diversion")
    assert sdp_media(invite.body)[1] in range(*lab.media_range)  # the diverted offer is still anchored
    assert caller.bye(dialog).status == 200
    assert lab.cdr(dialog.call_id)["disposition"] == "ANSWERED"


def test_busy_callee_without_voicemail_gets_busy(lab: Lab) -> None:
    lab.registered("1008", policy="busy")

    dialog = lab.phone("1001").invite("1008")

    assert dialog.final.status == 486
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["disposition"], cdr["sip_code"]) == ("BUSY", 486)
    eventually(lambda: not lab.relay.get(f"/sessions?call_id={dialog.call_id}")["sessions"], what="relay release")


def test_unanswered_call_without_voicemail_times_out(lab: Lab) -> None:
    callee = lab.registered("1009", policy="ring")
    started = time.monotonic()

    dialog = lab.phone("1001").invite("1009", final_timeout=RING_TIMEOUT + 3)

    assert dialog.final.status == 408
    assert RING_TIMEOUT - 0.2 <= time.monotonic() - started < RING_TIMEOUT + 2
    assert callee.wait_request("CANCEL")
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["disposition"], cdr["sip_code"]) == ("NO ANSWER", 408)


def test_unanswered_call_with_voicemail_goes_to_voicemail_after_the_ring_timeout(lab: Lab) -> None:
    callee = lab.registered("1007", policy="ring")
    caller = lab.phone("1001")

    dialog = caller.invite("1007", final_timeout=RING_TIMEOUT + 3)

    assert dialog.final.status == 200
    assert callee.wait_request("CANCEL")
    invite = next(m for m in lab.voicemail.requests_of("INVITE") if m.h("call-id") == dialog.call_id)
    assert "reason=no-answer" in invite.h("diversion")
    assert caller.bye(dialog).status == 200
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["disposition"], cdr["callee"]) == ("ANSWERED", "1007")


def test_caller_cancel_is_forwarded_and_recorded_as_cancelled(lab: Lab) -> None:
    callee = lab.registered("1009", policy="ring")
    caller = lab.phone("1001")
    uri = f"sip:1009@{HOST}:{lab.sip[1]}"
    lines = caller.headers("INVITE", uri, uri, "call-cancel", 1)
    caller.send("\r\n".join(lines) + "\r\n\r\n")
    challenge = caller.final()
    caller.send("\r\n".join(caller._ack_lines(lines, challenge)) + "\r\n\r\n")
    lines = caller.headers("INVITE", uri, uri, "call-cancel", 2)
    credentials = digest("INVITE", uri, "1001", USERS["1001"], challenge.h("proxy-authenticate"))
    caller.send("\r\n".join([*lines, f"Proxy-Authorization: {credentials}"]) + "\r\n\r\n")
    assert caller.expect(lambda m: m.status == 180).status == 180

    cancel = [line for line in lines if not line.startswith(("Contact", "Proxy-Auth"))]
    cancel[0] = cancel[0].replace("INVITE", "CANCEL", 1)
    cancel[5] = "CSeq: 2 CANCEL"
    caller.send("\r\n".join(cancel) + "\r\n\r\n")

    assert caller.expect(lambda m: m.status == 200 and "CANCEL" in m.h("cseq")).status == 200
    assert caller.expect(lambda m: m.status >= 300).status == 487
    assert callee.wait_request("CANCEL").h("call-id") == "call-cancel"
    cdr = lab.cdr("call-cancel")
    assert (cdr["disposition"], cdr["sip_code"]) == ("CANCELLED", 487)


# --- services and trunks ------------------------------------------------------------------------------------
def test_service_number_is_routed_to_its_voice_application(lab: Lab) -> None:
    caller = lab.phone("1001")

    dialog = caller.invite("8100")

    assert dialog.final.status == 200
    invite = next(m for m in lab.ivr.requests_of("INVITE") if m.h("call-id") == dialog.call_id)
    assert invite.uri == f"sip:ivr@{HOST}:{lab.ivr.port}"
    assert caller.bye(dialog).status == 200


def test_trunk_prefix_is_routed_to_the_pstn_peer_with_the_prefix_stripped(lab: Lab) -> None:
    caller = lab.phone("1001")

    dialog = caller.invite("0912345678")

    assert dialog.final.status == 200
    invite = next(m for m in lab.trunk.requests_of("INVITE") if m.h("call-id") == dialog.call_id)
    assert invite.uri == f"sip:12345678@{HOST}:{lab.trunk.port}"
    assert caller.bye(dialog).status == 200
    assert lab.cdr(dialog.call_id)["callee"] == "0912345678"


def test_calls_from_the_trunk_address_are_trusted_without_a_challenge(lab: Lab) -> None:
    callee = lab.registered("1003")
    before = counters(lab.proxy)["challenges"]

    dialog = lab.trunk.invite("1003", auth=False)

    assert dialog.final.status == 200
    assert counters(lab.proxy)["challenges"] == before
    assert callee.wait_request("INVITE").h("call-id") == dialog.call_id
    assert lab.trunk.bye(dialog).status == 200


# --- MESSAGE and OPTIONS -------------------------------------------------------------------------------------
def test_message_is_routed_like_a_call_and_not_stored(lab: Lab) -> None:
    callee = lab.registered("1003")
    caller = lab.phone("1001")
    uri = f"sip:1003@{HOST}:{lab.sip[1]}"
    lines = [*caller.headers("MESSAGE", uri, uri, "msg-1", 1), "Content-Type: text/plain"]
    caller.send("\r\n".join(lines) + "\r\n\r\nhello")
    challenge = caller.final()
    assert challenge.status == 407
    credentials = digest("MESSAGE", uri, "1001", USERS["1001"], challenge.h("proxy-authenticate"))
    lines = [*caller.headers("MESSAGE", uri, uri, "msg-1", 2), "Content-Type: text/plain"]
    caller.send("\r\n".join([*lines, f"Proxy-Authorization: {credentials}"]) + "\r\n\r\nhello")

    assert caller.final().status == 200
    assert callee.wait_request("MESSAGE").body == b"hello"
    assert lab.proxy.get("/dialogs?call_id=msg-1")["dialogs"] == []


def test_options_to_the_proxy_is_answered(lab: Lab) -> None:
    phone = lab.phone("1001")
    lines = phone.headers("OPTIONS", f"sip:{HOST}:{lab.sip[1]}", f"sip:{HOST}", "opt-1", 1)
    phone.send("\r\n".join(lines) + "\r\n\r\n")
    answer = phone.final()
    assert answer.status == 200
    assert "INVITE" in answer.h("allow")


# --- robustness --------------------------------------------------------------------------------------------
def test_malformed_datagrams_get_400_or_are_dropped_and_the_proxy_keeps_serving(lab: Lab) -> None:
    phone = lab.phone("1001")
    before = counters(lab.proxy)
    via = f"Via: SIP/2.0/UDP {HOST}:{phone.port};branch=z9hG4bKbad{os.urandom(3).hex()}"

    phone.send_raw(os.urandom(300))
    phone.send_raw(b"HELLO WORLD\r\n\r\n")
    assert phone.quiet(0.3) == []  # nothing to address a response to: dropped
    phone.send_raw(
        f"INVITE sip:1003@{HOST} SIP/2.0\r\n{via}1\r\nFrom: <sip:a@b>;tag=1\r\nCSeq: 1 INVITE\r\n\r\n".encode()
    )
    missing = phone.final()
    phone.send_raw(
        f"MESSAGE sip:1003@{HOST} SIP/2.0\r\n{via}2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\n"
        "CSeq: 1 MESSAGE\r\nContent-Length: 500\r\n\r\nshort".encode()
    )
    bad_length = phone.final()
    bad = f"OPTIONS sip:{HOST} SIP/2.0\r\n{via}3\r\nFrom: <sip:a@b>;tag=1\r\nTo: x\r\nCall-ID: y\r\nCSeq: z\r\n\r\n"
    phone.send_raw(bad.encode())
    bad_cseq = phone.final()
    phone.send_raw(b"\r\n\r\n")  # a keep-alive: ignored, not malformed

    assert (missing.status, bad_length.status, bad_cseq.status) == (400, 400, 400)
    assert "Content-Length" in bad_length.start
    after = counters(lab.proxy)
    assert after["malformed"] == before["malformed"] + 5
    assert after["malformed_answered"] == before["malformed_answered"] + 3
    lines = phone.headers("OPTIONS", f"sip:{HOST}:{lab.sip[1]}", f"sip:{HOST}", "opt-2", 1)
    phone.send("\r\n".join(lines) + "\r\n\r\n")
    assert phone.final().status == 200
    assert lab.proxy.process.poll() is None


def test_retransmitted_request_gets_the_same_answer_from_the_transaction(lab: Lab) -> None:
    phone = lab.phone("1001")
    uri = f"sip:1003@{HOST}:{lab.sip[1]}"
    text = "\r\n".join(phone.headers("INVITE", uri, uri, "call-retrans", 1)) + "\r\n\r\n"
    before = counters(lab.proxy)

    phone.send(text)
    first = phone.final()
    phone.send(text)
    second = phone.final()

    assert first.status == second.status == 407
    assert first.h("proxy-authenticate") == second.h("proxy-authenticate")  # the cached answer, not a new nonce
    after = counters(lab.proxy)
    assert after["retransmissions"] == before["retransmissions"] + 1
    assert after["challenges"] == before["challenges"] + 1


def test_max_forwards_zero_is_too_many_hops(lab: Lab) -> None:
    phone = lab.phone("1001")
    uri = f"sip:1003@{HOST}:{lab.sip[1]}"
    lines = [
        line if line != "Max-Forwards: 70" else "Max-Forwards: 0"
        for line in phone.headers("MESSAGE", uri, uri, "mf0", 1)
    ]
    phone.send("\r\n".join(lines) + "\r\n\r\n")
    assert phone.final().status == 483


# --- the JSON-RPC control surface (POST /RPC, as Kamailio's jsonrpcs) -------------------------------------------
def rpc(server: Server, method: str, params: list[Any], *, request_id: Any = 1) -> tuple[int, dict[str, Any]]:
    """(HTTP status, answer) of one JSON-RPC 2.0 request to the proxy's /RPC."""
    payload: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if request_id is not None:
        payload["id"] = request_id
    return post_json(f"{server.http}/RPC", json.dumps(payload).encode())


def post_json(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def result(server: Server, method: str, params: list[Any]) -> Any:
    status, answer = rpc(server, method, params)
    assert status == 200 and "error" not in answer, f"{method} {params}: HTTP {status} {answer}"
    return answer["result"]


@contextlib.contextmanager
def provisioned(server: Server, table: str, entries: dict[str, str]) -> Iterator[None]:
    """htable.sets for the test, htable.delete afterwards (the proxies are shared by the module's tests)."""
    for key, value in entries.items():
        assert result(server, "htable.sets", [table, key, value]) == "Ok. Key set to new value."
    try:
        yield
    finally:
        for key in entries:
            rpc(server, "htable.delete", [table, key])


def test_htable_rpcs_answer_as_kamailios_jsonrpcs(lab: Lab) -> None:
    proxy = lab.twin

    assert rpc(proxy, "htable.sets", ["fwd", "1001", "1002"]) == (
        200, {"jsonrpc": "2.0", "result": "Ok. Key set to new value.", "id": 1},
    )  # fmt: skip
    assert result(proxy, "htable.sets", ["routes", "0049", "sip:127.0.0.1:15200"]) == "Ok. Key set to new value."
    assert result(proxy, "htable.sets", ["routes", "abc", "sip:1002@127.0.0.1"]) == "Ok. Key set to new value."
    assert result(proxy, "htable.get", ["fwd", "1001"]) == {
        "item": {"name": "1001", "value": "1002", "flags": 2, "expire": "NEVER"}
    }
    # the hash slots real Kamailio 5.6 showed for these keys (size=8): 28, 161 and 66
    assert result(proxy, "htable.dump", ["fwd"]) == [
        {"entry": 28, "size": 1, "slot": [{"name": "1001", "value": "1002", "type": "str"}]}
    ]
    assert [slot["entry"] for slot in result(proxy, "htable.dump", ["routes"])] == [66, 161]
    assert result(proxy, "htable.dump", ["cli"]) == []
    assert result(proxy, "htable.delete", ["fwd", "1001"]) == "Ok. Key deleted."
    assert result(proxy, "htable.delete", ["routes", "0049"]) == "Ok. Key deleted."
    assert result(proxy, "htable.delete", ["routes", "abc"]) == "Ok. Key deleted."
    assert rpc(proxy, "htable.sets", ["fwd", "1001", "1002"], request_id=None) == (
        200, {"jsonrpc": "2.0", "result": "Ok. Key set to new value."},
    )  # fmt: skip
    assert rpc(proxy, "htable.delete", ["fwd", "1001"], request_id="x")[1]["id"] == "x"

    errors = {
        ("htable.delete", ("fwd", "1001")): (404, 404, "Key not found in htable."),
        ("htable.get", ("fwd", "1001")): (500, 500, "Key name doesn't exist in htable."),
        ("htable.sets", ("nope", "a", "b")): (500, 500, "No such htable"),
        ("htable.dump", ("nope",)): (500, 500, "No such htable"),
        ("htable.sets", ("fwd", "1001")): (500, 500, "Not enough parameters (htable name, key name and value)"),
        ("htable.sets", ("fwd", 1001, "1002")): (500, 500, "Not enough parameters (htable name, key name and value)"),
        ("no.such", ()): (500, 500, "Method Not Found"),
    }
    for (method, params), (status, code, message) in errors.items():
        assert rpc(proxy, method, list(params)) == (
            status, {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": 1},
        ), (method, params)  # fmt: skip
    invalid = {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}
    assert post_json(f"{proxy.http}/RPC", b"not json") == (400, invalid)
    assert post_json(f"{proxy.http}/RPC", b'{"jsonrpc": "2.0", "params": []}') == (400, invalid)
    assert proxy.get("/health")["status"] == "ok"  # GET routes unchanged


def test_fwd_makes_a_call_to_a_ring_b_and_the_cdr_keeps_the_number_dialled(lab: Lab) -> None:
    from lab.voiceapps import rpc as voiceapps_rpc  # the voice applications' own client

    a = lab.registered("1016")
    b = lab.registered("1017")
    caller = lab.phone("1018")
    url = f"{lab.proxy.http}/RPC"

    voiceapps_rpc.set_forwarding(url, "1016", "1017")
    try:
        dialog = caller.invite("1016")
    finally:
        voiceapps_rpc.clear_forwarding(url, "1016")

    assert dialog.final.status == 200
    invite = b.wait_request("INVITE")
    assert invite.h("call-id") == dialog.call_id
    assert invite.uri == f"sip:1017@{HOST}:{b.port}"
    assert invite.h("to") == f"<sip:1016@{HOST}:{lab.sip[1]}>"
    assert a.requests_of("INVITE") == []
    assert caller.bye(dialog).status == 200
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["disposition"], cdr["caller"], cdr["callee"]) == ("ANSWERED", "1018", "1016")
    # Kamailio answers a missing key with HTTP 404 and error 404 (voiceapps' client reads the HTTP status first)
    assert rpc(lab.proxy, "htable.delete", ["fwd", "1016"])[0] == 404
    after = caller.invite("1016")
    assert after.final.status == 200 and len(a.requests_of("INVITE")) == 1  # forwarding off: A rings again
    assert caller.bye(after).status == 200


def test_routes_send_the_longest_matching_prefix_to_its_target(lab: Lab) -> None:
    user = lab.registered("1019")
    caller = lab.phone("1018")
    rules = {
        "0077": f"sip:1019@{HOST}",  # a user of this domain: its registered contact
        "00771": f"sip:ivr@{HOST}:{lab.ivr.port}",  # an application: as it is
        "0088": f"sip:{HOST}:{lab.trunk.port}",  # a peer without user part: the number dialled is the user
        "10": f"sip:ivr@{HOST}:{lab.ivr.port}",  # never used: users come first
    }
    with provisioned(lab.proxy, "routes", rules):
        to_user = caller.invite("0077999")
        to_ivr = caller.invite("00771234")
        to_peer = caller.invite("0088555")
        to_1019 = caller.invite("1019")

    assert [d.final.status for d in (to_user, to_ivr, to_peer, to_1019)] == [200, 200, 200, 200]
    assert [m.uri for m in user.requests_of("INVITE")] == [f"sip:1019@{HOST}:{user.port}"] * 2
    ivr = next(m for m in lab.ivr.requests_of("INVITE") if m.h("call-id") == to_ivr.call_id)
    assert ivr.uri == f"sip:ivr@{HOST}:{lab.ivr.port}"
    peer = next(m for m in lab.trunk.requests_of("INVITE") if m.h("call-id") == to_peer.call_id)
    assert peer.uri == f"sip:0088555@{HOST}:{lab.trunk.port}"
    for dialog in (to_user, to_ivr, to_peer, to_1019):
        assert caller.bye(dialog).status == 200
    assert lab.cdr(to_user.call_id)["callee"] == "0077999"
    assert result(lab.proxy, "htable.dump", ["routes"]) == []
    assert counters(lab.proxy)["routed_calls"] >= 3


def test_trunks_let_a_provisioned_account_register_and_call(lab: Lab) -> None:
    from lab.platform.kamailio import HtableChange, KamailioRpc  # the platform API's own client

    trunk = lab.phone("acme-trunk", password="s3cret-Trunk")
    callee = lab.registered("1020")
    assert trunk.register().status == 404
    client = KamailioRpc([f"{lab.proxy.http}/RPC"], timeout=5)
    try:
        client.push([HtableChange("trunks", "acme-trunk", None, "s3cret-Trunk")])

        assert trunk.register(password="wrong").status == 403
        assert trunk.register().status == 200
        dialog = trunk.invite("1020")
        assert dialog.final.status == 200
        assert callee.wait_request("INVITE").h("from").startswith("<sip:acme-trunk@")
        assert trunk.bye(dialog).status == 200
        inbound = lab.phone("1018").invite("acme-trunk")  # a registered trunk account is reachable by name
        assert inbound.final.status == 200
        assert trunk.wait_request("INVITE").h("call-id") == inbound.call_id
    finally:
        client.push([HtableChange("trunks", "acme-trunk", "s3cret-Trunk", None)])
        client.close()
    assert trunk.register().status == 404


def test_cli_rewrites_the_callers_from_and_p_asserted_identity(lab: Lab) -> None:
    callee = lab.registered("1021")
    caller = lab.phone("1022")
    with provisioned(lab.proxy, "cli", {"1022": "4930111"}):
        dialog = caller.invite("1021", extra=[f"P-Asserted-Identity: <sip:1022@{HOST}>"])
        other = lab.phone("1018").invite("1021")  # another caller keeps its own number

    assert dialog.final.status == 200 and other.final.status == 200
    invites = {m.h("call-id"): m for m in callee.requests_of("INVITE")}
    assert invites[dialog.call_id].h("from") == f"<sip:4930111@{HOST}>;tag={caller.tag}"
    assert invites[dialog.call_id].all("p-asserted-identity") == [f"<sip:4930111@{HOST}>"]
    assert invites[other.call_id].h("from").startswith(f"<sip:1018@{HOST}>")
    assert dialog.final.h("from") == f"<sip:1022@{HOST}>;tag={caller.tag}"  # the caller sees its own From
    assert caller.bye(dialog).status == 200
    bye = callee.wait_request("BYE")
    assert bye.h("from") == f"<sip:4930111@{HOST}>;tag={caller.tag}"
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["caller"], cdr["callee"], cdr["from_uri"]) == ("1022", "1021", f"sip:1022@{HOST}")
    assert caller.seen[-1].h("from") == f"<sip:1022@{HOST}>;tag={caller.tag}"  # the BYE's 200, restored
    assert lab.phone("1018").bye(other).status in (200, 481)


def test_dlg_list_shows_a_live_call_as_kamailios_dialog_module(lab: Lab) -> None:
    from lab.platform.kamailio import KamailioRpc, dialog_view

    callee = lab.registered("1023")
    caller = lab.phone("1024")
    dialog = caller.invite("1023")
    assert dialog.final.status == 200
    callee.wait_request("ACK")
    client = KamailioRpc([f"{lab.proxy.http}/RPC"], timeout=5)
    try:
        dialogs, failures = client.list_dialogs()
    finally:
        client.close()

    assert failures == []
    found = next(d for d in dialogs if d["call-id"] == dialog.call_id)
    assert found["state"] == 4  # confirmed by the ACK
    assert (found["from_uri"], found["to_uri"]) == (f"sip:1024@{HOST}", f"sip:1023@{HOST}:{lab.sip[1]}")
    assert found["caller"]["tag"] == caller.tag and found["callee"]["tag"] == dialog.to_tag
    assert found["caller"]["contact"] == f"sip:1024@{HOST}:{caller.port}"
    assert found["callee"]["contact"] == f"sip:1023@{HOST}:{callee.port}"
    assert found["h_entry"] == lab.proxy.get(f"/dialogs?call_id={dialog.call_id}")["dialogs"][0]["h_entry"]
    assert 0 <= found["h_entry"] < 4096 and found["h_id"] > 0
    assert abs(found["start_ts"] - time.time()) < 5
    view = dialog_view(found)
    assert (view["call_id"], view["state"], view["from"]) == (dialog.call_id, "answered", f"sip:1024@{HOST}")
    assert caller.bye(dialog).status == 200
    assert all(d["call-id"] != dialog.call_id for d in result(lab.proxy, "dlg.list", []))


def test_dlg_end_dlg_sends_bye_to_both_phones_and_writes_an_answered_cdr(lab: Lab) -> None:
    callee = lab.registered("1025")
    caller = lab.phone("1026")
    dialog = caller.invite("1025")
    assert dialog.final.status == 200
    callee.wait_request("ACK")
    found = next(d for d in result(lab.proxy, "dlg.list", []) if d["call-id"] == dialog.call_id)
    time.sleep(0.3)

    assert result(lab.proxy, "dlg.end_dlg", [found["h_entry"], found["h_id"]]) == {}

    to_caller, to_callee = caller.wait_request("BYE"), callee.wait_request("BYE")
    assert to_caller.uri == f"sip:1026@{HOST}:{caller.port}"
    assert (to_caller.tag("from"), to_caller.tag("to")) == (dialog.to_tag, caller.tag)
    assert to_callee.uri == f"sip:1025@{HOST}:{callee.port}"
    assert (to_callee.tag("from"), to_callee.tag("to")) == (caller.tag, dialog.to_tag)
    assert to_callee.h("cseq") == f"{dialog.cseq + 1} BYE" and to_caller.h("cseq") == "1 BYE"
    cdr = lab.cdr(dialog.call_id)
    assert (cdr["disposition"], cdr["sip_code"], cdr["caller"], cdr["callee"]) == ("ANSWERED", 200, "1026", "1025")
    assert 0.3 <= cdr["duration_s"] < 3
    assert lab.proxy.get(f"/dialogs?call_id={dialog.call_id}")["dialogs"] == []
    assert rpc(lab.proxy, "dlg.end_dlg", [found["h_entry"], found["h_id"]])[1]["error"] == {
        "code": 404, "message": "Dialog not found",
    }  # fmt: skip
    assert rpc(lab.proxy, "dlg.end_dlg", ["x"])[1]["error"] == {"code": 500, "message": "Invalid parameters"}
    eventually(lambda: not lab.relay.get(f"/sessions?call_id={dialog.call_id}")["sessions"], what="relay release")


def test_dlg_end_dlg_leaves_a_ringing_call_alone_as_kamailio_does(lab: Lab) -> None:
    lab.registered("1027", policy="ring")
    caller = lab.phone("1028")
    calls: queue.Queue[Dialog] = queue.Queue()
    threading.Thread(target=lambda: calls.put(caller.invite("1027", final_timeout=RING_TIMEOUT + 3))).start()
    ringing = eventually(
        lambda: next((d for d in result(lab.proxy, "dlg.list", []) if d["caller"]["tag"] == caller.tag), None),
        what="the ringing call in dlg.list",
    )
    assert ringing["state"] in (1, 2) and ringing["callee"]["tag"] is None and ringing["start_ts"] == 0

    assert result(lab.proxy, "dlg.end_dlg", [ringing["h_entry"], ringing["h_id"]]) == {}

    assert caller.requests_of("BYE") == []
    assert calls.get(timeout=RING_TIMEOUT + 4).final.status == 408  # it ends by itself, unanswered


def test_telco_transfer_makes_the_caller_receive_a_refer(lab: Lab) -> None:
    callee = lab.registered("1029")
    caller = lab.phone("1030")
    dialog = caller.invite("1029")
    assert dialog.final.status == 200
    callee.wait_request("ACK")
    target = f"sip:8100@{HOST}"

    answer = result(lab.proxy, "telco.transfer", [dialog.call_id, target])

    assert answer == {"call-id": dialog.call_id, "refer-to": target, "to": f"sip:1030@{HOST}:{caller.port}", "cseq": 1}
    refer = caller.wait_request("REFER")
    assert refer.uri == f"sip:1030@{HOST}:{caller.port}"
    assert refer.h("refer-to") == f"<{target}>"
    assert refer.h("referred-by") == f"<sip:1029@{HOST}:{lab.sip[1]}>"
    assert (refer.tag("from"), refer.tag("to"), refer.h("call-id")) == (dialog.to_tag, caller.tag, dialog.call_id)
    assert refer.h("cseq") == "1 REFER"
    assert refer.h("contact") == f"<sip:{HOST}:{lab.sip[1]}>"
    assert result(lab.proxy, "telco.transfer", [dialog.call_id, target])["cseq"] == 2  # the callee's next CSeq
    assert rpc(lab.proxy, "telco.transfer", ["no-such-call", target])[1]["error"] == {
        "code": 404, "message": "Dialog not found",
    }  # fmt: skip
    assert rpc(lab.proxy, "telco.transfer", [dialog.call_id, "not a uri"])[1]["error"] == {
        "code": 500, "message": "Invalid parameters",
    }  # fmt: skip
    assert caller.bye(dialog).status == 200
    assert counters(lab.proxy)["transfers"] >= 2


# --- the relay on its own ------------------------------------------------------------------------------------
def relay_command(lab: Lab, request: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        control.settimeout(2)
        control.sendto(json.dumps(request).encode(), lab.relay_control)
        return dict(json.loads(control.recv(65535)))


def test_relay_latches_on_the_real_sources_and_relays_rtcp(lab: Lab) -> None:
    a, b, a_rtcp, b_rtcp = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4))
    with a, b, a_rtcp, b_rtcp:
        for sock in (a, b, a_rtcp, b_rtcp):
            sock.bind((HOST, 0))
            sock.settimeout(2)
        offer = {"command": "offer", "call_id": "latch", "from_tag": "A", "address": HOST, "port": 9}
        offered = relay_command(lab, {"cookie": "o1", **offer})  # the SDP says port 9: only latching finds A
        answered = relay_command(
            lab,
            {"cookie": "a1", "command": "answer", "call_id": "latch", "from_tag": "B", "to_tag": "A",
             "media": [{"address": HOST, "port": b.getsockname()[1]}]},
        )  # fmt: skip
        assert offered["result"] == answered["result"] == "ok"
        port_for_b, port_for_a = offered["port"], answered["port"]

        a.sendto(b"from-a", (HOST, port_for_a))
        assert b.recvfrom(100) == (b"from-a", (HOST, port_for_b))
        b.sendto(b"from-b", (HOST, port_for_b))
        assert a.recvfrom(100) == (b"from-b", (HOST, port_for_a))  # latched onto A's real port
        b_rtcp.sendto(b"rtcp-b", (HOST, port_for_b + 1))  # latches B's RTCP (A's goes nowhere yet)
        a_rtcp.sendto(b"rtcp-a", (HOST, port_for_a + 1))
        assert b_rtcp.recvfrom(100) == (b"rtcp-a", (HOST, port_for_b + 1))

        session = relay_command(lab, {"cookie": "q1", "command": "query", "call_id": "latch"})["session"]
        assert session["caller_to_callee"] == {"packets": 2, "bytes": 12}
        assert session["legs"][0]["latched"] == [f"{HOST}:{a.getsockname()[1]}"]
        assert relay_command(lab, {"cookie": "o1", **offer})["port"] == port_for_b  # a retry: the same answer
        assert relay_command(lab, {"cookie": "d1", "command": "delete", "call_id": "latch"})["result"] == "ok"


def test_relay_frees_ports_on_delete_and_after_the_idle_timeout(lab: Lab) -> None:
    def ports_in_use() -> int:
        return int(lab.relay.health()["ports_in_use"])

    eventually(lambda: ports_in_use() == 0, 6.0, "no sessions left from other tests")
    relay_command(
        lab, {"cookie": "i1", "command": "offer", "call_id": "idle", "from_tag": "A", "address": HOST, "port": 4000}
    )
    relay_command(
        lab, {"cookie": "i2", "command": "offer", "call_id": "gone", "from_tag": "A", "address": HOST, "port": 4002}
    )
    assert ports_in_use() == 8  # two calls x two legs x RTP+RTCP
    relay_command(lab, {"cookie": "i3", "command": "delete", "call_id": "gone"})
    assert ports_in_use() == 4
    started = time.monotonic()

    eventually(lambda: ports_in_use() == 0, 6.0, "the idle session to be released")

    assert time.monotonic() - started >= 2.0  # idle_timeout is 3 s
    assert lab.relay.health()["counters"]["timeouts"] >= 1


def test_relay_answers_bad_control_requests_with_an_error(lab: Lab) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        control.settimeout(2)
        control.sendto(b"{not json", lab.relay_control)
        assert json.loads(control.recv(1000))["result"] == "error"
    assert relay_command(
        lab, {"cookie": "x", "command": "answer", "call_id": "nope", "from_tag": "A", "address": HOST, "port": 5}
    )["error-reason"].startswith("unknown call_id")
    assert relay_command(lab, {"cookie": "y", "command": "ping"})["result"] == "pong"


# --- pure parts ----------------------------------------------------------------------------------------------
def test_config_accepts_both_on_failure_forms_and_trusts_trunks_and_services() -> None:
    from lab.sip.config import parse

    config = parse(
        {
            "host": HOST, "port": 15060, "http_port": 15061, "users": {"1001": "pw"},
            "services": {"8000": "sip:voicemail@127.0.0.1:15100"},
            "trunks": [
                {"prefix": "00", "uri": "sip:127.0.0.1:15200"},
                {"prefix": "001", "uri": "sip:127.0.0.1:15201", "strip": 3},
            ],
            "trusted": ["127.0.0.1:15210"], "on_failure": {"8000": ["486", 408]},
            "relay": {"control": ["127.0.0.1:15300", "127.0.0.1:15310"]},
        }
    )  # fmt: skip

    assert config.failure_rule("1001", 486) is not None and config.failure_rule("1001", 404) is None
    assert config.failure_rule("anyone", 408) is not None  # the list form applies to every user
    assert config.trusted == {(HOST, 15100), (HOST, 15200), (HOST, 15201), (HOST, 15210)}
    assert config.trunk_for("0012345") is not None and config.trunk_for("0012345").strip == 3  # longest prefix
    assert config.relay is not None and len(config.relay.control) == 2
    assert repr(config).count("pw") == 0  # passwords stay out of repr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"on_failure": {"9999": ["486"]}}, "not in 'services'"),
        ({"on_failure": {"8000": ["200"]}}, "final failure codes"),
        ({"host": "example.com"}, "must be an IP address"),
        ({"bogus": 1}, "unknown key(s) bogus"),
        ({"trunks": [{"prefix": "00"}]}, "needs 'prefix' and 'uri'"),
    ],
)
def test_config_errors_name_the_value_and_the_fix(change: dict[str, Any], message: str) -> None:
    from lab.sip.config import ConfigError, parse

    base = {"host": HOST, "port": 1, "http_port": 2, "users": {}, "services": {"8000": "sip:vm@127.0.0.1:3"}}
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse({**base, **change})


def test_sdp_rewrite_points_every_stream_at_the_relay_and_drops_ice() -> None:
    from lab.sip import sdp

    offer = (
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0 101\r\na=rtcp:4001 IN IP4 10.0.0.5\r\na=candidate:1 1 UDP 1 10.0.0.5 4000 typ host\r\n"
        b"m=video 0 RTP/AVP 96\r\nm=audio 5000 RTP/AVP 8\r\nc=IN IP4 10.0.0.6\r\n"
    )
    assert sdp.endpoints(offer) == [
        sdp.Endpoint("10.0.0.5", 4000),
        sdp.Endpoint("10.0.0.5", 0),
        sdp.Endpoint("10.0.0.6", 5000),
    ]

    text = sdp.rewrite(offer, HOST, [16000, 0, 16002]).decode()

    assert "o=- 1 1 IN IP4 127.0.0.1" in text and "10.0.0" not in text
    assert (
        "m=audio 16000 RTP/AVP 0 101" in text and "m=video 0 RTP/AVP 96" in text and "m=audio 16002 RTP/AVP 8" in text
    )
    assert "a=rtcp:16001 IN IP4 127.0.0.1" in text and "candidate" not in text
    assert sdp.endpoints(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n") is None  # no c= line: cannot be anchored


def test_message_parser_reads_compact_folded_and_comma_separated_headers() -> None:
    from lab.sip.message import parse, parse_name_addr

    data = (
        b"INVITE sip:1002@127.0.0.1 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb\r\n"
        b'f: "Doe, John" <sip:1001@127.0.0.1>;tag=x\r\nt: <sip:1002@127.0.0.1>\r\ni: abc\r\nCSeq: 7\r\n INVITE\r\n'
        b"Max-Forwards: 70\r\nl: 4\r\n\r\nbodyEXTRA"
    )
    message = parse(data)

    assert message.get_all("Via") == [
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa",
        "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb",
    ]
    assert message.cseq == (7, "INVITE") and message.from_tag == "x" and message.call_id == "abc"
    assert parse_name_addr(message.get("From") or "").display == '"Doe, John"'
    assert message.body == b"body"  # Content-Length wins over trailing bytes
    assert b"Content-Length: 4\r\n" in message.to_bytes()


# --- CDR writer on its own ----------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cdr_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'billing.db'}"
        return
    server_url = os.environ.get("BILLING_TEST_POSTGRES_URL", "")
    if not server_url:
        reason = "BILLING_TEST_POSTGRES_URL is not set (e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/postgres)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL CDR tests are required under CI=true: {reason}")
        pytest.skip(reason)
    import sqlalchemy as sa

    name = f"cdr_test_{os.urandom(4).hex()}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_cdr_writer_creates_the_table_and_writes_rows_from_two_writers(cdr_database: str) -> None:
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from lab.sip.cdr import Cdr, CdrWriter

    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    writers = [CdrWriter(cdr_database), CdrWriter(cdr_database)]  # the two proxies share the database
    for number, writer in enumerate(writers):
        for index in range(20):
            answered = start + timedelta(seconds=2) if index % 2 == 0 else None
            writer.record(
                Cdr(f"c{number}-{index}", "sip:1001@x", "sip:1002@x", "1001", "1002", start, answered,
                    start + timedelta(seconds=12.5), "ANSWERED" if answered else "NO ANSWER",
                    200 if answered else 408, f"proxy-{number}")
            )  # fmt: skip
    for writer in writers:
        writer.close()

    assert [(w.written, w.failed) for w in writers] == [(20, 0), (20, 0)]
    engine = sa.create_engine(cdr_database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT * FROM cdrs ORDER BY call_id")).mappings().all()
    finally:
        engine.dispose()
    assert len(rows) == 40
    first = next(row for row in rows if row["call_id"] == "c0-0")
    assert (first["duration_s"], first["disposition"], first["sip_code"], first["proxy"]) == (
        10.5,
        "ANSWERED",
        200,
        "proxy-0",
    )
    assert str(first["start_time"]).startswith("2026-01-02 03:04:05")  # naive UTC
    unanswered = next(row for row in rows if row["call_id"] == "c1-1")
    assert (unanswered["duration_s"], unanswered["answer_time"]) == (0.0, None)


# --- real user agents -----------------------------------------------------------------------------------------
def test_pjsua2_phones_register_and_call_through_the_proxy_with_media_relayed(
    lab: Lab, record_testsuite_property: Callable[[str, object], None]
) -> None:
    pytest.importorskip("pjsua2")
    arguments = {
        "proxy_port": lab.sip[1],
        "relay_sessions": f"{lab.relay.http}/sessions",
        "caller": ["1001", USERS["1001"]],
        "callee": ["1002", USERS["1002"]],
        "hold": 1.5,
    }
    done = subprocess.run(
        [sys.executable, __file__, json.dumps(arguments)], capture_output=True, timeout=40, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    record_testsuite_property("pjsua2_setup_ms_with_407", result["setup_ms"])

    assert result["registered"] == [200, 200]
    assert result["caller_states"][-1] == "DISCONNECTED" and "CONFIRMED" in result["caller_states"]
    assert result["record_route"] == f"<sip:{HOST}:{lab.sip[1]};lr>"
    low, high = lab.media_range
    for side in ("caller_remote_rtp", "callee_remote_rtp"):
        host, port = result[side].rsplit(":", 1)
        assert host == HOST and low <= int(port) <= high, f"{side} is {result[side]}, not the relay"
    session = result["relay_session"]
    assert session["caller_to_callee"]["packets"] > 20
    assert session["callee_to_caller"]["packets"] > 20
    assert result["caller_rx_packets"] > 20 and result["callee_rx_packets"] > 20
    assert result["setup_ms"] < 1000
    cdr = lab.cdr(result["call_id"])
    assert (cdr["disposition"], cdr["caller"], cdr["callee"]) == ("ANSWERED", "1001", "1002")
    assert cdr["duration_s"] >= 1.0


def sipp_stats(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    header, last = lines[0].split(";"), lines[-1].split(";")
    return dict(zip(header, last, strict=False))


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed")
def test_sipp_load_through_proxy_and_relay_has_no_failed_calls(
    lab: Lab, tmp_path: Path, record_testsuite_property: Callable[[str, object], None]
) -> None:
    rate, seconds = 20, 5
    uas = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "uas_rr.xml"), "-i", HOST, "-mi", HOST, "-p", str(lab.sipp_uas_port),
         "-cp", str(free_port(socket.SOCK_DGRAM)), "-nostdin", "-trace_err"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        uac = subprocess.run(
            ["sipp", f"{HOST}:{lab.sip[1]}", "-sf", str(SCENARIOS / "uac_auth.xml"), "-s", "00123", "-key", "caller",
             "1001", "-au", "1001", "-ap", USERS["1001"], "-i", HOST, "-mi", HOST, "-p", str(free_port()),
             "-cp", str(free_port(socket.SOCK_DGRAM)), "-nostdin", "-r", str(rate), "-m", str(rate * seconds),
             "-d", "500", "-trace_stat", "-stf", "uac.csv", "-fd", "1", "-trace_err", "-timeout", "30s",
             "-timeout_error"],
            cwd=tmp_path, capture_output=True, timeout=45, check=False,
        )  # fmt: skip
    finally:
        uas.terminate()
        uas.wait(5)
    stats = sipp_stats(tmp_path / "uac.csv")
    record_testsuite_property("sipp_calls", stats["SuccessfulCall(C)"])
    record_testsuite_property("sipp_call_rate", stats["CallRate(C)"])
    record_testsuite_property("sipp_setup_time", stats.get("ResponseTime1(C)"))
    assert uac.returncode == 0, uac.stdout.decode()[-2000:]
    assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == (str(rate * seconds), "0")
    health = lab.proxy.health()["counters"]
    assert health["unanchored"] == 0
    with contextlib.closing(sqlite3.connect(lab.database, timeout=5)) as db:
        answered = eventually(
            lambda: (
                db.execute("SELECT COUNT(*) FROM cdrs WHERE callee = '00123' AND disposition = 'ANSWERED'").fetchone()[
                    0
                ]
                >= rate * seconds
            ),
            what="a CDR per SIPp call",
        )
    assert answered


# --- the pjsua2 subprocess --------------------------------------------------------------------------------------
def _pjsua_call(arguments: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - runs in a subprocess
    """Two pjsua2 accounts register at the proxy and one calls the other; null audio, RTP without VAD."""
    import pjsua2 as pj

    port = arguments["proxy_port"]
    result: dict[str, Any] = {"caller_states": [], "callee_states": []}
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.logConfig.level = 1
    config.logConfig.consoleLevel = 1
    config.medConfig.noVad = True
    endpoint.libInit(config)
    transport = pj.TransportConfig()
    transport.boundAddress = transport.publicAddress = HOST
    endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    endpoint.libStart()
    endpoint.audDevManager().setNullDev()
    endpoint.codecSetPriority("PCMU/8000", 255)

    def pump(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            endpoint.libHandleEvents(10)

    class Call(pj.Call):  # type: ignore[misc]
        def __init__(self, account: Any, states: list[str], call_id: int = pj.PJSUA_INVALID_ID) -> None:
            super().__init__(account, call_id)
            self.states = states

        def onCallState(self, prm: Any) -> None:
            info = self.getInfo()
            self.states.append(info.stateText)
            with contextlib.suppress(Exception):
                if prm.e.type == pj.PJSIP_EVENT_TSX_STATE and prm.e.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
                    whole = prm.e.body.tsxState.src.rdata.wholeMsg
                    if whole.startswith("SIP/2.0 200") and "INVITE" in whole:
                        found = re.search(r"^Record-Route:\s*(.+?)\r?$", whole, re.MULTILINE | re.IGNORECASE)
                        result["record_route"] = found.group(1) if found else None

        def onCallMediaState(self, prm: Any) -> None:
            for media in self.getInfo().media:
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    audio = self.getAudioMedia(media.index)
                    endpoint.audDevManager().getCaptureDevMedia().startTransmit(audio)

    class Account(pj.Account):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.code = 0
            self.calls: list[Call] = []

        def onRegState(self, prm: Any) -> None:
            self.code = prm.code

        def onIncomingCall(self, prm: Any) -> None:
            call = Call(self, result["callee_states"], prm.callId)
            self.calls.append(call)
            answer = pj.CallOpParam()
            answer.statusCode = 200
            call.answer(answer)

    accounts = []
    for user, password in (arguments["caller"], arguments["callee"]):
        account_config = pj.AccountConfig()
        account_config.idUri = f"sip:{user}@{HOST}"
        account_config.regConfig.registrarUri = f"sip:{HOST}:{port}"
        account_config.sipConfig.proxies.append(f"sip:{HOST}:{port};lr")
        account_config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        account_config.mediaConfig.transportConfig.boundAddress = HOST
        account_config.mediaConfig.transportConfig.publicAddress = HOST
        account = Account()
        account.create(account_config)
        accounts.append(account)
    pump(5, lambda: all(a.code for a in accounts))
    result["registered"] = [a.code for a in accounts]
    caller = Call(accounts[0], result["caller_states"])
    started = time.monotonic()
    caller.makeCall(f"sip:{arguments['callee'][0]}@{HOST}", pj.CallOpParam(True))
    pump(5, lambda: "CONFIRMED" in result["caller_states"])
    result["setup_ms"] = round((time.monotonic() - started) * 1000, 1)
    pump(arguments["hold"])
    callee = accounts[1].calls[0]
    result["call_id"] = caller.getInfo().callIdString
    result["caller_remote_rtp"] = caller.getStreamInfo(0).remoteRtpAddress
    result["callee_remote_rtp"] = callee.getStreamInfo(0).remoteRtpAddress
    result["caller_rx_packets"] = caller.getStreamStat(0).rtcp.rxStat.pkt
    result["callee_rx_packets"] = callee.getStreamStat(0).rtcp.rxStat.pkt
    with urllib.request.urlopen(f"{arguments['relay_sessions']}?call_id={result['call_id']}", timeout=2) as response:
        sessions = json.loads(response.read())["sessions"]
    result["relay_session"] = sessions[0] if sessions else None
    caller.hangup(pj.CallOpParam(True))
    pump(3, lambda: result["caller_states"][-1] == "DISCONNECTED" and result["callee_states"][-1] == "DISCONNECTED")
    del caller, callee
    for account in accounts:
        account.calls.clear()
        account.shutdown()
    pump(0.3)
    endpoint.libDestroy()
    return result


if __name__ == "__main__":  # pragma: no cover - the pjsua2 test's subprocess
    sys.stdout.write(json.dumps(_pjsua_call(json.loads(sys.argv[1]))) + "\n")
