"""PlatformLibrary's errors."""

from __future__ import annotations

from typing import Any

from telco_common import TelcoError


class PlatformError(TelcoError):
    """Base of PlatformLibrary's own errors."""


class PlatformApiError(PlatformError):
    """The platform API (or the gateway in front of it) answered with an error status; quotes its message."""

    def __init__(self, operation: str, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        if not isinstance(error, dict):
            error = {}
        self.operation = operation
        self.status = status
        self.code: str = str(error.get("code") or "")
        self.field: str | None = error.get("field")
        self.api_message: str = str(error.get("message") or "")
        if not self.api_message and isinstance(body, dict) and body.get("message"):
            self.api_message = f"the gateway answered: {body['message']}"  # Kong's own {"message": ...}
        if not self.api_message:
            self.api_message = str(body)[:500]
        field = f" (field '{self.field}')" if self.field else ""
        super().__init__(f"{operation} failed with HTTP {status}{field}: {self.api_message}")

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "field": self.field, "message": self.api_message}


class PlatformUnreachableError(PlatformError):
    """Neither the gateway nor the platform API answered."""
