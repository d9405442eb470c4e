"""Keywords for Kong routes: which requests reach which service."""

from __future__ import annotations

from typing import Any, Literal

from robotlibcore import keyword

from KongLibrary.context import segment
from KongLibrary.keywords.base import KongComponent, Tags, tags_query

Protocol = Literal["http", "https", "grpc", "grpcs", "tcp", "tls", "udp"]


class RouteKeywords(KongComponent):
    @keyword
    def create_route(
        self,
        service: str,
        *,
        name: str | None = None,
        paths: list[str] | None = None,
        hosts: list[str] | None = None,
        methods: list[str] | None = None,
        headers: dict[str, list[str]] | None = None,
        protocols: list[Protocol] | None = None,
        strip_path: bool | None = None,
        preserve_host: bool | None = None,
        tags: Tags = None,
    ) -> dict[str, Any]:
        """Creates a route to service ``service`` (id or name) and returns it.

        Kong needs at least one of ``paths``, ``hosts``, ``methods`` or ``headers``. A new route answers
        through the gateway only once Kong has rebuilt its router: wait with `Wait Until Route Answers`.

        | ${route}= | `Create Route` | billing | name=billing | paths=${{ ['/billing'] }} | tags=${TAGS} |
        | `Wait Until Route Answers` | /billing/health |
        """
        body = self._entity(
            {
                "name": name,
                "paths": paths,
                "hosts": hosts,
                "methods": [method.upper() for method in methods] if methods else None,
                "headers": headers,
                "protocols": protocols,
                "strip_path": strip_path,
                "preserve_host": preserve_host,
            },
            tags,
        )
        return self.ctx.admin("POST", f"/services/{segment(service)}/routes", json_body=body, expected=(201, 200))

    @keyword
    def get_route(self, route: str) -> dict[str, Any]:
        """Returns the route with id or name ``route``."""
        return self.ctx.admin("GET", f"/routes/{segment(route)}", expected=(200,))

    @keyword
    def get_routes(self, *, service: str | None = None, tags: Tags = None) -> list[dict[str, Any]]:
        """Returns all routes, or those of ``service`` (id or name), or only those carrying all ``tags``."""
        path = f"/services/{segment(service)}/routes" if service else "/routes"
        return self.ctx.list_all(path, {"tags": tags_query(tags)})

    @keyword
    def update_route(self, route: str, **fields: Any) -> dict[str, Any]:
        """Changes the given fields of route ``route`` (``PATCH``) and returns the updated route.

        | `Update Route` | billing | paths=${{ ['/billing/v2'] }} | strip_path=${False} |
        """
        if not fields:
            raise ValueError("Update Route needs at least one field to change, e.g. strip_path=${False}.")
        return self.ctx.admin("PATCH", f"/routes/{segment(route)}", json_body=fields, expected=(200,))

    @keyword
    def delete_route(self, route: str, *, missing_ok: bool = False) -> None:
        """Deletes route ``route`` (id or name); with ``missing_ok=True`` a missing route is not an error."""
        expected = (204, 200, 404) if missing_ok else (204, 200)
        self.ctx.admin("DELETE", f"/routes/{segment(route)}", expected=expected)
