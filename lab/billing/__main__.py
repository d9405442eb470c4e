"""Run the billing service: ``python -m lab.billing --host 127.0.0.1 --port 18080 --database-url URL``.

The admin token comes only from the environment (``BILLING_ADMIN_TOKEN``), never from the command line;
``BILLING_DATABASE_URL`` may replace ``--database-url``; ``BILLING_FAULT_INJECTION=1`` enables the lab-only
``X-Billing-Fault`` header.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

DEFAULT_DATABASE_URL = "sqlite:///results/lab/billing.db"
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lab.billing",
        description="The lab's billing service (FastAPI + SQLAlchemy) under uvicorn. "
        "The admin token is read from the BILLING_ADMIN_TOKEN environment variable.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=18080, help="port to bind (default 18080)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BILLING_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="SQLAlchemy URL, e.g. sqlite:///results/lab/billing.db or postgresql+psycopg2://user@host/db "
        f"(default: $BILLING_DATABASE_URL, else {DEFAULT_DATABASE_URL})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    token = os.environ.get("BILLING_ADMIN_TOKEN", "")
    if not token.strip():
        sys.exit("lab.billing: set BILLING_ADMIN_TOKEN in the environment to the admin bearer token; not starting.")
    fault_injection = os.environ.get("BILLING_FAULT_INJECTION", "").strip().lower() in TRUE_VALUES
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    from lab.billing.app import create_app

    try:
        app = create_app(arguments.database_url, token, fault_injection=fault_injection)
    except ValueError as error:
        sys.exit(f"lab.billing: {error}")
    if fault_injection:
        logging.getLogger("lab.billing").warning("Fault injection is enabled (X-Billing-Fault header honoured)")
    uvicorn.run(app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
