"""Keywords for the admin dashboard's aggregated figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from assertionengine import AssertionOperator
from robotlibcore import keyword

from BillingLibrary.keywords.base import BillingComponent


class DashboardKeywords(BillingComponent):
    @keyword
    def get_dashboard(self, *, site: str | None = None) -> dict[str, Any]:
        """Returns the dashboard: counts and sums over customers, packages, payments, vouchers, sessions, revenue.

        With ``site`` the figures cover that site only.

        | ${dashboard}= | `Get Dashboard` | site=${site} |
        | Should Be Equal As Integers | ${dashboard}[payments][completed] | 2 |
        """
        return self.ctx.request("GET", "/dashboard", params={"site": site})

    @keyword
    def get_dashboard_figure(
        self,
        figure: str,
        assertion_operator: AssertionOperator | None = None,
        expected: Any = None,
        *,
        site: str | None = None,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> Any:
        """Returns one dashboard figure by its dotted name, optionally asserting it (retried until ``timeout``).

        | `Get Dashboard Figure` | sessions.active | == | 1 | site=${site} |
        | `Get Dashboard Figure` | revenue | == | 50.00 | site=${site} |
        """

        def read() -> Any:
            value: Any = self.get_dashboard(site=site)
            for part in figure.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise ValueError(
                        f"The dashboard has no figure '{figure}'. Use a name such as 'payments.completed'."
                    )
                value = value[part]
            return value

        return self._assert(read, assertion_operator, expected, timeout, message or f"Dashboard figure '{figure}'")
