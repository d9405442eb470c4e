"""SIPp's statistics files, read into plain figures.

- ``-trace_stat`` (``-stf FILE``, one row every ``-fd`` seconds and one at the end): ``;``-separated with a
  header row. Counters come in pairs, ``(P)`` for the last period and ``(C)`` cumulated since the start;
  times look like ``00:00:03`` (elapsed) or ``00:00:00:006000`` (hours:minutes:seconds:microseconds, for
  response times and call lengths); the three timestamps hold tabs (``2026-11-21<TAB>06:44:29.27<TAB>1795...``).
- ``-trace_rtt`` (``<scenario>_<pid>_rtt.csv``): ``Date_ms;response_time_ms;rtd_no``, one row per measured
  response time (SIPp measures whole milliseconds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_RESPONSE_TIME = re.compile(r"^ResponseTime(?P<name>.+?)\(C\)$")
_FAILED = re.compile(r"^Failed(?P<name>[A-Za-z]+)\(C\)$")


def parse_stat_rows(text: str) -> list[dict[str, str]]:
    """Rows of a ``-trace_stat`` file as dictionaries keyed by its header; an empty or header-only file: []."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return []
    header = lines[0].rstrip(";").split(";")
    rows = []
    for line in lines[1:]:
        values = line.rstrip(";").split(";")
        if len(values) < len(header) // 2:  # a row SIPp was still writing
            continue
        rows.append(dict(zip(header, values, strict=False)))
    return rows


def duration_ms(value: str | None) -> float | None:
    """``HH:MM:SS`` or ``HH:MM:SS:uuuuuu`` in milliseconds; None for an empty or unreadable value."""
    if not value:
        return None
    parts = value.strip().split(":")
    try:
        if len(parts) == 4:
            hours, minutes, seconds, micros = (int(p) for p in parts)
            return ((hours * 60 + minutes) * 60 + seconds) * 1000.0 + micros / 1000.0
        if len(parts) == 3:
            hours, minutes = int(parts[0]), int(parts[1])
            return ((hours * 60 + minutes) * 60 + float(parts[2])) * 1000.0
    except ValueError:
        return None
    return None


def _number(row: Mapping[str, str], key: str) -> float:
    try:
        return float(row.get(key) or 0)
    except ValueError:
        return 0.0


def _count(row: Mapping[str, str], key: str) -> int:
    return int(_number(row, key))


@dataclass(frozen=True)
class SippStats:
    """The figures of one SIPp run, from the last row of its ``-trace_stat`` file (and its rtt file)."""

    rows: int = 0
    elapsed_s: float = 0.0
    target_rate: float = 0.0
    call_rate: float = 0.0
    peak_call_rate: float = 0.0
    calls_created: int = 0
    current_calls: int = 0
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    response_times_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    call_length_ms: float | None = None

    @property
    def successful_per_second(self) -> float:
        """Successful calls per second of the whole run (what a load test "held")."""
        return self.successful / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "target_rate": self.target_rate,
            "calls_per_second": round(self.call_rate, 3),
            "peak_calls_per_second": round(self.peak_call_rate, 3),
            "successful_per_second": round(self.successful_per_second, 3),
            "calls_created": self.calls_created,
            "current_calls": self.current_calls,
            "successful": self.successful,
            "failed": self.failed,
            "retransmissions": self.retransmissions,
            "failed_by_reason": dict(self.failed_by_reason),
            "response_times_ms": {name: dict(values) for name, values in self.response_times_ms.items()},
            "call_length_ms": self.call_length_ms,
            "stat_rows": self.rows,
        }


def summarize(rows: list[dict[str, str]], rtt: Mapping[str, list[float]] | None = None) -> SippStats:
    """`SippStats` from the rows of a ``-trace_stat`` file; ``rtt`` adds percentiles per response time name."""
    if not rows:
        return SippStats(response_times_ms=_rtt_only(rtt or {}))
    last = rows[-1]
    elapsed = (duration_ms(last.get("ElapsedTime(C)")) or 0.0) / 1000.0
    failed_by_reason = {
        match.group("name"): _count(last, key)
        for key in last
        if (match := _FAILED.match(key)) and match.group("name") != "Call" and _count(last, key)
    }
    response_times: dict[str, dict[str, float]] = {}
    for key in last:
        match = _RESPONSE_TIME.match(key)
        if not match or "StDev" in match.group("name"):
            continue
        name = match.group("name")
        mean = duration_ms(last.get(key))
        if mean is None:
            continue
        entry = {"mean": round(mean, 3), "stdev": round(duration_ms(last.get(f"ResponseTime{name}StDev(C)")) or 0.0, 3)}
        response_times[name] = entry
    for name, values in (rtt or {}).items():
        response_times.setdefault(name, {}).update(percentiles(values))
    return SippStats(
        rows=len(rows),
        elapsed_s=elapsed,
        target_rate=_number(last, "TargetRate"),
        call_rate=_number(last, "CallRate(C)"),
        peak_call_rate=max((_number(row, "CallRate(P)") for row in rows), default=0.0),
        calls_created=_count(last, "TotalCallCreated"),
        current_calls=_count(last, "CurrentCall"),
        successful=_count(last, "SuccessfulCall(C)"),
        failed=_count(last, "FailedCall(C)"),
        retransmissions=_count(last, "Retransmissions(C)"),
        failed_by_reason=failed_by_reason,
        response_times_ms=response_times,
        call_length_ms=duration_ms(last.get("CallLength(C)")),
    )


def _rtt_only(rtt: Mapping[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: percentiles(values) for name, values in rtt.items()}


def parse_rtt(text: str) -> dict[str, list[float]]:
    """Response times (ms) per response time name from a ``-trace_rtt`` file."""
    found: dict[str, list[float]] = {}
    for line in text.splitlines()[1:]:
        parts = line.strip().split(";")
        if len(parts) < 3:
            continue
        try:
            found.setdefault(parts[2], []).append(float(parts[1]))
        except ValueError:
            continue
    return found


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """count, p50, p95, p99 (nearest rank) and max of ``values``; {} for none."""
    ordered = sorted(values)
    if not ordered:
        return {}

    def rank(fraction: float) -> float:
        return ordered[max(1, min(len(ordered), math.ceil(fraction * len(ordered)))) - 1]

    return {"count": len(ordered), "p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1]}
