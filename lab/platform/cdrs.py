"""The SIP proxy's call detail records: table ``cdrs`` of ``cdr_database``, mapped read-only.

The proxy writes one row per INVITE dialog when it ends (``lab/sip/cdr.py``; on the real stack a view over
Kamailio's ``acc`` rows, ``realstack/voice/cdr_schema.sql``). The platform only reads it; it creates the
table when it is missing (so unit tests and a fresh lab can seed rows), never alters or writes rows.
Columns: ``id, call_id, from_uri, to_uri, caller, callee, start_time, answer_time, end_time, duration_s,
disposition, sip_code, proxy``; times naive UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from lab.sip.cdr import cdrs, make_engine, metadata

__all__ = ["COLUMNS", "as_utc", "cdrs", "make_cdr_engine", "metadata", "naive_utc"]

COLUMNS = tuple(column.name for column in cdrs.columns)


def make_cdr_engine(url: str) -> Engine:
    """An engine for reading ``cdr_database`` (the proxy's own engine set-up); creates the table when missing."""
    engine = make_engine(url, shared_threads=True)
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
