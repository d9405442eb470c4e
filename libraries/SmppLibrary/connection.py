"""One SMPP bind over smpplib, safe to use from the keyword thread while one reader thread owns the socket.

smpplib 2.2.4 is not thread-safe and reads nothing by itself, so each bind has:

- one reader thread that waits on ``select`` and then runs ``read_once()``; it hands every PDU it reads to the
  keyword thread through a queue of `Event` objects (it never logs to Robot) and resolves response waiters;
- one write lock: every ``send_pdu`` (keyword-thread submits, the reader's automatic ``deliver_sm_resp``) is
  serialised through it;
- response correlation by sequence number: a waiter (a ``Future``) is registered before the request is
  written, and the reader completes it with the response PDU (``submit_sm_resp``, ``enquire_link_resp``,
  ``generic_nack``) together with the moment it arrived;
- an automatic rebind after the link drops (when enabled), done by the reader thread with back-off;
- a close that stops the reader first and only then unbinds, with a bounded wait.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import errno
import logging
import queue
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from smpplib import client as smpp_client
from smpplib import consts, smpp
from smpplib import exceptions as smpp_exceptions

from SmppLibrary.codec import (
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_RUNKNOWNERR,
    describe_status,
    status_name,
)
from SmppLibrary.errors import SmppConnectionError, SmppError, SmppStatusError

BindMode = Literal["transceiver", "transmitter", "receiver"]
BIND_COMMANDS: dict[str, str] = {
    "transceiver": "bind_transceiver",
    "transmitter": "bind_transmitter",
    "receiver": "bind_receiver",
}
BOUND_STATES = (
    consts.SMPP_CLIENT_STATE_BOUND_TX,
    consts.SMPP_CLIENT_STATE_BOUND_RX,
    consts.SMPP_CLIENT_STATE_BOUND_TRX,
)
MAX_PDU_LENGTH = 64 * 1024
POLL_SECONDS = 0.1
REBIND_FIRST_DELAY = 0.1
REBIND_MAX_DELAY = 2.0

# smpplib logs every PDU in hex at DEBUG (the bind PDU holds the password) and warns through the logging
# module from whichever thread it runs on; Robot would turn those into log lines. Its client logs go here.
SMPPLIB_LOGGER = "SmppLibrary.smpplib"
_smpplib_log = logging.getLogger(SMPPLIB_LOGGER)
_smpplib_log.setLevel(logging.WARNING)  # its DEBUG lines are the PDUs in hex, password included
_smpplib_log.propagate = False
_smpplib_log.addHandler(logging.NullHandler())

BIND_HINTS = {
    ESME_RINVPASWD: "Check the password configured for this system_id (the password is not logged).",
    ESME_RINVSYSID: "The SMSC does not know this system_id: check the account name.",
    0x0D: "The SMSC refused the bind: the account may be disabled, out of binds or not allowed this bind mode.",
    0x05: "This system_id is already bound and the SMSC allows no second bind.",
    0x53: "Check system_type: the SMSC rejects it.",
}


@dataclass(frozen=True)
class Response:
    """A response PDU matched to its request by sequence number."""

    command: str
    status: int
    sequence: int
    message_id: str
    received_at: float  # time.perf_counter() when the reader read it

    @property
    def status_name(self) -> str:
        return status_name(self.status)


@dataclass(frozen=True)
class Event:
    """Something the reader thread saw, for the keyword thread to log and act on."""

    kind: Literal["deliver_sm", "disconnected", "rebound", "rebind_failed", "unbind", "unparseable", "nack", "note"]
    detail: str
    pdu: dict[str, Any] | None = None
    at: float = field(default_factory=time.time)


class _UnparseablePduError(Exception):
    """A complete PDU that smpplib could not parse; it has been nacked and reported."""


class _LockedSequence(smpp_client.SimpleSequenceGenerator):
    """smpplib's sequence generator, safe for the keyword thread and the reader thread at once."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            return int(super().next_sequence())


class _Client(smpp_client.Client):
    """smpplib's Client with serialised writes, real connect errors and every read PDU passed to its owner."""

    def __init__(self, owner: SmppConnection) -> None:
        super().__init__(
            owner.host,
            owner.port,
            timeout=owner.timeout,
            sequence_generator=owner.sequence,
            logger_name=SMPPLIB_LOGGER,
            allow_unknown_opt_params=True,
        )
        self._owner = owner
        self._socket: socket.socket | None = None
        # PDUs reach the owner through read_pdu; smpplib's default handlers would only log, or raise on an
        # error status (which ends a listen loop), so they are silenced here.
        self.set_message_received_handler(_ignore)
        self.set_message_sent_handler(_ignore)
        self.set_query_resp_handler(_ignore)
        self.set_error_pdu_handler(_ignore)

    @property
    def sock(self) -> socket.socket | None:
        return self._socket

    def connect(self) -> None:
        # smpplib turns every socket error into "Connection refused"; keep the real reason, set TCP_NODELAY.
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        self._socket = sock
        self.state = consts.SMPP_CLIENT_STATE_OPEN

    def disconnect(self) -> None:
        sock, self._socket = self._socket, None
        self.state = consts.SMPP_CLIENT_STATE_CLOSED
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def send_pdu(self, p: Any) -> bool:
        with self._owner.write_lock:
            if self._socket is None:
                raise smpp_exceptions.ConnectionError("socket closed")
            return bool(super().send_pdu(p))

    def read_pdu(self) -> Any:
        raw_length = self._recv_exact(4)
        (length,) = struct.unpack(">L", raw_length)
        if not 16 <= length <= MAX_PDU_LENGTH:
            raise smpp_exceptions.ConnectionError(f"PDU with command_length {length}: the byte stream is out of step")
        raw = raw_length + self._recv_exact(length - 4)
        try:
            pdu = smpp.parse_pdu(raw, client=self, allow_unknown_opt_params=True)
        except Exception as error:  # smpplib raises KeyError, struct.error, UnknownCommandError...
            self._owner._unparseable(self, raw, error)
            raise _UnparseablePduError(str(error)) from None
        if not pdu.is_error() and pdu.command in consts.STATE_SETTERS:
            self.state = consts.STATE_SETTERS[pdu.command]
        self._owner._received(self, pdu)
        return pdu


class SmppConnection:
    """One bind to an SMSC. Created and driven by the keyword thread; read by its own reader thread."""

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        bind_mode: BindMode = "transceiver",
        system_type: str = "",
        timeout: float = 10.0,
        rebind: bool = True,
        alias: str | None = None,
    ) -> None:
        if bind_mode not in BIND_COMMANDS:
            raise ValueError(f"Unknown bind mode '{bind_mode}'. Use transceiver, transmitter or receiver.")
        if len(system_id) > 15:
            raise ValueError(f"system_id '{system_id}' has {len(system_id)} characters; SMPP 3.4 allows at most 15.")
        if len(password) > 8:
            raise ValueError(
                f"The password for '{system_id}' has {len(password)} characters; SMPP 3.4 allows at most 8 "
                "(smpplib would silently cut it, and the bind would fail with ESME_RINVPASWD)."
            )
        self.host = host
        self.port = port
        self.system_id = system_id
        self._password = password
        self.bind_mode: BindMode = bind_mode
        self.system_type = system_type
        self.timeout = timeout
        self.rebind = rebind
        self.alias = alias
        self.sequence = _LockedSequence()
        self.write_lock = threading.Lock()
        self.events: queue.Queue[Event] = queue.Queue()
        self.rebinds = 0
        self.closed = False
        self._client: _Client | None = None
        self._bound = threading.Event()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._waiters: dict[int, cf.Future[Response]] = {}
        self._waiters_lock = threading.Lock()

    # --- describing -------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        if self.alias:
            return f"'{self.alias}' ({self.system_id}@{self.endpoint}, {self.bind_mode})"
        return f"{self.system_id}@{self.endpoint} ({self.bind_mode})"

    @property
    def bound(self) -> bool:
        return self._bound.is_set() and not self.closed

    def info(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "host": self.host,
            "port": self.port,
            "system_id": self.system_id,
            "bind_mode": self.bind_mode,
            "bound": self.bound,
            "closed": self.closed,
            "rebinds": self.rebinds,
            "outstanding": len(self._waiters),
        }

    # --- opening ----------------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect and bind (raising `SmppConnectionError` or `SmppStatusError`), then start the reader."""
        self._client = self._connect_and_bind()
        self._bound.set()
        self._reader = threading.Thread(
            target=self._read_loop, name=f"smpp-reader-{self.system_id}@{self.endpoint}", daemon=True
        )
        self._reader.start()

    def _connect_and_bind(self) -> _Client:
        client = _Client(self)
        action = f"Bind as '{self.system_id}' to {self.endpoint}"
        try:
            client.connect()
        except OSError as error:
            raise SmppConnectionError(
                f"Cannot connect to the SMSC at {self.endpoint} (as '{self.system_id}'): {_reason(error)}. "
                f"Check that the SMSC runs and listens on {self.endpoint} (timeout {self.timeout:g} s)."
            ) from None
        try:
            getattr(client, BIND_COMMANDS[self.bind_mode])(
                system_id=self.system_id, password=self._password, system_type=self.system_type
            )
        except smpp_exceptions.PDUError as error:
            client.disconnect()
            status = int(error.args[1]) if len(error.args) > 1 else ESME_RUNKNOWNERR
            raise SmppStatusError(action, status, BIND_HINTS.get(status, "")) from None
        except (smpp_exceptions.ConnectionError, OSError, _UnparseablePduError) as error:
            client.disconnect()
            detail = str(error) or "the SMSC closed the connection or did not answer"
            raise SmppConnectionError(
                f"{action} failed: no bind response within {self.timeout:g} s ({detail})."
            ) from None
        return client

    # --- requests (keyword thread) ----------------------------------------------------------------------

    def wait_bound(self, timeout: float) -> _Client:
        """The bound client, waiting up to ``timeout`` for a rebind in progress."""
        if self.closed:
            raise SmppConnectionError(f"SMPP connection {self.label} is closed. Open a new one.")
        if not self._bound.is_set() and not self.rebind:
            raise SmppConnectionError(
                f"SMPP connection {self.label} is not bound: the link dropped and rebind is off. Open a new one."
            )
        if not self._bound.wait(timeout):
            state = "rebinding" if self.rebind else "not bound (rebind is off)"
            raise SmppConnectionError(f"SMPP connection {self.label} is {state}: not bound within {timeout:g} s.")
        client = self._client
        if client is None:
            raise SmppConnectionError(f"SMPP connection {self.label} has no socket.")
        return client

    def send_request(self, command: str, timeout: float, **fields: Any) -> tuple[int, cf.Future[Response]]:
        """Write a request PDU; return its sequence number and the future its response will complete."""
        if command in ("submit_sm", "data_sm") and self.bind_mode == "receiver":
            raise SmppError(
                f"SMPP connection {self.label} is bound as receiver and cannot send {command}. "
                "Bind as transmitter or transceiver, or `Switch SMPP Connection` to such a bind."
            )
        client = self.wait_bound(timeout)
        pdu = smpp.make_pdu(command, client=client, **fields)
        future: cf.Future[Response] = cf.Future()
        sequence = int(pdu.sequence)
        with self._waiters_lock:
            self._waiters[sequence] = future
        try:
            client.send_pdu(pdu)
        except smpp_exceptions.PDUError as error:  # smpplib's own bind-state check
            with self._waiters_lock:
                self._waiters.pop(sequence, None)
            raise SmppError(f"Sending {command} on {self.label} failed: {error}.") from None
        except (smpp_exceptions.ConnectionError, OSError) as error:
            with self._waiters_lock:
                self._waiters.pop(sequence, None)
            raise SmppConnectionError(
                f"Sending {command} on {self.label} failed: {error or 'the link is down'}."
                + (" A rebind is in progress." if self.rebind else "")
            ) from None
        return sequence, future

    def wait_response(self, command: str, sequence: int, future: cf.Future[Response], timeout: float) -> Response:
        try:
            return future.result(timeout)
        except cf.TimeoutError:
            with self._waiters_lock:
                self._waiters.pop(sequence, None)
            raise SmppError(
                f"No response to {command} (sequence {sequence}) from {self.endpoint} within {timeout:g} s."
            ) from None

    def request(self, command: str, timeout: float, **fields: Any) -> Response:
        sequence, future = self.send_request(command, timeout, **fields)
        return self.wait_response(command, sequence, future, timeout)

    # --- reader thread -----------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            client = self._client
            sock = client.sock if client is not None else None
            if client is None or sock is None:
                if not self._recover("the socket is closed"):
                    return
                continue
            try:
                readable, _, _ = select.select([sock], [], [], POLL_SECONDS)
                if readable and not self._stop.is_set():
                    client.read_once(auto_send_enquire_link=False)
            except _UnparseablePduError:
                continue
            except smpp_exceptions.PDUError as error:
                self.events.put(Event("note", f"smpplib refused a PDU: {error}"))
            except (smpp_exceptions.ConnectionError, OSError, ValueError) as error:
                if self._stop.is_set():
                    return
                if not self._recover(str(error) or "the SMSC closed the connection"):
                    return

    def _recover(self, reason: str) -> bool:
        """Mark the link down; rebind if enabled. False when the reader should end."""
        self._bound.clear()
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
        self._fail_waiters(f"the link to {self.endpoint} dropped ({reason})")
        self.events.put(Event("disconnected", reason))
        if not self.rebind:
            return False
        delay = REBIND_FIRST_DELAY
        attempt = 0
        while not self._stop.wait(delay):
            attempt += 1
            try:
                new_client = self._connect_and_bind()
            except SmppError as error:
                if attempt == 1:
                    self.events.put(Event("rebind_failed", f"{error} Retrying."))
                delay = min(delay * 2, REBIND_MAX_DELAY)
                continue
            if self._stop.is_set():
                new_client.disconnect()
                return False
            self._client = new_client
            self.rebinds += 1
            self._bound.set()
            self.events.put(Event("rebound", f"rebound after {attempt} attempt(s)"))
            return True
        return False

    def _fail_waiters(self, reason: str) -> None:
        with self._waiters_lock:
            waiters, self._waiters = self._waiters, {}
        for sequence, future in waiters.items():
            if not future.done():
                future.set_exception(SmppConnectionError(f"No response to sequence {sequence}: {reason}."))

    def _received(self, client: _Client, pdu: Any) -> None:
        """Called by the reader for every parsed PDU, before smpplib's own handling in ``read_once``."""
        command = pdu.command
        if command.endswith("_resp") or command == "generic_nack":
            with self._waiters_lock:
                future = self._waiters.pop(int(pdu.sequence), None)
            if future is not None and not future.done():
                message_id = getattr(pdu, "message_id", None)
                future.set_result(
                    Response(command, int(pdu.status), int(pdu.sequence), _text(message_id), time.perf_counter())
                )
            elif command == "generic_nack":
                self.events.put(Event("nack", f"generic_nack {describe_status(int(pdu.status))}"))
        elif command == "deliver_sm":
            self.events.put(Event("deliver_sm", "deliver_sm", deliver_sm_fields(pdu)))
        elif command == "unbind":
            # smpplib's read_once only logs an unbind; SMPP wants an unbind_resp.
            resp = smpp.make_pdu("unbind_resp", client=client)
            resp.sequence = pdu.sequence
            client.send_pdu(resp)
            self.events.put(Event("unbind", "the SMSC sent unbind; answered unbind_resp"))

    def _unparseable(self, client: _Client, raw: bytes, error: Exception) -> None:
        command_id, _status, sequence = struct.unpack(">LLL", raw[4:16])
        if not command_id & 0x80000000:
            nack = smpp.make_pdu("generic_nack", client=client, status=0x03)
            nack.sequence = sequence
            with contextlib.suppress(smpp_exceptions.ConnectionError, smpp_exceptions.PDUError, OSError):
                client.send_pdu(nack)
        self.events.put(
            Event("unparseable", f"command_id 0x{command_id:08X} sequence {sequence}: {error}", {"raw": raw.hex()})
        )

    # --- closing -----------------------------------------------------------------------------------------

    def close(self, timeout: float | None = None) -> str:
        """Stop the reader, unbind (bounded) and close the socket. Never raises; returns what happened."""
        if self.closed:
            return "already closed"
        self.closed = True
        wait = min(self.timeout, timeout if timeout is not None else self.timeout)
        self._stop.set()
        reader_stopped = True
        if self._reader is not None:
            self._reader.join(POLL_SECONDS + wait + 1)
            reader_stopped = not self._reader.is_alive()
        client, self._client = self._client, None
        self._bound.clear()
        self._fail_waiters("the connection was closed")
        if client is None:
            return "closed (the link was already down)"
        outcome = "closed without unbind (the reader did not stop)"
        if reader_stopped and client.state in BOUND_STATES:
            outcome = self._unbind(client, min(wait, 2.0))
        client.disconnect()
        return outcome

    def _unbind(self, client: _Client, wait: float) -> str:
        deadline = time.monotonic() + wait
        try:
            sock = client.sock
            if sock is None:
                return "closed (no socket)"
            sock.settimeout(wait)
            client.send_pdu(smpp.make_pdu("unbind", client=client))
            while time.monotonic() < deadline:
                readable, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
                if not readable:
                    break
                try:
                    pdu = client.read_pdu()
                except _UnparseablePduError:
                    continue
                if pdu.command == "unbind_resp":
                    return "unbound"
        except (smpp_exceptions.ConnectionError, smpp_exceptions.PDUError, OSError, ValueError) as error:
            return f"closed; unbind failed ({error or 'link down'})"
        return f"closed; no unbind_resp within {wait:g} s"


def deliver_sm_fields(pdu: Any) -> dict[str, Any]:
    """The fields of a parsed deliver_sm as plain Python values (bytes for message content)."""
    sar = None
    if getattr(pdu, "sar_msg_ref_num", None) is not None and getattr(pdu, "sar_total_segments", None):
        sar = (int(pdu.sar_msg_ref_num), int(pdu.sar_total_segments), int(pdu.sar_segment_seqnum or 0))
    return {
        "sequence": int(pdu.sequence),
        "service_type": _text(pdu.service_type),
        "source": _text(pdu.source_addr),
        "source_ton": int(pdu.source_addr_ton or 0),
        "source_npi": int(pdu.source_addr_npi or 0),
        "destination": _text(pdu.destination_addr),
        "dest_ton": int(pdu.dest_addr_ton or 0),
        "dest_npi": int(pdu.dest_addr_npi or 0),
        "esm_class": int(pdu.esm_class or 0),
        "data_coding": int(pdu.data_coding or 0),
        "short_message": bytes(pdu.short_message or b""),
        "message_payload": bytes(getattr(pdu, "message_payload", None) or b""),
        "receipted_message_id": _text(getattr(pdu, "receipted_message_id", None)),
        "message_state": getattr(pdu, "message_state", None),
        "sar": sar,
        "received_at": time.time(),
    }


def _ignore(*_args: Any, **_kwargs: Any) -> None:
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.rstrip(b"\x00").decode("latin-1")
    return str(value)


def _reason(error: OSError) -> str:
    if isinstance(error, TimeoutError):
        return "connection timed out"
    if error.errno == errno.ECONNREFUSED:
        return "connection refused"
    return error.strerror or str(error) or type(error).__name__
