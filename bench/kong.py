"""API gateway figures against the lab's Kong stand-in, in one run.

- overhead: the same GET straight to the upstream and through the gateway, interleaved; p50/p95 of each;
- rate-limit accuracy: requests allowed per second against the configured limit, over whole windows.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import requests
import yaml
from KongLibrary import KongLibrary

from bench.stats import summary_ms


def kong_figures(variables_file: str, requests_each: int = 300, limit: int = 20, seconds: int = 4) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(Path(variables_file).read_text(encoding="utf-8"))
    kong = KongLibrary(
        admin_url=values["KONG_ADMIN_URL"], proxy_url=values["KONG_PROXY_URL"], admin_token=values["KONG_ADMIN_TOKEN"]
    )
    tag = f"bench-{secrets.token_hex(3)}"
    upstream = f"{values['PLATFORM_UPSTREAM_URL']}/health"
    try:
        kong.set_default_kong_tags(tag)
        kong.create_service(tag, upstream)
        kong.create_route(tag, name=tag, paths=[f"/{tag}"], strip_path=True)
        kong.create_route(tag, name=f"{tag}-rl", paths=[f"/{tag}-rl"], strip_path=True)
        kong.add_plugin("rate-limiting", route=f"{tag}-rl", config={"second": limit, "policy": "local"})
        kong.wait_until_route_answers(f"/{tag}", expected_status=200)
        kong.wait_until_route_answers(f"/{tag}-rl", expected_status=200)
        proxied = f"{values['KONG_PROXY_URL']}/{tag}"
        overhead = _overhead(upstream, proxied, requests_each)
        accuracy = _rate_limit(f"{values['KONG_PROXY_URL']}/{tag}-rl", limit, seconds)
    finally:
        kong.delete_all_entities_tagged(tag)
    return {"overhead": overhead, "rate_limit": accuracy}


def _overhead(direct: str, proxied: str, count: int) -> dict[str, Any]:
    session = requests.Session()
    times: dict[str, list[float]] = {"direct": [], "proxied": []}
    for _ in range(count):
        for name, url in (("direct", direct), ("proxied", proxied)):
            started = time.perf_counter()
            session.get(url, timeout=5).raise_for_status()
            times[name].append(time.perf_counter() - started)
    direct_ms, proxied_ms = summary_ms(times["direct"]), summary_ms(times["proxied"])
    return {
        "direct": direct_ms,
        "proxied": proxied_ms,
        "added_p50_ms": round(proxied_ms["median_ms"] - direct_ms["median_ms"], 2),
        "added_p95_ms": round(proxied_ms["p95_ms"] - direct_ms["p95_ms"], 2),
    }


def _rate_limit(url: str, limit: int, seconds: int) -> dict[str, Any]:
    session = requests.Session()
    start = int(time.time()) + 1  # whole seconds only: the limit counts per calendar second
    while time.time() < start:
        time.sleep(0.001)
    allowed: dict[int, int] = {}
    refused = 0
    while time.time() < start + seconds:
        second = int(time.time())
        status = session.get(url, timeout=5).status_code
        if status == 200:
            allowed[second] = allowed.get(second, 0) + 1
        elif status == 429:
            refused += 1
    per_second = [allowed.get(start + offset, 0) for offset in range(seconds)]
    return {
        "configured_per_s": limit,
        "allowed_per_s": per_second,
        "refused": refused,
        "allowed_vs_configured": round(sum(per_second) / (limit * seconds), 3),
    }
