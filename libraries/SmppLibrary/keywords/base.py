"""What every SmppLibrary component shares: the context."""

from __future__ import annotations

from SmppLibrary.context import SmppContext


class SmppComponent:
    """A group of keywords over one concern; all components share one `SmppContext`."""

    def __init__(self, ctx: SmppContext) -> None:
        self.ctx = ctx
