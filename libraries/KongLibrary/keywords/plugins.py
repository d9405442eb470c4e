"""Keywords for plugins at every scope (global, service, route, consumer) and the counters they expose."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from assertionengine import AssertionOperator
from robot.api import logger
from robotlibcore import keyword

from KongLibrary.context import segment
from KongLibrary.keywords.base import KongComponent, Tags, tags_query

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?$")
LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')
SCOPES = (("service", "services"), ("route", "routes"), ("consumer", "consumers"))


class PluginKeywords(KongComponent):
    @keyword
    def add_plugin(
        self,
        name: str,
        *,
        service: str | None = None,
        route: str | None = None,
        consumer: str | None = None,
        config: dict[str, Any] | None = None,
        enabled: bool = True,
        instance_name: str | None = None,
        tags: Tags = None,
    ) -> dict[str, Any]:
        """Enables plugin ``name`` and returns it: globally, or on a ``service``, ``route`` and/or ``consumer``.

        Scopes are given by id or by name (a name is looked up). Scopes combine as in Kong: a plugin on a
        service *and* a consumer applies to that consumer's calls to that service.

        | `Add Plugin` | key-auth | route=billing |
        | `Add Plugin` | rate-limiting | consumer=acme | config=${{ {'minute': 5, 'policy': 'local'} }} |
        | `Add Plugin` | acl | service=sms | config=${{ {'allow': ['sms-senders']} }} |
        | `Add Plugin` | prometheus |
        """
        scopes = {"service": service, "route": route, "consumer": consumer}
        fields: dict[str, Any] = {"name": name, "config": config, "enabled": enabled, "instance_name": instance_name}
        for scope, collection in SCOPES:
            if scopes[scope]:
                fields[scope] = self._reference(collection, str(scopes[scope]))
        body = self._entity(fields, tags)
        where = ", ".join(f"{scope} '{value}'" for scope, value in scopes.items() if value) or "globally"
        plugin = self.ctx.admin("POST", "/plugins", json_body=body, expected=(201, 200))
        logger.info(f"Plugin '{name}' ({plugin.get('id')}) enabled {where}.")
        return plugin

    @keyword
    def get_plugin(self, plugin: str) -> dict[str, Any]:
        """Returns the plugin with id (or ``instance_name``) ``plugin``."""
        return self.ctx.admin("GET", f"/plugins/{segment(plugin)}", expected=(200,))

    @keyword
    def get_plugins(
        self,
        *,
        name: str | None = None,
        service: str | None = None,
        route: str | None = None,
        consumer: str | None = None,
        tags: Tags = None,
    ) -> list[dict[str, Any]]:
        """Returns the plugins, optionally only those named ``name``, scoped to the given entities, tagged ``tags``.

        | ${limits}= | `Get Plugins` | name=rate-limiting | consumer=acme |
        """
        plugins = self.ctx.list_all("/plugins", {"tags": tags_query(tags)})
        if name:
            plugins = [plugin for plugin in plugins if plugin.get("name") == name]
        scopes = {"service": service, "route": route, "consumer": consumer}
        for scope, collection in SCOPES:
            if scopes[scope]:
                wanted = self._reference(collection, str(scopes[scope]))["id"]
                plugins = [plugin for plugin in plugins if (plugin.get(scope) or {}).get("id") == wanted]
        return plugins

    @keyword
    def update_plugin_config(self, plugin: str, config: dict[str, Any]) -> dict[str, Any]:
        """Changes the given fields of plugin ``plugin``'s ``config`` (Kong merges them) and returns the plugin.

        | `Update Plugin Config` | ${limit}[id] | ${{ {'minute': 10} }} |
        """
        return self.ctx.admin("PATCH", f"/plugins/{segment(plugin)}", json_body={"config": config}, expected=(200,))

    @keyword
    def enable_plugin(self, plugin: str) -> dict[str, Any]:
        """Switches a disabled plugin ``plugin`` back on (``enabled: true``) and returns it."""
        return self.ctx.admin("PATCH", f"/plugins/{segment(plugin)}", json_body={"enabled": True}, expected=(200,))

    @keyword
    def disable_plugin(self, plugin: str) -> dict[str, Any]:
        """Switches plugin ``plugin`` off (``enabled: false``) without deleting it and returns it."""
        return self.ctx.admin("PATCH", f"/plugins/{segment(plugin)}", json_body={"enabled": False}, expected=(200,))

    @keyword
    def delete_plugin(self, plugin: str, *, missing_ok: bool = False) -> None:
        """Deletes plugin ``plugin``; with ``missing_ok=True`` a missing plugin is not an error."""
        expected = (204, 200, 404) if missing_ok else (204, 200)
        self.ctx.admin("DELETE", f"/plugins/{segment(plugin)}", expected=expected)

    @keyword
    def get_gateway_metric(
        self,
        metric: str,
        assertion_operator: AssertionOperator | None = None,
        expected: float | None = None,
        *,
        labels: dict[str, str] | None = None,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> float:
        """Returns a ``prometheus`` plugin counter from the Admin API's ``/metrics``, optionally asserting it.

        The value is the sum of every sample of ``metric`` whose labels include all of ``labels`` (``0`` when
        none has appeared yet: Kong writes a series at its first event). Counters are updated after the
        response is sent, so assert with a ``timeout``. The ``prometheus`` plugin must be enabled.

        | VAR | &{labels} | service=billing | code=429 |
        | `Get Gateway Metric` | kong_http_requests_total | == | 3 | labels=${labels} | timeout=5s |
        """
        wanted = {key: str(value) for key, value in (labels or {}).items()}

        def read() -> float:
            return sum_samples(self._metrics_text(), metric, wanted)

        label = message or f"Gateway metric {metric}{wanted or ''}"
        return self._assert(read, assertion_operator, expected, timeout, label)

    def _metrics_text(self) -> str:
        return self.ctx.admin_response("GET", "/metrics", expected=(200,)).text


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition as ``(name, labels, value)`` tuples; comments and bad lines are skipped."""
    samples = []
    for line in text.splitlines():
        match = SAMPLE.match(line.strip())
        if not match or line.startswith("#"):
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {
            item["key"]: item["value"].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            for item in LABEL.finditer(match["labels"] or "")
        }
        samples.append((match["name"], labels, value))
    return samples


def sum_samples(text: str, metric: str, labels: dict[str, str]) -> float:
    """The sum of ``metric``'s samples whose labels include ``labels``."""
    return sum(
        value
        for name, sample_labels, value in parse_samples(text)
        if name == metric and all(sample_labels.get(key) == expected for key, expected in labels.items())
    )
