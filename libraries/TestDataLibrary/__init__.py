"""TestDataLibrary: names, numbers and addresses unique to this run and this pabot worker."""

from __future__ import annotations

import hashlib
import ipaddress
from decimal import Decimal

from robot.api.deco import keyword, library
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from telco_common import TestDataNamespace

__version__ = "0.1.0"


@library(scope="GLOBAL", version=__version__, doc_format="ROBOT")
class TestDataLibrary:
    """Makes test data that never collides: between pabot workers, between tests, or between runs.

    Every value carries the worker (``PABOTQUEUEINDEX``; ``s`` in a serial run) and a random token of
    this run, so a second ``make demo`` against the same database, or four workers at once, never reuse
    an email, a phone number or a router address. Tests make their own data with these keywords instead
    of sharing fixtures.

    | ${site}= | `Get Unique Name` | site |
    | ${email}= | `Get Unique Email` | ann |
    | ${phone}= | `Get Unique Phone Number` | 254 |
    """

    __test__ = False

    def __init__(self) -> None:
        self._created: TestDataNamespace | None = None

    @property
    def _namespace(self) -> TestDataNamespace:
        # made on first use, when Robot's variables are there: pabot passes its worker as a variable
        if self._created is None:
            self._created = TestDataNamespace(worker=_pabot_worker())
        return self._created

    @keyword
    def get_unique_name(self, label: str = "test") -> str:
        """Returns ``label`` followed by this worker's namespace and a counter, e.g. ``site-w2a1b2c3-4``."""
        return self._namespace.name(label)

    @keyword
    def get_unique_email(self, user: str = "user", domain: str = "example.com") -> str:
        """Returns an email address no other test uses, e.g. ``ann-w2a1b2c3-5@example.com``."""
        return f"{self._namespace.name(user)}@{domain}"

    @keyword
    def get_unique_phone_number(self, country_code: str = "254") -> str:
        """Returns an E.164 number (``+`` country code and 12 more digits) that no other test uses."""
        if not country_code.isdigit() or not 1 <= len(country_code) <= 3:
            raise ValueError(f"Country code '{country_code}' must be 1 to 3 digits, e.g. 254.")
        return f"+{self.get_unique_msisdn(country_code)}"

    @keyword(name="Get Unique MSISDN")
    def get_unique_msisdn(self, prefix: str = "254") -> str:
        """Returns a subscriber number as SMPP and Jasmin write it: digits only, ``prefix`` then 12 more.

        The ``prefix`` (a country code, a routing prefix such as ``999``, or the start of a number range
        such as ``25410``) is 1 to 8 digits, so the number has at most 20 digits (SMPP's limit).

        | ${msisdn}= | `Get Unique MSISDN` | 254 |
        """
        if not prefix.isdigit() or not 1 <= len(prefix) <= 8:
            raise ValueError(f"MSISDN prefix '{prefix}' must be 1 to 8 digits, e.g. 254.")
        return f"{prefix}{self._namespace.digits(12)}"

    @keyword
    def get_unique_router_address(self) -> str:
        """Returns a router management address from 100.64.0.0/10 (carrier-grade NAT space) unique to this run.

        The address is data stored by the billing service; nothing ever connects to it.
        """
        network = ipaddress.ip_network("100.64.0.0/10")
        seed = f"{self._namespace.prefix}-{self._namespace.next_number()}".encode()
        offset = int.from_bytes(hashlib.sha256(seed).digest()[:4], "big") % (network.num_addresses - 2) + 1
        return str(network.network_address + offset)

    @keyword
    def get_unique_key(self, label: str = "key") -> str:
        """Returns an idempotency key or reference unique to this run, e.g. ``pay-w2a1b2c3-6``."""
        return self._namespace.name(label)

    @keyword
    def convert_amount_to_cents(self, amount: Decimal) -> int:
        """Returns a money amount (``"12.50"``) as integer minor units (``1250``), the way databases keep it."""
        cents = amount * 100
        if cents != cents.to_integral_value():
            raise ValueError(f"Amount '{amount}' has more than two decimal places.")
        return int(cents)


def _pabot_worker() -> str | None:
    try:
        value = BuiltIn().get_variable_value("${PABOTQUEUEINDEX}")
    except RobotNotRunningError:
        return None
    return None if value is None else str(value)
