"""``python -m bench``: start the lab, measure, stop the lab, print and save the figures.

Figures are medians, percentiles and ratios measured side by side in this one run (the machines are shared
and noisy: compare ratios, not absolute numbers across runs). Results go to ``results/bench/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "libraries"))

from bench.billing import keyword_latency
from bench.kong import kong_figures
from bench.runs import suite_wall_time
from bench.smpp import smpp_figures
from bench.voice import voice_figures
from lab.config import load
from lab.supervisor import Lab

OUT = Path(__file__).resolve().parent.parent / "results" / "bench"
REALSTACK = "variables/realstack.yaml"


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
        programs = {program.name for program in config.programs}
        if "smsgw" in programs:
            figures["smpp"] = smpp_figures(args.variables)
        if {"kong-a", "platform"} <= programs:
            figures["kong"] = kong_figures(args.variables)
        if "sip-a" in programs:
            figures["voice"] = _voice_side_by_side(args.variables)
        if not args.skip_suites:
            figures["suite_wall_time"] = suite_wall_time(args.variables, max(2, args.processes))
    finally:
        lab.down()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    sys.stdout.write(render(figures) + f"\nSaved to {OUT / 'bench.json'}\n")
    return 0


def _voice_side_by_side(variables: str) -> dict[str, Any]:
    """The lab proxy, then real Kamailio + RTPEngine (started here when installed), with one SipLibrary."""
    from SipLibrary import SipLibrary

    sip = SipLibrary()
    result: dict[str, Any] = {"lab": voice_figures(variables, sip)}
    real = [sys.executable, "-m", "realstack.voice"]
    started = subprocess.run([*real, "up", "--variables", REALSTACK], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        result["kamailio"] = {"skipped": started.stderr.strip().splitlines()[-1:] or ["realstack.voice up failed"]}
        return result
    try:
        result["kamailio"] = voice_figures(REALSTACK, sip)
    finally:
        subprocess.run([*real, "down", "--variables", REALSTACK], capture_output=True, check=False)
    return result


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
    kong = figures.get("kong")
    if kong:
        over, limit = kong["overhead"], kong["rate_limit"]
        lines += [
            "API gateway (lab Kong stand-in), the same GET interleaved:",
            f"  direct p50/p95 {over['direct']['median_ms']}/{over['direct']['p95_ms']} ms, through the gateway "
            f"{over['proxied']['median_ms']}/{over['proxied']['p95_ms']} ms (adds {over['added_p50_ms']} ms at p50)",
            f"  rate limit {limit['configured_per_s']}/s: allowed per second {limit['allowed_per_s']} "
            f"({limit['allowed_vs_configured']} of configured), {limit['refused']} refused with 429",
        ]
    voice = figures.get("voice")
    if voice:
        lines.append("Voice, call setup through the proxy (SipLibrary, INVITE to CONFIRMED incl. 407):")
        for stack, row in voice.items():
            if "skipped" in row:
                lines.append(f"  {stack}: skipped ({row['skipped']})")
                continue
            setup, sipp = row["call_setup"], row["sipp"]
            lines.append(
                f"  {stack:<9} median {setup['median_ms']} ms, p95 {setup['p95_ms']} ms (n={setup['n']}); "
                f"SIPp held {sipp['held_with_0_failed_per_s']} calls/s with 0 failed "
                f"(steps {[(s['offered_per_s'], s['failed']) for s in sipp['steps']]})"
            )
    run = figures.get("suite_wall_time")
    if run:
        lines.append(
            f"All suites: serial robot {run['serial_s']} s, pabot ({run['processes']} processes) "
            f"{run['pabot_s']} s: {run['speed_up']}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
