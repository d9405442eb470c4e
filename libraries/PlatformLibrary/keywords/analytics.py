"""Keywords for SMS analytics."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from assertionengine import AssertionOperator
from robotlibcore import keyword

from PlatformLibrary.keywords.base import PlatformComponent

FIGURES = ("sent", "delivered", "failed", "pending", "delivery_rate", "latency_ms.p50", "latency_ms.p95")


class AnalyticsKeywords(PlatformComponent):
    @keyword(name="Get SMS Analytics")
    def get_sms_analytics(self, *, since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
        """Returns the account's SMS figures over messages created in ``[since, until)``: ``sent``, ``delivered``,
        ``failed``, ``pending``, ``delivery_rate`` (0 to 1) and ``latency_ms`` (``p50``, ``p95``, ``samples``:
        send to final receipt of delivered messages).

        | ${figures}= | `Get SMS Analytics` | since=${started} |
        """
        params = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None}
        figures: dict[str, Any] = self.ctx.request("GET", "/analytics/sms", params=params, expected=(200,))
        return figures

    @keyword(name="Get SMS Analytics Figure")
    def get_sms_analytics_figure(
        self,
        figure: str,
        assertion_operator: AssertionOperator | None = None,
        expected: Any = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> Any:
        """Returns one figure (``sent``, ``delivered``, ``failed``, ``pending``, ``delivery_rate``,
        ``latency_ms.p50``, ``latency_ms.p95``), optionally asserting it (re-read until ``timeout``).

        | `Get SMS Analytics Figure` | delivered | >= | 3 | since=${started} | timeout=10s |
        | `Get SMS Analytics Figure` | latency_ms.p95 | < | 500 | since=${started} |
        """
        if figure not in FIGURES:
            raise ValueError(f"SMS analytics have no figure '{figure}'; use one of {', '.join(FIGURES)}.")

        def read() -> Any:
            value: Any = self.get_sms_analytics(since=since, until=until)
            for part in figure.split("."):
                value = value[part]
            return value

        return self._assert(read, assertion_operator, expected, timeout, message or f"SMS analytics '{figure}'")
