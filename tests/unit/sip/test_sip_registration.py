"""Registration with digest authentication and calls through a real Kamailio (and RTPEngine) on loopback.

Kamailio runs with ``/work/shared/reference/kamailio-minimal.cfg`` (users alice/alicepw and bob/bobpw) on a free
port, in a run directory of its own, and is stopped by its PID. Without ``/usr/sbin/kamailio`` the tests are
skipped; ``SIP_REQUIRE_KAMAILIO=1`` (or ``CI=true``) turns the skip into a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from SipLibrary import SipLibrary, SipStatusError

KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
RTPENGINE = shutil.which("rtpengine") or "/usr/bin/rtpengine"
REFERENCE = Path(os.environ.get("KAMAILIO_REFERENCE_CFG", "/work/shared/reference/kamailio-minimal.cfg"))
REQUIRED = os.environ.get("SIP_REQUIRE_KAMAILIO") == "1" or os.environ.get("CI") == "true"
RTP_PORTS = (45000, 45199)  # outside the real-stack relays (20000-39999)


def _missing(*paths: str | Path) -> str:
    return ", ".join(str(p) for p in paths if not Path(p).exists())


def skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (required: SIP_REQUIRE_KAMAILIO=1 or CI=true)")
    pytest.skip(reason)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers_options(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()[1]
        request = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-{time.time_ns()}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: probe-{time.time_ns()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        probe.sendto(request.encode(), ("127.0.0.1", port))
        try:
            return probe.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (Kamailio's children too), then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(5)
            break
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Proxy:
    address: str
    rtp_ports: tuple[int, int] | None = None


def start_kamailio(run_dir: Path, *, rtpengine_ng: int | None = None) -> tuple[subprocess.Popen[bytes], Proxy]:
    port = free_udp_port()
    text = REFERENCE.read_text()
    text = text.replace('#!substdef "!LISTEN_PORT!5060!g"', f'#!substdef "!LISTEN_PORT!{port}!g"')
    text = text.replace('#!substdef "!RUNDIR!/run/kamailio-lab!g"', f'#!substdef "!RUNDIR!{run_dir}!g"')
    if rtpengine_ng is not None:
        text = text.replace("udp:127.0.0.1:2223", f"udp:127.0.0.1:{rtpengine_ng}")
    config = run_dir / "kamailio.cfg"
    config.write_text(text)
    defines = ["-A", "WITH_AUTH"] + (["-A", "WITH_RTPENGINE"] if rtpengine_ng is not None else [])
    log = (run_dir / "kamailio.log").open("wb")
    process = subprocess.Popen(
        [
            KAMAILIO,
            "-f",
            str(config),
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-Y",
            str(run_dir),
            "-P",
            str(run_dir / "kamailio.pid"),
            *defines,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() takes the children down with the master
    )
    deadline = time.monotonic() + 10
    while not answers_options(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"Kamailio did not start on 127.0.0.1:{port}: {(run_dir / 'kamailio.log').read_text()[-1500:]}")
    return process, Proxy(f"127.0.0.1:{port}")


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    missing = _missing(KAMAILIO, REFERENCE)
    if missing:
        skip_or_fail(f"Kamailio registration tests need {missing}")
    process, proxy = start_kamailio(tmp_path_factory.mktemp("kamailio"))
    yield proxy
    stop(process)


@pytest.fixture(scope="module")
def kamailio_with_rtpengine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    missing = _missing(KAMAILIO, REFERENCE, RTPENGINE)
    if missing:
        skip_or_fail(f"The media relay test needs {missing}")
    run_dir = tmp_path_factory.mktemp("rtpengine")
    ng_port = free_udp_port()
    relay = subprocess.Popen(
        [
            RTPENGINE,
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            "--table=-1",
            "--interface=127.0.0.1",
            f"--listen-ng=127.0.0.1:{ng_port}",
            f"--port-min={RTP_PORTS[0]}",
            f"--port-max={RTP_PORTS[1]}",
            "--delete-delay=0",
            "--timeout=30",
            "--num-threads=2",
            f"--pidfile={run_dir / 'rtpengine.pid'}",
        ],
        stdout=(run_dir / "rtpengine.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.2)
            while True:
                probe.sendto(b"p1 d7:command4:pinge", ("127.0.0.1", ng_port))
                try:
                    if b"pong" in probe.recv(200):
                        break
                except OSError:
                    pass
                if relay.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"RTPEngine did not start: {(run_dir / 'rtpengine.log').read_text()[-1500:]}")
        process, proxy = start_kamailio(run_dir, rtpengine_ng=ng_port)
        proxy.rtp_ports = RTP_PORTS
        yield proxy
        stop(process)
    finally:
        stop(relay)


def registered(sip: SipLibrary, proxy: Proxy, alias: str, password: str) -> str:
    uri = sip.create_sip_phone(alias, alias, password=password, registrar=proxy.address)
    sip.register_sip_phone(alias)
    return uri


def test_register_and_unregister_with_digest_authentication(sip: SipLibrary, kamailio: Proxy) -> None:
    sip.create_sip_phone("alice", "alice", password="alicepw", registrar=kamailio.address)
    result = sip.register_sip_phone("alice")
    assert result["status"] == 200
    assert 0 < result["expires"] <= 300
    assert sip.get_sip_phone_info("alice")["registered"] is True
    assert sip.unregister_sip_phone("alice")["status"] == 200
    assert sip.get_sip_phone_info("alice")["registered"] is False


def test_a_wrong_password_is_refused_and_can_be_expected(sip: SipLibrary, kamailio: Proxy) -> None:
    sip.create_sip_phone("mallory", "alice", password="wrong", registrar=kamailio.address)
    with pytest.raises(
        SipStatusError,
        match=r"Registration of 'mallory' at sip:127.0.0.1:\d+ should have been answered "
        r"200 but was 401 Unauthorized",
    ):
        sip.register_sip_phone("mallory")
    assert sip.register_sip_phone("mallory", expected_status=401)["reason"] == "Unauthorized"


def test_registered_phones_call_and_message_through_the_proxy(sip: SipLibrary, kamailio: Proxy) -> None:
    registered(sip, kamailio, "alice", "alicepw")
    registered(sip, kamailio, "bob", "bobpw")
    sip.call("alice", "bob")  # a user name: sip:bob@<registrar>, authenticated with a 407 challenge
    incoming = sip.wait_for_incoming_call("bob")
    assert incoming["from_number"] == "alice"
    assert "Record-Route" in incoming["headers"]
    sip.answer_call("bob")
    sip.wait_until_call_state("alice", "CONFIRMED")
    sip.send_dtmf("alice", "12")
    sip.wait_until_dtmf_received("bob", "12", method="rfc2833")
    sip.send_dtmf("bob", "3", method="info")
    sip.wait_until_dtmf_received("alice", "3", method="info")
    sip.media_should_be_flowing("alice")
    sip.hang_up("bob")
    sip.wait_until_call_state("alice", "DISCONNECTED", status=200)
    sip.send_sip_message("alice", "bob", "via kamailio")
    assert sip.wait_until_sip_message_received("bob")["text"] == "via kamailio"
    with pytest.raises(SipStatusError, match="should have been answered 200 but was 404 Not Found"):
        sip.send_sip_message("alice", "nobody", "lost")
    sip.call("alice", "4930999")
    sip.wait_until_call_state("alice", "DISCONNECTED", status=404)


def test_media_is_anchored_at_rtpengine(sip: SipLibrary, kamailio_with_rtpengine: Proxy) -> None:
    proxy = kamailio_with_rtpengine
    assert proxy.rtp_ports is not None
    low, high = proxy.rtp_ports
    registered(sip, proxy, "alice", "alicepw")
    registered(sip, proxy, "bob", "bobpw")
    sip.call("alice", "bob")
    sip.answer_call("bob", timeout=timedelta(seconds=5))
    sip.wait_until_call_state("alice", "CONFIRMED")
    through = sip.media_should_flow_through("alice", f"127.0.0.1:{low}-{high}")
    sip.media_should_flow_through("bob", f"127.0.0.1:{low}-{high}")
    bob_rtp = sip.get_rtp_statistics("bob")["local_rtp_address"]
    assert through["remote_rtp_address"] != bob_rtp
    sip.send_dtmf("alice", "5")
    sip.wait_until_dtmf_received("bob", "5", method="rfc2833")
