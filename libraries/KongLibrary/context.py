"""The state KongLibrary's components share: one HTTP session, the call timings, the secrets to mask."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote

import requests
from robot.api import logger
from telco_common.masking import masked_headers, redact

from KongLibrary.errors import KongApiError, KongUnreachableError

Api = Literal["admin", "proxy"]
ADMIN_TOKEN_HEADER = "Kong-Admin-Token"
PAGE_SIZE = 1000  # Kong's largest page
MAX_PAGES = 1000  # a runaway ``offset`` loop ends here
LOGGED_BODY = 2000


@dataclass(frozen=True)
class Operation:
    """One timed HTTP call: to the Admin API or through the gateway."""

    keyword: str
    api: Api
    method: str
    path: str
    status: int
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.keyword}: {self.method} {self.path} -> {self.status}"


class KongContext:
    """HTTP access to Kong's Admin API and proxy, with the admin token masked and every call timed."""

    def __init__(self, admin_url: str, proxy_url: str | None, admin_token: str, timeout: timedelta) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.proxy_url = proxy_url.rstrip("/") if proxy_url else None
        self.admin_token = admin_token
        self.timeout = timeout
        self.session = requests.Session()
        self.secrets: set[str] = set()
        self.add_secret(admin_token)
        self.operations: list[Operation] = []
        self.current_keyword = "Kong"
        self.last_error: KongApiError | None = None
        self.default_tags: list[str] = []

    # --- Admin API -------------------------------------------------------------------------------
    def admin(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        expected: Iterable[int] = (200, 201, 204),
    ) -> dict[str, Any]:
        """Send one Admin API request; return the decoded JSON object (``{}`` for 204), or raise `KongApiError`."""
        body = _decode(self.admin_response(method, path, json_body=json_body, params=params, expected=expected))
        if isinstance(body, dict):
            return body
        return {} if body in (None, "") else {"data": body}

    def admin_response(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        expected: Iterable[int] = (200, 201, 204),
    ) -> requests.Response:
        """Send one Admin API request and return the response if its status is ``expected``."""
        headers = {"Accept": "application/json"}
        if self.admin_token:
            headers[ADMIN_TOKEN_HEADER] = self.admin_token
        query = {key: value for key, value in (params or {}).items() if value is not None}
        url = f"{self.admin_url}{path}"
        operation = self.current_keyword
        shown = self.redact(path)  # a key-auth key may be a path segment
        started = time.perf_counter()
        try:
            response = self.session.request(
                method, url, json=json_body, params=query, headers=headers, timeout=self.timeout.total_seconds()
            )
        except requests.Timeout:
            raise KongUnreachableError(
                f"{operation} ({method} {shown}): Kong's Admin API at {self.admin_url} did not answer within "
                f"{_seconds(self.timeout)}. Check that Kong runs, or raise KONG_TIMEOUT."
            ) from None
        except requests.ConnectionError as error:
            raise KongUnreachableError(
                f"{operation} ({method} {shown}): cannot connect to Kong's Admin API at {self.admin_url} "
                f"({_reason(error)}). Start the lab (`make lab-up`) or fix KONG_ADMIN_URL in the variables file."
            ) from None
        seconds = time.perf_counter() - started
        self.operations.append(Operation(operation, "admin", method, shown, response.status_code, seconds))
        logger.info(f"{method} {shown} -> {response.status_code} in {seconds * 1000:.1f} ms")
        logger.debug(self._describe(method, response, headers, json_body, _decode(response)))
        if response.status_code not in tuple(expected):
            self.last_error = KongApiError(
                operation, response.status_code, _decode(response), request=f"{method} {shown}", secrets=self.secrets
            )
            raise self.last_error
        return response

    def list_all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """GET a collection and follow Kong's ``offset`` paging to the end; return every entity."""
        query = dict(params or {})
        query.setdefault("size", PAGE_SIZE)
        entities: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            body = self.admin("GET", path, params=query, expected=(200,))
            data = body.get("data", [])
            entities.extend(item for item in (data if isinstance(data, list) else []) if isinstance(item, dict))
            offset = body.get("offset")
            if not offset:
                return entities
            query["offset"] = offset
        raise KongApiError(self.current_keyword, 200, {"message": f"{path} kept answering another page"})

    # --- the proxy -------------------------------------------------------------------------------
    def proxy(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        data: Any = None,
        log: bool = True,
    ) -> requests.Response:
        """Send one request through the gateway and return the response, whatever its status."""
        if not self.proxy_url:
            raise ValueError(
                f"{self.current_keyword} calls through the gateway, but KongLibrary was imported without "
                "proxy_url. Import it with proxy_url=${KONG_PROXY_URL}."
            )
        url = f"{self.proxy_url}{path if path.startswith('/') else '/' + path}"
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                params=params,
                json=json_body,
                data=data,
                timeout=self.timeout.total_seconds(),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise KongUnreachableError(
                f"{self.current_keyword} ({method} {self.redact(path)}): the gateway at {self.proxy_url} did not "
                f"answer within {_seconds(self.timeout)}. A slow upstream? Raise KONG_TIMEOUT or check the service."
            ) from None
        except requests.ConnectionError as error:
            raise KongUnreachableError(
                f"{self.current_keyword} ({method} {self.redact(path)}): cannot connect to the gateway at "
                f"{self.proxy_url} ({_reason(error)}). Start the lab (`make lab-up`) or fix KONG_PROXY_URL in the "
                "variables file."
            ) from None
        seconds = time.perf_counter() - started
        shown = self.redact(path)
        self.operations.append(Operation(self.current_keyword, "proxy", method, shown, response.status_code, seconds))
        if log:
            logger.info(f"{method} {shown} via the gateway -> {response.status_code} in {seconds * 1000:.1f} ms")
            logger.debug(self._describe(method, response, headers or {}, json_body, _decode(response)))
        return response

    # --- helpers ---------------------------------------------------------------------------------
    def add_secret(self, secret: str | None) -> None:
        """Mask ``secret`` in every later log line (API keys, JWT secrets and tokens, the admin token)."""
        if secret:
            self.secrets.add(str(secret))

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def with_default_tags(self, tags: list[str] | None) -> list[str] | None:
        """The entity's own ``tags`` plus the library's default tags (see `Set Default Kong Tags`)."""
        merged = list(dict.fromkeys([*(tags or []), *self.default_tags]))
        return merged or None

    def reset_operations(self) -> None:
        self.operations = []

    def _describe(
        self, method: str, response: requests.Response, headers: dict[str, str], json_body: Any, body: Any
    ) -> str:
        text = (
            f"{method} {response.url}\nheaders={masked_headers(headers)} body={json.dumps(json_body, default=str)}\n"
            f"-> {response.status_code} headers={masked_headers(dict(response.headers))}\n"
            f"{json.dumps(body, default=str)[:LOGGED_BODY]}"
        )
        return self.redact(text)


def segment(value: str | int) -> str:
    """One URL path segment: an id, a name or ``host:port``, percent-encoded."""
    text = str(value)
    if not text:
        raise ValueError("An empty id or name cannot address a Kong entity.")
    return quote(text, safe=":@")


def _decode(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text[:LOGGED_BODY]


def _reason(error: Exception) -> str:
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if marker in text:
            return marker
    return text[:200]


def _seconds(timeout: timedelta) -> str:
    return f"{timeout.total_seconds():g} s"
