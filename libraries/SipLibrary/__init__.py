"""SipLibrary: test phones (SIP user agents with real RTP) for voice tests, on pjsua2.

The façade composes the keyword components in ``keywords/``; they share one `SipContext`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from robotlibcore import DynamicCore

from SipLibrary.context import SipContext
from SipLibrary.errors import SipCapacityError, SipError, SipStatusError
from SipLibrary.host import KNOWN_CODECS, HostSettings
from SipLibrary.keywords import (
    CallKeywords,
    DtmfKeywords,
    MediaKeywords,
    MessageKeywords,
    MidCallKeywords,
    PhoneKeywords,
)
from SipLibrary.phone import CallState, MediaDirection

__version__ = "0.1.0"
__all__ = ["CallState", "MediaDirection", "SipCapacityError", "SipError", "SipLibrary", "SipStatusError"]


class _AutoClose:
    """Library listener: closes the phones a run left open and releases the pjsua2 endpoint at library close."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: SipContext) -> None:
        self.ctx = ctx

    def close(self) -> None:
        self.ctx.shutdown()


class SipLibrary(DynamicCore):
    """SipLibrary gives tests SIP phones that really call: SIP signalling and RTP audio through pjsua2.

    A phone registers at the platform's SIP proxy (digest authentication), calls numbers and SIP URIs,
    answers or rejects calls, sends and receives DTMF (RFC 2833 and SIP INFO) and SIP MESSAGEs, holds,
    resumes and transfers calls, plays and records WAV files, and reports RTP statistics with a MOS
    estimate. Phones also talk to each other directly, without a proxy, which the kit's own tests use.

    It runs [https://github.com/pjsip/pjproject|pjsua2] (the ``pjsua2-python`` wheel) with a null
    audio device, media on the library's ``bind_address`` only.

    %TOC%

    = Phones =

    `Create SIP Phone` makes a phone under an ``alias``; every other keyword names the phone by its alias
    first. A phone has its own SIP port. Without a registrar it answers at the URI `Create SIP Phone`
    returns (``sip:user@127.0.0.1:PORT``); with one, `Register SIP Phone` registers it. Passwords never
    appear in the log. Close phones in a teardown with `Close All SIP Phones`; the library also closes
    whatever is left when it goes out of scope.

    | ${bob_uri}= | `Create SIP Phone` | bob | bob |
    | `Create SIP Phone` | alice | alice | password=${ALICE_PW} | registrar=${SIP_PROXY} |
    | `Register SIP Phone` | alice |
    | [Teardown] | `Close All SIP Phones` |

    = Calls =

    `Call` returns a handle such as ``alice/1``; `Wait For Incoming Call` returns the callee's handle in
    ``call``. Keywords take a handle with ``call=``; without it they act on the phone's latest call (in
    progress, where that matters). Call states are ``NULL``, ``CALLING``, ``INCOMING``, ``EARLY``,
    ``CONNECTING``, ``CONFIRMED`` and ``DISCONNECTED``; `Wait Until Call State` also checks the SIP status
    a call ended with:

    | ${call}= | `Call` | alice | ${bob_uri} |
    | ${incoming}= | `Wait For Incoming Call` | bob |
    | `Answer Call` | bob |
    | `Wait Until Call State` | alice | CONFIRMED |
    | `Send DTMF` | alice | 123# |
    | `Wait Until DTMF Received` | bob | 123# |
    | `Hang Up` | alice |
    | `Wait Until Call State` | bob | DISCONNECTED | status=200 |

    = Waiting =

    Nothing needs ``Sleep``: every keyword that depends on the far end waits up to its ``timeout``
    (default: the import argument) and fails naming what it saw. SIP is processed only while a SipLibrary
    keyword runs (see `Threading`), so follow a `Call` promptly with a SipLibrary wait.

    = DTMF =

    `Send DTMF` sends RFC 2833 telephone events (``method=rfc2833``, default) or SIP INFO
    (``method=info``); `Wait Until DTMF Received` checks the digits and, with ``method=``, how they came.
    Calls always carry audio (``noVad`` and the null capture device are connected to every call), so no
    RFC 2833 digit is lost to silence suppression.

    = Hold and transfer =

    `Hold Call` and `Resume Call` send re-INVITEs; `Media Direction Should Be` checks what each side
    negotiated (``sendonly`` on the holding side, ``recvonly`` on the held one). `Blind Transfer` and
    `Attended Transfer` send REFER and wait for the transferee's final NOTIFY.

    = SIP MESSAGE =

    `Send SIP MESSAGE` sends a page-mode message and checks its answer; `Wait Until SIP MESSAGE Received`
    takes a received one, matched by text and sender.

    = Media and recordings =

    `Play WAV File` plays 16-bit PCM WAV into a call; `Start Recording Call` / `Stop Recording` record what
    a phone hears; `Get WAV File Info` tells duration and loudness. `Media Should Be Flowing` proves RTP
    flows now; `Media Should Flow Through` proves where it flows (a relay such as RTPEngine, or end to end).

    = Voice quality =

    `Get RTP Statistics` returns ``mos``, estimated with the simplified ITU-T G.107 E-model:

    | effective latency = RTT / 2 + 2 x jitter + 10 ms |
    | R = 93.2 - effective latency / 40 (below 160 ms), else R = 93.2 - (effective latency - 120) / 10 |
    | R = R - 2.5 x packet loss (%) |
    | MOS = 1 + 0.035 R + 0.000007 R (R - 60) (100 - R), limited to 1.0 - 4.5 |

    Jitter is the mean receive jitter of the latest stream; the codec's own impairment is not counted
    (none for G.711), so for compressing codecs the value is an upper bound. Loopback calls score 4.4.

    = Codecs =

    ``codecs`` (import argument, default ``PCMU,PCMA``) is the codec order every phone offers; a phone's
    own ``codecs=`` replaces it for the calls it makes. pjsua answers in the offerer's order among the
    library's codecs; a phone refuses an offer with none of its codecs with 488.

    = Capacity =

    One process holds what the ``pjsua2-python`` 2.15.1 wheel allows (measured, not configurable):

    | = Limit = | = Value = | = What happens at it = |
    | call legs at once | 4 | `Call` and the transfers fail before sending; pjsua refuses more incoming calls (486). |
    | phones | 8 | One SIP transport each; `Create SIP Phone` fails. |
    | media sockets | 64 | 2 per call leg, each held 500 ms after the call: new calls wait (at most ~0.6 s). |

    So one process runs 2 calls between its own phones, or 4 calls with far ends elsewhere, at a time.
    pjsua2 is for functional tests; load tests use SIPp. An `Attended Transfer` among three local phones
    needs 5 legs: keep one party in another process.

    = Threading =

    pjsua2 runs in poll mode: no pjsua worker thread; the keyword thread pumps pjsua2 in every wait, so
    all callbacks run on the keyword thread and only there. Use the keywords from the thread that first
    used them (Robot's main thread). The one endpoint of the process starts on the first keyword that
    needs it and is destroyed when the last library instance closes.

    = Errors =

    A malformed URI, number, digit string or header fails with a ``ValueError`` that names it and shows
    the right form, before anything is sent; an unknown alias names the known ones. A SIP answer other than
    the expected one fails naming status and reason, e.g. ``Registration of 'alice' at sip:127.0.0.1:5060
    should have been answered 200 but was 401 Unauthorized.``
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_VERSION = __version__
    ROBOT_LIBRARY_DOC_FORMAT = "ROBOT"

    def __init__(
        self,
        *,
        timeout: timedelta = timedelta(seconds=10),
        codecs: str | list[str] = "PCMU,PCMA",
        bind_address: str = "127.0.0.1",
        sip_trace: bool = False,
        log_file: str | None = None,
        user_agent: str = "telco-robot SipLibrary",
    ) -> None:
        """Configures the library; all arguments are optional and named.

        | = Argument = | = Default = | = Meaning = |
        | timeout | 10 s | Default for every wait: incoming calls, answers, call states, DTMF, messages, media. |
        | codecs | PCMU,PCMA | Codec order offered (see `Codecs`): PCMU, PCMA, G722, speex, iLBC, GSM, L16. |
        | bind_address | 127.0.0.1 | Address for SIP and RTP sockets; it is also what SDP and Contact advertise. |
        | sip_trace | False | Log every SIP message sent and received at DEBUG level. |
        | log_file | (none) | Write pjsua's own detailed log (level 5) to this file. |
        | user_agent | telco-robot SipLibrary | The User-Agent header. |

        The settings apply to the process's one pjsua2 endpoint, so the first library instance to start it
        decides them.

        | Library | SipLibrary | timeout=${SIP_TIMEOUT} | codecs=PCMA,PCMU | sip_trace=True |
        """
        if timeout.total_seconds() <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        names = [codecs] if isinstance(codecs, str) else list(codecs)
        codec_names = tuple(name.strip() for item in names for name in str(item).split(",") if name.strip())
        if not codec_names:
            raise ValueError("codecs must name at least one codec, e.g. PCMU,PCMA.")
        unknown = [n for n in codec_names if n.split("/")[0].lower() not in {k.lower() for k in KNOWN_CODECS}]
        if unknown:
            raise ValueError(f"Unknown codec(s) {', '.join(unknown)}; use e.g. {', '.join(KNOWN_CODECS[:7])}.")
        if not bind_address.strip():
            raise ValueError("bind_address must be an IP address of this machine, e.g. 127.0.0.1.")
        settings = HostSettings(
            codecs=codec_names,
            bind_address=bind_address.strip(),
            sip_trace=sip_trace,
            log_file=log_file,
            user_agent=user_agent,
        )
        self.ctx = SipContext(settings=settings, timeout=timeout)
        self.ROBOT_LIBRARY_LISTENER = _AutoClose(self.ctx)
        components: list[Any] = [
            PhoneKeywords(self.ctx),
            CallKeywords(self.ctx),
            DtmfKeywords(self.ctx),
            MidCallKeywords(self.ctx),
            MessageKeywords(self.ctx),
            MediaKeywords(self.ctx),
        ]
        DynamicCore.__init__(self, components)

    def close(self) -> None:
        """Close every phone and release the pjsua2 endpoint (what Robot's library close does)."""
        self.ctx.shutdown()
