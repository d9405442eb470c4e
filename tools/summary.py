"""Print a one-screen summary of a Robot run: totals, each phase, failures, and where the report is."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robot.api import ExecutionResult, ResultVisitor
from robot.result import TestCase

PHASES = {
    "phase-1": "voice-SMS",
    "phase-2": "API",
    "phase-3": "failover + security",
    "phase-4": "performance + load",
    "phase-5": "full system",
}


class _Collector(ResultVisitor):
    def __init__(self) -> None:
        self.tests: list[TestCase] = []

    def visit_test(self, test: TestCase) -> None:
        self.tests.append(test)


def summarise(output: Path, elapsed: float | None = None, processes: int | None = None) -> str:
    result = ExecutionResult(str(output))
    collector = _Collector()
    result.visit(collector)
    tests = collector.tests
    lines = []
    stats = result.statistics.total
    how = f" with {processes} processes" if processes else ""
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    lines.append(
        f"{len(tests)} tests{how}{took}: {stats.passed} passed, {stats.failed} failed, {stats.skipped} skipped"
    )
    for tag, label in PHASES.items():
        tagged = [t for t in tests if tag in t.tags]
        if tagged:
            passed = sum(t.passed for t in tagged)
            lines.append(f"  {tag} {label:<22} {passed}/{len(tagged)} passed")
    failed = [t for t in tests if t.failed]
    if failed:
        lines.append("Failed:")
        for test in failed[:15]:
            message = test.message.splitlines()[0][:150] if test.message else ""
            lines.append(f"  {test.longname}\n      {message}")
        if len(failed) > 15:
            lines.append(f"  ... and {len(failed) - 15} more (see the report)")
    report = output.parent / "report.html"
    lines.append(f"Report: {report.resolve()}")
    lines.append(f"Log:    {(output.parent / 'log.html').resolve()}")
    lines.append(f"JUnit:  {(output.parent / 'xunit.xml').resolve()}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--elapsed", type=float)
    parser.add_argument("--processes", type=int)
    args = parser.parse_args()
    if not args.output.exists():
        sys.stderr.write(f"summary: {args.output} was not written; the run did not start or crashed.\n")
        return 1
    sys.stdout.write(summarise(args.output, args.elapsed, args.processes) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
