"""Keywords that change a call in progress: hold and resume (re-INVITE), blind and attended transfer (REFER)."""

from __future__ import annotations

import re
from datetime import timedelta

import pjsua2 as pj
from robot.api import logger
from robotlibcore import keyword

from SipLibrary.addressing import destination_uri, parse_sip_uri
from SipLibrary.errors import SipError, SipStatusError
from SipLibrary.keywords.base import SipComponent
from SipLibrary.phone import CallState, MediaDirection, PhoneCall, call_op


class MidCallKeywords(SipComponent):
    @keyword(name="Hold Call")
    def hold_call(self, alias: str, *, call: str | None = None, timeout: timedelta | None = None) -> None:
        """Puts the phone's call (default: its latest in progress) on hold with a re-INVITE (``a=sendonly``).

        Waits for the answer to the re-INVITE; a refusal fails naming its status. Afterwards this side
        is ``sendonly`` and the other side ``recvonly`` (``inactive`` if both hold): check with
        `Media Direction Should Be`.

        | `Hold Call` | alice |
        | `Media Direction Should Be` | bob | recvonly |
        """
        target = self._confirmed(alias, call)
        self._reinvite(target, hold=True, seconds=self.ctx.seconds(timeout))

    @keyword(name="Resume Call")
    def resume_call(self, alias: str, *, call: str | None = None, timeout: timedelta | None = None) -> None:
        """Takes the phone's call off hold with a re-INVITE (``a=sendrecv``) and waits for the answer.

        | `Resume Call` | alice |
        | `Media Direction Should Be` | bob | sendrecv |
        """
        target = self._confirmed(alias, call)
        self._reinvite(target, hold=False, seconds=self.ctx.seconds(timeout))

    def _confirmed(self, alias: str, handle: str | None) -> PhoneCall:
        target = self.ctx.call(alias, handle)
        if target.state is not CallState.CONFIRMED:
            raise SipError(f"Call {target.describe()} is not connected (CONFIRMED), so it cannot be changed.")
        return target

    def _reinvite(self, target: PhoneCall, *, hold: bool, seconds: float) -> None:
        action = "Hold" if hold else "Resume"
        host = self.ctx.host
        custom_codecs = target.phone.config.codecs != host.default_codecs
        target.reinvite_pending = True
        target.reinvite_result = None
        updates = target.media_updates
        try:
            if custom_codecs:
                host.apply_codecs(target.phone.config.codecs)
            if hold:
                target.setHold(call_op())
            else:
                prm = call_op()
                prm.opt.flag = pj.PJSUA_CALL_UNHOLD
                target.reinvite(prm)
        except pj.Error as error:
            target.reinvite_pending = False
            raise SipError(
                f"pjsua2 could not send the re-INVITE ({action.lower()}) on {target.describe()}: {error.reason}."
            ) from None
        finally:
            if custom_codecs:
                host.apply_codecs(host.default_codecs)
        self.ctx.wait(lambda: not target.reinvite_pending or target.ended, seconds)
        result = target.reinvite_result
        if result is None:
            target.reinvite_pending = False
            state = "it ended" if target.ended else f"no answer within {seconds:g} s"
            raise AssertionError(f"{action} of {target.describe()}: the re-INVITE got {state}.")
        code, reason = result
        if not 200 <= code < 300:
            raise SipStatusError(f"{action} of {target.handle} was refused: {code} {reason}.", code, reason)
        self.ctx.wait(lambda: target.media_updates > updates or target.ended, min(seconds, 1.0))
        logger.info(f"{action} of {target.handle}: {code} {reason}; media now {target.live_direction()}.")

    @keyword(name="Media Direction Should Be")
    def media_direction_should_be(
        self,
        alias: str,
        direction: MediaDirection,
        *,
        call: str | None = None,
        timeout: timedelta = timedelta(0),
        message: str | None = None,
    ) -> None:
        """Fails unless this side of the phone's call (default: its latest in progress) has audio ``direction``.

        ``sendrecv`` (normal), ``sendonly`` (this side holds), ``recvonly`` (the other side holds) or
        ``inactive`` (both hold). With ``timeout`` the check is retried that long.

        | `Media Direction Should Be` | bob | recvonly |
        | `Media Direction Should Be` | alice | sendrecv | timeout=2s |
        """
        wanted = _direction(direction)
        target = self.ctx.call(alias, call)
        found = self.ctx.wait(lambda: target.live_direction() is wanted, timeout.total_seconds())
        if found is None:
            actual = target.live_direction()
            raise AssertionError(
                message
                or f"Media of {target.handle} should be {wanted.value} but it is "
                f"{actual.value if actual else 'not negotiated'} (media {target.media_status})."
            )

    @keyword(name="Blind Transfer")
    def blind_transfer(
        self,
        alias: str,
        target: str,
        *,
        call: str | None = None,
        timeout: timedelta | None = None,
        hang_up: bool = True,
    ) -> int:
        """Transfers the other party of the phone's call to ``target`` (REFER); returns the transfer's final status.

        Waits for the transferee's final NOTIFY: ``200`` means the transferee is connected to ``target``;
        any other final status fails the keyword. Then the phone hangs up its own call (``hang_up=False``
        keeps it). The transferee's new call is its latest call: check it with `Wait Until Call State`.

        | `Blind Transfer` | bob | ${CAROL_URI} |
        | `Wait Until Call State` | alice | CONFIRMED |
        """
        phone = self.ctx.phone(alias)
        uri = destination_uri(target, domain=phone.config.domain, transport=phone.config.transport)
        transfer = self._confirmed(alias, call)
        needed = self._local_legs(transfer) + (1 if self._is_local(uri.hostport) else 0)
        self.ctx.host.check_legs(needed, f"Transferring {transfer.handle} to {uri.text}")
        before = len(transfer.transfer_events)
        try:
            transfer.xfer(uri.text, call_op())
        except pj.Error as error:
            raise SipError(f"pjsua2 could not send REFER on {transfer.describe()}: {error.reason}.") from None
        logger.info(f"'{phone.alias}' transfers the other party of {transfer.handle} to {uri.text} (REFER).")
        return self._await_transfer(transfer, before, self.ctx.seconds(timeout), hang_up, [])

    @keyword(name="Attended Transfer")
    def attended_transfer(
        self,
        alias: str,
        *,
        call: str | None = None,
        to_call: str | None = None,
        timeout: timedelta | None = None,
        hang_up: bool = True,
    ) -> int:
        """Connects the other parties of two calls of the phone (REFER with Replaces); returns the final status.

        ``call`` is the call whose other party is transferred (usually on hold), ``to_call`` the
        consultation call with the transfer target. Without them, the phone's two calls in progress are
        taken: the older one as ``call``, the newer as ``to_call``. The transferee calls the target with
        ``Replaces``; the target swaps the consultation call for it (on a target phone of this library the
        new call is its latest call, and `Get Call Info` shows ``replaces``). On a final ``200`` the phone
        hangs up both of its calls (unless ``hang_up=False``); any other final status fails.

        Three phones of one process cannot do this: it takes 5 call legs at once and pjsua2-python holds 4;
        keep the target (or the transferee) outside this process. The keyword fails before sending then.

        | ${first}= | `Call` | bob | ${ALICE} |
        | `Hold Call` | bob |
        | ${consult}= | `Call` | bob | ${CAROL} |
        | `Attended Transfer` | bob | call=${first} | to_call=${consult} |
        """
        phone = self.ctx.phone(alias)
        active = phone.active_calls()
        if call is None and to_call is None:
            if len(active) != 2:
                raise ValueError(
                    f"'{phone.alias}' has {len(active)} call(s) in progress; name them with call= and to_call=."
                )
            first, second = active
        else:
            if call is None or to_call is None:
                raise ValueError("Give both call= (the call to transfer) and to_call= (the consultation call).")
            first, second = self.ctx.call(alias, call), self.ctx.call(alias, to_call)
        if first is second:
            raise ValueError(f"call= and to_call= are both {first.handle}; they must be two different calls.")
        for item in (first, second):
            if item.state is not CallState.CONFIRMED:
                raise SipError(f"Call {item.describe()} is not connected (CONFIRMED), so it cannot take part.")
        needed = self._local_legs(first) + self._local_legs(second)
        self.ctx.host.check_legs(needed, f"Attended transfer of {first.handle} to {second.handle}")
        before = len(first.transfer_events)
        try:
            first.xferReplaces(second, call_op())
        except pj.Error as error:
            raise SipError(
                f"pjsua2 could not send REFER with Replaces on {first.describe()}: {error.reason}."
            ) from None
        logger.info(
            f"'{phone.alias}' connects the other party of {first.handle} to that of {second.handle} (REFER/Replaces)."
        )
        return self._await_transfer(first, before, self.ctx.seconds(timeout), hang_up, [second])

    def _await_transfer(
        self, transfer: PhoneCall, before: int, seconds: float, hang_up: bool, others: list[PhoneCall]
    ) -> int:
        def final() -> tuple[int, str, bool] | None:
            events = transfer.transfer_events[before:]
            return next((e for e in events if e[2]), None) or (events[-1] if transfer.ended and events else None)

        outcome = self.ctx.wait(final, seconds)
        if outcome is None:
            events = transfer.transfer_events[before:]
            seen = ", ".join(f"{code} {reason}" for code, reason, _ in events) or "no NOTIFY at all"
            state = f"; the call {transfer.describe()} ended" if transfer.ended else ""
            raise AssertionError(
                f"Transfer on {transfer.handle} got no final NOTIFY within {seconds:g} s ({seen}){state}."
            )
        code, reason, _ = outcome
        if not 200 <= code < 300:
            raise SipStatusError(
                f"Transfer on {transfer.handle} failed: the transferee reported {code} {reason}.", code, reason
            )
        logger.info(f"Transfer on {transfer.handle} succeeded: {code} {reason}.")
        if hang_up:
            for item in [transfer, *others]:
                if not item.ended and item.alive:
                    try:
                        item.hangup(call_op())
                    except pj.Error as error:
                        logger.debug(f"Hanging up {item.handle} after the transfer: {error.reason}")
            self.ctx.wait(lambda: all(item.ended for item in [transfer, *others]), min(seconds, 2.0))
        return code

    def _is_local(self, hostport: str) -> bool:
        return any(phone.local_address == hostport for phone in self.ctx.phones.values())

    def _local_legs(self, call: PhoneCall) -> int:
        """1 when the other party of ``call`` is a phone of this process (it will need a new call leg)."""
        found = re.search(r"sips?:[^>;\s]+", call.remote_contact)
        if found is None:
            return 0
        try:
            uri = parse_sip_uri(found[0])
        except ValueError:
            return 0
        return 1 if self._is_local(uri.hostport) else 0


def _direction(value: MediaDirection | str) -> MediaDirection:
    if isinstance(value, MediaDirection):
        return value
    try:
        return MediaDirection(str(value).strip().lower())
    except ValueError:
        names = ", ".join(direction.value for direction in MediaDirection)
        raise ValueError(f"Media direction '{value}' is not one of {names}.") from None
