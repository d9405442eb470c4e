"""``python -m bench``: start the lab, measure, stop the lab, print and save the figures.

Figures are medians, percentiles and ratios measured side by side in this one run (the machines are shared
and noisy: compare ratios, not absolute numbers across runs). Results go to ``results/bench/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "libraries"))

from bench.billing import keyword_latency
from bench.runs import suite_wall_time
from bench.smpp import smpp_figures
from lab.config import load
from lab.supervisor import Lab

OUT = Path(__file__).resolve().parent.parent / "results" / "bench"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--variables", default="variables/lab.yaml")
    parser.add_argument("--rounds", type=int, default=60, help="purchases per keyword-latency run")
    parser.add_argument("--skip-suites", action="store_true", help="skip the serial-vs-pabot wall-time run")
    args = parser.parse_args()
    config = load(args.variables)
    lab = Lab(config)
    figures: dict[str, Any] = {}
    try:
        lab.up()
        figures["billing_keyword_latency"] = keyword_latency(args.variables, args.rounds)
        if any(program.name == "smsgw" for program in config.programs):
            figures["smpp"] = smpp_figures(args.variables)
        if not args.skip_suites:
            figures["suite_wall_time"] = suite_wall_time(args.variables, max(2, args.processes))
    finally:
        lab.down()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    sys.stdout.write(render(figures) + f"\nSaved to {OUT / 'bench.json'}\n")
    return 0


def render(figures: dict[str, Any]) -> str:
    lines = [
        "BillingLibrary keyword latency against the lab (one HTTP call each):",
        f"  {'keyword':<28} {'n':>4} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}",
    ]
    for name, row in figures.get("billing_keyword_latency", {}).items():
        lines.append(f"  {name:<28} {row['n']:>4} {row['median_ms']:>10} {row['p95_ms']:>8} {row['max_ms']:>8}")
    smpp = figures.get("smpp")
    if smpp:
        latency = smpp["receipt_latency"]
        lines += [
            f"SMPP over one bind to the lab gateway, {smpp['messages']} submits each:",
            f"  bare smpplib, wait for each response   {smpp['bare_smpplib_wait_each_per_s']:>8} msg/s",
            f"  Submit SMS, wait for each response     {smpp['library_wait_each_per_s']:>8} msg/s "
            f"({smpp['library_vs_bare']}x bare)",
            f"  Submit Bulk SMS, window 10             {smpp['library_window_10_per_s']:>8} msg/s",
            f"  Submit Bulk SMS, window 50             {smpp['library_window_50_per_s']:>8} msg/s "
            f"({smpp['window_50_vs_wait_each']}x wait-each, {smpp['window_50_failed']} failed)",
            f"  submit to DELIVRD receipt: median {latency['median_ms']} ms, p95 {latency['p95_ms']} ms "
            f"(n={latency['n']})",
        ]
    run = figures.get("suite_wall_time")
    if run:
        lines.append(
            f"All suites: serial robot {run['serial_s']} s, pabot ({run['processes']} processes) "
            f"{run['pabot_s']} s: {run['speed_up']}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
