"""Keywords for payments and what completing one writes: invoices, ledger transactions, balances."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from assertionengine import AssertionOperator
from robotlibcore import keyword

from BillingLibrary.keywords.base import BillingComponent, listing, money

PaymentMethod = Literal["mpesa", "card", "cash", "bank", "wallet"]
PaymentStatus = Literal["pending", "completed", "failed"]


class PaymentKeywords(BillingComponent):
    @keyword
    def create_payment(
        self,
        customer_id: int,
        amount: Decimal,
        method: PaymentMethod = "mpesa",
        *,
        voucher_id: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Creates a ``pending`` payment: for a voucher when ``voucher_id`` is given, else a balance top-up.

        The same ``idempotency_key`` twice returns the first payment and writes nothing new.

        | ${payment}= | `Create Payment` | ${customer}[id] | 50.00 | mpesa | voucher_id=${voucher}[id] |
        | ${topup}= | `Create Payment` | ${customer}[id] | 100.00 | card | idempotency_key=${key} |
        """
        body = {
            "customer_id": customer_id,
            "amount": money(amount),
            "method": method,
            "voucher_id": voucher_id,
            "idempotency_key": idempotency_key,
        }
        return self.ctx.request("POST", "/payments", json_body=body)

    @keyword
    def complete_payment(
        self, payment_id: int, *, reference: str | None = None, inject_fault: str | None = None
    ) -> dict[str, Any]:
        """Completes a pending payment; the service writes ledger, invoice, balance and voucher in one transaction.

        ``inject_fault`` (lab only, e.g. ``after-invoice``) asks the lab's billing service to fail part-way,
        to prove that nothing is left behind.

        | ${payment}= | `Complete Payment` | ${payment}[id] | reference=MPESA-123 |
        """
        headers = {"X-Billing-Fault": inject_fault} if inject_fault else None
        return self.ctx.request(
            "POST", f"/payments/{payment_id}/complete", json_body={"reference": reference}, headers=headers
        )

    @keyword
    def fail_payment(self, payment_id: int, reason: str) -> dict[str, Any]:
        """Marks a pending payment ``failed`` with a reason; nothing else is written."""
        return self.ctx.request("POST", f"/payments/{payment_id}/fail", json_body={"reason": reason})

    @keyword
    def get_payment(self, payment_id: int) -> dict[str, Any]:
        """Returns the payment with ``payment_id``."""
        return self.ctx.request("GET", f"/payments/{payment_id}")

    @keyword
    def get_payment_status(
        self,
        payment_id: int,
        assertion_operator: AssertionOperator | None = None,
        expected: PaymentStatus | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str:
        """Returns the payment's status, optionally asserting it (retried until ``timeout``).

        | `Get Payment Status` | ${payment}[id] | == | completed | timeout=5s |
        """
        label = message or f"Status of payment {payment_id}"
        return self._assert(
            lambda: self.get_payment(payment_id)["status"], assertion_operator, expected, timeout, label
        )

    @keyword
    def get_invoice_for_payment(self, payment_id: int, *, timeout: timedelta = timedelta(0)) -> dict[str, Any]:
        """Returns the invoice issued for a payment, waiting up to ``timeout`` for it to appear.

        | ${invoice}= | `Get Invoice For Payment` | ${payment}[id] | timeout=5s |
        """
        invoices = self._assert(
            lambda: listing(self.ctx.request("GET", "/invoices", params={"payment_id": payment_id})),
            AssertionOperator["!="],
            [],
            timeout,
            f"Invoices of payment {payment_id}",
        )
        return invoices[0]

    @keyword
    def get_transactions_for_payment(self, payment_id: int) -> list[dict[str, Any]]:
        """Returns the ledger transactions a payment wrote (none until it is completed)."""
        return listing(self.ctx.request("GET", "/transactions", params={"payment_id": payment_id}))
