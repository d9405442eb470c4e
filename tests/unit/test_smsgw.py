"""The lab SMS gateway (the Jasmin stand-in) against in-process carrier SMSCs, over real sockets on 127.0.0.1.

The gateway runs on a thread of this process (one test runs it as its own process and kills it); customers
are SmppLibrary's keywords or raw sockets; the carriers are SmppLibrary's `CarrierSmsc`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from SmppLibrary import SmppLibrary, SmppStatusError
from SmppLibrary.carrier import CarrierSmsc, group_messages
from SmppLibrary.carrier.pdu import COMMANDS, decode, encode

from lab.smsgw.config import ConfigError, parse
from lab.smsgw.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = {"gateway": "gwpass1"}
FROM = "254700100001"
TO_A = "254700123456"
TO_B = "999700123456"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LONG_GSM = "Mambo! Hii ni ujumbe mrefu wa majaribio kutoka kwa lango la SMS. " * 6  # 396 septets: 3 parts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.01)


class Carriers:
    """carrier-a and carrier-b on fixed ports, so either can be stopped and started again."""

    def __init__(self) -> None:
        self.ports = {"carrier-a": free_port(), "carrier-b": free_port()}
        self.smscs: dict[str, CarrierSmsc] = {}

    def start(self, name: str) -> CarrierSmsc:
        smsc = CarrierSmsc(port=self.ports[name], accounts=ACCOUNT)
        smsc.start()
        self.smscs[name] = smsc
        return smsc

    def stop(self, name: str) -> None:
        self.smscs.pop(name).stop()

    def __getitem__(self, name: str) -> CarrierSmsc:
        return self.smscs[name]


@pytest.fixture
def carriers() -> Iterator[Carriers]:
    both = Carriers()
    both.start("carrier-a")
    both.start("carrier-b")
    yield both
    for name in list(both.smscs):
        both.stop(name)


def config_data(tmp_path: Path, carriers: Carriers, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "smpp_port": free_port(),
        "http_port": free_port(),
        "users": {
            "acme": {"password": "acmepw1", "throughput": 0},
            "slowco": {"password": "slowpw1", "throughput": 2},
        },
        "connectors": {
            name: {"host": "127.0.0.1", "port": port, "system_id": "gateway", "password": "gwpass1"}
            for name, port in carriers.ports.items()
        },
        "mt_routes": [{"prefix": "999", "connector": "carrier-b"}, {"prefix": "", "connector": "carrier-a"}],
        "mo_routes": [{"prefix": "30000", "user": "slowco"}],
        "mo_user": "acme",
        "queue": str(tmp_path / "smsgw.db"),
        "reconnect_max": 0.3,
        "dlr_retry_delay": 0.05,
        "response_timeout": 3,
        **extra,
    }


@pytest.fixture
def gateway(tmp_path: Path, carriers: Carriers) -> Iterator[Gateway]:
    running = Gateway(parse(config_data(tmp_path, carriers))).start()
    eventually(lambda: all(c["state"] == "bound" for c in health(running)["connectors"].values()), what="binds")
    yield running
    running.stop()


@pytest.fixture
def lib() -> Iterator[SmppLibrary]:
    library = SmppLibrary(timeout=timedelta(seconds=5), throttle_retries=0)
    yield library
    library.ctx.shutdown()


def bind(lib: SmppLibrary, gateway: Gateway, user: str = "acme", password: str = "acmepw1", **options: Any) -> int:
    return lib.open_smpp_connection("127.0.0.1", gateway.smpp_port, user, password, **options)


def health(gateway: Gateway) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{gateway.http_port}/health", timeout=5) as response:
        return dict(json.loads(response.read()))


def http_send(gateway: Gateway, method: str = "POST", **args: str) -> tuple[int, str]:
    data = urllib.parse.urlencode(args)
    url = f"http://127.0.0.1:{gateway.http_port}/send"
    if method == "GET":
        request = urllib.request.Request(f"{url}?{data}")
    else:
        request = urllib.request.Request(url, data=data.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def read_pdu(sock: socket.socket) -> Any:
    def exact(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    head = exact(4)
    return decode(head + exact(struct.unpack(">L", head)[0] - 4))


# --- binds and submits ------------------------------------------------------------------------------------


def test_bind_accepts_users_and_names_what_is_wrong(lib: SmppLibrary, gateway: Gateway) -> None:
    bind(lib, gateway, bind_mode="transmitter")
    bind(lib, gateway, bind_mode="receiver")
    bind(lib, gateway)
    with pytest.raises(SmppStatusError) as wrong:
        bind(lib, gateway, password="nope")
    assert wrong.value.status_name == "ESME_RINVPASWD"
    with pytest.raises(SmppStatusError) as unknown:
        bind(lib, gateway, user="mallory")
    assert unknown.value.status_name == "ESME_RINVSYSID"
    assert sorted(s["mode"] for s in health(gateway)["sessions"]) == ["receiver", "transceiver", "transmitter"]


def test_codings_and_parts_reach_the_carrier_and_receipts_come_back_with_gateway_ids(
    lib: SmppLibrary, gateway: Gateway, carriers: Carriers
) -> None:
    bind(lib, gateway)
    gsm = lib.submit_sms(FROM, TO_A, "Habari {yako} €5")
    ucs2 = lib.submit_sms(FROM, TO_A, "Привет 😀", coding="ucs2")
    parts = lib.submit_sms(FROM, TO_A, LONG_GSM)
    ids = gsm + ucs2 + parts
    assert len(parts) == 3
    assert all(UUID.match(message_id) for message_id in ids)
    receipts = lib.wait_until_delivery_receipt(ids, state="DELIVRD")
    assert [r["id"] for r in receipts] == ids
    assert all(r["text_id"] == r["id"] and r["error"] == "000" and r["message_state"] == 2 for r in receipts)
    assert receipts[0]["source"] == TO_A and receipts[0]["destination"] == FROM

    raw = carriers["carrier-a"].submits()
    assert [r["data_coding"] for r in raw] == [0, 8, 0, 0, 0]
    assert [r["esm_class"] for r in raw] == [0, 0, 0x40, 0x40, 0x40]
    assert [r["udh"]["seq"] for r in raw[2:]] == [1, 2, 3]
    assert not set(ids) & {r["message_id"] for r in raw}  # the customer sees the gateway's ids only
    messages = group_messages(raw)
    assert [m["text"] for m in messages] == ["Habari {yako} €5", "Привет 😀", LONG_GSM]
    assert messages[2]["complete"] and messages[2]["parts"] == 3


def test_routes_by_destination_prefix(lib: SmppLibrary, gateway: Gateway, carriers: Carriers) -> None:
    bind(lib, gateway)
    for destination in (TO_B, TO_A, "99912", "99"):  # the first route that matches: 999 -> b, "" -> a
        lib.submit_sms(FROM, destination, f"to {destination}", registered_delivery=False)
    eventually(lambda: len(carriers["carrier-b"].submits()) == 2 and len(carriers["carrier-a"].submits()) == 2)
    assert [r["destination"] for r in carriers["carrier-b"].submits()] == [TO_B, "99912"]
    assert [r["destination"] for r in carriers["carrier-a"].submits()] == [TO_A, "99"]


def test_per_user_throughput_answers_throttled_and_stores_nothing(
    lib: SmppLibrary, gateway: Gateway, carriers: Carriers
) -> None:
    bind(lib, gateway, user="slowco", password="slowpw1")
    result = lib.submit_bulk_sms(8, FROM, TO_A, "burst", window=8)
    assert result["statuses"].get("ESME_RTHROTTLED", 0) >= 5
    assert result["acked"] + result["statuses"]["ESME_RTHROTTLED"] == 8
    eventually(lambda: len(carriers["carrier-a"].submits()) == result["acked"])
    time.sleep(0.6)  # 2 messages/s: one token back
    lib.submit_sms(FROM, TO_A, "after a pause")
    with pytest.raises(SmppStatusError) as throttled:
        for _ in range(3):
            lib.submit_sms(FROM, TO_A, "again")
    assert throttled.value.status_name == "ESME_RTHROTTLED"


def test_undelivered_and_refused_messages_reach_the_customer_as_receipts(
    lib: SmppLibrary, gateway: Gateway, carriers: Carriers
) -> None:
    carrier = carriers["carrier-a"]
    carrier.set_behaviour(destination="2547005551", dlr_state="UNDELIV", dlr_error=34)
    carrier.set_behaviour(destination="2547005552", submit_status="ESME_RSUBMITFAIL")
    bind(lib, gateway)
    [undelivered] = lib.submit_sms(FROM, "254700555100", "unreachable")
    [refused] = lib.submit_sms(FROM, "254700555200", "refused")  # the gateway itself accepts it
    [fine] = lib.submit_sms(FROM, "254700555300", "fine")
    assert lib.wait_until_delivery_receipt([undelivered], state="UNDELIV")[0]["error"] == "034"
    assert lib.wait_until_delivery_receipt([refused], state="UNDELIV")[0]["error"] == "069"  # 0x45
    lib.wait_until_delivery_receipt([fine], state="DELIVRD")
    assert health(gateway)["queue"]["failed"] == 1


def test_receipts_wait_for_a_receiver_to_bind(lib: SmppLibrary, gateway: Gateway) -> None:
    bind(lib, gateway, bind_mode="transmitter", alias="tx")
    ids = lib.submit_sms(FROM, TO_A, "receipt later")
    eventually(lambda: health(gateway)["outbox"] == 1, what="receipt kept for the customer")
    bind(lib, gateway, bind_mode="receiver", alias="rx")
    assert lib.wait_until_delivery_receipt(ids)[0]["connection"] == "rx"
    eventually(lambda: health(gateway)["outbox"] == 0, what="receipt acknowledged")


# --- MO -----------------------------------------------------------------------------------------------------


def test_mo_reaches_a_bound_receiver_and_waits_when_none_is_bound(
    lib: SmppLibrary, gateway: Gateway, carriers: Carriers
) -> None:
    bind(lib, gateway, bind_mode="receiver", alias="first")
    carriers["carrier-a"].send_mo("254711000001", "20000", "STOP")
    sms = lib.wait_until_sms_received(destination="20000")
    assert (sms["source"], sms["text"], sms["coding"]) == ("254711000001", "STOP", "gsm7")
    lib.close_all_smpp_connections()

    long_ucs2 = "Ujumbe wa Kiswahili na emoji 😀 " * 4  # 132 UCS2 units: 2 parts
    sent = carriers["carrier-b"].send_mo("254711000002", "20000", long_ucs2)
    assert sent["parts"] == 2 and not sent["queued"]  # the gateway took it from the carrier...
    eventually(lambda: health(gateway)["outbox"] == 2, what="MO parts kept")  # ...and keeps it
    eventually(lambda: [d["status"] for d in carriers["carrier-b"].deliveries()] == ["ESME_ROK"] * 2)
    bind(lib, gateway, bind_mode="transceiver", alias="later")
    sms = lib.wait_until_sms_received(source="254711000002")
    assert (sms["text"], sms["parts"], sms["coding"], sms["connection"]) == (long_ucs2, 2, "ucs2", "later")


def test_mo_goes_to_the_user_its_destination_prefix_names(
    lib: SmppLibrary, gateway: Gateway, carriers: Carriers
) -> None:
    bind(lib, gateway, bind_mode="receiver", alias="acme")
    bind(lib, gateway, user="slowco", password="slowpw1", bind_mode="receiver", alias="slowco")
    carriers["carrier-a"].send_mo("254711000003", "30000777", "for slowco")
    carriers["carrier-a"].send_mo("254711000004", "40000777", "for acme, the mo_user")
    assert lib.wait_until_sms_received(destination="30000777")["connection"] == "slowco"
    assert lib.wait_until_sms_received(destination="40000777")["connection"] == "acme"


# --- HTTP API -----------------------------------------------------------------------------------------------


class CallbackReceiver:
    """A small HTTP server that records DLR callbacks; it can refuse the first ones with 503."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.refuse = refuse_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _record(self, form: str) -> None:
                fields = {key: values[-1] for key, values in urllib.parse.parse_qs(form).items()}
                refuse = receiver.refuse > 0
                receiver.refuse -= 1 if refuse else 0
                receiver.calls.append({"method": self.command, "path": self.path, "form": fields, "refused": refuse})
                self.send_response(503 if refuse else 200)
                self.send_header("Content-Length", "10")
                self.end_headers()
                self.wfile.write(b"ACK/Jasmin")

            def do_GET(self) -> None:
                self._record(urllib.parse.urlsplit(self.path).query)

            def do_POST(self) -> None:
                self._record(self.rfile.read(int(self.headers["Content-Length"])).decode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dlr"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict[str, Any]]:
        return [call for call in self.calls if not call["refused"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver(refuse_first=1)
    yield server
    server.close()


def test_http_send_with_level_3_callbacks(gateway: Gateway, carriers: Carriers, receiver: CallbackReceiver) -> None:
    status, body = http_send(
        gateway,
        username="acme",
        password="acmepw1",
        to=f"+{TO_A}",
        content="Hello over HTTP",
        **{"from": "ACME", "dlr-url": receiver.url, "dlr-level": "3"},
    )
    assert status == 200
    match = re.fullmatch(r'Success "([0-9a-f-]{36})"', body)
    assert match, body
    message_id = match.group(1)
    eventually(lambda: len(receiver.accepted()) == 2, what="two callbacks")
    assert [call["form"]["level"] for call in receiver.calls] == ["1", "1", "2"]  # in order, the refused one again
    first, second = receiver.accepted()
    assert first["method"] == "POST" and first["form"] == {
        "id": message_id,
        "message_status": "ESME_ROK",
        "level": "1",
        "connector": "carrier-a",
    }
    assert second["form"]["id"] == message_id
    assert (second["form"]["message_status"], second["form"]["level"]) == ("DELIVRD", "2")
    assert (second["form"]["sub"], second["form"]["dlvrd"], second["form"]["err"]) == ("001", "001", "000")
    assert second["form"]["id_smsc"] == carriers["carrier-a"].submits()[0]["message_id"]
    assert set(second["form"]) >= {"subdate", "donedate", "text"}
    assert receiver.calls[0]["refused"]  # the first try was refused with 503 and tried again
    [sms] = group_messages(carriers["carrier-a"].submits())
    assert (sms["text"], sms["source"], sms["destination"], sms["registered_delivery"]) == (
        "Hello over HTTP",
        "ACME",
        TO_A,
        1,
    )
    eventually(lambda: health(gateway)["callbacks"]["pending"] == 0)


def test_http_send_long_ucs2_by_get_with_one_id_and_one_final_callback(
    gateway: Gateway, carriers: Carriers, receiver: CallbackReceiver
) -> None:
    receiver.refuse = 0
    text = "Habari 😀 " * 10  # 100 UCS2 units: 2 parts, the emoji never cut
    status, body = http_send(
        gateway,
        "GET",
        username="acme",
        password="acmepw1",
        to=TO_B,
        content=text,
        coding="8",
        **{"dlr-url": receiver.url, "dlr-level": "2", "dlr-method": "get"},
    )
    assert status == 200, body
    message_id = body.split('"')[1]
    eventually(lambda: len(receiver.accepted()) == 1, what="the level-2 callback")
    [call] = receiver.accepted()
    assert call["method"] == "GET" and call["path"].startswith("/dlr?")
    assert (call["form"]["id"], call["form"]["level"], call["form"]["message_status"]) == (message_id, "2", "DELIVRD")
    assert (call["form"]["sub"], call["form"]["dlvrd"], call["form"]["connector"]) == ("002", "002", "carrier-b")
    [sms] = group_messages(carriers["carrier-b"].submits())
    assert (sms["text"], sms["parts"], sms["coding"]) == (text, 2, "ucs2")
    time.sleep(0.2)
    assert len(receiver.calls) == 1  # level 2 only: no level-1 callback


def test_http_callbacks_name_the_carriers_refusal(
    gateway: Gateway, carriers: Carriers, receiver: CallbackReceiver
) -> None:
    receiver.refuse = 0
    carriers["carrier-a"].set_behaviour(destination="2547009", submit_status="ESME_RSUBMITFAIL")
    args = {"dlr-url": receiver.url, "dlr-level": "3"}
    status, body = http_send(gateway, username="acme", password="acmepw1", to="254700900000", content="no", **args)
    assert status == 200, body
    eventually(lambda: len(receiver.accepted()) == 2, what="two callbacks")
    level_1, level_2 = sorted(receiver.accepted(), key=lambda call: call["form"]["level"])
    assert level_1["form"]["message_status"] == "ESME_RSUBMITFAIL"
    assert (level_2["form"]["message_status"], level_2["form"]["err"], level_2["form"]["dlvrd"]) == (
        "UNDELIV",
        "069",
        "000",
    )


def test_http_body_after_expect_100_continue(gateway: Gateway, carriers: Carriers) -> None:
    body = urllib.parse.urlencode({"username": "acme", "password": "acmepw1", "to": TO_A, "content": "x" * 1500})
    with socket.create_connection(("127.0.0.1", gateway.http_port), timeout=3) as sock:
        sock.sendall(
            f"POST /send HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body.encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 200 OK") and 'Success "' in answer
    eventually(lambda: len(group_messages(carriers["carrier-a"].submits())) == 1)
    assert group_messages(carriers["carrier-a"].submits())[0]["parts"] == 10


@pytest.mark.parametrize(
    ("args", "status", "body"),
    [
        ({"password": "x"}, 403, 'Error "Authentication failure for username:acme"'),
        ({"to": "abc"}, 400, 'Error "Argument [to] has an invalid value: [abc]."'),
        ({"to": None}, 400, 'Error "Mandatory argument [to] is not found."'),
        ({"colour": "blue"}, 400, 'Error "Argument [colour] is unknown."'),
        ({"content": None}, 400, 'Error "content or hex-content not present."'),
        ({"coding": "11"}, 400, 'Error "Argument [coding] has an invalid value: [11]."'),
        ({"dlr-level": "4"}, 400, 'Error "Argument [dlr-level] has an invalid value: [4]."'),
        ({"dlr-url": "ftp://x"}, 400, 'Error "Argument [dlr-url] has an invalid value: [ftp://x]."'),
    ],
)
def test_http_send_errors_read_like_jasmin(
    gateway: Gateway, args: dict[str, str | None], status: int, body: str
) -> None:
    given = {"username": "acme", "password": "acmepw1", "to": TO_A, "content": "hi", **args}
    assert http_send(gateway, **{key: value for key, value in given.items() if value is not None}) == (status, body)


def test_http_ping_throughput_and_coding_errors(gateway: Gateway, carriers: Carriers) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{gateway.http_port}/ping", timeout=5) as response:
        assert response.read() == b"Jasmin/PONG"
    statuses = [http_send(gateway, username="slowco", password="slowpw1", to=TO_A, content="x") for _ in range(5)]
    assert statuses.count((403, 'Error "User throughput exceeded"')) >= 2
    status, body = http_send(gateway, username="acme", password="acmepw1", to=TO_A, content="Привет")
    assert (status, body.split(":")[0]) == (
        400,
        'Error "Argument [content] cannot be sent in coding 0 (GSM 03.38); use coding=8 (UCS2)',
    )
    status, body = http_send(gateway, username="acme", password="acmepw1", to=TO_A, **{"hex-content": "48690a"})
    assert status == 200
    eventually(lambda: any(r["short_message"] == "48690a" for r in carriers["carrier-a"].submits()))


# --- faults -------------------------------------------------------------------------------------------------


def test_messages_wait_while_the_carrier_is_down_and_all_arrive_after(
    lib: SmppLibrary, gateway: Gateway, carriers: Carriers
) -> None:
    carriers.stop("carrier-b")
    eventually(lambda: health(gateway)["connectors"]["carrier-b"]["state"] != "bound", what="carrier-b down")
    bind(lib, gateway)
    count = 40
    ids = [lib.submit_sms(FROM, f"9997{number:08d}", f"queued {number}")[0] for number in range(count)]
    lib.submit_sms(FROM, TO_A, "carrier-a is not affected", registered_delivery=False)
    eventually(lambda: len(carriers["carrier-a"].submits()) == 1)
    eventually(lambda: health(gateway)["queue"]["queued"] == count, what="only carrier-b's messages queued")
    assert health(gateway)["connectors"]["carrier-b"]["waiting"] == count
    eventually(lambda: health(gateway)["connectors"]["carrier-b"]["last_error"] == "connection refused")

    restarted = carriers.start("carrier-b")
    eventually(lambda: len(restarted.submits()) >= count, timeout=10, what="all queued messages delivered")
    got = [record["text"] for record in restarted.submits()]
    assert got == [f"queued {number}" for number in range(count)]  # each once, in order
    lib.wait_until_delivery_receipt(ids, state="DELIVRD")
    assert health(gateway)["queue"]["queued"] == 0


def test_carrier_throttling_is_retried_later_in_order(lib: SmppLibrary, gateway: Gateway, carriers: Carriers) -> None:
    carriers.stop("carrier-b")
    bind(lib, gateway)
    ids = [lib.submit_sms(FROM, f"99900000000{n}", f"throttled {n}")[0] for n in range(3)]
    carrier = carriers.start("carrier-b")
    carrier.set_behaviour(throttle_next=4)  # before the gateway is back (its back-off is at least 0.1 s)
    lib.wait_until_delivery_receipt(ids)
    statuses = [record["status"] for record in carrier.submits()]
    assert statuses.count("ESME_RTHROTTLED") == 4 and statuses.count("ESME_ROK") == 3
    assert [m["text"] for m in group_messages(carrier.submits())] == [f"throttled {n}" for n in range(3)]
    assert health(gateway)["connectors"]["carrier-b"]["retried"] == 4


def test_a_dropped_link_resends_what_was_in_flight(lib: SmppLibrary, gateway: Gateway, carriers: Carriers) -> None:
    carrier = carriers["carrier-a"]
    carrier.set_behaviour(latency=0.3)  # submit_sm_resp late: the drop catches them in flight
    bind(lib, gateway)
    result = lib.submit_bulk_sms(5, FROM, TO_A, "in flight", window=5)
    assert result["acked"] == 5
    eventually(lambda: len(carrier.submits()) == 5)
    carrier.drop_connections()
    carrier.set_behaviour(latency=0)
    eventually(lambda: len(carrier.submits()) == 10, what="resent after the rebind")
    assert health(gateway)["connectors"]["carrier-a"]["binds"] == 2
    eventually(lambda: health(gateway)["queue"]["queued"] == 0)


def test_malformed_pdus_get_generic_nack_and_the_gateway_keeps_serving(
    lib: SmppLibrary, gateway: Gateway, carriers: Carriers
) -> None:
    with socket.create_connection(("127.0.0.1", gateway.smpp_port), timeout=3) as sock:
        sock.sendall(encode("bind_transceiver", sequence=1, fields={"system_id": "acme", "password": "acmepw1"}))
        assert read_pdu(sock).status == 0
        sock.sendall(struct.pack(">LLLL", 16, 0x00000099, 0, 7))  # unknown command
        nack = read_pdu(sock)
        assert (nack.command, nack.status, nack.sequence) == ("generic_nack", 0x03, 7)
        sock.sendall(struct.pack(">LLLL", 20, COMMANDS["submit_sm"], 0, 8) + b"\x01\x02\x03\x04")  # no NUL
        nack = read_pdu(sock)
        assert (nack.command, nack.status, nack.sequence) == ("generic_nack", 0xC2, 8)
        sock.sendall(encode("submit_sm", sequence=9, fields={"destination_addr": "", "short_message": b"x"}))
        assert read_pdu(sock).status == 0x0B  # ESME_RINVDSTADR: no destination
        sock.sendall(encode("enquire_link", sequence=10))
        assert read_pdu(sock).command == "enquire_link_resp"
        sock.sendall(encode("unbind", sequence=11))
        assert read_pdu(sock).command == "unbind_resp"
    with socket.create_connection(("127.0.0.1", gateway.smpp_port), timeout=3) as sock:
        sock.sendall(struct.pack(">L", 4_000_000) + b"\x00" * 12)  # impossible length
        nack = read_pdu(sock)
        assert (nack.command, nack.status) == ("generic_nack", 0x02)
        assert sock.recv(1) == b""  # only this session is closed
    bind(lib, gateway)
    lib.submit_sms(FROM, TO_A, "still serving")
    eventually(lambda: len(carriers["carrier-a"].submits()) == 1)


def test_gateway_process_killed_with_queued_messages_delivers_them_after_restart(
    tmp_path: Path, carriers: Carriers, lib: SmppLibrary
) -> None:
    carriers.stop("carrier-b")
    data = config_data(tmp_path, carriers)
    config = tmp_path / "smsgw.json"
    config.write_text(json.dumps(data), encoding="utf-8")
    config.chmod(0o600)
    log_file = tmp_path / "smsgw.log"

    def start() -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "libraries"), str(ROOT)])}
        command = [sys.executable, "-m", "lab.smsgw", "--config", str(config)]
        with log_file.open("ab") as log:
            process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=log)
        url = f"http://127.0.0.1:{data['http_port']}/health"
        eventually(lambda: _answers(url) or process.poll() is not None, timeout=15, what="gateway up")
        assert process.poll() is None, log_file.read_text()
        return process

    process = start()
    try:
        lib.open_smpp_connection("127.0.0.1", data["smpp_port"], "acme", "acmepw1", rebind=False)
        ids = [lib.submit_sms(FROM, f"9998{n:08d}", f"survives {n}")[0] for n in range(5)]
        lib.close_all_smpp_connections()
        process.send_signal(signal.SIGKILL)  # no chance to flush anything
        process.wait(5)
        restarted = carriers.start("carrier-b")
        process = start()
        eventually(lambda: len(restarted.submits()) == 5, timeout=10, what="queued messages after the restart")
        assert [r["text"] for r in restarted.submits()] == [f"survives {n}" for n in range(5)]
        lib.open_smpp_connection("127.0.0.1", data["smpp_port"], "acme", "acmepw1")
        lib.wait_until_delivery_receipt(ids)  # the id mapping survived too
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    log = log_file.read_text()
    assert "SMS gateway listening" in log and "SMS gateway stopped" in log
    assert "acmepw1" not in log and "gwpass1" not in log


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


# --- configuration ------------------------------------------------------------------------------------------


def test_a_port_in_use_stops_the_start(tmp_path: Path, carriers: Carriers) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        data = config_data(tmp_path, carriers, smpp_port=taken.getsockname()[1])
        with pytest.raises(OSError, match="address already in use"):
            Gateway(parse(data)).start()


def test_configuration_is_checked(tmp_path: Path, carriers: Carriers) -> None:
    good = config_data(tmp_path, carriers)
    config = parse(good)
    assert config.route("999123") == "carrier-b" and config.route("254") == "carrier-a"
    assert config.mo_recipient("+300001") == "slowco" and config.mo_recipient("254") == "acme"
    assert config.settings.reconnect_max == 0.3 and config.settings.window == 10
    assert "acmepw1" not in repr(config) and "gwpass1" not in repr(config)
    problems = [
        ({"users": {**good["users"], "x": {"password": "far-too-long"}}}, "users.x.password must be 1 to 8"),
        ({"mt_routes": [{"prefix": "", "connector": "carrier-z"}]}, "names connector 'carrier-z'"),
        ({"mo_user": "nobody"}, "mo_user 'nobody' is not one of the users"),
        ({"mo_routes": [{"prefix": "1", "user": "nobody"}]}, "mo_routes[0] names user 'nobody'"),
        ({"smpp_port": "2775"}, "smpp_port must be a port number"),
        ({"window": 0}, "window and deliver_window must be at least 1"),
    ]
    for change, message in problems:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse({**good, **change})
    with pytest.raises(ConfigError, match="lacks queue"):
        parse({key: value for key, value in good.items() if key != "queue"})
