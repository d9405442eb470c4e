"""SipLoadLibrary: SIP load with SIPp as Robot Framework keywords.

The façade composes the keyword components in ``keywords/``; they share one `SippContext`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from robotlibcore import DynamicCore

from SipLoadLibrary.context import SippContext
from SipLoadLibrary.errors import SippError, SippTargetError, SippTimeoutError
from SipLoadLibrary.keywords import ResultKeywords, RunKeywords

__version__ = "0.1.0"
__all__ = ["SipLoadLibrary", "SippError", "SippTargetError", "SippTimeoutError"]


class _AutoStop:
    """Library listener: kills the SIPp instances a run left running when the library goes out of scope."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: SippContext) -> None:
        self.ctx = ctx

    def close(self) -> None:
        self.ctx.stop_all(0)


class SipLoadLibrary(DynamicCore):
    """SipLoadLibrary puts SIP load on the platform with [https://sipp.sourceforge.net|SIPp] (3.6, ``sip-tester``).

    It starts SIPp user agents as background processes, each with its own SIP, media and control ports:
    UASs that answer calls (a PSTN peer, a voice application, a load sink) and UACs that place calls at a
    rate, directly or through the proxy (Kamailio, or the lab's stand-in) with digest authentication. It
    reads SIPp's ``-trace_stat`` statistics and ``-trace_rtt`` response times into results that tests check
    with inline assertions. pjsua2 phones (SipLibrary) are for functional calls; load goes through SIPp.

    %TOC%

    = Scenarios =

    The library brings two scenarios written for this project (``SipLoadLibrary/scenarios/``), edited from
    SIPp's built-in ones so that they work through a record-routing proxy:

    | = Name = | = What it does = |
    | ``uac`` | INVITE with SDP; a 407 (optional) is ACKed and the INVITE sent again with digest credentials; |
    | | 100/180/183 optional; ACK and BYE follow the Record-Route set (``[next_url]``, ``[routes]``); |
    | | response time ``setup``: first INVITE to 200 |
    | ``uas`` | 200 with SDP at once, echoing the INVITE's Record-Route; 200 to the BYE (the load sink) |
    | ``uas_ringing`` | 180 first, then as ``uas`` (through a multi-worker proxy a late 180 may fail a call) |

    ``scenario`` also takes an XML file of your own or a SIPp built-in as ``sipp:NAME``.

    = Instances =

    Every instance has an ``alias`` (default ``uas1``, ``uac2``, ...): `Wait For SIPp`, `Stop SIPp`,
    `Get SIPp Result` and `Set SIPp Rate` name it, or act on the last one started. Its files (statistics,
    errors, the final screen, response times) are in a folder of its own below ``${OUTPUT DIR}/sipp``.
    Stop what a test started in its teardown with `Stop All SIPp`; it kills by PID and never fails, and
    the library runs it again when it goes out of scope.

    | ${uas}= | `Start SIPp UAS` | sink |
    | ${result}= | `Run SIPp UAC` | ${uas} | rate=20 | duration=3s |
    | `SIPp Result Should Be` | failed | == | 0 |
    | [Teardown] | `Stop All SIPp` |

    Through the proxy, to a user whose contact is the UAS:

    | ${result}= | `Run SIPp UAC` | ${SIP_PROXY} | 1020 | rate=100 | duration=10s |
    | ... | auth_user=1001 | auth_password=${PW} |
    | `SIPp Result Should Be` | failed | == | 0 |
    | `SIPp Result Should Be` | calls_per_second | >= | 99 |

    = Results =

    `Run SIPp UAC`, `Wait For SIPp`, `Stop SIPp` and `Get SIPp Result` return a dictionary: calls created,
    successful, failed (and why), retransmissions, current calls, calls per second, response times
    (mean, and p50/p95/p99/max from ``-trace_rtt``), exit code. `Get SIPp Result` lists every key.

    = Errors =

    A target where nothing listens fails at once (``Nothing listens on UDP 127.0.0.1:5999``); a bad rate,
    count or duration fails before SIPp starts; a SIPp that cannot start (port taken, bad scenario) fails
    with SIPp's own message. Failed calls never fail `Run SIPp UAC`: assert on them. Digest passwords
    appear as ``***`` in the log.
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_VERSION = __version__

    def __init__(
        self,
        *,
        sipp: str = "sipp",
        host: str = "127.0.0.1",
        timeout: timedelta = timedelta(seconds=30),
        output_dir: str | None = None,
        max_lifetime: timedelta = timedelta(hours=1),
    ) -> None:
        """Configures the library; all arguments are optional and named.

        | = Argument = | = Default = | = Meaning = |
        | sipp | sipp | The SIPp program (a name on PATH or a path). |
        | host | 127.0.0.1 | The address SIPp binds its SIP and media sockets to. |
        | timeout | 30 s | `Wait For SIPp`'s default; `Run SIPp UAC` adds it to the planned run time. |
        | output_dir | ${OUTPUT DIR}/sipp | Where each instance's folder goes. |
        | max_lifetime | 1 hour | SIPp's own ``-timeout``: an instance ends by itself after this, whatever |
        | | | happens to the Robot run. |

        | Library | SipLoadLibrary | timeout=${SIP_LOAD_TIMEOUT} |
        """
        if timeout.total_seconds() <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        if max_lifetime.total_seconds() < 1:
            raise ValueError(f"max_lifetime must be at least 1 second, got {max_lifetime}.")
        self.ctx = SippContext(sipp=sipp, host=host, timeout=timeout, output_dir=output_dir, max_lifetime=max_lifetime)
        self.ROBOT_LIBRARY_LISTENER = _AutoStop(self.ctx)
        components: list[Any] = [RunKeywords(self.ctx), ResultKeywords(self.ctx)]
        DynamicCore.__init__(self, components)
