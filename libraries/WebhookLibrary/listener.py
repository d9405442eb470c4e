"""Auto-stop: a library listener that stops receivers when the suite or test that started them ends."""

from __future__ import annotations

from typing import Any

from WebhookLibrary.context import WebhookContext


class AutoStopListener:
    """Tracks the running suite and test; with ``auto_stop`` on, their receivers stop when they end.

    A receiver started in a test stops at the end of that test; one started in a suite setup (or
    ``__init__.robot``) stops when that suite ends. Either way it is then forgotten, alias and requests.
    With ``auto_stop=False`` only `Stop Webhook Receiver` and `Stop All Webhook Receivers` stop
    receivers; all of them stop when the library is closed.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: WebhookContext) -> None:
        self.ctx = ctx

    def _start_suite(self, data: Any, result: Any) -> None:
        self.ctx.scopes.append(data.id)

    def _end_suite(self, data: Any, result: Any) -> None:
        self._leave(data.id)

    def _start_test(self, data: Any, result: Any) -> None:
        self.ctx.scopes.append(data.id)

    def _end_test(self, data: Any, result: Any) -> None:
        self._leave(data.id)

    def _close(self) -> None:
        self.ctx.stop_all()

    def _leave(self, scope: str) -> None:
        if self.ctx.auto_stop:
            self.ctx.stop_scope(scope)
        if scope in self.ctx.scopes:
            del self.ctx.scopes[self.ctx.scopes.index(scope) :]
