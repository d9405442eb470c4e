"""A scripted pjsua2 phone in a process of its own, for the app server's tests and smoke checks.

    python -m lab.voiceapps.probe --users 1001,1002,2001 [--port 0]

One UDP transport on 127.0.0.1 with an account per user (``sip:<user>@127.0.0.1:<port>``; with ``--registrar``
each registers there with a digest password from ``$PROBE_PASSWORD``), so one probe plays several subscribers
and agents; without a registrar it can stand in for the proxy the app server calls through. It
reads JSON commands, one per line, on stdin and writes JSON events, one per line, on stdout:

| {"cmd": "call", "id": "c1", "from": "1001", "to": "sip:voicemail@…", "to_header": "sip:1002@lab",   |
|  "headers": {"Diversion": "…"}, "record": "/x.wav"}   (``to_header``: the To, when not the target) |
| {"cmd": "play", "call": "c1", "wav": "/x.wav"}        play into the call (once media is active)       |
| {"cmd": "dtmf", "call": "c1", "digits": "12", "method": "rfc2833" or "info"}                         |
| {"cmd": "hangup", "call": "c1"}                                                                       |
| {"cmd": "answer", "user": "2001", "code": 200, "delay": 0.5, "record": "/dir"}  how calls are met    |
| {"cmd": "quit"}                                                                                       |

A command with a ``"ref"`` is acknowledged with ``{"event": "done", "ref": …}`` once it has been carried out.

Events: ``ready`` (address), ``incoming`` (call, user, headers), ``state`` (call, state, code, reason,
call_id, and for DISCONNECTED the BYE's headers when the far end hung up), ``media``, ``dtmf``,
``ended`` (rtp packets received/sent, recording path and its loud seconds), ``error``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any, TextIO

import pjsua2 as pj

from lab.voiceapps.audio import active_seconds, read_closed_wav
from lab.voiceapps.engine import destroy
from lab.voiceapps.sipmsg import parse_headers

MAX_ACCOUNTS = 8  # PJSUA_MAX_ACC: one more aborts the process


class Probe:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.ep: Any = None
        self.accounts: dict[str, ProbeAccount] = {}
        self.calls: dict[str, ProbeCall] = {}
        self.answer: dict[str, dict[str, Any]] = {}
        self.address = ""
        self.counter = 0
        self.later: list[tuple[float, Any]] = []
        self.garbage: list[Any] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields}) + "\n")
        self.out.flush()

    def start(self, users: list[str], port: int, registrar: str | None = None, password: str | None = None) -> None:
        ep = pj.Endpoint()
        ep.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.logConfig.consoleLevel = 0
        config.logConfig.level = 0
        config.medConfig.noVad = True
        config.medConfig.clockRate = 8000
        config.medConfig.sndClockRate = 8000
        config.medConfig.ecTailLen = 0
        ep.libInit(config)
        ep.audDevManager().setNullDev()
        transport = pj.TransportConfig()
        transport.port = port
        transport.boundAddress = transport.publicAddress = "127.0.0.1"
        transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.address = str(ep.transportGetInfo(transport_id).localName)
        ep.libStart()
        for info in ep.codecEnum2():
            codec = str(info.codecId)
            ep.codecSetPriority(codec, 255 if codec.startswith("PCMU/") else 254 if codec.startswith("PCMA/") else 0)
        self.ep = ep
        for user in users:
            account_config = pj.AccountConfig()
            account_config.idUri = f"sip:{user}@{self.address}"
            account_config.sipConfig.transportId = transport_id
            account_config.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
            account_config.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
            account_config.mediaConfig.transportConfig.port = 0
            if registrar:
                host = registrar.split(":", 1)[1]
                account_config.idUri = f"sip:{user}@{host}"
                account_config.regConfig.registrarUri = registrar
                account_config.regConfig.retryIntervalSec = 0
                account_config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password or ""))
            account = ProbeAccount(self, user)
            account.create(account_config, user == users[0])
            self.accounts[user] = account
        self.emit("ready", address=self.address, users=users)

    def pump(self, milliseconds: int) -> None:
        self.ep.libHandleEvents(milliseconds)
        now = time.monotonic()
        due = [job for at, job in self.later if at <= now]
        self.later = [(at, job) for at, job in self.later if at > now]
        for job in due:
            job()
        while self.garbage:
            destroy(self.garbage.pop())

    def command(self, message: dict[str, Any]) -> bool:
        name = message.get("cmd")
        if name == "quit":
            return False
        handler = getattr(self, f"cmd_{name}", None)
        if handler is None:
            self.emit("error", message=f"unknown command {name!r}")
            return True
        try:
            handler(message)
        except pj.Error as error:
            self.emit("error", command=name, message=str(error.reason))
        except (KeyError, ValueError) as error:
            self.emit("error", command=name, message=f"{type(error).__name__}: {error}")
        if "ref" in message:
            self.emit("done", ref=message["ref"], cmd=name)
        return True

    def cmd_call(self, message: dict[str, Any]) -> None:
        account = self.accounts[message["from"]]
        handle = str(message.get("id") or f"out{len(self.calls) + 1}")
        call = ProbeCall(self, account, handle, record=message.get("record"))
        op = pj.CallOpParam(True)
        to_header = message.get("to_header")
        target = str(message["to"])
        if to_header:
            op.txOption.targetUri = target
        for name, value in (message.get("headers") or {}).items():
            header = pj.SipHeader()
            header.hName, header.hValue = str(name), str(value)
            op.txOption.headers.append(header)
        self.calls[handle] = call
        call.makeCall(str(to_header or target), op)

    def cmd_play(self, message: dict[str, Any]) -> None:
        self.calls[message["call"]].queue_play(Path(message["wav"]))

    def cmd_dtmf(self, message: dict[str, Any]) -> None:
        call = self.calls[message["call"]]
        param = pj.CallSendDtmfParam()
        param.digits = str(message["digits"])
        param.method = (
            pj.PJSUA_DTMF_METHOD_SIP_INFO if message.get("method") == "info" else pj.PJSUA_DTMF_METHOD_RFC2833
        )
        call.sendDtmf(param)

    def cmd_hangup(self, message: dict[str, Any]) -> None:
        call = self.calls[message["call"]]
        if not call.ended:
            call.hangup(pj.CallOpParam(True))

    def cmd_answer(self, message: dict[str, Any]) -> None:
        self.answer[str(message["user"])] = {
            "code": message.get("code", 200),
            "delay": float(message.get("delay", 0)),
            "record": message.get("record"),
        }

    def incoming(self, account: ProbeAccount, prm: Any) -> None:
        self.counter += 1
        handle = f"in{self.counter}"
        _, headers = parse_headers(str(prm.rdata.wholeMsg))
        rule = self.answer.get(account.user, {"code": 200, "delay": 0.0, "record": None})
        record = rule.get("record")
        call = ProbeCall(
            self, account, handle, call_id=prm.callId, record=str(Path(record) / f"{handle}.wav") if record else None
        )
        self.calls[handle] = call
        self.emit("incoming", call=handle, user=account.user, headers={k: v[0] for k, v in headers.items()})
        code = rule.get("code")
        if code is None:
            ringing = pj.CallOpParam()
            ringing.statusCode = 180
            call.answer(ringing)
            return

        def answer() -> None:
            if call.ended:
                return
            op = pj.CallOpParam()
            op.statusCode = int(code)
            if int(code) >= 300:
                call.hangup(op)
            else:
                call.answer(op)

        if rule.get("delay"):
            ringing = pj.CallOpParam()
            ringing.statusCode = 180
            call.answer(ringing)
            self.later.append((time.monotonic() + float(rule["delay"]), answer))
        else:
            answer()

    def shutdown(self) -> None:
        if self.ep is None:
            return
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(not call.ended for call in self.calls.values()):
            self.pump(10)
        self.pump(0)
        for call in self.calls.values():
            call.close_media()
            destroy(call)
        self.calls.clear()
        for account in self.accounts.values():
            destroy(account)
        self.accounts.clear()
        self.ep.libDestroy()
        self.ep = None


class ProbeAccount(pj.Account):
    def __init__(self, probe: Probe, user: str) -> None:
        super().__init__()
        self.probe = probe
        self.user = user

    def onRegState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 callback name
        self.probe.emit("registered", user=self.user, code=int(prm.code), reason=str(prm.reason))

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802 - pjsua2 callback name
        try:
            self.probe.incoming(self, prm)
        except Exception as error:
            self.probe.emit("error", message=f"incoming call: {type(error).__name__}: {error}")


class ProbeCall(pj.Call):
    def __init__(
        self,
        probe: Probe,
        account: ProbeAccount,
        handle: str,
        *,
        call_id: int = pj.PJSUA_INVALID_ID,
        record: Any = None,
    ) -> None:
        super().__init__(account, call_id)
        self.probe = probe
        self.handle = handle
        self.ended = False
        self.audio_index: int | None = None
        self.pending: list[Path] = []
        self.players: list[Any] = []
        self.recorder: Any = None
        self.record_path = str(record) if record else None
        self.rx_packets = 0
        self.tx_packets = 0

    def queue_play(self, path: Path) -> None:
        self.pending.append(path)
        self._start_players()

    def _start_players(self) -> None:
        if self.audio_index is None or self.ended:
            return
        audio = self.getAudioMedia(self.audio_index)
        for path in self.pending:
            player = pj.AudioMediaPlayer()
            player.createPlayer(str(path), pj.PJMEDIA_FILE_NO_LOOP)
            player.startTransmit(audio)
            self.players.append(player)
            self.probe.emit("playing", call=self.handle, wav=str(path))
        self.pending = []

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        try:
            info = self.getInfo()
            fields: dict[str, Any] = {
                "call": self.handle,
                "state": str(info.stateText),
                "code": int(info.lastStatusCode),
                "reason": str(info.lastReason),
                "call_id": str(info.callIdString),
            }
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                with contextlib.suppress(Exception):
                    src = prm.e.body.tsxState.src.rdata
                    if src is not None and str(src.wholeMsg).startswith("BYE"):
                        _, headers = parse_headers(str(src.wholeMsg))
                        fields["bye_headers"] = {k: v[0] for k, v in headers.items()}
                self.ended = True
                self._read_stats()
            self.probe.emit("state", **fields)
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.probe.later.append((0.0, self.finish))
        except Exception as error:
            self.probe.emit("error", message=f"onCallState: {type(error).__name__}: {error}")

    def _read_stats(self) -> None:
        with contextlib.suppress(Exception):
            if self.audio_index is not None:
                stat = self.getStreamStat(self.audio_index)
                self.rx_packets = int(stat.rtcp.rxStat.pkt)
                self.tx_packets = int(stat.rtcp.txStat.pkt)

    def onStreamDestroyed(self, prm: Any) -> None:  # noqa: N802
        self._read_stats()

    def finish(self) -> None:
        self.close_media()
        fields: dict[str, Any] = {"call": self.handle, "rx_packets": self.rx_packets, "tx_packets": self.tx_packets}
        if self.record_path and os.path.exists(self.record_path):
            try:
                samples, rate = read_closed_wav(self.record_path)
                fields.update(recording=self.record_path, loud_seconds=active_seconds(samples, rate))
            except (OSError, EOFError, ValueError, wave.Error) as error:
                fields.update(recording=self.record_path, error=str(error))
        self.probe.emit("ended", **fields)

    def close_media(self) -> None:
        players, self.players = self.players, []
        for player in players:
            destroy(player)
        recorder, self.recorder = self.recorder, None
        destroy(recorder)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        try:
            info = self.getInfo()
            for media in info.media:
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self.audio_index = int(media.index)
                    audio = self.getAudioMedia(self.audio_index)
                    self.probe.ep.audDevManager().getCaptureDevMedia().startTransmit(audio)
                    if self.record_path and self.recorder is None:
                        self.recorder = pj.AudioMediaRecorder()
                        self.recorder.createRecorder(self.record_path)
                        audio.startTransmit(self.recorder)
                    self.probe.emit("media", call=self.handle, active=True)
                    self._start_players()
                    break
        except Exception as error:
            self.probe.emit("error", message=f"onCallMediaState: {type(error).__name__}: {error}")

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        method = "rfc2833" if prm.method == pj.PJSUA_DTMF_METHOD_RFC2833 else "info"
        self.probe.emit("dtmf", call=self.handle, digit=str(prm.digit), method=method)


def _stdin_lines(lines: queue.SimpleQueue[str | None]) -> None:
    for line in sys.stdin:
        lines.put(line)
    lines.put(None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.voiceapps.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--users", required=True, help="comma-separated SIP users this probe answers for")
    parser.add_argument("--port", type=int, default=0, help="UDP port (0: a free one, reported in 'ready')")
    parser.add_argument(
        "--registrar",
        default=None,
        metavar="URI",
        help="register every user there (digest password from $PROBE_PASSWORD), e.g. sip:127.0.0.1:15060",
    )
    args = parser.parse_args(argv)
    users = [user.strip() for user in args.users.split(",") if user.strip()]
    if not 1 <= len(users) <= MAX_ACCOUNTS:
        parser.error(f"--users takes 1 to {MAX_ACCOUNTS} users (pjsua2-python holds {MAX_ACCOUNTS} accounts)")
    # pjlib writes a banner to fd 1: keep the real stdout for events, point fd 1 at stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    probe = Probe(out)
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    threading.Thread(target=_stdin_lines, args=(lines,), daemon=True).start()
    try:
        probe.start(users, args.port, args.registrar, os.environ.get("PROBE_PASSWORD"))
    except pj.Error as error:
        probe.emit("error", message=f"cannot start: {error.reason}")
        return 2
    running = True
    try:
        while running:
            probe.pump(10)
            while running:
                try:
                    line = lines.get_nowait()
                except queue.Empty:
                    break
                if line is None:
                    running = False
                elif line.strip():
                    try:
                        running = probe.command(json.loads(line))
                    except ValueError as error:
                        probe.emit("error", message=f"not JSON: {error}")
    finally:
        probe.shutdown()
        probe.emit("bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
