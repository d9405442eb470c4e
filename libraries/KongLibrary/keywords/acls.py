"""Keywords for ACL groups: which consumers the ``acl`` plugin lets through."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from assertionengine import AssertionOperator
from robotlibcore import keyword

from KongLibrary.context import segment
from KongLibrary.keywords.base import KongComponent, Tags


class AclKeywords(KongComponent):
    @keyword(name="Add Consumer To ACL Group")
    def add_consumer_to_acl_group(self, consumer: str, group: str, *, tags: Tags = None) -> dict[str, Any]:
        """Puts consumer ``consumer`` (id or username) in ACL group ``group``; returns the ACL entry.

        | `Add Consumer To ACL Group` | acme | sms-senders |
        | `Add Plugin` | acl | service=sms | config=${{ {'allow': ['sms-senders']} }} |
        """
        body = self._entity({"group": group}, tags)
        return self.ctx.admin("POST", f"/consumers/{segment(consumer)}/acls", json_body=body, expected=(201, 200))

    @keyword(name="Get Consumer ACL Groups")
    def get_consumer_acl_groups(
        self,
        consumer: str,
        assertion_operator: AssertionOperator | None = None,
        expected: Any = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> list[str]:
        """Returns the names of consumer ``consumer``'s ACL groups, optionally asserting them.

        | ${groups}= | `Get Consumer ACL Groups` | acme |
        | `Get Consumer ACL Groups` | acme | contains | sms-senders |
        """

        def read() -> list[str]:
            return [str(entry.get("group")) for entry in self._entries(consumer)]

        label = message or f"ACL groups of consumer '{consumer}'"
        return self._assert(read, assertion_operator, expected, timeout, label)

    @keyword(name="Remove Consumer From ACL Group")
    def remove_consumer_from_acl_group(self, consumer: str, group: str) -> None:
        """Takes consumer ``consumer`` out of ACL group ``group``; fails naming its groups if it is not in it."""
        entries = self._entries(consumer)
        matching = [entry for entry in entries if entry.get("group") == group]
        if not matching:
            groups = ", ".join(sorted(str(entry.get("group")) for entry in entries)) or "none"
            raise AssertionError(
                f"Consumer '{consumer}' should have been in ACL group '{group}' but it is not. Its groups: {groups}."
            )
        for entry in matching:
            self.ctx.admin("DELETE", f"/consumers/{segment(consumer)}/acls/{segment(entry['id'])}", expected=(204, 200))

    def _entries(self, consumer: str) -> list[dict[str, Any]]:
        return self.ctx.list_all(f"/consumers/{segment(consumer)}/acls")
