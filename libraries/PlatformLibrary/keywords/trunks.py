"""Keywords for SIP trunks: provisioning, credentials, caller-ID policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from assertionengine import AssertionOperator
from robot.api.types import Secret
from robotlibcore import keyword

from PlatformLibrary.keywords.base import PlatformComponent, compact, listing

CallerIdPolicy = Literal["passthrough", "fixed", "from_pool"]


class TrunkKeywords(PlatformComponent):
    @keyword
    def create_trunk(
        self,
        name: str,
        number: str,
        *,
        caller_id_policy: CallerIdPolicy = "fixed",
        allowed_ips: list[str] | None = None,
        caller_id_pool: list[str] | None = None,
    ) -> dict[str, Any]:
        """Provisions a SIP trunk and returns it with its generated SIP credentials (``${trunk}[sip]``).

        ``number`` is the trunk's E.164 number. The password is in ``${trunk}[sip][password]`` only in this
        answer (and after `Rotate Trunk Password`), as a Robot ``Secret`` (logged as ``<secret>``): pass it to
        keywords that take a ``Secret``, or its text ``${trunk['sip']['password'].value}`` to those that do
        not. The account must have completed onboarding, else the platform answers 403 naming ``account``.

        | ${trunk}= | `Create Trunk` | main | +254711000001 | allowed_ips=${{ ['203.0.113.7'] }} |
        | ${user}= | Set Variable | ${trunk}[sip][username] |
        """
        body = compact(
            {
                "name": name,
                "number": number,
                "caller_id_policy": caller_id_policy,
                "allowed_ips": allowed_ips,
                "caller_id_pool": caller_id_pool,
            }
        )
        return self._with_secret_password(self.ctx.request("POST", "/trunks", json_body=body, expected=(201,)))

    @keyword
    def get_trunk(self, trunk_id: int) -> dict[str, Any]:
        """Returns trunk ``trunk_id`` (without its password)."""
        trunk: dict[str, Any] = self.ctx.request("GET", f"/trunks/{trunk_id}", expected=(200,))
        return trunk

    @keyword
    def get_trunks(self) -> list[dict[str, Any]]:
        """Returns the account's trunks, oldest first."""
        return listing(self.ctx.request("GET", "/trunks", expected=(200,)))

    @keyword
    def update_trunk(self, trunk_id: int, **fields: Any) -> dict[str, Any]:
        """Changes the given fields of a trunk: ``name``, ``number``, ``caller_id_policy``, ``allowed_ips``,
        ``caller_id_pool``. The platform pushes the change to every SIP proxy before it answers.

        | `Update Trunk` | ${trunk}[id] | caller_id_policy=passthrough |
        """
        if not fields:
            raise ValueError("Update Trunk needs at least one field to change, e.g. caller_id_policy=fixed.")
        trunk: dict[str, Any] = self.ctx.request("PATCH", f"/trunks/{trunk_id}", json_body=fields, expected=(200,))
        return trunk

    @keyword
    def rotate_trunk_password(self, trunk_id: int) -> dict[str, Any]:
        """Gives the trunk a new SIP password and returns the trunk with it (masked in the log)."""
        return self._with_secret_password(self.ctx.request("POST", f"/trunks/{trunk_id}/credentials", expected=(200,)))

    @keyword
    def delete_trunk(self, trunk_id: int) -> None:
        """Deletes a trunk; its credentials and caller ID are removed from the SIP proxies."""
        self.ctx.request("DELETE", f"/trunks/{trunk_id}", expected=(204,))

    @keyword
    def get_trunk_caller_id(
        self,
        trunk_id: int,
        assertion_operator: AssertionOperator | None = None,
        expected: str | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str | None:
        """Returns the number the trunk's outbound calls present now (``None`` when it passes the caller's through).

        | `Get Trunk Caller ID` | ${trunk}[id] | == | +254711000002 |
        """
        label = message or f"Caller ID of trunk {trunk_id}"
        return self._assert(lambda: self.get_trunk(trunk_id)["caller_id"], assertion_operator, expected, timeout, label)

    def _with_secret_password(self, trunk: dict[str, Any]) -> dict[str, Any]:
        sip = trunk.get("sip") or {}
        if sip.get("password"):
            self.ctx.add_secret(sip["password"])
            trunk["sip"] = {**sip, "password": Secret(sip["password"])}
        return trunk
