"""Keywords for calls through the gateway (Kong's proxy): authentication, status and rate-limit checks."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any, Literal

import requests
from robot.api import logger
from robot.api.types import Secret
from robotlibcore import keyword
from telco_common import wait_until

from KongLibrary.keywords.base import KongComponent
from KongLibrary.keywords.credentials import reveal

Window = Literal["second", "minute", "hour", "day", "month", "year"]
WINDOW_HEADER = re.compile(r"^x-ratelimit-(limit|remaining)-(second|minute|hour|day|month|year)$", re.IGNORECASE)
NO_ROUTE = "no route matched"
QUOTED_BODY = 300


class ProxyKeywords(KongComponent):
    @keyword
    def call_through_gateway(
        self,
        method: str,
        path: str,
        *,
        consumer_key: Secret | str | None = None,
        jwt: str | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        params: dict[str, Any] | None = None,
        expected_status: int | None = None,
        host: str | None = None,
        key_name: str = "apikey",
    ) -> requests.Response:
        """Sends ``method`` ``path`` through the gateway (``proxy_url``) and returns the ``requests`` response.

        ``consumer_key`` is sent as the ``key-auth`` header ``key_name`` (``apikey``, Kong's default);
        ``jwt`` as ``Authorization: Bearer``; ``host`` as the ``Host`` header, for routes matched by host.
        Both credentials are masked in the log. With ``expected_status`` a different status fails the
        keyword, quoting the gateway's answer.

        | ${response}= | `Call Through Gateway` | GET | /billing/health | consumer_key=${key} | expected_status=200 |
        | ${response}= | `Call Through Gateway` | POST | /sms/send | jwt=${token} | json=${message} |
        | Should Be Equal | ${response.json()}[status] | queued |
        """
        response = self.ctx.proxy(
            method.upper(),
            path,
            headers=self._headers(headers, consumer_key, jwt, host, key_name),
            params=params,
            json_body=json,
            data=data,
        )
        if expected_status is not None:
            self._check_status(response, expected_status, "")
        return response

    @keyword
    def gateway_response_status_should_be(self, response: requests.Response, status: int, *, message: str = "") -> None:
        """Checks that a response from `Call Through Gateway` has HTTP ``status``; the failure quotes Kong.

        | `Gateway Response Status Should Be` | ${response} | 429 |
        """
        self._check_status(response, status, message)

    @keyword
    def get_rate_limit_headers(self, response: requests.Response) -> dict[str, Any]:
        """Returns the ``rate-limiting`` plugin's headers of a gateway response as numbers.

        ``limit`` and ``remaining`` map each window to its count (``${limits}[remaining][minute]``);
        ``reset`` (seconds until the window resets) and ``retry_after`` (on a 429) are ``None`` when absent.
        """
        limit: dict[str, int] = {}
        remaining: dict[str, int] = {}
        for name, value in response.headers.items():
            match = WINDOW_HEADER.match(name)
            if match:
                target = limit if match[1].lower() == "limit" else remaining
                target[match[2].lower()] = _integer(name, value)
        found = {name.lower(): value for name, value in response.headers.items()}
        return {
            "limit": limit,
            "remaining": remaining,
            "reset": _integer("RateLimit-Reset", found["ratelimit-reset"]) if "ratelimit-reset" in found else None,
            "retry_after": _integer("Retry-After", found["retry-after"]) if "retry-after" in found else None,
        }

    @keyword
    def rate_limit_headers_should_show(
        self,
        response: requests.Response,
        *,
        limit: int | None = None,
        remaining: int | None = None,
        window: Window = "minute",
        message: str = "",
    ) -> dict[str, Any]:
        """Checks the ``rate-limiting`` headers ``X-RateLimit-Limit-<Window>`` and ``X-RateLimit-Remaining-<Window>``.

        Returns what `Get Rate Limit Headers` returns. Fails quoting both values, or listing the rate-limit
        headers present when the window's are missing (is the plugin enabled, for this ``window``?).

        | `Rate Limit Headers Should Show` | ${response} | limit=5 | remaining=4 | window=minute |
        """
        headers = self.get_rate_limit_headers(response)
        failures = []
        for kind, wanted in (("limit", limit), ("remaining", remaining)):
            if wanted is None:
                continue
            header = f"X-RateLimit-{kind.title()}-{window.title()}"
            actual = headers[kind].get(window)
            if actual is None:
                present = ", ".join(sorted(n for n in response.headers if "ratelimit" in n.lower())) or "none"
                failures.append(
                    f"The gateway's answer has no {header} header (rate-limit headers present: {present}). "
                    f"Is the rate-limiting plugin enabled with a '{window}' limit for this call?"
                )
            elif actual != wanted:
                failures.append(f"Rate-limit header {header} should have been {wanted} but it was {actual}.")
        if failures:
            raise AssertionError("\n".join([message, *failures]) if message else "\n".join(failures))
        logger.info(
            f"Rate limits per {window}: limit {headers['limit'].get(window)}, remaining "
            f"{headers['remaining'].get(window)}."
        )
        return headers

    @keyword
    def wait_until_route_answers(
        self,
        path: str,
        *,
        method: str = "GET",
        timeout: timedelta = timedelta(seconds=10),
        expected_status: int | None = None,
        host: str | None = None,
        headers: dict[str, str] | None = None,
        consumer_key: Secret | str | None = None,
        jwt: str | None = None,
        key_name: str = "apikey",
    ) -> requests.Response:
        """Calls ``path`` through the gateway until Kong routes it, and returns the first routed response.

        Kong rebuilds its router asynchronously: for a few seconds after `Create Route` (or a decK sync)
        the proxy answers ``404 {"message": "no Route matched with those values"}``. This keyword retries
        until another answer comes (any status, e.g. 401 from ``key-auth`` counts as routed) or, with
        ``expected_status``, until that status comes. Connection errors are retried too.

        | `Create Route` | billing | paths=${{ ['/billing'] }} |
        | `Wait Until Route Answers` | /billing/health | timeout=15s |
        | `Wait Until Route Answers` | /sms/send | method=POST | expected_status=401 |
        """
        request_headers = self._headers(headers, consumer_key, jwt, host, key_name)
        last: list[requests.Response] = []
        started = time.monotonic()

        def attempt() -> bool:
            # A Response is falsy for 4xx/5xx, so the answer is kept in ``last`` and a bool returned.
            response = self.ctx.proxy(method.upper(), path, headers=request_headers, log=False)
            last[:] = [response]
            routed = not is_no_route(response)
            return routed and (expected_status is None or response.status_code == expected_status)

        wanted = f" with HTTP {expected_status}" if expected_status is not None else ""
        try:
            wait_until(
                attempt,
                timeout,
                interval=timedelta(milliseconds=200),
                message=f"Route {method.upper()} {path} should have answered through the gateway{wanted}",
            )
        except AssertionError as error:
            detail = f" Last answer: {describe(last[0])}." if last else ""
            raise AssertionError(self.ctx.redact(f"{error}{detail}")) from None
        response = last[0]
        logger.info(
            f"Route {method.upper()} {path} answered HTTP {response.status_code} after "
            f"{time.monotonic() - started:.2f} s."
        )
        return response

    # --- helpers -----------------------------------------------------------------------------------
    def _headers(
        self,
        headers: dict[str, str] | None,
        consumer_key: Secret | str | None,
        jwt: str | None,
        host: str | None,
        key_name: str,
    ) -> dict[str, str]:
        merged = {str(name): str(value) for name, value in (headers or {}).items()}
        key = reveal(consumer_key) if consumer_key is not None else None
        if key:
            self.ctx.add_secret(key)
            merged[key_name] = key
        if jwt:
            self.ctx.add_secret(jwt)
            merged["Authorization"] = f"Bearer {jwt}"
        if host:
            merged["Host"] = host
        return merged

    def _check_status(self, response: requests.Response, status: int, message: str) -> None:
        if response.status_code == status:
            return
        request = response.request
        what = f"{request.method} {self.ctx.redact(_path_of(request.url or ''))}"
        text = self.ctx.redact(
            f"{what} through the gateway should have answered HTTP {status} but answered {describe(response)}"
        )
        raise AssertionError(f"{message}\n{text}" if message else text)


def is_no_route(response: requests.Response) -> bool:
    """Kong's answer while no route matches (yet): 404 ``no Route matched with those values``."""
    return response.status_code == 404 and NO_ROUTE in response.text[:500].lower()


def describe(response: requests.Response) -> str:
    """``HTTP 401: No API key found in request``: the status and Kong's ``message`` (or the body, cut)."""
    text = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        text = str(body["message"])
    text = text if len(text) <= QUOTED_BODY else text[:QUOTED_BODY] + " ..."
    return f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code} (empty body)"


def _path_of(url: str) -> str:
    match = re.match(r"^[a-z]+://[^/]+(?P<path>/.*)?$", url)
    return (match["path"] if match else None) or "/"


def _integer(name: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise AssertionError(f"Rate-limit header {name} should be a whole number but it was '{value}'.") from None
