"""Run ``jasmind.py`` with TCP_NODELAY on every Twisted TCP connection.

Usage (with Jasmin's venv python): ``python nodelay.py PATH/TO/jasmind.py [jasmind options]``.

Stock Jasmin delivered only ~30-60 msg/s end to end on loopback: its SMPP client connector handles one
message at a time and Nagle's algorithm holds back the small AMQP, Redis and SMPP writes until the peer's
delayed ACK. With TCP_NODELAY on every connection (client and server side) it reached ~250 msg/s with
delivery receipts. This file runs inside Jasmin's own venv; it imports nothing from telco-robot.
"""

from __future__ import annotations

import contextlib
import runpy
import socket
import sys
from typing import Any

from twisted.internet import tcp

_original_init = tcp.Connection.__init__


def _init_with_nodelay(self: Any, skt: socket.socket, protocol: Any, reactor: Any = None) -> None:
    _original_init(self, skt, protocol, reactor)
    if skt.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # a socket that is already closed: nothing to speed up
            skt.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main() -> None:
    if len(sys.argv) < 2:
        sys.stderr.write(f"usage: {sys.argv[0]} PATH/TO/jasmind.py [options]\n")
        sys.exit(2)
    # Client sockets (connectTCP) and accepted server sockets both pass through Connection.__init__.
    tcp.Connection.__init__ = _init_with_nodelay
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
