"""Find the real-stack PostgreSQL server (from variables/realstack.yaml) and tell whether it answers.

``python tools/postgres.py url``   prints a server URL for tests (database ``postgres``), or nothing when
                                   the server does not answer (the reason goes to stderr)
``python tools/postgres.py check`` exits 0 when it answers, 1 (with the reason) when not
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg2
import yaml
from sqlalchemy.engine import URL, make_url

VARIABLES = Path(__file__).resolve().parent.parent / "variables" / "realstack.yaml"


def server_url() -> URL:
    values = yaml.safe_load(VARIABLES.read_text(encoding="utf-8"))
    return make_url(values["LAB_BILLING_DATABASE_URL"]).set(database="postgres")


def reachable(url: URL) -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        psycopg2.connect(
            dbname=url.database,
            user=url.username,
            password=url.password,
            host=url.host,
            port=url.port or 5432,
            connect_timeout=3,
        ).close()
    except psycopg2.OperationalError as error:
        return f"PostgreSQL at {url.host}:{url.port or 5432} does not answer: {str(error).strip()}"
    return None


def main(action: str) -> int:
    url = server_url()
    problem = reachable(url)
    if problem:
        sys.stderr.write(problem + "\n")
        return 1 if action == "check" else 0
    if action == "url":
        sys.stdout.write(url.render_as_string(hide_password=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "check"))
