"""KongLibrary: keywords for the platform's API gateway, Kong, through its Admin API and its proxy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from robot.api.deco import library
from robotlibcore import DynamicCore

from KongLibrary.context import KongContext
from KongLibrary.errors import (
    KongApiError,
    KongDeckError,
    KongError,
    KongToolMissingError,
    KongUnreachableError,
)
from KongLibrary.keywords.acls import AclKeywords
from KongLibrary.keywords.consumers import ConsumerKeywords
from KongLibrary.keywords.credentials import CredentialKeywords
from KongLibrary.keywords.declarative import DeclarativeKeywords
from KongLibrary.keywords.operations import OperationKeywords
from KongLibrary.keywords.plugins import PluginKeywords
from KongLibrary.keywords.proxy import ProxyKeywords
from KongLibrary.keywords.routes import RouteKeywords
from KongLibrary.keywords.services import ServiceKeywords
from KongLibrary.keywords.upstreams import UpstreamKeywords

__all__ = [
    "KongApiError",
    "KongDeckError",
    "KongError",
    "KongLibrary",
    "KongToolMissingError",
    "KongUnreachableError",
]
__version__ = "0.1.0"


@library(scope="SUITE", version=__version__, doc_format="ROBOT", auto_keywords=False)
class KongLibrary(DynamicCore):
    """KongLibrary tests the platform's API gateway, Kong 3.x, through its Admin API and its proxy.

    It configures the gateway as the platform's operators do (services, routes, consumers, key-auth and
    JWT credentials, ACL groups, plugins at every scope, upstreams with weighted, health-checked targets,
    or a whole declarative ``kong.yaml`` applied with decK) and then calls the platform's APIs *through*
    the gateway as customers do, checking authentication, authorisation, rate limits and failover.
    It speaks only Kong's public APIs, so the same suites run against the lab's stand-in and real Kong.

    %TOC%

    = Importing =

    All arguments are named and come from the variables file of the environment:

    | =Argument= | =Meaning= |
    | ``admin_url`` | Kong's Admin API, e.g. ``http://127.0.0.1:8001``. Required. |
    | ``proxy_url`` | Kong's proxy, e.g. ``http://127.0.0.1:8000``: for the keywords that call through the gateway. |
    | ``admin_token`` | Sent as header ``Kong-Admin-Token`` to the Admin API and to decK; masked (``***``) in logs. |
    | ``timeout`` | How long one HTTP request may take before it fails (default 5 s). |

    | =Settings= |
    | Library | KongLibrary | admin_url=${KONG_ADMIN_URL} | proxy_url=${KONG_PROXY_URL} |
    | ... | admin_token=${KONG_ADMIN_TOKEN} | timeout=${KONG_TIMEOUT} |

    = Entities =

    Every entity has ``Create``/``Add``, ``Get``, ``Update`` and ``Delete`` keywords that take the entity
    by id or by name (a consumer by username, a target by ``host:port``) and return Kong's answer as a
    dictionary, so ``${service}[id]`` works. Lists (`Get Services`, `Get Routes`, ...) follow Kong's
    ``offset`` paging to the end. ``Update`` keywords take the fields to change as named arguments;
    numbers and booleans must be Robot numbers and booleans (``retries=${3}``, ``strip_path=${False}``).

    = Test data and teardown =

    Every ``Create`` keyword takes ``tags``. Tag what a test makes with the test's (or pabot worker's)
    namespace and remove it all in the teardown with `Delete All Entities Tagged`; `Set Default Kong Tags`
    adds the tag to everything created afterwards:

    | `Set Default Kong Tags` | ${NS} |
    | `Create Service` | billing-${NS} | ${BILLING_URL} |
    | [Teardown] | `Delete All Entities Tagged` | ${NS} |

    = Calling through the gateway =

    `Call Through Gateway` returns the ``requests`` response (as RequestsLibrary does) and takes the
    consumer's credential: ``consumer_key=`` for ``key-auth``, ``jwt=`` for a token made with `Sign JWT`.
    Kong builds its router asynchronously, so a route that was just created answers ``404 no Route
    matched`` for a while: use `Wait Until Route Answers` instead of ``Sleep``.

    | ${key}= | `Create Key Auth Credential` | acme-${NS} |
    | `Wait Until Route Answers` | /billing/health | expected_status=401 |
    | ${response}= | `Call Through Gateway` | GET | /billing/health | consumer_key=${key}[key] |
    | `Gateway Response Status Should Be` | ${response} | 200 |
    | `Rate Limit Headers Should Show` | ${response} | limit=5 | remaining=4 | window=minute |

    = Reading values that change =

    `Get Target Health`, `Get Upstream Balancer Health`, `Get Consumer ACL Groups` and `Get Gateway Metric`
    (the ``prometheus`` plugin's counters) take an optional inline assertion (an AssertionEngine operator
    and an expected value) and a ``timeout``: the value is re-read until the assertion holds or the time
    is up.

    | `Set Target Health` | sms-gateways | 127.0.0.1:11401 | unhealthy |
    | `Get Target Health` | sms-gateways | 127.0.0.1:11401 | == | UNHEALTHY | timeout=5s |

    = Declarative configuration =

    `Apply Declarative Config` runs decK (``deck gateway sync`` or, before decK 1.28, ``deck sync``)
    under a timeout, with the admin token passed as ``--headers``. Without ``deck`` on ``PATH`` it fails
    naming the missing tool.

    = Errors =

    A refusal of the Admin API fails the keyword quoting Kong's error ``name`` and its ``fields`` (or its
    ``message``), e.g. ``Create Route failed with HTTP 400 (schema violation): paths: must start with /``.
    To prove that Kong refuses something, use `Kong Should Reject`. An unreachable Admin API or proxy
    fails naming the URL and the variable to fix.

    = Timing and logs =

    Every call is timed and logged at INFO (``POST /services -> 201 in 3.2 ms``), with the request and
    the answer at DEBUG. The admin token, API keys, JWT secrets and tokens are masked in all of it.
    `Get Kong Operation Timings` returns the current test's calls.

    = Examples =

    | ${service}= | `Create Service` | billing-${NS} | ${BILLING_URL} | tags=${TAGS} |
    | `Create Route` | billing-${NS} | paths=${{ ['/billing-${NS}'] }} | tags=${TAGS} |
    | `Add Plugin` | key-auth | service=billing-${NS} | tags=${TAGS} |
    | `Add Plugin` | rate-limiting | service=billing-${NS} | config=${{ {'minute': 5} }} | tags=${TAGS} |
    | `Create Consumer` | acme-${NS} | tags=${TAGS} |
    | ${key}= | `Create Key Auth Credential` | acme-${NS} |
    | `Wait Until Route Answers` | /billing-${NS}/health | expected_status=401 |
    | ${response}= | `Call Through Gateway` | GET | /billing-${NS}/health | consumer_key=${key}[key] |
    | `Gateway Response Status Should Be` | ${response} | 200 |
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(
        self,
        *,
        admin_url: str,
        proxy_url: str | None = None,
        admin_token: str = "",
        timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        """Creates the library for Kong's Admin API at ``admin_url`` (and proxy at ``proxy_url``); see `Importing`."""
        for name, url in (("admin_url", admin_url), ("proxy_url", proxy_url)):
            if url is not None and not str(url).startswith(("http://", "https://")):
                variable = "KONG_ADMIN_URL" if name == "admin_url" else "KONG_PROXY_URL"
                raise ValueError(
                    f"{name} '{url}' is not an HTTP URL. Use e.g. http://127.0.0.1:"
                    f"{8001 if name == 'admin_url' else 8000} ({variable} in the variables file)."
                )
        if timeout.total_seconds() <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        self.ctx = KongContext(admin_url, proxy_url or None, admin_token or "", timeout)
        self.ROBOT_LIBRARY_LISTENER = self
        components = [
            component(self.ctx)
            for component in (
                ServiceKeywords,
                RouteKeywords,
                ConsumerKeywords,
                CredentialKeywords,
                AclKeywords,
                PluginKeywords,
                UpstreamKeywords,
                DeclarativeKeywords,
                ProxyKeywords,
                OperationKeywords,
            )
        ]
        super().__init__(components)

    def run_keyword(self, name: str, args: Any, kwargs: Any = None) -> Any:
        self.ctx.current_keyword = keyword_title(name)
        return super().run_keyword(name, args, kwargs)

    # listener: each test starts with an empty record of timed calls
    def start_test(self, data: Any, result: Any) -> None:
        self.ctx.reset_operations()


def keyword_title(name: str) -> str:
    """``create_route`` -> ``Create Route``; names given with ``@keyword(name=...)`` are kept."""
    return name.replace("_", " ").title() if "_" in name else name
