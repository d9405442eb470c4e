"""The carrier SMSC on the wire: its PDU codec, garbage handling, the ESME reader's robustness, the CLI."""

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
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from SmppLibrary import CarrierError, SmppLibrary
from SmppLibrary.carrier import CarrierSmsc, ControlServer, RemoteCarrier
from SmppLibrary.carrier.pdu import (
    COMMANDS,
    TLV_RECEIPTED_MESSAGE_ID,
    MalformedPduError,
    decode,
    encode,
    tlv_cstr,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def carrier() -> Iterator[CarrierSmsc]:
    smsc = CarrierSmsc(accounts={"gw": "pw"})
    smsc.start()
    yield smsc
    smsc.stop()


def read_pdu(sock: socket.socket) -> bytes:
    head = _exact(sock, 4)
    (length,) = struct.unpack(">L", head)
    return head + _exact(sock, length - 4)


def _exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def raw_bind(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.sendall(encode("bind_transceiver", sequence=1, fields={"system_id": "gw", "password": "pw"}))
    response = decode(read_pdu(sock))
    assert (response.command, response.status) == ("bind_transceiver_resp", 0)
    return sock


# --- codec ------------------------------------------------------------------------------------------------


def test_codec_round_trip_of_a_submit() -> None:
    fields = {
        "source_addr_ton": 1,
        "source_addr_npi": 1,
        "source_addr": "4915100000001",
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": "4915100000002",
        "esm_class": 0x40,
        "registered_delivery": 1,
        "data_coding": 8,
        "short_message": b"\x05\x00\x03\x01\x02\x01\x04\x1f",
    }
    raw = encode("submit_sm", sequence=7, fields=fields, tlvs=[tlv_cstr(TLV_RECEIPTED_MESSAGE_ID, "abc")])
    pdu = decode(raw)
    assert (pdu.command, pdu.sequence, pdu.status) == ("submit_sm", 7, 0)
    assert pdu.fields["destination_addr"] == "4915100000002"
    assert pdu.fields["sm_length"] == 8
    assert pdu.fields["short_message"] == fields["short_message"]
    assert pdu.tlv_cstr(TLV_RECEIPTED_MESSAGE_ID) == "abc"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (struct.pack(">LLLL", 16, 0x99, 0, 5), 0x03),  # unknown command id
        (struct.pack(">LLLL", 20, COMMANDS["submit_sm"], 0, 5) + b"abcd", 0xC2),  # no NUL in service_type
        (struct.pack(">LLLL", 18, COMMANDS["submit_sm"], 0, 5) + b"\x00\x01", 0x02),  # body ends early
        (struct.pack(">LLLL", 19, COMMANDS["enquire_link"], 0, 5) + b"\x00\x01\x02", 0xC0),  # broken TLV
    ],
)
def test_codec_rejects_malformed_pdus(raw: bytes, status: int) -> None:
    with pytest.raises(MalformedPduError) as caught:
        decode(raw)
    assert caught.value.status == status
    assert caught.value.sequence == 5


# --- the server under garbage -----------------------------------------------------------------------------


def test_malformed_pdus_get_generic_nack_and_the_bind_keeps_working(carrier: CarrierSmsc) -> None:
    with raw_bind(carrier.port) as sock:
        sock.sendall(struct.pack(">LLLL", 16, 0x00000099, 0, 42))  # unknown command
        nack = decode(read_pdu(sock))
        assert (nack.command, nack.status, nack.sequence) == ("generic_nack", 0x03, 42)
        sock.sendall(struct.pack(">LLLL", 20, COMMANDS["submit_sm"], 0, 43) + b"\x01\x02\x03\x04")  # garbage body
        nack = decode(read_pdu(sock))
        assert (nack.command, nack.status, nack.sequence) == ("generic_nack", 0xC2, 43)
        sock.sendall(encode("enquire_link", sequence=44))
        assert decode(read_pdu(sock)).command == "enquire_link_resp"
        sock.sendall(struct.pack(">LLLL", 16, COMMANDS["query_sm"], 0, 45))
        assert decode(read_pdu(sock)).status == 0x03  # query_sm is not supported: nacked
        sock.sendall(encode("unbind", sequence=46))
        assert decode(read_pdu(sock)).command == "unbind_resp"
    assert carrier.status()["malformed"] == 3


def test_impossible_length_nacks_and_drops_only_that_connection(carrier: CarrierSmsc) -> None:
    with raw_bind(carrier.port) as bad, raw_bind(carrier.port) as good:
        bad.sendall(struct.pack(">L", 8) + b"\x00" * 12)
        nack = decode(read_pdu(bad))
        assert (nack.command, nack.status) == ("generic_nack", 0x02)
        assert bad.recv(1) == b""  # closed: the stream cannot be resynchronised
        good.sendall(encode("enquire_link", sequence=9))
        assert decode(read_pdu(good)).command == "enquire_link_resp"


def test_submit_before_bind_is_refused(carrier: CarrierSmsc) -> None:
    with socket.create_connection(("127.0.0.1", carrier.port), timeout=3) as sock:
        sock.sendall(encode("submit_sm", sequence=3, fields={"destination_addr": "1", "short_message": b"x"}))
        response = decode(read_pdu(sock))
        assert (response.command, response.status) == ("submit_sm_resp", 0x04)
        sock.sendall(encode("bind_receiver", sequence=4, fields={"system_id": "gw", "password": "pw"}))
        assert decode(read_pdu(sock)).status == 0
        sock.sendall(encode("bind_receiver", sequence=5, fields={"system_id": "gw", "password": "pw"}))
        assert decode(read_pdu(sock)).status == 0x05  # ESME_RALYBND
        sock.sendall(encode("submit_sm", sequence=6, fields={"destination_addr": "1", "short_message": b"x"}))
        assert decode(read_pdu(sock)).status == 0x04  # a receiver may not submit


def test_data_sm_is_answered_and_recorded(carrier: CarrierSmsc) -> None:
    with raw_bind(carrier.port) as sock:
        fields = {"source_addr": "111", "destination_addr": "222", "data_coding": 0}
        tlvs = [(0x0424, b"hello data sm")]
        sock.sendall(encode("data_sm", sequence=8, fields=fields, tlvs=tlvs))
        response = decode(read_pdu(sock))
        assert (response.command, response.status) == ("data_sm_resp", 0)
        assert response.fields["message_id"]
    [record] = carrier.submits()
    assert (record["command"], record["text"], record["destination"]) == ("data_sm", "hello data sm", "222")


# --- the ESME reader under garbage ------------------------------------------------------------------------


def test_esme_nacks_an_unknown_pdu_from_the_smsc_and_keeps_reading() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen: dict[str, object] = {}

    def fake_smsc() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(3)
            bind = decode(read_pdu(conn))
            conn.sendall(encode("bind_transceiver_resp", sequence=bind.sequence, fields={"system_id": "x"}))
            conn.sendall(struct.pack(">LLLL", 16, 0x00000077, 0, 900))  # unknown to smpplib
            seen["nack"] = decode(read_pdu(conn))
            conn.sendall(encode("enquire_link", sequence=901))
            seen["enquire_link_resp"] = decode(read_pdu(conn))
            conn.sendall(encode("unbind", sequence=902))
            seen["unbind_resp"] = decode(read_pdu(conn))

    thread = threading.Thread(target=fake_smsc, name="fake-smsc")
    thread.start()
    lib = SmppLibrary(timeout=timedelta(seconds=3), rebind=False)
    try:
        lib.open_smpp_connection("127.0.0.1", server.getsockname()[1], "esme", "pw")
        thread.join(5)
    finally:
        lib.ctx.shutdown()
        server.close()
    nack = seen["nack"]
    assert getattr(nack, "command", None) == "generic_nack"
    assert getattr(nack, "sequence", None) == 900
    assert getattr(seen["enquire_link_resp"], "sequence", None) == 901
    assert getattr(seen["unbind_resp"], "command", None) == "unbind_resp"


# --- standalone process -----------------------------------------------------------------------------------


def test_standalone_carrier_with_control_api(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"lab": "labpw"}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "libraries"), str(ROOT)])}
    command = [
        sys.executable,
        "-m",
        "SmppLibrary.carrier",
        "--port",
        "0",
        "--control-port",
        "0",
        "--account",
        "gw:topsecret",
        "--accounts-file",
        str(accounts),
        "--dlr-state",
        "UNDELIV",
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert process.stderr is not None
        line = ""
        deadline = time.monotonic() + 15
        while "listening" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+), control API (http://\S+),", line)
        assert match, line
        assert "topsecret" not in line
        with urllib.request.urlopen(f"{match.group(2)}/status", timeout=5) as response:
            status = json.loads(response.read())
        assert status["port"] == int(match.group(1))
        assert status["behaviour"]["dlr_state"] == "UNDELIV"
        assert status["accounts"] == ["gw", "lab"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        if process.stderr is not None:
            process.stderr.close()


# --- destination-scoped behaviour -------------------------------------------------------------------------


def _submit(sock: socket.socket, sequence: int, destination: str, registered_delivery: int = 1) -> int:
    fields = {
        "source_addr": "4915100000001",
        "destination_addr": destination,
        "registered_delivery": registered_delivery,
        "short_message": b"rule test",
    }
    sock.sendall(encode("submit_sm", sequence=sequence, fields=fields))
    response = decode(read_pdu(sock))
    assert (response.command, response.sequence) == ("submit_sm_resp", sequence)
    return response.status


def _receipt_state(sock: socket.socket) -> str:
    receipt = decode(read_pdu(sock))
    assert receipt.command == "deliver_sm"
    sock.sendall(encode("deliver_sm_resp", sequence=receipt.sequence))
    return receipt.fields["short_message"].decode().split("stat:")[1].split()[0]


def test_destination_rule_applies_only_to_its_prefix(carrier: CarrierSmsc) -> None:
    rule = carrier.set_behaviour(destination="+254700555", dlr_state="UNDELIV")
    assert (rule["destination"], rule["dlr_state"], rule["submit_status"]) == ("254700555", "UNDELIV", "ESME_ROK")
    assert carrier.behaviour()["dlr_state"] == "DELIVRD"  # the default is untouched
    with raw_bind(carrier.port) as sock:
        assert _submit(sock, 2, "254700555123") == 0
        assert _receipt_state(sock) == "UNDELIV"
        assert _submit(sock, 3, "254700556123") == 0
        assert _receipt_state(sock) == "DELIVRD"
    assert carrier.behaviour(destination="254700555999") == {**carrier.behaviour(), "dlr_state": "UNDELIV"} | {
        "rule": "254700555"
    }
    assert carrier.behaviour_rules() == [{"destination": "254700555", "overrides": {"dlr_state": "UNDELIV"}}]


def test_longest_prefix_wins_and_rules_follow_the_default_for_other_keys(carrier: CarrierSmsc) -> None:
    carrier.set_behaviour(destination="2547", submit_status="ESME_RSYSERR")
    carrier.set_behaviour(destination="254700", dlr_state="EXPIRED")
    carrier.set_behaviour(destination="254700", dlr_error=7)  # a second call adds to the same rule
    carrier.set_behaviour(dlr_state="REJECTD", latency=0.001)  # the default changes under the rules
    with raw_bind(carrier.port) as sock:
        assert _submit(sock, 2, "254711000000") == 0x08  # only the shorter rule matches
        assert _submit(sock, 3, "254700000001") == 0  # the longer rule does not set submit_status
        assert _receipt_state(sock) == "EXPIRED"
        assert _submit(sock, 4, "49170000000") == 0  # no rule: the default
        assert _receipt_state(sock) == "REJECTD"
    assert carrier.behaviour(destination="254700000001")["dlr_error"] == 7
    assert carrier.behaviour(destination="254700000001")["latency"] == 0.001
    assert [rule["destination"] for rule in carrier.status()["rules"]] == ["2547", "254700"]


def test_rule_throttling_counts_for_its_destinations_only(carrier: CarrierSmsc) -> None:
    carrier.set_behaviour(destination="999", throttle_next=2)
    with raw_bind(carrier.port) as sock:
        assert _submit(sock, 2, "123", registered_delivery=0) == 0
        assert _submit(sock, 3, "9991", registered_delivery=0) == 0x58
        assert _submit(sock, 4, "124", registered_delivery=0) == 0
        assert _submit(sock, 5, "9992", registered_delivery=0) == 0x58
        assert _submit(sock, 6, "9993", registered_delivery=0) == 0
    assert carrier.behaviour()["throttle_next"] == 0


def test_clearing_rules(carrier: CarrierSmsc) -> None:
    carrier.set_behaviour(destination="111", dlr_state="UNDELIV")
    carrier.set_behaviour(destination="222", dlr_state="EXPIRED")
    carrier.set_behaviour(max_rate=3)
    assert carrier.clear_behaviour(destination="111") == {"removed": 1, "rules": 1}
    assert carrier.clear_behaviour(destination="111") == {"removed": 0, "rules": 1}  # safe in a teardown
    assert carrier.behaviour(destination="1119")["rule"] is None
    cleared = carrier.clear_behaviour()
    assert (cleared["removed"], cleared["rules"], cleared["behaviour"]["max_rate"]) == (1, 0, None)
    with pytest.raises(ValueError, match="must be the start of an address"):
        carrier.set_behaviour(destination="254 700", dlr_state="UNDELIV")
    with pytest.raises(ValueError, match="Unknown carrier behaviour"):
        carrier.set_behaviour(destination="254", colour="blue")
    assert carrier.behaviour_rules() == []


def test_rules_through_the_keywords_and_the_control_api() -> None:
    carrier = CarrierSmsc(accounts={"gw": "pw"})
    carrier.start()
    control = ControlServer(carrier)
    control.start()
    lib = SmppLibrary(timeout=timedelta(seconds=3))
    try:
        lib.connect_to_carrier_smsc(control.url)
        rule = lib.set_carrier_behaviour(dlr_state="UNDELIV", dlr_delay=timedelta(milliseconds=5), destination="2547")
        assert (rule["destination"], rule["dlr_state"], rule["dlr_delay"]) == ("2547", "UNDELIV", 0.005)
        assert lib.set_carrier_behaviour(submit_status="ESME_RSYSERR", destination="")["submit_status"] == (
            "ESME_RSYSERR"
        )  # an empty destination is the default
        assert lib.get_carrier_behaviour(destination="25470001")["rule"] == "2547"
        assert lib.get_carrier_behaviour(destination="25470001")["submit_status"] == "ESME_RSYSERR"
        assert lib.get_carrier_status()["rules"] == [
            {"destination": "2547", "overrides": {"dlr_delay": 0.005, "dlr_state": "UNDELIV"}}
        ]
        assert RemoteCarrier(control.url).behaviour_rules()[0]["destination"] == "2547"
        assert lib.clear_carrier_behaviour(destination="2547") == 1
        assert lib.clear_carrier_behaviour(destination="2547") == 0
        lib.set_carrier_behaviour(dlr_state="EXPIRED", destination="31")
        assert lib.clear_carrier_behaviour() == 1
        assert lib.get_carrier_behaviour()["submit_status"] == "ESME_ROK"
        with pytest.raises(CarrierError, match="answered 400: Destination prefix"):
            lib.set_carrier_behaviour(dlr_state="UNDELIV", destination="1 2")
    finally:
        lib.ctx.shutdown()
        control.stop()
        carrier.stop()
