"""Trunks, routing rules and caller IDs (pushed to the SIP proxies), call control, and CDRs.

Every provisioning change runs the same way (`_change`): the desired value of each affected htable key is
read from the database before and after the change (flushed, not committed), the difference is pushed to
every proxy, and only then is the transaction committed. When a proxy refuses or does not answer, what
reached the other proxies is taken back, the transaction is rolled back and the request fails with 502
naming the proxy. Changes are serialised by one lock, so the proxies see them in the database's order.

Which calls and CDRs belong to an account: those whose caller or callee is one of its *parties* (its trunks'
SIP usernames, numbers and caller-ID pools, its caller-ID users and numbers, the users its routes go to) or
whose callee starts with one of its routing prefixes. Numbers match with or without a leading ``+``.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, false, func, or_, select
from sqlalchemy.orm import Session

from lab.platform.accounts import require_active
from lab.platform.cdrs import as_utc, cdrs, naive_utc
from lab.platform.context import Platform
from lab.platform.errors import ConflictError, InvalidError, NotFoundError, UpstreamError
from lab.platform.kamailio import HtableChange, RpcError, dialog_view
from lab.platform.models import Account, CallerId, RoutingRule, Trunk, utcnow
from lab.platform.schemas import (
    CallAction,
    CallerIdCreate,
    CallerIdOut,
    CallOut,
    CdrOut,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleUpdate,
    SipCredentials,
    TrunkCreate,
    TrunkOut,
    TrunkUpdate,
)

log = logging.getLogger("lab.platform.voice")

T = TypeVar("T")
Key = tuple[str, str]
URI_USER = re.compile(r"^(?:sips?:|tel:)?(?:([^@;:>]+)@)?([^;>]*)")
MAX_CDRS = 1000


# --- the push ---------------------------------------------------------------------------------------------


def _change(platform: Platform, session: Session, keys: Callable[[], Iterable[Key]], mutate: Callable[[], T]) -> T:
    """Run ``mutate`` in ``session`` and push the resulting htable changes of ``keys()`` to every proxy."""
    with platform.rpc.push_lock:
        before_keys = set(keys())
        before = {key: desired(platform, session, key) for key in before_keys}
        result = mutate()
        session.flush()
        after_keys = before_keys | set(keys())
        changes = [
            HtableChange(table, name, before.get((table, name)), desired(platform, session, (table, name)))
            for table, name in sorted(after_keys)
        ]
        try:
            platform.rpc.push(changes)
        except RpcError as error:
            session.rollback()
            raise UpstreamError(
                "voice_rpc", f"SIP proxy {error.url} refused {error.method}: {error.reason}; nothing was changed"
            ) from None
        session.commit()
        return result


def desired(platform: Platform, session: Session, key: Key) -> str | None:
    """What ``key`` should hold on the proxies according to the database (``None``: absent)."""
    table, name = key
    if table == "trunks":
        trunk = session.scalars(select(Trunk).where(Trunk.sip_username == name)).first()
        return trunk.sip_password if trunk is not None else None
    if table == "routes":
        rule = _rule_in_force(session, name)
        return rule_target(platform, session, rule) if rule is not None else None
    if table == "cli":
        trunk = session.scalars(select(Trunk).where(Trunk.sip_username == name)).first()
        if trunk is not None:
            return trunk_caller_id(session, trunk)
        entry = session.scalars(select(CallerId).where(CallerId.subject == name)).first()
        return entry.number if entry is not None else None
    raise ValueError(f"unknown htable '{table}'")


def _rule_in_force(session: Session, prefix: str) -> RoutingRule | None:
    return session.scalars(
        select(RoutingRule).where(RoutingRule.prefix == prefix).order_by(RoutingRule.priority, RoutingRule.id)
    ).first()


def rule_target(platform: Platform, session: Session, rule: RoutingRule) -> str:
    domain = platform.config.tuning.sip_domain
    if rule.target_type == "trunk":
        trunk = session.get(Trunk, rule.trunk_id)
        return f"sip:{trunk.sip_username if trunk else ''}@{domain}"
    if rule.target_type == "user":
        return f"sip:{rule.user}@{domain}"
    return rule.uri or ""


def trunk_caller_id(session: Session, trunk: Trunk) -> str | None:
    if trunk.caller_id_policy == "passthrough":
        return None
    if trunk.caller_id_policy == "from_pool":
        entry = session.scalars(select(CallerId).where(CallerId.subject == trunk.sip_username)).first()
        if entry is not None:
            return entry.number
    return trunk.number


# --- trunks -----------------------------------------------------------------------------------------------


def create_trunk(platform: Platform, session: Session, account: Account, body: TrunkCreate) -> TrunkOut:
    require_active(account)
    _trunk_name_free(session, account.id, body.name, None)
    username = f"tr{secrets.token_hex(5)}"
    password = secrets.token_urlsafe(18)
    trunk = Trunk(
        account_id=account.id,
        name=body.name,
        sip_username=username,
        sip_password=password,
        allowed_ips=list(body.allowed_ips),
        caller_id_policy=body.caller_id_policy,
        number=body.number,
        caller_id_pool=_pool(body.number, body.caller_id_pool),
    )

    def mutate() -> Trunk:
        session.add(trunk)
        return trunk

    _change(platform, session, lambda: [("trunks", username), ("cli", username)], mutate)
    log.info("trunk %d (%s) of %s provisioned", trunk.id, username, account.username)
    return trunk_out(platform, session, trunk, password=password)


def list_trunks(platform: Platform, session: Session, account_id: int) -> list[TrunkOut]:
    rows = session.scalars(select(Trunk).where(Trunk.account_id == account_id).order_by(Trunk.id)).all()
    return [trunk_out(platform, session, row) for row in rows]


def get_trunk(platform: Platform, session: Session, account_id: int, trunk_id: int) -> TrunkOut:
    return trunk_out(platform, session, _trunk(session, account_id, trunk_id))


def update_trunk(platform: Platform, session: Session, account_id: int, trunk_id: int, body: TrunkUpdate) -> TrunkOut:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        raise InvalidError("body", "give at least one of name, number, caller_id_policy, allowed_ips, caller_id_pool")
    trunk = _trunk(session, account_id, trunk_id)
    if "name" in changes:
        _trunk_name_free(session, account_id, changes["name"], trunk.id)
    number = changes.get("number", trunk.number)
    pool = _pool(number, changes.get("caller_id_pool", [n for n in trunk.caller_id_pool if n != trunk.number]))
    policy = changes.get("caller_id_policy", trunk.caller_id_policy)
    entry = session.scalars(select(CallerId).where(CallerId.subject == trunk.sip_username)).first()
    if entry is not None and policy == "from_pool" and entry.number not in pool:
        raise ConflictError(
            "caller_id_pool",
            f"the pool would no longer hold the trunk's current caller ID {entry.number}; change it first",
        )

    def mutate() -> None:
        for name in ("name", "number", "caller_id_policy", "allowed_ips"):
            if name in changes:
                setattr(trunk, name, changes[name])
        trunk.caller_id_pool = pool
        trunk.updated_at = utcnow()
        if entry is not None and policy != "from_pool":
            session.delete(entry)  # only a from_pool trunk has a dynamic caller ID

    _change(platform, session, lambda: [("cli", trunk.sip_username)], mutate)
    return trunk_out(platform, session, trunk)


def rotate_trunk_password(platform: Platform, session: Session, account_id: int, trunk_id: int) -> TrunkOut:
    trunk = _trunk(session, account_id, trunk_id)
    password = secrets.token_urlsafe(18)

    def mutate() -> None:
        trunk.sip_password = password
        trunk.updated_at = utcnow()

    _change(platform, session, lambda: [("trunks", trunk.sip_username)], mutate)
    return trunk_out(platform, session, trunk, password=password)


def delete_trunk(platform: Platform, session: Session, account_id: int, trunk_id: int) -> None:
    trunk = _trunk(session, account_id, trunk_id)
    rules = session.scalars(select(RoutingRule.id).where(RoutingRule.trunk_id == trunk.id)).all()
    if rules:
        raise ConflictError(
            "trunk_id",
            f"trunk {trunk_id} is the target of routing rule(s) {', '.join(map(str, rules))}; delete them first",
        )
    username = trunk.sip_username

    def mutate() -> None:
        for entry in session.scalars(select(CallerId).where(CallerId.trunk_id == trunk.id)).all():
            session.delete(entry)
        session.flush()
        session.delete(trunk)

    _change(platform, session, lambda: [("trunks", username), ("cli", username)], mutate)


def _trunk(session: Session, account_id: int, trunk_id: int, field: str = "trunk_id") -> Trunk:
    row = session.scalars(select(Trunk).where(Trunk.id == trunk_id, Trunk.account_id == account_id)).first()
    if row is None:
        raise NotFoundError(field, f"{field} {trunk_id} names no trunk of this account")
    return row


def _trunk_name_free(session: Session, account_id: int, name: str, own_id: int | None) -> None:
    other = session.scalars(select(Trunk.id).where(Trunk.account_id == account_id, Trunk.name == name)).first()
    if other is not None and other != own_id:
        raise ConflictError("name", f"name '{name}' is taken by trunk {other}")


def _pool(number: str, pool: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([number, *pool]))


def trunk_out(platform: Platform, session: Session, trunk: Trunk, *, password: str | None = None) -> TrunkOut:
    return TrunkOut(
        id=trunk.id,
        name=trunk.name,
        number=trunk.number,
        caller_id_policy=trunk.caller_id_policy,  # type: ignore[arg-type]
        caller_id_pool=list(trunk.caller_id_pool),
        caller_id=trunk_caller_id(session, trunk),
        allowed_ips=list(trunk.allowed_ips),
        sip=SipCredentials(username=trunk.sip_username, domain=platform.config.tuning.sip_domain, password=password),
        created_at=trunk.created_at,
        updated_at=trunk.updated_at,
    )


# --- routing rules ----------------------------------------------------------------------------------------


def create_rule(platform: Platform, session: Session, account: Account, body: RoutingRuleCreate) -> RoutingRuleOut:
    prefix = body.prefix.lstrip("+")
    other = session.scalars(
        select(RoutingRule.account_id).where(RoutingRule.prefix == prefix, RoutingRule.account_id != account.id)
    ).first()
    if other is not None:
        raise ConflictError("prefix", f"prefix '{prefix}' is routed by another account")
    target = _target(session, account.id, body.target_type, body.trunk_id, body.user, body.uri)
    rule = RoutingRule(account_id=account.id, prefix=prefix, priority=body.priority, **target)

    def mutate() -> RoutingRule:
        session.add(rule)
        return rule

    _change(platform, session, lambda: [("routes", prefix)], mutate)
    return rule_out(platform, session, rule)


def update_rule(
    platform: Platform, session: Session, account_id: int, rule_id: int, body: RoutingRuleUpdate
) -> RoutingRuleOut:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        raise InvalidError("body", "give at least one of target_type, trunk_id, user, uri, priority")
    rule = _rule(session, account_id, rule_id)
    target: dict[str, Any] = {}
    if {"target_type", "trunk_id", "user", "uri"} & changes.keys():
        kind = changes.get("target_type", rule.target_type)
        target = _target(
            session,
            account_id,
            kind,
            changes.get("trunk_id", rule.trunk_id if kind == "trunk" else None),
            changes.get("user", rule.user if kind == "user" else None),
            changes.get("uri", rule.uri if kind == "application" else None),
        )

    def mutate() -> None:
        for name, value in target.items():
            setattr(rule, name, value)
        if "priority" in changes:
            rule.priority = changes["priority"]

    _change(platform, session, lambda: [("routes", rule.prefix)], mutate)
    return rule_out(platform, session, rule)


def delete_rule(platform: Platform, session: Session, account_id: int, rule_id: int) -> None:
    rule = _rule(session, account_id, rule_id)
    prefix = rule.prefix
    _change(platform, session, lambda: [("routes", prefix)], lambda: session.delete(rule))


def list_rules(platform: Platform, session: Session, account_id: int, prefix: str | None) -> list[RoutingRuleOut]:
    query = select(RoutingRule).where(RoutingRule.account_id == account_id)
    if prefix:
        query = query.where(RoutingRule.prefix == prefix.lstrip("+"))
    rows = session.scalars(query.order_by(RoutingRule.prefix, RoutingRule.priority, RoutingRule.id)).all()
    return [rule_out(platform, session, row) for row in rows]


def get_rule(platform: Platform, session: Session, account_id: int, rule_id: int) -> RoutingRuleOut:
    return rule_out(platform, session, _rule(session, account_id, rule_id))


def _target(
    session: Session, account_id: int, kind: str, trunk_id: int | None, user: str | None, uri: str | None
) -> dict[str, Any]:
    given = {"trunk_id": trunk_id, "user": user, "uri": uri}
    wanted = {"trunk": "trunk_id", "user": "user", "application": "uri"}[kind]
    if given[wanted] is None:
        raise InvalidError(wanted, f"{wanted} is required with target_type '{kind}'")
    for name, value in given.items():
        if name != wanted and value is not None:
            raise InvalidError(name, f"{name} is not used with target_type '{kind}' (give only {wanted})")
    if trunk_id is not None:
        _trunk(session, account_id, trunk_id)
    return {"target_type": kind, **{name: (value if name == wanted else None) for name, value in given.items()}}


def _rule(session: Session, account_id: int, rule_id: int) -> RoutingRule:
    row = session.scalars(
        select(RoutingRule).where(RoutingRule.id == rule_id, RoutingRule.account_id == account_id)
    ).first()
    if row is None:
        raise NotFoundError("rule_id", f"rule_id {rule_id} names no routing rule of this account")
    return row


def rule_out(platform: Platform, session: Session, rule: RoutingRule) -> RoutingRuleOut:
    in_force = _rule_in_force(session, rule.prefix)
    return RoutingRuleOut(
        id=rule.id,
        prefix=rule.prefix,
        target_type=rule.target_type,  # type: ignore[arg-type]
        trunk_id=rule.trunk_id,
        user=rule.user,
        uri=rule.uri,
        priority=rule.priority,
        target=rule_target(platform, session, rule),
        active=in_force is not None and in_force.id == rule.id,
        created_at=rule.created_at,
    )


# --- dynamic caller ID ------------------------------------------------------------------------------------


def create_caller_id(platform: Platform, session: Session, account: Account, body: CallerIdCreate) -> CallerIdOut:
    if (body.trunk_id is None) == (body.user is None):
        raise InvalidError("trunk_id" if body.trunk_id is not None else "user", "give exactly one of trunk_id, user")
    if body.trunk_id is not None:
        trunk = _trunk(session, account.id, body.trunk_id)
        if trunk.caller_id_policy != "from_pool":
            raise ConflictError(
                "trunk_id",
                f"trunk {trunk.id} has caller_id_policy '{trunk.caller_id_policy}'; only a 'from_pool' trunk takes a "
                "dynamic caller ID (PATCH its caller_id_policy first)",
            )
        if body.number not in trunk.caller_id_pool:
            raise InvalidError("number", f"number {body.number} is not in trunk {trunk.id}'s caller_id_pool")
        subject, kind, trunk_id = trunk.sip_username, "trunk", trunk.id
    else:
        assert body.user is not None
        _own_number(session, account.id, body.number)
        subject, kind, trunk_id = body.user, "user", None
        if session.scalars(select(Trunk.id).where(Trunk.sip_username == subject)).first() is not None:
            raise ConflictError("user", f"user '{subject}' is a trunk's SIP username; use trunk_id")
    existing = session.scalars(select(CallerId).where(CallerId.subject == subject)).first()
    if existing is not None:
        owner = "this account" if existing.account_id == account.id else "another account"
        raise ConflictError(
            "trunk_id" if kind == "trunk" else "user",
            f"{kind} '{subject}' already has caller ID {existing.id} of {owner}; PATCH /caller-ids/{existing.id}"
            if existing.account_id == account.id
            else f"{kind} '{subject}' has a caller ID of {owner}",
        )
    entry = CallerId(account_id=account.id, subject_type=kind, subject=subject, trunk_id=trunk_id, number=body.number)

    def mutate() -> CallerId:
        session.add(entry)
        return entry

    _change(platform, session, lambda: [("cli", subject)], mutate)
    return CallerIdOut.model_validate(entry, from_attributes=True)


def update_caller_id(platform: Platform, session: Session, account_id: int, entry_id: int, number: str) -> CallerIdOut:
    entry = _caller_id(session, account_id, entry_id)
    if entry.trunk_id is not None:
        trunk = session.get(Trunk, entry.trunk_id)
        if trunk is not None and number not in trunk.caller_id_pool:
            raise InvalidError("number", f"number {number} is not in trunk {trunk.id}'s caller_id_pool")
    else:
        _own_number(session, account_id, number)

    def mutate() -> None:
        entry.number = number
        entry.updated_at = utcnow()

    _change(platform, session, lambda: [("cli", entry.subject)], mutate)
    return CallerIdOut.model_validate(entry, from_attributes=True)


def delete_caller_id(platform: Platform, session: Session, account_id: int, entry_id: int) -> None:
    entry = _caller_id(session, account_id, entry_id)
    subject = entry.subject
    _change(platform, session, lambda: [("cli", subject)], lambda: session.delete(entry))


def list_caller_ids(session: Session, account_id: int) -> list[CallerIdOut]:
    rows = session.scalars(select(CallerId).where(CallerId.account_id == account_id).order_by(CallerId.id)).all()
    return [CallerIdOut.model_validate(row, from_attributes=True) for row in rows]


def get_caller_id(session: Session, account_id: int, entry_id: int) -> CallerIdOut:
    return CallerIdOut.model_validate(_caller_id(session, account_id, entry_id), from_attributes=True)


def _own_number(session: Session, account_id: int, number: str) -> None:
    numbers: set[str] = set()
    for trunk in session.scalars(select(Trunk).where(Trunk.account_id == account_id)).all():
        numbers.update(trunk.caller_id_pool)
        numbers.add(trunk.number)
    if number not in numbers:
        raise InvalidError(
            "number", f"number {number} is not one of this account's numbers (its trunks' numbers and caller_id_pools)"
        )


def _caller_id(session: Session, account_id: int, entry_id: int) -> CallerId:
    row = session.scalars(select(CallerId).where(CallerId.id == entry_id, CallerId.account_id == account_id)).first()
    if row is None:
        raise NotFoundError("caller_id", f"caller_id {entry_id} names no caller ID of this account")
    return row


# --- parties: which calls and CDRs are the account's ------------------------------------------------------


@dataclass
class Parties:
    names: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, session: Session, account_id: int) -> Parties:
        parties = cls()
        for trunk in session.scalars(select(Trunk).where(Trunk.account_id == account_id)).all():
            parties.add(trunk.sip_username, trunk.number, *trunk.caller_id_pool)
        for entry in session.scalars(select(CallerId).where(CallerId.account_id == account_id)).all():
            parties.add(entry.subject, entry.number)
        for rule in session.scalars(select(RoutingRule).where(RoutingRule.account_id == account_id)).all():
            parties.prefixes.add(rule.prefix)
            if rule.user:
                parties.add(rule.user)
        return parties

    def add(self, *values: str) -> None:
        for value in values:
            self.names.update(_forms(value))

    def matches(self, caller: str, callee: str) -> bool:
        if self.names & (_forms(caller) | _forms(callee)):
            return True
        return any(callee.lstrip("+").startswith(prefix) for prefix in self.prefixes)

    def condition(self) -> ColumnElement[bool]:
        if not self.names and not self.prefixes:
            return false()
        names = sorted(self.names)
        terms: list[ColumnElement[bool]] = [cdrs.c.caller.in_(names), cdrs.c.callee.in_(names)]
        stripped = func.ltrim(cdrs.c.callee, "+")
        terms.extend(stripped.like(f"{prefix}%") for prefix in sorted(self.prefixes))
        return or_(*terms)


def _forms(value: str) -> set[str]:
    """``value`` as written, and a number also with and without ``+``."""
    value = value.strip()
    if not value:
        return set()
    bare = value.lstrip("+")
    return {value, bare, f"+{bare}"} if bare.isdigit() else {value}


def uri_user(uri: str) -> str:
    """The user part of a SIP URI (``sip:alice@host;x`` → ``alice``), or its host when it has none."""
    text = uri.strip().strip("<>")
    if "<" in text:
        text = text.split("<", 1)[1]
    match = URI_USER.match(text)
    if not match:
        return text
    return match.group(1) or match.group(2) or ""


# --- call control -----------------------------------------------------------------------------------------


def _parties(platform: Platform, account_id: int) -> Parties:
    """The account's parties, read in a short session of their own (released before any JSON-RPC call)."""
    with platform.sessions() as session:
        return Parties.of(session, account_id)


def list_calls(platform: Platform, account_id: int) -> tuple[list[CallOut], list[RpcError]]:
    parties = _parties(platform, account_id)
    dialogs, failures = platform.rpc.list_dialogs()
    if failures and len(failures) == len(platform.rpc.urls):
        raise UpstreamError("voice_rpc", "; ".join(str(error) for error in failures))
    calls: dict[str, CallOut] = {}
    for dialog in dialogs:
        view = dialog_view(dialog)
        if view["call_id"] in calls or not parties.matches(uri_user(view["from"]), uri_user(view["to"])):
            continue
        calls[view["call_id"]] = CallOut.model_validate(view)
    return list(calls.values()), failures


def _dialog(platform: Platform, account_id: int, call_id: str) -> dict[str, Any]:
    parties = _parties(platform, account_id)
    dialogs, failures = platform.rpc.list_dialogs()
    for dialog in dialogs:
        view = dialog_view(dialog)
        if view["call_id"] == call_id and parties.matches(uri_user(view["from"]), uri_user(view["to"])):
            return dialog
    if failures and len(failures) == len(platform.rpc.urls):
        raise UpstreamError("voice_rpc", "; ".join(str(error) for error in failures))
    raise NotFoundError("call_id", f"call_id '{call_id}' names no active call of this account")


def hang_up(platform: Platform, account_id: int, call_id: str) -> CallAction:
    """Ask the proxy holding the call to end it: ``dlg.end_dlg`` with the dialog's ``h_entry`` and ``h_id``."""
    dialog = _dialog(platform, account_id, call_id)
    proxy = str(dialog["proxy"])
    try:
        h_entry, h_id = int(dialog["h_entry"]), int(dialog["h_id"])
    except (KeyError, TypeError, ValueError):
        raise UpstreamError("voice_rpc", f"SIP proxy {proxy} listed call '{call_id}' without h_entry/h_id") from None
    try:
        platform.rpc.call(proxy, "dlg.end_dlg", [h_entry, h_id])
    except RpcError as error:
        raise UpstreamError("voice_rpc", str(error)) from None
    log.info("call %s: dlg.end_dlg %d %d on %s", call_id, h_entry, h_id, proxy)
    return CallAction(call_id=call_id, action="hangup", proxy=proxy)


def transfer(platform: Platform, account_id: int, call_id: str, target: str) -> CallAction:
    """Ask the proxy holding the call to REFER it to ``target`` (``telco.transfer``, a lab extension)."""
    uri = target if target.startswith(("sip:", "sips:")) else f"sip:{target}@{platform.config.tuning.sip_domain}"
    if any(char.isspace() or char in '<>"' for char in uri):
        raise InvalidError("target", f"target must be a SIP URI, a user or a number, got '{target}'")
    dialog = _dialog(platform, account_id, call_id)
    proxy = str(dialog["proxy"])
    try:
        platform.rpc.call(proxy, "telco.transfer", [call_id, uri])
    except RpcError as error:
        raise UpstreamError("voice_rpc", str(error)) from None
    log.info("call %s: transfer to %s asked of %s", call_id, uri, proxy)
    return CallAction(call_id=call_id, action="transfer", target=uri, proxy=proxy)


# --- CDRs -------------------------------------------------------------------------------------------------


def query_cdrs(
    platform: Platform,
    session: Session,
    account_id: int,
    *,
    call_id: str | None = None,
    customer: str | None = None,
    caller: str | None = None,
    callee: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = MAX_CDRS,
) -> list[CdrOut]:
    if since is not None and until is not None and until <= since:
        raise InvalidError("until", "until must be later than since")
    parties = Parties.of(session, account_id)
    query = select(cdrs).where(parties.condition())
    if call_id:
        query = query.where(cdrs.c.call_id == call_id)
    if customer:
        names = sorted(_customer_names(session, account_id, customer))
        query = query.where(or_(cdrs.c.caller.in_(names), cdrs.c.callee.in_(names)))
    if caller:
        query = query.where(cdrs.c.caller.in_(sorted(_forms(caller))))
    if callee:
        query = query.where(cdrs.c.callee.in_(sorted(_forms(callee))))
    if since is not None:
        query = query.where(cdrs.c.start_time >= naive_utc(since))
    if until is not None:
        query = query.where(cdrs.c.start_time < naive_utc(until))
    with platform.cdr_engine.connect() as connection:
        rows = connection.execute(query.order_by(cdrs.c.id).limit(limit)).all()
    return [cdr_out(row) for row in rows]


def _customer_names(session: Session, account_id: int, customer: str) -> set[str]:
    """``customer``: a trunk of the account by name (its username and numbers), else a user or number."""
    trunk = session.scalars(select(Trunk).where(Trunk.account_id == account_id, Trunk.name == customer)).first()
    if trunk is None:
        return _forms(customer)
    names: set[str] = set()
    for value in (trunk.sip_username, trunk.number, *trunk.caller_id_pool):
        names.update(_forms(value))
    return names


def cdr_out(row: Row[Any]) -> CdrOut:
    values = dict(row._mapping)
    for name in ("start_time", "answer_time", "end_time"):
        values[name] = as_utc(values[name])
    return CdrOut.model_validate(values)
