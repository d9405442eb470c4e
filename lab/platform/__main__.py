"""Run the platform API: ``python -m lab.platform --config FILE`` (JSON, mode 600; see ``lab/platform/config.py``).

Logs to stderr with timestamps, never a password. Serves until SIGTERM or SIGINT, then stops its background
workers and exits 0; exits 2 when the configuration is unusable.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from lab.platform.config import ConfigError, load


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lab.platform",
        description="The lab's platform API (provisioning, call control, CDRs, SMS, webhooks, onboarding).",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="JSON configuration (mode 600)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    logging.basicConfig(
        level=getattr(logging, arguments.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    log = logging.getLogger("lab.platform")
    try:
        config = load(arguments.config)
    except ConfigError as error:
        log.error("%s", error)
        return 2

    from lab.platform.app import create_app

    try:
        app = create_app(config)
    except ValueError as error:
        log.error("%s", error)
        return 2
    log.info(
        "platform API on %s:%d; SMS gateway %s; SIP proxies %s",
        config.host,
        config.port,
        config.sms.http_url,
        ", ".join(config.voice_rpc),
    )
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
