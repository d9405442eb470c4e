"""The media relay: sessions of two legs, each with an RTP/RTCP socket pair per media stream, and the control server.

A call is a `Session` with a *caller* leg and a *callee* leg. Each leg owns, per media stream (SDP ``m=`` line),
a socket pair that **faces that party**: the party sends its RTP to the leg's even port (RTCP to the odd port
above) and the relay sends the other party's media to it from the same socket (symmetric RTP). A packet arriving
on a leg's socket is sent out of the other leg's socket of the same stream to the other party's address: the
address the party's first packet came from (*latched*, like rtpengine) or, until then, the address its SDP
advertised. The address is re-learnt when a new SDP for that party changes it.

Control protocol (JSON over UDP on ``control_port``; each request an object, each answer echoes ``cookie``;
a request repeated with the same cookie within 30 s gets the same answer, so retries are safe)::

    {"cookie": "c1", "command": "offer", "call_id": "abc", "from_tag": "t1", "to_tag": null,
     "media": [{"address": "127.0.0.1", "port": 4000}]}
    -> {"cookie": "c1", "result": "ok", "address": "127.0.0.1", "media": [{"port": 16002}], "port": 16002}

``offer`` and ``answer`` take the tags by *who sent the SDP*: ``from_tag`` is the SDP's sender, ``to_tag`` its
recipient (may be null in an initial offer). The relay records the sender's addresses and answers with the ports
of the socket pairs facing the recipient, which the proxy writes into the SDP it forwards. ``offer`` creates the
session when it is new (the sender becomes the caller leg); ``answer`` needs an existing session. A shortcut
``"address"``/``"port"`` instead of ``"media"`` stands for one stream. Other commands: ``delete`` (call_id; frees
the ports, answers the final counters), ``query`` (call_id), ``list``, ``ping`` (answers ``"result": "pong"``).
Errors answer ``{"result": "error", "error-reason": "..."}``.

Differences from rtpengine: tags are sender/recipient rather than the From/To tags of the message; no codecs,
transcoding, SRTP, ICE or recording; a deleted session frees its ports at once (no ``delete-delay``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lab.rtprelay.config import RelayConfig
from lab.rtprelay.httpd import JsonHttpServer, Query

log = logging.getLogger("lab.rtprelay")

Addr = tuple[str, int]
COOKIE_TTL = 30.0
MAX_CONTROL = 64 * 1024
MAX_STREAMS = 8
COUNTERS = (
    "offers",
    "answers",
    "deletes",
    "timeouts",
    "packets_relayed",
    "bytes_relayed",
    "packets_dropped",
    "allocation_failures",
    "control_errors",
    "control_retransmissions",
)


class ControlError(ValueError):
    """A control request the relay cannot carry out; its text goes back as ``error-reason``."""


class _Media(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay, stream: Stream, rtcp: bool) -> None:
        self.relay = relay
        self.stream = stream
        self.rtcp = rtcp

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.relay.media_in(self.stream, self.rtcp, data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable from a party that went away
        log.debug("media socket %d: %s", self.stream.port, exc)


@dataclass(eq=False)
class Stream:
    """One media stream of one leg: the socket pair facing that leg's party and what is known of the party."""

    leg: Leg
    index: int
    port: int
    rtp: asyncio.DatagramTransport | None = None
    rtcp: asyncio.DatagramTransport | None = None
    advertised: Addr | None = None
    latched_rtp: Addr | None = None
    latched_rtcp: Addr | None = None

    def target(self, rtcp: bool) -> Addr | None:
        """Where the party receives: the latched source, else the SDP's address (RTCP: port + 1)."""
        latched = self.latched_rtcp if rtcp else self.latched_rtp
        if latched is not None:
            return latched
        if (
            self.advertised is None
            or self.advertised[1] == 0
            or ipaddress.ip_address(self.advertised[0]).is_unspecified
        ):
            return None
        return (self.advertised[0], self.advertised[1] + (1 if rtcp else 0))

    def close(self) -> None:
        for transport in (self.rtp, self.rtcp):
            if transport is not None:
                transport.close()
        self.rtp = self.rtcp = None


@dataclass(eq=False)
class Leg:
    session: Session
    role: str
    tag: str | None = None
    streams: list[Stream] = field(default_factory=list)
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0

    def describe(self) -> dict[str, Any]:
        def text(addr: Addr | None) -> str | None:
            return f"{addr[0]}:{addr[1]}" if addr else None

        return {
            "role": self.role,
            "tag": self.tag,
            "ports": [stream.port for stream in self.streams],
            "advertised": [text(stream.advertised) for stream in self.streams],
            "latched": [text(stream.latched_rtp) for stream in self.streams],
            "packets_in": self.packets_in,
            "bytes_in": self.bytes_in,
            "packets_out": self.packets_out,
            "bytes_out": self.bytes_out,
        }


@dataclass(eq=False)
class Session:
    call_id: str
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_activity: float = field(default_factory=time.monotonic)
    dropped: int = 0
    caller: Leg = field(init=False)
    callee: Leg = field(init=False)

    def __post_init__(self) -> None:
        self.caller = Leg(self, "caller")
        self.callee = Leg(self, "callee")

    def leg_for(self, tag: str) -> Leg:
        """The caller leg for the caller's tag; any other tag is the callee's (a new one rebinds it: serial forking)."""
        if self.caller.tag is None:
            self.caller.tag = tag
        if tag == self.caller.tag:
            return self.caller
        if self.callee.tag != tag:
            self.callee.tag = tag
        return self.callee

    def other(self, leg: Leg) -> Leg:
        return self.callee if leg is self.caller else self.caller

    def close(self) -> None:
        for leg in (self.caller, self.callee):
            for stream in leg.streams:
                stream.close()

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "call_id": self.call_id,
            "created": self.created.isoformat(),
            "idle_s": round(now - self.last_activity, 3),
            "legs": [self.caller.describe(), self.callee.describe()],
            "caller_to_callee": {"packets": self.callee.packets_out, "bytes": self.callee.bytes_out},
            "callee_to_caller": {"packets": self.caller.packets_out, "bytes": self.caller.bytes_out},
            "dropped": self.dropped,
        }


class PortPool:
    """Even ports of the configured range, handed out round-robin so a freed port is not reused at once."""

    def __init__(self, first: int, last: int) -> None:
        start = first + (first % 2)
        self._free: collections.deque[int] = collections.deque(range(start, last, 2))
        self.size = len(self._free)

    def take(self) -> int | None:
        return self._free.popleft() if self._free else None

    def give(self, port: int) -> None:
        self._free.append(port)

    @property
    def in_use(self) -> int:
        return self.size - len(self._free)


class Relay:
    """The relay process: control server, media sockets, HTTP introspection and the idle sweeper."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.ports = PortPool(config.port_min, config.port_max)
        self.counters: collections.Counter[str] = collections.Counter(dict.fromkeys(COUNTERS, 0))
        self._lock = asyncio.Lock()
        self._answers: dict[tuple[Addr, str], tuple[float, bytes]] = {}
        self._control: asyncio.DatagramTransport | None = None
        self._http = JsonHttpServer(
            config.host, config.http_port, {"/health": self._health, "/sessions": self._sessions}
        )
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # --- life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._control, _ = await loop.create_datagram_endpoint(
            lambda: _Control(self), local_addr=(self.config.host, self.config.control_port)
        )
        await self._http.start()
        self._sweeper = asyncio.create_task(self._sweep())
        log.info(
            "%s: control udp %s:%d, http %d, media %s ports %d-%d, idle timeout %.0f s",
            self.config.name,
            self.config.host,
            self.config.control_port,
            self.config.http_port,
            self.config.media_address,
            self.config.port_min,
            self.config.port_max,
            self.config.idle_timeout,
        )

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for call_id in list(self.sessions):
            self._delete(call_id)
        if self._control is not None:
            self._control.close()
        await self._http.close()
        log.info("%s: stopped", self.config.name)

    def request_stop(self) -> None:
        self._stop.set()

    async def serve(self) -> None:
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    # --- control ----------------------------------------------------------------------------------------
    def control_received(self, data: bytes, addr: Addr) -> None:
        try:
            request = json.loads(data)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as error:
            self.counters["control_errors"] += 1
            self._send_control({"result": "error", "error-reason": f"malformed request: {error}"}, addr)
            return
        cookie = str(request.get("cookie", ""))
        cached = self._answers.get((addr, cookie)) if cookie else None
        if cached is not None:
            self.counters["control_retransmissions"] += 1
            if self._control is not None:
                self._control.sendto(cached[1], addr)
            return
        task = asyncio.create_task(self._answer(request, cookie, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: dict[str, Any], cookie: str, addr: Addr) -> None:
        async with self._lock:
            try:
                answer = await self.execute(request)
            except ControlError as error:
                self.counters["control_errors"] += 1
                answer = {"result": "error", "error-reason": str(error)}
            except Exception as error:  # never let a request kill the relay
                log.exception("control request %s failed", request.get("command"))
                self.counters["control_errors"] += 1
                answer = {"result": "error", "error-reason": f"internal error: {error}"}
        if cookie:
            answer["cookie"] = cookie
        data = self._send_control(answer, addr)
        if cookie:
            self._answers[(addr, cookie)] = (time.monotonic() + COOKIE_TTL, data)

    def _send_control(self, answer: dict[str, Any], addr: Addr) -> bytes:
        data = json.dumps(answer).encode()
        if self._control is not None:
            self._control.sendto(data, addr)
        return data

    async def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out one control request (see the module docstring) and return the answer."""
        command = request.get("command")
        if command == "ping":
            return {"result": "pong"}
        if command == "list":
            return {"result": "ok", "sessions": [s.describe() for s in self.sessions.values()]}
        call_id = _text(request, "call_id")
        if command in ("offer", "answer"):
            return await self._offer_answer(str(command), call_id, request)
        if command == "delete":
            session = self._delete(call_id)
            if session is None:
                raise ControlError(f"unknown call_id {call_id!r}")
            self.counters["deletes"] += 1
            return {"result": "ok", "session": session.describe()}
        if command == "query":
            found = self.sessions.get(call_id)
            if found is None:
                raise ControlError(f"unknown call_id {call_id!r}")
            return {"result": "ok", "session": found.describe()}
        raise ControlError(f"unknown command {command!r}; use offer, answer, delete, query, list or ping")

    async def _offer_answer(self, command: str, call_id: str, request: dict[str, Any]) -> dict[str, Any]:
        sender_tag = _text(request, "from_tag")
        recipient_tag = request.get("to_tag")
        media = _media(request)
        session = self.sessions.get(call_id)
        created = session is None
        if session is None:
            if command == "answer":
                raise ControlError(f"unknown call_id {call_id!r}: an answer needs an offer first")
            session = self.sessions[call_id] = Session(call_id)
        sender = session.leg_for(sender_tag)
        recipient = session.other(sender)
        if recipient_tag and recipient is session.callee:
            recipient.tag = str(recipient_tag)
        try:
            for leg in (sender, recipient):
                await self._ensure_streams(leg, len(media))
        except ControlError:
            if created:
                self._delete(call_id)
            raise
        for index, (address, port) in enumerate(media):
            stream = sender.streams[index]
            if stream.advertised != (address, port):
                stream.advertised = (address, port)
                stream.latched_rtp = stream.latched_rtcp = None
        session.last_activity = time.monotonic()
        self.counters[f"{command}s"] += 1
        ports = [recipient.streams[index].port if port else 0 for index, (_, port) in enumerate(media)]
        return {
            "result": "ok",
            "address": self.config.media_address,
            "media": [{"port": port} for port in ports],
            "port": ports[0],
        }

    async def _ensure_streams(self, leg: Leg, count: int) -> None:
        while len(leg.streams) < count:
            stream = await self._open_stream(leg)
            if stream is None:
                self.counters["allocation_failures"] += 1
                raise ControlError(f"no free media ports in {self.config.port_min}-{self.config.port_max}")
            leg.streams.append(stream)

    async def _open_stream(self, leg: Leg) -> Stream | None:
        loop = asyncio.get_running_loop()
        for _ in range(self.ports.size):
            port = self.ports.take()
            if port is None:
                return None
            stream = Stream(leg, len(leg.streams), port)
            try:
                stream.rtp, _ = await loop.create_datagram_endpoint(
                    self._protocol(stream, False), local_addr=(self.config.media_address, port)
                )
                stream.rtcp, _ = await loop.create_datagram_endpoint(
                    self._protocol(stream, True), local_addr=(self.config.media_address, port + 1)
                )
            except OSError as error:  # taken by another program: skip it for now
                log.debug("media port %d unavailable: %s", port, error)
                stream.close()
                self.ports.give(port)
                continue
            return stream
        return None

    def _protocol(self, stream: Stream, rtcp: bool) -> Callable[[], _Media]:
        return lambda: _Media(self, stream, rtcp)

    def _delete(self, call_id: str) -> Session | None:
        session = self.sessions.pop(call_id, None)
        if session is None:
            return None
        session.close()
        for leg in (session.caller, session.callee):
            for stream in leg.streams:
                self.ports.give(stream.port)
        log.info(
            "session %s closed: caller->callee %d packets, callee->caller %d packets, %d dropped",
            call_id,
            session.callee.packets_out,
            session.caller.packets_out,
            session.dropped,
        )
        return session

    # --- media ------------------------------------------------------------------------------------------
    def media_in(self, stream: Stream, rtcp: bool, data: bytes, source: Addr) -> None:
        leg = stream.leg
        session = leg.session
        session.last_activity = time.monotonic()
        if rtcp and stream.latched_rtcp is None:
            stream.latched_rtcp = source
        elif not rtcp and stream.latched_rtp is None:
            stream.latched_rtp = source
            log.debug("session %s: %s leg latched to %s:%d", session.call_id, leg.role, *source)
        leg.packets_in += 1
        leg.bytes_in += len(data)
        other = session.other(leg)
        out = other.streams[stream.index] if stream.index < len(other.streams) else None
        target = out.target(rtcp) if out is not None else None
        transport = (out.rtcp if rtcp else out.rtp) if out is not None else None
        if target is None or transport is None:
            session.dropped += 1
            self.counters["packets_dropped"] += 1
            return
        transport.sendto(data, target)
        other.packets_out += 1
        other.bytes_out += len(data)
        self.counters["packets_relayed"] += 1
        self.counters["bytes_relayed"] += len(data)

    # --- housekeeping -----------------------------------------------------------------------------------
    async def _sweep(self) -> None:
        interval = min(1.0, self.config.idle_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for call_id, session in list(self.sessions.items()):
                if now - session.last_activity > self.config.idle_timeout:
                    log.info("session %s idle for %.0f s: deleting it", call_id, now - session.last_activity)
                    self._delete(call_id)
                    self.counters["timeouts"] += 1
            for key, (expiry, _) in list(self._answers.items()):
                if expiry < now:
                    del self._answers[key]

    # --- HTTP -------------------------------------------------------------------------------------------
    def _health(self, _query: Query) -> tuple[int, Any]:
        return 200, {
            "status": "ok",
            "name": self.config.name,
            "sessions": len(self.sessions),
            "ports_in_use": self.ports.in_use * 2,
            "port_pairs_free": self.ports.size - self.ports.in_use,
            "port_range": [self.config.port_min, self.config.port_max],
            "counters": dict(self.counters),
        }

    def _sessions(self, query: Query) -> tuple[int, Any]:
        wanted = query.get("call_id")
        sessions = [s.describe() for s in self.sessions.values() if not wanted or s.call_id in wanted]
        return 200, {"sessions": sessions}


class _Control(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if len(data) > MAX_CONTROL:
            return
        with contextlib.suppress(Exception):
            self.relay.control_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("control socket: %s", exc)


def _text(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise ControlError(f"'{key}' must be a non-empty string")
    return value


def _media(request: dict[str, Any]) -> list[Addr]:
    raw = request.get("media")
    if raw is None and "port" in request:
        raw = [{"address": request.get("address"), "port": request.get("port")}]
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_STREAMS:
        raise ControlError(f"'media' must be a list of 1 to {MAX_STREAMS} {{address, port}} objects")
    media: list[Addr] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ControlError("each 'media' entry must be an object with address and port")
        port = item.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 65536:
            raise ControlError(f"media port must be 0..65535, not {port!r}")
        try:
            address = str(ipaddress.ip_address(str(item.get("address"))))
        except ValueError:
            raise ControlError(f"media address must be an IP address, not {item.get('address')!r}") from None
        media.append((address, port))
    return media
