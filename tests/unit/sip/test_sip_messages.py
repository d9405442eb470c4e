"""SIP MESSAGE between two phones, outside calls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from SipLibrary import SipLibrary


def test_messages_both_ways_with_headers(sip: SipLibrary, direct: dict[str, str]) -> None:
    answer = sip.send_sip_message("alice", direct["bob"], "Hello Bob", headers={"X-Campaign": "c-1"})
    assert answer == {"status": 200, "reason": "OK"}
    received = sip.wait_until_sip_message_received("bob", text_regex="^Hello")
    assert received["text"] == "Hello Bob"
    assert received["from_number"] == "alice"
    assert received["content_type"] == "text/plain"
    assert received["headers"]["X-Campaign"] == "c-1"
    sip.send_sip_message("bob", direct["alice"], "Hi Alice, ünïcödé ✓")
    assert sip.wait_until_sip_message_received("alice", sender="bob")["text"] == "Hi Alice, ünïcödé ✓"


def test_a_message_is_taken_once_and_matched_by_text(sip: SipLibrary, direct: dict[str, str]) -> None:
    sip.send_sip_message("alice", direct["bob"], "first")
    sip.send_sip_message("alice", direct["bob"], "second", content_type="text/x-test")
    assert sip.wait_until_sip_message_received("bob", text_regex="sec")["content_type"] == "text/x-test"
    assert sip.wait_until_sip_message_received("bob")["text"] == "first"
    with pytest.raises(
        AssertionError, match=r"No SIP MESSAGE \(any\) reached 'bob' within 0.2 s. Unclaimed messages: none"
    ):
        sip.wait_until_sip_message_received("bob", timeout=timedelta(milliseconds=200))
    with pytest.raises(ValueError, match="text_regex '\\(' is not a valid regular expression"):
        sip.wait_until_sip_message_received("bob", text_regex="(")


def test_an_unanswered_message_fails_and_its_phone_closes_safely(sip: SipLibrary, direct: dict[str, str]) -> None:
    sip.close_sip_phone("bob")
    with pytest.raises(AssertionError, match=r"SIP MESSAGE to sip:bob@127.0.0.1:\d+ got no final answer within 0.5 s"):
        sip.send_sip_message("alice", direct["bob"], "anyone?", timeout=timedelta(milliseconds=500))
    # pjsua2 would abort the process if the account went while the MESSAGE waits (32 s): it is kept instead.
    sip.close_sip_phone("alice")
    assert len(sip.ctx.host.parked) == 1
