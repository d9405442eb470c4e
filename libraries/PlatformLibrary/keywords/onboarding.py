"""Keywords for customer onboarding (SMS verification code) and the account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from assertionengine import AssertionOperator
from robotlibcore import keyword

from PlatformLibrary.keywords.base import PlatformComponent

AccountStatus = Literal["unverified", "active"]


class OnboardingKeywords(PlatformComponent):
    @keyword
    def start_onboarding(self, name: str, email: str, phone: str) -> dict[str, Any]:
        """Signs the current account up: the platform texts a 6-digit code to ``phone`` (E.164) through the
        SMS gateway. Returns the onboarding (``id``, ``status`` ``pending``, ``attempts_left``).

        | ${onboarding}= | `Start Onboarding` | Ann | ann@example.com | +254700000001 |
        """
        onboarding: dict[str, Any] = self.ctx.request(
            "POST", "/onboarding", json_body={"name": name, "email": email, "phone": phone}, expected=(201,)
        )
        return onboarding

    @keyword
    def verify_onboarding(self, onboarding_id: int, code: str) -> dict[str, Any]:
        """Sends the code the phone received; the account becomes ``active``. A wrong code fails with 422
        naming ``code`` (five tries), then 409.

        | `Verify Onboarding` | ${onboarding}[id] | ${code} |
        """
        onboarding: dict[str, Any] = self.ctx.request(
            "POST", f"/onboarding/{onboarding_id}/verify", json_body={"code": str(code)}, expected=(200,)
        )
        return onboarding

    @keyword
    def get_onboarding(self, onboarding_id: int) -> dict[str, Any]:
        """Returns onboarding ``onboarding_id``."""
        onboarding: dict[str, Any] = self.ctx.request("GET", f"/onboarding/{onboarding_id}", expected=(200,))
        return onboarding

    @keyword
    def get_account(self) -> dict[str, Any]:
        """Returns the calling account (the gateway consumer): ``username``, ``status``, ``name``, ``email``..."""
        account: dict[str, Any] = self.ctx.request("GET", "/account", expected=(200,))
        return account

    @keyword
    def get_account_status(
        self,
        assertion_operator: AssertionOperator | None = None,
        expected: AccountStatus | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str:
        """Returns the account's status (``unverified`` or ``active``), optionally asserting it."""
        return self._assert(
            lambda: self.get_account()["status"], assertion_operator, expected, timeout, message or "Account status"
        )
