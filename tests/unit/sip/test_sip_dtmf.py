"""DTMF by RFC 2833 and by SIP INFO, in both directions of a direct call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from SipLibrary import SipError, SipLibrary


def test_rfc2833_digits_both_ways(sip: SipLibrary, connected: tuple[str, str]) -> None:
    sip.send_dtmf("alice", "1#")
    assert sip.wait_until_dtmf_received("bob", "1#", method="rfc2833") == "1#"
    sip.send_dtmf("bob", "*9")
    assert sip.wait_until_dtmf_received("alice", "*9", method="rfc2833") == "*9"


def test_sip_info_digits_both_ways(sip: SipLibrary, connected: tuple[str, str]) -> None:
    sip.send_dtmf("alice", "42", method="info")
    assert sip.wait_until_dtmf_received("bob", "42", method="info") == "42"
    sip.send_dtmf("bob", "A", method="info")
    sip.wait_until_dtmf_received("alice", "A", method="info")
    assert sip.get_received_dtmf("bob") == "42"


def test_wrong_digits_and_wrong_method_fail_clearly(sip: SipLibrary, connected: tuple[str, str]) -> None:
    sip.send_dtmf("alice", "5", method="info")
    with pytest.raises(AssertionError, match=r"DTMF '5' reached bob/1 by SIP INFO but RFC 2833 was expected"):
        sip.wait_until_dtmf_received("bob", "5", method="rfc2833")
    sip.send_dtmf("alice", "7", method="info")
    with pytest.raises(AssertionError, match=r"should have received DTMF '8' but got '7' \(by SIP INFO\)"):
        sip.wait_until_dtmf_received("bob", "8")
    with pytest.raises(AssertionError, match=r"should have received DTMF '9' but got '' within 0.2 s"):
        sip.wait_until_dtmf_received("alice", "9", timeout=timedelta(milliseconds=200))
    with pytest.raises(ValueError, match="DTMF digits '1x' are not valid"):
        sip.send_dtmf("alice", "1x")


def test_dtmf_needs_a_call_in_progress(sip: SipLibrary, connected: tuple[str, str]) -> None:
    sip.hang_up("alice")
    with pytest.raises(
        SipError, match=r"Phone 'alice' has no call in progress; its last call was alice/1 \[DISCONNECTED"
    ):
        sip.send_dtmf("alice", "1")
