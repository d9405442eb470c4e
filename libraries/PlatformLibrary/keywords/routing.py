"""Keywords for routing rules (prefix to trunk, user or application) and dynamic caller IDs."""

from __future__ import annotations

from typing import Any, Literal

from robotlibcore import keyword

from PlatformLibrary.keywords.base import PlatformComponent, compact, listing

TargetType = Literal["trunk", "user", "application"]
TARGET_FIELD = {"trunk": "trunk_id", "user": "user", "application": "uri"}


class RoutingKeywords(PlatformComponent):
    @keyword
    def create_routing_rule(
        self, prefix: str, target_type: TargetType, target: str | int, *, priority: int = 100
    ) -> dict[str, Any]:
        """Routes numbers starting with ``prefix`` to ``target``: a trunk id, a SIP user or an application URI.

        Among rules with the same prefix the lowest ``priority`` is in force (``${rule}[active]``); the
        platform pushes it to the SIP proxies' ``routes`` table before it answers.

        | ${rule}= | `Create Routing Rule` | 25420 | trunk | ${trunk}[id] |
        | `Create Routing Rule` | 25421 | user | alice | priority=10 |
        | `Create Routing Rule` | 800 | application | sip:ivr@apps.example.com |
        """
        field = TARGET_FIELD[target_type]
        value: str | int = int(target) if target_type == "trunk" else str(target)
        body = {"prefix": str(prefix), "target_type": target_type, field: value, "priority": priority}
        rule: dict[str, Any] = self.ctx.request("POST", "/routing-rules", json_body=body, expected=(201,))
        return rule

    @keyword
    def get_routing_rules(self, prefix: str | None = None) -> list[dict[str, Any]]:
        """Returns the account's routing rules (of one ``prefix`` when given), by prefix and priority."""
        return listing(self.ctx.request("GET", "/routing-rules", params={"prefix": prefix}, expected=(200,)))

    @keyword
    def get_routing_rule(self, rule_id: int) -> dict[str, Any]:
        """Returns routing rule ``rule_id`` with its ``target`` URI and whether it is ``active``."""
        rule: dict[str, Any] = self.ctx.request("GET", f"/routing-rules/{rule_id}", expected=(200,))
        return rule

    @keyword
    def update_routing_rule(self, rule_id: int, **fields: Any) -> dict[str, Any]:
        """Changes a rule's ``priority`` or target (``target_type`` with ``trunk_id``, ``user`` or ``uri``).

        | `Update Routing Rule` | ${rule}[id] | priority=${5} |
        | `Update Routing Rule` | ${rule}[id] | target_type=user | user=bob |
        """
        if not fields:
            raise ValueError("Update Routing Rule needs at least one field, e.g. priority=${5}.")
        rule: dict[str, Any] = self.ctx.request("PATCH", f"/routing-rules/{rule_id}", json_body=fields, expected=(200,))
        return rule

    @keyword
    def delete_routing_rule(self, rule_id: int) -> None:
        """Deletes a rule; the next rule of its prefix comes into force, or the prefix is unrouted."""
        self.ctx.request("DELETE", f"/routing-rules/{rule_id}", expected=(204,))

    # --- dynamic caller ID ---------------------------------------------------------------------------
    @keyword(name="Set Caller ID")
    def set_caller_id(self, number: str, *, trunk_id: int | None = None, user: str | None = None) -> dict[str, Any]:
        """Sets the number presented on outbound calls of a ``from_pool`` trunk or of a SIP ``user``.

        Creates the caller ID, or changes the one the trunk or user already has. A trunk's number must be in
        its ``caller_id_pool``; a user's must be one of the account's numbers.

        | `Set Caller ID` | +254711000003 | trunk_id=${trunk}[id] |
        | `Set Caller ID` | +254711000001 | user=alice |
        """
        if (trunk_id is None) == (user is None):
            raise ValueError("Set Caller ID needs exactly one of trunk_id= or user=.")
        existing = self._caller_id_of(trunk_id, user)
        if existing is not None:
            entry: dict[str, Any] = self.ctx.request(
                "PATCH", f"/caller-ids/{existing['id']}", json_body={"number": number}, expected=(200,)
            )
            return entry
        body = compact({"trunk_id": trunk_id, "user": user, "number": number})
        entry = self.ctx.request("POST", "/caller-ids", json_body=body, expected=(201,))
        return entry

    @keyword(name="Get Caller IDs")
    def get_caller_ids(self) -> list[dict[str, Any]]:
        """Returns the account's dynamic caller IDs (``subject``, ``subject_type``, ``number``)."""
        return listing(self.ctx.request("GET", "/caller-ids", expected=(200,)))

    @keyword(name="Delete Caller ID")
    def delete_caller_id(self, caller_id: int) -> None:
        """Deletes a dynamic caller ID (a trunk falls back to its number, a user to its own)."""
        self.ctx.request("DELETE", f"/caller-ids/{caller_id}", expected=(204,))

    def _caller_id_of(self, trunk_id: int | None, user: str | None) -> dict[str, Any] | None:
        for entry in self.get_caller_ids():
            if (trunk_id is not None and entry.get("trunk_id") == int(trunk_id)) or (
                user is not None and entry.get("subject_type") == "user" and entry.get("subject") == user
            ):
                return entry
        return None
