"""The service's own errors: each one becomes the contract's error body with its status and ``field``."""

from __future__ import annotations


class ApiError(Exception):
    """A rejected request: ``status``/``code`` for the response, ``field`` names the offending request field."""

    status: int = 400
    code: str = "validation_error"

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class InvalidError(ApiError):
    """422: a field's value is not acceptable (range, format, insufficient balance, wrong amount)."""

    status = 422
    code = "validation_error"


class NotFoundError(ApiError):
    """404: an id in the path or in the body names nothing."""

    status = 404
    code = "not_found"


class ConflictError(ApiError):
    """409: a state or uniqueness conflict."""

    status = 409
    code = "conflict"


class UnavailableError(ApiError):
    """503: a dependency (the database) does not answer."""

    status = 503
    code = "internal_error"


class InjectedFaultError(RuntimeError):
    """Raised on purpose by the lab-only fault injection to prove that a failure part-way rolls back."""
