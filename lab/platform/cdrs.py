"""The SIP proxy's call detail records: table ``cdrs`` of ``cdr_database``, mapped read-only.

The proxy writes one row per INVITE dialog when it ends (``lab/sip/cdr.py``; on the real stack a view over
Kamailio's ``acc`` rows, ``realstack/voice/cdr_schema.sql``). The platform only reads it; it creates the
table when it is missing (so unit tests and a fresh lab can seed rows), never alters or writes rows.
Columns: ``id, call_id, from_uri, to_uri, caller, callee, start_time, answer_time, end_time, duration_s,
disposition, sip_code, proxy``; times naive UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    make_url,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000

metadata = MetaData()
cdrs = Table(
    "cdrs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(255), nullable=False, index=True),
    Column("from_uri", String(255), nullable=False),
    Column("to_uri", String(255), nullable=False),
    Column("caller", String(64), nullable=False, index=True),
    Column("callee", String(64), nullable=False, index=True),
    Column("start_time", DateTime, nullable=False),
    Column("answer_time", DateTime, nullable=True),
    Column("end_time", DateTime, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("disposition", String(16), nullable=False),
    Column("sip_code", Integer, nullable=False),
    Column("proxy", String(64), nullable=False),
)
COLUMNS = tuple(column.name for column in cdrs.columns)


def make_cdr_engine(url: str) -> Engine:
    """An engine for reading ``cdr_database`` (WAL-friendly SQLite readers, or PostgreSQL); creates the table."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
    else:
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                cursor.execute("PRAGMA journal_mode = WAL")
            finally:
                cursor.close()

    # checkfirst: an existing table, or the real stack's view of the same name, is left alone
    metadata.create_all(engine, checkfirst=True)
    return engine


def as_utc(value: Any) -> datetime | None:
    """A stored time (naive UTC, or text from SQLite) as an aware UTC ``datetime``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive_utc(value: datetime) -> datetime:
    """An aware time as the naive UTC the table compares with."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
