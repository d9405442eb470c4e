"""What one pjsua2-python process holds, and that nothing the library does aborts it.

The tests that could abort the interpreter on a regression run in a subprocess of their own, so a broken
library fails them instead of taking the whole pytest session down.
"""

from __future__ import annotations

import subprocess
import textwrap
import threading

import pytest
from sip_testing import PYTHON
from SipLibrary import SipCapacityError, SipError, SipLibrary


def run_script(source: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(source)], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def test_calls_in_quick_succession_are_paced_instead_of_aborting(python_env: dict[str, str]) -> None:
    # Unpaced, the 16th local call set up and torn down within 0.5 s exhausts the media ioqueue and aborts.
    result = run_script(
        """
        import statistics, time
        from datetime import timedelta
        from SipLibrary import SipLibrary
        lib = SipLibrary(timeout=timedelta(seconds=3))
        bob = lib.create_sip_phone("bob", "bob", auto_answer=200)
        lib.create_sip_phone("alice", "alice")
        setups, started = [], time.monotonic()
        for _ in range(40):
            lib.call("alice", bob)
            setups.append(lib.wait_until_call_state("alice", "CONFIRMED")["setup_ms"])
            lib.hang_up("alice")
            assert lib.ctx.host.media_keys_in_use() <= 60
        total = time.monotonic() - started
        lib.close()
        print(f"CALLS 40 in {total:.2f} s, setup median {statistics.median(setups):.2f} ms, max {max(setups):.2f} ms")
        """,
        python_env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CALLS 40 in" in result.stdout


def test_closing_with_everything_still_running_does_not_abort(python_env: dict[str, str], tmp_path: object) -> None:
    result = run_script(
        f"""
        import math, struct, wave
        from datetime import timedelta
        from SipLibrary import SipLibrary
        path = "{tmp_path}/tone.wav"
        with wave.open(path, "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
            w.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(i / 3))) for i in range(16000)))
        lib = SipLibrary(timeout=timedelta(seconds=3))
        bob = lib.create_sip_phone("bob", "bob", auto_answer=200)
        lib.create_sip_phone("alice", "alice")
        lib.call("alice", bob)
        lib.wait_until_call_state("alice", "CONFIRMED")
        lib.play_wav_file("alice", path, loop=True)
        lib.start_recording_call("bob", "{tmp_path}/rec.wav")
        try:
            lib.send_sip_message("alice", "sip:nobody@127.0.0.1:1", "lost", timeout=timedelta(milliseconds=100))
        except AssertionError:
            pass
        leaked = [lib.ctx.call("alice"), lib.ctx.call("bob"), lib.ctx.phones["alice"].account]
        {{close}}
        print("CLOSED")
        """.replace("{close}", "lib.close()"),
        python_env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CLOSED" in result.stdout
    assert "Assertion" not in result.stderr


def test_leaving_without_close_is_cleaned_up_at_exit(python_env: dict[str, str]) -> None:
    result = run_script(
        """
        from datetime import timedelta
        from SipLibrary import SipLibrary
        lib = SipLibrary(timeout=timedelta(seconds=3))
        bob = lib.create_sip_phone("bob", "bob", auto_answer=200)
        lib.create_sip_phone("alice", "alice")
        lib.call("alice", bob)
        lib.wait_until_call_state("alice", "CONFIRMED")
        call = lib.ctx.call("alice")
        print("LEAVING")
        """,
        python_env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LEAVING" in result.stdout


def test_a_second_library_instance_shares_the_endpoint(sip: SipLibrary) -> None:
    sip.create_sip_phone("alice", "alice")
    other = SipLibrary()
    bob = other.create_sip_phone("bob", "bob", auto_answer=200)
    assert other.ctx.host is sip.ctx.host
    sip.call("alice", bob)
    sip.wait_until_call_state("alice", "CONFIRMED")
    other.close()  # closes bob; the endpoint stays for the session's library
    sip.wait_until_call_state("alice", "DISCONNECTED")
    assert sip.ctx.host.started


def test_eight_phones_at_most(sip: SipLibrary) -> None:
    for number in range(8):
        sip.create_sip_phone(f"p{number}", f"user{number}")
    with pytest.raises(SipCapacityError, match="would be phone number 9; pjsua2-python holds 8 SIP transports"):
        sip.create_sip_phone("p8", "user8")
    sip.close_sip_phone("p0")
    sip.create_sip_phone("p8", "user8")  # a closed phone's transport is free again


def test_keywords_from_another_thread_fail_instead_of_aborting(sip: SipLibrary) -> None:
    sip.create_sip_phone("alice", "alice")
    errors: list[BaseException] = []

    def use() -> None:
        try:
            sip.get_sip_phone_info("alice")
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=use)
    worker.start()
    worker.join(5)
    assert len(errors) == 1
    assert isinstance(errors[0], SipError)
    assert "poll mode" in str(errors[0])


def test_a_used_port_is_reported(sip: SipLibrary) -> None:
    uri = sip.create_sip_phone("alice", "alice")
    port = int(uri.rsplit(":", 1)[1])
    with pytest.raises(SipError, match=rf"Cannot open a SIP UDP port for phone 'bob' on 127.0.0.1:{port}: .*in use"):
        sip.create_sip_phone("bob", "bob", port=port)
