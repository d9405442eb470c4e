"""Run the voice application server: ``python -m lab.voiceapps --config FILE`` (the lab writes FILE, mode 600).

Logs to stderr, never a password. Serves until SIGTERM or SIGINT, then hangs up every call, sends what is
queued, unbinds and exits 0; exits 2 when the configuration is unusable or a port is taken.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from lab.voiceapps.config import ConfigError, load
from lab.voiceapps.engine import EngineError

log = logging.getLogger("lab.voiceapps")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.voiceapps",
        description="The platform's voice applications: voicemail, callback, two-factor, IVR and call queues.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="JSON configuration written by the lab")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        config = load(args.config)
    except ConfigError as error:
        log.error("%s", error)
        return 2
    from lab.voiceapps.server import App  # pjsua2 is loaded only for a usable configuration

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        app = App(config)
    except OSError as error:
        log.error("cannot listen for HTTP on %s:%d: %s", config.sip.host, config.http_port, error)
        return 2
    try:
        app.start()
    except EngineError as error:
        log.error("%s", error)
        app.close()
        return 2
    try:
        app.serve(stop)
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
