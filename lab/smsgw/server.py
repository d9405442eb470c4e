"""The gateway's SMPP server for customers, and the outbox of deliver_sm (receipts, MO) waiting for them.

Customers bind as transmitter, receiver or transceiver with a user's name and password (``ESME_RINVSYSID``
for an unknown name, ``ESME_RINVPASWD`` for a wrong password). A submit_sm is checked against the user's
throughput (``ESME_RTHROTTLED``, nothing stored) and the routes (``ESME_RINVDSTADR`` when none matches), stored,
and answered with the gateway's own message id once the row is committed. A PDU that cannot be read gets a
generic_nack and the session goes on; an impossible command_length gets a generic_nack and ends that session
only (the stream cannot be resynchronised).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from SmppLibrary.carrier.pdu import MalformedPduError, Pdu, decode, encode
from SmppLibrary.codec import (
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    status_name,
)

from lab.smsgw.config import GatewayConfig
from lab.smsgw.store import Message, OutboxItem, Store
from lab.smsgw.wire import FramingError, Sequences, no_delay, peer_of, read_pdu

log = logging.getLogger("lab.smsgw.server")

BIND_MODES = {"bind_transmitter": "transmitter", "bind_receiver": "receiver", "bind_transceiver": "transceiver"}
ESME_RINVDSTADR = 0x0B
ESME_RX_T_APPN = 0x64
RETRY_LATER = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RX_T_APPN})
RETRY_DELAY = 1.0
GATEWAY_SYSTEM_ID = "smsgw"


class GatewayCore(Protocol):
    """What the customer server needs from the gateway."""

    config: GatewayConfig

    def take_token(self, username: str, interface: str) -> bool: ...

    def accept(self, messages: list[Message], then: Callable[[bool], None]) -> None: ...

    def session_bound(self, session: CustomerSession) -> None: ...

    def session_closed(self, session: CustomerSession) -> None: ...

    def deliver_answered(self, session: CustomerSession, sequence: int, status: int) -> None: ...


class CustomerSession:
    """One TCP connection from a customer's ESME."""

    _ids = iter(range(1, 1 << 62))

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.id = next(self._ids)
        self.writer = writer
        self.peer = peer_of(writer)
        self.username: str | None = None
        self.mode: str | None = None
        self.bound_at: float | None = None
        self.closing = False
        self.outstanding = 0
        self._sequences = Sequences()

    @property
    def can_submit(self) -> bool:
        return self.mode in ("transmitter", "transceiver")

    @property
    def can_receive(self) -> bool:
        return self.mode in ("receiver", "transceiver") and not self.closing and not self.writer.is_closing()

    def next_sequence(self) -> int:
        return self._sequences.next()

    def send(self, raw: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(raw)

    def describe(self) -> dict[str, Any]:
        return {"session": self.id, "system_id": self.username, "mode": self.mode, "peer": self.peer}


class CustomerServer:
    def __init__(self, core: GatewayCore) -> None:
        self.core = core
        self.config = core.config
        self.sessions: list[CustomerSession] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.config.host, self.config.smpp_port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.closing = True
            session.writer.close()
        tasks = [task for task in self._tasks if not task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        for task in tasks:
            task.cancel()

    def receivers(self, username: str) -> list[CustomerSession]:
        return [s for s in self.sessions if s.username == username and s.can_receive]

    # --- one session --------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        no_delay(writer)
        session = CustomerSession(writer)
        self.sessions.append(session)
        try:
            while not session.closing:
                try:
                    raw = await read_pdu(reader)
                except FramingError as error:
                    log.warning("session %d from %s: %s; nacked and closed", session.id, session.peer, error)
                    session.send(encode("generic_nack", sequence=0, status=ESME_RINVCMDLEN))
                    break
                self._handle(session, raw)
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            session.closing = True
            if session in self.sessions:
                self.sessions.remove(session)
            writer.close()
            if session.mode is not None:
                log.info("customer %s (%s, session %d) disconnected", session.username, session.mode, session.id)
                self.core.session_closed(session)
            if task is not None:
                self._tasks.discard(task)

    def _handle(self, session: CustomerSession, raw: bytes) -> None:
        try:
            pdu = decode(raw)
        except MalformedPduError as error:
            log.info("session %d from %s: malformed PDU (%s); generic_nack", session.id, session.peer, error)
            session.send(encode("generic_nack", sequence=error.sequence, status=error.status))
            return
        command = pdu.command
        if command in ("deliver_sm_resp", "generic_nack"):
            self.core.deliver_answered(session, pdu.sequence, pdu.status)
        elif pdu.is_response:
            return
        elif command in BIND_MODES:
            self._bind(session, pdu)
        elif command == "submit_sm":
            self._submit(session, pdu)
        elif command == "enquire_link":
            session.send(encode("enquire_link_resp", sequence=pdu.sequence))
        elif command == "unbind":
            session.send(encode("unbind_resp", sequence=pdu.sequence))
            session.closing = True
        else:
            session.send(encode("generic_nack", sequence=pdu.sequence, status=ESME_RINVCMDID))

    def _bind(self, session: CustomerSession, pdu: Pdu) -> None:
        response = f"{pdu.command}_resp"
        username = str(pdu.fields.get("system_id", ""))
        user = self.config.users.get(username)
        if session.mode is not None:
            status = ESME_RALYBND
        elif user is None:
            status = ESME_RINVSYSID
        elif user.password != str(pdu.fields.get("password", "")):
            status = ESME_RINVPASWD
        else:
            status = ESME_ROK
        if status != ESME_ROK:
            log.info("bind as '%s' from %s refused: %s", username, session.peer, status_name(status))
            session.send(encode(response, sequence=pdu.sequence, status=status))
            return
        session.username, session.mode, session.bound_at = username, BIND_MODES[pdu.command], time.time()
        session.send(encode(response, sequence=pdu.sequence, fields={"system_id": GATEWAY_SYSTEM_ID}))
        log.info("customer %s bound as %s from %s (session %d)", username, session.mode, session.peer, session.id)
        self.core.session_bound(session)

    def _submit(self, session: CustomerSession, pdu: Pdu) -> None:
        sequence = pdu.sequence

        def answer(status: int, message_id: str = "") -> None:
            session.send(encode("submit_sm_resp", sequence=sequence, status=status, fields={"message_id": message_id}))

        if not session.can_submit or session.username is None:
            answer(ESME_RINVBNDSTS)
            return
        username = session.username
        if not self.core.take_token(username, "smpp"):
            answer(ESME_RTHROTTLED)
            return
        destination = str(pdu.fields.get("destination_addr", "")).strip()
        connector = self.config.route(destination.lstrip("+")) if destination else None
        if connector is None:
            log.info("submit from %s to '%s': no route; ESME_RINVDSTADR", username, destination)
            answer(ESME_RINVDSTADR)
            return
        message_id = str(uuid.uuid4())
        fields = {key: value for key, value in pdu.fields.items() if key not in ("short_message", "sm_length")}
        message = Message(
            id=message_id,
            msg_id=message_id,
            username=username,
            origin="smpp",
            connector=connector,
            fields=fields,
            short_message=bytes(pdu.fields.get("short_message", b"")),
            tlvs=list(pdu.tlvs.items()),
            registered_delivery=int(pdu.fields.get("registered_delivery", 0)),
        )
        self.core.accept([message], lambda ok: answer(ESME_ROK, message_id) if ok else answer(ESME_RSYSERR))


class Outbox:
    """deliver_sm waiting for customers: stored first, sent to the user's receiver binds round robin with a
    window per session, removed on deliver_sm_resp; sent again when a session drops before answering."""

    def __init__(
        self,
        store: Store,
        receivers: Callable[[str], list[CustomerSession]],
        *,
        window: int,
        response_timeout: float,
        changed: Callable[[], None],
    ) -> None:
        self.store = store
        self._receivers = receivers
        self.window = window
        self.response_timeout = response_timeout
        self._changed = changed  # something to commit
        self._pending: dict[str, deque[OutboxItem]] = {}
        self._in_flight: dict[tuple[int, int], tuple[OutboxItem, CustomerSession, float]] = {}
        self._turn: dict[str, int] = {}
        self.delivered = 0

    @property
    def waiting(self) -> int:
        return sum(len(items) for items in self._pending.values()) + len(self._in_flight)

    def load(self, items: list[OutboxItem]) -> None:
        for item in items:
            self._pending.setdefault(item.username, deque()).append(item)

    def add(self, username: str, kind: str, fields: dict[str, Any], short_message: bytes, tlvs: Any) -> OutboxItem:
        """Store a deliver_sm for ``username``; `release` it once the store has committed."""
        n = self.store.add_outbox(username, kind, fields, short_message, tlvs)
        return OutboxItem(n, username, kind, fields, short_message, tlvs)

    def release(self, item: OutboxItem) -> None:
        self._pending.setdefault(item.username, deque()).append(item)
        self.pump(item.username)

    def pump(self, username: str) -> None:
        queue = self._pending.get(username)
        if not queue:
            return
        sessions = self._receivers(username)
        if not sessions:
            return
        now = time.monotonic()
        while queue:
            session = self._next_session(username, sessions)
            if session is None:
                return
            item = queue.popleft()
            sequence = session.next_sequence()
            fields = {**item.fields, "short_message": item.short_message}
            session.send(encode("deliver_sm", sequence=sequence, fields=fields, tlvs=item.tlvs))
            session.outstanding += 1
            self._in_flight[(session.id, sequence)] = (item, session, now)

    def _next_session(self, username: str, sessions: list[CustomerSession]) -> CustomerSession | None:
        start = self._turn.get(username, 0)
        for offset in range(len(sessions)):
            session = sessions[(start + offset) % len(sessions)]
            if session.outstanding < self.window:
                self._turn[username] = start + offset + 1
                return session
        return None

    def answered(self, session: CustomerSession, sequence: int, status: int) -> None:
        entry = self._in_flight.pop((session.id, sequence), None)
        if entry is None:
            return
        item = entry[0]
        session.outstanding -= 1
        if status in RETRY_LATER:
            log.info(
                "customer %s answered deliver_sm with %s; retry in %g s",
                item.username,
                status_name(status),
                RETRY_DELAY,
            )
            asyncio.get_running_loop().call_later(RETRY_DELAY, self._retry, item)
            return
        if status != ESME_ROK:
            log.warning(
                "customer %s refused a %s deliver_sm with %s; dropped", item.username, item.kind, status_name(status)
            )
        else:
            self.delivered += 1
        self.store.remove_outbox(item.n)
        self._changed()
        self.pump(item.username)

    def _retry(self, item: OutboxItem) -> None:
        self._pending.setdefault(item.username, deque()).appendleft(item)
        self.pump(item.username)

    def session_closed(self, session: CustomerSession) -> None:
        """What a dropped session had not answered goes back to the front, in order, for the next receiver."""
        keys = sorted(key for key in self._in_flight if key[0] == session.id)
        back = sorted((self._in_flight.pop(key)[0] for key in keys), key=lambda item: item.n)
        for item in reversed(back):
            self._pending.setdefault(item.username, deque()).appendleft(item)
        if session.username is not None:
            self.pump(session.username)

    def tick(self, now: float) -> None:
        """Once a second: a deliver_sm unanswered for ``response_timeout`` is sent again (maybe elsewhere)."""
        late = [key for key, (_item, _session, sent) in self._in_flight.items() if now - sent > self.response_timeout]
        users = set()
        for key in late:
            item, session, _sent = self._in_flight.pop(key)
            session.outstanding -= 1
            self._pending.setdefault(item.username, deque()).appendleft(item)
            users.add(item.username)
        for username in users:
            log.warning("customer %s did not answer deliver_sm in %g s; sending again", username, self.response_timeout)
            self.pump(username)
