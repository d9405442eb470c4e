"""A proof call through the running voice stack, as two pjsua2 phones and a voicemail stand-in.

Run by ``python -m realstack.voice smoke`` in its own process: pjsua2 keeps C asserts that abort the
process, and one process holds one Endpoint. Steps, each bounded by ``--timeout``:

1. the caller and the callee register with digest auth at ``--proxy``;
2. the caller calls the callee, who answers: both ends' remote RTP addresses must lie in an RTPEngine range
   (``--rtp-ranges``); RFC 2833 DTMF "1234" must arrive; the caller hangs up;
3. with ``--voicemail URI``: a call to a user who is not registered (``--unregistered``), a busy callee and,
   with ``--no-answer``, a callee who only rings must each end on the voicemail stand-in (this process, on
   the URI's port) with a Diversion header naming the reason.

Prints one line per step and, last, ``RESULT {json}`` with call ids and figures; exit 0 when all passed,
1 when a check failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pjsua2 as pj

DOMAIN = "127.0.0.1"


class SmokeFailedError(Exception):
    """A check of the smoke call failed."""


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Phone(pj.Account):
    """An account; ``mode`` says what it does with an incoming call: answer, ring, busy."""

    def __init__(self, stack: Stack, name: str, mode: str = "answer") -> None:
        super().__init__()
        self.stack = stack
        self.name = name
        self.mode = mode
        self.reg_code = 0
        self.incoming: list[Call] = []
        self.invites: list[str] = []

    def onRegState(self, prm: Any) -> None:  # noqa: N802 - pjsua2's callback name
        self.reg_code = prm.code

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        call = Call(self.stack, self, prm.callId)
        self.incoming.append(call)
        self.stack.calls.append(call)
        self.invites.append(prm.rdata.wholeMsg)
        answer = pj.CallOpParam()
        answer.statusCode = {"answer": 200, "ring": 180, "busy": 180}[self.mode]
        call.answer(answer)
        if self.mode == "busy":  # not from inside this callback: a call ended here aborts pjsua2
            self.stack.rejects.append(call)


class Call(pj.Call):
    def __init__(self, stack: Stack, account: Phone, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.stack = stack
        self.state = pj.PJSIP_INV_STATE_NULL
        self.status = 0
        self.digits: list[str] = []
        self.call_id = ""

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        self.state = info.state
        self.status = info.lastStatusCode
        self.call_id = info.callIdString

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                audio = self.getAudioMedia(index)
                manager = self.stack.endpoint.audDevManager()
                manager.getCaptureDevMedia().startTransmit(audio)  # RFC 2833 needs a connected source
                audio.startTransmit(manager.getPlaybackDevMedia())

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        self.digits.append(prm.digit)

    def remote_rtp_port(self) -> int:
        return int(self.getStreamInfo(0).remoteRtpAddress.rsplit(":", 1)[1])


class Stack:
    """One Endpoint (poll mode: every callback on this thread), its transports and accounts."""

    def __init__(self, port: int = 0) -> None:
        self.endpoint = pj.Endpoint()
        self.endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.maxCalls = 32
        config.logConfig.level = 1
        config.logConfig.consoleLevel = 1
        config.medConfig.noVad = True
        self.endpoint.libInit(config)
        self.transport = self.add_transport(port)
        self.endpoint.libStart()
        self.endpoint.audDevManager().setNullDev()
        self.endpoint.codecSetPriority("PCMU/8000", 255)
        self.calls: list[Call] = []
        self.accounts: list[Phone] = []
        self.rejects: list[Call] = []

    def add_transport(self, port: int) -> int:
        config = pj.TransportConfig()
        config.boundAddress = DOMAIN
        config.publicAddress = DOMAIN
        config.port = port
        return int(self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, config))

    def account(self, name: str, *, password: str | None, registrar: str | None, transport: int, mode: str) -> Phone:
        config = pj.AccountConfig()
        config.idUri = f"sip:{name}@{DOMAIN}"
        if registrar:
            config.regConfig.registrarUri = f"sip:{registrar}"
            config.regConfig.timeoutSec = 300
        if password is not None:
            config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", name, 0, password))
        config.sipConfig.transportId = transport
        config.mediaConfig.transportConfig.boundAddress = DOMAIN
        config.mediaConfig.transportConfig.publicAddress = DOMAIN
        config.mediaConfig.transportConfig.port = 0
        phone = Phone(self, name, mode)
        phone.create(config)
        self.accounts.append(phone)
        return phone

    def wait(self, what: str, condition: Callable[[], bool], timeout: float) -> float:
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > timeout:
                raise SmokeFailedError(f"{what}: not within {timeout:g} s")
            self.endpoint.libHandleEvents(10)
            while self.rejects:
                busy = pj.CallOpParam()
                busy.statusCode = 486
                self.rejects.pop().hangup(busy)
        return time.monotonic() - started

    def dial(self, phone: Phone, uri: str) -> Call:
        call = Call(self, phone)
        self.calls.append(call)
        call.makeCall(uri, pj.CallOpParam(True))
        return call

    def hang_up(self, call: Call, timeout: float) -> None:
        if call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            call.hangup(pj.CallOpParam())
        self.wait("hang-up", lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, timeout)

    def close(self) -> None:
        for call in self.calls:
            if call.state not in (pj.PJSIP_INV_STATE_NULL, pj.PJSIP_INV_STATE_DISCONNECTED):
                with contextlib.suppress(pj.Error):
                    call.hangup(pj.CallOpParam())
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(
            c.state not in (pj.PJSIP_INV_STATE_NULL, pj.PJSIP_INV_STATE_DISCONNECTED) for c in self.calls
        ):
            self.endpoint.libHandleEvents(10)
        for call in self.calls:
            # A Call whose C++ destructor runs after libDestroy aborts the process, and callers' locals or a
            # traceback may keep one alive that long: Python never destroys the C++ side of these.
            call.thisown = False
        for phone in self.accounts:
            phone.incoming.clear()
        self.calls.clear()
        for phone in self.accounts:
            phone.shutdown()
        self.accounts.clear()
        self.endpoint.libDestroy()


def port_taken(uri: str) -> str | None:
    """``host:port`` of a SIP URI when something already holds that UDP port, else None."""
    host_port = uri.rsplit("@", maxsplit=1)[-1].split(";", maxsplit=1)[0]
    host, _, port = host_port.rpartition(":") if ":" in host_port else (host_port, ":", "5060")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, int(port)))
        except OSError:
            return f"{host}:{port}"
    return None


def confirmed(call: Call) -> Callable[[], bool]:
    return lambda: bool(call.state == pj.PJSIP_INV_STATE_CONFIRMED)


def in_ranges(port: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(low <= port <= high for low, high in ranges)


def diversion(invite: str) -> str:
    for line in invite.splitlines():
        if line.lower().startswith("diversion:"):
            return line.split(":", 1)[1].strip()
    return ""


class VoicemailProcess:
    """The voicemail stand-in in a process of its own (``smoke.py --serve-voicemail URI``).

    Not in this process: the diverted INVITE has the Call-ID, From tag and CSeq that this process's callee
    leg already received, and pjsip would refuse it as a merged request (482).
    """

    def __init__(self, uri: str, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-voicemail", uri, "--timeout", str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def expect(self, prefix: str, stack: Stack, timeout: float) -> str:
        """The next line that starts with ``prefix``, pumping this process's SIP events while waiting."""
        found: list[str] = []

        def arrived() -> bool:
            while not self.lines.empty():
                line = self.lines.get()
                if line.startswith(prefix):
                    found.append(line[len(prefix) :].strip())
                    return True
            return self.process.poll() is not None

        stack.wait(f"the voicemail stand-in's {prefix.strip()}", arrived, timeout)
        if not found:
            raise SmokeFailedError(
                f"the voicemail stand-in exited (code {self.process.returncode}) before {prefix.strip()}"
            )
        return found[0]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def serve_voicemail(args: argparse.Namespace) -> int:
    """Answer every call to the URI's port; print ``INCOMING {json}`` per call once its media runs."""
    user, host_port = args.serve_voicemail.split(":", 1)[1].split("@")
    port = int(host_port.rsplit(":", 1)[1]) if ":" in host_port else 5060
    stack = Stack(port=port)
    try:
        phone = stack.account(user, password=None, registrar=None, transport=stack.transport, mode="answer")
        out("READY")
        reported = ended = 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            stack.endpoint.libHandleEvents(20)
            while reported < len(phone.incoming) and phone.incoming[reported].state == pj.PJSIP_INV_STATE_CONFIRMED:
                call = phone.incoming[reported]
                details = {"diversion": diversion(phone.invites[reported]), "rtp_port": call.remote_rtp_port()}
                out("INCOMING " + json.dumps(details))
                reported += 1
            while ended < reported and phone.incoming[ended].state == pj.PJSIP_INV_STATE_DISCONNECTED:
                out(f"ENDED {ended}")
                ended += 1
    finally:
        stack.close()
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    ranges = [(int(low), int(high)) for low, high in (r.split("-") for r in args.rtp_ranges.split(","))]
    caller_name, caller_password = args.caller.split(":", 1)
    callee_name, callee_password = args.callee.split(":", 1)
    result: dict[str, Any] = {"calls": {}}
    stack = Stack()
    voicemail: VoicemailProcess | None = None
    try:
        caller = stack.account(
            caller_name, password=caller_password, registrar=args.proxy, transport=stack.transport, mode="answer"
        )
        callee = stack.account(
            callee_name, password=callee_password, registrar=args.proxy, transport=stack.transport, mode="answer"
        )
        took = stack.wait("registration", lambda: caller.reg_code == 200 and callee.reg_code == 200, args.timeout)
        out(f"registered {caller_name} and {callee_name} at {args.proxy} with digest auth in {took * 1000:.0f} ms")

        started = time.monotonic()
        call = stack.dial(caller, f"sip:{callee_name}@{args.proxy}")
        stack.wait("answer", lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED, args.timeout)
        setup_ms = (time.monotonic() - started) * 1000
        answered = callee.incoming[-1]
        stack.wait("media", lambda: answered.state == pj.PJSIP_INV_STATE_CONFIRMED, args.timeout)
        ports = {"caller": call.remote_rtp_port(), "callee": answered.remote_rtp_port()}
        out(f"call {call.call_id} answered in {setup_ms:.1f} ms; remote RTP ports {ports}")
        for side, port in ports.items():
            if not in_ranges(port, ranges):
                raise SmokeFailedError(
                    f"the {side}'s remote RTP port {port} is not an RTPEngine port ({args.rtp_ranges})"
                )
        call.dialDtmf("1234")
        took = stack.wait("DTMF 1234", lambda: "".join(answered.digits) == "1234", args.timeout)
        out(f"DTMF 1234 (RFC 2833) arrived through RTPEngine in {took * 1000:.0f} ms")
        hold_until = time.monotonic() + args.hold
        stack.wait("hold", lambda: time.monotonic() >= hold_until, args.hold + 1)
        stack.hang_up(call, args.timeout)
        stack.wait("the BYE at the callee", lambda: answered.state == pj.PJSIP_INV_STATE_DISCONNECTED, args.timeout)
        out(f"hung up after {args.hold:g} s")
        result["calls"]["answered"] = {"call_id": call.call_id, "setup_ms": round(setup_ms, 2), "rtp_ports": ports}

        busy_port = port_taken(args.voicemail) if args.voicemail else None
        if busy_port:
            out(f"voicemail cases skipped: UDP {busy_port} is in use (the lab's voicemail?); no stand-in can run there")
        elif args.voicemail:
            voicemail = VoicemailProcess(args.voicemail, args.timeout * 4 + args.no_answer)
            voicemail.expect("READY", stack, args.timeout)
            cases: list[tuple[str, str, str, float]] = []
            if args.unregistered:
                cases.append(("unregistered", args.unregistered, "unavailable", args.timeout))
            cases.append(("busy", callee_name, "user-busy", args.timeout))
            if args.no_answer:
                cases.append(("no_answer", callee_name, "no-answer", args.timeout + args.no_answer))
            for case, target, reason, limit in cases:
                callee.mode = {"busy": "busy", "no_answer": "ring"}.get(case, "answer")
                started = time.monotonic()
                call = stack.dial(caller, f"sip:{target}@{args.proxy}")
                stack.wait(f"{case} call answered", confirmed(call), limit)
                took = time.monotonic() - started
                seen = json.loads(voicemail.expect("INCOMING", stack, args.timeout))
                if f"reason={reason}" not in seen["diversion"]:
                    raise SmokeFailedError(
                        f"the {case} call reached voicemail with Diversion '{seen['diversion']}', not {reason}"
                    )
                if not in_ranges(seen["rtp_port"], ranges):
                    raise SmokeFailedError(
                        f"the voicemail leg's remote RTP port {seen['rtp_port']} is not an RTPEngine port"
                    )
                stack.hang_up(call, args.timeout)
                voicemail.expect("ENDED", stack, args.timeout)  # the BYE reached it (and the proxy accounted it)
                out(f"{case}: call to {target} landed on {args.voicemail} after {took:.2f} s ({seen['diversion']})")
                result["calls"][case] = {"call_id": call.call_id, "seconds": round(took, 3), **seen}
        return result
    finally:
        if voicemail is not None:
            voicemail.close()
        stack.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", help="host:port of the Kamailio to use")
    parser.add_argument("--caller", help="user:password")
    parser.add_argument("--callee", help="user:password")
    parser.add_argument("--rtp-ranges", help="RTPEngine port ranges, e.g. 20000-29999,30000-39999")
    parser.add_argument("--serve-voicemail", help="be the voicemail stand-in at this URI (internal)")
    parser.add_argument("--voicemail", help="the failure target URI, e.g. sip:voicemail@127.0.0.1:15100")
    parser.add_argument("--unregistered", help="a known user that is not registered")
    parser.add_argument("--no-answer", type=float, default=0.0, help="the proxy's no-answer timeout; 0: skip")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds the answered call lasts (1)")
    parser.add_argument("--timeout", type=float, default=10.0, help="each step (10)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_voicemail:
        return serve_voicemail(args)
    if not (args.proxy and args.caller and args.callee and args.rtp_ranges):
        sys.stderr.write("--proxy, --caller, --callee and --rtp-ranges are required\n")
        return 2
    try:
        result = run(args)
    except SmokeFailedError as error:
        sys.stderr.write(f"FAILED: {error}\n")
        return 1
    out("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without the interpreter's teardown: a pjsua2 Call object destroyed after libDestroy aborts the process.
    os._exit(code)
