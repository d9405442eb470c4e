"""The SIP proxy and registrar: what the lab's Kamailio stand-in does with each datagram.

Request handling follows ``/work/shared/reference/kamailio-minimal.cfg`` with the platform's routing added:

1. malformed -> 400 when a Via lets the answer be addressed, else dropped (both counted);
   ``Max-Forwards`` 0 -> 483; Route headers naming this proxy are consumed (loose routing);
2. ACK: absorbed when it acknowledges a non-2xx final answer of ours, else routed in the dialog (stateless);
   CANCEL: 200 at once, 487 to the INVITE, CANCEL forwarded to the branch; retransmissions get the last answer;
3. in-dialog requests (To tag) follow the Route set / Request-URI; a BYE ends the call (CDR, relay delete);
4. REGISTER: 404 for an unknown user, digest challenge 401, 403 on a wrong password, then the location table;
5. INVITE, MESSAGE, SUBSCRIBE and REFER out of a dialog: proxy-auth 407 unless the source address is trusted
   (trunks, voice applications, ``trusted``); then service number -> voice application URI, registered user ->
   the contact, trunk prefix -> the PSTN peer, else 404; Record-Route is added to INVITE/SUBSCRIBE/REFER;
6. every SDP is anchored at the media relay (offer on requests, answer on responses); when no relay answers
   the SDP goes on unanchored (logged and counted, like Kamailio when rtpengine is down);
7. an INVITE is stateful: 100 Trying, retransmissions until a reply, ``no_response_timeout`` without a reply
   or ``no_answer_timeout`` of ringing (CANCEL sent) count as 408; a failure (408/480/486/404...) of a call to a
   user with an ``on_failure`` rule is redirected to the rule's service number (failure_route), once.

Messages of one Call-ID are handled in order (an asyncio lock per Call-ID), so a BYE never overtakes the 200
it follows even while that 200's SDP is at the relay.

Provisioning and call control come over JSON-RPC (``POST /RPC`` on ``http_port``, `lab.sip.control`), as on real
Kamailio (``realstack/voice/kamailio.cfg.template``), in four in-memory tables:

- ``fwd`` user -> user, number or SIP URI: checked first for a number of this domain (before services and the
  location lookup); a user or number is routed in its place, a URI as a routing target; the CDR keeps the number
  dialled;
- ``routes`` prefix -> SIP URI: after services and users, before the static trunks; the longest prefix wins; a
  URI of this domain is a service number or a registered user/trunk account (404 when not registered), a URI
  without a user part gets the number dialled;
- ``trunks`` account -> password: more digest credentials (REGISTER, INVITE) besides ``users``; a registered
  trunk account is reachable like a user;
- ``cli`` user -> number: an INVITE from the user goes on with the number as From user (and as the
  P-Asserted-Identity, when there is one); the caller keeps seeing its own From (uac's auto restore), the CDR
  keeps the real caller.

``dlg.list`` shows the calls as Kamailio's dialog module does (states 1 unconfirmed, 2 early, 3 answered, 4
confirmed by the ACK); ``dlg.end_dlg`` sends BYE to both ends of an answered call and writes its CDR (a call not
yet answered is left alone, as Kamailio does); ``telco.transfer`` sends the caller an in-dialog REFER in the
callee's name (From/To with the dialog's tags, the callee's next CSeq), as the real profile does through
``tm.t_uac_start``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lab.rtprelay.client import RelayClient, RelayError
from lab.rtprelay.httpd import JsonHttpServer, Query
from lab.sip import sdp
from lab.sip.cdr import Cdr, CdrWriter, disposition
from lab.sip.config import FailureRule, ProxyConfig
from lab.sip.control import CALL_ID, TARGET, ControlServer, Htables, JsonRpcError, Method, core_hash
from lab.sip.digest import Authenticator, Verdict, parse_credentials
from lab.sip.location import Binding, Location
from lab.sip.message import (
    MAGIC_COOKIE,
    SipMessage,
    SipParseError,
    SipUri,
    Via,
    header_param,
    parse,
    parse_name_addr,
    parse_uri,
    split_list,
    uri_user,
)

log = logging.getLogger("lab.sip")

Addr = tuple[str, int]
T1 = 0.5
T2 = 4.0
LINGER = 32.0  # how long a finished transaction still answers retransmissions (64*T1)
CANCEL_GUARD = 4.0  # a branch that does not answer our CANCEL is given up after this
STOP_GRACE = 1.0  # seconds a stopping proxy spends releasing relay sessions
ROUTED = frozenset({"INVITE", "MESSAGE", "REFER", "SUBSCRIBE", "NOTIFY", "OPTIONS"})
AUTHENTICATED = frozenset({"INVITE", "MESSAGE", "REFER", "SUBSCRIBE"})
RECORD_ROUTED = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
DIALOG_ONLY = frozenset({"BYE", "PRACK", "UPDATE", "INFO"})
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, REFER, NOTIFY, SUBSCRIBE, INFO, UPDATE, PRACK"
REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    416: "Unsupported URI Scheme",
    423: "Interval Too Brief",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    487: "Request Terminated",
    500: "Server Internal Error",
}
DIVERSION_REASONS = {486: "user-busy", 600: "user-busy", 408: "no-answer", 480: "no-answer", 404: "unavailable"}
COUNTERS = (
    "dialog_timeouts",
    "datagrams",
    "requests",
    "responses",
    "retransmissions",
    "malformed",
    "malformed_answered",
    "registrations",
    "unregistrations",
    "challenges",
    "auth_failures",
    "calls",
    "calls_answered",
    "calls_failed",
    "calls_cancelled",
    "diversions",
    "no_answer_timeouts",
    "no_response_timeouts",
    "anchored",
    "unanchored",
    "relay_failures",
    "messages",
    "loops",
    "stray_responses",
    "internal_errors",
    "rpc_requests",
    "forwarded_calls",
    "routed_calls",
    "cli_rewrites",
    "dialogs_ended",
    "transfers",
)
DIALOG_HASH_SIZE = 4096  # the dialog module's hash_size: h_entry is core_hash(Call-ID) modulo this
DIALOG_STATES = {"trying": 1, "early": 2, "confirmed": 3}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Call:
    """An INVITE dialog from its first authenticated INVITE to its end; it becomes one CDR."""

    call_id: str
    from_tag: str
    from_uri: str
    to_uri: str
    caller: str
    callee: str
    kind: str  # user, service, trunk, foreign, none
    start: datetime = field(default_factory=_now)
    target: str = ""
    to_tag: str | None = None
    answered: datetime | None = None
    state: str = "trying"  # trying, early, confirmed
    anchored: bool | None = None
    diverted_to: str | None = None
    ended: bool = False
    h_entry: int = 0
    h_id: int = 0
    acked: bool = False
    caller_contact: str = ""
    callee_contact: str = ""
    caller_cseq: int = 0
    callee_cseq: int = 0
    caller_route_set: list[str] = field(default_factory=list)  # toward the caller, next hop first
    callee_route_set: list[str] = field(default_factory=list)  # toward the callee, next hop first
    transfers: int = 0  # REFERs this proxy sent in the callee's name

    def describe(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "state": self.state,
            "caller": self.caller,
            "callee": self.callee,
            "from_uri": self.from_uri,
            "to_uri": self.to_uri,
            "target": self.target,
            "from_tag": self.from_tag,
            "to_tag": self.to_tag,
            "start_time": self.start.isoformat(),
            "answer_time": self.answered.isoformat() if self.answered else None,
            "anchored": self.anchored,
            "diverted_to": self.diverted_to,
            "h_entry": self.h_entry,
            "h_id": self.h_id,
        }

    def kamailio_state(self) -> int:
        """The dialog module's state: 1 unconfirmed, 2 early, 3 answered (no ACK yet), 4 confirmed."""
        if self.state == "confirmed" and self.acked:
            return 4
        return DIALOG_STATES.get(self.state, 1)


@dataclass(frozen=True)
class CliRewrite:
    """The caller's From as the caller sees it and as everyone downstream sees it (``cli`` table)."""

    from_tag: str
    original: str
    rewritten: str


@dataclass(eq=False)
class ServerTxn:
    key: tuple[str, ...]
    request: SipMessage
    source: Addr
    local_tag: str
    call: Call | None = None
    last_response: bytes | None = None
    final_status: int = 0
    client: ClientTxn | None = None
    cancelled: bool = False
    diverted: bool = False
    anchored_body: bytes | None = None

    @property
    def method(self) -> str:
        return self.request.method or ""


@dataclass(eq=False)
class ClientTxn:
    branch: str
    request: SipMessage
    data: bytes
    target: Addr
    server: ServerTxn | None
    responded: bool = False
    provisional: bool = False
    final_status: int = 0
    timed_out: bool = False
    cancel_sent: bool = False
    interval: float = T1
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    answers: dict[str, bytes] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.request.method or ""

    def stop_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.proxy.datagram_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: a phone went away; timers handle it
        log.debug("SIP socket: %s", exc)


class Proxy:
    """One proxy/registrar process: the SIP socket, the HTTP introspection endpoint and the timers."""

    def __init__(self, config: ProxyConfig, *, relay: RelayClient | None = None, cdrs: CdrWriter | None = None) -> None:
        self.config = config
        self.relay = relay
        self.cdrs = cdrs
        self.location = Location()
        self.auth = Authenticator(config.domain, nonce_ttl=config.nonce_ttl)
        self.calls: dict[str, Call] = {}
        self.server_txns: dict[tuple[str, ...], ServerTxn] = {}
        self.client_txns: dict[str, ClientTxn] = {}
        self.counters: collections.Counter[str] = collections.Counter(dict.fromkeys(COUNTERS, 0))
        self.started = time.monotonic()
        self.htables = Htables()
        self.cli_rewrites: dict[str, CliRewrite] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        methods: dict[str, Method] = {
            **self.htables.methods(),
            "dlg.list": self._rpc_dlg_list,
            "dlg.end_dlg": self._rpc_end_dlg,
            "telco.transfer": self._rpc_transfer,
        }
        self._http: JsonHttpServer = ControlServer(
            config.host,
            config.http_port,
            {"/health": self._health, "/registrations": self._registrations, "/dialogs": self._dialogs},
            {name: self._counted(method) for name, method in methods.items()},
        )
        self._dialog_ids = itertools.count(int.from_bytes(os.urandom(2), "big") % (3 * DIALOG_HASH_SIZE) + 1)
        self._locks: dict[str, list[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._branch_prefix = f"{MAGIC_COOKIE}-{os.urandom(3).hex()}-"
        self._branches = itertools.count(1)
        self._tags = itertools.count(1)
        self._own_route = f"<sip:{config.host}:{config.port};lr>"
        self._aliases = {config.host.lower(), config.domain.lower(), "localhost"}

    # --- life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=(self.config.host, self.config.port)
        )
        await self._http.start()
        if self.relay is not None:
            await self.relay.start(self.config.host)
        self._spawn(self._housekeeping())
        log.info(
            "%s: SIP udp %s:%d (domain %s), http %d, %d users, %d services, %d trunks, relay %s, CDRs %s",
            self.config.name,
            self.config.host,
            self.config.port,
            self.config.domain,
            self.config.http_port,
            len(self.config.users),
            len(self.config.services),
            len(self.config.trunks),
            ", ".join(f"{h}:{p}" for h, p in self.config.relay.control) if self.config.relay else "none",
            "on" if self.cdrs else "off",
        )

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
        await self._http.close()
        for task in list(self._tasks):
            task.cancel()
        if self.relay is not None:
            pinned = [call_id for call_id in self.calls if self.relay.relay_of(call_id) is not None]
            if pinned:  # free their relay ports, all at once and within a second (the relay may be gone too)
                deletes = asyncio.gather(*(self.relay.delete(call_id) for call_id in pinned), return_exceptions=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(deletes, STOP_GRACE)
            self.relay.close()
        if self.calls:
            log.warning("%s: stopping with %d call(s) in progress; they get no CDR", self.config.name, len(self.calls))
        log.info("%s: stopped", self.config.name)

    def request_stop(self) -> None:
        self._stop.set()

    async def serve(self) -> None:
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    # --- transport --------------------------------------------------------------------------------------
    def send(self, data: bytes, addr: Addr) -> None:
        if self._transport is None:
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("send to %s:%d\n%s", addr[0], addr[1], data.decode("latin-1", "replace"))
        self._transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.counters["datagrams"] += 1
        if not data.strip(b"\r\n\x00 \t"):
            return  # RFC 5626 keep-alive
        if log.isEnabledFor(logging.DEBUG):
            log.debug("received from %s:%d\n%s", addr[0], addr[1], data.decode("latin-1", "replace"))
        try:
            try:
                message = parse(data)
            except SipParseError as error:
                self._malformed(error, addr)
                return
            if message.is_request:
                self._on_request(message, addr)
            else:
                self._on_response(message, addr)
        except Exception:  # a bug must cost one message, never the process
            self.counters["internal_errors"] += 1
            log.exception("failed to handle a datagram from %s:%d", *addr)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.counters["internal_errors"] += 1
            log.error("SIP task failed", exc_info=task.exception())

    @contextlib.asynccontextmanager
    async def _ordered(self, call_id: str) -> AsyncIterator[None]:
        """Handle one Call-ID's messages one at a time, in arrival order."""
        entry = self._locks.get(call_id)
        if entry is None:
            entry = self._locks[call_id] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop(call_id, None)

    def _later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        assert self._loop is not None
        return self._loop.call_later(delay, callback, *args)

    # --- malformed input --------------------------------------------------------------------------------
    def _malformed(self, error: SipParseError, addr: Addr) -> None:
        self.counters["malformed"] += 1
        partial = error.partial
        via = partial.top_via() if partial is not None and partial.get("Via") else None
        if partial is None or via is None or partial.method == "ACK":
            log.warning("dropped a malformed datagram from %s:%d: %s", addr[0], addr[1], error.reason)
            return
        response = SipMessage(status=400, reason=f"Bad Request ({error.reason[:80]})")
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for value in partial.get_all(name):
                tagged = name == "To" and header_param(value, "tag") is None
                response.add(name, f"{value};tag={self._new_tag()}" if tagged else value)
        response.add("Server", self._server_header())
        self.send(response.to_bytes(), addr)
        self.counters["malformed_answered"] += 1
        log.warning("answered 400 to a malformed request from %s:%d: %s", addr[0], addr[1], error.reason)

    # --- requests ---------------------------------------------------------------------------------------
    def _on_request(self, message: SipMessage, addr: Addr) -> None:
        self.counters["requests"] += 1
        via = message.top_via()
        assert via is not None  # parse() checked it
        if via.host.strip("[]") != addr[0] or via.has("rport"):
            via.set_param("received", addr[0])
        if via.has("rport"):
            via.set_param("rport", str(addr[1]))
        message.headers[next(i for i, (k, _) in enumerate(message.headers) if k == "Via")] = ("Via", str(via))
        if message.method == "ACK":
            self._on_ack(message, addr)
            return
        key = self._server_key(message)
        txn = self.server_txns.get(key)
        if txn is not None:
            self.counters["retransmissions"] += 1
            if txn.last_response is not None:
                self.send(txn.last_response, txn.source)
            return
        txn = ServerTxn(key, message, addr, self._new_tag())
        self.server_txns[key] = txn
        self._later(self._max_life(), self._forget_server, txn)
        if message.method == "CANCEL":
            self._on_cancel(txn)
            return
        if message.method == "INVITE":
            self._reply(txn, 100, "Trying")
        self._spawn(self._process(txn))

    def _server_key(self, message: SipMessage) -> tuple[str, ...]:
        via = message.top_via()
        assert via is not None
        method = "INVITE" if message.method == "ACK" else message.method or ""
        if via.branch.startswith(MAGIC_COOKIE):
            return (via.branch, f"{via.host}:{via.port or 5060}", method)
        return (message.call_id, str(message.cseq[0]), message.from_tag or "", method)

    async def _process(self, txn: ServerTxn) -> None:
        async with self._ordered(txn.request.call_id):
            try:
                await self._route(txn)
            except Exception:
                self.counters["internal_errors"] += 1
                log.exception("failed to route %s", txn.request.summary())
                if not txn.final_status:
                    self._reply(txn, 500, "Server Internal Error")

    async def _route(self, txn: ServerTxn) -> None:
        message = txn.request
        max_forwards = message.get("Max-Forwards")
        if max_forwards is not None and int(max_forwards) <= 0:
            self._reply(txn, 483, "Too Many Hops")
            return
        self._consume_own_routes(message)
        if message.to_tag is not None:
            await self._in_dialog(txn)
            return
        if message.method == "REGISTER":
            self._register(txn)
            return
        uri = parse_uri(message.uri or "")
        if uri is None:
            self._reply(txn, 416, "Unsupported URI Scheme")
            return
        if message.method == "OPTIONS" and not uri.user and self._is_me(uri):
            self._reply(txn, 200, "OK", [("Allow", ALLOW), ("Accept", "application/sdp")])
            return
        if message.method in DIALOG_ONLY:
            self._reply(txn, 481, "Call/Transaction Does Not Exist")
            return
        if message.method not in ROUTED:
            self._reply(txn, 405, "Method Not Allowed", [("Allow", ALLOW)])
            return
        await self._route_initial(txn, uri)

    def _consume_own_routes(self, message: SipMessage) -> None:
        while (route := message.get("Route")) is not None:
            uri = parse_uri(parse_name_addr(route).uri)
            if uri is None or not self._is_me(uri):
                return
            message.remove_first("Route")

    def _is_me(self, uri: SipUri) -> bool:
        """The URI names this proxy itself (host alias and port)."""
        return uri.host.lower().strip("[]") in self._aliases and (uri.port or 5060) == self.config.port

    def _is_local(self, uri: SipUri) -> bool:
        """The URI is in this proxy's domain (an alias with this proxy's port or no port)."""
        return uri.host.lower().strip("[]") in self._aliases and uri.port in (None, self.config.port)

    async def _route_initial(self, txn: ServerTxn, uri: SipUri) -> None:
        message = txn.request
        method = message.method or ""
        if method in AUTHENTICATED and txn.source not in self.config.trusted:
            user = self._authenticate(txn, registrar=False)
            if user is None:
                return
        if method == "MESSAGE":
            self.counters["messages"] += 1
        number = uri.user or ""
        kind, target = self._resolve(uri, message.call_id if method == "INVITE" else None)
        if method == "INVITE":
            txn.call = self._new_call(message, number, kind, txn.source)
            self._caller_id(message)
        if target is not None:
            await self._forward(txn, target)
            return
        rule = self._failure_rule(txn, 404)
        if rule is not None:
            await self._divert(txn, rule, 404)
            return
        self._final(txn, 404, "Not Found")

    def _resolve(self, uri: SipUri, call_id: str | None = None) -> tuple[str, SipUri | None]:
        """Where a new request goes: (kind, target URI); target None for nowhere (404).

        Order as in kamailio.cfg.template: fwd, services, users and trunk accounts, routes, static trunks.
        """
        if not self._is_local(uri):
            return "foreign", uri
        number = uri.user or ""
        forward = self.htables.get("fwd", number) if number else None
        if forward is not None:
            self.counters["forwarded_calls"] += 1
            log.info("call %s to %s is forwarded to %s", call_id or "-", number, forward)
            if forward.split(":", 1)[0].lower() in ("sip", "sips"):
                return self._provisioned(parse_uri(forward))
            number = forward
        if number in self.config.services:
            return "service", self.config.services[number]
        if number in self.config.users or self.htables.get("trunks", number) is not None:
            binding = self.location.lookup(number)
            kind = "user" if number in self.config.users else "account"
            return kind, parse_uri(binding.contact) if binding else None
        rule = self.htables.longest_prefix("routes", number) if number else None
        if rule is not None:
            self.counters["routed_calls"] += 1
            log.info("call %s to %s: routing rule %s -> %s", call_id or "-", number, *rule)
            target = parse_uri(rule[1])
            return self._provisioned(target.with_user(number) if target and not target.user else target)
        trunk = self.config.trunk_for(number) if number else None
        if trunk is not None:
            return "trunk", trunk.uri.with_user(number[trunk.strip :])
        return "none", None

    def _provisioned(self, target: SipUri | None) -> tuple[str, SipUri | None]:
        """A provisioned target (fwd, routes): one of this domain is a service number or a registered user or
        trunk account (nowhere when it is not registered); any other URI goes as it is."""
        if target is None:
            return "none", None
        if not self._is_local(target):
            return "routed", target
        user = target.user or ""
        if user in self.config.services:
            return "service", self.config.services[user]
        binding = self.location.lookup(user) if user else None
        return ("user" if user in self.config.users else "account"), parse_uri(binding.contact) if binding else None

    def _new_call(self, message: SipMessage, number: str, kind: str, source: Addr) -> Call:
        from_value, to_value = message.get("From") or "", message.get("To") or ""
        contact = message.get("Contact")
        call = Call(
            call_id=message.call_id,
            from_tag=message.from_tag or "",
            from_uri=parse_name_addr(from_value).uri,
            to_uri=parse_name_addr(to_value).uri,
            caller=uri_user(from_value) or "",
            callee=number,
            kind=kind,
            h_entry=core_hash(message.call_id) & (DIALOG_HASH_SIZE - 1),
            h_id=next(self._dialog_ids),
            caller_contact=parse_name_addr(contact).uri if contact else f"sip:{source[0]}:{source[1]}",
            caller_cseq=message.cseq[0],
            caller_route_set=self._route_set(message.get_all("Record-Route"), toward_caller=True),
        )
        self.calls[call.call_id] = call
        self.counters["calls"] += 1
        return call

    def _route_set(self, record_routes: list[str], *, toward_caller: bool) -> list[str]:
        """The Record-Route entries between this proxy and one end of the dialog, next hop first.

        Entries above this proxy's own were added by proxies nearer the callee, those below by proxies nearer the
        caller; a request has only the latter (this proxy's own is added on the way out)."""
        entries = [item for value in record_routes for item in split_list(value)]
        own = next((i for i, item in enumerate(entries) if self._is_own_route(item)), None)
        if own is None:
            return entries if toward_caller else list(reversed(entries))
        return entries[own + 1 :] if toward_caller else list(reversed(entries[:own]))

    def _is_own_route(self, value: str) -> bool:
        uri = parse_uri(parse_name_addr(value).uri)
        return uri is not None and self._is_me(uri)

    def _caller_id(self, message: SipMessage) -> None:
        """cli table: the INVITE goes on with the number as From user (and P-Asserted-Identity)."""
        user = uri_user(message.get("From") or "")
        number = self.htables.get("cli", user) if user else None
        original = message.get("From")
        if number is None or original is None or not message.from_tag:
            return
        sender = parse_name_addr(original)
        uri = parse_uri(sender.uri)
        if uri is None:
            return
        rewritten = original.replace(sender.uri, str(uri.with_user(number)), 1)
        self.cli_rewrites[message.call_id] = CliRewrite(message.from_tag, original, rewritten)
        if message.get("P-Asserted-Identity") is not None:
            message.remove("P-Asserted-Identity")
            message.add("P-Asserted-Identity", f"<sip:{number}@{uri.host}{f':{uri.port}' if uri.port else ''}>")
        self.counters["cli_rewrites"] += 1
        log.info("call %s from %s presents caller ID %s", message.call_id, user, number)

    def _present(self, message: SipMessage, *, toward_caller: bool | None = None) -> None:
        """uac's auto restore, for a call with a rewritten caller ID: everything going toward the callee shows the
        rewritten From, everything going back to the caller its own. ``toward_caller`` None: a request, whose
        direction its tags tell."""
        rewrite = self.cli_rewrites.get(message.call_id)
        if rewrite is None:
            return
        if toward_caller is None:
            toward_caller = message.to_tag == rewrite.from_tag and message.from_tag != rewrite.from_tag
        value = rewrite.original if toward_caller else rewrite.rewritten
        for name in ("From", "To"):
            current = message.get(name)
            if current is not None and header_param(current, "tag") == rewrite.from_tag:
                message.set(name, value)

    def _failure_rule(self, txn: ServerTxn, code: int) -> FailureRule | None:
        call = txn.call
        if txn.method != "INVITE" or call is None or call.kind != "user" or txn.diverted or txn.cancelled:
            return None
        if call.callee not in self.config.users:
            return None
        return self.config.failure_rule(call.callee, code)

    async def _divert(self, txn: ServerTxn, rule: FailureRule, code: int) -> None:
        """failure_route: send the INVITE on to the rule's service (voicemail), once, with a Diversion header."""
        txn.diverted = True
        self.counters["diversions"] += 1
        call = txn.call
        assert call is not None
        call.diverted_to = rule.service
        reason = DIVERSION_REASONS.get(code, "unknown")
        diversion = f"<sip:{call.callee}@{self.config.domain}>;reason={reason};counter=1"
        log.info("call %s to %s failed with %d: diverted to %s", call.call_id, call.callee, code, rule.service)
        await self._forward(txn, self.config.services[rule.service], extra=[("Diversion", diversion)])

    async def _in_dialog(self, txn: ServerTxn) -> None:
        message = txn.request
        target = self._in_dialog_target(message)
        if target is None:
            self._reply(txn, 404, "Not Here")
            return
        call = self.calls.get(message.call_id)
        if call is not None and message.method != "ACK":
            if message.from_tag == call.from_tag:
                call.caller_cseq = max(call.caller_cseq, message.cseq[0])
            elif message.to_tag == call.from_tag:
                call.callee_cseq = max(call.callee_cseq, message.cseq[0])
        if message.method == "BYE" and call is not None:
            if call.answered:
                self._end_call(call, 200)
            else:
                self._end_call(call, 487, cancelled=True)
        await self._forward(txn, target)

    def _in_dialog_target(self, message: SipMessage) -> SipUri | None:
        uri = parse_uri(message.uri or "")
        if uri is None:
            return None
        if message.get("Route") is None and self._is_local(uri):
            binding = self.location.lookup(uri.user) if uri.user else None  # a UA that ignored Record-Route
            return parse_uri(binding.contact) if binding else None
        return uri

    async def _forward(self, txn: ServerTxn, target: SipUri, extra: list[tuple[str, str]] | None = None) -> None:
        """Send the request on statefully (a new client transaction) to ``target`` or its Route set."""
        out = txn.request.copy()
        out.uri = str(target)
        max_forwards = out.get("Max-Forwards")
        out.set("Max-Forwards", str(int(max_forwards) - 1) if max_forwards else "70")
        self._consume_credentials(out)
        self._present(out)
        for name, value in extra or []:
            out.prepend(name, value)
        initial = out.to_tag is None
        if initial and out.method in RECORD_ROUTED and self.config.record_route:
            out.prepend("Record-Route", self._own_route)
        route = out.get("Route")
        next_hop = parse_uri(parse_name_addr(route).uri) if route else target
        if next_hop is None:
            self._final(txn, 400, "Bad Request")
            return
        destination = next_hop.address()
        if destination == (self.config.host, self.config.port):
            self.counters["loops"] += 1
            self._final(txn, 482, "Loop Detected")
            return
        if sdp.is_sdp(out.get("Content-Type"), out.body):
            if txn.anchored_body is None:
                txn.anchored_body = await self._anchor(out, request=True)
            out.body = txn.anchored_body
        if txn.final_status:  # cancelled while the relay answered
            if txn.call is not None and self.relay is not None:
                self._spawn(self._release(txn.call.call_id))
            return
        branch = f"{self._branch_prefix}{next(self._branches)}"
        out.prepend("Via", f"SIP/2.0/UDP {self.config.host}:{self.config.port};branch={branch};rport")
        client = ClientTxn(branch, out, out.to_bytes(), destination, txn)
        txn.client = client
        self.client_txns[branch] = client
        if txn.call is not None and initial:
            txn.call.target = str(target)
        self.send(client.data, destination)
        client.timers.append(self._later(T1, self._retransmit, client))
        client.timers.append(self._later(self.config.no_response_timeout, self._no_response, client))

    def _consume_credentials(self, message: SipMessage) -> None:
        """Remove the Proxy-Authorization answering this proxy's realm (Kamailio's consume_credentials)."""
        kept = []
        for name, value in message.headers:
            if name == "Proxy-Authorization":
                credentials = parse_credentials(value)
                if credentials is not None and credentials.realm == self.config.domain:
                    continue
            kept.append((name, value))
        message.headers = kept

    # --- ACK and CANCEL ---------------------------------------------------------------------------------
    def _on_ack(self, message: SipMessage, addr: Addr) -> None:
        txn = self.server_txns.get(self._server_key(message))
        if txn is not None and txn.final_status >= 300:
            return  # acknowledges our non-2xx answer: hop by hop, absorbed
        self._spawn(self._forward_ack(message))

    async def _forward_ack(self, message: SipMessage) -> None:
        """An ACK for a 2xx is its own end-to-end transaction: routed statelessly along the dialog's route set."""
        async with self._ordered(message.call_id):
            self._consume_own_routes(message)
            target = self._in_dialog_target(message)
            if target is None:
                return
            route = message.get("Route")
            next_hop = parse_uri(parse_name_addr(route).uri) if route else target
            if next_hop is None or next_hop.address() == (self.config.host, self.config.port):
                return
            out = message.copy()
            out.uri = str(target)
            max_forwards = out.get("Max-Forwards")
            out.set("Max-Forwards", str(int(max_forwards) - 1) if max_forwards else "70")
            self._present(out)
            call = self.calls.get(message.call_id)
            if call is not None and call.state == "confirmed" and message.from_tag == call.from_tag:
                call.acked = True
            if sdp.is_sdp(out.get("Content-Type"), out.body):
                out.body = await self._anchor(out, request=True)
            branch = f"{self._branch_prefix}{next(self._branches)}"
            out.prepend("Via", f"SIP/2.0/UDP {self.config.host}:{self.config.port};branch={branch};rport")
            self.send(out.to_bytes(), next_hop.address())

    def _on_cancel(self, cancel: ServerTxn) -> None:
        invite = self.server_txns.get((*cancel.key[:-1], "INVITE"))
        if invite is None:
            self._reply(cancel, 481, "Call/Transaction Does Not Exist")
            return
        self._reply(cancel, 200, "OK")
        if invite.final_status:
            return
        invite.cancelled = True
        client = invite.client
        if client is None or client.final_status:
            self._final(invite, 487, "Request Terminated")
            return
        self._cancel_branch(client)

    def _cancel_branch(self, client: ClientTxn) -> None:
        if client.cancel_sent:
            return
        client.cancel_sent = True
        invite = client.request
        cancel = SipMessage(method="CANCEL", uri=invite.uri)
        cancel.add("Via", invite.get("Via") or "")
        for route in invite.get_all("Route"):
            cancel.add("Route", route)
        for name in ("From", "To", "Call-ID"):
            cancel.add(name, invite.get(name) or "")
        cancel.add("CSeq", f"{invite.cseq[0]} CANCEL")
        cancel.add("Max-Forwards", "70")
        self.send(cancel.to_bytes(), client.target)
        client.timers.append(self._later(CANCEL_GUARD, self._give_up, client))

    def _ack_downstream(self, client: ClientTxn, response: SipMessage) -> None:
        """The ACK of a non-2xx final answer, sent by this proxy hop by hop (same branch as the INVITE)."""
        invite = client.request
        ack = SipMessage(method="ACK", uri=invite.uri)
        ack.add("Via", invite.get("Via") or "")
        for route in invite.get_all("Route"):
            ack.add("Route", route)
        ack.add("From", invite.get("From") or "")
        ack.add("To", response.get("To") or "")
        ack.add("Call-ID", invite.call_id)
        ack.add("CSeq", f"{invite.cseq[0]} ACK")
        ack.add("Max-Forwards", "70")
        self.send(ack.to_bytes(), client.target)

    # --- responses --------------------------------------------------------------------------------------
    def _on_response(self, message: SipMessage, addr: Addr) -> None:
        self.counters["responses"] += 1
        via = message.top_via()
        if via is None or not self._is_own_via(via):
            self.counters["stray_responses"] += 1
            log.warning("dropped a response not sent through this proxy: %s", message.summary())
            return
        message.remove_first("Via")
        client = self.client_txns.get(via.branch)
        if client is None:
            self._forward_stateless(message)
            return
        if message.cseq[1] == "CANCEL":
            return  # the answer to our CANCEL
        client.responded = True
        status = message.status or 0
        if status < 200:
            self._provisional(client)
            if status == 100:
                return
        self._spawn(self._response(client, message))

    def _is_own_via(self, via: Via) -> bool:
        return via.branch.startswith(self._branch_prefix) and (via.port or 5060) == self.config.port

    def _forward_stateless(self, message: SipMessage) -> None:
        """A response whose transaction is gone (a retransmitted 2xx): on to the next Via."""
        via = message.top_via()
        if via is not None:
            self._present_response(message)
            self.send(message.to_bytes(), via.response_address())

    def _provisional(self, client: ClientTxn) -> None:
        """The first provisional answer stops retransmissions; for an INVITE it starts the no-answer timer."""
        if client.final_status or client.provisional:
            return
        client.provisional = True
        client.stop_timers()
        timeout = self.config.no_answer_timeout if client.method == "INVITE" else LINGER
        client.timers.append(self._later(timeout, self._no_answer, client))

    async def _response(self, client: ClientTxn, message: SipMessage) -> None:
        async with self._ordered(message.call_id):
            status = message.status or 0
            server = client.server
            if status < 200:
                if server is None or server.final_status or client.final_status:
                    return
                await self._anchor_response(client, message)
                if server.call is not None and server.call.state == "trying":
                    server.call.state = "early"
                self._relay_response(server, message)
            elif status < 300:
                await self._success(client, message)
            else:
                if client.method == "INVITE":
                    self._ack_downstream(client, message)
                if client.final_status:
                    return  # a retransmission, acknowledged again above
                client.final_status = status
                client.stop_timers()
                self._later(LINGER, self.client_txns.pop, client.branch, None)
                if server is not None and not server.final_status:
                    await self._failure(server, client, status, message)

    async def _success(self, client: ClientTxn, message: SipMessage) -> None:
        first = not client.final_status
        if first:
            client.final_status = message.status or 200
            client.stop_timers()
            self._later(LINGER, self.client_txns.pop, client.branch, None)
        await self._anchor_response(client, message)
        server = client.server
        if server is None or (server.final_status and server.final_status >= 300):
            self._forward_stateless(message)
            return
        self._relay_response(server, message)
        call = server.call
        if first and call is not None and client.method == "INVITE" and call.state != "confirmed":
            call.state = "confirmed"
            call.to_tag = message.to_tag
            call.answered = _now()
            contact = message.get("Contact")
            call.callee_contact = parse_name_addr(contact).uri if contact else call.target
            call.callee_route_set = self._route_set(message.get_all("Record-Route"), toward_caller=False)
            self.counters["calls_answered"] += 1
            log.info("call %s %s -> %s answered by %s", call.call_id, call.caller, call.callee, call.target)

    async def _failure(self, server: ServerTxn, client: ClientTxn, code: int, response: SipMessage | None) -> None:
        """A branch failed (``response`` None: it never answered); answer upstream, or divert (failure_route)."""
        timed_out = client.timed_out
        if timed_out:
            code = 408
        if server.cancelled:
            if response is not None and response.status == 487:
                self._relay_response(server, response)
                self._end(server, 487)
            else:
                self._final(server, 487, "Request Terminated")
            return
        rule = self._failure_rule(server, code)
        if rule is not None:
            await self._divert(server, rule, code)
            return
        if response is None or timed_out:
            self._final(server, code, REASONS.get(code, "Request Timeout"), timed_out=True)
            return
        self._relay_response(server, response)
        self._end(server, code)

    # --- timers -----------------------------------------------------------------------------------------
    def _retransmit(self, client: ClientTxn) -> None:
        if client.responded or client.final_status:
            return
        self.send(client.data, client.target)
        client.interval = client.interval * 2 if client.method == "INVITE" else min(client.interval * 2, T2)
        client.timers.append(self._later(client.interval, self._retransmit, client))

    def _no_response(self, client: ClientTxn) -> None:
        if client.final_status or client.responded:
            return
        self.counters["no_response_timeouts"] += 1
        log.info("no answer from %s:%d to %s", *client.target, client.request.summary())
        client.timed_out = True
        self._give_up(client)

    def _no_answer(self, client: ClientTxn) -> None:
        if client.final_status:
            return
        client.timed_out = True
        if client.method != "INVITE":  # timer F: a non-INVITE with a provisional answer but no final one
            self._give_up(client)
            return
        self.counters["no_answer_timeouts"] += 1
        log.info("%s rang for %.0f s unanswered: cancelling", client.request.summary(), self.config.no_answer_timeout)
        self._cancel_branch(client)

    def _give_up(self, client: ClientTxn) -> None:
        """No final answer came (none at all, or none to our CANCEL): end the branch as 408 or 487."""
        if client.final_status:
            return
        client.final_status = 408 if client.timed_out else 487
        client.stop_timers()
        self._later(LINGER, self.client_txns.pop, client.branch, None)
        server = client.server
        if server is not None and not server.final_status:
            self._spawn(self._failure_later(server, client))

    async def _failure_later(self, server: ServerTxn, client: ClientTxn) -> None:
        async with self._ordered(server.request.call_id):
            if not server.final_status and server.client is client:
                await self._failure(server, client, client.final_status, None)

    def _max_life(self) -> float:
        return self.config.no_response_timeout + self.config.no_answer_timeout + CANCEL_GUARD + 2 * LINGER

    async def _housekeeping(self) -> None:
        """Expired registrations out; answered calls older than ``dialog_timeout`` ended (their BYE was lost)."""
        interval = min(5.0, self.config.dialog_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            self.location.purge()
            limit = _now().timestamp() - self.config.dialog_timeout
            for call in list(self.calls.values()):
                if call.answered is not None and call.answered.timestamp() < limit:
                    log.warning(
                        "call %s lasted over %.0f s without a BYE: ended", call.call_id, self.config.dialog_timeout
                    )
                    self.counters["dialog_timeouts"] += 1
                    self._end_call(call, 200)

    def _forget_server(self, txn: ServerTxn) -> None:
        if self.server_txns.get(txn.key) is txn:
            del self.server_txns[txn.key]

    # --- answers upstream -------------------------------------------------------------------------------
    def _reply(self, txn: ServerTxn, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        request = txn.request
        response = SipMessage(status=status, reason=reason)
        for value in request.get_all("Via"):
            response.add("Via", value)
        response.add("From", request.get("From") or "")
        to = request.get("To") or ""
        if status > 100 and header_param(to, "tag") is None:
            to = f"{to};tag={txn.local_tag}"
        response.add("To", to)
        response.add("Call-ID", request.call_id)
        response.add("CSeq", request.get("CSeq") or "")
        for name, value in headers or []:
            response.add(name, value)
        response.add("Server", self._server_header())
        self._answer(txn, response.to_bytes(), status)

    def _relay_response(self, server: ServerTxn, response: SipMessage) -> None:
        self._present_response(response)
        self._answer(server, response.to_bytes(), response.status or 0)

    def _present_response(self, response: SipMessage) -> None:
        """A response goes back the way its request came: to the caller when the caller sent that request."""
        rewrite = self.cli_rewrites.get(response.call_id)
        if rewrite is not None:
            self._present(response, toward_caller=response.from_tag == rewrite.from_tag)

    def _answer(self, txn: ServerTxn, data: bytes, status: int) -> None:
        txn.last_response = data
        if status >= 200 and not txn.final_status:
            txn.final_status = status
            self._later(LINGER, self._forget_server, txn)
        self.send(data, txn.source)

    def _final(self, txn: ServerTxn, status: int, reason: str, *, timed_out: bool = False) -> None:
        """Answer ``txn`` with a final status of this proxy's own and end its call (if any) with it."""
        self._reply(txn, status, reason)
        self._end(txn, status, timed_out=timed_out)

    def _end(self, txn: ServerTxn, status: int, *, timed_out: bool = False) -> None:
        if txn.call is not None and status >= 300:
            self._end_call(txn.call, status, cancelled=txn.cancelled, timed_out=timed_out)

    def _end_call(self, call: Call, code: int, *, cancelled: bool = False, timed_out: bool = False) -> None:
        if call.ended:
            return
        call.ended = True
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        result = disposition(code, cancelled=cancelled, timed_out=timed_out)
        if result == "CANCELLED":
            self.counters["calls_cancelled"] += 1
        elif result != "ANSWERED":
            self.counters["calls_failed"] += 1
        log.info("call %s %s -> %s ended: %s (%d)", call.call_id, call.caller, call.callee, result, code)
        if self.cdrs is not None:
            self.cdrs.record(
                Cdr(
                    call_id=call.call_id,
                    from_uri=call.from_uri,
                    to_uri=call.to_uri,
                    caller=call.caller,
                    callee=call.callee,
                    start_time=call.start,
                    answer_time=call.answered,
                    end_time=_now(),
                    disposition=result,
                    sip_code=code,
                    proxy=self.config.name,
                )
            )
        if self.relay is not None and self.relay.relay_of(call.call_id) is not None:
            self._spawn(self._release(call.call_id))
        if call.call_id in self.cli_rewrites:  # late retransmissions and the BYE's answer still get restored
            self._later(LINGER, self.cli_rewrites.pop, call.call_id, None)

    async def _release(self, call_id: str) -> None:
        if self.relay is None:
            return
        stats = await self.relay.delete(call_id)
        if stats is not None:
            log.info(
                "media of %s released: caller->callee %s packets, callee->caller %s packets",
                call_id,
                stats.get("caller_to_callee", {}).get("packets"),
                stats.get("callee_to_caller", {}).get("packets"),
            )

    # --- media anchoring --------------------------------------------------------------------------------
    async def _anchor(self, message: SipMessage, *, request: bool) -> bytes:
        """The message's SDP rewritten to the relay (offer for requests, answer for responses); unchanged when
        there is no relay or it does not answer."""
        body = message.body
        if self.relay is None or not sdp.is_sdp(message.get("Content-Type"), body):
            return body
        endpoints = sdp.endpoints(body)
        if endpoints is None:
            log.warning("SDP without a usable c=/m= line in %s: not anchored", message.summary())
            return body
        sender, recipient = (message.from_tag, message.to_tag) if request else (message.to_tag, message.from_tag)
        media = [(endpoint.address, endpoint.port) for endpoint in endpoints]
        call = self.calls.get(message.call_id)
        if call is not None and call.anchored is False and self.relay.relay_of(message.call_id) is None:
            return body  # the offer went unanchored: so does its answer (no half-anchored call)
        try:
            if request or self.relay.relay_of(message.call_id) is None:
                anchor = await self.relay.offer(message.call_id, sender or "-", recipient, media)
            else:
                anchor = await self.relay.answer(message.call_id, sender or "-", recipient, media)
        except RelayError as error:
            self.counters["relay_failures"] += 1
            self.counters["unanchored"] += 1
            if call is not None:
                call.anchored = False
            log.warning("media relay unavailable for %s (%s): SDP passed on unanchored", message.summary(), error)
            return body
        self.counters["anchored"] += 1
        if call is not None and call.anchored is None:
            call.anchored = True
        return sdp.rewrite(body, anchor.address, anchor.ports)

    async def _anchor_response(self, client: ClientTxn, message: SipMessage) -> None:
        if not sdp.is_sdp(message.get("Content-Type"), message.body):
            return
        key = f"{message.to_tag}/{message.status}"
        cached = client.answers.get(key)
        if cached is None:
            cached = client.answers[key] = await self._anchor(message, request=False)
        message.body = cached

    # --- registrar --------------------------------------------------------------------------------------
    def _register(self, txn: ServerTxn) -> None:
        message = txn.request
        user = uri_user(message.get("To") or "")
        if not user or self._password(user) is None:
            self._reply(txn, 404, "Not Found")
            return
        if self._authenticate(txn, registrar=True) is None:
            return
        contacts = [item for value in message.get_all("Contact") for item in split_list(value)]
        header = message.get("Expires")
        if contacts == ["*"]:
            if header is None or header.strip() != "0":
                self._reply(txn, 400, "Bad Request (Contact * needs Expires: 0)")
                return
            self.location.remove(user)
            self.counters["unregistrations"] += 1
            self._reply(txn, 200, "OK")
            log.info("%s unregistered all contacts", user)
            return
        now = time.monotonic()
        for value in contacts:
            contact = parse_name_addr(value)
            raw = contact.param("expires") or header or str(self.config.default_expires)
            expires = int(raw) if raw.strip().isdigit() else self.config.default_expires
            if expires == 0:
                self.location.remove(user, contact.uri)
                self.counters["unregistrations"] += 1
                log.info("%s unregistered %s", user, contact.uri)
                continue
            if expires < self.config.min_expires:
                self._reply(txn, 423, "Interval Too Brief", [("Min-Expires", str(self.config.min_expires))])
                return
            old = self.location.find(user, contact.uri)
            if old is not None and old.call_id == message.call_id and old.cseq >= message.cseq[0]:
                continue  # an out-of-order retransmission (RFC 3261 10.3 step 7)
            self.location.save(
                Binding(
                    user=user,
                    contact=contact.uri,
                    expires_at=now + min(expires, self.config.max_expires),
                    source=txn.source,
                    call_id=message.call_id,
                    cseq=message.cseq[0],
                    registered=_now(),
                    user_agent=message.get("User-Agent") or "",
                )
            )
            self.counters["registrations"] += 1
            log.info("%s registered %s for %d s", user, contact.uri, min(expires, self.config.max_expires))
        headers = [("Contact", f"<{b.contact}>;expires={b.expires_in(now)}") for b in self.location.bindings(user)]
        self._reply(txn, 200, "OK", [*headers, ("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))])

    def _authenticate(self, txn: ServerTxn, *, registrar: bool) -> str | None:
        """The authenticated user, or None after answering 401/407 (challenge) or 403."""
        message = txn.request
        header = "Authorization" if registrar else "Proxy-Authorization"
        expected = uri_user(message.get("To" if registrar else "From") or "")
        credentials = next(
            (
                parsed
                for value in message.get_all(header)
                if (parsed := parse_credentials(value)) is not None and parsed.realm == self.config.domain
            ),
            None,
        )
        if credentials is None:
            self._challenge(txn, registrar, stale=False)
            return None
        password = self._password(credentials.username)
        if credentials.username != expected or password is None:
            self.counters["auth_failures"] += 1
            log.warning(
                "%s from %s:%d: user %r may not act as %r", message.method, *txn.source, credentials.username, expected
            )
            self._final(txn, 403, "Forbidden")
            return None
        verdict = self.auth.check(credentials, password, message.method or "")
        if verdict in (Verdict.STALE, Verdict.BAD_NONCE):
            self._challenge(txn, registrar, stale=True)
            return None
        if verdict is Verdict.WRONG:
            self.counters["auth_failures"] += 1
            log.warning("%s from %s:%d: wrong password for %r", message.method, *txn.source, credentials.username)
            self._final(txn, 403, "Forbidden")
            return None
        return credentials.username

    def _password(self, user: str) -> str | None:
        """A subscriber's password, else a provisioned trunk account's (``trunks`` table)."""
        return self.config.users.get(user) or self.htables.get("trunks", user)

    def _challenge(self, txn: ServerTxn, registrar: bool, *, stale: bool) -> None:
        self.counters["challenges"] += 1
        if registrar:
            self._reply(txn, 401, "Unauthorized", [("WWW-Authenticate", self.auth.challenge(stale=stale))])
        else:
            self._reply(
                txn, 407, "Proxy Authentication Required", [("Proxy-Authenticate", self.auth.challenge(stale=stale))]
            )

    # --- helpers ----------------------------------------------------------------------------------------
    def _new_tag(self) -> str:
        return f"{self._branch_prefix[8:-1]}{next(self._tags)}"

    def _server_header(self) -> str:
        return f"telco-robot lab proxy ({self.config.name})"

    # --- JSON-RPC control (lab.sip.control) -------------------------------------------------------------
    def _counted(self, method: Method) -> Method:
        def run(params: list[Any]) -> Any:
            self.counters["rpc_requests"] += 1
            return method(params)

        return run

    def _rpc_dlg_list(self, _params: list[Any]) -> list[dict[str, Any]]:
        """The calls as Kamailio's ``dlg.list`` shows dialogs (internal flags and refcounts left out)."""
        return [self._dialog_view(call) for call in sorted(self.calls.values(), key=lambda c: (c.h_entry, c.h_id))]

    def _dialog_view(self, call: Call) -> dict[str, Any]:
        now = int(time.time())
        init = int(call.start.timestamp())
        start = int(call.answered.timestamp()) if call.answered else 0
        socket = f"udp:{self.config.host}:{self.config.port}"
        answered = call.state == "confirmed"
        return {
            "h_entry": call.h_entry,
            "h_id": call.h_id,
            "call-id": call.call_id,
            "from_uri": call.from_uri,
            "to_uri": call.to_uri,
            "state": call.kamailio_state(),
            "start_ts": start,
            "init_ts": init,
            "end_ts": 0,
            "duration": now - start if start else 0,
            "timeout": start + round(self.config.dialog_timeout) if start else 0,
            "lifetime": round(self.config.dialog_timeout),
            "caller": {
                "tag": call.from_tag,
                "contact": call.caller_contact,
                "cseq": str(call.caller_cseq),
                "route_set": ",".join(call.caller_route_set),
                "socket": socket,
            },
            "callee": {
                "tag": call.to_tag if answered else None,
                "contact": call.callee_contact if answered else None,
                "cseq": str(call.callee_cseq) if answered else None,
                "route_set": ",".join(call.callee_route_set) if answered else None,
                "socket": socket if answered else None,
            },
            "profiles": [],
            "variables": [],
        }

    def _rpc_end_dlg(self, params: list[Any]) -> dict[str, Any]:
        """``dlg.end_dlg h_entry h_id``: BYE to both ends of an answered call, then its CDR (ANSWERED, 200).

        As Kamailio's dialog module: a call not answered yet is left alone (the answer is still ``{}``)."""
        if len(params) < 2 or not all(isinstance(item, int) and not isinstance(item, bool) for item in params[:2]):
            raise JsonRpcError(500, "Invalid parameters")
        call = next((c for c in self.calls.values() if (c.h_entry, c.h_id) == (params[0], params[1])), None)
        if call is None:
            raise JsonRpcError(404, "Dialog not found")
        if call.state != "confirmed" or not call.to_tag:
            log.warning("dlg.end_dlg %s: terminating non-confirmed dialogs not supported", call.call_id)
            return {}
        self._send_in_dialog(call, "BYE", toward_caller=True, cseq=call.callee_cseq + 1)
        self._send_in_dialog(call, "BYE", toward_caller=False, cseq=call.caller_cseq + 1)
        self.counters["dialogs_ended"] += 1
        log.info("call %s ended by dlg.end_dlg: BYE sent to both ends", call.call_id)
        self._end_call(call, 200)
        return {}

    def _rpc_transfer(self, params: list[Any]) -> dict[str, Any]:
        """``telco.transfer call_id target``: an in-dialog REFER to the caller, in the callee's name."""
        if (
            len(params) < 2
            or not isinstance(params[0], str)
            or not isinstance(params[1], str)
            or not CALL_ID.match(params[0])
            or not TARGET.match(params[1])
        ):
            raise JsonRpcError(500, "Invalid parameters")
        call = self.calls.get(params[0])
        if call is None:
            raise JsonRpcError(404, "Dialog not found")
        if call.kamailio_state() != 4:
            raise JsonRpcError(500, "Dialog not confirmed")
        cseq = call.callee_cseq + 1 + call.transfers
        target = params[1]
        self._send_in_dialog(
            call,
            "REFER",
            toward_caller=True,
            cseq=cseq,
            extra=[
                ("Contact", f"<sip:{self.config.host}:{self.config.port}>"),
                ("Refer-To", f"<{target}>"),
                ("Referred-By", f"<{call.to_uri}>"),
            ],
        )
        call.transfers += 1
        self.counters["transfers"] += 1
        log.info(
            "telco.transfer: REFER to %s (call %s, CSeq %d): Refer-To %s",
            call.caller_contact,
            call.call_id,
            cseq,
            target,
        )
        return {"call-id": call.call_id, "refer-to": target, "to": call.caller_contact, "cseq": cseq}

    def _send_in_dialog(
        self,
        call: Call,
        method: str,
        *,
        toward_caller: bool,
        cseq: int,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        """A request of this proxy's own within the call (tm's t_request_within): to the caller in the callee's
        name or to the callee in the caller's, along that side's route set; retransmitted until answered, the
        answer absorbed."""
        caller = f"<{call.from_uri}>;tag={call.from_tag}"
        callee = f"<{call.to_uri}>;tag={call.to_tag}"
        contact = call.caller_contact if toward_caller else call.callee_contact
        routes = call.caller_route_set if toward_caller else call.callee_route_set
        request = SipMessage(method=method, uri=contact)
        branch = f"{self._branch_prefix}{next(self._branches)}"
        request.add("Via", f"SIP/2.0/UDP {self.config.host}:{self.config.port};branch={branch};rport")
        for route in routes:
            request.add("Route", route)
        request.add("From", callee if toward_caller else caller)
        request.add("To", caller if toward_caller else callee)
        request.add("Call-ID", call.call_id)
        request.add("CSeq", f"{cseq} {method}")
        request.add("Max-Forwards", "70")
        request.add("User-Agent", self._server_header())
        for name, value in extra or []:
            request.add(name, value)
        if not toward_caller:
            self._present(request, toward_caller=False)
        next_hop = parse_uri(parse_name_addr(routes[0]).uri) if routes else parse_uri(contact)
        if next_hop is None:
            log.warning("call %s: no address to send %s to (%r)", call.call_id, method, contact)
            return
        client = ClientTxn(branch, request, request.to_bytes(), next_hop.address(), None)
        self.client_txns[branch] = client
        self.send(client.data, client.target)
        client.timers.append(self._later(T1, self._retransmit, client))
        client.timers.append(self._later(self.config.no_response_timeout, self._no_response, client))

    # --- HTTP introspection -----------------------------------------------------------------------------
    def _health(self, _query: Query) -> tuple[int, Any]:
        confirmed = sum(1 for call in self.calls.values() if call.state == "confirmed")
        return 200, {
            "status": "ok",
            "name": self.config.name,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "registrations": self.location.count(),
            "dialogs": confirmed,
            "calls": len(self.calls),
            "transactions": {"server": len(self.server_txns), "client": len(self.client_txns)},
            "counters": dict(self.counters),
            "relay": self.relay.status() if self.relay is not None else None,
            "cdr": {"written": self.cdrs.written, "failed": self.cdrs.failed, "pending": self.cdrs.pending}
            if self.cdrs is not None
            else None,
        }

    def _registrations(self, query: Query) -> tuple[int, Any]:
        users = query.get("user")
        rows = [row for row in self.location.snapshot() if not users or row["user"] in users]
        return 200, {"registrations": rows}

    def _dialogs(self, query: Query) -> tuple[int, Any]:
        wanted = query.get("call_id")
        rows = [call.describe() for call in self.calls.values() if not wanted or call.call_id in wanted]
        return 200, {"dialogs": rows}
