"""The process's one pjsua2 ``Endpoint``, in poll mode on the main thread, and the calls it carries.

Threading: pjsua2 gets no worker thread of its own (``threadCnt=0``, ``mainThreadOnly=True``); the main
thread pumps it (`Engine.run_once`) and every pjsua2 callback, timer and posted job runs there, so nothing
else ever calls pjlib (an unregistered thread calling pjlib aborts the process). Other threads (SMPP, HTTP,
workers) hand work over with `Engine.post`. The media endpoint keeps its own RTP thread, which calls no Python.

What aborts the process, and how it is avoided:

* a second Endpoint: one `Engine` per process;
* a pjsua2 object alive after ``libDestroy``: every call, player and recorder is tracked and its C++ side
  destroyed first (a call's as soon as it has ended, outside its own callback);
* this wheel holds 4 call legs (``PJSUA_MAX_CALLS``): a further incoming call is answered 486 by pjsua and an
  outgoing one is refused before it is sent (`Engine.free_legs`).

A Python exception never leaves a callback: it is logged, and that one call is hung up.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pjsua2 as pj

from lab.voiceapps.config import SERVICES, AppConfig
from lab.voiceapps.events import EventLog
from lab.voiceapps.sipmsg import Invite, parse_invite

log = logging.getLogger("lab.voiceapps.sip")

MAX_LEGS = 4  # PJSUA_MAX_CALLS of pjsua2-python 2.15.1.post1
F = TypeVar("F", bound=Callable[..., None])


class EngineError(RuntimeError):
    """The SIP endpoint cannot start (e.g. its UDP port is taken)."""


def guarded(method: F) -> F:
    """No Python exception may reach pjsua: log it and hang the call up."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception:
            log.exception("%s.%s failed", type(self).__name__, method.__name__)
            if isinstance(self, AppCall):
                self.engine.defer(self.hangup)

    return wrapper  # type: ignore[return-value]


def destroy(obj: Any) -> None:
    """Delete the C++ object behind a pjsua2 proxy now. Never raises."""
    with contextlib.suppress(Exception):
        if obj is not None and getattr(obj, "thisown", False):
            type(obj).__swig_destroy__(obj)


class Session:
    """What one service does with one call leg; the engine calls these on the main thread."""

    service = "none"

    def __init__(self) -> None:
        self.call: AppCall | None = None

    def on_media(self, audio: Any) -> None:
        """The call's audio is flowing (again): ``audio`` is its conference port."""

    def on_confirmed(self) -> None:
        """The call is established (ACK received or sent)."""

    def on_early(self, code: int) -> None:
        """An outgoing call got a provisional answer (180/183)."""

    def on_dtmf(self, digit: str, method: str) -> None:
        """An RFC 2833 (``rfc2833``) or SIP INFO (``info``) digit arrived."""

    def on_disconnected(self, code: int, reason: str) -> None:
        """The call has ended (``code`` is the last SIP status)."""

    def describe(self) -> dict[str, Any]:
        return {}


class Timer:
    def __init__(self, due: float, job: Callable[[], None]) -> None:
        self.due = due
        self.job: Callable[[], None] | None = job

    def cancel(self) -> None:
        self.job = None

    @property
    def active(self) -> bool:
        return self.job is not None


class AppCall(pj.Call):
    """A call leg of the application server: a pjsua2 call, its media objects and its `Session`."""

    def __init__(
        self,
        engine: Engine,
        account: Any,
        session: Session,
        *,
        direction: str,
        call_id: int = pj.PJSUA_INVALID_ID,
        invite: Invite | None = None,
    ) -> None:
        super().__init__(account, call_id)
        self.engine = engine
        self.session = session
        session.call = self
        self.direction = direction
        self.invite = invite
        self.key = next(engine.keys)
        self.sip_call_id = invite.call_id if invite else ""
        self.remote = ""
        self.state = "NULL"
        self.ended = False
        self.confirmed = False
        self.audio_index: int | None = None
        self.players: list[Any] = []
        self.recorder: Any = None
        self.started = time.monotonic()
        self.confirmed_at: float | None = None
        self.last_code = 0
        self.last_reason = ""

    # --- callbacks (main thread) ---------------------------------------------------------------------------

    @guarded
    def onCallState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 callback name
        info = self.getInfo()
        self.state = str(info.stateText)
        self.sip_call_id = str(info.callIdString) or self.sip_call_id
        self.remote = str(info.remoteUri)
        self.last_code, self.last_reason = int(info.lastStatusCode), str(info.lastReason)
        if info.state == pj.PJSIP_INV_STATE_EARLY and self.direction == "outgoing":
            self.session.on_early(self.last_code)
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            self.confirmed_at = time.monotonic()
            self.session.on_confirmed()
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.ended:
            self.ended = True
            self.audio_index = None
            log.info(
                "call %s (%s) ended: %d %s", self.sip_call_id, self.session.service, self.last_code, self.last_reason
            )
            try:
                self.session.on_disconnected(self.last_code, self.last_reason)
            finally:
                self.engine.defer(functools.partial(self.engine.release, self))
        self.engine.update(self)

    @guarded
    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                self.audio_index = int(media.index)
                audio = self.getAudioMedia(self.audio_index)
                # RFC 2833 digits flow only while a source feeds the stream: connect the null capture device.
                self.engine.capture().startTransmit(audio)
                for player in self.players:
                    player.startTransmit(audio)
                if self.recorder is not None:
                    audio.startTransmit(self.recorder)
                self.session.on_media(audio)
            else:
                self.audio_index = None
            break

    @guarded
    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        method = "rfc2833" if prm.method == pj.PJSUA_DTMF_METHOD_RFC2833 else "info"
        digit = str(prm.digit).upper()
        self.engine.events.add(
            "dtmf_received", call_id=self.sip_call_id, digit="x" if self.secret_dtmf else digit, method=method
        )
        self.session.on_dtmf(digit, method)

    @property
    def secret_dtmf(self) -> bool:
        return bool(getattr(self.session, "secret_dtmf", False))

    # --- actions (main thread) -----------------------------------------------------------------------------

    def audio(self) -> Any:
        """The call's audio conference port while media is active, else ``None``."""
        if self.ended or self.audio_index is None:
            return None
        try:
            return self.getAudioMedia(self.audio_index)
        except pj.Error:
            return None

    def play(self, path: Path, *, loop: bool = False) -> Any:
        """Play a WAV file into the call (now, or as soon as media is active); returns the player."""
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(path), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        self.players.append(player)
        audio = self.audio()
        if audio is not None:
            player.startTransmit(audio)
        return player

    def stop_players(self) -> None:
        players, self.players = self.players, []
        for player in players:
            self.engine.defer(functools.partial(destroy, player))

    def record(self, path: Path) -> None:
        """Record what the far end sends (not what is played to it) to a WAV file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        self.recorder = recorder
        audio = self.audio()
        if audio is not None:
            audio.startTransmit(recorder)

    def finish_recording(self) -> None:
        """Close the recorder: its WAV header is written when the C++ object goes."""
        recorder, self.recorder = self.recorder, None
        destroy(recorder)

    def answer_with(self, code: int, reason: str = "") -> None:
        op = pj.CallOpParam()
        op.statusCode = code
        if reason:
            op.reason = reason
        self.answer(op)

    def hangup(self, code: int = 0, headers: dict[str, str] | None = None) -> None:
        """End the call (BYE, CANCEL, or a final answer ``code`` to an unanswered incoming call). Never raises."""
        if self.ended:
            return
        op = pj.CallOpParam()
        if code:
            op.statusCode = code
        for name, value in (headers or {}).items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            op.txOption.headers.append(header)
        try:
            super().hangup(op)
        except pj.Error as error:
            log.warning("hanging up call %s failed: %s", self.sip_call_id, error.reason)

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "call_id": self.sip_call_id,
            "service": self.session.service,
            "direction": self.direction,
            "state": self.state,
            "remote": self.remote,
            "age": round(time.monotonic() - self.started, 1),
            **self.session.describe(),
        }


class _Account(pj.Account):
    def __init__(self, engine: Engine, service: str) -> None:
        super().__init__()
        self.engine = engine
        self.service = service

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        try:
            self.engine.incoming(self, prm)
        except Exception:
            log.exception("incoming call on %s failed", self.service)


class Engine:
    def __init__(self, config: AppConfig, events: EventLog) -> None:
        self.config = config
        self.events = events
        self.ep: Any = None
        self.accounts: dict[str, _Account] = {}
        self.calls: dict[int, AppCall] = {}
        self.keys = itertools.count(1)
        self.transport_address = ""
        self.heartbeat = 0.0
        self.on_incoming: Callable[[_Account, AppCall | None, Invite], Session | None] | None = None
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._deferred: list[Callable[[], None]] = []
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_ids = itertools.count()
        self._snapshot: dict[int, dict[str, Any]] = {}
        self._snapshot_lock = threading.Lock()
        self._capture: Any = None
        self.owner: int | None = None

    # --- life cycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        sip = self.config.sip
        ep = pj.Endpoint()
        with _quiet_stdout():
            ep.libCreate()
        try:
            config = pj.EpConfig()
            config.uaConfig.threadCnt = 0
            config.uaConfig.mainThreadOnly = True
            config.uaConfig.maxCalls = MAX_LEGS
            config.uaConfig.userAgent = "telco-robot voiceapps"
            config.logConfig.consoleLevel = 0
            config.logConfig.level = 0
            config.medConfig.noVad = True
            config.medConfig.clockRate = 8000
            config.medConfig.sndClockRate = 8000
            config.medConfig.ecTailLen = 0
            with _quiet_stdout():
                ep.libInit(config)
                ep.audDevManager().setNullDev()
            transport = pj.TransportConfig()
            transport.port = sip.port
            transport.boundAddress = sip.host
            transport.publicAddress = sip.host
            try:
                transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
            except pj.Error as error:
                raise EngineError(f"cannot open SIP UDP {sip.host}:{sip.port}: {error.reason}") from None
            self.transport_address = str(ep.transportGetInfo(transport_id).localName)
            with _quiet_stdout():
                ep.libStart()
            self._codecs(ep)
            self.ep = ep
            self.owner = threading.get_ident()
            for service in ("apps", *SERVICES):
                self.accounts[service] = self._account(service, int(transport_id))
        except BaseException:
            self.ep = None
            for account in self.accounts.values():
                destroy(account)
            self.accounts.clear()
            with contextlib.suppress(Exception):
                ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
            raise
        self.heartbeat = time.monotonic()
        log.info("SIP UDP %s, services %s", self.transport_address, ", ".join(SERVICES))

    def _codecs(self, ep: Any) -> None:
        """PCMU first, then PCMA and G.722; nothing else is offered."""
        preference = {"PCMU/8000": 255, "PCMA/8000": 254, "G722/16000": 200}
        for info in ep.codecEnum2():
            codec = str(info.codecId)
            ep.codecSetPriority(codec, next((value for key, value in preference.items() if codec.startswith(key)), 0))

    def _account(self, service: str, transport_id: int) -> _Account:
        sip = self.config.sip
        config = pj.AccountConfig()
        config.idUri = f"sip:{service}@{self.transport_address}"
        config.sipConfig.transportId = transport_id
        config.mediaConfig.transportConfig.boundAddress = sip.host
        config.mediaConfig.transportConfig.publicAddress = sip.host
        config.mediaConfig.transportConfig.port = 0
        if sip.outbound_proxy:
            config.sipConfig.proxies.append(f"<{sip.outbound_proxy};lr>")
        account = _Account(self, service)
        account.create(config, service == "apps")
        return account

    def shutdown(self, grace: float = 2.0) -> None:
        """Hang up every call, let the BYEs go, destroy every pjsua2 object, then the endpoint."""
        ep = self.ep
        if ep is None:
            return
        for call in list(self.calls.values()):
            call.hangup()
        deadline = time.monotonic() + grace
        while self.calls and time.monotonic() < deadline:
            self.run_once(10)
        self.run_once(0)
        self.ep = None
        for call in list(self.calls.values()):
            self._destroy_call(call)
        self.calls.clear()
        for job in self._deferred:
            with contextlib.suppress(Exception):
                job()
        self._deferred.clear()
        self._timers.clear()
        for account in self.accounts.values():
            destroy(account)
        self.accounts.clear()
        self._capture = None
        with contextlib.suppress(Exception):
            ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)

    # --- the main loop ------------------------------------------------------------------------------------

    def run_once(self, milliseconds: int = 10) -> None:
        """Pump pjsua2 (callbacks run here), then posted jobs, due timers and deferred clean-up."""
        if self.ep is None:
            return
        self.ep.libHandleEvents(milliseconds)
        self.heartbeat = time.monotonic()
        self._run_deferred()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            self._run(job, "posted job")
            self._run_deferred()
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            due, timer.job = timer.job, None
            if due is not None:
                self._run(due, "timer")
                self._run_deferred()

    def _run(self, job: Callable[[], None], what: str) -> None:
        try:
            job()
        except Exception:
            log.exception("%s failed", what)

    def _run_deferred(self) -> None:
        while self._deferred:
            self._run(self._deferred.pop(0), "deferred job")

    def post(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the main thread soon (safe from any thread)."""
        self._jobs.put(job)

    def defer(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the main thread once the current callback has returned."""
        self._deferred.append(job)

    def call_later(self, delay: float, job: Callable[[], None]) -> Timer:
        """Run ``job`` on the main thread in ``delay`` seconds, unless the returned timer is cancelled first."""
        timer = Timer(time.monotonic() + max(0.0, delay), job)
        heapq.heappush(self._timers, (timer.due, next(self._timer_ids), timer))
        return timer

    @property
    def healthy(self) -> bool:
        return self.ep is not None and time.monotonic() - self.heartbeat < 2.0

    # --- calls --------------------------------------------------------------------------------------------

    def capture(self) -> Any:
        if self._capture is None:
            self._capture = self.ep.audDevManager().getCaptureDevMedia()
        return self._capture

    def free_legs(self) -> int:
        return MAX_LEGS - len(self.calls)

    def incoming(self, account: _Account, prm: Any) -> None:
        invite = parse_invite(str(prm.rdata.wholeMsg))
        call = AppCall(self, account, Session(), direction="incoming", call_id=prm.callId, invite=invite)
        self.calls[call.key] = call
        try:
            session = self.on_incoming(account, call, invite) if self.on_incoming is not None else None
        except Exception:
            log.exception("call %s for %s: the application failed; answering 500", invite.call_id, invite.service)
            call.hangup(500)
            return
        if session is not None:
            call.session = session
            session.call = call
        if session is None:
            log.info("call %s to unknown service '%s' from %s: 404", invite.call_id, invite.service, invite.caller)
            self.events.add(
                "call_rejected", call_id=invite.call_id, service=invite.service, caller=invite.caller, code=404
            )
            call.hangup(404)
            return
        code = getattr(session, "answer_code", 200)
        if code >= 300:
            call.hangup(code)
            return
        call.answer_with(code)
        self.update(call)

    def make_call(self, service: str, target: str, session: Session, headers: dict[str, str] | None = None) -> AppCall:
        """Place a call from ``sip:<service>@…`` to ``target``; raises `EngineError` when it cannot be sent."""
        if self.ep is None:
            raise EngineError("the SIP endpoint is not running")
        if self.free_legs() < 1:
            raise EngineError(f"all {MAX_LEGS} call legs of this process are in use")
        account = self.accounts[service]
        call = AppCall(self, account, session, direction="outgoing")
        op = pj.CallOpParam(True)
        for name, value in (headers or {}).items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            op.txOption.headers.append(header)
        try:
            call.makeCall(target, op)
        except pj.Error as error:
            destroy(call)
            raise EngineError(f"cannot call {target}: {error.reason}") from None
        self.calls[call.key] = call
        self.update(call)
        return call

    def release(self, call: AppCall) -> None:
        """After a call ended: close its media objects, destroy it, forget it."""
        self.calls.pop(call.key, None)
        self._destroy_call(call)
        with self._snapshot_lock:
            self._snapshot.pop(call.key, None)

    def _destroy_call(self, call: AppCall) -> None:
        call.finish_recording()
        for player in call.players:
            destroy(player)
        call.players = []
        destroy(call)

    def update(self, call: AppCall) -> None:
        """Refresh the thread-safe view of a call that GET /calls reads."""
        if call.ended:
            return
        with contextlib.suppress(Exception), self._snapshot_lock:
            self._snapshot[call.key] = call.describe()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._snapshot_lock:
            return [dict(value) for value in self._snapshot.values()]


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """pjlib prints its banner to stdout before any log setting applies: send it to stderr."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
