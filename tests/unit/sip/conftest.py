"""Fixtures for SipLibrary's tests.

pjsua2 allows one Endpoint per process, and the wheel aborts the process on misuse, so the tests share
**one library instance (one endpoint) for the whole session** and close every phone after each test,
checking that no call leg is left. Tests that must see a fresh process (library close with leftovers, a
far end outside this process) start a subprocess of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("pjsua2", reason="pjsua2-python is not installed (pip install pjsua2-python==2.15.1.post1)")

from sip_testing import LIBRARIES, write_tone
from SipLibrary import SipLibrary

TIMEOUT = timedelta(seconds=3)


@pytest.fixture(scope="session")
def sip() -> Iterator[SipLibrary]:
    library = SipLibrary(timeout=TIMEOUT)
    yield library
    library.close()


@pytest.fixture(autouse=True)
def phones_closed_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sip" not in request.fixturenames:
        return
    library: SipLibrary = request.getfixturevalue("sip")
    library.close_all_sip_phones()
    host = library.ctx._host
    if host is not None and host.started:
        assert host.legs == 0, f"{host.legs} call leg(s) left after Close All SIP Phones"
        assert not host.transports, f"transports left open: {host.transports}"


@pytest.fixture
def direct(sip: SipLibrary) -> dict[str, str]:
    """Two phones without a registrar, alice and bob; their direct URIs by alias."""
    return {alias: sip.create_sip_phone(alias, alias) for alias in ("alice", "bob")}


@pytest.fixture
def connected(sip: SipLibrary, direct: dict[str, str]) -> tuple[str, str]:
    """alice has called bob and bob answered: the two call handles (alice's, bob's)."""
    caller = sip.call("alice", direct["bob"])
    callee = sip.wait_for_incoming_call("bob")["call"]
    sip.answer_call("bob", call=callee)
    sip.wait_until_call_state("alice", "CONFIRMED", call=caller)
    return caller, callee


@pytest.fixture(scope="session")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tone(tmp_path_factory.mktemp("wav") / "tone.wav", seconds=1.5)


@pytest.fixture(scope="session")
def python_env() -> dict[str, str]:
    """Environment for subprocesses that import SipLibrary."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = f"{LIBRARIES}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env
