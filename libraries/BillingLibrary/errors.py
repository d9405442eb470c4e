"""BillingLibrary's errors."""

from __future__ import annotations

from typing import Any

from telco_common import TelcoError


class BillingError(TelcoError):
    """Base of BillingLibrary's own errors."""


class BillingApiError(BillingError):
    """The billing API answered with an error status; the message quotes the API's own message."""

    def __init__(self, operation: str, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.operation = operation
        self.status = status
        self.code: str = error.get("code", "") if isinstance(error, dict) else ""
        self.field: str | None = error.get("field") if isinstance(error, dict) else None
        self.api_message: str = error.get("message", "") if isinstance(error, dict) else ""
        if not self.api_message:
            self.api_message = str(body)[:500]
        field = f" (field '{self.field}')" if self.field else ""
        super().__init__(f"{operation} failed with HTTP {status}{field}: {self.api_message}")

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "field": self.field, "message": self.api_message}


class BillingUnreachableError(BillingError):
    """The billing API did not answer at all."""
