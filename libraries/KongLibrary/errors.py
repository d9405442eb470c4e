"""KongLibrary's errors: the Admin API's and the gateway's refusals quoted, and what is missing to run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from telco_common import TelcoError, redact

MAX_DETAIL = 1500


class KongError(TelcoError):
    """Base of KongLibrary's own errors."""


class KongApiError(KongError):
    """The Admin API answered with an error status; the message quotes Kong's ``name``, ``fields`` or ``message``.

    ``Create Route failed with HTTP 400 (schema violation): paths: must start with /``
    """

    def __init__(
        self, operation: str, status: int, body: Any, *, request: str = "", secrets: Iterable[str] = ()
    ) -> None:
        self.operation = operation
        self.status = status
        self.body = body
        info = body if isinstance(body, dict) else {}
        self.name: str = str(info.get("name") or "")
        self.api_message: str = str(info.get("message") or "")
        fields = info.get("fields")
        self.fields: dict[str, Any] = fields if isinstance(fields, dict) else {}
        self.detail = kong_error_detail(body)
        if status == 404 and request:
            self.detail = f"{self.detail} ({request})"
        self.detail = redact(self.detail, secrets)  # a unique violation may quote an API key
        name = f" ({self.name})" if self.name else ""
        super().__init__(f"{operation} failed with HTTP {status}{name}: {self.detail}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "name": self.name,
            "message": self.api_message,
            "fields": self.fields,
            "detail": self.detail,
        }


class KongUnreachableError(KongError):
    """The Admin API or the proxy did not answer at all."""


class KongToolMissingError(KongError):
    """A command-line tool the keyword needs (decK) is not installed."""


class KongDeckError(KongError):
    """decK ran but failed or did not finish in time."""


def kong_error_detail(body: Any) -> str:
    """Kong's error body as one line: the schema violation's fields, else its ``message``, else the raw body.

    Kong answers ``{"code": 2, "name": "schema violation", "message": "...", "fields": {"paths": [...]}}``;
    the fields name what to fix, so they are preferred to the summary message for schema violations.
    """
    if body is None:
        return "(empty body)"
    if not isinstance(body, dict):
        return _cut(str(body).strip() or "(empty body)")
    fields = body.get("fields")
    name = str(body.get("name") or "")
    if isinstance(fields, dict) and fields and ("schema violation" in name or body.get("code") == 2):
        flat = "; ".join(_flatten_fields(fields))
        if flat:
            return _cut(flat)
    message = body.get("message")
    if message:
        return _cut(str(message))
    return _cut(str(body) if body else "(empty body)")


def _flatten_fields(fields: Any, prefix: str = "") -> list[str]:
    """``{"config": {"minute": "expected a number"}}`` -> ``["config.minute: expected a number"]``."""
    if isinstance(fields, dict):
        out: list[str] = []
        for key, value in fields.items():
            label = prefix if key == "@entity" else (f"{prefix}.{key}" if prefix else str(key))
            out.extend(_flatten_fields(value, label))
        return out
    if isinstance(fields, list):
        # Kong reports array items by position (``[null, "bad"]``); a one-item array reads as the field itself.
        if len(fields) == 1:
            return _flatten_fields(fields[0], prefix)
        out = []
        for index, item in enumerate(fields, start=1):
            out.extend(_flatten_fields(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    if fields is None:
        return []
    return [f"{prefix}: {fields}" if prefix else str(fields)]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL] + " ..."
