"""Reading the INVITE that started a call: headers (folded and compact forms), name-addr users, Diversion.

pjsua2 hands the whole message over as text (``OnIncomingCallParam.rdata.wholeMsg``); these small pure
functions take what the applications need from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

COMPACT = {"f": "from", "t": "to", "i": "call-id", "m": "contact", "v": "via", "l": "content-length"}
_URI_USER = re.compile(r"^sips?:(?:(?P<user>[^@;>?]+)@)?", re.IGNORECASE)


def parse_headers(message: str) -> tuple[str, dict[str, list[str]]]:
    """(start line, lower-case header name -> values in order) of a SIP message's head."""
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    start = lines[0].strip() if lines else ""
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        elif line.strip():
            unfolded.append(line)
    headers: dict[str, list[str]] = {}
    for line in unfolded:
        name, separator, value = line.partition(":")
        if not separator:
            continue
        key = name.strip().lower()
        key = COMPACT.get(key, key)
        headers.setdefault(key, []).extend(_split_commas(value.strip()) if key == "diversion" else [value.strip()])
    return start, headers


def _split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and angle brackets (Diversion may list several)."""
    parts: list[str] = []
    depth, quoted = 0, False
    current: list[str] = []
    for char in value:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth = max(0, depth - 1)
        if char == "," and not quoted and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def uri_of(name_addr: str) -> str:
    """The URI in ``"Name" <sip:u@h>;tag=x`` or ``sip:u@h;tag=x``."""
    value = name_addr.strip()
    if "<" in value and ">" in value:
        return value[value.index("<") + 1 : value.index(">")].strip()
    return value.split(";", 1)[0].strip()


def user_of(name_addr: str) -> str:
    """The user part of the URI in a name-addr (``tel:`` numbers too); ``""`` when there is none."""
    uri = uri_of(name_addr)
    if uri[:4].lower() == "tel:":
        return uri[4:].split(";", 1)[0]
    match = _URI_USER.match(uri)
    if match is None or not match.group("user"):
        return ""
    return match.group("user").split(";", 1)[0]


def request_user(start_line: str) -> str:
    """The user part of the Request-URI of ``INVITE sip:voicemail@host SIP/2.0``."""
    parts = start_line.split()
    return user_of(parts[1]) if len(parts) >= 2 else ""


@dataclass
class Invite:
    """What the applications read from an INVITE."""

    service: str  # Request-URI user
    call_id: str
    caller: str  # P-Asserted-Identity user, else From user
    to_user: str
    diverted_from: str  # user of the topmost Diversion (the last redirecting party), "" without one
    diversions: list[str] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def original_callee(self) -> str:
        """Whose call this was: the Diversion's user, else the To user when it names someone else."""
        if self.diverted_from:
            return self.diverted_from
        return self.to_user if self.to_user and self.to_user != self.service else ""


def parse_invite(message: str) -> Invite:
    start, headers = parse_headers(message)
    asserted = headers.get("p-asserted-identity", [])
    caller = user_of(asserted[0]) if asserted else ""
    diversions = headers.get("diversion", [])
    return Invite(
        service=request_user(start),
        call_id=(headers.get("call-id") or [""])[0],
        caller=caller or user_of((headers.get("from") or [""])[0]),
        to_user=user_of((headers.get("to") or [""])[0]),
        diverted_from=user_of(diversions[0]) if diversions else "",
        diversions=[user_of(value) for value in diversions],
        headers=headers,
    )
