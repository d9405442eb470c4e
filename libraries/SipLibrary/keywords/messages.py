"""Keywords for SIP MESSAGE (RFC 3428 instant messages) between phones, outside any call."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pjsua2 as pj
from robot.api import logger
from robotlibcore import keyword

from SipLibrary.addressing import check_headers, destination_uri, user_of
from SipLibrary.errors import SipError, SipStatusError
from SipLibrary.keywords.base import SipComponent
from SipLibrary.phone import Message

MAX_TEXT_SHOWN = 200


class MessageKeywords(SipComponent):
    @keyword(name="Send SIP MESSAGE")
    def send_sip_message(
        self,
        alias: str,
        uri: str,
        text: str,
        *,
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
        expected_status: int = 200,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Sends a SIP MESSAGE with ``text`` from phone ``alias`` to ``uri`` (a SIP URI or a number).

        Waits for the final answer and fails unless it is ``expected_status`` (``200``; ``202 Accepted``
        also passes when 200 is expected). Returns ``status`` and ``reason``. ``headers`` adds SIP headers.

        | `Send SIP MESSAGE` | alice | ${BOB_URI} | Hello Bob |
        | `Send SIP MESSAGE` | alice | 4930999 | STOP | expected_status=404 |
        """
        phone = self.ctx.phone(alias)
        target = destination_uri(uri, domain=phone.config.domain, transport=phone.config.transport)
        extra = check_headers(headers)
        if not re.fullmatch(r"[A-Za-z0-9.+\-]+/[A-Za-z0-9.+\-]+(;.*)?", content_type.strip()):
            raise ValueError(f"Content type '{content_type}' is not type/subtype, e.g. text/plain.")
        self.ctx.host.endpoint()
        buddy = phone.buddy(target.text)
        prm = pj.SendInstantMessageParam()
        prm.content = text
        prm.contentType = content_type.strip()
        for name, value in extra.items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            prm.txOption.headers.append(header)
        before = len(phone.message_status)
        try:
            buddy.sendInstantMessage(prm)
        except pj.Error as error:
            raise SipError(f"pjsua2 could not send a SIP MESSAGE to {target.text}: {error.reason}.") from None
        phone.messages_pending += 1
        logger.info(f"'{phone.alias}' sends a SIP MESSAGE to {target.text}: {_cut(text)!r}.")
        seconds = self.ctx.seconds(timeout)

        def answer() -> tuple[str, str, int, str] | None:
            return next((s for s in phone.message_status[before:] if s[1] == text), None)

        found = self.ctx.wait(answer, seconds)
        if found is None:
            raise AssertionError(message or f"SIP MESSAGE to {target.text} got no final answer within {seconds:g} s.")
        _, _, code, reason = found
        accepted = code == expected_status or (expected_status == 200 and code == 202)
        if not accepted:
            raise SipStatusError(
                message
                or f"SIP MESSAGE to {target.text} should have been answered {expected_status} but was {code} {reason}.",
                code,
                reason,
            )
        logger.info(f"SIP MESSAGE to {target.text}: {code} {reason}.")
        return {"status": code, "reason": reason}

    @keyword(name="Wait Until SIP MESSAGE Received")
    def wait_until_sip_message_received(
        self,
        alias: str,
        *,
        text_regex: str | None = None,
        sender: str | None = None,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Waits until phone ``alias`` has received a SIP MESSAGE that matches, takes it and returns it.

        ``text_regex`` is searched in the text (Python regular expression); ``sender`` matches the sender's
        URI or number. A second wait returns the next message. Returns ``text``, ``content_type``,
        ``from_uri``, ``from_display``, ``from_number``, ``to_uri``, ``headers`` and ``source``.

        | ${sms}= | `Wait Until SIP MESSAGE Received` | bob | text_regex=^Hello |
        | `Wait Until SIP MESSAGE Received` | bob | sender=alice | timeout=5s |
        """
        phone = self.ctx.phone(alias)
        try:
            pattern = re.compile(text_regex) if text_regex else None
        except re.error as error:
            raise ValueError(f"text_regex '{text_regex}' is not a valid regular expression: {error}.") from None
        seconds = self.ctx.seconds(timeout)

        def matches(item: Message) -> bool:
            if pattern is not None and pattern.search(item.text) is None:
                return False
            if sender is None:
                return True
            wanted = sender.strip()
            return wanted in (item.from_uri, user_of(item.from_uri)) or item.from_uri.startswith(wanted + ";")

        def take() -> Message | None:
            for item in phone.messages:
                if matches(item):
                    phone.messages.remove(item)
                    return item
            return None

        found = self.ctx.wait(take, seconds)
        if found is None:
            wanted = ", ".join(
                f"{name} {value!r}" for name, value in (("text matching", text_regex), ("from", sender)) if value
            )
            others = "; ".join(f"from {m.from_uri}: {_cut(m.text, 40)!r}" for m in phone.messages[-5:]) or "none"
            raise AssertionError(
                message
                or f"No SIP MESSAGE {wanted or '(any)'} reached '{phone.alias}' within {seconds:g} s. "
                f"Unclaimed messages: {others}."
            )
        logger.info(f"'{phone.alias}' received a SIP MESSAGE from {found.from_uri}: {_cut(found.text)!r}.")
        return found.as_dict()


def _cut(text: str, limit: int = MAX_TEXT_SHOWN) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."
