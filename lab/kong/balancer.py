"""Upstreams: weighted round-robin over the healthy targets, and the health checks that decide "healthy".

Health is kept per node, as Kong does (lua-resty-healthcheck): passive checks count the outcomes of proxied
requests, active checks probe ``healthchecks.active.http_path`` on a timer. A success resets the failure counters
and a failure resets the success counter; a target changes state when a counter reaches its threshold (a
threshold of 0 disables that counter). ``PUT /upstreams/{u}/targets/{t}/healthy|unhealthy`` goes through the
database, so every node applies it, like Kong's cluster-wide broadcast.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lab.kong.schema import HEALTHCHECK_DEFAULTS, with_defaults

log = logging.getLogger("lab.kong.balancer")
SUCCESS = "success"
HTTP_FAILURE = "http_failures"
TCP_FAILURE = "tcp_failures"
TIMEOUT = "timeouts"
DEFAULT_TARGET_PORT = 8000


def split_target(target: str) -> tuple[str, int]:
    """``host:port`` of a target; Kong's default port is 8000."""
    if target.startswith("["):
        host, _, port = target[1:].partition("]:")
        return host, int(port) if port.isdigit() else DEFAULT_TARGET_PORT
    host, _, port = target.partition(":")
    return host, int(port) if port.isdigit() else DEFAULT_TARGET_PORT


def healthchecks(upstream: dict[str, Any]) -> dict[str, Any]:
    return with_defaults(HEALTHCHECK_DEFAULTS, upstream.get("healthchecks"))


def checks_enabled(checks: dict[str, Any]) -> bool:
    active, passive = checks["active"], checks["passive"]
    return bool(
        active["healthy"]["interval"]
        or active["unhealthy"]["interval"]
        or passive["unhealthy"]["tcp_failures"]
        or passive["unhealthy"]["timeouts"]
        or passive["unhealthy"]["http_failures"]
    )


@dataclass
class TargetState:
    healthy: bool = True
    successes: int = 0
    http_failures: int = 0
    tcp_failures: int = 0
    timeouts: int = 0
    manual: bool = False
    next_probe: float = 0.0
    probing: bool = False


class Health:
    """The node's view of every target's health, keyed by ``(upstream id, target)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], TargetState] = {}

    def state(self, upstream_id: str, target: str) -> TargetState:
        with self._lock:
            return self._states.setdefault((upstream_id, target), TargetState())

    def is_healthy(self, upstream_id: str, target: str) -> bool:
        with self._lock:
            state = self._states.get((upstream_id, target))
            return True if state is None else state.healthy

    def describe(self, upstream_id: str, target: str, checks: dict[str, Any]) -> str:
        with self._lock:
            state = self._states.get((upstream_id, target))
        if state is None or (not checks_enabled(checks) and not state.manual):
            return "HEALTHY" if checks_enabled(checks) else "HEALTHCHECKS_OFF"
        return "HEALTHY" if state.healthy else "UNHEALTHY"

    def set(self, upstream_id: str, target: str, healthy: bool) -> None:
        with self._lock:
            state = self._states.setdefault((upstream_id, target), TargetState())
            state.healthy = healthy
            state.manual = True
            state.successes = state.http_failures = state.tcp_failures = state.timeouts = 0
        log.info("target %s of upstream %s set %s", target, upstream_id, "healthy" if healthy else "unhealthy")

    def report(self, upstream_id: str, target: str, section: dict[str, Any], outcome: str) -> None:
        """Count one ``outcome`` against the thresholds of ``section`` (``healthchecks.active`` or ``.passive``)."""
        with self._lock:
            state = self._states.setdefault((upstream_id, target), TargetState())
            if outcome == SUCCESS:
                state.http_failures = state.tcp_failures = state.timeouts = 0
                limit = int(section["healthy"].get("successes") or 0)
                if limit == 0 or state.healthy:
                    state.successes = 0
                    return
                state.successes += 1
                if state.successes >= limit:
                    state.healthy = True
                    state.successes = 0
                    log.warning("target %s of upstream %s is healthy again", target, upstream_id)
                return
            state.successes = 0
            limit = int(section["unhealthy"].get(outcome) or 0)
            if limit == 0 or not state.healthy:
                return
            count = getattr(state, outcome) + 1
            setattr(state, outcome, count)
            if count >= limit:
                state.healthy = False
                state.http_failures = state.tcp_failures = state.timeouts = 0
                log.warning("target %s of upstream %s is unhealthy (%d %s)", target, upstream_id, count, outcome)

    def classify(self, section: dict[str, Any], status: int) -> str | None:
        if status in (section["healthy"].get("http_statuses") or []):
            return SUCCESS
        if status in (section["unhealthy"].get("http_statuses") or []):
            return HTTP_FAILURE
        return None


class _Ring:
    """Smooth weighted round-robin (nginx's): every ``sum(weights)`` picks follow the weights exactly."""

    def __init__(self, entries: tuple[tuple[str, int], ...]) -> None:
        self.entries = entries
        self.current = {target: 0 for target, _weight in entries}

    def pick(self, eligible: set[str]) -> str | None:
        total = 0
        best: str | None = None
        for target, weight in self.entries:
            if target not in eligible or weight <= 0:
                continue
            self.current[target] += weight
            total += weight
            if best is None or self.current[target] > self.current[best]:
                best = target
        if best is not None:
            self.current[best] -= total
        return best


class Balancer:
    """Picks a target of an upstream for each try of a proxied request."""

    def __init__(self, health: Health) -> None:
        self.health = health
        self._lock = threading.Lock()
        self._rings: dict[str, _Ring] = {}

    def pick(self, upstream_id: str, targets: list[dict[str, Any]], tried: set[str]) -> str | None:
        entries = tuple(
            (str(t["target"]), int(t.get("weight", 100) if t.get("weight") is not None else 100)) for t in targets
        )
        healthy = {target for target, weight in entries if weight > 0 and self.health.is_healthy(upstream_id, target)}
        eligible = (healthy - tried) or healthy
        if not eligible:
            return None
        with self._lock:
            ring = self._rings.get(upstream_id)
            if ring is None or ring.entries != entries:
                ring = self._rings[upstream_id] = _Ring(entries)
            return ring.pick(eligible)


class ActiveChecker:
    """Probes targets on a timer: healthy ones every ``active.healthy.interval`` s, unhealthy ones every
    ``active.unhealthy.interval`` s (0: not probed in that state)."""

    def __init__(
        self, health: Health, upstreams: Callable[[], list[tuple[dict[str, Any], list[dict[str, Any]]]]]
    ) -> None:
        self.health = health
        self.upstreams = upstreams
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kong-probe")
        self._thread = threading.Thread(target=self._run, name="kong-active-checks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self._tick()
            except Exception:
                log.exception("active health checks failed")

    def _tick(self) -> None:
        now = time.monotonic()
        for upstream, targets in self.upstreams():
            checks = healthchecks(upstream)
            active = checks["active"]
            if not (active["healthy"]["interval"] or active["unhealthy"]["interval"]):
                continue
            upstream_id = str(upstream["id"])
            for target in targets:
                if target.get("weight") == 0:
                    continue
                name = str(target["target"])
                state = self.health.state(upstream_id, name)
                interval = float(active["healthy" if state.healthy else "unhealthy"]["interval"] or 0)
                if interval <= 0 or state.probing or now < state.next_probe:
                    continue
                state.probing = True
                state.next_probe = now + interval
                self._pool.submit(self._probe, upstream_id, name, active)

    def _probe(self, upstream_id: str, target: str, active: dict[str, Any]) -> None:
        host, port = split_target(target)
        outcome: str | None
        connection = http.client.HTTPConnection(host, port, timeout=float(active.get("timeout") or 1))
        try:
            connection.putrequest("GET", str(active.get("http_path") or "/"), skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", target)
            connection.putheader("User-Agent", "kong-stand-in/healthcheck")
            for name, values in (active.get("headers") or {}).items():
                for value in values if isinstance(values, list) else [values]:
                    connection.putheader(name, str(value))
            connection.endheaders()
            response = connection.getresponse()
            response.read()
            outcome = self.health.classify(active, response.status)
        except TimeoutError:
            outcome = TIMEOUT
        except OSError:
            outcome = TCP_FAILURE
        except http.client.HTTPException:
            outcome = TCP_FAILURE
        finally:
            connection.close()
            self.health.state(upstream_id, target).probing = False
        if outcome is not None:
            self.health.report(upstream_id, target, active, outcome)
