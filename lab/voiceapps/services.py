"""The voice applications, one `Session` per call leg: voicemail, callback, two-factor, IVR and call queues.

Everything here runs on the main thread (see `lab.voiceapps.engine`); slow work (reading a recording for
DTMF) goes to the worker pool, and its result comes back with `Engine.post`. Every wait is a timer.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import wave
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from lab.voiceapps import audio, dtmf
from lab.voiceapps.config import AppConfig
from lab.voiceapps.engine import AppCall, Engine, EngineError, Session, Timer
from lab.voiceapps.events import EventLog
from lab.voiceapps.sipmsg import Invite

log = logging.getLogger("lab.voiceapps")

OPERATOR_QUEUE = "operator"
RESULT_HEADER = "X-TwoFA-Result"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class SmsSender(Protocol):
    def send(self, destination: str, text: str, *, purpose: str, secret: str | None = None) -> None: ...


@dataclass
class Context:
    config: AppConfig
    engine: Engine
    events: EventLog
    sms: SmsSender
    worker: Executor
    prompts: dict[str, tuple[Path, float]]

    def background(self, job: Callable[..., None], *args: Any) -> None:
        """Run ``job(*args)`` on the worker pool (never pjsua2 there); a failure is logged, not lost."""

        def run() -> None:
            try:
                job(*args)
            except Exception:
                log.exception("background job %s failed", getattr(job, "__name__", job))

        try:
            self.worker.submit(run)
        except RuntimeError:  # shutting down
            log.warning("background job %s dropped: shutting down", getattr(job, "__name__", job))

    def prompt(self, name: str) -> Path:
        return self.prompts[name][0]

    def seconds(self, name: str) -> float:
        return self.prompts[name][1]

    def text(self, user: str, text: str, purpose: str, *, secret: str | None = None) -> bool:
        """SMS a subscriber (by SIP user or MSISDN); False when the user has no MSISDN."""
        msisdn = self.config.msisdn_of(user)
        if msisdn is None:
            log.info("no MSISDN for '%s': %s SMS not sent", user, purpose)
            self.events.add("sms_skipped", user=user, purpose=purpose, reason="not a subscriber")
            return False
        self.sms.send(msisdn, text, purpose=purpose, secret=secret)
        return True


def recording_name(call_id: str) -> str:
    """``<call-id>.wav`` with characters a file name should not hold replaced."""
    return f"{_UNSAFE.sub('_', call_id)[:120] or 'call'}.wav"


class _Base(Session):
    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx
        self.timers: list[Timer] = []

    def later(self, delay: float, job: Callable[[], None]) -> Timer:
        timer = self.ctx.engine.call_later(delay, job)
        self.timers.append(timer)
        return timer

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()

    @property
    def live(self) -> bool:
        return self.call is not None and not self.call.ended

    def hang_up(self, headers: dict[str, str] | None = None) -> None:
        if self.call is not None:
            self.call.hangup(headers=headers)

    def event(self, kind: str, **fields: Any) -> None:
        call_id = self.call.sip_call_id if self.call is not None else ""
        self.ctx.events.add(kind, service=self.service, call_id=call_id, **fields)


# --- voicemail (TEST-INT-001, TEST-INT-003) -------------------------------------------------------------------


class VoicemailSession(_Base):
    """Answers, plays the greeting, records the caller until BYE or the limit; then the missed-call SMS to the
    callee, and the recording's in-band DTMF as a "transcription" SMS."""

    service = "voicemail"

    def __init__(self, ctx: Context, invite: Invite) -> None:
        super().__init__(ctx)
        self.caller = invite.caller
        self.callee = invite.original_callee
        self.arrived = datetime.now().astimezone()
        self.path = ctx.config.recordings / recording_name(invite.call_id)
        self.greeted = False
        self.recording_started: float | None = None

    def on_media(self, audio_port: Any) -> None:
        call = self.call
        if call is None or self.greeted:
            return
        self.greeted = True
        call.play(self.ctx.prompt("greeting"))
        call.record(self.path)
        self.recording_started = time.monotonic()
        self.later(self.ctx.config.settings.voicemail_max_seconds, self._limit)

    def _limit(self) -> None:
        if self.live:
            log.info(
                "voicemail %s reached the limit of %g s", self.path.name, self.ctx.config.settings.voicemail_max_seconds
            )
            self.hang_up()

    def on_disconnected(self, code: int, reason: str) -> None:
        self.cancel_timers()
        # The recorder's WAV header is written when it goes: close it (outside this callback) before reading.
        self.ctx.engine.defer(lambda: self._after_call(code))

    def _after_call(self, code: int) -> None:
        call = self.call
        if call is not None:
            call.finish_recording()
            call.stop_players()
        seconds = round(time.monotonic() - self.recording_started, 2) if self.recording_started else 0.0
        self.event("call_ended", caller=self.caller, callee=self.callee, code=code, seconds=seconds)
        caller_shown = self.ctx.config.number_for_display(self.caller)
        if not self.callee:
            log.warning("voicemail call %s names no callee (no Diversion, To is the service): no SMS", self.path.stem)
            self.event("sms_skipped", purpose="missed_call", reason="no callee in To or Diversion")
        else:
            self.ctx.text(self.callee, f"Missed call from {caller_shown} at {self.arrived:%H:%M}", "missed_call")
        if self.recording_started is not None:
            call_id = call.sip_call_id if call is not None else ""
            self.ctx.background(self._transcribe, self.path, call_id, self.callee, caller_shown)

    def _transcribe(self, path: Path, call_id: str, callee: str, caller_shown: str) -> None:
        """Worker thread: read the recording, find the DTMF in it, SMS the digits to the callee (if known)."""
        try:
            samples, rate = audio.read_closed_wav(path)
        except (OSError, EOFError, ValueError, wave.Error) as error:
            log.warning("cannot read recording %s: %s", path, error)
            self.ctx.events.add(
                "voicemail_recorded", service=self.service, call_id=call_id, path=str(path), error=str(error)
            )
            return
        started = time.perf_counter()
        detections = dtmf.detect(samples, rate)
        digits = "".join(item.digit for item in detections)
        seconds = audio.duration_of(samples, rate)
        self.ctx.events.add(
            "voicemail_recorded",
            service=self.service,
            call_id=call_id,
            path=str(path),
            seconds=round(seconds, 2),
            active_seconds=round(audio.active_seconds(samples, rate), 2),
            digits=digits,
            analysis_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if digits:
            self.ctx.events.add(
                "dtmf_detected",
                service=self.service,
                call_id=call_id,
                source="audio",
                path=str(path),
                digits=digits,
                tones=[
                    {"digit": d.digit, "at": d.start, "ms": round(d.duration * 1000), "dbfs": d.level_dbfs}
                    for d in detections
                ],
            )
            if callee:
                self.ctx.text(callee, f"Voicemail from {caller_shown}: {digits}", "voicemail_transcription")

    def describe(self) -> dict[str, Any]:
        return {"caller": self.caller, "callee": self.callee, "recording": str(self.path)}


# --- callback (TEST-INT-002) --------------------------------------------------------------------------------------


class CallbackSession(_Base):
    """An outgoing call to a subscriber who texted CALL ME: plays the notice when answered, then hangs up."""

    service = "callback"

    def __init__(self, ctx: Context, user: str) -> None:
        super().__init__(ctx)
        self.user = user
        self.answered = False

    def start(self) -> None:
        self.later(self.ctx.config.settings.callback_ring_timeout, self._unanswered)

    def _unanswered(self) -> None:
        if self.live and not self.answered:
            log.info("call-back to %s not answered in time: cancelled", self.user)
            self.event("callback_unanswered", user=self.user)
            self.hang_up()

    def on_confirmed(self) -> None:
        self.answered = True
        self.event("callback_answered", user=self.user)
        if self.call is not None:
            self.call.play(self.ctx.prompt("notice"))
        self.later(self.ctx.seconds("notice") + 0.3, self.hang_up)

    def on_disconnected(self, code: int, reason: str) -> None:
        self.cancel_timers()
        if self.call is not None:
            self.call.stop_players()
        self.event("call_ended", user=self.user, answered=self.answered, code=code, reason=reason)

    def describe(self) -> dict[str, Any]:
        return {"user": self.user, "answered": self.answered}


# --- two-factor authentication (TEST-INT-005) ------------------------------------------------------------------


class TwofaSession(_Base):
    """Sends a random code by SMS to the caller, collects it as DTMF (RFC 2833 or SIP INFO), judges it.

    ``*`` starts the entry again, ``#`` ends it early. The outcome (``accepted``, ``rejected``, ``timeout``)
    goes into the BYE as ``X-TwoFA-Result``, into the events, and to the caller by SMS.
    """

    service = "twofa"
    secret_dtmf = True

    def __init__(self, ctx: Context, invite: Invite) -> None:
        super().__init__(ctx)
        self.caller = invite.caller
        self.msisdn = ctx.config.msisdn_of(self.caller)
        self.answer_code = 200 if self.msisdn else 403
        self.code = ""
        self.entered = ""
        self.methods: set[str] = set()
        self.outcome: str | None = None
        self.prompted = False

    def on_confirmed(self) -> None:
        digits = self.ctx.config.settings.twofa_digits
        self.code = "".join(secrets.choice("0123456789") for _ in range(digits))
        self.ctx.text(self.caller, f"Your verification code is {self.code}", "twofa_code", secret=self.code)
        self.event("twofa_started", caller=self.caller, digits=digits)
        self.later(self.ctx.config.settings.twofa_timeout, lambda: self._finish("timeout"))

    def on_media(self, audio_port: Any) -> None:
        if not self.prompted and self.call is not None:
            self.prompted = True
            self.call.play(self.ctx.prompt("prompt"))

    def on_dtmf(self, digit: str, method: str) -> None:
        if self.outcome is not None or not self.code:
            return
        self.methods.add(method)
        if digit == "*":
            self.entered = ""
        elif digit == "#":
            self._finish("accepted" if secrets.compare_digest(self.entered, self.code) else "rejected")
        elif digit.isdigit():
            self.entered += digit
            if len(self.entered) >= len(self.code):
                self._finish("accepted" if secrets.compare_digest(self.entered, self.code) else "rejected")

    def _finish(self, outcome: str) -> None:
        if self.outcome is not None or not self.live:
            return
        self.outcome = outcome
        self.cancel_timers()
        accepted = outcome == "accepted"
        log.info("2FA for %s: %s", self.caller, outcome)
        self.event(
            "twofa_outcome",
            caller=self.caller,
            outcome=outcome,
            methods=sorted(self.methods),
            entered=len(self.entered),
        )
        self.ctx.text(self.caller, "Code accepted" if accepted else "Code rejected", "twofa_result")
        call = self.call
        if call is not None:
            call.stop_players()
            call.play(self.ctx.prompt("success" if accepted else "failure"))
        tone_seconds = self.ctx.seconds("success" if accepted else "failure")
        self.later(tone_seconds + 0.2, lambda: self.hang_up({RESULT_HEADER: outcome}))

    def on_disconnected(self, code: int, reason: str) -> None:
        self.cancel_timers()
        if self.call is not None:
            self.call.stop_players()
        if self.outcome is None and self.msisdn:
            self.outcome = "abandoned"
            self.event(
                "twofa_outcome",
                caller=self.caller,
                outcome="abandoned",
                methods=sorted(self.methods),
                entered=len(self.entered),
            )
        elif not self.msisdn:
            self.event("twofa_outcome", caller=self.caller, outcome="unknown caller", methods=[], entered=0)

    def describe(self) -> dict[str, Any]:
        return {"caller": self.caller, "outcome": self.outcome, "entered": len(self.entered)}


# --- IVR and call queues -------------------------------------------------------------------------------------------


class IvrSession(_Base):
    """Plays the menu and waits for one key: a menu key joins its queue, 0 reaches the operator."""

    service = "ivr"

    def __init__(self, ctx: Context, invite: Invite, queues: QueueManager) -> None:
        super().__init__(ctx)
        self.caller = invite.caller
        self.queues = queues
        self.played = 0
        self.choice: str | None = None

    def on_media(self, audio_port: Any) -> None:
        if self.played == 0:
            self._menu()

    def _menu(self) -> None:
        if not self.live or self.choice is not None:
            return
        if self.played >= 2:
            self.event("ivr_timeout", caller=self.caller)
            self.hang_up()
            return
        self.played += 1
        assert self.call is not None
        self.call.stop_players()
        self.call.play(self.ctx.prompt("prompt"))
        self.cancel_timers()
        self.later(self.ctx.config.settings.ivr_timeout, self._menu)

    def on_dtmf(self, digit: str, method: str) -> None:
        if self.choice is not None or self.call is None:
            return
        menu = self.ctx.config.ivr.menu
        if digit in menu:
            target = menu[digit]
        elif digit == "0" and self.ctx.config.ivr.operator:
            target = OPERATOR_QUEUE
        else:
            self.event("ivr_choice", caller=self.caller, key=digit, target=None)
            self.call.stop_players()
            self.call.play(self.ctx.prompt("failure"))
            return
        self.choice = digit
        self.cancel_timers()
        self.event("ivr_choice", caller=self.caller, key=digit, target=target, method=method)
        self.call.stop_players()
        self.queues.join(self.call, self.caller, target)

    def on_disconnected(self, code: int, reason: str) -> None:
        self.cancel_timers()
        if self.call is not None:
            self.call.stop_players()
        self.event("call_ended", caller=self.caller, code=code, choice=self.choice)


class QueuedCaller(_Base):
    """A caller waiting in a queue (music on hold), then bridged to an agent."""

    service = "queue"

    def __init__(self, ctx: Context, manager: QueueManager, caller: str, queue: str) -> None:
        super().__init__(ctx)
        self.manager = manager
        self.caller = caller
        self.queue = queue
        self.joined = time.monotonic()
        self.offer: AgentLeg | None = None
        self.agent: AgentLeg | None = None
        self.music: Any = None

    def on_media(self, audio_port: Any) -> None:
        if self.agent is not None:
            self.manager.bridge(self, self.agent)

    def on_disconnected(self, code: int, reason: str) -> None:
        self.cancel_timers()
        if self.call is not None:
            self.call.stop_players()
        self.manager.left(self, code)

    def describe(self) -> dict[str, Any]:
        return {
            "caller": self.caller,
            "queue": self.queue,
            "waited": round(time.monotonic() - self.joined, 1),
            "agent": self.agent.agent if self.agent else None,
        }


class AgentLeg(_Base):
    """The call from the queue to an agent; bridged to the caller when the agent answers."""

    service = "queue"

    def __init__(self, ctx: Context, manager: QueueManager, agent: str, caller: QueuedCaller) -> None:
        super().__init__(ctx)
        self.manager = manager
        self.agent = agent
        self.caller = caller
        self.connected = False

    def on_confirmed(self) -> None:
        self.cancel_timers()
        self.manager.answered(self)

    def on_media(self, audio_port: Any) -> None:
        if self.connected:
            self.manager.bridge(self.caller, self)

    def on_disconnected(self, code: int, reason: str) -> None:
        self.cancel_timers()
        self.manager.agent_gone(self, code)

    def describe(self) -> dict[str, Any]:
        return {"agent": self.agent, "caller": self.caller.caller, "connected": self.connected}


@dataclass
class AgentState:
    busy: AgentLeg | None = None
    retry_at: float = 0.0


@dataclass
class QueueManager:
    """FIFO queues per name; an agent is free when the app has no call with them and they did not just fail."""

    ctx: Context
    queues: dict[str, list[QueuedCaller]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    agents: dict[str, AgentState] = field(default_factory=dict)
    ticking: bool = False

    def __post_init__(self) -> None:
        self.members = {name: list(agents) for name, agents in self.ctx.config.queues.items()}
        operator = self.ctx.config.ivr.operator
        if operator:
            self.members[OPERATOR_QUEUE] = [operator]
        for name, agents in self.members.items():
            self.queues[name] = []
            for agent in agents:
                self.agents.setdefault(agent, AgentState())

    def join(self, call: AppCall, caller: str, queue: str) -> QueuedCaller | None:
        if queue not in self.members:
            self.ctx.events.add("queue_rejected", service="queue", call_id=call.sip_call_id, queue=queue)
            call.hangup(404)
            return None
        waiting = QueuedCaller(self.ctx, self, caller, queue)
        call.session = waiting
        waiting.call = call
        self.queues[queue].append(waiting)
        position = len(self.queues[queue])
        waiting.music = call.play(self.ctx.prompt("music"), loop=True)
        self.ctx.engine.update(call)
        waiting.event("queue_joined", caller=caller, queue=queue, position=position)
        log.info("%s joined queue %s at position %d", caller, queue, position)
        if queue != OPERATOR_QUEUE:
            self.ctx.text(caller, f"You are number {position} in the queue", "queue_position")
        waiting.later(self.ctx.config.settings.queue_max_wait, lambda: self._too_long(waiting))
        self.dispatch()
        self._tick()
        return waiting

    def _too_long(self, waiting: QueuedCaller) -> None:
        if waiting.live and waiting.agent is None:
            waiting.event("queue_timeout", caller=waiting.caller, queue=waiting.queue)
            waiting.hang_up()

    def _tick(self) -> None:
        """While anyone waits, look for free agents every second (an agent's retry delay runs out)."""
        if self.ticking or not any(self.queues.values()):
            return
        self.ticking = True

        def tick() -> None:
            self.ticking = False
            self.dispatch()
            self._tick()

        self.ctx.engine.call_later(1.0, tick)

    def dispatch(self) -> None:
        now = time.monotonic()
        for queue, waiting in self.queues.items():
            for caller in waiting:
                if caller.offer is not None or caller.agent is not None or not caller.live:
                    continue
                agent = next(
                    (a for a in self.members[queue] if self.agents[a].busy is None and self.agents[a].retry_at <= now),
                    None,
                )
                if agent is None:
                    break
                if self.ctx.engine.free_legs() < 1:
                    return
                self._ring(agent, caller)

    def _ring(self, agent: str, caller: QueuedCaller) -> None:
        leg = AgentLeg(self.ctx, self, agent, caller)
        headers = {"X-Queue": caller.queue, "X-Caller": caller.caller}
        try:
            self.ctx.engine.make_call("queue", self.ctx.config.sip.user_uri(agent), leg, headers)
        except EngineError as error:
            log.warning("cannot ring agent %s: %s", agent, error)
            self.agents[agent].retry_at = time.monotonic() + self.ctx.config.settings.agent_retry_delay
            return
        caller.offer = leg
        self.agents[agent].busy = leg
        leg.event("agent_ringing", agent=agent, caller=caller.caller, queue=caller.queue)
        leg.later(self.ctx.config.settings.agent_ring_timeout, lambda: self._no_answer(leg))

    def _no_answer(self, leg: AgentLeg) -> None:
        if leg.live and not leg.connected:
            leg.event("agent_no_answer", agent=leg.agent, queue=leg.caller.queue)
            leg.hang_up()

    def answered(self, leg: AgentLeg) -> None:
        caller = leg.caller
        if not caller.live or caller.offer is not leg:
            leg.hang_up()
            return
        leg.connected = True
        caller.offer, caller.agent = None, leg
        if caller in self.queues[caller.queue]:
            self.queues[caller.queue].remove(caller)
        caller.cancel_timers()
        waited = round(time.monotonic() - caller.joined, 2)
        caller.event("queue_connected", caller=caller.caller, queue=caller.queue, agent=leg.agent, waited=waited)
        for call in (caller.call, leg.call):
            if call is not None:
                self.ctx.engine.update(call)
        log.info("queue %s: %s connected to agent %s after %.1f s", caller.queue, caller.caller, leg.agent, waited)
        self.bridge(caller, leg)

    def bridge(self, caller: QueuedCaller, leg: AgentLeg) -> None:
        """Stop the music and connect the two legs' audio both ways (a bridge in the conference)."""
        if caller.call is None or leg.call is None:
            return
        caller.call.stop_players()
        one, other = caller.call.audio(), leg.call.audio()
        if one is None or other is None:
            return  # media not up yet: on_media of the later leg bridges
        one.startTransmit(other)
        other.startTransmit(one)

    def agent_gone(self, leg: AgentLeg, code: int) -> None:
        state = self.agents[leg.agent]
        if state.busy is leg:
            state.busy = None
        caller = leg.caller
        if leg.connected:
            if caller.live:
                leg.event("queue_call_ended", agent=leg.agent, caller=caller.caller, ended_by="agent")
                caller.hang_up()
        else:
            state.retry_at = time.monotonic() + self.ctx.config.settings.agent_retry_delay
            leg.event("agent_failed", agent=leg.agent, code=code, queue=caller.queue)
            if caller.offer is leg:
                caller.offer = None
        self.dispatch()
        self._tick()

    def left(self, caller: QueuedCaller, code: int) -> None:
        if caller in self.queues.get(caller.queue, []):
            self.queues[caller.queue].remove(caller)
            caller.event("queue_abandoned", caller=caller.caller, queue=caller.queue, code=code)
        if caller.offer is not None:
            caller.offer.hang_up()
        if caller.agent is not None and caller.agent.live:
            caller.event("queue_call_ended", agent=caller.agent.agent, caller=caller.caller, ended_by="caller")
            caller.agent.hang_up()
        self.dispatch()

    def describe(self) -> dict[str, Any]:
        return {
            "queues": {name: [caller.caller for caller in waiting] for name, waiting in self.queues.items()},
            "agents": {
                name: "busy" if state.busy else ("resting" if state.retry_at > time.monotonic() else "free")
                for name, state in self.agents.items()
            },
        }


# --- routing ---------------------------------------------------------------------------------------------------------


class Services:
    """Which session an incoming call gets, and the calls the applications place themselves."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queues = QueueManager(ctx)
        self.callbacks: dict[str, CallbackSession] = {}

    def incoming(self, account: Any, _call: AppCall | None, invite: Invite) -> Session | None:
        service = invite.service
        self.ctx.events.add(
            "call_received",
            service=service,
            call_id=invite.call_id,
            caller=invite.caller,
            to=invite.to_user,
            diversion=invite.diverted_from or None,
        )
        log.info(
            "call %s for %s from %s (to %s)", invite.call_id, service, invite.caller, invite.original_callee or "-"
        )
        if service == "voicemail":
            return VoicemailSession(self.ctx, invite)
        if service == "twofa":
            return TwofaSession(self.ctx, invite)
        if service == "ivr":
            return IvrSession(self.ctx, invite, self.queues)
        if service == "queue":
            return _DirectQueue(self.ctx, invite, self.queues)
        return None

    def callback(self, user: str) -> None:
        """CALL ME: ring the subscriber from ``sip:callback@…`` (one call-back per user at a time)."""
        current = self.callbacks.get(user)
        if current is not None and current.live:
            self.ctx.events.add("callback_ignored", service="callback", user=user, reason="a call-back is in progress")
            return
        session = CallbackSession(self.ctx, user)
        target = self.ctx.config.sip.user_uri(user)
        try:
            self.ctx.engine.make_call("callback", target, session)
        except EngineError as error:
            log.warning("call-back to %s failed: %s", user, error)
            self.ctx.events.add("callback_failed", service="callback", user=user, reason=str(error))
            self.ctx.text(user, "Sorry, we could not call you back. Please try again later.", "callback_failed")
            return
        self.callbacks[user] = session
        session.start()
        session.event("callback_calling", user=user, target=target)


class _DirectQueue(_Base):
    """A call straight to ``sip:queue@…``: joins the queue the X-Queue header names (else the first one)."""

    service = "queue"

    def __init__(self, ctx: Context, invite: Invite, queues: QueueManager) -> None:
        super().__init__(ctx)
        self.invite = invite
        self.queues = queues
        self.queue = invite.header("X-Queue") or next(iter(ctx.config.queues), "")
        self.answer_code = 200 if self.queue in queues.members else 404
        self.joined = False

    def on_media(self, audio_port: Any) -> None:
        if not self.joined and self.call is not None:
            self.joined = True
            self.queues.join(self.call, self.invite.caller, self.queue)


def generate_prompts(directory: Path) -> dict[str, tuple[Path, float]]:
    return audio.write_prompts(directory)


__all__ = ["Context", "QueueManager", "Services", "generate_prompts", "recording_name"]
