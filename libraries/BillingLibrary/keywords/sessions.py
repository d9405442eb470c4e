"""Keywords for internet sessions started from paid vouchers on routers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from assertionengine import AssertionOperator
from robotlibcore import keyword

from BillingLibrary.keywords.base import BillingComponent, listing

SessionStatus = Literal["active", "expired", "terminated"]


class SessionKeywords(BillingComponent):
    @keyword
    def activate_session(self, voucher_id: int, router_id: int) -> dict[str, Any]:
        """Starts a session from a paid (``sold``) voucher on an online router; the voucher becomes ``redeemed``.

        | ${session}= | `Activate Session` | ${voucher}[id] | ${router}[id] |
        """
        return self.ctx.request("POST", "/sessions", json_body={"voucher_id": voucher_id, "router_id": router_id})

    @keyword
    def get_session(self, session_id: int) -> dict[str, Any]:
        """Returns the session with ``session_id``."""
        return self.ctx.request("GET", f"/sessions/{session_id}")

    @keyword
    def get_session_status(
        self,
        session_id: int,
        assertion_operator: AssertionOperator | None = None,
        expected: SessionStatus | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str:
        """Returns the session's status, optionally asserting it (retried until ``timeout``).

        | `Get Session Status` | ${session}[id] | == | active |
        """
        label = message or f"Status of session {session_id}"
        return self._assert(
            lambda: self.get_session(session_id)["status"], assertion_operator, expected, timeout, label
        )

    @keyword
    def list_sessions(
        self, *, router_id: int | None = None, customer_id: int | None = None, status: SessionStatus | None = None
    ) -> list[dict[str, Any]]:
        """Returns the sessions matching every filter given."""
        params = {"router_id": router_id, "customer_id": customer_id, "status": status}
        return listing(self.ctx.request("GET", "/sessions", params=params))

    @keyword
    def terminate_session(self, session_id: int) -> dict[str, Any]:
        """Ends an active session (``terminated``)."""
        return self.ctx.request("POST", f"/sessions/{session_id}/terminate")

    @keyword
    def record_session_usage(self, session_id: int, data_mb: int) -> dict[str, Any]:
        """Adds ``data_mb`` of usage to a session; reaching the package's quota expires it."""
        return self.ctx.request("POST", f"/sessions/{session_id}/usage", json_body={"data_mb": data_mb})
