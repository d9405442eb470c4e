"""One connector: the gateway's SMPP client bind (transceiver) to a carrier SMSC, kept up for ever.

It connects (TCP_NODELAY), binds, answers enquire_link and sends its own when the link is idle, and hands
every response and deliver_sm to its `UpstreamHandler`. When the link drops or the bind is refused it tries
again with a back-off that starts at 0.1 s and doubles up to ``reconnect_max``, for as long as the gateway runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from SmppLibrary.carrier.pdu import TLV_SC_INTERFACE_VERSION, MalformedPduError, Pdu, decode, encode
from SmppLibrary.codec import ESME_RINVCMDID, ESME_ROK, describe_status

from lab.smsgw.config import Connector, Settings
from lab.smsgw.wire import FramingError, Sequences, no_delay, read_pdu

log = logging.getLogger("lab.smsgw.upstream")

RECONNECT_FIRST_DELAY = 0.1
QUIET_FAILURES = 10  # after this many failed attempts in a row, log only every QUIET_FAILURES-th


class BindRefusedError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(describe_status(status))
        self.status = status


class UpstreamHandler(Protocol):
    def on_bound(self, bind: UpstreamBind) -> None: ...

    def on_lost(self, bind: UpstreamBind, reason: str) -> None: ...

    def on_submit_resp(self, bind: UpstreamBind, sequence: int, status: int, carrier_id: str) -> None: ...

    def on_deliver_sm(self, bind: UpstreamBind, pdu: Pdu) -> None: ...


class UpstreamBind:
    def __init__(self, connector: Connector, settings: Settings, handler: UpstreamHandler) -> None:
        self.connector = connector
        self.name = connector.name
        self.settings = settings
        self.handler = handler
        self.state = "down"  # down, connecting, bound
        self.bound_since: float | None = None
        self.binds = 0
        self.last_error: str | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sequences = Sequences()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_heard = 0.0
        self._enquire_sent: float | None = None
        self._unbound = asyncio.Event()

    @property
    def bound(self) -> bool:
        return self.state == "bound" and self._writer is not None and not self._writer.is_closing()

    @property
    def endpoint(self) -> str:
        return f"{self.connector.host}:{self.connector.port}"

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "host": self.connector.host,
            "port": self.connector.port,
            "system_id": self.connector.system_id,
            "bound_since": self.bound_since,
            "binds": self.binds,
            "last_error": self.last_error,
        }

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"smsgw-upstream-{self.name}")

    async def close(self, timeout: float = 1.0) -> None:
        """Unbind (waiting up to ``timeout`` for unbind_resp) and stop reconnecting."""
        self._closing = True
        if self.bound and self._writer is not None:
            self._unbound.clear()
            self._writer.write(encode("unbind", sequence=self._sequences.next()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._unbound.wait(), timeout)
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reset(self, reason: str) -> None:
        """Drop the connection (e.g. the carrier stopped answering); the bind is made again after back-off."""
        if self._writer is not None and not self._writer.is_closing():
            log.warning("connector %s: %s; dropping the connection to %s", self.name, reason, self.endpoint)
            self.last_error = reason
            self._writer.close()

    # --- sending (event-loop thread) ---------------------------------------------------------------------

    def submit(self, fields: dict[str, Any], tlvs: list[tuple[int, bytes]]) -> int:
        """Write one submit_sm; return its sequence number. Only while `bound`."""
        writer = self._writer
        if writer is None:
            raise ConnectionError(f"connector {self.name} is not bound")
        sequence = self._sequences.next()
        writer.write(encode("submit_sm", sequence=sequence, fields=fields, tlvs=tlvs))
        return sequence

    def respond(self, command: str, sequence: int, status: int = ESME_ROK) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(encode(command, sequence=sequence, status=status))

    def tick(self, now: float) -> None:
        """Once a second: enquire_link on an idle link, and give up on one that does not answer it."""
        if not self.bound or self._writer is None:
            return
        if self._enquire_sent is not None:
            if now - self._enquire_sent > self.settings.response_timeout:
                self.reset(f"no enquire_link_resp within {self.settings.response_timeout:g} s")
            return
        if now - self._last_heard >= self.settings.enquire_link_interval:
            self._enquire_sent = now
            self._writer.write(encode("enquire_link", sequence=self._sequences.next()))

    # --- the connection -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        failures = 0
        while not self._closing:
            self.state = "connecting"
            try:
                reader, writer = await self._connect_and_bind()
            except (OSError, TimeoutError, asyncio.IncompleteReadError, BindRefusedError, FramingError) as error:
                failures += 1
                self.state = "down"
                self.last_error = _reason(error)
                if failures == 1 or failures % QUIET_FAILURES == 0:
                    log.warning(
                        "connector %s: cannot bind to %s as %s (%s); retrying every %g s at most (attempt %d)",
                        self.name,
                        self.endpoint,
                        self.connector.system_id,
                        self.last_error,
                        self.settings.reconnect_max,
                        failures,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max)
                continue
            delay, failures = RECONNECT_FIRST_DELAY, 0
            self._writer = writer
            self.state = "bound"
            self.bound_since = time.time()
            self.binds += 1
            self.last_error = None
            self._last_heard = time.monotonic()
            self._enquire_sent = None
            log.info(
                "connector %s: bound to %s as %s (transceiver)", self.name, self.endpoint, self.connector.system_id
            )
            self.handler.on_bound(self)
            reason = "the carrier closed the connection"
            try:
                reason = await self._serve(reader, writer)
            except asyncio.CancelledError:
                reason = "the gateway is stopping"
                raise
            finally:
                self.state = "down"
                self.bound_since = None
                self._writer = None
                writer.close()
                self._unbound.set()
                if not self._closing:
                    log.warning("connector %s: link to %s lost (%s); reconnecting", self.name, self.endpoint, reason)
                    self.last_error = reason
                self.handler.on_lost(self, reason)
            if not self._closing:
                await asyncio.sleep(delay)

    async def _connect_and_bind(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        timeout = self.settings.response_timeout
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.connector.host, self.connector.port), timeout
        )
        try:
            no_delay(writer)
            sequence = self._sequences.next()
            fields = {
                "system_id": self.connector.system_id,
                "password": self.connector.password,
                "interface_version": 0x34,
            }
            writer.write(encode("bind_transceiver", sequence=sequence, fields=fields))
            while True:
                pdu = decode(await asyncio.wait_for(read_pdu(reader), timeout))
                if pdu.command == "bind_transceiver_resp" and pdu.sequence == sequence:
                    break
                if pdu.command == "generic_nack":
                    raise BindRefusedError(pdu.status)
            if pdu.status != ESME_ROK:
                raise BindRefusedError(pdu.status)
            if pdu.tlv_int(TLV_SC_INTERFACE_VERSION) not in (None, 0x34):
                log.info("connector %s: the SMSC speaks interface version 0x%02X", self.name, pdu.tlv_int(0x0210))
        except BaseException:
            writer.close()
            raise
        return reader, writer

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        """Read until the link ends; return why it ended."""
        while True:
            try:
                raw = await read_pdu(reader)
            except asyncio.IncompleteReadError:
                return "the carrier closed the connection"
            except FramingError as error:
                return f"unreadable stream ({error})"
            except OSError as error:
                return _reason(error)
            self._last_heard = time.monotonic()
            try:
                pdu = decode(raw)
            except MalformedPduError as error:
                log.warning("connector %s: unreadable PDU from the carrier: %s", self.name, error)
                if not int.from_bytes(raw[4:8], "big") & 0x80000000:
                    writer.write(encode("generic_nack", sequence=error.sequence, status=error.status))
                continue
            command = pdu.command
            if command == "submit_sm_resp":
                self.handler.on_submit_resp(self, pdu.sequence, pdu.status, str(pdu.fields.get("message_id", "")))
            elif command == "deliver_sm":
                self.handler.on_deliver_sm(self, pdu)
            elif command == "enquire_link":
                writer.write(encode("enquire_link_resp", sequence=pdu.sequence))
            elif command == "enquire_link_resp":
                self._enquire_sent = None
            elif command == "generic_nack":
                # A nack for one of our submits answers it (with an error); for an enquire_link it will do.
                self._enquire_sent = None
                self.handler.on_submit_resp(self, pdu.sequence, pdu.status or ESME_RINVCMDID, "")
            elif command == "unbind":
                writer.write(encode("unbind_resp", sequence=pdu.sequence))
                await writer.drain()
                return "the carrier unbound"
            elif command == "unbind_resp":
                return "unbound"
            elif not pdu.is_response:
                writer.write(encode("generic_nack", sequence=pdu.sequence, status=ESME_RINVCMDID))
            if writer.transport.get_write_buffer_size() > 256 * 1024:
                await writer.drain()


def _reason(error: BaseException) -> str:
    if isinstance(error, BindRefusedError):
        return f"bind refused: {error}"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, asyncio.IncompleteReadError):
        return "the carrier closed the connection"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, OSError):
        return error.strerror or str(error) or type(error).__name__
    return str(error) or type(error).__name__
