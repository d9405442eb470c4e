"""HTTP Digest authentication for SIP (RFC 3261 22, RFC 2617): MD5 with ``qop=auth`` (plain RFC 2069 accepted).

Nonces are stateless: a hex timestamp and an HMAC of it under a per-process secret, valid for ``nonce_ttl``
seconds; an expired one gets a fresh challenge with ``stale=true``. The nonce count is not tracked (Kamailio
does not either without ``nonce_count``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass
from enum import Enum

_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)')


class Verdict(Enum):
    OK = "ok"
    STALE = "stale"  # a good answer to an expired nonce: challenge again, stale=true
    BAD_NONCE = "bad-nonce"  # not a nonce of ours: challenge again
    WRONG = "wrong"  # wrong password (or response): 403


@dataclass(frozen=True)
class Credentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None


def parse_credentials(value: str) -> Credentials | None:
    """Read an ``Authorization``/``Proxy-Authorization`` value; None when it is not a usable Digest answer."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = {
        key.lower(): raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw for key, raw in _PARAM.findall(rest)
    }
    if not all(params.get(key) for key in ("username", "realm", "nonce", "uri", "response")):
        return None
    return Credentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"].lower(),
        algorithm=params.get("algorithm", "MD5"),
        qop=params.get("qop"),
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
    )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def expected_response(credentials: Credentials, password: str, method: str) -> str:
    ha1 = _md5(f"{credentials.username}:{credentials.realm}:{password}")
    ha2 = _md5(f"{method}:{credentials.uri}")
    if credentials.qop:
        return _md5(f"{ha1}:{credentials.nonce}:{credentials.nc}:{credentials.cnonce}:{credentials.qop}:{ha2}")
    return _md5(f"{ha1}:{credentials.nonce}:{ha2}")


class Authenticator:
    def __init__(self, realm: str, *, nonce_ttl: float = 300.0, secret: bytes | None = None) -> None:
        self.realm = realm
        self.nonce_ttl = nonce_ttl
        self._secret = secret or os.urandom(16)

    def _sign(self, stamp: str) -> str:
        return hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]

    def nonce(self) -> str:
        stamp = f"{int(time.time()):x}"
        return f"{stamp}{self._sign(stamp)}"

    def challenge(self, *, stale: bool = False) -> str:
        """The value of a ``WWW-Authenticate``/``Proxy-Authenticate`` header."""
        extra = ", stale=true" if stale else ""
        return f'Digest realm="{self.realm}", nonce="{self.nonce()}", qop="auth", algorithm=MD5{extra}'

    def check(self, credentials: Credentials, password: str, method: str) -> Verdict:
        stamp, signature = credentials.nonce[:-24], credentials.nonce[-24:]
        if not stamp or not hmac.compare_digest(signature, self._sign(stamp)):
            return Verdict.BAD_NONCE
        if credentials.algorithm.upper() != "MD5" or (credentials.qop and credentials.qop != "auth"):
            return Verdict.WRONG
        if credentials.qop and not (credentials.nc and credentials.cnonce):
            return Verdict.WRONG
        if not hmac.compare_digest(credentials.response, expected_response(credentials, password, method)):
            return Verdict.WRONG
        try:
            age = time.time() - int(stamp, 16)
        except ValueError:
            return Verdict.BAD_NONCE
        return Verdict.STALE if age > self.nonce_ttl else Verdict.OK
