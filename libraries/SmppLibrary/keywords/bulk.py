"""A windowed bulk submit over one bind, with throughput and latency figures for the KPI report."""

from __future__ import annotations

import concurrent.futures as cf
import math
import statistics
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from robot.api import logger
from robotlibcore import keyword

from SmppLibrary.codec import ESME_ROK, status_name
from SmppLibrary.connection import Response
from SmppLibrary.errors import SmppError
from SmppLibrary.keywords.base import SmppComponent
from SmppLibrary.keywords.submit import CodingName, plan_submits


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` 0..1) of ``values``; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


class BulkKeywords(SmppComponent):
    @keyword(name="Submit Bulk SMS")
    def submit_bulk_sms(
        self,
        count: int,
        source: str,
        destination: str,
        text: str,
        *,
        window: int = 10,
        rate: float | None = None,
        coding: CodingName = "auto",
        registered_delivery: bool = False,
        timeout: timedelta | None = None,
    ) -> dict[str, Any]:
        """Submits ``count`` single-part SMS as fast as the ``window`` allows and returns the figures.

        At most ``window`` submit_sm are outstanding (sent, no ``submit_sm_resp`` yet) at any time; ``rate``
        (messages per second) paces the sending further. Throttled submits are not retried here: they count
        as failed under ``ESME_RTHROTTLED``, which is what a load test wants to see. The run stops when no
        response arrives for ``timeout``; the rest counts as failed under ``TIMEOUT``.

        Returns a dictionary: ``requested``, ``sent``, ``acked`` (answered ESME_ROK), ``failed``,
        ``statuses`` (count per status name), ``elapsed`` (s), ``rate`` (acked per second), ``latency_ms``
        with ``p50``, ``p95``, ``p99``, ``max`` and ``mean`` (submit to response), and ``message_ids``.

        | ${result}= | `Submit Bulk SMS` | 1000 | 4915100000001 | 4915100000002 | Load test | window=50 |
        | `Should Be Equal As Integers` | ${result}[acked] | 1000 |
        | `Should Be True` | ${result}[rate] > 200 |
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}.")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}.")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive (messages per second), got {rate}.")
        plan = plan_submits(
            source, destination, text, coding=coding, registered_delivery=registered_delivery, split="udh"
        )
        if len(plan.pdus) != 1:
            raise ValueError(
                f"Submit Bulk SMS sends single-part messages; this text needs {len(plan.pdus)} parts. "
                "Shorten it or use `Submit SMS` in a loop."
            )
        fields = plan.pdus[0]
        connection = self.ctx.current()
        seconds = self.ctx.seconds(timeout)
        logger.info(
            f"Submitting {count} SMS from '{source}' to '{destination}' on {connection.alias or connection.label}, "
            f"window {window}{f', {rate:g}/s' if rate else ''}."
        )
        outstanding: dict[cf.Future[Response], float] = {}
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        message_ids: list[str] = []
        sent = 0
        stalled = False

        def collect(done: set[cf.Future[Response]]) -> None:
            for future in done:
                started = outstanding.pop(future)
                try:
                    response = future.result()
                except SmppError:
                    statuses["CONNECTION_LOST"] += 1
                    continue
                statuses[response.status_name] += 1
                if response.status == ESME_ROK:
                    latencies.append((response.received_at - started) * 1000)
                    message_ids.append(response.message_id)

        started_at = time.perf_counter()
        try:
            for number in range(count):
                if rate:
                    pause = started_at + number / rate - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                while len(outstanding) >= window:
                    done, _ = cf.wait(list(outstanding), timeout=seconds, return_when=cf.FIRST_COMPLETED)
                    if not done:
                        stalled = True
                        break
                    collect(done)
                if stalled:
                    break
                sent_at = time.perf_counter()
                _sequence, future = connection.send_request("submit_sm", seconds, **fields)
                outstanding[future] = sent_at
                sent += 1
            if outstanding and not stalled:
                done, _ = cf.wait(list(outstanding), timeout=seconds)
                collect(done)
        except SmppError as error:
            logger.info(f"Bulk submit stopped after {sent} message(s): {error}")
        elapsed = time.perf_counter() - started_at
        if outstanding:
            statuses["TIMEOUT"] += len(outstanding)
            for future in outstanding:
                future.cancel()
        self.ctx.drain()
        acked = statuses.get(status_name(ESME_ROK), 0)
        failed = sum(statuses.values()) - acked + (count - sent)
        if count > sent:
            statuses["NOT_SENT"] += count - sent
        result: dict[str, Any] = {
            "requested": count,
            "sent": sent,
            "acked": acked,
            "failed": failed,
            "statuses": dict(statuses),
            "elapsed": round(elapsed, 3),
            "rate": round(acked / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_ms": {
                "p50": round(percentile(latencies, 0.50), 3),
                "p95": round(percentile(latencies, 0.95), 3),
                "p99": round(percentile(latencies, 0.99), 3),
                "max": round(max(latencies), 3) if latencies else 0.0,
                "mean": round(statistics.fmean(latencies), 3) if latencies else 0.0,
            },
            "message_ids": message_ids,
        }
        logger.info(
            f"Bulk: {acked}/{count} acked in {elapsed:.2f} s ({result['rate']} msg/s); statuses {dict(statuses)}; "
            f"latency p50 {result['latency_ms']['p50']} ms, p95 {result['latency_ms']['p95']} ms, "
            f"p99 {result['latency_ms']['p99']} ms."
        )
        return result
