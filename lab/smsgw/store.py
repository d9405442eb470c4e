"""The gateway's durable state: one SQLite file in WAL mode, used from the event-loop thread only.

Four tables:

- ``messages``: one row per upstream submit (a customer's submit_sm, or one part of an HTTP message), from
  ``queued`` to ``submitted`` (the carrier took it) or ``failed`` (the carrier refused it), then the state of
  its final receipt (``DELIVRD``, ``UNDELIV``...). A row stays ``queued`` until the carrier's submit_sm_resp
  has been processed, so what was in flight when the process died is sent again on start (at least once).
- ``carrier_ids``: the carrier's message id of every accepted submit, to map receipts back (a message sent
  twice has two).
- ``outbox``: deliver_sm waiting for a customer (receipts and MO), removed on the customer's deliver_sm_resp.
- ``callbacks``: HTTP DLR callbacks (``dlr-url``) until answered 2xx or given up.

Writes are not committed one by one: `commit` is called once per turn of the event loop (a group commit, see
``gateway.CommitBarrier``) and every answer that promises durability is sent after it. With WAL and
``synchronous=NORMAL`` a committed transaction survives the process being killed (not a power cut).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    msg_id TEXT NOT NULL,
    part INTEGER NOT NULL,
    parts INTEGER NOT NULL,
    username TEXT NOT NULL,
    origin TEXT NOT NULL,
    connector TEXT NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    fields TEXT NOT NULL,
    short_message BLOB NOT NULL,
    tlvs TEXT NOT NULL,
    registered_delivery INTEGER NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    dlr_url TEXT,
    dlr_level INTEGER NOT NULL DEFAULT 0,
    dlr_method TEXT,
    carrier_id TEXT,
    error INTEGER,
    receipt TEXT,
    submitted REAL,
    done REAL
);
CREATE INDEX IF NOT EXISTS messages_state ON messages(state);
CREATE INDEX IF NOT EXISTS messages_msg_id ON messages(msg_id);
CREATE TABLE IF NOT EXISTS carrier_ids (
    connector TEXT NOT NULL,
    carrier_id TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (connector, carrier_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    kind TEXT NOT NULL,
    fields TEXT NOT NULL,
    short_message BLOB NOT NULL,
    tlvs TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    form TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS callbacks_msg ON callbacks(msg_id, level);
"""

_MESSAGE_COLUMNS = (
    "n, id, msg_id, part, parts, username, origin, connector, source, destination, fields, short_message, tlvs, "
    "registered_delivery, state, created, dlr_url, dlr_level, dlr_method, carrier_id, error, receipt"
)

Tlvs = list[tuple[int, bytes]]


@dataclass
class Message:
    """One upstream submit_sm and what became of it."""

    id: str
    msg_id: str
    username: str
    origin: str  # "smpp" or "http"
    connector: str
    fields: dict[str, Any]  # the submit_sm fields except short_message and sm_length
    short_message: bytes
    tlvs: Tlvs
    registered_delivery: int
    part: int = 1
    parts: int = 1
    state: str = "queued"
    created: float = field(default_factory=time.time)
    dlr_url: str | None = None
    dlr_level: int = 0
    dlr_method: str | None = None
    carrier_id: str | None = None
    error: int | None = None
    receipt: dict[str, str] | None = None
    n: int = 0

    @property
    def source(self) -> str:
        return str(self.fields.get("source_addr", ""))

    @property
    def destination(self) -> str:
        return str(self.fields.get("destination_addr", ""))


@dataclass
class OutboxItem:
    """A deliver_sm for a customer: a receipt (``dlr``) or an MO message (``mo``)."""

    n: int
    username: str
    kind: str
    fields: dict[str, Any]
    short_message: bytes
    tlvs: Tlvs


@dataclass
class Callback:
    """An HTTP DLR callback: ``form`` goes to ``url`` by ``method``."""

    n: int
    msg_id: str
    level: int
    url: str
    method: str
    form: dict[str, str]
    attempts: int = 0


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level="DEFERRED")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._db.commit()

    # --- transactions ---------------------------------------------------------------------------------

    def commit(self) -> None:
        self._db.commit()

    def rollback(self) -> None:
        self._db.rollback()

    def close(self) -> None:
        self._db.commit()
        self._db.close()

    # --- messages -------------------------------------------------------------------------------------

    def add_message(self, message: Message) -> None:
        cursor = self._db.execute(
            "INSERT INTO messages (id, msg_id, part, parts, username, origin, connector, source, destination, "
            "fields, short_message, tlvs, registered_delivery, state, created, dlr_url, dlr_level, dlr_method) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.id,
                message.msg_id,
                message.part,
                message.parts,
                message.username,
                message.origin,
                message.connector,
                message.source,
                message.destination,
                json.dumps(message.fields),
                message.short_message,
                _dump_tlvs(message.tlvs),
                message.registered_delivery,
                message.state,
                message.created,
                message.dlr_url,
                message.dlr_level,
                message.dlr_method,
            ),
        )
        message.n = int(cursor.lastrowid or 0)

    def queued_messages(self) -> list[Message]:
        """Every message not yet taken by the carrier, oldest first (including those in flight at a crash)."""
        rows = self._db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE state = 'queued' ORDER BY n")
        return [_message(row) for row in rows]

    def mark_submitted(self, message: Message, carrier_id: str) -> None:
        now = time.time()
        self._db.execute(
            "UPDATE messages SET state = CASE WHEN state = 'queued' THEN 'submitted' ELSE state END, "
            "carrier_id = ?, submitted = ? WHERE id = ?",
            (carrier_id, now, message.id),
        )
        if carrier_id:
            self._db.execute(
                "INSERT OR REPLACE INTO carrier_ids (connector, carrier_id, id) VALUES (?, ?, ?)",
                (message.connector, carrier_id, message.id),
            )
        message.state, message.carrier_id = "submitted", carrier_id

    def mark_failed(self, message: Message, status: int) -> None:
        self._db.execute(
            "UPDATE messages SET state = 'failed', error = ?, done = ? WHERE id = ?", (status, time.time(), message.id)
        )
        message.state, message.error = "failed", status

    def by_carrier_id(self, connector: str, carrier_id: str) -> Message | None:
        row = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = "
            "(SELECT id FROM carrier_ids WHERE connector = ? AND carrier_id = ?)",
            (connector, carrier_id),
        ).fetchone()
        return _message(row) if row else None

    def record_receipt(self, message: Message, state: str, receipt: dict[str, str]) -> None:
        self._db.execute(
            "UPDATE messages SET state = ?, receipt = ?, done = ? WHERE id = ?",
            (state, json.dumps(receipt), time.time(), message.id),
        )
        message.state, message.receipt = state, receipt

    def parts_of(self, msg_id: str) -> list[Message]:
        rows = self._db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE msg_id = ? ORDER BY part", (msg_id,))
        return [_message(row) for row in rows]

    def message(self, message_id: str) -> Message | None:
        row = self._db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _message(row) if row else None

    def counts(self) -> dict[str, int]:
        """Messages by state: ``queued``, ``submitted``, ``failed`` and the receipt states."""
        rows = self._db.execute("SELECT state, count(*) FROM messages GROUP BY state")
        return {str(state): int(count) for state, count in rows}

    # --- outbox ---------------------------------------------------------------------------------------

    def add_outbox(self, username: str, kind: str, fields: dict[str, Any], short_message: bytes, tlvs: Tlvs) -> int:
        cursor = self._db.execute(
            "INSERT INTO outbox (username, kind, fields, short_message, tlvs, created) VALUES (?, ?, ?, ?, ?, ?)",
            (username, kind, json.dumps(fields), short_message, _dump_tlvs(tlvs), time.time()),
        )
        return int(cursor.lastrowid or 0)

    def outbox(self) -> list[OutboxItem]:
        rows = self._db.execute("SELECT n, username, kind, fields, short_message, tlvs FROM outbox ORDER BY n")
        return [
            OutboxItem(int(n), str(user), str(kind), json.loads(fields), bytes(data), _load_tlvs(tlvs))
            for n, user, kind, fields, data, tlvs in rows
        ]

    def remove_outbox(self, n: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE n = ?", (n,))

    def outbox_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # --- HTTP callbacks -------------------------------------------------------------------------------

    def add_callback(self, msg_id: str, level: int, url: str, method: str, form: dict[str, str]) -> Callback:
        cursor = self._db.execute(
            "INSERT INTO callbacks (msg_id, level, url, method, form, state, created) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?)",
            (msg_id, level, url, method, json.dumps(form), time.time()),
        )
        return Callback(int(cursor.lastrowid or 0), msg_id, level, url, method, form)

    def has_callback(self, msg_id: str, level: int) -> bool:
        row = self._db.execute("SELECT 1 FROM callbacks WHERE msg_id = ? AND level = ?", (msg_id, level)).fetchone()
        return row is not None

    def pending_callbacks(self) -> list[Callback]:
        rows = self._db.execute(
            "SELECT n, msg_id, level, url, method, form, attempts FROM callbacks WHERE state = 'pending' ORDER BY n"
        )
        return [
            Callback(int(n), str(msg_id), int(level), str(url), str(method), json.loads(form), int(attempts))
            for n, msg_id, level, url, method, form, attempts in rows
        ]

    def update_callback(self, callback: Callback, state: str) -> None:
        self._db.execute(
            "UPDATE callbacks SET state = ?, attempts = ? WHERE n = ?", (state, callback.attempts, callback.n)
        )

    def callback_count(self, state: str = "pending") -> int:
        return int(self._db.execute("SELECT count(*) FROM callbacks WHERE state = ?", (state,)).fetchone()[0])


def _dump_tlvs(tlvs: Tlvs) -> str:
    return json.dumps([[tag, value.hex()] for tag, value in tlvs])


def _load_tlvs(text: str) -> Tlvs:
    return [(int(tag), bytes.fromhex(value)) for tag, value in json.loads(text)]


def _message(row: tuple[Any, ...]) -> Message:
    (
        n,
        message_id,
        msg_id,
        part,
        parts,
        username,
        origin,
        connector,
        _source,
        _destination,
        fields,
        short_message,
        tlvs,
        registered_delivery,
        state,
        created,
        dlr_url,
        dlr_level,
        dlr_method,
        carrier_id,
        error,
        receipt,
    ) = row
    return Message(
        id=message_id,
        msg_id=msg_id,
        username=username,
        origin=origin,
        connector=connector,
        fields=json.loads(fields),
        short_message=bytes(short_message),
        tlvs=_load_tlvs(tlvs),
        registered_delivery=int(registered_delivery),
        part=int(part),
        parts=int(parts),
        state=state,
        created=float(created),
        dlr_url=dlr_url,
        dlr_level=int(dlr_level),
        dlr_method=dlr_method,
        carrier_id=carrier_id,
        error=error,
        receipt=json.loads(receipt) if receipt else None,
        n=int(n),
    )
