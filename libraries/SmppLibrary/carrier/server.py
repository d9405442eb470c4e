"""The carrier SMSC: an asyncio SMPP 3.4 server playing the upstream carrier that an SMS gateway binds to.

It checks binds against configured accounts, answers submit_sm/data_sm with a configurable status and
latency, records every message it gets, sends delivery receipts (automatically per submit when asked for,
or on demand), injects MO messages, and answers anything it cannot read with a generic_nack without
dropping the other binds. It runs on its own thread with its own event loop; the public methods of
`CarrierSmsc` are safe to call from any other thread (the keyword thread, the HTTP control API).

Besides the default behaviour it keeps *destination rules*: a behaviour that applies only to submits whose
destination starts with a prefix (the longest matching prefix wins), so parallel tests sharing one carrier
can each ask for receipts or errors of their own without changing what the others get.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from SmppLibrary.carrier.pdu import (
    TLV_MESSAGE_PAYLOAD,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
    TLV_SC_INTERFACE_VERSION,
    MalformedPduError,
    Pdu,
    decode,
    encode,
    tlv_cstr,
    tlv_u8,
)
from SmppLibrary.codec import (
    ESM_DELIVERY_RECEIPT,
    ESM_UDHI,
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_ROK,
    ESME_RTHROTTLED,
    RECEIPT_STATES,
    Concat,
    SplitMethod,
    build_udh,
    coding_of,
    decode_text,
    encode_text,
    format_receipt,
    parse_coding,
    parse_udh,
    receipt_state,
    split_text,
    status_code,
    status_name,
)
from SmppLibrary.errors import CarrierError

T = TypeVar("T")
MAX_PDU_LENGTH = 64 * 1024
BIND_MODES = {"bind_transmitter": "transmitter", "bind_receiver": "receiver", "bind_transceiver": "transceiver"}
BEHAVIOUR_KEYS = (
    "submit_status",
    "latency",
    "dlr_state",
    "dlr_delay",
    "dlr_error",
    "auto_dlr",
    "max_rate",
    "throttle_next",
)


@dataclass
class Behaviour:
    """How the carrier answers. Times are seconds; ``max_rate`` is submits per second (``None``: no limit)."""

    submit_status: int = ESME_ROK
    latency: float = 0.0
    dlr_state: str = "DELIVRD"
    dlr_delay: float = 0.0
    dlr_error: int | None = None
    auto_dlr: bool = True
    max_rate: float | None = None
    throttle_next: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "submit_status": status_name(self.submit_status),
            "latency": self.latency,
            "dlr_state": self.dlr_state,
            "dlr_delay": self.dlr_delay,
            "dlr_error": self.dlr_error,
            "auto_dlr": self.auto_dlr,
            "max_rate": self.max_rate,
            "throttle_next": self.throttle_next,
        }

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply changes given as Python values or their JSON/string forms; unknown keys are an error."""
        unknown = sorted(set(changes) - set(BEHAVIOUR_KEYS))
        if unknown:
            raise ValueError(f"Unknown carrier behaviour {unknown}. Known: {', '.join(BEHAVIOUR_KEYS)}.")
        for key, value in changes.items():
            if value is None and key not in ("dlr_error", "max_rate"):
                continue
            if key == "submit_status":
                self.submit_status = status_code(value)
            elif key in ("latency", "dlr_delay"):
                seconds = _seconds(value)
                if seconds < 0:
                    raise ValueError(f"{key} must not be negative, got {value}.")
                setattr(self, key, seconds)
            elif key == "dlr_state":
                self.dlr_state = receipt_state(str(value))
            elif key == "dlr_error":
                self.dlr_error = None if value in (None, "") else int(str(value), 0)
            elif key == "auto_dlr":
                self.auto_dlr = _boolean(value)
            elif key == "max_rate":
                rate = float(value) if value not in (None, "") else 0.0
                self.max_rate = rate if rate > 0 else None
            elif key == "throttle_next":
                self.throttle_next = int(value)

    def receipt_error(self, state: str) -> int:
        if self.dlr_error is not None:
            return self.dlr_error
        return 0 if state == "DELIVRD" else 1

    def copy(self) -> Behaviour:
        return Behaviour(**self.__dict__)


class _Bucket:
    """A token bucket of ``rate`` tokens per second holding at most ``max(1, rate)``."""

    def __init__(self) -> None:
        self.tokens = 0.0
        self.time = time.monotonic()

    def reset(self, rate: float) -> None:
        self.tokens = max(1.0, rate)
        self.time = time.monotonic()

    def take(self, rate: float) -> bool:
        now = time.monotonic()
        self.tokens = min(max(1.0, rate), self.tokens + (now - self.time) * rate)
        self.time = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Rule:
    """A destination rule: the behaviour keys it overrides (``keys``) on top of the default behaviour.

    It has its own ``throttle_next`` counter and ``max_rate`` bucket when it sets those keys.
    """

    prefix: str
    behaviour: Behaviour
    keys: frozenset[str]
    bucket: _Bucket = field(default_factory=_Bucket)

    def merged(self, default: Behaviour) -> Behaviour:
        """The behaviour a submit matching this rule gets (a copy)."""
        merged = default.copy()
        for key in self.keys:
            setattr(merged, key, getattr(self.behaviour, key))
        return merged

    def describe(self) -> dict[str, Any]:
        values = self.behaviour.as_dict()
        return {"destination": self.prefix, "overrides": {key: values[key] for key in sorted(self.keys)}}


def destination_prefix(destination: str | None) -> str | None:
    """A rule's prefix as given by a tester (``+`` and blanks dropped); ``None`` or empty means the default."""
    if destination is None:
        return None
    prefix = str(destination).strip().lstrip("+")
    if not prefix:
        return None
    if any(char.isspace() for char in prefix) or len(prefix) > 20:
        raise ValueError(
            f"Destination prefix '{destination}' must be the start of an address (up to 20 characters, no blanks), "
            "e.g. 254700555."
        )
    return prefix


class _Session:
    """One TCP connection from an ESME (here: the gateway's client connector, or a test's ESME)."""

    _ids = itertools.count(1)

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.id = next(self._ids)
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.system_id: str | None = None
        self.mode: str | None = None
        self.bound_at: float | None = None
        self.closing = False
        self._sequence = itertools.count(1)

    def next_sequence(self) -> int:
        return next(self._sequence)

    @property
    def can_submit(self) -> bool:
        return self.mode in ("transmitter", "transceiver")

    @property
    def can_receive(self) -> bool:
        return self.mode in ("receiver", "transceiver") and not self.closing

    def send(self, raw: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(raw)

    def describe(self) -> dict[str, Any]:
        return {
            "session": self.id,
            "system_id": self.system_id,
            "mode": self.mode,
            "peer": self.peer,
            "bound_at": _iso(self.bound_at) if self.bound_at else None,
        }


@dataclass
class _Delivery:
    """A deliver_sm waiting for a receiver (queued) or sent and awaiting its deliver_sm_resp."""

    record: dict[str, Any]
    fields: dict[str, Any]
    tlvs: list[tuple[int, bytes]]
    system_id: str | None
    prefer: _Session | None = None
    sent: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class CarrierSmsc:
    """The carrier SMSC. `start` it (it listens on 127.0.0.1 and a free port by default) and `stop` it.

    ``accounts`` maps system_id to password; with no accounts every bind is accepted.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        accounts: Mapping[str, str] | None = None,
        behaviour: Behaviour | None = None,
        system_id: str = "carrier",
    ) -> None:
        self.host = host
        self.port = port
        self.accounts = dict(accounts or {})
        self.system_id = system_id
        self._behaviour = behaviour or Behaviour()
        self._initial_behaviour = self._behaviour.copy()
        self._rules: dict[str, _Rule] = {}
        self._lock = threading.Lock()
        self._submits: list[dict[str, Any]] = []
        self._deliveries: list[dict[str, Any]] = []
        self._sessions: list[_Session] = []
        self._pending: list[_Delivery] = []
        self._outstanding: dict[tuple[int, int], _Delivery] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._bucket = _Bucket()
        self._counters = {"throttled": 0, "malformed": 0, "nacked": 0, "binds_accepted": 0, "bind_failures": 0}
        self._in_flight = 0  # submits received and not yet answered (with latency), for window checks
        self._counters["max_in_flight"] = 0

    # --- lifecycle (any thread) --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 5.0) -> int:
        """Listen and serve on a thread of its own; return the port (useful with ``port=0``)."""
        if self.running:
            raise CarrierError(f"The carrier SMSC already runs on {self.host}:{self.port}.")
        ready = threading.Event()
        failure: list[OSError] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._serve, self.host, self.port))
                self.port = int(self._server.sockets[0].getsockname()[1])
            except OSError as error:
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"carrier-smsc-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise CarrierError(f"The carrier SMSC did not start listening on {self.host}:{self.port} in {timeout} s.")
        if failure:
            self._thread.join(timeout)
            self._thread = None
            raise CarrierError(
                f"The carrier SMSC cannot listen on {self.host}:{self.port}: {failure[0].strerror or failure[0]}. "
                "Use another port, or port=0 for a free one."
            )
        return self.port

    def stop(self, timeout: float = 5.0) -> None:
        """Close every bind and the listener, and end the thread. Safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        self._thread = None
        self._loop = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.writer.close()
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _call(self, function: Callable[[], T], timeout: float = 5.0) -> T:
        loop = self._loop
        if loop is None or not self.running:
            raise CarrierError("The carrier SMSC is not running. Start it with `Start Carrier SMSC`.")

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    # --- what the keywords and the control API use (any thread) ------------------------------------------

    def submits(self) -> list[dict[str, Any]]:
        """Every submit_sm/data_sm received, oldest first (copies)."""
        with self._lock:
            return [dict(record) for record in self._submits]

    def deliveries(self) -> list[dict[str, Any]]:
        """Every deliver_sm (receipts and MO) sent or queued, with the ESME's response status."""
        with self._lock:
            return [dict(record) for record in self._deliveries]

    def clear(self) -> int:
        """Forget recorded submits and deliveries (and reset the counters); returns how many submits were dropped."""
        with self._lock:
            count = len(self._submits)
            self._submits.clear()
            self._deliveries.clear()
            for key in self._counters:
                self._counters[key] = 0
        return count

    def behaviour(self, *, destination: str | None = None) -> dict[str, Any]:
        """The default behaviour, or with ``destination`` the one a submit to that address would get."""
        with self._lock:
            if destination is None:
                return self._behaviour.as_dict()
            behaviour, rule = self._behaviour_for(str(destination).strip().lstrip("+"))
            return {**behaviour.as_dict(), "rule": rule.prefix if rule else None}

    def set_behaviour(self, *, destination: str | None = None, **changes: Any) -> dict[str, Any]:
        """Change the default behaviour, or with ``destination`` (a prefix) add or change a destination rule.

        A rule keeps only the keys given to it (over the calls for the same prefix); every other key follows
        the default. Returns the whole behaviour that now applies (for a rule: with ``destination``).
        """
        prefix = destination_prefix(destination)
        with self._lock:
            if prefix is None:
                updated = self._behaviour.copy()
                updated.update(changes)
                self._behaviour = updated
                if updated.max_rate:
                    self._bucket.reset(updated.max_rate)
                return updated.as_dict()
            existing = self._rules.get(prefix)
            base = existing.behaviour.copy() if existing else self._behaviour.copy()
            base.update(changes)
            given = {key for key, value in changes.items() if value is not None or key in ("dlr_error", "max_rate")}
            rule = _Rule(prefix, base, frozenset(given | (existing.keys if existing else frozenset())))
            if rule.behaviour.max_rate:
                rule.bucket.reset(rule.behaviour.max_rate)
            self._rules[prefix] = rule
            return {"destination": prefix, **rule.merged(self._behaviour).as_dict()}

    def clear_behaviour(self, *, destination: str | None = None) -> dict[str, Any]:
        """Remove the rule for ``destination`` (a prefix; no error when there is none), or without it remove
        every rule and restore the behaviour the carrier started with. Returns ``removed`` and ``rules`` left."""
        prefix = destination_prefix(destination)
        with self._lock:
            if prefix is not None:
                removed = self._rules.pop(prefix, None) is not None
                return {"removed": 1 if removed else 0, "rules": len(self._rules)}
            removed_count = len(self._rules)
            self._rules.clear()
            self._behaviour = self._initial_behaviour.copy()
            if self._behaviour.max_rate:
                self._bucket.reset(self._behaviour.max_rate)
            return {"removed": removed_count, "rules": 0, "behaviour": self._behaviour.as_dict()}

    def behaviour_rules(self) -> list[dict[str, Any]]:
        """Every destination rule: ``destination`` (the prefix) and the ``overrides`` it sets."""
        with self._lock:
            return [self._rules[prefix].describe() for prefix in sorted(self._rules)]

    def _behaviour_for(self, destination: str) -> tuple[Behaviour, _Rule | None]:
        """(the behaviour for a destination, the rule it came from); the lock is held by the caller."""
        rule = None
        for prefix, candidate in self._rules.items():
            if destination.startswith(prefix) and (rule is None or len(prefix) > len(rule.prefix)):
                rule = candidate
        if rule is None:
            return self._behaviour, None
        return rule.merged(self._behaviour), rule

    def binds(self) -> list[dict[str, Any]]:
        with self._lock:
            return [session.describe() for session in self._sessions if session.mode]

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "host": self.host,
                "port": self.port,
                "running": self.running,
                "accounts": sorted(self.accounts),
                "binds": [session.describe() for session in self._sessions if session.mode],
                "behaviour": self._behaviour.as_dict(),
                "rules": [self._rules[prefix].describe() for prefix in sorted(self._rules)],
                "submits": len(self._submits),
                "deliveries": len(self._deliveries),
                **self._counters,
            }

    def send_mo(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        coding: str = "auto",
        system_id: str | None = None,
        source_ton: int = 1,
        source_npi: int = 1,
        dest_ton: int = 1,
        dest_npi: int = 1,
    ) -> dict[str, Any]:
        """Send a mobile-originated SMS (split with UDH when long) to a bound receiver, or queue it until one binds."""
        chosen = parse_coding(coding, text)
        parts = split_text(text, chosen, SplitMethod.UDH)
        ref = random.randint(0, 255)
        fields_list: list[dict[str, Any]] = []
        for number, part in enumerate(parts, start=1):
            payload = encode_text(part, chosen)
            if len(parts) > 1:
                payload = build_udh(ref, len(parts), number) + payload
            fields_list.append(
                {
                    "source_addr_ton": source_ton,
                    "source_addr_npi": source_npi,
                    "source_addr": source,
                    "dest_addr_ton": dest_ton,
                    "dest_addr_npi": dest_npi,
                    "destination_addr": destination,
                    "esm_class": ESM_UDHI if len(parts) > 1 else 0,
                    "data_coding": chosen.value,
                    "short_message": payload,
                }
            )

        def send() -> list[dict[str, Any]]:
            out = []
            for number, fields in enumerate(fields_list, start=1):
                record = {"kind": "mo", "source": source, "destination": destination, "part": number}
                out.append(self._deliver(_Delivery(record, fields, [], system_id)))
            return out

        sent = self._call(send)
        return {
            "parts": len(parts),
            "coding": chosen.label,
            "queued": any(item["queued"] for item in sent),
            "deliveries": sent,
        }

    def send_dlr(self, message_id: str, *, state: str = "DELIVRD", error: int | None = None) -> dict[str, Any]:
        """Send a delivery receipt for ``message_id`` now (to the bind that submitted it, if it can receive)."""
        word = receipt_state(state)
        with self._lock:
            record = next((r for r in reversed(self._submits) if r["message_id"] == message_id), None)
            behaviour = self._behaviour_for(record["destination"])[0] if record else self._behaviour
            code = error if error is not None else behaviour.receipt_error(word)

        def send() -> dict[str, Any]:
            return self._deliver(self._receipt(message_id, word, code, record))

        return self._call(send)

    def drop_connections(self) -> int:
        """Close every ESME's TCP connection at once (a fault: no unbind). Returns how many were closed."""

        def drop() -> int:
            sessions = list(self._sessions)
            for session in sessions:
                session.closing = True
                session.writer.close()
            return len(sessions)

        return self._call(drop)

    # --- protocol (event-loop thread) ---------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session = _Session(writer)
        with self._lock:
            self._sessions.append(session)
        try:
            while not session.closing:
                head = await reader.readexactly(4)
                (length,) = struct.unpack(">L", head)
                if not 16 <= length <= MAX_PDU_LENGTH:
                    # The stream cannot be resynchronised: nack and drop this bind only.
                    self._counters["malformed"] += 1
                    session.send(encode("generic_nack", sequence=0, status=ESME_RINVCMDLEN))
                    await writer.drain()
                    break
                raw = head + await reader.readexactly(length - 4)
                self._handle(session, raw)
                if writer.transport.get_write_buffer_size() > 65536:
                    await writer.drain()
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            session.closing = True
            with self._lock:
                if session in self._sessions:
                    self._sessions.remove(session)
            for key in [key for key in self._outstanding if key[0] == session.id]:
                self._outstanding.pop(key, None)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    def _handle(self, session: _Session, raw: bytes) -> None:
        try:
            pdu = decode(raw)
        except MalformedPduError as error:
            self._counters["malformed"] += 1
            self._counters["nacked"] += 1
            session.send(encode("generic_nack", sequence=error.sequence, status=error.status))
            return
        command = pdu.command
        if pdu.is_response:
            if command in ("deliver_sm_resp", "generic_nack"):
                self._delivery_answered(session, pdu)
            return
        if command in BIND_MODES:
            self._bind(session, pdu)
        elif command in ("submit_sm", "data_sm"):
            self._submit(session, pdu)
        elif command == "enquire_link":
            session.send(encode("enquire_link_resp", sequence=pdu.sequence))
        elif command == "unbind":
            session.send(encode("unbind_resp", sequence=pdu.sequence))
            session.closing = True
        else:
            self._counters["nacked"] += 1
            session.send(encode("generic_nack", sequence=pdu.sequence, status=ESME_RINVCMDID))

    def _bind(self, session: _Session, pdu: Pdu) -> None:
        response = f"{pdu.command}_resp"
        system_id = str(pdu.fields.get("system_id", ""))
        password = str(pdu.fields.get("password", ""))
        if session.mode is not None:
            status = ESME_RALYBND
        elif self.accounts and system_id not in self.accounts:
            status = ESME_RINVSYSID
        elif self.accounts and self.accounts[system_id] != password:
            status = ESME_RINVPASWD
        else:
            status = ESME_ROK
        if status != ESME_ROK:
            self._counters["bind_failures"] += 1
            session.send(encode(response, sequence=pdu.sequence, status=status))
            return
        with self._lock:
            session.system_id = system_id
            session.mode = BIND_MODES[pdu.command]
            session.bound_at = time.time()
        self._counters["binds_accepted"] += 1
        session.send(
            encode(
                response,
                sequence=pdu.sequence,
                fields={"system_id": self.system_id},
                tlvs=[tlv_u8(TLV_SC_INTERFACE_VERSION, 0x34)],
            )
        )
        if session.can_receive:
            self._flush_pending()

    def _submit(self, session: _Session, pdu: Pdu) -> None:
        response = f"{pdu.command}_resp"
        if not session.can_submit:
            session.send(encode(response, sequence=pdu.sequence, status=ESME_RINVBNDSTS))
            return
        with self._lock:
            behaviour, rule = self._behaviour_for(str(pdu.fields.get("destination_addr", "")))
            status = behaviour.submit_status
            # A rule that sets throttle_next or max_rate counts on its own; otherwise the default's count.
            counter = rule.behaviour if rule and "throttle_next" in rule.keys else self._behaviour
            bucket = rule.bucket if rule and "max_rate" in rule.keys else self._bucket
            if counter.throttle_next > 0:
                counter.throttle_next -= 1
                status = ESME_RTHROTTLED
            elif behaviour.max_rate and not bucket.take(behaviour.max_rate):
                status = ESME_RTHROTTLED
            if status == ESME_RTHROTTLED:
                self._counters["throttled"] += 1
            message_id = str(uuid.uuid4()) if status == ESME_ROK else ""
            record = _record(session, pdu, status, message_id, len(self._submits) + 1)
            self._submits.append(record)
            latency, auto_dlr, dlr_delay, state = (
                behaviour.latency,
                behaviour.auto_dlr,
                behaviour.dlr_delay,
                behaviour.dlr_state,
            )
            error = behaviour.receipt_error(state)
        answer = encode(response, sequence=pdu.sequence, status=status, fields={"message_id": message_id})
        wants_receipt = status == ESME_ROK and auto_dlr and _wants_receipt(record["registered_delivery"], state)
        if latency <= 0:
            session.send(answer)
            if wants_receipt:
                self._spawn(self._receipt_later(record, state, error, dlr_delay, session))
        else:
            self._in_flight += 1
            self._counters["max_in_flight"] = max(self._counters["max_in_flight"], self._in_flight)
            self._spawn(self._answer_later(session, answer, latency, record, state, error, dlr_delay, wants_receipt))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_later(
        self,
        session: _Session,
        answer: bytes,
        latency: float,
        record: dict[str, Any],
        state: str,
        error: int,
        dlr_delay: float,
        wants_receipt: bool,
    ) -> None:
        try:
            await asyncio.sleep(latency)
            session.send(answer)
        finally:
            self._in_flight -= 1
        if wants_receipt:
            await self._receipt_later(record, state, error, dlr_delay, session)

    async def _receipt_later(
        self, record: dict[str, Any], state: str, error: int, delay: float, session: _Session
    ) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        delivery = self._receipt(record["message_id"], state, error, record)
        delivery.prefer = session
        self._deliver(delivery)

    def _receipt(self, message_id: str, state: str, error: int, record: dict[str, Any] | None) -> _Delivery:
        now = datetime.now()
        submitted = datetime.fromtimestamp(record["time"]) if record else now
        text = format_receipt(
            message_id, state, error=error, submitted=submitted, done=now, text=record["text"] if record else ""
        )
        fields = {
            "source_addr_ton": record["dest_ton"] if record else 1,
            "source_addr_npi": record["dest_npi"] if record else 1,
            "source_addr": record["destination"] if record else "",
            "dest_addr_ton": record["source_ton"] if record else 1,
            "dest_addr_npi": record["source_npi"] if record else 1,
            "destination_addr": record["source"] if record else "",
            "esm_class": ESM_DELIVERY_RECEIPT,
            "data_coding": 0,
            "short_message": text.encode("ascii", errors="replace"),  # receipt texts are ASCII in practice
        }
        tlvs = [tlv_cstr(TLV_RECEIPTED_MESSAGE_ID, message_id), tlv_u8(TLV_MESSAGE_STATE, RECEIPT_STATES[state])]
        if error:
            tlvs.append((TLV_NETWORK_ERROR_CODE, bytes((3,)) + error.to_bytes(2, "big")))
        summary = {"kind": "dlr", "message_id": message_id, "state": state, "error": error}
        return _Delivery(summary, fields, tlvs, record["system_id"] if record else None)

    def _deliver(self, delivery: _Delivery) -> dict[str, Any]:
        """Send a deliver_sm to a receiver-capable bind, or queue it until one binds."""
        record = delivery.record
        record.update({"status": None, "queued": True, "sequence": None, "sent_to": None, "time": time.time()})
        with self._lock:
            self._deliveries.append(record)
        target = self._receiver_for(delivery)
        if target is None:
            self._pending.append(delivery)
        else:
            self._send_delivery(target, delivery)
        return dict(record)

    def _receiver_for(self, delivery: _Delivery) -> _Session | None:
        if delivery.prefer is not None and delivery.prefer.can_receive and delivery.prefer in self._sessions:
            return delivery.prefer
        for session in self._sessions:
            if session.can_receive and (delivery.system_id is None or session.system_id == delivery.system_id):
                return session
        return None

    def _send_delivery(self, session: _Session, delivery: _Delivery) -> None:
        sequence = session.next_sequence()
        with self._lock:
            delivery.record.update({"queued": False, "sequence": sequence, "sent_to": session.system_id})
        delivery.sent = True
        self._outstanding[(session.id, sequence)] = delivery
        session.send(encode("deliver_sm", sequence=sequence, fields=delivery.fields, tlvs=delivery.tlvs))

    def _flush_pending(self) -> None:
        waiting, self._pending = self._pending, []
        for delivery in waiting:
            target = self._receiver_for(delivery)
            if target is None:
                self._pending.append(delivery)
            else:
                self._send_delivery(target, delivery)

    def _delivery_answered(self, session: _Session, pdu: Pdu) -> None:
        delivery = self._outstanding.pop((session.id, pdu.sequence), None)
        if delivery is not None:
            with self._lock:
                delivery.record["status"] = status_name(pdu.status)


def _record(session: _Session, pdu: Pdu, status: int, message_id: str, index: int) -> dict[str, Any]:
    """What the carrier keeps of one submit_sm/data_sm: JSON-friendly (octets as hex)."""
    values = pdu.fields
    esm_class = int(values.get("esm_class", 0))
    data_coding = int(values.get("data_coding", 0))
    short_message: bytes = values.get("short_message", b"")
    payload_tlv = pdu.tlvs.get(TLV_MESSAGE_PAYLOAD)
    raw = short_message if short_message or payload_tlv is None else payload_tlv
    concat: Concat | None = None
    udh_error = None
    user_data = raw
    if esm_class & ESM_UDHI:
        try:
            concat, user_data = parse_udh(raw)
        except ValueError as error:
            udh_error = str(error)
    sar = None
    total = pdu.tlv_int(TLV_SAR_TOTAL_SEGMENTS)
    if total:
        sar = Concat(pdu.tlv_int(TLV_SAR_MSG_REF_NUM) or 0, total, pdu.tlv_int(TLV_SAR_SEGMENT_SEQNUM) or 0, "sar")
    now = time.time()
    return {
        "index": index,
        "command": pdu.command,
        "system_id": session.system_id,
        "session": session.id,
        "message_id": message_id,
        "status": status_name(status),
        "service_type": values.get("service_type", ""),
        "source": values.get("source_addr", ""),
        "source_ton": int(values.get("source_addr_ton", 0)),
        "source_npi": int(values.get("source_addr_npi", 0)),
        "destination": values.get("destination_addr", ""),
        "dest_ton": int(values.get("dest_addr_ton", 0)),
        "dest_npi": int(values.get("dest_addr_npi", 0)),
        "esm_class": esm_class,
        "data_coding": data_coding,
        "coding": coding_of(data_coding).label,
        "registered_delivery": int(values.get("registered_delivery", 0)),
        "priority": int(values.get("priority_flag", 0)),
        "validity_period": values.get("validity_period", ""),
        "schedule_delivery_time": values.get("schedule_delivery_time", ""),
        "short_message": short_message.hex(),
        "message_payload": payload_tlv.hex() if payload_tlv is not None else None,
        "payload": user_data.hex(),
        "text": decode_text(user_data, data_coding),
        "udh": concat.as_dict() if concat else None,
        "udh_error": udh_error,
        "sar": sar.as_dict() if sar else None,
        "time": now,
        "timestamp": _iso(now),
    }


def _wants_receipt(registered_delivery: int, state: str) -> bool:
    wanted = registered_delivery & 0x03
    return wanted == 1 or (wanted == 2 and state != "DELIVRD")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def _seconds(value: Any) -> float:
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    return float(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "off", "0", "none")
    return bool(value)
