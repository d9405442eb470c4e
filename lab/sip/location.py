"""The registrar's location table: in memory, per process (like Kamailio's usrloc with ``db_mode`` 0).

Each of the two proxy instances keeps its own table: a phone is reachable through the proxy it registered
with (there is no replication, unlike a Kamailio pair sharing a database); a failover test registers the
phone again at the surviving proxy. A lookup returns the most recently refreshed binding: one contact per
user is rung (no parallel forking).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass
class Binding:
    user: str
    contact: str  # the Contact URI: where requests for the user go
    expires_at: float  # time.monotonic()
    source: tuple[str, int]  # where the REGISTER came from
    call_id: str
    cseq: int
    registered: datetime
    user_agent: str = ""

    def expires_in(self, now: float | None = None) -> int:
        return max(0, round(self.expires_at - (time.monotonic() if now is None else now)))


class Location:
    def __init__(self) -> None:
        self._table: dict[str, dict[str, Binding]] = {}

    def save(self, binding: Binding) -> None:
        self._table.setdefault(binding.user, {})[binding.contact] = binding

    def remove(self, user: str, contact: str | None = None) -> None:
        """Drop one contact of ``user``, or all of them when ``contact`` is None."""
        contacts = self._table.get(user)
        if contacts is None:
            return
        if contact is None:
            contacts.clear()
        else:
            contacts.pop(contact, None)
        if not contacts:
            del self._table[user]

    def bindings(self, user: str) -> list[Binding]:
        self.purge()
        return sorted(self._table.get(user, {}).values(), key=lambda b: b.expires_at, reverse=True)

    def find(self, user: str, contact: str) -> Binding | None:
        return self._table.get(user, {}).get(contact)

    def lookup(self, user: str) -> Binding | None:
        found = self.bindings(user)
        return max(found, key=lambda b: b.registered) if found else None

    def purge(self) -> None:
        now = time.monotonic()
        for user in list(self._table):
            contacts = self._table[user]
            for contact in [c for c, b in contacts.items() if b.expires_at <= now]:
                del contacts[contact]
            if not contacts:
                del self._table[user]

    def count(self) -> int:
        self.purge()
        return sum(len(contacts) for contacts in self._table.values())

    def snapshot(self) -> list[dict[str, Any]]:
        self.purge()
        now = time.monotonic()
        return [
            {
                "user": b.user,
                "contact": b.contact,
                "expires_in": b.expires_in(now),
                "source": f"{b.source[0]}:{b.source[1]}",
                "registered": b.registered.astimezone(UTC).isoformat(),
                "user_agent": b.user_agent,
            }
            for contacts in self._table.values()
            for b in contacts.values()
        ]
