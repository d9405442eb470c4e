"""One SMPP 3.4 transceiver bind to the SMS gateway, on an asyncio loop of its own thread.

It sends the applications' SMS (GSM7 or UCS2, long texts split with a UDH, one outstanding submit at a time)
and hands every MO message to a callback. PDUs are read and written by SmppLibrary's strict codec, framed
as the lab gateway does. The link rebinds with a capped back-off when the gateway goes away; messages wait
in memory meanwhile (and one whose submit was cut off is sent again: at least once). TCP_NODELAY is set.

`SmsLink.send` and `SmsLink.stop` are safe from any thread; the MO callback runs on the link's thread and
must not block (hand work on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from SmppLibrary.carrier.pdu import TLV_MESSAGE_PAYLOAD, MalformedPduError, Pdu, decode, encode
from SmppLibrary.codec import (
    ESM_DELIVERY_RECEIPT,
    ESM_TYPE_MASK,
    ESM_UDHI,
    ESME_RINVCMDID,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    Reassembler,
    build_udh,
    choose_coding,
    decode_text,
    encode_text,
    parse_receipt,
    parse_udh,
    split_text,
    status_name,
)

from lab.smsgw.wire import FramingError, Sequences, no_delay, read_pdu
from lab.voiceapps.config import SmppSettings
from lab.voiceapps.events import EventLog

log = logging.getLogger("lab.voiceapps.sms")

MAX_OUTBOX = 1000
RETRYABLE = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
MAX_RETRIES = 10


class LinkDownError(ConnectionError):
    """The bind is gone (closed, reset, or an answer that never came)."""


@dataclass(frozen=True)
class MoMessage:
    source: str
    destination: str
    text: str


@dataclass
class Outgoing:
    destination: str
    text: str
    shown: str  # the text as logs and events show it (a secret masked)
    purpose: str
    parts: list[tuple[bytes, int, int]] = field(default_factory=list)  # (short_message, data_coding, esm_class)
    next_part: int = 0
    message_ids: list[str] = field(default_factory=list)
    retries: int = 0
    queued_at: float = field(default_factory=time.monotonic)


def build_parts(text: str, reference: int) -> list[tuple[bytes, int, int]]:
    """The submit_sm payloads of ``text``: GSM7 when it fits the alphabet, else UCS2; long texts with a UDH."""
    coding = choose_coding(text)
    pieces = split_text(text, coding)
    if len(pieces) == 1:
        return [(encode_text(text, coding), coding.value, 0)]
    return [
        (build_udh(reference, len(pieces), index) + encode_text(piece, coding), coding.value, ESM_UDHI)
        for index, piece in enumerate(pieces, start=1)
    ]


class SmsLink:
    def __init__(
        self,
        settings: SmppSettings,
        *,
        events: EventLog,
        on_mo: Callable[[MoMessage], None],
        reconnect_max: float = 5.0,
        response_timeout: float = 10.0,
        enquire_link_interval: float = 30.0,
    ) -> None:
        self.settings = settings
        self.events = events
        self.on_mo = on_mo
        self.reconnect_max = reconnect_max
        self.response_timeout = response_timeout
        self.enquire_link_interval = enquire_link_interval
        self.state = "idle"
        self.bound_since: float | None = None
        self.binds = 0
        self.sent = 0
        self.failed = 0
        self.received = 0
        self.last_error = ""
        self._outbox: deque[Outgoing] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequences = Sequences()
        self._reassembler = Reassembler()
        self._reference = 0
        self._last_heard = time.monotonic()

    # --- any thread --------------------------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self.state == "bound"

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._outbox)

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "gateway": f"{self.settings.host}:{self.settings.port}",
            "system_id": self.settings.system_id,
            "short_code": self.settings.short_code,
            "bound_for": round(time.monotonic() - self.bound_since, 1) if self.bound_since else None,
            "binds": self.binds,
            "queued": self.queued,
            "sent": self.sent,
            "failed": self.failed,
            "mo_received": self.received,
            "last_error": self.last_error,
        }

    def send(self, destination: str, text: str, *, purpose: str, secret: str | None = None) -> None:
        """Queue an SMS from the short code to ``destination``; ``secret`` is masked in logs and events."""
        shown = text.replace(secret, "*" * len(secret)) if secret else text
        with self._lock:
            self._reference = (self._reference % 255) + 1
            reference = self._reference
        message = Outgoing(destination.lstrip("+"), text, shown, purpose, build_parts(text, reference))
        with self._lock:
            if len(self._outbox) >= MAX_OUTBOX:
                dropped = self._outbox.popleft()
                log.warning("SMS outbox full: dropped the oldest, to %s", dropped.destination)
                self.events.add("sms_failed", to=dropped.destination, text=dropped.shown, reason="outbox full")
            self._outbox.append(message)
        log.info("SMS queued to %s (%s): %s", message.destination, purpose, shown)
        self._poke()

    def start(self, timeout: float = 5.0) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._wake = asyncio.Event()
            self._stopping = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(self._run())
            except Exception:
                log.exception("the SMPP link thread failed")
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="voiceapps-smpp", daemon=True)
        self._thread.start()
        ready.wait(timeout)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the outbox to empty (at shutdown); True when it did."""
        deadline = time.monotonic() + timeout
        while self.queued and self.bound and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.queued

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._request_stop)
        thread.join(timeout)
        self._thread = None

    def _poke(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._set_wake)

    # --- the link's thread ---------------------------------------------------------------------------------

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        self._set_wake()

    async def _run(self) -> None:
        assert self._stopping is not None
        delay = 0.1
        failures = 0
        while not self._stopping.is_set():
            try:
                await self._session()
            except (OSError, LinkDownError, FramingError, asyncio.IncompleteReadError, TimeoutError) as error:
                reason = (
                    "the gateway closed the connection"
                    if isinstance(error, asyncio.IncompleteReadError)
                    else str(error) or type(error).__name__
                )
                if self.state == "bound":
                    log.warning("SMPP link to %s:%d lost: %s", self.settings.host, self.settings.port, reason)
                    self.events.add("smpp_unbound", reason=reason)
                    delay, failures = 0.1, 0
                else:
                    failures += 1
                    level = logging.WARNING if failures == 1 or failures % 20 == 0 else logging.DEBUG
                    log.log(
                        level,
                        "SMPP bind to %s:%d failed (%d): %s",
                        self.settings.host,
                        self.settings.port,
                        failures,
                        reason,
                    )
                self.last_error = reason
            finally:
                self._drop_connection()
            if self._stopping.is_set():
                break
            self.state = "reconnecting"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(self.reconnect_max, delay * 2)
        self.state = "stopped"

    def _drop_connection(self) -> None:
        if self.state == "bound":
            self.state = "down"
        self.bound_since = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkDownError("connection closed"))
        self._pending.clear()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    async def _session(self) -> None:
        assert self._stopping is not None
        self.state = "connecting"
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.settings.host, self.settings.port), self.response_timeout
        )
        no_delay(writer)
        self._writer = writer
        self._last_heard = time.monotonic()
        reading = asyncio.ensure_future(self._read(reader))
        try:
            response = await self._request(
                "bind_transceiver",
                {"system_id": self.settings.system_id, "password": self.settings.password, "interface_version": 0x34},
                reading,
            )
            if response.status != ESME_ROK:
                raise LinkDownError(
                    f"bind_transceiver as '{self.settings.system_id}' refused: {status_name(response.status)}"
                )
            self.state = "bound"
            self.bound_since = time.monotonic()
            self.binds += 1
            self.last_error = ""
            log.info(
                "SMPP transceiver bound to %s:%d as %s", self.settings.host, self.settings.port, self.settings.system_id
            )
            self.events.add("smpp_bound", system_id=self.settings.system_id)
            tasks = [reading, asyncio.ensure_future(self._send_loop()), asyncio.ensure_future(self._keepalive())]
            stopping = asyncio.ensure_future(self._stopping.wait())
            done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                error = task.exception() if task in done else None
                if error is not None:
                    stopping.cancel()
                    await self._cancel(tasks)
                    raise error
            stopping.cancel()
            if self._stopping.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._request("unbind", {}, reading), 2.0)
            await self._cancel(tasks)
            if not self._stopping.is_set():
                raise LinkDownError("the gateway closed the connection")
        finally:
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(BaseException):
                    await reading

    @staticmethod
    async def _cancel(tasks: Sequence[asyncio.Future[Any]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def _request(self, command: str, fields: dict[str, Any], reading: asyncio.Future[Any]) -> Pdu:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise LinkDownError("not connected")
        sequence = self._sequences.next()
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        writer.write(encode(command, sequence=sequence, fields=fields))
        try:
            done, _ = await asyncio.wait(
                [future, reading], timeout=self.response_timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            self._pending.pop(sequence, None)
        if future in done:
            return future.result()
        if reading in done:
            error = reading.exception()
            raise LinkDownError(f"connection lost waiting for {command}_resp: {error or 'closed'}")
        raise LinkDownError(f"no {command}_resp within {self.response_timeout:g} s")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            raw = await read_pdu(reader)
            self._last_heard = time.monotonic()
            try:
                pdu = decode(raw)
            except MalformedPduError as error:
                log.warning("unreadable PDU from the gateway: %s", error)
                self._write("generic_nack", error.sequence, error.status)
                continue
            if pdu.is_response:
                future = self._pending.get(pdu.sequence)
                if future is not None and not future.done():
                    future.set_result(pdu)
                elif pdu.command == "generic_nack":
                    log.warning("generic_nack %s for sequence %d", status_name(pdu.status), pdu.sequence)
                continue
            if pdu.command == "deliver_sm":
                self._write("deliver_sm_resp", pdu.sequence)
                self._delivered(pdu)
            elif pdu.command == "enquire_link":
                self._write("enquire_link_resp", pdu.sequence)
            elif pdu.command == "unbind":
                self._write("unbind_resp", pdu.sequence)
                raise LinkDownError("the gateway unbound")
            else:
                self._write("generic_nack", pdu.sequence, ESME_RINVCMDID)

    def _write(self, command: str, sequence: int, status: int = ESME_ROK) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(encode(command, sequence=sequence, status=status))

    async def _keepalive(self) -> None:
        reading = asyncio.get_running_loop().create_future()  # enquire_link waits on its own timeout only
        try:
            while True:
                idle = time.monotonic() - self._last_heard
                if idle < self.enquire_link_interval:
                    await asyncio.sleep(self.enquire_link_interval - idle)
                    continue
                await self._request("enquire_link", {}, reading)
        finally:
            reading.cancel()

    async def _send_loop(self) -> None:
        assert self._wake is not None
        never = asyncio.get_running_loop().create_future()
        try:
            while True:
                with self._lock:
                    message = self._outbox[0] if self._outbox else None
                if message is None:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._submit(message, never)
        finally:
            never.cancel()

    async def _submit(self, message: Outgoing, never: asyncio.Future[Any]) -> None:
        short_message, data_coding, esm_class = message.parts[message.next_part]
        fields = {
            "source_addr_ton": 0,
            "source_addr_npi": 1,
            "source_addr": self.settings.short_code,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": message.destination,
            "esm_class": esm_class,
            "registered_delivery": 1,
            "data_coding": data_coding,
            "short_message": short_message,
        }
        response = await self._request("submit_sm", fields, never)
        if response.status == ESME_ROK:
            message.message_ids.append(str(response.fields.get("message_id", "")))
            message.next_part += 1
            if message.next_part < len(message.parts):
                return
            self._finish(message)
            self.sent += 1
            log.info("SMS sent to %s (%s), id %s", message.destination, message.purpose, ",".join(message.message_ids))
            self.events.add(
                "sms_sent",
                to=message.destination,
                source=self.settings.short_code,
                text=message.shown,
                purpose=message.purpose,
                message_ids=message.message_ids,
                parts=len(message.parts),
            )
            return
        name = status_name(response.status)
        if response.status in RETRYABLE and message.retries < MAX_RETRIES:
            message.retries += 1
            log.warning("SMS to %s answered %s: retry %d in 1 s", message.destination, name, message.retries)
            await asyncio.sleep(1.0)
            return
        self._finish(message)
        self.failed += 1
        log.warning("SMS to %s (%s) refused: %s", message.destination, message.purpose, name)
        self.events.add("sms_failed", to=message.destination, text=message.shown, purpose=message.purpose, reason=name)

    def _finish(self, message: Outgoing) -> None:
        with self._lock:
            if self._outbox and self._outbox[0] is message:
                self._outbox.popleft()

    def _delivered(self, pdu: Pdu) -> None:
        fields = pdu.fields
        esm_class = int(fields.get("esm_class", 0))
        data_coding = int(fields.get("data_coding", 0))
        payload = bytes(fields.get("short_message") or pdu.tlvs.get(TLV_MESSAGE_PAYLOAD) or b"")
        source = str(fields.get("source_addr", ""))
        destination = str(fields.get("destination_addr", ""))
        if esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT:
            receipt = parse_receipt(decode_text(payload, data_coding)) or {}
            self.events.add("sms_receipt", to=source, message_id=receipt.get("id"), state=receipt.get("stat"))
            return
        if esm_class & ESM_UDHI:
            try:
                concat, payload = parse_udh(payload)
            except ValueError as error:
                log.warning("MO from %s with a bad UDH ignored: %s", source, error)
                return
            if concat is not None and concat.total > 1:
                joined = self._reassembler.add((source, destination), concat, payload, data_coding)
                if joined is None:
                    return
                payload = joined
        text = decode_text(payload, data_coding)
        self.received += 1
        log.info("MO from %s to %s: %s", source, destination, text)
        self.events.add("mo_received", source=source, destination=destination, text=text)
        try:
            self.on_mo(MoMessage(source, destination, text))
        except Exception:
            log.exception("handling the MO from %s failed", source)
