"""Keywords for Kong consumers: the API clients that credentials, ACL groups and plugins belong to."""

from __future__ import annotations

from typing import Any

from robotlibcore import keyword

from KongLibrary.context import segment
from KongLibrary.keywords.base import KongComponent, Tags, tags_query


class ConsumerKeywords(KongComponent):
    @keyword
    def create_consumer(
        self, username: str | None = None, *, custom_id: str | None = None, tags: Tags = None
    ) -> dict[str, Any]:
        """Creates a consumer and returns it; Kong needs a ``username``, a ``custom_id`` or both.

        | ${consumer}= | `Create Consumer` | acme-${NS} | custom_id=${customer}[id] | tags=${TAGS} |
        """
        if not username and not custom_id:
            raise ValueError("Create Consumer needs a username, a custom_id or both.")
        body = self._entity({"username": username, "custom_id": custom_id}, tags)
        return self.ctx.admin("POST", "/consumers", json_body=body, expected=(201, 200))

    @keyword
    def get_consumer(self, consumer: str) -> dict[str, Any]:
        """Returns the consumer with id or username ``consumer``."""
        return self.ctx.admin("GET", f"/consumers/{segment(consumer)}", expected=(200,))

    @keyword
    def get_consumers(self, *, tags: Tags = None) -> list[dict[str, Any]]:
        """Returns all consumers (every page), or only those carrying all ``tags``."""
        return self.ctx.list_all("/consumers", {"tags": tags_query(tags)})

    @keyword
    def update_consumer(self, consumer: str, **fields: Any) -> dict[str, Any]:
        """Changes the given fields of consumer ``consumer`` (``PATCH``), e.g. ``custom_id=c-42``."""
        if not fields:
            raise ValueError("Update Consumer needs at least one field to change, e.g. custom_id=c-42.")
        return self.ctx.admin("PATCH", f"/consumers/{segment(consumer)}", json_body=fields, expected=(200,))

    @keyword
    def delete_consumer(self, consumer: str, *, missing_ok: bool = False) -> None:
        """Deletes consumer ``consumer`` with its credentials and ACL groups (Kong cascades)."""
        expected = (204, 200, 404) if missing_ok else (204, 200)
        self.ctx.admin("DELETE", f"/consumers/{segment(consumer)}", expected=expected)
