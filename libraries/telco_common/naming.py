"""Per-worker test-data names, so parallel pabot workers and repeated runs never collide."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time


class TestDataNamespace:
    """Builds names unique to this run and this pabot worker.

    Names carry the pabot worker (``PABOTQUEUEINDEX``; ``s`` for a serial run) and a random run token.
    Numbers carry the worker and the second this namespace was made, so a second ``make demo`` against
    the same database and four workers at once never reuse a name or a number.
    """

    __test__ = False  # not a pytest test class
    MAX_NUMBERS = 10_000

    def __init__(self, worker: str | None = None, token: str | None = None, started: float | None = None) -> None:
        index = worker if worker is not None else os.environ.get("PABOTQUEUEINDEX", "")
        self.worker = f"w{index}" if index not in ("", "-1", None) else "s"
        self.token = token or secrets.token_hex(3)
        self.started = int(started if started is not None else time.time())
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
        """A string of ``length`` digits unique to this worker and run (for phone numbers and MSISDNs).

        Two digits of worker, six of the second the namespace was made (a cycle of 11 days), four of counter.
        """
        worker = int(self.worker[1:]) % 100 if self.worker[1:].isdigit() else 99
        number = self.next_number()
        if number >= self.MAX_NUMBERS:
            raise ValueError(f"This test run used all {self.MAX_NUMBERS - 1} unique numbers of its namespace.")
        body = f"{worker:02d}{self.started % 1_000_000:06d}{number:04d}"
        if length < len(body):
            raise ValueError(f"Cannot make a unique number of {length} digits; use at least {len(body)}.")
        return body.rjust(length, "0")
