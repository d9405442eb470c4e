"""Per-keyword latency of BillingLibrary against the running lab billing service."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from BillingLibrary import BillingLibrary

from bench.stats import summary_ms


def keyword_latency(variables_file: str, rounds: int = 60) -> dict[str, dict[str, float]]:
    """Run a whole purchase ``rounds`` times and return median/p95 per keyword (one HTTP call each)."""
    values: dict[str, Any] = yaml.safe_load(Path(variables_file).read_text(encoding="utf-8"))
    library = BillingLibrary(base_url=values["BILLING_URL"], token=values["BILLING_TOKEN"])
    site = f"bench-{uuid.uuid4().hex[:8]}"
    samples: dict[str, list[float]] = defaultdict(list)

    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        result = library.run_keyword(name, list(args), kwargs)
        samples[name.replace("_", " ").title()].append(library.ctx.operations[-1].seconds)
        return result

    router = library.create_router("bench-ap", f"100.127.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}", site)
    for index in range(rounds):
        customer = call("create_customer", "Bench", f"{site}-{index}@example.com", _phone(site, index), site=site)
        package = call("create_package", f"{site}-{index}", Decimal("10.00"), site=site)
        voucher = call("create_voucher", package["id"], customer_id=customer["id"])
        payment = call("create_payment", customer["id"], Decimal("10.00"), "mpesa", voucher_id=voucher["id"])
        call("complete_payment", payment["id"])
        session = call("activate_session", voucher["id"], router["id"])
        call("get_session_status", session["id"])
        call("get_customer_balance", customer["id"])
        call("get_dashboard", site=site)
        call("terminate_session", session["id"])
    return {name: summary_ms(times) for name, times in sorted(samples.items())}


def _phone(site: str, index: int) -> str:
    return f"+1{int(site[-8:], 16) % 10**6:06d}{index:05d}"
