"""The state SmppLibrary's components share: the binds, what they received, the carrier SMSC in use."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from robot.api import logger
from robot.utils import ConnectionCache

from SmppLibrary.carrier import CarrierApi, CarrierSmsc, ControlServer
from SmppLibrary.connection import Event, SmppConnection
from SmppLibrary.errors import CarrierError, SmppError
from SmppLibrary.inbox import Inbox

T = TypeVar("T")
WAIT_STEP = 0.02


class SmppContext:
    """Shared by every keyword component. Only the keyword thread touches it."""

    def __init__(
        self,
        *,
        timeout: timedelta,
        rebind: bool,
        throttle_retries: int,
        throttle_backoff: timedelta,
    ) -> None:
        self.timeout = timeout
        self.rebind = rebind
        self.throttle_retries = throttle_retries
        self.throttle_backoff = throttle_backoff
        self.connections: ConnectionCache[SmppConnection] = ConnectionCache(
            "No SMPP connection is open. Open one with `Open SMPP Connection`."
        )
        self.inbox = Inbox()
        self.carriers: ConnectionCache[CarrierEntry] = ConnectionCache(
            "No carrier SMSC in use. Start one with `Start Carrier SMSC` or connect to the lab's with "
            "`Connect To Carrier SMSC`."
        )

    # --- time -----------------------------------------------------------------------------------------------

    def seconds(self, timeout: timedelta | None) -> float:
        """A keyword's ``timeout`` in seconds, or the library default."""
        value = self.timeout if timeout is None else timeout
        return max(0.0, value.total_seconds())

    # --- connections ----------------------------------------------------------------------------------------

    def current(self) -> SmppConnection:
        if not self.connections:
            raise SmppError("No SMPP connection is open. Open one with `Open SMPP Connection`.")
        connection = self.connections.current
        if not isinstance(connection, SmppConnection):  # pragma: no cover - ConnectionCache's NoConnection
            raise SmppError("No SMPP connection is open.")
        return connection

    def drain(self) -> None:
        """Take what every bind's reader handed over, file it in the inbox and log it (keyword thread only)."""
        for connection in self.connections:
            while True:
                try:
                    event = connection.events.get_nowait()
                except queue.Empty:
                    break
                self._file(connection, event)

    def _file(self, connection: SmppConnection, event: Event) -> None:
        name = connection.alias or connection.label
        if event.kind == "deliver_sm" and event.pdu is not None:
            kind, item = self.inbox.add(event.pdu, name)
            fields = event.pdu
            logger.debug(
                f"deliver_sm on {name}: from '{fields['source']}' to '{fields['destination']}' "
                f"esm_class=0x{fields['esm_class']:02X} data_coding=0x{fields['data_coding']:02X} "
                f"short_message={fields['short_message'][:160].hex()}"
            )
            if kind == "receipt" and item is not None:
                logger.info(f"Delivery receipt on {name} for '{item['id']}': {item['state']} (err {item['error']}).")
            elif kind == "mo" and item is not None:
                logger.info(
                    f"SMS received on {name} from '{item['source']}' to '{item['destination']}' "
                    f"({item['coding']}, {item['parts']} part(s)): {_cut(item['text'])!r}"
                )
        elif event.kind == "disconnected":
            then = "; rebinding" if connection.rebind and not connection.closed else ""
            logger.info(f"SMPP connection {name} dropped: {event.detail}{then}.")
        elif event.kind == "rebound":
            logger.info(f"SMPP connection {name} {event.detail}.")
        elif event.kind == "rebind_failed":
            logger.info(f"SMPP connection {name}: rebind failed: {event.detail}")
        else:
            logger.info(f"SMPP connection {name}: {event.kind}: {event.detail}")

    def wait_for(self, check: Callable[[], T | None], timeout: float) -> T | None:
        """Drain and ``check`` until it returns something truthy or ``timeout`` seconds pass (then ``None``)."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            result = check()
            if result:
                return result
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(WAIT_STEP, max(0.0, deadline - time.monotonic())))

    def close_all(self, timeout: float) -> None:
        for connection in self.connections:
            outcome = connection.close(timeout)
            logger.info(f"Closed SMPP connection {connection.alias or connection.label}: {outcome}.")
        self.drain()
        self.connections.empty_cache()

    # --- carrier --------------------------------------------------------------------------------------------

    def carrier(self) -> CarrierEntry:
        if not self.carriers:
            raise CarrierError(
                "No carrier SMSC in use. Start one with `Start Carrier SMSC` or connect to the lab's with "
                "`Connect To Carrier SMSC`."
            )
        entry = self.carriers.current
        if not isinstance(entry, CarrierEntry):  # pragma: no cover - ConnectionCache's NoConnection
            raise CarrierError("No carrier SMSC in use.")
        return entry

    def stop_carriers(self) -> None:
        for entry in self.carriers:
            entry.stop()
        self.carriers.empty_cache()

    def shutdown(self) -> None:
        """Close what tests left open: every bind, every in-process carrier. Never raises."""
        try:
            self.close_all(timeout=2.0)
        except Exception as error:  # teardown must go on
            logger.debug(f"Closing SMPP connections at library close: {error}")
        self.stop_carriers()


@dataclass
class CarrierEntry:
    """A carrier SMSC the keywords drive: in-process (``local`` set) or remote through its control API."""

    api: CarrierApi
    label: str
    local: CarrierSmsc | None = None
    control: ControlServer | None = None

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
            self.control = None
        if self.local is not None:
            self.local.stop()


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def describe(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."
