"""Keywords that make, receive, answer, reject, end and check calls."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Literal

import pjsua2 as pj
from robot.api import logger
from robotlibcore import keyword

from SipLibrary.addressing import (
    SipUri,
    check_headers,
    destination_uri,
    is_number,
    parse_sip_uri,
    split_name_addr,
)
from SipLibrary.context import describe_calls
from SipLibrary.errors import SipError
from SipLibrary.keywords.base import SipComponent
from SipLibrary.phone import CallState, PhoneCall, SipPhone, call_op

CallerIdHeader = Literal["From", "P-Asserted-Identity"]


class CallKeywords(SipComponent):
    @keyword(name="Call")
    def call(
        self,
        alias: str,
        destination: str,
        *,
        headers: dict[str, str] | None = None,
        caller_id: str | None = None,
    ) -> str:
        """Makes phone ``alias`` call ``destination`` (a SIP URI, number or user name); returns the call's handle.

        The handle (e.g. ``alice/1``) names the call in later keywords (``call=``); without it they act
        on the phone's latest call. The keyword returns once the INVITE is sent; follow it with
        `Wait Until Call State` (e.g. ``CONFIRMED``) or, on the callee, `Wait For Incoming Call`.

        A number (or a bare user name such as ``bob``) is dialled as ``sip:NUMBER@domain`` (the phone's
        ``domain`` or registrar); without a domain only SIP URIs can be dialled. A malformed
        URI or number fails with ``ValueError`` before anything is sent. ``headers`` adds SIP headers
        to the INVITE; ``caller_id`` replaces the From of this call: a number, a SIP URI, or
        ``"Name" <sip:...>``.

        One process holds 4 call legs (a call between two local phones takes 2); a call beyond that
        fails before sending. New calls are paced so the media sockets of ended calls can close.

        | ${call}= | `Call` | alice | ${BOB_URI} |
        | `Call` | alice | +4930123456 | headers=${{ {'X-Test-Id': 'T-7'} }} | caller_id="Front Desk" <sip:100@pbx> |
        | `Wait Until Call State` | alice | CONFIRMED | call=${call} |
        """
        phone = self.ctx.phone(alias)
        uri = destination_uri(destination, domain=phone.config.domain, transport=phone.config.transport)
        extra = check_headers(headers)
        local_uri = self._caller_id(phone, caller_id) if caller_id else None
        host = self.ctx.host
        ep = host.endpoint()
        if ep.utilVerifySipUri(uri.text) != 0:
            raise ValueError(
                f"pjsua2 does not accept '{uri.text}' as a SIP URI; check it (e.g. sip:bob@127.0.0.1:5062)."
            )
        needed = 2 if self._local_phone(uri) else 1
        host.check_legs(needed, f"A call from '{phone.alias}' to {uri.text}")
        waited = host.pace(needed, self.ctx.seconds(None))
        call = phone.new_call(direction="outgoing")
        prm = call_op()
        for name, value in extra.items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            prm.txOption.headers.append(header)
        if local_uri:
            prm.txOption.localUri = local_uri
        custom_codecs = phone.config.codecs != host.default_codecs
        try:
            if custom_codecs:
                host.apply_codecs(phone.config.codecs)
            call.makeCall(uri.text, prm)
        except pj.Error as error:
            phone.drop_call(call)
            raise SipError(f"pjsua2 could not call {uri.text} from '{phone.alias}': {error.reason}.") from None
        finally:
            if custom_codecs:
                host.apply_codecs(host.default_codecs)
        if not call.counted and not call.ended:
            call.counted = True
            host.leg_opened()
        paced = f" after waiting {waited * 1000:.0f} ms for media sockets" if waited > 0.005 else ""
        shown = ", ".join(f"{k}: {v}" for k, v in extra.items())
        logger.info(
            f"'{phone.alias}' calls {uri.text} ({call.handle}){paced}"
            f"{f' as {local_uri}' if local_uri else ''}{f' with {shown}' if shown else ''}."
        )
        self.ctx.flush()
        return call.handle

    def _caller_id(self, phone: SipPhone, caller_id: str) -> str:
        display, uri_text = split_name_addr(caller_id) if "<" in caller_id else ("", caller_id.strip())
        if is_number(uri_text):
            uri = parse_sip_uri(f"sip:{uri_text.replace('#', '%23')}@{phone.config.domain or phone.local_address}")
        else:
            uri = parse_sip_uri(uri_text, what="Caller ID")
        quoted = display.replace('"', '\\"')
        return f'"{quoted}" <{uri.text}>' if display else f"<{uri.text}>"

    def _local_phone(self, uri: SipUri) -> SipPhone | None:
        for phone in self.ctx.phones.values():
            host, _, port = phone.local_address.rpartition(":")
            if uri.host == host and uri.port is not None and str(uri.port) == port:
                return phone
        return None

    @keyword(name="Wait For Incoming Call")
    def wait_for_incoming_call(
        self, alias: str, *, timeout: timedelta | None = None, message: str | None = None
    ) -> dict[str, Any]:
        """Waits until phone ``alias`` has an incoming call not yet taken, takes it and describes it.

        Returns ``call`` (the handle for ``call=``), ``from_uri``, ``from_display``, ``from_number``,
        ``to_uri``, ``to_number``, ``p_asserted_identity`` (and ``p_asserted_number``, ``p_asserted_display``),
        ``headers`` (every header of the INVITE), ``codecs`` (offered), ``source`` (address it came from),
        ``sip_call_id`` and the call's current ``state``. The call is not answered: use `Answer Call` or
        `Reject Call` (unless the phone has ``auto_answer``).

        | ${incoming}= | `Wait For Incoming Call` | bob | timeout=5s |
        | Should Be Equal | ${incoming}[headers][X-Test-Id] | T-7 |
        | `Answer Call` | bob | call=${incoming}[call] |
        """
        phone = self.ctx.phone(alias)
        seconds = self.ctx.seconds(timeout)
        started = time.monotonic()

        def unclaimed() -> PhoneCall | None:
            return next((c for c in phone.calls if c.invite is not None and not c.claimed), None)

        call = self.ctx.wait(unclaimed, seconds)
        if call is None or call.invite is None:
            refused = [r for r in self.ctx.host.rejected if r[3] >= started]
            hint = (
                f" pjsua refused {len(refused)} incoming call(s) meanwhile, e.g. {refused[-1][0]} {refused[-1][1]} "
                f"from {refused[-1][2]} (4 call legs per process at most)."
                if refused
                else ""
            )
            raise AssertionError(
                message or f"No incoming call reached '{phone.alias}' ({phone.contact_uri}) within {seconds:g} s.{hint}"
            )
        call.claimed = True
        logger.info(
            f"'{phone.alias}' has an incoming call {call.handle} from {call.invite['from_uri']}"
            f"{' (' + call.invite['from_display'] + ')' if call.invite['from_display'] else ''}."
        )
        return {**call.invite, "state": call.state.value}

    def _unanswered(self, alias: str, handle: str | None, seconds: float) -> PhoneCall:
        phone = self.ctx.phone(alias)
        if handle is not None:
            call = self.ctx.call(alias, handle, active=False)
            if call.direction != "incoming" or call.answered or call.ended:
                raise SipError(f"Call {call.describe()} is not an incoming call waiting for an answer.")
            return call

        def waiting() -> PhoneCall | None:
            return next(
                (c for c in phone.calls if c.direction == "incoming" and not c.answered and not c.ended and c.alive),
                None,
            )

        found = self.ctx.wait(waiting, seconds)
        if found is None:
            raise AssertionError(
                f"'{phone.alias}' has no incoming call waiting for an answer (waited {seconds:g} s). "
                f"Its calls: {describe_calls(phone.calls)}."
            )
        found.claimed = True
        return found

    @keyword(name="Answer Call")
    def answer_call(
        self,
        alias: str,
        *,
        code: int = 200,
        call: str | None = None,
        timeout: timedelta | None = None,
    ) -> str:
        """Answers an incoming call of phone ``alias`` with ``code``; returns the call's handle.

        ``200`` (default) accepts the call and waits until the caller's ACK arrives (``CONFIRMED``);
        ``180`` rings and ``183`` sends early media (session progress), after which a later
        `Answer Call` with ``200`` connects. Without ``call`` the oldest unanswered incoming call is
        taken, waiting up to ``timeout`` for one to arrive. Refuse calls with `Reject Call`.

        | `Answer Call` | bob |
        | `Answer Call` | bob | code=180 |
        | `Answer Call` | bob | call=${incoming}[call] |
        """
        if not 100 < code < 300:
            raise ValueError(f"Answer code {code} is not 101-299; refuse a call with `Reject Call` (e.g. code=486).")
        seconds = self.ctx.seconds(timeout)
        target = self._unanswered(alias, call, seconds)
        try:
            target.answer(call_op(code))
        except pj.Error as error:
            raise SipError(f"pjsua2 could not answer {target.describe()} with {code}: {error.reason}.") from None
        if code >= 200:
            target.answered = True
            reached = self.ctx.await_state(target, {CallState.CONFIRMED, CallState.DISCONNECTED}, seconds)
            if target.state is not CallState.CONFIRMED:
                waited = "" if reached else f" within {seconds:g} s"
                raise AssertionError(f"Answered call {target.describe()} did not reach CONFIRMED{waited}.")
        else:
            self.ctx.pump()
        logger.info(f"'{target.phone.alias}' answered {target.handle} with {code}.")
        return target.handle

    @keyword(name="Reject Call")
    def reject_call(
        self,
        alias: str,
        *,
        code: int = 486,
        reason: str | None = None,
        call: str | None = None,
        timeout: timedelta | None = None,
    ) -> str:
        """Refuses an incoming call of phone ``alias`` with ``code`` (default 486 Busy Here); returns its handle.

        Any final code from 300 to 699 works, e.g. ``603`` (Decline) or ``480``; ``reason`` replaces the
        standard reason phrase. The caller sees the code: check it with `Wait Until Call State` and ``status=``.

        | `Reject Call` | bob |
        | `Reject Call` | bob | code=603 | reason=Not Today |
        """
        if not 300 <= code < 700:
            raise ValueError(f"Reject code {code} is not 300-699; e.g. 486 (Busy Here), 603 (Decline), 480.")
        seconds = self.ctx.seconds(timeout)
        target = self._unanswered(alias, call, seconds)
        try:
            target.answer(call_op(code, reason or ""))
        except pj.Error as error:
            raise SipError(f"pjsua2 could not reject {target.describe()} with {code}: {error.reason}.") from None
        target.answered = True
        self.ctx.await_state(target, {CallState.DISCONNECTED}, seconds)
        logger.info(f"'{target.phone.alias}' rejected {target.handle} with {code}{' ' + reason if reason else ''}.")
        return target.handle

    @keyword(name="Hang Up")
    def hang_up(
        self,
        alias: str,
        *,
        call: str | None = None,
        code: int | None = None,
        timeout: timedelta | None = None,
    ) -> None:
        """Ends a call of phone ``alias`` (BYE, CANCEL or a final answer, whatever its state needs).

        Without ``call`` the phone's latest call in progress ends. A named call that already ended is
        left alone. ``code`` is the answer for an incoming call not yet answered (default 603).

        | `Hang Up` | alice |
        | `Hang Up` | bob | call=${incoming}[call] |
        """
        target = self.ctx.call(alias, call, active=call is None)
        if target.ended or not target.alive:
            logger.info(f"Call {target.describe()} has already ended.")
            return
        seconds = self.ctx.seconds(timeout)
        try:
            target.hangup(call_op(code))
        except pj.Error as error:
            self.ctx.pump()
            if target.ended:
                logger.info(f"Call {target.describe()} had already ended.")
                return
            raise SipError(f"pjsua2 could not hang up {target.describe()}: {error.reason}.") from None
        if not self.ctx.await_state(target, {CallState.DISCONNECTED}, seconds):
            raise AssertionError(f"Call {target.describe()} did not end within {seconds:g} s of hanging up.")
        logger.info(f"'{target.phone.alias}' hung up {target.describe()}.")

    @keyword(name="Hang Up All Calls")
    def hang_up_all_calls(self, *, timeout: timedelta = timedelta(seconds=2)) -> None:
        """Ends every call of every phone and waits up to ``timeout`` for them to end; for teardowns.

        Never fails: calls still up after ``timeout`` are named in the log.
        """
        if not self.ctx.phones:
            return
        calls = [call for phone in self.ctx.phones.values() for call in phone.active_calls()]
        for call in calls:
            if call.alive and not call.ended:
                try:
                    call.hangup(call_op(None))
                except pj.Error as error:
                    logger.debug(f"Hanging up {call.handle}: {error.reason}")
        self.ctx.wait(lambda: all(call.ended for call in calls), timeout.total_seconds())
        left = [call for call in calls if not call.ended]
        if left:
            logger.info(f"Calls still up after {timeout.total_seconds():g} s: {describe_calls(left)}.")
        else:
            logger.info(f"Hung up {len(calls)} call(s).")

    @keyword(name="Call State Should Be")
    def call_state_should_be(
        self, alias: str, state: CallState, *, call: str | None = None, message: str | None = None
    ) -> None:
        """Fails unless the phone's call (default: its latest) is in ``state`` now.

        States: ``NULL``, ``CALLING``, ``INCOMING``, ``EARLY``, ``CONNECTING``, ``CONFIRMED``, ``DISCONNECTED``.
        To wait for a state, use `Wait Until Call State`.

        | `Call State Should Be` | bob | CONFIRMED |
        """
        wanted = _state(state)
        self.ctx.pump()
        target = self.ctx.call(alias, call, active=False)
        if target.state is not wanted:
            raise AssertionError(
                message or f"Call {target.handle} should be {wanted.value} but it is {_state_text(target)}."
            )

    @keyword(name="Wait Until Call State")
    def wait_until_call_state(
        self,
        alias: str,
        state: CallState,
        *,
        call: str | None = None,
        status: int | None = None,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Waits until the phone's call (default: its latest) reaches ``state``; returns `Get Call Info`'s dictionary.

        A phone without any call yet waits for one to arrive first. A call that ends first fails at once,
        naming the SIP status it ended with. ``status`` also checks the last SIP status code, e.g. ``486``
        for a busy callee or ``200`` for a normal end.

        | `Wait Until Call State` | alice | CONFIRMED | timeout=5s |
        | `Wait Until Call State` | alice | DISCONNECTED | status=486 |
        """
        wanted = _state(state)
        seconds = self.ctx.seconds(timeout)
        started = time.monotonic()
        target = self.ctx.call_soon(alias, call, seconds)
        left = max(0.0, seconds - (time.monotonic() - started))
        reached = self.ctx.wait(lambda: target.state is wanted or target.ended, left)
        if target.state is not wanted:
            if target.ended:
                detail = f"it ended first with {target.last_status} {target.last_reason}".rstrip()
            else:
                detail = f"it is {_state_text(target)} after {seconds:g} s" if reached is None else _state_text(target)
            raise AssertionError(message or f"Call {target.handle} should have reached {wanted.value} but {detail}.")
        if status is not None and target.last_status != status:
            raise AssertionError(
                message
                or f"Call {target.handle} reached {wanted.value} with status {target.last_status} "
                f"{target.last_reason}, not {status}."
            )
        setup = f" (set up in {target.setup_ms} ms)" if wanted is CallState.CONFIRMED and target.setup_ms else ""
        logger.info(f"Call {target.describe()}{setup}.")
        return target.info()

    @keyword(name="Get Call Info")
    def get_call_info(self, alias: str, *, call: str | None = None) -> dict[str, Any]:
        """Returns what is known about the phone's call (default: its latest).

        Keys: ``call``, ``phone``, ``direction``, ``state``, ``last_status``, ``last_reason``, ``remote_uri``,
        ``remote_display``, ``remote_number``, ``local_uri``, ``sip_call_id``, ``setup_ms`` (INVITE to
        CONFIRMED), ``duration`` (seconds connected), ``media_status``, ``media_direction``, ``codec``,
        ``history`` (states passed), ``replaced_by`` and ``replaces`` (attended transfer) and, for incoming
        calls, ``invite`` (as `Wait For Incoming Call` returns it).
        """
        self.ctx.pump()
        target = self.ctx.call(alias, call, active=False)
        target.live_direction()
        info = target.info()
        if target.invite is not None:
            info["invite"] = dict(target.invite)
        return info

    @keyword(name="Incoming Caller ID Should Be")
    def incoming_caller_id_should_be(
        self,
        alias: str,
        number: str,
        *,
        display: str | None = None,
        header: CallerIdHeader = "From",
        call: str | None = None,
        message: str | None = None,
    ) -> None:
        """Fails unless the phone's incoming call (default: its latest) shows caller ``number`` (and ``display``).

        The number is the user part of the ``From`` URI, or of ``P-Asserted-Identity`` with
        ``header=P-Asserted-Identity``; it is compared exactly, so ``+4930123`` and ``4930123`` differ.

        | `Incoming Caller ID Should Be` | bob | +4930111 | display=Front Desk |
        | `Incoming Caller ID Should Be` | bob | 100 | header=P-Asserted-Identity |
        """
        phone = self.ctx.phone(alias)
        self.ctx.pump()
        if call is not None:
            target = self.ctx.call(alias, call, active=False)
        else:
            incoming = [c for c in phone.calls if c.invite is not None]
            if not incoming:
                raise AssertionError(message or f"'{phone.alias}' has had no incoming call, so it shows no caller ID.")
            target = incoming[-1]
        if target.invite is None:
            raise ValueError(f"Call {target.handle} is an outgoing call; caller ID is checked on the called phone.")
        pai = header.lower().startswith("p-")
        actual = target.invite["p_asserted_number" if pai else "from_number"]
        actual_display = target.invite["p_asserted_display" if pai else "from_display"]
        name = "P-Asserted-Identity" if pai else "From"
        if actual != number.strip():
            raise AssertionError(
                message
                or f"Caller ID ({name}) of {target.handle} should be '{number}' but it is '{actual}' "
                f"({target.invite['p_asserted_identity' if pai else 'from_uri'] or 'no such header'})."
            )
        if display is not None and actual_display != display:
            raise AssertionError(
                message
                or f"Caller name ({name}) of {target.handle} should be '{display}' but it is '{actual_display}'."
            )
        logger.info(f"Caller ID of {target.handle} is '{actual}'{f' ({actual_display})' if actual_display else ''}.")


def _state(value: CallState | str) -> CallState:
    if isinstance(value, CallState):
        return value
    try:
        return CallState[str(value).strip().upper()]
    except KeyError:
        names = ", ".join(state.value for state in CallState)
        raise ValueError(f"Call state '{value}' is not one of {names}.") from None


def _state_text(call: PhoneCall) -> str:
    code = f" ({call.last_status} {call.last_reason})" if call.last_status else ""
    return f"{call.state.value}{code}"
