"""Keywords for call detail records of ended calls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from assertionengine import AssertionOperator
from robotlibcore import keyword

from PlatformLibrary.keywords.base import PlatformComponent, listing


class CdrKeywords(PlatformComponent):
    @keyword(name="Get CDRs")
    def get_cdrs(
        self,
        *,
        call_id: str | None = None,
        customer: str | None = None,
        caller: str | None = None,
        callee: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Returns the account's CDRs matching every given filter, oldest first.

        ``customer`` is a trunk of the account (by name) or a SIP user or number, matched as caller or callee;
        ``caller``/``callee`` match the caller and the number dialled; ``since``/``until`` the call's start.

        | ${cdrs}= | `Get CDRs` | customer=${trunk}[name] | since=${started} |
        """
        params = {
            "call_id": call_id,
            "customer": customer,
            "from": caller,
            "to": callee,
            "since": _iso(since),
            "until": _iso(until),
        }
        return listing(self.ctx.request("GET", "/cdrs", params=params, expected=(200,)))

    @keyword(name="Get CDR")
    def get_cdr(self, call_id: str, *, timeout: timedelta = timedelta(seconds=10)) -> dict[str, Any]:
        """Returns the CDR of call ``call_id``, waiting up to ``timeout`` for the proxy to write it.

        | ${cdr}= | `Get CDR` | ${call_id} | timeout=10s |
        | Should Be Equal | ${cdr}[disposition] | ANSWERED |
        """
        found = self._assert(
            lambda: self.get_cdrs(call_id=call_id),
            AssertionOperator["!="],
            [],
            timeout,
            f"CDRs of call '{call_id}'",
        )
        return dict(found[0])

    @keyword(name="Get CDR Field")
    def get_cdr_field(
        self,
        call_id: str,
        field: str,
        assertion_operator: AssertionOperator | None = None,
        expected: Any = None,
        *,
        timeout: timedelta = timedelta(seconds=10),
        message: str = "",
    ) -> Any:
        """Returns one field of call ``call_id``'s CDR (``disposition``, ``duration_s``, ``sip_code``...),
        optionally asserting it; waits up to ``timeout`` for the CDR.

        | `Get CDR Field` | ${call_id} | disposition | == | ANSWERED |
        | `Get CDR Field` | ${call_id} | duration_s | >= | 2 |
        """
        cdr = self.get_cdr(call_id, timeout=timeout)
        if field not in cdr:
            raise ValueError(f"A CDR has no field '{field}'. It has: {', '.join(cdr)}.")
        label = message or f"CDR field '{field}' of call '{call_id}'"
        return self._assert(lambda: self.get_cdr(call_id)[field], assertion_operator, expected, timedelta(0), label)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
