"""The state BillingLibrary's components share: one HTTP session, the operation timings, the last error."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from robot.api import logger
from telco_common.masking import redact

from BillingLibrary.errors import BillingApiError, BillingUnreachableError


@dataclass(frozen=True)
class Operation:
    """One billing API call as the plan's "< 2 s per operation" criterion sees it."""

    keyword: str
    method: str
    path: str
    status: int
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.keyword}: {self.method} {self.path} -> {self.status}"


class BillingContext:
    """HTTP access to the billing API with the token masked in every log line and every call timed."""

    def __init__(self, base_url: str, token: str, timeout: timedelta) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json"})
        self._secrets: set[str] = set()
        self.set_token(token)
        self.operations: list[Operation] = []
        self.current_keyword = "Billing"
        self.last_error: BillingApiError | None = None

    @property
    def service_root(self) -> str:
        """The service's root URL: ``BILLING_URL`` without its ``/api/...`` prefix (where ``/health`` is)."""
        return self.base_url.split("/api/", 1)[0]

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        expected: tuple[int, ...] = (200, 201),
    ) -> dict[str, Any]:
        """Send one request; return the decoded JSON body, or raise `BillingApiError` quoting the API."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        operation = f"{self.current_keyword} ({method} {path})"
        started = time.perf_counter()
        try:
            response = self.session.request(
                method, url, json=json_body, params=query, headers=headers, timeout=self.timeout.total_seconds()
            )
        except requests.Timeout:
            raise BillingUnreachableError(
                f"{operation}: the billing API at {self.base_url} did not answer within "
                f"{self.timeout.total_seconds():g} s. Check that it runs, or raise BILLING_TIMEOUT."
            ) from None
        except requests.ConnectionError as error:
            raise BillingUnreachableError(
                f"{operation}: cannot connect to the billing API at {self.base_url} ({_reason(error)}). "
                "Start the lab (`make lab-up`) or fix BILLING_URL in the variables file."
            ) from None
        seconds = time.perf_counter() - started
        self.operations.append(Operation(self.current_keyword, method, path, response.status_code, seconds))
        body = _decode(response)
        logger.info(f"{method} {path} -> {response.status_code} in {seconds * 1000:.1f} ms")
        logger.debug(self._describe(method, url, query, json_body, response, body))
        if response.status_code not in expected:
            self.last_error = BillingApiError(operation, response.status_code, body)
            raise self.last_error
        return body if isinstance(body, dict) else {"data": body}

    def set_token(self, token: str) -> None:
        self.token = token
        if token:
            self._secrets.add(token)
            self.session.headers["Authorization"] = f"Bearer {token}"
        else:
            self.session.headers.pop("Authorization", None)

    def reset_operations(self) -> None:
        self.operations = []

    def _describe(
        self, method: str, url: str, query: dict[str, Any], json_body: Any, response: requests.Response, body: Any
    ) -> str:
        text = (
            f"{method} {url} params={query} body={json.dumps(json_body)}\n"
            f"-> {response.status_code} {json.dumps(body)[:2000]}"
        )
        return redact(text, self._secrets)


def _decode(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"error": {"message": response.text[:500] or response.reason}}


def _reason(error: Exception) -> str:
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if marker in text:
            return marker
    return text[:200]
