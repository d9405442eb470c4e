"""Voice figures, the lab proxy and real Kamailio + RTPEngine side by side in one run.

- call setup through SipLibrary (INVITE to CONFIRMED, with the proxy's 407 round trip): median and p95;
- SIPp calls per second held with 0 failed calls: uac (digest auth) -> proxy -> uas on the trunk address.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from SipLibrary import SipLibrary
from SipLoadLibrary import SipLoadLibrary

from bench.stats import percentile

RATES = (50, 100, 200, 300)


def voice_figures(variables_file: str, sip: SipLibrary, calls: int = 40) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(Path(variables_file).read_text(encoding="utf-8"))
    proxy = str(values["SIP_PROXY"])
    caller, callee = values["SIP_ACCOUNTS"][-1][:2]  # the last worker's phones: no test uses them in a bench
    return {
        "call_setup": _call_setup(sip, values, proxy, caller, callee, calls),
        "sipp": _sipp_ladder(values, proxy, caller),
    }


def _call_setup(
    sip: SipLibrary, values: dict[str, Any], proxy: str, caller: dict[str, str], callee: dict[str, str], calls: int
) -> dict[str, float]:
    domain = str(values["SIP_DOMAIN"])
    for alias, account, answer in (("bench-a", caller, None), ("bench-b", callee, 200)):
        sip.create_sip_phone(
            alias,
            account["user"],
            password=account["password"],
            domain=domain,
            registrar=f"sip:{proxy}",
            outbound_proxy=f"sip:{proxy}",
            auto_answer=answer,
        )
        sip.register_sip_phone(alias)
    setups = []
    try:
        for _ in range(calls):
            sip.call("bench-a", callee["user"])
            sip.wait_until_call_state("bench-a", "CONFIRMED")
            setups.append(float(sip.get_call_info("bench-a")["setup_ms"]))
            sip.hang_up("bench-a")
            sip.wait_until_call_state("bench-b", "DISCONNECTED")
    finally:
        sip.close_all_sip_phones()
    return {
        "n": len(setups),
        "median_ms": round(statistics.median(setups), 2),
        "p95_ms": round(percentile(setups, 95), 2),
    }


def _sipp_ladder(values: dict[str, Any], proxy: str, caller: dict[str, str]) -> dict[str, Any]:
    trunk = next(iter(values.get("LAB_SIP_TRUNKS") or []), {"prefix": "00", "uri": "sip:127.0.0.1:15200"})
    uas_port = int(str(trunk["uri"]).rsplit(":", 1)[1])
    load = SipLoadLibrary(timeout=timedelta(seconds=60))
    rows = []
    held = 0
    try:
        load.start_sipp_uas(alias="bench-uas", port=uas_port)
        for rate in RATES:
            result = load.run_sipp_uac(
                proxy,
                f"{trunk['prefix']}4420000",
                alias=f"bench-uac-{rate}",
                rate=rate,
                count=rate * 5,
                auth_user=caller["user"],
                auth_password=caller["password"],
                caller=caller["user"],
                timeout=timedelta(seconds=60),
            )
            rows.append(
                {
                    "offered_per_s": rate,
                    "successful": result["successful"],
                    "failed": result["failed"],
                    "calls_per_second": result["calls_per_second"],
                }
            )
            if result["failed"]:
                break
            held = rate
    finally:
        load.stop_all_sipp()
    return {"held_with_0_failed_per_s": held, "steps": rows}
