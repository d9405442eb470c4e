"""Keywords for consumers' credentials: key-auth API keys and JWT secrets (and signing tokens with them)."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any, Literal

from robot.api import logger
from robot.api.types import Secret
from robotlibcore import keyword

from KongLibrary.context import segment
from KongLibrary.keywords.base import KongComponent, Tags, is_uuid
from KongLibrary.tokens import credential_claims, sign_jwt

HmacAlgorithm = Literal["HS256", "HS384", "HS512"]


class CredentialKeywords(KongComponent):
    # --- key-auth ----------------------------------------------------------------------------------
    @keyword(name="Create Key Auth Credential")
    def create_key_auth_credential(self, consumer: str, key: str | None = None, *, tags: Tags = None) -> dict[str, Any]:
        """Gives consumer ``consumer`` an API key for the ``key-auth`` plugin and returns the credential.

        Without ``key`` Kong generates one; it is in ``${credential}[key]`` as a Robot ``Secret`` (shown as
        ``<secret>`` wherever Robot logs it); `Call Through Gateway` and `Wait Until Route Answers` take it as it is.

        | ${credential}= | `Create Key Auth Credential` | acme |
        | ${response}= | `Call Through Gateway` | GET | /billing/health | consumer_key=${credential}[key] |
        """
        self.ctx.add_secret(key)
        body = self._entity({"key": key}, tags)
        credential = self.ctx.admin(
            "POST", f"/consumers/{segment(consumer)}/key-auth", json_body=body, expected=(201, 200)
        )
        self.ctx.add_secret(credential.get("key"))
        return hide_key(credential)

    @keyword(name="Get Key Auth Credentials")
    def get_key_auth_credentials(self, consumer: str) -> list[dict[str, Any]]:
        """Returns the ``key-auth`` credentials of consumer ``consumer``."""
        credentials = self.ctx.list_all(f"/consumers/{segment(consumer)}/key-auth")
        for credential in credentials:
            self.ctx.add_secret(credential.get("key"))
        return [hide_key(credential) for credential in credentials]

    @keyword(name="Get Key Auth Credential")
    def get_key_auth_credential(self, consumer: str, credential: Secret | str) -> dict[str, Any]:
        """Returns consumer ``consumer``'s ``key-auth`` credential ``credential`` (its id or the key itself)."""
        credential = reveal(credential)
        self.ctx.add_secret(None if is_uuid(credential) else credential)
        found = self.ctx.admin("GET", f"/consumers/{segment(consumer)}/key-auth/{segment(credential)}", expected=(200,))
        self.ctx.add_secret(found.get("key"))
        return hide_key(found)

    @keyword(name="Update Key Auth Credential")
    def update_key_auth_credential(self, consumer: str, credential: Secret | str, **fields: Any) -> dict[str, Any]:
        """Changes the given fields of a ``key-auth`` credential (``PATCH``), e.g. ``key=`` or ``tags=``."""
        if not fields:
            raise ValueError("Update Key Auth Credential needs at least one field to change, e.g. key=new-key.")
        credential = reveal(credential)
        self.ctx.add_secret(None if is_uuid(credential) else credential)
        if "key" in fields:
            fields["key"] = reveal(fields["key"])
            self.ctx.add_secret(fields["key"])
        path = f"/consumers/{segment(consumer)}/key-auth/{segment(credential)}"
        return hide_key(self.ctx.admin("PATCH", path, json_body=fields, expected=(200,)))

    @keyword(name="Delete Key Auth Credential")
    def delete_key_auth_credential(self, consumer: str, credential: Secret | str) -> None:
        """Deletes consumer ``consumer``'s ``key-auth`` credential ``credential`` (its id or the key itself)."""
        credential = reveal(credential)
        self.ctx.add_secret(None if is_uuid(credential) else credential)
        self.ctx.admin("DELETE", f"/consumers/{segment(consumer)}/key-auth/{segment(credential)}", expected=(204, 200))

    # --- JWT ---------------------------------------------------------------------------------------
    @keyword(name="Create JWT Credential")
    def create_jwt_credential(
        self,
        consumer: str,
        *,
        key: str | None = None,
        secret: str | None = None,
        algorithm: HmacAlgorithm = "HS256",
        tags: Tags = None,
    ) -> dict[str, Any]:
        """Gives consumer ``consumer`` a credential for the ``jwt`` plugin and returns it (``key``, ``secret``).

        Without ``key`` and ``secret`` Kong generates them. Sign tokens with `Sign JWT`; the secret and
        the tokens are masked in the log.

        | ${credential}= | `Create JWT Credential` | acme |
        | ${token}= | `Sign JWT` | ${credential} |
        | ${response}= | `Call Through Gateway` | GET | /sms/campaigns | jwt=${token} |
        """
        self.ctx.add_secret(secret)
        body = self._entity({"key": key, "secret": secret, "algorithm": algorithm}, tags)
        credential = self.ctx.admin("POST", f"/consumers/{segment(consumer)}/jwt", json_body=body, expected=(201, 200))
        self.ctx.add_secret(credential.get("secret"))
        return credential

    @keyword(name="Get JWT Credentials")
    def get_jwt_credentials(self, consumer: str) -> list[dict[str, Any]]:
        """Returns the ``jwt`` credentials of consumer ``consumer``."""
        credentials = self.ctx.list_all(f"/consumers/{segment(consumer)}/jwt")
        for credential in credentials:
            self.ctx.add_secret(credential.get("secret"))
        return credentials

    @keyword(name="Get JWT Credential")
    def get_jwt_credential(self, consumer: str, credential: str) -> dict[str, Any]:
        """Returns consumer ``consumer``'s ``jwt`` credential ``credential`` (its id or its key)."""
        found = self.ctx.admin("GET", f"/consumers/{segment(consumer)}/jwt/{segment(credential)}", expected=(200,))
        self.ctx.add_secret(found.get("secret"))
        return found

    @keyword(name="Update JWT Credential")
    def update_jwt_credential(self, consumer: str, credential: str, **fields: Any) -> dict[str, Any]:
        """Changes the given fields of a ``jwt`` credential (``PATCH``), e.g. ``secret=`` to rotate it."""
        if not fields:
            raise ValueError("Update JWT Credential needs at least one field to change, e.g. secret=new-secret.")
        self.ctx.add_secret(fields.get("secret"))
        path = f"/consumers/{segment(consumer)}/jwt/{segment(credential)}"
        updated = self.ctx.admin("PATCH", path, json_body=fields, expected=(200,))
        self.ctx.add_secret(updated.get("secret"))
        return updated

    @keyword(name="Delete JWT Credential")
    def delete_jwt_credential(self, consumer: str, credential: str) -> None:
        """Deletes consumer ``consumer``'s ``jwt`` credential ``credential`` (its id or its key)."""
        self.ctx.admin("DELETE", f"/consumers/{segment(consumer)}/jwt/{segment(credential)}", expected=(204, 200))

    @keyword(name="Sign JWT")
    def sign_jwt(
        self,
        credential: dict[str, Any],
        *,
        claims: dict[str, Any] | None = None,
        expires_in: timedelta | None = timedelta(minutes=5),
        key_claim_name: str = "iss",
        secret_is_base64: bool = False,
    ) -> str:
        """Returns a token signed with a JWT ``credential`` (as `Create JWT Credential` returns it).

        The token carries the credential's ``key`` in the claim ``key_claim_name`` (the plugin's setting of
        the same name, ``iss`` by default), ``iat``, ``exp`` (now + ``expires_in``; ``None`` for none)
        and any ``claims`` given, which win. Use ``secret_is_base64=True`` when the plugin's setting of that
        name is on. Signed with HMAC (``HS256``/``HS384``/``HS512``) by the standard library.

        | ${token}= | `Sign JWT` | ${credential} |
        | ${expired}= | `Sign JWT` | ${credential} | expires_in=-1 minute |
        | ${token}= | `Sign JWT` | ${credential} | claims=${{ {'sub': 'acme'} }} |
        """
        missing = [name for name in ("key", "secret") if not credential.get(name)]
        if missing:
            raise ValueError(
                f"Sign JWT needs a JWT credential with 'key' and 'secret', but {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing. Pass the dictionary `Create JWT Credential` returned."
            )
        secret: str | bytes = str(credential["secret"])
        if secret_is_base64:
            try:
                secret = base64.b64decode(str(credential["secret"]), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(
                    "The credential's secret is not base64, but secret_is_base64=True was given."
                ) from None
        seconds = None if expires_in is None else expires_in.total_seconds()
        payload = credential_claims(str(credential["key"]), key_claim_name=key_claim_name, expires_in=seconds)
        payload.update(claims or {})
        token = sign_jwt(payload, secret, str(credential.get("algorithm") or "HS256"))
        self.ctx.add_secret(token)
        logger.info(f"Signed a JWT for key '{credential['key']}' with claims {sorted(payload)}.")
        return token


def hide_key(credential: dict[str, Any]) -> dict[str, Any]:
    """The credential with its ``key`` as a Robot ``Secret``, so that assigning it logs ``<secret>``, not the key."""
    key = credential.get("key")
    return {**credential, "key": Secret(key)} if isinstance(key, str) else credential


def reveal(value: Secret | str) -> str:
    """The text of a key given as a Robot ``Secret`` or as plain text."""
    return value.value if isinstance(value, Secret) else str(value)
