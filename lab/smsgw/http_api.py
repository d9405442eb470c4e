"""The HTTP API in Jasmin's shape: ``/send``, ``/ping``, and ``/health`` for the lab.

``GET|POST /send`` takes Jasmin's arguments from the query string, a form body or a JSON body: ``username``,
``password``, ``to``, ``from``, ``content`` or ``hex-content``, ``coding`` (0 GSM 03.38 by default, 1 IA5,
3 Latin-1, 8 UCS2, others sent as octets), ``dlr`` (yes/no), ``dlr-url``, ``dlr-level`` (1: on the carrier's
submit_sm_resp, 2: on the final receipt, 3: both), ``dlr-method`` (GET/POST, default POST), ``priority``
(0-3), ``validity-period`` (minutes), ``sdt`` and ``tags`` (accepted). It answers like Jasmin::

    200 Success "<uuid>"
    400 Error "Mandatory argument [to] is not found."     (and "Argument [x] is unknown.", "... invalid value")
    403 Error "Authentication failure for username:x"
    403 Error "User throughput exceeded"
    412 Error "No route found"

A long ``content`` is split here (never cutting a GSM escape or a surrogate pair) into UDH parts, each its own
upstream submit; the one id returned names the whole message. With ``dlr-level`` 1 or 3 the level-1 callback
goes once every part has its submit_sm_resp (``ESME_ROK``, or the first error); with 2 or 3 the level-2
callback goes once every part has a final receipt (``DELIVRD`` when all were delivered, else the first other
state; ``sub``/``dlvrd`` count parts). Differences from Jasmin: content that coding 0 cannot carry is refused
(400) instead of being replaced by ``?``; receipts are asked for on every part, not only the last.

The server is a small asyncio HTTP/1.1 server (keep-alive; request head up to 16 KiB, body up to 64 KiB,
10 s to send a request, 30 s idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import urllib.parse
import uuid
from datetime import timedelta
from http import HTTPStatus
from typing import Any, Protocol

from SmppLibrary.addressing import relative_validity
from SmppLibrary.codec import (
    ESM_UDHI,
    PART_LIMIT,
    SINGLE_LIMIT,
    Coding,
    build_udh,
    encode_text,
    split_text,
)

from lab.smsgw.config import GatewayConfig, User
from lab.smsgw.store import Message

log = logging.getLogger("lab.smsgw.http")

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
REQUEST_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
TEXT_CODINGS = {0: Coding.GSM7, 1: Coding.IA5, 3: Coding.LATIN1, 8: Coding.UCS2}
MAX_SOURCE = 20

# Jasmin's /send arguments: name -> (optional, pattern of a valid value or None).
SEND_ARGUMENTS: dict[str, tuple[bool, re.Pattern[str] | None]] = {
    "to": (False, re.compile(r"^\+?\d+$")),
    "from": (True, re.compile(rf"^.{{1,{MAX_SOURCE}}}$")),
    "coding": (True, re.compile(r"^(0|1|2|3|4|5|6|7|8|9|10|13|14)$")),
    "username": (False, re.compile(r"^.{1,16}$")),
    "password": (False, re.compile(r"^.{1,16}$")),
    "priority": (True, re.compile(r"^[0-3]$")),
    "sdt": (True, re.compile(r"^\d{12}\d\d{2}[+\-R]$")),
    "validity-period": (True, re.compile(r"^\d+$")),
    "dlr": (False, re.compile(r"^(yes|no)$")),
    "dlr-url": (True, re.compile(r"^https?://.+$")),
    "dlr-level": (True, re.compile(r"^[1-3]$")),
    "dlr-method": (True, re.compile(r"^(GET|POST)$")),
    "tags": (True, re.compile(r"^[-a-zA-Z0-9,]*$")),
    "content": (True, None),
    "hex-content": (True, re.compile(r"^([0-9a-fA-F]{2})*$")),
}


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpCore(Protocol):
    """What the HTTP API needs from the gateway."""

    config: GatewayConfig

    def take_token(self, username: str, interface: str) -> bool: ...

    def accept(self, messages: list[Message], then: Any) -> None: ...

    def health(self) -> dict[str, Any]: ...


class HttpApi:
    def __init__(self, core: HttpCore) -> None:
        self.core = core
        self.config = core.config
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.config.host, self.config.http_port, limit=MAX_HEAD)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)

    # --- HTTP/1.1 --------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            first = True
            while True:
                keep_alive = await self._one_request(reader, writer, IDLE_TIMEOUT if not first else REQUEST_TIMEOUT)
                first = False
                if not keep_alive:
                    break
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wait: float) -> bool:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
        except (TimeoutError, asyncio.IncompleteReadError):
            return False
        except asyncio.LimitOverrunError:
            await self._respond(writer, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, 'Error "Request head too large"')
            return False
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._respond(writer, HTTPStatus.BAD_REQUEST, 'Error "Malformed request line"')
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, separator, value = line.partition(":")
            if separator:
                headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers:
            await self._respond(writer, HTTPStatus.NOT_IMPLEMENTED, 'Error "Chunked bodies are not supported"')
            return False
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            await self._respond(writer, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f'Error "Body over {MAX_BODY} octets"')
            return False
        if length and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = await asyncio.wait_for(reader.readexactly(length), REQUEST_TIMEOUT) if length else b""
        except TimeoutError:
            return False
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        status, content_type, payload = await self._route(method, target, headers, body)
        await self._respond(writer, status, payload, content_type, keep_alive=keep_alive)
        return keep_alive

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: HTTPStatus,
        body: str,
        content_type: str = "text/plain; charset=utf-8",
        *,
        keep_alive: bool = False,
    ) -> None:
        data = body.encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(data)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + data)
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()

    async def _route(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[HTTPStatus, str, str]:
        path, _, query = target.partition("?")
        if path == "/ping" and method == "GET":
            return HTTPStatus.OK, "text/plain", "Jasmin/PONG"
        if path == "/health" and method == "GET":
            return HTTPStatus.OK, "application/json", json.dumps(self.core.health())
        if path == "/send":
            if method not in ("GET", "POST"):
                return HTTPStatus.METHOD_NOT_ALLOWED, "text/plain", f'Error "Method {method} not allowed"'
            try:
                message_id = await self._send(_arguments(query, headers, body))
            except ApiError as error:
                log.info("/send refused: %d %s", error.status.value, error.message)
                return error.status, "text/plain", f'Error "{error.message}"'
            return HTTPStatus.OK, "text/plain", f'Success "{message_id}"'
        return HTTPStatus.NOT_FOUND, "text/plain", f'Error "No resource {path}"'

    # --- /send -------------------------------------------------------------------------------------------

    async def _send(self, args: dict[str, str]) -> str:
        if not args:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "Mandatory arguments not found, please refer to the HTTPAPI specifications."
            )
        args.setdefault("coding", "0")
        if "dlr-url" in args or "dlr-level" in args:
            args["dlr"] = "yes"
        args.setdefault("dlr", "no")
        if args["dlr"] == "yes":
            args.setdefault("dlr-level", "1")
            args.setdefault("dlr-method", "POST")
        if "dlr-method" in args:
            args["dlr-method"] = args["dlr-method"].upper()
        for name in args:
            if name not in SEND_ARGUMENTS:
                raise ApiError(HTTPStatus.BAD_REQUEST, f"Argument [{name}] is unknown.")
        for name, (optional, pattern) in SEND_ARGUMENTS.items():
            if name in args:
                if pattern is not None and not pattern.match(args[name]):
                    raise ApiError(HTTPStatus.BAD_REQUEST, f"Argument [{name}] has an invalid value: [{args[name]}].")
            elif not optional:
                raise ApiError(HTTPStatus.BAD_REQUEST, f"Mandatory argument [{name}] is not found.")
        if "content" not in args and "hex-content" not in args:
            raise ApiError(HTTPStatus.BAD_REQUEST, "content or hex-content not present.")
        if "content" in args and "hex-content" in args:
            raise ApiError(HTTPStatus.BAD_REQUEST, "content and hex-content cannot be used both in same request.")
        user = self._authenticate(args["username"], args["password"])
        coding = int(args["coding"])
        payloads = _payloads(args.get("content"), args.get("hex-content"), coding)
        destination = args["to"].lstrip("+")
        connector = self.config.route(destination)
        if connector is None:
            raise ApiError(HTTPStatus.PRECONDITION_FAILED, "No route found")
        if not self.core.take_token(user.name, "http"):
            raise ApiError(HTTPStatus.FORBIDDEN, "User throughput exceeded")
        messages = self._messages(user, args, destination, connector, coding, payloads)
        accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def stored(committed: bool) -> None:
            if not accepted.done():
                accepted.set_result(committed)

        self.core.accept(messages, stored)
        if not await accepted:
            raise ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "Cannot store the message, see the gateway log")
        log.debug("/send from %s to %s: %s (%d part(s))", user.name, destination, messages[0].msg_id, len(messages))
        return messages[0].msg_id

    def _authenticate(self, username: str, password: str) -> User:
        user = self.config.users.get(username)
        if user is None or user.password != password:
            raise ApiError(HTTPStatus.FORBIDDEN, f"Authentication failure for username:{username}")
        return user

    def _messages(
        self,
        user: User,
        args: dict[str, str],
        destination: str,
        connector: str,
        coding: int,
        payloads: list[bytes],
    ) -> list[Message]:
        source = args.get("from", "")
        if source.isdigit():
            source_ton, source_npi = 1, 1
        elif source:
            source_ton, source_npi = 5, 0
        else:
            source_ton, source_npi = 0, 0
        level = int(args["dlr-level"]) if args["dlr"] == "yes" else 0
        registered_delivery = 1 if level in (2, 3) else 0
        fields: dict[str, Any] = {
            "source_addr_ton": source_ton,
            "source_addr_npi": source_npi,
            "source_addr": source,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": destination,
            "esm_class": 0,
            "priority_flag": int(args.get("priority", 0)),
            "registered_delivery": registered_delivery,
            "data_coding": coding,
        }
        if "validity-period" in args:
            fields["validity_period"] = relative_validity(timedelta(minutes=int(args["validity-period"])))
        if "sdt" in args:
            fields["schedule_delivery_time"] = args["sdt"]
        msg_id = str(uuid.uuid4())
        total = len(payloads)
        reference = random.randint(0, 255)
        messages = []
        for number, user_data in enumerate(payloads, start=1):
            part_fields = dict(fields)
            payload = user_data
            if total > 1:
                part_fields["esm_class"] = ESM_UDHI
                payload = build_udh(reference, total, number) + user_data
            messages.append(
                Message(
                    id=msg_id if total == 1 else f"{msg_id}/{number}",
                    msg_id=msg_id,
                    username=user.name,
                    origin="http",
                    connector=connector,
                    fields=part_fields,
                    short_message=payload,
                    tlvs=[],
                    registered_delivery=registered_delivery,
                    part=number,
                    parts=total,
                    dlr_url=args.get("dlr-url") if level else None,
                    dlr_level=level,
                    dlr_method=args.get("dlr-method") if level else None,
                )
            )
        return messages


def _arguments(query: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Arguments from the query string, then a form or JSON body (the body wins); last value of each."""
    args = {key: values[-1] for key, values in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "The JSON body cannot be read.") from None
        if not isinstance(data, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "The JSON body must be an object.")
        args.update({str(key): str(value) for key, value in data.items()})
    elif body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "The form body is not UTF-8.") from None
        form = urllib.parse.parse_qs(text, keep_blank_values=True)
        args.update({key: values[-1] for key, values in form.items()})
    return args


def _payloads(content: str | None, hex_content: str | None, coding: int) -> list[bytes]:
    """The user data of each part (without UDH) for ``content`` or ``hex-content`` in ``coding``."""
    text_coding = TEXT_CODINGS.get(coding)
    if hex_content is not None:
        data = bytes.fromhex(hex_content)
        single = SINGLE_LIMIT[Coding.GSM7] if text_coding is Coding.GSM7 else 140
        size = PART_LIMIT[Coding.GSM7] if text_coding is Coding.GSM7 else 134
        return _chunks(data, single, size)
    text = content or ""
    if text_coding is None:
        return _chunks(text.encode("utf-8"), 140, 134)
    try:
        return [encode_text(part, text_coding) for part in split_text(text, text_coding)]
    except ValueError as error:
        hint = " (GSM 03.38); use coding=8 (UCS2)" if coding == 0 else "; use coding=8 (UCS2)"
        first = str(error).split(". ")[0]
        raise ApiError(
            HTTPStatus.BAD_REQUEST, f"Argument [content] cannot be sent in coding {coding}{hint}: {first}."
        ) from None


def _chunks(data: bytes, single: int, size: int) -> list[bytes]:
    if len(data) <= single:
        return [data]
    chunks = [data[start : start + size] for start in range(0, len(data), size)]
    if len(chunks) > 255:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"Argument [hex-content] needs {len(chunks)} parts; 255 at most.")
    return chunks
