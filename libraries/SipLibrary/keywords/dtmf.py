"""Keywords that send DTMF digits and wait for them on the other phone."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pjsua2 as pj
from robot.api import logger
from robotlibcore import keyword

from SipLibrary.addressing import check_digits
from SipLibrary.errors import SipError, SipStatusError
from SipLibrary.keywords.base import SipComponent
from SipLibrary.phone import CallState

DtmfMethod = Literal["rfc2833", "info"]
METHODS = {"rfc2833": pj.PJSUA_DTMF_METHOD_RFC2833, "info": pj.PJSUA_DTMF_METHOD_SIP_INFO}
SHOWN = {"rfc2833": "RFC 2833", "info": "SIP INFO"}


class DtmfKeywords(SipComponent):
    @keyword(name="Send DTMF")
    def send_dtmf(
        self,
        alias: str,
        digits: str,
        *,
        method: DtmfMethod = "rfc2833",
        call: str | None = None,
        timeout: timedelta | None = None,
    ) -> None:
        """Sends DTMF ``digits`` (0-9, *, #, A-D) on the phone's call (default: its latest one in progress).

        ``method=rfc2833`` (default) sends telephone-event RTP packets in the call's audio stream (about
        0.2 s per digit; the keyword returns once they are queued, so wait for them on the receiving side).
        ``method=info`` sends one SIP INFO (``application/dtmf-relay``) per digit and waits for every
        answer: a refused INFO fails the keyword with its status.

        | `Send DTMF` | alice | 1234# |
        | `Send DTMF` | alice | 9 | method=info |
        """
        text = check_digits(digits)
        kind = _method(method)
        target = self.ctx.call(alias, call)
        if target.state not in (CallState.CONFIRMED, CallState.EARLY, CallState.CONNECTING):
            raise SipError(f"DTMF needs a connected call, but {target.describe()} is not.")
        before = len(target.info_results)
        # SIP INFO: one digit per request, each answered before the next is sent, as phones do: overlapping
        # requests of a dialog can overtake each other in a multi-worker proxy and be refused (500 Invalid CSeq).
        batches = list(text) if kind == "info" else [text]
        seconds = self.ctx.seconds(timeout)
        for sent, batch in enumerate(batches, start=1):
            prm = pj.CallSendDtmfParam()
            prm.method = METHODS[kind]
            prm.digits = batch
            try:
                target.sendDtmf(prm)
            except pj.Error as error:
                raise SipError(f"pjsua2 could not send DTMF '{text}' on {target.describe()}: {error.reason}.") from None
            if kind == "info":
                wanted = before + sent
                self.ctx.wait(lambda: len(target.info_results) >= wanted, seconds)  # noqa: B023 - used at once
        if kind == "info":
            answers = target.info_results[before:]
            refused = [(code, reason) for code, reason in answers if not 200 <= code < 300]
            if refused:
                code, reason = refused[0]
                raise SipStatusError(
                    f"DTMF '{text}' by SIP INFO on {target.handle}: {len(refused)} INFO refused, "
                    f"first with {code} {reason}.",
                    code,
                    reason,
                )
            if len(answers) < len(text):
                raise AssertionError(
                    f"DTMF '{text}' by SIP INFO on {target.handle}: {len(answers)} of {len(text)} INFO answered "
                    f"within {seconds:g} s."
                )
        else:
            self.ctx.pump()
        logger.info(f"'{target.phone.alias}' sent DTMF '{text}' by {SHOWN[kind]} on {target.handle}.")

    @keyword(name="Wait Until DTMF Received")
    def wait_until_dtmf_received(
        self,
        alias: str,
        digits: str,
        *,
        method: DtmfMethod | None = None,
        call: str | None = None,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> str:
        """Waits until the phone's call (default: its latest) has received ``digits``, in order; returns them.

        Matched digits are taken: the next wait starts after them (also when ``method`` did not match).
        A wrong digit fails at once and is left for the next wait.
        ``method`` (``rfc2833`` or ``info``) also checks how each digit arrived.

        | `Wait Until DTMF Received` | bob | 1234# | timeout=5s |
        | `Wait Until DTMF Received` | bob | 9 | method=info |
        """
        expected = check_digits(digits)
        kind = _method(method) if method is not None else None
        target = self.ctx.call(alias, call, active=False)
        seconds = self.ctx.seconds(timeout)

        def settled() -> bool:
            pending = "".join(d for d, _, _ in target.dtmf[target.dtmf_taken :])
            return len(pending) >= len(expected) or not expected.startswith(pending)

        self.ctx.wait(settled, seconds)
        pending = target.dtmf[target.dtmf_taken : target.dtmf_taken + len(expected)]
        received = "".join(digit for digit, _, _ in pending)
        if received != expected:
            waited = (
                "" if len(received) == len(expected) or not expected.startswith(received) else f" within {seconds:g} s"
            )
            raise AssertionError(
                message
                or f"Call {target.handle} should have received DTMF '{expected}' but got '{received}'{waited}"
                f"{_methods(pending)}."
            )
        target.dtmf_taken += len(expected)  # the digits are taken even if they came the wrong way
        if kind is not None:
            wrong = [(digit, how) for digit, how, _ in pending if how != kind]
            if wrong:
                digit, how = wrong[0]
                raise AssertionError(
                    message or f"DTMF '{digit}' reached {target.handle} by {SHOWN[how]} but {SHOWN[kind]} was expected."
                )
        logger.info(f"Call {target.handle} received DTMF '{received}'{_methods(pending)}.")
        return received

    @keyword(name="Get Received DTMF")
    def get_received_dtmf(self, alias: str, *, call: str | None = None) -> str:
        """Returns every DTMF digit the phone's call (default: its latest) has received so far, in order."""
        self.ctx.pump()
        target = self.ctx.call(alias, call, active=False)
        return "".join(digit for digit, _, _ in target.dtmf)


def _method(value: str) -> str:
    text = str(value).strip().lower().replace(" ", "")
    if text in ("sipinfo", "sip_info"):
        text = "info"
    if text not in METHODS:
        raise ValueError(f"DTMF method '{value}' is not rfc2833 or info.")
    return text


def _methods(pending: list[tuple[str, str, float]]) -> str:
    kinds = sorted({how for _, how, _ in pending})
    return f" (by {' and '.join(SHOWN[k] for k in kinds)})" if kinds else ""
