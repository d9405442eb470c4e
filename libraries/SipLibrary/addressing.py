"""SIP addresses, numbers, headers and DTMF digits: checked here, before anything is sent.

Every check raises ``ValueError`` naming the bad value and how to write it instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_USER_CHARS = r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+"
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)"
SIP_URI = re.compile(
    rf"^(?P<scheme>sips?):(?:(?P<user>{_USER_CHARS})(?::[^@\s]*)?@)?(?P<host>{_HOST})"
    r"(?::(?P<port>\d{1,5}))?(?P<params>(?:;[A-Za-z0-9\-_.!~*'()%]+(?:=[^;?\s]*)?)*)(?:\?(?P<headers>\S+))?$"
)
NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
DTMF_DIGITS = re.compile(r"^[0-9*#A-Da-d]+$")
TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
NAME_ADDR = re.compile(r'^\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<plain>[^<"]*?))\s*<(?P<uri>[^>]*)>')
EXAMPLE = "e.g. sip:bob@127.0.0.1:5062, or a number such as +4930123456 on a phone with a domain or registrar"

# Compact header forms (RFC 3261 section 7.3.3 and extensions) and their full names.
COMPACT = {
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
}


@dataclass(frozen=True)
class SipUri:
    """The parts of a checked SIP URI."""

    text: str
    scheme: str
    user: str
    host: str
    port: int | None

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host


def parse_sip_uri(value: str, *, what: str = "SIP URI") -> SipUri:
    """Check ``value`` as a SIP URI (angle brackets allowed) and return its parts; ``ValueError`` otherwise."""
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    problem = _uri_problem(text)
    if problem:
        raise ValueError(f"{what} '{value}' is not valid: {problem}. Write it like {EXAMPLE}.")
    match = SIP_URI.match(text)
    if match is None:  # pragma: no cover - _uri_problem covers every failing case
        raise ValueError(f"{what} '{value}' is not valid. Write it like {EXAMPLE}.")
    port = int(match["port"]) if match["port"] else None
    return SipUri(text=text, scheme=match["scheme"], user=match["user"] or "", host=match["host"], port=port)


def _uri_problem(text: str) -> str:
    if not text:
        return "it is empty"
    if any(ch.isspace() for ch in text):
        return "it contains white space"
    lowered = text.lower()
    if lowered.startswith("tel:"):
        return "tel: URIs are not dialled directly; give the number alone (the phone adds its domain)"
    if lowered.startswith("sips:"):
        return "sips: needs TLS, which SipLibrary's phones do not offer; use sip: (add ;transport=tcp for TCP)"
    if not lowered.startswith("sip:"):
        if "@" in text:
            return f"the scheme is missing (did you mean 'sip:{text}'?)"
        return (
            "it is neither a SIP URI (sip:user@host[:port]) nor a number (digits, * and # with an optional +); "
            "a bare user name is dialled only by a phone with domain= or registrar="
        )
    rest = text[4:]
    if not rest:
        return "there is nothing after 'sip:'"
    if rest.startswith("@"):
        return "the user part before '@' is empty"
    host_part = rest.split("@", 1)[1] if "@" in rest else rest
    if not host_part or host_part[0] in ":;?":
        return "the host is missing"
    match = SIP_URI.match(text)
    if match is None:
        return "it does not follow sip:user@host[:port][;params] (RFC 3261)"
    if match["port"] and not 0 < int(match["port"]) < 65536:
        return f"port {match['port']} is outside 1-65535"
    return ""


def _is_user(value: str) -> bool:
    return bool(re.fullmatch(_USER_CHARS, value)) and not any(ch in value for ch in "@:;?")


def is_number(value: str) -> bool:
    return bool(NUMBER.match(value.strip()))


def destination_uri(target: str, *, domain: str | None, transport: str = "udp") -> SipUri:
    """Turn what a test dials (SIP URI, number or user name) into a checked SIP URI; ``ValueError`` before sending.

    A number becomes ``sip:NUMBER@DOMAIN`` (``#`` escaped as ``%23``); it needs the phone's domain. A bare
    user name (``bob``) is dialled the same way on a phone that has a domain.
    """
    text = target.strip()
    plain_user = bool(text) and not text.lower().startswith(("sip:", "sips:", "tel:")) and _is_user(text)
    if is_number(text) or (plain_user and domain):
        if not domain:
            raise ValueError(
                f"Number '{target}' needs a domain to be dialled, but the phone has neither domain= nor registrar=. "
                "Dial a full SIP URI such as sip:bob@127.0.0.1:5062, or create the phone with domain=."
            )
        user = text.replace("#", "%23")
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return parse_sip_uri(f"sip:{user}@{domain}{suffix}", what="Number")
    return parse_sip_uri(text, what="Destination")


def server_uri(value: str, *, what: str, transport: str = "udp") -> SipUri:
    """A registrar or proxy given as ``host[:port]`` or ``sip:host[:port]``; the transport is added for TCP."""
    text = value.strip()
    if not text.lower().startswith("sip"):
        text = f"sip:{text}"
    uri = parse_sip_uri(text, what=what)
    if uri.user:
        raise ValueError(f"{what} '{value}' should name a server (host[:port]), not a user ('{uri.user}@').")
    if transport == "tcp" and "transport=" not in uri.text.lower():
        return parse_sip_uri(f"{uri.text};transport=tcp", what=what)
    return uri


def check_user(user: str) -> str:
    text = user.strip()
    if not text or not re.fullmatch(_USER_CHARS, text) or "@" in text:
        raise ValueError(
            f"SIP user '{user}' is not valid: use letters, digits and - _ . ! ~ * ' ( ) & = + $ , ; ? / "
            "(e.g. alice or +4930123456), without '@' or spaces."
        )
    return text


def check_domain(domain: str) -> str:
    text = domain.strip()
    if not re.fullmatch(rf"{_HOST}(?::\d{{1,5}})?", text):
        raise ValueError(f"Domain '{domain}' is not a host[:port] such as example.com or 127.0.0.1:5060.")
    return text


def check_digits(digits: str) -> str:
    text = str(digits).strip()
    if not DTMF_DIGITS.match(text):
        raise ValueError(f"DTMF digits '{digits}' are not valid: use 0-9, *, # and A-D only (e.g. 1234#).")
    return text.upper()


def check_headers(headers: Mapping[str, object] | None) -> dict[str, str]:
    """Custom SIP headers: token names, one-line values. Returns them as text."""
    checked: dict[str, str] = {}
    for name, value in (headers or {}).items():
        text = str(value)
        if not TOKEN.match(str(name)):
            raise ValueError(f"SIP header name '{name}' is not valid: use a token such as X-Test-Id.")
        if "\r" in text or "\n" in text:
            raise ValueError(f"SIP header '{name}' must be one line; its value contains a line break.")
        checked[str(name)] = text
    return checked


def split_name_addr(value: str) -> tuple[str, str]:
    """``"Alice" <sip:alice@host>;tag=x`` -> ``("Alice", "sip:alice@host")``; a bare URI has no display name."""
    match = NAME_ADDR.match(value)
    if match:
        display = match["quoted"] if match["quoted"] is not None else (match["plain"] or "")
        return display.replace('\\"', '"').strip(), match["uri"].strip()
    return "", value.split(";", 1)[0].strip()


def user_of(uri: str) -> str:
    """The user part of a SIP URI (``%23`` read back as ``#``), or ``""``."""
    match = re.match(r"^\s*<?sips?:([^@>]*)@", uri)
    return match[1].split(";", 1)[0].replace("%23", "#") if match else ""


def parse_headers(message: str) -> dict[str, str]:
    """The header fields of a raw SIP message; repeated fields are joined with ``", "``, names in full form."""
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    headers: dict[str, str] = {}
    lines = head.split("\n")[1:]  # skip the start line
    unfolded: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        elif line.strip():
            unfolded.append(line)
    for line in unfolded:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = COMPACT.get(name.strip().lower(), name.strip()) if len(name.strip()) == 1 else name.strip()
        existing = next((known for known in headers if known.lower() == key.lower()), None)
        if existing is None:
            headers[key] = value.strip()
        else:
            headers[existing] = f"{headers[existing]}, {value.strip()}"
    return headers


def offered_codecs(message: str) -> list[str]:
    """The audio codec names (e.g. ``PCMU``, ``telephone-event``) of the SDP in a raw SIP message."""
    body = message.replace("\r\n", "\n").split("\n\n", 1)
    if len(body) < 2:
        return []
    return [match[1] for match in re.finditer(r"^a=rtpmap:\d+\s+([^/\s]+)", body[1], re.MULTILINE)]
