"""Audio of a call: WAV playback and recording, RTP statistics, where the media flows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sip_testing import write_tone
from SipLibrary import SipLibrary


def test_a_played_wav_is_recorded_on_the_other_side(
    sip: SipLibrary, connected: tuple[str, str], tone_wav: Path, tmp_path: Path
) -> None:
    recording = tmp_path / "calls" / "bob.wav"
    sip.start_recording_call("bob", str(recording))
    assert sip.play_wav_file("alice", str(tone_wav)) == 1.5
    sip.media_should_be_flowing("bob", direction="received", min_packets=75)  # 1.5 s of 20 ms packets
    info = sip.stop_recording("bob")
    assert info["path"] == str(recording)
    assert 1.3 <= info["duration"] <= 3.0
    assert info["rms_dbfs"] > -30, f"the recording is (nearly) silent: {info}"


def test_silence_is_recorded_as_silence_and_recording_ends_with_the_call(
    sip: SipLibrary, connected: tuple[str, str], tmp_path: Path
) -> None:
    recording = tmp_path / "silence.wav"
    sip.start_recording_call("bob", str(recording))
    sip.media_should_be_flowing("bob", direction="received", min_packets=15)
    sip.hang_up("alice")
    info = sip.stop_recording("bob")  # finished when the call ended
    assert info["duration"] > 0.2
    assert info["peak"] < 100


def test_rtp_statistics_count_both_ways_and_estimate_mos(sip: SipLibrary, connected: tuple[str, str]) -> None:
    sip.media_should_be_flowing("alice", min_packets=20)
    for alias in ("alice", "bob"):
        stats = sip.get_rtp_statistics(alias)
        assert stats["packets_sent"] >= 20
        assert stats["packets_received"] >= 20
        assert stats["bytes_received"] >= 20 * 160  # PCMU: 160 bytes per 20 ms
        assert stats["packets_lost"] == 0
        assert stats["codec"] == "PCMU/8000"
        assert stats["mos"] >= 4.3
    sip.hang_up("bob")
    after = sip.get_rtp_statistics("alice")
    assert after["packets_received"] >= 20  # kept after the call ended


def test_media_flows_directly_between_the_phones(sip: SipLibrary, connected: tuple[str, str]) -> None:
    bob_rtp = sip.get_rtp_statistics("bob")["local_rtp_address"]
    through = sip.media_should_flow_through("alice", bob_rtp)
    assert through["remote_rtp_address"] == bob_rtp
    sip.media_should_flow_through("alice", "127.0.0.1:1024-65535")
    with pytest.raises(
        AssertionError, match=r"should flow through 127.0.0.1:30000-30001 but the remote RTP address is"
    ):
        sip.media_should_flow_through("alice", "127.0.0.1:30000-30001", timeout=timedelta(milliseconds=200))
    with pytest.raises(ValueError, match="Address 'a:b:c' is not host"):
        sip.media_should_flow_through("alice", "a:b:c")


def test_media_that_stops_is_not_flowing(sip: SipLibrary, connected: tuple[str, str]) -> None:
    sip.hold_call("alice")
    with pytest.raises(
        AssertionError, match=r"should be flowing \(10 packets received within 0.3 s\) but \d+ were sent and 0"
    ):
        sip.media_should_be_flowing("alice", direction="received", timeout=timedelta(milliseconds=300))
    sip.media_should_be_flowing("alice", direction="sent")


def test_bad_media_input_is_refused(sip: SipLibrary, connected: tuple[str, str], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        sip.play_wav_file("alice", str(tmp_path / "missing.wav"))
    with pytest.raises(ValueError, match=r"must end with \.wav"):
        sip.start_recording_call("bob", str(tmp_path / "x.mp3"))
    loud = write_tone(tmp_path / "loop.wav", seconds=0.2, rate=16000)
    sip.play_wav_file("alice", str(loud), loop=True)
    sip.stop_playing_wav_file("alice")
