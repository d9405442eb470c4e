"""The database both nodes share (SQLAlchemy Core; a SQLite file by default, PostgreSQL by URL).

- ``kong_entities``: every entity as the JSON a client wrote (plus ``id`` and timestamps), with its kind, an
  insertion sequence (list order and paging) and the ids of the entities it references (nested lists, cascades).
- ``kong_uniques``: unique values (a service's name, a key-auth key, a plugin's name/route/service/consumer
  combination...) to find an entity by name and to refuse duplicates with Kong's 409.
- ``kong_meta``: ``version``, bumped by every write, so each node rebuilds its proxy configuration as soon as the
  other node changes something; ``health_seq``, the last manual health change; ``seq``, the insertion counter.
- ``kong_tombstones``: the id of a deleted target, reused when the same target is created again (decK changes a
  target's weight with DELETE + POST and then expects the old id).
- ``kong_health_events``: ``PUT /upstreams/{u}/targets/{t}/healthy|unhealthy``, replayed by every node (Kong
  broadcasts these to the cluster).
- ``kong_ratelimiting_metrics``: rate-limiting counters of the ``cluster`` (and ``redis``) policies, shared by
  both nodes.

Writes run one at a time: SQLite takes its write lock at ``BEGIN IMMEDIATE``; PostgreSQL locks the ``version``
row first. Reads never block on a writer (SQLite in WAL mode).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

SQLITE_BUSY_TIMEOUT_MS = 10_000
REF_COLUMNS = {
    "service": "service_id",
    "route": "route_id",
    "consumer": "consumer_id",
    "upstream": "upstream_id",
    "certificate": "certificate_id",
}

metadata = MetaData()
entities = Table(
    "kong_entities",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    *(Column(column, String(36), nullable=True) for column in REF_COLUMNS.values()),
    Column("doc", Text, nullable=False),
    Index("ix_kong_entities_kind_seq", "kind", "seq"),
    *(Index(f"ix_kong_entities_{column}", column) for column in REF_COLUMNS.values()),
)
uniques = Table(
    "kong_uniques",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("value", String(1024), primary_key=True),
    Column("id", String(36), nullable=False),
    Index("ix_kong_uniques_id", "kind", "id"),
)
meta = Table("kong_meta", metadata, Column("key", String(32), primary_key=True), Column("value", BigInteger))
tombstones = Table(
    "kong_tombstones",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("id", String(36), nullable=False),
    Column("deleted_at", BigInteger, nullable=False),
)
health_events = Table(
    "kong_health_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("upstream_id", String(36), nullable=False),
    Column("target", String(300), nullable=False),
    Column("address", String(300), nullable=True),
    Column("healthy", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
ratelimits = Table(
    "kong_ratelimiting_metrics",
    metadata,
    Column("key", String(1024), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
META_KEYS = ("version", "health_seq", "seq")


class Store:
    """The shared database; every method opens its own connection, so any thread may call it."""

    def __init__(self, url: str) -> None:
        self.engine = _engine(url)
        self.dialect = self.engine.dialect.name
        with self.transaction(lock=False) as connection:
            if self.dialect == "postgresql":  # two nodes starting together: one creates the tables
                connection.execute(text("SELECT pg_advisory_xact_lock(7264001)"))
            metadata.create_all(connection)
            present = set(connection.execute(select(meta.c.key)).scalars())
            for key in META_KEYS:
                if key not in present:
                    connection.execute(insert(meta).values(key=key, value=0))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, *, lock: bool = True) -> Iterator[Connection]:
        """A write transaction; ``lock`` also serialises it with every other admin write (both nodes)."""
        with self.engine.connect() as connection:
            connection.execution_options(kong_write=True)
            with connection.begin():
                if lock:
                    connection.execute(select(meta.c.value).where(meta.c.key == "version").with_for_update())
                yield connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    # --- meta --------------------------------------------------------------------------------------------------

    def versions(self) -> tuple[int, int]:
        """``(version, health_seq)``: one cheap read per proxied request."""
        with self.engine.connect() as connection:
            rows = dict(connection.execute(select(meta.c.key, meta.c.value)).tuples().all())
        return int(rows.get("version") or 0), int(rows.get("health_seq") or 0)

    @staticmethod
    def bump(connection: Connection) -> None:
        connection.execute(update(meta).where(meta.c.key == "version").values(value=meta.c.value + 1))

    @staticmethod
    def next_seq(connection: Connection) -> int:
        connection.execute(update(meta).where(meta.c.key == "seq").values(value=meta.c.value + 1))
        return int(connection.execute(select(meta.c.value).where(meta.c.key == "seq")).scalar_one())

    # --- entities ----------------------------------------------------------------------------------------------

    @staticmethod
    def get(connection: Connection, kind: str, entity_id: str) -> dict[str, Any] | None:
        doc = connection.execute(
            select(entities.c.doc).where(entities.c.kind == kind, entities.c.id == entity_id)
        ).scalar_one_or_none()
        return None if doc is None else dict(json.loads(doc))

    @staticmethod
    def find_unique(connection: Connection, kind: str, field: str, value: str) -> str | None:
        return connection.execute(
            select(uniques.c.id).where(uniques.c.kind == kind, uniques.c.field == field, uniques.c.value == value)
        ).scalar_one_or_none()

    @staticmethod
    def page(
        connection: Connection, kind: str, *, ref: tuple[str, str] | None, after: int, limit: int
    ) -> list[tuple[int, dict[str, Any]]]:
        query = select(entities.c.seq, entities.c.doc).where(entities.c.kind == kind, entities.c.seq > after)
        if ref is not None:
            query = query.where(entities.c[REF_COLUMNS[ref[0]]] == ref[1])
        rows = connection.execute(query.order_by(entities.c.seq).limit(limit)).tuples().all()
        return [(int(seq), dict(json.loads(doc))) for seq, doc in rows]

    @staticmethod
    def all(connection: Connection, kind: str, ref: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        query = select(entities.c.doc).where(entities.c.kind == kind)
        if ref is not None:
            query = query.where(entities.c[REF_COLUMNS[ref[0]]] == ref[1])
        return [dict(json.loads(doc)) for doc in connection.execute(query.order_by(entities.c.seq)).scalars()]

    def save(
        self,
        connection: Connection,
        kind: str,
        doc: dict[str, Any],
        unique_values: dict[str, str],
        *,
        new: bool,
    ) -> None:
        """Insert (``new``) or replace ``doc``; its reference columns and unique values follow the document."""
        refs = {column: _ref_id(doc.get(field)) for field, column in REF_COLUMNS.items()}
        body = json.dumps(doc, separators=(",", ":"))
        if new:
            seq = self.next_seq(connection)
            connection.execute(insert(entities).values(kind=kind, id=doc["id"], seq=seq, doc=body, **refs))
        else:
            connection.execute(
                update(entities).where(entities.c.kind == kind, entities.c.id == doc["id"]).values(doc=body, **refs)
            )
            connection.execute(delete(uniques).where(uniques.c.kind == kind, uniques.c.id == doc["id"]))
        for field, value in unique_values.items():
            connection.execute(insert(uniques).values(kind=kind, field=field, value=value, id=doc["id"]))

    @staticmethod
    def remove(connection: Connection, kind: str, entity_id: str) -> None:
        connection.execute(delete(entities).where(entities.c.kind == kind, entities.c.id == entity_id))
        connection.execute(delete(uniques).where(uniques.c.kind == kind, uniques.c.id == entity_id))

    @staticmethod
    def referencing(connection: Connection, kind: str, field: str, entity_id: str) -> list[str]:
        """Ids of the ``kind`` entities whose ``field`` references ``entity_id``."""
        column = entities.c[REF_COLUMNS[field]]
        return list(
            connection.execute(select(entities.c.id).where(entities.c.kind == kind, column == entity_id)).scalars()
        )

    # --- tombstones --------------------------------------------------------------------------------------------

    @staticmethod
    def bury(connection: Connection, kind: str, key: str, entity_id: str) -> None:
        connection.execute(delete(tombstones).where(tombstones.c.kind == kind, tombstones.c.key == key))
        connection.execute(insert(tombstones).values(kind=kind, key=key, id=entity_id, deleted_at=int(time.time())))

    @staticmethod
    def exhume(connection: Connection, kind: str, key: str) -> str | None:
        condition = (tombstones.c.kind == kind) & (tombstones.c.key == key)
        entity_id = connection.execute(select(tombstones.c.id).where(condition)).scalar_one_or_none()
        if entity_id is not None:
            connection.execute(delete(tombstones).where(condition))
        return entity_id

    # --- health events -----------------------------------------------------------------------------------------

    def add_health_event(self, upstream_id: str, target: str, address: str | None, healthy: bool) -> None:
        with self.transaction() as connection:
            result = connection.execute(
                insert(health_events).values(
                    upstream_id=upstream_id,
                    target=target,
                    address=address,
                    healthy=healthy,
                    created_at=int(time.time()),
                )
            )
            seq = int(result.inserted_primary_key[0]) if result.inserted_primary_key else 0
            connection.execute(update(meta).where(meta.c.key == "health_seq").values(value=seq))
            connection.execute(delete(health_events).where(health_events.c.created_at < int(time.time()) - 3600))

    def health_events_after(self, seq: int) -> list[tuple[int, str, str, str | None, bool]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    health_events.c.seq,
                    health_events.c.upstream_id,
                    health_events.c.target,
                    health_events.c.address,
                    health_events.c.healthy,
                )
                .where(health_events.c.seq > seq)
                .order_by(health_events.c.seq)
            ).tuples()
            return [(int(s), u, t, a, bool(h)) for s, u, t, a, h in rows]

    def last_health_seq(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.coalesce(func.max(health_events.c.seq), 0))).scalar_one())

    # --- rate-limiting counters --------------------------------------------------------------------------------

    def consume(self, entries: list[tuple[str, float, int]]) -> tuple[dict[str, int], bool]:
        """Usage of each ``(key, limit, expires_at)`` before this request, and whether a limit is reached.

        When none is reached every counter is incremented, in the same transaction.
        """
        now = int(time.time())
        keys = [key for key, _limit, _expires in entries]
        with self.transaction(lock=False) as connection:
            rows = connection.execute(
                select(ratelimits.c.key, ratelimits.c.value).where(
                    ratelimits.c.key.in_(keys), ratelimits.c.expires_at >= now
                )
            ).tuples()
            usage = {key: int(value) for key, value in rows}
            stop = any(usage.get(key, 0) >= limit for key, limit, _expires in entries)
            if not stop:
                for key, _limit, expires_at in entries:
                    self._increment(connection, key, expires_at)
            if random.random() < 0.02:
                connection.execute(delete(ratelimits).where(ratelimits.c.expires_at < now))
        return usage, stop

    def _increment(self, connection: Connection, key: str, expires_at: int) -> None:
        builder = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = builder(ratelimits).values(key=key, value=1, expires_at=expires_at)
        statement = statement.on_conflict_do_update(
            index_elements=[ratelimits.c.key],
            set_={"value": ratelimits.c.value + 1, "expires_at": expires_at},
        )
        connection.execute(statement)


def _ref_id(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)
    if backend != "sqlite":
        raise ValueError(f"unsupported database URL scheme '{backend}': use sqlite:/// or postgresql+psycopg2://")
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=20,
        max_overflow=60,
        pool_timeout=30,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below issues BEGIN
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("kong_write")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
