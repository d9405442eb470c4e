"""The state PlatformLibrary's components share: one HTTP session, the secrets to mask, timings, the last error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import requests
from robot.api import logger
from robot.api.types import Secret
from telco_common.masking import MASK, masked_headers, redact

from PlatformLibrary.errors import PlatformApiError, PlatformUnreachableError

API_KEY_HEADER = "apikey"
LOGGED_BODY = 2000
SECRET_FIELDS = frozenset({"password", "secret", "key", "apikey", "api_key", "token"})


def reveal(value: Secret | str | None) -> str:
    """The text of a secret given as a Robot ``Secret`` or as plain text (``""`` for none)."""
    if value is None:
        return ""
    return value.value if isinstance(value, Secret) else str(value)


def masked_fields(value: Any) -> Any:
    """A JSON value with the values of secret-bearing fields (``password``, ``secret``, ``key``...) as ``***``."""
    if isinstance(value, dict):
        return {
            key: (MASK if str(key).lower() in SECRET_FIELDS and item not in (None, "") else masked_fields(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked_fields(item) for item in value]
    return value


@dataclass(frozen=True)
class Operation:
    """One platform API call, timed."""

    keyword: str
    method: str
    path: str
    status: int
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.keyword}: {self.method} {self.path} -> {self.status}"


class PlatformContext:
    """HTTP access to the platform API through the gateway, the API key masked and every call timed."""

    def __init__(
        self, base_url: str, api_key: Secret | str, timeout: timedelta, headers: dict[str, str] | None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json"})
        self.session.headers.update(headers or {})
        self.secrets: set[str] = set()
        self.api_key = ""
        self.set_api_key(api_key)
        self.operations: list[Operation] = []
        self.current_keyword = "Platform"
        self.last_error: PlatformApiError | None = None

    @property
    def service_root(self) -> str:
        """The base URL without its ``/api/...`` part: where ``/health`` is (through the same gateway route)."""
        return self.base_url.split("/api/", 1)[0]

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        expected: Iterable[int] = (200, 201, 202, 204),
    ) -> Any:
        """Send one request; return the decoded JSON body (``None`` for 204), or raise `PlatformApiError`."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        operation = f"{self.current_keyword} ({method} {path})"
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                url,
                json=json_body,
                params=query,
                data=data,
                headers=headers,
                timeout=self.timeout.total_seconds(),
            )
        except requests.Timeout:
            raise PlatformUnreachableError(
                f"{operation}: the platform API at {self.base_url} did not answer within "
                f"{self.timeout.total_seconds():g} s. Check that it and the gateway run, or raise PLATFORM_TIMEOUT."
            ) from None
        except requests.ConnectionError as error:
            raise PlatformUnreachableError(
                f"{operation}: cannot connect to the platform API at {self.base_url} ({_reason(error)}). "
                "Start the lab (`make lab-up`) or fix PLATFORM_URL in the variables file."
            ) from None
        seconds = time.perf_counter() - started
        self.operations.append(Operation(self.current_keyword, method, path, response.status_code, seconds))
        body = _decode(response)
        logger.info(f"{method} {path} -> {response.status_code} in {seconds * 1000:.1f} ms")
        logger.debug(self._describe(method, url, query, json_body if data is None else data, response, body))
        if response.status_code not in tuple(expected):
            self.last_error = PlatformApiError(
                self.redact(operation), response.status_code, _redacted(body, self.secrets)
            )
            raise self.last_error
        return body

    def set_api_key(self, secret: Secret | str) -> None:
        api_key = reveal(secret)
        self.api_key = api_key
        if api_key:
            self.add_secret(api_key)
            self.session.headers[API_KEY_HEADER] = api_key
        else:
            self.session.headers.pop(API_KEY_HEADER, None)

    def add_secret(self, secret: str | None) -> None:
        """Mask ``secret`` in every later log line (API keys, SIP passwords, webhook secrets)."""
        if secret:
            self.secrets.add(str(secret))

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def reset_operations(self) -> None:
        self.operations = []

    def _describe(
        self, method: str, url: str, query: dict[str, Any], sent: Any, response: requests.Response, body: Any
    ) -> str:
        if isinstance(sent, bytes):
            shown = sent.decode("utf-8", "replace")
        else:
            shown = json.dumps(masked_fields(sent), default=str)
        headers = masked_headers({name: str(value) for name, value in self.session.headers.items()})
        text = (
            f"{method} {url} params={query} headers={headers} body={shown[:LOGGED_BODY]}\n"
            f"-> {response.status_code} {json.dumps(masked_fields(body), default=str)[:LOGGED_BODY]}"
        )
        return self.redact(text)


def segment(value: str | int) -> str:
    """A path segment, quoted (a SIP Call-ID may hold ``@``, ``/`` or ``;``)."""
    return quote(str(value), safe="")


def _decode(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return {"error": {"message": response.text[:500] or response.reason}}


def _redacted(body: Any, secrets: set[str]) -> Any:
    if not secrets:
        return body
    try:
        return json.loads(redact(json.dumps(body), secrets))
    except (TypeError, ValueError):
        return body


def _reason(error: Exception) -> str:
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if marker in text:
            return marker
    return text[:200]
