"""Keywords for the SMS gateway's HTTP API in Jasmin's shape (``/send``), with the password kept out of logs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

import requests
from robot.api import logger
from robotlibcore import keyword
from telco_common.masking import redact

from SmppLibrary.errors import SmppError
from SmppLibrary.keywords.base import SmppComponent

SUCCESS = re.compile(r'^Success "([^"]+)"')


class SmsHttpError(SmppError):
    """The gateway's HTTP API refused a message; the message quotes the gateway's answer."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"The SMS gateway's HTTP API answered HTTP {status}: {body}")


class HttpApiKeywords(SmppComponent):
    @keyword(name="Send SMS Over HTTP")
    def send_sms_over_http(
        self,
        url: str,
        username: str,
        password: str,
        to: str,
        content: str,
        *,
        sender: str | None = None,
        coding: int | None = None,
        dlr_url: str | None = None,
        dlr_level: Literal[1, 2, 3] = 3,
        dlr_method: Literal["GET", "POST"] = "POST",
        timeout: timedelta | None = None,
    ) -> str:
        """Sends an SMS through the gateway's HTTP API (Jasmin's ``/send``) and returns its message id.

        ``url`` is the API's base (``http://127.0.0.1:1401``). With ``dlr_url`` the gateway posts receipts
        there: level 1 when the carrier accepts the message, 2 for the final state, 3 for both. The password
        never appears in the log. A refusal (``Error "..."``) fails with the gateway's own words; use
        `Send SMS Over HTTP Should Be Refused` to expect one.

        | ${id}= | `Send SMS Over HTTP` | ${SMS_HTTP_URL} | ${user} | ${pw} | 254700000001 | Hi | dlr_url=${hook} |
        """
        status, body = self._send(
            url, username, password, to, content, sender, coding, dlr_url, dlr_level, dlr_method, timeout
        )
        match = SUCCESS.match(body)
        if status != 200 or not match:
            raise SmsHttpError(status, body)
        logger.info(f"HTTP /send to {to}: message id {match.group(1)}")
        return match.group(1)

    @keyword(name="Send SMS Over HTTP Should Be Refused")
    def send_sms_over_http_should_be_refused(
        self,
        url: str,
        username: str,
        password: str,
        to: str,
        content: str,
        status: int,
        *,
        expected_text: str | None = None,
        timeout: timedelta | None = None,
    ) -> str:
        """Sends through the HTTP API expecting HTTP ``status`` and an ``Error "..."`` body; returns the body.

        ``expected_text``, when given, must appear in the body.

        | `Send SMS Over HTTP Should Be Refused` | ${SMS_HTTP_URL} | ${user} | wrong | 254700000001 | Hi | 403 |
        """
        got, body = self._send(url, username, password, to, content, None, None, None, 3, "POST", timeout)
        if got != status or not body.startswith("Error"):
            raise AssertionError(
                f"HTTP /send should have been refused with HTTP {status} and 'Error ...' "
                f"but answered HTTP {got}: {body}"
            )
        if expected_text and expected_text not in body:
            raise AssertionError(f"HTTP /send refusal should contain '{expected_text}' but was: {body}")
        return body

    def _send(
        self,
        url: str,
        username: str,
        password: str,
        to: str,
        content: str,
        sender: str | None,
        coding: int | None,
        dlr_url: str | None,
        dlr_level: int,
        dlr_method: str,
        timeout: timedelta | None,
    ) -> tuple[int, str]:
        fields: dict[str, str] = {"username": username, "password": password, "to": to, "content": content}
        if sender:
            fields["from"] = sender
        if coding is not None:
            fields["coding"] = str(coding)
        if dlr_url:
            fields.update({"dlr": "yes", "dlr-url": dlr_url, "dlr-level": str(dlr_level), "dlr-method": dlr_method})
        endpoint = f"{url.rstrip('/')}/send"
        try:
            response = requests.post(endpoint, data=fields, timeout=self.ctx.seconds(timeout) or 10)
        except requests.RequestException as error:
            raise SmppError(
                f"Cannot reach the SMS gateway's HTTP API at {endpoint}: {redact(str(error), [password])}. "
                "Check SMS_HTTP_URL in the variables file and that the gateway runs."
            ) from None
        body = response.text.strip()
        logger.debug(redact(f"POST {endpoint} fields={fields} -> {response.status_code} {body[:500]}", [password]))
        return response.status_code, body
