"""Per-worker test-data names, so parallel pabot workers and repeated runs never collide."""

from __future__ import annotations

import itertools
import os
import secrets
import threading


class TestDataNamespace:
    """Builds names unique to this run and this pabot worker.

    The prefix holds the pabot worker (``PABOTQUEUEINDEX``, ``s`` for a serial run) and a random run token,
    so a second ``make demo`` against the same database and four workers at once never reuse a name.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, worker: str | None = None, token: str | None = None) -> None:
        index = worker if worker is not None else os.environ.get("PABOTQUEUEINDEX", "")
        self.worker = f"w{index}" if index not in ("", "-1") else "s"
        self.token = token or secrets.token_hex(3)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def prefix(self) -> str:
        return f"{self.worker}{self.token}"

    def next_number(self) -> int:
        with self._lock:
            return next(self._counter)

    def name(self, label: str) -> str:
        """``label`` plus the namespace and a counter, e.g. ``site-w3a1b2c3-7``."""
        return f"{label}-{self.prefix}-{self.next_number()}"

    def digits(self, length: int) -> str:
        """A string of ``length`` digits unique within this namespace (for phone numbers and MSISDNs)."""
        seed = int(self.token, 16) % 10_000
        worker = int(self.worker[1:]) % 100 if self.worker[1:].isdigit() else 99
        body = f"{worker:02d}{seed:04d}{self.next_number():06d}"
        if length < len(body):
            raise ValueError(f"Cannot make a unique number of {length} digits; use at least {len(body)}.")
        return body.rjust(length, "0")
