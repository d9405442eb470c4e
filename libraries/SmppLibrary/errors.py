"""SmppLibrary's errors: one small hierarchy under `TelcoError` (Robot shows only the message)."""

from __future__ import annotations

from telco_common import TelcoError

from SmppLibrary.codec import describe_status, status_name


class SmppError(TelcoError):
    """Base of SmppLibrary's own errors."""


class SmppConnectionError(SmppError):
    """The link to the SMSC could not be opened, or broke while a keyword waited on it."""


class SmppStatusError(SmppError):
    """The SMSC answered with an error ``command_status``; ``status_name`` holds e.g. ``ESME_RINVPASWD``."""

    def __init__(self, action: str, status: int, hint: str = "") -> None:
        self.status = status
        self.status_name = status_name(status)
        self.action = action
        text = f"{action} failed: {describe_status(status)}."
        super().__init__(f"{text} {hint}".strip())


class CarrierError(SmppError):
    """The carrier SMSC (in-process or remote) could not do what a keyword asked."""
