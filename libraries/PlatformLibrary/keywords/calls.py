"""Keywords for real-time call control: active calls, hang-up, transfer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from assertionengine import AssertionOperator
from robot.api import logger
from robotlibcore import keyword

from PlatformLibrary.context import segment
from PlatformLibrary.keywords.base import PlatformComponent, listing


class CallKeywords(PlatformComponent):
    @keyword
    def get_active_calls(self) -> list[dict[str, Any]]:
        """Returns the account's active calls on every SIP proxy: ``call_id``, ``from``, ``to``, ``state``
        (``trying``, ``ringing``, ``answered``), ``start`` and the ``proxy`` holding the call.

        A proxy that does not answer is logged as a warning; its calls are missing from the list.
        """
        body = self.ctx.request("GET", "/calls", expected=(200,))
        for failure in body.get("unreachable", []) if isinstance(body, dict) else []:
            logger.warn(f"SIP proxy {failure.get('proxy')} did not list its calls: {failure.get('message')}")
        return listing(body)

    @keyword
    def get_call_state(
        self,
        call_id: str,
        assertion_operator: AssertionOperator | None = None,
        expected: str | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str | None:
        """Returns the state of active call ``call_id`` (``None`` when it is not active), optionally asserting it
        and retrying until ``timeout``.

        | `Get Call State` | ${call_id} | == | answered | timeout=5s |
        | `Get Call State` | ${call_id} | == | ${None} | timeout=5s | # until it has ended |
        """

        def read() -> str | None:
            return next((call["state"] for call in self.get_active_calls() if call["call_id"] == call_id), None)

        return self._assert(read, assertion_operator, expected, timeout, message or f"State of call '{call_id}'")

    @keyword
    def get_active_call_count(
        self,
        assertion_operator: AssertionOperator | None = None,
        expected: int | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> int:
        """Returns how many calls of the account are active, optionally asserting it (retried until ``timeout``)."""
        return self._assert(
            lambda: len(self.get_active_calls()), assertion_operator, expected, timeout, message or "Active calls"
        )

    @keyword
    def hang_up_call(self, call_id: str) -> dict[str, Any]:
        """Asks the platform to end active call ``call_id`` (the proxy's ``dlg.end_dlg``); returns its answer.

        The BYEs go out asynchronously: wait for the end with `Get Call State` ``== ${None}``.
        """
        answer: dict[str, Any] = self.ctx.request("DELETE", f"/calls/{segment(call_id)}", expected=(202,))
        return answer

    @keyword
    def transfer_call(self, call_id: str, target: str) -> dict[str, Any]:
        """Asks the platform to transfer call ``call_id`` to ``target`` (a SIP URI, a user or a number).

        | `Transfer Call` | ${call_id} | 254733000002 |
        """
        answer: dict[str, Any] = self.ctx.request(
            "POST", f"/calls/{segment(call_id)}/transfer", json_body={"target": target}, expected=(202,)
        )
        return answer
