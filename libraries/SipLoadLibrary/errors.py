"""SipLoadLibrary's errors: one small hierarchy under `TelcoError` (Robot shows only the message)."""

from __future__ import annotations

from telco_common import TelcoError


class SippError(TelcoError):
    """Base of SipLoadLibrary's own errors: SIPp could not be started, or stopped with a fatal error."""


class SippTargetError(SippError):
    """Nothing answers at the SIP target the UAC should call."""


class SippTimeoutError(SippError):
    """A SIPp instance was still running when a keyword's ``timeout`` ran out."""
