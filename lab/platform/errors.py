"""The service's own errors: each one becomes the contract's error body with its status and ``field``."""

from __future__ import annotations


class ApiError(Exception):
    """A rejected request: ``status``/``code`` for the response, ``field`` names the offending request field."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, field: str | None, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.headers = headers


class BadRequestError(ApiError):
    """400: the body cannot be read at all (not JSON, not an object, not CSV)."""

    status = 400
    code = "bad_request"


class UnauthorizedError(ApiError):
    """401: no customer account: the gateway did not name a consumer."""

    status = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    """403: the account may not do this yet (e.g. a trunk before onboarding), or a DLR callback's token is wrong."""

    status = 403
    code = "forbidden"


class InvalidError(ApiError):
    """422: a field's value is not acceptable."""

    status = 422
    code = "validation_error"


class NotFoundError(ApiError):
    """404: an id in the path or in the body names nothing of this account."""

    status = 404
    code = "not_found"


class ConflictError(ApiError):
    """409: a state or uniqueness conflict."""

    status = 409
    code = "conflict"


class RateLimitedError(ApiError):
    """429: the SMS gateway refused the platform's throughput."""

    status = 429
    code = "rate_limited"


class UpstreamError(ApiError):
    """502: a platform component behind the API (a SIP proxy, the SMS gateway) refused or did not answer."""

    status = 502
    code = "upstream_error"


class UnavailableError(ApiError):
    """503: the database does not answer."""

    status = 503
    code = "internal_error"
