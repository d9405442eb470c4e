"""Keywords that open, switch, check and close binds to an SMSC."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from robot.api import logger
from robotlibcore import keyword
from telco_common import mask_secret

from SmppLibrary.connection import BindMode, SmppConnection
from SmppLibrary.errors import SmppStatusError
from SmppLibrary.keywords.base import SmppComponent


class BindKeywords(SmppComponent):
    @keyword(name="Open SMPP Connection")
    def open_smpp_connection(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        alias: str | None = None,
        system_type: str = "",
        bind_mode: BindMode = "transceiver",
        timeout: timedelta | None = None,
        rebind: bool | None = None,
    ) -> int:
        """Connects to the SMSC at ``host:port`` and binds as ``system_id``; returns the connection's index.

        The new connection becomes the current one (see `Switch SMPP Connection`). ``bind_mode`` is
        ``transceiver`` (default), ``transmitter`` or ``receiver``. ``timeout`` bounds the connect and the
        wait for the bind response (default: the library's ``timeout``). ``rebind`` overrides the library
        setting: after the link drops, the connection binds again by itself.

        A refused bind fails naming the SMPP status, e.g. ``Bind as 'alice' to 127.0.0.1:2775 failed:
        ESME_RINVPASWD (0x0000000E, Invalid Password).`` The password never appears in the log.

        | `Open SMPP Connection` | 127.0.0.1 | 2775 | alice | ${PASSWORD} | alias=alice |
        | `Open SMPP Connection` | ${SMSC_HOST} | ${SMSC_PORT} | bob | ${PW} | bind_mode=receiver | timeout=5s |
        """
        seconds = self.ctx.seconds(timeout)
        connection = SmppConnection(
            host,
            port,
            system_id,
            password,
            bind_mode=bind_mode,
            system_type=system_type,
            timeout=seconds,
            rebind=self.ctx.rebind if rebind is None else rebind,
            alias=alias,
        )
        logger.info(f"Binding as '{system_id}' (password {mask_secret(password)}) to {host}:{port} as {bind_mode}.")
        started = time.perf_counter()
        try:
            connection.open()
        except SmppStatusError as error:
            logger.info(f"Bind refused: {error.status_name}.")
            raise
        index = self.ctx.connections.register(connection, alias)
        logger.info(
            f"Bound {connection.label} in {(time.perf_counter() - started) * 1000:.1f} ms (connection {index})."
        )
        return index

    @keyword(name="Switch SMPP Connection")
    def switch_smpp_connection(self, alias_or_index: str | int) -> int | None:
        """Makes the connection with this alias or index the current one; returns the previous index.

        | ${previous}= | `Switch SMPP Connection` | bob |
        | `Submit SMS` | 4915100000001 | 4915100000002 | Hi Alice |
        | `Switch SMPP Connection` | ${previous} |
        """
        previous = self.ctx.connections.current_index
        try:
            self.ctx.connections.switch(alias_or_index)
        except RuntimeError as error:
            raise ValueError(f"{error} Use an alias given to `Open SMPP Connection` or an index from 1.") from None
        return previous

    @keyword(name="Close SMPP Connection")
    def close_smpp_connection(self, *, timeout: timedelta = timedelta(seconds=2)) -> None:
        """Unbinds and closes the current connection (waiting at most ``timeout`` for ``unbind_resp``).

        Never fails on a link that is already down, so it is safe in a teardown.
        """
        if not self.ctx.connections:
            logger.info("No SMPP connection to close.")
            return
        connection = self.ctx.current()
        outcome = connection.close(timeout.total_seconds())
        self.ctx.drain()
        logger.info(f"Closed SMPP connection {connection.alias or connection.label}: {outcome}.")

    @keyword(name="Close All SMPP Connections")
    def close_all_smpp_connections(self, *, timeout: timedelta = timedelta(seconds=2)) -> None:
        """Unbinds and closes every connection; for suite and test teardowns.

        Each close waits at most ``timeout`` for the ``unbind_resp`` and never fails on a dead link.
        Afterwards connection indexes start again from 1.
        """
        self.ctx.close_all(timeout.total_seconds())

    @keyword(name="SMPP Connection Should Be Bound")
    def smpp_connection_should_be_bound(self, *, timeout: timedelta = timedelta(0), message: str | None = None) -> None:
        """Fails unless the current connection is bound; with ``timeout`` waits that long (e.g. for a rebind).

        | `SMPP Connection Should Be Bound` |
        | `SMPP Connection Should Be Bound` | timeout=10s | message=The gateway did not take the bind back |
        """
        connection = self.ctx.current()
        if self.ctx.wait_for(lambda: connection.bound, timeout.total_seconds()):
            return
        state = "closed" if connection.closed else ("rebinding" if connection.rebind else "not bound")
        raise AssertionError(
            message
            or f"SMPP connection {connection.label} should be bound but it is {state}"
            f"{f' after {timeout.total_seconds():g} s' if timeout else ''}."
        )

    @keyword(name="Get SMPP Connection Info")
    def get_smpp_connection_info(self) -> dict[str, Any]:
        """Returns the current connection's ``alias``, ``host``, ``port``, ``system_id``, ``bind_mode``,
        ``bound``, ``closed``, ``rebinds`` (how often it bound again after a drop) and ``outstanding``."""
        self.ctx.drain()
        return self.ctx.current().info()

    @keyword(name="Send Enquire Link")
    def send_enquire_link(self, *, timeout: timedelta | None = None) -> float:
        """Sends ``enquire_link`` on the current connection; returns the round trip in milliseconds.

        Fails when no ``enquire_link_resp`` arrives within ``timeout``.
        """
        connection = self.ctx.current()
        seconds = self.ctx.seconds(timeout)
        started = time.perf_counter()
        response = connection.request("enquire_link", seconds)
        self.ctx.drain()
        elapsed = (response.received_at - started) * 1000
        if response.status:
            raise SmppStatusError(f"enquire_link on {connection.label}", response.status)
        logger.info(f"enquire_link_resp from {connection.endpoint} in {elapsed:.1f} ms.")
        return round(elapsed, 3)
