"""The voice application server (``lab.voiceapps``).

First its pure parts (the Goertzel DTMF detector on synthetic signals, INVITE parsing, configuration, SMS
parts, the JSON-RPC client), then the server as its own process against real peers on 127.0.0.1:

* a pjsua2 probe phone (``python -m lab.voiceapps.probe``, its own process: one Endpoint per process) that
  plays subscribers and queue agents, and stands in for the proxy the app places its calls through;
* the lab SMS gateway (``python -m lab.smsgw``, its own process) that the app binds to as ``apps``;
* SmppLibrary's carrier SMSC (in this process) where the app's SMS arrive and MO keywords are injected;
* a fake Kamailio ``jsonrpcs`` endpoint (in this process) for call forwarding.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from SmppLibrary.carrier import CarrierSmsc, group_messages

from lab.voiceapps import audio, dtmf, rpc
from lab.voiceapps.config import ConfigError, parse
from lab.voiceapps.sipmsg import parse_invite
from lab.voiceapps.sms import build_parts

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "libraries"), str(ROOT)])}
SHORT_CODE = "25490000"
SUBSCRIBERS = {
    "1001": "254700001001",
    "1002": "254700001002",
    "1003": "254700001003",
    "1004": "254700001004",
    "1005": "254700001005",
    "1006": "254700001006",
}
AGENTS = ("2001", "2002", "2009")
PHONES = ["1001", "1002", "1003", "1004", "1005", *AGENTS]  # the probe's accounts (pjsua2-python holds 8)
STRANGER = "254799999999"


def free_port() -> int:
    """A port free for both UDP (SIP) and TCP (HTTP, SMPP) on 127.0.0.1."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def _stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(5)


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.02)


def noisy(samples: array, noise_dbfs: float, seed: int = 7) -> array:
    """Add white noise of ``noise_dbfs`` RMS (relative to a full-scale sine)."""
    rng = random.Random(seed)
    sigma = audio.dbfs_to_amplitude(noise_dbfs) * audio.FULL_SCALE / math.sqrt(2)
    return array("h", (max(-32767, min(32767, round(value + rng.gauss(0, sigma)))) for value in samples))


def mix(*signals: array) -> array:
    length = max(len(signal) for signal in signals)
    out = array("h", bytes(2 * length))
    for signal_ in signals:
        for index, value in enumerate(signal_):
            out[index] = max(-32767, min(32767, out[index] + value))
    return out


# --- the Goertzel detector ------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise_dbfs", [None, -40.0, -25.0, -20.0])
def test_detector_finds_every_key_in_noise(noise_dbfs: float | None) -> None:
    keys = "123A456B789C*0#D"
    signal_ = dtmf.dtmf_tones(keys, tone_ms=60, gap_ms=60, level_dbfs=-10, lead_ms=200, tail_ms=200)
    if noise_dbfs is not None:
        signal_ = noisy(signal_, noise_dbfs)
    detections = dtmf.detect(signal_)
    assert "".join(d.digit for d in detections) == keys
    assert all(abs(d.level_dbfs + 10) < 2 for d in detections), [d.level_dbfs for d in detections]
    starts = [d.start for d in detections]
    assert all(abs(start - (0.2 + index * 0.12)) < 0.03 for index, start in enumerate(starts)), starts


def test_detector_handles_held_keys_repeats_short_dropouts_and_other_rates() -> None:
    held = dtmf.dtmf_tones("5", tone_ms=1500, tail_ms=50)
    assert dtmf.detect_digits(held) == "5"  # a held key is one digit
    assert dtmf.detect_digits(dtmf.dtmf_tones("1111", tone_ms=50, gap_ms=40, tail_ms=50)) == "1111"
    broken = dtmf.dtmf_tones("9", tone_ms=300, tail_ms=50)
    broken[1200:1240] = array("h", bytes(80))  # 5 ms dropout inside the tone
    assert dtmf.detect_digits(broken) == "9"
    fast = dtmf.dtmf_tones("4711", rate=16000, tail_ms=50)
    assert dtmf.detect_digits(fast, 16000) == "4711"


@pytest.mark.parametrize(
    ("tone_ms", "expected"),
    [(20, ""), (25, ""), (45, "0123456789"), (60, "0123456789")],
)
def test_detector_minimum_duration(tone_ms: int, expected: str) -> None:
    """ITU-T Q.24: tones under ~23 ms are rejected; tones of 40 ms and more are accepted."""
    tones = dtmf.dtmf_tones("0123456789", tone_ms=tone_ms, gap_ms=50, tail_ms=50)
    assert dtmf.detect_digits(tones) == expected


def _pair(low: float, high: float, low_dbfs: float = -10.0, high_dbfs: float = -10.0, ms: int = 200) -> array:
    return mix(audio.tone([low], ms, level_dbfs=low_dbfs), audio.tone([high], ms, level_dbfs=high_dbfs))


def _speechlike(seconds: float = 1.5) -> array:
    """A buzzy vowel: 120-160 Hz glottal harmonics through a moving formant, like voiced speech."""
    rate = audio.RATE
    out = array("h")
    phase = 0.0
    for index in range(int(seconds * rate)):
        pitch = 140 + 20 * math.sin(2 * math.pi * 3 * index / rate)
        phase += 2 * math.pi * pitch / rate
        formant = 700 + 400 * math.sin(2 * math.pi * 1.3 * index / rate)
        value = sum(math.sin(k * phase) * math.exp(-(((k * pitch - formant) / 300) ** 2)) for k in range(1, 25))
        out.append(round(6000 * value))
    return out


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("silence", lambda: audio.silence(1000)),
        ("white noise", lambda: noisy(audio.silence(2000), -12.0)),
        ("1 kHz test tone", lambda: audio.tone([1000.0], 500)),
        ("dial tone 350+440", lambda: audio.tone([350.0, 440.0], 500)),
        ("ringback 440+480", lambda: audio.tone([440.0, 480.0], 500)),
        ("row tone alone", lambda: audio.tone([697.0], 500)),
        ("column tone alone", lambda: audio.tone([1336.0], 500)),
        ("pair 4% off the grid", lambda: _pair(697 * 1.04, 1209 * 1.04)),
        ("pair 4% under the grid", lambda: _pair(852 * 0.96, 1477 * 0.96)),
        ("column 6 dB above row (reverse twist)", lambda: _pair(770, 1336, -16, -10)),
        ("row 10 dB above column (normal twist)", lambda: _pair(770, 1336, -10, -20)),
        ("two rows and a column", lambda: mix(_pair(697, 1209), audio.tone([852.0], 200))),
        ("too quiet (-45 dBFS)", lambda: _pair(941, 1336, -45, -45)),
        ("the voicemail greeting", audio.greeting),
        ("music on hold", audio.music),
        ("speech-like vowel", _speechlike),
    ],
)
def test_detector_rejects_what_is_not_dtmf(name: str, make: Callable[[], array]) -> None:
    assert dtmf.detect_digits(make()) == "", name


def test_detector_accepts_allowed_twist_and_frequency_tolerance() -> None:
    assert dtmf.detect_digits(_pair(770, 1336, -13, -10)) == "5"  # column 3 dB above row
    assert dtmf.detect_digits(_pair(770, 1336, -10, -17)) == "5"  # row 7 dB above column
    assert dtmf.detect_digits(_pair(697 * 1.015, 1209 * 1.015)) == "1"  # +1.5 %
    assert dtmf.detect_digits(_pair(941 * 0.985, 1633 * 0.985)) == "D"  # -1.5 %
    with pytest.raises(ValueError, match="not a DTMF key"):
        dtmf.dtmf_tones("12x")


def test_detector_runs_fast_enough_in_pure_python(tmp_path: Path) -> None:
    """A minute of noisy voicemail is analysed well within the time a worker thread should take."""
    minute = noisy(mix(audio.silence(60_000), dtmf.dtmf_tones("4711", lead_ms=30_000)), -30.0)
    path = audio.write_wav(tmp_path / "minute.wav", minute)
    started = time.perf_counter()
    assert "".join(d.digit for d in dtmf.detect_file(path)) == "4711"
    assert time.perf_counter() - started < 10.0


# --- INVITE parsing, configuration, SMS parts, JSON-RPC -------------------------------------------------------------


def test_invite_names_caller_and_original_callee_from_to_or_diversion() -> None:
    invite = parse_invite(
        "INVITE sip:voicemail@127.0.0.1:15100 SIP/2.0\r\n"
        'f: "Ann" <sip:1001@lab.example>;tag=a\r\n'
        "t: <sip:1002@lab.example>\r\n"
        "i: abc@host\r\n"
        "Diversion: <sip:1003@lab.example>;reason=user-busy;counter=1,\r\n"
        " <sip:1002@lab.example>;reason=no-answer\r\n"
        "X-Custom: 1\r\n\r\nv=0\r\n"
    )
    assert (invite.service, invite.caller, invite.to_user, invite.call_id) == ("voicemail", "1001", "1002", "abc@host")
    assert invite.diversions == ["1003", "1002"]
    assert invite.original_callee == "1003"  # the topmost Diversion: the line that sent the call to voicemail
    plain = parse_invite("INVITE sip:voicemail@h SIP/2.0\r\nFrom: sip:1001@h;tag=x\r\nTo: sip:1002@h\r\n\r\n")
    assert plain.original_callee == "1002"
    direct = parse_invite("INVITE sip:voicemail@h SIP/2.0\r\nFrom: <sip:1001@h>\r\nTo: <sip:voicemail@h>\r\n\r\n")
    assert direct.original_callee == ""
    asserted = parse_invite(
        "INVITE sip:twofa@h SIP/2.0\r\nFrom: <sip:anonymous@h>\r\nP-Asserted-Identity: <tel:1004>\r\n\r\n"
    )
    assert asserted.caller == "1004"


def _config(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sip": {"host": "127.0.0.1", "port": 15100, "proxy": "sip:127.0.0.1:15060"},
        "smpp": {
            "host": "127.0.0.1",
            "port": 12775,
            "system_id": "apps",
            "password": "appspw1",
            "short_code": "25490000",
        },
        "subscribers": {"1001": "254700001001", "1002": "+254700001002"},
        "recordings": "/tmp/vm",
        "http_port": 15101,
    }
    data.update(changes)
    return data


def test_configuration_is_parsed_and_checked() -> None:
    config = parse(_config(queues={"sales": ["2001"]}, twofa_digits=6))
    assert config.sip.domain == "127.0.0.1:15060" and config.sip.outbound_proxy is None
    assert config.sip.user_uri("1001") == "sip:1001@127.0.0.1:15060"
    assert config.msisdn_of("1002") == "254700001002" and config.user_of("+254700001001") == "1001"
    assert config.user_of("00254700001002") == "1002" and config.user_of("254700000000") is None
    assert config.ivr.menu == {"1": "sales"} and config.settings.twofa_digits == 6
    assert "appspw1" not in repr(config)
    domain = parse(
        _config(sip={"host": "127.0.0.1", "port": 1, "proxy": "sip:127.0.0.1:5060", "domain": "lab.example"})
    )
    assert domain.sip.outbound_proxy == "sip:127.0.0.1:5060" and domain.sip.user_uri("7") == "sip:7@lab.example"
    problems = {
        "lacks recordings": {k: v for k, v in _config().items() if k != "recordings"},
        "sip.proxy must be a SIP URI": _config(sip={"host": "h", "port": 1, "proxy": "sip:kamailio@h"}),
        "smpp.password must be 1 to 8": _config(smpp={**_config()["smpp"], "password": "much-too-long"}),
        "share an MSISDN": _config(subscribers={"1": "2547", "2": "2547"}),
        "twofa_digits must be 4 to 10": _config(twofa_digits=3),
        "names queue 'nope'": _config(ivr={"menu": {"1": "nope"}}),
        "must be an MSISDN": _config(subscribers={"1001": "not-a-number"}),
        "forwarding_rpc must be an http": _config(forwarding_rpc="127.0.0.1:15061"),
    }
    for message, data in problems.items():
        with pytest.raises(ConfigError, match=message):
            parse(data)


def test_sms_parts_gsm7_ucs2_and_long_texts() -> None:
    [(payload, coding, esm)] = build_parts("Missed call from 254700001001 at 09:15", 1)
    assert (coding, esm, payload[:6]) == (0, 0, b"Missed")
    [(payload, coding, _)] = build_parts("Simu ya Amina 📞", 1)
    assert coding == 8 and payload.decode("utf-16-be") == "Simu ya Amina 📞"
    parts = build_parts("x" * 200, 9)
    assert [len(p[0]) for p in parts] == [6 + 153, 6 + 47] and all(p[2] == 0x40 for p in parts)
    assert parts[0][0][:6] == bytes((5, 0, 3, 9, 2, 1))


@dataclass
class FakeKamailio:
    """A Kamailio ``jsonrpcs`` endpoint over HTTP: records every request, answers like Kamailio does."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    table: dict[str, str] = field(default_factory=dict)  # htable "fwd"
    fail: bool = False
    server: ThreadingHTTPServer | None = None

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON-RPC answer) as Kamailio 5.6 with xhttp + jsonrpcs gives them."""
        method, params = body["method"], body["params"]
        if self.fail:
            return 500, {"jsonrpc": "2.0", "error": {"code": 500, "message": "Internal error"}, "id": body["id"]}
        if method == "htable.sets":
            self.table[params[1]] = params[2]
            return 200, {"jsonrpc": "2.0", "result": "Ok. Key set to new value.", "id": body["id"]}
        if method == "htable.delete" and params[1] in self.table:
            del self.table[params[1]]
            return 200, {"jsonrpc": "2.0", "result": "Ok. Key deleted.", "id": body["id"]}
        return 404, {"jsonrpc": "2.0", "error": {"code": 404, "message": "Key not found in htable."}, "id": body["id"]}

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake.requests.append(
                    {"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body}
                )
                status, answer = fake.answer(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/RPC"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def test_rpc_client_sends_kamailio_htable_commands_and_reads_errors() -> None:
    fake = FakeKamailio()
    url = fake.start()
    try:
        assert rpc.set_forwarding(url, "1001", "1003") == "Ok. Key set to new value."
        assert fake.table == {"1001": "1003"}
        assert rpc.clear_forwarding(url, "1001") == "Ok. Key deleted."
        assert rpc.clear_forwarding(url, "1001") is None  # 404 "Key not found": nothing was forwarded anyway
        with pytest.raises(rpc.RpcError, match=r"htable.get failed: Key not found in htable. \(code 404\)"):
            rpc.call(url, "htable.get", ["fwd", "1001"])
        assert [(r["path"], r["content_type"]) for r in fake.requests] == [("/RPC", "application/json")] * 4
        bodies = [r["body"] for r in fake.requests]
        assert [(b["jsonrpc"], b["method"], b["params"]) for b in bodies[:2]] == [
            ("2.0", "htable.sets", ["fwd", "1001", "1003"]),
            ("2.0", "htable.delete", ["fwd", "1001"]),
        ]
        assert all(isinstance(b["id"], int) for b in bodies)
        fake.fail = True
        with pytest.raises(rpc.RpcError, match=r"htable.sets failed: Internal error \(code 500\)"):
            rpc.set_forwarding(url, "1001", "1003")
    finally:
        fake.stop()
    with pytest.raises(rpc.RpcError, match="cannot reach"):
        rpc.set_forwarding(url, "1001", "1003", timeout=1)


# --- the server as a process, against real peers -------------------------------------------------------------------


class ProbePhone:
    """The pjsua2 probe process, driven over JSON lines."""

    def __init__(self, users: list[str], port: int, log: Path) -> None:
        command = [sys.executable, "-m", "lab.voiceapps.probe", "--users", ",".join(users), "--port", str(port)]
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=ROOT, env=ENV, text=True
        )
        self.events: list[dict[str, Any]] = []
        self.closed = False
        self._changed = threading.Condition()
        self._ids = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.address = self.wait(lambda e: e["event"] == "ready", timeout=15, what="probe ready")["address"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self.events)

    def send(self, **command: Any) -> None:
        """Send a command and wait until the probe has carried it out."""
        assert self.process.stdin is not None
        self._ids += 1
        ref = self._ids
        since = self.mark()
        self.process.stdin.write(json.dumps({**command, "ref": ref}) + "\n")
        self.process.stdin.flush()
        self.wait(lambda e: e["event"] == "done" and e["ref"] == ref, since=since, what=f"{command['cmd']} done")

    def call(self, caller: str, target: str, **options: Any) -> str:
        handle = f"c{self._ids + 1}"
        self.send(cmd="call", id=handle, **{"from": caller}, to=target, **options)
        return handle

    def wait(
        self, predicate: Callable[[dict[str, Any]], bool], *, since: int = 0, timeout: float = 10.0, what: str = "event"
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events[since:]:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    errors = [e for e in self.events if e["event"] == "error"]
                    raise AssertionError(f"probe: {what} not seen within {timeout} s; errors: {errors}")
                self._changed.wait(left)

    def state(self, handle: str, state: str, *, since: int = 0, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait(
            lambda e: e["event"] == "state" and e["call"] == handle and e["state"] == state,
            since=since,
            timeout=timeout,
            what=f"{handle} {state}",
        )

    def ended(self, handle: str, *, since: int = 0, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait(
            lambda e: e["event"] == "ended" and e["call"] == handle,
            since=since,
            timeout=timeout,
            what=f"{handle} ended",
        )

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write('{"cmd": "quit"}\n')
                self.process.stdin.flush()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@dataclass
class Gateway:
    """The lab SMS gateway as its own process, stopped and started again on the same ports."""

    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lab.smsgw", "--config", str(self.config)],
                cwd=ROOT,
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


@dataclass
class Lab:
    carrier: CarrierSmsc
    rpc: FakeKamailio
    phone: ProbePhone
    app: subprocess.Popen[bytes]
    gateway: Gateway
    config: dict[str, Any]
    app_log: Path
    sip: str

    def uri(self, service: str) -> str:
        return f"sip:{service}@{self.sip}"

    def messages(self, msisdn: str) -> list[dict[str, Any]]:
        return [m for m in group_messages(self.carrier.submits()) if m["destination"] == msisdn]

    def sms(self, msisdn: str, pattern: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first SMS to ``msisdn`` at the carrier whose text matches ``pattern`` (waits for it)."""
        found: dict[str, Any] = eventually(
            lambda: next((m for m in self.messages(msisdn) if re.search(pattern, m["text"])), None),
            timeout,
            f"an SMS to {msisdn} matching {pattern!r}; got {[m['text'] for m in self.messages(msisdn)]}",
        )
        return found

    def events(self, kind: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        query = f"?since={since}" + (f"&type={kind}" if kind else "")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.config['http_port']}/events{query}", timeout=5) as answer:
            return list(json.loads(answer.read()))

    def event(self, kind: str, since: int = 0, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        found: dict[str, Any] = eventually(
            lambda: next(
                (e for e in self.events(kind, since) if all(e.get(k) == v for k, v in match.items())),
                None,
            ),
            timeout,
            f"app event {kind} {match}",
        )
        return found

    def last_event(self) -> int:
        events = self.events()
        return int(events[-1]["seq"]) if events else 0


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return int(answer.status), dict(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        return int(error.code), dict(json.loads(error.read()))
    except OSError:
        return 0, {}


def _write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("voiceapps")
    with contextlib.ExitStack() as cleanup:
        carrier = CarrierSmsc(port=free_port(), accounts={"gateway": "gwpass1"})
        carrier.start()
        cleanup.callback(carrier.stop)
        fake = FakeKamailio()
        rpc_url = fake.start()
        cleanup.callback(fake.stop)
        gateway_data = {
            "host": "127.0.0.1",
            "smpp_port": free_port(),
            "http_port": free_port(),
            "users": {"apps": {"password": "appspw1"}},
            "connectors": {
                "carrier": {"host": "127.0.0.1", "port": carrier.port, "system_id": "gateway", "password": "gwpass1"}
            },
            "mt_routes": [{"prefix": "", "connector": "carrier"}],
            "mo_routes": [{"prefix": SHORT_CODE, "user": "apps"}],
            "queue": str(work / "smsgw.db"),
            "reconnect_max": 0.3,
        }
        gateway = Gateway(_write_config(work / "smsgw.json", gateway_data), work / "smsgw.log")
        gateway.start()
        cleanup.callback(gateway.stop)
        phone = ProbePhone(PHONES, free_port(), work / "probe.log")
        cleanup.callback(phone.close)
        sip_port = free_port()
        config = {
            "sip": {"host": "127.0.0.1", "port": sip_port, "proxy": f"sip:{phone.address}"},
            "smpp": {
                "host": "127.0.0.1",
                "port": gateway_data["smpp_port"],
                "system_id": "apps",
                "password": "appspw1",
                "short_code": SHORT_CODE,
            },
            "subscribers": SUBSCRIBERS,
            "forwarding_rpc": rpc_url,
            "recordings": str(work / "voicemail"),
            "http_port": free_port(),
            "queues": {"sales": ["2001"], "support": ["2002"]},
            "ivr": {"menu": {"1": "sales", "2": "support"}, "operator": "2009"},
            "twofa_digits": 4,
            "twofa_timeout": 4,
            "voicemail_max_seconds": 4,
            "agent_ring_timeout": 4,
            "agent_retry_delay": 1,
            "ivr_timeout": 4,
            "smpp_reconnect_max": 0.3,
        }
        app_log = work / "voiceapps.log"
        app_config = _write_config(work / "voiceapps.json", config)
        started = time.monotonic()
        with app_log.open("wb") as log:
            app = subprocess.Popen(
                [sys.executable, "-m", "lab.voiceapps", "--config", str(app_config)],
                cwd=ROOT,
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        exit_code: list[int] = []
        cleanup.callback(lambda: exit_code.append(_stop(app)))
        eventually(
            lambda: _health(config["http_port"])[0] == 200 or app.poll() is not None, timeout=20, what="app healthy"
        )
        assert app.poll() is None, app_log.read_text()
        sys.stderr.write(f"voiceapps: healthy (SIP up, SMPP bound) {time.monotonic() - started:.2f} s after start\n")
        yield Lab(carrier, fake, phone, app, gateway, config, app_log, f"127.0.0.1:{sip_port}")
        cleanup.close()
        log_text = app_log.read_text()
        assert exit_code == [0], log_text[-3000:]
        assert "voice applications stopped" in log_text
        assert "appspw1" not in log_text


@pytest.fixture
def env(lab: Lab) -> Lab:
    lab.carrier.clear()
    return lab


def _call_confirmed(lab: Lab, caller: str, target: str, **options: Any) -> tuple[str, int]:
    mark = lab.phone.mark()
    handle = lab.phone.call(caller, target, **options)
    lab.phone.state(handle, "CONFIRMED", since=mark)
    return handle, mark


def test_health_and_events_endpoints(env: Lab) -> None:
    status, health = _health(env.config["http_port"])
    assert status == 200 and health["ok"] is True
    assert health["sip"]["up"] is True and health["sip"]["address"] == env.sip
    assert health["smpp"]["state"] == "bound" and health["smpp"]["system_id"] == "apps"
    assert all(event["type"] for event in env.events("smpp_bound"))
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://127.0.0.1:{env.config['http_port']}/nothing", timeout=5)
    assert error.value.code == 404


def test_missed_call_sms_to_the_callee_in_to_when_the_caller_hangs_up_at_once(env: Lab) -> None:
    mark = env.last_event()
    handle, _ = _call_confirmed(env, "1001", env.uri("voicemail"), to_header=f"sip:1002@{env.phone.address}")
    env.phone.send(cmd="hangup", call=handle)
    message = env.sms(SUBSCRIBERS["1002"], "^Missed call from")
    hour_minute = re.fullmatch(r"Missed call from 254700001001 at (\d\d):(\d\d)", message["text"])
    assert hour_minute is not None, message["text"]
    now = datetime.now().astimezone()
    assert abs((now.hour * 60 + now.minute) - (int(hour_minute[1]) * 60 + int(hour_minute[2]))) in (0, 1, 1439)
    assert message["source"] == SHORT_CODE
    received = env.event("call_received", mark, service="voicemail", caller="1001", to="1002")
    assert received["diversion"] is None
    env.event("call_ended", mark, call_id=received["call_id"], callee="1002")
    time.sleep(0.5)  # a transcription would follow within milliseconds
    assert not [m for m in env.messages(SUBSCRIBERS["1002"]) if m["text"].startswith("Voicemail")]


def test_missed_call_sms_to_the_diversion_user_and_recording_limit(env: Lab) -> None:
    """The lab proxy sends the call on with To unchanged and a Diversion; the app's BYE ends it at the limit."""
    mark = env.last_event()
    started = time.monotonic()
    handle, since = _call_confirmed(
        env,
        "1004",
        env.uri("voicemail"),
        headers={"Diversion": f"<sip:1005@{env.phone.address}>;reason=no-answer;counter=1"},
    )
    ended = env.phone.state(handle, "DISCONNECTED", since=since, timeout=10)
    assert "bye_headers" in ended, "the app should have hung up at voicemail_max_seconds"
    assert 3.5 < time.monotonic() - started < 6.5
    assert env.sms(SUBSCRIBERS["1005"], r"^Missed call from 254700001004 at \d\d:\d\d$")
    env.event("call_received", mark, service="voicemail", caller="1004", diversion="1005")


def test_voicemail_transcribes_in_band_dtmf_from_the_recording(env: Lab, tmp_path: Path) -> None:
    tones = dtmf.dtmf_tones("4711", tone_ms=100, gap_ms=100, level_dbfs=-10, lead_ms=300, tail_ms=200)
    wav = audio.write_wav(tmp_path / "4711.wav", tones)
    mark = env.last_event()
    handle, since = _call_confirmed(env, "1003", env.uri("voicemail"), to_header=f"sip:1006@{env.phone.address}")
    env.phone.send(cmd="play", call=handle, wav=str(wav))
    env.phone.wait(lambda e: e["event"] == "playing" and e["call"] == handle, since=since)
    time.sleep(audio.duration_of(tones, audio.RATE) + 0.3)
    env.phone.send(cmd="hangup", call=handle)
    ended = env.phone.ended(handle, since=since)
    assert ended["tx_packets"] > 50  # real RTP went out
    message = env.sms(SUBSCRIBERS["1006"], "^Voicemail from")
    assert message["text"] == "Voicemail from 254700001003: 4711"
    assert env.sms(SUBSCRIBERS["1006"], "^Missed call from 254700001003")
    assert [m["text"][:12] for m in env.messages(SUBSCRIBERS["1006"])] == ["Missed call ", "Voicemail fr"]
    detected = env.event("dtmf_detected", mark, source="audio")
    assert detected["digits"] == "4711"
    assert [tone["digit"] for tone in detected["tones"]] == list("4711")
    recorded = env.event("voicemail_recorded", mark, digits="4711", call_id=detected["call_id"])
    path = Path(recorded["path"])
    assert path.parent == Path(env.config["recordings"]) and path.name.endswith(".wav")
    assert "".join(d.digit for d in dtmf.detect_file(path)) == "4711"
    assert recorded["active_seconds"] > 0.3
    samples, rate = audio.read_wav(path)
    assert rate == 8000 and audio.duration_of(samples, rate) > 1.2
    # the recording holds the caller only: the greeting the app plays meanwhile is not in it
    assert audio.rms_dbfs(samples[:2000]) < -50
    sys.stderr.write(f"voicemail analysis: {recorded['analysis_ms']} ms for {recorded['seconds']} s\n")


def test_call_me_makes_the_app_call_the_subscriber_and_play_a_message(env: Lab, tmp_path: Path) -> None:
    mark = env.last_event()
    since = env.phone.mark()
    env.phone.send(cmd="answer", user="1002", code=200, delay=0.2, record=str(tmp_path))
    sent = time.monotonic()
    env.carrier.send_mo(SUBSCRIBERS["1002"], SHORT_CODE, "Call me")
    incoming = env.phone.wait(lambda e: e["event"] == "incoming" and e["user"] == "1002", since=since, timeout=10)
    invite_after = time.monotonic() - sent
    assert "sip:callback@" in incoming["headers"]["from"]
    ended = env.phone.ended(incoming["call"], since=since, timeout=10)
    disconnected = env.phone.state(incoming["call"], "DISCONNECTED", since=since)
    assert "bye_headers" in disconnected  # the app hung up after its message
    assert ended["rx_packets"] > 40 and ended["loud_seconds"] >= 1.0, ended
    env.event("callback_answered", mark, user="1002")
    env.phone.send(cmd="answer", user="1002", code=200, delay=0)
    sys.stderr.write(f"callback: INVITE {invite_after * 1000:.0f} ms after the MO reached the carrier\n")


def test_call_me_from_a_stranger_is_ignored(env: Lab) -> None:
    mark = env.last_event()
    env.carrier.send_mo(STRANGER, SHORT_CODE, "CALL ME")
    env.event("mo_ignored", mark, reason="not a subscriber")
    assert not env.events("callback_requested", mark)


def test_forwarding_keywords_drive_the_proxy_json_rpc_and_are_confirmed(env: Lab) -> None:
    env.rpc.requests.clear()
    mark = env.last_event()
    env.carrier.send_mo(SUBSCRIBERS["1003"], SHORT_CODE, "fwd 1004")
    assert env.sms(SUBSCRIBERS["1003"], "now go to")["text"] == "Calls to 1003 now go to 1004"
    env.carrier.send_mo(SUBSCRIBERS["1003"], SHORT_CODE, " FWD   off ")
    assert env.sms(SUBSCRIBERS["1003"], "no longer")["text"] == "Calls to 1003 are no longer forwarded"
    assert env.rpc.table == {}
    bodies = [request["body"] for request in env.rpc.requests]
    assert [{k: v for k, v in b.items() if k != "id"} for b in bodies] == [
        {"jsonrpc": "2.0", "method": "htable.sets", "params": ["fwd", "1003", "1004"]},
        {"jsonrpc": "2.0", "method": "htable.delete", "params": ["fwd", "1003"]},
    ]
    assert {r["path"] for r in env.rpc.requests} == {"/RPC"}
    assert env.event("forwarding_set", mark, user="1003")["target"] == "1004"
    env.event("forwarding_cleared", mark, user="1003")
    # a subscriber's MSISDN names their SIP user
    env.carrier.send_mo(SUBSCRIBERS["1001"], SHORT_CODE, f"FWD {SUBSCRIBERS['1002']}")
    assert env.sms(SUBSCRIBERS["1001"], "now go to")["text"] == "Calls to 1001 now go to 1002"
    # the proxy refusing is told to the subscriber, and the app keeps serving
    env.rpc.fail = True
    try:
        env.carrier.send_mo(SUBSCRIBERS["1004"], SHORT_CODE, "FWD 1005")
        failed = env.sms(SUBSCRIBERS["1004"], "could not be changed")
        assert failed["text"] == "Call forwarding for 1004 could not be changed. Please try again later."
        assert "Internal error" in env.event("forwarding_failed", mark, user="1004")["reason"]
    finally:
        env.rpc.fail = False
    assert _health(env.config["http_port"])[0] == 200


def test_unknown_keyword_gets_help(env: Lab) -> None:
    env.carrier.send_mo(SUBSCRIBERS["1005"], SHORT_CODE, "hello?")
    assert "CALL ME" in env.sms(SUBSCRIBERS["1005"], "^Send CALL ME")["text"]


def _wrong(code: str) -> str:
    return "".join(str((int(digit) + 1) % 10) for digit in code)


@pytest.mark.parametrize(
    ("method", "correct"),
    [("rfc2833", True), ("info", True), ("rfc2833", False), ("info", False)],
)
def test_two_factor_code_by_sms_entered_as_dtmf(env: Lab, method: str, correct: bool) -> None:
    caller = "1005" if correct else "1004"
    msisdn = SUBSCRIBERS[caller]
    mark = env.last_event()
    handle, since = _call_confirmed(env, caller, env.uri("twofa"))
    text = env.sms(msisdn, "^Your verification code is")["text"]
    code = re.fullmatch(r"Your verification code is (\d{4})", text)
    assert code is not None, text
    digits = code[1] if correct else _wrong(code[1])
    env.phone.send(cmd="dtmf", call=handle, digits=digits, method=method)
    ended = env.phone.state(handle, "DISCONNECTED", since=since, timeout=10)
    outcome = "accepted" if correct else "rejected"
    assert ended["bye_headers"]["x-twofa-result"] == outcome
    assert env.sms(msisdn, "^Code (accepted|rejected)$")["text"] == ("Code accepted" if correct else "Code rejected")
    event = env.event("twofa_outcome", mark, caller=caller)
    assert (event["outcome"], event["methods"], event["entered"]) == (outcome, [method], 4)
    received = env.events("dtmf_received", mark)
    assert len(received) == 4 and {e["method"] for e in received} == {method}
    # the code is masked in the events and the log
    [sent] = [e for e in env.events("sms_sent", mark) if e["purpose"] == "twofa_code"]
    assert sent["text"] == "Your verification code is ****"
    assert {e["digit"] for e in received} == {"x"}
    assert f"verification code is {code[1]}" not in env.app_log.read_text()


def test_two_factor_times_out_and_unknown_callers_are_refused(env: Lab) -> None:
    mark = env.last_event()
    handle, since = _call_confirmed(env, "1004", env.uri("twofa"))
    env.sms(SUBSCRIBERS["1004"], "^Your verification code is")
    ended = env.phone.state(handle, "DISCONNECTED", since=since, timeout=10)
    assert ended["bye_headers"]["x-twofa-result"] == "timeout"
    assert env.sms(SUBSCRIBERS["1004"], "^Code rejected$")
    env.event("twofa_outcome", mark, caller="1004", outcome="timeout")
    since = env.phone.mark()
    stranger = env.phone.call("2001", env.uri("twofa"))
    assert env.phone.state(stranger, "DISCONNECTED", since=since)["code"] == 403


def test_unknown_service_is_404(env: Lab) -> None:
    since = env.phone.mark()
    handle = env.phone.call("1001", env.uri("nosuchservice"))
    assert env.phone.state(handle, "DISCONNECTED", since=since)["code"] == 404


def test_ivr_menu_queues_callers_texts_positions_and_bridges_them_to_the_agent(env: Lab, tmp_path: Path) -> None:
    """1001 and 1004 press 1 (sales); the one agent answers after 2 s, so 1004 is number 2 in the queue.
    Audio the agent plays reaches the caller through the bridge; when 1001 hangs up, 1004 gets the agent."""
    mark = env.last_event()
    since = env.phone.mark()
    env.phone.send(cmd="answer", user="2001", code=200, delay=2.0)
    first, _ = _call_confirmed(env, "1001", env.uri("ivr"), record=str(tmp_path / "first.wav"))
    env.phone.send(cmd="dtmf", call=first, digits="1", method="rfc2833")
    env.event("queue_joined", mark, caller="1001", queue="sales", position=1)
    ringing = env.phone.wait(lambda e: e["event"] == "incoming" and e["user"] == "2001", since=since)
    assert ringing["headers"]["x-queue"] == "sales" and ringing["headers"]["x-caller"] == "1001"
    second, _ = _call_confirmed(env, "1004", env.uri("ivr"))
    env.phone.send(cmd="dtmf", call=second, digits="1", method="info")
    env.event("queue_joined", mark, caller="1004", queue="sales", position=2)
    assert env.sms(SUBSCRIBERS["1001"], "in the queue")["text"] == "You are number 1 in the queue"
    assert env.sms(SUBSCRIBERS["1004"], "in the queue")["text"] == "You are number 2 in the queue"
    connected = env.event("queue_connected", mark, caller="1001", agent="2001")
    assert 1.5 < connected["waited"] < 6
    env.phone.state(ringing["call"], "CONFIRMED", since=since)
    with urllib.request.urlopen(f"http://127.0.0.1:{env.config['http_port']}/calls", timeout=5) as answer:
        calls = json.loads(answer.read())
    assert {(c["service"], c["direction"], c.get("caller"), c.get("agent")) for c in calls} >= {
        ("queue", "incoming", "1001", "2001"),
        ("queue", "outgoing", "1001", "2001"),
        ("queue", "incoming", "1004", None),
    }, calls
    tones = dtmf.dtmf_tones("359", lead_ms=300, tail_ms=200)
    env.phone.send(cmd="play", call=ringing["call"], wav=str(audio.write_wav(tmp_path / "359.wav", tones)))
    time.sleep(audio.duration_of(tones, audio.RATE) + 0.3)
    env.phone.send(cmd="hangup", call=first)
    ended = env.phone.ended(first, since=since)
    assert "".join(d.digit for d in dtmf.detect_file(ended["recording"])) == "359"  # agent -> caller, via the bridge
    assert ended["loud_seconds"] > 0.5  # menu prompt, music on hold, the agent
    agent_leg = env.phone.state(ringing["call"], "DISCONNECTED", since=since)
    assert "bye_headers" in agent_leg  # the app hung the agent up when the caller left
    env.event("queue_connected", mark, timeout=10, caller="1004", agent="2001")
    env.phone.send(cmd="hangup", call=second)
    env.phone.ended(second, since=since)
    env.phone.send(cmd="answer", user="2001", code=200, delay=0)


def test_ivr_zero_reaches_the_operator(env: Lab) -> None:
    mark = env.last_event()
    since = env.phone.mark()
    handle, _ = _call_confirmed(env, "1003", env.uri("ivr"))
    env.phone.send(cmd="dtmf", call=handle, digits="0", method="rfc2833")
    operator = env.phone.wait(lambda e: e["event"] == "incoming" and e["user"] == "2009", since=since)
    env.phone.state(operator["call"], "CONFIRMED", since=since)
    env.event("queue_connected", mark, caller="1003", agent="2009", queue="operator")
    env.phone.send(cmd="hangup", call=operator["call"])
    assert "bye_headers" in env.phone.state(handle, "DISCONNECTED", since=since)
    assert not [m for m in env.messages(SUBSCRIBERS["1003"]) if "queue" in m["text"]]


def _raw_invite(sip: str, service: str, *, to_user: str = "1002") -> str:
    """Send one INVITE from a plain UDP socket; the status line of the first final answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        tag = random.randrange(1 << 30)
        sdp = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        head = (
            f"INVITE sip:{service}@{sip} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:1005@127.0.0.1>;tag={tag}\r\n"
            f"To: <sip:{to_user}@127.0.0.1>\r\n"
            f"Call-ID: raw-{tag}@127.0.0.1\r\n"
            "CSeq: 1 INVITE\r\n"
            f"Contact: <sip:1005@127.0.0.1:{port}>\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n"
        )
        host, sip_port = sip.split(":")
        sock.sendto((head + sdp).encode(), (host, int(sip_port)))
        while True:
            status = sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
            if not status.startswith("SIP/2.0 1"):
                return status


def test_five_calls_at_once_the_fifth_is_busy_and_the_four_are_served(env: Lab) -> None:
    """pjsua2-python holds 4 call legs per process: a 5th caller gets 486 and the app keeps serving."""
    since = env.phone.mark()
    handles = [
        env.phone.call(caller, env.uri("voicemail"), to_header=f"sip:1002@{env.phone.address}")
        for caller in ("1001", "1003", "1004", "1005")
    ]
    for handle in handles:
        env.phone.state(handle, "CONFIRMED", since=since)
    assert _raw_invite(env.sip, "voicemail").startswith("SIP/2.0 486"), "the 5th call should be refused busy"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:  # garbage on the SIP port hurts nobody
        for datagram in (b"\x00\xff" * 50, b"INVITE nonsense\r\n\r\n", b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"):
            junk.sendto(datagram, ("127.0.0.1", int(env.sip.split(":")[1])))
    for handle in handles:
        env.phone.send(cmd="hangup", call=handle)
    for handle in handles:
        env.phone.ended(handle, since=since)
    eventually(
        lambda: len([m for m in env.messages(SUBSCRIBERS["1002"]) if m["text"].startswith("Missed call")]) == 4,
        what="four missed-call SMS",
    )
    assert {m["text"].split(" at ")[0] for m in env.messages(SUBSCRIBERS["1002"])} == {
        f"Missed call from {SUBSCRIBERS[caller]}" for caller in ("1001", "1003", "1004", "1005")
    }
    since = env.phone.mark()
    handle, _ = _call_confirmed(env, "1001", env.uri("voicemail"), to_header=f"sip:1002@{env.phone.address}")
    env.phone.send(cmd="hangup", call=handle)
    env.phone.ended(handle, since=since)
    assert _health(env.config["http_port"])[0] == 200


def test_a_busy_agent_is_tried_again_while_the_caller_waits(env: Lab) -> None:
    mark = env.last_event()
    since = env.phone.mark()
    env.phone.send(cmd="answer", user="2002", code=486)
    handle, _ = _call_confirmed(env, "1005", env.uri("ivr"))
    env.phone.send(cmd="dtmf", call=handle, digits="2", method="info")
    env.event("agent_failed", mark, agent="2002", code=486)
    env.phone.send(cmd="answer", user="2002", code=200)
    connected = env.event("queue_connected", mark, caller="1005", agent="2002", queue="support")
    assert connected["waited"] >= 0.9  # agent_retry_delay
    assert env.sms(SUBSCRIBERS["1005"], "in the queue")["text"] == "You are number 1 in the queue"
    env.phone.send(cmd="hangup", call=handle)
    env.phone.ended(handle, since=since)
    env.event("queue_call_ended", mark, caller="1005", ended_by="caller")


def test_a_direct_call_to_the_queue_service_joins_the_queue_its_header_names(env: Lab) -> None:
    mark = env.last_event()
    since = env.phone.mark()
    handle, _ = _call_confirmed(env, "1002", env.uri("queue"), headers={"X-Queue": "support"})
    agent = env.phone.wait(lambda e: e["event"] == "incoming" and e["user"] == "2002", since=since)
    env.event("queue_connected", mark, caller="1002", agent="2002", queue="support")
    env.phone.send(cmd="hangup", call=agent["call"])
    assert "bye_headers" in env.phone.state(handle, "DISCONNECTED", since=since)  # the agent left: the app hangs up
    env.event("queue_call_ended", mark, caller="1002", ended_by="agent")


def test_sms_wait_while_the_gateway_is_down_and_health_says_so(env: Lab) -> None:
    port = env.config["http_port"]
    env.gateway.stop()
    try:
        health = eventually(lambda: (h := _health(port))[0] == 503 and h[1], what="health 503")
        assert health["ok"] is False and health["sip"]["up"] is True and health["smpp"]["state"] != "bound"
        since = env.phone.mark()
        handle, _ = _call_confirmed(env, "1003", env.uri("voicemail"), to_header=f"sip:1001@{env.phone.address}")
        env.phone.send(cmd="hangup", call=handle)
        env.phone.ended(handle, since=since)
        eventually(lambda: _health(port)[1]["smpp"]["queued"] == 1, what="the SMS queued in the app")
    finally:
        env.gateway.start()
    assert env.sms(SUBSCRIBERS["1001"], "^Missed call from 254700001003", timeout=15)
    eventually(lambda: _health(port)[0] == 200, what="health 200 again")


def test_bad_configuration_and_a_taken_port_exit_2(tmp_path: Path) -> None:
    broken = _write_config(tmp_path / "broken.json", {"sip": {}})
    result = subprocess.run(
        [sys.executable, "-m", "lab.voiceapps", "--config", str(broken)],
        check=False,
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "lacks smpp, subscribers, recordings, http_port" in result.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        data = _config(recordings=str(tmp_path / "vm"), http_port=free_port())
        data["sip"] = {"host": "127.0.0.1", "port": taken.getsockname()[1], "proxy": "sip:127.0.0.1:9"}
        config = _write_config(tmp_path / "taken.json", data)
        result = subprocess.run(
            [sys.executable, "-m", "lab.voiceapps", "--config", str(config)],
            check=False,
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2 and "cannot open SIP UDP" in result.stderr, result.stderr[-2000:]
    assert "appspw1" not in result.stderr


def test_events_record_what_happened_for_the_lab(lab: Lab) -> None:
    """Runs last: the event log holds every kind the debugging brief names."""
    kinds = {event["type"] for event in lab.events()}
    for kind in ("call_received", "sms_sent", "dtmf_detected", "forwarding_set", "twofa_outcome", "queue_connected"):
        assert kind in kinds, kind
