"""SMPP framing over asyncio streams, shared by the customer server and the upstream binds.

The PDUs themselves are read and written by SmppLibrary's strict codec (``SmppLibrary.carrier.pdu``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct

MAX_PDU_LENGTH = 64 * 1024
MAX_SEQUENCE = 0x7FFFFFFF


class FramingError(ValueError):
    """A command_length that cannot be right: the byte stream cannot be resynchronised."""

    def __init__(self, length: int) -> None:
        super().__init__(f"command_length {length} is outside 16..{MAX_PDU_LENGTH}")
        self.length = length


async def read_pdu(reader: asyncio.StreamReader) -> bytes:
    """One whole PDU; `FramingError` for an impossible length, ``IncompleteReadError`` at the end of stream."""
    head = await reader.readexactly(4)
    (length,) = struct.unpack(">L", head)
    if not 16 <= length <= MAX_PDU_LENGTH:
        raise FramingError(length)
    return head + await reader.readexactly(length - 4)


def no_delay(writer: asyncio.StreamWriter) -> None:
    """TCP_NODELAY: without it small PDUs wait for Nagle and a request/response loop crawls."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def peer_of(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


class Sequences:
    """SMPP sequence numbers 1..0x7FFFFFFF, wrapping."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> int:
        return (next(self._counter) - 1) % MAX_SEQUENCE + 1
