"""What happened, for GET /events: a bounded, thread-safe, numbered log of JSON-friendly records."""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

MAX_EVENTS = 5000


class EventLog:
    def __init__(self, limit: int = MAX_EVENTS) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._sequence = 0

    def add(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record one event; ``kind`` such as ``call_received``, ``sms_sent``, ``dtmf_detected``."""
        with self._lock:
            self._sequence += 1
            event = {
                "seq": self._sequence,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "type": kind,
                **fields,
            }
            self._events.append(event)
            return event

    def list(self, *, kind: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Events after sequence number ``since``, optionally of one ``kind`` (a comma-separated list works)."""
        kinds = {part.strip() for part in kind.split(",")} if kind else None
        with self._lock:
            return [
                dict(event)
                for event in self._events
                if event["seq"] > since and (kinds is None or event["type"] in kinds)
            ]

    @property
    def last(self) -> int:
        with self._lock:
            return self._sequence
