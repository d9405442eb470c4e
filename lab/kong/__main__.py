"""Run one Kong node: ``python -m lab.kong --config FILE`` (the lab writes FILE, mode 600).

Logs to stderr with timestamps (supervisord keeps it), never the admin token. Serves until SIGTERM or SIGINT,
then closes both ports and exits 0; exits 2 when the configuration is unusable or a port is taken.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from lab.kong.config import ConfigError, load

log = logging.getLogger("lab.kong")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lab.kong",
        description="The lab's Kong stand-in: Kong 3.4's Admin API (enough for decK) and proxy, one node.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="JSON configuration written by the lab")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    logging.basicConfig(
        level=getattr(logging, arguments.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        config = load(arguments.config)
    except ConfigError as error:
        log.error("%s", error)
        return 2

    from sqlalchemy.exc import SQLAlchemyError

    from lab.kong.node import Node

    try:
        node = Node(config)
    except (ValueError, SQLAlchemyError) as error:
        log.error("cannot open the database: %s", str(error).splitlines()[0])
        return 2
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        node.start()
    except OSError as error:
        log.error(
            "cannot listen on %s:%d (admin) and %s:%d (proxy): %s",
            config.admin_host,
            config.admin_port,
            config.proxy_host,
            config.proxy_port,
            error,
        )
        return 2
    stop.wait()
    node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
