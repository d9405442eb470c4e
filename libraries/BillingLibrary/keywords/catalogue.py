"""Keywords for the package catalogue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from robotlibcore import keyword

from BillingLibrary.keywords.base import BillingComponent, listing, money


class CatalogueKeywords(BillingComponent):
    @keyword
    def create_package(
        self,
        name: str,
        price: Decimal,
        *,
        validity_hours: int = 24,
        data_quota_mb: int | None = None,
        time_quota_minutes: int | None = None,
        site: str | None = None,
        active: bool = True,
    ) -> dict[str, Any]:
        """Creates a package (a product customers buy with vouchers) and returns it.

        ``data_quota_mb`` and ``time_quota_minutes`` left out mean unlimited.

        | ${package}= | `Create Package` | Daily 1GB | 50.00 | validity_hours=24 | data_quota_mb=1024 |
        """
        body = {
            "name": name,
            "price": money(price),
            "validity_hours": validity_hours,
            "data_quota_mb": data_quota_mb,
            "time_quota_minutes": time_quota_minutes,
            "site": site,
            "active": active,
        }
        return self.ctx.request("POST", "/packages", json_body=body)

    @keyword
    def get_package(self, package_id: int) -> dict[str, Any]:
        """Returns the package with ``package_id``."""
        return self.ctx.request("GET", f"/packages/{package_id}")

    @keyword
    def list_packages(self, *, site: str | None = None, active: bool | None = None) -> list[dict[str, Any]]:
        """Returns the packages, optionally only those of one ``site`` and/or only ``active`` ones.

        | ${packages}= | `List Packages` | site=${site} | active=${True} |
        """
        params = {"site": site, "active": None if active is None else str(active).lower()}
        return listing(self.ctx.request("GET", "/packages", params=params))

    @keyword
    def set_package_active(self, package_id: int, active: bool) -> dict[str, Any]:
        """Activates or deactivates a package; vouchers cannot be created for an inactive one."""
        return self.ctx.request("PATCH", f"/packages/{package_id}", json_body={"active": active})
