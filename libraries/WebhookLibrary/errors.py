"""WebhookLibrary's exceptions: misuse is a ``ValueError``, a failed check an ``AssertionError``."""

from __future__ import annotations

from telco_common import TelcoError


class WebhookError(TelcoError):
    """Base of WebhookLibrary's own errors."""


class ReceiverNotFoundError(WebhookError, ValueError):
    """An alias names no started receiver, or no receiver was started at all."""


class ReceiverStartError(WebhookError, ValueError):
    """A receiver could not be started: bad host, port in use, alias already running."""
