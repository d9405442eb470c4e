"""Calls between two phones of the library, directly on loopback (no proxy)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from SipLibrary import SipCapacityError, SipError, SipLibrary

SHORT = timedelta(milliseconds=300)


def test_call_answer_and_hang_up_pass_through_the_call_states(sip: SipLibrary, direct: dict[str, str]) -> None:
    caller = sip.call("alice", direct["bob"])
    assert caller == "alice/1"
    incoming = sip.wait_for_incoming_call("bob")
    assert incoming["state"] == "INCOMING"
    assert incoming["from_number"] == "alice"
    sip.call_state_should_be("bob", "INCOMING")
    sip.answer_call("bob", code=180)
    sip.wait_until_call_state("alice", "EARLY")
    sip.answer_call("bob")
    info = sip.wait_until_call_state("alice", "CONFIRMED")
    assert info["history"] == ["CALLING", "EARLY", "CONNECTING", "CONFIRMED"]
    assert 0 < info["setup_ms"] < 2000
    sip.call_state_should_be("bob", "CONFIRMED")
    sip.hang_up("alice")
    ended = sip.wait_until_call_state("bob", "DISCONNECTED", status=200)
    assert ended["history"] == ["INCOMING", "EARLY", "CONNECTING", "CONFIRMED", "DISCONNECTED"]
    assert sip.get_call_info("alice")["state"] == "DISCONNECTED"


def test_a_rejected_call_ends_with_486_on_both_sides(sip: SipLibrary, direct: dict[str, str]) -> None:
    sip.call("alice", direct["bob"])
    sip.reject_call("bob")
    info = sip.wait_until_call_state("alice", "DISCONNECTED", status=486)
    assert info["last_reason"] == "Busy Here"
    with pytest.raises(AssertionError, match=r"Call alice/1 should have reached CONFIRMED but it ended first with 486"):
        sip.wait_until_call_state("alice", "CONFIRMED")
    with pytest.raises(AssertionError, match=r"reached DISCONNECTED with status 486 Busy Here, not 200"):
        sip.wait_until_call_state("alice", "DISCONNECTED", status=200)


def test_reject_takes_any_final_code_and_reason(sip: SipLibrary, direct: dict[str, str]) -> None:
    sip.call("alice", direct["bob"])
    sip.reject_call("bob", code=603, reason="Not Today")
    info = sip.wait_until_call_state("alice", "DISCONNECTED", status=603)
    assert info["last_reason"] == "Not Today"
    with pytest.raises(ValueError, match="Reject code 200 is not 300-699"):
        sip.reject_call("bob", code=200)


def test_caller_id_and_custom_headers_reach_the_callee(sip: SipLibrary) -> None:
    bob = sip.create_sip_phone("bob", "bob")
    sip.create_sip_phone("alice", "alice", display_name="Alice Liddell")
    sip.call("alice", bob, headers={"X-Test-Id": "T-7"})
    incoming = sip.wait_for_incoming_call("bob")
    assert incoming["headers"]["X-Test-Id"] == "T-7"
    sip.incoming_caller_id_should_be("bob", "alice", display="Alice Liddell")
    sip.hang_up("alice")
    sip.call("alice", bob, caller_id='"Front Desk" <sip:+4930111@example.com>')
    sip.wait_for_incoming_call("bob")
    sip.incoming_caller_id_should_be("bob", "+4930111", display="Front Desk")
    with pytest.raises(AssertionError, match=r"Caller ID \(From\) of bob/2 should be '4930111' but it is '\+4930111'"):
        sip.incoming_caller_id_should_be("bob", "4930111")
    with pytest.raises(AssertionError, match="should be '100' but it is '' \\(no such header\\)"):
        sip.incoming_caller_id_should_be("bob", "100", header="P-Asserted-Identity")


def test_a_malformed_destination_fails_before_anything_is_sent(sip: SipLibrary, direct: dict[str, str]) -> None:
    host = sip.ctx.host
    legs = host.legs
    for bad, reason in [
        ("sip:bob@", "the host is missing"),
        ("bob@127.0.0.1", "did you mean 'sip:bob@127.0.0.1'"),
        ("12 34", "white space"),
        ("4930123", "needs a domain"),
    ]:
        with pytest.raises(ValueError, match=r"Write it like|needs a domain") as error:
            sip.call("alice", bad)
        assert reason in str(error.value)
    with pytest.raises(ValueError, match="SIP header name 'X Bad'"):
        sip.call("alice", direct["bob"], headers={"X Bad": "1"})
    assert host.legs == legs
    assert sip.get_sip_phone_info("alice")["calls"] == []
    with pytest.raises(AssertionError, match=r"No incoming call reached 'bob' \(sip:bob@127.0.0.1:\d+\) within 0.3 s"):
        sip.wait_for_incoming_call("bob", timeout=SHORT)


def test_unknown_aliases_and_calls_are_named(sip: SipLibrary, direct: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"No SIP phone with alias 'carol'\. Known phones: alice, bob"):
        sip.call("carol", direct["bob"])
    with pytest.raises(SipError, match="Phone 'alice' has had no call yet"):
        sip.hang_up("alice")
    with pytest.raises(ValueError, match="Phone 'alice' has no call 'bob/9'"):
        sip.get_call_info("alice", call="bob/9")
    with pytest.raises(ValueError, match="exists already"):
        sip.create_sip_phone("Alice", "alice2")


def test_every_wait_is_bounded(sip: SipLibrary, direct: dict[str, str]) -> None:
    sip.call("alice", direct["bob"])
    started = time.monotonic()
    with pytest.raises(
        AssertionError, match=r"should have reached CONFIRMED but it is INCOMING \(100 Trying\) after 0.3 s"
    ):
        sip.wait_until_call_state("bob", "CONFIRMED", timeout=SHORT)
    with pytest.raises(AssertionError, match="no incoming call waiting for an answer"):
        sip.answer_call("alice", timeout=SHORT)
    assert time.monotonic() - started < 1.5


def test_cancelling_a_ringing_call(sip: SipLibrary, direct: dict[str, str]) -> None:
    sip.call("alice", direct["bob"])
    sip.wait_for_incoming_call("bob")
    sip.hang_up("alice")
    sip.wait_until_call_state("bob", "DISCONNECTED", status=487)


def test_auto_answer_and_tcp(sip: SipLibrary) -> None:
    ivr = sip.create_sip_phone("ivr", "ivr", transport="tcp", auto_answer=200)
    assert ivr.endswith(";transport=tcp")
    sip.create_sip_phone("alice", "alice", transport="tcp")
    sip.call("alice", ivr)
    assert sip.wait_until_call_state("alice", "CONFIRMED")["setup_ms"] < 1000
    assert sip.wait_for_incoming_call("ivr")["state"] == "CONFIRMED"


def test_a_phone_with_other_codecs_refuses_the_offer_with_488(sip: SipLibrary) -> None:
    g722 = sip.create_sip_phone("hd", "hd", codecs="G722")
    sip.create_sip_phone("alice", "alice")
    sip.call("alice", g722)
    sip.wait_until_call_state("alice", "DISCONNECTED", status=488)
    sip.create_sip_phone("pcma", "pcma", codecs="PCMA,PCMU", auto_answer=200)
    sip.create_sip_phone("carol", "carol", codecs=["PCMA"])
    sip.call("carol", sip.get_sip_phone_info("pcma")["contact_uri"])
    assert sip.wait_until_call_state("carol", "CONFIRMED")["codec"] == "PCMA/8000"
    with pytest.raises(ValueError, match=r"Codec 'AMR9' is not available in pjsua2\. Choose from: "):
        sip.create_sip_phone("odd", "odd", codecs="AMR9")


def test_two_local_calls_fill_the_four_call_legs(sip: SipLibrary) -> None:
    uris = {alias: sip.create_sip_phone(alias, alias, auto_answer=200) for alias in ("a", "b", "c", "d")}
    sip.call("a", uris["b"])
    sip.call("c", uris["d"])
    sip.wait_until_call_state("c", "CONFIRMED")
    with pytest.raises(SipCapacityError, match=r"already holds 4 and pjsua2-python allows 4.*nothing was sent"):
        sip.call("a", uris["c"])
    sip.hang_up_all_calls()
    assert sip.ctx.host.legs == 0
