"""Engine and session set-up for SQLite (default) and PostgreSQL.

SQLite: WAL, a 10 s ``busy_timeout`` and ``BEGIN IMMEDIATE`` for every transaction, so a read-modify-write
of a balance holds the database's write lock from its first read and parallel workers queue instead of
racing. PostgreSQL: the service locks the rows it changes with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000


def dialect_label(database_url: str) -> Literal["sqlite", "postgresql"]:
    """``sqlite`` or ``postgresql``, as ``/health`` reports it; anything else is refused."""
    backend = make_url(database_url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database URL scheme '{backend}': use sqlite:/// or postgresql+psycopg2://")
    return cast(Literal["sqlite", "postgresql"], backend)


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; for a SQLite file, its parent directory is created when missing."""
    backend = dialect_label(database_url)
    if backend == "sqlite":
        return _sqlite_engine(database_url)
    return create_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=10,
        max_overflow=30,
        pool_timeout=60,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit, so a committed row can still be serialised."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
