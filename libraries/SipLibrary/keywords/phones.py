"""Keywords that create, register, describe and close test phones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from robot.api import logger
from robotlibcore import keyword
from telco_common import mask_secret

from SipLibrary.addressing import check_domain, check_user, server_uri
from SipLibrary.context import normalise
from SipLibrary.errors import SipCapacityError, SipStatusError
from SipLibrary.host import MAX_PHONES
from SipLibrary.keywords.base import SipComponent
from SipLibrary.phone import PhoneConfig, SipPhone

Transport = Literal["udp", "tcp"]


class PhoneKeywords(SipComponent):
    @keyword(name="Create SIP Phone")
    def create_sip_phone(
        self,
        alias: str,
        user: str,
        *,
        password: str | None = None,
        domain: str | None = None,
        registrar: str | None = None,
        outbound_proxy: str | None = None,
        transport: Transport = "udp",
        codecs: str | list[str] | None = None,
        port: int = 0,
        display_name: str | None = None,
        auth_user: str | None = None,
        auto_answer: int | None = None,
        expires: timedelta = timedelta(seconds=300),
    ) -> str:
        """Creates a test phone ``alias`` for SIP user ``user``; returns its direct URI ``sip:user@address:port``.

        The phone gets its own SIP port (``port=0`` picks a free one) on the library's ``bind_address``.
        Without ``registrar`` it works directly, user agent to user agent: call it at the returned URI.
        With ``registrar`` (``host[:port]`` or a SIP URI) use `Register SIP Phone`; ``domain`` defaults to
        the registrar's host and is where numbers are dialled (``sip:NUMBER@domain``). ``password`` (and
        ``auth_user``, default ``user``) answer digest challenges; it never appears in the log.
        ``outbound_proxy`` sends every request through that proxy (loose routing).

        ``codecs`` is this phone's codec order for the calls it makes (default: the library's ``codecs``);
        an incoming offer without any of them is refused with 488. ``auto_answer`` answers every incoming
        call at once with that code (e.g. ``200``, ``486``); the calls still show up in `Wait For Incoming Call`.
        ``expires`` is the registration lifetime asked for.

        At most 8 phones exist at once in one process (the pjsua2 wheel's limit on transports).

        | ${bob_uri}= | `Create SIP Phone` | bob | bob |
        | `Create SIP Phone` | alice | alice | password=${ALICE_PW} | registrar=${SIP_PROXY} |
        | `Create SIP Phone` | ivr | ivr | auto_answer=200 | codecs=PCMA,PCMU |
        """
        key = normalise(alias)
        if not key:
            raise ValueError("Phone alias must not be empty; name the phone, e.g. alice.")
        if key in self.ctx.phones:
            raise ValueError(
                f"A SIP phone with alias '{alias}' exists already; close it first or choose another alias."
            )
        if len(self.ctx.phones) >= MAX_PHONES:
            raise SipCapacityError(
                f"Phone '{alias}' would be phone number {MAX_PHONES + 1}; pjsua2-python holds {MAX_PHONES} SIP "
                "transports per process. Close a phone first (`Close SIP Phone`)."
            )
        if transport not in ("udp", "tcp"):
            raise ValueError(f"Transport '{transport}' is not supported; use udp or tcp.")
        if not 0 <= port < 65536:
            raise ValueError(f"Port {port} is outside 0-65535 (0 picks a free port).")
        if auto_answer is not None and not 100 < auto_answer < 700:
            raise ValueError(f"auto_answer={auto_answer} is not a SIP status code; use e.g. 180, 200 or 486.")
        if expires.total_seconds() < 1:
            raise ValueError(f"expires={expires} is too short; registrations need at least 1 s (e.g. 300s).")
        user = check_user(user)
        registrar_uri = server_uri(registrar, what="Registrar", transport=transport) if registrar else None
        proxy_uri = server_uri(outbound_proxy, what="Outbound proxy", transport=transport) if outbound_proxy else None
        if domain:
            domain = check_domain(domain)
        elif registrar_uri:
            domain = registrar_uri.hostport
        host = self.ctx.host
        names = [codecs] if isinstance(codecs, str) else list(codecs or [])
        names = [name.strip() for item in names for name in str(item).split(",") if name.strip()]
        codec_ids = host.resolve_codecs(names) if names else list(host.default_codecs)
        config = PhoneConfig(
            alias=alias.strip(),
            user=user,
            password=password,
            domain=domain,
            registrar=registrar_uri.text if registrar_uri else None,
            outbound_proxy=proxy_uri.text if proxy_uri else None,
            transport=transport,
            codecs=codec_ids,
            port=port,
            display_name=display_name,
            auth_user=auth_user,
            auto_answer=auto_answer,
            expires=int(expires.total_seconds()),
        )
        phone = SipPhone(host, config)
        phone.open()
        self.ctx.phones[key] = phone
        extras = [
            f"registrar {config.registrar}" if config.registrar else "no registrar (direct)",
            f"outbound proxy {config.outbound_proxy}" if config.outbound_proxy else "",
            f"password {mask_secret(password)}" if password is not None else "",
            f"auto-answer {auto_answer}" if auto_answer is not None else "",
        ]
        logger.info(
            f"SIP phone '{phone.alias}' is {phone.uri} on {transport.upper()} {phone.local_address} "
            f"({', '.join(e for e in extras if e)}; codecs {', '.join(codec_ids)})."
        )
        self.ctx.flush()
        return phone.contact_uri

    @keyword(name="Register SIP Phone")
    def register_sip_phone(
        self,
        alias: str,
        *,
        expected_status: int = 200,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Registers the phone at its registrar (digest authentication included) and checks the final status.

        Fails unless the registrar's final answer is ``expected_status``; to prove a refusal, expect it,
        e.g. ``expected_status=401`` or ``403`` for a wrong password. Returns ``status``, ``reason`` and
        ``expires`` (seconds granted).

        | `Register SIP Phone` | alice |
        | `Register SIP Phone` | mallory | expected_status=401 |
        """
        phone = self.ctx.phone(alias)
        if not phone.config.registrar:
            raise ValueError(f"Phone '{phone.alias}' has no registrar; create it with registrar=host:port to register.")
        return self._registration(phone, True, expected_status, self.ctx.seconds(timeout), message)

    @keyword(name="Unregister SIP Phone")
    def unregister_sip_phone(
        self,
        alias: str,
        *,
        expected_status: int = 200,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Removes the phone's registration (REGISTER with ``Expires: 0``) and checks the final status.

        | `Unregister SIP Phone` | alice |
        """
        phone = self.ctx.phone(alias)
        if not phone.config.registrar:
            raise ValueError(f"Phone '{phone.alias}' has no registrar, so it has no registration to remove.")
        return self._registration(phone, False, expected_status, self.ctx.seconds(timeout), message)

    def _registration(
        self, phone: SipPhone, register: bool, expected: int, seconds: float, message: str | None
    ) -> dict[str, Any]:
        action = "Registration" if register else "Unregistration"
        before = len(phone.reg_events)
        logger.info(f"{action} of '{phone.alias}' ({phone.uri}) at {phone.config.registrar}.")
        self.ctx.host.endpoint()
        phone.account.setRegistration(register)
        event = self.ctx.wait(lambda: phone.reg_events[before] if len(phone.reg_events) > before else None, seconds)
        if event is None:
            raise AssertionError(
                message
                or f"{action} of '{phone.alias}' at {phone.config.registrar} got no final answer within {seconds:g} s."
            )
        phone.registered = register and 200 <= event.code < 300
        result = {"status": event.code, "reason": event.reason, "expires": event.expiration}
        if event.code != expected:
            raise SipStatusError(
                message
                or f"{action} of '{phone.alias}' at {phone.config.registrar} should have been answered "
                f"{expected} but was {event.code} {event.reason}.",
                event.code,
                event.reason,
            )
        logger.info(f"{action} of '{phone.alias}': {event.code} {event.reason} (expires {event.expiration} s).")
        return result

    @keyword(name="Get SIP Phone Info")
    def get_sip_phone_info(self, alias: str) -> dict[str, Any]:
        """Returns the phone's ``alias``, ``uri`` (address of record), ``contact_uri`` (direct), ``local_address``,
        ``transport``, ``registrar``, ``registered``, ``codecs``, ``calls`` (handles) and ``active_calls``."""
        phone = self.ctx.phone(alias)
        self.ctx.pump()
        return {
            "alias": phone.alias,
            "uri": phone.uri,
            "contact_uri": phone.contact_uri,
            "local_address": phone.local_address,
            "transport": phone.config.transport,
            "registrar": phone.config.registrar,
            "registered": phone.registered,
            "codecs": list(phone.config.codecs),
            "calls": [call.handle for call in phone.calls],
            "active_calls": [call.handle for call in phone.active_calls()],
        }

    @keyword(name="Close SIP Phone")
    def close_sip_phone(self, alias: str, *, timeout: timedelta = timedelta(seconds=2)) -> None:
        """Hangs up the phone's calls, unregisters it and frees its port. Never fails on what is already gone."""
        key = normalise(alias)
        phone = self.ctx.phones.get(key)
        if phone is None:
            logger.info(f"No SIP phone '{alias}' to close.")
            return
        problems = phone.close(timeout.total_seconds())
        del self.ctx.phones[key]
        logger.info(f"Closed SIP phone '{phone.alias}'{': ' + '; '.join(problems) if problems else ''}.")
        self.ctx.flush()

    @keyword(name="Close All SIP Phones")
    def close_all_sip_phones(self, *, timeout: timedelta = timedelta(seconds=2)) -> None:
        """Hangs up every call, unregisters and closes every phone; for test and suite teardowns.

        Waits at most ``timeout`` per phone and never fails; the library does the same when it goes
        out of scope, before the pjsua2 endpoint is destroyed.
        """
        if not self.ctx.phones:
            logger.info("No SIP phone to close.")
            return
        self.ctx.close_all(timeout.total_seconds())
