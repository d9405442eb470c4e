"""Hold and resume (re-INVITE) and transfers (REFER), between phones on loopback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from sip_testing import PEER, PYTHON
from SipLibrary import SipCapacityError, SipLibrary, SipStatusError


def test_hold_and_resume_change_what_each_side_negotiated(sip: SipLibrary, connected: tuple[str, str]) -> None:
    sip.media_direction_should_be("alice", "sendrecv")
    sip.hold_call("alice")
    sip.media_direction_should_be("alice", "sendonly")
    sip.media_direction_should_be("bob", "recvonly")
    assert sip.get_call_info("bob")["media_status"] == "remote hold"
    sip.hold_call("bob")
    sip.media_direction_should_be("bob", "inactive")
    sip.media_direction_should_be("alice", "inactive")
    sip.resume_call("bob")
    sip.resume_call("alice")
    sip.media_direction_should_be("alice", "sendrecv")
    sip.media_direction_should_be("bob", "sendrecv")
    with pytest.raises(AssertionError, match=r"Media of bob/1 should be recvonly but it is sendrecv \(media active\)"):
        sip.media_direction_should_be("bob", "recvonly")
    sip.media_should_be_flowing("bob")


def test_blind_transfer_connects_the_transferee_to_the_target(sip: SipLibrary, connected: tuple[str, str]) -> None:
    carol = sip.create_sip_phone("carol", "carol", auto_answer=200)
    assert sip.blind_transfer("bob", carol) == 200
    sip.wait_until_call_state("bob", "DISCONNECTED", call=connected[1])
    transferred = sip.wait_until_call_state("alice", "CONFIRMED")
    assert transferred["call"] == "alice/2"
    assert transferred["remote_number"] == "carol"
    incoming = sip.wait_for_incoming_call("carol")
    assert incoming["from_number"] == "alice"
    assert "Referred-By" in incoming["headers"]
    sip.wait_until_call_state("alice", "DISCONNECTED", call=connected[0])
    sip.media_should_be_flowing("carol")


def test_a_refused_blind_transfer_fails_with_the_status(sip: SipLibrary, connected: tuple[str, str]) -> None:
    busy = sip.create_sip_phone("busy", "busy", auto_answer=486)
    with pytest.raises(SipStatusError, match="Transfer on bob/1 failed: the transferee reported 486 Busy Here"):
        sip.blind_transfer("bob", busy)
    sip.call_state_should_be("bob", "CONFIRMED", call=connected[1])


@pytest.fixture
def peer(python_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """carol, an auto-answering phone in a process of its own."""
    process = subprocess.Popen(
        [PYTHON, str(PEER), "carol"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=python_env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("READY "), f"peer did not start: {line!r}"
    yield process, line.split()[1]
    if process.poll() is None:
        process.kill()
        process.wait(5)


def peer_calls(process: subprocess.Popen[str]) -> list[dict[str, object]]:
    output, _ = process.communicate("quit\n", timeout=10)
    assert process.returncode == 0
    line = next(line for line in output.splitlines() if line.startswith("CALLS "))
    calls: list[dict[str, object]] = json.loads(line[len("CALLS ") :])
    return calls


def test_attended_transfer_replaces_the_consultation_call(
    sip: SipLibrary, connected: tuple[str, str], peer: tuple[subprocess.Popen[str], str]
) -> None:
    process, carol = peer
    first = connected[1]
    sip.hold_call("bob", call=first)
    consult = sip.call("bob", carol)
    sip.wait_until_call_state("bob", "CONFIRMED", call=consult)
    assert sip.attended_transfer("bob", call=first, to_call=consult) == 200
    transferred = sip.wait_until_call_state("alice", "CONFIRMED", call="alice/2")
    assert transferred["remote_uri"].startswith("sip:carol@")
    sip.media_should_be_flowing("alice")
    sip.wait_until_call_state("bob", "DISCONNECTED", call=first)
    sip.wait_until_call_state("bob", "DISCONNECTED", call=consult)
    calls = peer_calls(process)
    assert [(c["call"], c["replaced_by"], c["replaces"]) for c in calls] == [
        ("peer/1", "peer/2", None),
        ("peer/2", None, "peer/1"),
    ]


def test_attended_transfer_among_three_local_phones_is_refused_before_sending(
    sip: SipLibrary, connected: tuple[str, str]
) -> None:
    carol = sip.create_sip_phone("carol", "carol", auto_answer=200)
    sip.hold_call("bob")
    sip.call("bob", carol)
    sip.wait_until_call_state("bob", "CONFIRMED")
    with pytest.raises(SipCapacityError, match=r"needs 2 more call leg\(s\), but this process already holds 4"):
        sip.attended_transfer("bob")
    assert [c for c in sip.get_sip_phone_info("bob")["active_calls"]] == ["bob/1", "bob/2"]


def test_attended_transfer_to_a_local_target_replaces_its_call(
    sip: SipLibrary, peer: tuple[subprocess.Popen[str], str]
) -> None:
    process, remote = peer
    sip.create_sip_phone("bob", "bob")
    carol = sip.create_sip_phone("carol", "carol", auto_answer=200)
    first = sip.call("bob", remote)
    sip.wait_until_call_state("bob", "CONFIRMED", call=first)
    sip.hold_call("bob", call=first)
    consult = sip.call("bob", carol)
    sip.wait_until_call_state("bob", "CONFIRMED", call=consult)
    assert sip.attended_transfer("bob") == 200  # the older call is transferred to the newer one's far end
    replaced = sip.wait_until_call_state("carol", "DISCONNECTED", call="carol/1")
    assert replaced["replaced_by"] == "carol/2"
    new = sip.wait_until_call_state("carol", "CONFIRMED", call="carol/2")
    assert new["replaces"] == "carol/1"
    sip.media_should_be_flowing("carol", call="carol/2")
    assert sip.get_sip_phone_info("bob")["active_calls"] == []
    calls = peer_calls(process)
    assert [c["state"] for c in calls] == ["DISCONNECTED", "CONFIRMED"]
