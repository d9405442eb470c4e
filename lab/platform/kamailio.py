"""The SIP proxies' control channel: Kamailio-style JSON-RPC 2.0 over HTTP (``jsonrpcs`` + ``xhttp``, path ``/RPC``).

Provisioning is kept in three ``htable`` tables on every proxy, set with ``htable.sets`` (string values) and
removed with ``htable.delete``, which is what Kamailio's ``htable`` module accepts over ``jsonrpcs``:

============  ======================================  ===========================================
table         key                                     value
============  ======================================  ===========================================
``trunks``    the trunk's SIP username                its SIP password (digest auth)
``routes``    a dialled-number prefix                 the target SIP URI (trunk, user, application)
``cli``       a trunk's SIP username, or a SIP user   the number presented on its outbound calls
============  ======================================  ===========================================

Call control uses the ``dialog`` module: ``dlg.list`` (active dialogs) and ``dlg.end_dlg`` with the dialog's
``h_entry`` and ``h_id``. Transfer uses ``telco.transfer`` ``[call_id, target]``, a *lab extension* of the lab's
proxy: Kamailio has no RPC that sends an in-dialog REFER. On real Kamailio it needs either the ``tm`` RPC
``tm.t_uac_start`` with ``["REFER", <caller contact>, ".", ".", <headers>, ""]``, or a ``jsonrpcs``-called
route that fills ``$uac_req(method)="REFER"``, ``$uac_req(ruri)`` (the transferee's contact from ``dlg.list``),
``$uac_req(furi)``/``$uac_req(turi)`` (the dialog's URIs *with* the dialog's tags), ``$uac_req(callid)`` and
``$uac_req(hdrs)`` (``CSeq``, ``Refer-To: <target>``, ``Referred-By``, ``Contact``, the route set as ``Route``)
and calls the ``uac`` module's ``uac_req_send()``. (The ``uac`` module exports no ``uac.uac_req`` RPC.)
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from lab.billing.schemas import format_timestamp

log = logging.getLogger("lab.platform.voice")

TABLES = ("trunks", "routes", "cli")
DIALOG_STATES = {1: "trying", 2: "ringing", 3: "answered", 4: "answered", 5: "ended"}


class RpcError(Exception):
    """A JSON-RPC call failed: the proxy did not answer, answered with an error, or with something else."""

    def __init__(self, url: str, method: str, reason: str) -> None:
        super().__init__(f"SIP proxy {url} failed {method}: {reason}")
        self.url = url
        self.method = method
        self.reason = reason


@dataclass(frozen=True)
class HtableChange:
    """One key of one table going from ``before`` to ``after`` (``None``: absent)."""

    table: str
    key: str
    before: str | None
    after: str | None

    def call(self) -> tuple[str, list[Any]]:
        """The JSON-RPC call that makes the change."""
        return _set_or_delete(self.table, self.key, self.after)

    def undo(self) -> tuple[str, list[Any]]:
        """The JSON-RPC call that takes it back."""
        return _set_or_delete(self.table, self.key, self.before)


def _set_or_delete(table: str, key: str, value: str | None) -> tuple[str, list[Any]]:
    if value is None:
        return "htable.delete", [table, key]
    return "htable.sets", [table, key, value]


class KamailioRpc:
    """JSON-RPC to every configured proxy; ``push`` applies htable changes to all of them or to none."""

    def __init__(self, urls: Sequence[str], timeout: float) -> None:
        self.urls = list(urls)
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._session = requests.Session()
        self.push_lock = threading.Lock()  # provisioning changes reach the proxies in one order

    def call(self, url: str, method: str, params: list[Any]) -> Any:
        """One JSON-RPC 2.0 request; returns ``result`` or raises `RpcError` quoting the proxy."""
        payload = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}
        try:
            response = self._session.post(url, json=payload, timeout=self.timeout)
        except requests.Timeout:
            raise RpcError(url, method, f"no answer within {self.timeout:g} s") from None
        except requests.RequestException as error:
            raise RpcError(url, method, _reason(error)) from None
        try:
            body = response.json()
        except ValueError:
            raise RpcError(url, method, f"HTTP {response.status_code}, not a JSON-RPC answer") from None
        if not isinstance(body, dict):
            raise RpcError(url, method, "the answer is not a JSON-RPC object")
        failure = body.get("error")
        if failure is not None:
            message = failure.get("message", failure) if isinstance(failure, dict) else failure
            code = f"{failure.get('code')} " if isinstance(failure, dict) and "code" in failure else ""
            raise RpcError(url, method, f"error {code}{message}".strip())
        if response.status_code >= 400:
            raise RpcError(url, method, f"HTTP {response.status_code}")
        log.debug("%s %s %s -> %s", url, method, params if method != "htable.sets" else params[:2], body)
        return body.get("result")

    def push(self, changes: Sequence[HtableChange]) -> None:
        """Apply ``changes`` on every proxy in order; on a failure undo what was applied and raise `RpcError`.

        The caller holds ``push_lock`` and rolls its database transaction back when this raises.
        """
        effective = [change for change in changes if change.before != change.after]
        if not effective:
            return
        applied: list[tuple[str, HtableChange]] = []
        for url in self.urls:
            for change in effective:
                method, params = change.call()
                try:
                    self.call(url, method, params)
                except RpcError:
                    self._undo(applied)
                    raise
                applied.append((url, change))
        log.info("pushed %d htable change(s) to %d proxy(ies)", len(effective), len(self.urls))

    def _undo(self, applied: list[tuple[str, HtableChange]]) -> None:
        for url, change in reversed(applied):
            method, params = change.undo()
            try:
                self.call(url, method, params)
            except RpcError as error:
                log.error("could not undo %s %s on %s: %s", method, params[:2], url, error.reason)

    def list_dialogs(self) -> tuple[list[dict[str, Any]], list[RpcError]]:
        """``dlg.list`` on every proxy: the dialogs (each with ``proxy`` added) and the proxies that failed."""
        dialogs: list[dict[str, Any]] = []
        failures: list[RpcError] = []
        for url in self.urls:
            try:
                result = self.call(url, "dlg.list", [])
            except RpcError as error:
                failures.append(error)
                continue
            for item in _dialog_items(result):
                dialogs.append({**item, "proxy": url})
        return dialogs, failures

    def close(self) -> None:
        self._session.close()


def _dialog_items(result: Any) -> list[dict[str, Any]]:
    """``dlg.list`` answers a list of dialog structs (some versions wrap it in ``{"dialogs": [...]}``)."""
    if isinstance(result, dict):
        result = result.get("dialogs", result.get("dialog", [result] if "h_entry" in result else []))
    return [item for item in result or [] if isinstance(item, dict)] if isinstance(result, list) else []


def dialog_view(dialog: dict[str, Any]) -> dict[str, Any]:
    """A ``dlg.list`` struct as the API shows a call."""
    state: Any = dialog.get("state")
    try:
        state_name = DIALOG_STATES.get(int(state), str(state))
    except (TypeError, ValueError):
        state_name = str(state)
    return {
        "call_id": str(dialog.get("call-id", "")),
        "from": str(dialog.get("from_uri", "")),
        "to": str(dialog.get("to_uri", "")),
        "state": state_name,
        "start": _timestamp(dialog.get("start_ts")) or _timestamp(dialog.get("init_ts")),
        "proxy": dialog.get("proxy"),
    }


def _timestamp(value: Any) -> str | None:
    """Kamailio's epoch seconds as the API's ISO 8601 UTC text (``None`` for 0 or nothing)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return format_timestamp(datetime.fromtimestamp(number, UTC)) if number > 0 else None


def _reason(error: Exception) -> str:
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if marker in text:
            return marker
    return text[:200]
