"""Keywords about the calls themselves: the per-operation time limit, expected rejections, health."""

from __future__ import annotations

import statistics
from datetime import timedelta
from html import escape
from typing import Any

from robot.api import logger
from robotlibcore import keyword
from telco_common.rejection import expect_refusal

from BillingLibrary.keywords.base import BillingComponent


class OperationKeywords(BillingComponent):
    @keyword
    def billing_operations_should_have_completed_within(self, limit: timedelta) -> dict[str, float]:
        """Checks that every billing API call of the current test took less than ``limit``.

        This is the plan's "< 2 s per operation" criterion, measured per call and reported in the log as a
        table. Returns ``count``, ``median_ms``, ``p95_ms`` and ``max_ms``. Fails naming every slow call.

        | `Billing Operations Should Have Completed Within` | 2s |
        """
        operations = self.ctx.operations
        if not operations:
            raise AssertionError("No billing operation was made in this test, so none can be timed.")
        rows = "".join(
            f"<tr><td>{escape(op.label)}</td><td style='text-align:right'>{op.seconds * 1000:.1f}</td></tr>"
            for op in operations
        )
        logger.info(f"<table><tr><th>operation</th><th>ms</th></tr>{rows}</table>", html=True)
        durations = sorted(op.seconds * 1000 for op in operations)
        summary = {
            "count": float(len(durations)),
            "median_ms": round(statistics.median(durations), 1),
            "p95_ms": round(_percentile(durations, 95), 1),
            "max_ms": round(durations[-1], 1),
        }
        logger.info(
            f"{len(durations)} billing operations: median {summary['median_ms']} ms, p95 {summary['p95_ms']} ms, "
            f"max {summary['max_ms']} ms (limit {limit.total_seconds() * 1000:g} ms)."
        )
        slow = [op for op in operations if op.seconds >= limit.total_seconds()]
        if slow:
            listed = "\n".join(f"  {op.label}: {op.seconds * 1000:.0f} ms" for op in slow[:20])
            raise AssertionError(
                f"{len(slow)} of {len(operations)} billing operations should have taken less than "
                f"{limit.total_seconds():g} s but took longer:\n{listed}"
            )
        return summary

    @keyword
    def get_billing_operation_timings(self) -> list[dict[str, Any]]:
        """Returns this test's billing API calls: ``keyword``, ``method``, ``path``, ``status``, ``ms``."""
        return [
            {"keyword": op.keyword, "method": op.method, "path": op.path, "status": op.status, "ms": op.seconds * 1000}
            for op in self.ctx.operations
        ]

    @keyword
    def billing_should_reject(self, status: int, field: str | None, keyword_name: str, *args: Any) -> dict[str, Any]:
        """Runs a BillingLibrary keyword that must be refused by the API with HTTP ``status`` naming ``field``.

        Returns the API's error (``status``, ``code``, ``field``, ``message``). Fails when the keyword succeeds,
        when it fails for another reason, or when the status or field differ. Use ``NONE`` as ``field`` to
        accept any field.

        | ${error}= | `Billing Should Reject` | 409 | email | Create Customer | Ann | ${taken_email} | +254700000009 |
        """
        return expect_refusal(
            "the billing API",
            status,
            field,
            keyword_name,
            args,
            last_error=lambda: self.ctx.last_error,
            forget_error=self._forget_error,
        )

    def _forget_error(self) -> None:
        self.ctx.last_error = None

    @keyword
    def use_billing_token(self, token: str) -> str:
        """Sends later calls with another admin ``token`` (empty for none); returns the one used before.

        Both tokens are masked in the log. Restore the old one in a teardown:

        | ${saved}= | `Use Billing Token` | ${EMPTY} |
        | `Billing Should Reject` | 401 | authorization | Get Dashboard |
        | [Teardown] | `Use Billing Token` | ${saved} |
        """
        previous = self.ctx.token
        self.ctx.set_token(token)
        logger.info("Billing calls now use " + ("another token (***)." if token else "no token."))
        return previous

    @keyword
    def get_billing_health(self) -> dict[str, Any]:
        """Returns the billing service's health document (``status``, ``database``); needs no token."""
        return self.ctx.request("GET", f"{self.ctx.service_root}/health", expected=(200,))


def _percentile(sorted_values: list[float], percent: float) -> float:
    index = max(0, min(len(sorted_values) - 1, round(percent / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]
