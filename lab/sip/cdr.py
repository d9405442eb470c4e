"""Call detail records: one row per INVITE dialog in table ``cdrs`` (SQLAlchemy Core), written when it ends.

Columns: ``id, call_id, from_uri, to_uri, caller, callee, start_time, answer_time, end_time, duration_s,
disposition, sip_code, proxy``. Times are naive UTC (as the billing service stores them); ``duration_s`` is
answer to end in seconds (3 decimals), 0 when unanswered; ``disposition`` is one of `DISPOSITIONS`.

Rows are written by one background thread so the SIP loop never waits on the database; it batches what has
queued up into one transaction and retries a failed batch (the database may be locked or briefly down) for up to
``retry_for`` seconds before dropping it with an error in the log. SQLite (the billing service's file, shared)
gets WAL and a busy timeout; PostgreSQL is used by URL. The table is created when missing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
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
    insert,
    make_url,
)
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("lab.sip.cdr")

DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CANCELLED")
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


def disposition(code: int, *, cancelled: bool = False, timed_out: bool = False) -> str:
    """The CDR disposition of a dialog that ended with ``code`` (200 for a call that was answered)."""
    if 200 <= code < 300:
        return "ANSWERED"
    if cancelled:
        return "CANCELLED"
    if code in (486, 600):
        return "BUSY"
    if timed_out or code in (408, 480, 487):
        return "NO ANSWER"
    return "FAILED"


@dataclass
class Cdr:
    call_id: str
    from_uri: str
    to_uri: str
    caller: str
    callee: str
    start_time: datetime
    answer_time: datetime | None
    end_time: datetime
    disposition: str
    sip_code: int
    proxy: str

    def row(self) -> dict[str, Any]:
        duration = (self.end_time - self.answer_time).total_seconds() if self.answer_time else 0.0
        return {
            "call_id": self.call_id,
            "from_uri": self.from_uri[:255],
            "to_uri": self.to_uri[:255],
            "caller": self.caller[:64],
            "callee": self.callee[:64],
            "start_time": _naive(self.start_time),
            "answer_time": _naive(self.answer_time) if self.answer_time else None,
            "end_time": _naive(self.end_time),
            "duration_s": round(max(0.0, duration), 3),
            "disposition": self.disposition,
            "sip_code": self.sip_code,
            "proxy": self.proxy,
        }


def _naive(moment: datetime) -> datetime:
    """Naive UTC, as stored."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def make_engine(url: str, *, shared_threads: bool = False) -> Engine:
    """An engine for ``cdr_database``: PostgreSQL, or SQLite in WAL mode with a busy timeout (the billing
    service and the other proxy share the file). ``shared_threads``: connections used from several threads."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4 if shared_threads else 2)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if shared_threads:
        connect_args["check_same_thread"] = False
    engine = create_engine(parsed, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    return engine


class CdrWriter:
    """Queues `Cdr` records and writes them from a background thread."""

    def __init__(self, url: str, *, retry_for: float = 60.0) -> None:
        self.url = url
        self.retry_for = retry_for
        self.written = 0
        self.failed = 0
        self._queue: queue.Queue[Cdr | None] = queue.Queue()
        self._engine: Engine | None = None
        self._thread = threading.Thread(target=self._run, name="cdr-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def record(self, cdr: Cdr) -> None:
        self._queue.put(cdr)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting up to ``timeout``) and stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._engine is not None:
            self._engine.dispose()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[Cdr] = []
            if item is None:
                stopping = True
            else:
                batch.append(item)
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                else:
                    batch.append(more)
            if batch:
                self._write(batch, give_up_at=time.monotonic() + (1.0 if stopping else self.retry_for))

    def _write(self, batch: list[Cdr], give_up_at: float) -> None:
        delay = 0.2
        while True:
            try:
                if self._engine is None:
                    self._engine = make_engine(self.url)
                    metadata.create_all(self._engine, checkfirst=True)
                with self._engine.begin() as connection:
                    connection.execute(insert(cdrs), [cdr.row() for cdr in batch])
                self.written += len(batch)
                return
            except SQLAlchemyError as error:
                if time.monotonic() >= give_up_at:
                    self.failed += len(batch)
                    log.error("dropping %d CDR(s) after retries: %s", len(batch), error)
                    return
                log.warning("writing %d CDR(s) failed, retrying in %.1f s: %s", len(batch), delay, error)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
