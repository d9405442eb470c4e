"""Small statistics helpers shared by the benchmarks."""

from __future__ import annotations

import math
import statistics


def percentile(values: list[float], percent: float) -> float:
    """The nearest-rank percentile of ``values`` (which need not be sorted)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """Median, p95 and max of durations given in seconds, in milliseconds rounded to 0.01."""
    millis = [s * 1000 for s in seconds]
    return {
        "n": len(millis),
        "median_ms": round(statistics.median(millis), 2),
        "p95_ms": round(percentile(millis, 95), 2),
        "max_ms": round(max(millis), 2),
    }
