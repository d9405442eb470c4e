"""The accounting database on the machine's PostgreSQL: Kamailio's acc tables and the ``cdrs`` view.

Layout (idempotent; `up` runs `ensure` every time):
- database ``telco_billing`` (created when missing);
- role ``kamailio`` (LOGIN, no password: the local server trusts loopback) whose ``search_path`` in that
  database is its own schema ``kamailio``, holding Kamailio's ``version``, ``acc`` and ``missed_calls``
  tables from Kamailio's schema files (/usr/share/kamailio/postgres/) plus the extra ``acc`` columns;
- view ``public.cdrs`` (``cdr_schema.sql``): one row per call, the lab proxy's columns.
So Kamailio's tables never mix with the billing service's, and the suites read ``cdrs`` as they do in the lab.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from realstack.voice.errors import RealStackError
from realstack.voice.settings import CDR_SCHEMA, CdrDatabase

KAMAILIO_SQL = Path("/usr/share/kamailio/postgres")
CDR_COLUMNS = (
    "id",
    "call_id",
    "from_uri",
    "to_uri",
    "caller",
    "callee",
    "start_time",
    "answer_time",
    "end_time",
    "duration_s",
    "disposition",
    "sip_code",
    "proxy",
)


def connect(db: CdrDatabase, *, dbname: str | None = None, user: str | None = None) -> Any:
    """An autocommit connection; a refused or missing server raises `RealStackError` naming the fix."""
    try:
        connection = psycopg2.connect(
            dbname=dbname or db.name,
            user=user or db.admin_user,
            host=db.host,
            port=db.port,
            connect_timeout=5,
            application_name="realstack.voice",
        )
    except psycopg2.OperationalError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RealStackError(
            f"PostgreSQL at {db.host}:{db.port} refused user '{user or db.admin_user}' for database "
            f"'{dbname or db.name}': {reason}. Start PostgreSQL, or run `up --no-accounting` to go without CDRs."
        ) from error
    connection.autocommit = True
    return connection


def schema_text(db: CdrDatabase, path: Path = CDR_SCHEMA) -> str:
    """cdr_schema.sql with the schema and view names filled in."""
    return path.read_text(encoding="utf-8").replace("{schema}", db.user).replace("{view}", db.view)


def kamailio_sql(name: str, folder: Path = KAMAILIO_SQL) -> str:
    path = folder / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise RealStackError(
            f"Kamailio's schema file {path} is missing ({error.strerror}): install the Debian packages with "
            "`python -m realstack.voice install` (kamailio, kamailio-postgres-modules)."
        ) from error


def ensure(db: CdrDatabase, *, report: Callable[[str], None], sql_folder: Path = KAMAILIO_SQL) -> None:
    """Create what is missing: database, role, schema, Kamailio's tables, the extra columns and the view."""
    admin = connect(db, dbname="postgres")  # autocommit, and no `with`: psycopg2 would open a transaction
    try:
        cur = admin.cursor()
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db.name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db.name)))
            report(f"PostgreSQL: created database {db.name}")
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (db.user,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(db.user)))
            report(f"PostgreSQL: created role {db.user}")
    finally:
        admin.close()
    created = []
    admin = connect(db)
    try:
        cur = admin.cursor()
        role = sql.Identifier(db.user)
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(role, role))
        cur.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(role, sql.Identifier(db.name), role)
        )
        for table, script in (("version", "standard-create.sql"), ("acc", "acc-create.sql")):
            cur.execute("SELECT to_regclass(%s)", (f"{db.user}.{table}",))
            if cur.fetchone()[0] is None:
                text = kamailio_sql(script, sql_folder)
                cur.execute(sql.SQL("SET ROLE {}").format(role))
                cur.execute(sql.SQL("SET search_path = {}").format(role))
                cur.execute(text)
                cur.execute("RESET ROLE")
                cur.execute("RESET search_path")
                created.append(script)
        cur.execute(schema_text(db))
    finally:
        admin.close()
    if created:
        report(f"PostgreSQL: Kamailio tables from {', '.join(created)} in {db.name}.{db.user}")
    kamailio = connect(db, user=db.user)  # the role Kamailio uses must get in, and see its tables
    try:
        cur = kamailio.cursor()
        cur.execute("SELECT table_version FROM version WHERE table_name = 'acc'")
        if cur.fetchone() is None:
            raise RealStackError(f"{db.name}.{db.user}.version has no row for 'acc'; drop schema {db.user} and retry.")
    finally:
        kamailio.close()
    report(f"PostgreSQL: accounting in {db.name} (schema {db.user}), CDRs in view public.{db.view}")


def cdrs(db: CdrDatabase, *, call_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest CDRs (or those of one call), newest first, as dictionaries."""
    query = sql.SQL("SELECT {} FROM public.{}").format(
        sql.SQL(", ").join(map(sql.Identifier, CDR_COLUMNS)), sql.Identifier(db.view)
    )
    arguments: tuple[Any, ...] = ()
    if call_id is not None:
        query += sql.SQL(" WHERE call_id = %s")
        arguments = (call_id,)
    query += sql.SQL(" ORDER BY id DESC LIMIT %s")
    arguments += (limit,)
    connection = connect(db)
    try:
        cur = connection.cursor()
        cur.execute(query, arguments)
        return [dict(zip(CDR_COLUMNS, row, strict=True)) for row in cur.fetchall()]
    finally:
        connection.close()


def cdr_count(db: CdrDatabase) -> int:
    connection = connect(db)
    try:
        cur = connection.cursor()
        cur.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(db.view)))
        return int(cur.fetchone()[0])
    finally:
        connection.close()
