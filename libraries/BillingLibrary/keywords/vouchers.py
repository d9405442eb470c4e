"""Keywords for vouchers: unused -> sold -> redeemed, or expired."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from assertionengine import AssertionOperator
from robotlibcore import keyword

from BillingLibrary.keywords.base import BillingComponent, listing

VoucherStatus = Literal["unused", "sold", "redeemed", "expired"]


class VoucherKeywords(BillingComponent):
    @keyword
    def create_voucher(
        self,
        package_id: int,
        *,
        customer_id: int | None = None,
        code: str | None = None,
        expires_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Creates a voucher for a package, optionally for one customer; it starts ``unused``.

        | ${voucher}= | `Create Voucher` | ${package}[id] | customer_id=${customer}[id] |
        """
        body: dict[str, Any] = {"package_id": package_id, "customer_id": customer_id, "code": code}
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        return self.ctx.request("POST", "/vouchers", json_body=body)

    @keyword
    def get_voucher(self, voucher_id: int) -> dict[str, Any]:
        """Returns the voucher with ``voucher_id``."""
        return self.ctx.request("GET", f"/vouchers/{voucher_id}")

    @keyword
    def get_voucher_status(
        self,
        voucher_id: int,
        assertion_operator: AssertionOperator | None = None,
        expected: VoucherStatus | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str:
        """Returns the voucher's status, optionally asserting it (retried until ``timeout``).

        | `Get Voucher Status` | ${voucher}[id] | == | sold |
        """
        label = message or f"Status of voucher {voucher_id}"
        return self._assert(
            lambda: self.get_voucher(voucher_id)["status"], assertion_operator, expected, timeout, label
        )

    @keyword
    def find_voucher_by_code(self, code: str) -> dict[str, Any]:
        """Returns the voucher with ``code``; fails when there is none."""
        found = listing(self.ctx.request("GET", "/vouchers", params={"code": code}))
        if not found:
            raise AssertionError(f"No voucher has code '{code}'.")
        return found[0]

    @keyword
    def expire_voucher(self, voucher_id: int) -> dict[str, Any]:
        """Expires an ``unused`` or ``sold`` voucher; an expired voucher can no longer start a session."""
        return self.ctx.request("POST", f"/vouchers/{voucher_id}/expire")
