"""Test phones (a pjsua2 account on its own transport) and their calls, with what their callbacks saw.

Callbacks run on the keyword thread (poll mode, see `SipLibrary.host`). Each one only records what
happened; a Python exception never leaves a callback, because pjsua would not survive it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

import pjsua2 as pj

from SipLibrary.addressing import offered_codecs, parse_headers, split_name_addr, user_of
from SipLibrary.errors import SipError
from SipLibrary.host import MAX_CALL_LEGS, PjHost, destroy
from SipLibrary.quality import mos

F = TypeVar("F", bound=Callable[..., None])


class CallState(Enum):
    """The states of a call (pjsip INVITE session), in the order a call passes them."""

    NULL = "NULL"
    CALLING = "CALLING"
    INCOMING = "INCOMING"
    EARLY = "EARLY"
    CONNECTING = "CONNECTING"
    CONFIRMED = "CONFIRMED"
    DISCONNECTED = "DISCONNECTED"


class MediaDirection(Enum):
    """The audio direction of the local side of a call, as negotiated in SDP."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"


STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: CallState.NULL,
    pj.PJSIP_INV_STATE_CALLING: CallState.CALLING,
    pj.PJSIP_INV_STATE_INCOMING: CallState.INCOMING,
    pj.PJSIP_INV_STATE_EARLY: CallState.EARLY,
    pj.PJSIP_INV_STATE_CONNECTING: CallState.CONNECTING,
    pj.PJSIP_INV_STATE_CONFIRMED: CallState.CONFIRMED,
    pj.PJSIP_INV_STATE_DISCONNECTED: CallState.DISCONNECTED,
}
DIRECTIONS = {
    pj.PJMEDIA_DIR_NONE: MediaDirection.INACTIVE,
    pj.PJMEDIA_DIR_ENCODING: MediaDirection.SENDONLY,
    pj.PJMEDIA_DIR_DECODING: MediaDirection.RECVONLY,
    pj.PJMEDIA_DIR_ENCODING_DECODING: MediaDirection.SENDRECV,
}
MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}
FINAL_TSX = (pj.PJSIP_TSX_STATE_COMPLETED, pj.PJSIP_TSX_STATE_TERMINATED)
COUNTERS = ("packets_sent", "bytes_sent", "packets_received", "bytes_received", "packets_lost")


def guarded(method: F) -> F:
    """Run a pjsua2 callback so that no Python exception reaches pjsua; failures are noted for the keyword."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception as error:
            self.host.callback_failed(f"{type(self).__name__}.{method.__name__}", error)

    return wrapper  # type: ignore[return-value]


@dataclass
class RegEvent:
    code: int
    reason: str
    expiration: int
    at: float


@dataclass
class Message:
    """A SIP MESSAGE a phone received."""

    from_uri: str
    from_display: str
    to_uri: str
    content_type: str
    text: str
    headers: dict[str, str]
    source: str
    received_at: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from_uri": self.from_uri,
            "from_display": self.from_display,
            "from_number": user_of(self.from_uri),
            "to_uri": self.to_uri,
            "content_type": self.content_type,
            "text": self.text,
            "headers": dict(self.headers),
            "source": self.source,
        }


@dataclass
class PhoneConfig:
    alias: str
    user: str
    password: str | None = field(repr=False)
    domain: str | None
    registrar: str | None
    outbound_proxy: str | None
    transport: str
    codecs: list[str]
    port: int
    display_name: str | None
    auth_user: str | None
    auto_answer: int | None
    expires: int


class PhoneCall(pj.Call):
    """One call leg of a phone: a pjsua2 call plus everything its callbacks recorded."""

    def __init__(self, phone: SipPhone, *, handle: str, direction: str, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(phone.account, call_id)
        self.phone = phone
        self.host: PjHost = phone.host
        self.handle = handle
        self.direction = direction
        self.alive = True
        self.counted = False
        self.state = CallState.NULL
        self.history: list[tuple[CallState, int, float]] = []
        self.last_status = 0
        self.last_reason = ""
        self.remote_uri = ""
        self.remote_contact = ""
        self.local_uri = ""
        self.sip_call_id = ""
        self.created_at = time.monotonic()
        self.confirmed_at: float | None = None
        self.ended_at: float | None = None
        self.invite: dict[str, Any] | None = None
        self.claimed = False
        self.answered = False
        self.replaced_by: str | None = None
        self.replaces: str | None = None
        self.dtmf: list[tuple[str, str, float]] = []
        self.dtmf_taken = 0
        self.info_results: list[tuple[int, str]] = []
        self.reinvite_pending = False
        self.reinvite_result: tuple[int, str] | None = None
        self.transfer_events: list[tuple[int, str, bool]] = []
        self.media_status = "none"
        self.media_direction: MediaDirection | None = None
        self.media_updates = 0
        self.stream: dict[str, Any] = {}
        self.totals: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.final_stats: dict[str, Any] | None = None
        self.players: list[Any] = []
        self.recorder: Any = None
        self.recording_path: str | None = None

    # --- reading -------------------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.state is CallState.DISCONNECTED

    @property
    def setup_ms(self) -> float | None:
        if self.confirmed_at is None:
            return None
        return round((self.confirmed_at - self.created_at) * 1000, 2)

    def describe(self) -> str:
        code = f" ({self.last_status} {self.last_reason})" if self.last_status else ""
        return f"{self.handle} [{self.state.value}{code}]"

    def audio_index(self) -> int | None:
        if not self.alive:
            return None
        try:
            info = self.getInfo()  # keep it: .media points into it (a SWIG temporary would be freed)
            for media in info.media:
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status != pj.PJSUA_CALL_MEDIA_NONE:
                    return int(media.index)
        except pj.Error:
            return None
        return None

    def audio_media(self) -> Any:
        index = self.audio_index()
        if index is None:
            raise SipError(f"Call {self.describe()} has no audio media (yet): answer it or wait until CONFIRMED.")
        return self.getAudioMedia(index)

    def stats(self) -> dict[str, Any]:
        """RTP counters (all streams of the call so far), the current stream's jitter, RTT and a MOS estimate."""
        if not self.alive:
            return dict(self.final_stats or self._stats_from({}, self.totals))
        index = self.audio_index()
        current: dict[str, Any] = {}
        if index is not None:
            try:
                current = self._read_stream(index)
            except pj.Error:
                current = {}
        return self._stats_from(current, self.totals)

    def _read_stream(self, index: int) -> dict[str, Any]:
        stat = self.getStreamStat(index)
        info = self.getStreamInfo(index)
        transport = self.getMedTransportInfo(index)
        rx, tx = stat.rtcp.rxStat, stat.rtcp.txStat
        return {
            "packets_sent": int(tx.pkt),
            "bytes_sent": int(tx.bytes),
            "packets_received": int(rx.pkt),
            "bytes_received": int(rx.bytes),
            "packets_lost": int(rx.loss),
            "jitter_ms": round(rx.jitterUsec.mean / 1000, 3) if rx.jitterUsec.n else 0.0,
            "rtt_ms": round(stat.rtcp.rttUsec.mean / 1000, 3) if stat.rtcp.rttUsec.n else 0.0,
            "codec": f"{info.codecName}/{info.codecClockRate}",
            "remote_rtp_address": str(info.remoteRtpAddress),
            "source_rtp_address": str(transport.srcRtpName),
            "local_rtp_address": str(transport.localRtpName),
        }

    def _stats_from(self, current: dict[str, Any], totals: dict[str, int]) -> dict[str, Any]:
        result: dict[str, Any] = {name: totals[name] + int(current.get(name, 0)) for name in COUNTERS}
        received, lost = result["packets_received"], result["packets_lost"]
        loss = round(100.0 * lost / (received + lost), 2) if received + lost else 0.0
        jitter = float(current.get("jitter_ms", self.stream.get("jitter_ms", 0.0)))
        rtt = float(current.get("rtt_ms", self.stream.get("rtt_ms", 0.0)))
        result.update(
            loss_percent=loss,
            jitter_ms=jitter,
            rtt_ms=rtt,
            mos=mos(loss, jitter, rtt / 2),
            codec=current.get("codec", self.stream.get("codec", "")),
            remote_rtp_address=current.get("remote_rtp_address", self.stream.get("remote_rtp_address", "")),
            source_rtp_address=current.get("source_rtp_address", self.stream.get("source_rtp_address", "")),
            local_rtp_address=current.get("local_rtp_address", self.stream.get("local_rtp_address", "")),
        )
        return result

    def live_direction(self) -> MediaDirection | None:
        if self.alive:
            try:
                info = self.getInfo()  # keep it alive while reading .media
                for media in info.media:
                    if media.type == pj.PJMEDIA_TYPE_AUDIO:
                        self.media_direction = DIRECTIONS.get(media.dir, MediaDirection.INACTIVE)
                        self.media_status = MEDIA_STATUS.get(media.status, str(media.status))
                        break
            except pj.Error:
                pass
        return self.media_direction

    def info(self) -> dict[str, Any]:
        display, uri = split_name_addr(self.remote_uri)
        return {
            "call": self.handle,
            "phone": self.phone.alias,
            "direction": self.direction,
            "state": self.state.value,
            "last_status": self.last_status,
            "last_reason": self.last_reason,
            "remote_uri": uri,
            "remote_display": display,
            "remote_number": user_of(uri),
            "local_uri": split_name_addr(self.local_uri)[1],
            "sip_call_id": self.sip_call_id,
            "setup_ms": self.setup_ms,
            "duration": round((self.ended_at or time.monotonic()) - (self.confirmed_at or time.monotonic()), 3)
            if self.confirmed_at
            else 0.0,
            "media_status": self.media_status,
            "media_direction": self.media_direction.value if self.media_direction else None,
            "codec": self.stream.get("codec", ""),
            "history": [state.value for state, _, _ in self.history],
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
        }

    # --- callbacks -------------------------------------------------------------------------------------------

    @guarded
    def onCallState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 callback name
        info = self.getInfo()
        self._snapshot(info)
        if self.state is CallState.DISCONNECTED:
            try:
                self._ended()
            finally:
                # The C++ call goes now, while its pjsua slot is still this call's: destroyed later, it would
                # clear (or hang up) whichever new call pjsua put in the same slot.
                self.alive = False
                self.host.forget(self)
            return
        now = time.monotonic()
        if not self.counted:
            self.counted = True
            self.host.leg_opened()
        self.history.append((self.state, self.last_status, now))
        status = f" ({self.last_status} {self.last_reason})" if self.last_status else ""
        self.host.note(f"{self.handle}: {self.state.value}{status}")
        if self.state is CallState.CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = now

    def _ended(self) -> None:
        self.ended_at = time.monotonic()
        self.history.append((self.state, self.last_status, self.ended_at))
        self.host.note(f"{self.handle}: DISCONNECTED ({self.last_status} {self.last_reason})")
        if self.counted:
            self.host.leg_closed()
        self.final_stats = self._stats_from({}, self.totals)
        self.phone.call_ended(self)

    def _snapshot(self, info: Any) -> None:
        self.state = STATE_NAMES.get(info.state, CallState.NULL)
        self.last_status = int(info.lastStatusCode)
        self.last_reason = str(info.lastReason)
        self.remote_uri = str(info.remoteUri)
        self.remote_contact = str(info.remoteContact)
        self.local_uri = str(info.localUri)
        self.sip_call_id = str(info.callIdString)

    @guarded
    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        self.media_updates += 1
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            self.media_direction = DIRECTIONS.get(media.dir, MediaDirection.INACTIVE)
            self.media_status = MEDIA_STATUS.get(media.status, str(media.status))
            if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                audio = self.getAudioMedia(media.index)
                # RFC 2833 digits are only sent and received while a source feeds the stream: the null device.
                self.host.ep.audDevManager().getCaptureDevMedia().startTransmit(audio)
                for player in self.players:
                    player.startTransmit(audio)
                if self.recorder is not None:
                    audio.startTransmit(self.recorder)
                with contextlib.suppress(pj.Error):
                    with_stream = self._read_stream(media.index)
                    self.stream.update({k: v for k, v in with_stream.items() if k not in COUNTERS})
            break
        self.host.note(
            f"{self.handle}: media {self.media_status}, {self.media_direction and self.media_direction.value}"
        )

    @guarded
    def onStreamDestroyed(self, prm: Any) -> None:  # noqa: N802
        current = self._read_stream(prm.streamIdx)
        for name in COUNTERS:
            self.totals[name] += int(current.get(name, 0))
        self.stream.update({k: v for k, v in current.items() if k not in COUNTERS})

    @guarded
    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        method = "rfc2833" if prm.method == pj.PJSUA_DTMF_METHOD_RFC2833 else "info"
        self.dtmf.append((str(prm.digit).upper(), method, time.monotonic()))
        self.host.note(f"{self.handle}: DTMF '{prm.digit}' by {method}")

    @guarded
    def onCallTsxState(self, prm: Any) -> None:  # noqa: N802
        event = prm.e
        if event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = event.body.tsxState.tsx
        if tsx.role != pj.PJSIP_ROLE_UAC or tsx.state not in FINAL_TSX:
            return
        if event.body.tsxState.prevState in FINAL_TSX or tsx.statusCode < 200:
            return
        if tsx.method == "INFO":
            self.info_results.append((int(tsx.statusCode), str(tsx.statusText)))
        elif tsx.method == "INVITE" and self.reinvite_pending and self.state is CallState.CONFIRMED:
            self.reinvite_pending = False
            self.reinvite_result = (int(tsx.statusCode), str(tsx.statusText))

    @guarded
    def onCallTransferRequest(self, prm: Any) -> None:  # noqa: N802
        self.host.note(f"{self.handle}: REFER to {prm.dstUri}")
        if self.host.legs + 1 > MAX_CALL_LEGS or not self.host.media_keys_free_for(1):
            prm.statusCode = 503
            self.host.note(f"{self.handle}: refused the transfer (503): no free call leg in this process")
            return
        new_call = self.phone.new_call(direction="outgoing")
        new_call.replaces = None
        prm.newCall = new_call

    @guarded
    def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802
        self.transfer_events.append((int(prm.statusCode), str(prm.reason), bool(prm.finalNotify)))
        self.host.note(f"{self.handle}: transfer progress {prm.statusCode} {prm.reason}")

    @guarded
    def onCallReplaced(self, prm: Any) -> None:  # noqa: N802
        new_call = self.phone.new_call(direction="incoming", call_id=prm.newCallId)
        new_call.replaces = self.handle
        new_call.answered = True
        self.replaced_by = new_call.handle
        prm.newCall = new_call
        self.host.note(f"{self.handle}: replaced by {new_call.handle}")

    @guarded
    def onInstantMessage(self, prm: Any) -> None:  # noqa: N802
        self.phone.record_message(prm)


# Each phone's transport address ("127.0.0.1:40123") -> the phone, for incoming calls sent to its contact.
PHONES_BY_ADDRESS: dict[str, SipPhone] = {}


def request_uri_address(message: str) -> str:
    """``host:port`` of the Request-URI in a SIP request's first line, or an empty string."""
    parts = message.split("\n", 1)[0].strip().split(" ")
    if len(parts) < 3 or not parts[1].lower().startswith(("sip:", "sips:")):
        return ""
    hostport = parts[1].split(":", 1)[1].split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0].split(">", 1)[0]
    return hostport if ":" in hostport.rsplit("]", 1)[-1] else f"{hostport}:5060"


class _Account(pj.Account):
    """The phone's pjsua2 account: hears incoming calls, registration results and SIP MESSAGEs."""

    def __init__(self, phone: SipPhone) -> None:
        super().__init__()
        self.phone = phone
        self.host = phone.host

    @guarded
    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802 - pjsua2 callback name
        # pjsua picks the account by the To header; a call forwarded or diverted by a proxy keeps the To of the
        # number dialled, so it would land on that phone. The phone it was really sent to owns the R-URI's address.
        addressed = request_uri_address(str(prm.rdata.wholeMsg))
        PHONES_BY_ADDRESS.get(addressed, self.phone).incoming_call(prm)

    @guarded
    def onRegState(self, prm: Any) -> None:  # noqa: N802
        event = RegEvent(int(prm.code), str(prm.reason), int(prm.expiration), time.monotonic())
        self.phone.reg_events.append(event)
        self.host.note(f"{self.phone.alias}: registration {event.code} {event.reason} (expires {event.expiration})")

    @guarded
    def onInstantMessage(self, prm: Any) -> None:  # noqa: N802
        self.phone.record_message(prm)

    @guarded
    def onInstantMessageStatus(self, prm: Any) -> None:  # noqa: N802
        self.phone.messages_pending = max(0, self.phone.messages_pending - 1)
        self.phone.message_status.append((str(prm.toUri), str(prm.msgBody), int(prm.code), str(prm.reason)))


class SipPhone:
    """A test phone: its own SIP transport (port) and account, its calls, and what it received."""

    def __init__(self, host: PjHost, config: PhoneConfig) -> None:
        self.host = host
        self.config = config
        self.alias = config.alias
        self.account: Any = None
        self.transport_id: int | None = None
        self.local_address = ""
        self.uri = ""
        self.contact_uri = ""
        self.calls: list[PhoneCall] = []
        self.counter = 0
        self.reg_events: list[RegEvent] = []
        self.messages: list[Message] = []
        self.message_status: list[tuple[str, str, int, str]] = []
        self.buddies: dict[str, Any] = {}
        self.messages_pending = 0
        self.registered = False

    # --- set-up --------------------------------------------------------------------------------------------

    def open(self) -> None:
        config = self.config
        ep = self.host.endpoint()
        transport = pj.TransportConfig()
        transport.port = config.port
        transport.boundAddress = self.host.settings.bind_address
        transport.publicAddress = self.host.settings.bind_address
        kind = pj.PJSIP_TRANSPORT_TCP if config.transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
        try:
            self.transport_id = int(ep.transportCreate(kind, transport))
        except pj.Error as error:
            raise SipError(
                f"Cannot open a SIP {config.transport.upper()} port for phone '{self.alias}' on "
                f"{self.host.settings.bind_address}:{config.port}: {error.reason}. "
                "Use another port= (0 picks a free one)."
            ) from None
        self.host.transports.add(self.transport_id)
        self.local_address = str(ep.transportGetInfo(self.transport_id).localName)
        PHONES_BY_ADDRESS[self.local_address] = self
        suffix = ";transport=tcp" if config.transport == "tcp" else ""
        self.contact_uri = f"sip:{config.user}@{self.local_address}{suffix}"
        domain = config.domain or self.local_address
        aor = f"sip:{config.user}@{domain}"
        self.uri = aor
        account_config = pj.AccountConfig()
        account_config.idUri = f'"{_quote(config.display_name)}" <{aor}>' if config.display_name else aor
        account_config.sipConfig.transportId = self.transport_id
        account_config.mediaConfig.transportConfig.boundAddress = self.host.settings.bind_address
        account_config.mediaConfig.transportConfig.publicAddress = self.host.settings.bind_address
        account_config.mediaConfig.transportConfig.port = 0
        if config.registrar:
            account_config.regConfig.registrarUri = config.registrar
            account_config.regConfig.registerOnAdd = False
            account_config.regConfig.timeoutSec = config.expires
            account_config.regConfig.retryIntervalSec = 0
            account_config.regConfig.dropCallsOnFail = False
        if config.outbound_proxy:
            account_config.sipConfig.proxies.append(f"<{config.outbound_proxy};lr>")
        if config.password is not None:
            account_config.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", config.auth_user or config.user, 0, config.password)
            )
        account = _Account(self)
        try:
            account.create(account_config)
        except pj.Error as error:
            destroy(account)
            self._close_transport()
            raise SipError(f"pjsua2 refused phone '{self.alias}' ({aor}): {error.reason}.") from None
        self.account = self.host.track(account)

    def _close_transport(self) -> None:
        if self.transport_id is None or not self.host.started:
            return
        with contextlib.suppress(pj.Error, SipError):
            self.host.endpoint().transportClose(self.transport_id)
        self.host.transports.discard(self.transport_id)
        self.transport_id = None

    # --- calls -----------------------------------------------------------------------------------------------

    def new_call(self, *, direction: str, call_id: int = pj.PJSUA_INVALID_ID) -> PhoneCall:
        self.counter += 1
        call = PhoneCall(self, handle=f"{self.alias}/{self.counter}", direction=direction, call_id=call_id)
        self.calls.append(self.host.track(call))
        return call

    def drop_call(self, call: PhoneCall) -> None:
        """Forget a call pjsua never started (``makeCall`` failed)."""
        if call in self.calls:
            self.calls.remove(call)
        self.host.forget(call)
        self.counter -= 1

    def incoming_call(self, prm: Any) -> None:
        call = self.new_call(direction="incoming", call_id=prm.callId)
        call.counted = True
        self.host.leg_opened()
        message = str(prm.rdata.wholeMsg)
        headers = parse_headers(message)
        from_display, from_uri = split_name_addr(headers.get("From", ""))
        to_uri = split_name_addr(headers.get("To", ""))[1]
        pai_display, pai_uri = split_name_addr(headers.get("P-Asserted-Identity", ""))
        call.invite = {
            "call": call.handle,
            "from_uri": from_uri,
            "from_display": from_display,
            "from_number": user_of(from_uri),
            "to_uri": to_uri,
            "to_number": user_of(to_uri),
            "p_asserted_identity": pai_uri,
            "p_asserted_display": pai_display,
            "p_asserted_number": user_of(pai_uri),
            "headers": headers,
            "codecs": [name for name in offered_codecs(message) if name.lower() != "telephone-event"],
            "source": str(prm.rdata.srcAddress),
            "sip_call_id": headers.get("Call-ID", ""),
        }
        info = call.getInfo()
        call._snapshot(info)
        self.host.note(f"{call.handle}: incoming call from {headers.get('From', '?')}")
        wanted = {name.split("/")[0].lower() for name in self.config.codecs}
        offered = {name.lower() for name in call.invite["codecs"]}
        if offered and not wanted & offered:
            self.host.note(f"{call.handle}: none of {sorted(wanted)} offered ({sorted(offered)}): 488")
            call.answer(_op(488))
            call.answered = True
            return
        if self.config.auto_answer is not None:
            call.answer(_op(self.config.auto_answer))
            call.answered = self.config.auto_answer >= 200

    def call_ended(self, call: PhoneCall) -> None:
        """Clean-up that must not run inside the callback: stop the call's players, finish its recording."""
        players, call.players = call.players, []
        recorder, call.recorder = call.recorder, None

        def finish() -> None:
            for player in players:
                self.host.forget(player)
            if recorder is not None:
                self.host.forget(recorder)

        if players or recorder is not None:
            self.host.deferred.append(finish)

    def active_calls(self) -> list[PhoneCall]:
        return [call for call in self.calls if not call.ended and call.alive]

    # --- messages --------------------------------------------------------------------------------------------

    def record_message(self, prm: Any) -> None:
        raw = str(prm.rdata.wholeMsg) if prm.rdata is not None else ""
        display, uri = split_name_addr(str(prm.fromUri))
        message = Message(
            from_uri=uri,
            from_display=display,
            to_uri=split_name_addr(str(prm.toUri))[1],
            content_type=str(prm.contentType),
            text=str(prm.msgBody),
            headers=parse_headers(raw) if raw else {},
            source=str(prm.rdata.srcAddress) if prm.rdata is not None else "",
        )
        self.messages.append(message)
        self.host.note(f"{self.alias}: SIP MESSAGE from {uri}: {message.text[:80]!r}")

    def buddy(self, uri: str) -> Any:
        if uri not in self.buddies:
            config = pj.BuddyConfig()
            config.uri = uri
            config.subscribe = False
            buddy = pj.Buddy()
            try:
                buddy.create(self.account, config)
            except pj.Error as error:
                destroy(buddy)
                raise SipError(f"pjsua2 cannot send to '{uri}' from '{self.alias}': {error.reason}.") from None
            self.buddies[uri] = self.host.track(buddy)
        return self.buddies[uri]

    # --- closing -------------------------------------------------------------------------------------------

    def close(self, timeout: float) -> list[str]:
        """Hang up, unregister, release every pjsua2 object of the phone. Never raises; returns what went wrong."""
        if PHONES_BY_ADDRESS.get(self.local_address) is self:
            del PHONES_BY_ADDRESS[self.local_address]
        problems: list[str] = []
        if not self.host.started or self.account is None:
            return problems
        for call in self.active_calls():
            try:
                call.hangup(_op(None))
            except pj.Error as error:
                problems.append(f"hang up {call.handle}: {error.reason}")
        try:
            self.host.wait(lambda: not self.active_calls(), timeout)
        except SipError as error:
            problems.append(str(error))
        if self.active_calls():
            problems.append(f"calls still up after {timeout:g} s: {', '.join(c.handle for c in self.active_calls())}")
        if self.registered:
            try:
                before = len(self.reg_events)
                self.account.setRegistration(False)
                self.host.wait(lambda: len(self.reg_events) > before, min(timeout, 1.0))
            except (pj.Error, SipError) as error:
                problems.append(f"unregister: {getattr(error, 'reason', error)}")
            self.registered = False
        for call in self.calls:
            self.call_ended(call)
            self.host.forget(call)
        self.host.run_deferred()
        if self.messages_pending:
            self.host.wait(lambda: not self.messages_pending, min(timeout, 1.0))
        if self.messages_pending:
            # pjsua2 looks the account up when the answer (or the 32 s timeout) of a SIP MESSAGE arrives, and
            # aborts if the account is gone: keep it until then (or until the endpoint is destroyed).
            problems.append(f"{self.messages_pending} SIP MESSAGE(s) still unanswered; the account is kept until then")
            self.host.park(self.account, [*self.buddies.values()], lambda: not self.messages_pending)
        else:
            self.release_account(self.account, [*self.buddies.values()], self.host)
        self.buddies.clear()
        self.account = None
        self._close_transport()
        return problems

    @staticmethod
    def release_account(account: Any, buddies: list[Any], host: PjHost) -> None:
        for buddy in buddies:
            host.forget(buddy)
        with contextlib.suppress(pj.Error):
            account.shutdown()
        host.forget(account)


def _op(code: int | None, reason: str = "") -> Any:
    prm = pj.CallOpParam(True)
    if code is not None:
        prm.statusCode = code
    if reason:
        prm.reason = reason
    return prm


def call_op(code: int | None = None, reason: str = "") -> Any:
    """A ``CallOpParam`` with default call settings and, optionally, a status code and reason."""
    return _op(code, reason)


def _quote(text: str) -> str:
    return re.sub(r'(["\\])', r"\\\1", text)
