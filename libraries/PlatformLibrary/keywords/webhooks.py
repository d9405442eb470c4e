"""Keywords for the account's webhooks and their HMAC-SHA256 signatures."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any, Literal

from assertionengine import AssertionOperator
from robot.api.types import Secret
from robotlibcore import keyword

from PlatformLibrary.context import reveal
from PlatformLibrary.keywords.base import PlatformComponent, compact, listing

WebhookEvent = Literal["sms.delivered", "sms.failed", "cdr.completed", "onboarding.verified"]
SIGNATURE_HEADER = "X-Platform-Signature"


class WebhookKeywords(PlatformComponent):
    @keyword
    def register_webhook(
        self, url: str, *events: WebhookEvent, secret: Secret | str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """Registers ``url`` for ``events``; returns the webhook with its signing ``secret`` as a Robot ``Secret``
        (logged as ``<secret>``).

        Without ``secret`` the platform makes one. Each call is a JSON ``POST`` with the header
        ``X-Platform-Signature: sha256=<hex HMAC-SHA256 of the body>``; check it with
        `Webhook Signature Should Be Valid`.

        | ${url}= | Start Webhook Receiver | hooks |
        | ${hook}= | `Register Webhook` | ${url} | sms.delivered | sms.failed |
        """
        if not events:
            raise ValueError("Register Webhook needs at least one event, e.g. sms.delivered.")
        text = reveal(secret) or None
        self.ctx.add_secret(text)
        body = compact({"url": url, "events": list(events), "secret": text, "description": description})
        hook: dict[str, Any] = self.ctx.request("POST", "/webhooks", json_body=body, expected=(201,))
        if hook.get("secret"):
            self.ctx.add_secret(hook["secret"])
            hook["secret"] = Secret(hook["secret"])
        return hook

    @keyword
    def get_webhooks(self) -> list[dict[str, Any]]:
        """Returns the account's webhooks (without their secrets)."""
        return listing(self.ctx.request("GET", "/webhooks", expected=(200,)))

    @keyword
    def delete_webhook(self, webhook_id: int) -> None:
        """Deletes a webhook and the deliveries still pending for it."""
        self.ctx.request("DELETE", f"/webhooks/{webhook_id}", expected=(204,))

    @keyword
    def get_webhook_deliveries(self, webhook_id: int) -> list[dict[str, Any]]:
        """Returns a webhook's deliveries: ``event``, ``status`` (``pending``, ``delivered``, ``failed``),
        ``attempts``, ``last_status``, ``last_error``."""
        return listing(self.ctx.request("GET", f"/webhooks/{webhook_id}/deliveries", expected=(200,)))

    @keyword
    def get_webhook_delivery_count(
        self,
        webhook_id: int,
        status: Literal["pending", "delivered", "failed"],
        assertion_operator: AssertionOperator | None = None,
        expected: int | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> int:
        """Returns how many of a webhook's deliveries have ``status``, optionally asserting it (re-read until
        ``timeout``).

        | `Get Webhook Delivery Count` | ${hook}[id] | failed | == | 1 | timeout=30s |
        """
        label = message or f"Deliveries of webhook {webhook_id} with status '{status}'"
        return self._assert(
            lambda: sum(1 for item in self.get_webhook_deliveries(webhook_id) if item["status"] == status),
            assertion_operator,
            expected,
            timeout,
            label,
        )

    @keyword
    def get_webhook_signature(self, body: bytes | str, secret: Secret | str) -> str:
        """Returns the ``X-Platform-Signature`` value the platform sends for ``body``: ``sha256=<hex>``.

        Use it to find the callback whose header carries it (WebhookLibrary compares masked headers by value):

        | ${request}= | Wait Until Webhook Received | hooks | event=sms.delivered |
        | ${signature}= | `Get Webhook Signature` | ${request}[raw_body] | ${hook}[secret] |
        | Webhook Count Should Be | 1 | hooks | headers=${{ {'X-Platform-Signature': $signature} }} |
        """
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        return "sha256=" + hmac.new(reveal(secret).encode("utf-8"), data, hashlib.sha256).hexdigest()

    @keyword
    def webhook_signature_should_be_valid(self, body: bytes | str, signature: str, secret: Secret | str) -> None:
        """Checks that ``signature`` (the ``X-Platform-Signature`` header) is the HMAC-SHA256 of ``body`` with
        ``secret``. The values are not logged."""
        expected = self.get_webhook_signature(body, secret)
        if not hmac.compare_digest(expected, signature.strip()):
            raise AssertionError(
                "The webhook's X-Platform-Signature should have been the HMAC-SHA256 of its body with the webhook's "
                "secret, but it was not: wrong secret, or the body was changed."
            )
