"""WebhookLibrary: the customer's webhook endpoint that tests wait on (SMS DLR callbacks, CDR callbacks)."""

from __future__ import annotations

from datetime import timedelta

from robotlibcore import DynamicCore

from WebhookLibrary.context import WebhookContext
from WebhookLibrary.errors import ReceiverNotFoundError, ReceiverStartError, WebhookError
from WebhookLibrary.keywords import ReceiverKeywords, RequestKeywords
from WebhookLibrary.listener import AutoStopListener

__version__ = "0.1.0"
__all__ = ["ReceiverNotFoundError", "ReceiverStartError", "WebhookError", "WebhookLibrary"]


class WebhookLibrary(DynamicCore):
    """WebhookLibrary plays the customer's HTTP endpoint that the platform calls back.

    Tests start a receiver, hand its URL to the platform (e.g. as Jasmin's ``dlr-url``) and then wait for
    the callback with filters, instead of sleeping. It records every request: method, path, query,
    headers, body, parsed JSON or form fields, and the time it arrived.

    %TOC%

    = Receivers =

    `Start Webhook Receiver` listens on loopback (``127.0.0.1`` by default, ``::1`` too) on a free port
    and returns the base URL, e.g. ``http://127.0.0.1:41234/dlr/``. Each receiver has an ``alias``; the
    keywords' ``alias`` argument defaults to the receiver started last. Requests are served concurrently
    and answered ``200`` with ``ACK/Jasmin`` (what Jasmin's DLR and MO throwers require, or they resend)
    unless `Set Webhook Response` says otherwise, e.g. to make the receiver slow or failing.

    Jasmin posts DLRs as form fields ``id``, ``message_status``, ``level``, ``connector``, ``subdate``,
    ``donedate``, ``sub``, ``dlvrd``, ``err`` and ``text``, by ``GET`` (query) or ``POST`` (form body)
    depending on ``dlr-method``; both are read the same way.

    | ${url} = | `Start Webhook Receiver` | dlr | path=/dlr/ |
    | ${id} = | Submit SMS | ... | dlr_url=${url} |
    | ${dlr} = | `Wait Until Webhook Received` | dlr | 10s | id=${id} | message_status=DELIVRD |
    | Should Be Equal | ${dlr.form.err} | 000 |

    = Filters =

    `Wait Until Webhook Received`, `Get Webhook Requests`, `Webhook Count Should Be` and
    `Webhook Should Not Be Received` take the same filters; a request must meet all that are given.

    | =Filter= | =Matches= |
    | ``name=value`` | Any other named argument: JSON field ``name``, else form field, else query parameter. |
    | ``path=`` | The request path without the query, e.g. ``/dlr/sms``. |
    | ``method=`` | ``GET``, ``POST`` or ``PUT`` (any case). |
    | ``json=`` | A dictionary of JSON fields (dotted paths allowed) that must all be equal. |
    | ``form=`` | A dictionary of form fields (or query parameters of a ``GET``) that must all be equal. |
    | ``headers=`` | A dictionary of headers (names in any case); compares the real value, also of masked headers. |
    | ``body_regex=`` | A Python regular expression found anywhere in the body text. |

    A JSON ``name`` may be a dotted path to a nested value: ``call.id``, or ``items.0.id`` in a list.
    Values compare as text: ``7`` equals ``"7"``, and JSON ``true`` equals ``True`` or ``true``. A field
    named like one of the keyword's own arguments (``alias``, ``timeout``, ``path``, ``message``...) is
    matched with ``json=`` or ``form=`` instead, e.g. ``form=${{ {'path': '/x'} }}``.

    = Recorded requests =

    Requests come back as dictionaries, so ``${request.form.id}`` and ``${request.json.call.id}`` work:

    | =Key= | =Value= |
    | ``receiver`` | The receiver's alias. |
    | ``number`` | Arrival order in the receiver, from 1. |
    | ``method``, ``path`` | E.g. ``POST`` and ``/dlr/sms``. |
    | ``query`` | Query parameters; a repeated one is a list. |
    | ``headers`` | Request headers, credentials masked (see `Secrets`). |
    | ``body``, ``raw_body`` | The body as text and as bytes. |
    | ``json`` | The parsed JSON body, or ``None``. |
    | ``form`` | Fields of a form-encoded body (also without a Content-Type), or a ``GET``'s query. |
    | ``received`` | ISO 8601 local time with milliseconds. |
    | ``client`` | The caller's ``address:port``. |
    | ``response_status`` | The status the receiver answered with. |

    = Secrets =

    ``Authorization``, API-key, token, cookie and signature headers show as ``***`` in the log and in the
    returned dictionaries (Robot logs assigned values). To check such a header, filter on it with
    ``headers=``, which compares the real value without logging it.

    = Scope and cleanup =

    The library scope is ``GLOBAL``: one instance for the whole run, so a receiver started in a parent
    suite's ``__init__.robot`` serves its child suites. With ``auto_stop`` (the default) a receiver stops
    when the test, or the suite whose setup started it, ends, and is forgotten with its recorded requests
    (a receiver stopped with `Stop Webhook Receiver` keeps them). `Stop All Webhook Receivers` never fails and
    fits any teardown. Server threads never log; the keywords log what they find, from Robot's thread.
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_VERSION = __version__
    ROBOT_LIBRARY_DOC_FORMAT = "ROBOT"

    def __init__(self, *, timeout: timedelta = timedelta(seconds=10), auto_stop: bool = True) -> None:
        """Configures the library; both arguments are optional.

        | =Argument= | =Meaning= |
        | ``timeout`` | Default timeout of `Wait Until Webhook Received`. |
        | ``auto_stop`` | Stop a receiver when the test or suite that started it ends (see `Scope and cleanup`). |

        With ``auto_stop=False`` receivers run until `Stop Webhook Receiver`, `Stop All Webhook Receivers`
        or the end of the run.

        | Library | WebhookLibrary | timeout=30s | auto_stop=False |
        """
        if timeout < timedelta(0):
            raise ValueError(f"timeout={timeout} is negative; give e.g. 10s.")
        self.ctx = WebhookContext(timeout=timeout, auto_stop=auto_stop)
        components = [ReceiverKeywords(self.ctx), RequestKeywords(self.ctx), AutoStopListener(self.ctx)]
        super().__init__(components)
