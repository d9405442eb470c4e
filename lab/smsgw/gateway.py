"""The gateway: wires the store, the customer SMPP server, the HTTP API, the connectors and the DLR thrower
on one asyncio event loop, and maps what the carriers send back (receipts, MO) to the customers.

Durability: every change that a customer or the carrier is told about is committed first. Changes made during
one turn of the event loop are committed together by the `CommitBarrier`, and the answers waiting on them
(submit_sm_resp to a customer, ``Success`` to an HTTP client, deliver_sm_resp to the carrier) are sent right
after that commit. Delivery to the carrier, to customers and to HTTP callbacks is *at least once*: whatever
was in flight when the link or the process died is sent again, so a duplicate is possible, a loss is not.

Receipts: the carrier's message id (TLV 0x001E, else the ``id:`` of the receipt text) is mapped to the
gateway's message; an SMPP customer gets a deliver_sm receipt with the gateway's id (``id:<uuid> ...
stat:DELIVRD err:000``, TLVs 0x001E and 0x0427) when its ``registered_delivery`` asked for one; an HTTP
message gets its ``dlr-url`` callbacks. A submit the carrier refuses becomes an ``UNDELIV`` receipt whose
``err`` is the refusal's command_status. A receipt that cannot be mapped yet is tried again for a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from SmppLibrary.carrier.pdu import (
    TLV_MESSAGE_PAYLOAD,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    Pdu,
    tlv_cstr,
    tlv_u8,
)
from SmppLibrary.codec import (
    ESM_DELIVERY_RECEIPT,
    ESM_TYPE_MASK,
    ESME_ROK,
    ESME_RSYSERR,
    FINAL_STATES,
    RECEIPT_STATES,
    STATE_WORDS,
    MessageState,
    format_receipt,
    parse_receipt,
    receipt_state,
    status_name,
)

from lab.smsgw.config import GatewayConfig
from lab.smsgw.dispatcher import Dispatcher
from lab.smsgw.dlr_thrower import DlrThrower
from lab.smsgw.http_api import HttpApi
from lab.smsgw.server import CustomerServer, CustomerSession, Outbox
from lab.smsgw.store import Message, Store
from lab.smsgw.upstream import UpstreamBind

log = logging.getLogger("lab.smsgw")

ESM_INTERMEDIATE = 0x20
TICK = 0.5
ORPHAN_TRIES = 10  # a receipt whose message is unknown is looked up again this many ticks


class CommitBarrier:
    """Group commit: one commit per turn of the event loop, then the actions that waited for it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._actions: list[Callable[[bool], Any]] = []
        self._scheduled = False
        self._poisoned = False
        self.commits = 0

    def then(self, action: Callable[[bool], Any] | None = None) -> None:
        """Run ``action(committed)`` after the next commit (schedule one if needed)."""
        if action is not None:
            self._actions.append(action)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def poison(self) -> None:
        """A write of this turn failed: roll the turn back and tell every waiting action."""
        self._poisoned = True
        self.then()

    def flush(self) -> None:
        self._scheduled = False
        actions, self._actions = self._actions, []
        committed = False
        try:
            if self._poisoned:
                self.store.rollback()
            else:
                self.store.commit()
                committed = True
                self.commits += 1
        except sqlite3.Error as error:
            log.error("cannot commit to the queue %s: %s", self.store.path, error)
            with contextlib.suppress(sqlite3.Error):
                self.store.rollback()
        self._poisoned = False
        for action in actions:
            try:
                action(committed)
            except Exception:  # one broken action must not stop the others
                log.exception("an action after commit failed")


class _Bucket:
    """Token bucket: ``rate`` per second, holding at most ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = max(1.0, rate)
        self.time = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.time) * self.rate)
        self.time = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Gateway:
    """The SMS gateway. In a process of its own `serve` runs it (see ``__main__``); tests `start` it on a thread."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.settings = config.settings
        self.smpp_port = config.smpp_port
        self.http_port = config.http_port
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._orphans: list[tuple[UpstreamBind, Pdu, int]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.binds: dict[str, UpstreamBind] = {}
        self.dispatchers: dict[str, Dispatcher] = {}

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Gateway:
        """Serve on a thread of its own; return once listening (raise what stopped it from starting)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(ready=ready.set))
            except BaseException as error:
                failure.append(error)
                ready.set()

        self._thread = threading.Thread(target=run, name="smsgw", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"The SMS gateway did not start within {timeout} s.")
        if failure:
            self._thread.join(timeout)
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a gateway started with `start` (unbinding everything); safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.request_stop)
        thread.join(timeout)
        self._thread = None

    def request_stop(self) -> None:
        """Ask `serve` to finish (from the event-loop thread, e.g. a signal handler)."""
        if self._stopping is not None:
            self._stopping.set()

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Run until `request_stop`; everything durable is committed before it returns."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.store = Store(self.config.queue)
        self.barrier = CommitBarrier(self.store)
        self.customers = CustomerServer(self)
        self.http = HttpApi(self)
        self.outbox = Outbox(
            self.store,
            self.customers.receivers,
            window=self.settings.deliver_window,
            response_timeout=self.settings.response_timeout,
            changed=self.barrier.then,
        )
        self.thrower = DlrThrower(self.store, self.settings, self.barrier.then)
        ticker: asyncio.Task[None] | None = None
        try:
            queued = self._load()
            self.smpp_port = await self.customers.start()
            self.http_port = await self.http.start()
            for bind in self.binds.values():
                bind.start()
            ticker = asyncio.create_task(self._tick(), name="smsgw-tick")
            log.info(
                "SMS gateway listening: SMPP %s:%d, HTTP %s:%d; queue %s (%d queued, %d for customers, "
                "%d callbacks); connectors %s; users %s",
                self.config.host,
                self.smpp_port,
                self.config.host,
                self.http_port,
                self.config.queue,
                queued,
                self.outbox.waiting,
                self.store.callback_count(),
                ", ".join(f"{name} -> {bind.endpoint}" for name, bind in self.binds.items()),
                ", ".join(sorted(self.config.users)),
            )
            if ready is not None:
                ready()
            await self._stopping.wait()
        finally:
            if ticker is not None:
                ticker.cancel()
            await self.http.close()
            await self.customers.close()
            await asyncio.gather(*(bind.close() for bind in self.binds.values()))
            await self.thrower.close()
            self.barrier.flush()
            self.store.close()
            log.info("SMS gateway stopped")

    def _load(self) -> int:
        for name, connector in self.config.connectors.items():
            bind = UpstreamBind(connector, self.settings, self)
            self.binds[name] = bind
            self.dispatchers[name] = Dispatcher(
                bind,
                window=self.settings.window,
                response_timeout=self.settings.response_timeout,
                on_answer=self._answered,
                on_unsendable=self._unsendable,
            )
        queued = self.store.queued_messages()
        for message in queued:
            dispatcher = self.dispatchers.get(message.connector)
            if dispatcher is None:
                log.error("message %s waits for connector %s, which is gone; failed", message.id, message.connector)
                self.store.mark_failed(message, ESME_RSYSERR)
            else:
                dispatcher.enqueue(message)
        self.outbox.load(self.store.outbox())
        self.thrower.load()
        self.store.commit()
        return len(queued)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for name, bind in self.binds.items():
                bind.tick(now)
                self.dispatchers[name].tick(now)
            self.outbox.tick(now)
            if self._orphans:
                self._retry_orphans()

    # --- what the customer interfaces use ------------------------------------------------------------------

    def take_token(self, username: str, interface: str) -> bool:
        """Per-user throughput, counted per interface (SMPP, HTTP) as Jasmin does; 0 is unlimited."""
        user = self.config.users[username]
        if user.throughput <= 0:
            return True
        bucket = self._buckets.get((username, interface))
        if bucket is None:
            bucket = self._buckets[(username, interface)] = _Bucket(user.throughput)
        return bucket.take()

    def accept(self, messages: list[Message], then: Callable[[bool], Any]) -> None:
        """Store messages; after the commit queue them for their connectors and call ``then(committed)``."""
        try:
            for message in messages:
                self.store.add_message(message)
        except sqlite3.Error as error:
            log.error("cannot store message(s) %s: %s", messages[0].msg_id if messages else "", error)
            self.barrier.poison()

        def queue(committed: bool) -> None:
            if committed:
                for message in messages:
                    self.dispatchers[message.connector].enqueue(message)
            then(committed)

        self.barrier.then(queue)

    def session_bound(self, session: CustomerSession) -> None:
        if session.can_receive and session.username is not None:
            self.outbox.pump(session.username)

    def session_closed(self, session: CustomerSession) -> None:
        self.outbox.session_closed(session)

    def deliver_answered(self, session: CustomerSession, sequence: int, status: int) -> None:
        self.outbox.answered(session, sequence, status)

    def health(self) -> dict[str, Any]:
        counts = self.store.counts()
        connectors = {}
        for name, bind in self.binds.items():
            described = {**bind.describe(), **self.dispatchers[name].describe()}
            if described["bound_since"]:
                described["bound_since"] = datetime.fromtimestamp(described["bound_since"], UTC).isoformat()
            connectors[name] = described
        return {
            "status": "ok",
            "service": "lab.smsgw",
            "smpp_port": self.smpp_port,
            "http_port": self.http_port,
            "connectors": connectors,
            "queue": {
                "queued": counts.get("queued", 0),
                "submitted": counts.get("submitted", 0),
                "failed": counts.get("failed", 0),
                "delivered": counts.get("DELIVRD", 0),
                "by_state": counts,
            },
            "outbox": self.outbox.waiting,
            "callbacks": {"pending": self.store.callback_count(), "failed": self.store.callback_count("failed")},
            "sessions": [session.describe() for session in self.customers.sessions if session.mode],
        }

    # --- the connectors (UpstreamHandler) -----------------------------------------------------------------

    def on_bound(self, bind: UpstreamBind) -> None:
        self.dispatchers[bind.name].on_bound()

    def on_lost(self, bind: UpstreamBind, reason: str) -> None:
        self.dispatchers[bind.name].on_lost()

    def on_submit_resp(self, bind: UpstreamBind, sequence: int, status: int, carrier_id: str) -> None:
        self.dispatchers[bind.name].on_submit_resp(sequence, status, carrier_id)

    def on_deliver_sm(self, bind: UpstreamBind, pdu: Pdu) -> None:
        esm_type = int(pdu.fields.get("esm_class", 0)) & ESM_TYPE_MASK
        is_receipt = esm_type in (ESM_DELIVERY_RECEIPT, ESM_INTERMEDIATE) or (
            esm_type == 0 and TLV_RECEIPTED_MESSAGE_ID in pdu.tlvs and TLV_MESSAGE_STATE in pdu.tlvs
        )
        generation = bind.binds
        sequence = pdu.sequence

        def answer(committed: bool) -> None:
            if bind.binds == generation:  # still the same connection
                bind.respond("deliver_sm_resp", sequence, ESME_ROK if committed else ESME_RSYSERR)

        if is_receipt:
            if not self._receipt_from_carrier(bind, pdu):
                self._orphans.append((bind, pdu, 0))
        else:
            self._mo_from_carrier(bind, pdu)
        self.barrier.then(answer)

    def _answered(self, message: Message, status: int, carrier_id: str) -> None:
        """The carrier's submit_sm_resp for ``message``."""
        if status == ESME_ROK:
            self.store.mark_submitted(message, carrier_id)
        else:
            self.store.mark_failed(message, status)
            log.info("connector %s refused %s: %s", message.connector, message.id, status_name(status))
            if message.origin == "smpp" and _wants_receipt(message.registered_delivery, "UNDELIV"):
                self._receipt_to_customer(message, "UNDELIV", status, "")
        if message.origin == "http":
            self._http_callbacks(message)
        self.barrier.then()

    def _unsendable(self, message: Message, reason: str) -> None:
        log.error("message %s cannot be encoded for connector %s: %s; failed", message.id, message.connector, reason)
        self._answered(message, ESME_RSYSERR, "")

    def _receipt_from_carrier(self, bind: UpstreamBind, pdu: Pdu) -> bool:
        """Map a carrier receipt to its message and pass it on; False when the message is not known (yet)."""
        receipt = _receipt_fields(pdu)
        carrier_id = pdu.tlv_cstr(TLV_RECEIPTED_MESSAGE_ID) or receipt["id"]
        message = self.store.by_carrier_id(bind.name, carrier_id) if carrier_id else None
        if message is None:
            return False
        state = receipt["stat"]
        self.store.record_receipt(message, state, receipt)
        if message.origin == "smpp" and _wants_receipt(message.registered_delivery, state):
            self._receipt_to_customer(message, state, _error_code(receipt["err"]), receipt["text"])
        elif message.origin == "http":
            self._http_callbacks(message)
        return True

    def _retry_orphans(self) -> None:
        orphans, self._orphans = self._orphans, []
        for bind, pdu, tries in orphans:
            if self._receipt_from_carrier(bind, pdu):
                self.barrier.then()
            elif tries + 1 < ORPHAN_TRIES:
                self._orphans.append((bind, pdu, tries + 1))
            else:
                log.warning(
                    "connector %s: receipt for unknown carrier id %r dropped",
                    bind.name,
                    pdu.tlv_cstr(TLV_RECEIPTED_MESSAGE_ID) or _receipt_fields(pdu)["id"],
                )

    def _receipt_to_customer(self, message: Message, state: str, error: int, text: str) -> None:
        values = message.fields
        receipt = format_receipt(
            message.id,
            state,
            error=error,
            submitted=datetime.fromtimestamp(message.created),
            done=datetime.now(),
            text=text,
        )
        fields = {
            "source_addr_ton": int(values.get("dest_addr_ton", 1)),
            "source_addr_npi": int(values.get("dest_addr_npi", 1)),
            "source_addr": message.destination,
            "dest_addr_ton": int(values.get("source_addr_ton", 1)),
            "dest_addr_npi": int(values.get("source_addr_npi", 1)),
            "destination_addr": message.source,
            "esm_class": ESM_DELIVERY_RECEIPT,
            "data_coding": 0,
        }
        tlvs = [tlv_cstr(TLV_RECEIPTED_MESSAGE_ID, message.id), tlv_u8(TLV_MESSAGE_STATE, RECEIPT_STATES[state])]
        if error:
            tlvs.append((TLV_NETWORK_ERROR_CODE, bytes((3,)) + (error & 0xFFFF).to_bytes(2, "big")))
        item = self.outbox.add(message.username, "dlr", fields, receipt.encode("ascii", errors="replace"), tlvs)
        self.barrier.then(lambda committed: self.outbox.release(item) if committed else None)

    def _mo_from_carrier(self, bind: UpstreamBind, pdu: Pdu) -> None:
        destination = str(pdu.fields.get("destination_addr", ""))
        user = self.config.mo_recipient(destination)
        if user is None:
            log.warning(
                "connector %s: MO from %s to %s dropped: no mo_routes entry matches and no mo_user",
                bind.name,
                pdu.fields.get("source_addr"),
                destination,
            )
            return
        fields = {key: value for key, value in pdu.fields.items() if key not in ("short_message", "sm_length")}
        data = bytes(pdu.fields.get("short_message", b""))
        item = self.outbox.add(user, "mo", fields, data, list(pdu.tlvs.items()))
        self.barrier.then(lambda committed: self.outbox.release(item) if committed else None)

    def _http_callbacks(self, message: Message) -> None:
        """Level 1 once every part has its submit_sm_resp; level 2 once every part has a final receipt."""
        level = message.dlr_level
        if not message.dlr_url or level not in (1, 2, 3):
            return
        parts = self.store.parts_of(message.msg_id) if message.parts > 1 else [message]
        answered = all(p.state != "queued" for p in parts)
        if level in (1, 3) and answered and not self.store.has_callback(message.msg_id, 1):
            failed = next((p for p in parts if p.state == "failed"), None)
            status = status_name(failed.error or 0) if failed else "ESME_ROK"
            self._callback(message, 1, {"message_status": status})
        final = [p.state in FINAL_STATES or p.state == "failed" for p in parts]
        if level in (2, 3) and all(final) and not self.store.has_callback(message.msg_id, 2):
            states = ["UNDELIV" if p.state == "failed" else p.state for p in parts]
            status = next((state for state in states if state != "DELIVRD"), "DELIVRD")
            errors = [f"{p.error:03d}" if p.state == "failed" else (p.receipt or {}).get("err", "000") for p in parts]
            last = message.receipt or {}
            now = datetime.now().strftime("%y%m%d%H%M")
            submitted = datetime.fromtimestamp(message.created).strftime("%y%m%d%H%M")
            self._callback(
                message,
                2,
                {
                    "message_status": status,
                    "id_smsc": parts[0].carrier_id or "",
                    "sub": f"{len(parts):03d}",
                    "dlvrd": f"{states.count('DELIVRD'):03d}",
                    "subdate": last.get("submit_date") or submitted,
                    "donedate": last.get("done_date") or now,
                    "err": next((err for err in errors if err.strip("0")), "000"),
                    "text": last.get("text", ""),
                },
            )

    def _callback(self, message: Message, level: int, extra: dict[str, str]) -> None:
        form = {"id": message.msg_id, "level": str(level), "connector": message.connector, **extra}
        callback = self.thrower.add(message.msg_id, level, message.dlr_url or "", message.dlr_method or "POST", form)
        self.barrier.then(lambda committed: self.thrower.schedule(callback) if committed else None)


def _wants_receipt(registered_delivery: int, state: str) -> bool:
    """SMPP 3.4 registered_delivery bits 0-1: 1 any final receipt, 2 only on failure; bit 4: intermediate."""
    wanted = registered_delivery & 0x03
    if state not in FINAL_STATES:
        return bool(registered_delivery & 0x10) or wanted == 1
    return wanted == 1 or (wanted == 2 and state != "DELIVRD")


def _receipt_fields(pdu: Pdu) -> dict[str, str]:
    """The receipt a carrier sent, normalised: ``id``, ``stat``, ``err``, ``sub``, ``dlvrd``, dates, ``text``."""
    data = bytes(pdu.fields.get("short_message") or pdu.tlvs.get(TLV_MESSAGE_PAYLOAD) or b"")
    parsed = parse_receipt(data.decode("latin-1")) or {}
    state = "UNKNOWN"
    with contextlib.suppress(ValueError):
        state = receipt_state(parsed["stat"]) if parsed.get("stat") else state
    if "stat" not in parsed or state == "UNKNOWN":
        value = pdu.tlv_int(TLV_MESSAGE_STATE)
        if value in STATE_WORDS:
            state = STATE_WORDS[MessageState(value)]
    error = parsed.get("err")
    if not error:
        network = pdu.tlvs.get(TLV_NETWORK_ERROR_CODE)
        error = f"{int.from_bytes(network[1:3], 'big'):03d}" if network and len(network) == 3 else "000"
    return {
        "id": parsed.get("id", ""),
        "stat": state,
        "err": error,
        "sub": parsed.get("sub", "001"),
        "dlvrd": parsed.get("dlvrd", "001" if state == "DELIVRD" else "000"),
        "submit_date": parsed.get("submit_date", ""),
        "done_date": parsed.get("done_date", ""),
        "text": parsed.get("text", ""),
    }


def _error_code(text: str) -> int:
    for base in (10, 16):
        with contextlib.suppress(ValueError):
            return int(text, base)
    return 0
