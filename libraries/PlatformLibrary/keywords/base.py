"""What every PlatformLibrary component shares: the context and the retrying-getter helper."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from assertionengine import AssertionOperator
from telco_common import retry_assertion

from PlatformLibrary.context import PlatformContext


class PlatformComponent:
    """A group of keywords over one part of the platform API."""

    def __init__(self, ctx: PlatformContext) -> None:
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


def listing(body: Any) -> list[dict[str, Any]]:
    """The ``data`` list of a list answer."""
    data = body.get("data", []) if isinstance(body, dict) else []
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def compact(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the ``None`` ones (fields not given)."""
    return {key: value for key, value in values.items() if value is not None}
