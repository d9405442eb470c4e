"""Bounded waits: retry a getter until its inline assertion holds or the timeout runs out.

This is how every asynchronous result (a DLR, a CDR, a billing row, a webhook) is read: no ``Sleep``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from assertionengine import AssertionOperator, verify_assertion

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: timedelta,
    *,
    interval: timedelta = timedelta(milliseconds=100),
    message: str,
) -> T:
    """Call ``condition`` until it returns a truthy value; raise ``AssertionError(message)`` at the timeout.

    Exceptions from ``condition`` count as "not yet" until the timeout; the last one is named in the failure.
    """
    deadline = time.monotonic() + timeout.total_seconds()
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # retried, and reported at the timeout
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" Last error: {last_error}" if last_error else ""
            raise AssertionError(f"{message} (waited {_seconds(timeout)}).{detail}")
        time.sleep(min(interval.total_seconds(), max(0.0, deadline - time.monotonic())))


def retry_assertion(
    getter: Callable[[], T],
    operator: AssertionOperator | None,
    expected: Any,
    *,
    timeout: timedelta,
    message: str = "",
    custom_message: str | None = None,
    interval: timedelta = timedelta(milliseconds=100),
) -> Any:
    """Read a value with ``getter`` and check it with AssertionEngine, retrying until it holds or time runs out.

    Without an operator the first value read is returned. The failure is AssertionEngine's message (which
    quotes expected and actual) with the time waited added.
    """
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        value = getter()
        if operator is None:
            return value
        try:
            return verify_assertion(value, operator, as_type_of(value, expected), message, custom_message)
        except AssertionError as error:
            if time.monotonic() >= deadline:
                if timeout.total_seconds() > 0:
                    raise AssertionError(f"{error} (retried for {_seconds(timeout)})") from None
                raise
        time.sleep(min(interval.total_seconds(), max(0.0, deadline - time.monotonic())))


def as_type_of(value: Any, expected: Any) -> Any:
    """Robot passes expected values as text: read ``"2"`` as ``2`` when the actual value is an int (or Decimal).

    Only text is converted, and only when it parses as the actual value's type; anything else is compared as given.
    """
    if not isinstance(expected, str) or isinstance(value, (str, bool)):
        return expected
    for kind in (int, Decimal, float):
        if isinstance(value, kind):
            try:
                return kind(expected)
            except (ValueError, ArithmeticError):
                return expected
    return expected


def _seconds(timeout: timedelta) -> str:
    return f"{timeout.total_seconds():g} s"
