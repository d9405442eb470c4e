"""Keywords for a call's audio: play and record WAV files, RTP statistics, where the media flows."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pjsua2 as pj
from robot.api import logger
from robotlibcore import keyword

from SipLibrary.errors import SipError
from SipLibrary.keywords.base import SipComponent
from SipLibrary.quality import wav_info
from SipLibrary.tones import write_dtmf_wav

FlowDirection = Literal["both", "sent", "received"]
RECORDING_CLOSE = 2.0
ADDRESS = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\s]+)(?::(?P<low>\d{1,5})(?:-(?P<high>\d{1,5}))?)?$")


class MediaKeywords(SipComponent):
    @keyword(name="Play WAV File")
    def play_wav_file(self, alias: str, path: str, *, call: str | None = None, loop: bool = False) -> float:
        """Plays a 16-bit PCM WAV file into the phone's call (default: its latest in progress); returns its length in s.

        The other side hears it (record it there with `Start Recording Call`). It plays once, or again and
        again with ``loop=True``, until `Stop Playing WAV File` or the call ends. Any sample rate works.

        | ${seconds}= | `Play WAV File` | alice | ${CURDIR}/prompts/hello.wav |
        """
        info = wav_info(path)
        target = self.ctx.call(alias, call)
        audio = target.audio_media()
        player = pj.AudioMediaPlayer()
        try:
            player.createPlayer(str(Path(path).resolve()), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        except pj.Error as error:
            raise SipError(f"pjsua2 cannot play '{path}': {error.reason}.") from None
        self.ctx.host.track(player)
        player.startTransmit(audio)
        target.players.append(player)
        self.ctx.pump()
        logger.info(
            f"'{target.phone.alias}' plays '{path}' ({info['duration']:g} s, {info['sample_rate']} Hz) into "
            f"{target.handle}{' in a loop' if loop else ''}."
        )
        return float(info["duration"])

    @keyword(name="Stop Playing WAV File")
    def stop_playing_wav_file(self, alias: str, *, call: str | None = None) -> None:
        """Stops every WAV file playing into the phone's call (default: its latest)."""
        target = self.ctx.call(alias, call, active=False)
        players, target.players = target.players, []
        for player in players:
            self.ctx.host.forget(player)
        logger.info(f"Stopped {len(players)} player(s) on {target.handle}.")

    @keyword(name="Start Recording Call")
    def start_recording_call(self, alias: str, path: str, *, call: str | None = None) -> None:
        """Records what the phone hears on its call (default: its latest in progress) into a WAV file at ``path``.

        The file is 16-bit mono at the conference clock rate (16 kHz); it is complete after `Stop Recording`
        or when the call ends. Folders are created as needed.

        | `Start Recording Call` | bob | ${OUTPUT_DIR}/bob.wav |
        | `Play WAV File` | alice | ${PROMPT} |
        | ${info}= | `Stop Recording` | bob |
        """
        file = Path(path)
        if file.suffix.lower() != ".wav":
            raise ValueError(f"Recording path '{path}' must end with .wav.")
        target = self.ctx.call(alias, call)
        if target.recorder is not None:
            raise SipError(
                f"{target.handle} is already recording to '{target.recording_path}'; `Stop Recording` first."
            )
        audio = target.audio_media()
        file.parent.mkdir(parents=True, exist_ok=True)
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(str(file.resolve()))
        except pj.Error as error:
            raise SipError(f"pjsua2 cannot record to '{path}': {error.reason}.") from None
        self.ctx.host.track(recorder)
        audio.startTransmit(recorder)
        target.recorder = recorder
        target.recording_path = str(file)
        self.ctx.pump()
        logger.info(f"'{target.phone.alias}' records {target.handle} into '{path}'.")

    @keyword(name="Stop Recording")
    def stop_recording(self, alias: str, *, call: str | None = None) -> dict[str, Any]:
        """Finishes the recording of the phone's call (default: its latest recorded call); returns `Get WAV File Info`.

        Safe after the call has ended (the recording was finished then).
        """
        phone = self.ctx.phone(alias)
        if call is not None:
            target = self.ctx.call(alias, call, active=False)
        else:
            recorded = [c for c in phone.calls if c.recording_path]
            if not recorded:
                raise SipError(f"'{phone.alias}' has recorded no call; use `Start Recording Call` first.")
            target = recorded[-1]
        if target.recording_path is None:
            raise SipError(f"Call {target.handle} was not recorded; use `Start Recording Call` first.")
        recorder, target.recorder = target.recorder, None
        if recorder is not None:
            self.ctx.host.forget(recorder)
        # The conference bridge removes ports asynchronously (pjsua 2.14+): the WAV header is final a moment later.
        path = target.recording_path
        self.ctx.wait(lambda: _complete(path), RECORDING_CLOSE)
        info = wav_info(path)
        logger.info(
            f"Recording of {target.handle}: '{info['path']}', {info['duration']:g} s, RMS {info['rms_dbfs']} dBFS."
        )
        return info

    @keyword(name="Create DTMF Tone WAV File")
    def create_dtmf_tone_wav_file(
        self,
        digits: str,
        path: str,
        *,
        tone: timedelta = timedelta(milliseconds=120),
        gap: timedelta = timedelta(milliseconds=120),
    ) -> str:
        """Writes ``digits`` as in-band DTMF tones (8 kHz, 16-bit mono) to ``path``; returns the path.

        Played into a call with `Play WAV File`, the digits travel as audio, not as RTP events or SIP INFO:
        what hears them proves that media really flowed.

        | ${wav}= | `Create DTMF Tone WAV File` | 4711 | ${OUTPUT_DIR}/4711.wav |
        | `Play WAV File` | alice | ${wav} |
        """
        written = write_dtmf_wav(
            digits, path, tone_ms=int(tone.total_seconds() * 1000), gap_ms=int(gap.total_seconds() * 1000)
        )
        logger.info(f"Wrote DTMF tones '{digits}' to {written}.")
        return str(written)

    @keyword(name="Get WAV File Info")
    def get_wav_file_info(self, path: str) -> dict[str, Any]:
        """Returns ``duration`` (s), ``sample_rate``, ``channels``, ``frames``, ``peak`` and ``rms`` (sample values)
        and ``rms_dbfs`` of a 16-bit PCM WAV file, e.g. to prove a recording is not silent.

        | ${info}= | `Get WAV File Info` | ${OUTPUT_DIR}/bob.wav |
        | Should Be True | ${info}[rms_dbfs] > -40 and ${info}[duration] > 0.5 |
        """
        return wav_info(path)

    @keyword(name="Get RTP Statistics")
    def get_rtp_statistics(self, alias: str, *, call: str | None = None) -> dict[str, Any]:
        """Returns the RTP statistics of the phone's call (default: its latest), also after it ended.

        ``packets_sent``, ``bytes_sent``, ``packets_received``, ``bytes_received`` and ``packets_lost`` count
        every stream of the call (a re-INVITE starts a new one), and ``loss_percent`` is of all of them;
        ``jitter_ms`` (mean receive jitter) and ``rtt_ms`` (RTCP round trip) describe the latest stream.
        ``mos`` estimates the listening quality from them with the simplified E-model (see `Voice quality`).
        Also ``codec``, ``remote_rtp_address`` (from the SDP), ``source_rtp_address`` (where RTP really came
        from) and ``local_rtp_address``.

        | ${stats}= | `Get RTP Statistics` | alice |
        | Should Be True | ${stats}[mos] >= 4.0 |
        """
        self.ctx.pump()
        target = self.ctx.call(alias, call, active=False)
        return target.stats()

    @keyword(name="Media Should Be Flowing")
    def media_should_be_flowing(
        self,
        alias: str,
        *,
        min_packets: int = 10,
        direction: FlowDirection = "both",
        call: str | None = None,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Fails unless at least ``min_packets`` new RTP packets flow on the phone's call within ``timeout``.

        Counts from the moment the keyword starts, in ``direction`` ``both`` (default), ``sent`` or
        ``received``: media that stopped a while ago fails. Returns `Get RTP Statistics`.

        | `Media Should Be Flowing` | alice |
        | `Media Should Be Flowing` | bob | direction=received | min_packets=50 | timeout=3s |
        """
        if min_packets < 1:
            raise ValueError(f"min_packets must be 1 or more, got {min_packets}.")
        if direction not in ("both", "sent", "received"):
            raise ValueError(f"direction '{direction}' is not both, sent or received.")
        target = self.ctx.call(alias, call)
        self.ctx.pump()
        base = target.stats()
        seconds = self.ctx.seconds(timeout)

        def deltas() -> tuple[int, int]:
            now = target.stats()
            return now["packets_sent"] - base["packets_sent"], now["packets_received"] - base["packets_received"]

        def flowing() -> bool:
            sent, received = deltas()
            return (direction == "received" or sent >= min_packets) and (direction == "sent" or received >= min_packets)

        if self.ctx.wait(flowing, seconds) is None:
            sent, received = deltas()
            stats = target.stats()
            raise AssertionError(
                message
                or f"Media of {target.describe()} should be flowing ({min_packets} packets {direction} within "
                f"{seconds:g} s) but {sent} were sent and {received} received (codec {stats['codec'] or '-'}, "
                f"remote RTP {stats['remote_rtp_address'] or '-'})."
            )
        stats = target.stats()
        logger.info(
            f"Media of {target.handle} is flowing: {stats['packets_sent']} packets sent, "
            f"{stats['packets_received']} received, MOS {stats['mos']}."
        )
        return stats

    @keyword(name="Media Should Flow Through")
    def media_should_flow_through(
        self,
        alias: str,
        address: str,
        *,
        call: str | None = None,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Fails unless the phone's call sends its RTP to ``address`` and receives it from there.

        ``address`` is ``host``, ``host:port`` or ``host:low-high`` (a relay's port range). The remote RTP
        address from the SDP must match, and so must the source of the RTP received (checked once some
        arrived; waited for up to ``timeout``). Use it to prove media is anchored at a relay (RTPEngine)
        or that it flows end to end. Returns ``remote_rtp_address`` and ``source_rtp_address``.

        | `Media Should Flow Through` | alice | ${RTPENGINE_IP}:30000-40000 |
        | `Media Should Flow Through` | alice | 127.0.0.1 |
        """
        match = ADDRESS.match(address.strip())
        if match is None:
            raise ValueError(
                f"Address '{address}' is not host, host:port or host:low-high (e.g. 127.0.0.1:30000-40000)."
            )
        host = match["host"].strip("[]")
        low = int(match["low"]) if match["low"] else None
        high = int(match["high"]) if match["high"] else low
        target = self.ctx.call(alias, call, active=False)
        seconds = self.ctx.seconds(timeout)

        def fits(text: str) -> bool:
            found_host, _, found_port = text.rpartition(":")
            if found_host.strip("[]") != host:
                return False
            if low is None or high is None:
                return True
            return found_port.isdigit() and low <= int(found_port) <= high

        def settled() -> dict[str, Any] | None:
            stats = target.stats()
            if not stats["remote_rtp_address"] or not fits(stats["remote_rtp_address"]):
                return None
            source = stats["source_rtp_address"]
            received = stats["packets_received"] > 0 and source and not source.startswith("0.0.0.0")
            return stats if received and fits(source) else None

        found = self.ctx.wait(settled, seconds)
        stats = found or target.stats()
        if found is None:
            raise AssertionError(
                message
                or f"Media of {target.handle} should flow through {address} but the remote RTP address is "
                f"{stats['remote_rtp_address'] or 'unknown'} and RTP came from "
                f"{stats['source_rtp_address'] if stats['packets_received'] else 'nowhere yet'}."
            )
        logger.info(
            f"Media of {target.handle} flows through {stats['remote_rtp_address']} "
            f"(RTP received from {stats['source_rtp_address']})."
        )
        return {"remote_rtp_address": stats["remote_rtp_address"], "source_rtp_address": stats["source_rtp_address"]}


def _complete(path: str) -> bool:
    """Whether the WAV file's header is final (its sizes filled in)."""
    try:
        wav_info(path)
    except ValueError:
        return False
    return True
