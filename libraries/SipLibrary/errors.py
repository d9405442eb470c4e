"""SipLibrary's errors: one small hierarchy under `TelcoError` (Robot shows only the message)."""

from __future__ import annotations

from telco_common import TelcoError


class SipError(TelcoError):
    """Base of SipLibrary's own errors: pjsua2 refused something, or a phone or call is not there."""


class SipStatusError(SipError):
    """A SIP request got a final answer other than the one expected; ``status`` and ``reason`` hold it."""

    def __init__(self, message: str, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)


class SipCapacityError(SipError):
    """The request would go beyond what one pjsua2 process holds (call legs, phones); nothing was sent."""
