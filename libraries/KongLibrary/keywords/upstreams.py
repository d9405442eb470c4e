"""Keywords for upstreams (load-balanced groups) and their targets: weights and health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from assertionengine import AssertionOperator
from robot.api import logger
from robotlibcore import keyword

from KongLibrary.context import segment
from KongLibrary.errors import KongApiError
from KongLibrary.keywords.base import KongComponent, Tags, tags_query

Health = Literal["healthy", "unhealthy"]
Algorithm = Literal["round-robin", "consistent-hashing", "least-connections", "latency"]


class UpstreamKeywords(KongComponent):
    # --- upstreams ---------------------------------------------------------------------------------
    @keyword
    def create_upstream(
        self,
        name: str,
        *,
        algorithm: Algorithm | None = None,
        slots: int | None = None,
        healthchecks: dict[str, Any] | None = None,
        tags: Tags = None,
    ) -> dict[str, Any]:
        """Creates upstream ``name``: a virtual host that services address (``http://NAME``) to balance load.

        | ${upstream}= | `Create Upstream` | sms-gateways | tags=${TAGS} |
        | `Add Target` | sms-gateways | 127.0.0.1:11401 |
        | `Create Service` | sms | http://sms-gateways |
        """
        body = self._entity({"name": name, "algorithm": algorithm, "slots": slots, "healthchecks": healthchecks}, tags)
        return self.ctx.admin("POST", "/upstreams", json_body=body, expected=(201, 200))

    @keyword
    def get_upstream(self, upstream: str) -> dict[str, Any]:
        """Returns the upstream with id or name ``upstream``."""
        return self.ctx.admin("GET", f"/upstreams/{segment(upstream)}", expected=(200,))

    @keyword
    def get_upstreams(self, *, tags: Tags = None) -> list[dict[str, Any]]:
        """Returns all upstreams, or only those carrying all ``tags``."""
        return self.ctx.list_all("/upstreams", {"tags": tags_query(tags)})

    @keyword
    def update_upstream(self, upstream: str, **fields: Any) -> dict[str, Any]:
        """Changes the given fields of upstream ``upstream`` (``PATCH``), e.g. ``algorithm=least-connections``."""
        if not fields:
            raise ValueError("Update Upstream needs at least one field to change, e.g. algorithm=least-connections.")
        return self.ctx.admin("PATCH", f"/upstreams/{segment(upstream)}", json_body=fields, expected=(200,))

    @keyword
    def delete_upstream(self, upstream: str, *, missing_ok: bool = False) -> None:
        """Deletes upstream ``upstream`` and its targets."""
        expected = (204, 200, 404) if missing_ok else (204, 200)
        self.ctx.admin("DELETE", f"/upstreams/{segment(upstream)}", expected=expected)

    # --- targets -----------------------------------------------------------------------------------
    @keyword
    def add_target(self, upstream: str, target: str, *, weight: int = 100, tags: Tags = None) -> dict[str, Any]:
        """Adds ``target`` (``host:port``) to upstream ``upstream`` with ``weight`` (0 takes it out of rotation).

        | `Add Target` | sms-gateways | 127.0.0.1:11401 | weight=${100} |
        """
        if not 0 <= weight <= 65535:
            raise ValueError(f"Target weight {weight} is out of Kong's range 0..65535.")
        body = self._entity({"target": target, "weight": weight}, tags)
        return self.ctx.admin("POST", f"/upstreams/{segment(upstream)}/targets", json_body=body, expected=(201, 200))

    @keyword
    def get_targets(self, upstream: str) -> list[dict[str, Any]]:
        """Returns upstream ``upstream``'s targets (``target``, ``weight``, ``id``)."""
        return self.ctx.list_all(f"/upstreams/{segment(upstream)}/targets")

    @keyword
    def get_target(self, upstream: str, target: str) -> dict[str, Any]:
        """Returns ``target`` (``host:port`` or id) of upstream ``upstream``."""
        targets = self.get_targets(upstream)
        for entry in targets:
            if target in (entry.get("target"), entry.get("id")):
                return entry
        listed = ", ".join(sorted(str(entry.get("target")) for entry in targets)) or "none"
        raise AssertionError(f"Upstream '{upstream}' should have had target '{target}' but it has: {listed}.")

    @keyword
    def set_target_weight(self, upstream: str, target: str, weight: int) -> dict[str, Any]:
        """Changes the weight of ``target`` (``host:port`` or id) in ``upstream``; 0 drains it.

        | `Set Target Weight` | sms-gateways | 127.0.0.1:11401 | 0 |
        """
        if not 0 <= weight <= 65535:
            raise ValueError(f"Target weight {weight} is out of Kong's range 0..65535.")
        path = f"/upstreams/{segment(upstream)}/targets/{segment(target)}"
        try:
            return self.ctx.admin("PATCH", path, json_body={"weight": weight}, expected=(200,))
        except KongApiError as error:
            if error.status != 405:
                raise
        # Kong before 2.7 had no PATCH on targets: a new target entry replaces the old one.
        logger.info("This Kong cannot PATCH targets; removing and re-adding the target with the new weight.")
        self.remove_target(upstream, target)
        return self.add_target(upstream, target, weight=weight)

    @keyword
    def remove_target(self, upstream: str, target: str, *, missing_ok: bool = False) -> None:
        """Removes ``target`` (``host:port`` or id) from upstream ``upstream``."""
        expected = (204, 200, 404) if missing_ok else (204, 200)
        self.ctx.admin("DELETE", f"/upstreams/{segment(upstream)}/targets/{segment(target)}", expected=expected)

    # --- health ------------------------------------------------------------------------------------
    @keyword
    def set_target_health(self, upstream: str, target: str, health: Health, *, address: str | None = None) -> None:
        """Marks ``target`` of ``upstream`` ``healthy`` or ``unhealthy`` in Kong's health checker.

        With ``address`` (``ip:port``) only that address of a target resolving to several is marked.
        Kong then stops (or resumes) sending traffic to it. The health checker must be on: with
        ``healthchecks`` all off, Kong reports ``HEALTHCHECKS_OFF`` whatever is set.

        | `Set Target Health` | sms-gateways | 127.0.0.1:11401 | unhealthy |
        | `Get Target Health` | sms-gateways | 127.0.0.1:11401 | == | UNHEALTHY | timeout=5s |
        """
        path = f"/upstreams/{segment(upstream)}/targets/{segment(target)}"
        if address:
            path += f"/{segment(address)}"
        self.ctx.admin("PUT", f"{path}/{health}", expected=(204, 200))

    @keyword
    def get_target_health(
        self,
        upstream: str,
        target: str,
        assertion_operator: AssertionOperator | None = None,
        expected: str | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str:
        """Returns the health Kong reports for ``target`` of ``upstream``, optionally asserting it.

        The value is one of ``HEALTHY``, ``UNHEALTHY``, ``DNS_ERROR`` and ``HEALTHCHECKS_OFF``. Health checks
        run asynchronously: assert with a ``timeout``.

        | `Get Target Health` | sms-gateways | 127.0.0.1:11401 | == | HEALTHY | timeout=10s |
        """

        def read() -> str:
            health = self.get_upstream_health(upstream)
            if target in health:
                return health[target]
            listed = ", ".join(sorted(health)) or "none"
            raise AssertionError(
                f"Upstream '{upstream}' has no target '{target}' in its health report. Its targets: {listed}."
            )

        label = message or f"Health of target '{target}' in upstream '{upstream}'"
        return self._assert(read, assertion_operator, expected, timeout, label)

    @keyword
    def get_upstream_health(self, upstream: str) -> dict[str, str]:
        """Returns upstream ``upstream``'s targets and their health: ``{'127.0.0.1:11401': 'HEALTHY', ...}``.

        A target is listed under its ``host:port`` and under its id.
        """
        health: dict[str, str] = {}
        for entry in self.ctx.list_all(f"/upstreams/{segment(upstream)}/health"):
            state = str(entry.get("health", ""))
            for name in (entry.get("target"), entry.get("id")):
                if name:
                    health[str(name)] = state
        return health

    @keyword
    def get_upstream_balancer_health(
        self,
        upstream: str,
        assertion_operator: AssertionOperator | None = None,
        expected: str | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str:
        """Returns upstream ``upstream``'s health as a whole (``HEALTHY`` while a target is), optionally asserting it.

        | `Get Upstream Balancer Health` | sms-gateways | == | UNHEALTHY | timeout=10s |
        """

        def read() -> str:
            body = self.ctx.admin(
                "GET", f"/upstreams/{segment(upstream)}/health", params={"balancer_health": 1}, expected=(200,)
            )
            data = body.get("data")
            return str(data.get("health", "")) if isinstance(data, dict) else ""

        label = message or f"Balancer health of upstream '{upstream}'"
        return self._assert(read, assertion_operator, expected, timeout, label)
