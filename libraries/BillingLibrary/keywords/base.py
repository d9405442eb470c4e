"""What every BillingLibrary component shares: the context and the retrying-getter helper."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from assertionengine import AssertionOperator
from telco_common import retry_assertion

from BillingLibrary.context import BillingContext


class BillingComponent:
    """A group of keywords over one part of the billing API."""

    def __init__(self, ctx: BillingContext) -> None:
        self.ctx = ctx

    def _assert(
        self,
        getter: Callable[[], Any],
        operator: AssertionOperator | None,
        expected: Any,
        timeout: timedelta,
        message: str,
    ) -> Any:
        return retry_assertion(getter, operator, expected, timeout=timeout, message=message)


def money(amount: Decimal | str | int | float) -> str:
    """An amount as the API writes it: a decimal string with two places (``"10.00"``)."""
    value = Decimal(str(amount))
    if not value.is_finite():
        raise ValueError(f"Amount '{amount}' is not a number. Use a decimal such as 10.00.")
    return f"{value.quantize(Decimal('0.01'))}"


def listing(body: dict[str, Any]) -> list[dict[str, Any]]:
    data = body.get("data", [])
    return list(data) if isinstance(data, list) else []
