"""The SMS gateway's HTTP API in Jasmin's shape: ``POST /send`` with the platform's account, receipts by ``dlr-url``.

Every message asks for ``dlr-level`` 3 (a level-1 callback when the carrier accepts it, a level-2 callback with
its final state), posted back to the platform's own ``/internal/dlr/{sms_id}`` with a per-message token.
"""

from __future__ import annotations

import logging
import re

import requests

from lab.platform.config import SmsGateway

log = logging.getLogger("lab.platform.sms")

SUCCESS = re.compile(r'^Success "([^"]+)"')
ERROR = re.compile(r'^Error "(.*)"$', re.DOTALL)
# GSM 03.38 default alphabet and its extension table (characters after ESC count twice)
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"
CODINGS = {"gsm7": 0, "ucs2": 8}


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 default alphabet or its extension."""
    return all(char in GSM_BASIC or char in GSM_EXTENSION for char in text)


def pick_coding(text: str, wanted: str) -> str:
    """``gsm7`` or ``ucs2`` for ``wanted`` ``auto``; a ``ValueError`` when ``gsm7`` cannot carry ``text``."""
    if wanted == "auto":
        return "gsm7" if is_gsm7(text) else "ucs2"
    if wanted == "gsm7" and not is_gsm7(text):
        bad = next(char for char in text if char not in GSM_BASIC and char not in GSM_EXTENSION)
        raise ValueError(f"cannot be sent in coding gsm7: {bad!r} is not in GSM 03.38; use coding ucs2 or auto")
    return wanted


class GatewayRefusedError(Exception):
    """The gateway answered but refused: its HTTP status and its own words (``Error "..."``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class GatewayUnreachableError(Exception):
    """The gateway did not answer."""


class SmsGatewayClient:
    def __init__(self, gateway: SmsGateway, timeout: float) -> None:
        self.gateway = gateway
        self.timeout = timeout
        self._session = requests.Session()

    @property
    def url(self) -> str:
        return f"{self.gateway.http_url}/send"

    def send(self, to: str, sender: str, text: str, coding: str, dlr_url: str) -> str:
        """Submit one message; return the gateway's id, or raise `GatewayRefusedError`/`GatewayUnreachableError`."""
        form = {
            "username": self.gateway.username,
            "password": self.gateway.password,
            "to": to.lstrip("+"),
            "from": sender,
            "content": text,
            "coding": str(CODINGS[coding]),
            "dlr": "yes",
            "dlr-url": dlr_url,
            "dlr-level": "3",
            "dlr-method": "POST",
        }
        try:
            response = self._session.post(self.url, data=form, timeout=self.timeout)
        except requests.RequestException as error:
            raise GatewayUnreachableError(
                f"the SMS gateway at {self.url} did not answer: {type(error).__name__}"
            ) from None
        body = response.text.strip()
        match = SUCCESS.match(body)
        if response.status_code == 200 and match:
            log.debug("/send to %s: %s", form["to"], match.group(1))
            return match.group(1)
        refused = ERROR.match(body)
        raise GatewayRefusedError(response.status_code, refused.group(1) if refused else body[:300])

    def close(self) -> None:
        self._session.close()
