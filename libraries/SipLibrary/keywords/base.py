"""What every SipLibrary component shares: the context."""

from __future__ import annotations

from SipLibrary.context import SipContext


class SipComponent:
    """A group of keywords over one concern; all components share one `SipContext`."""

    def __init__(self, ctx: SipContext) -> None:
        self.ctx = ctx
