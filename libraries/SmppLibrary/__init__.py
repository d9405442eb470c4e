"""SmppLibrary: SMPP 3.4 keywords for both ends of an SMS gateway.

The façade composes the keyword components in ``keywords/``; they share one `SmppContext`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from robotlibcore import DynamicCore

from SmppLibrary.context import SmppContext
from SmppLibrary.errors import CarrierError, SmppConnectionError, SmppError, SmppStatusError
from SmppLibrary.keywords import BindKeywords, BulkKeywords, CarrierKeywords, DeliveryKeywords, SubmitKeywords
from SmppLibrary.keywords.http_api import HttpApiKeywords

__version__ = "0.1.0"
__all__ = ["CarrierError", "SmppConnectionError", "SmppError", "SmppLibrary", "SmppStatusError"]


class _AutoClose:
    """Library listener: closes the binds and carriers a test run left open when the library goes out of scope."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: SmppContext) -> None:
        self.ctx = ctx

    def close(self) -> None:
        self.ctx.shutdown()


class SmppLibrary(DynamicCore):
    """SmppLibrary tests an SMS platform over SMPP 3.4 from both sides of the SMS gateway.

    As a *customer* (an ESME) it binds to the gateway, submits SMS (GSM7, UCS2, Latin-1; long texts in
    parts), waits for delivery receipts and mobile-originated (MO) SMS, and measures bulk throughput.
    As the *upstream carrier* it runs an SMSC that the gateway binds to: it records what reached the
    carrier, answers with configurable statuses, latency and throttling, and sends receipts and MO.

    It speaks SMPP through [https://github.com/python-smpplib/python-smpplib|smpplib]; each bind has its
    own reader thread, so receipts and MO arrive while a test does something else.

    %TOC%

    = Connections =

    `Open SMPP Connection` binds and makes the new connection the current one; keywords act on the
    current connection. Give each an ``alias`` to use several (e.g. a transmitter and a receiver, or two
    customers) and move between them with `Switch SMPP Connection`. Close them in a teardown with
    `Close All SMPP Connections`; the library also closes whatever is left when it goes out of scope.

    A dropped link rebinds by itself (import argument ``rebind``); `SMPP Connection Should Be Bound` with a
    ``timeout`` waits for it, and `Get SMPP Connection Info` counts the ``rebinds``.

    | `Open SMPP Connection` | ${SMSC_HOST} | ${SMSC_PORT} | ${SYSTEM_ID} | ${PASSWORD} | alias=customer |
    | ${ids}= | `Submit SMS` | 4915100000001 | 4915100000002 | Hello |
    | `Wait Until Delivery Receipt` | ${ids} | state=DELIVRD |
    | [Teardown] | `Close All SMPP Connections` |

    = Texts, codings and parts =

    ``coding=auto`` sends GSM 03.38 (7-bit, unpacked as SMPP carries it) when every character fits, UCS2
    otherwise. One SMS holds 160 GSM7 / 70 UCS2 / 140 Latin-1 units; longer texts are split into parts of
    153 / 67 / 134 and concatenated with a UDH (``split=udh``), SAR TLVs (``split=sar``) or sent whole in
    ``message_payload`` (``split=payload``). GSM extension characters (``€ [ ] { } ~ ^ \\ |``) take two
    septets and emoji two UCS2 units; neither is ever cut between parts.

    = Delivery receipts and MO =

    Receipts are matched to message ids by the ``receipted_message_id`` TLV or the ``id:`` of the
    receipt text, case-insensitively (a hex id also matches its decimal form). `Wait Until Delivery Receipt`
    checks every part of a multi-part message; `Get Delivery Receipt` reads one with an inline assertion.
    MO SMS are joined from their parts (UDH or SAR, any order) and returned by `Wait Until SMS Received`.

    = Carrier SMSC =

    `Start Carrier SMSC` runs the carrier in this process; `Connect To Carrier SMSC` drives one that runs
    elsewhere (``python -m SmppLibrary.carrier --port 2776 --account gateway:secret --control-port 8776``)
    through its HTTP control API. Either way the same keywords read and steer it:

    | ${port}= | `Start Carrier SMSC` | accounts=${{ {'gateway': 'secret'} }} |
    | `Set Carrier Behaviour` | dlr_state=UNDELIV | dlr_delay=200ms |
    | `Carrier Should Have Received SMS` | to=4915100000002 | text=Hello | parts=1 |
    | `Carrier Sends MO SMS` | 4915100000002 | 4915100000001 | STOP |

    = Assertions and waits =

    Asynchronous results are read by keywords that wait up to a ``timeout`` (default: the import argument)
    instead of ``Sleep``. `Get Delivery Receipt` takes an inline assertion in the Browser library style
    (operators such as ``==``, ``!=``, ``contains``, ``matches``), retried until the timeout.

    = Errors =

    An error status from the SMSC fails naming it, e.g. ``ESME_RINVPASWD (0x0000000E, Invalid
    Password)``; an unreachable SMSC fails within the timeout naming ``host:port``; a malformed number fails
    before anything is sent. Passwords never appear in the log.
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_VERSION = __version__

    def __init__(
        self,
        *,
        timeout: timedelta = timedelta(seconds=10),
        rebind: bool = True,
        throttle_retries: int = 5,
        throttle_backoff: timedelta = timedelta(milliseconds=200),
    ) -> None:
        """Configures the library; all arguments are optional and named.

        | = Argument = | = Default = | = Meaning = |
        | timeout | 10 s | Default for every wait: connect and bind, each response, receipts, MO, carrier checks. |
        | rebind | True | Bind again by itself after the link drops (back-off from 0.1 s up to 2 s). |
        | throttle_retries | 5 | How often `Submit SMS` retries a part answered with ``ESME_RTHROTTLED``. |
        | throttle_backoff | 200 ms | First pause before such a retry; it doubles with each retry. |

        | Library | SmppLibrary | timeout=${SMPP_TIMEOUT} | throttle_retries=3 |
        """
        if timeout.total_seconds() <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        if throttle_retries < 0:
            raise ValueError(f"throttle_retries must be 0 or more, got {throttle_retries}.")
        if throttle_backoff.total_seconds() < 0:
            raise ValueError(f"throttle_backoff must not be negative, got {throttle_backoff}.")
        self.ctx = SmppContext(
            timeout=timeout, rebind=rebind, throttle_retries=throttle_retries, throttle_backoff=throttle_backoff
        )
        self.ROBOT_LIBRARY_LISTENER = _AutoClose(self.ctx)
        components: list[Any] = [
            BindKeywords(self.ctx),
            SubmitKeywords(self.ctx),
            DeliveryKeywords(self.ctx),
            BulkKeywords(self.ctx),
            CarrierKeywords(self.ctx),
            HttpApiKeywords(self.ctx),
        ]
        DynamicCore.__init__(self, components)
