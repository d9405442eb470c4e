"""Keywords for the routers (hotspot access points) sessions run on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from assertionengine import AssertionOperator
from robotlibcore import keyword

from BillingLibrary.keywords.base import BillingComponent, listing

RouterStatus = Literal["online", "offline"]


class RouterKeywords(BillingComponent):
    @keyword
    def create_router(self, name: str, ip: str, site: str, *, status: RouterStatus = "online") -> dict[str, Any]:
        """Registers a router with its management IP address and site.

        | ${router}= | `Create Router` | ap-1 | 100.64.0.10 | nairobi-1 |
        """
        body = {"name": name, "ip": ip, "site": site, "status": status}
        return self.ctx.request("POST", "/routers", json_body=body)

    @keyword
    def get_router(self, router_id: int) -> dict[str, Any]:
        """Returns the router, with its current ``active_sessions`` count."""
        return self.ctx.request("GET", f"/routers/{router_id}")

    @keyword
    def list_routers(self, *, site: str | None = None, status: RouterStatus | None = None) -> list[dict[str, Any]]:
        """Returns the routers matching every filter given."""
        return listing(self.ctx.request("GET", "/routers", params={"site": site, "status": status}))

    @keyword
    def set_router_status(self, router_id: int, status: RouterStatus) -> dict[str, Any]:
        """Marks a router ``online`` or ``offline``; no session can start on an offline router."""
        return self.ctx.request("PATCH", f"/routers/{router_id}", json_body={"status": status})

    @keyword
    def get_router_active_sessions(
        self,
        router_id: int,
        assertion_operator: AssertionOperator | None = None,
        expected: int | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> int:
        """Returns the number of active sessions on a router, optionally asserting it (retried until ``timeout``).

        | `Get Router Active Sessions` | ${router}[id] | == | 1 | timeout=5s |
        """
        label = message or f"Active sessions on router {router_id}"
        return self._assert(
            lambda: int(self.get_router(router_id)["active_sessions"]), assertion_operator, expected, timeout, label
        )
