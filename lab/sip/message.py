"""SIP messages (RFC 3261) over UDP: parsing, the header forms the proxy edits, and serialisation.

Headers keep their order and are stored one value per entry; ``Via``, ``Route`` and ``Record-Route`` lines that
carry a comma-separated list are split into entries. Compact forms (``v``, ``f``, ``t``, ``i``, ``m``, ``l``,
``c``, ...) are expanded to the long names. Text is handled as Latin-1 so every byte survives a round trip.
``Content-Length`` is recomputed on output. A datagram that is not SIP raises `SipParseError`; a request that
starts well but is broken further in raises it with the ``partial`` message, so a 400 can still be addressed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAGIC_COOKIE = "z9hG4bK"
REQUIRED_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
MAX_DATAGRAM = 65_535

COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
}
_NAMES = (
    "Via From To Call-ID CSeq Contact Content-Length Content-Type Content-Encoding Content-Disposition Max-Forwards "
    "Route Record-Route Authorization Proxy-Authorization WWW-Authenticate Proxy-Authenticate Expires Min-Expires "
    "User-Agent Server Allow Supported Require Proxy-Require Unsupported Event Refer-To Referred-By Diversion Date "
    "Subject Accept Retry-After Reason Warning Session-Expires Min-SE P-Asserted-Identity Allow-Events "
    "Subscription-State Timestamp Organization Priority Call-Info Alert-Info In-Reply-To Reply-To"
)
CANONICAL = {name.lower(): name for name in _NAMES.split()}
LISTS = frozenset({"Via", "Route", "Record-Route"})

_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6]\d\d) ?(.*)$")
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0$")
_URI = re.compile(
    r"^(?P<scheme>sips?):(?:(?P<user>[^@]*)@)?(?P<host>\[[^\]]+\]|[^:;?]+)(?::(?P<port>\d+))?"
    r"(?P<params>;[^?]*)?(?:\?(?P<headers>.*))?$",
    re.IGNORECASE,
)
_VIA = re.compile(
    r"^SIP\s*/\s*2\.0\s*/\s*(?P<transport>[A-Za-z]+)\s+(?P<host>\[[^\]]+\]|[^:;\s]+)(?::(?P<port>\d+))?\s*(?P<params>;.*)?$"
)


class SipParseError(ValueError):
    """Not a usable SIP message; ``partial`` holds what was read when it was at least a request's start."""

    def __init__(self, reason: str, partial: SipMessage | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial


def canonical(name: str) -> str:
    lowered = name.strip().lower()
    return COMPACT.get(lowered) or CANONICAL.get(lowered) or name.strip()


@dataclass
class SipMessage:
    """A request (``method``/``uri``) or a response (``status``/``reason``), headers in order, and a body."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    # --- headers ----------------------------------------------------------------------------------------
    def get(self, name: str) -> str | None:
        name = canonical(name)
        return next((value for key, value in self.headers if key == name), None)

    def get_all(self, name: str) -> list[str]:
        name = canonical(name)
        return [value for key, value in self.headers if key == name]

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header by one with ``value`` (at the first one's place, else at the end)."""
        name = canonical(name)
        index = next((i for i, (key, _) in enumerate(self.headers) if key == name), len(self.headers))
        self.remove(name)
        self.headers.insert(min(index, len(self.headers)), (name, value))

    def remove(self, name: str) -> None:
        name = canonical(name)
        self.headers = [(key, value) for key, value in self.headers if key != name]

    def remove_first(self, name: str) -> str | None:
        name = canonical(name)
        for index, (key, value) in enumerate(self.headers):
            if key == name:
                del self.headers[index]
                return value
        return None

    def prepend(self, name: str, value: str) -> None:
        """Insert ``name`` above any header of that name (a Via, a Record-Route), else at the top."""
        name = canonical(name)
        index = next((i for i, (key, _) in enumerate(self.headers) if key == name), 0)
        self.headers.insert(index, (name, value))

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical(name), value))

    # --- frequently used values -------------------------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.get("CSeq") or "").strip().partition(" ")
        return int(number) if number.isdigit() else 0, method.strip().upper()

    @property
    def from_tag(self) -> str | None:
        return header_param(self.get("From") or "", "tag")

    @property
    def to_tag(self) -> str | None:
        return header_param(self.get("To") or "", "tag")

    def top_via(self) -> Via | None:
        value = self.get("Via")
        return parse_via(value) if value else None

    def copy(self) -> SipMessage:
        return SipMessage(self.method, self.uri, self.status, self.reason, list(self.headers), self.body)

    def to_bytes(self) -> bytes:
        start = f"{self.method} {self.uri} SIP/2.0" if self.is_request else f"SIP/2.0 {self.status} {self.reason}"
        lines = [start]
        lines.extend(f"{key}: {value}" for key, value in self.headers if key != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + self.body

    def summary(self) -> str:
        first = f"{self.method} {self.uri}" if self.is_request else f"{self.status} {self.reason}"
        return f"{first} (Call-ID {self.call_id}, CSeq {self.get('CSeq')})"


def parse(data: bytes) -> SipMessage:
    """Parse one datagram; raise `SipParseError` when it is not a well-formed SIP message."""
    if len(data) > MAX_DATAGRAM:
        raise SipParseError("datagram too large")
    head, body = _split(data)
    lines = re.split(r"\r?\n", head.decode("latin-1"))
    start = lines[0].strip()
    message = SipMessage()
    request = _REQUEST_LINE.match(start)
    status = _STATUS_LINE.match(start)
    if request:
        message.method, message.uri = request.group(1).upper(), request.group(2)
    elif status:
        message.status, message.reason = int(status.group(1)), status.group(2).strip()
    else:
        raise SipParseError(f"not a SIP start line: {start[:40].encode('latin-1', 'replace')!r}")
    partial = message if message.is_request else None
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        elif line.strip():
            unfolded.append(line)
    problems = []
    for line in unfolded:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name.strip()):
            problems.append(f"bad header line {line[:40]!r}")
            continue
        key = canonical(name)
        values = split_list(value) if key in LISTS else [value.strip()]
        message.headers.extend((key, item) for item in values)
    message.body = body
    if problems:
        raise SipParseError(problems[0], partial)
    missing = [name for name in REQUIRED_HEADERS if message.get(name) is None]
    if missing:
        raise SipParseError(f"missing {', '.join(missing)}", partial)
    _check(message, partial)
    return message


def _split(data: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = data.find(separator)
        if index >= 0:
            return data[:index], data[index + len(separator) :]
    return data, b""


def _check(message: SipMessage, partial: SipMessage | None) -> None:
    length = message.get("Content-Length")
    if length is not None:
        if not length.strip().isdigit():
            raise SipParseError(f"bad Content-Length {length!r}", partial)
        size = int(length)
        if size > len(message.body):
            raise SipParseError(f"Content-Length {size} exceeds the {len(message.body)}-byte body", partial)
        message.body = message.body[:size]
    number, method = message.cseq
    if not number or not method:
        raise SipParseError(f"bad CSeq {message.get('CSeq')!r}", partial)
    if message.is_request and method != message.method:
        raise SipParseError(f"CSeq method {method} does not match {message.method}", partial)
    via = message.top_via()
    if via is None:
        raise SipParseError(f"bad Via {message.get('Via')!r}", partial)
    max_forwards = message.get("Max-Forwards")
    if max_forwards is not None and not max_forwards.strip().isdigit():
        raise SipParseError(f"bad Max-Forwards {max_forwards!r}", partial)
    if message.is_request and message.uri is not None and ":" not in message.uri:
        raise SipParseError(f"bad Request-URI {message.uri!r}", partial)


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, leaving commas inside quotes and ``<...>`` alone."""
    items: list[str] = []
    current: list[str] = []
    quoted = angle = False
    escape = False
    for char in value:
        if escape:
            escape = False
        elif char == "\\" and quoted:
            escape = True
        elif char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            angle = True
        elif char == ">" and not quoted:
            angle = False
        elif char == "," and not quoted and not angle:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


# --- Via ------------------------------------------------------------------------------------------------
@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: list[tuple[str, str | None]]

    def param(self, name: str) -> str | None:
        return next((value or "" for key, value in self.params if key.lower() == name), None)

    def has(self, name: str) -> bool:
        return any(key.lower() == name for key, _ in self.params)

    def set_param(self, name: str, value: str | None) -> None:
        for index, (key, _) in enumerate(self.params):
            if key.lower() == name:
                self.params[index] = (key, value)
                return
        self.params.append((name, value))

    @property
    def branch(self) -> str:
        return self.param("branch") or ""

    def response_address(self) -> tuple[str, int]:
        """Where a response goes (RFC 3261 18.2.2, RFC 3581): received/rport when present, else sent-by."""
        host = self.param("received") or self.host.strip("[]")
        rport = self.param("rport")
        port = int(rport) if rport and rport.isdigit() else (self.port or 5060)
        return host, port

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        params = "".join(f";{key}" if value is None else f";{key}={value}" for key, value in self.params)
        return f"SIP/2.0/{self.transport} {self.host}{port}{params}"


def parse_via(value: str) -> Via | None:
    match = _VIA.match(value.strip())
    if not match:
        return None
    return Via(
        transport=match.group("transport").upper(),
        host=match.group("host"),
        port=int(match.group("port")) if match.group("port") else None,
        params=_params(match.group("params") or ""),
    )


def _params(text: str) -> list[tuple[str, str | None]]:
    params: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        key, equals, value = item.strip().partition("=")
        if key:
            params.append((key.strip(), value.strip() if equals else None))
    return params


# --- URIs and name-addr ---------------------------------------------------------------------------------
@dataclass
class SipUri:
    scheme: str
    user: str | None
    host: str
    port: int | None
    params: list[tuple[str, str | None]]
    headers: str | None = None

    def param(self, name: str) -> str | None:
        return next((value or "" for key, value in self.params if key.lower() == name), None)

    def has(self, name: str) -> bool:
        return any(key.lower() == name for key, _ in self.params)

    def address(self) -> tuple[str, int]:
        """Host and port to send to (maddr ignored; no DNS: hosts are IP addresses or ``localhost``)."""
        host = self.host.strip("[]")
        return ("127.0.0.1" if host.lower() == "localhost" else host), self.port or 5060

    def with_user(self, user: str | None) -> SipUri:
        return SipUri(self.scheme, user, self.host, self.port, list(self.params), self.headers)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        params = "".join(f";{key}" if value is None else f";{key}={value}" for key, value in self.params)
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{user}{self.host}{port}{params}{headers}"


def parse_uri(text: str) -> SipUri | None:
    match = _URI.match(text.strip())
    if not match:
        return None
    return SipUri(
        scheme=match.group("scheme").lower(),
        user=match.group("user") or None,
        host=match.group("host"),
        port=int(match.group("port")) if match.group("port") else None,
        params=_params(match.group("params") or ""),
        headers=match.group("headers"),
    )


@dataclass
class NameAddr:
    display: str
    uri: str
    params: list[tuple[str, str | None]]

    def param(self, name: str) -> str | None:
        return next((value or "" for key, value in self.params if key.lower() == name), None)

    def __str__(self) -> str:
        display = f"{self.display} " if self.display else ""
        params = "".join(f";{key}" if value is None else f";{key}={value}" for key, value in self.params)
        return f"{display}<{self.uri}>{params}"


def parse_name_addr(value: str) -> NameAddr:
    """``"Bob" <sip:bob@host>;tag=1`` or ``sip:bob@host;tag=1`` (then everything after the URI's first ``;``
    is a header parameter, RFC 3261 20.10)."""
    value = value.strip()
    if "<" in value and ">" in value:
        display, _, rest = value.partition("<")
        uri, _, params = rest.partition(">")
        return NameAddr(display.strip(), uri.strip(), _params(params))
    uri, _, params = value.partition(";")
    return NameAddr("", uri.strip(), _params(params))


def header_param(value: str, name: str) -> str | None:
    return parse_name_addr(value).param(name) if value else None


def uri_user(value: str) -> str | None:
    """The user part of the URI in a From/To/Contact value."""
    uri = parse_uri(parse_name_addr(value).uri)
    return uri.user if uri else None


def new_branch(token: str) -> str:
    return f"{MAGIC_COOKIE}{token}"
