"""BillingLibrary: keywords for the platform's billing service (customers to dashboard) over its REST API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from robot.api.deco import library
from robotlibcore import DynamicCore

from BillingLibrary.context import BillingContext
from BillingLibrary.errors import BillingApiError, BillingError, BillingUnreachableError
from BillingLibrary.keywords.catalogue import CatalogueKeywords
from BillingLibrary.keywords.customers import CustomerKeywords
from BillingLibrary.keywords.dashboard import DashboardKeywords
from BillingLibrary.keywords.operations import OperationKeywords
from BillingLibrary.keywords.payments import PaymentKeywords
from BillingLibrary.keywords.routers import RouterKeywords
from BillingLibrary.keywords.sessions import SessionKeywords
from BillingLibrary.keywords.vouchers import VoucherKeywords

__all__ = ["BillingApiError", "BillingError", "BillingLibrary", "BillingUnreachableError"]
__version__ = "0.1.0"


@library(scope="SUITE", version=__version__, doc_format="ROBOT", auto_keywords=False)
class BillingLibrary(DynamicCore):
    """BillingLibrary tests the platform's billing service through its REST API.

    It covers an ISP's billing domain end to end: customers, the package catalogue, vouchers
    (``unused`` -> ``sold`` -> ``redeemed``, or ``expired``), payments and what completing one writes
    (ledger transactions, invoices, balances), sessions started from paid vouchers on routers, and the
    admin dashboard. The API's contract is in ``docs/billing-api.md``.

    %TOC%

    = Importing =

    All arguments are named and come from the variables file of the environment (``variables/lab.yaml``
    for the embedded lab):

    | =Argument= | =Meaning= |
    | ``base_url`` | The API's base URL including its version prefix, e.g. ``http://127.0.0.1:18080/api/v1``. |
    | ``token`` | The admin bearer token. It is masked (``***``) in every log line. |
    | ``timeout`` | How long one HTTP request may take before it fails (default 5 s). |

    | =Settings= |
    | Library | BillingLibrary | base_url=${BILLING_URL} | token=${BILLING_TOKEN} | timeout=${BILLING_TIMEOUT} |

    = Reading results that change =

    Getters such as `Get Payment Status`, `Get Customer Balance`, `Get Router Active Sessions` and
    `Get Dashboard Figure` take an optional inline assertion (an AssertionEngine operator and an expected
    value) and a ``timeout``: the value is re-read until the assertion holds or the time is up. Use them
    instead of ``Sleep``:

    | `Get Payment Status` | ${payment}[id] | == | completed | timeout=5s |
    | `Get Customer Balance` | ${customer}[id] | >= | 100.00 |

    = Errors =

    An error answer of the API fails the keyword with the API's own message, status and field, e.g.
    ``Create Payment (POST /payments) failed with HTTP 422 (field 'amount'): amount must be greater than 0``.
    To prove that the API refuses something, use `Billing Should Reject`:

    | `Billing Should Reject` | 409 | email | Create Customer | Ann | ${taken} | +254700000001 |

    = Timing =

    Every API call is timed. `Billing Operations Should Have Completed Within` checks the plan's
    "< 2 s per operation" criterion for all calls of the current test and logs them as a table. The record
    starts empty for every test.

    = Examples =

    | ${customer}= | `Create Customer` | Ann | ann@example.com | +254700000001 | site=${site} |
    | ${package}= | `Create Package` | Daily 1GB | 50.00 | site=${site} |
    | ${voucher}= | `Create Voucher` | ${package}[id] | customer_id=${customer}[id] |
    | ${payment}= | `Create Payment` | ${customer}[id] | 50.00 | mpesa | voucher_id=${voucher}[id] |
    | `Complete Payment` | ${payment}[id] |
    | `Get Voucher Status` | ${voucher}[id] | == | sold |
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, *, base_url: str, token: str = "", timeout: timedelta = timedelta(seconds=5)) -> None:
        """Creates the library for the billing API at ``base_url``; see `Importing`."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url '{base_url}' is not an HTTP URL. Use e.g. http://127.0.0.1:18080/api/v1 "
                "(BILLING_URL in the variables file)."
            )
        if timeout.total_seconds() <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        self.ctx = BillingContext(base_url, token, timeout)
        self.ROBOT_LIBRARY_LISTENER = self
        components = [
            component(self.ctx)
            for component in (
                CustomerKeywords,
                CatalogueKeywords,
                VoucherKeywords,
                PaymentKeywords,
                SessionKeywords,
                RouterKeywords,
                DashboardKeywords,
                OperationKeywords,
            )
        ]
        super().__init__(components)

    def run_keyword(self, name: str, args: Any, kwargs: Any = None) -> Any:
        self.ctx.current_keyword = name.replace("_", " ").title() if "_" in name else name
        return super().run_keyword(name, args, kwargs)

    # listener: each test starts with an empty record of timed operations
    def start_test(self, data: Any, result: Any) -> None:
        self.ctx.reset_operations()
