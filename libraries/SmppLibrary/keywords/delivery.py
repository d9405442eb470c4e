"""Keywords that read what the SMSC delivers: delivery receipts and mobile-originated (MO) SMS."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

from assertionengine import AssertionOperator
from robot.api import logger
from robotlibcore import keyword
from telco_common import retry_assertion

from SmppLibrary.codec import FINAL_STATES, receipt_state
from SmppLibrary.keywords.base import SmppComponent

MAX_LISTED = 15


class DeliveryKeywords(SmppComponent):
    @keyword(name="Get Delivery Receipt")
    def get_delivery_receipt(
        self,
        message_id: str,
        assertion_operator: AssertionOperator | None = None,
        expected: str | None = None,
        *,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Waits for the delivery receipt of ``message_id`` and returns it, optionally asserting its state.

        Receipts are matched by ``receipted_message_id`` (TLV 0x001E) or by the ``id:`` in the receipt
        text, without case; a hex id also matches its decimal form. With an operator the receipt's state
        (``DELIVRD``, ``UNDELIV``, ``EXPIRED``, ``REJECTD``, ``ACCEPTD``, ``ENROUTE``, ``DELETED``,
        ``UNKNOWN``) is checked, retried until ``timeout`` (the latest receipt counts).

        The receipt is a dictionary: ``id``, ``state``, ``error``, ``submit_date``, ``done_date``, ``sub``,
        ``dlvrd``, ``text``, ``message_state``, ``source``, ``destination``, ``raw`` (the whole text),
        ``connection`` and ``received_at``.

        | ${receipt}= | `Get Delivery Receipt` | ${ids}[0] |
        | `Get Delivery Receipt` | ${ids}[0] | == | DELIVRD | timeout=10s |
        | `Get Delivery Receipt` | ${id} | should be | UNDELIV | message=The failure did not reach the customer |
        """
        seconds = self.ctx.seconds(timeout)
        deadline = time.monotonic() + seconds
        latest = self.ctx.wait_for(lambda: self._latest(message_id), seconds)
        if assertion_operator is None:
            if latest is None:
                raise AssertionError(message or self._missing(message_id, seconds))
            return latest
        if expected is not None and assertion_operator in (AssertionOperator["=="], AssertionOperator["!="]):
            expected = receipt_state(expected)

        def state() -> str:
            self.ctx.drain()
            receipt = self._latest(message_id)
            return str(receipt["state"]) if receipt else "(no receipt)"

        retry_assertion(
            state,
            assertion_operator,
            expected,
            timeout=timedelta(seconds=max(0.0, deadline - time.monotonic())),  # a later receipt may follow
            message=f"Delivery receipt for '{message_id}' state",
            custom_message=message,
        )
        receipt = self._latest(message_id)
        if receipt is None:  # the assertion accepted "(no receipt)", e.g. with !=
            raise AssertionError(message or self._missing(message_id, seconds))
        return receipt

    @keyword(name="Wait Until Delivery Receipt")
    def wait_until_delivery_receipt(
        self,
        message_ids: str | list[str],
        *,
        state: str = "DELIVRD",
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> list[dict[str, Any]]:
        """Waits until every message id (one, or the list `Submit SMS` returned) has a receipt in ``state``.

        Returns the receipts in the order of ``message_ids``. Fails as soon as every part has a final
        receipt and some have another state, or at ``timeout``, naming each part that is missing or wrong,
        e.g. ``Delivery receipts of 3 part(s) should all be DELIVRD: part 2 ('1f3c...') is UNDELIV (err 001);
        part 3 ('9ab2...') has no receipt.``

        | ${ids}= | `Submit SMS` | ${FROM} | ${TO} | ${LONG_TEXT} |
        | ${receipts}= | `Wait Until Delivery Receipt` | ${ids} | state=DELIVRD | timeout=20s |
        | `Should Be Equal` | ${receipts}[0][error] | 000 |
        """
        ids = [message_ids] if isinstance(message_ids, str) else list(message_ids)
        if not ids or any(not str(item).strip() for item in ids):
            raise ValueError(f"Message ids {ids!r} must be non-empty; pass what `Submit SMS` returned.")
        wanted = receipt_state(state)
        seconds = self.ctx.seconds(timeout)

        def receipts() -> list[dict[str, Any] | None]:
            return [self._latest(str(item)) for item in ids]

        def settled() -> bool:
            found = receipts()
            if all(r is not None and r["state"] == wanted for r in found):
                return True
            return all(r is not None and r["state"] in FINAL_STATES for r in found)

        self.ctx.wait_for(settled, seconds)
        found = receipts()
        problems = []
        for number, (item, receipt) in enumerate(zip(ids, found, strict=True), start=1):
            if receipt is None:
                problems.append(f"part {number} ('{item}') has no receipt")
            elif receipt["state"] != wanted:
                problems.append(f"part {number} ('{item}') is {receipt['state']} (err {receipt['error'] or '-'})")
        if problems:
            listed = "; ".join(problems[:MAX_LISTED]) + ("; ..." if len(problems) > MAX_LISTED else "")
            waited = f" (waited {seconds:g} s)" if any(r is None for r in found) else ""
            known = self._known_ids() if any(r is None for r in found) else ""
            raise AssertionError(
                message or f"Delivery receipts of {len(ids)} part(s) should all be {wanted}: {listed}.{waited}{known}"
            )
        logger.info(f"All {len(ids)} receipt(s) are {wanted}.")
        return [receipt for receipt in found if receipt is not None]

    @keyword(name="Wait Until SMS Received")
    def wait_until_sms_received(
        self,
        *,
        source: str | None = None,
        destination: str | None = None,
        text_regex: str | None = None,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Waits for a mobile-originated SMS (a deliver_sm that is not a receipt) and returns it.

        Concatenated parts (UDH or SAR, in any order) are joined first; GSM7, UCS2 and Latin-1 are decoded.
        ``source`` and ``destination`` must match exactly (a leading ``+`` is ignored), ``text_regex`` is
        searched in the text. The message is taken: a second wait returns the next one. Returns
        ``source``, ``destination``, ``text``, ``coding``, ``data_coding``, ``parts``, ``esm_class``,
        ``connection`` and ``received_at``.

        | ${sms}= | `Wait Until SMS Received` | destination=${SHORT_CODE} | timeout=10s |
        | `Should Be Equal` | ${sms}[text] | STOP |
        | `Wait Until SMS Received` | source=4915100000001 | text_regex=^Your code is \\\\d{6}$ |
        """
        pattern = re.compile(text_regex) if text_regex else None
        seconds = self.ctx.seconds(timeout)

        def matches(sms: dict[str, Any]) -> bool:
            return (
                (source is None or _number(sms["source"]) == _number(source))
                and (destination is None or _number(sms["destination"]) == _number(destination))
                and (pattern is None or pattern.search(sms["text"]) is not None)
            )

        def take() -> dict[str, Any] | None:
            for sms in self.ctx.inbox.messages:
                if matches(sms):
                    self.ctx.inbox.messages.remove(sms)
                    return sms
            return None

        found = self.ctx.wait_for(take, seconds)
        if found is not None:
            return found
        wanted = ", ".join(
            f"{name} {value!r}"
            for name, value in (("from", source), ("to", destination), ("text matching", text_regex))
            if value is not None
        )
        others = self.ctx.inbox.messages[-5:]
        seen = "; ".join(f"from '{m['source']}' to '{m['destination']}': {m['text'][:40]!r}" for m in others) or "none"
        incomplete = self.ctx.inbox.incomplete()
        parts = f" Incomplete concatenations: {', '.join(incomplete[:5])}." if incomplete else ""
        raise AssertionError(
            message or f"No SMS {wanted or '(any)'} received within {seconds:g} s. Unclaimed SMS: {seen}.{parts}"
        )

    # --- helpers ------------------------------------------------------------------------------------------

    def _latest(self, message_id: str) -> dict[str, Any] | None:
        found = self.ctx.inbox.receipts_for(message_id)
        return found[-1] if found else None

    def _missing(self, message_id: str, seconds: float) -> str:
        return f"No delivery receipt for message '{message_id}' within {seconds:g} s.{self._known_ids()}"

    def _known_ids(self) -> str:
        ids = [receipt["id"] for receipt in self.ctx.inbox.receipts[-5:]]
        return f" Latest receipts are for: {', '.join(ids)}." if ids else " No receipt has arrived at all."


def _number(value: str) -> str:
    return value.strip().lstrip("+")
