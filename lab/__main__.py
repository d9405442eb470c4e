"""``python -m lab up|down|status|start|stop|kill|restart [NAME] [--variables FILE]``."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from lab.config import LabConfigError, load
from lab.supervisor import Lab, LabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description="Run the embedded lab's stand-ins.")
    parser.add_argument("action", choices=["up", "down", "status", "start", "stop", "kill", "restart"])
    parser.add_argument("name", nargs="?", help="program name, for start/stop/kill/restart")
    parser.add_argument("--variables", help="variables file (default: $LAB_VARIABLES or variables/lab.yaml)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health checks")
    args = parser.parse_args(argv)
    try:
        lab = Lab(load(args.variables))
        return _run(lab, args.action, args.name, timedelta(seconds=args.timeout))
    except (LabError, LabConfigError) as error:
        sys.stderr.write(f"lab {args.action}: {error}\n")
        return 1


def _run(lab: Lab, action: str, name: str | None, timeout: timedelta) -> int:
    if action in ("start", "stop", "kill", "restart") and not name:
        raise LabError(f"'{action}' needs a program name, e.g. python -m lab {action} billing")
    if action == "up":
        _print_status(lab.up(timeout))
        sys.stdout.write(f"lab up: logs under {lab.run_dir}\n")
    elif action == "down":
        pids = lab.down()
        sys.stdout.write(
            f"lab down: stopped {len(pids)} process(es){': ' if pids else ''}{', '.join(map(str, pids))}\n"
        )
    elif action == "status":
        rows = lab.status()
        _print_status(rows)
        return 0 if rows and all(row["state"] == "RUNNING" for row in rows) else 3
    elif action == "kill":
        sys.stdout.write(f"killed {name} (PID {lab.kill(name or '')})\n")
    else:
        getattr(lab, action)(name, **({"timeout": timeout} if action in ("start", "restart") else {}))
        _print_status(lab.status())
    return 0


def _print_status(rows: list[dict[str, object]]) -> None:
    if not rows:
        sys.stdout.write("lab: not running\n")
    for row in rows:
        sys.stdout.write(f"{row['name']:<16} {row['state']:<10} pid {row['pid']!s:<8} {row['description']}\n")


if __name__ == "__main__":
    sys.exit(main())
