"""Call forwarding through the proxy's Kamailio-style JSON-RPC (``jsonrpcs`` over HTTP, as real Kamailio takes it).

``htable.sets fwd <user> <target>`` makes the proxy send calls for ``<user>`` to ``<target>``;
``htable.delete fwd <user>`` stops it. The same requests work against the lab proxy and real Kamailio.
"""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from typing import Any

FORWARDING_TABLE = "fwd"
_ids = itertools.count(1)


class RpcError(RuntimeError):
    """The JSON-RPC server could not be reached or answered with an error object."""


def call(url: str, method: str, params: list[Any], *, timeout: float = 5.0) -> Any:
    """One JSON-RPC 2.0 request; returns ``result`` or raises `RpcError` naming the method and the reason."""
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": next(_ids)}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        # Kamailio's xhttp + jsonrpcs answers an error with its code as the HTTP status and the JSON-RPC body.
        _raise_for(method, _json_or_none(error.read()))
        raise RpcError(f"{method} at {url} answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise RpcError(f"{method}: cannot reach {url} ({getattr(error, 'reason', error)})") from None
    try:
        answer = json.loads(raw or b"null")
    except ValueError:
        raise RpcError(f"{method} at {url} answered something that is not JSON: {raw[:80]!r}") from None
    if not isinstance(answer, dict):
        raise RpcError(f"{method} at {url} answered {answer!r}, not a JSON-RPC object")
    _raise_for(method, answer)
    return answer.get("result")


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _raise_for(method: str, answer: Any) -> None:
    """Raise `RpcError` when ``answer`` is a JSON-RPC error object."""
    fault = answer.get("error") if isinstance(answer, dict) else None
    if fault:
        message = fault.get("message", fault) if isinstance(fault, dict) else fault
        code = fault.get("code") if isinstance(fault, dict) else None
        raise RpcError(f"{method} failed: {message}" + (f" (code {code})" if code is not None else ""))


def set_forwarding(url: str, user: str, target: str, *, timeout: float = 5.0) -> Any:
    return call(url, "htable.sets", [FORWARDING_TABLE, user, target], timeout=timeout)


def clear_forwarding(url: str, user: str, *, timeout: float = 5.0) -> Any:
    """Delete the entry; a missing entry is not an error (the user's calls are not forwarded either way)."""
    try:
        return call(url, "htable.delete", [FORWARDING_TABLE, user], timeout=timeout)
    except RpcError as error:
        text = str(error).lower()
        if "failed:" in text and any(word in text for word in ("not found", "no such", "doesn't exist", "not exist")):
            return None
        raise
