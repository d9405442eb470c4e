"""Keywords for SMS sent through the platform API and their delivery status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from assertionengine import AssertionOperator
from robotlibcore import keyword

from PlatformLibrary.context import segment
from PlatformLibrary.keywords.base import PlatformComponent, compact, listing

Coding = Literal["auto", "gsm7", "ucs2"]
SmsStatus = Literal["queued", "accepted", "delivered", "failed"]


class SmsKeywords(PlatformComponent):
    @keyword(name="Send SMS")
    def send_sms(self, to: str, sender: str, text: str, *, coding: Coding = "auto") -> dict[str, Any]:
        """Sends an SMS through the platform API and returns it (``id``, ``status`` ``queued``, ...).

        The platform hands it to the SMS gateway and follows its delivery receipts; read the outcome with
        `Get SMS Status`. ``coding`` ``auto`` picks GSM 03.38 when the text fits it, else UCS-2.

        | ${sms}= | `Send SMS` | +254700000001 | Acme | Hello |
        | `Get SMS Status` | ${sms}[id] | == | delivered | timeout=10s |
        """
        body = {"to": to, "from": sender, "text": text, "coding": coding}
        sms: dict[str, Any] = self.ctx.request("POST", "/sms", json_body=body, expected=(202,))
        return sms

    @keyword(name="Send SMS From Template")
    def send_sms_from_template(
        self, to: str, sender: str, template_id: int, *, coding: Coding = "auto", **variables: Any
    ) -> dict[str, Any]:
        """Sends an SMS whose text is template ``template_id`` filled with ``variables``.

        | ${sms}= | `Send SMS From Template` | +254700000001 | Acme | ${template}[id] | name=Ann | code=1234 |
        """
        body = compact(
            {
                "to": to,
                "from": sender,
                "template_id": int(template_id),
                "variables": {name: str(value) for name, value in variables.items()} or None,
                "coding": coding,
            }
        )
        sms: dict[str, Any] = self.ctx.request("POST", "/sms", json_body=body, expected=(202,))
        return sms

    @keyword(name="Get SMS")
    def get_sms(self, sms_id: str) -> dict[str, Any]:
        """Returns SMS ``sms_id`` with its ``status``, ``gateway_message_id``, ``error`` and times."""
        sms: dict[str, Any] = self.ctx.request("GET", f"/sms/{segment(sms_id)}", expected=(200,))
        return sms

    @keyword(name="Get SMS Messages")
    def get_sms_messages(self, *, status: SmsStatus | None = None) -> list[dict[str, Any]]:
        """Returns the account's latest SMS (at most 100), oldest first, of one ``status`` when given."""
        return listing(self.ctx.request("GET", "/sms", params={"status": status}, expected=(200,)))

    @keyword(name="Get SMS Status")
    def get_sms_status(
        self,
        sms_id: str,
        assertion_operator: AssertionOperator | None = None,
        expected: SmsStatus | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str:
        """Returns the SMS's status (``queued``, ``accepted``, ``delivered``, ``failed``), optionally asserting it;
        the status is re-read until the assertion holds or ``timeout`` runs out.

        | `Get SMS Status` | ${sms}[id] | == | delivered | timeout=10s |
        """
        label = message or f"Status of SMS '{sms_id}'"
        return self._assert(lambda: self.get_sms(sms_id)["status"], assertion_operator, expected, timeout, label)
