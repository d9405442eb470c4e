"""Keywords for Kong services: the upstream APIs the gateway fronts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from robotlibcore import keyword

from KongLibrary.context import segment
from KongLibrary.keywords.base import KongComponent, Tags, milliseconds, tags_query


class ServiceKeywords(KongComponent):
    @keyword
    def create_service(
        self,
        name: str,
        url: str,
        *,
        tags: Tags = None,
        retries: int | None = None,
        connect_timeout: timedelta | None = None,
        read_timeout: timedelta | None = None,
        write_timeout: timedelta | None = None,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        """Creates a service named ``name`` forwarding to ``url`` and returns it as Kong answers it.

        ``url`` is the upstream, e.g. ``http://127.0.0.1:18080/api/v1`` or ``http://billing-upstream`` (an
        upstream's name, for load balancing). Timeouts are given as Robot times and sent in milliseconds.

        | ${service}= | `Create Service` | billing | ${BILLING_URL} | tags=${TAGS} | retries=${2} |
        """
        body = self._entity(
            {
                "name": name,
                "url": url,
                "retries": retries,
                "connect_timeout": milliseconds(connect_timeout),
                "read_timeout": milliseconds(read_timeout),
                "write_timeout": milliseconds(write_timeout),
                "enabled": enabled,
            },
            tags,
        )
        return self.ctx.admin("POST", "/services", json_body=body, expected=(201, 200))

    @keyword
    def get_service(self, service: str) -> dict[str, Any]:
        """Returns the service with id or name ``service``."""
        return self.ctx.admin("GET", f"/services/{segment(service)}", expected=(200,))

    @keyword
    def get_services(self, *, tags: Tags = None) -> list[dict[str, Any]]:
        """Returns all services (every page), or only those carrying all ``tags``."""
        return self.ctx.list_all("/services", {"tags": tags_query(tags)})

    @keyword
    def update_service(self, service: str, **fields: Any) -> dict[str, Any]:
        """Changes the given fields of service ``service`` (``PATCH``) and returns the updated service.

        Field values go to Kong as given: pass numbers and booleans as Robot numbers (``${3}``, ``${False}``).

        | `Update Service` | billing | url=http://127.0.0.1:18081/api/v1 | retries=${0} |
        """
        if not fields:
            raise ValueError("Update Service needs at least one field to change, e.g. retries=${3}.")
        return self.ctx.admin("PATCH", f"/services/{segment(service)}", json_body=fields, expected=(200,))

    @keyword
    def delete_service(self, service: str, *, missing_ok: bool = False) -> None:
        """Deletes service ``service`` (id or name). Kong refuses while routes still use it: delete those first.

        With ``missing_ok=True`` a service that does not exist is not an error.
        """
        expected = (204, 200, 404) if missing_ok else (204, 200)
        self.ctx.admin("DELETE", f"/services/{segment(service)}", expected=expected)
