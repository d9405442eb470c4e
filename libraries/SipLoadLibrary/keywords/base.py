"""What every SipLoadLibrary component shares: the context, and how a run is summed up in the log."""

from __future__ import annotations

from typing import Any

from SipLoadLibrary.context import SippContext


class SippComponent:
    """A group of keywords over one concern; all components share one `SippContext`."""

    def __init__(self, ctx: SippContext) -> None:
        self.ctx = ctx


def summary(result: dict[str, Any]) -> str:
    """One line for the log: calls, failures, rate, response time, exit."""
    times = ", ".join(
        f"{name} mean {values.get('mean', 0):g} ms" + (f" p95 {values['p95']:g} ms" if "p95" in values else "")
        for name, values in result.get("response_times_ms", {}).items()
    )
    reasons = ", ".join(f"{name} {count}" for name, count in result.get("failed_by_reason", {}).items())
    exit_text = (
        f"exit {result['exit_code']} ({result['exit_reason']})" if result.get("exit_code") is not None else "running"
    )
    return (
        f"SIPp '{result['alias']}' ({result['role']}): {result['calls_created']} calls, "
        f"{result['successful']} successful, "
        f"{result['failed']} failed{f' ({reasons})' if reasons else ''}, {result['retransmissions']} retransmissions, "
        f"{result['calls_per_second']:g} calls/s over {result['elapsed_s']:g} s"
        f"{f'; {times}' if times else ''}; {exit_text}."
    )
