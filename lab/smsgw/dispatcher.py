"""Sends one connector's queued messages over its bind: in order, with a window of outstanding submits.

Messages come in from the customer interfaces (after their rows are committed) and from the store at start.
While the bind is down they wait. A submit answered ``ESME_RTHROTTLED`` or ``ESME_RMSGQFUL`` goes back to the
front and the connector pauses (0.05 s, doubling up to 2 s) and then sends one message at a time until one is
accepted, so throttling does not reorder the queue; any other answer goes to the gateway (``on_answer``).

When the link drops, whatever was in flight goes back to the front in its original order and is sent again
after the next bind: a message the carrier took but whose submit_sm_resp was lost is sent twice (delivery is
at least once: never lost, possibly duplicated).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from SmppLibrary.codec import ESME_RMSGQFUL, ESME_RTHROTTLED, status_name

from lab.smsgw.store import Message
from lab.smsgw.upstream import UpstreamBind

log = logging.getLogger("lab.smsgw.dispatcher")

RETRY_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
FIRST_PAUSE = 0.05
MAX_PAUSE = 2.0


class Dispatcher:
    def __init__(
        self,
        bind: UpstreamBind,
        *,
        window: int,
        response_timeout: float,
        on_answer: Callable[[Message, int, str], None],
        on_unsendable: Callable[[Message, str], None],
    ) -> None:
        self.bind = bind
        self.name = bind.name
        self.window = window
        self.response_timeout = response_timeout
        self._on_answer = on_answer
        self._on_unsendable = on_unsendable
        self._pending: deque[Message] = deque()
        self._retry: list[tuple[int, int, Message]] = []  # heap by row number: sent before anything pending
        self._in_flight: dict[int, tuple[Message, float]] = {}
        self._resume_at = 0.0
        self._pause = 0.0
        self._probing = False  # after a throttle: one at a time until the carrier accepts again
        self._wakeup: asyncio.TimerHandle | None = None
        self.sent = 0
        self.retried = 0

    @property
    def depth(self) -> int:
        """Messages not yet answered by the carrier (waiting or in flight)."""
        return len(self._pending) + len(self._retry) + len(self._in_flight)

    def describe(self) -> dict[str, Any]:
        return {
            "waiting": len(self._pending) + len(self._retry),
            "in_flight": len(self._in_flight),
            "sent": self.sent,
            "retried": self.retried,
        }

    def enqueue(self, message: Message) -> None:
        self._pending.append(message)
        self.pump()

    def pump(self) -> None:
        """Send while the bind is up, the window has room and no pause is on."""
        if not self.bind.bound:
            return
        now = time.monotonic()
        if now < self._resume_at:
            if self._wakeup is None:
                self._wakeup = asyncio.get_running_loop().call_later(self._resume_at - now, self._wake)
            return
        limit = 1 if self._probing else self.window
        while len(self._in_flight) < limit and (self._retry or self._pending):
            message = heapq.heappop(self._retry)[2] if self._retry else self._pending.popleft()
            fields = {**message.fields, "short_message": message.short_message}
            try:
                sequence = self.bind.submit(fields, message.tlvs)
            except ValueError as error:  # a field the codec cannot write: the carrier will never take it
                self._on_unsendable(message, str(error))
                continue
            except ConnectionError:
                self._requeue(message)
                return
            self._in_flight[sequence] = (message, now)
            self.sent += 1

    def _wake(self) -> None:
        self._wakeup = None
        self.pump()

    def _requeue(self, message: Message) -> None:
        heapq.heappush(self._retry, (message.n, id(message), message))

    # --- events from the bind -------------------------------------------------------------------------

    def on_bound(self) -> None:
        self._pause, self._resume_at, self._probing = 0.0, 0.0, False
        self.pump()

    def on_lost(self) -> None:
        in_flight, self._in_flight = self._in_flight, {}
        for message, _sent in in_flight.values():
            self._requeue(message)
        if in_flight:
            self.retried += len(in_flight)
            log.info("connector %s: %d message(s) in flight go back to the queue", self.name, len(in_flight))

    def on_submit_resp(self, sequence: int, status: int, carrier_id: str) -> None:
        entry = self._in_flight.pop(sequence, None)
        if entry is None:
            log.debug("connector %s: response to unknown sequence %d (%s)", self.name, sequence, status_name(status))
            return
        message = entry[0]
        if status in RETRY_STATUSES:
            self._requeue(message)
            self.retried += 1
            self._pause = min(max(FIRST_PAUSE, self._pause * 2), MAX_PAUSE)
            self._resume_at = time.monotonic() + self._pause
            self._probing = True
            log.debug("connector %s: %s; pausing %g s", self.name, status_name(status), self._pause)
        else:
            self._pause, self._probing = 0.0, False
            self._on_answer(message, status, carrier_id)
        self.pump()

    def tick(self, now: float) -> None:
        """Once a second: a submit unanswered for ``response_timeout`` means the link is stuck."""
        if any(now - sent > self.response_timeout for _message, sent in self._in_flight.values()):
            self.bind.reset(f"no submit_sm_resp within {self.response_timeout:g} s")
