"""The proxy's control surface: Kamailio's JSON-RPC 2.0 over HTTP (``jsonrpcs`` over ``xhttp``), ``POST /RPC``.

Other lab components drive the proxy with the requests they send to a real Kamailio (``lab/platform/kamailio.py``,
``lab/voiceapps/rpc.py``); the answers are those Kamailio 5.6 gives, measured against the real-stack profile
(``realstack/voice``), down to the codes and texts of the errors:

==================  ===================================  ============================================================
method              params                               result / errors
==================  ===================================  ============================================================
``htable.sets``     table, key, value                    ``"Ok. Key set to new value."``
``htable.get``      table, key                           ``{"item": {"name", "value", "flags": 2, "expire": "NEVER"}}``
                                                         500 "Key name doesn't exist in htable."
``htable.delete``   table, key                           ``"Ok. Key deleted."``; 404 "Key not found in htable."
``htable.dump``     table                                ``[{"entry": slot, "size": n, "slot": [{"name", "value",
                                                         "type": "str"}]}]`` ordered by Kamailio's hash slot
(any htable.*)      an unknown table                     500 "No such htable"; missing params: 500 "Not enough
                                                         parameters (...)"
``dlg.list``        none                                 the proxy's dialogs (`lab.sip.proxy`)
``dlg.end_dlg``     h_entry, h_id                        ``{}``; 404 "Dialog not found"; 500 "Invalid parameters"
``telco.transfer``  call_id, target URI                  ``{"call-id", "refer-to", "to", "cseq"}`` once the REFER is
                                                         sent; 404 "Dialog not found", 500 "Dialog not confirmed",
                                                         500 "Invalid parameters" (the lab's extension)
anything else                                            500 "Method Not Found" (jsonrpcs' code, not -32601)
==================  ===================================  ============================================================

The HTTP status is the error code when it is one (200 otherwise); a body that is no JSON-RPC request gets
``-32600 Invalid Request`` with HTTP 400 (real Kamailio's config answers it the same way; jsonrpcs alone would
close the connection). A request without ``id`` is answered without ``id``, as jsonrpcs does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from lab.rtprelay.httpd import HEAD_TIMEOUT, JsonHttpServer, Route

log = logging.getLogger("lab.sip.control")

TABLES = ("fwd", "routes", "trunks", "cli")
HTABLE_SIZE = 8  # modparam("htable", "htable", "fwd=>size=8;"): 2^8 slots, as in kamailio.cfg.template
MAX_BODY = 64 * 1024
CALL_ID = re.compile(r"^[-A-Za-z0-9_.!%*+~()<>:/?{}@]{1,255}$")
TARGET = re.compile(r"^sips?:[-A-Za-z0-9_.!~*()&=+,;?/:@%]{1,255}$")
INVALID_REQUEST = {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}

Method = Callable[[list[Any]], Any]


class JsonRpcError(Exception):
    """A JSON-RPC error object: Kamailio's ``rpc->fault(c, code, text)``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def core_hash(text: str) -> int:
    """Kamailio's ``core_hash`` of one string (``hashes.h``): htable slots and dialog ``h_entry`` come from it."""
    data = text.encode()
    total = 0
    index = 0
    while index <= len(data) - 4:
        value = (data[index] << 24) + (data[index + 1] << 16) + (data[index + 2] << 8) + data[index + 3]
        total = (total + (value ^ (value >> 3))) & 0xFFFFFFFF
        index += 4
    rest = data[index:]
    value = 0
    for byte in rest:
        value = (value << 8) + byte
    total = (total + (value ^ (value >> 3))) & 0xFFFFFFFF
    return ((total + (total >> 11)) + ((total >> 13) + (total >> 23))) & 0xFFFFFFFF


class Htables:
    """The provisioning tables, in memory and empty at start (``htable`` without a database)."""

    def __init__(self, names: tuple[str, ...] = TABLES) -> None:
        self._tables: dict[str, dict[str, str]] = {name: {} for name in names}

    def get(self, table: str, key: str) -> str | None:
        return self._tables[table].get(key)

    def items(self, table: str) -> dict[str, str]:
        return dict(self._tables[table])

    def longest_prefix(self, table: str, number: str) -> tuple[str, str] | None:
        """(prefix, value) of the longest key that ``number`` starts with."""
        entries = self._tables[table]
        for length in range(len(number), 0, -1):
            value = entries.get(number[:length])
            if value is not None:
                return number[:length], value
        return None

    def methods(self) -> dict[str, Method]:
        return {
            "htable.sets": self._sets,
            "htable.get": self._get,
            "htable.delete": self._delete,
            "htable.dump": self._dump,
        }

    def _table(self, params: list[Any], count: int, what: str) -> tuple[dict[str, str], list[str]]:
        """The table named by ``params[0]`` and the first ``count`` params as text; names and keys must be strings,
        a value may also be a number (jsonrpcs' scan of "S")."""
        if len(params) < count or not all(isinstance(item, str) for item in params[: min(count, 2)]):
            raise JsonRpcError(500, f"Not enough parameters {what}")
        if count == 3 and (isinstance(params[2], bool) or not isinstance(params[2], str | int | float)):
            raise JsonRpcError(500, f"Not enough parameters {what}")
        table = self._tables.get(params[0])
        if table is None:
            raise JsonRpcError(500, "No such htable")
        return table, [str(item) for item in params[:count]]

    def _sets(self, params: list[Any]) -> str:
        table, (name, key, value) = self._table(params, 3, "(htable name, key name and value)")
        table[key] = value
        log.info("htable %s: %s set", name, key)
        return "Ok. Key set to new value."

    def _get(self, params: list[Any]) -> dict[str, Any]:
        table, (_, key) = self._table(params, 2, "(htable name and key name)")
        if key not in table:
            raise JsonRpcError(500, "Key name doesn't exist in htable.")
        return {"item": {"name": key, "value": table[key], "flags": 2, "expire": "NEVER"}}

    def _delete(self, params: list[Any]) -> str:
        table, (name, key) = self._table(params, 2, "(htable name and key name)")
        if table.pop(key, None) is None:
            raise JsonRpcError(404, "Key not found in htable.")
        log.info("htable %s: %s deleted", name, key)
        return "Ok. Key deleted."

    def _dump(self, params: list[Any]) -> list[dict[str, Any]]:
        table, _ = self._table(params, 1, "(htable name)")
        slots: dict[int, list[dict[str, str]]] = {}
        for key, value in table.items():
            slot = core_hash(key.lower()) & ((1 << HTABLE_SIZE) - 1)
            slots.setdefault(slot, []).append({"name": key, "value": value, "type": "str"})
        return [{"entry": slot, "size": len(items), "slot": items} for slot, items in sorted(slots.items())]


def dispatch(methods: dict[str, Method], body: bytes) -> tuple[int, Any]:
    """One JSON-RPC request body -> (HTTP status, answer), as jsonrpcs answers it."""
    try:
        request = json.loads(body)
    except ValueError:
        return 400, INVALID_REQUEST
    if not isinstance(request, dict) or not isinstance(request.get("method"), str) or not request["method"]:
        return 400, INVALID_REQUEST
    params = request.get("params", [])
    if isinstance(params, dict):
        params = list(params.values())
    elif not isinstance(params, list):
        params = [params]
    answer: dict[str, Any] = {"jsonrpc": "2.0"}
    status = 200
    handler = methods.get(request["method"])
    try:
        if handler is None:
            raise JsonRpcError(500, "Method Not Found")
        answer["result"] = handler(params)
    except JsonRpcError as fault:
        answer["error"] = {"code": fault.code, "message": fault.message}
        status = fault.code if 100 <= fault.code < 600 else 500
        log.debug("JSON-RPC %s: error %d %s", request["method"], fault.code, fault.message)
    if "id" in request:
        answer["id"] = request["id"]
    return status, answer


class ControlServer(JsonHttpServer):
    """The proxy's HTTP endpoint: the read-only GET routes and ``POST /RPC`` (JSON-RPC 2.0)."""

    def __init__(self, host: str, port: int, routes: dict[str, Route], methods: dict[str, Method]) -> None:
        super().__init__(host, port, routes)
        self.methods = methods

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            if not head.startswith(b"POST "):
                status, value = self._dispatch(head)
                await self._respond(writer, status, value, head.startswith(b"HEAD "))
                return
            status, value = await self._post(reader, head)
            await self._respond(writer, status, value, False)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except Exception:  # a bug in a route must not take the server down
            log.exception("HTTP request failed")
            with contextlib.suppress(Exception):
                await self._respond(writer, 500, {"error": "internal error"}, False)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _post(self, reader: asyncio.StreamReader, head: bytes) -> tuple[int, Any]:
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split()[1] if len(lines[0].split()) == 3 else ""
        if urllib.parse.urlsplit(target).path.rstrip("/") != "/RPC":
            return 404, {"error": f"no such path {target}; JSON-RPC is POST /RPC"}
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length > MAX_BODY:
            return 413, {"error": f"a JSON-RPC request is at most {MAX_BODY} bytes"}
        body = await asyncio.wait_for(reader.readexactly(length), HEAD_TIMEOUT) if length else b""
        return dispatch(self.methods, body)
