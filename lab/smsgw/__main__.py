"""Run the SMS gateway: ``python -m lab.smsgw --config FILE`` (the lab writes FILE, mode 600).

Logs to stderr with timestamps (supervisord keeps it), never a password. Serves until SIGTERM or SIGINT, then
unbinds, commits and exits 0; exits 2 when the configuration is unusable or a port is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from lab.smsgw.config import ConfigError, load
from lab.smsgw.gateway import Gateway

log = logging.getLogger("lab.smsgw")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lab.smsgw",
        description="The lab's SMS gateway (a Jasmin stand-in): SMPP server, HTTP API, carrier connectors.",
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
    gateway = Gateway(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, gateway.request_stop)
        await gateway.serve()

    try:
        asyncio.run(run())
    except OSError as error:
        log.error("cannot listen on %s (SMPP %d, HTTP %d): %s", config.host, config.smpp_port, config.http_port, error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
