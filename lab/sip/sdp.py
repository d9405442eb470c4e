"""Reading and rewriting SDP (RFC 4566) for media anchoring, like rtpengine's ``replace-origin
replace-session-connection ICE=remove``: ``c=`` (session and media level) and ``o=`` get the relay's address,
each ``m=`` line with a non-zero port gets the relay port, ``a=rtcp:`` the port above it; ICE lines are dropped.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """Where one ``m=`` line's party receives RTP (port 0: the stream is disabled)."""

    address: str
    port: int


ICE_ATTRIBUTES = ("a=candidate", "a=ice-", "a=remote-candidates", "a=end-of-candidates")


def _lines(body: bytes) -> list[str]:
    text = body.decode("latin-1")
    return [line for line in text.replace("\r\n", "\n").split("\n") if line]


def is_sdp(content_type: str | None, body: bytes) -> bool:
    return bool(body) and (content_type or "").split(";")[0].strip().lower() == "application/sdp"


def endpoints(body: bytes) -> list[Endpoint] | None:
    """Each ``m=`` line's address and port; None when the SDP lacks a connection address or has none."""
    session_address: str | None = None
    media: list[tuple[int, str | None]] = []
    for line in _lines(body):
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 3:
                return None
            port_text = parts[1].split("/")[0]
            if not port_text.isdigit():
                return None
            media.append((int(port_text), None))
        elif line.startswith("c="):
            address = _connection_address(line)
            if address is None:
                return None
            if media:
                media[-1] = (media[-1][0], address)
            else:
                session_address = address
    result = []
    for port, address in media:
        chosen = address or session_address
        if chosen is None:
            return None
        result.append(Endpoint(chosen, port))
    return result or None


def _connection_address(line: str) -> str | None:
    parts = line[2:].split()
    if len(parts) < 3 or parts[0] != "IN":
        return None
    try:
        return str(ipaddress.ip_address(parts[2].split("/")[0]))
    except ValueError:
        return None


def rewrite(body: bytes, address: str, ports: list[int]) -> bytes:
    """The SDP with media sent to ``address``: ``ports[i]`` for the i-th ``m=`` line (0 leaves it disabled)."""
    family = "IP6" if ":" in address else "IP4"
    out: list[str] = []
    index = -1
    for original in _lines(body):
        line = original
        if line.startswith(ICE_ATTRIBUTES):
            continue
        if line.startswith("m="):
            index += 1
            parts = line.split(" ")
            port = ports[index] if index < len(ports) else 0
            if parts[1].split("/")[0] != "0" and port:
                count = parts[1].partition("/")[2]
                parts[1] = f"{port}/{count}" if count else str(port)
            line = " ".join(parts)
        elif line.startswith("c="):
            line = f"c=IN {family} {address}"
        elif line.startswith("o="):
            parts = line.split(" ")
            if len(parts) >= 6:
                parts[4:6] = [family, address]
            line = " ".join(parts)
        elif line.startswith("a=rtcp:") and 0 <= index < len(ports) and ports[index]:
            line = f"a=rtcp:{ports[index] + 1} IN {family} {address}"
        out.append(line)
    return ("\r\n".join(out) + "\r\n").encode("latin-1")
