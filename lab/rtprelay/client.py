"""The proxy's side of the relay control protocol (`lab.rtprelay.relay`): asyncio, JSON over UDP.

Several relays may be configured: a new call goes to the first one not marked dead; a relay that does not
answer within ``timeout`` (after ``retries`` repeats of the same cookie) is marked dead for ``disable_for``
seconds, as Kamailio's rtpengine module does. A call stays on the relay that took its first offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("lab.rtprelay.client")

Addr = tuple[str, int]


class RelayError(Exception):
    """No relay answered, or the relay refused the request; the caller passes the SDP through unanchored."""


@dataclass(frozen=True)
class Anchor:
    """What the relay gave: the address and the per-stream ports to write into the forwarded SDP."""

    relay: Addr
    address: str
    ports: list[int]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: RelayClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.client._received(data)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: the relay is down; the timeout says so
        log.debug("relay control socket: %s", exc)


class RelayClient:
    def __init__(
        self, relays: list[Addr], *, timeout: float = 1.0, retries: int = 1, disable_for: float = 10.0
    ) -> None:
        if not relays:
            raise ValueError("RelayClient needs at least one relay address")
        self.relays = relays
        self.timeout = timeout
        self.retries = retries
        self.disable_for = disable_for
        self._dead_until: dict[Addr, float] = {}
        self._calls: dict[str, Addr] = {}
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._cookies = itertools.count(1)
        self._prefix = os.urandom(4).hex()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self, host: str = "127.0.0.1") -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(host, 0))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def relay_of(self, call_id: str) -> Addr | None:
        return self._calls.get(call_id)

    def status(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [
            {"relay": f"{host}:{port}", "alive": self._dead_until.get((host, port), 0.0) <= now}
            for host, port in self.relays
        ]

    async def offer(self, call_id: str, sender_tag: str, recipient_tag: str | None, media: list[Addr]) -> Anchor:
        """Anchor an SDP sent by ``sender_tag``'s party; a new call picks a live relay."""
        return await self._anchor("offer", call_id, sender_tag, recipient_tag, media)

    async def answer(self, call_id: str, sender_tag: str, recipient_tag: str | None, media: list[Addr]) -> Anchor:
        return await self._anchor("answer", call_id, sender_tag, recipient_tag, media)

    async def delete(self, call_id: str) -> dict[str, Any] | None:
        """Free the call's ports; returns the relay's final counters, or None when it could not."""
        relay = self._calls.pop(call_id, None)
        if relay is None:
            return None
        try:
            answer = await self._request(relay, {"command": "delete", "call_id": call_id})
        except RelayError as error:
            log.warning("relay %s:%d: delete of %s failed: %s", *relay, call_id, error)
            return None
        session = answer.get("session")
        return session if isinstance(session, dict) else None

    async def _anchor(
        self, command: str, call_id: str, sender_tag: str, recipient_tag: str | None, media: list[Addr]
    ) -> Anchor:
        request = {
            "command": command,
            "call_id": call_id,
            "from_tag": sender_tag,
            "to_tag": recipient_tag,
            "media": [{"address": address, "port": port} for address, port in media],
        }
        pinned = self._calls.get(call_id)
        if pinned is not None:
            candidates = [pinned]
        elif command == "answer":
            raise RelayError(f"call {call_id} has no relay session (its offer was not anchored)")
        else:
            now = time.monotonic()
            candidates = [relay for relay in self.relays if self._dead_until.get(relay, 0.0) <= now]
            if not candidates:
                raise RelayError("every relay is marked dead (none answered recently)")
        errors = []
        for relay in candidates:
            try:
                answer = await self._request(relay, request)
            except RelayError as error:
                errors.append(f"{relay[0]}:{relay[1]}: {error}")
                continue
            ports = [int(item["port"]) for item in answer.get("media", [])]
            if len(ports) != len(media):
                raise RelayError(f"relay answered {len(ports)} ports for {len(media)} streams")
            self._calls[call_id] = relay
            return Anchor(relay, str(answer["address"]), ports)
        raise RelayError("; ".join(errors))

    async def _request(self, relay: Addr, request: dict[str, Any]) -> dict[str, Any]:
        if self._transport is None:
            raise RelayError("relay client not started")
        cookie = f"{self._prefix}-{next(self._cookies)}"
        data = json.dumps({**request, "cookie": cookie}).encode()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cookie] = future
        try:
            for _ in range(1 + self.retries):
                self._transport.sendto(data, relay)
                with contextlib.suppress(TimeoutError):
                    answer = await asyncio.wait_for(asyncio.shield(future), self.timeout)
                    break
            else:
                self._dead_until[relay] = time.monotonic() + self.disable_for
                log.warning(
                    "relay %s:%d did not answer %s within %.1f s x %d: marked dead for %.0f s",
                    *relay,
                    request["command"],
                    self.timeout,
                    1 + self.retries,
                    self.disable_for,
                )
                raise RelayError("no answer")
        finally:
            self._pending.pop(cookie, None)
            if not future.done():
                future.cancel()
        if answer.get("result") not in ("ok", "pong"):
            raise RelayError(str(answer.get("error-reason", answer)))
        return answer

    def _received(self, data: bytes) -> None:
        try:
            answer = json.loads(data)
            future = self._pending.get(str(answer.get("cookie")))
        except (ValueError, AttributeError):
            return
        if future is not None and not future.done():
            future.set_result(answer)
