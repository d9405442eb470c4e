"""Keep secrets out of logs: passwords, API keys and tokens are shown as ``***``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

MASK = "***"
SECRET_HEADERS = frozenset({"authorization", "apikey", "x-api-key", "proxy-authorization", "kong-admin-token"})


def mask_secret(value: object) -> str:
    """Return a mask for a secret value: ``***``, or an empty string when there is no secret."""
    return MASK if value not in (None, "") else ""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` with ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of HTTP headers with credential headers masked (names matched case-insensitively)."""
    return {name: (MASK if name.lower() in SECRET_HEADERS else value) for name, value in headers.items()}
