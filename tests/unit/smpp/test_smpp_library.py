"""SmppLibrary's ESME keywords against the carrier SMSC over real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from assertionengine import AssertionOperator
from SmppLibrary import SmppConnectionError, SmppLibrary, SmppStatusError
from SmppLibrary.carrier import CarrierSmsc, ControlServer, RemoteCarrier
from SmppLibrary.codec import Coding, encode_text, split_text

PASSWORD = "s3cr3t!"
FROM = "4915100000001"
TO = "4915100000002"
LONG_GSM = "Long message with an € sign. " * 16  # 464 characters, 480 septets: 4 parts
EMOJI = "\U0001f600"


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 3
    names: list[str] = []
    while time.monotonic() < deadline:
        names = [t.name for t in threading.enumerate() if t.name.startswith(("smpp-reader", "carrier-"))]
        if not names:
            return
        time.sleep(0.02)
    pytest.fail(f"threads left running: {names}")


@pytest.fixture
def lib() -> Iterator[SmppLibrary]:
    library = SmppLibrary(timeout=timedelta(seconds=3), throttle_backoff=timedelta(milliseconds=10))
    yield library
    library.ctx.shutdown()


@pytest.fixture
def port(lib: SmppLibrary) -> int:
    return lib.start_carrier_smsc(accounts={"alice": PASSWORD, "bob": "pw"})


def carrier_of(lib: SmppLibrary) -> CarrierSmsc:
    local = lib.ctx.carrier().local
    assert local is not None
    return local


def bind(lib: SmppLibrary, port: int, **options: object) -> int:
    return lib.open_smpp_connection("127.0.0.1", port, "alice", PASSWORD, **options)  # type: ignore[arg-type]


def eventually(check: Callable[[], object], timeout: float = 2.0) -> None:
    """Poll ``check`` until it is truthy: for what the carrier does on its own thread after a response."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- binds ------------------------------------------------------------------------------------------------


def test_bind_enquire_link_and_close(lib: SmppLibrary, port: int) -> None:
    assert bind(lib, port, alias="alice") == 1
    lib.smpp_connection_should_be_bound()
    assert lib.send_enquire_link() >= 0
    info = lib.get_smpp_connection_info()
    assert info["bound"] is True
    assert info["bind_mode"] == "transceiver"
    assert carrier_of(lib).binds()[0]["system_id"] == "alice"
    lib.close_smpp_connection()
    assert lib.get_smpp_connection_info()["closed"] is True
    with pytest.raises(AssertionError, match="should be bound but it is closed"):
        lib.smpp_connection_should_be_bound()
    lib.close_smpp_connection()  # a second close does not fail


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("alice", "wrong", "ESME_RINVPASWD"), ("mallory", "Pw#4711", "ESME_RINVSYSID")],
)
def test_refused_bind_names_the_status_never_the_password(
    lib: SmppLibrary, port: int, system_id: str, password: str, status: str
) -> None:
    with pytest.raises(SmppStatusError) as caught:
        lib.open_smpp_connection("127.0.0.1", port, system_id, password)
    message = str(caught.value)
    assert caught.value.status_name == status
    assert message.startswith(f"Bind as '{system_id}' to 127.0.0.1:{port} failed: {status} (0x0000000")
    assert password not in message.replace(system_id, "")
    assert PASSWORD not in message
    assert not lib.ctx.connections


def test_wrong_password_message_is_pinned(lib: SmppLibrary, port: int) -> None:
    with pytest.raises(SmppStatusError) as caught:
        lib.open_smpp_connection("127.0.0.1", port, "alice", "nope")
    assert str(caught.value) == (
        f"Bind as 'alice' to 127.0.0.1:{port} failed: ESME_RINVPASWD (0x0000000E, Invalid Password). "
        "Check the password configured for this system_id (the password is not logged)."
    )


def test_unreachable_port_fails_quickly_naming_host_and_port(lib: SmppLibrary) -> None:
    closed = free_port()
    started = time.monotonic()
    with pytest.raises(SmppConnectionError, match=rf"Cannot connect to the SMSC at 127\.0\.0\.1:{closed} .*refused"):
        lib.open_smpp_connection("127.0.0.1", closed, "alice", PASSWORD, timeout=timedelta(seconds=2))
    assert time.monotonic() - started < 2.5


def test_silent_server_fails_within_the_bind_timeout(lib: SmppLibrary) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        with pytest.raises(SmppConnectionError, match=r"no bind response within 0\.5 s"):
            lib.open_smpp_connection(
                "127.0.0.1", silent.getsockname()[1], "alice", PASSWORD, timeout=timedelta(milliseconds=500)
            )
        assert time.monotonic() - started < 2


def test_password_longer_than_smpp_allows_is_refused_before_connecting(lib: SmppLibrary, port: int) -> None:
    with pytest.raises(ValueError, match="at most 8"):
        lib.open_smpp_connection("127.0.0.1", port, "alice", "ninechars")


def test_two_connections_by_alias(lib: SmppLibrary, port: int) -> None:
    bind(lib, port, alias="tx", bind_mode="transmitter")
    lib.open_smpp_connection("127.0.0.1", port, "bob", "pw", alias="rx", bind_mode="receiver")
    assert lib.switch_smpp_connection("tx") == 2
    assert lib.get_smpp_connection_info()["bind_mode"] == "transmitter"
    modes = sorted(b["mode"] for b in carrier_of(lib).binds())
    assert modes == ["receiver", "transmitter"]
    with pytest.raises(ValueError, match="Non-existing index or alias 'nope'"):
        lib.switch_smpp_connection("nope")


# --- submits ----------------------------------------------------------------------------------------------


def test_gsm7_submit_is_recorded_by_the_carrier(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    ids = lib.submit_sms(FROM, TO, "Hello @ 5€", registered_delivery=False)
    assert len(ids) == 1
    sms = lib.carrier_should_have_received_sms(to=TO, text="Hello @ 5€", coding="gsm7", parts=1)
    assert sms["message_ids"] == ids
    assert (sms["source_ton"], sms["source_npi"], sms["dest_ton"], sms["dest_npi"]) == (1, 1, 1, 1)
    raw = lib.get_carrier_messages(raw=True)[0]
    assert raw["data_coding"] == 0
    assert raw["short_message"] == encode_text("Hello @ 5€", Coding.GSM7).hex()
    assert raw["registered_delivery"] == 0
    assert raw["system_id"] == "alice"


def test_ucs2_submit_with_alphanumeric_sender(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    lib.submit_sms("ACME", "+" + TO, f"Привет {EMOJI}", priority=1, validity=timedelta(hours=1))
    sms = lib.carrier_should_have_received_sms(to=TO, text=f"Привет {EMOJI}", coding="ucs2", parts=1)
    assert (sms["source"], sms["source_ton"], sms["source_npi"]) == ("ACME", 5, 0)
    raw = lib.get_carrier_messages(raw=True)[0]
    assert raw["data_coding"] == 8
    assert raw["priority"] == 1
    assert raw["validity_period"] == "000000010000000R"


def test_three_part_udh_submit(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    text = "a" * 152 + "€" + "b" * 200  # the € moves to part 2; 3 parts in all
    ids = lib.submit_sms(FROM, TO, text)
    assert len(ids) == 3
    sms = lib.carrier_should_have_received_sms(to=TO, text=text, parts=3, coding="gsm7")
    assert sms["scheme"] == "udh"
    raw = lib.get_carrier_messages(raw=True)
    assert [r["udh"]["seq"] for r in raw] == [1, 2, 3]
    assert {r["udh"]["ref"] for r in raw} == {raw[0]["udh"]["ref"]}
    assert all(r["esm_class"] & 0x40 for r in raw)
    assert raw[0]["text"] == "a" * 152
    assert raw[1]["text"].startswith("€")


def test_three_part_sar_submit_and_payload(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    text = "ж" * 150  # UCS2: 67 + 67 + 16
    assert len(lib.submit_sms(FROM, TO, text, split="sar")) == 3
    raw = lib.get_carrier_messages(raw=True)
    assert [r["sar"]["seq"] for r in raw] == [1, 2, 3]
    assert all(r["esm_class"] == 0 and r["udh"] is None for r in raw)
    lib.carrier_should_have_received_sms(to=TO, text=text, parts=3, coding="ucs2")
    assert len(lib.submit_sms(FROM, "4915100000003", LONG_GSM, split="payload")) == 1
    sms = lib.carrier_should_have_received_sms(to="4915100000003", text=LONG_GSM, parts=1)
    assert sms["scheme"] == "single"
    assert lib.get_carrier_messages(raw=True)[-1]["message_payload"]


def test_malformed_number_fails_before_anything_is_sent(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    with pytest.raises(ValueError, match=r"'49 151 000' is not a number"):
        lib.submit_sms(FROM, "49 151 000", "hi")
    with pytest.raises(ValueError, match="destination address is empty"):
        lib.submit_sms(FROM, "", "hi")
    lib.carrier_message_count_should_be(0, raw=True, timeout=timedelta(0))


def test_error_status_names_the_status(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    lib.set_carrier_behaviour(submit_status="ESME_RINVDSTADR")
    with pytest.raises(SmppStatusError, match=r"Submit from .* failed: ESME_RINVDSTADR \(0x0000000B"):
        lib.submit_sms(FROM, TO, "hi")


def test_throttling_backs_off_and_retries(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    lib.set_carrier_behaviour(throttle_next=2)
    started = time.monotonic()
    ids = lib.submit_sms(FROM, TO, "after throttling")
    assert time.monotonic() - started >= 0.03  # 10 ms + 20 ms back-off
    statuses = [r["status"] for r in lib.get_carrier_messages(raw=True)]
    assert statuses == ["ESME_RTHROTTLED", "ESME_RTHROTTLED", "ESME_ROK"]
    assert lib.get_carrier_messages()[0]["message_ids"] == ids


def test_throttling_that_never_ends_fails_with_the_name(lib: SmppLibrary, port: int) -> None:
    lib.ctx.throttle_retries = 2
    bind(lib, port)
    lib.set_carrier_behaviour(throttle_next=10)
    with pytest.raises(SmppStatusError, match=r"ESME_RTHROTTLED.*Still throttled after 2 retries"):
        lib.submit_sms(FROM, TO, "never")
    assert lib.get_carrier_status()["throttled"] == 3


def test_rate_limit_answers_throttled(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    lib.set_carrier_behaviour(max_rate=5)
    result = lib.submit_bulk_sms(20, FROM, TO, "burst", window=20)
    assert result["statuses"].get("ESME_RTHROTTLED", 0) >= 10
    assert result["acked"] + result["statuses"]["ESME_RTHROTTLED"] == 20


# --- receipts ---------------------------------------------------------------------------------------------


def test_receipt_per_part_is_correlated(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    ids = lib.submit_sms(FROM, TO, LONG_GSM)
    assert len(ids) == 4
    receipts = lib.wait_until_delivery_receipt(ids, state="DELIVRD")
    assert [r["id"] for r in receipts] == ids
    assert all(r["state"] == "DELIVRD" and r["error"] == "000" for r in receipts)
    assert receipts[0]["source"] == TO
    receipt = lib.get_delivery_receipt(ids[2].upper(), AssertionOperator["=="], "delivered")
    assert receipt["id"] == ids[2]
    assert receipt["message_state"] == 2


def test_wrong_and_missing_receipts_are_named(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    lib.set_carrier_behaviour(dlr_state="UNDELIV", dlr_error=34)
    ids = lib.submit_sms(FROM, TO, "x" * 200)
    started = time.monotonic()
    with pytest.raises(AssertionError) as caught:
        lib.wait_until_delivery_receipt(ids, state="DELIVRD")
    assert time.monotonic() - started < 2  # every part has a final receipt: no need to wait for the timeout
    assert str(caught.value) == (
        f"Delivery receipts of 2 part(s) should all be DELIVRD: part 1 ('{ids[0]}') is UNDELIV (err 034); "
        f"part 2 ('{ids[1]}') is UNDELIV (err 034)."
    )
    with pytest.raises(AssertionError, match=r"state 'UNDELIV' \(str\) should be 'DELIVRD'"):
        lib.get_delivery_receipt(ids[0], AssertionOperator["=="], "DELIVRD", timeout=timedelta(milliseconds=100))
    lib.set_carrier_behaviour(auto_dlr=False)
    more = lib.submit_sms(FROM, TO, "no receipt")
    with pytest.raises(AssertionError, match=rf"part 1 \('{more[0]}'\) has no receipt\. \(waited 0.3 s\)"):
        lib.wait_until_delivery_receipt(more, timeout=timedelta(milliseconds=300))


def test_receipt_on_demand_and_with_delay(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    lib.set_carrier_behaviour(auto_dlr=False)
    [message_id] = lib.submit_sms(FROM, TO, "on demand")
    lib.carrier_sends_delivery_receipt(message_id, state="EXPIRED")
    receipt = lib.get_delivery_receipt(message_id, AssertionOperator["=="], "EXPIRED")
    assert receipt["error"] == "001"
    lib.set_carrier_behaviour(auto_dlr=True, dlr_state="DELIVRD", dlr_delay=timedelta(milliseconds=200))
    [later] = lib.submit_sms(FROM, TO, "later")
    started = time.monotonic()
    lib.wait_until_delivery_receipt(later)
    assert time.monotonic() - started >= 0.15


def test_receipt_waits_for_a_receiver_to_bind(lib: SmppLibrary, port: int) -> None:
    bind(lib, port, alias="tx", bind_mode="transmitter")
    [message_id] = lib.submit_sms(FROM, TO, "to a receiver")
    eventually(lib.get_carrier_deliveries)
    assert lib.get_carrier_deliveries()[0]["queued"] is True
    bind(lib, port, alias="rx", bind_mode="receiver")
    lib.wait_until_delivery_receipt(message_id)
    # the deliver_sm_resp follows the receipt the ESME has already filed
    eventually(lambda: lib.get_carrier_deliveries()[0]["status"] == "ESME_ROK")


# --- MO ---------------------------------------------------------------------------------------------------


def test_mo_sms_is_reassembled_and_decoded(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    text = "Привет мир! " * 20 + EMOJI
    result = lib.carrier_sends_mo_sms("4915100000009", FROM, text)
    assert result["parts"] == 4
    assert result["coding"] == "ucs2"
    lib.carrier_sends_mo_sms("4915100000008", FROM, "STOP")
    stop = lib.wait_until_sms_received(text_regex="^STOP$")
    assert (stop["source"], stop["coding"], stop["parts"]) == ("4915100000008", "gsm7", 1)
    sms = lib.wait_until_sms_received(source="+4915100000009", destination=FROM)
    assert sms["text"] == text
    assert sms["parts"] == 4
    with pytest.raises(AssertionError, match=r"No SMS from '4915100000009' received within 0\.1 s"):
        lib.wait_until_sms_received(source="4915100000009", timeout=timedelta(milliseconds=100))


def test_mo_parts_out_of_order_udh_and_sar(lib: SmppLibrary) -> None:
    text = "part one and part two " * 10
    parts = split_text(text, Coding.GSM7)
    base = {
        "service_type": "",
        "source": "4915100000009",
        "source_ton": 1,
        "source_npi": 1,
        "destination": FROM,
        "dest_ton": 1,
        "dest_npi": 1,
        "data_coding": 0,
        "message_payload": b"",
        "receipted_message_id": "",
        "message_state": None,
        "received_at": time.time(),
        "sequence": 1,
    }
    udh = [
        {
            **base,
            "esm_class": 0x40,
            "sar": None,
            "short_message": bytes((5, 0, 3, 9, 2, n)) + encode_text(p, Coding.GSM7),
        }
        for n, p in enumerate(parts, start=1)
    ]
    sar = [
        {**base, "esm_class": 0, "sar": (300, 2, n), "short_message": encode_text(p, Coding.GSM7)}
        for n, p in enumerate(parts, start=1)
    ]
    inbox = lib.ctx.inbox
    assert inbox.add(udh[1], "x") == ("part", None)
    assert inbox.add(sar[1], "x") == ("part", None)
    kind, message = inbox.add(udh[0], "x")
    assert kind == "mo" and message is not None and message["text"] == text
    kind, message = inbox.add(sar[0], "x")
    assert kind == "mo" and message is not None and message["text"] == text


def test_receipt_text_id_in_decimal_matches_a_hex_message_id(lib: SmppLibrary) -> None:
    fields = {
        "source": TO,
        "destination": FROM,
        "esm_class": 0x04,
        "data_coding": 0,
        "short_message": b"id:2587 sub:001 dlvrd:001 submit date:2405170930 done date:2405170931 stat:DELIVRD err:000",
        "message_payload": b"",
        "receipted_message_id": "",
        "message_state": None,
        "received_at": time.time(),
    }
    lib.ctx.inbox.add(fields, "x")
    receipt = lib.get_delivery_receipt("0A1B", timeout=timedelta(0))
    assert receipt["state"] == "DELIVRD"


# --- bulk, faults, remote carrier ------------------------------------------------------------------------


def test_windowed_bulk_never_exceeds_the_window(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    lib.set_carrier_behaviour(latency=timedelta(milliseconds=20))
    result = lib.submit_bulk_sms(60, FROM, TO, "bulk", window=5)
    assert (result["requested"], result["sent"], result["acked"], result["failed"]) == (60, 60, 60, 0)
    assert result["statuses"] == {"ESME_ROK": 60}
    assert len(set(result["message_ids"])) == 60
    assert result["latency_ms"]["p50"] >= 15
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p95"] <= result["latency_ms"]["p99"]
    assert result["elapsed"] >= 60 / 5 * 0.02 * 0.9
    assert lib.get_carrier_status()["max_in_flight"] == 5
    lib.carrier_message_count_should_be(60)
    with pytest.raises(AssertionError, match="should have 61 messages but it has 60"):
        lib.carrier_message_count_should_be(61, timeout=timedelta(milliseconds=50))


def test_bulk_is_fast_without_latency(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    result = lib.submit_bulk_sms(1000, FROM, TO, "fast", window=50)
    assert result["acked"] == 1000
    assert result["rate"] > 500


def test_dropped_connection_rebinds_automatically(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    assert lib.carrier_drops_all_connections() == 1
    eventually(lambda: lib.get_smpp_connection_info()["rebinds"] == 1, timeout=3)
    lib.smpp_connection_should_be_bound(timeout=timedelta(seconds=1))
    ids = lib.submit_sms(FROM, TO, "after the rebind")
    lib.wait_until_delivery_receipt(ids)
    assert carrier_of(lib).status()["binds_accepted"] == 2


def test_rebind_waits_for_the_smsc_to_come_back(lib: SmppLibrary) -> None:
    carrier = CarrierSmsc(accounts={"alice": PASSWORD})
    carrier_port = carrier.start()
    try:
        bind(lib, carrier_port)
        carrier.stop()
        time.sleep(0.3)  # let the reader see the drop and fail a first rebind
        assert not lib.get_smpp_connection_info()["bound"]
        carrier = CarrierSmsc(port=carrier_port, accounts={"alice": PASSWORD})
        carrier.start()
        lib.smpp_connection_should_be_bound(timeout=timedelta(seconds=4))
        assert lib.submit_sms(FROM, TO, "back")
    finally:
        lib.close_all_smpp_connections()
        carrier.stop()


def test_close_all_on_a_dead_link_is_bounded_and_quiet(lib: SmppLibrary, port: int) -> None:
    bind(lib, port, rebind=False, alias="a")
    bind(lib, port, alias="b")
    carrier_of(lib).stop()
    time.sleep(0.2)
    with pytest.raises(SmppConnectionError, match="not bound"):
        lib.switch_smpp_connection("a")
        lib.submit_sms(FROM, TO, "dead", timeout=timedelta(milliseconds=200))
    started = time.monotonic()
    lib.close_all_smpp_connections()
    assert time.monotonic() - started < 3
    assert not lib.ctx.connections


def test_remote_carrier_through_the_control_api(lib: SmppLibrary) -> None:
    carrier = CarrierSmsc(accounts={"alice": PASSWORD})
    carrier_port = carrier.start()
    control = ControlServer(carrier)
    control.start()
    try:
        status = lib.connect_to_carrier_smsc(control.url, alias="remote")
        assert status["port"] == carrier_port
        bind(lib, carrier_port)
        assert lib.set_carrier_behaviour(dlr_state="REJECTD", latency=timedelta(milliseconds=1))["dlr_state"] == (
            "REJECTD"
        )
        ids = lib.submit_sms(FROM, TO, "via the lab carrier")
        lib.carrier_should_have_received_sms(to=TO, text="via the lab carrier")
        lib.wait_until_delivery_receipt(ids, state="REJECTD")
        lib.carrier_sends_mo_sms(TO, FROM, "reply", coding="latin1")
        assert lib.wait_until_sms_received(text_regex="reply")["coding"] == "latin1"
        lib.carrier_sends_delivery_receipt(ids[0], state="DELIVRD")
        lib.get_delivery_receipt(ids[0], AssertionOperator["=="], "DELIVRD")
        assert lib.wait_until_carrier_is_bound(system_id="alice")["mode"] == "transceiver"
        assert lib.clear_carrier_messages() == 1
        with pytest.raises(Exception, match="Unknown carrier behaviour"):
            RemoteCarrier(control.url).set_behaviour(colour="blue")
        assert lib.carrier_drops_all_connections() == 1
    finally:
        lib.close_all_smpp_connections()
        control.stop()
        carrier.stop()
    with pytest.raises(Exception, match="Cannot reach the carrier control API"):
        RemoteCarrier(control.url, timeout=1).status()


def test_carrier_assertion_lists_what_it_got(lib: SmppLibrary, port: int) -> None:
    bind(lib, port)
    lib.submit_sms(FROM, TO, "Hello")
    with pytest.raises(AssertionError) as caught:
        lib.carrier_should_have_received_sms(to=TO, text="Goodbye", timeout=timedelta(milliseconds=100))
    assert str(caught.value) == (
        "The carrier should have received an SMS with to '4915100000002', text 'Goodbye' within 0.1 s, "
        "but it got 1 message(s):\n  to '4915100000002' from '4915100000001', gsm7, 1 part: 'Hello'"
    )


def test_keywords_without_a_connection_or_carrier_explain_what_to_do(lib: SmppLibrary) -> None:
    with pytest.raises(Exception, match="Open one with `Open SMPP Connection`"):
        lib.submit_sms(FROM, TO, "x")
    with pytest.raises(Exception, match="Start one with `Start Carrier SMSC`"):
        lib.get_carrier_messages()
    lib.close_all_smpp_connections()
    lib.close_smpp_connection()
    lib.stop_carrier_smsc()


def test_password_never_reaches_the_log(lib: SmppLibrary, port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)  # outside a Robot run, robot.api.logger writes to the "RobotFramework" logger
    bind(lib, port, alias="alice")
    lib.submit_sms(FROM, TO, "hello")
    lib.carrier_drops_all_connections()
    eventually(lambda: lib.get_smpp_connection_info()["rebinds"] == 1, timeout=3)
    with pytest.raises(SmppStatusError):
        lib.open_smpp_connection("127.0.0.1", port, "alice", "Wr0ngPw")
    lib.close_all_smpp_connections()
    text = "\n".join(f"{record.name}: {record.getMessage()}" for record in caplog.records)
    assert "password ***" in text
    assert "dropped" in text and "rebound" in text
    for secret in (PASSWORD, PASSWORD.encode().hex(), "Wr0ngPw", b"Wr0ngPw".hex()):
        assert secret not in text


def test_receiver_bind_cannot_submit(lib: SmppLibrary, port: int) -> None:
    bind(lib, port, bind_mode="receiver")
    with pytest.raises(Exception, match="bound as receiver and cannot send submit_sm"):
        lib.submit_sms(FROM, TO, "x")
