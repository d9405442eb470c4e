"""What every KongLibrary component shares: the context, request-body building and the retrying getter."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from assertionengine import AssertionOperator
from telco_common import retry_assertion

from KongLibrary.context import KongContext, segment

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
Tags = list[str] | str | None  # a list, or one tag (or comma-separated tags) as text
TAG = re.compile(r"^[\x21-\x2b\x2d\x2e\x30-\x7e]+$")  # printable ASCII without ',' and '/' (Kong's rule)


class KongComponent:
    """A group of keywords over one part of Kong's Admin API or its proxy."""

    def __init__(self, ctx: KongContext) -> None:
        self.ctx = ctx

    def _assert(
        self,
        getter: Callable[[], Any],
        operator: AssertionOperator | None,
        expected: Any,
        timeout: timedelta,
        message: str,
    ) -> Any:
        return retry_assertion(getter, operator, expected, timeout=timeout, message=message)

    def _entity(self, fields: dict[str, Any], tags: Tags) -> dict[str, Any]:
        """A request body: the given fields without ``None`` values, plus the tags (own and default)."""
        body = {key: value for key, value in fields.items() if value is not None}
        merged = self.ctx.with_default_tags(check_tags(tags))
        if merged:
            body["tags"] = merged
        return body

    def _reference(self, collection: str, name_or_id: str) -> dict[str, str]:
        """A foreign key ``{"id": ...}``: an id as given, a name looked up (``GET /{collection}/{name}``)."""
        if is_uuid(name_or_id):
            return {"id": name_or_id}
        return {"id": str(self.ctx.admin("GET", f"/{collection}/{segment(name_or_id)}", expected=(200,))["id"])}


def is_uuid(value: str) -> bool:
    return bool(UUID.match(str(value)))


def check_tags(tags: Tags) -> list[str] | None:
    """Validate tags as Kong does: printable ASCII, no ``,`` or ``/`` (they separate tags in queries).

    Text is read as one tag or comma-separated tags: ``ns-w1`` or ``robot,ns-w1``.
    """
    if tags is None:
        return None
    if isinstance(tags, str):
        tags = [tag.strip() for tag in tags.split(",") if tag.strip()]
    for tag in tags:
        if not TAG.match(str(tag)):
            raise ValueError(
                f"Tag '{tag}' is not valid for Kong: use printable ASCII without spaces, ',' or '/', "
                "e.g. robot-w1-a1b2c3."
            )
    return [str(tag) for tag in tags]


def tags_query(tags: Tags) -> str | None:
    """Kong's ``?tags=`` filter: every given tag must be on the entity (``a,b``)."""
    checked = check_tags(tags)
    return ",".join(checked) if checked else None


def milliseconds(value: timedelta | None) -> int | None:
    return None if value is None else round(value.total_seconds() * 1000)
