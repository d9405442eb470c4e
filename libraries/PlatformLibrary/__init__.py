"""PlatformLibrary: keywords for the platform's provisioning REST API, called through the API gateway."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from robot.api.deco import library
from robot.api.types import Secret
from robotlibcore import DynamicCore

from PlatformLibrary.context import PlatformContext
from PlatformLibrary.errors import PlatformApiError, PlatformError, PlatformUnreachableError
from PlatformLibrary.keywords.analytics import AnalyticsKeywords
from PlatformLibrary.keywords.calls import CallKeywords
from PlatformLibrary.keywords.campaigns import CampaignKeywords
from PlatformLibrary.keywords.cdrs import CdrKeywords
from PlatformLibrary.keywords.onboarding import OnboardingKeywords
from PlatformLibrary.keywords.operations import OperationKeywords
from PlatformLibrary.keywords.routing import RoutingKeywords
from PlatformLibrary.keywords.sms import SmsKeywords
from PlatformLibrary.keywords.templates import TemplateKeywords
from PlatformLibrary.keywords.trunks import TrunkKeywords
from PlatformLibrary.keywords.webhooks import WebhookKeywords

__all__ = ["PlatformApiError", "PlatformError", "PlatformLibrary", "PlatformUnreachableError"]
__version__ = "0.1.0"


@library(scope="SUITE", version=__version__, doc_format="ROBOT", auto_keywords=False)
class PlatformLibrary(DynamicCore):
    """PlatformLibrary tests the platform's provisioning REST API as a customer's application uses it.

    It covers the API's domains: SIP trunks, routing rules and dynamic caller ID (which the platform pushes
    to the SIP proxies), real-time call control and CDRs, SMS with delivery status, templates, campaigns
    and analytics (through the SMS gateway), webhooks signed with HMAC-SHA256, and customer onboarding
    with an SMS verification code. It calls the API *through the API gateway*: the gateway authenticates
    the customer's API key and tells the platform which customer account is calling.

    %TOC%

    = Importing =

    All arguments are named and come from the variables file of the environment:

    | =Argument= | =Meaning= |
    | ``base_url`` | Gateway proxy URL + platform route + API prefix: ``http://127.0.0.1:18000/platform/api/v1``. |
    | ``api_key`` | The customer's API key, sent as header ``apikey``; masked. Set per test: `Use Platform API Key`. |
    | ``timeout`` | How long one HTTP request may take before it fails (default 5 s). |
    | ``headers`` | Extra headers on every call, only to call the API without the gateway (see below). |

    ``headers`` exists for the kit's own unit tests, which call the API directly and name the consumer
    themselves (``X-Consumer-Username``); against the gateway it is never needed.

    | =Settings= |
    | Library | PlatformLibrary | base_url=${PLATFORM_URL} | timeout=${PLATFORM_TIMEOUT} |

    = Customers =

    Every resource belongs to the customer account of the API key in use. Each test makes its own customer:
    a gateway consumer with a key-auth credential (KongLibrary), whose key it uses:

    | ${consumer}= | Create Consumer | acme-${NS} |
    | ${credential}= | Create Key Auth Credential | acme-${NS} |
    | `Use Platform API Key` | ${credential}[key] |
    | ${onboarding}= | `Start Onboarding` | Ann | ann@example.com | +254700000001 |
    | `Verify Onboarding` | ${onboarding}[id] | ${code_from_the_phone} |

    = Reading results that change =

    Delivery receipts, campaign progress, CDRs and webhook deliveries arrive later. Getters such as
    `Get SMS Status`, `Get Campaign Status`, `Get Campaign Progress`, `Get Call State`, `Get CDR`,
    `Get SMS Analytics Figure` and `Get Webhook Delivery Count` take an optional inline assertion (an
    AssertionEngine operator and an expected value) and a ``timeout``: the value is re-read until the
    assertion holds or the time is up. Use them instead of ``Sleep``:

    | `Get SMS Status` | ${sms}[id] | == | delivered | timeout=10s |
    | `Get Campaign Progress` | ${campaign}[id] | delivered | == | 3 | timeout=20s |

    = Errors =

    An error answer fails the keyword with the API's own message, status and field, e.g.
    ``Create Trunk (POST /trunks) failed with HTTP 403 (field 'account'): account 'acme' is not verified yet...``.
    A refusal by the gateway itself (no or a wrong API key) quotes the gateway's message. To prove that the
    API refuses something, use `Platform Should Reject`:

    | `Platform Should Reject` | 422 | variables.code | Render SMS Template | ${template}[id] | name=Ann |

    = Secrets and logs =

    Every call is logged at INFO (``POST /sms -> 202 in 12.3 ms``) with request and answer at DEBUG. The API
    key, SIP passwords of trunks and webhook secrets are masked in all of it, and fields named ``password``,
    ``secret`` or ``key`` in logged bodies show as ``***``. Trunk passwords and webhook secrets are returned as
    Robot ``Secret`` objects (``<secret>`` wherever Robot logs them); this library's keywords take them as they
    are, and ``.value`` gives the text for a keyword that only takes text:

    | ${trunk}= | `Create Trunk` | main | +254711000001 |
    | Create SIP Phone | pbx | ${trunk}[sip][username] | password=${trunk['sip']['password'].value} |

    = Examples =

    | ${trunk}= | `Create Trunk` | main | +254711000001 |
    | `Create Routing Rule` | 25420 | trunk | ${trunk}[id] |
    | ${sms}= | `Send SMS` | +254700000001 | Acme | Hello |
    | `Get SMS Status` | ${sms}[id] | == | delivered | timeout=10s |
    | ${cdr}= | `Get CDR` | ${call_id} | timeout=10s |
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Secret | str = "",
        timeout: timedelta = timedelta(seconds=5),
        headers: dict[str, str] | None = None,
    ) -> None:
        """Creates the library for the platform API at ``base_url`` (through the gateway); see `Importing`."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url '{base_url}' is not an HTTP URL. Use the gateway's proxy URL with the platform's route, "
                "e.g. http://127.0.0.1:18000/platform/api/v1 (PLATFORM_URL in the variables file)."
            )
        if "/api/" not in base_url.rstrip("/") + "/":
            raise ValueError(
                f"base_url '{base_url}' has no API version prefix; end it with /api/v1, e.g. "
                "http://127.0.0.1:18000/platform/api/v1."
            )
        if timeout.total_seconds() <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        self.ctx = PlatformContext(base_url, api_key, timeout, dict(headers or {}))
        self.ROBOT_LIBRARY_LISTENER = self
        components = [
            component(self.ctx)
            for component in (
                OnboardingKeywords,
                TrunkKeywords,
                RoutingKeywords,
                CallKeywords,
                CdrKeywords,
                SmsKeywords,
                TemplateKeywords,
                CampaignKeywords,
                AnalyticsKeywords,
                WebhookKeywords,
                OperationKeywords,
            )
        ]
        super().__init__(components)

    def run_keyword(self, name: str, args: Any, kwargs: Any = None) -> Any:
        self.ctx.current_keyword = name.replace("_", " ").title() if "_" in name else name
        return super().run_keyword(name, args, kwargs)

    # listener: each test starts with an empty record of timed calls
    def start_test(self, data: Any, result: Any) -> None:
        self.ctx.reset_operations()
