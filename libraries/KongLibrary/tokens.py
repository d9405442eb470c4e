"""JSON Web Tokens for Kong's ``jwt`` plugin, signed with the standard library (HMAC-SHA2, RFC 7515/7519).

Kong looks the credential up by the claim named in the plugin's ``key_claim_name`` (default ``iss``), which
must hold the credential's ``key``; it then checks the signature with the credential's ``secret``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWTs are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_jwt(claims: Mapping[str, Any], secret: str | bytes, algorithm: str = "HS256") -> str:
    """Return a compact JWS of ``claims`` signed with ``secret`` using an HMAC ``algorithm``."""
    digest = ALGORITHMS.get(algorithm.upper())
    if digest is None:
        raise ValueError(
            f"Cannot sign a JWT with algorithm '{algorithm}': only {', '.join(ALGORITHMS)} (shared secret) are "
            "supported. Create the JWT credential with algorithm=HS256."
        )
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    header = {"alg": algorithm.upper(), "typ": "JWT"}
    signing_input = f"{b64url(_compact(header))}.{b64url(_compact(dict(claims)))}"
    signature = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return a token's header and claims without checking the signature (for logs and checks)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"'{token[:20]}...' is not a compact JWT (three dot-separated parts).")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    return header, claims


def credential_claims(
    key: str, *, key_claim_name: str = "iss", expires_in: float | None = 300.0, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The claims Kong needs for a credential ``key``: the key claim, ``iat`` and ``exp``, plus ``extra``."""
    now = int(time.time())
    claims: dict[str, Any] = {key_claim_name: key, "iat": now}
    if expires_in is not None:
        claims["exp"] = now + int(expires_in)
    claims.update(extra or {})
    return claims


def _compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
