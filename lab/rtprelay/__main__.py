"""Run the media relay: ``python -m lab.rtprelay --config FILE`` (keys in `lab.rtprelay.config`).

Logs to stderr with timestamps. Serves until SIGTERM or SIGINT, then frees every port and exits 0; exits 2 when
the configuration is unusable or a port is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from lab.rtprelay.config import ConfigError, load
from lab.rtprelay.relay import Relay

log = logging.getLogger("lab.rtprelay")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.rtprelay", description="The lab's media relay (an RTPEngine stand-in)."
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="JSON configuration written by the lab")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    arguments = parser.parse_args(argv)
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
    relay = Relay(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, relay.request_stop)
        await relay.serve()

    try:
        asyncio.run(run())
    except OSError as error:
        log.error(
            "cannot listen on %s (control %d, HTTP %d): %s", config.host, config.control_port, config.http_port, error
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
