"""Run a keyword that an HTTP API must refuse, and check the refusal's status and the field it names.

Shared by the libraries whose APIs answer errors as ``{"error": {"status", "code", "field", "message"}}``
(the billing service and the platform API): their contexts remember the last API error they raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from robot.api import logger
from robot.libraries.BuiltIn import BuiltIn


class ApiRefusal(Protocol):
    """What a library's API error tells about a refusal."""

    status: int
    field: str | None
    api_message: str

    def as_dict(self) -> dict[str, Any]: ...


def expect_refusal(
    api: str,
    status: int,
    field: str | None,
    keyword_name: str,
    args: tuple[Any, ...],
    *,
    last_error: Callable[[], ApiRefusal | None],
    forget_error: Callable[[], None],
) -> dict[str, Any]:
    """Run ``keyword_name`` with ``args``; it must fail because ``api`` answered ``status`` naming ``field``.

    ``field`` ``None``, empty or ``NONE`` accepts any field. Returns the refusal as a dictionary.
    """
    if field is not None and field.upper() in ("", "NONE"):
        field = None
    forget_error()
    try:
        BuiltIn().run_keyword(keyword_name, *args)
    except Exception as failure:
        error = last_error()
        if error is None:
            raise AssertionError(
                f"'{keyword_name}' should have been rejected by {api} with HTTP {status}, "
                f"but it failed before an answer: {failure}"
            ) from None
        return check_refusal(keyword_name, error, status, field)
    naming = f" naming field '{field}'" if field else ""
    raise AssertionError(
        f"'{keyword_name}' should have been rejected by {api} with HTTP {status}{naming}, but it succeeded."
    )


def check_refusal(keyword_name: str, error: ApiRefusal, status: int, field: str | None) -> dict[str, Any]:
    """Check a refusal's status and field; log it and return it as a dictionary."""
    if error.status != status:
        raise AssertionError(
            f"'{keyword_name}' should have been rejected with HTTP {status} but got HTTP {error.status}: "
            f"{error.api_message}"
        )
    if field is not None and error.field != field:
        raise AssertionError(
            f"'{keyword_name}' should have been rejected naming field '{field}' but the API named "
            f"'{error.field}': {error.api_message}"
        )
    logger.info(f"Rejected as expected: HTTP {error.status} field '{error.field}': {error.api_message}")
    return error.as_dict()
