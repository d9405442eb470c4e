"""Keywords for customers and their balances, payments, invoices and ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from assertionengine import AssertionOperator
from robotlibcore import keyword

from BillingLibrary.keywords.base import BillingComponent, listing

CustomerStatus = Literal["active", "suspended", "closed"]


class CustomerKeywords(BillingComponent):
    @keyword
    def create_customer(self, name: str, email: str, phone: str, *, site: str | None = None) -> dict[str, Any]:
        """Creates a customer and returns it as a dictionary (``id``, ``email``, ``phone``, ``status``, ...).

        ``phone`` is an E.164 number such as ``+254700000001``. A duplicate email or phone fails with HTTP 409.

        | ${customer}= | `Create Customer` | Ann | ann@example.com | +254700000001 | site=nairobi-1 |
        """
        body = {"name": name, "email": email, "phone": phone, "site": site}
        return self.ctx.request("POST", "/customers", json_body=body)

    @keyword
    def get_customer(self, customer_id: int) -> dict[str, Any]:
        """Returns the customer with ``customer_id``."""
        return self.ctx.request("GET", f"/customers/{customer_id}")

    @keyword
    def set_customer_status(self, customer_id: int, status: CustomerStatus) -> dict[str, Any]:
        """Sets a customer's status to ``active``, ``suspended`` or ``closed``."""
        return self.ctx.request("PATCH", f"/customers/{customer_id}", json_body={"status": status})

    @keyword
    def get_customer_balance(
        self,
        customer_id: int,
        assertion_operator: AssertionOperator | None = None,
        expected: Decimal | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> Decimal:
        """Returns the customer's balance as a Decimal, optionally asserting it (retried until ``timeout``).

        | ${balance}= | `Get Customer Balance` | ${customer}[id] |
        | `Get Customer Balance` | ${customer}[id] | == | 25.00 | timeout=5s |
        """

        def read() -> Decimal:
            return Decimal(self.ctx.request("GET", f"/customers/{customer_id}/balance")["balance"])

        label = message or f"Balance of customer {customer_id}"
        return self._assert(read, assertion_operator, expected, timeout, label)

    @keyword
    def get_customer_transactions(self, customer_id: int) -> list[dict[str, Any]]:
        """Returns the customer's ledger transactions, oldest first."""
        return listing(self.ctx.request("GET", f"/customers/{customer_id}/transactions"))

    @keyword
    def get_customer_payments(self, customer_id: int) -> list[dict[str, Any]]:
        """Returns the customer's payments (their payment history), oldest first."""
        return listing(self.ctx.request("GET", f"/customers/{customer_id}/payments"))

    @keyword
    def get_customer_invoices(self, customer_id: int) -> list[dict[str, Any]]:
        """Returns the customer's invoices, oldest first."""
        return listing(self.ctx.request("GET", f"/customers/{customer_id}/invoices"))
