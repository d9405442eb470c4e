"""Run the SIP proxy/registrar: ``python -m lab.sip --config FILE`` (keys in `lab.sip.config`).

Logs to stderr with timestamps (never a password; ``--log-level DEBUG`` adds every SIP message). Serves until
SIGTERM or SIGINT, then releases relay sessions, writes the queued CDRs and exits 0; exits 2 when the
configuration is unusable or a port is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from lab.rtprelay.client import RelayClient
from lab.sip.cdr import CdrWriter
from lab.sip.config import ConfigError, load
from lab.sip.proxy import Proxy

log = logging.getLogger("lab.sip")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.sip", description="The lab's SIP proxy and registrar (a Kamailio stand-in)."
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
    relay = None
    if config.relay is not None:
        relay = RelayClient(
            config.relay.control,
            timeout=config.relay.timeout,
            retries=config.relay.retries,
            disable_for=config.relay.disable_for,
        )
    cdrs = CdrWriter(config.cdr_database) if config.cdr_database else None
    proxy = Proxy(config, relay=relay, cdrs=cdrs)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, proxy.request_stop)
        await proxy.serve()

    try:
        asyncio.run(run())
    except OSError as error:
        log.error("cannot listen on %s (SIP %d, HTTP %d): %s", config.host, config.port, config.http_port, error)
        return 2
    finally:
        if cdrs is not None:
            cdrs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
